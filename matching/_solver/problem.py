"""The matching problem as arrays, its fairness terms and penalties, and the solver's answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from matching.config import FairnessConstraints


@dataclass(frozen=True)
class AssignmentProblem:
    """One day's matching problem as arrays (0-based lead and rep positions).

    Pairs are the candidate (lead, rep) pairs, grouped by lead (``lead`` non-decreasing); reps
    are the reps working today (capacity > 0).

    Attributes:
        lead, rep: (J,) int positions of each pair's lead and rep.
        score: (J,) what assigning the pair is worth, >= 0 (expected wins or revenue).
        lead_value: (n,) e_l >= 0, the value a lead counts for in the value-share band.
        top_tier: (n,) bool, tier-A leads.
        capacity: (R,) int > 0, leads each rep can still take today.
        ramp: (R,) bool, reps in their ramp-up period.
        history_value, history_top_tier, history_capacity: (R,) what each rep received on the
            previous days of the fairness window (value, top-tier leads, capacity), >= 0.
    """

    lead: np.ndarray
    rep: np.ndarray
    score: np.ndarray
    lead_value: np.ndarray
    top_tier: np.ndarray
    capacity: np.ndarray
    ramp: np.ndarray
    history_value: np.ndarray
    history_top_tier: np.ndarray
    history_capacity: np.ndarray

    def __post_init__(self) -> None:
        n, n_reps, n_pairs = len(self.lead_value), len(self.capacity), len(self.lead)
        for name, size in [("rep", n_pairs), ("score", n_pairs), ("top_tier", n)]:
            if len(getattr(self, name)) != size:
                raise ValueError(
                    f"AssignmentProblem.{name} has length {len(getattr(self, name))}, expected {size}"
                )
        for name in ("ramp", "history_value", "history_top_tier", "history_capacity"):
            if len(getattr(self, name)) != n_reps:
                raise ValueError(
                    f"AssignmentProblem.{name} has length {len(getattr(self, name))}, expected {n_reps}"
                )
        if n_pairs and (np.any(np.diff(self.lead) < 0) or self.lead[0] < 0 or self.lead[-1] >= n):
            raise ValueError("AssignmentProblem.lead must be sorted positions in [0, n_leads)")
        if n_pairs and (self.rep.min() < 0 or self.rep.max() >= n_reps):
            raise ValueError("AssignmentProblem.rep must be positions in [0, n_reps)")
        if np.any(self.capacity <= 0):
            raise ValueError(
                "AssignmentProblem.capacity must be > 0 (leave out reps without capacity)"
            )
        if (
            np.any(self.score < 0)
            or np.any(self.lead_value < 0)
            or not np.all(np.isfinite(self.score))
        ):
            raise ValueError("AssignmentProblem.score and lead_value must be finite and >= 0")

    @property
    def n_leads(self) -> int:
        return len(self.lead_value)

    @property
    def n_reps(self) -> int:
        return len(self.capacity)

    @cached_property
    def lead_start(self) -> np.ndarray:
        """(n + 1,) offsets: the pairs of lead l are ``lead_start[l]:lead_start[l + 1]``."""
        return np.searchsorted(self.lead, np.arange(self.n_leads + 1))


@dataclass(frozen=True)
class FairnessTerms:
    """The fairness constraints of one problem: which are active, shares, penalties, hold cost."""

    value_on: bool
    ramp_on: bool
    cap_on: bool
    band: float
    min_share: float
    max_share: float
    fair_share: np.ndarray  # (R,) capacity share of the window
    value_penalty: float  # per unit of value outside the band
    ramp_penalty: float  # per top-tier lead short of the quota
    cap_penalty: float  # per top-tier lead above the cap
    hold_penalty: float
    # (value, top-tier, quota base) window totals held constant instead of summed over the
    # reps: set for a component of a split problem (see matching._solver.decompose)
    fixed_totals: tuple[float, float, float] | None = None

    @classmethod
    def of(cls, problem: AssignmentProblem, fairness: FairnessConstraints) -> FairnessTerms:
        """Switch off what cannot apply (no top-tier leads, no ramping rep) and scale penalties."""
        window_capacity = problem.history_capacity + problem.capacity
        fair_share = window_capacity / window_capacity.sum() if problem.n_reps else window_capacity
        has_top = bool(problem.top_tier.any() or problem.history_top_tier.sum() > 0)
        # Count penalties are per top-tier lead; expressed in value units via the mean baseline
        # value of today's top-tier leads, so the weights in the config are dimensionless.
        kappa = (
            float(problem.lead_value[problem.top_tier].mean()) if problem.top_tier.any() else 1.0
        )
        vs, nq, tc = fairness.value_share, fairness.new_rep_quota, fairness.top_tier_cap
        terms = dict(
            value_on=vs.enabled and problem.n_reps > 0,
            ramp_on=nq.enabled and has_top and bool(problem.ramp.any()),
            cap_on=tc.enabled and has_top and problem.n_reps > 0,
            band=vs.band,
            min_share=nq.min_share,
            # a cap below an even split cannot hold: it would only hold back top-tier leads
            max_share=max(tc.max_share, 1.0 / problem.n_reps) if problem.n_reps else tc.max_share,
            fair_share=fair_share,
            value_penalty=vs.penalty,
            ramp_penalty=nq.penalty * kappa,
            cap_penalty=tc.penalty * kappa,
        )
        # One more assignment (value e) raises the value-band slacks by at most 2e (its rep's upper
        # slack by e, the others' lower slacks by (1 - band) e in total) and the top-tier slacks by
        # at most one lead each; H above that means holding a lead never pays.
        e_max = float(problem.lead_value.max()) if problem.n_leads else 0.0
        hold = 1.0 + 2.0 * vs.penalty * e_max * terms["value_on"]
        hold += terms["ramp_penalty"] * terms["ramp_on"] + terms["cap_penalty"] * terms["cap_on"]
        hold += float(problem.score.max()) if len(problem.score) else 0.0
        return cls(**terms, hold_penalty=hold)

    @property
    def tier_on(self) -> bool:
        return self.ramp_on or self.cap_on

    def limits(
        self, total_value: float, total_top: float
    ) -> tuple[np.ndarray, np.ndarray, float, float]:
        """(value floor (R,), value ceiling (R,), top-tier cap, ramp quota) for window totals
        ``total_value`` and ``total_top``, or for the fixed totals when set."""
        quota_base = total_top
        if self.fixed_totals is not None:
            total_value, total_top, quota_base = self.fixed_totals
        return (
            (1 - self.band) * self.fair_share * total_value,
            (1 + self.band) * self.fair_share * total_value,
            self.max_share * total_top,
            self.min_share * quota_base,
        )


@dataclass(frozen=True)
class Slacks:
    """How far an integral assignment is outside each soft constraint (0 = satisfied).

    value_low / value_high: (R,) value units below / above the band; ramp: top-tier leads the
    ramping reps are short of their quota; top_cap: (R,) top-tier leads above the cap.
    """

    value_low: np.ndarray
    value_high: np.ndarray
    ramp: float
    top_cap: np.ndarray

    def penalty(self, terms: FairnessTerms) -> float:
        return float(
            terms.value_penalty * (self.value_low.sum() + self.value_high.sum())
            + terms.ramp_penalty * self.ramp
            + terms.cap_penalty * self.top_cap.sum()
        )


def slacks_of(problem: AssignmentProblem, terms: FairnessTerms, choice: np.ndarray) -> Slacks:
    """Soft-constraint slacks of ``choice`` ((n,) chosen pair per lead, -1 = held)."""
    assigned = choice >= 0
    leads = np.flatnonzero(assigned)
    reps = problem.rep[choice[assigned]]
    value = problem.history_value + np.bincount(reps, problem.lead_value[leads], problem.n_reps)
    top = problem.history_top_tier + np.bincount(
        reps, problem.top_tier[leads].astype(float), problem.n_reps
    )
    lo, hi, cap, quota = terms.limits(value.sum(), top.sum())
    off = np.zeros(problem.n_reps)
    return Slacks(
        value_low=np.maximum(0.0, lo - value) if terms.value_on else off,
        value_high=np.maximum(0.0, value - hi) if terms.value_on else off,
        ramp=max(0.0, quota - top[problem.ramp].sum()) if terms.ramp_on else 0.0,
        top_cap=np.maximum(0.0, top - cap) if terms.cap_on else off,
    )


def objective(p: AssignmentProblem, t: FairnessTerms, choice: np.ndarray) -> float:
    """Expected value minus fairness penalties of ``choice`` (no hold term)."""
    return float(p.score[choice[choice >= 0]].sum()) - slacks_of(p, t, choice).penalty(t)


def model_value(p: AssignmentProblem, t: FairnessTerms, choice: np.ndarray) -> float:
    """The model's objective: :func:`objective` minus H per held lead that had candidates."""
    held = int(((np.diff(p.lead_start) > 0) & (choice < 0)).sum())
    return objective(p, t, choice) - t.hold_penalty * held


