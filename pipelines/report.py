"""The one-page HTML report of a nightly run: self-contained, charts embedded as PNG."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class RecommendSummary:
    """The figures of one nightly run (what `leadmatch recommend` prints and the report shows)."""

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


@dataclass(frozen=True)
class RunReport:
    """Everything the report shows: the run's ``summary``, the model's ``rep_signal`` sentence,
    ``rep_summary`` (the columns of ``rep_summary.csv``) and ``tier_by_group`` (one row per
    tenure group with ``group``, ``top_tier_leads``, ``share``)."""

    summary: RecommendSummary
    rep_signal: str
    rep_summary: pd.DataFrame
    tier_by_group: pd.DataFrame
    band: float
    violations: list[str] = field(default_factory=list)
    solver: str = ""


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _share_chart(report: RunReport):
    from matplotlib.figure import Figure

    reps = report.rep_summary.loc[report.rep_summary["available"]].sort_values("rep_id")
    fig = Figure(figsize=(9, 3.2))
    ax = fig.add_subplot()
    x = range(len(reps))
    fair = reps["fair_share"].to_numpy()
    ax.bar(
        x,
        2 * report.band * fair,
        bottom=(1 - report.band) * fair,
        color="#dfe8f3",
        width=0.9,
        label="fair band",
    )
    ax.bar(x, reps["value_share"], color="#2f6db3", width=0.5, label="value share today")
    ax.set_xticks(list(x), reps["rep_id"], rotation=90, fontsize=7)
    ax.set_ylabel("share of expected value")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Value share per rep against the fair band", fontsize=10)
    fig.tight_layout()
    return fig


def _tier_chart(report: RunReport):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3.2))
    ax = fig.add_subplot()
    groups = report.tier_by_group
    ax.bar(groups["group"].astype(str), groups["top_tier_leads"], color="#e0892b")
    ax.set_ylabel("tier A leads today")
    ax.set_title("Top-tier leads by tenure group", fontsize=10)
    fig.tight_layout()
    return fig


def render_report(report: RunReport) -> str:
    """The report as one HTML page (no external resources)."""
    run = report.summary
    lift = run.expected_wins - run.expected_wins_round_robin
    rel = lift / run.expected_wins_round_robin if run.expected_wins_round_robin else 0.0
    esc = html.escape
    signal_line = (
        "The model found a reliable difference between reps; assignments use it."
        if run.rep_signal_used
        else "The history shows no reliable difference between reps: leads were shared to balance value "
        "and load only, not by predicted win rate."
    )
    violations = (
        "".join(f"<li>{esc(v)}</li>" for v in report.violations)
        if report.violations
        else "<li>None: every fairness rule held.</li>"
    )
    pof = "-" if run.price_of_fairness is None else f"{run.price_of_fairness:.2f} expected wins"
    table = report.rep_summary[
        [
            "rep_id",
            "rep_name",
            "capacity",
            "assigned",
            "tier_A",
            "expected_wins",
            "value_share",
            "fair_share",
        ]
    ].to_html(index=False, float_format=lambda v: f"{v:.2f}", classes="reps", border=0)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>leadmatch {esc(run.run_date)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:16px;color:#222;max-width:1200px}}
h1{{font-size:20px;margin:0 0 8px}} .kpis{{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}}
.kpi{{background:#f3f6fa;border-radius:6px;padding:8px 12px;min-width:120px}}
.kpi b{{display:block;font-size:20px}} .charts{{display:flex;gap:8px;flex-wrap:wrap}}
table.reps{{border-collapse:collapse;font-size:12px}} table.reps td,table.reps th{{padding:2px 6px;text-align:right}}
details{{margin-top:8px}} p,li{{font-size:14px}}
</style></head><body>
<h1>Lead assignment for {esc(run.run_date)}</h1>
<div class="kpis">
<div class="kpi">placed<b>{run.placed}</b></div>
<div class="kpi">held<b>{run.held}</b></div>
<div class="kpi">reclaimed<b>{run.reclaimed}</b></div>
<div class="kpi">expected wins<b>{run.expected_wins:.1f}</b></div>
<div class="kpi">vs round-robin<b>{lift:+.1f} ({rel:+.1%})</b></div>
<div class="kpi">price of fairness<b>{pof}</b></div>
</div>
<p>{esc(signal_line)} Model version {esc(run.model_version)}; {esc(report.rep_signal)}.
{run.too_old} leads older than the maximum age were left out. {esc(report.solver)}</p>
<div class="charts">
<img alt="value share per rep against the fair band" src="data:image/png;base64,{_png(_share_chart(report))}">
<img alt="top-tier leads by tenure group" src="data:image/png;base64,{_png(_tier_chart(report))}">
</div>
<h2 style="font-size:16px">Fairness rules that did not fully hold</h2><ul>{violations}</ul>
<details><summary>Per-rep table</summary>{table}</details>
</body></html>
"""
