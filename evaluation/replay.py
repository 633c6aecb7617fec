"""The simulator replay: every policy places the same new leads, day after day, and is scored by
the truth.

The pair model is trained on the simulated history up to its end (``as_of``), exactly as
`leadmatch train` would. Then ``days`` days of new leads are replayed: every lead is created
once (the same leads for every policy) and placed by the nightly run of the next business day,
at midnight, together with the leads that run could not place earlier. Each policy of
:mod:`evaluation.policies` places them under the same capacities and availability and keeps its
own state (:class:`evaluation.policies.PolicyState`): which leads it still holds back, each
rep's open load (the leads it placed stay open as long as history leads did: the history's
survival curve of open time), and its rolling fairness window.

Model-based policies score pairs with the rep features of their own state (their placements
add to the reps' open load and recent volume). Every policy is scored by the **true** expected
wins and value of its choices (the simulator's true win probability at the run, with the
policy's own open loads), not by sampled outcomes. Fairness is measured as the matching
measures it, on the probabilities the policy was given (the model's, at the history's loads for
the round-robins; the truth for the oracle): a lead's worth is value(l) * b(l) with b(l) its
mean P(win) over the reps who may take it, tiers come from the day's worths; soft violations
are counted at every run over the rolling window (:mod:`evaluation.violations`), shares and
Gini over the whole replay (:mod:`evaluation.policy_table`). The curve of expected wins against
the value-share band width replays leadmatch once per band.

Limits: the replay starts every policy with an empty fairness window and no leads of its own
open; open leads a policy placed close along the history's average survival curve, whoever
works them; reps' features (win rates) see the history's outcomes as they resolve, never the
outcomes of the replayed leads; no lead is reclaimed after the first-contact SLA and account
continuity does not apply; the simulator's availability table ends 28 days after the history,
so later days have no absences.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from evaluation.policies import (
    CURVE_BANDS,
    DAY,
    OpenSurvival,
    PolicyState,
    ReplayPolicy,
    replay_policies,
    whole_leads,
)
from evaluation.violations import SOFT_VIOLATIONS, hard_violations, out_of_reach
from features.config import FeatureConfig
from features.daily import rep_day
from features.pairs import build_scoring_pairs
from features.reps import OutcomeHistory, index_history
from features.schemas import CrmData, Leads, Reps
from matching import match
from matching.config import MatchingConfig
from matching.day import lead_values
from matching.eligibility import effective_capacity
from matching.fairness import RollingWindow
from models.pair_model import PairModel
from simulation import CrmWorld


@dataclass(frozen=True)
class ReplaySettings:
    """What a replay runs with, as the nightly run would: the ``features`` and ``matching``
    slices of the configuration and the rolling fairness window (``window_days``, the
    nightly run's ``recommend.fairness_window_days``)."""

    features: FeatureConfig
    matching: MatchingConfig
    window_days: int


@dataclass(frozen=True)
class PolicyRun:
    """One policy's run on one day (a row of :attr:`Replay.runs`).

    ``pending``: leads it had to place; ``placed``; ``hard_violations`` (placements beyond the
    capacity the run gave a rep, and leads placed twice); ``soft_violations`` (soft
    constraints outside their limits over the run's fairness window, as the matching measures
    them, by more than no assignment of the run could avoid); ``unreachable_violations`` (the
    others: limits out of the run's reach, see :func:`evaluation.violations.out_of_reach`);
    ``max_share_deviation`` (largest |window value share / fair share - 1| over the working
    reps); ``status`` (the solver's, "empty" when there was nothing to place).
    """

    policy: str
    run_at: pd.Timestamp
    pending: int
    placed: int
    hard_violations: int
    soft_violations: int
    unreachable_violations: int
    max_share_deviation: float
    status: str


@dataclass(frozen=True)
class Replay:
    """What a replay produced (every figure of the policy table comes from these frames).

    ``placements``: one row per placed lead and policy: policy, run_at, lead_id, rep_id,
    p_true (the simulator's win probability of the pair at the run, with the policy's own open
    loads), p_model (the model's), value (the lead's expected value), worth (value(l) * b(l),
    what the lead counts for in the value shares), top_tier, ramp (the rep was ramping up).
    ``capacity``: one row per run and rep who worked: run_at, rep_id, capacity, ramp.
    ``runs``: one :class:`PolicyRun` per policy and run (a
    :class:`~evaluation.schemas.PolicyRuns` frame).
    ``violations``: one row per soft constraint outside its limit: policy, run_at, constraint,
    rep_id, size, unit, unavoidable (the part of size no assignment of the run could avoid),
    avoidable (size exceeds unavoidable: a miss the policy is answerable for).
    ``held``: policy -> leads left unplaced at the end. ``n_leads``: leads to place (the
    replay's new leads plus the history's unplaced ones). ``seconds``: policy -> wall-clock
    seconds it took to choose, over all runs (kept out of the frames, so that the same replay
    gives the same files).
    """

    placements: pd.DataFrame
    capacity: pd.DataFrame
    runs: pd.DataFrame
    violations: pd.DataFrame
    held: dict[str, int]
    n_leads: int
    seconds: dict[str, float]


def revealed_history(world: CrmWorld) -> CrmData:
    """The world's tables with every historical assignment resolved at its latent time.

    Features only ever look at what was decided before their own time, so a run on day D sees
    exactly the history's outcomes resolved before D, as a nightly run on a live CRM would.
    ``deal_value`` stays as known at ``as_of`` (no feature reads it).
    """
    truth = world.history_truth()
    won = truth["won"].to_numpy(dtype=bool)
    assignments = world.data.assignments.assign(
        first_contact_at=truth["contact_at"].to_numpy(),
        status=pd.array(np.where(won, "won", "lost"), dtype="str"),
        closed_at=truth["closes_at"].to_numpy(),
    )
    return CrmData(
        reps=world.data.reps,
        leads=world.data.leads,
        assignments=assignments,
        availability=world.data.availability,
    )


def replay(
    world: CrmWorld,
    model: PairModel,
    settings: ReplaySettings,
    *,
    days: int,
    seed: int,
    bands: tuple[float, ...] = CURVE_BANDS,
    progress: Callable[[str], None] | None = None,
) -> Replay:
    """Replay ``days`` days of new leads of the simulated ``world`` under every policy.

    ``model`` is the pair model trained on the world's history (its ``rep_signal_`` decides
    whether leadmatch may use rep-specific uplift); ``seed`` chooses the new leads; ``bands``
    adds one leadmatch replay per value-share band width (the fairness curve). ``progress`` is
    called with a line of text at the start of each day and after each policy's run. See the
    module docstring for the protocol.
    """
    context = _Context.of(world, model, settings)
    signal = getattr(model, "rep_signal_", None)
    has_signal = bool(signal is not None and signal.has_signal)
    policies = replay_policies(settings.matching, has_signal, bands)
    assigned = world.data.assignments[Leads.lead_id]
    waiting = world.data.leads.loc[~world.data.leads[Leads.lead_id].isin(assigned)]
    window = RollingWindow.empty(settings.window_days)
    states = {name: PolicyState(dict.fromkeys(waiting[Leads.lead_id]), window) for name in policies}
    lead_frames = [waiting]
    records: list[pd.DataFrame] = []
    capacity_rows: list[pd.DataFrame] = []
    runs: list[PolicyRun] = []
    violations: list[pd.DataFrame] = []
    seconds = dict.fromkeys(policies, 0.0)
    k = 0
    while True:
        at = world.as_of + k * DAY
        if np.is_busday(np.datetime64(at.date())) and _waiting(states):
            leads = pd.concat(lead_frames, ignore_index=True).set_index(Leads.lead_id, drop=False)
            day = _Day.build(context, leads, states, at)
            capacity_rows.append(day.capacity_frame())
            which = f"day {k + 1} of {days}" if k < days else "after the last day"
            if progress is not None:
                progress(f"{at:%Y-%m-%d} ({which}): {len(day.lead_ids)} leads waiting")
            for name, policy in policies.items():
                started = time.perf_counter()
                placed, run, broken = _run_policy(context, name, policy, states[name], day)
                took = time.perf_counter() - started
                seconds[name] += took
                runs.append(run)
                records.append(placed.assign(policy=name))
                violations.append(broken.assign(policy=name, run_at=at))
                if progress is not None:
                    progress(
                        f"{at:%Y-%m-%d} {name}: placed {run.placed} of {run.pending} "
                        f"in {took:.1f} s"
                    )
        if k >= days and (np.is_busday(np.datetime64(at.date())) or not _waiting(states)):
            break
        if k < days:
            fresh = world.new_leads(at, seed=seed)
            lead_frames.append(fresh)
            for state in states.values():
                state.pending.update(dict.fromkeys(fresh[Leads.lead_id]))
        k += 1
    return Replay(
        placements=pd.concat(records, ignore_index=True),
        capacity=pd.concat(capacity_rows, ignore_index=True),
        runs=pd.DataFrame([asdict(run) for run in runs]),
        violations=pd.concat(violations, ignore_index=True),
        held={name: len(state.pending) for name, state in states.items()},
        n_leads=int(sum(len(f) for f in lead_frames)),
        seconds=seconds,
    )


def _waiting(states: dict[str, PolicyState]) -> bool:
    return any(state.pending for state in states.values())


@dataclass(frozen=True)
class _Context:
    """What every run of a replay shares."""

    world: CrmWorld
    model: PairModel
    features: FeatureConfig
    matching: MatchingConfig
    revealed: CrmData
    history: OutcomeHistory
    survival: OpenSurvival
    rep_ids: np.ndarray

    @classmethod
    def of(cls, world: CrmWorld, model: PairModel, settings: ReplaySettings) -> _Context:
        revealed = revealed_history(world)
        history = index_history(
            revealed.assignments, revealed.leads, revealed.reps, settings.features
        )
        rep_ids = world.data.reps[Reps.rep_id].astype("str").to_numpy(dtype=object)
        survival = OpenSurvival.of(world.history_truth())
        return cls(
            world, model, settings.features, settings.matching, revealed, history, survival, rep_ids
        )


@dataclass(frozen=True)
class _Day:
    """One run date, shared by every policy: the reps' day, the leads waiting for any policy
    and their pair features with the working reps at the history's open loads (lead-major)."""

    at: pd.Timestamp
    reps: pd.DataFrame
    working: np.ndarray
    history_load: np.ndarray
    leads: pd.DataFrame
    lead_ids: pd.Index
    features: pd.DataFrame
    p_model: np.ndarray

    @classmethod
    def build(
        cls,
        context: _Context,
        leads: pd.DataFrame,
        states: dict[str, PolicyState],
        at: pd.Timestamp,
    ) -> _Day:
        reps = rep_day(context.world.data, at)
        reps["ramp"] = reps["tenure_days"] < context.matching.fairness.new_rep_quota.ramp_days
        working = np.flatnonzero((reps["available"] & (reps["capacity"] > 0)).to_numpy())
        waiting = pd.Index(list(dict.fromkeys(i for s in states.values() for i in s.pending)))
        grid = pd.DataFrame(
            {
                Leads.lead_id: np.repeat(waiting.to_numpy(dtype=object), len(working)),
                Reps.rep_id: np.tile(context.rep_ids[working], len(waiting)),
            }
        )
        features = build_scoring_pairs(
            context.revealed,
            leads.loc[waiting],
            as_of=at,
            config=context.features,
            candidates=grid,
            history=context.history,
        )
        return cls(
            at=at,
            reps=reps,
            working=working,
            history_load=context.world.open_load(context.rep_ids, at).astype(float),
            leads=leads.loc[waiting].reset_index(drop=True),
            lead_ids=waiting,
            features=features,
            p_model=context.model.predict_proba(features)[:, 1] if len(features) else np.empty(0),
        )

    def capacity_frame(self) -> pd.DataFrame:
        rows = self.reps.iloc[self.working]
        return pd.DataFrame(
            {
                "run_at": self.at,
                Reps.rep_id: rows[Reps.rep_id].to_numpy(dtype=object),
                "capacity": rows["capacity"].to_numpy(dtype=float),
                "ramp": rows["ramp"].to_numpy(dtype=bool),
            }
        )


_PLACEMENTS = pd.DataFrame(
    columns=[
        "run_at",
        Leads.lead_id,
        Reps.rep_id,
        "p_true",
        "p_model",
        "value",
        "worth",
        "top_tier",
        "ramp",
    ]
)


def _run_policy(
    context: _Context, name: str, policy: ReplayPolicy, state: PolicyState, day: _Day
) -> tuple[pd.DataFrame, PolicyRun, pd.DataFrame]:
    """Let policy ``name`` place its waiting leads on ``day`` with :func:`matching.match` and
    update its state. Returns its placements (see :class:`Replay`), the run's figures and its
    soft violations (constraint, rep_id, size, unit, unavoidable, avoidable)."""
    n_reps = len(context.rep_ids)
    pending = np.array(list(state.pending), dtype=object)
    if len(pending) == 0:
        run = PolicyRun(name, day.at, 0, 0, 0, 0, 0, 0.0, "empty")
        return _PLACEMENTS.copy(), run, SOFT_VIOLATIONS
    extra_load = state.open_load(day.at, context.survival, n_reps)
    load = day.history_load + extra_load
    n_working = len(day.working)
    rows = (day.lead_ids.get_indexer(pending)[:, None] * n_working + np.arange(n_working)).ravel()
    rep_pos = np.tile(day.working, len(pending))
    candidates = pd.DataFrame(
        {Leads.lead_id: np.repeat(pending, n_working), Reps.rep_id: context.rep_ids[rep_pos]}
    )
    if policy.scores == "model":
        recent = state.recent(day.at, context.features.recent_days, n_reps)
        p_model = _model_probability(
            context.model, day.features.iloc[rows], extra_load[rep_pos], recent[rep_pos]
        )
    else:
        p_model = day.p_model[rows]
    p_win = p_model
    if policy.scores == "truth":
        p_win = _true_probability(context, day.at, candidates, load[rep_pos])
    leads = day.leads.set_index(Leads.lead_id, drop=False).loc[pending].reset_index(drop=True)
    reps = day.reps.assign(open_load=whole_leads(load))
    result = match(
        candidates.assign(p_win=p_win),
        leads,
        reps,
        policy.matching,
        history=state.window.history(day.at),
        rep_signal=policy.rep_signal,
        policy=policy.policy,
    )
    placed = result.assignments.loc[result.assignments["action"] == "assign"]
    chosen = pd.Index(context.rep_ids).get_indexer(placed[Reps.rep_id])
    capacity = np.zeros(n_reps, dtype=np.int64)
    capacity[day.working] = effective_capacity(reps.iloc[day.working])
    hard = hard_violations(chosen, capacity) + int(placed[Leads.lead_id].duplicated().sum())
    model_of_pair = pd.Series(p_model, index=pd.MultiIndex.from_frame(candidates))
    placed_leads = leads.set_index(Leads.lead_id).loc[placed[Leads.lead_id]]
    records = pd.DataFrame(
        {
            "run_at": day.at,
            Leads.lead_id: placed[Leads.lead_id].to_numpy(dtype=object),
            Reps.rep_id: placed[Reps.rep_id].to_numpy(dtype=object),
            "p_true": _true_probability(context, day.at, placed, load[chosen]),
            "p_model": model_of_pair.reindex(
                pd.MultiIndex.from_frame(placed[[Leads.lead_id, Reps.rep_id]])
            ).to_numpy(dtype=float),
            "value": lead_values(placed_leads, "expected_value"),
            "worth": lead_values(placed_leads, policy.matching.objective)
            * placed["p_baseline"].to_numpy(dtype=float),
            "top_tier": (placed["tier"] == "A").to_numpy(dtype=bool),
            "ramp": day.reps["ramp"].to_numpy(dtype=bool)[chosen],
        }
    )
    for lead_id in records[Leads.lead_id]:
        del state.pending[lead_id]
    state.placed.append((day.at, np.bincount(chosen, minlength=n_reps).astype(float)))
    summary = result.rep_summary
    state.window = state.window.add_run(day.at, summary)
    soft = result.diagnostics.soft_violations
    broken = pd.DataFrame(
        [(v.constraint, v.rep_id, v.size, v.unit) for v in soft],
        columns=["constraint", Reps.rep_id, "size", "unit"],
    )
    all_leads = leads.set_index(Leads.lead_id).loc[result.assignments[Leads.lead_id]]
    worth_today = lead_values(all_leads, policy.matching.objective) * result.assignments[
        "p_baseline"
    ].to_numpy(dtype=float, na_value=np.nan)
    broken = out_of_reach(
        broken,
        result.fairness.per_rep,
        np.nan_to_num(worth_today),
        (result.assignments["tier"] == "A").to_numpy(dtype=bool, na_value=False),
        policy.matching.fairness,
    )
    ratio = summary["share_ratio"].to_numpy(dtype=float, na_value=np.nan)
    run = PolicyRun(
        policy=name,
        run_at=day.at,
        pending=len(pending),
        placed=len(records),
        hard_violations=hard,
        soft_violations=int(broken["avoidable"].sum()),
        unreachable_violations=int((~broken["avoidable"]).sum()),
        max_share_deviation=float(np.nanmax(np.abs(ratio - 1), initial=0.0)),
        status=result.diagnostics.status,
    )
    return records, run, broken


def _model_probability(
    model: PairModel, features: pd.DataFrame, extra_load: np.ndarray, extra_recent: np.ndarray
) -> np.ndarray:
    """The model's P(win) of pairs whose reps also hold a policy's own placements: those are
    added to each rep's open load and recent volume."""
    features = features.assign(
        rep_open_load=features["rep_open_load"].to_numpy() + extra_load,
        rep_recent_volume=features["rep_recent_volume"].to_numpy() + extra_recent,
    )
    return model.predict_proba(features)[:, 1]


def _true_probability(
    context: _Context, at: pd.Timestamp, pairs: pd.DataFrame, load: np.ndarray
) -> np.ndarray:
    """The simulator's P(win) of each (lead_id, rep_id) pair at ``at`` with open loads ``load``."""
    return context.world.true_probability(
        pd.DataFrame(
            {
                Leads.lead_id: pairs[Leads.lead_id].to_numpy(dtype=object),
                Reps.rep_id: pairs[Reps.rep_id].to_numpy(dtype=object),
                "at": np.full(len(pairs), at.to_datetime64()),
                "open_load": load,
            }
        )
    )
