"""How long the simulator takes to build each named world (the worlds the tests, the demo and
the backtest start from), with the world's size.

    uv run --locked python benchmarks/bench_simulation.py
    uv run --locked python benchmarks/bench_simulation.py --scenarios small null_small --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from simulation import SCENARIOS, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=sorted(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--repeat", type=int, default=3, help="runs per world (median shown)")
    options = parser.parse_args()
    print(f"simulation time ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    print(f"{'scenario':12} {'reps':>5} {'leads':>9} {'assignments':>12} {'seconds':>8}")
    for name in options.scenarios:
        seconds = []
        for seed in range(options.repeat):
            started = time.perf_counter()
            world = simulate(name, seed=seed)
            seconds.append(time.perf_counter() - started)
        data = world.data
        print(
            f"{name:12} {len(data.reps):>5} {len(data.leads):>9,} {len(data.assignments):>12,} "
            f"{statistics.median(seconds):>8.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
