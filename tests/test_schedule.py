"""`leadmatch schedule`: a real Prefect server or a clear refusal, and each run's date."""

from __future__ import annotations

import datetime as dt
import fcntl
import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines import scheduling
from pipelines.cli import app
from pipelines.scheduling import SchedulingError, local_server, run_date_for

runner = CliRunner()
UTC = dt.UTC


@pytest.mark.parametrize(
    ("moment", "timezone", "date"),
    [
        # 02:00 in Shanghai is 18:00 UTC the day before: the run is for the Shanghai date.
        (dt.datetime(2025, 5, 6, 18, 0, tzinfo=UTC), "Asia/Shanghai", "2025-05-07"),
        (dt.datetime(2025, 5, 6, 18, 0, tzinfo=UTC), "UTC", "2025-05-06"),
        (dt.datetime(2025, 5, 6, 15, 59, tzinfo=UTC), "Asia/Shanghai", "2025-05-06"),
        (dt.datetime(2025, 5, 6, 16, 0, tzinfo=UTC), "Asia/Shanghai", "2025-05-07"),
        # West of UTC the team's date is still yesterday.
        (dt.datetime(2025, 5, 7, 2, 0, tzinfo=UTC), "America/New_York", "2025-05-06"),
        # The offset the moment carries does not matter, only the instant.
        (
            dt.datetime(2025, 5, 7, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
            "UTC",
            "2025-05-06",
        ),
    ],
)
def test_run_date_is_the_date_on_the_schedules_clock(moment, timezone, date):
    assert run_date_for(moment, timezone) == date


def test_run_date_needs_a_moment_with_a_time_zone():
    with pytest.raises(ValueError, match="has no time zone: give the moment with its offset"):
        run_date_for(dt.datetime(2025, 5, 6, 18, 0), "UTC")


def test_scheduled_runs_get_the_schedules_clock_and_absolute_folders(tmp_path, monkeypatch):
    from pipelines.config import LeadmatchConfig
    from pipelines.scheduling import scheduled_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADMATCH_HOME", str(tmp_path / "store"))
    base = LeadmatchConfig.model_validate({"timezone": "Europe/Berlin", "seed": 7})
    kept = scheduled_config(base)
    assert kept.timezone == "Europe/Berlin" and kept.seed == 7
    assert kept.tracking.root == tmp_path / "store"
    assert kept.paths.recommendations == tmp_path / "data" / "recommendations"
    moved = scheduled_config(base, timezone="Asia/Shanghai", out=Path("plans"))
    assert moved.timezone == "Asia/Shanghai"
    assert moved.paths.recommendations == tmp_path / "plans"
    with pytest.raises(SchedulingError, match="--timezone: 'Mars/Olympus' is not an IANA"):
        scheduled_config(base, timezone="Mars/Olympus")


def test_scheduled_runs_name_the_data_set_as_train_does(tmp_path, monkeypatch):
    """A data folder that is a link to its latest version (leadmatch's writers publish folders
    so) reaches the runs as the link: resolved, it would be another data set without a
    champion."""
    from pipelines.config import LeadmatchConfig
    from pipelines.registry import registered_model_name
    from pipelines.scheduling import run_parameters, scheduled_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADMATCH_HOME", str(tmp_path / "store"))
    (tmp_path / ".versions" / "crm.1").mkdir(parents=True)
    (tmp_path / "crm").symlink_to(Path(".versions") / "crm.1")
    (tmp_path / "mappings.1").mkdir()
    (tmp_path / "mappings.1" / "ours.yaml").write_text("tables: {}\n")
    (tmp_path / "mappings").symlink_to("mappings.1")
    config = scheduled_config(LeadmatchConfig())
    for mapping in (None, "maven", "mappings/ours.yaml"):
        params = run_parameters(Path("crm"), config, "en", mapping)
        assert params["data"] == str(tmp_path / "crm")
        trained_as = registered_model_name(Path("crm"), mapping, config.tracking)
        served_as = registered_model_name(Path(params["data"]), params["mapping"], config.tracking)
        assert served_as == trained_as
    assert params["mapping"] == str(tmp_path / "mappings" / "ours.yaml")
    assert params["out"] == str(tmp_path / "data" / "recommendations")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADMATCH_HOME", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crm").mkdir()
    return tmp_path / "crm"


