"""The data contract: every kind of bad input is reported, with the row, column and what to do."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from features.schemas import CrmValidationError, Origin, check_crm, parse_dates, validate_crm
from features.timestamps import FORMS
from tests.conftest import tiny_crm


def test_valid_data_is_coerced_to_typed_columns(tiny):
    data = validate_crm(tiny)
    assert data.reps["active"].tolist() == [True, True, False]
    assert data.reps["daily_capacity"].dtype == "Int64"
    assert data.leads["created_at"].dtype == "datetime64[ns]"
    assert data.leads.loc[2, "created_at"] == pd.Timestamp("2024-03-02")
    assert pd.isna(data.leads.loc[3, "expected_value"])
    assert data.assignments["deal_value"].tolist()[:2] == [900.0, 0.0]


def test_validation_does_not_mutate_its_input(tiny):
    before = tiny.reps.copy()
    validate_crm(tiny)
    pd.testing.assert_frame_equal(tiny.reps, before)


def _with(table: str, row: int, column: str, value: object):
    data = tiny_crm()
    frame = getattr(data, table).copy()
    frame.loc[row, column] = value
    return replace(data, **{table: frame})


DATE = f"a date or date-time ({FORMS})"
UNIQUE = "a unique value (this one appears more than once)"

# (table, row, column, value written there, column reported, the exact expected text)
BAD_CELLS = [
    ("reps", 1, "rep_id", "R1", "rep_id", UNIQUE),
    ("reps", 0, "hire_date", "someday", "hire_date", DATE),
    ("reps", 1, "attributes_since", "last spring", "attributes_since", DATE),
    ("reps", 2, "daily_capacity", "-2", "daily_capacity", "a number >= 0"),
    ("reps", 2, "daily_capacity", "three", "daily_capacity", "a whole number"),
    ("reps", 2, "daily_capacity", "2.5", "daily_capacity", "a whole number"),
    ("reps", 0, "active", "maybe", "active", "true/false (also yes/no, 1/0)"),
    ("leads", 4, "lead_id", "L1", "lead_id", UNIQUE),
    ("leads", 1, "created_at", None, "created_at", "a value (it must not be empty)"),
    ("leads", 1, "created_at", "2024-02-30", "created_at", DATE),
    ("leads", 1, "created_at", "2024-03-01 09:00 PST", "created_at", DATE),
    ("leads", 0, "expected_value", "-10", "expected_value", "a number >= 0"),
    ("assignments", 2, "status", "pending", "status", "one of ['open', 'won', 'lost']"),
    (
        "assignments",
        0,
        "closed_at",
        "2024-02-01",
        "closed_at",
        "closed_at on or after the lead's created_at (closed_at 2024-02-01 is before "
        "created_at 2024-03-01 09:00, leads.csv line 2)",
    ),
    (
        "assignments",
        0,
        "assigned_at",
        "2024-02-28 17:00",
        "assigned_at",
        "assigned_at on or after the lead's created_at (assigned_at 2024-02-28 17:00 is before "
        "created_at 2024-03-01 09:00, leads.csv line 2)",
    ),
    (
        "assignments",
        2,
        "closed_at",
        "2024-03-09",
        "closed_at",
        "no close date while the status is open",
    ),
    (
        "assignments",
        0,
        "deal_value",
        None,
        "deal_value",
        "a deal value >= 0 for a won lead (status is won)",
    ),
    ("assignments", 1, "deal_value", "-1", "deal_value", "a number >= 0"),
    ("assignments", 0, "rep_id", "R9", "rep_id", "a rep_id that exists in reps"),
    ("assignments", 3, "lead_id", "L404", "lead_id", "a lead_id that exists in leads"),
    (
        "assignments",
        3,
        "lead_id",
        "L3",
        "lead_id",
        "at most one open owner per lead (L3 is also open on line 4)",
    ),
    (
        "assignments",
        2,
        "first_contact_at",
        "2024-03-01",
        "first_contact_at",
        "first_contact_at on or after assigned_at (first_contact_at 2024-03-01 is before "
        "assigned_at 2024-03-02)",
    ),
]


@pytest.mark.parametrize(("table", "row", "column", "value", "where", "expected"), BAD_CELLS)
def test_each_bad_cell_is_reported_with_row_column_and_expectation(
    table, row, column, value, where, expected
):
    with pytest.raises(CrmValidationError, match=re.escape(expected)) as info:
        validate_crm(_with(table, row, column, value))
    problems = info.value.problems
    hit = problems[(problems["table"] == table) & (problems["column"] == where)]
    assert row in hit["row"].tolist(), problems
    assert expected in hit["expected"].tolist()


NOT_FINITE = "a finite number (not inf or NaN)"


@pytest.mark.parametrize("text", ["inf", "-inf", "Infinity", "1e309", "NaN", "nan"])
@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("leads", "expected_value"),
        ("leads", "company_size"),
        ("leads", "x_score"),
        ("assignments", "deal_value"),
        ("assignments", "propensity"),
        ("reps", "daily_capacity"),
        ("availability", "capacity"),
    ],
)
def test_infinite_and_nan_numbers_are_refused_with_their_row(table, column, text):
    data = tiny_crm()
    data = replace(
        data,
        availability=pd.DataFrame(
            {"rep_id": ["R1", "R2"], "date": ["2024-03-04"] * 2, "available": ["yes", "no"]}
        ),
    )
    frame = getattr(data, table).copy()
    frame[column] = ["0.5"] * len(frame) if column == "propensity" else ["1"] * len(frame)
    frame.loc[1, column] = text
    with pytest.raises(CrmValidationError, match=re.escape(NOT_FINITE)) as info:
        validate_crm(replace(data, **{table: frame}))
    problems = info.value.problems
    assert problems[["table", "row", "column", "value", "expected"]].values.tolist() == [
        [table, 1, column, text, NOT_FINITE]
    ]


def test_numbers_written_as_numbers_are_checked_too(tiny):
    leads = tiny.leads.assign(expected_value=[1.0, np.inf, 3.0, np.nan, 5.0])
    with pytest.raises(CrmValidationError, match=re.escape(NOT_FINITE)) as info:
        validate_crm(replace(tiny, leads=leads))
    assert info.value.problems["row"].tolist() == [1]


def test_a_text_x_column_keeps_nan_as_a_category(tiny):
    data = validate_crm(replace(tiny, leads=tiny.leads.assign(x_tier=["a", "nan", "b", "a", "c"])))
    assert data.leads["x_tier"].tolist() == ["a", "nan", "b", "a", "c"]


def test_every_problem_is_reported_in_one_run():
    data = _with("reps", 0, "hire_date", "someday")
    data = replace(data, leads=data.leads.assign(expected_value=["-1", "1", "2", "3", "-4"]))
    data = replace(
        data, assignments=data.assignments.assign(status=["won", "lost", "open", "pending"])
    )
    with pytest.raises(CrmValidationError, match="4 problems") as info:
        validate_crm(data)
    assert sorted(info.value.problems["table"]) == ["assignments", "leads", "leads", "reps"]


def test_a_missing_column_is_named(tiny):
    data = replace(tiny, leads=tiny.leads.drop(columns="created_at"))
    with pytest.raises(CrmValidationError, match="the column to be present") as info:
        validate_crm(data)
    assert "created_at" in info.value.problems["column"].tolist()


def test_availability_must_name_known_reps(tiny):
    availability = pd.DataFrame(
        {"rep_id": ["R1", "R7"], "date": ["2024-03-04"] * 2, "available": ["no", "no"]}
    )
    with pytest.raises(CrmValidationError, match="a rep_id that exists in reps"):
        validate_crm(replace(tiny, availability=availability))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01", "2024-03-01 00:00"),
        ("2024-03-01T14:30:00", "2024-03-01 14:30"),
        ("2024/3/1 14:30", "2024-03-01 14:30"),
        ("15/03/2024", "2024-03-15 00:00"),
        ("03/15/2024", "2024-03-15 00:00"),
        ("01/01/2024", "2024-01-01 00:00"),
        ("2024年3月1日", "2024-03-01 00:00"),
        ("45352", "2024-03-01 00:00"),
    ],
)
def test_common_date_forms_parse(text, expected):
    assert parse_dates(pd.Series([text])).iloc[0] == pd.Timestamp(expected)


def test_unparseable_dates_become_missing_not_wrong():
    assert parse_dates(pd.Series(["not a date", None])).isna().all()


# --- time order and the export's end -----------------------------------------------------------


def test_a_close_before_the_assignment_on_another_day_is_refused(tiny):
    asg = tiny.assignments.copy()
    asg.loc[1, ["assigned_at", "closed_at"]] = ["2024-03-05", "2024-03-03 18:00"]
    message = (
        "closed_at on or after assigned_at (closed_at 2024-03-03 18:00 is before assigned_at "
        "2024-03-05)"
    )
    with pytest.raises(CrmValidationError, match=re.escape(message)) as info:
        validate_crm(replace(tiny, assignments=asg))
    assert info.value.problems[["row", "column"]].values.tolist() == [[1, "closed_at"]]


def test_an_inversion_within_a_day_is_repaired_and_reported(tiny):
    # L1 created 09:00 and assigned "2024-03-01" (a date without a time, so midnight); L2
    # assigned 11:00 and closed "2024-03-01" (its day only); L3 contacted before its assignment
    # on the same day.
    asg = tiny.assignments.copy()
    asg.loc[0, "assigned_at"] = "2024-03-01"
    asg.loc[1, "closed_at"] = "2024-03-01"
    asg.loc[2, ["assigned_at", "first_contact_at"]] = ["2024-03-02 15:00", "2024-03-02 14:59"]
    checked = check_crm(replace(tiny, assignments=asg))
    out = checked.data.assignments
    assert out.loc[0, "assigned_at"] == pd.Timestamp("2024-03-01 09:00")
    assert out.loc[1, "closed_at"] == pd.Timestamp("2024-03-01 11:00")
    assert out.loc[2, "first_contact_at"] == pd.Timestamp("2024-03-02 15:00")
    assert checked.repairs == [
        "assignments.assigned_at: 1 row earlier than the lead's created_at on the same day (a "
        "date without a time, or clocks a little apart): set to the lead's created_at",
        "assignments.closed_at: 1 row earlier than assigned_at on the same day (a date without "
        "a time, or clocks a little apart): set to assigned_at",
        "assignments.first_contact_at: 1 row earlier than assigned_at on the same day (a date "
        "without a time, or clocks a little apart): set to assigned_at",
    ]


def _twelve_leads() -> pd.DataFrame:
    """tiny's reps with twelve leads over March 2024, each assigned at creation; six closed."""
    data = tiny_crm()
    created = [f"2024-03-{d:02d} 10:00" for d in range(1, 13)]
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(1, 13)],
            "created_at": created,
            "source": "web",
            "industry": "retail",
            "region": "EU",
            "product": "basic",
        }
    )
    status = ["won", "lost", "won", "lost", "won", "lost"] + ["open"] * 6
    asg = pd.DataFrame(
        {
            "lead_id": leads["lead_id"],
            "rep_id": ["R1", "R2"] * 6,
            "assigned_at": created,
            "first_contact_at": None,
            "status": status,
            "closed_at": [f"2024-03-{d:02d}" for d in range(15, 21)] + [None] * 6,
            "deal_value": ["100", None, "200", None, "300", None] + [None] * 6,
        }
    )
    return replace(data, leads=leads, assignments=asg)


