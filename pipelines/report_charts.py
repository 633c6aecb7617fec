"""Horizontal bar charts as inline SVG for the report: labels and values are SVG text (the
browser draws them in any script with the reader's fonts), every string is escaped."""

from __future__ import annotations

import html
import math
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    """One row of a horizontal bar chart: ``value`` (then ``stack`` after it), an optional
    shaded ``band`` (low, high), a tick ``mark`` and an ``outline`` box (e.g. capacity)."""

    label: str
    value: float
    text: str
    stack: float = 0.0
    band: tuple[float, float] | None = None
    mark: float | None = None
    outline: float | None = None


_LABEL_W, _PLOT_W, _TEXT_W, _ROW_H = 190, 480, 170, 22


def bar_chart(bars: list[Bar], colour: str = "bar") -> str:
    """Horizontal bars as inline SVG, one row per bar, labels and values as text."""
    if not bars:
        return ""
    ends = [b.value + b.stack for b in bars]
    ends += [b.band[1] for b in bars if b.band] + [b.mark for b in bars if b.mark is not None]
    ends += [b.outline for b in bars if b.outline is not None]
    top = max([e for e in ends if not _missing(e)] + [1e-9])

    def x(value: float) -> float:
        return _LABEL_W + _PLOT_W * (0.0 if _missing(value) else value) / top

    rows = []
    for k, bar in enumerate(bars):
        y = 4 + k * _ROW_H
        mid = y + _ROW_H / 2
        label = html.escape(bar.label)
        parts = [f"<title>{label}: {html.escape(bar.text)}</title>"]
        if bar.band:
            low, high = x(bar.band[0]), x(bar.band[1])
            parts.append(
                f'<rect class="band" x="{low:.1f}" y="{y + 1}" width="{high - low:.1f}" '
                f'height="{_ROW_H - 2}"/>'
            )
        if bar.outline is not None:
            parts.append(
                f'<rect class="outline" x="{_LABEL_W}" y="{y + 4}" '
                f'width="{x(bar.outline) - _LABEL_W:.1f}" height="{_ROW_H - 8}"/>'
            )
        parts.append(
            f'<rect class="{colour}" x="{_LABEL_W}" y="{y + 5}" '
            f'width="{x(bar.value) - _LABEL_W:.1f}" height="{_ROW_H - 10}"/>'
        )
        if bar.stack:
            parts.append(
                f'<rect class="stack" x="{x(bar.value):.1f}" y="{y + 5}" '
                f'width="{x(bar.value + bar.stack) - x(bar.value):.1f}" height="{_ROW_H - 10}"/>'
            )
        if bar.mark is not None:
            parts.append(
                f'<line class="mark" x1="{x(bar.mark):.1f}" x2="{x(bar.mark):.1f}" '
                f'y1="{y + 2}" y2="{y + _ROW_H - 2}"/>'
            )
        parts.append(
            f'<text x="{_LABEL_W - 6}" y="{mid + 4:.1f}" text-anchor="end">'
            f"{html.escape(_shorten(bar.label))}</text>"
        )
        parts.append(
            f'<text x="{_LABEL_W + _PLOT_W + 6}" y="{mid + 4:.1f}">{html.escape(bar.text)}</text>'
        )
        rows.append(f"<g>{''.join(parts)}</g>")
    width = _LABEL_W + _PLOT_W + _TEXT_W
    height = 8 + len(bars) * _ROW_H
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<line class="axis" x1="{_LABEL_W}" x2="{_LABEL_W}" y1="0" y2="{height}"/>'
        + "".join(rows)
        + "</svg>"
    )


def _shorten(label: str, width: int = 26) -> str:
    """``label`` cut to about ``width`` columns (a wide CJK character counts two)."""
    used, out = 0, []
    for char in label:
        used += 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if used > width:
            return "".join(out) + "…"
        out.append(char)
    return label


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
