"""The nightly commands end to end, as a scheduler runs them: `leadmatch validate`, `train` and
`recommend` through the installed entry point, one process each, on the simulated `small` data
folder, with a fresh MLflow store. One Prefect server (the session's) serves every process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.outputs import read_plan_csv

pytestmark = pytest.mark.slow

RUN_DATE = "2025-05-06"
FILES = ["assignments.csv", "left_out.csv", "rep_summary.csv", "report.html"]


@pytest.fixture(scope="module")
def leadmatch(prefect_harness, tmp_path_factory):
    """Run `leadmatch ARGS...` in its own process against the module's MLflow store."""
    from prefect.settings import PREFECT_API_URL

    env = os.environ | {
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "LEADMATCH_HOME": str(tmp_path_factory.mktemp("store")),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    command = Path(sys.executable).with_name("leadmatch")

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(command), *args], capture_output=True, text=True, timeout=900, env=env
        )
        done.output = done.stdout + done.stderr
        return done

    run.home = Path(env["LEADMATCH_HOME"])
    return run


@pytest.fixture(scope="module")
def nightly(leadmatch, small_folder, tmp_path_factory):
    """validate, train, then recommend the run date: each command's finished process."""
    out = tmp_path_factory.mktemp("recommendations")
    runs = {"validate": leadmatch("validate", str(small_folder))}
    runs["train"] = leadmatch("train", "--data", str(small_folder))
    runs["recommend"] = leadmatch(
        "recommend", "--data", str(small_folder), "--date", RUN_DATE, "--out", str(out)
    )
    return runs, out


def test_validate_says_the_folder_is_usable(nightly):
    done = nightly[0]["validate"]
    assert done.returncode == 0, done.output
    assert "OK: the data meets the contract and is usable." in done.stdout
    assert "Traceback" not in done.output


def test_train_registers_the_first_model_as_champion_in_the_store(nightly, leadmatch):
    done = nightly[0]["train"]
    assert done.returncode == 0, done.output
    assert re.search(r"registered \S+ version 1\b", done.stdout), done.output
    assert "held-out metrics" in done.stdout
    assert (leadmatch.home / "mlflow.db").is_file()
    assert "Traceback" not in done.output


def test_recommend_publishes_the_days_files_and_counts_them_right(nightly):
    done, out = nightly[0]["recommend"], nightly[1]
    assert done.returncode == 0, done.output
    folder = out / RUN_DATE
    assert sorted(p.name for p in folder.iterdir()) == FILES
    assert f"wrote {folder}/assignments.csv" in " ".join(done.stdout.split())
    # Only the published day and its versions: no staging folder left behind.
    assert sorted(p.name for p in out.iterdir()) == [".versions", RUN_DATE]
    asg = read_plan_csv(folder / "assignments.csv")
    reps = read_plan_csv(folder / "rep_summary.csv")
    placed = asg["action"].isin(["assign", "reassign"])
    printed = re.search(r"leads placed[\s│|]+(\d+)", done.stdout)
    assert printed is not None, done.stdout
    assert int(printed.group(1)) == placed.sum() > 0
    assert asg["lead_id"].is_unique and (asg["run_date"] == RUN_DATE).all()
    per_rep = reps.set_index("rep_id")
    given = asg.loc[placed].groupby("rep_id").size().reindex(per_rep.index, fill_value=0)
    assert given.tolist() == per_rep["assigned"].tolist()
    assert (per_rep["assigned"] <= per_rep["capacity"]).all()
    assert (folder / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_date_outside_the_data_is_one_message_exit_2_and_no_files(
    nightly, leadmatch, small_folder, tmp_path
):
    first = pd.read_csv(small_folder / "leads.csv", usecols=["created_at"])["created_at"].min()
    before = f"{pd.Timestamp(first) - pd.Timedelta(days=30):%Y-%m-%d}"
    done = leadmatch(
        "recommend", "--data", str(small_folder), "--date", before, "--out", str(tmp_path)
    )
    assert done.returncode == 2, done.output
    assert done.output.count("error:") == 1
    assert f"run date {before} is before the data starts" in done.output
    assert "Traceback" not in done.output
    assert list(tmp_path.iterdir()) == []
