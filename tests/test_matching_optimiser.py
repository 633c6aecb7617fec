"""The optimiser against references: brute force, an assignment solver, and its dual bound.

The solver's private modules (matching._solver) are tested here directly, as scikit-learn tests
its private solvers: their names are public within that package.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from matching import MatchingConfig, match
from matching._solver import phases
from matching._solver.blocks import Blocks
from matching._solver.decompose import components
from matching._solver.dual import Dual, near_best
from matching._solver.highs_model import HighsModel, LpResult
from matching._solver.limits import SafetyNet
from matching._solver.local_search import LocalSearch, place_held
from matching.config import (
    FairnessConstraints,
    NewRepQuota,
    SolverSettings,
    TopTierCap,
    ValueShareRule,
)
from matching.optimiser import AssignmentProblem, FairnessTerms, Optimiser, slacks_of

ALL_ON = FairnessConstraints(
    value_share=ValueShareRule(band=0.15, penalty=1.0),
    new_rep_quota=NewRepQuota(min_share=0.4, penalty=2.0),
    top_tier_cap=TopTierCap(max_share=0.4, penalty=1.5),
)
OFF = ALL_ON.disabled()
ONLY = {
    "none": OFF,
    "value_share": OFF.model_copy(update={"value_share": ALL_ON.value_share}),
    "new_rep_quota": OFF.model_copy(update={"new_rep_quota": ALL_ON.new_rep_quota}),
    "top_tier_cap": OFF.model_copy(update={"top_tier_cap": ALL_ON.top_tier_cap}),
    "all": ALL_ON,
}


NEVER = SafetyNet(started=0.0, limit=np.inf)  # a safety net that never stops anything


def solver(fairness: FairnessConstraints = ALL_ON, **settings) -> Optimiser:
    """An optimiser with ``fairness`` and the given solver settings (the rest default)."""
    return Optimiser(fairness=fairness, settings=SolverSettings(**settings))


def random_problem(
    seed: int,
    n: int = 6,
    reps: int = 3,
    dense: bool = False,
    history: bool = True,
    slack: float = 0.0,
) -> AssignmentProblem:
    """A small problem with every lead x rep pair (or a random subset), random capacities
    (1-3, or about (1 + slack) * n / reps when slack > 0), one ramping rep and some history."""
    rng = np.random.default_rng(seed)
    keep = np.ones((n, reps), bool) if dense else rng.random((n, reps)) < 0.8
    lead, rep = np.nonzero(keep)
    value = rng.lognormal(0, 0.5, n)
    p = rng.uniform(0.05, 0.6, len(lead))
    base = value * rng.uniform(0.1, 0.4, n)
    return AssignmentProblem(
        lead=lead,
        rep=rep,
        score=value[lead] * p,
        lead_value=base,
        top_tier=base >= np.quantile(base, 0.6),
        capacity=rng.integers(1, 4, reps)
        if slack <= 0
        else rng.integers(1, 3, reps) + int((1 + slack) * n / reps),
        ramp=np.arange(reps) == 0,
        history_value=rng.uniform(0, 2, reps) * history,
        history_top_tier=rng.integers(0, 3, reps).astype(float) * history,
        history_capacity=rng.integers(2, 8, reps).astype(float) * history,
    )


def model_value(problem: AssignmentProblem, terms: FairnessTerms, choice: np.ndarray) -> float:
    """The model objective written out independently: worth - penalties - H per held lead."""
    assigned = choice >= 0
    held = (~assigned & (np.diff(problem.lead_start) > 0)).sum()
    penalty = slacks_of(problem, terms, choice).penalty(terms)
    return problem.score[choice[assigned]].sum() - penalty - terms.hold_penalty * held


def brute_force(problem: AssignmentProblem, terms: FairnessTerms) -> float:
    start = problem.lead_start
    options = [list(range(start[i], start[i + 1])) + [-1] for i in range(problem.n_leads)]
    best = -np.inf
    for combo in itertools.product(*options):
        choice = np.array(combo)
        used = np.bincount(problem.rep[choice[choice >= 0]], minlength=problem.n_reps)
        if np.all(used <= problem.capacity):
            best = max(best, model_value(problem, terms, choice))
    return best


@pytest.mark.parametrize("constraints", list(ONLY))
@pytest.mark.parametrize("seed", range(4))
def test_finds_the_brute_force_optimum(constraints, seed):
    problem = random_problem(seed)
    fairness = ONLY[constraints]
    terms = FairnessTerms.of(problem, fairness)
    solution = solver(fairness, mip_rel_gap=0.0).solve(problem)
    assert model_value(problem, terms, solution.choice) == pytest.approx(
        brute_force(problem, terms), abs=1e-7
    )
    assert solution.status == "optimal"
    assert solution.bound >= solution.objective - 1e-9


def test_capacity_only_matches_an_assignment_solver_with_replicated_rep_slots():
    rng = np.random.default_rng(7)
    n, reps = 40, 6
    capacity = rng.integers(3, 9, reps)
    p = rng.uniform(0.05, 0.7, (n, reps))
    lead, rep = np.nonzero(np.ones((n, reps), bool))
    problem = AssignmentProblem(
        lead=lead,
        rep=rep,
        score=p[lead, rep],
        lead_value=np.ones(n),
        top_tier=np.zeros(n, bool),
        capacity=capacity,
        ramp=np.zeros(reps, bool),
        history_value=np.zeros(reps),
        history_top_tier=np.zeros(reps),
        history_capacity=np.zeros(reps),
    )
    solution = solver(OFF, mip_rel_gap=0.0).solve(problem)
    slots = np.repeat(np.arange(reps), capacity)
    rows, cols = linear_sum_assignment(p[:, slots], maximize=True)
    assert solution.objective == pytest.approx(p[rows, slots[cols]].sum(), abs=1e-9)
    assert (solution.choice >= 0).sum() == min(n, capacity.sum())


def lp_optimum(problem: AssignmentProblem, terms: FairnessTerms) -> float:
    everything = np.arange(len(problem.lead))
    model = HighsModel(problem, terms, everything, np.full(problem.n_leads, -1), 1)
    lp = model.solve_lp(10**6, 60)
    assert lp.x is not None
    return lp.objective


@pytest.mark.parametrize("constraints", ["none", "value_share", "all"])
def test_the_lagrangian_dual_bounds_the_lp_everywhere_and_meets_it_at_its_minimum(constraints):
    problem = random_problem(3, n=60, reps=8, history=True)
    terms = FairnessTerms.of(problem, ONLY[constraints])
    dual = Dual(problem, terms)
    optimum = lp_optimum(problem, terms)
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = np.array([rng.uniform(lo, 3.0 if hi is None else hi) for lo, hi in dual.bounds()])
        assert dual.value(y) >= optimum - 1e-7
    fitted = dual.value(dual.fit(400, NEVER, 1.0).y)
    assert fitted >= optimum - 1e-7
    assert fitted - optimum <= 1e-3 * abs(optimum)


def test_the_smoothed_dual_gives_the_same_value_split_over_threads():
    # leads in slabs by their number of pairs, each slab cut in two (however small)
    problem = random_problem(3, n=60, reps=8, history=True)
    terms = FairnessTerms.of(problem, ALL_ON)
    serial, split = Dual(problem, terms), Dual(problem, terms, workers=2, min_chunk_rows=1)
    assert len(serial.slabs) > 1
    assert len(split.chunks) == 2 * len(serial.chunks)
    rng = np.random.default_rng(1)
    y = np.array([rng.uniform(lo, 1.0 if hi is None else hi) for lo, hi in serial.bounds()])
    with ThreadPoolExecutor(2) as pool:
        value, gradient = split.smoothed(y, 0.01, pool)
        # the chunks are summed in a fixed order: the same numbers however the threads run
        assert split.smoothed(y, 0.01, pool)[0] == value
    expected_value, expected_gradient = serial.smoothed(y, 0.01)
    assert value == pytest.approx(expected_value, rel=1e-6)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dual_threads", [1, 2])
def test_decomposition_stays_within_the_target_gap(dual_threads):
    problem = random_problem(11, n=1500, reps=30, dense=False, slack=0.1)
    optimiser = solver(decompose_above_pairs=0, contested_share=0.1, dual_threads=dual_threads)
    solution = optimiser.solve(problem)
    assert solution.method.startswith("dual+lp")
    assert solution.gap <= 1e-3
    used = np.bincount(problem.rep[solution.choice[solution.choice >= 0]], minlength=problem.n_reps)
    assert np.all(used <= problem.capacity)


def test_a_re_solve_stopped_by_its_limit_leaves_the_last_lp_solution_to_round(monkeypatch):
    # every lead the dual prefers clearly is fixed (some wrongly, so pricing frees them), pricing
    # always re-solves, and every re-solve stops at the LP's iteration limit
    fix = phases.fix_by_margin
    monkeypatch.setattr(phases, "fix_by_margin", lambda p, r, share, margin: fix(p, r, 0, 0))
    monkeypatch.setattr(phases, "PRICING_STOP", 0.0)
    first_solve = HighsModel.solve_lp
    calls = []

    def solve_lp(model, iterations, time_limit):
        calls.append(iterations)
        if len(calls) == 1:
            return first_solve(model, iterations, time_limit)
        return LpResult(None, np.inf, None, "lp_iterations_per_row")

    monkeypatch.setattr(HighsModel, "solve_lp", solve_lp)
    greedy = []
    monkeypatch.setattr(phases, "greedy_fill", lambda *args: greedy.append(args))
    problem = random_problem(11, n=1500, reps=30, slack=0.1)
    solution = solver(decompose_above_pairs=0).solve(problem)
    assert len(calls) == 2  # the first LP left pairs out
    assert greedy == []  # the last LP's solution was rounded: no greedy fallback
    assert solution.gap <= 1e-3
    assert "lp_iterations_per_row" in solution.limits_reached
    used = np.bincount(problem.rep[solution.choice[solution.choice >= 0]], minlength=problem.n_reps)
    assert np.all(used <= problem.capacity)


def regions_problem(seed: int, regions: int, n: int, reps: int) -> AssignmentProblem:
    """Leads and reps in ``regions`` regions, each lead a candidate of its region's reps only
    (as with the region rule): one connected component per region. Capacity is 1.3 x the leads
    in every region; one rep in two regions out of three is ramping up."""
    rng = np.random.default_rng(seed)
    lead_region = np.sort(rng.integers(0, regions, n))
    rep_region = np.arange(reps) % regions
    lead, rep = np.nonzero(lead_region[:, None] == rep_region[None, :])
    value = rng.lognormal(0, 0.5, n)
    base = value * rng.uniform(0.1, 0.4, n)
    leads_per_rep = (
        np.bincount(lead_region, minlength=regions)[rep_region]
        / np.bincount(rep_region)[rep_region]
    )
    ramp = np.zeros(reps, bool)
    ramp[[r for r in range(reps) if r < regions and r % 3 != 2]] = True
    return AssignmentProblem(
        lead=lead,
        rep=rep,
        score=value[lead] * rng.uniform(0.05, 0.6, len(lead)),
        lead_value=base,
        top_tier=base >= np.quantile(base, 0.7),
        capacity=np.ceil(1.3 * leads_per_rep).astype(int) + 1,
        ramp=ramp,
        history_value=rng.uniform(0, 2, reps),
        history_top_tier=rng.integers(0, 3, reps).astype(float),
        history_capacity=rng.integers(2, 8, reps).astype(float),
    )


@pytest.mark.parametrize("dual_threads", [1, 2])  # 2: two components at a time
def test_components_are_solved_apart_with_a_bound_on_the_whole_problem(dual_threads):
    problem = regions_problem(0, regions=3, n=900, reps=24)
    terms = FairnessTerms.of(problem, ALL_ON)
    split = solver(decompose_above_pairs=0, dual_threads=dual_threads).solve(problem)
    whole = solver(decompose_above_pairs=10**9).solve(problem)
    assert split.method.startswith("split(3)")
    assert not whole.method.startswith("split")
    # the summed bound holds for the whole problem, and both answers are within the target
    assert split.bound >= lp_optimum(problem, terms) - 1e-7
    assert split.gap <= 1e-3
    assert split.objective == pytest.approx(whole.objective, rel=2e-3)
    assert split.objective == pytest.approx(model_value(problem, terms, split.choice), abs=1e-9)
    assert np.all(split.choice >= 0)


@pytest.mark.parametrize("seed", range(3))
def test_split_solutions_are_checked_against_brute_force(seed):
    problem = regions_problem(seed, regions=2, n=7, reps=4)
    terms = FairnessTerms.of(problem, ALL_ON)
    best = brute_force(problem, terms)
    solution = solver(decompose_above_pairs=0, mip_rel_gap=0.0).solve(problem)
    assert solution.method.startswith("split(2)")
    assert solution.bound >= best - 1e-9
    assert model_value(problem, terms, solution.choice) <= best + 1e-9
    assert solution.objective >= best - solution.gap * abs(solution.objective) - 1e-9


def test_a_component_short_of_capacity_is_not_split_off():
    problem = regions_problem(1, regions=2, n=200, reps=8)
    fields = {name: getattr(problem, name) for name in problem.__dataclass_fields__}
    short = AssignmentProblem(**(fields | {"capacity": np.where(np.arange(8) % 2 == 0, 5, 80)}))
    assert components(short, FairnessTerms.of(short, ALL_ON)) == []
    solution = solver(decompose_above_pairs=0).solve(short)
    assert not solution.method.startswith("split")
    assert (solution.choice < 0).sum() > 0


def test_a_component_dual_at_its_lp_prices_equals_its_lp():
    problem = regions_problem(2, regions=3, n=300, reps=12)
    for part in components(problem, FairnessTerms.of(problem, ALL_ON)):
        sub, terms = part.problem, part.terms
        model = HighsModel(sub, terms, np.arange(len(sub.lead)), np.full(sub.n_leads, -1), 1)
        lp = model.solve_lp(10**6, 60)
        dual = Dual(sub, terms)
        # the multipliers are the prices of the rows of the same names
        priced = ["capacity", "value_low", "value_high", "top_cap", "ramp"]
        assert list(dual.layout) == [name for name in priced if name in model.rows]
        at_prices = dual.value(model.multipliers(lp, dual.layout))
        assert at_prices == pytest.approx(lp.objective, rel=1e-9)


def test_a_warm_started_lp_gets_its_own_iterations_and_the_whole_of_its_time_limit():
    # HiGHS counts simplex iterations per run, but its time limit over every run of an
    # instance: a re-solve after pricing, given as long as the first solve took, must not
    # stop at once
    problem = regions_problem(0, regions=1, n=2000, reps=30)
    terms = FairnessTerms.of(problem, ALL_ON)
    first_half = np.flatnonzero(np.arange(len(problem.lead)) % 2 == 0)
    model = HighsModel(problem, terms, first_half, np.full(problem.n_leads, -1), threads=1)
    lp = model.solve_lp(10**6, 60.0)
    assert lp.x is not None and lp.stopped_by == ""
    first = model.iterations
    model.add(np.flatnonzero(np.arange(len(problem.lead)) % 2 == 1)[:20])
    lp = model.solve_lp(10**6, model.h.getRunTime())
    assert lp.x is not None and lp.stopped_by == ""
    assert model.iterations > first  # counted over both solves
    model.add(np.flatnonzero(np.arange(len(problem.lead)) % 2 == 1)[20:400])
    for iterations in (1, 0):
        lp = model.solve_lp(iterations, 60.0)
        assert (lp.x, lp.stopped_by) == (None, "lp_iterations_per_row")


@pytest.mark.parametrize(
    ("decompose", "status"),
    [
        (False, "feasible"),  # no bound without the LP: the gap is infinite
        (True, "optimal"),  # the dual's bound, and its greedy choice polished, meet the target
    ],
)
def test_an_lp_stopped_by_its_iteration_limit_leaves_a_feasible_answer_with_its_gap(
    decompose, status
):
    problem = random_problem(12, n=1500, reps=30, slack=0.1)
    optimiser = solver(lp_iterations_per_row=0.05, decompose_above_pairs=0 if decompose else 10**9)
    solution = optimiser.solve(problem)
    assert solution.status == status
    assert solution.limits_reached == ("lp_iterations_per_row",)
    assert np.isfinite(solution.gap) == decompose
    used = np.bincount(problem.rep[solution.choice[solution.choice >= 0]], minlength=problem.n_reps)
    assert np.all(used <= problem.capacity)
    assert (solution.choice >= 0).sum() == problem.n_leads  # 10% spare capacity
    # the work limit, not the clock, decided: the same answer again
    np.testing.assert_array_equal(optimiser.solve(problem).choice, solution.choice)


def test_the_safety_time_limit_is_reported_when_it_stops_a_phase():
    problem = random_problem(12, n=1500, reps=30, slack=0.1)
    solution = solver(time_limit_seconds=1e-6, decompose_above_pairs=0).solve(problem)
    assert "time_limit_seconds" in solution.limits_reached
    used = np.bincount(problem.rep[solution.choice[solution.choice >= 0]], minlength=problem.n_reps)
    assert np.all(used <= problem.capacity)


def burn_cpu(processes: int) -> list[subprocess.Popen]:
    """Busy processes that keep the machine's cores loaded until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]


