"""What a mapping derives once the columns are mapped: the ownership history's missing parts
(unowned rows, assignment times, first contacts, reclaimable stages, unowned leads as losses)
and the reps' hire dates and capacities.

Every function takes and returns frames that still carry their origin columns (``__file``,
``__row``, ...; see :mod:`features.adapters.tables`) and reports what it did in ``repairs``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.adapters.spec import AssignmentsMapping, MappingError, formats
from features.adapters.text import clean_text, n, plural, where
from features.schemas import ASSIGNMENT_STATUSES, Leads, Reps, show
from features.timestamps import parse_dates, parse_format, to_clock

# The share of days a derived daily capacity covers: a rep's volume on a busy, not record, day.
CAPACITY_QUANTILE = 0.9


def derive_assignments(
    asg: pd.DataFrame,
    leads: pd.DataFrame,
    leads_origin: pd.DataFrame,
    spec: AssignmentsMapping,
    frames: dict[str, pd.DataFrame],
    gone: dict[str, set[str]],
    repairs: list[str],
    errors: list[str],
    timezone: str = "UTC",
) -> pd.DataFrame:
    """The ownership history from the mapped rows (timestamps compared on ``timezone``).

    Rows of leads or reps removed by the filters go; rows without an owner are unassigned
    leads when open and outcomes with no rep when won or lost; a missing ``assigned_at`` is the
    lead's creation time (an opportunity is owned from its creation); open rows have no close
    date; then, as the mapping asks, the reclaimable stages, the first contacts from activity
    files, and leads nobody owns as lost outcomes. A status nobody recoded and a deal value or
    close date missing on every row that needs one are added to ``errors``, once each.
    """
    files = " + ".join(spec.files)
    if Reps.rep_id not in asg:  # an export without owners: leads and outcomes (lead scoring)
        asg = asg.assign(rep_id=pd.Series(pd.NA, index=asg.index, dtype="string"))
    asg = _drop_filtered(asg, gone, files, repairs)
    _check_status(asg, spec, errors)
    asg = _without_owner(asg, files, repairs)
    if "assigned_at" not in asg:
        asg = _assigned_when_created(asg, leads, leads_origin, repairs)
    if "closed_at" in asg:
        stale = (asg["status"] == "open").fillna(False).astype(bool) & asg["closed_at"].notna()
        if stale.any():
            # CRMs fill "Close Date" with the *expected* close date of open deals.
            asg = asg.assign(closed_at=asg["closed_at"].where(~stale))
            repairs.append(
                f"assignments.closed_at: cleared for {plural(stale.sum(), 'open row')} "
                "(an expected close date is not a close date)"
            )
    _whole_columns(asg, spec, errors)
    if spec.reclaimable_stages is not None:
        asg = _reclaimable(asg, spec.reclaimable_stages, repairs)
    if spec.first_contact:
        asg = _first_contact(asg, spec, frames, repairs, errors, timezone)
    if spec.unassigned_outcome == "lost":
        asg = _unowned_are_lost(asg, leads, leads_origin, repairs, timezone)
    return asg.reset_index(drop=True)


def times(values: pd.Series, fmt: list[str] | None = None, timezone: str = "UTC") -> pd.Series:
    """Timestamps of a text (or already typed) column on the team's clock ``timezone``: the
    formats ``fmt`` tried in turn if given, else the forms :mod:`features.timestamps`
    recognises; a value that cannot be read becomes NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return to_clock(values, timezone)
    if fmt is None:
        return parse_dates(values.astype("string"), timezone=timezone)
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    for one in fmt:
        todo = parsed.isna()
        parsed[todo] = to_clock(parse_format(values[todo], one), timezone)
    return parsed


def _drop_filtered(
    asg: pd.DataFrame, gone: dict[str, set[str]], files: str, repairs: list[str]
) -> pd.DataFrame:
    for key, noun in ((Leads.lead_id, "leads"), (Reps.rep_id, "reps")):
        hit = asg[key].isin(gone.get(key, set())).fillna(False).to_numpy(dtype=bool)
        if hit.any():
            repairs.append(
                f"assignments: {plural(hit.sum(), 'row')} of {files} dropped with their {noun} "
                "(removed by the filters)"
            )
            asg = asg[~hit]
    return asg


