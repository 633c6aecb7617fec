"""From a schedule's tick to the published outputs, under a real Prefect server.

What an ops engineer runs, end to end, with the commands of the README: the `demo` world (16
reps) moved so that its history ends before today, with a day of new leads no rep has yet;
`leadmatch train` into a temporary store; then `leadmatch schedule --cron "* * * * *"`, which
starts its own Prefect server (database in the store). For each run the table shows its tick
(the scheduled time), when the run started and when `<out>/<date>` was published (the link's
own time), in seconds after the tick. Then the scheduler is stopped (SIGTERM, or `--kill` for
SIGKILL) and the script says how long the processes of the scheduler's and the server's
sessions took to end, and lists any still alive after 3 minutes: there must be none (after a
SIGKILL the server ends at once, a flow-run process the scheduler had started about a minute
later, by itself).

    .venv/bin/python benchmarks/bench_schedule.py              # 3 runs, about 5 minutes
    .venv/bin/python benchmarks/bench_schedule.py --runs 5 --kill
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

LEADMATCH = str(Path(sys.executable).with_name("leadmatch"))


def prepare(folder: Path) -> None:
    """The demo world, its history ending before today (weekdays kept), plus a day of new
    leads."""
    import pandas as pd

    from features.schemas import CrmData
    from pipelines.io import write_data_folder
    from simulation import SCENARIOS, simulate

    base = SCENARIOS["demo"]
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=base.n_days + 1)
    start -= dt.timedelta(days=(start.weekday() - base.start.weekday()) % 7)
    world = simulate(dataclasses.replace(base, start=start), seed=0)
    fresh = world.new_leads(world.as_of.normalize().date())
    data = world.data
    leads = pd.concat([data.leads, fresh], ignore_index=True)
    write_data_folder(CrmData(data.reps, leads, data.assignments, data.availability), folder)


def sessions_alive(sids: set[int]) -> list[str]:
    """``pid: command`` of every live process whose session is one of ``sids`` (Linux /proc)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) not in sids:
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, ProcessLookupError):
            continue
        if command:  # zombies have none
            alive.append(f"{entry.name}: {command[:100]}")
    return alive


def flow_runs(api_url: str) -> list[dict]:
    request = urllib.request.Request(
        f"{api_url}/flow_runs/filter",
        data=json.dumps({"sort": "EXPECTED_START_TIME_ASC", "limit": 200}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def when(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="published runs to wait for")
    parser.add_argument("--kill", action="store_true", help="stop the scheduler with SIGKILL")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait in all")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
        env.update(
            LEADMATCH_HOME=str(root / "store"),
            PREFECT_HOME=str(root / "prefect-client"),  # no profile pointing at another server
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            COLUMNS="200",
        )
        data, out = root / "crm", root / "plans"
        started = time.perf_counter()
        prepare(data)
        subprocess.run(
            [LEADMATCH, "train", "--data", str(data)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"simulated and trained in {time.perf_counter() - started:.0f} s")

        command = [
            LEADMATCH,
            "schedule",
            "--data",
            str(data),
            "--out",
            str(out),
            "--cron",
            "* * * * *",
        ]
        scheduler = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(scheduler.stdout), daemon=True)
        reader.start()
        launched = time.monotonic()
        api_url = None
        while api_url is None and time.monotonic() - launched < 300 and scheduler.poll() is None:
            found = re.search(r"UI at (http://127\.0\.0\.1:\d+)", "".join(lines))
            api_url = f"{found.group(1)}/api" if found else None
            time.sleep(0.5)
        if api_url is None:
            scheduler.kill()
            sys.exit("the scheduler printed no server address:\n" + "".join(lines))
        print(f"Prefect server up {time.monotonic() - launched:.0f} s after `schedule` started")
        server_pids = {
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit()
            and f"--port {api_url.split(':')[-1].split('/')[0]}".encode()
            in (p / "cmdline").read_bytes().replace(b"\0", b" ")
        }

        link = out / dt.datetime.now(dt.UTC).date().isoformat()
        published: list[float] = []
        target = None
        while len(published) < args.runs and time.monotonic() - launched < args.timeout:
            if link.is_symlink() and os.readlink(link) != target:
                target = os.readlink(link)
                published.append(link.lstat().st_mtime)
            if scheduler.poll() is not None:
                sys.exit("the scheduler stopped:\n" + "".join(lines))
            time.sleep(0.2)
        runs = flow_runs(api_url)

        sids = {os.getsid(scheduler.pid)} | {os.getsid(p) for p in server_pids}
        stopped = time.monotonic()
        scheduler.send_signal(signal.SIGKILL if args.kill else signal.SIGTERM)
        scheduler.wait(timeout=120)
        deadline = time.monotonic() + 180  # a run process may outlive a killed scheduler
        while sessions_alive(sids) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = sessions_alive(sids)
        gone_after = time.monotonic() - stopped

    print("\n| tick (UTC) | run | started after tick (s) | published after tick (s) |")
    print("|---|---|---|---|")
    delays = []
    for moment in published:
        stamp = dt.datetime.fromtimestamp(moment, dt.UTC)
        run = next(
            r
            for r in runs
            if when(r["start_time"])
            and when(r["start_time"]) <= stamp
            and (r["end_time"] is None or stamp <= when(r["end_time"]))
        )
        tick = when(run["expected_start_time"])
        delay = (stamp - tick).total_seconds()
        delays.append(delay)
        print(
            f"| {tick:%H:%M:%S} | {run['name']} | "
            f"{(when(run['start_time']) - tick).total_seconds():.1f} | {delay:.1f} |"
        )
    delays.sort()
    print(
        f"\ntick to outputs: median {delays[len(delays) // 2]:.1f} s, "
        f"range {delays[0]:.1f}-{delays[-1]:.1f} s over {len(delays)} runs"
    )
    how = "SIGKILL" if args.kill else "SIGTERM"
    print(
        f"after {how} to the scheduler: {len(left)} process(es) of its or the server's "
        f"session left after {gone_after:.1f} s" + "".join(f"\n  {p}" for p in left)
    )
    if left:
        sys.exit(1)


if __name__ == "__main__":
    main()
