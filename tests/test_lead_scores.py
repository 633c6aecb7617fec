"""A history without reps: read as a lead-scoring history, checked for what a lead-only model
needs, turned into rows, scored and explained in words."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.daily import snapshot
from features.describe import LEAD_SCORING, check_history, describe_crm
from features.lead_scoring import (
    NO_REP,
    build_lead_scoring_rows,
    build_lead_training_rows,
    is_lead_scoring,
    open_leads,
)
from features.schemas import CrmValidationError, check_crm
from matching.day import tiers
from models.lead_scores import (
    LEAD_ONLY,
    PLAIN,
    LeadScores,
    explain_leads,
    lead_score_table,
    train_lead_scores,
)
from pipelines import checks
from pipelines.cli import app
from pipelines.io import DataError, load_data_folder
from tests.conftest import tiny_crm
from tests.lead_exports import (
    EXPORT_END,
    RUN_DATE,
    write_canonical_lead_folder,
    write_webform_export,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def web_export(tmp_path_factory):
    """(folder, mapping) of the web-form leads and deals export."""
    folder = tmp_path_factory.mktemp("web") / "export"
    return folder, write_webform_export(folder)


@pytest.fixture(scope="module")
def web_history(web_export):
    return load_data_folder(*web_export).data


@pytest.fixture(scope="module")
def trained(web_history):
    return train_lead_scores(build_lead_training_rows(web_history))


def _outcomes_only():
    """The tiny CRM's leads and outcomes, without its reps."""
    tiny = tiny_crm()
    asg = tiny.assignments.drop(columns=["rep_id", "first_contact_at"])
    return tiny.leads, asg


# --- reading a history without reps --------------------------------------------------------


def test_a_canonical_folder_without_reps_is_a_lead_scoring_history(tmp_path):
    leads, asg = _outcomes_only()
    leads.to_csv(tmp_path / "leads.csv", index=False)
    asg.to_csv(tmp_path / "assignments.csv", index=False)
    data = load_data_folder(tmp_path).data
    assert is_lead_scoring(data)
    assert data.reps.empty
    # Open rows without an owner are allowed here, and nothing else about them is made up.
    assert data.assignments["rep_id"].isna().all()
    assert data.assignments["status"].tolist() == ["won", "lost", "open", "open"]
    assert data.assignments["first_contact_at"].isna().all()


def test_a_folder_without_reps_csv_whose_assignments_name_reps_is_refused(tmp_path):
    tiny = tiny_crm()
    tiny.leads.to_csv(tmp_path / "leads.csv", index=False)
    tiny.assignments.to_csv(tmp_path / "assignments.csv", index=False)
    with pytest.raises(DataError) as err:
        load_data_folder(tmp_path)
    assert str(err.value).endswith(
        "Here assignments.csv names reps (4 rows, the first on line 2: 'R1'): add reps.csv, or "
        "empty the rep_id column to use the history for lead scoring only."
    )
    assert f"{tmp_path}: missing reps.csv." in str(err.value)


def test_an_open_lead_without_its_rep_is_still_refused_when_the_history_has_reps(tiny):
    tiny.assignments.loc[2, "rep_id"] = None
    with pytest.raises(CrmValidationError, match="only a won or lost row may have no rep"):
        check_crm(tiny)


def test_a_mapping_without_reps_reads_an_export_of_leads_and_deals(web_export, web_history):
    data = web_history
    assert is_lead_scoring(data)
    assert len(data.leads) == 1498  # two test submissions filtered out
    assert data.assignments["rep_id"].isna().all()
    # Deals in progress are not outcomes: those leads are open (no won or lost row).
    assert set(data.assignments["status"]) == {"won", "lost"}
    assert data.leads["created_at"].max() < EXPORT_END


LEADS = {"file": "leads.csv", "columns": {"lead_id": "Id", "created_at": "Created"}}
DEALS = {"lead_id": "Lead", "status": "Stage", "assigned_at": "Created", "closed_at": "Closed"}


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            {"assignments": {"file": "deals.csv", "columns": {**DEALS, "rep_id": "Owner"}}},
            "reps: assignments map rep_id, so the reps must be mapped too (e.g. the distinct "
            "owners of the leads file, with `distinct: true`); for an export of leads and "
            "outcomes without owners (lead scoring), leave rep_id out",
        ),
        (
            {
                "assignments": {"file": "deals.csv", "columns": DEALS},
                "availability": {
                    "file": "days.csv",
                    "columns": {"rep_id": "Owner", "date": "Day", "available": "In"},
                },
            },
            "availability: there are no reps to be available; map reps too",
        ),
    ],
    ids=["owners", "availability"],
)
def test_a_mapping_without_reps_cannot_name_them(tables, message):
    from features.adapters import ColumnMapping, MappingError

    with pytest.raises(MappingError) as err:
        ColumnMapping.parse({"tables": {"leads": LEADS, **tables}})
    assert str(err.value) == f"the column mapping is not valid:\n  tables: {message}"


