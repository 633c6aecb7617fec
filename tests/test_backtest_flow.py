"""The backtest flow end to end: the simulator replay on the `small` world and the off-policy
estimates on its history as a data folder, each written to --out and logged to MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipelines.backtest import EXPERIMENT, POLICIES, run_backtest
from pipelines.config import LeadmatchConfig
from pipelines.tracking import configure_mlflow

pytestmark = pytest.mark.slow

REQUIRED = {
    "policy",
    "expected_wins",
    "expected_value",
    "lift_vs_round_robin",
    "oracle_lift_captured",
    "hard_violations",
    "soft_violations",
    "max_value_share_deviation",
    "price_of_fairness",
}


def logged_run(tracking, run_id: str):
    configure_mlflow(tracking)
    client = MlflowClient()
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    return run, experiment.name, {a.path for a in client.list_artifacts(run_id)}


def test_the_simulator_backtest_scores_every_policy_by_the_truth(
    prefect_harness, tracking, tmp_path
):
    out = tmp_path / "backtest"
    # A looser solver gap and one extra band keep this under a minute; the logic is the same.
    config = LeadmatchConfig(tracking=tracking)
    solver = config.matching.solver.model_copy(update={"mip_rel_gap": 0.01})
    config = config.model_copy(
        update={"matching": config.matching.model_copy(update={"solver": solver})}
    )
    summary = run_backtest(scenario="small", days=3, seed=1, out=out, config=config, bands=(0.1,))
    table = pd.read_csv(out / "backtest.csv", encoding="utf-8-sig").set_index("policy")
    assert list(table.index) == list(POLICIES)
    assert REQUIRED - {"policy"} <= set(table.columns)
    assert (table["hard_violations"] == 0).all()
    # Every policy places the same leads under the same capacities, so the comparison is fair.
    assert table["placed"].nunique() == 1 and table["placed"].iloc[0] > 0
    assert table.loc["round_robin", "lift_vs_round_robin"] == 0
    assert table.loc["oracle", "oracle_lift_captured"] == pytest.approx(1.0)
    # The oracle sees the truth: it beats the policies that ignore the reps altogether.
    assert table.loc["oracle", "expected_wins"] > table.loc["round_robin", "expected_wins"]
    assert table.loc["oracle", "expected_wins"] > table.loc["weighted_round_robin", "expected_wins"]
    assert np.isfinite(table.loc["leadmatch", "price_of_fairness"])
    curve = pd.read_csv(out / "fairness_curve.csv", encoding="utf-8-sig")
    assert curve["band"].tolist() == [0.1, 0.2, np.inf]
    assert (out / "backtest.png").stat().st_size > 10_000
    assert summary.table["policy"].tolist() == list(POLICIES)
    assert any("of the oracle's lift over round-robin" in m for m in summary.messages)

    run, experiment, artifacts = logged_run(tracking, summary.run_id)
    assert experiment == EXPERIMENT
    assert run.info.run_name == "small world, 3 days, seed 1: simulator backtest"
    assert run.data.params["scenario"] == "small"
    assert run.data.metrics["leadmatch.expected_wins"] == pytest.approx(
        table.loc["leadmatch", "expected_wins"], abs=1e-3
    )
    assert {"backtest.csv", "backtest.png", "fairness_curve.csv", "messages.txt"} <= artifacts


def test_on_logged_history_the_value_comes_with_an_overlap_verdict(
    prefect_harness, tracking, small_folder, tmp_path
):
    out = tmp_path / "off"
    summary = run_backtest(data=small_folder, out=out, config=LeadmatchConfig(tracking=tracking))
    estimates = pd.read_csv(out / "off_policy.csv", encoding="utf-8-sig").set_index("estimator")
    assert {"logged", "dm", "snips", "dr"} <= set(estimates.index)
    shown = summary.table.set_index("estimator")
    for _, row in estimates.iterrows():
        if not row["identified"]:
            # Not identified: no number, neither in the file nor on screen.
            assert np.isnan(row["value"])
    if not estimates.loc["dr", "identified"]:
        assert "NOT identified" in summary.messages[0]
        assert (
            shown.drop(index="historical policy (observed mean)")["value per lead"]
            == "not identified"
        ).all()
    assert any("load" in m and "not captured" in m for m in summary.messages)
    assert (out / "overlap.json").is_file()
    run, _, artifacts = logged_run(tracking, summary.run_id)
    assert run.data.params["mode"] == "off_policy"
    assert run.info.run_name == f"{small_folder.name}: off-policy backtest"
    assert "overlap.ess" in run.data.metrics
    assert {"off_policy.csv", "overlap.json", "messages.txt"} <= artifacts
