"""Fairness of an assignment over the rolling window, and the soft constraints it breaks.

Works for any assignment (the optimiser's, a baseline's, or a manager's): :func:`measure`
takes a prepared day and a choice, :func:`fairness_metrics` a plain assignments frame.
:class:`RollingWindow` is the one record of what each rep received over the previous days,
shared by the nightly run (fed from the CRM) and the backtest (fed from each replayed run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.schemas import Leads, Reps
from matching.config import FairnessConstraints, MatchingConfig
from matching.day import Day, prepare
from matching.eligibility import Cause
from matching.optimiser import AssignmentProblem, FairnessTerms, Slacks, slacks_of


@dataclass(frozen=True)
class SoftViolation:
    """One soft constraint outside its limit.

    constraint: "value_share_min", "value_share_max", "new_rep_quota" or "top_tier_max";
    rep_id: the rep (None for the team-wide quota); size: how far outside, in ``unit``
    ("value" or "top-tier leads"); penalty: what it cost in the objective.
    """

    constraint: str
    rep_id: str | None
    size: float
    unit: str
    penalty: float


WINDOW_COLUMNS = ["day", Reps.rep_id, "value_received", "top_tier_received", "capacity_days"]


@dataclass(frozen=True)
class RollingWindow:
    """What each rep received over the last ``days`` days before a run: the window of the
    value-share and top-tier constraints (``history`` of :func:`matching.match`).

    ``rows``: day (when it was received or worked), rep_id, value_received (the worth of what
    was received, value(l) * b(l) as :func:`matching.day.prepare` counts it),
    top_tier_received (tier-A leads), capacity_days (lead slots the rep worked that day). One
    row may hold one lead, one rep's capacity of one day, or a rep's totals of one run: the
    window only adds them up. Immutable: :meth:`add` returns a new window.
    """

    days: int
    rows: pd.DataFrame

    @classmethod
    def empty(cls, days: int) -> RollingWindow:
        """A window of ``days`` days that holds nothing yet."""
        if days < 0:
            raise ValueError(f"a fairness window cannot be {days} days long")
        rows = pd.DataFrame({c: pd.Series(dtype=float) for c in WINDOW_COLUMNS})
        return cls(days, rows.astype({"day": "datetime64[ns]", Reps.rep_id: "str"}))

    @classmethod
    def of(cls, days: int, given: pd.DataFrame, capacity: pd.DataFrame) -> RollingWindow:
        """The window from what reps were given and when they worked.

        ``given``: one row per hand-over (at, rep_id, worth, top_tier): a lead counts for the
        rep who was given it, on the day it was given. ``capacity``: one row per rep and
        working day (day, rep_id, capacity).
        """
        received = pd.DataFrame(
            {
                "day": pd.to_datetime(given["at"]).dt.normalize(),
                Reps.rep_id: given[Reps.rep_id].astype("str"),
                "value_received": given["worth"].astype(float),
                "top_tier_received": given["top_tier"].astype(float),
                "capacity_days": 0.0,
            }
        )
        worked = pd.DataFrame(
            {
                "day": pd.to_datetime(capacity["day"]).dt.normalize(),
                Reps.rep_id: capacity[Reps.rep_id].astype("str"),
                "value_received": 0.0,
                "top_tier_received": 0.0,
                "capacity_days": capacity["capacity"].astype(float),
            }
        )
        return cls.empty(days).add(pd.concat([received, worked], ignore_index=True))

    def add(self, rows: pd.DataFrame) -> RollingWindow:
        """This window with ``rows`` (the :data:`WINDOW_COLUMNS`) added; rows that can no
        longer fall inside a window ending after their latest day are dropped."""
        rows = rows[WINDOW_COLUMNS]
        combined = rows if self.rows.empty else pd.concat([self.rows, rows], ignore_index=True)
        if combined.empty:
            return self
        oldest = combined["day"].max() - pd.Timedelta(days=self.days)
        return RollingWindow(
            self.days, combined.loc[combined["day"] >= oldest].reset_index(drop=True)
        )

    def add_run(self, day: pd.Timestamp, rep_summary: pd.DataFrame) -> RollingWindow:
        """This window with one matching run of ``day`` added: its ``rep_summary``
        (:class:`~matching.schemas.RepSummary`: value_received, top_tier_received, capacity)."""
        return self.add(
            pd.DataFrame(
                {
                    "day": pd.Timestamp(day),
                    Reps.rep_id: rep_summary[Reps.rep_id].astype("str"),
                    "value_received": rep_summary["value_received"].astype(float),
                    "top_tier_received": rep_summary["top_tier_received"].astype(float),
                    "capacity_days": rep_summary["capacity"].astype(float),
                }
            )
        )

    def history(self, day: pd.Timestamp) -> pd.DataFrame | None:
        """Totals per rep over the ``days`` days before ``day`` (from ``day - days`` up to,
        not including, ``day``): rep_id, value_received, top_tier_received, capacity_days (a
        :class:`~matching.schemas.RepHistory` frame), or None when nothing falls inside."""
        day = pd.Timestamp(day)
        inside = (self.rows["day"] >= day - pd.Timedelta(days=self.days)) & (self.rows["day"] < day)
        if not inside.any():
            return None
        totals = self.rows.loc[inside, WINDOW_COLUMNS[1:]]
        return totals.groupby(Reps.rep_id, as_index=False, sort=True).sum()


def lead_worth(
    candidates: pd.DataFrame,
    leads: pd.DataFrame,
    reps_today: pd.DataFrame,
    config: MatchingConfig,
) -> pd.DataFrame:
    """What each lead counts for in the window, as the matching counts a lead placed that day:
    worth = value(l) * b(l) (b: the baseline win probability over the lead's eligible reps with
    capacity that day) and its tier among ``leads``. The frames are those of
    :func:`matching.match` for the day the leads were given. Returns lead_id, worth (0 where
    no rep was scored), top_tier (bool).
    """
    day = prepare(candidates, leads, reps_today, config)
    return pd.DataFrame(
        {
            Leads.lead_id: day.lead_ids.astype(str),
            "worth": day.lead_value,
            "top_tier": day.tier == "A",
        }
    )


@dataclass(frozen=True)
class Window:
    """Per rep of the day (R,): what it holds over the window after today's assignment.

    working: capacity today > 0 (only these reps count in shares); used: leads assigned
    today; value_today / top_today: lead value and tier-A leads received today; value and
    top: window totals; fair_share: share of the window's capacity (0 if not working);
    low / high: the value band; top_cap: the tier-A cap; quota: the ramping reps' tier-A
    floor; ramp_top: tier-A leads the ramping reps hold.
    """

    terms: FairnessTerms
    working: np.ndarray
    used: np.ndarray
    value_today: np.ndarray
    top_today: np.ndarray
    value: np.ndarray
    top: np.ndarray
    fair_share: np.ndarray
    low: np.ndarray
    high: np.ndarray
    top_cap: float
    quota: float
    ramp_top: float
    slacks: Slacks


def problem_of(
    day: Day, pairs: np.ndarray, fairness: FairnessConstraints | None = None
) -> tuple[AssignmentProblem, FairnessTerms, np.ndarray]:
    """The optimiser's problem over ``pairs`` (day pair positions, assignable, sorted) and
    its fairness terms; also the day-rep position of each problem rep (working reps)."""
    working = np.flatnonzero(day.capacity > 0)
    position = np.full(day.n_reps, -1)
    position[working] = np.arange(len(working))
    problem = AssignmentProblem(
        lead=day.lead[pairs],
        rep=position[day.rep[pairs]],
        score=day.score[pairs],
        lead_value=day.lead_value,
        top_tier=day.tier == "A",
        capacity=day.capacity[working],
        ramp=day.ramp[working],
        history_value=day.history_value[working],
        history_top_tier=day.history_top_tier[working],
        history_capacity=day.history_capacity[working],
    )
    terms = FairnessTerms.of(problem, fairness if fairness is not None else day.config.fairness)
    return problem, terms, working


def window(day: Day, choice: np.ndarray) -> Window:
    """The window state of ``choice`` ((n,) day pair per lead, -1 held)."""
    assigned = np.flatnonzero(choice >= 0)
    pairs = np.sort(choice[assigned])
    # a rep without capacity today is outside the window's shares (a hard violation anyway)
    pairs = pairs[day.capacity[day.rep[pairs]] > 0]
    problem, terms, working = problem_of(day, pairs)
    local = np.full(day.n_leads, -1)
    local[day.lead[pairs]] = np.arange(len(pairs))
    slacks = slacks_of(problem, terms, local)
    R = day.n_reps
    reps = day.rep[choice[assigned]]
    used = np.bincount(reps, minlength=R)
    value_today = np.bincount(reps, day.lead_value[assigned], R)
    top_today = np.bincount(reps, (day.tier[assigned] == "A").astype(float), R)
    is_working = day.capacity > 0
    value = np.where(is_working, day.history_value + value_today, 0.0)
    top = np.where(is_working, day.history_top_tier + top_today, 0.0)
    share = np.zeros(R)
    share[working] = terms.fair_share
    total, total_top = value.sum(), top.sum()
    return Window(
        terms=terms,
        working=is_working,
        used=used,
        value_today=value_today,
        top_today=top_today,
        value=value,
        top=top,
        fair_share=share,
        low=(1 - terms.band) * share * total,
        high=(1 + terms.band) * share * total,
        top_cap=terms.max_share * total_top,
        quota=terms.min_share * total_top,
        ramp_top=float(top[day.ramp & is_working].sum()),
        slacks=slacks,
    )


def soft_violations(day: Day, state: Window, tol: float = 1e-9) -> list[SoftViolation]:
    """Every soft constraint the assignment leaves outside its limit, largest first by penalty."""
    t, s = state.terms, state.slacks
    working = np.flatnonzero(state.working)
    out = []
    for name, sizes, unit, weight in [
        ("value_share_min", s.value_low, "value", t.value_penalty),
        ("value_share_max", s.value_high, "value", t.value_penalty),
        ("top_tier_max", s.top_cap, "top-tier leads", t.cap_penalty),
    ]:
        for k in np.flatnonzero(sizes > tol):
            rep_id = str(day.rep_ids[working[k]])
            out.append(SoftViolation(name, rep_id, float(sizes[k]), unit, float(weight * sizes[k])))
    if s.ramp > tol:
        out.append(
            SoftViolation(
                "new_rep_quota",
                None,
                float(s.ramp),
                "top-tier leads",
                float(t.ramp_penalty * s.ramp),
            )
        )
    return sorted(out, key=lambda v: (-v.penalty, v.constraint, v.rep_id or ""))


@dataclass(frozen=True)
class FairnessReport:
    """Fairness of one assignment over the window.

    per_rep: rep_id, working, ramp_up, capacity, assigned, value_today, window_value,
        fair_share, value_share, share_ratio, top_tier_today, window_top_tier, top_tier_share.
    by_tenure: group ("ramp-up" / "established"), reps, capacity_share, top_tier_share.
    gini_value_per_capacity: Gini coefficient of window value per window capacity over the
        working reps (0 = perfectly even). max_value_share, max_top_tier_share: the largest
        rep shares. hard_violations: lead_id, rep_id, violation (must be empty).
    soft_violations: see :class:`SoftViolation`.
    """

    per_rep: pd.DataFrame
    by_tenure: pd.DataFrame
    gini_value_per_capacity: float
    max_value_share: float
    max_top_tier_share: float
    hard_violations: pd.DataFrame
    soft_violations: list[SoftViolation]


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative ``values`` (0: all equal; near 1: one holds all)."""
    x = np.sort(np.asarray(values, dtype=float))
    n, total = len(x), x.sum()
    if n == 0 or total <= 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * total))


