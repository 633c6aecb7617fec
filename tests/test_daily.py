"""The CRM on a run date: what was known, which leads are placed, each rep's capacity."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from features.daily import (
    NO_CONTACT_DATA,
    leads_to_place,
    rep_day,
    sla_reclaim_off_reason,
    snapshot,
    working_days_elapsed,
)
from features.schemas import CrmData, validate_crm


def test_snapshot_forgets_everything_after_as_of(tiny):
    data = validate_crm(tiny)
    snap = snapshot(data, pd.Timestamp("2024-03-03"))
    assert snap.leads["lead_id"].tolist() == ["L1", "L2", "L3"]
    assert snap.assignments["lead_id"].tolist() == ["L1", "L2", "L3"]
    # L1 was won on 2024-03-20: on 2024-03-03 it was still open, with its contact known.
    l1 = snap.assignments.set_index("lead_id").loc["L1"]
    assert l1["status"] == "open" and pd.isna(l1["closed_at"]) and pd.isna(l1["deal_value"])
    assert l1["first_contact_at"] == pd.Timestamp("2024-03-01 10:00")
    # L3's first contact (2024-03-03) had not happened yet at midnight.
    assert pd.isna(snap.assignments.set_index("lead_id").loc["L3", "first_contact_at"])
    # The input is untouched.
    assert data.assignments.loc[0, "status"] == "won"


def test_pool_has_unassigned_leads_and_the_reclaims_due_tonight_but_not_old_ones(tiny):
    data = validate_crm(tiny)
    as_of = pd.Timestamp("2024-03-08")  # a Friday
    pool = leads_to_place(snapshot(data, as_of), as_of, sla_days=3, max_age_days=30)
    by_id = pool.leads.set_index("lead_id")
    # L5 was never assigned. R2 never contacted L4 (given Monday 03-04 at midnight): Monday to
    # Thursday make 4 working days, past the SLA since this morning. L2 (given Friday 03-01 at
    # 11:00) passed it a night earlier and was reclaimed by Thursday's run, not again tonight.
    # L3 was contacted, so it stays with R1.
    assert sorted(by_id.index) == ["L4", "L5"]
    assert by_id.loc["L5", "action"] == "assign"
    assert by_id.loc["L4", "action"] == "reassign"
    assert by_id.loc["L4", "previous_rep_id"] == "R2"
    assert by_id.loc["L4", "reclaim"] == "sla"
    assert by_id.loc["L4", "days_without_contact"] == 4
    assert (pool.n_unassigned, pool.n_reclaimed, pool.too_old, pool.kept) == (1, 1, 0, 0)

    thursday = pd.Timestamp("2024-03-07")
    earlier = leads_to_place(snapshot(data, thursday), thursday, sla_days=3, max_age_days=30)
    assert earlier.leads.set_index("lead_id").loc["L2", "previous_rep_id"] == "R2"

    snap = snapshot(data, as_of)
    assert leads_to_place(snap, as_of, sla_days=5, max_age_days=30).n_reclaimed == 0
    assert leads_to_place(snap, as_of, sla_days=3, max_age_days=3).too_old == 2


# A lead contacted and lost long ago: the export has first-contact data.
CONTACTED = ("L0", "R2", "2024-01-02 00:00", "2024-01-02 09:00", "lost", "2024-01-20 00:00")


def crm(
    assignments: list[tuple], *, reps: dict | None = None, availability=None, contacts=True
) -> CrmData:
    """A validated CRM with reps R1 (active), R2 (active) and R3 (inactive) unless ``reps`` is
    given, one lead per assignment row, created an hour before its first assignment, and (with
    ``contacts``) the contacted lead L0, so that the export has first-contact data.

    ``assignments``: (lead_id, rep_id, assigned_at, first_contact_at, status, closed_at).
    """
    reps = reps or {"R1": "true", "R2": "true", "R3": "false"}
    rows = pd.DataFrame(
        [CONTACTED, *assignments] if contacts else assignments,
        columns=["lead_id", "rep_id", "assigned_at", "first_contact_at", "status", "closed_at"],
    )
    first = rows.groupby("lead_id", sort=False)["assigned_at"].min()
    leads = pd.DataFrame(
        {
            "lead_id": first.index,
            "created_at": (pd.to_datetime(first) - pd.Timedelta(hours=1)).dt.strftime(
                "%Y-%m-%d %H:%M"
            ),
            "source": "web",
            "industry": "retail",
            "region": "EU",
            "product": "basic",
        }
    )
    rep_table = pd.DataFrame(
        {
            "rep_id": list(reps),
            "name": list(reps),
            "team": "north",
            "region": "EU",
            "hire_date": "2020-01-06",
            "skills": "retail",
            "daily_capacity": "5",
            "active": list(reps.values()),
        }
    )
    rows = rows.assign(deal_value=None)
    return validate_crm(CrmData(rep_table, leads, rows, availability))


def pool_on(data: CrmData, day: str, **kwargs):
    as_of = pd.Timestamp(day)
    options = {"sla_days": 3, "max_age_days": 30} | kwargs
    return leads_to_place(snapshot(data, as_of), as_of, **options)


def reclaimed_on(data: CrmData, day: str, **kwargs) -> list[str]:
    leads = pool_on(data, day, **kwargs).leads
    return sorted(leads.loc[leads["reclaim"] == "sla", "lead_id"])


# 2024-03-01 is a Friday; 03-04 a Monday.
@pytest.mark.parametrize(
    ("start", "end", "absent", "expected"),
    [
        ("2024-03-04 00:00", "2024-03-07 00:00", [], 3.0),  # Mon, Tue, Wed
        ("2024-03-04 12:00", "2024-03-05 00:00", [], 0.5),  # half of Monday
        ("2024-03-04 06:00", "2024-03-04 18:00", [], 0.5),  # within one day
        ("2024-03-01 00:00", "2024-03-05 00:00", [], 2.0),  # Fri and Mon: no weekend
        ("2024-03-02 09:00", "2024-03-04 00:00", [], 0.0),  # given on Saturday
        ("2024-03-01 18:00", "2024-03-06 00:00", ["2024-03-04"], 1.25),  # absent Monday
        ("2024-03-04 12:00", "2024-03-06 00:00", ["2024-03-04"], 1.0),  # absent its first day
        ("2024-03-01 00:00", "2024-03-05 00:00", ["2024-03-02"], 2.0),  # a Saturday off: no change
        ("2024-03-07 00:00", "2024-03-04 00:00", [], 0.0),  # given after the end
    ],
)
def test_working_days_count_the_teams_days_less_the_reps_absences(start, end, absent, expected):
    availability = pd.DataFrame(
        {
            "rep_id": ["R1"] * len(absent) + ["R2"],
            "date": pd.to_datetime([*absent, "2024-03-05"]),
            "available": [False] * len(absent) + [False],  # R2's absence is not R1's
        }
    )
    got = working_days_elapsed(
        pd.Series(pd.to_datetime([start])),
        pd.Timestamp(end),
        pd.Series(["R1"]),
        availability=availability,
    )
    assert got == pytest.approx([expected])


def test_a_team_working_sunday_to_thursday_has_its_own_weekend():
    got = working_days_elapsed(
        pd.Series(pd.to_datetime(["2024-03-07 00:00"])),  # Thursday
        pd.Timestamp("2024-03-11"),  # Monday
        pd.Series(["R1"]),
        working_days=("Sun", "Mon", "Tue", "Wed", "Thu"),
    )
    assert got == pytest.approx([2.0])  # Thursday and Sunday
    with pytest.raises(
        ValueError,
        match=r"working days must be some of Mon, .*; got \['Fri', 'Sat', 'Sun', 'Holiday'\]",
    ):
        working_days_elapsed(
            pd.Series(pd.to_datetime(["2024-03-07"])),
            pd.Timestamp("2024-03-11"),
            pd.Series(["R1"]),
            working_days=("Fri", "Sat", "Sun", "Holiday"),
        )


def test_the_sla_clock_skips_weekends_and_the_reps_absences():
    # L1 given Thursday: Thu, Fri, Mon make 3 working days by Tuesday, 4 by Wednesday.
    given = [("L1", "R1", "2024-02-29 00:00", None, "open", None)]
    assert reclaimed_on(crm(given), "2024-03-05") == []  # 5 calendar days, 3 working days
    assert reclaimed_on(crm(given), "2024-03-06") == ["L1"]
    # With R1 away on Monday and Tuesday, the clock stops: 4 working days only by Friday.
    away = pd.DataFrame(
        {"rep_id": ["R1", "R1"], "date": ["2024-03-04", "2024-03-05"], "available": ["no", "no"]}
    )
    assert [
        day
        for day in ("2024-03-06", "2024-03-07", "2024-03-08")
        if reclaimed_on(crm(given, availability=away), day)
    ] == ["2024-03-08"]
    days = pool_on(crm(given, availability=away), "2024-03-08").leads["days_without_contact"]
    assert days.tolist() == [4.0]  # Thu, Fri, Wed, Thu


def test_a_lead_is_reclaimed_once_and_a_move_in_the_crm_starts_a_new_clock():
    # L1: given to R1 on Monday 03-04, never contacted. The SLA passes during Thursday.
    stays = [("L1", "R1", "2024-03-04 00:00", None, "open", None)]
    nights = ["2024-03-07", "2024-03-08", "2024-03-11", "2024-03-12", "2024-03-13"]
    assert [d for d in nights if reclaimed_on(crm(stays), d)] == ["2024-03-08"]
    # The manager moved it to R2 on Friday 03-08 at 10:00 (R1's row closed then): R2 has its
    # own SLA, reclaimed once when it passes, on Thursday 03-14.
    moved = [
        ("L1", "R1", "2024-03-04 00:00", None, "lost", "2024-03-08 10:00"),
        ("L1", "R2", "2024-03-08 10:00", None, "open", None),
    ]
    later = [*nights, "2024-03-14", "2024-03-15", "2024-03-18"]
    assert [d for d in later if reclaimed_on(crm(moved), d)] == ["2024-03-08", "2024-03-14"]
    pool = pool_on(crm(moved), "2024-03-14")
    assert pool.leads["previous_rep_id"].tolist() == ["R2"]


def test_weekend_runs_reclaim_nothing_and_say_so():
    given = [("L1", "R1", "2024-02-27 12:00", None, "open", None)]  # passes during Friday
    assert reclaimed_on(crm(given), "2024-03-02") == []
    assert reclaimed_on(crm(given), "2024-03-04") == ["L1"]
    notes = pool_on(crm(given), "2024-03-02").notes
    assert notes == [
        "no SLA reclaim on Saturday 2024-03-02: it is not one of the team's working days"
    ]


def test_a_lead_marked_not_reclaimable_stays_with_its_rep():
    given = [
        ("L1", "R1", "2024-03-04 00:00", None, "open", None),
        ("L2", "R1", "2024-03-04 00:00", None, "open", None),
    ]
    data = crm(given)
    data = replace(
        data, assignments=data.assignments.assign(reclaimable=pd.array([True, False, pd.NA]))
    )
    assert reclaimed_on(data, "2024-03-08") == ["L2"]


def test_without_contact_data_nothing_is_reclaimed_and_the_run_says_why():
    # A late-stage deal (given 826 days ago, never "contacted" because the export has no
    # contact dates) is not taken back, and neither is anything else.
    given = [
        ("L1", "R1", "2021-11-28 00:00", None, "open", None),
        ("L2", "R1", "2024-03-04 00:00", None, "open", None),
    ]
    data = crm(given, contacts=False)
    assert sla_reclaim_off_reason(data) == NO_CONTACT_DATA
    no_column = replace(data, assignments=data.assignments.drop(columns="first_contact_at"))
    assert sla_reclaim_off_reason(no_column) == NO_CONTACT_DATA
    assert NO_CONTACT_DATA.startswith("SLA reclaim is off: the export has no first-contact dates")
    pool = pool_on(data, "2024-03-08", max_age_days=10_000)
    assert pool.n_reclaimed == 0 and pool.leads.empty
    assert pool.notes == [NO_CONTACT_DATA]


def test_contact_data_on_some_rows_is_evidence_enough():
    given = [
        ("L1", "R1", "2024-03-01 00:00", "2024-03-01 10:00", "open", None),
        ("L2", "R1", "2024-03-04 00:00", None, "open", None),
    ]
    assert sla_reclaim_off_reason(crm(given)) is None
    assert reclaimed_on(crm(given), "2024-03-08") == ["L2"]


def test_leads_of_reps_who_left_are_placed_again_contacted_or_not():
    given = [
        ("L1", "R3", "2024-03-05 00:00", "2024-03-05 10:00", "open", None),  # R3 is inactive
        ("L2", "R9", "2024-03-06 00:00", None, "open", None),  # R9 is not in reps any more
        ("L3", "R9", "2024-03-01 00:00", None, "lost", "2024-03-06 00:00"),  # closed: stays
        ("L4", "R1", "2024-03-06 00:00", None, "open", None),  # within the SLA
    ]
    reps = {"R1": "true", "R2": "true", "R3": "false"}
    rows = pd.DataFrame(given, columns=["lead_id", "rep_id", "assigned_at", "a", "b", "c"])
    data = crm(given, reps=reps | {"R9": "true"})
    data = replace(data, reps=data.reps.loc[data.reps["rep_id"] != "R9"])
    assert rows["rep_id"].isin(data.reps["rep_id"]).sum() == 2  # R3 and R1
    pool = pool_on(data, "2024-03-07")
    by_id = pool.leads.set_index("lead_id")
    assert sorted(by_id.index) == ["L1", "L2"]
    assert (by_id["action"] == "reassign").all() and (by_id["reclaim"] == "rep_left").all()
    assert by_id["previous_rep_id"].to_dict() == {"L1": "R3", "L2": "R9"}
    assert (pool.n_rep_left, pool.n_reclaimed) == (2, 0)
    assert pool.notes == ["2 open lead(s) held by 2 rep(s) who left (R3, R9) are placed again"]


def test_leads_left_out_for_age_are_listed_with_their_previous_rep():
    given = [
        ("L1", "R3", "2024-01-02 00:00", None, "open", None),  # rep left, 66 days old
        ("L2", "R1", "2024-03-04 00:00", None, "open", None),  # reclaimed tonight, fresh
    ]
    data = crm(given)
    leads = data.leads.assign(
        created_at=data.leads["created_at"].where(data.leads["lead_id"] != "L2")
    )
    extra = pd.DataFrame(
        {
            "lead_id": ["L9"],
            "created_at": [pd.Timestamp("2024-02-01 08:00")],
            "source": "web",
            "industry": "retail",
            "region": "EU",
            "product": "basic",
        }
    )
    leads = pd.concat(
        [leads.fillna({"created_at": pd.Timestamp("2024-03-03 23:00")}), extra], ignore_index=True
    )
    data = replace(data, leads=leads)
    pool = pool_on(data, "2024-03-08")
    assert pool.leads["lead_id"].tolist() == ["L2"]
    assert pool.too_old == 2
    expected = pd.DataFrame(
        {
            "lead_id": ["L1", "L9"],
            "created_at": pd.to_datetime(["2024-01-01 23:00", "2024-02-01 08:00"]),
            "age_days": [66, 35],
            "previous_rep_id": pd.array(["R3", pd.NA], dtype="string"),
        }
    )
    pd.testing.assert_frame_equal(pool.too_old_leads, expected, check_dtype=False)


def test_rep_day_applies_absence_capacity_override_and_open_load(tiny):
    availability = pd.DataFrame(
        {
            "rep_id": ["R1", "R2"],
            "date": ["2024-03-05", "2024-03-05"],
            "available": ["yes", "no"],
            "capacity": ["2", ""],
        }
    )
    data = validate_crm(tiny.__class__(tiny.reps, tiny.leads, tiny.assignments, availability))
    day = pd.Timestamp("2024-03-05")
    state = rep_day(snapshot(data, day), day).set_index("rep_id")
    assert state["available"].to_dict() == {"R1": True, "R2": False, "R3": False}  # R3 inactive
    assert state["capacity"].to_dict() == {"R1": 2, "R2": 0, "R3": 0}
    assert state["open_load"].to_dict() == {"R1": 2, "R2": 2, "R3": 0}
    assert state.loc["R3", "tenure_days"] == (day - pd.Timestamp("2024-01-15")).days
