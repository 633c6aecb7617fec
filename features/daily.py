"""The state of the CRM on a run date: what is known, which leads to place, each rep's day.

Pure functions over validated canonical tables, used by the nightly flow and the backtest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.schemas import CrmData

DAY = pd.Timedelta(days=1)


def snapshot(data: CrmData, as_of: pd.Timestamp) -> CrmData:
    """The data as it was known at ``as_of``: later leads and assignments dropped, later
    contacts and closings undone (those assignments are open again at ``as_of``)."""
    as_of = pd.Timestamp(as_of)
    leads = data.leads.loc[data.leads["created_at"] < as_of]
    asg = data.assignments.loc[data.assignments["assigned_at"] < as_of]
    closed_later = asg["closed_at"] >= as_of
    contact_later = asg["first_contact_at"] >= as_of
    asg = asg.assign(
        status=asg["status"].where(~closed_later, "open"),
        closed_at=asg["closed_at"].where(~closed_later),
        deal_value=asg["deal_value"].where(~closed_later),
        first_contact_at=asg["first_contact_at"].where(~contact_later),
    )
    reps = data.reps.loc[data.reps["hire_date"] < as_of + DAY]
    return replace(data, reps=reps, leads=leads, assignments=asg)


@dataclass(frozen=True)
class LeadPool:
    """The leads a run places, and what was left out.

    ``leads`` has the canonical lead columns plus ``action`` ("assign" for unassigned leads,
    "reassign" for reclaimed ones), ``previous_rep_id`` and ``days_without_contact`` (reclaimed
    leads only). ``too_old`` counts leads left out for being older than the maximum age.
    """

    leads: pd.DataFrame
    n_unassigned: int
    n_reclaimed: int
    too_old: int


def leads_to_place(
    data: CrmData, as_of: pd.Timestamp, *, sla_days: float, max_age_days: int
) -> LeadPool:
    """Unassigned leads, plus open leads whose rep made no first contact within ``sla_days``.

    ``data`` is a :func:`snapshot` at ``as_of``. A reclaimed lead is re-matched excluding the rep
    who held it (its ``previous_rep_id``). Leads created more than ``max_age_days`` before
    ``as_of`` are left out and counted.
    """
    as_of = pd.Timestamp(as_of)
    leads, asg = data.leads, data.assignments
    open_rows = asg.loc[asg["status"] == "open"]
    unassigned = leads.loc[~leads["lead_id"].isin(asg["lead_id"])].assign(
        action="assign", previous_rep_id=pd.NA, days_without_contact=np.nan
    )
    waited = (as_of - open_rows["assigned_at"]) / DAY
    stale = open_rows.loc[open_rows["first_contact_at"].isna() & (waited > sla_days)]
    stale = stale.assign(days_without_contact=np.floor(waited.loc[stale.index]))
    reclaimed = leads.merge(
        stale[["lead_id", "rep_id", "days_without_contact"]].rename(
            columns={"rep_id": "previous_rep_id"}
        ),
        on="lead_id",
    ).assign(action="reassign")
    pool = pd.concat([unassigned, reclaimed], ignore_index=True)
    fresh = (as_of - pool["created_at"]) <= pd.Timedelta(days=max_age_days)
    kept = (
        pool.loc[fresh].sort_values(["created_at", "lead_id"], kind="stable").reset_index(drop=True)
    )
    kept["previous_rep_id"] = kept["previous_rep_id"].astype("string")
    return LeadPool(
        leads=kept,
        n_unassigned=int((kept["action"] == "assign").sum()),
        n_reclaimed=int((kept["action"] == "reassign").sum()),
        too_old=int((~fresh).sum()),
    )


def rep_day(data: CrmData, day: pd.Timestamp) -> pd.DataFrame:
    """Each rep's state on ``day``: one row per rep of ``data.reps``.

    Columns: rep_id, name, team, region, skills, languages, active, available, capacity (today's,
    0 when absent), open_load (open assignments held at the start of the day), max_open_leads
    (nullable), tenure_days. ``data`` is a :func:`snapshot` at the start of ``day``.
    """
    day = pd.Timestamp(day).normalize()
    reps = data.reps
    asg = data.assignments
    open_load = asg.loc[asg["status"] == "open"].groupby("rep_id").size()
    available = pd.Series(True, index=reps.index)
    capacity = reps["daily_capacity"].astype("Int64")
    if data.availability is not None:
        today = data.availability.loc[data.availability["date"].dt.normalize() == day].set_index(
            "rep_id"
        )
        rep_ids = reps["rep_id"]
        known = rep_ids.isin(today.index)
        if known.any():
            rows = today.loc[rep_ids[known]]
            available.loc[known] = rows["available"].to_numpy(dtype=bool)
            if "capacity" in rows:
                override = rows["capacity"].astype("Int64").to_numpy()
                capacity.loc[known] = pd.array(override, dtype="Int64").fillna(capacity.loc[known])
    active = reps["active"].astype(bool)
    out = pd.DataFrame(
        {
            "rep_id": reps["rep_id"].astype(str),
            "name": reps["name"],
            "team": reps["team"],
            "region": reps["region"],
            "skills": reps["skills"].fillna(""),
            "languages": reps["languages"].fillna("") if "languages" in reps else "",
            "active": active,
            "available": active & available,
            "capacity": capacity.where(active & available, 0).fillna(0).astype(int),
            "open_load": reps["rep_id"].map(open_load).fillna(0).astype(int),
            "max_open_leads": reps["max_open_leads"].astype("Int64")
            if "max_open_leads" in reps
            else pd.NA,
            "tenure_days": ((day - reps["hire_date"]) / DAY).clip(lower=0).astype(float),
        }
    )
    return out.reset_index(drop=True)
