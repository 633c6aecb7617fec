"""The nightly recommend flow end to end on the `small` world (Prefect harness, temp MLflow)."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from matching.summary import PlanAssignments
from pipelines.config import LeadmatchConfig, TrackingConfig
from pipelines.io import load_data_folder
from pipelines.outputs import ZH_HEADERS, read_plan_csv
from pipelines.recommend import EXPERIMENT, RecommendError, recommend_flow
from pipelines.registry import registered_model_name
from pipelines.tracking import EXPERIMENT_KIND, config_params, configure_mlflow
from pipelines.train import train_flow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(prefect_harness, small_folder, tmp_path_factory):
    """A config whose MLflow store holds a champion trained on the small world."""
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    config = LeadmatchConfig(tracking=TrackingConfig(root=tmp_path_factory.mktemp("mlflow")))
    train_flow(small_folder, config)
    yield config
    if saved is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved


RUN_DATE = "2025-05-06"
# objective "conversions": no expected_revenue column
ASSIGNMENT_COLUMNS = [c for c in PlanAssignments.to_schema().columns if c != "expected_revenue"]


def test_recommend_writes_valid_files_that_respect_capacity_and_reclaim(
    trained, small_folder, tmp_path
):
    summary = recommend_flow(small_folder, RUN_DATE, tmp_path, trained)
    folder = tmp_path / RUN_DATE
    assert sorted(p.name for p in folder.iterdir()) == [
        "assignments.csv",
        "left_out.csv",
        "rep_summary.csv",
        "report.html",
    ]
    assert (folder / "assignments.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for Excel

    asg = read_plan_csv(folder / "assignments.csv")
    reps = read_plan_csv(folder / "rep_summary.csv")
    assert asg.columns.tolist() == ASSIGNMENT_COLUMNS
    assert asg["lead_id"].is_unique
    assert set(asg["action"]) <= {"assign", "reassign", "keep", "hold"}
    assert (asg["reason"].str.len() > 10).all()
    assert summary.placed == (asg["action"] != "hold").sum() > 0

    # Capacity: no rep gets more leads than today's capacity, and absent reps get none.
    per_rep = asg.loc[asg["action"] != "hold"].groupby("rep_id").size()
    capacity = reps.set_index("rep_id")["capacity"]
    assert (per_rep <= capacity.reindex(per_rep.index)).all()
    assert set(per_rep.index) <= set(reps.loc[reps["available"], "rep_id"])

    # Reclaim: a lead left uncontacted past the SLA goes to someone else, or stays (keep); a
    # held lead was never taken from a rep who is still here.
    reassigned = asg.loc[asg["action"] == "reassign"]
    assert len(reassigned) > 0
    assert (reassigned["rep_id"] != reassigned["previous_rep_id"]).all()
    kept = asg.loc[asg["action"] == "keep"]
    assert (kept["rep_id"] == kept["previous_rep_id"]).all() and summary.kept == len(kept)
    team = pd.read_csv(small_folder / "reps.csv")
    here = set(team.loc[team["active"].astype(str).str.lower().isin(["true", "1"]), "rep_id"])
    assert not asg.loc[asg["action"] == "hold", "previous_rep_id"].isin(here).any()
    data = load_data_folder(small_folder).data
    history = data.assignments.set_index("lead_id")
    assert history.loc[reassigned["lead_id"], "first_contact_at"].isna().all()

    # The report is one self-contained page; its charts are inline SVG with text as text.
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 4 and "<img" not in page


def test_rerun_gives_byte_identical_files(trained, small_folder, tmp_path):
    recommend_flow(small_folder, RUN_DATE, tmp_path / "a", trained)
    recommend_flow(small_folder, RUN_DATE, tmp_path / "b", trained)
    for name in ("assignments.csv", "rep_summary.csv", "left_out.csv", "report.html"):
        assert (tmp_path / "a" / RUN_DATE / name).read_bytes() == (
            tmp_path / "b" / RUN_DATE / name
        ).read_bytes()


def test_a_busy_machine_and_a_shorter_solver_time_limit_give_byte_identical_files(
    trained, small_folder, tmp_path
):
    # the optimiser stops on work limits, not on the clock: the same plan however busy
    recommend_flow(small_folder, RUN_DATE, tmp_path / "quiet", trained)
    solver = trained.matching.solver
    shorter = solver.model_copy(update={"time_limit_seconds": solver.time_limit_seconds / 3})
    matching = trained.matching.model_copy(update={"solver": shorter})
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        recommend_flow(
            small_folder,
            RUN_DATE,
            tmp_path / "busy",
            trained.model_copy(update={"matching": matching}),
        )
    finally:
        for process in busy:
            process.kill()
            process.wait()
    for name in ("assignments.csv", "rep_summary.csv", "left_out.csv", "report.html"):
        assert (tmp_path / "quiet" / RUN_DATE / name).read_bytes() == (
            tmp_path / "busy" / RUN_DATE / name
        ).read_bytes()


def test_the_plan_does_not_depend_on_what_sits_in_the_output_folder(
    trained, small_folder, tmp_path
):
    clean = tmp_path / "clean"
    recommend_flow(small_folder, RUN_DATE, clean, trained)
    # Earlier "runs" in --out that no CRM row backs: yesterday every lead went to one rep as
    # top tier, a week ago a file that is not a plan at all, and some stray files.
    cluttered = tmp_path / "cluttered"
    plan = read_plan_csv(clean / RUN_DATE / "assignments.csv")
    reps = read_plan_csv(clean / RUN_DATE / "rep_summary.csv")
    for back, rows in ((1, plan), (2, plan.iloc[:3])):
        day = pd.Timestamp(RUN_DATE) - pd.Timedelta(days=back)
        folder = cluttered / f"{day:%Y-%m-%d}"
        folder.mkdir(parents=True)
        rows.assign(rep_id=reps["rep_id"].iloc[0], lead_win_chance_pct=100.0, tier="A").to_csv(
            folder / "assignments.csv", index=False, encoding="utf-8-sig"
        )
        reps.assign(capacity=1).to_csv(folder / "rep_summary.csv", index=False)
    old = cluttered / f"{pd.Timestamp(RUN_DATE) - pd.Timedelta(days=6):%Y-%m-%d}"
    old.mkdir()
    (old / "assignments.csv").write_text("not,a\nplan\n", encoding="utf-8")
    (cluttered / "notes.txt").write_text("junk", encoding="utf-8")
    recommend_flow(small_folder, RUN_DATE, cluttered, trained)
    for name in ("assignments.csv", "rep_summary.csv", "left_out.csv", "report.html"):
        assert (clean / RUN_DATE / name).read_bytes() == (cluttered / RUN_DATE / name).read_bytes()


def test_an_empty_export_gives_empty_valid_outputs_and_says_so(trained, small_folder, tmp_path):
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "reps.csv").write_bytes((small_folder / "reps.csv").read_bytes())
    for name in ("leads.csv", "assignments.csv"):
        header = (small_folder / name).read_text(encoding="utf-8").splitlines()[0]
        (folder / name).write_text(header + "\n", encoding="utf-8")
    # Another folder is another data set: name the model trained on the full export.
    model = registered_model_name(small_folder, None, trained.tracking)
    same_model = trained.model_copy(
        update={"tracking": trained.tracking.model_copy(update={"model_name": model})}
    )
    summary = recommend_flow(folder, RUN_DATE, tmp_path / "out", same_model)
    assert (summary.placed, summary.held, summary.reclaimed, summary.kept) == (0, 0, 0, 0)
    assert summary.notes[0] == (
        "The export has no leads as of the run date: there is nothing to place, so the files "
        "are empty."
    )
    asg = read_plan_csv(tmp_path / "out" / RUN_DATE / "assignments.csv")
    assert asg.columns.tolist() == ASSIGNMENT_COLUMNS and asg.empty
    reps = read_plan_csv(tmp_path / "out" / RUN_DATE / "rep_summary.csv")
    assert len(reps) == len(pd.read_csv(folder / "reps.csv")) and (reps["assigned"] == 0).all()


def test_chinese_headers_and_reasons(trained, small_folder, tmp_path):
    recommend_flow(small_folder, RUN_DATE, tmp_path, trained, lang="zh")
    text = (tmp_path / RUN_DATE / "assignments.csv").read_text(encoding="utf-8-sig")
    header = text.splitlines()[0].split(",")
    assert header == [ZH_HEADERS[c] for c in ASSIGNMENT_COLUMNS]
    asg = pd.read_csv(tmp_path / RUN_DATE / "assignments.csv", encoding="utf-8-sig")
    reasons = asg[ZH_HEADERS["reason"]]
    # Every reason is in Chinese (no English template left), whatever the plan chose.
    assert reasons.str.contains(r"[\u4e00-\u9fff]").all()
    assert not reasons.str.contains(r"\b(?:reclaimed|choice|held|rep)\b").any()


def test_dates_outside_the_data_and_missing_models_are_clear_errors(
    trained, prefect_harness, small_folder, tmp_path
):
    with pytest.raises(RecommendError, match="before the data starts"):
        recommend_flow(small_folder, "2020-01-01", tmp_path, trained)
    with pytest.raises(RecommendError, match="export fresh CRM data"):
        recommend_flow(small_folder, "2026-01-01", tmp_path, trained)
    empty = trained.model_copy(update={"tracking": TrackingConfig(root=tmp_path / "empty-store")})
    with pytest.raises(
        RecommendError, match=r"no trained model: run `leadmatch train --data \.\.\.` first"
    ):
        recommend_flow(small_folder, RUN_DATE, tmp_path, empty)
    assert not (tmp_path / RUN_DATE).exists()


def test_a_run_mlflow_did_not_record_publishes_nothing(
    trained, small_folder, tmp_path, monkeypatch
):
    """The run is logged before its files are published: when logging fails, no outputs."""
    import mlflow

    def unreachable(*args, **kwargs):
        raise ConnectionError("the tracking server went away")

    monkeypatch.setattr(mlflow, "log_artifacts", unreachable)
    with pytest.raises(ConnectionError, match="went away"):
        recommend_flow(small_folder, RUN_DATE, tmp_path, trained)
    assert not (tmp_path / RUN_DATE).exists()
    assert list(tmp_path.iterdir()) == []


def test_the_mlflow_run_says_what_it_is_and_logs_the_whole_config(trained, small_folder, tmp_path):
    from mlflow import MlflowClient

    summary = recommend_flow(small_folder, RUN_DATE, tmp_path, trained)
    configure_mlflow(trained.tracking)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    # Tagged as model development, not GenAI (see pipelines.tracking.UI_TRAINING_VIEW).
    assert experiment.tags[EXPERIMENT_KIND[0]] == EXPERIMENT_KIND[1]
    (run,) = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
    )
    assert run.info.run_name == f"crm {RUN_DATE} plan, model v{summary.model_version}"
    assert run.data.params == config_params(trained)
    assert run.data.params["matching.objective"] == trained.matching.objective
    assert run.data.tags["data_set"] == "crm"
    assert run.data.tags["registered_model"] == registered_model_name(
        small_folder, None, trained.tracking
    )
    assert run.data.metrics["leads_placed"] == summary.placed