def _check_status(asg: pd.DataFrame, spec: AssignmentsMapping, errors: list[str]) -> None:
    status = asg["status"]
    bad = (status.notna() & ~status.isin(ASSIGNMENT_STATUSES)).to_numpy(dtype=bool)
    if not bad.any():
        return
    counts = status[bad].astype("string").value_counts().sort_index()
    counts = counts.sort_values(ascending=False, kind="stable")
    shown = ", ".join(f"{value!r} ({n(count)})" for value, count in counts.head(10).items())
    more = f" and {len(counts) - 10} more values" if len(counts) > 10 else ""
    errors.append(
        f"assignments.status: {plural(bad.sum(), 'row')} of {where(spec, 'status')} are not "
        f"open, won or lost after recoding: {shown}{more}; recode each stage under "
        "values: status (e.g. {Closed Won: won, Closed Lost: lost, '*': open})"
    )


def _without_owner(asg: pd.DataFrame, files: str, repairs: list[str]) -> pd.DataFrame:
    status = asg["status"]
    closed = status.isin(["won", "lost"]).fillna(False).to_numpy(dtype=bool)
    no_owner = asg[Reps.rep_id].isna().to_numpy(dtype=bool)
    if (no_owner & ~closed).any():
        repairs.append(
            f"assignments: {plural((no_owner & ~closed).sum(), 'row')} of {files} without a "
            "rep_id: those leads are unassigned"
        )
    if (no_owner & closed).any():
        won = int((no_owner & (status == "won").fillna(False).to_numpy(dtype=bool)).sum())
        total = int((no_owner & closed).sum())
        repairs.append(
            f"assignments: {plural(total, 'won or lost row')} of {files} without a rep_id "
            f"({n(won)} won, {n(total - won)} lost): kept as outcomes with no rep (they count "
            "in the lead-level win rates, never for a rep)"
        )
    return asg[~(no_owner & ~closed)]


def _assigned_when_created(
    asg: pd.DataFrame, leads: pd.DataFrame, leads_origin: pd.DataFrame, repairs: list[str]
) -> pd.DataFrame:
    first = ~leads[Leads.lead_id].duplicated()
    by_lead = leads_origin[first.to_numpy()].set_index(leads.loc[first, Leads.lead_id].to_numpy())
    created = pd.Series(leads.loc[first, "created_at"].to_numpy(), index=by_lead.index)
    repairs.append(
        "assignments.assigned_at: not in the export, set to the lead's created_at "
        f"for {plural(len(asg), 'row')}"
    )
    return asg.assign(
        assigned_at=asg[Leads.lead_id].map(created),
        **{
            "__file:assigned_at": asg[Leads.lead_id].map(by_lead["file"]),
            "__row:assigned_at": asg[Leads.lead_id].map(by_lead["row"]).astype("Int64"),
        },
    )


def _whole_columns(asg: pd.DataFrame, spec: AssignmentsMapping, errors: list[str]) -> None:
    """A deal value missing on every won row, a close date on every closed one: one message."""
    status = asg["status"]
    won = (status == "won").fillna(False).to_numpy(dtype=bool)
    closed = status.isin(["won", "lost"]).fillna(False).to_numpy(dtype=bool)
    provided = spec.provided()
    for column, rows, noun, fix in (
        ("deal_value", won, "won row", "add `defaults: {deal_value: 0}`"),
        ("closed_at", closed, "won or lost row", "map the close date (e.g. closed_at: Close Date)"),
    ):
        if not rows.any() or (column in asg and asg.loc[rows, column].notna().any()):
            continue
        if column not in provided:
            lead = f"map it, or {fix}" if column == "deal_value" else fix
            errors.append(
                f"assignments.{column} is missing on all {plural(rows.sum(), noun)}: {lead}"
            )
        else:
            errors.append(
                f"assignments.{column} is missing on all {plural(rows.sum(), noun)} "
                f"({where(spec, column)} is empty on them): map the column that holds it"
                + (f", or {fix}" if column == "deal_value" else "")
            )