# Instances on which the optimiser's answer used to change when its wall-clock budgets (0.6 s
# repair MIP, 1 s full MIP, time limit) were cut to a third: the assignment on the first and
# the second (expected wins minus penalties 13.90 against 13.80), the status on the third.
CLOCK_SENSITIVE = [
    {"seed": 0, "n": 60, "reps": 20},
    {"seed": 2, "n": 40, "reps": 40},
    {"seed": 1, "n": 20, "reps": 40},
]


@pytest.mark.parametrize("instance", CLOCK_SENSITIVE, ids=lambda i: "{seed}-{n}x{reps}".format(**i))
def test_the_answer_is_the_same_on_a_busy_machine_and_under_a_shorter_time_limit(instance):
    problem = random_problem(**instance, dense=True)
    quiet = solver().solve(problem)
    shorter = solver(time_limit_seconds=200).solve(problem)
    busy = burn_cpu(2)
    try:
        loaded = solver().solve(problem)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert "time_limit_seconds" not in quiet.limits_reached
    for other in (shorter, loaded):
        np.testing.assert_array_equal(other.choice, quiet.choice)
        assert (other.status, other.objective, other.bound, other.gap, other.method) == (
            quiet.status,
            quiet.objective,
            quiet.bound,
            quiet.gap,
            quiet.method,
        )
        assert other.limits_reached == quiet.limits_reached


