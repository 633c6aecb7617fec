"""The checks of the data contract beyond each column's type: text parsed into values, each
lead's time order, the export's end, and the references between tables.

Every function records what it finds in a :class:`~features.problems.ProblemLog` rather than
raising, so that one run reports everything; :func:`features.schemas.check_crm` runs them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.problems import Expected, ProblemLog, show
from features.timestamps import (
    DAY_FIRST,
    FORMS,
    MONTH_FIRST,
    NAT,
    ParsedTimes,
    as_ns,
    parse_timestamps,
    show_time,
)

END_TOLERANCE_DAYS = 31
"""How far a date may lie after the export's end as set by its other leads (see
:func:`check_export_end`). Later is a typo or a planned date, never history. A month, because a
small export may end with one lone close weeks after its other events; a date years off (2031
in a 2024 export) is what moves the training cut-off and turns every open lead into a loss."""
END_MIN_LEADS = 10
"""Below this many leads with dates the export's end cannot be told from one late date: the
check is not made."""

_DATE_COLUMNS = {
    "reps": ["hire_date", "attributes_since"],
    "availability": ["date"],
    "leads": ["created_at"],
    "assignments": ["assigned_at", "first_contact_at", "closed_at"],
}
_BOOL_COLUMNS = {
    "reps": ["active"],
    "availability": ["available"],
    "assignments": ["reclaimable"],
}
_INT_COLUMNS = {
    "reps": ["daily_capacity", "max_open_leads"],
    "availability": ["capacity"],
    "leads": ["company_size"],
}
_FLOAT_COLUMNS = {"leads": ["expected_value"], "assignments": ["deal_value", "propensity"]}
# Yes/no columns whose empty cells have a meaning of their own.
_BOOL_WHEN_EMPTY = {("assignments", "reclaimable"): True}
_TRUE = {"true", "t", "yes", "y", "1", "1.0", "是", "active", "available"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "否", "inactive", "absent"}
_NOT_FINITE = "a finite number (not inf or NaN)"
_NAN_TEXT = r"(?i)[+-]?nan"
# Whole numbers beyond this lose digits as floats on the way to Int64.
_LARGEST_WHOLE = 2**53


def parse_values(table: str, frame: pd.DataFrame, timezone: str, log: ProblemLog) -> pd.DataFrame:
    """Parse dates, numbers and yes/no columns from text, recording each value not understood."""
    text_columns = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])]
    frame = frame.assign(**{c: frame[c].str.strip().replace("", pd.NA) for c in text_columns})
    updates: dict[str, pd.Series] = {}
    numeric = [(c, True) for c in _INT_COLUMNS.get(table, [])]
    numeric += [(c, False) for c in _FLOAT_COLUMNS.get(table, [])]
    if table == "leads":
        # Extra lead features (x_*) whose values are all numbers are numeric features.
        numeric += [
            (c, False) for c in frame.columns if c.startswith("x_") and _all_numbers(frame[c])
        ]
    for column, whole in numeric:
        if column in frame:
            updates[column] = _parse_number(table, frame, column, whole, log)
    parsed = {
        column: parse_timestamps(frame[column], timezone=timezone)
        for column in _DATE_COLUMNS[table]
        if column in frame
    }
    # One file is written in one locale: a column whose dates leave the day/month order open
    # takes the order that the table's other date columns prove, when they agree on one.
    proven = {DAY_FIRST for p in parsed.values() if p.day_first_at is not None}
    proven |= {MONTH_FIRST for p in parsed.values() if p.month_first_at is not None}
    for column, dates in parsed.items():
        if dates.ambiguous and len(proven) == 1:
            dates = parse_timestamps(frame[column], timezone=timezone, order=next(iter(proven)))
        updates[column] = _report_timestamps(table, frame, column, dates, log)
    for column in _BOOL_COLUMNS.get(table, []):
        if column in frame and not pd.api.types.is_bool_dtype(frame[column]):
            updates[column] = _parse_bool(table, frame, column, log)
    return frame.assign(**updates)


def _all_numbers(values: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(values):
        return True
    if not pd.api.types.is_string_dtype(values) or values.isna().all():
        return False
    try:
        pc.cast(_arrow_text(values), pa.float64())
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # some value is not plain: look closer
    number = pd.to_numeric(values, errors="coerce").notna() | values.str.fullmatch(_NAN_TEXT)
    return bool(number[values.notna()].all())


def _parse_number(
    table: str, frame: pd.DataFrame, column: str, whole: bool, log: ProblemLog
) -> pd.Series:
    """A numeric column from text (or numbers): inf, -inf, 1e309 and NaN are refused, as is
    text that is no number or, in a whole-number column, a fraction."""
    raw = frame[column]
    present = raw.notna()
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        parsed = raw.astype(float)
        nan_text = pd.Series(False, index=raw.index)
    else:
        try:
            # Arrow reads a column of plain numbers in one pass, NaN text as NaN (not empty).
            parsed = pd.Series(pc.cast(_arrow_text(raw), pa.float64()), index=raw.index)
            nan_text = present & parsed.isna()
            parsed = parsed.where(~nan_text).astype(float)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            parsed = pd.to_numeric(raw, errors="coerce").astype(float)
            nan_text = raw.astype("string").str.fullmatch(_NAN_TEXT).fillna(False)
    not_finite = np.isinf(parsed) | nan_text
    bad = present & parsed.isna() & ~nan_text
    if whole:
        finite = parsed.notna() & ~np.isinf(parsed)
        bad |= finite & ((parsed != parsed.round()) | (parsed.abs() > _LARGEST_WHOLE))
    log.add(table, not_finite, frame, column, _NOT_FINITE, scope=present, noun="values")
    expected = "a whole number" if whole else "a number"
    log.add(table, bad, frame, column, expected, scope=present, noun="values")
    parsed = parsed.where(~(bad | not_finite))
    return parsed.round().astype("Int64") if whole else parsed


def _report_timestamps(
    table: str, frame: pd.DataFrame, column: str, parsed: ParsedTimes, log: ProblemLog
) -> pd.Series:
    log.add(
        table,
        parsed.bad,
        frame,
        column,
        f"a date or date-time ({FORMS})",
        scope=frame[column].notna(),
        noun="values",
    )
    origin = log.origins[table]
    where = f"{origin.file} {column}"
    if parsed.mixed_order:
        day, month = parsed.day_first_at, parsed.month_first_at
        log.refuse_column(
            table,
            column,
            f"{where} mixes day-first and month-first dates: {origin.at(day)} has "
            f"{show(frame[column].iloc[day])} (day first), {origin.at(month)} has "
            f"{show(frame[column].iloc[month])} (month first); write every date of the column "
            "in the same order",
        )
    elif parsed.ambiguous:
        fix = "set date_format in the mapping"
        if not origin.mapped:
            fix += ", or write the dates as YYYY-MM-DD"
        log.refuse_column(table, column, f"ambiguous day/month order in {where}: {fix}")
    return parsed.values


def _parse_bool(table: str, frame: pd.DataFrame, column: str, log: ProblemLog) -> pd.Series:
    text = frame[column].astype("string").str.strip().str.lower()
    parsed = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    parsed[text.isin(_TRUE).fillna(False)] = True
    parsed[text.isin(_FALSE).fillna(False)] = False
    default = _BOOL_WHEN_EMPTY.get((table, column))
    if default is not None:
        parsed = parsed.mask(text.isna(), default)
    log.add(table, parsed.isna(), frame, column, "true/false (also yes/no, 1/0)")
    return parsed.fillna(False).astype(bool)


def coerce_leniently(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Best-effort coercion of a table that failed validation, so cross-table checks still run
    (dates and numbers are already parsed)."""
    out = frame.copy()
    for column in ("lead_id", "rep_id"):
        if column in out:
            out[column] = out[column].astype("string")
    return out


