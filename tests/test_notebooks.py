"""The notebooks run top to bottom on the committed sample and compute what they show.

Each notebook is a jupytext script; running it with ``runpy`` gives its global variables, so the
tests check the tables and figures a reader would look at, not just that nothing raised.
"""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest

from features.config import FeatureConfig

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SAMPLE = ROOT / "data" / "sample"


def _tree(folder: Path) -> set[str]:
    # Names only: the shared working tree's files may be edited while the tests run.
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def run_notebook(tmp_path, monkeypatch):
    """Run a notebook in an empty working directory, figures saved to ``tmp_path / "figures"``;
    returns its globals. Fails if it created files in the working directory or in the repo's
    notebooks and sample folders."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("LEADMATCH_FIGURES", str(tmp_path / "figures"))
    for name in ("LEADMATCH_DATA", "LEADMATCH_MAPPING"):
        monkeypatch.delenv(name, raising=False)

    def run(name: str, **env: str) -> dict:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        before = {folder: _tree(folder) for folder in (NOTEBOOKS, SAMPLE)}
        namespace = runpy.run_path(str(NOTEBOOKS / name), run_name="__main__")
        assert list(work.iterdir()) == []
        assert {folder: _tree(folder) for folder in (NOTEBOOKS, SAMPLE)} == before
        return namespace

    return run


def _saved(tmp_path: Path) -> set[str]:
    return {p.name for p in (tmp_path / "figures").glob("*.png")}


def test_history_eda_on_the_sample(run_notebook, tmp_path):
    ns = run_notebook("history_eda.py")
    pairs, data = ns["pairs"], ns["data"]

    assert ns["summary"]["reps"] == len(data.reps) == 12
    assert set(ns["segment_rates"]) == set(FeatureConfig().segment_columns)
    for table in [*ns["segment_rates"].values(), ns["rep_table"], ns["tenure_table"]]:
        assert table["n"].sum() == len(pairs)
        assert (table["low"] <= table["win_rate"]).all()
        assert (table["win_rate"] <= table["high"]).all()
    assert set(ns["rep_table"].index) == set(data.assignments["rep_id"])
    # Shrinkage pulls the reps towards their teams: the shrunk rates spread less than the raw ones.
    assert ns["rep_table"]["shrunk_rate"].std() <= ns["rep_table"]["win_rate"].std()

    concentration = ns["concentration"]
    for share in ("share_of_leads", "share_of_top", "capacity_share"):
        assert concentration[share].sum() == pytest.approx(1.0)
    # The simulated routing favours strong, senior reps: the top fifth get more than their share.
    assert ns["top_reps_share"] > ns["head"]["capacity_share"].sum()

    findings = ns["findings"].set_index("check")["count"]
    assert findings["leads missing product"] == data.leads["product"].isna().sum() > 0
    assert findings["assignments before their lead was created"] == 0

    names = {"volumes", "segments", "reps", "tenure", "first_contact", "open_load"}
    names |= {"concentration"}
    assert set(ns["figures"]) == names
    assert _saved(tmp_path) == {f"eda_{n}.png" for n in names}


def test_model_diagnostics_on_the_sample_compares_with_the_truth(run_notebook, tmp_path):
    ns = run_notebook("model_diagnostics.py")

    metrics = ns["metrics"]
    assert list(metrics.index) == ["pair_model", "lead_only", "logistic", "constant"]
    assert (metrics["n"] == len(ns["test"])).all()
    assert metrics.loc["constant", "roc_auc"] == 0.5
    assert metrics.loc["pair_model", "log_loss"] < metrics.loc["constant", "log_loss"]
    assert ns["signal_table"].loc[0, "group"] == "all"

    explained = ns["explained"]
    assert len(explained) == 5
    assert explained.index.is_unique
    assert explained["reason"].str.len().gt(0).all()
    assert ns["rep_reasons"]["historical_rep"].eq("<-").sum() == 1

    assert ns["world"] is not None
    truth = ns["truth_metrics"]
    # The knowable probability is the best a model can do and the true one is better still.
    assert truth.loc["true", "log_loss"] < truth.loc["knowable", "log_loss"]
    assert truth.loc["knowable", "log_loss"] < truth.loc["lead_only", "log_loss"]
    ranking = ns["ranking"]["share_of_best"]
    assert ranking["best rep (knowable)"] == pytest.approx(1.0)
    assert np.isfinite(ranking).all() and (ranking <= 1.0 + 1e-12).all()

    names = {"calibration", "calibration_by_tenure", "importance", "rep_signal", "separation"}
    names |= {"truth_calibration", "truth_ranking"}
    assert set(ns["figures"]) == names
    assert _saved(tmp_path) == {f"model_{n}.png" for n in names}


def test_model_diagnostics_skips_the_truth_on_other_data(run_notebook, tmp_path, capsys):
    copy = tmp_path / "crm"
    shutil.copytree(SAMPLE, copy)
    ns = run_notebook("model_diagnostics.py", LEADMATCH_DATA=str(copy))

    assert ns["world"] is None
    assert "not the simulator sample" in capsys.readouterr().out
    assert "truth_metrics" not in ns
    assert not {"truth_calibration", "truth_ranking"} & set(ns["figures"])
