"""The command line: exit codes, readable summaries, and no tracebacks for a user's mistakes."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines import checks
from pipelines.cli import app

runner = CliRunner()


def _folder(tmp_path, data):
    tmp_path.mkdir(parents=True, exist_ok=True)
    for stem, frame in data.tables().items():
        frame.to_csv(tmp_path / f"{stem}.csv", index=False)
    return tmp_path


def test_validate_good_folder_prints_summary_and_exits_0(tmp_path, tiny):
    result = runner.invoke(app, ["validate", str(_folder(tmp_path, tiny))])
    assert result.exit_code == 0, result.output
    assert "win rate of closed" in result.output
    assert "0.500" in result.output
    assert "OK" in result.output


@pytest.mark.parametrize(
    ("break_data", "message"),
    [
        (lambda d: d.leads.loc.__setitem__((0, "created_at"), "yesterday"), "leads.csv"),
        (lambda d: d.assignments.loc.__setitem__((0, "status"), "maybe"), "assignments.csv"),
        (lambda d: d.reps.__setitem__("active", "false"), "no active reps"),
    ],
)
def test_validate_bad_data_exits_2_without_traceback(tmp_path, tiny, break_data, message):
    break_data(tiny)
    result = runner.invoke(app, ["validate", str(_folder(tmp_path, tiny))])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_validate_missing_folder_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such folder" in result.output


def test_simulate_writes_a_valid_folder_and_is_deterministic(tmp_path):
    for name in ("a", "b"):
        result = runner.invoke(
            app, ["simulate", "--scenario", "small", "--seed", "3", "--out", str(tmp_path / name)]
        )
        assert result.exit_code == 0, result.output
    for stem in ("reps", "leads", "assignments", "availability"):
        assert (tmp_path / "a" / f"{stem}.csv").read_bytes() == (
            tmp_path / "b" / f"{stem}.csv"
        ).read_bytes()
    assert runner.invoke(app, ["validate", str(tmp_path / "a")]).exit_code == 0


def test_simulate_unknown_scenario_lists_the_choices(tmp_path):
    result = runner.invoke(app, ["simulate", "--scenario", "huge", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "choose one of default, demo, null, null_small, small" in result.output
    assert not (tmp_path / "x").exists()


def test_validate_maven_sample_through_the_builtin_mapping(maven_folder):
    result = runner.invoke(app, ["validate", str(maven_folder), "--mapping", "maven"])
    assert result.exit_code == 0, result.output
    assert "GTXPro" in result.output
    assert "8800" in result.output


def test_validate_with_an_unknown_mapping_is_a_clear_error(maven_folder):
    result = runner.invoke(app, ["validate", str(maven_folder), "--mapping", "salesfarce"])
    assert result.exit_code == 2
    assert "maven" in result.output


# --- arguments, config, output folder and store are checked before anything heavy ---------------

HEAVY_MODULES = ("pandas", "numpy", "prefect", "mlflow", "lightgbm", "sklearn", "sqlalchemy")

# Runs every case in one fresh interpreter (a case that imported a heavy module would show it in
# its own row) and prints, per case, the exit code, the output and the heavy modules loaded.
_EARLY_SCRIPT = """
import json, os, sys
from typer.testing import CliRunner
from pipelines.cli import app

HEAVY = {heavy!r}
rows = []
for args, env in json.loads(sys.stdin.read()):
    result = CliRunner().invoke(app, args, env=env)
    rows.append(
        {{
            "exit": result.exit_code,
            "output": result.output,
            "heavy": sorted(m for m in HEAVY if m in sys.modules),
        }}
    )