@pytest.mark.parametrize("dual_threads", [1, 2])
def test_components_solved_side_by_side_give_the_same_answer_as_one_at_a_time(dual_threads):
    problem = regions_problem(3, regions=3, n=900, reps=24)
    one_at_a_time = solver(decompose_above_pairs=0, dual_threads=1).solve(problem)
    busy = burn_cpu(1)
    try:
        side_by_side = solver(decompose_above_pairs=0, dual_threads=dual_threads).solve(problem)
    finally:
        busy[0].kill()
        busy[0].wait()
    assert side_by_side.method.startswith("split(3)")
    np.testing.assert_array_equal(side_by_side.choice, one_at_a_time.choice)
    assert side_by_side.bound == one_at_a_time.bound


def test_a_lead_is_held_only_when_its_reps_are_full():
    problem = random_problem(5, n=12, reps=3)
    solution = solver().solve(problem)
    used = np.bincount(problem.rep[solution.choice[solution.choice >= 0]], minlength=problem.n_reps)
    start = problem.lead_start
    for lead in np.flatnonzero(solution.choice < 0):
        reps = problem.rep[start[lead] : start[lead + 1]]
        assert np.all(used[reps] >= problem.capacity[reps])


def test_a_held_lead_takes_a_full_reps_slot_when_its_lead_can_move_on():
    # leads 0-2 and reps 0-2 with one slot each: lead 0 can only go to rep 0, lead 1 to reps
    # 0 or 1, lead 2 to reps 1 or 2; lead 1 sits on rep 0 and lead 2 on rep 1, lead 0 is held
    problem = AssignmentProblem(
        lead=np.array([0, 1, 1, 2, 2]),
        rep=np.array([0, 0, 1, 1, 2]),
        score=np.full(5, 0.5),
        lead_value=np.ones(3),
        top_tier=np.zeros(3, bool),
        capacity=np.ones(3, int),
        ramp=np.zeros(3, bool),
        history_value=np.zeros(3),
        history_top_tier=np.zeros(3),
        history_capacity=np.zeros(3),
    )
    placed = place_held(problem, np.array([-1, 1, 3]))
    np.testing.assert_array_equal(placed, [0, 2, 4])  # 1 moves to rep 1, 2 on to rep 2
    # without lead 2's pair to rep 2 there is no room at the end of any chain: still held
    fields = {name: getattr(problem, name)[:4] for name in ("lead", "rep", "score")}
    no_room = replace(problem, **fields)
    np.testing.assert_array_equal(place_held(no_room, np.array([-1, 1, 3])), [-1, 1, 3])