# --- what a lead-only model needs ----------------------------------------------------------


def test_the_history_check_counts_every_outcome_of_a_history_without_reps(web_history):
    history = check_history(web_history)
    assert history.lead_scoring
    assert history.problems == []
    assert history.training == []
    assert history.label[2].startswith("training base rate: 18.6% of 1,083 labelled assignments")
    summary = describe_crm(web_history)
    assert summary["reps"] == "none: lead scoring"
    assert "active reps" not in summary


def _history_of(statuses: list[str], days_apart: float = 1.0):
    """A lead-scoring history of one lead per status, a day apart, closed a week later."""
    n = len(statuses)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) * days_apart, unit="D")
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "created_at": created.astype(str),
            "source": "web",
            "industry": "retail",
            "region": "EU",
            "product": "basic",
        }
    )
    closed = [
        str(t + pd.Timedelta(days=7)) if s != "open" else ""
        for s, t in zip(statuses, created, strict=True)
    ]
    asg = pd.DataFrame(
        {
            "lead_id": leads["lead_id"],
            "rep_id": "",
            "assigned_at": created.astype(str),
            "first_contact_at": "",
            "status": statuses,
            "closed_at": closed,
            "deal_value": ["100" if s == "won" else "" for s in statuses],
        }
    )
    from features.lead_scoring import no_reps
    from features.schemas import CrmData

    return check_crm(CrmData(reps=no_reps(), leads=leads, assignments=asg.replace("", None))).data


@pytest.mark.parametrize(
    ("statuses", "refusal"),
    [
        (
            ["open"] * 30,
            "no closed assignments (won or lost): a model cannot learn without outcomes",
        ),
        (
            ["lost"] * 250,
            "too few wins: 0 labelled assignments were won within 90 days and 250 were not; the "
            "model needs at least 20 of each (model.min_outcomes_per_class)",
        ),
        (
            ["won", "lost"] * 50,
            "too few outcomes: 100 assignments with a label (won within 90 days, or not won by "
            "then), the model needs at least 200 (model.min_outcomes); collect a longer history "
            "(this one spans 99 days)",
        ),
    ],
    ids=["no outcomes", "one class", "too few"],
)
def test_histories_a_lead_only_model_cannot_learn_from_are_refused(statuses, refusal):
    history = check_history(_history_of(statuses))
    assert history.lead_scoring
    assert refusal in history.problems + history.training
    # Reps are not asked for: a history without reps is not missing them.
    assert not any("rep" in line for line in history.problems + history.training)


# --- rows, model, words --------------------------------------------------------------------


def test_training_rows_are_the_outcomes_each_with_its_lead_age_at_hand_over():
    data = _history_of(["won", "lost", "open"])
    asg = data.assignments.assign(
        assigned_at=data.assignments["assigned_at"] + pd.Timedelta(days=3)
    )
    data = check_crm(type(data)(reps=data.reps, leads=data.leads, assignments=asg)).data
    rows = build_lead_training_rows(data, as_of=pd.Timestamp("2024-06-01"))
    # The open row is decided (not won) once its window has passed.
    assert rows["lead_id"].tolist() == ["L0", "L1", "L2"]
    assert rows["won"].tolist() == [1, 0, 0]
    assert (rows["rep_id"] == NO_REP).all()
    assert rows["lead_age_days"].tolist() == [3.0, 3.0, 3.0]


def test_open_leads_are_those_without_an_outcome_as_known_on_the_day():
    data = _history_of(["won", "open", "lost", "open"], days_apart=10)
    # L2 closes on 2024-01-28: on the 25th it is still open.
    state = snapshot(data, pd.Timestamp("2024-01-25"))
    assert open_leads(state)["lead_id"].tolist() == ["L1", "L2"]
    state = snapshot(data, pd.Timestamp("2024-02-15"))
    assert open_leads(state)["lead_id"].tolist() == ["L1", "L3"]