print(json.dumps(rows))
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sqlite_store(folder, *, truncate: bool) -> None:
    """An SQLite file with MLflow's two marker tables; ``truncate`` cuts it in half."""
    folder.mkdir(parents=True)
    db = folder / "mlflow.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num TEXT)")
        connection.execute("CREATE TABLE experiments (id INTEGER PRIMARY KEY, name TEXT)")
        connection.executemany("INSERT INTO experiments (name) VALUES (?)", [("x" * 200,)] * 2000)
    if truncate:
        with db.open("r+b") as handle:
            handle.truncate(db.stat().st_size // 2)


@pytest.fixture(scope="module")
def early(tmp_path_factory):
    """Each case of EARLY_ERRORS run through the CLI in one subprocess: id -> result row."""
    root = tmp_path_factory.mktemp("early")
    (root / "data").mkdir()
    (root / "a-file.txt").write_text("not a folder")
    (root / "bad.yaml").write_text("recommend: [\n")
    (root / "invalid.yaml").write_text("recommend:\n  sla_days: -1\n")
    (root / "garbage").mkdir()
    (root / "garbage" / "mlflow.db").write_bytes(b"this is not a database" * 100)
    (root / "empty").mkdir()
    (root / "empty" / "mlflow.db").write_bytes(b"")
    _sqlite_store(root / "halved", truncate=True)
    (root / "lost" / "artifacts" / "1").mkdir(parents=True)
    names = {"root": str(root), "port": str(_closed_port())}
    cases = [
        (
            [a.format(**names) for a in args],
            {k: v.format(**names) for k, v in env.items()}
            | {"LEADMATCH_HOME": env.get("LEADMATCH_HOME", "{root}/store").format(**names)},
        )
        for _, args, env, _ in EARLY_ERRORS
    ]
    script = _EARLY_SCRIPT.format(heavy=HEAVY_MODULES)
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    return {case[0]: row for case, row in zip(EARLY_ERRORS, rows, strict=True)}


RECOMMEND = ["recommend", "--data", "{root}/data", "--date", "2025-05-06", "--out", "{root}/out"]
EARLY_ERRORS = [
    # (id, arguments, environment, message)
    (
        "bad date",
        ["recommend", "--data", "{root}/data", "--date", "2025-13-01"],
        {},
        "--date '2025-13-01' is not a date: use YYYY-MM-DD",
    ),
    (
        "missing data folder",
        ["recommend", "--data", "{root}/nope", "--date", "2025-05-06"],
        {},
        "nope: no such folder; pass the folder that holds the CRM export",
    ),
    ("unknown language", [*RECOMMEND, "--lang", "fr"], {}, "unknown language 'fr'"),
    (
        "unknown mapping",
        [*RECOMMEND, "--mapping", "salesfarce"],
        {},
        "unknown mapping 'salesfarce': the built-in mappings are maven",
    ),
    (
        "missing mapping file",
        [*RECOMMEND, "--mapping", "{root}/nope.yaml"],
        {},
        "nope.yaml: no such mapping file",
    ),
    ("config not YAML", [*RECOMMEND, "--config", "{root}/bad.yaml"], {}, "not valid YAML"),
    (
        "config invalid",
        [*RECOMMEND, "--config", "{root}/invalid.yaml"],
        {},
        "recommend.sla_days: Input should be greater than 0",
    ),
    (
        "out is a file",
        [
            "recommend",
            "--data",
            "{root}/data",
            "--date",
            "2025-05-06",
            "--out",
            "{root}/a-file.txt",
        ],
        {},
        "a-file.txt is a file: pass a folder",
    ),
    (
        "out under a file",
        ["backtest", "--scenario", "small", "--out", "{root}/a-file.txt/sub"],
        {},
        "a-file.txt is a file, so the folder cannot be created there",
    ),
    ("train: missing folder", ["train", "--data", "{root}/nope"], {}, "no such folder"),
    (
        "backtest: unknown scenario",
        ["backtest", "--scenario", "huge"],
        {},
        "unknown scenario 'huge': choose one of default, demo, null, null_small, small",
    ),
    ("backtest: no days", ["backtest", "--scenario", "small", "--days", "0"], {}, "at least 1"),
    (
        "simulate: unknown scenario",
        ["simulate", "--scenario", "huge", "--out", "{root}/sim"],
        {},
        "choose one of default, demo, null, null_small, small",
    ),
    ("validate: missing folder", ["validate", "{root}/nope"], {}, "no such folder"),
    (
        "store: not a database",
        RECOMMEND,
        {"LEADMATCH_HOME": "{root}/garbage"},
        "mlflow.db is not an SQLite database: it is damaged. Restore mlflow.db from a backup",
    ),
    (
        "store: truncated to nothing",
        ["train", "--data", "{root}/data"],
        {"LEADMATCH_HOME": "{root}/empty"},
        "mlflow.db is empty (0 bytes): it was truncated",
    ),
    (
        "store: truncated in half",
        RECOMMEND,
        {"LEADMATCH_HOME": "{root}/halved"},
        "is damaged (database disk image is malformed)",
    ),
    (
        "store: database deleted",
        RECOMMEND,
        {"LEADMATCH_HOME": "{root}/lost"},
        "holds artifacts of earlier runs but no mlflow.db",
    ),
    (
        "store: tracking server down",
        RECOMMEND,
        {"MLFLOW_TRACKING_URI": "http://127.0.0.1:{port}"},
        "cannot reach the MLflow tracking server at http://127.0.0.1:",
    ),
]


@pytest.mark.parametrize("case", [c[0] for c in EARLY_ERRORS])
def test_user_errors_are_caught_before_any_heavy_import(early, case):
    message = next(c[3] for c in EARLY_ERRORS if c[0] == case)
    row = early[case]
    assert row["exit"] == 2, row["output"]
    assert message in " ".join(row["output"].split()), row["output"]
    assert row["output"].count("error:") == 1
    assert "Traceback" not in row["output"]
    assert row["heavy"] == []


def test_the_builtin_mapping_names_match_the_adapters():
    from features.adapters import BUILTIN_MAPPINGS

    assert set(checks.BUILTIN_MAPPINGS) == set(BUILTIN_MAPPINGS)


def test_an_output_folder_without_room_is_refused_before_the_work(tmp_path, monkeypatch):
    full = shutil.disk_usage(tmp_path)._replace(free=5 * 2**20)
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda path: full)
    with pytest.raises(
        checks.ArgumentError, match="only 5 MB free on its disk, leadmatch needs 100 MB"
    ):
        checks.output_folder(tmp_path / "out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_a_read_only_output_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(checks.ArgumentError, match="cannot write in .*locked .Permission denied"):
        checks.output_folder(locked / "out")


def test_a_folder_the_system_will_not_write_in_is_refused_for_root_too(tmp_path, monkeypatch):
    """What the check does when the write it tries fails (root included, whom permission bits
    do not stop: a read-only mount, a full quota)."""
    tried = []

    def read_only(**where):
        tried.append(Path(where["dir"]))
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(checks.tempfile, "TemporaryFile", read_only)
    (tmp_path / "mount").mkdir()
    with pytest.raises(
        checks.ArgumentError,
        match=r"--out .*mount/out: cannot write in .*mount \(Read-only file system\); pass a folder",
    ):
        checks.output_folder(tmp_path / "mount" / "out")
    assert tried == [tmp_path / "mount"]  # the nearest existing parent is what is tried


# --- where the store is ---------------------------------------------------------------------------


def test_the_default_store_is_in_the_project_folder_wherever_the_command_runs(monkeypatch):
    from pipelines.config import LeadmatchConfig
    from pipelines.tracking import project_folder, store_folder

    monkeypatch.delenv("LEADMATCH_HOME", raising=False)
    monkeypatch.chdir("/")
    assert (project_folder() / "pyproject.toml").is_file()
    assert store_folder(LeadmatchConfig().tracking) == project_folder() / ".leadmatch"


def test_a_config_files_relative_paths_are_taken_from_its_folder(tmp_path, monkeypatch):
    from pipelines.config import load_config
    from pipelines.tracking import describe_store, store_folder

    monkeypatch.delenv("LEADMATCH_HOME", raising=False)
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "leadmatch.yaml").write_text("paths:\n  recommendations: plans\n")
    monkeypatch.chdir("/")
    config = load_config(tmp_path / "team" / "leadmatch.yaml")
    assert store_folder(config.tracking) == tmp_path / "team" / ".leadmatch"
    assert config.paths.recommendations == tmp_path / "team" / "plans"
    assert (
        describe_store(config.tracking) == f"{tmp_path / 'team' / '.leadmatch'} (from the config)"
    )


