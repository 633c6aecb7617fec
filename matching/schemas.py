"""Pandera models of what the matching takes and returns.

Inputs are validated (and coerced) on entry by :func:`validated`, which turns every failure
into one ``ValueError`` that names the offending rows; the engine then checks what spans
tables (unknown leads or reps, pins to ineligible reps).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

ACTIONS = ("assign", "hold")
TIERS = ("A", "B", "C")


class Candidates(pa.DataFrameModel):
    """Scored candidate pairs: one row per (lead, rep), with the pair model's win probability."""

    lead_id: Series[str] = pa.Field()
    rep_id: Series[str] = pa.Field()
    p_win: Series[float] = pa.Field(ge=0, le=1)

    class Config:
        coerce = True
        strict = False
        unique = ["lead_id", "rep_id"]


class MatchLeads(pa.DataFrameModel):
    """The leads to place today (canonical lead columns; only lead_id is required).

    created_at orders arrivals (round-robin and greedy baselines); region, industry, product,
    source and language feed the eligibility rules; expected_value the revenue objective;
    account_id the account continuity; previous_rep_id and days_without_contact describe a
    lead reclaimed from a rep who did not contact it.
    """

    lead_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    created_at: Series[pd.Timestamp] | None = pa.Field(nullable=True)
    region: Series[str] | None = pa.Field(nullable=True)
    industry: Series[str] | None = pa.Field(nullable=True)
    product: Series[str] | None = pa.Field(nullable=True)
    source: Series[str] | None = pa.Field(nullable=True)
    language: Series[str] | None = pa.Field(nullable=True)
    account_id: Series[str] | None = pa.Field(nullable=True)
    expected_value: Series[float] | None = pa.Field(ge=0, nullable=True)
    previous_rep_id: Series[str] | None = pa.Field(nullable=True)
    days_without_contact: Series[float] | None = pa.Field(ge=0, nullable=True)

    class Config:
        coerce = True
        strict = False


class RepsToday(pa.DataFrameModel):
    """Each rep's state on the run day (``features.daily.rep_day`` builds it).

    capacity is today's (0 when absent); open_load the open leads held at the start of the
    day; max_open_leads an optional cap on open leads; skills and languages ';'-separated.
    """

    rep_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    active: Series[bool] = pa.Field()
    available: Series[bool] = pa.Field()
    capacity: Series[int] = pa.Field(ge=0)
    open_load: Series[int] = pa.Field(ge=0)
    max_open_leads: Series[pd.Int64Dtype] | None = pa.Field(ge=0, nullable=True)
    tenure_days: Series[float] = pa.Field(ge=0)
    skills: Series[str] | None = pa.Field(nullable=True)
    region: Series[str] | None = pa.Field(nullable=True)
    languages: Series[str] | None = pa.Field(nullable=True)

    class Config:
        coerce = True
        strict = False


class RepHistory(pa.DataFrameModel):
    """What each rep received on the previous days of the fairness window (sums over days).

    value_received: value of the leads received (sum of ``rep_summary.value_received``);
    top_tier_received: tier-A leads received; capacity_days: sum of the rep's daily capacity
    (lead slots). Reps missing from the frame received nothing.
    """

    rep_id: Series[str] = pa.Field(unique=True)
    value_received: Series[float] = pa.Field(ge=0)
    top_tier_received: Series[float] = pa.Field(ge=0)
    capacity_days: Series[float] = pa.Field(ge=0)

    class Config:
        coerce = True
        strict = False


class Pins(pa.DataFrameModel):
    """Manager pins: the lead must go to this rep (at most one pin per lead)."""

    lead_id: Series[str] = pa.Field(unique=True)
    rep_id: Series[str] = pa.Field()

    class Config:
        coerce = True
        strict = False


class Exclusions(pa.DataFrameModel):
    """Pairs that must not be matched (e.g. the rep who dropped a reclaimed lead)."""

    lead_id: Series[str] = pa.Field()
    rep_id: Series[str] = pa.Field()

    class Config:
        coerce = True
        strict = False


class AccountOwners(pa.DataFrameModel):
    """The rep who owns each account (for account continuity)."""

    account_id: Series[str] = pa.Field(unique=True)
    rep_id: Series[str] = pa.Field()

    class Config:
        coerce = True
        strict = False