def test_the_lead_only_model_is_judged_beside_a_plain_lightgbm(trained):
    assert set(trained.metrics) == {LEAD_ONLY, PLAIN}
    ours, plain = trained.metrics[LEAD_ONLY], trained.metrics[PLAIN]
    assert ours["n"] == plain["n"] == len(trained.test) > 40
    # Industry and follow-up delay drive the wins: the model finds them, and is calibrated.
    assert ours["roc_auc"] > 0.65
    assert ours["log_loss"] <= plain["log_loss"]
    assert abs(trained.test[f"p_{LEAD_ONLY}"].mean() - trained.test["won"].mean()) < 0.06
    # The calibrated model is served, the plain one is only the yardstick; no reps, no test.
    assert trained.served == LEAD_ONLY and trained.served_model is trained.model
    assert not trained.model.rep_information
    assert trained.rep_signal.summary() == (
        "no reliable signal: not tested, the lead-only model does not tell reps apart"
    )


def test_the_registry_gate_judges_a_retrained_lead_only_model_on_the_same_rows(web_history):
    from features.config import FeatureConfig
    from features.lead_scoring import stand_in
    from features.pairs import default_as_of
    from models.config import ModelConfig
    from pipelines.registry import CurrentChampion, decide
    from pipelines.serving import LeadmatchModel

    fast = ModelConfig(n_bootstrap=200)
    crippled = fast.model_copy(update={"probability_floor": 0.45})
    rows = build_lead_training_rows(web_history)

    def served(result):
        return LeadmatchModel.from_training(
            result.served_model,
            result.served,
            rows,
            FeatureConfig(),
            result.rep_signal,
            trained_before=result.test_start,
            as_of=default_as_of(web_history),
        )

    good, weak = train_lead_scores(rows, fast), train_lead_scores(rows, crippled)
    # The train flow hands the gate the history as the lead-only model saw it.
    data = stand_in(web_history)
    better = decide(CurrentChampion("1", served(weak)), good, data, served(good), fast)
    assert better.promote and better.reason.startswith(
        f"beats champion v1: on the same {len(good.test)} held-out pairs"
    )
    same = decide(CurrentChampion("1", served(good)), good, data, served(good), fast)
    assert not same.promote and "the interval includes zero" in same.reason


FACTOR = {
    "en": re.compile(r"^(.+) (raises|lowers) it \(([+-]\d+\.\d) pts\)$"),
    "zh": re.compile(r"^(.+)，(提高|降低)赢单率（([+-]\d+\.\d)个百分点）$"),
}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_each_open_lead_gets_its_top_factors_in_words(trained, web_history, lang):
    day = pd.Timestamp(RUN_DATE)
    state = snapshot(web_history, day)
    leads = open_leads(state)
    rows = build_lead_scoring_rows(state, leads, as_of=day)
    explained = explain_leads(trained.model, rows, lang=lang)
    assert explained["lead_id"].tolist() == leads["lead_id"].tolist()
    assert np.allclose(explained["p_win"], trained.model.predict_proba(rows)[:, 1])
    phrases = [f for factors in explained["factors"] for f in factors]
    assert explained["factors"].map(len).between(1, 3).all()
    for phrase in phrases:
        match = FACTOR[lang].fullmatch(phrase)
        assert match, phrase
        # The word and the sign agree.
        assert (match[2] in ("raises", "提高")) == match[3].startswith("+")
    if lang == "en":
        assert any(
            re.fullmatch(r"industry = (Retail|Healthcare) (raises|lowers) it.*", p) for p in phrases
        )
        assert any(re.fullmatch(r"lead age \d+ days lowers it.*", p) for p in phrases)
    else:
        assert any(p.startswith("行业 = ") for p in phrases)
        assert any(re.match(r"线索已创建\d+天，降低赢单率", p) for p in phrases)