def test_schedule_refuses_when_the_configured_server_does_not_answer(folder, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    result = runner.invoke(app, ["schedule", "--data", str(folder)])
    assert result.exit_code == 2, result.output
    assert f"no Prefect server answers at PREFECT_API_URL={url}" in result.output
    assert "Traceback" not in result.output
    assert result.output.count("error:") == 1


def test_schedule_names_the_store_as_the_user_set_it(folder, monkeypatch):
    # The default store, not "from the config": the runs get an absolute copy of its path.
    from pipelines import tracking

    monkeypatch.delenv("LEADMATCH_HOME")
    monkeypatch.setattr(tracking, "project_folder", lambda: folder.parent)
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{_closed_port()}/api")
    result = runner.invoke(app, ["schedule", "--data", str(folder)])
    assert result.exit_code == 2, result.output
    store = folder.parent / ".leadmatch"
    assert f"MLflow store: {store} (the default: .leadmatch in {folder.parent})" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "every night"], "--cron 'every night' is not a cron schedule"),
        (["--timezone", "Mars/Olympus"], "'Mars/Olympus' is not an IANA time-zone name"),
        (["--lang", "fr"], "unknown language 'fr'"),
        (["--mapping", "nowhere.yaml"], "nowhere.yaml: no such mapping file"),
    ],
)
def test_schedule_checks_its_options_before_any_server(folder, monkeypatch, args, message):
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{_closed_port()}/api")
    result = runner.invoke(app, ["schedule", "--data", str(folder), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Prefect server" not in result.output


def test_schedule_refuses_a_missing_data_folder(folder):
    result = runner.invoke(app, ["schedule", "--data", str(folder / "nope")])
    assert result.exit_code == 2
    assert "nope: no such folder" in result.output


def test_a_second_scheduler_on_the_same_store_is_refused(tmp_path):
    home = tmp_path / "prefect"
    home.mkdir()
    with (home / "server.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242\n")
        held.flush()
        refused = pytest.raises(SchedulingError, match=r"another `leadmatch schedule` \(pid 4242\)")
        with refused, local_server(home):
            pass


def test_a_server_that_cannot_start_is_a_clear_error(tmp_path, monkeypatch):
    crash = [sys.executable, "-c", "print('Port 4200 is already in use.'); raise SystemExit(1)"]
    monkeypatch.setattr(scheduling, "server_command", lambda port: crash)
    refused = pytest.raises(
        SchedulingError,
        match=r"stopped while starting \(exit code 1\): Port 4200 is already in use\.",
    )
    with refused, local_server(tmp_path / "prefect"):
        pass
    # The lock was released: the next scheduler may try again.
    monkeypatch.setattr(scheduling, "server_is_up", lambda url, timeout=2.0: True)
    monkeypatch.setattr(
        scheduling,
        "server_command",
        lambda port: [sys.executable, "-c", "import time; time.sleep(30)"],
    )
    with local_server(tmp_path / "prefect") as server:
        assert server.database == (tmp_path / "prefect" / "prefect.db").resolve()
        assert server.api_url.startswith("http://127.0.0.1:")


def test_each_run_logs_its_figures_in_one_line_then_its_notes(tmp_path):
    from pipelines.report import RecommendSummary
    from pipelines.scheduled_run import summary_lines

    summary = RecommendSummary(
        folder=tmp_path / "2025-05-07",
        run_date="2025-05-07",
        placed=80,
        held=3,
        reclaimed=12,
        too_old=1,
        expected_wins=21.456,
        expected_wins_round_robin=17.04,
        price_of_fairness=0.2,
        model_version="4",
        rep_signal_used=True,
        kept=2,
        notes=["SLA reclaim is off: the export has no first-contact dates"],
    )
    assert summary_lines(summary) == [
        "leadmatch 2025-05-07: placed 80, held 3, reclaimed 12 (kept with their rep 2), "
        f"expected wins 21.5 (round-robin 17.0); outputs in {tmp_path / '2025-05-07'}",
        "note: SLA reclaim is off: the export has no first-contact dates",
    ]


def test_a_run_whose_scheduler_died_ends_too(tmp_path):
    """The run's process is a child of the scheduler; when the scheduler is killed, the run
    ends within a few polls instead of staying behind."""
    import subprocess

    import psutil

    watching, pid = tmp_path / "watching", tmp_path / "pid"
    scheduler = tmp_path / "scheduler.py"
    scheduler.write_text(f"""
import multiprocessing, os, time
def run():
    from pipelines.scheduling import leave_with_parent
    leave_with_parent(interval=0.1)
    open({str(watching)!r}, "w").close()
    time.sleep(60)
if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=run)
    child.start()
    with open({str(pid)!r}, "w") as f:
        f.write(str(child.pid))
    while not os.path.exists({str(watching)!r}) and child.is_alive():
        time.sleep(0.1)
    os._exit(0)  # the scheduler dies without a word to its child, as with kill -9
""")
    done = subprocess.run(
        [sys.executable, str(scheduler)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert watching.exists()  # the run got as far as watching its parent
    run = psutil.Process(int(pid.read_text()))
    run.wait(timeout=20)  # raises if the run outlives its scheduler