def test_the_local_search_finds_the_swap_a_rep_outside_its_band_needs():
    # Two full reps, so only swaps move anything. Every lead is worth 1 where it is and less
    # at the other rep; leads are worth 1 value unit except lead 14 (1.2, on rep 0) and lead 15
    # (0.8, on rep 1). Rep 0 is 0.4 above its band and rep 1 0.4 below: swapping 14 and 15
    # mends both (4.0 of penalty at 5 per unit), though moving 15 costs more than any other
    # move (it is the last of rep 1's moves by score).
    n = 30
    value = np.ones(n)
    value[[14, 15]] = [1.2, 0.8]
    loss = np.linspace(0.02, 0.3, n)
    loss[[14, 15]] = [0.01, 0.5]
    start = np.where(np.arange(n) < 15, 0, 1)
    problem = AssignmentProblem(
        lead=np.repeat(np.arange(n), 2),
        rep=np.tile([0, 1], n),
        score=np.where(np.tile([0, 1], n) == np.repeat(start, 2), 1.0, 1.0 - np.repeat(loss, 2)),
        lead_value=value,
        top_tier=np.zeros(n, bool),
        capacity=np.array([15, 15]),
        ramp=np.zeros(2, bool),
        history_value=np.array([2.0, 0.0]),
        history_top_tier=np.zeros(2),
        history_capacity=np.zeros(2),
    )
    band = ValueShareRule(band=0.05, penalty=5.0)
    terms = FairnessTerms.of(problem, OFF.model_copy(update={"value_share": band}))
    choice = 2 * np.arange(n) + start
    slack = slacks_of(problem, terms, choice)
    np.testing.assert_allclose([slack.value_high[0], slack.value_low[1]], [0.4, 0.4])
    polished = LocalSearch(problem, terms, choice, np.ones(n, bool)).run(
        100, NEVER, lambda c: False
    )
    slack = slacks_of(problem, terms, polished)
    assert slack.value_high.sum() + slack.value_low.sum() < 1e-9
    swapped = choice.copy()
    swapped[[14, 15]] ^= 1
    gain = model_value(problem, terms, polished) - model_value(problem, terms, choice)
    assert gain >= model_value(problem, terms, swapped) - model_value(problem, terms, choice)
    assert gain == pytest.approx(4.0 - 0.51)