def test_the_score_table_lists_the_best_leads_first_with_their_tiers(trained, web_history):
    day = pd.Timestamp(RUN_DATE)
    state = snapshot(web_history, day)
    leads = open_leads(state)
    explained = explain_leads(trained.model, build_lead_scoring_rows(state, leads, as_of=day))
    table = lead_score_table(
        leads, explained, tiers(explained["p_win"].to_numpy(), (0.5, 0.8)), run_date=RUN_DATE
    )
    LeadScores.validate(table)
    assert table.columns.tolist() == [
        "run_date",
        "lead_id",
        "created_at",
        "p_win",
        "tier",
        "top_factors",
    ]
    assert len(table) == len(leads)
    # Ordered as written (4 decimals), ties oldest first.
    assert table["p_win"].round(4).is_monotonic_decreasing
    shares = table["tier"].value_counts(normalize=True)
    assert shares["A"] == pytest.approx(0.2, abs=0.02)
    assert shares["B"] == pytest.approx(0.3, abs=0.02)
    by_tier = table.groupby("tier")["p_win"]
    assert by_tier.min()["A"] >= by_tier.max()["B"] and by_tier.min()["B"] >= by_tier.max()["C"]


# --- commands on a history without reps ----------------------------------------------------


def test_validate_says_a_history_without_reps_is_for_lead_scoring(tmp_path):
    folder = write_canonical_lead_folder(tmp_path / "crm")
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "A " + LEAD_SCORING.removeprefix("a ") in text
    assert "OK: the data meets the contract and is usable for lead scoring." in text
    assert "no active reps" not in text


def test_recommend_on_a_history_without_reps_points_to_score(tmp_path, web_export):
    folder = write_canonical_lead_folder(tmp_path / "crm")
    for args in ([str(folder)], [str(web_export[0]), "--mapping", str(web_export[1])]):
        command = ["recommend", "--data", args[0], "--date", RUN_DATE, "--out", str(tmp_path)]
        result = runner.invoke(app, command + args[1:])
        assert result.exit_code == 2
        assert " ".join(result.output.split()) == (
            f"error: {args[0]} holds leads and outcomes but no reps (a lead-scoring history), so "
            f"there is nobody to match its leads to: score its open leads with `leadmatch score "
            f"--data {args[0]} --date {RUN_DATE} --out DIR`, or add the reps (reps.csv, or a "
            "reps table in the mapping) to recommend assignments"
        )


def test_score_on_a_team_history_points_to_recommend(tmp_path, tiny):
    for stem, frame in tiny.tables().items():
        frame.to_csv(tmp_path / f"{stem}.csv", index=False)
    with pytest.raises(checks.ArgumentError) as err:
        checks.no_reps(tmp_path, None, RUN_DATE)
    assert str(err.value) == (
        f"{tmp_path} has reps: `leadmatch score` scores the leads of a history without reps; "
        f"for a team, `leadmatch recommend --data {tmp_path} --date {RUN_DATE}` scores its "
        "leads for each rep and places them"
    )
    checks.reps_to_match(tmp_path, None, RUN_DATE)  # a team's folder may be recommended


def test_score_refuses_a_team_export_read_through_a_mapping_in_a_second(tmp_path):
    folder = tmp_path / "maven"
    folder.mkdir()
    command = ["score", "--data", str(folder), "--date", RUN_DATE, "--out", str(tmp_path / "o")]
    result = runner.invoke(app, [*command, "--mapping", "maven"])
    assert result.exit_code == 2
    assert " ".join(result.output.split()).startswith(
        f"error: {folder} has reps: `leadmatch score`"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--date", "2024-13-01"],
            "--date '2024-13-01' is not a date: use YYYY-MM-DD, e.g. 2025-05-06",
        ),
        (["--date", RUN_DATE, "--lang", "fr"], "unknown language 'fr': use --lang en or --lang zh"),
    ],
    ids=["date", "lang"],
)
def test_score_checks_its_arguments_first(tmp_path, args, message):
    folder = write_canonical_lead_folder(tmp_path / "crm", n=40)
    result = runner.invoke(app, ["score", "--data", str(folder), "--out", str(tmp_path), *args])
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == f"error: {message}"


# --- from the command line, end to end -------------------------------------------------------


