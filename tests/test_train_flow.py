"""The train flow end to end on the `small` world: the best model registered for its data set,
no personal data in the store, a worse retrain not promoted, and a champion refused on data it
was not trained for."""

from __future__ import annotations

import datetime as dt
import os
import shutil

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from features.pairs import build_scoring_pairs, default_as_of
from features.schemas import validate_crm
from models.config import ModelConfig
from pipelines.config import LeadmatchConfig, TrackingConfig
from pipelines.io import load_data_folder, write_data_folder
from pipelines.recommend import RecommendError, load_champion, recommend_flow
from pipelines.registry import registered_model_name
from pipelines.tracking import CHAMPION, EXPERIMENT_KIND, configure_mlflow
from pipelines.train import TrainingDataError, train_flow

pytestmark = pytest.mark.slow

EMAILS = [f"planted.person{i}@example.com" for i in range(40)]
PHONES = [f"+44 20 7946 {i:04d}" for i in range(40)]
NAMES = [
    f"{a} {b}" for a in ("Zelda", "Quinn", "Ottilie", "Barnaby") for b in ("Fairweather", "Quist")
]
REP_NAMES = [f"Repname{chr(65 + i)} Plantedsurname" for i in range(12)]


@pytest.fixture(scope="module")
def planted(small_world, tmp_path_factory):
    """The `small` world with contact e-mails, phones and person names planted in every table,
    under column names that say so and under names that do not."""
    data = small_world.data
    n = len(data.leads)
    leads = data.leads.assign(
        x_email=[EMAILS[i % 40] for i in range(n)],
        x_reach=[EMAILS[(i + 7) % 40] for i in range(n)],
        x_mobile=[PHONES[i % 40] for i in range(n)],
        contact_name=[NAMES[i % len(NAMES)] for i in range(n)],
    )
    reps = data.reps.assign(name=REP_NAMES[: len(data.reps)], email=EMAILS[: len(data.reps)])
    assignments = data.assignments.assign(
        notes=[PHONES[i % 40] for i in range(len(data.assignments))]
    )
    folder = tmp_path_factory.mktemp("acme") / "crm"
    write_data_folder(type(data)(reps=reps, leads=leads, assignments=assignments), folder)
    return folder


@pytest.fixture(scope="module")
def trained(prefect_harness, planted, tmp_path_factory):
    """A store holding one training run on the planted export: (config, its summary)."""
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    tracking = TrackingConfig(root=tmp_path_factory.mktemp("mlflow"))
    config = LeadmatchConfig(tracking=tracking, model=ModelConfig(n_bootstrap=200))
    yield config, train_flow(planted, config)
    if saved is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved


