"""Seconds from typing a command with a mistake in it to its error message, per command.

Each case runs the CLI in a fresh interpreter (as a user or cron would) and is timed from the
process start to its exit; the median of ``--repeat`` runs is printed with the exit code and the
start of the error message. ``--code DIR`` times another checkout of leadmatch (e.g. an older
commit exported with ``git archive``) with this environment, to compare before and after.

    uv run --locked python benchmarks/bench_cli_errors.py
    uv run --locked python benchmarks/bench_cli_errors.py --code /tmp/leadmatch-old --repeat 1
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cases(scratch: Path, sample: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """(what, arguments, extra environment) for each mistake."""
    (scratch / "a-file.txt").write_text("not a folder")
    (scratch / "bad.yaml").write_text("recommend: [\n")
    (scratch / "broken-store").mkdir()
    (scratch / "broken-store" / "mlflow.db").write_bytes(b"not a database" * 100)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    run = ["--data", str(sample), "--date", "2025-05-06", "--out", str(scratch / "out")]
    return [
        ("recommend: bad --date", ["recommend", *run[:2], "--date", "2025-13-01"], {}),
        ("recommend: missing --data", ["recommend", "--data", "/nope", *run[2:]], {}),
        ("recommend: unknown --lang", ["recommend", *run, "--lang", "fr"], {}),
        ("recommend: unknown --mapping", ["recommend", *run, "--mapping", "salesfarce"], {}),
        ("recommend: config not YAML", ["recommend", *run, "--config", str(scratch / "bad.yaml")], {}),
        ("recommend: --out is a file", ["recommend", *run[:4], "--out", str(scratch / "a-file.txt")], {}),
        ("recommend: damaged MLflow db", ["recommend", *run], {"LEADMATCH_HOME": str(scratch / "broken-store")}),
        ("recommend: MLflow server down", ["recommend", *run], {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed}"}),
        ("train: missing --data", ["train", "--data", "/nope"], {}),
        ("backtest: unknown --scenario", ["backtest", "--scenario", "huge"], {}),
        ("simulate: unknown --scenario", ["simulate", "--scenario", "huge", "--out", str(scratch / "s")], {}),
        ("validate: missing folder", ["validate", "/nope"], {}),
    ]  # fmt: skip


def time_case(
    code: Path, args: list[str], env: dict[str, str], timeout: float
) -> tuple[float, str]:
    environment = os.environ | {"PYTHONPATH": str(code)} | env
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from pipelines.cli import app; app()", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
            cwd=code,
        )
    except subprocess.TimeoutExpired:
        return float("inf"), "(no answer)"
    seconds = time.perf_counter() - started
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    return seconds, f"exit {done.returncode}: {(errors or ['(no error line)'])[0][:60]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout of leadmatch to time")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median shown)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before giving up")
    options = parser.parse_args()
    sample = ROOT / "data" / "sample"
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.setdefault("PREFECT_HOME", str(Path(scratch) / "prefect"))
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        print(f"time to the error message, {options.code} ({os.cpu_count()} cores, load "
              f"{os.getloadavg()[0]:.1f})")  # fmt: skip
        print(f"{'case':32} {'seconds':>8}  result")
        for what, args, env in cases(Path(scratch), sample):
            runs = [
                time_case(options.code, args, env, options.timeout) for _ in range(options.repeat)
            ]
            seconds = statistics.median(s for s, _ in runs)
            shown = f"> {options.timeout:.0f}" if seconds == float("inf") else f"{seconds:.1f}"
            print(f"{what:32} {shown:>8}  {runs[-1][1]}", flush=True)


if __name__ == "__main__":
    main()
