"""Large problems solved by connected components of the candidate graph.

With the region rule on, each region is its own component. Components share only the window
totals T and TA (and the ramp quota over them); when every lead with candidates can be assigned,
both totals are known in advance, the value band and the top-tier cap become constants per
rep, and only the ramp quota is left to share: it is shared out by the components' ramping
capacity, the bound sums the components' Lagrangian duals at one common quota price, and a
local search over the whole prices the shared quota exactly.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from matching._solver.limits import SafetyNet
from matching._solver.local_search import LocalSearch
from matching._solver.phases import Prices, Solved, finish, solve_whole
from matching._solver.problem import (
    AssignmentProblem,
    FairnessTerms,
    Solution,
    relative_gap,
    slacks_of,
    totals_if_all_assigned,
)
from matching.config import SolverSettings


@dataclass(frozen=True)
class Component:
    """A connected component of the candidate graph as a problem of its own: positions of its
    leads, reps and pairs in the whole problem, and its fairness terms with fixed totals."""

    leads: np.ndarray
    reps: np.ndarray
    pairs: np.ndarray
    problem: AssignmentProblem
    terms: FairnessTerms


def components(p: AssignmentProblem, terms: FairnessTerms) -> list[Component]:
    """The components with candidates, largest first (by pairs), when every lead with
    candidates can be assigned in them (else [])."""
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
        out.append(Component(leads, reps, pairs, sub, sub_terms))
    return out


def solve_split(
    p: AssignmentProblem, terms: FairnessTerms, settings: SolverSettings, net: SafetyNet
) -> Solution | None:
    """Solve each component (see :func:`components`) on its own, or None when there are
    fewer than two or one of them has to hold a lead (the totals were then wrong).

    Components run side by side, one per dual thread, each under the same work limits (the
    LP of one overlaps the dual of another); their answers come back in the components' order
    whatever order they finish in, so timing never changes the result. HiGHS runs them only
    with one thread each.
    """
    parts = components(p, terms)
    if len(parts) < 2:
        return None
    workers = min(settings.dual_threads, len(parts)) if settings.threads == 1 else 1
    sub_settings = settings.model_copy(
        update={"dual_threads": max(1, settings.dual_threads // workers)}
    )

    def solve(part: Component) -> Solved:
        return solve_whole(part.problem, part.terms, sub_settings, net)

    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            solved = list(pool.map(solve, parts))
    else:
        solved = [solve(part) for part in parts]
    n = p.n_leads
    choice, bound = np.full(n, -1), 0.0
    phases: dict[str, float] = {}
    n_fractional = n_contested = 0
    methods, reached = set(), set()
    priced: list[Prices] = []  # of the components with ramping reps
    for part, outcome in zip(parts, solved, strict=True):
        solution, prices = outcome.solution, outcome.prices
        if (solution.choice < 0).any():
            return None
        choice[part.leads] = part.pairs[solution.choice]
        if part.terms.ramp_on:
            if prices is None:
                bound = np.inf
            else:
                priced.append(prices)
        else:
            bound += solution.bound
        for name, seconds in solution.phase_seconds.items():
            phases[name] = phases.get(name, 0.0) + seconds
        n_fractional += solution.n_fractional
        n_contested += solution.n_contested
        methods.add(solution.method)
        reached |= set(solution.limits_reached)
    if priced:
        bound += _bound_at_one_quota_price(priced)
    bound -= _lone_reps_penalty(p, terms)
    method = f"split({len(parts)}): " + "/".join(sorted(methods))
    if relative_gap(p, terms, bound, choice) > settings.mip_rel_gap:
        clock = time.perf_counter()
        search = LocalSearch(p, terms, choice, np.ones(n, bool))
        choice = search.run(
            settings.local_search_rounds,
            net,
            lambda c: relative_gap(p, terms, bound, c) <= settings.mip_rel_gap / 2,
        )
        reached |= search.reached
        phases["polish"] = phases.get("polish", 0.0) + time.perf_counter() - clock
    return finish(
        p,
        terms,
        settings,
        net,
        choice,
        bound,
        n_fractional=n_fractional,
        n_contested=n_contested,
        method=method,
        reached=reached,
        phases=phases,
    )


def _bound_at_one_quota_price(priced: list[Prices]) -> float:
    """The components' duals at one quota price q bound the whole problem (their quota shares
    add up to the quota): the best of their own prices and 0."""

    def at(q: float) -> float:
        return sum(part.dual.value(part.dual.with_price(part.y, "ramp", q)) for part in priced)

    own = {float(part.y[part.dual.layout["ramp"]][0]) for part in priced}
    return min(at(q) for q in {0.0, *own})


def _lone_reps_penalty(p: AssignmentProblem, terms: FairnessTerms) -> float:
    """The (constant) penalties of the reps without candidates, under the totals of every
    lead assigned: no component holds them, but the whole problem's objective does."""
    alone = np.ones(p.n_reps, bool)
    alone[p.rep] = False
    value, top = totals_if_all_assigned(p)
    fixed = replace(terms, ramp_on=False, fixed_totals=(value, top, top))
    lone = slacks_of(p, fixed, np.full(p.n_leads, -1))
    return float(
        terms.value_penalty * (lone.value_low + lone.value_high)[alone].sum() * terms.value_on
        + terms.cap_penalty * lone.top_cap[alone].sum() * terms.cap_on
    )
