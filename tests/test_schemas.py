"""The data contract: every kind of bad input is reported, with the row, column and what to do."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from features.schemas import CrmValidationError, parse_dates, validate_crm
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


BAD_CELLS = [
    ("reps", 1, "rep_id", "R1", "rep_id", "a unique value"),
    ("reps", 0, "hire_date", "someday", "hire_date", "a date or date-time"),
    ("reps", 2, "daily_capacity", "-2", "daily_capacity", "a number >= 0"),
    ("reps", 2, "daily_capacity", "three", "daily_capacity", "a whole number"),
    ("reps", 0, "active", "maybe", "active", "true/false"),
    ("leads", 4, "lead_id", "L1", "lead_id", "a unique value"),
    ("leads", 1, "created_at", None, "created_at", "must not be empty"),
    ("leads", 0, "expected_value", "-10", "expected_value", "a number >= 0"),
    ("assignments", 2, "status", "pending", "status", "one of"),
    ("assignments", 0, "closed_at", "2024-02-01", "closed_at", "on or after assigned_at"),
    (
        "assignments",
        2,
        "closed_at",
        "2024-03-09",
        "closed_at",
        "no close date while the status is open",
    ),
    ("assignments", 0, "deal_value", None, "deal_value", "a deal value >= 0 for a won lead"),
    ("assignments", 1, "deal_value", "-1", "deal_value", "a number >= 0"),
    ("assignments", 0, "rep_id", "R9", "rep_id", "a rep_id that exists in reps"),
    ("assignments", 3, "lead_id", "L404", "lead_id", "a lead_id that exists in leads"),
    ("assignments", 3, "lead_id", "L3", "lead_id", "at most one open owner per lead"),
    (
        "assignments",
        2,
        "first_contact_at",
        "2024-03-01",
        "first_contact_at",
        "first contact on or after",
    ),
]


@pytest.mark.parametrize(("table", "row", "column", "value", "where", "expected"), BAD_CELLS)
def test_each_bad_cell_is_reported_with_row_column_and_expectation(
    table, row, column, value, where, expected
):
    with pytest.raises(CrmValidationError, match=expected) as info:
        validate_crm(_with(table, row, column, value))
    problems = info.value.problems
    hit = problems[(problems["table"] == table) & (problems["column"] == where)]
    assert row in hit["row"].tolist(), problems
    assert hit["expected"].str.contains(expected, regex=False).any()


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
        ("03/01/2024", "2024-03-01 00:00"),
        ("2024年3月1日", "2024-03-01 00:00"),
        ("45352", "2024-03-01 00:00"),
    ],
)
def test_common_date_forms_parse(text, expected):
    assert parse_dates(pd.Series([text])).iloc[0] == pd.Timestamp(expected)


def test_unparseable_dates_become_missing_not_wrong():
    assert parse_dates(pd.Series(["not a date", None])).isna().all()