def test_the_local_search_chooses_which_lead_to_hold_when_capacity_is_short():
    # Two reps with one slot each and three leads, each worth 1 at either rep: one lead must
    # be held. Holding lead 1 leaves rep 1 with lead 2's value 3 against rep 0's 1, far outside
    # a 10% band; holding lead 2 instead balances the reps. No move or swap between the two
    # full reps changes that; only exchanging the held lead for an assigned one does.
    problem = AssignmentProblem(
        lead=np.repeat(np.arange(3), 2),
        rep=np.tile([0, 1], 3),
        score=np.ones(6),
        lead_value=np.array([1.0, 1.0, 3.0]),
        top_tier=np.zeros(3, bool),
        capacity=np.array([1, 1]),
        ramp=np.zeros(2, bool),
        history_value=np.zeros(2),
        history_top_tier=np.zeros(2),
        history_capacity=np.zeros(2),
    )
    band = ValueShareRule(band=0.1, penalty=1.0)
    terms = FairnessTerms.of(problem, OFF.model_copy(update={"value_share": band}))
    start = np.array([0, -1, 5])  # lead 0 on rep 0, lead 2 on rep 1, lead 1 held
    assert slacks_of(problem, terms, start).penalty(terms) == pytest.approx(1.6)
    polished = LocalSearch(problem, terms, start, np.ones(3, bool)).run(100, NEVER, lambda c: False)
    assert polished[2] == -1 and (polished[:2] >= 0).all()
    assert slacks_of(problem, terms, polished).penalty(terms) == 0
    assert model_value(problem, terms, polished) == pytest.approx(brute_force(problem, terms))


