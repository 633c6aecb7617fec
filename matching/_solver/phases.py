"""One solve of a whole problem, phase by phase (see :mod:`matching.optimiser` for the steps).

Each phase stops on its work limit from :class:`~matching.config.SolverSettings`; the safety
net stops it only when the clock runs out first, and every limit that stopped a phase is
reported in :attr:`~matching._solver.problem.Solution.limits_reached`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from matching._solver.dual import Dual, DualFit, fix_by_margin, near_best
from matching._solver.highs_model import HighsModel, LpResult
from matching._solver.limits import (
    FULL_MIP_NODES,
    REPAIR_MIP_NODES,
    TIME_LIMIT,
    SafetyNet,
)
from matching._solver.local_search import LocalSearch, greedy_fill, place_held, round_up
from matching._solver.problem import (
    AssignmentProblem,
    FairnessTerms,
    Solution,
    objective,
    relative_gap,
)
from matching.config import SolverSettings

# Shares of the safety time limit: the dual stops at the first, the LP stops early enough to
# leave the second for rounding and the local search.
DUAL_SHARE = 0.4
RESERVE_SHARE = 0.15
# Pricing stops when the dual at the LP's prices (a bound on the LP over every pair) is within
# this share of the target gap of the restricted LP: the pairs left out cannot pay for a
# re-solve.
PRICING_STOP = 0.1
# The dual fixes a lead to its best pair when that beats every rival by FIX_MARGIN temperatures
# (a smoothed probability above 0.88); pricing frees the few fixed wrongly, and a wider margin
# leaves most leads free.
FIX_MARGIN = 2.0
# A contested lead's columns in the first restricted LP: its pairs within COLUMN_WINDOW
# temperatures of its best, at most CONTESTED_COLUMNS of them (pricing adds any other the LP
# wants); more columns make the first LP slower, fewer leave so much out that pricing adds more
# than it saves.
COLUMN_WINDOW = 3.0
CONTESTED_COLUMNS = 5


@dataclass(frozen=True)
class Prices:
    """A dual function and multipliers for it (the LP's prices, else the fitted dual's): what
    a component of a split problem hands back so that the whole problem's bound can be taken
    at one common quota price."""

    dual: Dual
    y: np.ndarray


@dataclass(frozen=True)
class Solved:
    """A solve's :class:`Solution` and, for a component with a ramp quota, its prices."""

    solution: Solution
    prices: Prices | None = None


def finish(
    p: AssignmentProblem,
    t: FairnessTerms,
    settings: SolverSettings,
    net: SafetyNet,
    choice: np.ndarray,
    bound: float,
    *,
    n_fractional: int,
    n_contested: int,
    method: str,
    reached: set[str],
    phases: dict[str, float],
) -> Solution:
    """The :class:`Solution` of ``choice`` against ``bound`` (a bound on the model's objective,
    H per held lead included): status from the gap alone."""
    held = int(((np.diff(p.lead_start) > 0) & (choice < 0)).sum())
    gap = max(0.0, relative_gap(p, t, bound, choice)) if np.isfinite(bound) else np.inf
    status = "optimal" if gap <= settings.mip_rel_gap + 1e-12 else "feasible"
    return Solution(
        choice=choice,
        status=status,
        objective=objective(p, t, choice),
        bound=float(bound + t.hold_penalty * held),
        gap=float(gap),
        solve_seconds=time.perf_counter() - net.started,
        n_fractional=n_fractional,
        n_contested=n_contested,
        method=method,
        limits_reached=tuple(sorted(reached)),
        phase_seconds=phases,
    )


def solve_whole(
    p: AssignmentProblem, t: FairnessTerms, settings: SolverSettings, net: SafetyNet
) -> Solved:
    """Solve ``p`` as one problem: the dual on large problems, the LP with pricing, the
    local search, then the MIPs when the gap is still above the target."""
    if len(p.lead) == 0:
        nothing = np.full(p.n_leads, -1)
        empty = Solution(
            choice=nothing,
            status="empty",
            objective=objective(p, t, nothing),
            bound=0.0,
            gap=0.0,
            solve_seconds=time.perf_counter() - net.started,
            n_fractional=0,
            n_contested=0,
            method="empty",
        )
        return Solved(empty)
    return _Phases(p, t, settings, net).run()


