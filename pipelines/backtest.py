"""The `backtest` flow: does leadmatch beat round-robin, by how much, at what fairness cost, and
how sure are we?

**On the simulator** (``scenario``), where the truth is known. The pair model is trained on the
simulated history up to its end (``as_of``), exactly as `leadmatch train` would. Then ``days``
days of new leads are replayed: every lead is created once (the same leads for every policy) and
placed by the nightly run of the next business day, at midnight, together with the leads that
run could not place earlier. Each policy places them under the same capacities and availability
and keeps its own state: which leads it still holds back, each rep's open load (the leads it
placed stay open as long as history leads did: the history's survival curve of open time), and
its rolling fairness window. Policies:

- ``round_robin``, ``weighted_round_robin`` (by capacity) and ``greedy`` (each lead, in
  arrival order, to the rep the model rates best who has room), the baselines of
  :func:`matching.match`;
- ``leadmatch_no_fairness`` and ``leadmatch``: the optimiser on the model's probabilities,
  without and with the fairness constraints; without a reliable rep signal (the model's
  rep-signal test) uplift is zero and leadmatch only balances;
- ``oracle``: the same optimiser, with fairness, fed the simulator's true probabilities.

Model-based policies score pairs with the rep features of their own state (their placements
add to the reps' open load and recent volume). Every policy is scored by the **true** expected
wins and value of its choices (the simulator's true win probability at the run, with the
policy's own open loads), not by sampled outcomes. Fairness is measured as the matching
measures it, on the probabilities the policy was given (the model's, at the history's loads for
the round-robins; the truth for the oracle): a lead's worth is value(l) * b(l) with b(l) its
mean P(win) over the reps who may take it, tiers come from the day's worths; soft violations
are counted at every run over the rolling window of ``recommend.fairness_window_days``, shares
and Gini over the whole replay. The curve of expected wins against the value-share band width
replays leadmatch once per band.

Limits: the replay starts every policy with an empty fairness window and no leads of its own
open; open leads a policy placed close along the history's average survival curve, whoever
works them; reps' features (win rates) see the history's outcomes as they resolve, never the
outcomes of the replayed leads; no lead is reclaimed after the first-contact SLA and account
continuity does not apply; the simulator's availability table ends 28 days after the history,
so later days have no absences.

**On real history** (``data``), where there is no ground truth: leadmatch's policy is evaluated
against the logged one with the off-policy estimators of :mod:`models.off_policy` (direct
method, self-normalised inverse propensity, doubly robust), cross-fitted: the logged leads are
split into folds by account, and each fold is scored, and its leadmatch assignment chosen day by
day, by a model trained without it. When overlap is too thin the value is reported as not
identified, with no number.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from features.daily import rep_day
from features.pairs import build_pairs_at, build_scoring_pairs, build_training_pairs
from features.reps import index_history
from features.schemas import CrmData
from matching import match
from matching.config import FairnessConstraints, MatchingConfig
from matching.fairness import RollingWindow, gini
from models.off_policy import (
    ESTIMATOR_NAMES,
    OffPolicyResult,
    choice_features,
    cross_fit_folds,
    estimate_propensities,
    evaluate_policy,
    historical_candidates,
    logged_decisions,
)
from models.pair_model import PairModel
from models.training import TrainingResult, train_and_evaluate
from pipelines.config import LeadmatchConfig
from pipelines.errors import UserFacingError
from pipelines.io import atomic_directory, load_data_folder
from pipelines.registry import data_set_label
from pipelines.tracking import use_experiment

EXPERIMENT = "leadmatch-backtest"
POLICIES = (
    "round_robin",
    "weighted_round_robin",
    "greedy",
    "leadmatch_no_fairness",
    "leadmatch",
    "oracle",
)
"""The policies of ``backtest.csv``, in its row order."""
ORACLE_NO_FAIRNESS = "oracle_no_fairness"
CURVE_BANDS = (0.05, 0.1, 0.2, 0.4)
"""Value-share band widths of the fairness curve (besides the configured one and none)."""
BASE = "round_robin"
DAY = pd.Timedelta(days=1)
TABLE_COLUMNS = [
    "policy",
    "expected_wins",
    "expected_value",
    "lift_vs_round_robin",
    "oracle_lift_captured",
    "price_of_fairness",
    "hard_violations",
    "soft_violations",
    "unreachable_violations",
    "max_value_share_deviation",
    "ramp_top_tier_share",
    "max_top_tier_share",
    "gini",
    "placed",
    "held_at_end",
]
PRINTED_COLUMNS = [
    "policy",
    "expected_wins",
    "lift_vs_round_robin",
    "oracle_lift_captured",
    "price_of_fairness",
    "hard_violations",
    "soft_violations",
    "unreachable_violations",
    "max_value_share_deviation",
]
"""The columns of ``backtest.csv`` that `leadmatch backtest` prints (the file has them all)."""
OFF_POLICY_NOTE = (
    "The estimand is per decision: each logged lead keeps the moment, candidate reps and rep "
    "loads it had in the history; what leadmatch would change through load (overloaded reps, "
    "capacity used by earlier leads) is not captured. The simulator backtest measures that."
)


class BacktestError(UserFacingError):
    """The backtest cannot run as asked (no scenario or data, an unknown scenario, ...)."""


@dataclass(frozen=True)
class BacktestSummary:
    """What `leadmatch backtest` prints and where it wrote it.

    ``table``: one row per policy (simulator: the :data:`PRINTED_COLUMNS` of backtest.csv) or
    per estimator (real history), ready to print;
    ``messages``: plain sentences (targets met or not, verdicts, limits); ``curve``: expected
    wins per value-share band (simulator only); ``out``: the output folder (or None);
    ``run_id``: the MLflow run; ``seconds``: wall-clock time of the whole backtest.
    """

    table: pd.DataFrame
    messages: list[str]
    curve: pd.DataFrame | None
    out: Path | None
    run_id: str | None
    seconds: float


# --- the simulator replay -----------------------------------------------------------------------


def revealed_history(world) -> CrmData:
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


@dataclass(frozen=True)
class OpenSurvival:
    """Share of assigned leads still open ``age`` days after assignment, from the history.

    ``days``: sorted open durations (days from assignment to close) of the history's leads.
    """

    days: np.ndarray

    @classmethod
    def of(cls, history_truth: pd.DataFrame) -> OpenSurvival:
        """From ``CrmWorld.history_truth()`` (columns assigned_at, closes_at)."""
        open_days = (history_truth["closes_at"] - history_truth["assigned_at"]) / DAY
        return cls(np.sort(open_days.to_numpy(dtype=float)))

    def __call__(self, age_days: float) -> float:
        if len(self.days) == 0:
            return 0.0
        return 1.0 - np.searchsorted(self.days, age_days, side="right") / len(self.days)


@dataclass
class _PolicyState:
    """What one policy carries from run to run: the leads it has not placed yet, how many leads
    it placed per rep on each run (for open load and recent volume) and its fairness window
    (what each rep received on each run: worth, tier-A leads, capacity)."""

    pending: dict[str, None]
    window: RollingWindow
    placed: list[tuple[pd.Timestamp, np.ndarray]] = field(default_factory=list)

    def open_load(self, at: pd.Timestamp, survival: OpenSurvival, n_reps: int) -> np.ndarray:
        """Expected leads of this policy still open per rep at ``at`` (float, all reps)."""
        load = np.zeros(n_reps)
        for when, counts in self.placed:
            load += survival((at - when) / DAY) * counts
        return load

    def recent(self, at: pd.Timestamp, days: int, n_reps: int) -> np.ndarray:
        """Leads this policy placed per rep in the ``days`` before ``at``."""
        counts = np.zeros(n_reps)
        for when, placed in self.placed:
            if at - when <= pd.Timedelta(days=days):
                counts += placed
        return counts


@dataclass(frozen=True)
class Replay:
    """What a replay produced (every figure of the policy table comes from these frames).

    ``placements``: one row per placed lead and policy: policy, run_at, lead_id, rep_id,
    p_true (the simulator's win probability of the pair at the run, with the policy's own open
    loads), p_model (the model's), value (the lead's expected value), worth (value(l) * b(l),
    what the lead counts for in the value shares), top_tier, ramp (the rep was ramping up).
    ``capacity``: one row per run and rep who worked: run_at, rep_id, capacity, ramp.
    ``runs``: one row per policy and run: policy, run_at, pending, placed, hard_violations (found
    by the backtest's own check), soft_violations (soft constraints outside their limits over
    the run's fairness window, as the matching measures them, by more than no assignment of the
    run could avoid), unreachable_violations (the others: limits out of the run's reach, see
    :func:`out_of_reach`), max_share_deviation (largest |window value share / fair share - 1|
    over the working reps), status (the solver's), seconds (time the policy took to choose).
    ``violations``: one row per soft constraint outside its limit: policy, run_at, constraint,
    rep_id, size, unit, unavoidable (the part of size no assignment of the run could avoid),
    avoidable (size exceeds unavoidable: a miss the policy is answerable for).
    ``held``: policy -> leads left unplaced at the end. ``n_leads``: leads to place (the
    replay's new leads plus the history's unplaced ones).
    """

    placements: pd.DataFrame
    capacity: pd.DataFrame
    runs: pd.DataFrame
    violations: pd.DataFrame
    held: dict[str, int]
    n_leads: int


@dataclass(frozen=True)
class _Policy:
    """How one replayed policy chooses: the matching ``policy`` (round_robin,
    weighted_round_robin, greedy, no_fairness or leadmatch) and its matching config; the
    probabilities it is fed (``scores``: "model" under its own open loads, "shared" the model's
    at the history's loads, "truth" the simulator's); whether rep-specific uplift may drive it
    (``rep_signal``)."""

    policy: str
    matching: MatchingConfig
    scores: str = "model"
    rep_signal: bool = True


def replay_policies(
    config: LeadmatchConfig, rep_signal: bool, bands: tuple[float, ...] = CURVE_BANDS
) -> dict[str, _Policy]:
    """The replayed policies: :data:`POLICIES`, the oracle without fairness (for its price of
    fairness) and leadmatch with each value-share band of ``bands`` (the fairness curve).
    ``rep_signal`` is the trained model's verdict; the greedy baseline ignores it. The price of
    fairness comes from the replays, so no policy solves a second time for it."""
    matching = config.matching.model_copy(update={"price_of_fairness": False})
    policies = {
        "round_robin": _Policy("round_robin", matching, scores="shared"),
        "weighted_round_robin": _Policy("weighted_round_robin", matching, scores="shared"),
        "greedy": _Policy("greedy", matching),
        "leadmatch_no_fairness": _Policy("no_fairness", matching, rep_signal=rep_signal),
        "leadmatch": _Policy("leadmatch", matching, rep_signal=rep_signal),
        "oracle": _Policy("leadmatch", matching, scores="truth"),
        ORACLE_NO_FAIRNESS: _Policy("no_fairness", matching, scores="truth"),
    }
    for band in sorted(set(bands) - {matching.fairness.value_share.band}):
        value_share = matching.fairness.value_share.model_copy(update={"band": band})
        fairness = matching.fairness.model_copy(update={"value_share": value_share})
        banded = matching.model_copy(update={"fairness": fairness})
        policies[band_policy(band)] = _Policy("leadmatch", banded, rep_signal=rep_signal)
    return policies


def band_policy(band: float) -> str:
    """Name of the leadmatch replay with value-share band ``band``."""
    return f"leadmatch_band_{band:g}"


def replay(
    world,
    model: PairModel,
    *,
    days: int,
    seed: int,
    config: LeadmatchConfig,
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
    reps = world.data.reps.reset_index(drop=True)
    revealed = revealed_history(world)
    context = _Context(
        world=world,
        model=model,
        config=config,
        revealed=revealed,
        history=index_history(revealed.assignments, revealed.leads, revealed.reps, config.features),
        survival=OpenSurvival.of(world.history_truth()),
        rep_ids=reps["rep_id"].astype("str").to_numpy(dtype=object),
    )
    signal = getattr(model, "rep_signal_", None)
    policies = replay_policies(config, bool(signal is not None and signal.has_signal), bands)
    assigned = world.data.assignments["lead_id"]
    waiting = world.data.leads.loc[~world.data.leads["lead_id"].isin(assigned)]
    window = RollingWindow.empty(config.recommend.fairness_window_days)
    states = {name: _PolicyState(dict.fromkeys(waiting["lead_id"]), window) for name in policies}
    lead_frames = [waiting]
    records: list[pd.DataFrame] = []
    capacity_rows: list[pd.DataFrame] = []
    run_rows: list[dict] = []
    violations: list[pd.DataFrame] = []
    k = 0
    while True:
        at = world.as_of + k * DAY
        if np.is_busday(np.datetime64(at.date())) and _waiting(states):
            leads = pd.concat(lead_frames, ignore_index=True).set_index("lead_id", drop=False)
            day = _Day.build(context, leads, states, at)
            capacity_rows.append(day.capacity_frame())
            which = f"day {k + 1} of {days}" if k < days else "after the last day"
            if progress is not None:
                progress(f"{at:%Y-%m-%d} ({which}): {len(day.lead_ids)} leads waiting")
            for name, policy in policies.items():
                started = time.perf_counter()
                placed, run, broken = _run_policy(context, policy, states[name], day)
                run.update(policy=name, run_at=at, seconds=time.perf_counter() - started)
                run_rows.append(run)
                records.append(placed.assign(policy=name))
                violations.append(broken.assign(policy=name, run_at=at))
                if progress is not None:
                    progress(
                        f"{at:%Y-%m-%d} {name}: placed {run['placed']} of {run['pending']} "
                        f"in {run['seconds']:.1f} s"
                    )
        if k >= days and (np.is_busday(np.datetime64(at.date())) or not _waiting(states)):
            break
        if k < days:
            fresh = world.new_leads(at, seed=seed)
            lead_frames.append(fresh)
            for state in states.values():
                state.pending.update(dict.fromkeys(fresh["lead_id"]))
        k += 1
    return Replay(
        placements=pd.concat(records, ignore_index=True),
        capacity=pd.concat(capacity_rows, ignore_index=True),
        runs=pd.DataFrame(run_rows),
        violations=pd.concat(violations, ignore_index=True),
        held={name: len(state.pending) for name, state in states.items()},
        n_leads=int(sum(len(f) for f in lead_frames)),
    )


def _waiting(states: dict[str, _PolicyState]) -> bool:
    return any(state.pending for state in states.values())


@dataclass(frozen=True)
class _Context:
    """What every run of a replay shares."""

    world: object
    model: PairModel
    config: LeadmatchConfig
    revealed: CrmData
    history: object
    survival: OpenSurvival
    rep_ids: np.ndarray


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
    def build(cls, context: _Context, leads: pd.DataFrame, states: dict, at: pd.Timestamp) -> _Day:
        config = context.config
        reps = rep_day(context.world.data, at)
        reps["ramp"] = reps["tenure_days"] < config.matching.fairness.new_rep_quota.ramp_days
        working = np.flatnonzero((reps["available"] & (reps["capacity"] > 0)).to_numpy())
        waiting = pd.Index(list(dict.fromkeys(i for s in states.values() for i in s.pending)))
        grid = pd.DataFrame(
            {
                "lead_id": np.repeat(waiting.to_numpy(dtype=object), len(working)),
                "rep_id": np.tile(context.rep_ids[working], len(waiting)),
            }
        )
        features = build_scoring_pairs(
            context.revealed,
            leads.loc[waiting],
            as_of=at,
            config=config.features,
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
                "rep_id": rows["rep_id"].to_numpy(dtype=object),
                "capacity": rows["capacity"].to_numpy(dtype=float),
                "ramp": rows["ramp"].to_numpy(dtype=bool),
            }
        )


def _run_policy(
    context: _Context, policy: _Policy, state: _PolicyState, day: _Day
) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Let one policy place its waiting leads on ``day`` with :func:`matching.match` and
    update its state. Returns its placements (see :class:`Replay`), the run's figures and its
    soft violations (constraint, rep_id, size, unit)."""
    config, n_reps = context.config, len(context.rep_ids)
    pending = np.array(list(state.pending), dtype=object)
    if len(pending) == 0:
        run = {"pending": 0, "placed": 0, "hard_violations": 0, "soft_violations": 0}
        run["unreachable_violations"] = 0
        return _PLACEMENTS.copy(), run | {"max_share_deviation": 0.0, "status": "empty"}, _SOFT
    extra_load = state.open_load(day.at, context.survival, n_reps)
    load = day.history_load + extra_load
    n_working = len(day.working)
    rows = (day.lead_ids.get_indexer(pending)[:, None] * n_working + np.arange(n_working)).ravel()
    rep_pos = np.tile(day.working, len(pending))
    candidates = pd.DataFrame(
        {"lead_id": np.repeat(pending, n_working), "rep_id": context.rep_ids[rep_pos]}
    )
    if policy.scores == "model":
        recent = state.recent(day.at, config.features.recent_days, n_reps)
        p_model = _model_probability(
            context.model, day.features.iloc[rows], extra_load[rep_pos], recent[rep_pos]
        )
    else:
        p_model = day.p_model[rows]
    p_win = p_model
    if policy.scores == "truth":
        p_win = _true_probability(context, day.at, candidates, load[rep_pos])
    leads = day.leads.set_index("lead_id", drop=False).loc[pending].reset_index(drop=True)
    # Whole open leads: an expected 7.2 open leads keep a rep with a cap of 10 to 2 more.
    reps = day.reps.assign(open_load=np.ceil(load - 1e-9).astype(np.int64))
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
    chosen = pd.Index(context.rep_ids).get_indexer(placed["rep_id"])
    capacity = np.zeros(n_reps, dtype=np.int64)
    capacity[day.working] = effective_capacity(day.reps.iloc[day.working], load[day.working])
    hard = hard_violations(chosen, capacity) + int(placed["lead_id"].duplicated().sum())
    model_of_pair = pd.Series(p_model, index=pd.MultiIndex.from_frame(candidates))
    value = _lead_values(leads.set_index("lead_id").loc[placed["lead_id"]], "expected_value")
    worth = _lead_values(
        leads.set_index("lead_id").loc[placed["lead_id"]], policy.matching.objective
    ) * placed["p_baseline"].to_numpy(dtype=float)
    records = pd.DataFrame(
        {
            "run_at": day.at,
            "lead_id": placed["lead_id"].to_numpy(dtype=object),
            "rep_id": placed["rep_id"].to_numpy(dtype=object),
            "p_true": _true_probability(context, day.at, placed, load[chosen]),
            "p_model": model_of_pair.reindex(
                pd.MultiIndex.from_frame(placed[["lead_id", "rep_id"]])
            ).to_numpy(dtype=float),
            "value": value,
            "worth": worth,
            "top_tier": (placed["tier"] == "A").to_numpy(dtype=bool),
            "ramp": day.reps["ramp"].to_numpy(dtype=bool)[chosen],
        }
    )
    for lead_id in records["lead_id"]:
        del state.pending[lead_id]
    state.placed.append((day.at, np.bincount(chosen, minlength=n_reps).astype(float)))
    summary = result.rep_summary
    state.window = state.window.add_run(day.at, summary)
    soft = result.diagnostics.soft_violations
    broken = pd.DataFrame(
        [(v.constraint, v.rep_id, v.size, v.unit) for v in soft],
        columns=["constraint", "rep_id", "size", "unit"],
    )
    all_leads = leads.set_index("lead_id").loc[result.assignments["lead_id"]]
    worth_today = _lead_values(all_leads, policy.matching.objective) * result.assignments[
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
    run = {
        "pending": len(pending),
        "placed": len(records),
        "hard_violations": hard,
        "soft_violations": int(broken["avoidable"].sum()),
        "unreachable_violations": int((~broken["avoidable"]).sum()),
        "max_share_deviation": float(np.nanmax(np.abs(ratio - 1), initial=0.0)),
        "status": result.diagnostics.status,
    }
    return records, run, broken


_PLACEMENTS = pd.DataFrame(
    columns=[
        "run_at",
        "lead_id",
        "rep_id",
        "p_true",
        "p_model",
        "value",
        "worth",
        "top_tier",
        "ramp",
    ]
)
_SOFT = pd.DataFrame(
    columns=["constraint", "rep_id", "size", "unit", "unavoidable", "avoidable"]
).astype({"size": float, "unavoidable": float, "avoidable": bool})
# A violation no larger than its unavoidable part (up to rounding) is out of reach, not a miss.
_REACH_TOLERANCE = 1e-6


def out_of_reach(
    violations: pd.DataFrame,
    per_rep: pd.DataFrame,
    worth: np.ndarray,
    top_tier: np.ndarray,
    fairness: FairnessConstraints,
) -> pd.DataFrame:
    """``violations`` (constraint, rep_id, size, unit: one run's soft violations) with
    ``unavoidable``, the part of each size that no assignment of the run's leads within the
    reps' capacities could avoid, and ``avoidable`` (size exceeds it).

    ``per_rep``: the run's :attr:`matching.FairnessReport.per_rep` (working, capacity,
    value_today, window_value, fair_share, top_tier_today, window_top_tier, ramp_up; the window
    as assigned); ``worth``: (n,) value(l) * b(l) of each of the run's leads, placed or not;
    ``top_tier``: (n,) bool, tier A. Bounds are taken against the window totals as assigned,
    ignoring eligibility rules, so ``unavoidable`` is a lower bound: a rep below its value
    floor could at most add its capacity's worth of the run's most valuable leads; one above
    its value ceiling or top-tier cap could at most receive nothing today. The ramping reps
    could at most add, within their capacity, the run's least valuable tier-A leads that fit
    under their value ceilings: a quota met only by taking them above the value band is out
    of reach too, since the band would then be missed instead (it happens when the ramping
    reps hold a small share of the capacity; see :class:`matching.config.NewRepQuota`).
    """
    working = per_rep.loc[per_rep["working"].to_numpy(dtype=bool)]
    value, top = working["window_value"], working["window_top_tier"]
    value_before = (value - working["value_today"]).to_numpy(dtype=float)
    top_before = (top - working["top_tier_today"]).to_numpy(dtype=float)
    capacity = working["capacity"].to_numpy(dtype=np.int64)
    fair = working["fair_share"].to_numpy(dtype=float)
    ramp = working["ramp_up"].to_numpy(dtype=bool)
    band = fairness.value_share.band
    ceiling = (
        (1 + band) * fair * value.sum()
        if fairness.value_share.enabled
        else np.full(len(fair), np.inf)
    )
    # the most value k leads of the run can add: the k most valuable ones
    best = np.concatenate([[0.0], np.cumsum(np.sort(worth)[::-1])])
    most_value = value_before + best[np.minimum(capacity, len(worth))]
    rep_ids = working["rep_id"].astype(str).to_numpy()
    per_rep_bound = {
        "value_share_min": (1 - band) * fair * value.sum() - most_value,
        "value_share_max": value_before - ceiling,
        "top_tier_max": top_before - fairness.top_tier_cap.max_share * top.sum(),
    }
    bounds = {
        (name, rep_id): max(0.0, float(x))
        for name, values in per_rep_bound.items()
        for rep_id, x in zip(rep_ids, values, strict=True)
    }
    # the ramping reps' room under their ceilings, pooled (an upper bound on any split)
    room = np.maximum(ceiling[ramp] - value_before[ramp], 0.0).sum()
    cheapest = np.cumsum(np.sort(worth[np.asarray(top_tier, dtype=bool)]))
    fits = int(np.searchsorted(cheapest, room * (1 + 1e-12), side="right"))
    ramp_most = top_before[ramp].sum() + min(int(capacity[ramp].sum()), fits)
    quota = fairness.new_rep_quota.min_share * top.sum() - ramp_most
    unavoidable = [
        max(0.0, float(quota)) if name == "new_rep_quota" else bounds.get((name, str(rep)), 0.0)
        for name, rep in zip(violations["constraint"], violations["rep_id"], strict=True)
    ]
    size = violations["size"].to_numpy(dtype=float)
    out = violations.assign(size=size, unavoidable=np.minimum(unavoidable, size))
    return out.assign(avoidable=size > out["unavoidable"].to_numpy() + _REACH_TOLERANCE)


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
                "lead_id": pairs["lead_id"].to_numpy(dtype=object),
                "rep_id": pairs["rep_id"].to_numpy(dtype=object),
                "at": np.full(len(pairs), at.to_datetime64()),
                "open_load": load,
            }
        )
    )


