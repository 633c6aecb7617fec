"""A short description of a CRM data set: what `leadmatch validate` prints."""

from __future__ import annotations

import pandas as pd

from features.checks import positions_in
from features.schemas import CrmData


def describe_crm(data: CrmData) -> dict[str, object]:
    """Row counts, the leads' date range, win rate of closed assignments and ownership counts.

    ``data`` must be validated (typed) tables. Returns a flat, ordered mapping of label -> value.
    """
    asg = data.assignments
    closed = asg["status"].isin(["won", "lost"])
    created = data.leads["created_at"]
    out: dict[str, object] = {
        "reps": len(data.reps),
        "active reps": int(data.reps["active"].sum()),
        "leads": len(data.leads),
        "assignment rows": len(asg),
        "availability rows": 0 if data.availability is None else len(data.availability),
        "leads created": _date_range(created),
        "closed (won + lost)": int(closed.sum()),
        "win rate of closed": float((asg["status"] == "won").sum() / closed.sum())
        if closed.any()
        else None,
        "open": int((asg["status"] == "open").sum()),
        "open, never contacted": int(
            ((asg["status"] == "open") & asg["first_contact_at"].isna()).sum()
        ),
        "unassigned leads": int((positions_in(data.leads["lead_id"], asg["lead_id"]) < 0).sum()),
        "reps with history": int(asg["rep_id"].nunique()),
    }
    return out


def _date_range(values: pd.Series) -> str:
    if values.empty:
        return "(none)"
    return f"{values.min():%Y-%m-%d} .. {values.max():%Y-%m-%d}"


def usability_problems(data: CrmData) -> list[str]:
    """Reasons the data cannot drive leadmatch even though every row is valid (empty list: usable)."""
    problems = []
    if data.reps.empty or not data.reps["active"].any():
        problems.append("no active reps: at least one rep must be active")
    if data.leads.empty:
        problems.append("no leads")
    if not data.assignments["status"].isin(["won", "lost"]).any():
        problems.append(
            "no closed assignments (won or lost): a model cannot learn without outcomes"
        )
    return problems
