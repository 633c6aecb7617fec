"""The CRM on a run date: what was known, which leads are placed, each rep's capacity."""

from __future__ import annotations

import pandas as pd

from features.daily import leads_to_place, rep_day, snapshot
from features.schemas import validate_crm


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


def test_pool_has_unassigned_and_stale_leads_but_not_old_ones(tiny):
    data = validate_crm(tiny)
    as_of = pd.Timestamp("2024-03-08")
    pool = leads_to_place(snapshot(data, as_of), as_of, sla_days=3, max_age_days=30)
    by_id = pool.leads.set_index("lead_id")
    # L5 was never assigned; R2 never contacted L2 (assigned 03-01) nor L4 (03-04); L3 was
    # contacted, so it stays with R1.
    assert sorted(by_id.index) == ["L2", "L4", "L5"]
    assert by_id.loc["L5", "action"] == "assign"
    assert by_id.loc["L4", "action"] == "reassign"
    assert by_id.loc["L4", "previous_rep_id"] == "R2"
    assert by_id.loc["L4", "days_without_contact"] == 4
    assert (pool.n_unassigned, pool.n_reclaimed, pool.too_old) == (1, 2, 0)

    snap = snapshot(data, as_of)
    assert leads_to_place(snap, as_of, sla_days=5, max_age_days=30).n_reclaimed == 1
    assert leads_to_place(snap, as_of, sla_days=10, max_age_days=30).n_reclaimed == 0
    assert leads_to_place(snap, as_of, sla_days=3, max_age_days=3).too_old == 3


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
