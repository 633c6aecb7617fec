"""The HiGHS model: the LP (or MIP) over the pairs of the free leads, every other lead fixed.

Rows and columns are built in named blocks (:class:`~matching._solver.blocks.Blocks`), so that
the row prices map onto the dual's multipliers by name and pricing reads the rows it needs.
Every solve stops on a work limit (simplex iterations, branch-and-bound nodes) and, as a safety
net only, on a wall-clock limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from matching._solver.blocks import Blocks
from matching._solver.limits import LP_ITERATIONS, TIME_LIMIT
from matching._solver.problem import AssignmentProblem, FairnessTerms

TOL = 1e-6
_INF = highspy.kHighsInf
# ">=" rows: in a maximisation their prices are <= 0, so a dual multiplier is minus the price.
GREATER_EQUAL_ROWS = frozenset({"value_low", "ramp"})
# The MIPs leave out the heuristics that solve sub-MIPs (RINS, RENS, root reduced cost): a node
# limit does not bound them, and at the root of these small MIPs they cost several times the
# rest. They branch on pseudocosts without strong branching, which took most of the simplex
# iterations of such short searches.
MIP_OPTIONS = {
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_root_reduced_cost": False,
    "mip_pscost_minreliable": 0,
}


@dataclass(frozen=True)
class LpResult:
    """One LP solve: ``x`` over the model's pairs, the objective and the row prices, or
    ``x`` None and ``stopped_by`` the limit that stopped it ("" when HiGHS failed otherwise)."""

    x: np.ndarray | None
    objective: float
    row_dual: np.ndarray | None
    stopped_by: str = ""


@dataclass(frozen=True)
class MipResult:
    """One MIP solve: ``choice`` the fixed choices plus the best assignment found (None when
    HiGHS found none), ``bound`` HiGHS's dual bound (a bound on the whole problem only when
    nothing is fixed), and whether its node limit or the safety net stopped it."""

    choice: np.ndarray | None
    bound: float
    node_limit: bool
    time_limit: bool


class HighsModel:
    """The HiGHS model with columns for the pairs of the free leads, every other lead fixed.

    Row blocks: "lead" (one per lead with candidates; a fixed lead's row stays empty),
    "capacity" (R), then with the value band "value_def" (R), "value_low" (R), "value_high"
    (R) and "value_total" (1), then with a top-tier rule "top_def" (R), "top_total" (1), "ramp"
    (1) and "top_cap" (R), as the rules need. Column blocks: the auxiliaries "V" (R),
    "slack_low" (R), "slack_high" (R), "T" (1), "N" (R), "TA" (1), "slack_ramp" (1),
    "slack_cap" (R), as the rules need, then one x column per free pair. With fixed totals (a
    component of a split problem) there are no total rows or T and TA columns: the limits are
    constants in the row bounds. Fixed leads enter through the bounds of the capacity,
    value_def and top_def rows and the objective offset, so :meth:`add` can add pairs
    (releasing their leads) to a model whose HiGHS instance then warm-starts from its last
    basis.
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
        self.rows, self.cols = Blocks(), Blocks()
        self.h: highspy.Highs | None = None  # the LP's instance, kept for warm starts
        self.iterations = 0  # simplex iterations of every LP solve so far
        self.highs_lp, self.row_lo, self.row_hi = self._build()
        self.n_aux = self.cols.size

    # --- building ----------------------------------------------------------------------------

    def _build(self) -> tuple[highspy.HighsLp, np.ndarray, np.ndarray]:
        p, t, R = self.p, self.t, self.p.n_reps
        entries: tuple[list, list, list] = ([], [], [])
        cost: list[np.ndarray] = []
        row_lo: list[np.ndarray] = []
        row_hi: list[np.ndarray] = []

        def add(r, c, v) -> None:
            entries[0].append(np.asarray(r, dtype=np.int64))
            entries[1].append(np.asarray(c, dtype=np.int64))
            entries[2].append(np.broadcast_to(np.asarray(v, dtype=float), np.shape(r)))

        def new_cols(name: str, k: int, c: float) -> np.ndarray:
            cost.append(np.full(k, c, dtype=float))
            block = self.cols.add(name, k)
            return np.arange(block.start, block.stop)

        def new_rows(name: str, k: int, lo, hi) -> np.ndarray:
            row_lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (k,)))
            row_hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (k,)))
            block = self.rows.add(name, k)
            return np.arange(block.start, block.stop)

        new_rows("lead", self.n_with_pairs, -_INF, 1.0)
        new_rows("capacity", R, -_INF, 0.0)  # bounds set by _set_fixed_bounds
        f = t.fair_share
        # With fixed totals the limits are constants in the row bounds; otherwise the totals
        # T and TA are columns (the sums of V and N) and the limits are rows in them.
        coupled = t.fixed_totals is None
        low, high, top_cap, quota = t.limits(0.0, 0.0)
        if t.value_on:
            V = new_cols("V", R, 0.0)
            s_lo = new_cols("slack_low", R, -t.value_penalty)
            s_hi = new_cols("slack_high", R, -t.value_penalty)
            add(new_rows("value_def", R, 0.0, 0.0), V, -1.0)
            lo = new_rows("value_low", R, low, _INF)
            add(lo, V, 1.0)
            add(lo, s_lo, 1.0)
            hi = new_rows("value_high", R, -_INF, high)
            add(hi, V, 1.0)
            add(hi, s_hi, -1.0)
            if coupled:
                T = new_cols("T", 1, 0.0)
                total = new_rows("value_total", 1, 0.0, 0.0)
                add(np.repeat(total, R), V, 1.0)
                add(total, T, -1.0)
                add(lo, np.repeat(T, R), -(1 - t.band) * f)
                add(hi, np.repeat(T, R), -(1 + t.band) * f)
        if t.tier_on:
            N = new_cols("N", R, 0.0)
            add(new_rows("top_def", R, 0.0, 0.0), N, -1.0)
            if coupled:
                TA = new_cols("TA", 1, 0.0)
                total = new_rows("top_total", 1, 0.0, 0.0)
                add(np.repeat(total, R), N, 1.0)
                add(total, TA, -1.0)
            if t.ramp_on:
                s_ramp = new_cols("slack_ramp", 1, -t.ramp_penalty)
                ramp = new_rows("ramp", 1, quota, _INF)
                ramping = np.flatnonzero(p.ramp)
                add(np.repeat(ramp, len(ramping)), N[ramping], 1.0)
                add(ramp, s_ramp, 1.0)
                if coupled:
                    add(ramp, TA, -t.min_share)
            if t.cap_on:
                s_cap = new_cols("slack_cap", R, -t.cap_penalty)
                cap = new_rows("top_cap", R, -_INF, top_cap)
                add(cap, N, 1.0)
                add(cap, s_cap, -1.0)
                if coupled:
                    add(cap, np.repeat(TA, R), -t.max_share)
        n_rows, n_aux = self.rows.size, self.cols.size
        rows, cols, vals = (np.concatenate(e) if e else np.zeros(0) for e in entries)
        aux = sp.csc_matrix(
            (vals, (rows.astype(np.int64), cols.astype(np.int64))), shape=(n_rows, n_aux)
        )
        matrix = sp.hstack([aux, self._x_columns(self.pairs)], format="csc")
        row_lower, row_upper = np.concatenate(row_lo), np.concatenate(row_hi)
        offset = self._set_fixed_bounds(row_lower, row_upper)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = matrix.shape[1], n_rows
        lp.col_cost_ = np.concatenate([*cost, p.score[self.pairs] + t.hold_penalty])
        lp.col_lower_ = np.zeros(matrix.shape[1])
        lp.col_upper_ = np.concatenate([np.full(n_aux, _INF), np.ones(len(self.pairs))])
        lp.row_lower_, lp.row_upper_ = row_lower, row_upper
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr
        lp.a_matrix_.index_ = matrix.indices
        lp.a_matrix_.value_ = matrix.data
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.offset_ = offset
        return lp, row_lower, row_upper

    def _x_columns(self, pairs: np.ndarray) -> sp.csc_matrix:
        """The x columns of ``pairs``: their lead row, their rep's capacity row, and its
        value_def and top_def rows as the rules need."""
        p = self.p
        J = len(pairs)
        lead, rep = p.lead[pairs], p.rep[pairs]
        rows = [self.lead_row[lead], self.rows["capacity"].start + rep]
        cols = [np.arange(J), np.arange(J)]
        vals = [np.ones(J), np.ones(J)]
        if "value_def" in self.rows:
            rows.append(self.rows["value_def"].start + rep)
            cols.append(np.arange(J))
            vals.append(p.lead_value[lead])
        if "top_def" in self.rows:
            top = np.flatnonzero(p.top_tier[lead])
            rows.append(self.rows["top_def"].start + rep[top])
            cols.append(top)
            vals.append(np.ones(len(top)))
        return sp.csc_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(self.rows.size, J),
        )

    def _set_fixed_bounds(self, row_lo: np.ndarray, row_hi: np.ndarray) -> float:
        """Write the fixed leads into the row bounds (in place); returns the objective
        offset: the fixed leads' scores, less H per lead with candidates."""
        p, t, R = self.p, self.t, self.p.n_reps
        leads = np.flatnonzero(self.fixed >= 0)
        pairs = self.fixed[leads]
        reps = p.rep[pairs]
        used = np.bincount(reps, minlength=R).astype(float)
        row_hi[self.rows["capacity"]] = p.capacity - used
        if "value_def" in self.rows:
            value = p.history_value + np.bincount(reps, p.lead_value[leads], R)
            row_lo[self.rows["value_def"]] = row_hi[self.rows["value_def"]] = -value
        if "top_def" in self.rows:
            top = p.history_top_tier + np.bincount(reps, p.top_tier[leads].astype(float), R)
            row_lo[self.rows["top_def"]] = row_hi[self.rows["top_def"]] = -top
        offset = float((p.score[pairs] + t.hold_penalty).sum())
        return offset - t.hold_penalty * self.n_with_pairs

    def add(self, new: np.ndarray) -> None:
        """Give the pairs ``new`` columns; a fixed lead among theirs is released (its share
        leaves the row bounds). The LP's HiGHS instance keeps its basis for the next solve."""
        self.fixed[self.p.lead[new]] = -1
        offset = self._set_fixed_bounds(self.row_lo, self.row_hi)
        columns = self._x_columns(new)
        self.pairs = np.concatenate([self.pairs, new])
        assert self.h is not None, "add() extends a solved LP"
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
        rows = np.arange(self.rows.size, dtype=np.int32)
        self.h.changeRowsBounds(len(rows), rows, self.row_lo, self.row_hi)
        self.h.changeObjectiveOffset(offset)

    # --- prices --------------------------------------------------------------------------------

    def multipliers(self, lp: LpResult, layout: Blocks) -> np.ndarray:
        """The LP's row prices as dual multipliers laid out as ``layout`` (whose blocks are
        named after the rows they price)."""
        y = np.zeros(layout.size)
        for name in layout:
            sign = -1.0 if name in GREATER_EQUAL_ROWS else 1.0
            y[layout[name]] = sign * lp.row_dual[self.rows[name]]
        return np.maximum(y, 0.0)

    def reduced_scores(self, lp: LpResult) -> np.ndarray:
        """(J,) every problem pair's reduced score under the LP's row prices, lead rows left
        out: score + H minus the prices of its rep's capacity, value_def and top_def rows
        (HiGHS reports col_dual = cost - A^T y)."""
        p, y = self.p, lp.row_dual
        d = p.score + self.t.hold_penalty - y[self.rows["capacity"]][p.rep]
        if "value_def" in self.rows:
            d = d - p.lead_value[p.lead] * y[self.rows["value_def"]][p.rep]
        if "top_def" in self.rows:
            d = d - p.top_tier[p.lead] * y[self.rows["top_def"]][p.rep]
        return d

    def priced_out(self, lp: LpResult) -> np.ndarray:
        """Pairs without a column that the LP's prices say would pay: for a free lead, a
        reduced score above its lead row's price; for a fixed lead (all its pairs, which frees
        it), any option, holding included, that beats its fixed pair."""
        p = self.p
        reduced = self.reduced_scores(lp)
        lead_price = np.zeros(p.n_leads)
        has_row = self.lead_row >= 0
        lead_price[has_row] = lp.row_dual[self.lead_row[has_row]]
        is_fixed = self.fixed >= 0
        own = np.zeros(p.n_leads)
        own[is_fixed] = reduced[self.fixed[is_fixed]]
        # a fixed lead "pays" its own pair's reduced score and must also beat holding (0)
        bar = np.where(is_fixed, own, lead_price)
        tol = TOL * (1.0 + np.abs(bar))
        in_model = np.zeros(len(p.lead), bool)
        in_model[self.pairs] = True
        beats = (reduced > bar[p.lead] + tol[p.lead]) & ~in_model
        wrong_fixed = is_fixed & (own < -tol)
        beats |= wrong_fixed[p.lead] & ~in_model
        # a fixed lead that has to move gets all its pairs
        moved = np.zeros(p.n_leads, bool)
        moved[p.lead[beats]] = True
        return np.flatnonzero(((moved & is_fixed)[p.lead] | beats) & ~in_model)

    # --- solving -----------------------------------------------------------------------------

    def _highs(self, time_limit: float) -> highspy.Highs:
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", self.threads)
        h.setOptionValue("random_seed", 0)
        h.setOptionValue("time_limit", float(time_limit))
        return h

    def _x(self, h: highspy.Highs) -> np.ndarray:
        return np.asarray(h.getSolution().col_value)[self.n_aux :]

    def solve_lp(self, iterations: int, time_limit: float) -> LpResult:
        """The LP relaxation within ``iterations`` simplex iterations (and the safety net's
        ``time_limit`` seconds). A second call (after :meth:`add`) warm-starts from the
        previous basis; :attr:`iterations` counts the iterations of every call."""
        if iterations <= 0:
            return LpResult(None, np.inf, None, LP_ITERATIONS)
        if self.h is None:
            self.h = self._highs(time_limit)
            # presolve takes as long as the simplex on these LPs and saves it nothing
            self.h.setOptionValue("presolve", "off")
            self.h.passModel(self.highs_lp)
        else:
            # HiGHS's time limit counts every run of an instance, not only the next one
            self.h.setOptionValue("time_limit", self.h.getRunTime() + float(time_limit))
        self.h.setOptionValue("simplex_iteration_limit", int(iterations))
        self.h.run()
        self.iterations += max(0, self.h.getInfo().simplex_iteration_count)
        status = self.h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            stopped_by = {
                highspy.HighsModelStatus.kIterationLimit: LP_ITERATIONS,
                highspy.HighsModelStatus.kTimeLimit: TIME_LIMIT,
            }.get(status, "")
            return LpResult(None, np.inf, None, stopped_by)
        return LpResult(
            x=self._x(self.h),
            objective=self.h.getInfo().objective_function_value,
            row_dual=np.asarray(self.h.getSolution().row_dual),
        )

    def round(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integral leads of an LP solution become choices; returns (choice, fractional mask)."""
        choice = self.fixed.copy()
        ones = x > 1 - TOL
        choice[self.p.lead[self.pairs[ones]]] = self.pairs[ones]
        between = (x > TOL) & ~ones
        fractional = np.zeros(self.p.n_leads, bool)
        fractional[self.p.lead[self.pairs[between]]] = True
        choice[fractional] = -1
        return choice, fractional

    def solve_mip(
        self, nodes: int, time_limit: float, mip_rel_gap: float, start: np.ndarray | None
    ) -> MipResult:
        """The MIP over the free pairs within ``nodes`` branch-and-bound nodes (and the safety
        net's ``time_limit`` seconds), started from the assignment ``start``."""
        lp = self.highs_lp
        lp.integrality_ = [highspy.HighsVarType.kContinuous] * self.n_aux + [
            highspy.HighsVarType.kInteger
        ] * len(self.pairs)
        h = self._highs(time_limit)
        h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
        h.setOptionValue("mip_max_nodes", int(nodes))
        for name, value in MIP_OPTIONS.items():
            h.setOptionValue(name, value)
        h.passModel(lp)
        if start is not None:
            on = self.n_aux + np.flatnonzero(np.isin(self.pairs, start[start >= 0]))
            h.setSolution(len(on), on.astype(np.int32), np.ones(len(on)))
        h.run()
        status = h.getModelStatus()
        # HiGHS reports its node limit as a solution limit
        node_limit = status == highspy.HighsModelStatus.kSolutionLimit
        time_limit_hit = status == highspy.HighsModelStatus.kTimeLimit
        info = h.getInfo()
        if info.primal_solution_status != highspy.SolutionStatus.kSolutionStatusFeasible:
            return MipResult(None, np.inf, node_limit, time_limit_hit)
        choice = self.fixed.copy()
        on = self._x(h) > 0.5
        choice[self.p.lead[self.pairs[on]]] = self.pairs[on]
        return MipResult(choice, info.mip_dual_bound, node_limit, time_limit_hit)