def test_the_local_search_places_a_held_lead_where_a_move_made_room():
    # Reps 0 and 1 have one slot each, rep 2 one more. Lead 2 is on rep 1 but is worth more on
    # rep 2, so the local search moves it there; rep 1 then has room for held lead 1.
    problem = AssignmentProblem(
        lead=np.array([0, 1, 1, 2, 2]),
        rep=np.array([0, 0, 1, 1, 2]),
        score=np.array([1.0, 1.0, 1.0, 0.5, 1.0]),
        lead_value=np.ones(3),
        top_tier=np.zeros(3, bool),
        capacity=np.array([1, 1, 1]),
        ramp=np.zeros(3, bool),
        history_value=np.zeros(3),
        history_top_tier=np.zeros(3),
        history_capacity=np.zeros(3),
    )
    terms = FairnessTerms.of(problem, OFF)
    polished = LocalSearch(problem, terms, np.array([0, -1, 3]), np.ones(3, bool)).run(
        100, NEVER, lambda c: False
    )
    np.testing.assert_array_equal(polished, [0, 2, 4])


def test_an_empty_problem_is_solved_trivially():
    problem = random_problem(0, n=3)
    empty = AssignmentProblem(
        lead=np.zeros(0, int),
        rep=np.zeros(0, int),
        score=np.zeros(0),
        lead_value=np.zeros(3),
        top_tier=np.zeros(3, bool),
        capacity=problem.capacity,
        ramp=problem.ramp,
        history_value=problem.history_value,
        history_top_tier=problem.history_top_tier,
        history_capacity=problem.history_capacity,
    )
    solution = Optimiser().solve(empty)
    assert solution.status == "empty"
    assert np.all(solution.choice == -1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"fairness": "fair"}, "fairness must be a FairnessConstraints"),
        ({"settings": {"mip_rel_gap": 0.01}}, "settings must be a SolverSettings"),
    ],
)
def test_optimiser_fields_are_validated(fields, message):
    with pytest.raises(TypeError, match=message):
        Optimiser(**fields)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time_limit_seconds", 0, "greater than 0"),
        ("mip_rel_gap", 1.5, "less than 1"),
        ("lp_iterations_per_row", 0, "greater than 0"),
        ("dual_iterations", 0, "greater than or equal to 1"),
        ("local_search_rounds", 0, "greater than or equal to 1"),
        ("repair_mip_nodes", -1, "greater than or equal to 0"),
        ("threads", 0, "greater than or equal to 1"),
        ("dual_threads", 0, "greater than or equal to 1"),
        ("contested_share", 0.0, "greater than 0"),
    ],
)
def test_solver_settings_are_validated(field, value, message):
    with pytest.raises(ValueError, match=f"{field}\n  Input should be {message}"):
        SolverSettings(**{field: value})