def _reclaimable(asg: pd.DataFrame, stages: list[str], repairs: list[str]) -> pd.DataFrame:
    stage = asg["__stage"].astype("string")
    is_open = (asg["status"] == "open").fillna(False).to_numpy(dtype=bool)
    listed = stage.isin(stages).fillna(False).to_numpy(dtype=bool)

    def by_stage(mask: np.ndarray) -> str:
        counts = stage[mask].value_counts()
        return ", ".join(f"{value} {n(count)}" for value, count in counts.items())

    yes, no = is_open & listed, is_open & ~listed
    unseen = [s for s in stages if s not in set(stage.dropna())]
    repairs.append(
        "assignments.reclaimable: open rows that may be reclaimed after the first-contact SLA "
        f"(stages {', '.join(stages)}): {n(yes.sum())}"
        + (f" ({by_stage(yes)})" if yes.any() else "")
        + f"; open rows in other stages, kept with their rep: {n(no.sum())}"
        + (f" ({by_stage(no)})" if no.any() else "")
        + (f"; no assignment is in stage {', '.join(map(repr, unseen))}" if unseen else "")
    )
    return asg.drop(columns="__stage").assign(reclaimable=np.where(is_open, listed, True))


def _first_contact(
    asg: pd.DataFrame,
    spec: AssignmentsMapping,
    frames: dict[str, pd.DataFrame],
    repairs: list[str],
    errors: list[str],
    timezone: str,
) -> pd.DataFrame:
    """Each row's first contact: its lead's earliest activity at or after ``assigned_at``, by
    its rep where the activity file says who did it."""
    parts = []
    for source in spec.first_contact:
        raw = frames[source.file]
        text = clean_text(raw[source.at])
        at = times(text, formats(source.date_format), timezone)
        bad = (at.isna() & text.notna()).to_numpy(dtype=bool)
        if bad.any():
            examples = ", ".join(repr(show(v)) for v in text[bad].drop_duplicates().head(5))
            what = (
                f"not matching date_format {source.date_format!r}"
                if source.date_format
                else "that are not dates"
            )
            errors.append(
                f"assignments.first_contact_at: {source.file} column {source.at!r} has "
                f"{plural(bad.sum(), 'value')} {what}, e.g. {examples}; fix the values or "
                "the date_format of this activity file"
            )
        shown = text if source.date_format is None else at.dt.strftime("%Y-%m-%d %H:%M:%S")
        part = pd.DataFrame(
            {
                Leads.lead_id: clean_text(raw[source.lead]),
                "act_rep": clean_text(raw[source.rep]) if source.rep else pd.NA,
                "any_rep": source.rep is None,
                "act_at": at.to_numpy(),
                "act_text": shown.to_numpy(dtype=object),
                "act_file": source.file,
                "act_row": raw.index.to_numpy(),
            }
        )
        parts.append(
            part[part[Leads.lead_id].notna().to_numpy() & part["act_at"].notna().to_numpy()]
        )
    acts = pd.concat(parts, ignore_index=True)
    left = pd.DataFrame(
        {
            "pos": np.arange(len(asg)),
            Leads.lead_id: asg[Leads.lead_id].to_numpy(dtype=object),
            Reps.rep_id: asg[Reps.rep_id].to_numpy(dtype=object),
            "assigned": times(
                asg["assigned_at"], spec.date_format_of("assigned_at"), timezone
            ).to_numpy(),
        }
    )
    pairs = left.merge(acts.assign(lead_id=acts[Leads.lead_id].astype(object)), on=Leads.lead_id)
    by_rep = (pairs["act_rep"].astype(object) == pairs[Reps.rep_id]).to_numpy(dtype=bool)
    after = (pairs["act_at"] >= pairs["assigned"]).to_numpy(dtype=bool)
    fits = after & (pairs["any_rep"].to_numpy(dtype=bool) | by_rep)
    pairs = pairs[fits]
    first = pairs.sort_values(["pos", "act_at"], kind="stable").drop_duplicates("pos")
    contact = pd.Series(None, index=range(len(asg)), dtype=object)
    file = pd.Series(None, index=range(len(asg)), dtype=object)
    row = pd.Series(pd.NA, index=range(len(asg)), dtype="Int64")
    contact[first["pos"].to_numpy()] = first["act_text"].to_numpy()
    file[first["pos"].to_numpy()] = first["act_file"].to_numpy()
    row[first["pos"].to_numpy()] = first["act_row"].to_numpy()
    about = acts[Leads.lead_id].isin(set(asg[Leads.lead_id].dropna())).to_numpy(dtype=bool)
    used = len(pairs[["act_file", "act_row"]].drop_duplicates())
    owners = [s.file for s in spec.first_contact if s.rep is not None]
    by_whom = f", by the assigned rep in {', '.join(owners)}" if owners else ""
    notes = []
    if (~about).any():
        notes.append(f"{plural((~about).sum(), 'activity row')} with no lead of the assignments")
    if about.sum() > used:
        notes.append(
            f"{plural(about.sum() - used, 'activity row')} before their lead's assignment"
            + (" or by another rep" if owners else "")
        )
    repairs.append(
        "assignments.first_contact_at: the earliest activity at or after each assignment"
        f"{by_whom}, from {plural(len(acts), 'activity row')} in "
        f"{', '.join(dict.fromkeys(s.file for s in spec.first_contact))}: set for "
        f"{n(len(first))} of {plural(len(asg), 'row')}"
        + (f"; not used: {', '.join(notes)}" if notes else "")
    )
    asg = asg.reset_index(drop=True)
    return asg.assign(
        first_contact_at=contact,
        **{"__file:first_contact_at": file, "__row:first_contact_at": row},
    )


