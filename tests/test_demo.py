"""The demo: a world where who works a lead matters, and what the demo tells a user to type next."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from features.pairs import build_training_pairs
from models.config import LightGBMParams, ModelConfig
from models.training import LEAD_ONLY, LOGISTIC, PAIR, train_and_evaluate
from simulation import SCENARIOS, simulate, without_rep_effects

ROOT = Path(__file__).resolve().parents[1]
# One thread: the same trees, and no waiting on a busy machine's second core.
ONE_THREAD = ModelConfig(lightgbm=LightGBMParams(n_jobs=1))


def _train(scenario):
    world = simulate(scenario, seed=0)
    return train_and_evaluate(build_training_pairs(world.data), ONE_THREAD)


def test_the_demo_world_has_a_rep_signal_and_the_pair_model_finds_it():
    result = _train("demo")
    loss = {name: m["log_loss"] for name, m in result.metrics.items()}
    assert result.rep_signal.verdict == "signal", result.rep_signal.summary()
    assert loss[PAIR] < min(loss[LOGISTIC], loss[LEAD_ONLY]), loss


def test_the_same_world_without_rep_effects_shows_no_signal():
    """The check above can fail: with every rep effect removed the test finds nothing."""
    result = _train(without_rep_effects(SCENARIOS["demo"], "demo_null"))
    assert result.rep_signal.verdict == "no reliable signal", result.rep_signal.summary()


# --- ./leadmatch, the command the README and the demo give after `make demo` ------------------


def _checkout(tmp_path: Path, makefile: str = "") -> Path:
    """A copy of the wrapper in an otherwise empty checkout, with a Makefile of our own."""
    root = tmp_path / "checkout"
    root.mkdir()
    wrapper = root / "leadmatch"
    wrapper.write_bytes((ROOT / "leadmatch").read_bytes())
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    (root / "Makefile").write_text(makefile)
    return root


def _fake_uv(folder: Path, name: str) -> Path:
    """A `uv` that prints who it is and its arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    uv = folder / "uv"
    uv.write_text(f'#!/bin/sh\necho "{name} $*"\n')
    uv.chmod(0o755)
    return uv


def _run(root: Path, *args: str, path: str = "/usr/bin:/bin") -> str:
    done = subprocess.run(
        [str(root / "leadmatch"), *args],
        env={**os.environ, "PATH": path},
        cwd=root.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_wrapper_uses_the_uv_that_make_installed_when_none_is_on_path(tmp_path):
    root = _checkout(tmp_path)
    _fake_uv(root / ".bootstrap" / "bin", "bootstrapped")
    assert _run(root, "validate", "data") == (
        f"bootstrapped run --locked --quiet --project {root} leadmatch validate data"
    )


def test_wrapper_prefers_uv_on_path(tmp_path):
    root = _checkout(tmp_path)
    _fake_uv(root / ".bootstrap" / "bin", "bootstrapped")
    bin_dir = tmp_path / "bin"
    _fake_uv(bin_dir, "on-path")
    assert _run(root, "--help", path=f"{bin_dir}:/usr/bin:/bin").startswith("on-path run")


def test_wrapper_sets_up_the_checkout_on_first_use(tmp_path):
    fake_setup = (
        "setup:\n\tmkdir -p .bootstrap/bin\n"
        "\tprintf '#!/bin/sh\\necho \"fresh $$*\"\\n' > .bootstrap/bin/uv\n"
        "\tchmod +x .bootstrap/bin/uv\n"
    )
    root = _checkout(tmp_path, fake_setup)
    assert _run(root, "demo") == f"fresh run --locked --quiet --project {root} leadmatch demo"


@pytest.mark.parametrize(
    ("cwd", "expected"),
    [(ROOT, "./leadmatch"), (ROOT / "data", "../leadmatch")],
)
def test_demo_next_steps_are_commands_that_exist_from_where_the_user_is(monkeypatch, cwd, expected):
    from pipelines.demo import demo_next_steps

    monkeypatch.chdir(cwd)
    next_steps = demo_next_steps(Path("d/crm"), Path("d"), "2025-09-03")
    steps = [command for command, _ in next_steps]
    assert steps[1].startswith(f"{expected} recommend --data d/crm --date 2025-09-03")
    assert steps[3] == f"{expected} --help"
    assert not any("uv run" in step for step in steps)
    assert steps[2] == ("make mlflow-ui" if cwd == ROOT else "make -C .. mlflow-ui")


def test_the_mlflow_ui_is_opened_on_its_training_runs(monkeypatch):
    """MLflow 3.17's UI shows GenAI pages unless the address asks for model training: the
    demo's hint and `make mlflow-ui` give that address."""
    from pipelines.demo import demo_next_steps
    from pipelines.tracking import UI_TRAINING_VIEW

    monkeypatch.chdir(ROOT)
    address = f"http://127.0.0.1:5000/{UI_TRAINING_VIEW}"
    assert address == "http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
    hint = dict(demo_next_steps(Path("d/crm"), Path("d"), "2025-09-03"))["make mlflow-ui"]
    assert hint.endswith(f"open {address}")
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nmlflow-ui:")[1].split("\n\n")[0]
    assert f"open {address} " in recipe


def test_the_demo_data_ends_with_a_day_of_leads_no_rep_has_yet(tmp_path):
    import pandas as pd

    from pipelines.demo import write_demo_crm

    run_date = write_demo_crm(tmp_path / "crm", seed=0)
    leads = pd.read_csv(tmp_path / "crm" / "leads.csv", parse_dates=["created_at"])
    assignments = pd.read_csv(tmp_path / "crm" / "assignments.csv")
    new_day = pd.Timestamp(run_date) - pd.Timedelta(days=1)
    fresh = leads.loc[leads["created_at"].dt.normalize() == new_day, "lead_id"]
    assert len(fresh) >= 20
    assert not fresh.isin(assignments["lead_id"]).any()
    assert leads["created_at"].max() < pd.Timestamp(run_date)