def test_a_date_after_the_exports_end_is_refused_and_does_not_move_it():
    data = _twelve_leads()
    asg = data.assignments.copy()
    asg.loc[2, "closed_at"] = "2031-05-01"
    message = (
        "a date no later than the export's end (closed_at 2031-05-01 is more than 31 days "
        "after the export's last date, 2024-03-20)"
    )
    with pytest.raises(CrmValidationError, match=re.escape(message)) as info:
        validate_crm(replace(data, assignments=asg))
    assert info.value.problems[["table", "row", "column"]].values.tolist() == [
        ["assignments", 2, "closed_at"]
    ]
    leads = data.leads.copy()
    leads.loc[11, "created_at"] = "2042-01-01"
    with pytest.raises(CrmValidationError, match="created_at 2042-01-01 is more than 31 days"):
        validate_crm(replace(data, leads=leads))


def test_a_late_close_within_the_tolerance_is_history(tiny):
    data = _twelve_leads()
    asg = data.assignments.copy()
    asg.loc[2, "closed_at"] = "2024-04-19"  # 30 days after the other latest date
    assert validate_crm(replace(data, assignments=asg)).assignments.loc[2, "closed_at"] == (
        pd.Timestamp("2024-04-19")
    )


# --- a column wrong as a whole ---------------------------------------------------------------