def test_problem_arrays_are_validated():
    problem = random_problem(0)
    fields = {name: getattr(problem, name) for name in problem.__dataclass_fields__}
    with pytest.raises(ValueError, match="capacity must be > 0"):
        AssignmentProblem(**(fields | {"capacity": np.array([1, 0, 2])}))
    with pytest.raises(ValueError, match="lead must be sorted"):
        AssignmentProblem(**(fields | {"lead": problem.lead[::-1].copy()}))
    with pytest.raises(ValueError, match="score has length"):
        AssignmentProblem(**(fields | {"score": problem.score[:-1]}))


def test_the_repair_mip_runs_only_when_the_local_search_misses_the_target(monkeypatch):
    mips = []
    solve_mip = HighsModel.solve_mip

    def counted(model, *args, **kwargs):
        mips.append(len(model.pairs))
        return solve_mip(model, *args, **kwargs)

    monkeypatch.setattr(HighsModel, "solve_mip", counted)
    problem = random_problem(3, n=400, reps=12, slack=0.2)
    optimiser_ = solver(mip_rel_gap=1e-3)
    solution = optimiser_.solve(problem)
    assert solution.n_fractional > 0 and solution.gap <= 1e-3
    assert mips == []  # the local search closed the gap on its own
    # a local search that cannot improve anything leaves the gap to the repair MIP
    monkeypatch.setattr(LocalSearch, "run", lambda search, *args: search.choice)
    solution = optimiser_.solve(problem)
    assert len(mips) >= 1 and mips[0] < len(problem.lead)  # over the fractional leads only
    assert solution.gap <= 1e-3


