"""The rolling fairness window: one type for the nightly run (fed from the CRM) and the backtest
(fed from each replayed run), and the worth a lead counts for in it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.daily import given_in_window, working_days_before
from features.schemas import CrmData, validate_crm
from matching import MatchingConfig, match
from matching.config import FairnessConstraints
from matching.fairness import RollingWindow, lead_worth
from matching.nightly import crm_window
from tests.day_frames import day_frames

RUN = pd.Timestamp("2024-03-11")  # a Monday: the window is Mon 03-04 .. Sun 03-10


def history_of(window: RollingWindow, day: pd.Timestamp = RUN) -> dict[str, tuple]:
    totals = window.history(day)
    assert totals is not None
    assert totals.columns.tolist() == [
        "rep_id",
        "value_received",
        "top_tier_received",
        "capacity_days",
    ]
    return {
        row.rep_id: (row.value_received, row.top_tier_received, row.capacity_days)
        for row in totals.itertuples(index=False)
    }


def test_the_window_adds_up_the_days_before_the_run_and_nothing_else():
    given = pd.DataFrame(
        {
            "at": pd.to_datetime(
                [
                    "2024-03-03 23:59",  # 8 days before: outside
                    "2024-03-04 00:00",  # first day of the window
                    "2024-03-08 15:00",
                    "2024-03-10 18:00",  # a Sunday: still given
                    "2024-03-11 09:00",  # the run date itself: not history
                ]
            ),
            "rep_id": ["R1", "R1", "R2", "R2", "R1"],
            "worth": [5.0, 0.5, 0.25, 2.0, 9.0],
            "top_tier": [True, False, False, True, True],
        }
    )
    capacity = pd.DataFrame(
        {
            "day": [d for d in working_days_before(RUN, 7) for _ in range(2)],
            "rep_id": ["R1", "R2"] * 5,
            "capacity": [3, 2] * 5,
        }
    )
    window = RollingWindow.of(7, given, capacity)
    assert history_of(window) == {"R1": (0.5, 0.0, 15.0), "R2": (2.25, 1.0, 10.0)}
    # A day later the first Monday has left the window and the run date's lead is in it; an
    # empty window has no history.
    assert history_of(window, RUN + pd.Timedelta(days=1)) == {
        "R1": (9.0, 1.0, 12.0),
        "R2": (2.25, 1.0, 8.0),
    }
    assert RollingWindow.empty(7).history(RUN) is None
    assert RollingWindow.of(0, given, capacity).history(RUN) is None


def test_working_days_of_the_window_skip_the_weekend():
    assert [f"{d:%a %d}" for d in working_days_before(RUN, 7)] == [
        "Mon 04",
        "Tue 05",
        "Wed 06",
        "Thu 07",
        "Fri 08",
    ]
    days = working_days_before(RUN, 7, ("Sun", "Mon", "Tue", "Wed", "Thu"))
    assert [f"{d:%a}" for d in days] == ["Mon", "Tue", "Wed", "Thu", "Sun"]


def crm_with_overrides() -> CrmData:
    """The plan of 03-05 gave L1 and L2 to R1 and L3 to R2. The CRM shows what happened: the
    manager gave L1 to R2 instead, nobody acted on L2, L3 went to R2 as planned and was moved
    to R1 two days later; L4 was given to R1 long before the window."""
    reps = pd.DataFrame(
        {
            "rep_id": ["R1", "R2"],
            "name": ["Ana", "Bo"],
            "team": "north",
            "region": "EU",
            "hire_date": "2020-01-06",
            "skills": "retail",
            "daily_capacity": "5",
            "active": "true",
        }
    )
    leads = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4"],
            "created_at": ["2024-03-04 10:00"] * 3 + ["2024-01-04 10:00"],
            "source": "web",
            "industry": "retail",
            "region": "EU",
            "product": "basic",
        }
    )
    assignments = pd.DataFrame(
        {
            "lead_id": ["L1", "L3", "L3", "L4"],
            "rep_id": ["R2", "R2", "R1", "R1"],
            "assigned_at": [
                "2024-03-05 09:00",
                "2024-03-05 09:30",
                "2024-03-07 09:00",
                "2024-01-05 09:00",
            ],
            "first_contact_at": [None, None, "2024-03-07 10:00", "2024-01-05 10:00"],
            "status": ["open", "lost", "open", "lost"],
            "closed_at": [None, "2024-03-07 09:00", None, "2024-02-01"],
            "deal_value": None,
        }
    )
    return validate_crm(CrmData(reps, leads, assignments))


def test_the_window_counts_what_the_crm_shows_reps_were_given_not_the_plan():
    data = crm_with_overrides()
    plan = pd.DataFrame({"lead_id": ["L1", "L2", "L3"], "rep_id": ["R1", "R1", "R2"]})
    given = given_in_window(data, RUN, 7)
    assert given[["lead_id", "rep_id"]].values.tolist() == [
        ["L1", "R2"],
        ["L3", "R2"],
        ["L3", "R1"],
    ]
    assert set(plan["lead_id"]) - set(given["lead_id"]) == {"L2"}  # acted on by nobody
    worth = {"L1": 1.0, "L2": 4.0, "L3": 0.5}
    window = RollingWindow.of(
        7,
        given.rename(columns={"assigned_at": "at"}).assign(
            worth=given["lead_id"].map(worth), top_tier=given["lead_id"] == "L1"
        ),
        pd.DataFrame(columns=["day", "rep_id", "capacity"]),
    )
    # L1 counts for R2 (the manager's choice), L3 once for each rep who was given it, L2 for
    # nobody, L4 (before the window) not at all.
    assert history_of(window) == {"R1": (0.5, 0.0, 0.0), "R2": (1.5, 1.0, 0.0)}


def test_the_nightly_window_scores_each_days_hand_overs_as_of_that_day():
    data = crm_with_overrides()
    calls = []

    def p_win(leads, candidates, at):
        calls.append((f"{at:%m-%d}", sorted(leads["lead_id"]), len(candidates)))
        return np.where(candidates["rep_id"] == "R1", 0.5, 0.25)

    window = crm_window(data, RUN, MatchingConfig(), p_win, days=7)
    # One call per day with hand-overs, for that day's leads and both reps.
    assert calls == [("03-05", ["L1", "L3"], 4), ("03-07", ["L3"], 2)]
    # Worth: b = (0.5 + 0.25) / 2 for every lead; L1 and L3 count for R2 (03-05), L3 again
    # for R1 (03-07); no tier A among one or two leads a day. Capacity: 5 working days x 5.
    assert history_of(window) == {"R1": (0.375, 0.0, 25.0), "R2": (0.75, 0.0, 25.0)}
    quiet = crm_window(data, RUN + pd.Timedelta(days=30), MatchingConfig(), p_win, days=7)
    assert len(calls) == 2 and history_of(quiet, RUN + pd.Timedelta(days=30)) == {
        "R1": (0.0, 0.0, 25.0),
        "R2": (0.0, 0.0, 25.0),
    }
    assert crm_window(data, RUN, MatchingConfig(), p_win, days=0).history(RUN) is None


def test_a_run_added_to_the_window_counts_as_its_rep_summary_says():
    p = [[0.5, 0.2], [0.4, 0.4], [0.3, 0.1]]
    candidates, leads, reps = frames(p, [2, 2])
    result = match(candidates, leads, reps)
    window = RollingWindow.empty(7).add_run(RUN - pd.Timedelta(days=1), result.rep_summary)
    window = window.add_run(RUN - pd.Timedelta(days=8), result.rep_summary)  # too old
    summary = result.rep_summary.set_index("rep_id")
    assert history_of(window) == {
        rep: (
            summary.loc[rep, "value_received"],
            float(summary.loc[rep, "top_tier_received"]),
            float(summary.loc[rep, "capacity"]),
        )
        for rep in ("R0", "R1")
    }
    # Rows that can never be inside a later window are dropped as the window moves on.
    later = window.add_run(RUN + pd.Timedelta(days=20), result.rep_summary)
    assert len(later.rows) == 2


@pytest.mark.parametrize("objective", ["conversions", "expected_value"])
def test_a_leads_worth_is_its_value_times_the_baseline_whatever_rep_got_it(objective):
    # b(l) is the mean p over the eligible reps with capacity: (0.5 + 0.2) / 2 and
    # (0.4 + 0.4) / 2; R2 is absent, so its p does not count.
    p = [[0.5, 0.2, 0.9], [0.4, 0.4, 0.9]]
    candidates, leads, reps = frames(
        p,
        [2, 2, 0],
        leads={"expected_value": [100.0, 10.0]},
        reps={"available": [True, True, False]},
    )
    config = MatchingConfig(objective=objective)
    worth = lead_worth(candidates, leads, reps, config).set_index("lead_id")
    value = np.array([100.0, 10.0]) if objective == "expected_value" else np.ones(2)
    np.testing.assert_allclose(worth["worth"], value * [0.35, 0.4])
    # ... exactly what the matching counts for the rep who gets it that day (value_received).
    result = match(candidates, leads, reps, config)
    received = result.rep_summary.set_index("rep_id")["value_received"]
    assert received.sum() == pytest.approx(worth["worth"].sum())
    assert worth["top_tier"].dtype == bool


def test_a_window_cannot_be_negative():
    with pytest.raises(ValueError, match="a fairness window cannot be -1 days long"):
        RollingWindow.empty(-1)


def frames(p, capacity, leads=None, reps=None):
    """candidates, leads, reps_today for a p matrix, leads created from 8 March 2024."""
    return day_frames(p, capacity, leads, reps, start="2024-03-08 08:00")


NO_FAIRNESS = MatchingConfig(fairness=FairnessConstraints().disabled(), price_of_fairness=False)
