"""Benchmark the backtest: the issue's targets and the time budget, end to end through the flow.

On the simulator (each scenario, ``--days`` days, the CLI's defaults): the policy table, whether
leadmatch captures at least 80% of the oracle's lift over round-robin with no hard violation
and every soft constraint within its limits (worlds with rep effects), or stays within 1% of
round-robin (the null world), and the wall-clock time against the 15-minute budget of
`leadmatch backtest --scenario default --days 30`. On the Maven sample (``--maven``): the
off-policy estimates of leadmatch's policy against the logged one.

    uv run --locked python benchmarks/bench_backtest.py                      # default + null, Maven
    uv run --locked python benchmarks/bench_backtest.py --scenarios small --days 5 --no-maven

Runs use a temporary MLflow store and output folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

BUDGET_SECONDS = 15 * 60
MAVEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "maven-crm-sales-opportunities"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="default,null", help="comma-separated")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--maven", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    for key, value in {
        "PREFECT_HOME": tempfile.mkdtemp(prefix="bench-prefect-"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(key, value)
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    from evaluation.policy_table import PRINTED_COLUMNS
    from pipelines.backtest import run_backtest
    from pipelines.config import LeadmatchConfig, TrackingConfig

    scratch = Path(tempfile.mkdtemp(prefix="bench-backtest-"))
    config = LeadmatchConfig(tracking=TrackingConfig(root=scratch / "mlflow"))
    pd.set_option("display.width", 200)
    for scenario in [s for s in args.scenarios.split(",") if s]:
        started = time.perf_counter()
        summary = run_backtest(
            scenario=scenario,
            days=args.days,
            seed=args.seed,
            out=scratch / scenario,
            config=config,
        )
        seconds = time.perf_counter() - started
        print(f"\n## {scenario}, {args.days} days, seed {args.seed}: {seconds:.0f} s", end="")
        if scenario == "default" and args.days == 30:
            verdict = "within" if seconds <= BUDGET_SECONDS else "OVER"
            print(f" ({verdict} the {BUDGET_SECONDS // 60}-minute budget)", end="")
        print("\n")
        print(
            pd.read_csv(summary.out / "backtest.csv")[
                [*PRINTED_COLUMNS, "ramp_top_tier_share", "gini"]
            ]
            .round(4)
            .to_string(index=False)
        )
        print()
        for line in summary.messages:
            print(f"- {line}")
        print(f"(files in {scratch / scenario})")
    if args.maven:
        if not MAVEN.is_dir():
            print(f"\nMaven sample not found at {MAVEN}: skipped")
            return
        started = time.perf_counter()
        summary = run_backtest(data=MAVEN, mapping="maven", out=scratch / "maven", config=config)
        print(f"\n## Maven sample, off-policy: {time.perf_counter() - started:.0f} s\n")
        print(summary.table.to_string(index=False))
        print()
        for line in summary.messages:
            print(f"- {line}")


if __name__ == "__main__":
    main()