# --- time order -------------------------------------------------------------------------------


def lead_rows(t: dict[str, pd.DataFrame]) -> np.ndarray:
    """Each assignment's lead: the position of its first row in leads (-1: not in leads)."""
    leads, asg = t["leads"], t["assignments"]
    if "lead_id" not in leads or "lead_id" not in asg:
        return np.full(len(asg), -1)
    return positions_in(asg["lead_id"], leads["lead_id"])


def check_time_order(t: dict[str, pd.DataFrame], row: np.ndarray, log: ProblemLog) -> list[str]:
    """Check (and within a day repair, in ``t``) created <= assigned <= contacted, closed.

    ``row``: :func:`lead_rows`. Returns one sentence per kind of repair, with its count.
    """
    leads, asg = t["leads"], t["assignments"]
    if not {"lead_id", "created_at"} <= set(leads) or not {"lead_id", "assigned_at"} <= set(asg):
        return []
    created = pd.Series(
        np.where(row >= 0, leads["created_at"].to_numpy()[row], np.datetime64("NaT")),
        index=asg.index,
        dtype="datetime64[ns]",
    )
    lead_row = pd.Series(row, index=asg.index)
    leads_origin = log.origins["leads"]

    def before_created(column: str, values: pd.Series) -> Expected:
        def texts(hit: np.ndarray) -> list[str]:
            return [
                f"{column} on or after the lead's created_at ({column} {show_time(v)} is before "
                f"created_at {show_time(c)}, {leads_origin.file} {leads_origin.at(int(r))})"
                for v, c, r in zip(
                    values.iloc[hit], created.iloc[hit], lead_row.iloc[hit], strict=True
                )
            ]

        return texts

    repairs: list[str] = []
    assigned = _in_order(
        asg,
        "assigned_at",
        asg["assigned_at"],
        created,
        "the lead's created_at",
        log,
        before_created("assigned_at", asg["assigned_at"]),
        repairs,
    )
    updates = {"assigned_at": assigned}
    for column in ("closed_at", "first_contact_at"):
        if column not in asg:
            continue
        values = asg[column]
        if column == "closed_at":
            # A lead closed before it was created, even by a day, is no clock skew.
            early = values.dt.normalize() < created.dt.normalize()
            log.add(
                "assignments",
                early,
                asg,
                column,
                before_created(column, values),
                check=f"{column}<created_at",
                scope=values.notna() & created.notna(),
                noun="closed rows",
            )
        updates[column] = _in_order(
            asg,
            column,
            values,
            assigned,
            "assigned_at",
            log,
            _before(column, values, "assigned_at", assigned),
            repairs,
        )
    t["assignments"] = asg.assign(**updates)
    return repairs


