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
gives one per region) are solved one component at a time when every lead can be assigned (see
:mod:`matching._solver.decompose`). Components run side by side, one per dual thread, and their
answers are combined in a fixed order (each phase's seconds are then summed over them).

The gap is always measured against a valid bound: the LP optimum, the dual at the LP's prices
when pricing stopped early, the dual bound when the LP did not finish, or HiGHS's bound after
step 4. When the first LP reaches its iteration limit, the dual's greedy choice plus the local
search is returned with its gap; when a re-solve does, the last LP's solution is rounded.

``time_limit_seconds`` is a safety net: each phase also stops at a wall-clock deadline (the dual
at a share of it, the LP early enough to leave time for the rest), and when one does, the answer
depends on the machine; :attr:`Solution.limits_reached` then names it.

This module is the public face; the solver lives in the private package ``matching._solver``:

==================  =========================================================================
``problem``         the problem as arrays, its fairness terms and penalties, the Solution
``dual``            the smoothed Lagrangian dual; which leads it fixes, which pairs it keeps
``highs_model``     the HiGHS LP / MIP in named row and column blocks; pricing
``local_search``    the local search, rounding, chains for held leads, the greedy fallback
``phases``          one solve of a whole problem, phase by phase
``decompose``       large problems solved by connected components
``limits``          work-limit names and the wall-clock safety net
``blocks``          named blocks of positions (rows, columns, multipliers)
==================  =========================================================================

Design notes and the measurements behind the constants: ``matching/_solver/NOTES.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from matching._solver.decompose import solve_split
from matching._solver.limits import TIME_LIMIT, SafetyNet
from matching._solver.phases import solve_whole
from matching._solver.problem import (
    AssignmentProblem,
    FairnessTerms,
    Slacks,
    Solution,
    slacks_of,
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
        net = SafetyNet(time.perf_counter(), self.settings.time_limit_seconds)
        terms = FairnessTerms.of(problem, self.fairness)
        if len(problem.lead) > self.settings.decompose_above_pairs:
            split = solve_split(problem, terms, self.settings, net)
            if split is not None:
                return split
        return solve_whole(problem, terms, self.settings, net).solution
