"""The notebooks run top to bottom as notebooks, show their figures and compute what they show.

Each notebook is a jupytext percent script. The tests read it with jupytext and execute it in a
Jupyter kernel with nbclient, as JupyterLab does (the kernel starts in ``notebooks/``). They count
the figures it displayed, and check the tables a reader would look at through one extra cell that
hands chosen variables back to the test. One test runs a notebook as a plain script, as
``python notebooks/NAME.py`` does.
"""

from __future__ import annotations

import base64
import os
import pickle
import runpy
import shutil
from pathlib import Path

import jupytext
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from evaluation.policies import POLICIES
from features.config import FeatureConfig
from pipelines.config import LeadmatchConfig

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SAMPLE = ROOT / "data" / "sample"
NAMES = ("history_eda.py", "model_diagnostics.py", "fairness_tradeoff.py")
PNG = b"\x89PNG\r\n\x1a\n"
HAND_BACK = """\
import pickle
from pathlib import Path

Path({path!r}).write_bytes(pickle.dumps({{n: globals()[n] for n in {names!r} if n in globals()}}))
"""


def _tree(folder: Path) -> set[str]:
    # Names only: the shared working tree's files may be edited while the tests run.
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _images(notebook: nbformat.NotebookNode) -> list[bytes]:
    """Every PNG the notebook displayed, in order."""
    return [
        base64.b64decode(output["data"]["image/png"])
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]


@pytest.fixture
def environment(tmp_path, monkeypatch):
    """Figures saved to ``tmp_path / "figures"``, every other setting at its default; fails the
    test if the notebook created files in the repo's notebooks or sample folders (the kernel's
    working directory is ``notebooks/``)."""
    monkeypatch.setenv("LEADMATCH_FIGURES", str(tmp_path / "figures"))
    for name in ("LEADMATCH_DATA", "LEADMATCH_MAPPING", "LEADMATCH_SCENARIO", "LEADMATCH_DAYS"):
        monkeypatch.delenv(name, raising=False)
    before = {folder: _tree(folder) for folder in (NOTEBOOKS, SAMPLE)}
    yield monkeypatch
    assert {folder: _tree(folder) for folder in (NOTEBOOKS, SAMPLE)} == before