def _in_order(
    asg: pd.DataFrame,
    column: str,
    values: pd.Series,
    earlier: pd.Series,
    earlier_name: str,
    log: ProblemLog,
    expected: Expected,
    repairs: list[str],
) -> pd.Series:
    """``values`` not before ``earlier``: on the same day moved to it (and reported), across
    days refused."""
    early = values < earlier
    same_day = early & (values.dt.normalize() == earlier.dt.normalize())
    log.add(
        "assignments",
        early & ~same_day,
        asg,
        column,
        expected,
        check=f"{column}<{earlier_name}",
        scope=values.notna() & earlier.notna(),
    )
    if same_day.any():
        repairs.append(
            f"assignments.{column}: {_plural(same_day.sum(), 'row')} earlier than "
            f"{earlier_name} on the same day (a date without a time, or clocks a little "
            f"apart): set to {earlier_name}"
        )
    return values.mask(same_day, earlier)


def _before(column: str, values: pd.Series, other: str, others: pd.Series) -> Expected:
    def texts(hit: np.ndarray) -> list[str]:
        return [
            f"{column} on or after {other} ({column} {show_time(v)} is before {other} "
            f"{show_time(o)})"
            for v, o in zip(values.iloc[hit], others.iloc[hit], strict=True)
        ]

    return texts


def check_export_end(t: dict[str, pd.DataFrame], row: np.ndarray, log: ProblemLog) -> None:
    """Refuse events more than END_TOLERANCE_DAYS after the export's end (see check_crm);
    ``row``: :func:`lead_rows`."""
    leads, asg = t["leads"], t["assignments"]
    events = [("leads", leads, "created_at")]
    events += [("assignments", asg, c) for c in ("assigned_at", "first_contact_at", "closed_at")]
    events = [(table, frame, c) for table, frame, c in events if {"lead_id", c} <= set(frame)]
    if not {"lead_id", "created_at"} <= set(leads) or "lead_id" not in asg:
        return
    # Each lead's latest event (NaT is the smallest int64, so it never wins a maximum).
    lead_end = as_ns(leads["created_at"]).copy()
    known = row >= 0
    for table, frame, column in events:
        if table == "assignments":
            times = as_ns(frame[column])
            np.maximum.at(lead_end, row[known], times[known])
    lead_end = np.sort(lead_end[lead_end != NAT])[::-1]
    if len(lead_end) < END_MIN_LEADS:
        return
    left_out = 1 + len(lead_end) // 1000
    limit = pd.Timestamp(lead_end[left_out]) + pd.Timedelta(days=END_TOLERANCE_DAYS)
    end = pd.Series([frame[c][frame[c] <= limit].max() for _, frame, c in events]).max()
    for table, frame, column in events:
        values = frame[column]

        def texts(hit: np.ndarray, values: pd.Series = values, column: str = column) -> list[str]:
            return [
                f"a date no later than the export's end ({column} {show_time(v)} is more than "
                f"{END_TOLERANCE_DAYS} days after the export's last date, {show_time(end)})"
                for v in values.iloc[hit]
            ]

        log.add(
            table,
            values > limit,
            frame,
            column,
            texts,
            check=f"{column}>end",
            scope=values.notna(),
            noun="values",
        )