class MatchAssignments(pa.DataFrameModel):
    """The matching's answer: one row per lead, in arrival order.

    action "assign" (rep_id set) or "hold" (no rep has capacity or none is eligible; reason
    says which). p_win: the chosen pair's win probability; p_baseline: b(l); uplift:
    value * (p_win - p_baseline) (0 without a reliable rep signal); expected_value:
    value * p_win (expected wins, or revenue); rank_for_lead: the chosen rep's rank among the
    lead's eligible reps by p_win (1 = best); uplift_lost: uplift of best_rep_id minus that of
    the chosen rep; reason_code: ';'-separated codes of :data:`matching.explain.REASONS`,
    reason_params: their parameters as a JSON object, reason: the English sentence; binding:
    ';'-separated constraints that bound the choice (e.g. ``capacity:R3``).
    """

    lead_id: Series[str] = pa.Field(unique=True)
    action: Series[str] = pa.Field(isin=list(ACTIONS))
    rep_id: Series[str] = pa.Field(nullable=True)
    p_win: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    p_baseline: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    uplift: Series[float] = pa.Field(nullable=True)
    expected_value: Series[float] = pa.Field(nullable=True, ge=0)
    tier: Series[str] = pa.Field(nullable=True, isin=list(TIERS))
    rank_for_lead: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1)
    best_rep_id: Series[str] = pa.Field(nullable=True)
    uplift_lost: Series[float] = pa.Field(nullable=True)
    reason_code: Series[str] = pa.Field()
    reason_params: Series[str] = pa.Field()
    reason: Series[str] = pa.Field()
    binding: Series[str] = pa.Field()

    class Config:
        strict = True


class RepSummary(pa.DataFrameModel):
    """One row per rep of ``reps_today``: what it received today and its window shares.

    capacity: effective capacity today (after absences and open-load limits); assigned and
    tier_A/B/C: leads received; expected_wins: sum of p_win; expected_value: sum of value *
    p_win; value_received: sum of the leads' baseline value (what fairness measures; append
    it with top_tier_received and capacity to tomorrow's history); window_value_share and
    fair_share: the rep's share of the window's lead value and of its capacity; share_ratio:
    their ratio; window_top_tier_share: share of the window's tier-A leads.
    """

    rep_id: Series[str] = pa.Field(unique=True)
    capacity: Series[int] = pa.Field(ge=0)
    assigned: Series[int] = pa.Field(ge=0)
    tier_A: Series[int] = pa.Field(ge=0)
    tier_B: Series[int] = pa.Field(ge=0)
    tier_C: Series[int] = pa.Field(ge=0)
    capacity_use: Series[float] = pa.Field(nullable=True, ge=0)
    expected_wins: Series[float] = pa.Field(ge=0)
    expected_value: Series[float] = pa.Field(ge=0)
    value_received: Series[float] = pa.Field(ge=0)
    top_tier_received: Series[int] = pa.Field(ge=0)
    ramp_up: Series[bool] = pa.Field()
    fair_share: Series[float] = pa.Field(ge=0, le=1)
    window_value_share: Series[float] = pa.Field(nullable=True, ge=0)
    share_ratio: Series[float] = pa.Field(nullable=True, ge=0)
    window_top_tier_share: Series[float] = pa.Field(nullable=True, ge=0)

    class Config:
        strict = True


def validated(model: type[pa.DataFrameModel], frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``frame`` validated and coerced by ``model``; a ``ValueError`` naming the failing rows.

    The message reads e.g. ``candidates: column 'p_win' failed 'not_nullable' for 1 row(s):
    lead_id=L1, rep_id=R2 (value nan)``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    frame = frame.reset_index(drop=True)
    try:
        return model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        raise ValueError(f"{name}: " + _describe(err.failure_cases, frame)) from None


def _describe(failures: pd.DataFrame, frame: pd.DataFrame, limit: int = 5) -> str:
    keys = [c for c in ("lead_id", "rep_id", "account_id") if c in frame.columns]
    lines = []
    for (column, check), rows in failures.groupby(["column", "check"], sort=False, dropna=False):
        index = rows["index"].dropna()
        where = []
        for i, value in zip(
            index.head(limit), rows.loc[index.head(limit).index, "failure_case"], strict=True
        ):
            ids = (
                ", ".join(f"{k}={frame[k].iloc[int(i)]}" for k in keys) if keys else f"row {int(i)}"
            )
            where.append(f"{ids} (value {value})")
        more = f" and {len(index) - limit} more" if len(index) > limit else ""
        found = f" for {len(index)} row(s): " + "; ".join(where) + more if len(index) else ""
        lines.append(f"column {column!r} failed {check!r}{found}")
    return "\n".join(lines)
