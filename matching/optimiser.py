"""The optimiser: a mixed-integer assignment of leads to reps over candidate pairs (HiGHS).

The model, for candidate pairs j = (l, r) with binary x_j::

    maximise   sum_j (score_j + H) x_j  -  fairness penalties  -  H * (leads with candidates)
    subject to sum_r x_lr <= 1                       every lead once, or held
               sum_l x_lr <= capacity_r               hard
               value band, new-rep quota, top-tier cap (soft: penalised slack)

``score_j`` is what assigning the pair is worth (expected wins or revenue). ``H`` is a hold
penalty larger than any fairness penalty one more assignment can cause, so a lead is only held
when none of its candidate reps has capacity left; the objective therefore reads "expected value
minus fairness penalties minus H per held lead".

Fairness is measured over a rolling window: V_r = history_value_r + sum_l e_l x_lr is the
value a rep received (e_l = value(l) * b(l), the lead's worth under the baseline policy),
T = sum_r V_r, and with fair share f_r (its share of the window's capacity)::

    V_r >= (1 - band) f_r T - slack_lo_r,    V_r <= (1 + band) f_r T + slack_hi_r
    sum_{r ramping} N_r >= min_share * TA - slack_ramp
    N_r <= max_share * TA + slack_cap_r

where N_r counts the top-tier leads a rep received in the window and TA is their total.

Solving, in four steps, each stopped by a work limit of :class:`~matching.config.SolverSettings`
(simplex iterations, L-BFGS iterations, local-search rounds, branch-and-bound nodes) and never by
the clock, so the same problem gives the same answer on any machine:

1. LP relaxation (HiGHS, built from CSC arrays). It is almost integral: the fractional leads
   are bounded by the number of binding side constraints. On large instances
   (``decompose_above_pairs``) the dual simplex is slow over every pair (the fairness rows make
   its basis dense), so an entropy-smoothed Lagrangian dual is minimised first in numpy
   (L-BFGS-B). Its exact value is a valid upper bound, and its reduced scores fix the leads
   whose best rep clearly wins and give the others only their few near-best pairs. The
   restricted LP is then priced out against every candidate pair and extended (warm start)
   until nothing is missing, which certifies it as the LP over all pairs, or until the dual at
   the LP's prices (a bound on the LP over all pairs) is close enough to it
   (``lp_iterations_per_row``, ``dual_iterations``).
2. A local search on the LP's rounding (relocations and swaps between reps, and exchanges of a
   held lead for an assigned one, scored exactly) closes the gap that rounding leaves at the
   band edges, until the gap is half the target (``local_search_rounds``).
3. If that misses the target: a MIP over the fractional leads only, every other lead as
   rounded (a few nodes: HiGHS proves little there, the bands turn it into tight knapsacks),
   then the local search again from its answer (``repair_mip_nodes``).
4. Small instances that still miss the target get a MIP over every pair (``full_mip_nodes``).

Large problems whose candidate graph falls apart into connected components (the region rule
gives one per region) are solved one component at a time when every lead can be assigned: the
window totals T and TA are then known in advance, which makes the value band and the top-tier
cap constants per rep and leaves only the ramp quota shared; it is shared out by ramping
capacity, the bound sums the components' Lagrangian duals at one quota price, and a local
search over the whole prices the shared quota exactly. Components run side by side, one per
dual thread, and their answers are combined in a fixed order (each phase's seconds are then
summed over them).

The gap is always measured against a valid bound: the LP optimum, the dual at the LP's prices
when pricing stopped early, the dual bound when the LP did not finish, or HiGHS's bound after
step 4. When the first LP reaches its iteration limit, the dual's greedy choice plus the local
search is returned with its gap; when a re-solve does, the last LP's solution is rounded.

``time_limit_seconds`` is a safety net: each phase also stops at a wall-clock deadline (the dual
at a share of it, the LP early enough to leave time for the rest), and when one does, the answer
depends on the machine; :attr:`Solution.limits_reached` then names it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace

import highspy
import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.sparse.csgraph import connected_components

from matching._solver.limits import TIME_LIMIT
from matching._solver.problem import (
    AssignmentProblem,
    FairnessTerms,
    Slacks,
    Solution,
    objective,
    slacks_of,
    totals_if_all_assigned,
)
from matching.config import FairnessConstraints, SolverSettings

__all__ = [
    "TIME_LIMIT",
    "AssignmentProblem",
    "FairnessTerms",
    "Optimiser",
    "Slacks",
    "Solution",
    "slacks_of",
]

_TOL = 1e-6
# Moves per (from rep, to rep) pair that the local search tries to combine into swaps.
_SWAP_PARTNERS = 8
# Exchanges of a held lead for an assigned one that the local search scores exactly per round.
_EXCHANGE_TRIES = 16
# Shares of the safety time limit: the dual stops at the first, the LP stops to leave the
# second for rounding and the local search.
_DUAL_SHARE = 0.4
_RESERVE_SHARE = 0.15
# The HiGHS MIPs leave out the heuristics that solve sub-MIPs (RINS, RENS, root reduced cost):
# a node limit does not bound them, and at the root of these small MIPs they cost several
# times the rest. They branch on pseudocosts without strong branching, which took most of the
# simplex iterations of such short searches.
_MIP_OPTIONS = {
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_root_reduced_cost": False,
    "mip_pscost_minreliable": 0,
}
_INF = highspy.kHighsInf
# Smoothing temperatures of the dual, as fractions of the mean best score per lead.
# The final one leaves the dual bound within ~1e-5 of the LP optimum on the benchmark instances.
_EPSILONS = (0.03, 0.003)
# Pairs further below their lead's best than this many (previous) temperatures are left out of
# the next, colder stage of the dual.
_PRUNE_WIDTH = 5.0
# Pricing stops when the dual at the LP's prices is within this share of the target gap of the
# restricted LP.
_PRICING_STOP = 0.1
# A contested lead's columns in the first restricted LP: its best few pairs by the dual's
# reduced score. A 25k-lead region at 100k x 500 gave 108k columns without a cap, 83k with 5:
# first LP 32 s -> 18 s, and the re-solve after pricing then finished (with 3, the first LP
# lacked so many pairs that pricing added 178k).
_CONTESTED_COLUMNS = 5
# The dual's slabs: a slab's widest lead has at most this many times the pairs of its
# narrowest; a slab is split over the worker threads when each part has this many leads.
_SLAB_GROWTH = 1.25
_MIN_BLOCK_ROWS = 2_000


@dataclass(frozen=True)
class Optimiser:
    """Fair assignment over candidate pairs with HiGHS, exact to ``settings.mip_rel_gap`` when
    the work limits allow (the gap is always reported against a valid bound).

    Fields:
        fairness: which soft constraints apply and their parameters.
        settings: gap target, work limits, safety time limit and threads.
    """

    fairness: FairnessConstraints = field(default_factory=FairnessConstraints)
    settings: SolverSettings = field(default_factory=SolverSettings)

    def __post_init__(self) -> None:
        if not isinstance(self.fairness, FairnessConstraints):
            raise TypeError("Optimiser.fairness must be a FairnessConstraints")
        if not isinstance(self.settings, SolverSettings):
            raise TypeError("Optimiser.settings must be a SolverSettings")

    def solve(self, problem: AssignmentProblem) -> Solution:
        """The best assignment of ``problem`` (see :class:`Solution`)."""
        net = _SafetyNet(time.perf_counter(), self.settings.time_limit_seconds)
        terms = FairnessTerms.of(problem, self.fairness)
        if len(problem.lead) > self.settings.decompose_above_pairs:
            split = _solve_split(problem, terms, self.settings, net)
            if split is not None:
                return split
        return _Run(problem, terms, self.settings, net).solve()


@dataclass(frozen=True)
class _SafetyNet:
    """The wall-clock safety net of one solve: ``limit`` seconds from ``started``."""

    started: float
    limit: float

    def deadline(self, share: float = 1.0) -> float:
        """perf_counter time at which ``share`` of the limit has passed."""
        return self.started + share * self.limit

    def left(self, reserve: float = 0.0) -> float:
        """Seconds left before the limit (less ``reserve``), at least a twentieth of one."""
        return max(0.05, self.deadline() - time.perf_counter() - reserve)

    def passed(self) -> bool:
        return time.perf_counter() >= self.deadline()


class _Run:
    """One solve: the state shared by its phases."""

    def __init__(
        self,
        problem: AssignmentProblem,
        terms: FairnessTerms,
        settings: SolverSettings,
        net: _SafetyNet,
    ):
        self.p, self.t, self.settings, self.net = problem, terms, settings, net
        self.start = problem.lead_start
        self.prices: tuple[_Dual, np.ndarray] | None = None  # see _prices
        self.has_pairs = np.diff(self.start) > 0
        self.reached: set[str] = set()  # the limits that stopped a phase

    def objective(self, choice: np.ndarray) -> float:
        """Expected value minus fairness penalties (no hold term)."""
        return objective(self.p, self.t, choice)

    def model_value(self, choice: np.ndarray) -> float:
        """The model's objective: objective minus H per held lead that had candidates."""
        held = int((self.has_pairs & (choice < 0)).sum())
        return self.objective(choice) - self.t.hold_penalty * held

    def polish(
        self, start: np.ndarray, movable: np.ndarray, bound: float, phases: dict[str, float]
    ) -> np.ndarray:
        """Held leads placed where a chain of moves makes room, then the local search over
        the ``movable`` leads until the gap to ``bound`` is half the target."""
        clock = time.perf_counter()
        target = self.settings.mip_rel_gap / 2
        start = _place_held(self.p, start)
        if self._gap(bound, start) > target:
            search = _Polish(self.p, self.t, start, movable)
            start = search.run(
                self.settings.local_search_rounds,
                self.net.deadline(),
                lambda c: self._gap(bound, c) <= target,
            )
            self.reached |= search.reached
        phases["polish"] = phases.get("polish", 0.0) + time.perf_counter() - clock
        return start

    def solve(self) -> Solution:
        p, settings = self.p, self.settings
        phases: dict[str, float] = {}
        if len(p.lead) == 0:
            return self._finish(np.full(p.n_leads, -1), 0.0, 0, 0, "empty", phases)
        # what is left for rounding, repair and local search when the LP stops on the clock
        reserve = max(0.5, _RESERVE_SHARE * self.net.limit)
        clock = time.perf_counter()
        guide, dual = p.score, None
        if len(p.lead) > settings.decompose_above_pairs:
            duals = _Dual(p, self.t, settings.dual_threads)
            y = duals.fit(settings.dual_iterations, self.net.deadline(_DUAL_SHARE))
            self.reached |= duals.reached
            dual = (duals, y)
            bound = duals.value(y)
            guide = duals.reduced(y)
            # A lead is contested unless its best reduced score beats every rival by two
            # temperatures (smoothed probability above 0.88; pricing frees the few fixed
            # wrongly, and a wider margin left most leads free at 20k x 200), and at least
            # contested_share of the leads are. A contested lead starts with its pairs within
            # 3 temperatures of its best, at most _CONTESTED_COLUMNS of them; pricing adds any
            # other that the LP wants.
            fixed = _fix_by_margin(p, guide, settings.contested_share, 2 * duals.eps)
            columns = _near_best(p, guide, fixed < 0, 3 * duals.eps, _CONTESTED_COLUMNS)
            method = "dual+lp"
            phases["dual"] = time.perf_counter() - clock
        else:
            bound, fixed, method = np.inf, np.full(p.n_leads, -1), "lp"
            columns = np.arange(len(p.lead))
        clock = time.perf_counter()
        lp = _Model(p, self.t, columns, fixed, settings.threads)
        iterations = int(np.ceil(settings.lp_iterations_per_row * lp.n_rows))
        last = None  # the last LP's solution over the current columns
        while True:
            x, lp_bound, stop = lp.solve_lp(iterations - lp.iterations, self.net.left(reserve))
            if x is None:
                self.reached.add(stop)
                x = last  # a re-solve stopped: the last LP's solution is still feasible
                break
            # The restricted LP is the LP over every pair once no left-out pair has a positive
            # reduced cost under its prices (for a fixed lead: beats the fixed pair or holding).
            missing = _priced_out(p, lp)
            if len(missing) == 0:
                bound = min(bound, lp_bound)
                break
            # The dual at the LP's prices bounds the LP over every pair: once it is that close
            # to the restricted LP, the pairs left out cannot pay for a re-solve (one took 8 s
            # at a 25k-lead region, for 4e-5 of objective).
            assert dual is not None  # every pair has a column without the dual
            at_prices = dual[0].value(lp.multipliers())
            bound = min(bound, at_prices)
            if at_prices - lp_bound <= _PRICING_STOP * settings.mip_rel_gap * abs(lp_bound):
                break
            was_fixed = lp.fixed[p.lead[missing]]
            lp.add(missing)
            last = np.concatenate([x, (missing == was_fixed).astype(float)])
        phases["lp"] = time.perf_counter() - clock
        free = (lp.fixed < 0) & self.has_pairs
        n_frac = 0
        if x is None:
            # The first LP stopped: the dual's (or the scores') greedy choice for the free leads.
            start = _greedy_fill(p, self.t, lp.fixed, free, guide)
            choice = self.polish(start, np.ones(p.n_leads, bool), bound, phases)
        else:
            rounded, fractional = lp.round(x)
            n_frac = int(fractional.sum())
            movable = np.zeros(p.n_leads, bool)  # the leads with a column
            movable[p.lead[lp.pairs]] = True
            start = _round_up(p, rounded, x, lp.pairs, fractional)
            choice = self.polish(start, movable, bound, phases)
            if self._gap(bound, choice) > settings.mip_rel_gap and settings.repair_mip_nodes:
                # A MIP over the fractional leads, every other lead as the LP rounded it: a
                # different neighbourhood from the local search's, which it left at a local
                # optimum. HiGHS proves little here (the bands make it a set of tight
                # knapsacks), so it gets a few nodes. Skipped when the local search alone
                # meets the target.
                clock = time.perf_counter()
                leads = np.flatnonzero(fractional[p.lead])
                repair = _Model(p, self.t, leads, rounded, settings.threads)
                repaired, _, stop = repair.solve_mip(
                    settings.repair_mip_nodes, self.net.left(), settings.mip_rel_gap, start
                )
                self._stopped(stop, "repair_mip_nodes")
                phases["mip"] = time.perf_counter() - clock
                method += "+mip"
                if repaired is not None and not np.array_equal(repaired, start):
                    repaired = self.polish(repaired, movable, bound, phases)
                    if self.model_value(repaired) > self.model_value(choice):
                        choice = repaired
        if (
            x is not None
            and self._gap(bound, choice) > settings.mip_rel_gap
            and len(p.lead) <= settings.full_mip_max_pairs
            and settings.full_mip_nodes
        ):
            # Small instance: a MIP over every pair is usually cheap and makes the answer
            # exact; limited, since a day of a few leads against many reps' empty fairness
            # windows can keep HiGHS branching long over a gap of hundredths of a win.
            clock = time.perf_counter()
            full = _Model(
                p, self.t, np.arange(len(p.lead)), np.full(p.n_leads, -1), settings.threads
            )
            exact, mip_bound, stop = full.solve_mip(
                settings.full_mip_nodes, self.net.left(), settings.mip_rel_gap, choice
            )
            self._stopped(stop, "full_mip_nodes")
            choice = choice if exact is None else exact
            bound = min(bound, mip_bound)
            phases["full_mip"] = time.perf_counter() - clock
            method += "+full_mip"
        if self.t.fixed_totals is not None and self.t.ramp_on:
            self.prices = self._prices(lp if x is not None else None, dual)
        return self._finish(choice, bound, n_frac, int(free.sum()), method, phases)

    def _prices(
        self, lp: _Model | None, dual: tuple[_Dual, np.ndarray] | None
    ) -> tuple[_Dual, np.ndarray] | None:
        """The dual function and the multipliers (the LP's prices, else the fitted dual's)
        with which the split solver bounds this component at a quota price of its choice."""
        if lp is None and dual is None:
            return None
        duals = dual[0] if dual is not None else _Dual(self.p, self.t)
        return duals, lp.multipliers() if lp is not None else dual[1]

    def _stopped(self, stop: str, nodes: str) -> None:
        """Record what stopped a MIP: its node limit (setting ``nodes``) or the safety net."""
        if stop:
            self.reached.add(nodes if stop == "nodes" else stop)

    def _gap(self, bound: float, choice: np.ndarray) -> float:
        return (bound - self.model_value(choice)) / max(abs(self.objective(choice)), 1e-9)

    def _finish(self, choice, bound, n_frac, n_contested, method, phases) -> Solution:
        objective = self.objective(choice)
        held = int((self.has_pairs & (choice < 0)).sum())
        shifted = bound + self.t.hold_penalty * held
        gap = max(0.0, self._gap(bound, choice)) if np.isfinite(bound) else np.inf
        if method == "empty":
            status, gap, shifted = "empty", 0.0, 0.0
        else:
            status = "optimal" if gap <= self.settings.mip_rel_gap + 1e-12 else "feasible"
        return Solution(
            choice=choice,
            status=status,
            objective=objective,
            bound=float(shifted),
            gap=float(gap),
            solve_seconds=time.perf_counter() - self.net.started,
            n_fractional=n_frac,
            n_contested=n_contested,
            method=method,
            limits_reached=tuple(sorted(self.reached)),
            phase_seconds=phases,
        )


