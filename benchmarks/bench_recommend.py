"""End-to-end time and peak memory of the nightly recommend flow.

For each size: simulate a world, add the run date's new leads as unassigned leads, write the data
folder, train a champion into a temporary MLflow store (not timed), then run the recommend flow in
a fresh process and time it from the flow call (the interpreter's start and imports excluded; a
first warm-up flow call starts Prefect's temporary server and is reported apart).

    uv run --locked python benchmarks/bench_recommend.py            # default + 5,000 x 300
    uv run --locked python benchmarks/bench_recommend.py --sizes default
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {
    "default": {"scenario": "default", "new_leads": 600},
    "5000x300": {
        "scenario": "default",
        "n_reps": 300,
        "leads_per_day": 2000.0,
        "n_days": 200,
        "new_leads": 5000,
    },
}


def prepare(size: str, root: Path) -> tuple[Path, str]:
    import pandas as pd

    from features.schemas import CrmData
    from pipelines.io import write_data_folder
    from simulation import SCENARIOS, simulate

    spec = dict(SIZES[size])
    base = SCENARIOS[spec.pop("scenario")]
    new = spec.pop("new_leads")
    world = simulate(dataclasses.replace(base, **spec), seed=0)
    day = world.as_of
    while day.weekday() >= 5:
        day += pd.Timedelta(days=1)
    fresh = world.new_leads(day - pd.Timedelta(hours=12), n=new, seed=1)
    data = world.data
    folder = root / "crm"
    write_data_folder(
        CrmData(
            data.reps,
            pd.concat([data.leads, fresh], ignore_index=True),
            data.assignments,
            data.availability,
        ),
        folder,
    )
    return folder, f"{day:%Y-%m-%d}"


def run(folder: Path, run_date: str, store: Path, out: Path) -> dict:
    from pipelines.config import LeadmatchConfig, TrackingConfig
    from pipelines.recommend import recommend_flow

    config = LeadmatchConfig(tracking=TrackingConfig(root=store))
    started = time.perf_counter()
    recommend_flow(folder, run_date, out / "warmup", config)
    warm = time.perf_counter() - started
    started = time.perf_counter()
    summary = recommend_flow(folder, run_date, out / "timed", config)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return {
        "first_call_s": warm,
        "seconds": seconds,
        "peak_gb": peak,
        "placed": summary.placed,
        "held": summary.held,
        "reclaimed": summary.reclaimed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=list(SIZES))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if args.child:
        folder, run_date, store, out = args.child
        print(json.dumps(run(Path(folder), run_date, Path(store), Path(out))))
        return
    from pipelines.config import LeadmatchConfig, TrackingConfig
    from pipelines.train import train_flow

    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            folder, run_date = prepare(size, root)
            started = time.perf_counter()
            train_flow(folder, LeadmatchConfig(tracking=TrackingConfig(root=root / "mlflow")))
            train_s = time.perf_counter() - started
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(folder),
                    run_date,
                    str(root / "mlflow"),
                    str(root / "out"),
                ],
                capture_output=True,
                text=True,
            )
            if child.returncode:
                sys.exit(f"recommend failed for {size}:\n{child.stderr[-3000:]}")
            result = json.loads(child.stdout.strip().splitlines()[-1])
            rows.append({"size": size, "run_date": run_date, "train_s": train_s, **result})
    print(
        f"{'size':10} {'placed':>7} {'held':>6} {'reclaimed':>9} {'first call s':>12} {'recommend s':>11} {'peak GB':>8} {'train s':>8}"
    )
    for r in rows:
        print(
            f"{r['size']:10} {r['placed']:7d} {r['held']:6d} {r['reclaimed']:9d} {r['first_call_s']:12.1f} {r['seconds']:11.1f} {r['peak_gb']:8.2f} {r['train_s']:8.1f}"
        )


if __name__ == "__main__":
    main()
