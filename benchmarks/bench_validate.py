"""Time and peak memory of `leadmatch validate` on a large canonical export.

For each size N, a canonical data folder is written into a temporary folder: 200 reps, N leads
and N assignment rows over two years, with the timestamps of a real mixed export: half plain
ISO (``2024-03-01 14:30:05``), a third ISO in UTC from an API (``2024-03-01T06:30:05.000Z``),
the rest with an offset (``2024-03-01 22:30+08:00``); first contacts on 70% of the rows, close
dates on the closed ones, deal values on the won ones, and numeric lead columns. Every
timestamp is the same instant whatever its form, so the export is valid on the UTC clock.

Each size is validated three times in fresh processes: the whole command
(``leadmatch validate DIR``: start-up, reading, parsing and checking, the summary), then the
reading alone and the parsing and checking alone (``check_crm`` on the frames read). Peak
memory is that process's maximum resident set. Timings are wall-clock on a shared machine:
other work on its cores adds noise.

    uv run --locked python benchmarks/bench_validate.py
    uv run --locked python benchmarks/bench_validate.py --sizes 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_SIZES = "100000,1000000"
REPS = 200


def build(n: int, folder: Path) -> None:
    """Write reps.csv, leads.csv and assignments.csv of a valid n-lead export."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    start = pd.Timestamp("2023-01-01")
    span = 2 * 365 * 86_400
    created = start + pd.to_timedelta(np.sort(rng.integers(0, span, n)), unit="s")
    assigned = created + pd.to_timedelta(rng.integers(0, 3_600, n), unit="s")
    contacted = assigned + pd.to_timedelta(rng.integers(600, 5 * 86_400, n), unit="s")
    closed_at = assigned + pd.to_timedelta(rng.integers(86_400, 120 * 86_400, n), unit="s")
    end = created.max()
    status = np.where(rng.random(n) < 0.2, "won", "lost")
    status = np.where((closed_at > end) | (rng.random(n) < 0.1), "open", status)
    form = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])

    def written(stamps: pd.DatetimeIndex, present: np.ndarray) -> np.ndarray:
        """Each lead's times in that lead's form (the +08:00 one to the minute, so a lead's
        times, all cut the same way, stay in order)."""
        plain = stamps.strftime("%Y-%m-%d %H:%M:%S").to_numpy()
        api = stamps.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_numpy()
        local = (stamps + pd.Timedelta(hours=8)).strftime("%Y-%m-%d %H:%M+08:00").to_numpy()
        text = np.select([form == 0, form == 1], [plain, api], local)
        return np.where(present, text, "")

    everyone = np.ones(n, bool)
    reps = pd.DataFrame(
        {
            "rep_id": [f"R{i:03d}" for i in range(REPS)],
            "name": [f"Rep {i}" for i in range(REPS)],
            "team": [f"team{i % 10}" for i in range(REPS)],
            "region": [["EU", "US", "APAC"][i % 3] for i in range(REPS)],
            "hire_date": "2020-01-06",
            "skills": "retail;software",
            "daily_capacity": 8,
            "active": "true",
        }
    )
    ids = np.char.add("L", np.arange(n).astype(str))
    leads = pd.DataFrame(
        {
            "lead_id": ids,
            "created_at": written(created, everyone),
            "source": rng.choice(["web", "event", "referral", "partner"], n),
            "industry": rng.choice(["retail", "software", "health", "finance"], n),
            "region": rng.choice(["EU", "US", "APAC"], n),
            "product": rng.choice(["basic", "pro"], n),
            "company_size": rng.integers(1, 5_000, n),
            "expected_value": np.round(rng.gamma(2.0, 2_000.0, n), 2),
            "x_score": np.round(rng.random(n), 4),
        }
    )
    closed = status != "open"
    asg = pd.DataFrame(
        {
            "lead_id": ids,
            "rep_id": pd.Series(rng.integers(0, REPS, n)).map("R{:03d}".format),
            "assigned_at": written(assigned, everyone),
            "first_contact_at": written(contacted, rng.random(n) < 0.7),
            "status": status,
            "closed_at": written(closed_at, closed),
            "deal_value": np.where(status == "won", np.round(rng.gamma(2.0, 2_500.0, n), 2), ""),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    reps.to_csv(folder / "reps.csv", index=False)
    leads.to_csv(folder / "leads.csv", index=False)
    asg.to_csv(folder / "assignments.csv", index=False)


def measure(folder: Path, part: str) -> dict[str, float]:
    """In this (fresh) process: time one part of validation and the peak memory."""
    import resource

    from features.schemas import CrmData, check_crm
    from pipelines.io import read_located

    started = time.perf_counter()
    read = {stem: read_located(folder / f"{stem}.csv") for stem in ("reps", "leads", "assignments")}
    read_s = time.perf_counter() - started
    check_s = float("nan")
    if part == "check":
        frames = {stem: frame for stem, (frame, _) in read.items()}
        origins = {stem: origin for stem, (_, origin) in read.items()}
        started = time.perf_counter()
        check_crm(CrmData(**frames), timezone="UTC", origins=origins)
        check_s = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"read_s": read_s, "check_s": check_s, "peak_mb": peak}


def run_cli(folder: Path) -> dict[str, float]:
    """`leadmatch validate DIR` in a fresh process: the command's time once its modules are
    imported, the whole process's time, and its peak memory."""
    code = (
        "import resource, sys, time\n"
        "from typer.testing import CliRunner\n"
        "from pipelines.cli import app\n"
        "import features.describe, pipelines.config, pipelines.io\n"
        "t = time.perf_counter()\n"
        f"r = CliRunner().invoke(app, ['validate', {str(folder)!r}])\n"
        "s = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(r.output[-300:], file=sys.stderr)\n"
        "print(f'{s} {r.exit_code} {peak}')\n"
    )
    # Byte-code caching as a user has it (some sandboxes turn it off, and compiling the
    # imports again then costs more than validating a small export).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", "import pipelines.cli, pipelines.config"], env=env)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    wall = time.perf_counter() - started
    seconds, exit_code, peak = done.stdout.split()
    if exit_code != "0":
        raise SystemExit(f"validate exited {exit_code}:\n{done.stderr}")
    return {"validate_s": float(seconds), "process_s": wall, "peak_mb": float(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="leads per export, comma-separated")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # folder part: child mode
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1])))
        return
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
            folder = Path(tmp) / "crm"
            started = time.perf_counter()
            build(n, folder)
            built = time.perf_counter() - started
            size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
            cli = run_cli(folder)
            parts = {}
            for part in ("read", "check"):
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", str(folder), part],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                parts[part] = json.loads(out.stdout)
            rows.append(
                {
                    "leads": n,
                    "rows": 2 * n + REPS,
                    "file MB": size_mb,
                    "validate s": cli["validate_s"],
                    "process s": cli["process_s"],
                    "peak MB": cli["peak_mb"],
                    "read s": parts["read"]["read_s"],
                    "check s": parts["check"]["check_s"],
                    "check peak MB": parts["check"]["peak_mb"],
                    "build s": built,
                }
            )
            print(f"done {n:,} leads", file=sys.stderr)
    header = list(rows[0])
    print(" | ".join(f"{h:>13}" for h in header))
    for row in rows:
        cells = [f"{v:>13,}" if isinstance(v, int) else f"{v:>13.1f}" for v in row.values()]
        print(" | ".join(cells))
    print(
        "validate s: `leadmatch validate DIR` once its modules are imported (read, parse, "
        "check, summary); process s: the whole process, Python start-up and imports included; "
        "peak MB: that process's maximum resident set; read s / check s: reading the three "
        "files / check_crm alone (check peak MB: that process's peak)."
    )


if __name__ == "__main__":
    main()