def _unowned_are_lost(
    asg: pd.DataFrame,
    leads: pd.DataFrame,
    leads_origin: pd.DataFrame,
    repairs: list[str],
    timezone: str,
) -> pd.DataFrame:
    """Leads with no assignment row become lost outcomes with no rep (unassigned_outcome)."""
    lone = leads[Leads.lead_id].notna() & ~leads[Leads.lead_id].isin(
        set(asg[Leads.lead_id].dropna())
    )
    lone &= ~leads[Leads.lead_id].duplicated()
    lone = lone.to_numpy(dtype=bool)
    if not lone.any():
        repairs.append(
            "assignments: unassigned_outcome is lost, but every lead has an owner: no outcome added"
        )
        return asg
    dates = [leads["created_at"]] + [
        asg[c] for c in ("assigned_at", "closed_at", "first_contact_at") if c in asg
    ]
    latest = [times(d, timezone=timezone).max() for d in dates]
    end = max(t for t in latest if pd.notna(t))
    closed = (
        end
        if pd.api.types.is_datetime64_any_dtype(asg["closed_at"])
        else f"{end:%Y-%m-%d %H:%M:%S}"
    )
    rows = pd.DataFrame(
        {
            Leads.lead_id: leads.loc[lone, Leads.lead_id].to_numpy(),
            Reps.rep_id: pd.NA,
            "assigned_at": leads.loc[lone, "created_at"].to_numpy(),
            "status": "lost",
            "closed_at": closed,
            "__file": leads_origin.loc[lone, "file"].to_numpy(),
            "__row": leads_origin.loc[lone, "row"].to_numpy(),
        }
    )
    if "reclaimable" in asg:
        rows["reclaimable"] = True
    repairs.append(
        f"assignments: {plural(len(rows), 'lead')} without an owner taken as lost "
        "(unassigned_outcome: lost): each is a lost outcome with no rep, assigned at its "
        f"created_at and closed on the export date {end:%Y-%m-%d} (the latest date in the "
        "export); they count as not won in the base rate and the lead-level win rates, never "
        "for a rep"
    )
    return pd.concat([asg, rows], ignore_index=True)


