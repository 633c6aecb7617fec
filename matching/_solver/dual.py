"""The Lagrangian dual of the LP over its capacity and fairness rows, and what it decides.

On large problems the dual simplex is slow over every pair (the fairness rows make its basis
dense), so an entropy-smoothed version of this dual is minimised first in numpy (L-BFGS-B). Its
exact value at any multipliers in the box is a valid upper bound; its reduced scores fix the
leads whose best rep clearly wins (:func:`fix_by_margin`) and give the others only their few
near-best pairs (:func:`near_best`) in the first restricted LP.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize

from matching._solver.blocks import Blocks
from matching._solver.limits import DUAL_ITERATIONS, TIME_LIMIT, SafetyNet
from matching._solver.problem import AssignmentProblem, FairnessTerms

# Smoothing temperatures, as fractions of the mean best score per lead: a warm stage finds the
# region of the optimum quickly, a cold one makes the dual tight enough to fix leads and price.
EPSILONS = (0.03, 0.003)
# Pairs further below their lead's best than this many temperatures of the previous stage weigh
# nothing in the next one, which therefore leaves them out (the bound and pricing do not).
PRUNE_WIDTH = 5.0
# A slab's widest lead has at most this many times the pairs of its narrowest, which keeps the
# padding of its dense table small.
SLAB_GROWTH = 1.25
# A slab is split over the worker threads only into chunks of at least this many leads: smaller
# chunks cost more in thread hand-offs than they save.
MIN_CHUNK_ROWS = 2_000


class Slab:
    """Some leads (with pairs) as a dense (lead x slot) table: each cell's pair (-1: padding),
    rep, score + H (-inf: padding), and per row the lead's value and top-tier flag, plus float32
    copies for the smoothed dual."""

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
        # float32 can no longer tell its steps apart, with a dual as good for fixing and
        # pricing (the LP certifies the result either way); the bound is taken in float64.
        self.single = tuple(a.astype(np.float32) for a in (self.base, self.e, self.top))


@dataclass(frozen=True)
class DualFit:
    """The fitted multipliers ``y``, the last temperature ``eps`` and the limits that stopped
    the fit (``reached``, empty when it converged)."""

    y: np.ndarray
    eps: float
    reached: frozenset[str]


class Dual:
    """The Lagrangian dual of the LP over its capacity and fairness rows.

    Multipliers, in named blocks (``layout``) that carry the names of the rows they price:
    "capacity" v (R), "value_low" a (R) and "value_high" g (R) with the value band, "top_cap"
    c (R) with the top-tier cap, "ramp" q (1) with the ramp quota; box bounds from the slack
    penalties. For a pair (l, r) the reduced score is ``score + H - v_r + e_l * w_r + top_l *
    z_r`` and D(y) = sum_l max(0, max_r reduced) + constant(y) - H * n is an upper bound on the
    LP for every y in the box.

    ``workers`` threads share each evaluation of the smoothed dual; each slab is cut into at
    most that many chunks of at least ``min_chunk_rows`` leads, summed in a fixed order.
    """

    def __init__(
        self,
        problem: AssignmentProblem,
        terms: FairnessTerms,
        workers: int = 1,
        min_chunk_rows: int = MIN_CHUNK_ROWS,
    ):
        self.p, self.t, self.workers = problem, terms, workers
        counts = np.diff(problem.lead_start)
        leads = np.flatnonzero(counts > 0)
        leads = leads[np.argsort(counts[leads], kind="stable")]
        # Leads in slabs of similar pair counts, each a dense (lead x slot) table: row
        # reductions replace segment reductions, and a few leads with every rep as a candidate
        # do not widen the table of all the others.
        edges, sorted_counts = [0], counts[leads]
        while edges[-1] < len(leads):
            widest = np.floor(sorted_counts[edges[-1]] * SLAB_GROWTH)
            edges.append(int(np.searchsorted(sorted_counts, widest, "right")))
        self.slabs = [
            Slab(problem, terms, leads[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]
        R = problem.n_reps
        self.layout = Blocks()
        self.layout.add("capacity", R)
        if terms.value_on:
            self.layout.add("value_low", R)
            self.layout.add("value_high", R)
        if terms.cap_on:
            self.layout.add("top_cap", R)
        if terms.ramp_on:
            self.layout.add("ramp", 1)
        self.offset = terms.hold_penalty * len(leads)
        self.chunks: list[tuple[Slab, slice]] = []
        for slab in self.slabs:
            rows = len(slab.pair)
            parts = max(1, min(workers, rows // min_chunk_rows))
            cut = np.linspace(0, rows, parts + 1).astype(int)
            self.chunks += [(slab, slice(a, b)) for a, b in zip(cut[:-1], cut[1:], strict=True)]

    def bounds(self) -> list[tuple[float, float | None]]:
        """L-BFGS-B's box, one (low, high) per multiplier."""
        t = self.t
        box = {
            "capacity": (0.0, None),
            "value_low": (0.0, t.value_penalty),
            "value_high": (0.0, t.value_penalty),
            "top_cap": (0.0, t.cap_penalty),
            "ramp": (0.0, t.ramp_penalty),
        }
        out = []
        for name in self.layout:
            block = self.layout[name]
            out += [box[name]] * (block.stop - block.start)
        return out

    def reduced(self, y: np.ndarray) -> np.ndarray:
        """(J,) reduced score of every pair."""
        out = np.empty(len(self.p.lead))
        for slab in self.slabs:
            on = slab.pair >= 0
            out[slab.pair[on]] = self.dense(y, slab)[on]
        return out

    def dense(
        self, y: np.ndarray, slab: Slab, single: bool = False, rows: slice = slice(None)
    ) -> np.ndarray:
        """(leads x slots) reduced scores of a slab's ``rows``, in float32 when ``single``."""
        parts, t, p = self.layout.split(y), self.t, self.p
        base, e, top = slab.single if single else (slab.base, slab.e, slab.top)
        base, e, top, rep = base[rows], e[rows], top[rows], slab.rep[rows]
        cast = np.float32 if single else np.float64
        d = base - parts["capacity"].astype(cast)[rep]
        f = t.fair_share
        # with window totals summed over the reps, each multiplier also prices the total
        coupled = t.fixed_totals is None
        if t.value_on:
            a, g = parts["value_low"], parts["value_high"]
            w = a - g
            if coupled:
                w = w - (1 - t.band) * (a @ f) + (1 + t.band) * (g @ f)
            d += e * w.astype(cast)[rep]
        if t.tier_on:
            z = np.zeros(p.n_reps)
            if t.cap_on:
                c = parts["top_cap"]
                z += t.max_share * c.sum() * coupled - c
            if t.ramp_on:
                z += parts["ramp"][0] * (p.ramp - t.min_share * coupled)
            d += top * z.astype(cast)[rep]
        return d

    def _constant(self, parts: dict[str, np.ndarray]) -> float:
        p, t = self.p, self.t
        out = float(parts["capacity"] @ p.capacity)
        hv, ha = p.history_value, p.history_top_tier
        # coupled: the history's part of the totals (today's leads' part is in dense)
        lo, hi, cap, quota = t.limits(hv.sum(), ha.sum())
        if t.value_on:
            out += parts["value_low"] @ (hv - lo) + parts["value_high"] @ (hi - hv)
        if t.cap_on:
            out += parts["top_cap"] @ (cap - ha)
        if t.ramp_on:
            out += parts["ramp"][0] * (ha[p.ramp].sum() - quota)
        return out

    def value(self, y: np.ndarray) -> float:
        """D(y): a valid upper bound on the model's LP (and MIP) objective."""
        best = sum(
            float(np.maximum(self.dense(y, slab).max(axis=1, initial=0.0), 0.0).sum())
            for slab in self.slabs
        )
        return best + self._constant(self.layout.split(y)) - self.offset

    def _chunk_sums(
        self, y: np.ndarray, eps: float, slab: Slab, rows: slice
    ) -> tuple[float, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The smoothed dual's sums over a slab's leads ``rows``: value, and per rep the
        expected leads, lead value and top-tier leads under the smoothed choice."""
        t, R = self.t, self.p.n_reps
        d = self.dense(y, slab, single=True, rows=rows)
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

    def smoothed(
        self, y: np.ndarray, eps: float, pool: ThreadPoolExecutor | None = None
    ) -> tuple[float, np.ndarray]:
        """Entropy-smoothed D (an upper bound on D) and its gradient (in ``layout`` order),
        summed over the chunks in their fixed order, computed in ``pool`` when given (numpy
        releases the GIL in the heavy parts)."""
        p, t, parts = self.p, self.t, self.layout.split(y)
        if pool is None:
            sums = [self._chunk_sums(y, eps, *chunk) for chunk in self.chunks]
        else:
            sums = list(pool.map(lambda chunk: self._chunk_sums(y, eps, *chunk), self.chunks))
        value = sum(b[0] for b in sums) + self._constant(parts) - self.offset
        got = p.history_value + sum(b[2] for b in sums) if t.value_on else p.history_value
        got_top = p.history_top_tier + sum(b[3] for b in sums) if t.tier_on else None
        lo, hi, cap, quota = t.limits(got.sum(), got_top.sum() if t.tier_on else 0.0)
        gradient = {"capacity": p.capacity - sum(b[1] for b in sums)}
        if t.value_on:
            gradient |= {"value_low": got - lo, "value_high": hi - got}
        if t.cap_on:
            gradient["top_cap"] = cap - got_top
        if t.ramp_on:
            gradient["ramp"] = np.array([got_top[p.ramp].sum() - quota])
        return value, np.concatenate([gradient[name] for name in self.layout])

    def fit(self, iterations: int, net: SafetyNet, share: float) -> DualFit:
        """Minimise the smoothed dual at each temperature of :data:`EPSILONS` in turn
        (L-BFGS-B in the box), at most ``iterations`` per temperature; the safety ``net`` stops
        it with the best point so far once ``share`` of its limit has passed."""
        reached: set[str] = set()

        def stop(_) -> None:
            if net.passed(share):
                reached.add(TIME_LIMIT)
                raise StopIteration

        y = np.zeros(self.layout.size)
        p = self.p
        has = np.diff(p.lead_start) > 0
        scale = (
            float(np.maximum.reduceat(p.score, p.lead_start[:-1][has]).mean()) if has.any() else 0
        )
        scale = max(scale, 1e-9)
        bounds = self.bounds()
        eps = scale * EPSILONS[0]
        pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else nullcontext()
        active = self
        with pool as threads:
            for stage, factor in enumerate(EPSILONS):
                if net.passed(share):
                    reached.add(TIME_LIMIT)
                    break
                if stage > 0:
                    active = self.restricted(y, PRUNE_WIDTH * eps)
                result = minimize(
                    active.smoothed,
                    y,
                    args=(max(scale * factor, 1e-12), threads),
                    jac=True,
                    method="L-BFGS-B",
                    bounds=bounds,
                    callback=stop,
                    options={"maxiter": iterations, "maxcor": 20, "ftol": 1e-9, "gtol": 1e-6},
                )
                if result.nit >= iterations:
                    reached.add(DUAL_ITERATIONS)
                y = result.x
                eps = scale * factor
        return DualFit(y=y, eps=eps, reached=frozenset(reached))

    def restricted(self, y: np.ndarray, width: float) -> Dual:
        """The dual over the pairs whose reduced score at ``y`` is within ``width`` of their
        lead's best (at least two per lead): same leads, reps and multipliers."""
        p = self.p
        keep = near_best(p, self.reduced(y), np.ones(p.n_leads, bool), width)
        sub = replace(p, lead=p.lead[keep], rep=p.rep[keep], score=p.score[keep])
        return Dual(sub, self.t, self.workers)

    def with_price(self, y: np.ndarray, name: str, price: float) -> np.ndarray:
        """``y`` with the multipliers of block ``name`` set to ``price``."""
        out = y.copy()
        out[self.layout[name]] = price
        return out


def near_best(
    p: AssignmentProblem,
    reduced: np.ndarray,
    leads: np.ndarray,
    within: float,
    most: int | None = None,
) -> np.ndarray:
    """Pairs of ``leads`` ((n,) bool) whose reduced score is within ``within`` of the lead's
    best (at least its two best, at most its ``most`` best)."""
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


def fix_by_margin(
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
