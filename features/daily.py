"""The state of the CRM on a run date: what is known, which leads to place, each rep's day.

Pure functions over validated canonical tables, used by the nightly flow and the backtest.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from features.schemas import CrmData, Leads, Reps

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


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONDAY_TO_FRIDAY = WEEKDAYS[:5]

NO_CONTACT_DATA = (
    "SLA reclaim is off: the export has no first-contact dates, so nothing shows which leads "
    "were never contacted (map a first-contact column to turn it on)"
)


def sla_reclaim_off_reason(data: CrmData) -> str | None:
    """Why the first-contact SLA cannot reclaim anything in ``data``, or None when it can.

    Reclaim needs evidence: without a ``first_contact_at`` column, or with one that is empty on
    every row, an open lead "without contact" may well have been worked, so nothing is taken
    back.
    """
    asg = data.assignments
    if "first_contact_at" not in asg or asg["first_contact_at"].isna().all():
        return NO_CONTACT_DATA
    return None


def working_days_elapsed(
    start: pd.Series,
    end: pd.Timestamp,
    rep_ids: pd.Series,
    *,
    working_days: tuple[str, ...] = MONDAY_TO_FRIDAY,
    availability: pd.DataFrame | None = None,
) -> np.ndarray:
    """Working time from each ``start`` to ``end``, in days, on the rep's clock.

    Only the team's ``working_days`` count, and of those only the days the rep (``rep_ids``,
    aligned with ``start``) was not marked absent (``availability`` rows with available false).
    Part days count in proportion: a lead given at noon on a working day has had half of it.
    Timestamps are naive times on the team's clock. Returns a float array aligned with start.
    """
    mask = _weekmask(working_days)
    begin = pd.to_datetime(start).to_numpy(dtype="datetime64[ns]")
    end64 = np.datetime64(pd.Timestamp(end).to_datetime64(), "ns")
    begin = np.minimum(begin, end64)
    first, last = begin.astype("datetime64[D]"), end64.astype("datetime64[D]")
    day_ns = np.timedelta64(1, "D").astype("timedelta64[ns]")
    same = first == last
    works_first = np.is_busday(first, weekmask=mask)
    works_last = np.is_busday(last, weekmask=mask)
    inner = np.where(same, 0, np.busday_count(np.minimum(first + 1, last), last, weekmask=mask))
    head_end = np.where(same, end64, (first + 1).astype("datetime64[ns]"))
    head = (head_end - begin) / day_ns * works_first
    tail = np.where(same, 0.0, (end64 - last.astype("datetime64[ns]")) / day_ns * works_last)
    elapsed = head + inner + tail
    if availability is None or availability.empty or len(begin) == 0:
        return elapsed
    absent = availability.loc[~availability["available"].astype(bool), [Reps.rep_id, "date"]]
    absent = absent.assign(date=absent["date"].dt.normalize())
    absent = absent.loc[np.is_busday(absent["date"].to_numpy(dtype="datetime64[D]"), weekmask=mask)]
    rows = pd.DataFrame(
        {"row": np.arange(len(begin)), Reps.rep_id: np.asarray(rep_ids, dtype=object)}
    )
    rows[Reps.rep_id] = rows[Reps.rep_id].astype("str")
    hits = rows.merge(absent.astype({Reps.rep_id: "str"}), on=Reps.rep_id)
    if hits.empty:
        return elapsed
    day_start = hits["date"].to_numpy(dtype="datetime64[ns]")
    lo = np.maximum(begin[hits["row"]], day_start)
    hi = np.minimum(end64, day_start + day_ns)
    overlap = np.clip((hi - lo) / day_ns, 0.0, None)
    return elapsed - np.bincount(hits["row"], overlap, len(begin))


def _weekmask(working_days: tuple[str, ...]) -> str:
    unknown = sorted(set(working_days) - set(WEEKDAYS))
    if unknown or not working_days:
        raise ValueError(
            f"working days must be some of {', '.join(WEEKDAYS)}; got {list(working_days)}"
        )
    return "".join("1" if day in working_days else "0" for day in WEEKDAYS)


@dataclass(frozen=True)
class LeadPool:
    """The leads a run places, and what was left out.

    ``leads`` has the canonical lead columns plus ``action`` ("assign" for unassigned leads,
    "reassign" for leads taken from their rep), ``previous_rep_id``, ``reclaim`` ("sla": not
    contacted within the SLA; "rep_left": its rep left the team; missing for new leads) and
    ``days_without_contact`` (SLA reclaims only: the rep's working days since the hand-over).
    ``n_unassigned``, ``n_reclaimed`` (SLA), ``n_rep_left``: counts of each kind placed.
    ``kept``: SLA reclaims that no other rep took, so they stay with their rep (action keep);
    known after the matching (0 before). ``too_old`` counts the leads left out for being older
    than the maximum age, ``too_old_leads`` lists them (lead_id, created_at, age_days in whole
    days, previous_rep_id). ``notes``: plain sentences on what the run could not do.
    """

    leads: pd.DataFrame
    n_unassigned: int
    n_reclaimed: int
    too_old: int
    too_old_leads: pd.DataFrame
    n_rep_left: int = 0
    kept: int = 0
    notes: list[str] = field(default_factory=list)


def leads_to_place(
    data: CrmData,
    as_of: pd.Timestamp,
    *,
    sla_days: float,
    max_age_days: int,
    working_days: tuple[str, ...] = MONDAY_TO_FRIDAY,
) -> LeadPool:
    """The leads the run of ``as_of`` (midnight of the run date) places.

    ``data`` is a :func:`snapshot` at ``as_of``. The pool holds:

    - unassigned leads (action assign);
    - open leads whose rep left (no longer in reps, or inactive): placed again (reassign);
    - open leads whose rep made no first contact within ``sla_days`` of the rep's working days
      (:func:`working_days_elapsed`: the team's ``working_days``, less the rep's absences),
      re-matched excluding that rep (reassign). Reclaim happens once per hand-over: on the
      first of the team's working days whose run finds the SLA passed (the clock passed
      ``sla_days`` since the start of the previous working day). A lead the CRM shows moved to
      another rep starts a new clock with that rep; one that did not move is not reclaimed again
      on later nights, and stays with its rep. A run on a day the team does not work reclaims
      nothing. Rows with ``reclaimable`` false are never reclaimed, and without first-contact
      data (:func:`sla_reclaim_off_reason`) nothing is.

    Leads created more than ``max_age_days`` before ``as_of`` are left out and listed.
    """
    as_of = pd.Timestamp(as_of)
    leads, asg = data.leads, data.assignments
    notes: list[str] = []
    # An open row with no rep is a lead nobody owns yet (a loss with no rep, read with
    # unassigned_outcome: lost, is open before its close): it is placed like an unassigned one.
    owned = asg[Reps.rep_id].notna() | (asg["status"] != "open")
    open_rows = asg.loc[(asg["status"] == "open") & owned]
    unassigned = leads.loc[~leads[Leads.lead_id].isin(asg.loc[owned, Leads.lead_id])].assign(
        action="assign", previous_rep_id=pd.NA, reclaim=pd.NA, days_without_contact=np.nan
    )
    active = data.reps.loc[data.reps["active"].astype(bool), Reps.rep_id]
    left = open_rows.loc[~open_rows[Reps.rep_id].isin(active)]
    if len(left):
        reps = sorted(left[Reps.rep_id].unique())
        shown = ", ".join(reps[:5]) + (f" and {len(reps) - 5} more" if len(reps) > 5 else "")
        notes.append(
            f"{len(left)} open lead(s) held by {len(reps)} rep(s) who left ({shown}) are "
            "placed again"
        )
    stale = _past_sla(
        data,
        open_rows.loc[open_rows[Reps.rep_id].isin(active)],
        as_of,
        sla_days,
        working_days,
        notes,
    )
    taken = pd.concat(
        [
            left[[Leads.lead_id, Reps.rep_id]].assign(
                reclaim="rep_left", days_without_contact=np.nan
            ),
            stale[[Leads.lead_id, Reps.rep_id, "days_without_contact"]].assign(reclaim="sla"),
        ],
        ignore_index=True,
    )
    reclaimed = leads.merge(
        taken.rename(columns={Reps.rep_id: "previous_rep_id"}), on=Leads.lead_id
    ).assign(action="reassign")
    pool = pd.concat([unassigned, reclaimed], ignore_index=True)
    age = (as_of - pool["created_at"]) / DAY
    fresh = (age <= max_age_days).to_numpy()
    placed = (
        pool.loc[fresh]
        .sort_values(["created_at", Leads.lead_id], kind="stable")
        .reset_index(drop=True)
    )
    placed["previous_rep_id"] = placed["previous_rep_id"].astype("string")
    placed["reclaim"] = placed["reclaim"].astype("string")
    old = pool.loc[~fresh].assign(age_days=np.floor(age.loc[~fresh]).astype(int))
    too_old_leads = (
        old[[Leads.lead_id, "created_at", "age_days", "previous_rep_id"]]
        .astype({"previous_rep_id": "string"})
        .sort_values(["created_at", Leads.lead_id], kind="stable")
        .reset_index(drop=True)
    )
    if len(too_old_leads):
        notes.append(
            f"{len(too_old_leads)} lead(s) older than {max_age_days} days are left out (listed "
            "in the pool's too-old leads)"
        )
    return LeadPool(
        leads=placed,
        n_unassigned=int((placed["action"] == "assign").sum()),
        n_reclaimed=int((placed["reclaim"] == "sla").sum()),
        too_old=len(too_old_leads),
        too_old_leads=too_old_leads,
        n_rep_left=int((placed["reclaim"] == "rep_left").sum()),
        notes=notes,
    )


def _past_sla(
    data: CrmData,
    open_rows: pd.DataFrame,
    as_of: pd.Timestamp,
    sla_days: float,
    working_days: tuple[str, ...],
    notes: list[str],
) -> pd.DataFrame:
    """The open rows (of active reps) the SLA reclaims tonight, with days_without_contact."""
    off = sla_reclaim_off_reason(data)
    mask = _weekmask(working_days)
    today = np.datetime64(as_of.normalize().to_datetime64(), "D")
    if off is None and not np.is_busday(today, weekmask=mask):
        off = f"no SLA reclaim on {as_of:%A %Y-%m-%d}: it is not one of the team's working days"
    if off is not None:
        notes.append(off)
        return open_rows.iloc[:0].assign(days_without_contact=np.nan)
    candidates = open_rows.loc[open_rows["first_contact_at"].isna()]
    if "reclaimable" in candidates:
        candidates = candidates.loc[candidates["reclaimable"].fillna(True).astype(bool)]
    previous = pd.Timestamp(np.busday_offset(today, -1, roll="forward", weekmask=mask))
    clock = dict(working_days=working_days, availability=data.availability)
    now = working_days_elapsed(candidates["assigned_at"], as_of, candidates[Reps.rep_id], **clock)
    before = working_days_elapsed(
        candidates["assigned_at"], previous, candidates[Reps.rep_id], **clock
    )
    crossed = (now > sla_days) & (before <= sla_days)
    return candidates.loc[crossed].assign(days_without_contact=np.floor(now[crossed]))


def given_in_window(data: CrmData, day: pd.Timestamp, days: int) -> pd.DataFrame:
    """What the CRM shows reps were given over the ``days`` days before ``day``: every
    assignment row with ``assigned_at`` from ``day - days`` up to (not including) ``day``.

    Returns lead_id, rep_id, assigned_at. These are the hand-overs that happened, whatever
    leadmatch had recommended: a manager's override counts for the rep the manager chose, a
    recommendation nobody acted on counts for nobody, and a lead moved from one rep to another
    counts once for each.
    """
    day = pd.Timestamp(day)
    asg = data.assignments
    inside = (asg["assigned_at"] >= day - pd.Timedelta(days=days)) & (asg["assigned_at"] < day)
    # A closed row may have no rep (an outcome whose owner is unknown): nobody was given it.
    inside &= asg[Reps.rep_id].notna()
    given = asg.loc[inside, [Leads.lead_id, Reps.rep_id, "assigned_at"]]
    return given.sort_values(["assigned_at", Leads.lead_id], kind="stable").reset_index(drop=True)


def working_days_before(
    day: pd.Timestamp, days: int, working_days: tuple[str, ...] = MONDAY_TO_FRIDAY
) -> list[pd.Timestamp]:
    """The team's working days among the ``days`` days before ``day`` (oldest first)."""
    start = pd.Timestamp(day).normalize() - pd.Timedelta(days=days)
    dates = pd.date_range(start, periods=days, freq="D")
    works = np.is_busday(dates.to_numpy(dtype="datetime64[D]"), weekmask=_weekmask(working_days))
    return list(dates[works])


