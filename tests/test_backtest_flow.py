"""The backtest flow end to end: the simulator replay on the `small` world and the off-policy
estimates on its history as a data folder, each written to --out and logged to MLflow."""

from __future__ import annotations

import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from evaluation.config import OffPolicyConfig
from evaluation.policies import POLICIES
from pipelines.backtest import EXPERIMENT, read_backtest_csv, run_backtest
from pipelines.config import LeadmatchConfig
from pipelines.tracking import configure_mlflow

pytestmark = pytest.mark.slow


def first_number(text: str) -> float:
    return float(re.search(r"[+-]?\d+(\.\d+)?(e[+-]?\d+)?", text).group())


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
    # Every file is read back through its schema (backtest.csv: the policies in order, ...).
    table = read_backtest_csv(out / "backtest.csv").set_index("policy")
    runs = read_backtest_csv(out / "runs.csv")
    violations = read_backtest_csv(out / "soft_violations.csv")
    shares = read_backtest_csv(out / "rep_shares.csv")
    curve = read_backtest_csv(out / "fairness_curve.csv").set_index("band")
    assert (table["hard_violations"] == 0).all()
    # Every policy places the same leads under the same capacities, so the comparison is fair.
    assert table["placed"].nunique() == 1 and table["placed"].iloc[0] > 0
    # The oracle sees the truth: it beats the policies that ignore the reps altogether.
    assert table.loc["oracle", "expected_wins"] > table.loc["round_robin", "expected_wins"]
    assert table.loc["oracle", "expected_wins"] > table.loc["weighted_round_robin", "expected_wins"]
    # The table adds up the runs: the leads placed run by run, the soft limits missed run by
    # run (and listed one by one), the leads each rep received.
    policies = list(POLICIES)
    placed = runs.groupby("policy")["placed"].sum()
    assert placed[policies].tolist() == table["placed"].tolist()
    missed = runs.groupby("policy")["soft_violations"].sum()
    assert missed[policies].tolist() == table["soft_violations"].tolist()
    listed = violations.loc[violations["avoidable"]].groupby("policy").size()
    assert listed.reindex(policies, fill_value=0).tolist() == table["soft_violations"].tolist()
    received = shares.groupby("policy")["leads"].sum()
    assert received[policies].tolist() == table["placed"].tolist()
    # The curve holds leadmatch at its own band (20%) and without fairness: the gap between the
    # two is its price of fairness.
    assert curve.index.tolist() == [0.1, 0.2, np.inf]
    assert curve.loc[0.2, "expected_wins"] == pytest.approx(
        table.loc["leadmatch", "expected_wins"], abs=1e-4
    )
    assert curve.loc[np.inf, "expected_wins"] - curve.loc[0.2, "expected_wins"] == pytest.approx(
        table.loc["leadmatch", "price_of_fairness"], abs=2e-4
    )
    assert (out / "backtest.png").stat().st_size > 10_000
    assert summary.table["policy"].tolist() == policies
    assert any("of the oracle's lift over round-robin" in m for m in summary.messages)

    run, experiment, artifacts = logged_run(tracking, summary.run_id)
    assert experiment == EXPERIMENT
    assert run.info.run_name == "small world, 3 days, seed 1: simulator backtest"
    assert run.data.params["scenario"] == "small"
    assert run.data.metrics["leadmatch.expected_wins"] == pytest.approx(
        table.loc["leadmatch", "expected_wins"], abs=1e-3
    )
    # Timings go to MLflow only: the files are the same whenever the replay runs.
    assert run.data.metrics["leadmatch.seconds"] > 0
    assert {"backtest.csv", "backtest.png", "fairness_curve.csv", "messages.txt"} <= artifacts


@pytest.mark.parametrize("identified", [True, False])
def test_on_logged_history_the_value_comes_with_an_overlap_verdict(
    prefect_harness, tracking, small_folder, tmp_path, identified
):
    # The overlap rules decide the verdict: switched off, the value is identified; with an
    # effective sample no history can reach, it is not.
    rules = {"min_ess": 0, "min_agreement": 0, "max_unsupported_share": 1}
    off_policy = OffPolicyConfig(**rules) if identified else OffPolicyConfig(min_ess=1e9)
    config = LeadmatchConfig(tracking=tracking, off_policy=off_policy)
    out = tmp_path / "off"
    summary = run_backtest(data=small_folder, out=out, config=config)
    estimates = read_backtest_csv(out / "off_policy.csv").set_index("estimator")
    shown = summary.table.set_index("estimator")
    logged = "historical policy (observed mean)"
    assert estimates["identified"].tolist() == [True, *[identified] * 5]
    assert np.isfinite(estimates.loc["logged", "value"])
    assert first_number(shown.loc[logged, "value per lead"]) == pytest.approx(
        estimates.loc["logged", "value"], abs=1e-3
    )
    if identified:
        # The number on screen is the one in the file.
        dr = estimates.loc["dr"]
        assert np.isfinite(estimates.drop(index="logged")[["value", "vs_logged"]]).all().all()
        headline = "Leadmatch's policy against the history, doubly robust: "
        assert summary.messages[0].startswith(headline)
        on_screen = (summary.messages[0], shown.loc["doubly robust", "vs history"])
        for text in on_screen:
            assert first_number(text) == pytest.approx(dr["vs_logged"], abs=1e-3)
    else:
        # Not identified: no number, neither in the file nor on screen, and the reason.
        assert estimates.drop(index="logged")[["value", "vs_logged"]].isna().all().all()
        assert "NOT identified, so no number is given" in summary.messages[0]
        assert (
            (shown.drop(index=logged)[["value per lead", "vs history"]] == "not identified")
            .all()
            .all()
        )
        assert "fewer than the 1e+09 needed" in estimates.loc["dr", "note"]
    assert any("load" in m and "not captured" in m for m in summary.messages)
    assert (out / "overlap.json").is_file()
    run, _, artifacts = logged_run(tracking, summary.run_id)
    assert run.data.params["mode"] == "off_policy"
    assert run.info.run_name == f"{small_folder.name}: off-policy backtest"
    assert run.data.params["identified"] == str(identified)
    assert "overlap.ess" in run.data.metrics
    assert {"off_policy.csv", "overlap.json", "messages.txt"} <= artifacts