def test_a_contested_lead_starts_with_its_best_few_pairs_near_its_best():
    # lead 0 has five pairs close to its best and one far below; lead 1 has only far ones
    problem = AssignmentProblem(
        lead=np.array([0, 0, 0, 0, 0, 0, 1, 1, 1]),
        rep=np.array([0, 1, 2, 3, 4, 5, 0, 1, 2]),
        score=np.ones(9),
        lead_value=np.ones(2),
        top_tier=np.zeros(2, bool),
        capacity=np.full(6, 2),
        ramp=np.zeros(6, bool),
        history_value=np.zeros(6),
        history_top_tier=np.zeros(6),
        history_capacity=np.zeros(6),
    )
    reduced = np.array([1.0, 0.95, 0.9, 0.97, 0.92, 0.1, 1.0, 0.2, 0.1])
    both = np.ones(2, bool)
    near = near_best(problem, reduced, both, within=0.2)
    assert near.tolist() == [0, 1, 2, 3, 4, 6, 7]  # lead 1 keeps its two best however far
    assert near_best(problem, reduced, both, 0.2, most=3).tolist() == [0, 1, 3, 6, 7]
    assert near_best(problem, reduced, np.array([False, True]), 0.2).tolist() == [6, 7]


def test_match_notes_when_the_safety_time_limit_decided_the_plan():
    rng = np.random.default_rng(0)
    candidates = pd.DataFrame(
        [(f"L{i}", f"R{j}", rng.uniform(0.1, 0.6)) for i in range(12) for j in range(4)],
        columns=["lead_id", "rep_id", "p_win"],
    )
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(12)],
            "created_at": pd.date_range("2025-01-06 08:00", periods=12, freq="h"),
        }
    )
    reps = pd.DataFrame(
        {
            "rep_id": [f"R{j}" for j in range(4)],
            "active": True,
            "available": True,
            "capacity": 4,
            "open_load": 0,
            "max_open_leads": pd.array([None] * 4, dtype="Int64"),
            "tenure_days": [30.0, 400.0, 400.0, 400.0],
            "skills": "",
            "region": "EU",
            "languages": "",
        }
    )
    # the dual path, whose first check of the clock comes after its deadline
    rushed = SolverSettings(time_limit_seconds=1e-6, decompose_above_pairs=0)
    diagnostics = match(candidates, leads, reps, MatchingConfig(solver=rushed)).diagnostics
    assert "time_limit_seconds" in diagnostics.limits_reached
    assert any("safety time limit (1e-06 s" in note for note in diagnostics.notes)
    calm = match(candidates, leads, reps, MatchingConfig()).diagnostics
    assert "time_limit_seconds" not in calm.limits_reached
    assert not any("safety time limit" in note for note in calm.notes)


def test_blocks_name_consecutive_ranges_and_split_a_vector_by_name():
    blocks = Blocks()
    assert blocks.add("capacity", 3) == slice(0, 3)
    assert blocks.add("ramp", 1) == slice(3, 4)
    assert (blocks.size, list(blocks), "ramp" in blocks, "top_cap" in blocks) == (
        4,
        ["capacity", "ramp"],
        True,
        False,
    )
    parts = blocks.split(np.arange(4.0))
    np.testing.assert_array_equal(parts["capacity"], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(parts["ramp"], [3.0])
    with pytest.raises(ValueError, match="there is already a block named 'ramp'"):
        blocks.add("ramp", 2)


@pytest.mark.parametrize(
    ("constraints", "rows", "columns"),
    [
        ("none", ["lead", "capacity"], []),
        (
            "value_share",
            ["lead", "capacity", "value_def", "value_low", "value_high", "value_total"],
            ["V", "slack_low", "slack_high", "T"],
        ),
        (
            "new_rep_quota",
            ["lead", "capacity", "top_def", "top_total", "ramp"],
            ["N", "TA", "slack_ramp"],
        ),
        (
            "top_tier_cap",
            ["lead", "capacity", "top_def", "top_total", "top_cap"],
            ["N", "TA", "slack_cap"],
        ),
    ],
)
def test_the_model_has_the_rows_and_columns_its_rules_need(constraints, rows, columns):
    problem = random_problem(0)
    model = HighsModel(
        problem,
        FairnessTerms.of(problem, ONLY[constraints]),
        np.arange(len(problem.lead)),
        np.full(problem.n_leads, -1),
        threads=1,
    )
    assert (list(model.rows), list(model.cols)) == (rows, columns)
    assert model.rows.size == model.highs_lp.num_row_