@dataclass(frozen=True)
class _Component:
    """A connected component of the candidate graph as a problem of its own: positions of its
    leads, reps and pairs in the whole problem, and its fairness terms with fixed totals."""

    leads: np.ndarray
    reps: np.ndarray
    pairs: np.ndarray
    problem: AssignmentProblem
    terms: FairnessTerms


def _components(p: AssignmentProblem, terms: FairnessTerms) -> list[_Component]:
    """The components with candidates, largest first, when every lead with candidates can be
    assigned in them (else []).

    Components share nothing but the window totals T and TA (and the ramp quota over them).
    When every lead with candidates is assigned, T and TA are known in advance, the value band
    and the top-tier cap become per-rep constants and the components separate; the ramp quota
    is shared out by the components' ramping capacity.
    """
    n, R = p.n_leads, p.n_reps
    graph = sp.coo_matrix((np.ones(len(p.lead)), (p.lead, n + p.rep)), shape=(n + R, n + R))
    _, label = connected_components(graph, directed=False)
    lead_label, rep_label = label[:n], label[n:]
    has = np.diff(p.lead_start) > 0
    leads_of = np.bincount(lead_label[has], minlength=len(label))
    if np.any(leads_of > np.bincount(rep_label, p.capacity, len(label))):
        return []
    value, top = totals_if_all_assigned(p)
    ramp_capacity = (p.history_capacity + p.capacity) * p.ramp
    quota_weight = np.bincount(rep_label, ramp_capacity, len(label))
    ramping = quota_weight > 0
    quota_weight /= max(quota_weight.sum(), 1e-300)
    pair_label = lead_label[p.lead]
    sizes = np.bincount(pair_label, minlength=len(label))
    parts = np.unique(lead_label[has])
    out = []
    for part in parts[np.argsort(-sizes[parts], kind="stable")]:
        leads, reps = np.flatnonzero(lead_label == part), np.flatnonzero(rep_label == part)
        pairs = np.flatnonzero(pair_label == part)
        sub = AssignmentProblem(
            lead=np.searchsorted(leads, p.lead[pairs]),
            rep=np.searchsorted(reps, p.rep[pairs]),
            score=p.score[pairs],
            lead_value=p.lead_value[leads],
            top_tier=p.top_tier[leads],
            capacity=p.capacity[reps],
            ramp=p.ramp[reps],
            history_value=p.history_value[reps],
            history_top_tier=p.history_top_tier[reps],
            history_capacity=p.history_capacity[reps],
        )
        sub_terms = replace(
            terms,
            fair_share=terms.fair_share[reps],
            ramp_on=terms.ramp_on and bool(ramping[part]),
            fixed_totals=(value, top, top * quota_weight[part]),
        )
        out.append(_Component(leads, reps, pairs, sub, sub_terms))
    return out


