"""What a history must contain: the label it defines, and the histories that cannot train a model.

Each history is built by hand, so every figure in the expected sentences can be checked by eye.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.describe import check_history, describe_crm, usability_problems
from features.schemas import CrmData, validate_crm
from pipelines.cli import app

runner = CliRunner()


def history(
    n: int = 300,
    reps: tuple[str, ...] = ("R1", "R2", "R3"),
    win_every: int = 5,
    days_to_close: int = 10,
    days_to_win: int | None = None,
    same_time: str | None = None,
    owned: str = "all",
) -> CrmData:
    """``n`` leads, one a day from 2023-01-01, each assigned at creation to the next rep in turn.

    Every ``win_every``-th lead is won, the others lost, ``days_to_close`` days after assignment
    (wins after ``days_to_win`` if given). ``same_time``: every lead created and assigned at that
    moment instead. ``owned``: "all" rows, or "won" (only won leads have an assignment row).
    """
    created = pd.date_range("2023-01-01", periods=n, freq="D")
    if same_time is not None:
        created = pd.DatetimeIndex([pd.Timestamp(same_time)] * n)
    won = [i % win_every == 0 for i in range(n)]
    close_days = [(days_to_win or days_to_close) if w else days_to_close for w in won]
    assignments = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "rep_id": [reps[i % len(reps)] for i in range(n)],
            "assigned_at": created,
            "first_contact_at": created + pd.Timedelta(hours=2),
            "status": ["won" if w else "lost" for w in won],
            "closed_at": created + pd.to_timedelta(close_days, unit="D"),
            "deal_value": [100.0 if w else None for w in won],
        }
    )
    if owned == "won":
        assignments = assignments[assignments["status"] == "won"]
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "created_at": created,
            "source": "web",
            "industry": "retail",
            "region": "EU",
            "product": "basic",
        }
    )
    team = pd.DataFrame(
        {
            "rep_id": list(reps),
            "name": list(reps),
            "team": "a",
            "region": "EU",
            "hire_date": pd.Timestamp("2022-01-01"),
            "skills": "",
            "daily_capacity": 5,
            "active": True,
        }
    )
    return validate_crm(CrmData(reps=team, leads=leads, assignments=assignments))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            history(reps=("R1",)),
            "one rep: only R1 has labelled outcomes, and the model learns how reps differ, so it "
            "needs the outcomes of two reps or more: add the other reps' leads to the export",
        ),
        (
            history(same_time="2024-01-31"),
            "one timestamp for everything: all 300 labelled assignments were assigned at "
            "2024-01-31 00:00, so there is no earlier history to learn from and no later slice "
            "to test on. The export gives every lead one date (often the day it was exported): "
            "map the column that holds each lead's own creation or assignment date; a longer "
            "history will not help",
        ),
        (
            history(n=100),
            "too few outcomes: 100 assignments with a label (won within 90 days, or not won by "
            "then), the model needs at least 200 (model.min_outcomes); collect a longer history "
            "(this one spans 99 days)",
        ),
        (
            history(win_every=30),
            "too few wins: 10 labelled assignments were won within 90 days and 290 were not; the "
            "model needs at least 20 of each (model.min_outcomes_per_class); collect a longer "
            "history (this one spans 299 days)",
        ),
        (
            history(days_to_win=120),
            "too few wins: 0 labelled assignments were won within 90 days and 300 were not; the "
            "model needs at least 20 of each (model.min_outcomes_per_class); 60 wins came after "
            "90 days: a longer features.conversion_window_days counts them",
        ),
    ],
    ids=["one rep", "one timestamp", "too few outcomes", "too few wins", "wins after the window"],
)
def test_a_history_too_thin_to_learn_from_says_which_and_what_would_help(data, message):
    check = check_history(data)
    assert check.problems == []
    assert check.training == [message]


def test_one_timestamp_is_not_answered_with_a_longer_history():
    check = check_history(history(n=100, same_time="2024-01-31"))
    assert [line.split(":")[0] for line in check.training] == [
        "one timestamp for everything",
        "too few outcomes",
    ]
    assert "longer history (this one spans" not in " ".join(check.training)


def test_a_sound_history_has_nothing_to_say_but_its_label():
    check = check_history(history())
    assert (check.problems, check.training) == ([], [])
    assert check.label == [
        "target: won within 90 days of assignment (features.conversion_window_days)",
        "wins outside the window: 0 of 60 wins (0.0%) closed more than 90 days after "
        "assignment and count as not won",
        "training base rate: 20.0% of 300 labelled assignments won within 90 days, close to "
        "the win rate of closed leads (20.0%)",
    ]


def test_many_late_wins_are_flagged_with_a_window_that_would_count_them():
    data = history(days_to_win=150)
    label = check_history(data).label
    assert label[1] == (
        "wins outside the window: 60 of 60 wins (100.0%) closed more than 90 days after "
        "assignment and count as not won. That is a large share: "
        "features.conversion_window_days: 150 would count 90% of the wins (the slowest took "
        "150 days)"
    )
    assert label[2] == (
        "training base rate: 0.0% of 300 labelled assignments won within 90 days, against a "
        "win rate of 20.0% of closed leads (the figure above), because 60 wins came after 90 "
        "days and count as not won"
    )
    assert (
        check_history(data, window_days=150)
        .label[1]
        .startswith("wins outside the window: 0 of 60 wins")
    )


def test_open_leads_explain_the_gap_between_win_rate_and_base_rate():
    data = history()
    asg = data.assignments.copy()
    # The last 150 leads are still open: those assigned more than 90 days before the export's
    # end count as not won, the younger ones wait for their window.
    asg.loc[asg.index[-150:], ["status", "closed_at", "deal_value"]] = ["open", pd.NaT, None]
    data = CrmData(data.reps, data.leads, asg)
    line = check_history(data).label[2]
    assert line == (
        "training base rate: 14.3% of 210 labelled assignments won within 90 days, against a "
        "win rate of 20.0% of closed leads (the figure above), because 60 leads still open 90 "
        "days after assignment count as not won; 90 open leads younger than 90 days are left "
        "out until their window ends"
    )


WON_ONLY = (
    "no losses: all 60 closed assignments are won; most leads have no owner: 172 of the 216 "
    "leads created more than 90 days before the end of the export (80%) have no assignment "
    "row, so they are neither wins nor losses. Exports that keep an owner only for won leads "
    "look like this: a model trained on them learns that an assigned lead is almost always "
    "won, and gives confident win chances to leads that mostly do not convert. If a lead "
    "without an owner was lost, say so in the mapping: `unassigned_outcome: lost` under "
    "tables.assignments; otherwise export the lost leads with their owners."
)


def test_a_won_only_history_is_not_usable():
    data = history(owned="won")
    assert usability_problems(data) == [WON_ONLY]
    assert check_history(data).problems == [WON_ONLY]


def test_a_handful_of_wins_and_no_loss_is_a_small_sample_not_a_won_only_export():
    check = check_history(history(n=50, owned="won"))
    assert check.problems == []
    assert check.training[0].startswith("too few outcomes: 10 assignments with a label")


def test_almost_no_losses_is_not_usable_either():
    data = history()
    asg = data.assignments
    keep = (asg["status"] == "won") | asg["lead_id"].isin(["L1", "L2"])
    data = CrmData(data.reps, data.leads, asg[keep].reset_index(drop=True))
    assert (
        check_history(data)
        .problems[0]
        .startswith(
            "almost no losses: 60 of 62 closed assignments are won and 2 lost (3.2%); most leads "
            "have no owner: 170 of the 216 leads"
        )
    )


# --- the same checks from the command line, on a won-only export ------------------------------


def won_only_export(folder, n: int = 300):
    """A CRM's lead list (``n`` leads, a multiple of 3, created a day apart) and its list of won
    deals: only won leads have an owner."""
    folder.mkdir(parents=True, exist_ok=True)
    created = pd.date_range("2023-01-01", periods=n, freq="D")
    pd.DataFrame(
        {
            "Lead ID": [f"L{i}" for i in range(n)],
            "Created": created.strftime("%Y-%m-%d %H:%M"),
            "Source": ["web", "event", "referral"] * (n // 3),
        }
    ).to_csv(folder / "leads.csv", index=False)
    won = [i for i in range(n) if i % 10 == 0]
    pd.DataFrame(
        {
            "Lead ID": [f"L{i}" for i in won],
            "Owner": [["Ann", "Bo", "Cy"][i % 3] for i in won],
            "Won On": (created[won] + pd.Timedelta(days=20)).strftime("%Y-%m-%d"),
            "Amount": "1200",
        }
    ).to_csv(folder / "won_deals.csv", index=False)
    return folder


def won_only_mapping(path, unassigned_outcome: str | None = None):
    outcome = f"    unassigned_outcome: {unassigned_outcome}\n" if unassigned_outcome else ""
    path.write_text(
        "tables:\n"
        "  leads:\n"
        "    file: leads.csv\n"
        "    columns: {lead_id: Lead ID, created_at: Created, source: Source}\n"
        "  assignments:\n"
        "    file: won_deals.csv\n"
        "    columns: {lead_id: Lead ID, rep_id: Owner, closed_at: Won On, deal_value: Amount}\n"
        "    defaults: {status: won}\n" + outcome + "  reps:\n"
        "    file: won_deals.csv\n"
        "    distinct: true\n"
        "    columns: {rep_id: Owner}\n"
    )
    return path


def test_validate_refuses_a_won_only_export_then_accepts_it_with_unassigned_outcome(tmp_path):
    export = won_only_export(tmp_path / "export")
    refused = runner.invoke(
        app, ["validate", str(export), "--mapping", str(won_only_mapping(tmp_path / "m.yaml"))]
    )
    assert refused.exit_code == 2, refused.output
    text = " ".join(refused.output.split())
    assert (
        "not usable: no losses: all 30 closed assignments are won; most leads have no owner" in text
    )
    assert "`unassigned_outcome: lost` under tables.assignments" in text

    mapping = won_only_mapping(tmp_path / "lost.yaml", "lost")
    accepted = runner.invoke(app, ["validate", str(export), "--mapping", str(mapping)])
    assert accepted.exit_code == 0, accepted.output
    text = " ".join(accepted.output.split())
    assert (
        "270 leads without an owner taken as lost (unassigned_outcome: lost): each is a lost "
        "outcome with no rep, assigned at its created_at and closed on the export date 2023-11-07"
    ) in text
    assert re.search(r"closed with no rep\s+│\s+270 │", accepted.output)
    assert re.search(r"win rate of closed\s+│\s+0.100 │", accepted.output)
    # Honest, and not enough for a lead x rep model (the reps' own records hold wins only), but
    # every outcome together trains the lead-only model: train would not stop.
    assert (
        "lead-only model: the 270 outcomes with no rep are not lead x rep pairs, and the reps' "
        "own outcomes are too few or one-sided to tell reps apart, so `leadmatch train` fits the "
        "lead-only model on all 300 labelled outcomes (the win chance of a lead whoever works it; "
        "matching then only balances value and load)"
    ) in text
    assert "training base rate: 10.0% of 300 labelled assignments" in text
    assert "train would stop" not in text
    assert "OK: the data meets the contract and is usable." in text


def test_describe_counts_outcomes_with_no_rep():
    data = history(owned="won")
    asg = pd.concat(
        [
            data.assignments,
            pd.DataFrame(
                {
                    "lead_id": ["L1", "L2"],
                    "rep_id": pd.Series([None, None], dtype="str"),
                    "assigned_at": pd.Timestamp("2023-01-05"),
                    "status": "lost",
                    "closed_at": pd.Timestamp("2023-02-01"),
                }
            ),
        ],
        ignore_index=True,
    )
    summary = describe_crm(validate_crm(CrmData(data.reps, data.leads, asg)))
    assert summary["closed with no rep"] == 2
    assert summary["reps with history"] == 3


@pytest.mark.slow
def test_train_refuses_what_validate_refuses_before_any_work(prefect_harness, tmp_path, tracking):
    from mlflow.tracking import MlflowClient

    from pipelines.config import LeadmatchConfig
    from pipelines.io import write_data_folder
    from pipelines.tracking import configure_mlflow
    from pipelines.train import TrainingDataError, train_flow

    folder = tmp_path / "won-only"
    write_data_folder(history(owned="won"), folder)
    with pytest.raises(TrainingDataError) as err:
        train_flow(folder, LeadmatchConfig(tracking=tracking))
    assert str(err.value).splitlines() == [
        "this history cannot train a model:",
        "  - " + WON_ONLY,
        "  - too few outcomes: 60 assignments with a label (won within 90 days, or not won by "
        "then), the model needs at least 200 (model.min_outcomes)",
        "  - too few non-wins: 60 labelled assignments were won within 90 days and 0 were not; "
        "the model needs at least 20 of each (model.min_outcomes_per_class)",
    ]
    configure_mlflow(tracking)
    assert MlflowClient().search_registered_models() == []


def test_most_leads_without_an_owner_is_not_usable_even_with_losses():
    data = history()
    asg = data.assignments
    # Only every third lead has an owner (won or lost as before); the others have no row.
    data = CrmData(data.reps, data.leads, asg[asg.index % 3 == 0].reset_index(drop=True))
    assert check_history(data).problems == [
        "most leads have no owner: 145 of the 218 leads created more than 90 days before the "
        "end of the export (67%) have no assignment row, so they are neither wins nor losses. "
        "The outcomes left are those of the leads that reached an owner (20% won), so a model "
        "trained on them gives every new lead the win chances of a lead someone already took "
        "on. If a lead without an owner was lost, say so in the mapping: `unassigned_outcome: "
        "lost` under tables.assignments; otherwise export the lost leads with their owners."
    ]


def test_never_contacted_is_counted_only_where_the_export_has_contact_dates():
    data = history(n=20)
    asg = data.assignments.copy()
    asg.loc[asg.index[-3:], ["status", "closed_at", "deal_value"]] = ["open", pd.NaT, None]
    asg.loc[asg.index[-1], "first_contact_at"] = pd.NaT
    with_dates = validate_crm(CrmData(data.reps, data.leads, asg))
    assert describe_crm(with_dates)["open, never contacted"] == 1

    asg["first_contact_at"] = pd.NaT
    without = validate_crm(CrmData(data.reps, data.leads, asg))
    assert describe_crm(without)["open, never contacted"] == "unknown (no first-contact dates)"
