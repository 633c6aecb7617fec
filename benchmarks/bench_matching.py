"""Speed, peak memory and optimality gap of the matching, with reference points.

For each size (leads x reps) a simulated world gives realistic structure: four regions, reps'
skills and ramp-up, lead values, and win probabilities from the simulator's knowable
probability (the best a model could learn). Today's capacity is scaled to 1.2 x the leads and
open-lead limits are dropped, so the day is feasible at every size. The region rule is on,
every fairness constraint is on, top-k = 20.

Each size runs in two fresh processes: one builds the instance into a temporary folder (not
timed), the other loads it and times ``match`` (policy "leadmatch", price of fairness off),
then the greedy baseline, then an OR-Tools min-cost flow on the capacity-only version (each
lead's top-20 pairs, no fairness). Peak memory is that process's maximum resident set
(inputs included). Timings are wall-clock on a shared machine: other work on its cores adds
noise, but never changes the answer (the solver stops on work limits, not on the clock; the
"limits" column names any limit that stopped a phase, "time_limit_seconds" for the safety net).
The CPU seconds of the match call (all threads) are printed too: on a busy machine they are
closer to what the call takes alone than its wall-clock time.

    uv run --locked python benchmarks/bench_matching.py
    uv run --locked python benchmarks/bench_matching.py --sizes 2000x50,20000x200
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_SIZES = "2000x50,20000x200,100000x500"
BUDGETS = {"2000x50": 2.0, "20000x200": 15.0, "100000x500": 120.0}
TOP_K = 20


def build(size: str, folder: Path) -> None:
    """Write candidates, leads and reps_today of one instance as Parquet files."""
    import numpy as np
    import pandas as pd

    from features.daily import rep_day
    from matching import MatchingConfig, candidate_pairs
    from matching.config import EligibilityRules
    from simulation import SCENARIOS, simulate

    n, reps = (int(x) for x in size.split("x"))
    scenario = dataclasses.replace(
        SCENARIOS["default"], n_reps=reps, leads_per_day=2.0 * reps, n_days=60
    )
    world = simulate(scenario, seed=0)
    day = world.as_of
    leads = world.new_leads(day, n=n, seed=1)
    reps_today = rep_day(world.data, day)
    working = reps_today["available"].to_numpy()
    weight = reps_today["capacity"].to_numpy(dtype=float) * working
    scaled = np.ceil(weight / weight.sum() * 1.2 * n).astype(int)
    reps_today = reps_today.assign(
        capacity=scaled, max_open_leads=pd.array([None] * len(scaled), dtype="Int64")
    )
    config = MatchingConfig(eligibility=EligibilityRules(region=True))
    pairs = candidate_pairs(leads, reps_today, config)
    at = pairs["lead_id"].map(leads.set_index("lead_id")["created_at"])
    pairs["p_win"] = world.knowable_probability(pairs.assign(at=at.to_numpy(), open_load=0))
    pairs.to_parquet(folder / "candidates.parquet")
    leads.to_parquet(folder / "leads.parquet")
    reps_today.to_parquet(folder / "reps.parquet")


def min_cost_flow(folder: Path) -> dict:
    """Seconds and expected wins of an OR-Tools min-cost flow over each lead's top-k pairs with
    rep capacities only; a lead may stay unassigned (an arc to a 'hold' node at cost 0).

    Runs in its own process: OR-Tools bundles another HiGHS build that clashes with highspy's.
    """
    import numpy as np
    import pandas as pd
    from ortools.graph.python import min_cost_flow as mcf

    candidates = pd.read_parquet(folder / "candidates.parquet")
    reps_today = pd.read_parquet(folder / "reps.parquet")
    top = candidates.sort_values(["lead_id", "p_win"], ascending=[True, False], kind="stable")
    top = top.groupby("lead_id", sort=False).head(TOP_K)
    started = time.perf_counter()
    lead_codes, lead_ids = pd.factorize(top["lead_id"])
    rep_index = pd.Index(reps_today["rep_id"])
    rep_codes = rep_index.get_indexer(top["rep_id"])
    n, r = len(lead_ids), len(rep_index)
    hold, sink = n + r, n + r + 1
    capacity = reps_today["capacity"].to_numpy(dtype=np.int64)
    tails = np.concatenate([lead_codes, n + np.arange(r), np.arange(n), [hold]])
    heads = np.concatenate([n + rep_codes, np.full(r, sink), np.full(n, hold), [sink]])
    caps = np.concatenate([np.ones(len(top)), capacity, np.ones(n), [n]]).astype(np.int64)
    costs = np.concatenate([-np.round(top["p_win"].to_numpy() * 1e6), np.zeros(r + n + 1)]).astype(
        np.int64
    )
    flow = mcf.SimpleMinCostFlow()
    arcs = flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supplies = np.zeros(n + r + 2, dtype=np.int64)
    supplies[:n] = 1
    supplies[sink] = -n
    flow.set_nodes_supplies(np.arange(n + r + 2), supplies)
    status = flow.solve()
    seconds = time.perf_counter() - started
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed: {status}")
    used = flow.flows(arcs[: len(top)]) > 0
    return {"flow_seconds": seconds, "flow_wins": float(top["p_win"].to_numpy()[used].sum())}


def run(folder: Path, time_limit: float | None) -> dict:
    """Time match (leadmatch), the greedy baseline and the min-cost flow on one instance."""
    import pandas as pd

    from matching import MatchingConfig, match
    from matching.config import EligibilityRules, SolverSettings

    candidates = pd.read_parquet(folder / "candidates.parquet")
    leads = pd.read_parquet(folder / "leads.parquet")
    reps_today = pd.read_parquet(folder / "reps.parquet")
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    config = MatchingConfig(
        eligibility=EligibilityRules(region=True),
        top_k=TOP_K,
        price_of_fairness=False,
        solver=SolverSettings()
        if time_limit is None
        else SolverSettings(time_limit_seconds=time_limit),
    )
    started, cpu = time.perf_counter(), time.process_time()
    result = match(candidates, leads, reps_today, config)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    d = result.diagnostics
    started = time.perf_counter()
    greedy = match(candidates, leads, reps_today, config, policy="greedy").diagnostics
    greedy_seconds = time.perf_counter() - started
    return {
        "pairs": len(candidates),
        "candidates": d.n_candidates,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "phases": {k: round(v, 2) for k, v in d.phase_seconds.items()},
        "status": d.status,
        "method": d.method,
        "objective": d.objective,
        "bound": d.bound,
        "gap": d.gap,
        "expected_wins": d.expected_wins,
        "held": d.n_held,
        "fractional": d.n_fractional,
        "limits": list(d.limits_reached),
        "soft_violations": len(d.soft_violations),
        "greedy_seconds": greedy_seconds,
        "greedy_wins": greedy.expected_wins,
        "greedy_violations": len(greedy.soft_violations),
        "loaded_mb": loaded_mb,
        "peak_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated LEADSxREPS")
    parser.add_argument(
        "--time-limit",
        type=float,
        help="the solver's safety time limit in seconds (default: the configuration's)",
    )
    parser.add_argument("--build", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--flow", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        size, folder = args.build.split(":", 1)
        build(size, Path(folder))
        return
    if args.run:
        print(json.dumps(run(Path(args.run), args.time_limit)))
        return
    if args.flow:
        print(json.dumps(min_cost_flow(Path(args.flow))))
        return
    rows = []
    for size in args.sizes.split(","):
        with tempfile.TemporaryDirectory(prefix="bench-matching-") as tmp:
            subprocess.run([sys.executable, __file__, "--build", f"{size}:{tmp}"], check=True)
            row = {}
            limit = [] if args.time_limit is None else ["--time-limit", str(args.time_limit)]
            for step in (["--run", tmp, *limit], ["--flow", tmp]):
                out = subprocess.run(
                    [sys.executable, __file__, *step], check=True, capture_output=True, text=True
                )
                row |= json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((size, row))
        print(f"{size}: {json.dumps(row)}", file=sys.stderr, flush=True)
    print()
    print(
        "| size | pairs | candidates | leadmatch s (budget) | cpu s | status | gap | held | soft viol. | "
        "expected wins | greedy s | greedy wins (soft viol.) | min-cost flow s | flow wins (capacity only) | peak MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size, r in rows:
        budget = BUDGETS.get(size)
        print(
            f"| {size} | {r['pairs']:,} | {r['candidates']:,} | {r['seconds']:.1f} ({budget or '-'}) | "
            f"{r['cpu_seconds']:.1f} | "
            f"{r['status']} | {r['gap']:.2e} | {r['held']} | {r['soft_violations']} | "
            f"{r['expected_wins']:.1f} | {r['greedy_seconds']:.1f} | {r['greedy_wins']:.1f} "
            f"({r['greedy_violations']}) | {r['flow_seconds']:.2f} | {r['flow_wins']:.1f} | {r['peak_mb']:.0f} |"
        )
    print()
    for size, r in rows:
        print(
            f"{size}: phases {r['phases']}, method {r['method']}, fractional leads "
            f"{r['fractional']}, limits reached {r['limits'] or 'none'}"
        )


if __name__ == "__main__":
    main()