@pytest.fixture
def execute(environment, tmp_path):
    """Execute a notebook in a kernel with extra environment variables; returns the executed
    notebook and the requested global variables."""

    def run(name: str, names: list[str], **env: str) -> tuple[nbformat.NotebookNode, dict]:
        for key, value in env.items():
            environment.setenv(key, value)
        notebook = jupytext.read(NOTEBOOKS / name)
        handed = tmp_path / "globals.pickle"
        notebook.cells.append(
            nbformat.v4.new_code_cell(HAND_BACK.format(path=str(handed), names=names))
        )
        client = NotebookClient(
            notebook,
            kernel_name="python3",
            timeout=900,
            startup_timeout=120,
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        client.execute()
        return notebook, pickle.loads(handed.read_bytes())

    return run


def _saved(tmp_path: Path) -> set[str]:
    return {p.name for p in (tmp_path / "figures").glob("*.png")}


def _assert_shown(notebook: nbformat.NotebookNode, figures: dict) -> None:
    """Each kept figure displayed once, as a PNG, and nothing shown as a bare figure's text."""
    images = _images(notebook)
    assert len(images) == len(figures)
    assert all(image.startswith(PNG) for image in images)
    texts = [
        output["data"].get("text/plain", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "data" in output and "image/png" not in output["data"]
    ]
    assert not [text for text in texts if text.startswith("<Figure")]


@pytest.mark.parametrize("name", NAMES)
def test_saving_in_jupyterlab_does_not_rewrite_the_script(name):
    """JupyterLab saves through jupytext: the committed text must be what jupytext writes."""
    text = (NOTEBOOKS / name).read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="py:percent")
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert notebook.cells[1].source.startswith("%matplotlib inline\n")
    assert jupytext.writes(notebook, fmt="py:percent") == text


EDA = ["summary", "data", "pairs", "segment_rates", "rep_table", "tenure_table", "concentration"]
EDA += ["top_reps_share", "head", "findings", "figures"]


def test_history_eda_as_a_notebook_on_the_sample(execute, tmp_path):
    notebook, ns = execute("history_eda.py", EDA)
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
    _assert_shown(notebook, ns["figures"])
    assert _saved(tmp_path) == {f"eda_{n}.png" for n in names}


def test_history_eda_as_a_notebook_on_the_maven_export(execute, maven_folder, tmp_path):
    notebook, ns = execute(
        "history_eda.py",
        ["summary", "data", "pairs", "concentration", "findings", "figures"],
        # As the README writes it: relative to the repository's root, where `make notebooks` runs.
        LEADMATCH_DATA=os.path.relpath(maven_folder, ROOT),
        LEADMATCH_MAPPING="maven",
    )
    teams = (maven_folder / "sales_teams.csv").read_text(encoding="utf-8").strip().splitlines()
    assert ns["summary"]["reps"] == len(ns["data"].reps) == len(teams) - 1
    assert len(ns["pairs"]) > 0
    findings = ns["findings"].set_index("check")["count"]
    assert findings["repairs made by the adapter"] > 0
    # The mapping gives the leads an expected value (the product's price): the value tiers exist.
    assert ns["concentration"] is not None
    names = {"volumes", "segments", "reps", "tenure", "first_contact", "open_load"}
    assert set(ns["figures"]) == names | {"concentration"}
    _assert_shown(notebook, ns["figures"])


DIAGNOSTICS = ["metrics", "test", "signal_table", "explained", "rep_reasons", "world"]
DIAGNOSTICS += ["truth_metrics", "ranking", "figures"]


def test_model_diagnostics_as_a_notebook_compares_with_the_truth(execute, tmp_path):
    notebook, ns = execute("model_diagnostics.py", DIAGNOSTICS)

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
    _assert_shown(notebook, ns["figures"])
    assert _saved(tmp_path) == {f"model_{n}.png" for n in names}


def test_model_diagnostics_as_a_script_skips_the_truth_on_other_data(environment, tmp_path, capsys):
    copy = tmp_path / "crm"
    shutil.copytree(SAMPLE, copy)
    environment.setenv("LEADMATCH_DATA", str(copy))
    work = tmp_path / "work"
    work.mkdir()
    environment.chdir(work)
    ns = runpy.run_path(str(NOTEBOOKS / "model_diagnostics.py"), run_name="__main__")

    assert list(work.iterdir()) == []
    assert ns["NOTEBOOK"] is False
    assert ns["world"] is None
    assert "not the simulator sample" in capsys.readouterr().out
    assert "truth_metrics" not in ns
    names = {"calibration", "calibration_by_tenure", "importance", "rep_signal", "separation"}
    assert set(ns["figures"]) == names
    assert _saved(tmp_path) == {f"model_{n}.png" for n in names}


FAIRNESS = ["world", "DAYS", "table", "curve", "shares", "figures", "BANDS"]


def test_fairness_tradeoff_as_a_notebook_on_a_small_world(execute, tmp_path):
    notebook, ns = execute(
        "fairness_tradeoff.py", FAIRNESS, LEADMATCH_SCENARIO="small", LEADMATCH_DAYS="1"
    )

    assert ns["world"].scenario.name == "small"
    assert ns["DAYS"] == 1
    assert list(ns["table"]["policy"]) == list(POLICIES)

    curve = ns["curve"]
    configured = LeadmatchConfig().matching.fairness.value_share.band
    assert list(curve["band"]) == sorted([*ns["BANDS"], configured, np.inf])
    deviation = curve.set_index("band")["max_value_share_deviation"]
    # The narrowest band keeps the value shares closer to the fair shares than no band at all.
    assert deviation[min(ns["BANDS"])] < deviation[np.inf]

    by_policy = ns["shares"].groupby("policy")
    assert by_policy["capacity_share"].sum().to_numpy() == pytest.approx(1.0)
    assert by_policy["value_share"].sum().to_numpy() == pytest.approx(1.0)

    assert set(ns["figures"]) == {"curve", "shares"}
    _assert_shown(notebook, ns["figures"])
    assert _saved(tmp_path) == {"fairness_curve.png", "fairness_shares.png"}
