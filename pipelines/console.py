"""What the command line prints besides plain lines: problem tables, key-value tables, the label
of a training target and the backtest table, on stdout (``console``) or stderr (``err_console``)."""

from __future__ import annotations

import io
import math
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def print_problems(problems: Any, limit: int = 100) -> None:
    """A table of data problems (at most ``limit`` rows) on stderr, and what to do about them."""
    n = len(problems)
    table = Table(title=f"{n} problem{'s' if n != 1 else ''} found", title_justify="left")
    for column in problems.columns:
        table.add_column(str(column), overflow="fold")
    for row in problems.head(limit).itertuples(index=False):
        # Cells are data, not markup: a value such as "[red]" is shown as written.
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    err_console.print(table)
    if n > limit:
        err_console.print(f"... and {n - limit} more")
    err_console.print("Fix these rows in the files named above and run the command again.")


def print_mapping(title: str, values: dict[str, object]) -> None:
    """A titled two-column table of named values (floats to 3 decimals, None as -)."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in values.items():
        if isinstance(value, float):
            value = f"{value:.3f}"
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)


def print_label(lines: list[str]) -> None:
    """The training target (first line) and how the history's outcomes fall under it."""
    if lines:
        console.print(f"[bold]{escape(lines[0][0].upper() + lines[0][1:])}[/]")
        for line in lines[1:]:
            console.print(f"  - {escape(line)}")


BACKTEST_COLUMNS = {
    "expected_wins": ("expected wins", "{:.1f}"),
    "lift_vs_round_robin": ("lift over round robin", "{:+.1%}"),
    "oracle_lift_captured": ("share of the oracle's lift", "{:.0%}"),
    "price_of_fairness": ("price of fairness", "{:.2f}"),
    "hard_violations": ("hard limits broken", "{:.0f}"),
    "soft_violations": ("soft limits missed", "{:.0f}"),
    "unreachable_violations": ("soft limits out of reach", "{:.0f}"),
    "max_value_share_deviation": ("largest share deviation", "{:.1%}"),
}
"""Headers (in words that wrap) and formats of the backtest table's columns."""


def print_backtest_table(frame: Any) -> None:
    """The backtest table, readable in 100 columns: names whole, numbers formatted, headers
    wrapped; on a narrower screen one block per row instead."""

    def cell(value: object, spec: str | None) -> str:
        if isinstance(value, float) and math.isnan(value):
            return "-"
        if spec is not None and isinstance(value, int | float):
            return spec.format(value)
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    columns = [str(c) for c in frame.columns]
    headers = [BACKTEST_COLUMNS.get(c, (c.replace("_", " "), None)) for c in columns]
    rows = [
        [cell(v, spec) for v, (_, spec) in zip(row, headers, strict=True)]
        for row in frame.itertuples(index=False)
    ]
    table = Table(
        title="backtest",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for i, (header, _) in enumerate(headers):
        widest = max([len(word) for word in header.split()] + [len(r[i]) for r in rows])
        table.add_column(header, justify="left" if i == 0 else "right", width=widest)
    for row in rows:
        table.add_row(*(Text(value) for value in row))
    wide = Console(file=io.StringIO(), width=10_000)
    wide.print(table)
    if max(len(line.rstrip()) for line in wide.file.getvalue().splitlines()) <= console.width:
        console.print(table)
        return
    console.print("backtest")
    for row in rows:
        console.print(row[0], markup=False, highlight=False)
        for (header, _), value in zip(headers[1:], row[1:], strict=True):
            console.print(f"  {header}: {value}", markup=False, highlight=False)
