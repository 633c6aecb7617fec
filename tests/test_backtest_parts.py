"""The backtest's building blocks on hand-built frames: pair features at each pair's own time,
open-load survival, effective capacity, hard-violation counting, the policy table's figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.pairs import build_pairs_at, build_scoring_pairs
from features.schemas import validate_crm
from pipelines.backtest import OpenSurvival, effective_capacity, hard_violations
from tests.conftest import tiny_crm


@pytest.fixture(scope="module")
def tiny_valid():
    return validate_crm(tiny_crm())


def test_pairs_at_their_own_times_equal_scoring_each_time_separately(tiny_valid):
    pairs = pd.DataFrame(
        {
            "lead_id": ["L5", "L1", "L5", "L2"],
            "rep_id": ["R1", "R2", "R2", "R1"],
            "at": pd.to_datetime(["2024-03-25", "2024-03-02", "2024-03-02", "2024-03-25"]),
        }
    )
    got = build_pairs_at(tiny_valid, pairs)
    assert (
        got[["lead_id", "rep_id"]].to_numpy().tolist()
        == pairs[["lead_id", "rep_id"]].to_numpy().tolist()
    )
    for at, group in pairs.groupby("at"):
        expected = build_scoring_pairs(
            tiny_valid,
            tiny_valid.leads,
            as_of=at,
            candidates=group[["lead_id", "rep_id"]],
        )
        pd.testing.assert_frame_equal(
            got.loc[group.index].reset_index(drop=True), expected.reset_index(drop=True)
        )


def test_a_rep_win_record_only_counts_outcomes_before_each_pairs_time(tiny_valid):
    # R1 won L1 on 2024-03-20: a pair before that date has no outcome for R1, a later one has.
    pairs = pd.DataFrame(
        {
            "lead_id": ["L5", "L5"],
            "rep_id": ["R1", "R1"],
            "at": pd.to_datetime(["2024-03-19", "2024-03-21"]),
        }
    )
    got = build_pairs_at(tiny_valid, pairs)
    assert got["rep_outcomes"].tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (pd.DataFrame({"lead_id": ["L1"], "rep_id": ["R1"]}), r"lack column\(s\) \['at'\]"),
        (
            pd.DataFrame({"lead_id": ["L1"], "rep_id": ["R1"], "at": [pd.NaT]}),
            r"1 pair\(s\) have no time 'at'",
        ),
        (
            pd.DataFrame({"lead_id": ["L9"], "rep_id": ["R1"], "at": [pd.Timestamp("2024-04-01")]}),
            r"missing from the leads table, e.g. \['L9'\]",
        ),
    ],
)
def test_pairs_at_refuse_bad_pairs(tiny_valid, pairs, message):
    with pytest.raises(ValueError, match=message):
        build_pairs_at(tiny_valid, pairs)


def test_open_survival_is_the_share_of_history_leads_still_open_at_an_age():
    truth = pd.DataFrame(
        {
            "assigned_at": pd.to_datetime(["2024-01-01"] * 4),
            "closes_at": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-03", "2024-01-11"]),
        }
    )
    survival = OpenSurvival.of(truth)
    assert [survival(a) for a in (0.5, 1, 2, 5, 10, 11)] == [1.0, 0.75, 0.25, 0.25, 0.0, 0.0]


def test_effective_capacity_keeps_the_expected_open_load_under_the_cap():
    reps = pd.DataFrame(
        {
            "capacity": [5, 5, 5, 0],
            "max_open_leads": pd.array([None, 10, 12, 10], dtype="Int64"),
        }
    )
    got = effective_capacity(reps, np.array([100.0, 7.5, 11.2, 0.0]))
    # no cap; 2.5 leads of room -> 2; 0.8 -> 0; no capacity today
    assert got.tolist() == [5, 2, 0, 0]


def test_hard_violations_count_each_placement_beyond_capacity():
    assert hard_violations(np.array([0, 0, 1, 2, 2, 2]), np.array([2, 1, 1])) == 2
    assert hard_violations(np.array([], dtype=int), np.array([0, 0])) == 0
