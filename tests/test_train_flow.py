"""The train flow end to end on the `small` world: MLflow run, registered model, champion alias."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from pipelines.config import LeadmatchConfig
from pipelines.io import load_data_folder
from pipelines.tracking import CHAMPION, REGISTERED_MODEL, configure_mlflow
from pipelines.train import TrainingDataError, train_flow

pytestmark = pytest.mark.slow


def test_train_logs_registers_and_promotes_only_a_better_model(
    prefect_harness, small_folder, tracking
):
    config = LeadmatchConfig(tracking=tracking)
    first = train_flow(small_folder, config)
    assert first.promoted and "no champion yet" in first.decision
    assert set(first.metrics) == {"pair_model", "lead_only", "logistic"}

    configure_mlflow(tracking)
    client = MlflowClient()
    run = client.get_run(first.run_id)
    assert {"pair_model.log_loss", "lead_only.log_loss", "rep_signal.gain"} <= set(run.data.metrics)
    assert run.data.tags["rep_signal"] in {"signal", "no reliable signal"}
    artifacts = {a.path for a in client.list_artifacts(first.run_id)}
    assert {
        "calibration.png",
        "feature_importance.png",
        "rep_signal.json",
        "config.json",
    } <= artifacts

    # A deliberately weak model (two tiny trees, no calibration to speak of) must not take over.
    weak = config.model.model_copy(
        update={
            "lightgbm": config.model.lightgbm.model_copy(
                update={"n_estimators": 1, "num_leaves": 2}
            )
        }
    )
    second = train_flow(small_folder, config.model_copy(update={"model": weak}))
    champion = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
    if second.promoted:
        assert str(champion.version) == second.version
        assert "beats champion" in second.decision
    else:
        assert str(champion.version) == first.version
        assert "does not beat champion" in second.decision

    # The logged pyfunc scores raw lead rows + rep_id and returns probabilities.
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{first.version}")
    leads = load_data_folder(small_folder).data.leads.tail(2).assign(rep_id="R001")
    scored = model.predict(leads)
    assert scored["p_win"].between(0, 1).all()


def test_training_on_too_little_history_stops_and_registers_nothing(
    prefect_harness, tmp_path, tiny, tracking
):
    folder = tmp_path / "tiny"
    folder.mkdir()
    for stem, frame in tiny.tables().items():
        frame.to_csv(folder / f"{stem}.csv", index=False)
    with pytest.raises(TrainingDataError):
        train_flow(folder, LeadmatchConfig(tracking=tracking))
    configure_mlflow(tracking)
    assert MlflowClient().search_registered_models() == []