def test_leadmatch_home_decides_the_store(tmp_path, monkeypatch):
    from pipelines.config import load_config
    from pipelines.tracking import describe_store, tracking_uri

    (tmp_path / "c.yaml").write_text("tracking:\n  root: elsewhere\n")
    monkeypatch.setenv("LEADMATCH_HOME", str(tmp_path / "home"))
    config = load_config(tmp_path / "c.yaml")
    assert tracking_uri(config.tracking) == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    assert describe_store(config.tracking) == f"{tmp_path / 'home'} (from LEADMATCH_HOME)"


# --- what a run prints -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_user_error_inside_a_flow_is_one_message_after_the_steps(
    prefect_harness, small_folder, tmp_path
):
    """No trained model: the first step runs (and says so, without a terminal), then the CLI
    prints the error once, without Prefect's tracebacks, and exits 2."""
    from prefect.settings import PREFECT_API_URL

    env = os.environ | {
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "LEADMATCH_HOME": str(tmp_path / "store"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    args = ["--data", str(small_folder), "--date", "2025-05-06", "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-c", "from pipelines.cli import app; app()", "recommend", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert f"MLflow store: {tmp_path / 'store'} (from LEADMATCH_HOME)" in output
    assert "] load_state done" in output
    assert output.count("no trained model") == 1
    assert "error: no trained model: run `leadmatch train --data ...` first" in output
    assert "Traceback" not in output and "Finished in state" not in output
    assert not (tmp_path / "out" / "2025-05-06").exists()


def test_steps_become_progress_lines(capsys):
    import logging

    from rich.console import Console

    from pipelines.runtime import Progress, _StepLines

    progress = Progress(Console(file=sys.stdout, width=100), "training")
    handler = _StepLines(progress)
    for level, message in [
        (logging.INFO, "loaded 12 leads"),
        (logging.INFO, "Finished in state Completed()"),
        (logging.ERROR, "Finished in state Failed('...')"),
    ]:
        record = logging.LogRecord("prefect.task_runs", level, "", 0, message, None, None)
        record.task_name = "load_history"
        handler.emit(record)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "load_history: loaded 12 leads",
        "load_history done",
    ]


def test_the_backtest_table_is_readable_in_100_columns(monkeypatch):
    import io

    import pandas as pd
    from rich.console import Console

    from evaluation.policies import POLICIES
    from evaluation.policy_table import PRINTED_COLUMNS
    from pipelines import console as printing

    rows = [
        [name, 38.47 + i, -0.02894 * i, 0.5 * i, float("nan") if i % 2 else 0.3121, 0, 16, 1, 0.205]
        for i, name in enumerate(POLICIES)
    ]
    out = io.StringIO()
    monkeypatch.setattr(printing, "console", Console(file=out, width=100))
    printing.print_backtest_table(pd.DataFrame(rows, columns=PRINTED_COLUMNS))
    text = out.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "…" not in text
    for name in POLICIES:
        assert any(line.startswith(name + " ") for line in lines), name
    weighted = next(line for line in lines if line.startswith("weighted_round_robin "))
    assert weighted.split()[1:] == ["39.5", "-2.9%", "50%", "-", "0", "16", "1", "20.5%"]


def test_a_narrow_screen_gets_one_block_per_policy(monkeypatch):
    import io

    import pandas as pd
    from rich.console import Console

    from pipelines import console as printing

    out = io.StringIO()
    monkeypatch.setattr(printing, "console", Console(file=out, width=50))
    frame = pd.DataFrame(
        [["leadmatch_no_fairness", 37.7, -0.019, -0.047, 0.31, 0, 21, 1, 0.2625]],
        columns=["policy", *printing.BACKTEST_COLUMNS],
    )
    printing.print_backtest_table(frame)
    assert out.getvalue().splitlines()[1:4] == [
        "leadmatch_no_fairness",
        "  expected wins: 37.7",
        "  lift over round robin: -1.9%",
    ]


@pytest.mark.parametrize("verbose", [False, True])
def test_third_party_noise_is_silenced_unless_verbose(verbose):
    script = f"""
import logging, warnings
from pipelines import runtime
runtime.configure({verbose})
import numpy as np
import mlflow
np.log(np.array([-1.0]))
logging.getLogger("mlflow.pyfunc").warning("serialized using CloudPickle: be careful")
logging.getLogger("mlflow.utils.environment").warning("Failed to resolve installed pip version")
class Runner:  # as Prefect's runner leaves it when `schedule` gets SIGTERM
    async def astop(self):
        pass
Runner().astop()
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_LOGGING")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    noise = ["invalid value encountered in log", "CloudPickle", "pip version", "Runner.astop"]
    assert [n in done.stderr for n in noise] == [verbose] * 4, done.stderr


def test_verbose_is_a_global_option():
    result = runner.invoke(app, ["--help"])
    assert "--verbose" in result.output


@pytest.mark.slow
def test_a_killed_run_leaves_no_prefect_server_behind(small_folder, tmp_path):
    """kill -9 of a run once its temporary Prefect server answers: the server goes too."""
    import psutil

    env = {
        k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")
    }
    env["LEADMATCH_HOME"] = str(tmp_path / "store")
    args = ["--data", str(small_folder), "--date", "2025-05-06", "--out", str(tmp_path / "out")]
    run = subprocess.Popen(
        [sys.executable, "-c", "from pipelines.cli import app; app()", "recommend", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server = _listening_child(psutil.Process(run.pid), timeout=150)
    finally:
        run.kill()
        run.wait()
    gone, _ = psutil.wait_procs([server], timeout=20)
    if not gone:
        server.kill()
    assert gone, f"the Prefect server {server.pid} outlived the killed run"


def _listening_child(parent, timeout: float):
    """The first child process of ``parent`` that listens on a TCP port."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in parent.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any(c.status == psutil.CONN_LISTEN for c in child.net_connections("tcp")):
                    return child
        time.sleep(0.5)
    raise AssertionError(f"no server started within {timeout} s")


def test_mlflow_gives_up_on_a_silent_tracking_server_in_seconds_unless_told_otherwise(
    monkeypatch,
):
    from pipelines import runtime

    for key in [*runtime.PREFECT_DEFAULTS, *runtime.MLFLOW_DEFAULTS, "MLFLOW_LOGGING_LEVEL"]:
        monkeypatch.delenv(key, raising=False)  # restored after the test
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")  # the user's own choice stays
    runtime.configure(verbose=False)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