# --- checks across tables ---------------------------------------------------------------------


def check_across_tables(t: dict[str, pd.DataFrame], row: np.ndarray, log: ProblemLog) -> None:
    """References between tables and each assignment's status against its dates and value;
    ``row``: :func:`lead_rows`."""
    reps, asg = t["reps"], t["assignments"]
    rep_ids = reps["rep_id"] if "rep_id" in reps else pd.Series([], dtype="string")
    needed = {"lead_id", "rep_id", "assigned_at", "status", "closed_at", "deal_value"}
    if needed <= set(asg.columns):
        add = log.add
        add(
            "assignments",
            row < 0,
            asg,
            "lead_id",
            "a lead_id that exists in leads",
        )
        add(
            "assignments",
            asg["rep_id"].notna().to_numpy() & (positions_in(asg["rep_id"], rep_ids) < 0),
            asg,
            "rep_id",
            "a rep_id that exists in reps",
        )
        status = asg["status"]
        # A history without reps at all (leads and outcomes only: a lead-scoring history,
        # features.lead_scoring) has open leads that nobody owns; anywhere else an open lead
        # without its rep is a lead the nightly run could neither keep nor reclaim.
        lead_scoring = len(reps) == 0 and not asg["rep_id"].notna().any()
        add(
            "assignments",
            (status == "open") & asg["rep_id"].isna() & (not lead_scoring),
            asg,
            "rep_id",
            "a rep for an open lead (only a won or lost row may have no rep)",
        )
        closed = status.isin(["won", "lost"])
        add(
            "assignments",
            closed & asg["closed_at"].isna(),
            asg,
            "closed_at",
            lambda hit: [f"a close date for a {s} lead (status is {s})" for s in status.iloc[hit]],
            check="closed without closed_at",
            scope=closed,
            noun="won or lost rows",
            missing=True,
        )
        is_open = status == "open"
        add(
            "assignments",
            is_open & asg["closed_at"].notna(),
            asg,
            "closed_at",
            "no close date while the status is open",
            scope=is_open,
            noun="open rows",
        )
        won = status == "won"
        add(
            "assignments",
            won & asg["deal_value"].isna(),
            asg,
            "deal_value",
            "a deal value >= 0 for a won lead (status is won)",
            scope=won,
            noun="won rows",
            missing=True,
        )
        open_rows = asg.index[is_open.fillna(False).to_numpy()]
        open_leads = asg.loc[open_rows, "lead_id"]
        twice = open_leads[open_leads.duplicated(keep=False)]
        first_open = twice.reset_index().groupby("lead_id")["index"].agg(list)
        origin = log.origins["assignments"]

        def also_open(hit: np.ndarray) -> list[str]:
            return [
                f"at most one open owner per lead ({lead} is also open on "
                + ", ".join(origin.at(r) for r in first_open[lead] if r != row)
                + ")"
                for row, lead in zip(hit, asg["lead_id"].iloc[hit], strict=True)
            ]

        mask = np.zeros(len(asg), bool)
        mask[twice.index.to_numpy()] = True
        add("assignments", mask, asg, "lead_id", also_open, check="open twice")
    avail = t.get("availability")
    if avail is not None and "rep_id" in avail:
        log.add(
            "availability",
            positions_in(avail["rep_id"], rep_ids) < 0,
            avail,
            "rep_id",
            "a rep_id that exists in reps",
        )


def positions_in(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """Position of each value's first occurrence in ``keys`` (-1: absent or empty).

    Computed in Arrow: pandas 3's ``isin`` and ``map`` on text columns go value by value over
    the keys (about 20 s for 1M ids against 1M on this machine; this takes a fraction of one).
    """
    found = pc.index_in(_arrow_text(values), value_set=_arrow_text(keys))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _arrow_text(values: pd.Series) -> pa.Array:
    return pa.array(values.astype("string[pyarrow]").array, type=pa.large_string())


def _plural(count: int | np.integer, noun: str) -> str:
    return f"{int(count):,} {noun}{'' if count == 1 else 's'}"