class _Phases:
    """The phases of one solve and what they share: the problem, its fairness terms, the
    settings, the safety net, the limits reached so far and each phase's seconds."""

    def __init__(
        self, p: AssignmentProblem, t: FairnessTerms, settings: SolverSettings, net: SafetyNet
    ):
        self.p, self.t, self.settings, self.net = p, t, settings, net
        self.has_pairs = np.diff(p.lead_start) > 0
        self.reached: set[str] = set()
        self.phases: dict[str, float] = {}

    def gap(self, bound: float, choice: np.ndarray) -> float:
        return relative_gap(self.p, self.t, bound, choice)

    def run(self) -> Solved:
        p, settings = self.p, self.settings
        fit, dual = None, None
        if len(p.lead) > settings.decompose_above_pairs:
            clock = time.perf_counter()
            dual = Dual(p, self.t, settings.dual_threads)
            fit = dual.fit(settings.dual_iterations, self.net, DUAL_SHARE)
            self.reached |= fit.reached
            self.phases["dual"] = time.perf_counter() - clock
        clock = time.perf_counter()
        model, lp, bound = self._lp(dual, fit)
        self.phases["lp"] = time.perf_counter() - clock
        free = (model.fixed < 0) & self.has_pairs
        if lp.x is None:
            # The first LP stopped: the dual's (or the scores') greedy choice for the free
            # leads, every lead movable.
            guide = p.score if fit is None else dual.reduced(fit.y)
            start = greedy_fill(p, self.t, model.fixed, free, guide)
            choice = self._polish(start, np.ones(p.n_leads, bool), bound)
            n_fractional, method = 0, "lp" if dual is None else "dual+lp"
        else:
            choice, bound, n_fractional, method = self._improve(model, lp, bound)
            method = method if dual is None else "dual+" + method
        prices = None
        if self.t.fixed_totals is not None and self.t.ramp_on:
            prices = self._prices(model, lp, dual, fit)
        solution = finish(
            p,
            self.t,
            settings,
            self.net,
            choice,
            bound,
            n_fractional=n_fractional,
            n_contested=int(free.sum()),
            method=method,
            reached=self.reached,
            phases=self.phases,
        )
        return Solved(solution, prices)

    def _lp(self, dual: Dual | None, fit: DualFit | None) -> tuple[HighsModel, LpResult, float]:
        """The restricted LP, priced out against every pair and re-solved (warm) until nothing
        is missing or the dual at its prices shows that the rest cannot pay. Returns the
        model, the last LP result with a solution (x None when the first solve stopped) and
        the best bound found."""
        p, settings = self.p, self.settings
        if fit is None:
            bound, fixed = np.inf, np.full(p.n_leads, -1)
            columns = np.arange(len(p.lead))
        else:
            bound = dual.value(fit.y)
            reduced = dual.reduced(fit.y)
            # at least contested_share of the leads stay free, those with the smallest margins
            fixed = fix_by_margin(p, reduced, settings.contested_share, FIX_MARGIN * fit.eps)
            columns = near_best(p, reduced, fixed < 0, COLUMN_WINDOW * fit.eps, CONTESTED_COLUMNS)
        model = HighsModel(p, self.t, columns, fixed, settings.threads)
        iterations = int(np.ceil(settings.lp_iterations_per_row * model.rows.size))
        reserve = max(0.5, RESERVE_SHARE * self.net.limit)
        last = LpResult(None, np.inf, None)  # the last solution over the current columns
        while True:
            lp = model.solve_lp(iterations - model.iterations, self.net.left(reserve))
            if lp.x is None:
                if lp.stopped_by:
                    self.reached.add(lp.stopped_by)
                return model, last, bound  # a re-solve stopped: the last solution is feasible
            # The restricted LP is the LP over every pair once no left-out pair has a positive
            # reduced cost under its prices (for a fixed lead: beats the fixed pair or holding).
            missing = model.priced_out(lp)
            if len(missing) == 0:
                return model, lp, min(bound, lp.objective)
            assert dual is not None, "without the dual every pair has a column"
            at_prices = dual.value(model.multipliers(lp, dual.layout))
            bound = min(bound, at_prices)
            if at_prices - lp.objective <= PRICING_STOP * settings.mip_rel_gap * abs(lp.objective):
                return model, lp, bound
            was_fixed = model.fixed[p.lead[missing]]
            model.add(missing)
            x = np.concatenate([lp.x, (missing == was_fixed).astype(float)])
            last = LpResult(x, lp.objective, lp.row_dual)

    def _improve(
        self, model: HighsModel, lp: LpResult, bound: float
    ) -> tuple[np.ndarray, float, int, str]:
        """From the LP's rounding to the best assignment: the local search, then the repair
        MIP and the MIP over every pair while the gap is above the target. Returns (choice,
        bound, fractional leads, method)."""
        p, settings = self.p, self.settings
        rounded, fractional = model.round(lp.x)
        movable = np.zeros(p.n_leads, bool)  # the leads with a column
        movable[p.lead[model.pairs]] = True
        start = round_up(p, rounded, lp.x, model.pairs, fractional)
        choice = self._polish(start, movable, bound)
        method = "lp"
        if self.gap(bound, choice) > settings.mip_rel_gap and settings.repair_mip_nodes:
            # A MIP over the fractional leads, every other lead as the LP rounded it: a
            # different neighbourhood from the local search's, which it left at a local
            # optimum. HiGHS proves little here (the bands make it a set of tight knapsacks),
            # so it gets a few nodes.
            clock = time.perf_counter()
            leads = np.flatnonzero(fractional[p.lead])
            repair = HighsModel(p, self.t, leads, rounded, settings.threads)
            result = repair.solve_mip(
                settings.repair_mip_nodes, self.net.left(), settings.mip_rel_gap, start
            )
            self._record(result.node_limit, result.time_limit, REPAIR_MIP_NODES)
            self.phases["mip"] = time.perf_counter() - clock
            method += "+mip"
            if result.choice is not None and not np.array_equal(result.choice, start):
                repaired = self._polish(result.choice, movable, bound)
                if self._model_value(repaired) > self._model_value(choice):
                    choice = repaired
        if (
            self.gap(bound, choice) > settings.mip_rel_gap
            and len(p.lead) <= settings.full_mip_max_pairs
            and settings.full_mip_nodes
        ):
            # Small problem: a MIP over every pair is usually cheap and makes the answer exact;
            # limited, since a day of a few leads against many reps' empty fairness windows
            # can keep HiGHS branching long over a gap of hundredths of a win.
            clock = time.perf_counter()
            everything = np.arange(len(p.lead))
            full = HighsModel(p, self.t, everything, np.full(p.n_leads, -1), settings.threads)
            result = full.solve_mip(
                settings.full_mip_nodes, self.net.left(), settings.mip_rel_gap, choice
            )
            self._record(result.node_limit, result.time_limit, FULL_MIP_NODES)
            choice = choice if result.choice is None else result.choice
            bound = min(bound, result.bound)
            self.phases["full_mip"] = time.perf_counter() - clock
            method += "+full_mip"
        return choice, bound, int(fractional.sum()), method

    def _polish(self, start: np.ndarray, movable: np.ndarray, bound: float) -> np.ndarray:
        """Held leads placed where a chain of moves makes room, then the local search over
        the ``movable`` leads until the gap to ``bound`` is half the target."""
        clock = time.perf_counter()
        target = self.settings.mip_rel_gap / 2
        start = place_held(self.p, start)
        if self.gap(bound, start) > target:
            search = LocalSearch(self.p, self.t, start, movable)
            start = search.run(
                self.settings.local_search_rounds,
                self.net,
                lambda choice: self.gap(bound, choice) <= target,
            )
            self.reached |= search.reached
        self.phases["polish"] = self.phases.get("polish", 0.0) + time.perf_counter() - clock
        return start

    def _model_value(self, choice: np.ndarray) -> float:
        held = int((self.has_pairs & (choice < 0)).sum())
        return objective(self.p, self.t, choice) - self.t.hold_penalty * held

    def _record(self, node_limit: bool, time_limit: bool, nodes_setting: str) -> None:
        if node_limit:
            self.reached.add(nodes_setting)
        if time_limit:
            self.reached.add(TIME_LIMIT)

    def _prices(
        self, model: HighsModel, lp: LpResult, dual: Dual | None, fit: DualFit | None
    ) -> Prices | None:
        """The dual function and multipliers (the LP's prices, else the fitted dual's) with
        which a split solve bounds this component at a quota price of its choice."""
        if lp.x is None and fit is None:
            return None
        dual = dual if dual is not None else Dual(self.p, self.t)
        y = model.multipliers(lp, dual.layout) if lp.x is not None else fit.y
        return Prices(dual, y)