def _share(part: np.ndarray, total: float) -> np.ndarray:
    return part / total if total > 0 else np.full(len(part), np.nan)


def measure(day: Day, choice: np.ndarray, hard: pd.DataFrame | None = None) -> FairnessReport:
    """Fairness metrics of ``choice`` on ``day`` (hard: violations found by the caller)."""
    state = window(day, choice)
    working = state.working
    capacity_window = np.where(working, day.history_capacity + day.capacity, 0.0)
    value_share = _share(state.value, state.value.sum())
    top_share = _share(state.top, state.top.sum())
    per_rep = pd.DataFrame(
        {
            Reps.rep_id: day.rep_ids.astype(str),
            "working": working,
            "ramp_up": day.ramp,
            "capacity": day.capacity,
            "assigned": state.used,
            "value_today": state.value_today,
            "window_value": state.value,
            "fair_share": state.fair_share,
            "value_share": value_share,
            "share_ratio": np.where(
                state.fair_share > 0,
                value_share / np.where(state.fair_share > 0, state.fair_share, 1),
                np.nan,
            ),
            "top_tier_today": state.top_today.astype(int),
            "window_top_tier": state.top,
            "top_tier_share": top_share,
        }
    )
    groups = []
    for name, mask in [("ramp-up", day.ramp & working), ("established", ~day.ramp & working)]:
        groups.append(
            {
                "group": name,
                "reps": int(mask.sum()),
                "capacity_share": float(_share(capacity_window, capacity_window.sum())[mask].sum())
                if working.any()
                else np.nan,
                "top_tier_share": float(top_share[mask].sum()) if state.top.sum() > 0 else np.nan,
            }
        )
    per_capacity = state.value[working] / np.maximum(capacity_window[working], 1e-12)
    if hard is None:
        hard = hard_violations(day, choice)
    return FairnessReport(
        per_rep=per_rep,
        by_tenure=pd.DataFrame(groups),
        gini_value_per_capacity=gini(per_capacity),
        max_value_share=float(np.nanmax(value_share))
        if working.any() and state.value.sum() > 0
        else 0.0,
        max_top_tier_share=float(np.nanmax(top_share))
        if working.any() and state.top.sum() > 0
        else 0.0,
        hard_violations=hard,
        soft_violations=soft_violations(day, state),
    )