def _lead_values(leads: pd.DataFrame, objective: str) -> np.ndarray:
    """What a lead is worth if won: 1 (conversions) or its expected value, missing ones filled
    with the median of the known ones (as the matching objective does)."""
    if objective == "conversions" or "expected_value" not in leads:
        return np.ones(len(leads))
    values = pd.to_numeric(leads["expected_value"]).to_numpy(dtype=float, na_value=np.nan)
    known = np.isfinite(values)
    fill = float(np.median(values[known])) if known.any() else 1.0
    return np.where(known, values, fill)


def effective_capacity(reps: pd.DataFrame, open_load: np.ndarray) -> np.ndarray:
    """Leads each rep can still take today: the day's ``capacity``, and no more than keeps the
    expected open load under ``max_open_leads`` (int array, one per row of ``reps``)."""
    capacity = reps["capacity"].to_numpy(dtype=float)
    cap = reps["max_open_leads"].astype("Float64").to_numpy(dtype=float, na_value=np.inf)
    room = np.floor(cap - open_load)
    return np.clip(np.minimum(capacity, room), 0, None).astype(np.int64)


def hard_violations(rep_pos: np.ndarray, capacity: np.ndarray) -> int:
    """Placements beyond a rep's capacity (every placement to a rep without any counts):
    ``rep_pos`` the rep of each placement, ``capacity`` per rep (all reps)."""
    counts = np.bincount(rep_pos, minlength=len(capacity))
    return int(np.maximum(counts - capacity, 0).sum())


