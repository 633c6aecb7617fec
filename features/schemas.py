"""The canonical tables: the contract between every stage of leadmatch.

Each table is a pandas DataFrame validated by one pandera ``DataFrameModel``. Validation is
lazy: :func:`validate_crm` collects *every* problem of every table, including the checks that
span rows and tables, so a user sees all that is wrong with an export in one run: one row per
bad cell (the columns of :data:`PROBLEM_COLUMNS`), and one sentence per column that is wrong as
a whole (a day/month order the column leaves open, a value missing on every won row...).

Text is parsed once, before the models check it (:mod:`features.checks`: timestamps by
:mod:`features.timestamps` onto the team's clock, finite numbers, yes/no values); then each
lead's time order (created, assigned, then contacted or closed, nothing after the export's end)
and the references between tables are checked. Messages name each table's :class:`Origin`
(file and line) and say what to change (:mod:`features.problems`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

from features import checks
from features.problems import PROBLEM_COLUMNS as PROBLEM_COLUMNS
from features.problems import Origin, ProblemLog
from features.problems import show as show

# Kept importable from here: adapters and older callers parse dates through this name.
from features.timestamps import parse_dates as parse_dates

ASSIGNMENT_STATUSES = ("open", "won", "lost")


class Reps(pa.DataFrameModel):
    """One row per sales rep.

    ``team``, ``region`` and ``skills`` are today's values. ``attributes_since`` (optional date
    or date-time) is when they last changed: they have held unchanged since then (e.g. the hire
    date, or the date the CRM last changed them). The pair model reads them for a past
    assignment only when it was made at or after that time, so today's values never leak into
    older history; empty or absent means "unknown since when", and they are not read for any past
    assignment.
    """

    rep_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    name: Series[str] = pa.Field(nullable=True)
    team: Series[str] = pa.Field(nullable=True)
    region: Series[str] = pa.Field(nullable=True)
    hire_date: Series[pd.Timestamp] = pa.Field()
    skills: Series[str] = pa.Field(nullable=True)
    daily_capacity: Series[pd.Int64Dtype] = pa.Field(ge=0)
    max_open_leads: Series[pd.Int64Dtype] | None = pa.Field(ge=0, nullable=True)
    active: Series[bool] = pa.Field()
    languages: Series[str] | None = pa.Field(nullable=True)
    attributes_since: Series[pd.Timestamp] | None = pa.Field(nullable=True)

    class Config:
        coerce = True
        strict = False


class Availability(pa.DataFrameModel):
    """Optional: one row per rep and day that differs from the default (available, full capacity)."""

    rep_id: Series[str] = pa.Field()
    date: Series[pd.Timestamp] = pa.Field()
    available: Series[bool] = pa.Field()
    capacity: Series[pd.Int64Dtype] | None = pa.Field(ge=0, nullable=True)

    class Config:
        coerce = True
        strict = False
        unique = ["rep_id", "date"]


class Leads(pa.DataFrameModel):
    """One row per lead. Columns whose names start with ``x_`` are extra lead features."""

    lead_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    created_at: Series[pd.Timestamp] = pa.Field()
    source: Series[str] = pa.Field(nullable=True)
    industry: Series[str] = pa.Field(nullable=True)
    region: Series[str] = pa.Field(nullable=True)
    product: Series[str] = pa.Field(nullable=True)
    company_size: Series[pd.Int64Dtype] | None = pa.Field(ge=0, nullable=True)
    expected_value: Series[float] | None = pa.Field(ge=0, nullable=True)
    account_id: Series[str] | None = pa.Field(nullable=True)
    language: Series[str] | None = pa.Field(nullable=True)

    class Config:
        coerce = True
        strict = False


class Assignments(pa.DataFrameModel):
    """Assignment history and current ownership: one row per (lead, rep) hand-over.

    A lead may have several rows (it was reassigned) but at most one ``open`` row. Times run
    in order: the lead's ``created_at`` <= ``assigned_at`` <= ``first_contact_at`` and
    ``closed_at`` (an inversion within one day is repaired, see :func:`check_crm`).
    ``rep_id`` may be empty on a won or lost row only: an outcome whose rep is unknown (e.g. a
    lead without an owner that a mapping declares lost with ``unassigned_outcome``). Such a row
    counts in the lead-level statistics (base rate, segment and account win rates), never in a
    rep's or team's record, and is not a lead x rep training pair.
    ``reclaimable`` (optional, true/false): whether an open lead may be taken back from its rep
    after the first-contact SLA (e.g. false for late-stage deals); absent means true.
    """

    lead_id: Series[str] = pa.Field()
    rep_id: Series[str] = pa.Field(nullable=True)
    assigned_at: Series[pd.Timestamp] = pa.Field()
    first_contact_at: Series[pd.Timestamp] = pa.Field(nullable=True)
    status: Series[str] = pa.Field(isin=list(ASSIGNMENT_STATUSES))
    closed_at: Series[pd.Timestamp] = pa.Field(nullable=True)
    deal_value: Series[float] = pa.Field(nullable=True, ge=0)
    propensity: Series[float] | None = pa.Field(nullable=True, gt=0, le=1)
    reclaimable: Series[bool] | None = pa.Field()

    class Config:
        coerce = True
        strict = False


@dataclass(frozen=True)
class CrmData:
    """The canonical tables of one data folder (``availability`` is optional)."""

    reps: pd.DataFrame
    leads: pd.DataFrame
    assignments: pd.DataFrame
    availability: pd.DataFrame | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables present, by canonical name."""
        out = {"reps": self.reps, "leads": self.leads, "assignments": self.assignments}
        if self.availability is not None:
            out["availability"] = self.availability
        return out


SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "reps": Reps,
    "availability": Availability,
    "leads": Leads,
    "assignments": Assignments,
}


class CrmValidationError(ValueError):
    """Raised when canonical tables break the contract.

    ``problems``: one row per bad cell (:data:`PROBLEM_COLUMNS`; ``row`` is the table's row
    position, 0-based, NA for a missing column). ``columns``: one sentence per column that is
    wrong as a whole, naming the file and what to change.
    """

    def __init__(self, problems: pd.DataFrame, columns: Sequence[str] = ()):
        self.problems = problems
        self.columns = list(columns)
        n = len(problems) + len(self.columns)
        lines = [f"{n} problem{'s' if n != 1 else ''} in the CRM data:"]
        lines += [f"- {sentence}" for sentence in self.columns]
        if len(problems):
            lines.append(format_problems(problems))
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class CheckedCrm:
    """Validated tables and one sentence per repair made to them (with counts)."""

    data: CrmData
    repairs: list[str] = field(default_factory=list)


def format_problems(problems: pd.DataFrame, limit: int = 50) -> str:
    """Problems as a plain-text table (at most ``limit`` rows, then a count of the rest)."""
    shown = problems.head(limit).astype(str)
    text = shown.to_string(index=False)
    if len(problems) > limit:
        text += f"\n... and {len(problems) - limit} more"
    return text


def validate_crm(
    data: CrmData, *, timezone: str = "UTC", origins: Mapping[str, Origin] | None = None
) -> CrmData:
    """Validate and coerce every table: :func:`check_crm` without the list of repairs."""
    return check_crm(data, timezone=timezone, origins=origins).data


def check_crm(
    data: CrmData, *, timezone: str = "UTC", origins: Mapping[str, Origin] | None = None
) -> CheckedCrm:
    """Validate and coerce every table, then the checks that span rows and tables.

    ``timezone``: the team's clock (IANA name); zoned timestamps are converted to it, naive ones
    are taken as on it. ``origins``: where each table came from, for messages (default
    ``<table>.csv``, lines counted from a header on line 1).

    Time order, per lead: ``created_at`` <= ``assigned_at`` <= ``first_contact_at`` and
    ``closed_at``. An inversion within one calendar day (a date written without a time beside a
    date-time, or two systems' clocks a little apart) is repaired, the later event moved to
    the earlier one's time, and reported in ``repairs``; across days it is refused. No event
    (created, assigned, contacted, closed) may lie more than :data:`checks.END_TOLERANCE_DAYS` after
    the export's end: the latest event of its leads, leaving out the latest 1 + n/1000 leads so
    that a few absurd dates cannot move it (checked from :data:`checks.END_MIN_LEADS` leads on).

    Returns a :class:`CheckedCrm` with coerced dtypes (the input is not mutated). Raises
    :class:`CrmValidationError` listing *every* problem.
    """
    origins = {t: (origins or {}).get(t) or Origin(f"{t}.csv") for t in data.tables()}
    log = ProblemLog(origins)
    coerced: dict[str, pd.DataFrame] = {}
    for name, frame in data.tables().items():
        frame = checks.parse_values(name, frame.reset_index(drop=True), timezone, log)
        try:
            coerced[name] = SCHEMAS[name].validate(frame, lazy=True)
        except pa.errors.SchemaErrors as err:
            log.pandera(name, frame, err.failure_cases)
            coerced[name] = checks.coerce_leniently(name, frame)
    rows = checks.lead_rows(coerced)
    repairs = checks.check_time_order(coerced, rows, log)
    checks.check_export_end(coerced, rows, log)
    checks.check_across_tables(coerced, rows, log)
    problems, columns = log.report()
    if len(problems) or columns:
        raise CrmValidationError(problems, columns)
    return CheckedCrm(replace(data, **coerced), repairs)