def derive_reps(
    reps: pd.DataFrame,
    asg: pd.DataFrame,
    leads: pd.DataFrame,
    repairs: list[str],
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Hire dates and capacities the mapping lacks, from each rep's history; active and name."""
    need = [c for c in ("hire_date", "daily_capacity") if c not in reps]
    if need:
        assigned = times(asg["assigned_at"], timezone=timezone)
        known = assigned.notna() & asg[Reps.rep_id].isin(reps[Reps.rep_id])
        dates = [assigned, times(leads["created_at"], timezone=timezone)]
        if "closed_at" in asg:
            dates.append(times(asg["closed_at"], timezone=timezone))
        as_of = pd.concat(dates).max()
        if not known.any():
            raise MappingError(
                f"reps: {' and '.join(need)} not in the mapping and there is no assignment "
                "history to derive them from; map them or give them values in defaults"
            )
        derived, notes = rep_history(
            reps[Reps.rep_id],
            asg.loc[known, Reps.rep_id],
            assigned[known],
            as_of,
            "assigned_at",
            need,
        )
        reps = reps.assign(**{c: derived[c].to_numpy() for c in need})
        repairs.extend(notes)
    if "active" not in reps:
        reps = reps.assign(active=True)
        repairs.append(
            f"reps.active: not in the export, set to True for all {plural(len(reps), 'rep')}"
        )
    if "name" not in reps:
        reps = reps.assign(name=reps[Reps.rep_id])
        repairs.append("reps.name: not in the export, set to the rep_id")
    return reps


def rep_history(
    rep_ids: pd.Series,
    owners: pd.Series,
    assigned_at: pd.Series,
    as_of: pd.Timestamp,
    date_label: str,
    need: list[str],
) -> tuple[pd.DataFrame, list[str]]:
    """``hire_date`` and ``daily_capacity`` for reps whose export lacks them, from their history.

    ``rep_ids``: every rep (n rows); ``owners`` and ``assigned_at`` (datetime): one row per past
    assignment; ``need``: which of the two columns to derive. Returns a frame of n rows (in the
    order of ``rep_ids``) with ``hire_date``, the rep's first assignment day, and
    ``daily_capacity``, the rep's new assignments per calendar day on a busy day: the
    ``CAPACITY_QUANTILE`` quantile over the days from their first to their last assignment,
    idle days included, rounded up, at least 1. Reps with no history are taken as new hires:
    hired on ``as_of``, with the median capacity of the others. Also returns one sentence per
    derivation for the repairs report (``date_label`` names the date in those sentences).
    """
    days = assigned_at.dt.normalize().to_numpy()
    by_rep = pd.Series(days).groupby(owners.to_numpy())
    first = by_rep.min()
    capacity = by_rep.apply(_busy_day_volume).astype("Int64")
    median = math.ceil(float(capacity.median()))
    ids = pd.Index(rep_ids)
    derived = pd.DataFrame(
        {
            "hire_date": first.reindex(ids).fillna(as_of.normalize()).to_numpy(),
            "daily_capacity": capacity.reindex(ids).fillna(median).to_numpy(),
        }
    )
    notes = []
    with_history = n(ids.isin(first.index).sum())
    if "hire_date" in need:
        notes.append(
            f"reps.hire_date: not in the export, set to each rep's first {date_label} "
            f"({with_history} reps)"
        )
    if "daily_capacity" in need:
        notes.append(
            "reps.daily_capacity: not in the export, set to each rep's typical daily volume "
            f"(new leads on a busy day: the {CAPACITY_QUANTILE:.0%} quantile of leads per day "
            f"between their first and last {date_label}, rounded up): "
            f"{capacity.min()} to {capacity.max()} for {with_history} reps"
        )
    missing = [str(r) for r in ids if r not in first.index]
    if missing:
        what = []
        if "hire_date" in need:
            what.append(f"hire_date set to the export date {as_of:%Y-%m-%d} (new hires)")
        if "daily_capacity" in need:
            what.append(f"daily_capacity set to the median of the others ({median})")
        names = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        notes.append(
            f"{plural(len(missing), 'rep')} with no assignment history ({names}): kept as reps "
            "with no history, " + " and ".join(what)
        )
    return derived, notes


def _busy_day_volume(days: pd.Series) -> int:
    per_day = days.value_counts()
    span = (days.max() - days.min()).days + 1
    counts = np.concatenate([per_day.to_numpy(), np.zeros(span - len(per_day))])
    return max(1, math.ceil(float(np.quantile(counts, CAPACITY_QUANTILE))))