def test_train_serves_the_best_model_of_its_data_set_and_keeps_no_personal_data(trained, planted):
    config, first = trained
    tracking = config.tracking
    name = registered_model_name(planted, None, tracking)
    assert first.model_name == name and name.startswith("leadmatch-crm-")
    assert first.promoted and first.decision.startswith("no champion yet")
    losses = {model: m["log_loss"] for model, m in first.metrics.items()}
    assert first.served == min(losses, key=losses.get)
    assert first.personal_columns == [
        "reps email: its name suggests e-mail addresses",
        "leads x_email: its name suggests e-mail addresses",
        "leads x_reach: its values look like e-mail addresses (100% of 2000 checked)",
        "leads x_mobile: its name suggests phone numbers",
        "leads contact_name: its name suggests contact persons",
        "assignments notes: its values look like phone numbers (100% of 2000 checked)",
    ]

    configure_mlflow(tracking)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(f"{name}-train")
    assert experiment.tags[EXPERIMENT_KIND[0]] == EXPERIMENT_KIND[1]
    run = client.get_run(first.run_id)
    assert run.info.run_name == f"crm {dt.date.today():%Y-%m-%d} {first.served}"
    assert run.data.metrics["served.ece"] == pytest.approx(first.metrics[first.served]["ece"])
    assert {"served.ece_noise", "pair_model.log_loss", "rep_signal.gain"} <= set(run.data.metrics)
    version = client.get_model_version(name, first.version)
    assert version.tags["served_model"] == first.served
    for line in (
        f"Data set: {planted}; history as of 2025-05-06.",
        "Label: won within 90 days of assignment.",
        f"Model: {first.served} has the lowest held-out log loss",
        "Rep signal: ",
        "Champion decision: no champion yet",
    ):
        assert line in version.description
    signal = mlflow.artifacts.load_dict(f"runs:/{first.run_id}/rep_signal.json")
    assert signal["units"] == "nats per held-out pair"
    assert "positive: rep information lowers the log loss" in signal["sign"]

    # No planted e-mail, phone, contact or rep name anywhere in the store: pickles, input
    # examples, figures, tables, the database.
    files = [p for p in tracking.root.rglob("*") if p.is_file()]
    assert any(p.name == "python_model.pkl" for p in files)
    assert any(p.name == "input_example.json" for p in files)
    for path in files:
        content = path.read_bytes()
        for planted_text in EMAILS + PHONES + NAMES + REP_NAMES:
            assert planted_text.encode() not in content, f"{planted_text} in {path}"

    # The logged model scores pair features; the nightly path scores raw leads with the
    # history of the data folder: both give the same probabilities.
    model = mlflow.pyfunc.load_model(f"models:/{name}/{first.version}")
    data = load_data_folder(planted).data
    leads = data.leads.tail(2)
    pairs = build_scoring_pairs(data, leads, as_of=default_as_of(data))
    scored = model.predict(pairs)
    assert scored.columns.tolist() == ["lead_id", "rep_id", "p_win"]
    direct = model.unwrap_python_model().score(
        data, leads, pairs[["lead_id", "rep_id"]], as_of=default_as_of(data)
    )
    assert scored["p_win"].to_numpy() == pytest.approx(direct)


def test_a_worse_retrain_is_registered_but_does_not_take_over(trained, planted):
    config, first = trained
    # Deliberately crippled: every probability squeezed into [0.45, 0.55] (win rate ~0.22).
    crippled = config.model_copy(
        update={"model": config.model.model_copy(update={"probability_floor": 0.45})}
    )
    second = train_flow(planted, crippled)
    assert not second.promoted and second.version != first.version
    assert "the new model is worse" in second.decision
    champion = MlflowClient().get_model_version_by_alias(first.model_name, CHAMPION)
    assert str(champion.version) == first.version


def test_a_dry_run_judges_against_the_champion_and_logs_nothing(trained, planted):
    config, first = trained
    client = MlflowClient()
    versions = len(client.search_model_versions(f"name='{first.model_name}'"))
    again = train_flow(planted, config, dry_run=True)
    assert again.dry_run and again.version is None and again.run_id is None
    # The same data, config and seed give the same model (LightGBM is deterministic), which is
    # no better than the champion.
    assert again.metrics == first.metrics
    assert "is not reliably better: the interval includes zero" in again.decision
    assert len(client.search_model_versions(f"name='{first.model_name}'")) == versions


def test_a_champion_is_refused_on_data_it_was_not_trained_for(trained, tiny):
    config, first = trained
    with pytest.raises(
        RecommendError,
        match=(
            rf"the champion model \(version {first.version} of {first.model_name}\) does not "
            r"fit this data: the leads have no column x_score; it knows 0% of the leads' source "
            r"values \(it knew \d+% of its "
            r"training pairs'\);.* none of the 2 active reps was in its training data\. It was "
            r"trained on other data"
        ),
    ):
        load_champion.fn(config, first.model_name, validate_crm(tiny))


def test_recommend_uses_its_data_sets_champion_and_logs_its_config(trained, planted, tmp_path):
    config, first = trained
    summary = recommend_flow(planted, "2025-05-06", tmp_path / "out", config)
    assert summary.model_version == first.version
    client = MlflowClient()
    recommend = client.get_experiment_by_name("leadmatch-recommend")
    (nightly,) = client.search_runs([recommend.experiment_id])
    assert nightly.data.params["matching.objective"] == config.matching.objective
    assert nightly.data.params["recommend.sla_days"] == str(config.recommend.sla_days)
    # A copy of the data in another folder is another data set, with no model of its own.
    other = tmp_path / "globex" / "crm"
    shutil.copytree(planted, other)
    with pytest.raises(RecommendError, match=r"no trained model: run .* \(its registered model"):
        recommend_flow(other, "2025-05-06", tmp_path / "out", config)


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