def _store(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("LEADMATCH_HOME", str(tmp_path / "store"))


@pytest.mark.slow
def test_a_web_form_export_trains_a_lead_only_model_and_scores_its_open_leads(
    prefect_harness, web_export, web_history, tmp_path, monkeypatch
):
    _store(monkeypatch, tmp_path)
    folder, mapping = web_export
    data = ["--data", str(folder), "--mapping", str(mapping)]
    trained = runner.invoke(app, ["train", *data])
    assert trained.exit_code == 0, trained.output
    text = " ".join(trained.output.split())
    assert re.search(r"lead_only \* +│", trained.output)
    assert re.search(r"plain_lightgbm +│", trained.output)
    assert "served: lead_only is the model served (held-out log loss" in text
    assert "rep signal: no reliable signal: not tested, the lead-only model does not tell" in text
    assert re.search(r"registered leadmatch-export-[0-9a-f]{6} version 1 .*no champion yet", text)

    out = tmp_path / "scores"
    for lang in ("en", "zh"):
        scored = runner.invoke(
            app, ["score", *data, "--date", RUN_DATE, "--out", str(out / lang), "--lang", lang]
        )
        assert scored.exit_code == 0, scored.output
    path = out / "en" / RUN_DATE / "lead_scores.csv"
    # The path may wrap in a narrow terminal.
    assert "".join(scored.output.split()).endswith(f"wrote{out}/zh/{RUN_DATE}/lead_scores.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw
    table = pd.read_csv(path, encoding="utf-8-sig", dtype={"lead_id": str}, keep_default_na=False)
    LeadScores.validate(table)
    day = pd.Timestamp(RUN_DATE)
    every = open_leads(snapshot(web_history, day))
    # Leads older than recommend.max_lead_age_days (30) are left out and counted, as at night.
    fresh = every["created_at"] >= day - pd.Timedelta(days=30)
    assert sorted(table["lead_id"]) == sorted(every.loc[fresh, "lead_id"])
    assert re.search(rf"left out \(older than 30 days\) +│ +{int((~fresh).sum())} │", scored.output)
    assert 0 < fresh.sum() < len(every)
    assert (table["run_date"] == RUN_DATE).all()
    assert table["p_win"].is_monotonic_decreasing and table["p_win"].nunique() > 10
    assert set(table["tier"]) == {"A", "B", "C"}
    assert table["top_factors"].str.contains(r"(?:raises|lowers) it \([+-]\d").all()
    chinese = pd.read_csv(out / "zh" / RUN_DATE / "lead_scores.csv", encoding="utf-8-sig")
    assert chinese.columns.tolist() == [
        "运行日期",
        "线索编号",
        "创建日期",
        "赢单概率",
        "线索等级",
        "主要因素",
    ]
    assert chinese["赢单概率"].tolist() == table["p_win"].tolist()
    assert chinese["主要因素"].str.contains("赢单率（[+-]").all()
    # Nothing is left beside the published folder but leadmatch's own versions.
    assert sorted(p.name for p in (out / "en").iterdir()) == [".versions", RUN_DATE]


@pytest.mark.slow
def test_a_won_only_export_read_with_unassigned_outcome_lost_trains_and_recommends(
    prefect_harness, tmp_path, monkeypatch
):
    from tests.test_describe import won_only_export, won_only_mapping

    _store(monkeypatch, tmp_path)
    export = won_only_export(tmp_path / "export", n=600)
    mapping = won_only_mapping(tmp_path / "lost.yaml", "lost")
    data = ["--data", str(export), "--mapping", str(mapping)]
    validated = runner.invoke(app, ["validate", str(export), "--mapping", str(mapping)])
    assert validated.exit_code == 0, validated.output
    text = " ".join(validated.output.split())
    assert (
        "lead-only model: the 540 outcomes with no rep are not lead x rep pairs, and the reps' "
        "own outcomes are too few or one-sided to tell reps apart, so `leadmatch train` fits the "
        "lead-only model on all 600 labelled outcomes"
    ) in text
    assert "train would stop" not in text

    trained = runner.invoke(app, ["train", *data])
    assert trained.exit_code == 0, trained.output
    text = " ".join(trained.output.split())
    assert "held-out metrics (105 pairs, trained on 417)" in text
    assert "served: lead_only is the model served" in text
    assert "version 1" in text

    out = tmp_path / "out"
    recommended = runner.invoke(
        app, ["recommend", *data, "--date", "2023-11-08", "--out", str(out)]
    )
    assert recommended.exit_code == 0, recommended.output
    assert re.search(r"rep-specific matching +│ off \(no reliable rep signal\)", recommended.output)
    # Before the export's end the leads nobody owns were not lost yet: they are placed.
    plan = pd.read_csv(out / "2023-11-08" / "assignments.csv", encoding="utf-8-sig")
    placed = plan.loc[plan["action"] == "assign"]
    assert len(placed) == 3 and set(placed["rep_id"]) == {"Ann", "Bo", "Cy"}
    assert (plan["action"] == "hold").sum() == 24