def _solve_split(
    p: AssignmentProblem, terms: FairnessTerms, settings: SolverSettings, net: _SafetyNet
) -> Solution | None:
    """Solve each component (see :func:`_components`) on its own, or None when there are
    fewer than two or one of them has to hold a lead (the totals were then wrong).

    The components' duals, taken at one quota price, bound the whole problem (their quota
    shares add up to the quota); a local search over the whole then prices the shared quota
    exactly.
    """
    parts = _components(p, terms)
    if len(parts) < 2:
        return None
    n = p.n_leads
    choice, bound = np.full(n, -1), 0.0
    phases: dict[str, float] = {}
    n_frac = n_contested = 0
    methods = set()
    priced = []  # (dual function, multipliers) of the components with ramping reps
    # Components run side by side, one per dual thread, each under the same work limits (the
    # LP of one overlaps the dual of another). pool.map returns their answers in the
    # components' order whatever order they finish in. HiGHS runs them only with one thread
    # each.
    workers = min(settings.dual_threads, len(parts)) if settings.threads == 1 else 1
    sub_settings = settings.model_copy(
        update={"dual_threads": max(1, settings.dual_threads // workers)}
    )

    def solve(part: _Component) -> tuple[_Run, Solution]:
        sub_run = _Run(part.problem, part.terms, sub_settings, net)
        return sub_run, sub_run.solve()

    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            solved = list(pool.map(solve, parts))
    else:
        solved = [solve(part) for part in parts]
    run = _Run(p, terms, settings, net)
    for part, (sub_run, solution) in zip(parts, solved, strict=True):
        if (solution.choice < 0).any():
            return None
        choice[part.leads] = part.pairs[solution.choice]
        if part.terms.ramp_on:
            if sub_run.prices is None:
                bound = np.inf
            else:
                priced.append(sub_run.prices)
        else:
            bound += solution.bound
        for name, seconds in solution.phase_seconds.items():
            phases[name] = phases.get(name, 0.0) + seconds
        n_frac += solution.n_fractional
        n_contested += solution.n_contested
        methods.add(solution.method)
        run.reached |= set(solution.limits_reached)
    if priced:
        # The components' duals at one quota price q bound the whole problem (their quota
        # shares add up to the quota); the best of their own prices and 0.
        def at(q: float) -> float:
            return sum(d.value(np.concatenate([y[:-1], [q]])) for d, y in priced)

        bound += min(at(q) for q in {0.0, *(float(y[-1]) for _, y in priced)})
    # the reps without candidates: their (constant) penalties under the fixed totals
    alone = np.ones(p.n_reps, bool)
    alone[p.rep] = False
    value, top = totals_if_all_assigned(p)
    fixed = replace(terms, ramp_on=False, fixed_totals=(value, top, top))
    lone = slacks_of(p, fixed, np.full(n, -1))
    bound -= float(
        terms.value_penalty * (lone.value_low + lone.value_high)[alone].sum() * terms.value_on
        + terms.cap_penalty * lone.top_cap[alone].sum() * terms.cap_on
    )
    method = f"split({len(parts)}): " + "/".join(sorted(methods))
    if run._gap(bound, choice) > settings.mip_rel_gap:
        clock = time.perf_counter()
        search = _Polish(p, terms, choice, np.ones(n, bool))
        choice = search.run(
            settings.local_search_rounds,
            net.deadline(),
            lambda c: run._gap(bound, c) <= settings.mip_rel_gap / 2,
        )
        run.reached |= search.reached
        phases["polish"] = phases.get("polish", 0.0) + time.perf_counter() - clock
    return run._finish(choice, bound, n_frac, n_contested, method, phases)


def _priced_out(p: AssignmentProblem, lp: _Model) -> np.ndarray:
    """Pairs without a column that the LP's prices say would pay: for a free lead, a reduced
    score above its lead row's price; for a fixed lead (all its pairs, which frees it), any
    option, holding included, that beats its fixed pair."""
    reduced = lp.reduced_scores()
    lead_price = np.zeros(p.n_leads)
    has_row = lp.lead_row >= 0
    lead_price[has_row] = lp.row_dual[lp.lead_row[has_row]]
    fixed = lp.fixed
    is_fixed = fixed >= 0
    own = np.zeros(p.n_leads)
    own[is_fixed] = reduced[fixed[is_fixed]]
    # a fixed lead "pays" its own pair's reduced score and must also beat holding (0)
    bar = np.where(is_fixed, own, lead_price)
    tol = _TOL * (1.0 + np.abs(bar))
    in_model = np.zeros(len(p.lead), bool)
    in_model[lp.pairs] = True
    beats = (reduced > bar[p.lead] + tol[p.lead]) & ~in_model
    wrong_fixed = is_fixed & (own < -tol)
    beats |= wrong_fixed[p.lead] & ~in_model
    # a fixed lead that has to move gets all its pairs
    moved = np.zeros(p.n_leads, bool)
    moved[p.lead[beats]] = True
    return np.flatnonzero(((moved & is_fixed)[p.lead] | beats) & ~in_model)


def _near_best(
    p: AssignmentProblem,
    reduced: np.ndarray,
    leads: np.ndarray,
    within: float,
    most: int | None = None,
) -> np.ndarray:
    """Pairs of ``leads`` whose reduced score is within ``within`` of the lead's best (at
    least its two best, at most its ``most`` best)."""
    has = np.diff(p.lead_start) > 0
    best = np.full(p.n_leads, np.inf)
    best[has] = np.maximum.reduceat(reduced, p.lead_start[:-1][has])
    order = np.lexsort((-reduced, p.lead))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - p.lead_start[p.lead[order]]
    near = (reduced >= best[p.lead] - within) | (rank < 2)
    if most is not None:
        near &= rank < most
    return np.flatnonzero(near & leads[p.lead])


def _fix_by_margin(
    p: AssignmentProblem, reduced: np.ndarray, contested_share: float, min_margin: float
) -> np.ndarray:
    """(n,) pair fixed per lead (-1 = left free): leads whose best reduced score clearly wins.

    A lead's margin is its best reduced score minus the next option (holding counts as 0).
    Leads with a margin below ``min_margin`` stay free, and at least the ``contested_share``
    with the smallest margins; a rep's fixed leads never exceed its capacity (the smallest
    margins are freed first).
    """
    start = p.lead_start
    has = np.diff(start) > 0
    order = np.lexsort((-reduced, p.lead))
    first = order[start[:-1][has]]
    leads = p.lead[first]
    best = reduced[first]
    rest = reduced.copy()
    rest[first] = -np.inf
    second = np.maximum(0.0, np.maximum.reduceat(rest, start[:-1])[has]) if len(rest) else best
    margin = best - second
    n_contested = int(np.ceil(contested_share * len(leads)))
    keep = np.zeros(len(leads), bool)
    if n_contested < len(leads):
        keep[np.argsort(-margin, kind="stable")[: len(leads) - n_contested]] = True
    keep &= (best > 0) & (margin >= min_margin)
    idx = np.flatnonzero(keep)
    reps = p.rep[first[idx]]
    by_rep = np.lexsort((-margin[idx], reps))
    idx, reps = idx[by_rep], reps[by_rep]
    rank = np.arange(len(idx)) - np.searchsorted(reps, reps)
    keep[idx[rank >= p.capacity[reps]]] = False
    fixed = np.full(p.n_leads, -1)
    fixed[leads[keep]] = first[keep]
    return fixed


class _Slab:
    """Some leads (with pairs) as a dense (lead x slot) table for :class:`_Dual`: each cell's
    pair (-1: padding), rep, score + H (-inf: padding), and per row the lead's value and
    top-tier flag; float32 copies for the smoothed dual."""

    def __init__(self, p: AssignmentProblem, t: FairnessTerms, leads: np.ndarray):
        start = p.lead_start[leads]
        counts = p.lead_start[leads + 1] - start
        rows = np.repeat(np.arange(len(leads)), counts)
        slots = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        pairs = np.repeat(start, counts) + slots
        shape = (len(leads), int(counts.max()))
        self.pair = np.full(shape, -1)
        self.pair[rows, slots] = pairs
        self.rep = np.zeros(shape, dtype=np.int64)
        self.rep[rows, slots] = p.rep[pairs]
        self.base = np.full(shape, -np.inf)
        self.base[rows, slots] = p.score[pairs] + t.hold_penalty
        self.e = p.lead_value[leads][:, None]
        self.top = p.top_tier[leads].astype(float)[:, None]
        # The smoothed dual runs in float32: half the memory traffic, and L-BFGS stops once
        # float32 can no longer tell its steps apart (a line-search exit), which at 20k x 200
        # came after about a third of float64's iterations with a dual as good for fixing and
        # pricing (the LP certifies the result either way); the bound is taken in float64.
        self.single = tuple(a.astype(np.float32) for a in (self.base, self.e, self.top))


class _Dual:
    """The Lagrangian dual of the LP over the fairness and capacity rows.

    Multipliers y = [v (capacity, R), a (value low, R), g (value high, R), c (top-tier cap, R),
    q (ramp quota, 1)], present only for the active constraints, with box bounds from the
    slack penalties. For a pair (l, r) the reduced score is
    ``score + H - v_r + e_l * w_r + top_l * z_r`` and D(y) = sum_l max(0, max_r reduced) +
    constant(y) - H * n is an upper bound on the LP for every y in the box.
    """

    def __init__(self, problem: AssignmentProblem, terms: FairnessTerms, workers: int = 1):
        self.p, self.t, self.workers = problem, terms, workers
        counts = np.diff(problem.lead_start)
        leads = np.flatnonzero(counts > 0)
        leads = leads[np.argsort(counts[leads], kind="stable")]
        # Leads in slabs of similar pair counts, each a dense (lead x slot) table: row
        # reductions replace segment reductions (2-3x faster), and a few leads with every rep
        # as a candidate do not widen the table of all the others (one table was 84% padding
        # at 100k x 500).
        edges, sorted_counts = [0], counts[leads]
        while edges[-1] < len(leads):
            widest = np.floor(sorted_counts[edges[-1]] * _SLAB_GROWTH)
            edges.append(int(np.searchsorted(sorted_counts, widest, "right")))
        self.slabs = [
            _Slab(problem, terms, leads[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]
        R = problem.n_reps
        self.sizes = {
            "v": R,
            "a": R * terms.value_on,
            "g": R * terms.value_on,
            "c": R * terms.cap_on,
            "q": int(terms.ramp_on),
        }
        self.offset = terms.hold_penalty * len(leads)
        # each slab in contiguous blocks of rows, one per worker thread (see _smoothed)
        self.blocks = []
        for slab in self.slabs:
            rows = len(slab.pair)
            parts = max(1, min(workers, rows // _MIN_BLOCK_ROWS))
            cut = np.linspace(0, rows, parts + 1).astype(int)
            self.blocks += [(slab, slice(a, b)) for a, b in zip(cut[:-1], cut[1:], strict=True)]
        self._pool: ThreadPoolExecutor | None = None
        self.eps = 0.0  # the last temperature fitted
        self.reached: set[str] = set()  # the limits that stopped fit

    def split(self, y: np.ndarray) -> dict[str, np.ndarray]:
        out, at = {}, 0
        for name, size in self.sizes.items():
            out[name] = y[at : at + size]
            at += size
        return out

    def bounds(self) -> list[tuple[float, float | None]]:
        t = self.t
        box = {"v": (0.0, None), "a": (0.0, t.value_penalty), "g": (0.0, t.value_penalty)}
        box |= {"c": (0.0, t.cap_penalty), "q": (0.0, t.ramp_penalty)}
        return [box[name] for name, size in self.sizes.items() for _ in range(size)]

    def reduced(self, y: np.ndarray) -> np.ndarray:
        """(J,) reduced score of every pair."""
        out = np.empty(len(self.p.lead))
        for slab in self.slabs:
            on = slab.pair >= 0
            out[slab.pair[on]] = self._dense(y, slab)[on]
        return out

    def _dense(
        self, y: np.ndarray, slab: _Slab, single: bool = False, rows: slice = slice(None)
    ) -> np.ndarray:
        """(leads x slots) reduced scores of a slab's ``rows``, in float32 when ``single``."""
        parts, t, p = self.split(y), self.t, self.p
        base, e, top = slab.single if single else (slab.base, slab.e, slab.top)
        base, e, top, rep = base[rows], e[rows], top[rows], slab.rep[rows]
        cast = np.float32 if single else np.float64
        d = base - parts["v"].astype(cast)[rep]
        f = t.fair_share
        # with window totals summed over the reps, each multiplier also prices the total
        coupled = t.fixed_totals is None
        if t.value_on:
            a, g = parts["a"], parts["g"]
            w = a - g
            if coupled:
                w = w - (1 - t.band) * (a @ f) + (1 + t.band) * (g @ f)
            d += e * w.astype(cast)[rep]
        if t.tier_on:
            z = np.zeros(p.n_reps)
            if t.cap_on:
                c = parts["c"]
                z += t.max_share * c.sum() * coupled - c
            if t.ramp_on:
                z += parts["q"][0] * (p.ramp - t.min_share * coupled)
            d += top * z.astype(cast)[rep]
        return d

    def _constant(self, parts: dict[str, np.ndarray]) -> float:
        p, t = self.p, self.t
        out = float(parts["v"] @ p.capacity)
        hv, ha = p.history_value, p.history_top_tier
        # coupled: the history's part of the totals (today's leads' part is in _dense)
        lo, hi, cap, quota = t.limits(hv.sum(), ha.sum())
        if t.value_on:
            out += parts["a"] @ (hv - lo) + parts["g"] @ (hi - hv)
        if t.cap_on:
            out += parts["c"] @ (cap - ha)
        if t.ramp_on:
            out += parts["q"][0] * (ha[p.ramp].sum() - quota)
        return out

    def value(self, y: np.ndarray) -> float:
        """D(y): a valid upper bound on the model's LP (and MIP) objective."""
        best = sum(
            float(np.maximum(self._dense(y, slab).max(axis=1, initial=0.0), 0.0).sum())
            for slab in self.slabs
        )
        return best + self._constant(self.split(y)) - self.offset

    def _block(
        self, y: np.ndarray, eps: float, slab: _Slab, rows: slice
    ) -> tuple[float, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The smoothed dual's sums over a slab's leads ``rows``: value, and per rep the
        expected leads, lead value and top-tier leads under the smoothed choice."""
        t, R = self.t, self.p.n_reps
        d = self._dense(y, slab, single=True, rows=rows)
        top = d.max(axis=1, initial=0.0)
        # floored at e^-80: subnormal floats below that are slow and change nothing
        ex = np.exp(np.maximum((d - top[:, None]) * np.float32(1 / eps), np.float32(-80)))
        total = ex.sum(axis=1, dtype=np.float64) + np.exp(-top.astype(np.float64) / eps)
        value = float(np.sum(top + eps * np.log(total)))
        prob = ex / total[:, None]
        reps = slab.rep[rows].ravel()
        got = np.bincount(reps, (prob * slab.e[rows]).ravel(), R) if t.value_on else None
        got_top = np.bincount(reps, (prob * slab.top[rows]).ravel(), R) if t.tier_on else None
        return value, np.bincount(reps, prob.ravel(), R), got, got_top

    def _smoothed(self, y: np.ndarray, eps: float) -> tuple[float, np.ndarray]:
        """Entropy-smoothed D (an upper bound on D) and its gradient, summed over blocks of
        leads in parallel (numpy releases the GIL in the heavy parts)."""
        p, t, parts = self.p, self.t, self.split(y)
        if self._pool is None:
            sums = [self._block(y, eps, *block) for block in self.blocks]
        else:
            sums = list(self._pool.map(lambda block: self._block(y, eps, *block), self.blocks))
        value = sum(b[0] for b in sums) + self._constant(parts) - self.offset
        grads = [p.capacity - sum(b[1] for b in sums)]
        got = p.history_value + sum(b[2] for b in sums) if t.value_on else p.history_value
        got_top = p.history_top_tier + sum(b[3] for b in sums) if t.tier_on else None
        lo, hi, cap, quota = t.limits(got.sum(), got_top.sum() if t.tier_on else 0.0)
        if t.value_on:
            grads += [got - lo, hi - got]
        if t.cap_on:
            grads.append(cap - got_top)
        if t.ramp_on:
            grads.append(np.array([got_top[p.ramp].sum() - quota]))
        return value, np.concatenate(grads)

    def fit(self, iterations: int, deadline: float) -> np.ndarray:
        """Minimise the smoothed dual with decreasing temperature (L-BFGS-B, box bounds), at
        most ``iterations`` per temperature, with the best point so far when the safety net's
        ``deadline`` (perf_counter seconds) passes first; ``reached`` names what stopped it."""

        def stop(_) -> None:
            if time.perf_counter() > deadline:
                self.reached.add(TIME_LIMIT)
                raise StopIteration

        y = np.zeros(sum(self.sizes.values()))
        p = self.p
        has = np.diff(p.lead_start) > 0
        scale = (
            float(np.maximum.reduceat(p.score, p.lead_start[:-1][has]).mean()) if has.any() else 0
        )
        scale = max(scale, 1e-9)
        bounds = self.bounds()
        self.eps = scale * _EPSILONS[0]
        pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else nullcontext()
        active = self
        with pool as self._pool:
            for stage, factor in enumerate(_EPSILONS):
                if time.perf_counter() > deadline:
                    self.reached.add(TIME_LIMIT)
                    break
                if stage > 0:
                    # A colder stage only sees the pairs within _PRUNE_WIDTH of their lead's
                    # best at the last temperature: the others weigh nothing in it, and leaving
                    # them out makes each evaluation several times cheaper. The bound and
                    # pricing still look at every pair.
                    active = self._near_best(y, _PRUNE_WIDTH * self.eps)
                    active._pool = self._pool
                result = minimize(
                    active._smoothed,
                    y,
                    args=(max(scale * factor, 1e-12),),
                    jac=True,
                    method="L-BFGS-B",
                    bounds=bounds,
                    callback=stop,
                    options={"maxiter": iterations, "maxcor": 20, "ftol": 1e-9, "gtol": 1e-6},
                )
                if result.nit >= iterations:
                    self.reached.add("dual_iterations")
                y = result.x
                self.eps = scale * factor
        self._pool = active._pool = None
        return y

    def _near_best(self, y: np.ndarray, width: float) -> _Dual:
        """The dual over the pairs whose reduced score is within ``width`` of their lead's best
        (at least two per lead), same leads, reps and multipliers."""
        p = self.p
        keep = _near_best(p, self.reduced(y), np.ones(p.n_leads, bool), width)
        sub = replace(p, lead=p.lead[keep], rep=p.rep[keep], score=p.score[keep])
        return _Dual(sub, self.t, self.workers)


class _Model:
    """The HiGHS model with columns for the pairs of the free leads, every other lead fixed.

    Rows: one per lead with candidates (a fixed lead's row stays empty), then capacity (R),
    then, with the value band, Vdef (R), low (R), high (R), Tdef, then, with a top-tier rule,
    Ndef (R), TAdef, ramp, cap (R). Columns: the auxiliaries V (R), slack_low (R),
    slack_high (R), T, N (R), TA, slack_ramp, slack_cap (R) as the rules need, then one x column
    per free pair. With fixed totals (a component of a split problem) there are no T and TA
    columns or their rows: the limits are constants in the row bounds. Fixed leads enter
    through the bounds of the capacity, Vdef and Ndef rows and the objective offset, so
    :meth:`add` can add pairs (releasing their leads) to a model whose HiGHS instance then
    warm-starts from its last basis.
    """

    def __init__(
        self,
        p: AssignmentProblem,
        t: FairnessTerms,
        pairs: np.ndarray,
        fixed: np.ndarray,
        threads: int,
    ):
        """``pairs``: the pairs with a column (sorted); their leads are free, every other lead
        keeps ``fixed`` (-1: held)."""
        self.p, self.t, self.threads = p, t, threads
        has = np.diff(p.lead_start) > 0
        self.n_with_pairs = int(has.sum())
        self.lead_row = np.full(p.n_leads, -1)
        self.lead_row[has] = np.arange(self.n_with_pairs)
        self.pairs = pairs
        self.fixed = fixed.copy()
        self.fixed[p.lead[pairs]] = -1
        self.h: highspy.Highs | None = None
        self.iterations = 0  # simplex iterations of every LP solve so far
        self.lp = self._build()

    # --- rows that carry the fixed leads -----------------------------------------------------

    def _fixed_terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Fixed leads' capacity use, value and top-tier leads per rep (history included),
        and their constant in the objective."""
        p, R = self.p, self.p.n_reps
        leads = np.flatnonzero(self.fixed >= 0)
        pairs = self.fixed[leads]
        reps = p.rep[pairs]
        used = np.bincount(reps, minlength=R).astype(float)
        value = p.history_value + np.bincount(reps, p.lead_value[leads], R)
        top = p.history_top_tier + np.bincount(reps, p.top_tier[leads].astype(float), R)
        offset = float((p.score[pairs] + self.t.hold_penalty).sum())
        return used, value, top, offset - self.t.hold_penalty * self.n_with_pairs

    def _x_columns(self, pairs: np.ndarray) -> sp.csc_matrix:
        p, t = self.p, self.t
        J = len(pairs)
        lead, rep = p.lead[pairs], p.rep[pairs]
        rows = [self.lead_row[lead], self.cap_row + rep]
        cols = [np.arange(J), np.arange(J)]
        vals = [np.ones(J), np.ones(J)]
        if t.value_on:
            rows.append(self.vdef_row + rep)
            cols.append(np.arange(J))
            vals.append(p.lead_value[lead])
        if t.tier_on:
            top = np.flatnonzero(p.top_tier[lead])
            rows.append(self.ndef_row + rep[top])
            cols.append(top)
            vals.append(np.ones(len(top)))
        return sp.csc_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(self.n_rows, J),
        )

    def _build(self) -> highspy.HighsLp:
        p, t, R = self.p, self.t, self.p.n_reps
        reps = np.arange(R)
        rows, cols, vals = [], [], []
        cost, upper = [], []
        row_lo = [np.full(self.n_with_pairs, -_INF), np.full(R, -_INF)]
        row_hi = [np.ones(self.n_with_pairs), np.zeros(R)]  # capacity bounds set below
        n_rows, n_cols = self.n_with_pairs + R, 0
        self.cap_row = self.n_with_pairs
        self.vdef_row = self.ndef_row = -1

        def add(r, c, v):
            rows.append(np.asarray(r, dtype=np.int64))
            cols.append(np.asarray(c, dtype=np.int64))
            vals.append(np.broadcast_to(np.asarray(v, dtype=float), np.shape(r)))

        def new_cols(k, c):
            nonlocal n_cols
            cost.append(np.broadcast_to(np.asarray(c, dtype=float), (k,)))
            upper.append(np.full(k, _INF))
            n_cols += k
            return n_cols - k

        def new_rows(k, lo, hi):
            nonlocal n_rows
            row_lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (k,)))
            row_hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (k,)))
            n_rows += k
            return n_rows - k

        f = t.fair_share
        # With fixed totals the limits are constants in the row bounds; otherwise the totals
        # T and TA are columns (the sums of V and N) and the limits are rows in them.
        coupled = t.fixed_totals is None
        low, high, top_cap, quota = t.limits(0.0, 0.0)
        self.ramp_row = -1
        if t.value_on:
            V = new_cols(R, 0.0)
            s_lo, s_hi = new_cols(R, -t.value_penalty), new_cols(R, -t.value_penalty)
            self.vdef_row = new_rows(R, 0.0, 0.0)
            add(self.vdef_row + reps, V + reps, -1.0)
            self.lo_row = lo = new_rows(R, low, _INF)
            add(lo + reps, V + reps, 1.0)
            add(lo + reps, s_lo + reps, 1.0)
            self.hi_row = hi = new_rows(R, -_INF, high)
            add(hi + reps, V + reps, 1.0)
            add(hi + reps, s_hi + reps, -1.0)
            if coupled:
                T = new_cols(1, 0.0)
                tdef = new_rows(1, 0.0, 0.0)
                add(np.full(R, tdef), V + reps, 1.0)
                add([tdef], [T], -1.0)
                add(lo + reps, np.full(R, T), -(1 - t.band) * f)
                add(hi + reps, np.full(R, T), -(1 + t.band) * f)
        if t.tier_on:
            N = new_cols(R, 0.0)
            self.ndef_row = new_rows(R, 0.0, 0.0)
            add(self.ndef_row + reps, N + reps, -1.0)
            if coupled:
                TA = new_cols(1, 0.0)
                tadef = new_rows(1, 0.0, 0.0)
                add(np.full(R, tadef), N + reps, 1.0)
                add([tadef], [TA], -1.0)
            if t.ramp_on:
                s_ramp = new_cols(1, -t.ramp_penalty)
                self.ramp_row = ramp = new_rows(1, quota, _INF)
                ramping = np.flatnonzero(p.ramp)
                add(np.full(len(ramping), ramp), N + ramping, 1.0)
                add([ramp], [s_ramp], 1.0)
                if coupled:
                    add([ramp], [TA], -t.min_share)
            if t.cap_on:
                s_cap = new_cols(R, -t.cap_penalty)
                self.topcap_row = cap = new_rows(R, -_INF, top_cap)
                add(cap + reps, N + reps, 1.0)
                add(cap + reps, s_cap + reps, -1.0)
                if coupled:
                    add(cap + reps, np.full(R, TA), -t.max_share)
        self.n_rows, self.n_aux = n_rows, n_cols
        aux = sp.csc_matrix(
            (
                np.concatenate(vals) if vals else np.zeros(0),
                (
                    np.concatenate(rows) if rows else np.zeros(0, int),
                    np.concatenate(cols) if cols else np.zeros(0, int),
                ),
            ),
            shape=(n_rows, n_cols),
        )
        matrix = sp.hstack([aux, self._x_columns(self.pairs)], format="csc")
        self.row_lo, self.row_hi = np.concatenate(row_lo), np.concatenate(row_hi)
        offset = self._set_fixed_bounds()
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = matrix.shape[1], n_rows
        lp.col_cost_ = np.concatenate([*cost, p.score[self.pairs] + t.hold_penalty])
        lp.col_lower_ = np.zeros(matrix.shape[1])
        lp.col_upper_ = np.concatenate([*upper, np.ones(len(self.pairs))])
        lp.row_lower_, lp.row_upper_ = self.row_lo, self.row_hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr
        lp.a_matrix_.index_ = matrix.indices
        lp.a_matrix_.value_ = matrix.data
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.offset_ = offset
        return lp

    def _set_fixed_bounds(self) -> float:
        """Write the fixed leads into the row bounds; returns the objective offset."""
        R = self.p.n_reps
        used, value, top, offset = self._fixed_terms()
        self.row_hi[self.cap_row : self.cap_row + R] = self.p.capacity - used
        if self.vdef_row >= 0:
            self.row_lo[self.vdef_row : self.vdef_row + R] = -value
            self.row_hi[self.vdef_row : self.vdef_row + R] = -value
        if self.ndef_row >= 0:
            self.row_lo[self.ndef_row : self.ndef_row + R] = -top
            self.row_hi[self.ndef_row : self.ndef_row + R] = -top
        return offset

    def add(self, new: np.ndarray) -> None:
        """Give the pairs ``new`` columns; a fixed lead among theirs is released (its share
        leaves the row bounds). The HiGHS instance keeps its basis for the next solve."""
        self.fixed[self.p.lead[new]] = -1
        offset = self._set_fixed_bounds()
        columns = self._x_columns(new)
        self.pairs = np.concatenate([self.pairs, new])
        assert self.h is not None
        self.h.addCols(
            len(new),
            self.p.score[new] + self.t.hold_penalty,
            np.zeros(len(new)),
            np.ones(len(new)),
            columns.nnz,
            columns.indptr[:-1].astype(np.int32),
            columns.indices.astype(np.int32),
            columns.data,
        )
        rows = np.arange(self.n_rows, dtype=np.int32)
        self.h.changeRowsBounds(len(rows), rows, self.row_lo, self.row_hi)
        self.h.changeObjectiveOffset(offset)

    def multipliers(self) -> np.ndarray:
        """The last LP's row prices as the multipliers of :class:`_Dual` (same order)."""
        R, t, y = self.p.n_reps, self.t, self.row_dual
        parts = [y[self.cap_row : self.cap_row + R]]
        if t.value_on:
            parts += [-y[self.lo_row : self.lo_row + R], y[self.hi_row : self.hi_row + R]]
        if t.cap_on:
            parts.append(y[self.topcap_row : self.topcap_row + R])
        if t.ramp_on:
            parts.append(-y[self.ramp_row : self.ramp_row + 1])
        return np.maximum(np.concatenate(parts), 0.0)

    # --- solving ------------------------------------------------------------------------------

    def _highs(self, time_limit: float, mip_rel_gap: float | None = None) -> highspy.Highs:
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", self.threads)
        h.setOptionValue("random_seed", 0)
        h.setOptionValue("time_limit", float(time_limit))
        if mip_rel_gap is not None:
            h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
        return h

    def _x(self, h: highspy.Highs) -> np.ndarray:
        return np.asarray(h.getSolution().col_value)[self.n_aux :]

    def solve_lp(self, iterations: int, time_limit: float) -> tuple[np.ndarray | None, float, str]:
        """LP relaxation within ``iterations`` simplex iterations (and the safety net's
        ``time_limit`` seconds): (x over self.pairs, objective, ""), or (None, inf, the limit
        that stopped it). A second call (after :meth:`add`) warm-starts from the previous
        basis; :attr:`iterations` counts every call's."""
        if iterations <= 0:
            return None, np.inf, "lp_iterations_per_row"
        if self.h is None:
            self.h = self._highs(time_limit)
            # presolve takes as long as the simplex on these LPs and saves it nothing: with it
            # off, a 25k-lead region's first LP took 7.5 s instead of 15 s
            self.h.setOptionValue("presolve", "off")
            self.h.passModel(self.lp)
        else:
            # HiGHS's time limit counts every run of an instance, not only the next one
            self.h.setOptionValue("time_limit", self.h.getRunTime() + float(time_limit))
        self.h.setOptionValue("simplex_iteration_limit", int(iterations))
        self.h.run()
        self.iterations += max(0, self.h.getInfo().simplex_iteration_count)
        status = self.h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            stop = {
                highspy.HighsModelStatus.kIterationLimit: "lp_iterations_per_row",
                highspy.HighsModelStatus.kTimeLimit: TIME_LIMIT,
            }.get(status, "")
            return None, np.inf, stop
        self.row_dual = np.asarray(self.h.getSolution().row_dual)
        return self._x(self.h), self.h.getInfo().objective_function_value, ""

    def reduced_scores(self) -> np.ndarray:
        """(J,) every problem pair's reduced score under the last LP's row prices, lead rows
        left out: score + H minus the prices of its rep's capacity, value and top-tier rows
        (HiGHS reports col_dual = cost - A^T y)."""
        p, R, y = self.p, self.p.n_reps, self.row_dual
        d = p.score + self.t.hold_penalty - y[self.cap_row : self.cap_row + R][p.rep]
        if self.vdef_row >= 0:
            d = d - p.lead_value[p.lead] * y[self.vdef_row : self.vdef_row + R][p.rep]
        if self.ndef_row >= 0:
            d = d - p.top_tier[p.lead] * y[self.ndef_row : self.ndef_row + R][p.rep]
        return d

    def round(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integral leads of an LP solution become choices; returns (choice, fractional mask)."""
        choice = self.fixed.copy()
        ones = x > 1 - _TOL
        choice[self.p.lead[self.pairs[ones]]] = self.pairs[ones]
        between = (x > _TOL) & ~ones
        fractional = np.zeros(self.p.n_leads, bool)
        fractional[self.p.lead[self.pairs[between]]] = True
        choice[fractional] = -1
        return choice, fractional

    def solve_mip(
        self, nodes: int, time_limit: float, mip_rel_gap: float, start: np.ndarray | None
    ) -> tuple[np.ndarray | None, float, str]:
        """MIP over the free pairs within ``nodes`` branch-and-bound nodes (and the safety
        net's ``time_limit`` seconds): (the fixed choices plus the best found, or None if none;
        HiGHS's dual bound, valid for the whole problem only when nothing is fixed; "nodes" or
        TIME_LIMIT when that limit stopped it, else "")."""
        lp = self.lp
        lp.integrality_ = [highspy.HighsVarType.kContinuous] * self.n_aux + [
            highspy.HighsVarType.kInteger
        ] * len(self.pairs)
        h = self._highs(time_limit, mip_rel_gap)
        h.setOptionValue("mip_max_nodes", int(nodes))
        for name, value in _MIP_OPTIONS.items():
            h.setOptionValue(name, value)
        h.passModel(lp)
        if start is not None:
            on = self.n_aux + np.flatnonzero(np.isin(self.pairs, start[start >= 0]))
            h.setSolution(len(on), on.astype(np.int32), np.ones(len(on)))
        h.run()
        stop = {
            # HiGHS reports a node limit as a solution limit
            highspy.HighsModelStatus.kSolutionLimit: "nodes",
            highspy.HighsModelStatus.kTimeLimit: TIME_LIMIT,
        }.get(h.getModelStatus(), "")
        info = h.getInfo()
        if info.primal_solution_status != highspy.SolutionStatus.kSolutionStatusFeasible:
            return None, np.inf, stop
        choice = self.fixed.copy()
        on = self._x(h) > 0.5
        choice[self.p.lead[self.pairs[on]]] = self.pairs[on]
        return choice, info.mip_dual_bound, stop


class _Polish:
    """Local search on an integral assignment: moves and swaps that raise the objective.

    With the set of assigned leads fixed, the window totals T and TA are constants, so each
    rep's penalty depends on its own value V_r and top-tier count N_r only (the ramp quota on
    the ramping reps' total): a move is scored exactly from the two reps it touches. Every
    round scores all relocations to reps with room and all swaps that involve a rep outside
    its band or move a lead to a rep it scores better with, then applies the best moves that
    touch disjoint reps. When none gains, a held lead may take an assigned lead's place (see
    :meth:`_exchange_held`). Only the ``movable`` leads ((n,) bool) move, to any of their pairs.
    """

    def __init__(
        self, p: AssignmentProblem, t: FairnessTerms, choice: np.ndarray, movable: np.ndarray
    ):
        self.p, self.t = p, t
        self.choice = choice.copy()
        self.movable = movable
        self.movable_pairs = np.flatnonzero(movable[p.lead])
        assigned = choice >= 0
        R = p.n_reps
        reps = p.rep[choice[assigned]]
        leads = np.flatnonzero(assigned)
        self.V = p.history_value + np.bincount(reps, p.lead_value[leads], R)
        self.N = p.history_top_tier + np.bincount(reps, p.top_tier[leads].astype(float), R)
        self.used = np.bincount(reps, minlength=R)
        self.lo, self.hi, self.top_cap, self.quota = t.limits(self.V.sum(), self.N.sum())
        self.reached: set[str] = set()  # the limit that stopped run, if one did

    def rep_penalty(self, r: np.ndarray, V: np.ndarray, N: np.ndarray) -> np.ndarray:
        t = self.t
        out = np.zeros(np.shape(r))
        if t.value_on:
            out = out + t.value_penalty * (
                np.maximum(0, self.lo[r] - V) + np.maximum(0, V - self.hi[r])
            )
        if t.cap_on:
            out = out + t.cap_penalty * np.maximum(0, N - self.top_cap)
        return out

    def ramp_penalty(self, ramp_top: np.ndarray | float) -> np.ndarray | float:
        if not self.t.ramp_on:
            return np.zeros(np.shape(ramp_top)) if np.ndim(ramp_top) else 0.0
        return self.t.ramp_penalty * np.maximum(0, self.quota - ramp_top)

    def _moves(self) -> dict[str, np.ndarray]:
        """Every candidate pair that would move an assigned lead to another rep."""
        p, choice = self.p, self.choice
        j = self.movable_pairs
        cur = choice[p.lead[j]]
        ok = cur >= 0
        ok[ok] = p.rep[cur[ok]] != p.rep[j[ok]]
        j, cur = j[ok], cur[ok]
        lead = p.lead[j]
        return {
            "pair": j,
            "lead": lead,
            "src": p.rep[cur],
            "dst": p.rep[j],
            "gain": p.score[j] - p.score[choice[lead]],
            "e": p.lead_value[lead],
            "a": p.top_tier[lead].astype(float),
        }

    def run(self, rounds: int, deadline: float, good_enough) -> np.ndarray:
        """Improve until no move gains, ``good_enough(choice)``, ``rounds`` rounds or the
        safety net's ``deadline`` (perf_counter seconds); ``reached`` names the limit that
        stopped it, if one did."""
        p = self.p
        ramp = p.ramp.astype(float)
        for _ in range(rounds):
            if good_enough(self.choice):
                return self.choice
            if time.perf_counter() >= deadline:
                self.reached.add(TIME_LIMIT)
                return self.choice
            m = self._moves()
            if len(m["pair"]) == 0:
                if self._insert_held() or self._exchange_held():
                    continue
                return self.choice
            V, N = self.V, self.N
            base = self.rep_penalty(np.arange(p.n_reps), V, N)
            ramp_top = float(N[p.ramp].sum())
            ramp_now = self.ramp_penalty(ramp_top)
            src, dst, e, a = m["src"], m["dst"], m["e"], m["a"]
            # relocations
            room = self.used[dst] < p.capacity[dst]
            gain = m["gain"] - (
                self.rep_penalty(src, V[src] - e, N[src] - a)
                - base[src]
                + self.rep_penalty(dst, V[dst] + e, N[dst] + a)
                - base[dst]
                + self.ramp_penalty(ramp_top + a * (ramp[dst] - ramp[src]))
                - ramp_now
            )
            gain = np.where(room, gain, -np.inf)
            cands = [
                (
                    gain,
                    m["lead"],
                    np.full(len(gain), -1),
                    src,
                    dst,
                    m["pair"],
                    np.full(len(gain), -1),
                )
            ]
            # swaps: move 1 takes a lead src -> dst, move 2 takes another dst -> src
            hot = base > 1e-12
            if ramp_now > 1e-12:
                hot |= p.ramp
            # a swap that gains needs one half that gains on its own unless a rep is outside
            # its band: listing only those halves keeps the join small, and so does keeping
            # the best few moves of each (from, to) rep pair; their partners are the best few
            # too, or every move when a rep is outside its band (the swap that mends a band
            # is chosen by the leads' values, not their scores: 2,000 x 50 gap 2.7e-3 -> 9.6e-4)
            key = src * p.n_reps + dst
            by_key = np.lexsort((-m["gain"], key))
            rank = np.empty(len(key), dtype=np.int64)
            rank[by_key] = np.arange(len(key)) - np.searchsorted(key[by_key], key[by_key])
            best_few = rank < _SWAP_PARTNERS
            one = np.flatnonzero(best_few & ((m["gain"] > 0) | hot[src] | hot[dst]))
            key1 = key[one]
            two = np.flatnonzero(best_few | hot[src] | hot[dst])
            order = two[np.argsort(dst[two] * p.n_reps + src[two], kind="stable")]
            key2 = dst[order] * p.n_reps + src[order]
            lo_ = np.searchsorted(key2, key1, "left")
            hi_ = np.searchsorted(key2, key1, "right")
            count = hi_ - lo_
            i1 = np.repeat(one, count)
            i2 = order[np.repeat(lo_ - np.cumsum(count) + count, count) + np.arange(count.sum())]
            if len(i1):
                r, r2 = src[i1], dst[i1]
                de, da = e[i2] - e[i1], a[i2] - a[i1]
                swap_gain = (
                    m["gain"][i1]
                    + m["gain"][i2]
                    - (
                        self.rep_penalty(r, V[r] + de, N[r] + da)
                        - base[r]
                        + self.rep_penalty(r2, V[r2] - de, N[r2] - da)
                        - base[r2]
                        + self.ramp_penalty(ramp_top + da * (ramp[r] - ramp[r2]))
                        - ramp_now
                    )
                )
                cands.append(
                    (swap_gain, m["lead"][i1], m["lead"][i2], r, r2, m["pair"][i1], m["pair"][i2])
                )
            gains, l1, l2, ra, rb, j1, j2 = (np.concatenate(c) for c in zip(*cands, strict=True))
            good = np.flatnonzero(gains > 1e-9)
            if len(good) == 0:
                if self._insert_held() or self._exchange_held():
                    continue
                return self.choice
            touched = np.zeros(p.n_reps, bool)
            ramp_moved = False
            for k in good[np.argsort(-gains[good], kind="stable")]:
                if touched[ra[k]] or touched[rb[k]]:
                    continue
                moves_top = self.p.top_tier[l1[k]] or (l2[k] >= 0 and self.p.top_tier[l2[k]])
                if self.t.ramp_on and moves_top and ramp[ra[k]] != ramp[rb[k]]:
                    if ramp_moved:
                        continue
                    ramp_moved = True
                touched[ra[k]] = touched[rb[k]] = True
                self._apply(l1[k], j1[k], ra[k], rb[k])
                if l2[k] >= 0:
                    self._apply(l2[k], j2[k], rb[k], ra[k])
        self.reached.add("local_search_rounds")
        return self.choice

    def _insert_held(self) -> bool:
        """Give each held lead with a rep with room (moves can free one) its best such rep."""
        p, placed = self.p, False
        held = self.movable_pairs[self.choice[p.lead[self.movable_pairs]] < 0]
        for j in held[self.used[p.rep[held]] < p.capacity[p.rep[held]]]:
            lead, r = p.lead[j], p.rep[j]
            if self.choice[lead] < 0 and self.used[r] < p.capacity[r]:
                options = np.arange(p.lead_start[lead], p.lead_start[lead + 1])
                options = options[self.used[p.rep[options]] < p.capacity[p.rep[options]]]
                best = options[np.argmax(p.score[options])]
                self.choice[lead] = best
                self.used[p.rep[best]] += 1
                self.V[p.rep[best]] += p.lead_value[lead]
                self.N[p.rep[best]] += float(p.top_tier[lead])
                placed = True
        if placed:
            self.lo, self.hi, self.top_cap, self.quota = self.t.limits(self.V.sum(), self.N.sum())
        return placed

    def _exchange_held(self) -> bool:
        """Apply the best exchange of a held lead for an assigned lead of one of its reps (held
        instead), if one gains. When capacity is short, which leads are held decides the
        reps' values; an exchange changes the window totals, so the _EXCHANGE_TRIES best by
        their two reps' penalties at the old totals are scored exactly."""
        p, t, choice = self.p, self.t, self.choice
        pairs = self.movable_pairs[choice[p.lead[self.movable_pairs]] < 0]
        assigned = np.flatnonzero((choice >= 0) & self.movable)
        if len(pairs) == 0 or len(assigned) == 0:
            return False
        at = p.rep[choice[assigned]]
        by_rep = np.argsort(at, kind="stable")
        assigned, at = assigned[by_rep], at[by_rep]
        first = np.searchsorted(at, p.rep[pairs], "left")
        count = np.searchsorted(at, p.rep[pairs], "right") - first
        pair = np.repeat(pairs, count)
        out = assigned[np.repeat(first - np.cumsum(count) + count, count) + np.arange(count.sum())]
        # a lead is only held when every rep it could go to is full
        room = self.used < p.capacity
        could_move = np.bincount(p.lead, room[p.rep], p.n_leads) > 0
        pair, out = pair[~could_move[out]], out[~could_move[out]]
        if len(pair) == 0:
            return False
        lead, r = p.lead[pair], p.rep[pair]
        de = p.lead_value[lead] - p.lead_value[out]
        da = p.top_tier[lead].astype(float) - p.top_tier[out]
        V, N = self.V, self.N
        ramp_top = float(N[p.ramp].sum())
        approx = (
            p.score[pair]
            - p.score[choice[out]]
            - (self.rep_penalty(r, V[r] + de, N[r] + da) - self.rep_penalty(r, V[r], N[r]))
            - (self.ramp_penalty(ramp_top + da * p.ramp[r]) - self.ramp_penalty(ramp_top))
        )
        now = objective(p, t, choice)
        best, best_gain = -1, 1e-9
        for k in np.argsort(-approx, kind="stable")[:_EXCHANGE_TRIES]:
            trial = choice.copy()
            trial[lead[k]], trial[out[k]] = pair[k], -1
            gain = objective(p, t, trial) - now
            if gain > best_gain:
                best, best_gain = k, gain
        if best < 0:
            return False
        self.choice[lead[best]], self.choice[out[best]] = pair[best], -1
        self.V[r[best]] += de[best]
        self.N[r[best]] += da[best]
        self.lo, self.hi, self.top_cap, self.quota = t.limits(self.V.sum(), self.N.sum())
        return True

    def _apply(self, lead: int, pair: int, src: int, dst: int) -> None:
        e, a = self.p.lead_value[lead], float(self.p.top_tier[lead])
        self.V[src] -= e
        self.V[dst] += e
        self.N[src] -= a
        self.N[dst] += a
        self.used[src] -= 1
        self.used[dst] += 1
        self.choice[lead] = pair


def _round_up(
    p: AssignmentProblem,
    choice: np.ndarray,
    x: np.ndarray,
    pairs: np.ndarray,
    fractional: np.ndarray,
) -> np.ndarray:
    """A feasible start for the repair: each fractional lead to its largest LP share with room."""
    out = choice.copy()
    left = p.capacity - np.bincount(p.rep[out[out >= 0]], minlength=p.n_reps)
    share = np.zeros(len(p.lead))
    share[pairs] = x
    start = p.lead_start
    for lead in np.flatnonzero(fractional):
        options = np.arange(start[lead], start[lead + 1])
        for j in options[np.argsort(-share[options], kind="stable")]:
            if left[p.rep[j]] > 0:
                left[p.rep[j]] -= 1
                out[lead] = j
                break
    return out


def _place_held(p: AssignmentProblem, choice: np.ndarray) -> np.ndarray:
    """Assign the held leads that have candidates where a chain of moves makes room: the lead
    takes a full rep's slot, one of that rep's leads moves on to another of its reps, and so
    on to a rep with room (an augmenting path, breadth first). Rounding an LP can hold a lead
    whose reps the integral leads filled; the model holds a lead only when no such chain
    exists. Reps from which a search found no room are not searched again."""
    held = np.flatnonzero((choice < 0) & (np.diff(p.lead_start) > 0))
    if len(held) == 0:
        return choice
    choice = choice.copy()
    start, R = p.lead_start, p.n_reps
    used = np.bincount(p.rep[choice[choice >= 0]], minlength=R)
    dead = np.zeros(R, bool)
    for lead in held:
        # via[r] = (pair moving into r, rep it leaves or -1 for the held lead)
        via: dict[int, tuple[int, int]] = {}
        frontier = []
        for j in range(start[lead], start[lead + 1]):
            r = int(p.rep[j])
            if r not in via and not dead[r]:
                via[r] = (j, -1)
                frontier.append(r)
        end = next((r for r in frontier if used[r] < p.capacity[r]), None)
        while end is None and frontier:
            assigned = np.flatnonzero(choice >= 0)
            movers = assigned[np.isin(p.rep[choice[assigned]], frontier)]
            pairs = np.concatenate([np.arange(start[m], start[m + 1]) for m in movers])
            frontier = []
            for j in pairs:
                r = int(p.rep[j])
                if r in via or dead[r]:
                    continue
                via[r] = (int(j), int(p.rep[choice[p.lead[j]]]))
                frontier.append(r)
                if used[r] < p.capacity[r]:
                    end = r
                    break
        if end is None:
            dead[list(via)] = True
            continue
        used[end] += 1
        r = end
        while r >= 0:
            j, r = via[r]
            choice[p.lead[j]] = j
    return choice


def _greedy_fill(
    p: AssignmentProblem,
    t: FairnessTerms,
    fixed: np.ndarray,
    free: np.ndarray,
    guide: np.ndarray,
) -> np.ndarray:
    """Fallback when the LP ran out of time: the free leads in order of their best ``guide``
    score (the dual's reduced scores, or the scores), each to the rep with room where its
    guide score minus the value-band penalty it would add is highest (the band's limits taken
    at the totals of every lead assigned), so that the greedy does not pile value on the reps
    it likes best."""
    choice = fixed.copy()
    taken = fixed >= 0
    R = p.n_reps
    left = p.capacity - np.bincount(p.rep[fixed[taken]], minlength=R)
    value = p.history_value + np.bincount(p.rep[fixed[taken]], p.lead_value[taken], R)
    low, high, _, _ = t.limits(*totals_if_all_assigned(p))
    start = p.lead_start
    leads = np.flatnonzero(free)
    best = np.maximum.reduceat(guide, start[:-1][leads]) if len(leads) else np.zeros(0)
    for lead in leads[np.argsort(-best, kind="stable")]:
        pairs = np.arange(start[lead], start[lead + 1])
        reps = p.rep[pairs]
        room = left[reps] > 0
        if not room.any():
            continue
        gain = guide[pairs]
        if t.value_on:
            e, v = p.lead_value[lead], value[reps]
            over = np.maximum(0.0, v + e - high[reps]) - np.maximum(0.0, v - high[reps])
            under = np.maximum(0.0, low[reps] - v) - np.maximum(0.0, low[reps] - v - e)
            gain = gain - t.value_penalty * (over - under)
        k = np.flatnonzero(room)[np.argmax(gain[room])]
        choice[lead] = pairs[k]
        left[reps[k]] -= 1
        value[reps[k]] += p.lead_value[lead]
    return choice
