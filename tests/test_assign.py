"""Day matching from frames: hard rules, holds with reasons, baselines, and the optimum."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from matching.assign import match_day
from matching.config import MatchingConfig

NO_FAIRNESS = MatchingConfig().model_copy(update={"fairness": MatchingConfig().fairness.disabled()})


def _day(p: list[list[float]], capacity: list[int], **lead_columns):
    n, r = len(p), len(capacity)
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "created_at": pd.date_range("2025-01-01 08:00", periods=n, freq="h"),
            "expected_value": 1.0,
            **lead_columns,
        }
    )
    reps = pd.DataFrame(
        {
            "rep_id": [f"R{j}" for j in range(r)],
            "name": [f"Rep {j}" for j in range(r)],
            "skills": "",
            "languages": "",
            "region": "EU",
            "active": True,
            "available": [c > 0 for c in capacity],
            "capacity": capacity,
            "open_load": 0,
            "max_open_leads": pd.array([pd.NA] * r, dtype="Int64"),
            "tenure_days": 400.0,
        }
    )
    candidates = pd.DataFrame(
        [(f"L{i}", f"R{j}", p[i][j]) for i in range(n) for j in range(r)],
        columns=["lead_id", "rep_id", "p_win"],
    )
    return candidates, leads, reps


def _brute_force(p: np.ndarray, capacity: list[int]) -> float:
    best = 0.0
    for choice in itertools.product(range(len(capacity)), repeat=len(p)):
        if all(choice.count(j) <= c for j, c in enumerate(capacity)):
            best = max(best, sum(p[i][j] for i, j in enumerate(choice)))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_capacity_only_optimum_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.6, size=(6, 3))
    capacity = [2, 2, 2]
    result = match_day(*_day(p.tolist(), capacity), NO_FAIRNESS, policy="no_fairness")
    assert result.assignments["p_win"].sum() == pytest.approx(_brute_force(p, capacity), abs=1e-6)
    greedy = match_day(*_day(p.tolist(), capacity), NO_FAIRNESS, policy="greedy")
    assert greedy.assignments["p_win"].sum() <= result.assignments["p_win"].sum() + 1e-9


def test_short_capacity_holds_leads_with_a_reason_and_never_overfills():
    result = match_day(*_day([[0.3, 0.2]] * 5, [2, 1]), MatchingConfig())
    asg = result.assignments
    assert (asg["action"] == "hold").sum() == 2
    assert asg.loc[asg["action"] == "hold", "reason"].str.contains("at capacity").all()
    assert asg["rep_id"].value_counts().to_dict() == {"R0": 2, "R1": 1}
    assert result.diagnostics["hard_violations"] == 0


def test_reclaimed_lead_never_returns_to_the_rep_who_dropped_it():
    candidates, leads, reps = _day([[0.9, 0.1]], [1, 1])
    leads = leads.assign(previous_rep_id=["R0"], days_without_contact=[4.0])
    row = match_day(candidates, leads, reps, MatchingConfig()).assignments.iloc[0]
    assert (row["action"], row["rep_id"]) == ("reassign", "R1")
    assert row["reason"].startswith("reclaimed from R0 after 4 days without contact")


def test_account_owner_gets_the_lead_when_working():
    candidates, leads, reps = _day([[0.9, 0.1]], [1, 1], account_id=["A1"])
    owners = pd.Series({"A1": "R1"})
    row = match_day(
        candidates, leads, reps, MatchingConfig(), account_owners=owners
    ).assignments.iloc[0]
    assert row["rep_id"] == "R1" and row["reason_code"] == "account"


def test_without_rep_signal_the_reason_says_it_only_balances():
    result = match_day(*_day([[0.5, 0.1], [0.5, 0.1]], [1, 1]), MatchingConfig(), rep_signal=False)
    assert set(result.assignments["reason_code"]) == {"balance"}
    assert result.assignments["rep_id"].tolist().count("R0") == 1


def test_round_robin_rotates_in_arrival_order():
    result = match_day(
        *_day([[0.1, 0.9, 0.5]] * 4, [5, 5, 5]), MatchingConfig(), policy="round_robin"
    )
    assert result.assignments["rep_id"].tolist() == ["R0", "R1", "R2", "R0"]


@pytest.mark.parametrize(
    ("bad", "message"), [(np.nan, "p_win must be a probability"), (1.5, "has 1.5")]
)
def test_bad_probabilities_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        match_day(*_day([[bad, 0.2]], [1, 1]), MatchingConfig())


def test_value_share_band_spreads_value_when_fairness_is_on():
    # R0 is best for every lead; without fairness it takes all it can hold.
    p = [[0.6, 0.3, 0.3]] * 6
    unfair = match_day(*_day(p, [6, 6, 6]), NO_FAIRNESS, policy="no_fairness")
    fair = match_day(*_day(p, [6, 6, 6]), MatchingConfig())
    assert unfair.assignments["rep_id"].eq("R0").sum() == 6
    assert fair.assignments["rep_id"].eq("R0").sum() < 6
    assert fair.assignments["p_win"].sum() < unfair.assignments["p_win"].sum()