# --- the policy table ---------------------------------------------------------------------------


def rep_shares(result: Replay) -> pd.DataFrame:
    """Per policy and rep over the whole replay: capacity_share (the fair share), value_share
    (share of the yardstick worth received), top_tier (tier-A leads received), leads."""
    capacity = result.capacity.groupby("rep_id")["capacity"].sum()
    frames = []
    for name in result.held:
        placed = result.placements.loc[result.placements["policy"] == name]
        by_rep = placed.groupby("rep_id").agg(
            worth=("worth", "sum"), top_tier=("top_tier", "sum"), leads=("lead_id", "size")
        )
        by_rep = by_rep.reindex(capacity.index, fill_value=0)
        total = by_rep["worth"].sum()
        frames.append(
            pd.DataFrame(
                {
                    "policy": name,
                    "rep_id": capacity.index,
                    "capacity_share": (capacity / capacity.sum()).to_numpy(),
                    "value_share": (by_rep["worth"] / max(total, 1e-12)).to_numpy(),
                    "top_tier": by_rep["top_tier"].to_numpy(dtype=int),
                    "leads": by_rep["leads"].to_numpy(dtype=int),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def policy_figures(result: Replay, config: LeadmatchConfig) -> pd.DataFrame:
    """Every replayed policy's figures, indexed by policy.

    expected_wins / expected_value: sums of the true P(win) (times the lead's expected value)
    of its placements. Per run, as the nightly run sees them over its rolling fairness window:
    hard_violations (placements beyond a rep's capacity, a lead placed twice),
    soft_violations (soft constraints outside their limits by more than the run could avoid,
    summed over runs; the per-run largest share deviation is in ``runs``) and
    unreachable_violations (limits no assignment of their run could keep, see
    :func:`out_of_reach`). Over the whole replay: max_value_share_deviation
    (the largest |value share / fair share - 1| of any rep, fair share = share of the
    replay's capacity), ramp_top_tier_share (ramping reps' share of tier-A leads),
    max_top_tier_share (the largest rep share of tier-A leads), gini (of the value received
    per unit of capacity across reps). Then placed and held_at_end.
    """
    runs = result.runs.groupby("policy")
    capacity = result.capacity.groupby("rep_id")["capacity"].sum()
    shares = rep_shares(result)
    rows = {}
    for name in result.held:
        placed = result.placements.loc[result.placements["policy"] == name]
        mine = shares.loc[shares["policy"] == name]
        fair = mine["capacity_share"].to_numpy()
        ratio = mine["value_share"].to_numpy() / np.where(fair > 0, fair, 1.0)
        top = placed.groupby("rep_id")["top_tier"].sum()
        total_top = float(top.sum())
        worth = placed.groupby("rep_id")["worth"].sum().reindex(capacity.index, fill_value=0)
        rows[name] = {
            "expected_wins": float(placed["p_true"].sum()),
            "expected_value": float((placed["p_true"] * placed["value"]).sum()),
            "hard_violations": int(runs["hard_violations"].sum().get(name, 0)),
            "soft_violations": int(runs["soft_violations"].sum().get(name, 0)),
            "unreachable_violations": int(runs["unreachable_violations"].sum().get(name, 0)),
            "max_value_share_deviation": float(
                np.abs(ratio - 1)[fair > 0].max(initial=0.0) if len(placed) else 0.0
            ),
            "ramp_top_tier_share": float(placed.loc[placed["ramp"], "top_tier"].sum() / total_top)
            if total_top
            else np.nan,
            "max_top_tier_share": float(top.max() / total_top) if total_top else np.nan,
            "gini": gini((worth / capacity).to_numpy()),
            "placed": len(placed),
            "held_at_end": int(result.held[name]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def policy_table(figures: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``backtest.csv``: the :data:`POLICIES` with lift over round-robin (relative),
    the share of the oracle's lift captured and the price of fairness (expected wins given up
    for fairness: leadmatch against leadmatch_no_fairness, the oracle against itself without
    fairness)."""
    wins = figures["expected_wins"]
    base, oracle = wins[BASE], wins["oracle"]
    table = figures.loc[list(POLICIES)].copy()
    table["lift_vs_round_robin"] = table["expected_wins"] / base - 1 if base > 0 else np.nan
    gap = oracle - base
    table["oracle_lift_captured"] = (table["expected_wins"] - base) / gap if gap > 0 else np.nan
    price = pd.Series(np.nan, index=table.index)
    price["leadmatch"] = wins["leadmatch_no_fairness"] - wins["leadmatch"]
    if ORACLE_NO_FAIRNESS in wins:
        price["oracle"] = wins[ORACLE_NO_FAIRNESS] - wins["oracle"]
    table["price_of_fairness"] = price
    return table.rename_axis("policy").reset_index()[TABLE_COLUMNS]


def fairness_curve(figures: pd.DataFrame, config: LeadmatchConfig) -> pd.DataFrame:
    """Leadmatch's expected wins per value-share band width (``inf``: no fairness at all), with
    its largest value-share deviation and soft violations."""
    configured = config.matching.fairness.value_share.band
    points = {"leadmatch": configured, "leadmatch_no_fairness": np.inf}
    points |= {
        name: float(name.removeprefix("leadmatch_band_"))
        for name in figures.index
        if name.startswith("leadmatch_band_")
    }
    curve = figures.loc[
        list(points), ["expected_wins", "max_value_share_deviation", "soft_violations"]
    ]
    curve.insert(0, "band", [points[n] for n in curve.index])
    return curve.rename_axis("policy").reset_index().sort_values("band", ignore_index=True)


def simulator_messages(
    table: pd.DataFrame,
    curve: pd.DataFrame,
    *,
    has_rep_effects: bool,
    signal,
    config: LeadmatchConfig,
    violations: pd.DataFrame | None = None,
    lead_worth: float = np.nan,
) -> list[str]:
    """Plain sentences: the rep-signal verdict, the targets (met or not), the price of fairness,
    the curve and the limits of the replay. ``violations``: leadmatch's soft violations
    (constraint, unit, size, unavoidable, avoidable; see :class:`Replay`) for a breakdown of
    the misses and of the limits that were out of reach, with ``lead_worth`` the mean worth of
    its leads (to say how big a value-share violation is)."""
    rows = table.set_index("policy")
    lm, oracle = rows.loc["leadmatch"], rows.loc["oracle"]
    fairness = config.matching.fairness
    out = []
    if signal is not None and not signal.has_signal:
        out.append(
            f"The model found no reliable rep signal ({signal.summary()}): leadmatch used no "
            "rep-specific uplift and only balanced value and load."
        )
    if has_rep_effects:
        captured = lm["oracle_lift_captured"]
        verdict = "met" if captured >= 0.8 else "NOT met"
        out.append(
            f"leadmatch captured {captured:.0%} of the oracle's lift over round-robin "
            f"({lm['lift_vs_round_robin']:+.1%} against the oracle's "
            f"{oracle['lift_vs_round_robin']:+.1%}); target at least 80%: {verdict}."
        )
    else:
        lift = lm["lift_vs_round_robin"]
        verdict = "met" if abs(lift) <= 0.01 else "NOT met"
        out.append(
            f"This world has no rep effects: leadmatch is {lift:+.2%} from round-robin; "
            f"target within 1%: {verdict}."
        )
    hard = int(lm["hard_violations"])
    verdict = "met" if hard == 0 else "NOT met"
    out.append(f"Hard-constraint violations by leadmatch: {hard} (target 0: {verdict}).")
    soft, unreachable = int(lm["soft_violations"]), int(lm["unreachable_violations"])
    window = config.recommend.fairness_window_days
    limits = (
        f"over the whole replay the largest value-share deviation is "
        f"{lm['max_value_share_deviation']:.1%} of the fair share (band "
        f"{fairness.value_share.band:.0%} per window)"
    )
    if violations is None:
        violations = _SOFT
    if soft == 0:
        out.append(
            "Every soft fairness constraint of leadmatch stayed within its limits at every run "
            f"where it could (rolling {window}-day window): {limits}."
        )
    else:
        missed = violations.loc[violations["avoidable"].astype(bool)]
        kinds = _breakdown(missed, missed["size"] - missed["unavoidable"], lead_worth)
        out.append(
            f"leadmatch had {soft} soft-constraint violation(s) over its runs (rolling "
            f"{window}-day window; target 0: NOT met): {limits}"
            + (f"; by constraint, beyond what was out of reach: {kinds}" if kinds else "")
            + "."
        )
    if unreachable:
        beyond = violations.loc[~violations["avoidable"].astype(bool)]
        kinds = _breakdown(beyond, beyond["size"], lead_worth)
        out.append(
            f"{unreachable} more limit(s) were out of reach at their run whatever the "
            "assignment (not within the reps' capacities, given the window so far; for the "
            "new-rep quota, not without taking a ramping rep above its value band), so they "
            "are not counted as misses; leadmatch came as close as possible"
            + (f": {kinds}" if kinds else "")
            + "."
        )
    quota = fairness.new_rep_quota
    if quota.enabled:
        out.append(
            f"Over the replay, ramping reps received {lm['ramp_top_tier_share']:.1%} of "
            f"leadmatch's tier-A leads (quota {quota.min_share:.0%} of each run's window while "
            "a ramping rep works)."
        )
    price = lm["price_of_fairness"]
    unfair = rows.loc["leadmatch_no_fairness", "expected_wins"]
    out.append(
        f"Price of fairness: {price:.1f} expected wins ({price / unfair:.1%} of leadmatch without "
        f"fairness); the oracle's: {oracle['price_of_fairness']:.1f}."
    )
    points = ", ".join(
        f"{'none' if np.isinf(b) else f'{b:.0%}'}: {w:.1f}"
        for b, w in zip(curve["band"], curve["expected_wins"], strict=True)
    )
    out.append(f"Expected wins of leadmatch by value-share band: {points}.")
    out.append(
        "Limits: every policy starts with an empty fairness window and none of its own leads "
        "open; its leads stay open along the history's survival curve whoever works them; reps' "
        "features see the history's outcomes as they resolve, never the replayed leads'; no lead "
        "is reclaimed after the first-contact SLA and no account continuity applies."
    )
    return out


def _breakdown(violations: pd.DataFrame, sizes: pd.Series, lead_worth: float) -> str:
    """Per constraint: its name, count and largest size (with the unit, and for value the
    share of a lead's mean worth)."""
    parts = []
    frame = violations[["constraint", "unit"]].assign(size=sizes.to_numpy(dtype=float))
    for (name, unit), (n, largest) in (
        frame.groupby(["constraint", "unit"])["size"].agg(["size", "max"]).iterrows()
    ):
        text = f"{name} {int(n)} (largest {largest:.3g} {unit}"
        if unit == "value" and np.isfinite(lead_worth) and lead_worth > 0:
            text += f", {largest / lead_worth:.2g} of a lead's mean worth"
        parts.append(text + ")")
    return ", ".join(parts)


# --- on real history: off-policy estimates -------------------------------------------------------


@dataclass(frozen=True)
class OffPolicyBacktest:
    """Leadmatch's policy against the logged one on real history.

    ``result``: the estimates (``result.summary()`` is what to print); ``rep_signal``: each
    fold's rep-signal verdict; ``n_fallback``: evaluated (mature) leads the target policy could
    not place within the day's capacity, sent to their best candidate instead.
    """

    result: OffPolicyResult
    rep_signal: list[str]
    n_fallback: int
    n_folds: int


def off_policy_backtest(
    data: CrmData,
    config: LeadmatchConfig,
    *,
    n_folds: int = 2,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> OffPolicyBacktest:
    """Estimate the value of leadmatch's policy on the logged history of ``data``.

    Logged propensities are used where present, estimated ones elsewhere. Cross-fitted: the
    logged leads are split into ``n_folds`` folds by account; for each fold a model is trained
    (with its rep-signal test) on the training pairs of the other folds' leads, scores the
    fold's candidate pairs at each decision's own time (``q``), and chooses leadmatch's
    assignment of the fold's leads day by day (the optimiser over each day's leads, restricted to
    their historical candidates, with the day's capacities scaled to the fold's share of the
    day's decisions). The estimators then compare that choice with the logged one on the mature
    decisions. Reward: won within the conversion window, or its deal value when the matching
    objective is expected value.
    """
    reward = "won" if config.matching.objective == "conversions" else "value"
    decisions = logged_decisions(
        data, window_days=config.features.conversion_window_days, reward=reward
    )
    if not decisions["mature"].any():
        raise BacktestError(
            "no logged decision is older than the conversion window, so no outcome is final: "
            "there is nothing to evaluate yet"
        )
    candidates = choice_features(data, historical_candidates(data, decisions))
    if decisions["propensity"].isna().any():
        candidates = estimate_propensities(decisions, candidates, config=config.off_policy)
    folds = cross_fit_folds(decisions, n_folds, seed)
    pairs = build_training_pairs(data, config=config.features)
    features = build_pairs_at(data, candidates[["lead_id", "rep_id", "at"]], config=config.features)
    candidate_fold = candidates["lead_id"].map(folds).to_numpy()
    pair_fold = pairs["lead_id"].map(folds).to_numpy()
    decision_fold = decisions["lead_id"].map(folds).to_numpy()
    q = np.empty(len(candidates))
    matching = config.matching.model_copy(update={"price_of_fairness": False})
    targets, verdicts, fallback = [], [], 0
    for k in range(n_folds):
        try:
            trained = train_and_evaluate(pairs.loc[pair_fold != k], config.model)
        except ValueError as err:
            raise BacktestError(
                f"cannot train the cross-fitted model of fold {k + 1}: {err}"
            ) from err
        rows = candidate_fold == k
        q[rows] = trained.model.predict_proba(features.loc[rows])[:, 1]
        verdicts.append(trained.rep_signal.summary())
        target, held = leadmatch_target(
            data,
            decisions.loc[decision_fold == k],
            candidates.loc[rows, ["lead_id", "rep_id"]].assign(p_win=q[rows]),
            matching,
            rep_signal=trained.rep_signal.has_signal,
            share=_fold_shares(decisions, decision_fold == k),
            window_days=config.recommend.fairness_window_days,
        )
        targets.append(target)
        fallback += int(decisions.loc[decisions["mature"], "lead_id"].isin(held).sum())
        if progress is not None:
            progress(f"fold {k + 1} of {n_folds}: {trained.rep_signal.verdict}")
    value = _lead_values(
        data.leads.set_index("lead_id").loc[candidates["lead_id"]],
        config.matching.objective,
    )
    result = evaluate_policy(
        decisions.loc[decisions["mature"]],
        candidates.assign(q=q * value),
        pd.concat(targets, ignore_index=True),
        config=config.off_policy,
    )
    return OffPolicyBacktest(result, verdicts, fallback, n_folds)


def _fold_shares(decisions: pd.DataFrame, in_fold: np.ndarray) -> pd.Series:
    """Per day: the fold's share of the day's logged decisions."""
    day = decisions["at"].dt.normalize()
    return pd.Series(in_fold, index=day).groupby(level=0).mean()


def leadmatch_target(
    data: CrmData,
    decisions: pd.DataFrame,
    candidates: pd.DataFrame,
    matching: MatchingConfig,
    *,
    rep_signal: bool,
    share: pd.Series,
    window_days: int,
) -> tuple[pd.DataFrame, list[str]]:
    """Leadmatch's choice for each logged lead, day by day, as an off-policy target.

    ``decisions``: the logged leads (lead_id, at); ``candidates``: lead_id, rep_id, p_win (their
    historical candidate reps, scored); ``share``: per day, the share of the day's capacity these
    leads may use. Each day's leads are matched by :func:`matching.match` (with a fairness
    window of ``window_days`` carried from day to day); the reps' availability is already in
    the candidate sets.
    A lead the day's capacity could not take goes to its best candidate. Returns (target frame
    lead_id, rep_id, prob = 1.0; the lead_ids of such leads).
    """
    leads = data.leads.set_index("lead_id", drop=False)
    daily_capacity = data.reps["daily_capacity"].fillna(0).to_numpy(dtype=float)
    best_rep = (
        candidates.sort_values("p_win", ascending=False, kind="stable")
        .drop_duplicates("lead_id")
        .set_index("lead_id")["rep_id"]
    )
    window = RollingWindow.empty(window_days)
    chosen: list[pd.DataFrame] = []
    held: list[str] = []
    for day, group in decisions.groupby(decisions["at"].dt.normalize(), sort=True):
        reps = rep_day(data, day)
        # An absent or departed rep keeps a slot only for a logged choice the rules missed.
        capacity = np.where(reps["available"], reps["capacity"], daily_capacity)
        # Employment, availability, capacity used earlier that day and open-lead caps are
        # already in the candidate sets; the day's capacity still bounds the batch.
        reps = reps.assign(
            capacity=np.ceil(capacity * share.get(day, 1.0)).astype(int),
            active=True,
            available=True,
            open_load=0,
            max_open_leads=pd.NA,
        )
        lead_ids = group["lead_id"].to_numpy(dtype=object)
        day_candidates = candidates.loc[candidates["lead_id"].isin(lead_ids)]
        result = match(
            day_candidates,
            leads.loc[lead_ids].reset_index(drop=True),
            reps,
            matching,
            history=window.history(day),
            rep_signal=rep_signal,
        )
        picks = result.assignments[["lead_id", "rep_id"]].copy()
        missing = picks["rep_id"].isna().to_numpy()
        held += picks.loc[missing, "lead_id"].tolist()
        picks.loc[missing, "rep_id"] = picks.loc[missing, "lead_id"].map(best_rep)
        chosen.append(picks)
        window = window.add_run(day, result.rep_summary)
    target = pd.concat(chosen, ignore_index=True).assign(prob=1.0)
    return target, held


def off_policy_table(result: OffPolicyResult) -> pd.DataFrame:
    """The estimates as printed: numbers only where identified, "not identified" elsewhere."""
    rows = []
    for row in result.estimates.itertuples(index=False):
        if row.identified:
            value = f"{row.value:.4g} [{row.ci_low:.4g}, {row.ci_high:.4g}]"
            diff = (
                f"{row.vs_logged:+.4g} [{row.vs_logged_low:+.4g}, {row.vs_logged_high:+.4g}]"
                if row.estimator != "logged"
                else ""
            )
        else:
            value, diff = "not identified", "not identified"
        rows.append(
            {
                "estimator": ESTIMATOR_NAMES[row.estimator],
                "value per lead": value,
                "vs history": diff,
            }
        )
    return pd.DataFrame(rows)


def off_policy_messages(backtest: OffPolicyBacktest) -> list[str]:
    """Plain sentences: the verdict, the estimates and overlap, the models' rep signal, limits."""
    result = backtest.result
    out = []
    if result.identified:
        dr = result.estimates.set_index("estimator").loc["dr"]
        out.append(
            f"Leadmatch's policy against the history, doubly robust: {dr['vs_logged']:+.4g} per "
            f"lead [{dr['vs_logged_low']:+.4g}, {dr['vs_logged_high']:+.4g}] at "
            f"{result.level:.0%}."
        )
    else:
        out.append(
            "Overlap between leadmatch's choices and the history is too poor: the value of "
            "leadmatch's policy on this history is NOT identified, so no number is given."
        )
    out.extend(result.summary().splitlines())
    for k, verdict in enumerate(backtest.rep_signal, start=1):
        out.append(f"Cross-fitted model {k} of {backtest.n_folds}: {verdict}.")
    if backtest.n_fallback:
        out.append(
            f"{backtest.n_fallback} of the evaluated leads found no capacity in leadmatch's day "
            "and went to their best candidate."
        )
    out.append(OFF_POLICY_NOTE)
    return out


# --- outputs ------------------------------------------------------------------------------------


def backtest_chart(table: pd.DataFrame, curve: pd.DataFrame):
    """Expected wins per policy (with the lift over round-robin) and leadmatch's expected wins
    against the value-share band width."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.8))
    bars, line = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    colours = ["#9aa5b1"] * 3 + ["#7fb3d5", "#1f618d", "#c0392b"]
    bars.bar(table["policy"], table["expected_wins"], color=colours)
    for x, (wins, lift) in enumerate(
        zip(table["expected_wins"], table["lift_vs_round_robin"], strict=True)
    ):
        bars.annotate(f"{lift:+.1%}", (x, wins), ha="center", va="bottom", fontsize=9)
    bars.set_ylabel("true expected wins")
    bars.set_title("Expected wins per policy (lift over round-robin)")
    bars.tick_params(axis="x", rotation=25)
    finite = curve.loc[np.isfinite(curve["band"])]
    line.plot(
        finite["band"], finite["expected_wins"], marker="o", color="#1f618d", label="leadmatch"
    )
    unfair = curve.loc[~np.isfinite(curve["band"]), "expected_wins"]
    if len(unfair):
        line.axhline(unfair.iloc[0], linestyle="--", color="#7fb3d5", label="no fairness")
    line.set_xlabel("value-share band (± share of the fair share)")
    line.set_ylabel("true expected wins")
    line.set_title("Price of fairness")
    line.legend()
    fig.tight_layout()
    return fig


def write_simulator_outputs(
    folder: Path, table: pd.DataFrame, curve: pd.DataFrame, result: Replay
) -> list[Path]:
    """Write backtest.csv, fairness_curve.csv, rep_shares.csv, runs.csv, soft_violations.csv
    and backtest.png into ``folder`` (already existing). Returns the written paths."""
    from pipelines.outputs import write_csv

    files = {
        "backtest.csv": table,
        "fairness_curve.csv": curve,
        "rep_shares.csv": rep_shares(result),
        "runs.csv": result.runs,
        "soft_violations.csv": result.violations,
    }
    for name, frame in files.items():
        write_csv(frame, folder / name)
    fig = backtest_chart(table, curve)
    fig.savefig(folder / "backtest.png", dpi=100, metadata={"Software": None})
    return [folder / name for name in [*files, "backtest.png"]]


def write_off_policy_outputs(folder: Path, backtest: OffPolicyBacktest) -> list[Path]:
    """Write off_policy.csv (the estimates; NaN where not identified) and overlap.json."""
    import json

    from pipelines.outputs import write_csv

    write_csv(backtest.result.estimates, folder / "off_policy.csv")
    overlap = folder / "overlap.json"
    overlap.write_text(
        json.dumps(backtest.result.overlap.to_dict(), indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    return [folder / "off_policy.csv", overlap]


# --- the flow -----------------------------------------------------------------------------------


def _check_scenario(scenario: str) -> None:
    from simulation import SCENARIOS

    if scenario not in SCENARIOS:
        raise BacktestError(
            f"unknown scenario {scenario!r}: choose one of {', '.join(sorted(SCENARIOS))}"
        )


@task(cache_policy=NO_CACHE)
def simulate_world(scenario: str, seed: int):
    """The simulated world of ``scenario`` (its history and its truth)."""
    from simulation import simulate

    _check_scenario(scenario)
    world = simulate(scenario, seed=seed)
    get_run_logger().info("simulated %r: %s", scenario, world)
    return world


@task(cache_policy=NO_CACHE)
def train_on_history(data: CrmData, as_of: pd.Timestamp, config: LeadmatchConfig) -> TrainingResult:
    """Train the pair model on the history up to ``as_of``, as `leadmatch train` does."""
    pairs = build_training_pairs(data, as_of=as_of, config=config.features)
    try:
        result = train_and_evaluate(pairs, config.model)
    except ValueError as err:
        raise BacktestError(f"cannot train a model on this history: {err}") from err
    get_run_logger().info("rep signal: %s", result.rep_signal.summary())
    return result


@task(cache_policy=NO_CACHE)
def replay_days(
    world, model: PairModel, days: int, seed: int, config: LeadmatchConfig, bands: tuple
) -> Replay:
    """Replay ``days`` days of new leads under every policy."""
    logger = get_run_logger()
    return replay(
        world, model, days=days, seed=seed, config=config, bands=bands, progress=logger.info
    )


@task(cache_policy=NO_CACHE)
def evaluate_off_policy(
    path: Path, mapping: str | None, config: LeadmatchConfig
) -> OffPolicyBacktest:
    """Load the data folder and estimate leadmatch's policy against the logged one."""
    data = load_data_folder(path, mapping, timezone=config.timezone).data
    return off_policy_backtest(data, config, seed=config.seed, progress=get_run_logger().info)


@task(cache_policy=NO_CACHE)
def log_backtest(
    params: dict,
    metrics: dict[str, float],
    files: list[Path],
    texts: dict[str, object],
    config: LeadmatchConfig,
) -> str:
    """One MLflow run in the `leadmatch-backtest` experiment: params, metrics, files, texts;
    named for what it replayed, e.g. ``default world, 30 days, seed 0: simulator backtest``."""
    import mlflow

    if params["mode"] == "simulator":
        what = f"{params['scenario']} world, {params['days']} days, seed {params['seed']}"
    else:
        what = data_set_label(Path(params["data"]))
    use_experiment(EXPERIMENT, config.tracking)
    with mlflow.start_run(run_name=f"{what}: {params['mode'].replace('_', '-')} backtest") as run:
        mlflow.set_tags({"mode": params["mode"], "config_hash": config.digest()})
        mlflow.log_params(params)
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        for path in files:
            mlflow.log_artifact(str(path))
        for name, content in texts.items():
            if isinstance(content, str):
                mlflow.log_text(content, name)
            else:
                mlflow.log_dict(content, name)
    return run.info.run_id


def _table_metrics(table: pd.DataFrame, key: str) -> dict[str, float]:
    """``<row key>.<column>`` -> value for every numeric cell of ``table``."""
    numeric = table.set_index(key).select_dtypes("number")
    return {
        f"{row}.{column}": float(value)
        for row, values in numeric.iterrows()
        for column, value in values.items()
    }


@dataclass(frozen=True)
class _Outcome:
    """What either kind of backtest hands to the logging and writing steps."""

    table: pd.DataFrame
    curve: pd.DataFrame | None
    messages: list[str]
    files: list[Path]
    params: dict[str, object]
    metrics: dict[str, float]


def _simulator_backtest(
    scenario: str, days: int, seed: int, config: LeadmatchConfig, bands: tuple, folder: Path
) -> _Outcome:
    world = simulate_world(scenario, seed)
    trained = train_on_history(world.data, world.as_of, config)
    result = replay_days(world, trained.model, days, seed, config, bands)
    figures = policy_figures(result, config)
    table = policy_table(figures)
    curve = fairness_curve(figures, config)
    mine = result.placements.loc[result.placements["policy"] == "leadmatch"]
    messages = simulator_messages(
        table,
        curve,
        has_rep_effects=world.scenario.has_rep_effects,
        signal=trained.rep_signal,
        config=config,
        violations=result.violations.loc[result.violations["policy"] == "leadmatch"],
        lead_worth=float(mine["worth"].mean()),
    )
    metrics = _table_metrics(table, "policy") | _table_metrics(
        curve.assign(band=curve["band"].astype(str)), "band"
    )
    return _Outcome(
        table=table[PRINTED_COLUMNS],
        curve=curve,
        messages=messages,
        files=write_simulator_outputs(folder, table, curve, result),
        params={
            "mode": "simulator",
            "scenario": scenario,
            "days": days,
            "seed": seed,
            "rep_signal": trained.rep_signal.verdict,
        },
        metrics=metrics,
    )


def _history_backtest(
    data: Path, mapping: str | None, config: LeadmatchConfig, folder: Path
) -> _Outcome:
    backtest = evaluate_off_policy(data, mapping, config)
    result = backtest.result
    metrics = _table_metrics(result.estimates.drop(columns=["identified"]), "estimator")
    metrics |= {
        f"overlap.{k}": float(v)
        for k, v in result.overlap.to_dict().items()
        if isinstance(v, int | float)
    }
    return _Outcome(
        table=off_policy_table(result),
        curve=None,
        messages=off_policy_messages(backtest),
        files=write_off_policy_outputs(folder, backtest),
        params={
            "mode": "off_policy",
            "data": str(data),
            "mapping": str(mapping),
            "identified": result.identified,
        },
        metrics=metrics,
    )


@flow(name="backtest", log_prints=False)
def backtest_flow(
    scenario: str | None = None,
    days: int = 30,
    seed: int = 0,
    data: Path | None = None,
    mapping: str | None = None,
    out: Path | None = None,
    config: LeadmatchConfig | None = None,
    bands: tuple[float, ...] = CURVE_BANDS,
) -> BacktestSummary:
    """Backtest leadmatch on the simulator (``scenario``) or on logged history (``data``);
    write the files to ``out`` (atomically) and log one MLflow run."""
    config = config or LeadmatchConfig()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        if scenario is not None:
            outcome = _simulator_backtest(scenario, days, seed, config, tuple(bands), folder)
        else:
            outcome = _history_backtest(Path(data), mapping, config, folder)
        seconds = time.perf_counter() - started
        run_id = log_backtest(
            outcome.params,
            outcome.metrics | {"seconds": seconds},
            outcome.files,
            {"messages.txt": "\n".join(outcome.messages) + "\n"},
            config,
        )
        if out is not None:
            with atomic_directory(Path(out)) as target:
                for path in outcome.files:
                    (target / path.name).write_bytes(path.read_bytes())
    logger = get_run_logger()
    for line in outcome.messages:
        logger.info(line)
    return BacktestSummary(
        table=outcome.table,
        messages=outcome.messages,
        curve=outcome.curve,
        out=Path(out) if out is not None else None,
        run_id=run_id,
        seconds=seconds,
    )


def run_backtest(
    *,
    scenario: str | None = None,
    days: int = 30,
    seed: int = 0,
    data: Path | None = None,
    mapping: str | None = None,
    out: Path | None = None,
    config: LeadmatchConfig,
    bands: tuple[float, ...] = CURVE_BANDS,
) -> BacktestSummary:
    """What `leadmatch backtest` runs: the simulator replay (``scenario``, ``days``, ``seed``;
    ``bands``: the value-share band widths of the fairness curve besides the configured one)
    or the off-policy estimates on a data folder (``data``, optionally through ``mapping``).
    Results go to ``out`` (when given) and to MLflow. ``seconds`` in the summary is the whole
    wall-clock time, flow start-up included."""
    if (scenario is None) == (data is None):
        raise BacktestError("give either a scenario (simulator) or a data folder (real history)")
    if days < 1:
        raise BacktestError(f"days must be at least 1, got {days}")
    if scenario is not None:
        _check_scenario(scenario)
    started = time.perf_counter()
    summary = backtest_flow(
        scenario=scenario,
        days=days,
        seed=seed,
        data=data,
        mapping=mapping,
        out=out,
        config=config,
        bands=tuple(bands),
    )
    return replace(summary, seconds=time.perf_counter() - started)