def hard_violations(day: Day, choice: np.ndarray) -> pd.DataFrame:
    """Ineligible pairs and reps over capacity in ``choice`` (lead_id, rep_id, violation)."""
    rows = []
    assigned = np.flatnonzero(choice >= 0)
    pairs = choice[assigned]
    for k in np.flatnonzero(day.cause[pairs] != Cause.ELIGIBLE):
        j = pairs[k]
        cause = Cause(day.cause[j]).label
        rows.append((day.lead_ids[day.lead[j]], day.rep_ids[day.rep[j]], f"ineligible ({cause})"))
    used = np.bincount(day.rep[pairs], minlength=day.n_reps)
    for r in np.flatnonzero(used > day.capacity):
        rows.append((None, day.rep_ids[r], f"over capacity ({used[r]} > {day.capacity[r]})"))
    return pd.DataFrame(rows, columns=[Leads.lead_id, Reps.rep_id, "violation"]).astype(object)


def fairness_metrics(
    assignments: pd.DataFrame,
    candidates: pd.DataFrame,
    leads: pd.DataFrame,
    reps_today: pd.DataFrame,
    config: MatchingConfig | None = None,
    *,
    history: pd.DataFrame | None = None,
    pins: pd.DataFrame | None = None,
    exclusions: pd.DataFrame | None = None,
    account_owners: pd.DataFrame | None = None,
    rep_signal: bool = True,
) -> FairnessReport:
    """Fairness of any assignment given as a frame (lead_id, rep_id; rep_id null = held).

    The other arguments are those of :func:`matching.match`. A pair that was never scored
    (not in candidates) or a lead given twice is reported as a hard violation.
    """
    day = prepare(
        candidates,
        leads,
        reps_today,
        config or MatchingConfig(),
        history=history,
        pins=pins,
        exclusions=exclusions,
        account_owners=account_owners,
        rep_signal=rep_signal,
    )
    given = assignments.loc[assignments[Reps.rep_id].notna(), [Leads.lead_id, Reps.rep_id]].astype(
        str
    )
    n_reps = max(day.n_reps, 1)
    lead = pd.Index(day.lead_ids).get_indexer(given[Leads.lead_id])
    rep = pd.Index(day.rep_ids).get_indexer(given[Reps.rep_id])
    pair = np.full(len(given), -1)
    known = (lead >= 0) & (rep >= 0)
    keys = day.lead * n_reps + day.rep
    at = np.searchsorted(keys, lead[known] * n_reps + rep[known])
    at = np.minimum(at, max(len(keys) - 1, 0))
    found = (
        np.zeros(known.sum(), bool)
        if len(keys) == 0
        else keys[at] == lead[known] * n_reps + rep[known]
    )
    pair[np.flatnonzero(known)[found]] = at[found]
    problems = [
        (lid, rid, "not a scored candidate pair")
        for lid, rid in given.loc[pair < 0].itertuples(index=False)
    ]
    twice = given[Leads.lead_id].duplicated(keep="first").to_numpy()
    problems += [
        (lid, rid, "lead assigned more than once")
        for lid, rid in given.loc[twice].itertuples(index=False)
    ]
    choice = np.full(day.n_leads, -1)
    ok = (pair >= 0) & ~twice
    choice[lead[ok]] = pair[ok]
    hard = hard_violations(day, choice)
    if problems:
        hard = pd.concat([hard, pd.DataFrame(problems, columns=hard.columns)], ignore_index=True)
    return measure(day, choice, hard)