def rep_day(data: CrmData, day: pd.Timestamp) -> pd.DataFrame:
    """Each rep's state on ``day``: one row per rep of ``data.reps``.

    Columns: rep_id, name, team, region, skills, languages, active, available, capacity (today's,
    0 when absent), open_load (open assignments held at the start of the day), max_open_leads
    (nullable), tenure_days. ``data`` is a :func:`snapshot` at the start of ``day``.
    """
    day = pd.Timestamp(day).normalize()
    reps = data.reps
    asg = data.assignments
    open_load = asg.loc[asg["status"] == "open"].groupby(Reps.rep_id).size()
    available = pd.Series(True, index=reps.index)
    capacity = reps["daily_capacity"].astype("Int64")
    if data.availability is not None:
        today = data.availability.loc[data.availability["date"].dt.normalize() == day].set_index(
            Reps.rep_id
        )
        rep_ids = reps[Reps.rep_id]
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
            Reps.rep_id: reps[Reps.rep_id].astype(str),
            "name": reps["name"],
            "team": reps["team"],
            "region": reps["region"],
            "skills": reps["skills"].fillna(""),
            "languages": reps["languages"].fillna("") if "languages" in reps else "",
            "active": active,
            "available": active & available,
            "capacity": capacity.where(active & available, 0).fillna(0).astype(int),
            "open_load": reps[Reps.rep_id].map(open_load).fillna(0).astype(int),
            "max_open_leads": reps["max_open_leads"].astype("Int64")
            if "max_open_leads" in reps
            else pd.NA,
            "tenure_days": ((day - reps["hire_date"]) / DAY).clip(lower=0).astype(float),
        }
    )
    return out.reset_index(drop=True)


def account_owners(data: CrmData) -> pd.DataFrame | None:
    """Who holds each account: account_id, rep_id of the rep given the account's most recently
    assigned open lead (ties: the later row). None when the leads have no account_id; an account
    none of whose leads is open has no owner."""
    if "account_id" not in data.leads:
        return None
    open_rows = data.assignments.loc[
        data.assignments["status"] == "open", [Leads.lead_id, Reps.rep_id, "assigned_at"]
    ]
    owned = open_rows.merge(data.leads[[Leads.lead_id, "account_id"]], on=Leads.lead_id).dropna(
        subset=["account_id"]
    )
    owned = owned.sort_values("assigned_at", kind="stable").drop_duplicates(
        "account_id", keep="last"
    )
    return owned[["account_id", Reps.rep_id]].astype(str).reset_index(drop=True)