def test_a_value_missing_on_every_won_row_is_one_sentence():
    data = _twelve_leads()
    asg = data.assignments.assign(
        status=["won"] * 6 + ["open"] * 6, deal_value=None, closed_at=data.assignments["closed_at"]
    )
    with pytest.raises(CrmValidationError) as info:
        validate_crm(replace(data, assignments=asg))
    assert info.value.columns == [
        "deal_value is missing on all 6 won rows: fill it in assignments.csv"
    ]
    assert info.value.problems.empty
    mapped = {"assignments": Origin("deals.csv", unit="row", mapped=True)}
    with pytest.raises(CrmValidationError) as info:
        validate_crm(replace(data, assignments=asg), origins=mapped)
    assert info.value.columns == [
        "deal_value is missing on all 6 won rows: map it, or add `defaults: {deal_value: 0}`"
    ]


def test_a_value_missing_on_some_won_rows_is_listed_row_by_row():
    data = _twelve_leads()
    asg = data.assignments.copy()
    asg.loc[0, "deal_value"] = None
    with pytest.raises(CrmValidationError) as info:
        validate_crm(replace(data, assignments=asg))
    assert info.value.columns == []
    assert info.value.problems[["row", "column", "expected"]].values.tolist() == [
        [0, "deal_value", "a deal value >= 0 for a won lead (status is won)"]
    ]


def test_the_same_bad_value_on_every_row_is_one_sentence():
    data = _twelve_leads()
    asg = data.assignments.assign(status="Closed Won")
    with pytest.raises(CrmValidationError) as info:
        validate_crm(replace(data, assignments=asg))
    assert info.value.columns == [
        "assignments.csv status: all 12 values have the same problem, e.g. line 2 has "
        "Closed Won, expected one of ['open', 'won', 'lost']"
    ]


def test_a_long_value_is_cut_in_messages(tiny):
    cell = "2024-03-01" + "x" * 5000
    with pytest.raises(CrmValidationError) as info:
        validate_crm(_with("leads", 0, "created_at", cell))
    assert info.value.problems.loc[0, "value"] == cell[:80] + "…"
    assert len(str(info.value)) < 1000
