"""The matching entry points: :func:`match` and :func:`candidate_pairs`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from features.schemas import Leads, Reps
from matching.config import FairnessConstraints, MatchingConfig
from matching.day import Day, prepare
from matching.eligibility import Cause, Eligibility
from matching.explain import explain
from matching.fairness import FairnessReport, SoftViolation, Window, measure, problem_of, window
from matching.optimiser import TIME_LIMIT, Optimiser, Solution
from matching.policies import BASELINES
from matching.schemas import (
    AccountOwners,
    Exclusions,
    MatchAssignments,
    MatchLeads,
    Pins,
    RepsToday,
    RepSummary,
    validated,
)

POLICIES = ("round_robin", "weighted_round_robin", "greedy", "no_fairness", "leadmatch")
# Extra candidate leads per rep, as a multiple of its capacity (see shortlist).
_REACH = 2
# Rounds of adding back held leads' pairs that fell outside the top-k.
_HOLD_ROUNDS = 3


@dataclass(frozen=True)
class MatchDiagnostics:
    """How the matching went.

    policy; status: "optimal" (gap within the solver's target), "feasible" (gap above it),
    "heuristic" (a baseline policy: no bound) or "empty"; objective: expected value (wins or
    revenue) minus the penalties of the fairness constraints the policy applies (none for
    baselines and "no_fairness"); bound, gap: upper bound and relative gap (nan for
    baselines); soft_violations are always measured against the configured constraints;
    solve_seconds (whole call) and phase_seconds: wall-clock timings, for tracking only (they
    never decide the answer); n_leads, n_assigned, n_held; n_pairs: candidate pairs given;
    n_candidates: pairs the optimiser considered; n_fractional: leads fractional in the LP;
    method: how the optimiser solved; limits_reached: the solver limits
    (:class:`~matching.config.SolverSettings` field names) that stopped one of its phases;
    expected_value: sum of value * p_win over assignments (the objective's worth);
    expected_wins: sum of p_win; total_uplift: sum of uplift; soft_violations;
    price_of_fairness: expected value of the optimum without fairness minus this one's
    (leadmatch only, when configured); rep_signal_used; notes: plain-language remarks.
    """

    policy: str
    status: str
    objective: float
    bound: float
    gap: float
    solve_seconds: float
    n_leads: int
    n_assigned: int
    n_held: int
    n_pairs: int
    n_candidates: int
    n_fractional: int
    method: str
    expected_value: float
    expected_wins: float
    total_uplift: float
    soft_violations: list[SoftViolation]
    price_of_fairness: float | None
    rep_signal_used: bool
    notes: list[str] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    limits_reached: tuple[str, ...] = ()


@dataclass(frozen=True)
class MatchResult:
    """assignments (:class:`~matching.schemas.MatchAssignments`), rep_summary
    (:class:`~matching.schemas.RepSummary`), diagnostics, fairness (the assignment's
    :class:`~matching.fairness.FairnessReport`)."""

    assignments: pd.DataFrame
    rep_summary: pd.DataFrame
    diagnostics: MatchDiagnostics
    fairness: FairnessReport


def match(
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
    policy: str = "leadmatch",
) -> MatchResult:
    """Match the day's leads to reps; see the package docstring for the frames."""
    started = time.perf_counter()
    config = config or MatchingConfig()
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}; got {policy!r}")
    day = prepare(
        candidates,
        leads,
        reps_today,
        config,
        history=history,
        pins=pins,
        exclusions=exclusions,
        account_owners=account_owners,
        rep_signal=rep_signal,
    )
    prepared = time.perf_counter() - started
    choice, solution, n_candidates = _choose(day, policy)
    price = None
    limits = set(solution.limits_reached) if solution else set()
    if policy == "leadmatch" and config.price_of_fairness and config.fairness.any_enabled:
        free, free_solution, _ = _choose(day, "no_fairness")
        price = _worth(day, free) - _worth(day, choice)
        limits |= set(free_solution.limits_reached)
    notes = list(day.notes)
    if TIME_LIMIT in limits:
        notes.append(
            f"The solver's safety time limit ({config.solver.time_limit_seconds:g} s, "
            "matching.solver.time_limit_seconds) stopped it before its work limits: this "
            "plan may differ on a faster or less busy machine. Raise the limit to make it "
            "reproducible."
        )
    clock = time.perf_counter()
    state = window(day, choice)
    assignments = _assignments(day, choice, policy, state)
    report = measure(day, choice)
    phases = {"prepare": prepared, **(solution.phase_seconds if solution else {})}
    phases["explain"] = time.perf_counter() - clock
    assigned = choice >= 0
    # each policy's own objective: the penalties of the fairness constraints it applies
    objective = solution.objective if solution else _worth(day, choice)
    diagnostics = MatchDiagnostics(
        policy=policy,
        status=solution.status if solution else ("empty" if day.n_leads == 0 else "heuristic"),
        objective=objective,
        bound=solution.bound if solution else np.nan,
        gap=solution.gap if solution else np.nan,
        solve_seconds=time.perf_counter() - started,
        n_leads=day.n_leads,
        n_assigned=int(assigned.sum()),
        n_held=int((~assigned).sum()),
        n_pairs=len(day.lead),
        n_candidates=n_candidates,
        n_fractional=solution.n_fractional if solution else 0,
        method=solution.method if solution else policy,
        expected_value=float((day.value[assigned] * day.p[choice[assigned]]).sum()),
        expected_wins=float(day.p[choice[assigned]].sum()),
        total_uplift=float(day.uplift[choice[assigned]].sum()),
        soft_violations=report.soft_violations,
        price_of_fairness=price,
        rep_signal_used=day.rep_signal,
        notes=notes,
        phase_seconds=phases,
        limits_reached=tuple(sorted(limits)),
    )
    return MatchResult(
        assignments=assignments,
        rep_summary=_rep_summary(day, choice, state),
        diagnostics=diagnostics,
        fairness=report,
    )


def _worth(day: Day, choice: np.ndarray) -> float:
    """The objective's expected value of ``choice`` (no penalties)."""
    return float(day.score[choice[choice >= 0]].sum())


def _choose(day: Day, policy: str) -> tuple[np.ndarray, Solution | None, int]:
    """(choice, the optimiser's solution or None, pairs considered) for ``policy``."""
    if policy in BASELINES:
        return BASELINES[policy](day), None, int(day.assignable.sum())
    fairness = day.config.fairness if policy == "leadmatch" else day.config.fairness.disabled()
    return _optimise(day, fairness)


def shortlist(day: Day) -> np.ndarray:
    """(J,) bool: the pairs the optimiser considers.

    Each lead's top-k assignable pairs by uplift (then p_win, then rep), plus for each rep its
    best leads (up to _REACH x its capacity) twice over: by uplift, and by lead worth
    (``day.lead_value``, then uplift). The first lets a rep that is nobody's top choice still
    receive leads; the second lets a weak rep below its value floor, or ramping reps short of
    their top-tier quota, receive the high-worth leads that fairness needs them to (a weak
    rep's best leads by uplift are mostly low-worth ones). Pins and account continuity leave a
    lead one eligible pair, which is always in.
    """
    ok = np.flatnonzero(day.assignable)
    keep = np.zeros(len(day.lead), bool)
    if len(ok) == 0:
        return keep
    lead, rep, uplift, p = day.lead[ok], day.rep[ok], day.uplift[ok], day.p[ok]
    worth = day.lead_value[lead]
    # Each ordering only sorts the pairs that can make their group's cut: those at least as
    # good as the group's k-th best key (ties kept). ``ok`` is in (lead, rep) order and the
    # sorts are stable, so exact ties stay in rep (or lead) order.
    some = np.flatnonzero(uplift >= _kth_best_per_lead(lead, uplift, day.config.top_k))
    by_lead = ok[some[np.lexsort((-p[some], -uplift[some], lead[some]))]]
    keep[by_lead[_rank(day.lead[by_lead]) < day.config.top_k]] = True
    reach = _REACH * day.capacity
    rep_order = np.argsort(rep, kind="stable")
    for key, then in ((uplift, p), (worth, uplift)):
        some = np.flatnonzero(key >= _kth_best_per_rep(rep, rep_order, key, reach)[rep])
        by_rep = ok[some[np.lexsort((-then[some], -key[some], rep[some]))]]
        rep_sorted = day.rep[by_rep]
        keep[by_rep[_rank(rep_sorted) < reach[rep_sorted]]] = True
    return keep


def _kth_best_per_lead(lead: np.ndarray, key: np.ndarray, k: int) -> np.ndarray:
    """(m,) for each element, the k-th largest ``key`` of its lead (-inf when the lead has
    fewer); ``lead`` is sorted. One partition of a (leads x most pairs) table."""
    starts = np.flatnonzero(np.r_[True, lead[1:] != lead[:-1]])
    counts = np.diff(np.r_[starts, len(lead)])
    width = int(counts.max())
    if width <= k:
        return np.full(len(lead), -np.inf)
    rows = np.repeat(np.arange(len(starts)), counts)
    table = np.full((len(starts), width), -np.inf)
    table[rows, np.arange(len(lead)) - starts[rows]] = key
    table.partition(width - k, axis=1)
    return table[:, width - k][rows]


def _kth_best_per_rep(
    rep: np.ndarray, order: np.ndarray, key: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """(len(k),) the k[r]-th largest ``key`` among rep r's elements (-inf when it has fewer);
    ``order`` sorts ``rep``."""
    starts = np.searchsorted(rep[order], np.arange(len(k) + 1))
    out = np.full(len(k), -np.inf)
    for r in np.flatnonzero((k > 0) & (k < np.diff(starts))):
        values = key[order[starts[r] : starts[r + 1]]]
        out[r] = np.partition(values, len(values) - k[r])[len(values) - k[r]]
    return out


def _rank(group: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal values of the sorted ``group``."""
    return np.arange(len(group)) - np.searchsorted(group, group)


def _optimise(day: Day, fairness: FairnessConstraints) -> tuple[np.ndarray, Solution, int]:
    """The optimiser over the candidate pairs. A lead it holds while an eligible rep outside
    its top-k still has room gets all its assignable pairs and the problem is solved again."""
    optimiser = Optimiser(fairness=fairness, settings=day.config.solver)
    keep = shortlist(day)
    limits: set[str] = set()
    for _ in range(_HOLD_ROUNDS):
        pairs = np.flatnonzero(keep)
        problem, _, _ = problem_of(day, pairs, fairness)
        solution = optimiser.solve(problem)
        limits |= set(solution.limits_reached)
        choice = np.full(day.n_leads, -1)
        taken = solution.choice >= 0
        choice[taken] = pairs[solution.choice[taken]]
        used = np.bincount(day.rep[choice[choice >= 0]], minlength=day.n_reps)
        held = choice < 0
        missed = day.assignable & ~keep & held[day.lead] & (used[day.rep] < day.capacity[day.rep])
        if not missed.any():
            break
        keep |= day.assignable & np.isin(day.lead, day.lead[missed])
    solution = replace(solution, limits_reached=tuple(sorted(limits)))
    return choice, solution, int(keep.sum())


def _assignments(day: Day, choice: np.ndarray, policy: str, state: Window) -> pd.DataFrame:
    assigned = choice >= 0
    j = np.maximum(choice, 0)
    has = len(day.p) > 0

    def pick(values: np.ndarray) -> np.ndarray:
        return np.where(assigned, values[j], np.nan) if has else np.full(day.n_leads, np.nan)

    p_win = pick(day.p)
    frame = pd.DataFrame(
        {
            Leads.lead_id: pd.array(day.lead_ids.astype(str), dtype="str"),
            "action": pd.array(np.where(assigned, "assign", "hold"), dtype="str"),
            Reps.rep_id: pd.array(
                [str(day.rep_ids[day.rep[k]]) if k >= 0 else None for k in choice], dtype="str"
            ),
            "p_win": p_win,
            "p_baseline": day.baseline,
            "uplift": pick(day.uplift),
            "expected_value": day.value * p_win,
            "tier": pd.array(day.tier, dtype="str"),
        }
    )
    frame = pd.concat([frame, explain(day, choice, policy, state)], axis=1)
    columns = list(MatchAssignments.to_schema().columns)
    return MatchAssignments.validate(frame[columns])


def _rep_summary(day: Day, choice: np.ndarray, state: Window) -> pd.DataFrame:
    assigned = np.flatnonzero(choice >= 0)
    reps = day.rep[choice[assigned]]
    R = day.n_reps

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(reps[mask], minlength=R).astype(int)

    tiers = day.tier[assigned]
    value_share = state.value / state.value.sum() if state.value.sum() > 0 else np.full(R, np.nan)
    top_share = state.top / state.top.sum() if state.top.sum() > 0 else np.full(R, np.nan)
    value_share = np.where(state.working, value_share, np.nan)
    frame = pd.DataFrame(
        {
            Reps.rep_id: pd.array(day.rep_ids.astype(str), dtype="str"),
            "capacity": day.capacity.astype(int),
            "assigned": state.used.astype(int),
            "tier_A": count(tiers == "A"),
            "tier_B": count(tiers == "B"),
            "tier_C": count(tiers == "C"),
            "capacity_use": np.where(
                day.capacity > 0, state.used / np.maximum(day.capacity, 1), np.nan
            ),
            "expected_wins": np.bincount(reps, day.p[choice[assigned]], R).astype(float),
            "expected_value": np.bincount(
                reps, day.value[assigned] * day.p[choice[assigned]], R
            ).astype(float),
            "value_received": state.value_today.astype(float),
            "top_tier_received": state.top_today.astype(int),
            "ramp_up": day.ramp,
            "fair_share": state.fair_share,
            "window_value_share": value_share,
            "share_ratio": np.where(
                state.fair_share > 0, value_share / np.maximum(state.fair_share, 1e-300), np.nan
            ),
            "window_top_tier_share": np.where(state.working, top_share, np.nan),
        }
    )
    return RepSummary.validate(frame)


def candidate_pairs(
    leads: pd.DataFrame,
    reps_today: pd.DataFrame,
    config: MatchingConfig | None = None,
    *,
    pins: pd.DataFrame | None = None,
    exclusions: pd.DataFrame | None = None,
    account_owners: pd.DataFrame | None = None,
    chunk_pairs: int = 2_000_000,
) -> pd.DataFrame:
    """The (lead_id, rep_id) pairs worth scoring: every eligible pair (see
    :class:`~matching.config.EligibilityRules`), capacity aside, so explanations can name a
    better rep who is full. The lead x rep cross product is screened ``chunk_pairs`` at a time.
    """
    config = config or MatchingConfig()
    leads = validated(MatchLeads, leads, "leads")
    reps = validated(RepsToday, reps_today, "reps_today").sort_values(Reps.rep_id, kind="stable")
    reps = reps.reset_index(drop=True)
    rep_index = pd.Index(reps[Reps.rep_id])
    eligibility = Eligibility.build(
        leads,
        reps,
        config.eligibility,
        rep_index=rep_index,
        pins=validated(Pins, pins, "pins") if pins is not None else None,
        exclusions=validated(Exclusions, exclusions, "exclusions")
        if exclusions is not None
        else None,
        account_owners=validated(AccountOwners, account_owners, "account_owners")
        if account_owners is not None
        else None,
    )
    working = np.flatnonzero(eligibility.working)
    lead_ids = leads[Leads.lead_id].to_numpy(dtype=object)
    found_leads, found_reps = [], []
    per_chunk = max(1, chunk_pairs // max(len(working), 1))
    for first in range(0, len(leads), per_chunk):
        block = np.arange(first, min(first + per_chunk, len(leads)))
        lead = np.repeat(block, len(working))
        rep = np.tile(working, len(block))
        ok = eligibility.causes(lead, rep) == Cause.ELIGIBLE
        found_leads.append(lead[ok])
        found_reps.append(rep[ok])
    lead = np.concatenate(found_leads) if found_leads else np.zeros(0, dtype=np.int64)
    rep = np.concatenate(found_reps) if found_reps else np.zeros(0, dtype=np.int64)
    return pd.DataFrame(
        {
            Leads.lead_id: pd.array(lead_ids[lead].astype(str), dtype="str"),
            Reps.rep_id: pd.array(
                reps[Reps.rep_id].to_numpy(dtype=object)[rep].astype(str), dtype="str"
            ),
        }
    )