def relative_gap(p: AssignmentProblem, t: FairnessTerms, bound: float, choice: np.ndarray) -> float:
    """(bound - model value of ``choice``) / |objective of ``choice``|; ``bound`` bounds the
    model's objective (H per held lead included)."""
    return (bound - model_value(p, t, choice)) / max(abs(objective(p, t, choice)), 1e-9)


def totals_if_all_assigned(p: AssignmentProblem) -> tuple[float, float]:
    """The window's total value and top-tier leads when every lead with candidates is
    assigned."""
    has = np.diff(p.lead_start) > 0
    return (
        float(p.history_value.sum() + p.lead_value[has].sum()),
        float(p.history_top_tier.sum() + p.top_tier[has].sum()),
    )


@dataclass(frozen=True)
class Solution:
    """The optimiser's answer.

    Attributes:
        choice: (n,) chosen pair position per lead, -1 when held.
        status: "optimal" (gap within mip_rel_gap), "feasible" (gap above it: a work limit
            stopped a phase first, or the local search and the MIPs could not close it) or
            "empty" (nothing to assign).
        objective: expected value (wins or revenue) minus fairness penalties of ``choice``.
        bound: upper bound on the objective of any assignment holding as many leads.
        gap: (bound - objective) / |objective|.
        solve_seconds, n_fractional (leads fractional in the LP), n_contested (leads left free
            after the dual fixing; all leads when no decomposition).
        method: the steps that ran, e.g. "dual+lp+mip" (see :mod:`matching.optimiser`; the
            local search always runs), prefixed "split(k): " when solved by components.
        limits_reached: the :class:`~matching.config.SolverSettings` limits that stopped a
            phase, sorted: work limits (the same on any machine) and ``"time_limit_seconds"``
            when the safety net did (the answer may then differ on another machine).
        phase_seconds: wall-clock seconds per phase (diagnostics only).
    """

    choice: np.ndarray
    status: str
    objective: float
    bound: float
    gap: float
    solve_seconds: float
    n_fractional: int
    n_contested: int
    method: str
    limits_reached: tuple[str, ...] = ()
    phase_seconds: dict[str, float] = field(default_factory=dict)
