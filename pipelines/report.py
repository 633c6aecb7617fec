"""The one-page HTML report of a nightly run, for the sales manager, in English or Chinese.

Self-contained (no external resources) and byte-stable (no timings, no time stamps). Charts are
inline SVG whose text is text, so the browser draws names and labels in any script with the
reader's fonts; every name is escaped, so a rep called ``<b>&$x^2$`` shows as written.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.schemas import Leads, Reps
from matching.summary import ACTIONS, FairnessNote, ManagerPlan
from pipelines.outputs import LANGUAGES
from pipelines.report_charts import Bar, bar_chart
from pipelines.report_text import (
    ACTION_TEXT,
    GLOSSARY,
    NOTES,
    REPORT_HEADERS,
    SOLVER_STATUS,
    TEXT,
)

MAX_CHART_REPS = 60
"""Charts show at most this many reps (those farthest from their fair share); the CSV has all."""
MAX_LEFT_OUT_ROWS = 50
"""The report lists at most this many leads left out for age; left_out.csv has all."""


@dataclass(frozen=True)
class RecommendSummary:
    """The figures of one nightly run (what `leadmatch recommend` prints and the report shows).

    placed: leads given to a rep (assign and reassign); held: leads nobody can take today;
    reclaimed: leads taken from a rep after the SLA (placed or kept); kept: reclaimed leads
    that stay with their rep (no other rep had room); too_old: leads left out for age;
    expected_wins / expected_wins_round_robin: sums of win chances of the placed leads (each
    lead's round-robin chance when the rep signal is not used); price_of_fairness: expected
    worth given up for fairness; notes: plain sentences on what the run could not do.
    """

    folder: Path
    run_date: str
    placed: int
    held: int
    reclaimed: int
    too_old: int
    expected_wins: float
    expected_wins_round_robin: float
    price_of_fairness: float | None
    model_version: str
    rep_signal_used: bool
    kept: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunReport:
    """Everything the report shows: the run's ``summary``, the manager's ``plan``, the
    rep-signal test's figures (``rep_signal``: RepSignal.to_dict(), or None), and the
    optimiser's status, relative gap and candidate pairs (technical section only)."""

    summary: RecommendSummary
    plan: ManagerPlan
    rep_signal: dict[str, object] | None = None
    solver_status: str = ""
    solver_gap: float = math.nan
    candidate_pairs: int = 0


def write_report(report: RunReport, path: Path, lang: str) -> None:
    """Write the report as ``path`` (UTF-8)."""
    path.write_text(render_report(report, lang), encoding="utf-8")


def render_report(report: RunReport, lang: str = "en") -> str:
    """The report as one HTML page in ``lang`` ("en" or "zh")."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}: use en or zh")
    return _Page(report, lang).html()


class _Page:
    def __init__(self, report: RunReport, lang: str):
        self.report = report
        self.plan = report.plan
        self.lang = lang
        self.t = TEXT[lang]

    def say(self, key: str, **values: object) -> str:
        """The text ``key`` with ``values`` filled in, escaped for HTML."""
        return html.escape(self.t[key].format(**values))

    def html(self) -> str:
        plan = self.plan
        title = self.say("title", date=plan.run_date)
        body = "\n".join(
            [
                f"<h1>{title}</h1>",
                f"<p>{self.say('intro')}</p>",
                self.tiles(),
                f"<p>{self.say('signal_on' if plan.rep_signal else 'signal_off')}</p>",
                self.notes(),
                self.gain(),
                self.actions(),
                self.workload(),
                self.shares(),
                self.top_tier(),
                self.fairness(),
                self.reps_table(),
                self.left_out(),
                self.glossary(),
                self.technical(),
            ]
        )
        lang = "zh-CN" if self.lang == "zh" else "en"
        return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{_CSS}</style></head><body>
{body}
</body></html>
"""

    # --- figures in words ----------------------------------------------------------------------

    def amount(self, value: float, signed: bool = False) -> str:
        """An expected worth in the plan's unit: wins with one decimal, revenue whole; a
        signed amount that rounds to nothing is "0"."""
        revenue = self.plan.gain.unit == "revenue"
        if signed and round(value, 0 if revenue else 1) == 0:
            return "0"
        sign = "+" if signed else ""
        return f"{value:{sign},.0f}" if revenue else f"{value:{sign}.1f}"

    def unit(self) -> str:
        return self.t["unit_revenue" if self.plan.gain.unit == "revenue" else "unit_wins"]

    def rep(self, rep_id: str | None) -> str:
        if rep_id is None:
            return ""
        return self.plan.labels.get(str(rep_id), str(rep_id))

    # --- sections ------------------------------------------------------------------------------

    def tiles(self) -> str:
        counts = self.plan.counts
        gain = self.plan.gain
        relative = "" if gain.relative is None else f" ({_signed_pct(gain.relative)})"
        worth_key = "tile_revenue" if gain.unit == "revenue" else "tile_wins"
        tiles = [(f"tile_{action}", str(counts[action])) for action in ACTIONS]
        tiles += [
            ("tile_left_out", str(counts["left_out"])),
            (worth_key, self.amount(gain.leadmatch)),
            ("tile_gain", self.amount(gain.gain, signed=True) + relative),
        ]
        cells = "".join(
            f'<div class="kpi">{self.say(key)}<b>{html.escape(value)}</b></div>'
            for key, value in tiles
        )
        return f'<div class="kpis">{cells}</div>'

    def gain(self) -> str:
        gain = self.plan.gain
        unit = self.unit()
        relative = (
            ""
            if gain.relative is None
            else self.t["gain_relative"].format(relative=_signed_pct(gain.relative))
        )
        head = self.say(
            "gain_head",
            theirs=f"{self.amount(gain.round_robin)} {unit}"
            if self.lang == "en"
            else f"{unit} {self.amount(gain.round_robin)}",
            ours=f"{self.amount(gain.leadmatch)} {unit}"
            if self.lang == "en"
            else f"{unit} {self.amount(gain.leadmatch)}",
            gain=self.amount(gain.gain, signed=True),
            relative=relative,
        )
        small = 0.05 if gain.unit == "wins" else 0.0005 * max(gain.round_robin, 1.0)
        if abs(gain.selection) < small:
            short = gain.placed < gain.to_place or gain.placed_round_robin < gain.to_place
            selection = "selection_same" if short else "selection_none"
        else:
            selection = "selection_short" if gain.selection > 0 else "selection_less"
        if not gain.rep_signal:
            matching = "matching_no_signal"
        elif abs(gain.matching) < small:
            matching = "matching_same"
        else:
            matching = "matching_more" if gain.matching > 0 else "matching_less"
        parts = [
            (
                self.say("part_selection", value=self.part(gain.selection)),
                self.say(selection, placed=gain.placed, to_place=gain.to_place),
            ),
            (self.say("part_matching", value=self.part(gain.matching)), self.say(matching)),
        ]
        items = "".join(f"<li><b>{part}</b> {why}</li>" for part, why in parts)
        return f"<h2>{self.say('gain_title')}</h2>\n<p>{head}</p>\n<ul>{items}</ul>"

    def part(self, value: float) -> str:
        amount = self.amount(value, signed=True)
        return f"{amount} {self.unit()}" if self.lang == "en" else f"{self.unit()} {amount}"

    def actions(self) -> str:
        counts = self.plan.counts
        rows = "".join(
            f"<tr><td>{html.escape(ACTION_TEXT[self.lang][a][0])}</td>"
            f'<td class="num">{counts[a]}</td>'
            f"<td>{html.escape(ACTION_TEXT[self.lang][a][1])}</td></tr>"
            for a in ACTIONS
        )
        head = "".join(f"<th>{self.say(k)}</th>" for k in ("col_action", "col_count", "col_todo"))
        return (
            f"<h2>{self.say('actions_title')}</h2>\n"
            f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        )

    def chart_reps(self) -> pd.DataFrame:
        reps = self.plan.rep_summary.loc[self.plan.rep_summary["capacity"] > 0]
        if len(reps) > MAX_CHART_REPS:
            far = reps["share_gap_pts"].abs().fillna(0).sort_values(ascending=False, kind="stable")
            reps = reps.loc[sorted(far.index[:MAX_CHART_REPS])]
        return reps

    def workload(self) -> str:
        reps = self.chart_reps()
        bars = [
            Bar(
                label=self.rep(r.rep_id),
                value=float(r.assigned),
                stack=float(r.kept),
                outline=float(r.capacity),
                text=f"{r.assigned} / {r.capacity}" + (f" + {r.kept}" if r.kept else ""),
            )
            for r in reps.itertuples()
        ]
        legend = self.legend(
            [("bar", "legend_assigned"), ("stack", "legend_kept"), ("outline", "legend_capacity")]
        )
        section = self.chart_section("workload_title", "workload_note", bars, legend)
        summary = self.plan.rep_summary
        absent = summary.loc[summary["capacity"] == 0, Reps.rep_id]
        if absent.empty:
            return section
        separator = "、" if self.lang == "zh" else ", "
        names = separator.join(self.rep(r) for r in absent)
        return f"{section}\n<p>{self.say('absent_reps', names=names)}</p>"

    def shares(self) -> str:
        reps = self.chart_reps()
        band = self.plan.band
        bars = [
            Bar(
                label=self.rep(r.rep_id),
                value=_num(r.value_share_pct),
                band=(r.fair_share_pct * (1 - band), r.fair_share_pct * (1 + band)),
                text=_pct(r.value_share_pct),
            )
            for r in reps.itertuples()
        ]
        legend = self.legend([("bar", "legend_share"), ("band", "legend_band")])
        note = {"days": self.plan.window_days, "band": f"{band:.0%}"}
        return self.chart_section("share_title", "share_note", bars, legend, note)

    def top_tier(self) -> str:
        reps = self.chart_reps()
        bars = [
            Bar(
                label=self.rep(r.rep_id),
                value=float(r.tier_A),
                mark=float(r.tier_A_in_proportion),
                text=self.t["top_value"].format(n=r.tier_A, fair=r.tier_A_in_proportion),
            )
            for r in reps.itertuples()
        ]
        legend = self.legend([("top", "legend_top"), ("mark", "legend_proportion")])
        per_rep = self.chart_section("top_title", "top_note", bars, legend, colour="top")
        groups = self.plan.tier_by_tenure
        tenure = [
            Bar(
                label=self.t[f"tenure_{g.group}"].format(days=self.plan.ramp_days),
                value=float(g.top_tier_leads),
                mark=float(g.in_proportion),
                text=self.t["top_value"].format(n=g.top_tier_leads, fair=g.in_proportion),
            )
            for g in groups.itertuples()
        ]
        by_tenure = f"<h3>{self.say('tenure_title')}</h3>\n" + bar_chart(tenure, "top")
        return per_rep + "\n" + by_tenure

    def chart_section(
        self,
        title: str,
        note: str,
        bars: list[Bar],
        legend: str,
        values: dict[str, object] | None = None,
        colour: str = "bar",
    ) -> str:
        return (
            f"<h2>{self.say(title)}</h2>\n<p>{self.say(note, **(values or {}))}</p>\n"
            f"{legend}\n{bar_chart(bars, colour)}"
        )

    def legend(self, items: Sequence[tuple[str, str]]) -> str:
        keys = "".join(
            f'<span class="key"><i class="sw {kind}"></i>{self.say(text)}</span>'
            for kind, text in items
        )
        return f'<div class="legend">{keys}</div>'

    def fairness(self) -> str:
        plan = self.plan
        lines = [self.fairness_line(note) for note in plan.fairness]
        violations = [n for n in plan.fairness if not n.rule.startswith("cost:")]
        if not violations:
            lines.insert(0, self.say("fairness_ok"))
        price = plan.price_of_fairness
        if price is not None:
            if price >= 0.05 if plan.gain.unit == "wins" else price > 0:
                lines.append(
                    self.say(
                        "fairness_price",
                        cost=self.amount(price),
                        total=self.amount(plan.gain.leadmatch + price),
                        unit=self.unit(),
                    )
                )
            else:
                lines.append(self.say("fairness_free"))
        items = "".join(f"<li>{line}</li>" for line in lines)
        return f"<h2>{self.say('fairness_title')}</h2>\n<ul>{items}</ul>"

    def fairness_line(self, note: FairnessNote) -> str:
        if note.rule.startswith("cost:"):
            rule = note.rule.split(":", 1)[1]
            return self.say(
                "rule_cost",
                n=note.n_reps,
                rule=self.t[f"rule_name_{rule}"],
                cost=self.amount(note.cost or 0.0),
                total=self.amount(note.total or 0.0),
                unit=self.unit(),
            )
        if note.rule == "top_tier_cap_unreachable":
            return self.say(
                "rule_top_tier_cap_unreachable",
                n=note.n_reps,
                limit=f"{note.limit:.0%}",
                needed=math.ceil(1 / (note.limit or 1) - 1e-9),
                even=f"{1 / max(note.n_reps or 1, 1):.0%}",
            )
        share = "-" if note.share is None else f"{note.share:.1%}"
        separator = "、" if self.lang == "zh" else ", "
        return self.say(
            f"rule_{note.rule}",
            rep=self.rep(note.rep_id),
            reps=separator.join(self.rep(r) for r in note.rep_ids),
            share=share,
            limit=f"{note.limit or 0:.1%}",
        )

    def reps_table(self) -> str:
        frame = self.plan.rep_summary
        columns = [
            "rep_name",
            Reps.rep_id,
            "capacity",
            "assigned",
            "kept",
            "tier_A",
            "tier_A_in_proportion",
            "expected_wins",
            "capacity_used_pct",
            "value_share_pct",
            "fair_share_pct",
            "open_load_after",
        ]
        formats = {
            "tier_A_in_proportion": lambda v: f"{v:.1f}",
            "expected_wins": lambda v: f"{v:.2f}",
            "capacity_used_pct": _pct,
            "value_share_pct": _pct,
            "fair_share_pct": _pct,
        }
        return f"<h2>{self.say('reps_title')}</h2>\n" + self.table(frame, columns, formats)

    def table(self, frame: pd.DataFrame, columns: list[str], formats: dict) -> str:
        headers = REPORT_HEADERS[self.lang]
        head = "".join(f"<th>{html.escape(headers[c])}</th>" for c in columns)
        rows = []
        for record in frame[columns].itertuples(index=False):
            cells = []
            for column, value in zip(columns, record, strict=True):
                text = "" if _missing(value) else formats.get(column, str)(value)
                numeric = isinstance(value, int | float) and not isinstance(value, bool)
                css = ' class="num"' if numeric else ""
                cells.append(f"<td{css}>{html.escape(text)}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        return (
            f'<table class="grid"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    def left_out(self) -> str:
        frame = self.plan.left_out
        title = f"<h2>{self.say('left_out_title')}</h2>"
        if frame.empty:
            return f"{title}\n<p>{self.say('left_out_none')}</p>"
        shown = frame.head(MAX_LEFT_OUT_ROWS).assign(
            previous_rep_name=[
                self.rep(r) if not _missing(r) else ""
                for r in frame["previous_rep_id"].head(MAX_LEFT_OUT_ROWS)
            ]
        )
        table = self.table(
            shown,
            [Leads.lead_id, "created_at", "age_days", "previous_rep_name"],
            {"created_at": lambda v: f"{v:%Y-%m-%d}"},
        )
        more = len(frame) - len(shown)
        tail = f"<p>{self.say('left_out_more', n=more)}</p>" if more > 0 else ""
        return f"{title}\n<p>{self.say('left_out_note')}</p>\n{table}{tail}"

    def glossary(self) -> str:
        low, high = self.plan.tier_quantiles
        shares = {"top": f"{1 - high:.0%}", "next": f"{high - low:.0%}"}
        blocks = []
        present = {
            "assignments.csv": set(self.plan.assignments.columns),
            "rep_summary.csv": set(self.plan.rep_summary.columns),
            "left_out.csv": set(self.plan.left_out.columns),
        }
        which = 0 if self.lang == "en" else 1
        for name, columns in GLOSSARY.items():
            items = []
            for column, texts in columns.items():
                if column not in present[name]:
                    continue
                shown = column if self.lang == "en" else _zh_header(column)
                items.append(
                    f"<tr><th><code>{html.escape(shown)}</code></th>"
                    f"<td>{html.escape(texts[which].format(**shares))}</td></tr>"
                )
            blocks.append(
                f'<h3>{html.escape(name)}</h3><table class="grid">{"".join(items)}</table>'
            )
        return (
            f"<details><summary>{self.say('glossary_title')}</summary>\n"
            + "\n".join(blocks)
            + "</details>"
        )

    def technical(self) -> str:
        report = self.report
        rows = [("tech_model", report.summary.model_version)]
        signal = report.rep_signal
        if signal:
            low, high = signal["interval_low"], signal["interval_high"]
            verdict = "verdict_signal" if signal["verdict"] == "signal" else "verdict_none"
            rows.append(
                (
                    "tech_signal",
                    self.t["tech_signal_value"].format(
                        verdict=self.t[verdict],
                        gain=signal["gain"],
                        relative=signal["relative_gain"],
                        level=signal["level"],
                        low=low,
                        high=high,
                        leads=signal["n_clusters"],
                    ),
                )
            )
        gap = report.solver_gap
        status = SOLVER_STATUS[self.lang].get(report.solver_status, report.solver_status)
        rows.append(
            (
                "tech_solver",
                self.t["tech_solver_value"].format(
                    status=status, gap="-" if _missing(gap) else f"{gap:.2%}"
                ),
            )
        )
        price = self.plan.price_of_fairness
        rows.append(("tech_price", "-" if price is None else f"{price:.4f}"))
        rows.append(("tech_pairs", f"{report.candidate_pairs:,}"))
        # the plan's own note on the rep signal is said at the top of the page already
        notes = [n for n in self.plan.notes if n and not n.startswith("no reliable rep signal")]
        if notes:
            rows.append(("tech_notes", "; ".join(self.note(n) for n in notes)))
        items = "".join(
            f"<tr><th>{self.say(key)}</th><td>{html.escape(str(value))}</td></tr>"
            for key, value in rows
        )
        return (
            f"<details><summary>{self.say('technical_title')}</summary>"
            f'<table class="grid">{items}</table></details>'
        )

    def notes(self) -> str:
        """The run's notes (what it could not do, or left out), for the manager to read."""
        notes = [n for n in self.report.summary.notes if n]
        if not notes:
            return ""
        items = "".join(f"<li>{html.escape(self.note(n))}</li>" for n in notes)
        return f"<h2>{self.say('notes_title')}</h2>\n<ul>{items}</ul>"

    def note(self, text: str) -> str:
        """``text`` in the report's language (known notes), else as it is."""
        for pattern, english, chinese in NOTES:
            found = re.fullmatch(pattern, text)
            if found:
                template = chinese if self.lang == "zh" else english
                return template.format(**found.groupdict()) if template else text
        return text


def _zh_header(column: str) -> str:
    from pipelines.outputs import ZH_HEADERS

    return ZH_HEADERS.get(column, column)


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _num(value: object) -> float:
    return 0.0 if _missing(value) else float(value)


def _signed_pct(share: float) -> str:
    """A signed share in percent with one decimal ("+31.2%"); "0%" when it rounds to nothing."""
    return "0%" if round(share, 3) == 0 else f"{share:+.1%}"


def _pct(value: object) -> str:
    """A percentage (already in percent) with one decimal; empty when missing."""
    return "" if _missing(value) else f"{float(value):.1f}%"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","PingFang SC",
"Microsoft YaHei",sans-serif;margin:16px;color:#222;max-width:1200px;line-height:1.45}
h1{font-size:22px;margin:0 0 8px} h2{font-size:17px;margin:22px 0 6px} h3{font-size:15px}
p,li,td,th,dd{font-size:14px}
.kpis{display:flex;gap:10px;flex-wrap:wrap;margin:10px 0}
.kpi{background:#f3f6fa;border-radius:6px;padding:8px 10px;flex:1 1 auto;min-width:90px;
font-size:13px} .kpi b{display:block;font-size:20px;white-space:nowrap}
table.grid{border-collapse:collapse} table.grid td,table.grid th{padding:3px 8px;
border-bottom:1px solid #e3e7ee;text-align:left;vertical-align:top} td.num{text-align:right}
.legend{font-size:13px;margin:4px 0} .key{margin-right:16px;white-space:nowrap}
.sw{display:inline-block;width:14px;height:10px;margin-right:5px;vertical-align:middle}
.sw.bar,.chart .bar{background:#2f6db3;fill:#2f6db3}
.sw.stack,.chart .stack{background:#9dbfe6;fill:#9dbfe6}
.sw.top,.chart .top{background:#e0892b;fill:#e0892b}
.sw.band,.chart .band{background:#dfe8f3;fill:#dfe8f3}
.sw.outline{border:1.5px solid #555;height:8px;width:12px}
.chart .outline{fill:none;stroke:#555;stroke-width:1.2}
.sw.mark{border-left:3px solid #222;width:3px}
.chart .mark{stroke:#222;stroke-width:3}
.chart .axis{stroke:#999}
.chart text{font-size:12px;fill:#222}
.chart{max-width:100%;height:auto}
details{margin-top:14px} summary{cursor:pointer;font-weight:600}
"""
