"""What every stage takes from one place: a rep's room today (matching.eligibility.effective_capacity)
and what a lead is worth (matching.day.lead_values)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matching.day import lead_values
from matching.eligibility import effective_capacity


def _reps(**columns) -> pd.DataFrame:
    base = {
        "capacity": [5],
        "active": [True],
        "available": [True],
        "open_load": [0],
    }
    return pd.DataFrame(base | columns)


@pytest.mark.parametrize(
    ("columns", "room"),
    [
        ({}, 5),
        ({"active": [False]}, 0),
        ({"available": [False]}, 0),
        ({"capacity": [0]}, 0),
        ({"max_open_leads": pd.array([None], dtype="Int64"), "open_load": [100]}, 5),
        ({"max_open_leads": pd.array([10], dtype="Int64"), "open_load": [7]}, 3),
        ({"max_open_leads": pd.array([10], dtype="Int64"), "open_load": [12]}, 0),
        # an expected load (a backtest's): 2.5 leads of room are 2 whole leads
        ({"max_open_leads": pd.array([10], dtype="Int64"), "open_load": [7.5]}, 2),
        ({"max_open_leads": pd.array([12], dtype="Int64"), "open_load": [11.2]}, 0),
        ({"max_open_leads": pd.array([100], dtype="Int64"), "open_load": [3.9]}, 5),
    ],
)
def test_a_reps_room_today(columns, room):
    got = effective_capacity(_reps(**columns))
    assert got.dtype == np.int64
    assert got.tolist() == [room]


def test_room_is_counted_rep_by_rep():
    reps = pd.DataFrame(
        {
            "capacity": [5, 5, 5, 4],
            "active": [True, True, True, False],
            "available": [True, True, False, True],
            "open_load": [9.0, 7.5, 0.0, 0.0],
            "max_open_leads": pd.array([None, 10, 12, 10], dtype="Int64"),
        }
    )
    assert effective_capacity(reps).tolist() == [5, 2, 0, 0]


def test_every_lead_is_worth_one_when_conversions_are_the_goal():
    leads = pd.DataFrame({"lead_id": ["L1", "L2"]})
    assert lead_values(leads, "conversions").tolist() == [1.0, 1.0]


def test_missing_expected_values_take_the_median_of_the_known_ones_and_say_so():
    leads = pd.DataFrame({"expected_value": [100.0, None, 300.0, 1000.0, np.nan]})
    notes: list[str] = []
    assert lead_values(leads, "expected_value", notes).tolist() == [100, 300, 300, 1000, 300]
    assert notes == ["expected_value missing for 2 lead(s): used the median 300"]
    nullable = leads.astype({"expected_value": "Float64"})
    assert lead_values(nullable, "expected_value").tolist() == [100, 300, 300, 1000, 300]
    assert lead_values(leads.iloc[:0], "expected_value").tolist() == []


@pytest.mark.parametrize(
    ("leads", "message"),
    [
        (
            pd.DataFrame({"lead_id": ["L1"]}),
            "leads: objective 'expected_value' needs an expected_value column",
        ),
        (
            pd.DataFrame({"expected_value": [np.nan, np.nan]}),
            "leads: objective 'expected_value' but every expected_value is missing",
        ),
    ],
)
def test_a_revenue_objective_without_values_is_refused(leads, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        lead_values(leads, "expected_value")
