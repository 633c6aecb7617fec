"""The canonical tables: the contract between every stage of leadmatch.

Each table is a pandas DataFrame validated by one pandera ``DataFrameModel``. Validation is
lazy: :func:`validate_crm` collects *every* problem of every table, including the checks that
span tables, into one frame with the columns of :data:`PROBLEM_COLUMNS`, so a user sees all
that is wrong with an export in one run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

ASSIGNMENT_STATUSES = ("open", "won", "lost")
PROBLEM_COLUMNS = ["table", "row", "column", "value", "expected"]


class Reps(pa.DataFrameModel):
    """One row per sales rep."""

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

    A lead may have several rows (it was reassigned) but at most one ``open`` row.
    ``reclaimable`` (optional, true/false): whether an open lead may be taken back from its rep
    after the first-contact SLA (e.g. false for late-stage deals); absent means true.
    """

    lead_id: Series[str] = pa.Field()
    rep_id: Series[str] = pa.Field()
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
    """Raised when canonical tables break the contract; ``problems`` lists every failure."""

    def __init__(self, problems: pd.DataFrame):
        self.problems = problems
        n = len(problems)
        super().__init__(
            f"{n} problem{'s' if n != 1 else ''} in the CRM data:\n{format_problems(problems)}"
        )


def format_problems(problems: pd.DataFrame, limit: int = 50) -> str:
    """Problems as a plain-text table (at most ``limit`` rows, then a count of the rest)."""
    shown = problems.head(limit).astype(str)
    text = shown.to_string(index=False)
    if len(problems) > limit:
        text += f"\n... and {len(problems) - limit} more"
    return text


def validate_crm(data: CrmData) -> CrmData:
    """Validate and coerce every table, then the checks that span rows and tables.

    Returns a new ``CrmData`` with coerced dtypes (the input is not mutated). Raises
    :class:`CrmValidationError` listing *every* problem: ``table``, ``row`` (the table's row
    position, 0-based; loaders translate it to a file line), ``column``, ``value``, ``expected``.
    """
    problems: list[pd.DataFrame] = []
    coerced: dict[str, pd.DataFrame] = {}
    for name, frame in data.tables().items():
        frame, parse_problems = _parse_values(name, frame.reset_index(drop=True))
        problems.append(parse_problems)
        try:
            coerced[name] = SCHEMAS[name].validate(frame, lazy=True)
        except pa.errors.SchemaErrors as err:
            problems.append(_schema_problems(name, err.failure_cases))
            coerced[name] = _coerce_leniently(name, frame)
    problems.extend(_cross_table_problems(coerced))
    found = [p for p in problems if len(p)]
    if found:
        table = pd.concat(found, ignore_index=True)[PROBLEM_COLUMNS]
        table["row"] = table["row"].astype("Int64")
        # One problem per cell: a value that could not be parsed is not also reported as empty.
        table = table.drop_duplicates(["table", "row", "column"])
        table = table.sort_values(["table", "row", "column"], na_position="first", kind="stable")
        raise CrmValidationError(table.reset_index(drop=True))
    return replace(data, **coerced)


# --- helpers ---------------------------------------------------------------------------------

_CHECK_WORDS = {
    "not_nullable": "a value (it must not be empty)",
    "field_uniqueness": "a unique value (this one appears more than once)",
    "multiple_fields_uniqueness": "a unique combination of {column}",
    "column_in_dataframe": "the column to be present",
}


def _expected_text(check: str, column: str) -> str:
    check = str(check)
    if check.startswith("coerce_dtype("):
        dtype = check[len("coerce_dtype(") : -1].strip("'")
        words = {
            "datetime64[ns]": "a date or date-time (e.g. 2024-03-01 or 2024-03-01 14:30)",
            "bool": "true/false (also yes/no, 1/0)",
            "Int64": "a whole number",
            "int64": "a whole number",
            "float64": "a number",
        }
        return words.get(dtype, f"a value of type {dtype}")
    if check.startswith("isin("):
        return "one of " + check[len("isin(") : -1]
    if check.startswith("greater_than_or_equal_to("):
        return "a number >= " + check[len("greater_than_or_equal_to(") : -1]
    if check.startswith("greater_than("):
        return "a number > " + check[len("greater_than(") : -1]
    if check.startswith("less_than_or_equal_to("):
        return "a number <= " + check[len("less_than_or_equal_to(") : -1]
    if check.startswith("str_length("):
        return "a non-empty text"
    return _CHECK_WORDS.get(check, check).format(column=column)


def _schema_problems(table: str, failures: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for case in failures.itertuples(index=False):
        column = case.column if isinstance(case.column, str) else str(case.column)
        if case.check == "column_in_dataframe":
            column = str(case.failure_case)
        index = case.index
        rows.append(
            {
                "table": table,
                "row": None if pd.isna(index) else int(index),
                "column": column,
                "value": "" if case.check == "column_in_dataframe" else _show(case.failure_case),
                "expected": _expected_text(case.check, column),
            }
        )
    return pd.DataFrame(rows, columns=PROBLEM_COLUMNS)


def _show(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "(empty)"
    return str(value)


_DATE_COLUMNS = {
    "reps": ["hire_date"],
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


def parse_dates(values: pd.Series) -> pd.Series:
    """Parse ISO and common Excel date forms, element by element; unparseable values become NaT.

    Accepts ``2024-03-01``, ``2024-03-01 14:30``, ``2024/3/1``, ``03/01/2024`` (month first),
    ``2024年3月1日`` and Excel serial day numbers (e.g. ``45352``).
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[ns]")
    text = values.astype("string").str.strip()
    text = text.str.replace(r"^(\d{4})年(\d{1,2})月(\d{1,2})日", r"\1-\2-\3", regex=True)
    serial = pd.to_numeric(text.where(text.str.fullmatch(r"\d{5}(\.\d+)?")), errors="coerce")
    parsed = pd.to_datetime(text.where(serial.isna()), format="mixed", errors="coerce")
    from_serial = pd.to_datetime(serial, unit="D", origin="1899-12-30", errors="coerce")
    return parsed.fillna(from_serial).astype("datetime64[ns]")


def _parse_values(table: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse dates and yes/no columns from text, reporting each value that is not understood."""
    found = []
    text_columns = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])]
    blank_to_na = {c: frame[c].str.strip().replace("", pd.NA) for c in text_columns}
    frame = frame.assign(**blank_to_na)
    updates = {}
    numeric = [(c, True) for c in _INT_COLUMNS.get(table, [])]
    numeric += [(c, False) for c in _FLOAT_COLUMNS.get(table, [])]
    for column, whole in numeric:
        if column in frame and not pd.api.types.is_numeric_dtype(frame[column]):
            parsed = pd.to_numeric(frame[column], errors="coerce")
            bad = parsed.isna() & frame[column].notna()
            if whole:
                bad |= parsed.notna() & (parsed != parsed.round())
            expected = "a whole number" if whole else "a number"
            found.append(_rows(table, bad, frame, column, expected))
            parsed = parsed.where(~bad)
            updates[column] = parsed.round().astype("Int64") if whole else parsed.astype(float)
    if table == "leads":
        # Extra lead features (x_*) that are all numbers are numeric features, not categories.
        for column in [c for c in frame.columns if c.startswith("x_") and c in text_columns]:
            parsed = pd.to_numeric(frame[column], errors="coerce")
            if parsed.notna().sum() == frame[column].notna().sum():
                updates[column] = parsed.astype(float)
    for column in _DATE_COLUMNS[table]:
        if column in frame and not pd.api.types.is_datetime64_any_dtype(frame[column]):
            parsed = parse_dates(frame[column])
            bad = (
                parsed.isna()
                & frame[column].notna()
                & (frame[column].astype("string").str.strip() != "")
            )
            found.append(
                _rows(
                    table,
                    bad,
                    frame,
                    column,
                    _expected_text("coerce_dtype('datetime64[ns]')", column),
                )
            )
            updates[column] = parsed
    for column in _BOOL_COLUMNS.get(table, []):
        if column in frame and not pd.api.types.is_bool_dtype(frame[column]):
            text = frame[column].astype("string").str.strip().str.lower()
            parsed = pd.Series(pd.NA, index=frame.index, dtype="boolean")
            parsed[text.isin(_TRUE).fillna(False)] = True
            parsed[text.isin(_FALSE).fillna(False)] = False
            default = _BOOL_WHEN_EMPTY.get((table, column))
            if default is not None:
                parsed = parsed.mask(text.isna(), default)
            found.append(
                _rows(table, parsed.isna(), frame, column, "true/false (also yes/no, 1/0)")
            )
            updates[column] = parsed.fillna(False).astype(bool)
    return frame.assign(**updates), pd.concat(found) if found else pd.DataFrame(
        columns=PROBLEM_COLUMNS
    )


def _coerce_leniently(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Best-effort coercion of a table that failed validation, so cross-table checks still run."""
    out = frame.copy()
    for column in _DATE_COLUMNS[table]:
        if column in out:
            out[column] = pd.to_datetime(out[column], errors="coerce")
    for column in ("lead_id", "rep_id"):
        if column in out:
            out[column] = out[column].astype("string")
    if table == "assignments" and "deal_value" in out:
        out["deal_value"] = pd.to_numeric(out["deal_value"], errors="coerce")
    return out


def _rows(
    table: str, mask: pd.Series, frame: pd.DataFrame, column: str, expected: str
) -> pd.DataFrame:
    hit = frame.loc[mask.fillna(False).astype(bool)]
    return pd.DataFrame(
        {
            "table": table,
            "row": hit.index.astype(int),
            "column": column,
            "value": [_show(v) for v in hit[column]] if column in hit else "",
            "expected": expected,
        },
        columns=PROBLEM_COLUMNS,
    )


def _cross_table_problems(t: dict[str, pd.DataFrame]) -> list[pd.DataFrame]:
    out: list[pd.DataFrame] = []
    reps, leads, asg = t["reps"], t["leads"], t["assignments"]
    rep_ids = set(reps["rep_id"].dropna()) if "rep_id" in reps else set()
    lead_ids = set(leads["lead_id"].dropna()) if "lead_id" in leads else set()
    needed = {"lead_id", "rep_id", "assigned_at", "status", "closed_at", "deal_value"}
    if needed <= set(asg.columns):
        out.append(
            _rows(
                "assignments",
                ~asg["lead_id"].isin(lead_ids),
                asg,
                "lead_id",
                "a lead_id that exists in leads",
            )
        )
        out.append(
            _rows(
                "assignments",
                ~asg["rep_id"].isin(rep_ids),
                asg,
                "rep_id",
                "a rep_id that exists in reps",
            )
        )
        closed = asg["status"].isin(["won", "lost"])
        out.append(
            _rows(
                "assignments",
                asg["closed_at"] < asg["assigned_at"],
                asg,
                "closed_at",
                "closed_at on or after assigned_at",
            )
        )
        out.append(
            _rows(
                "assignments",
                closed & asg["closed_at"].isna(),
                asg,
                "closed_at",
                "a close date for a won or lost lead",
            )
        )
        out.append(
            _rows(
                "assignments",
                (asg["status"] == "open") & asg["closed_at"].notna(),
                asg,
                "closed_at",
                "no close date while the status is open",
            )
        )
        out.append(
            _rows(
                "assignments",
                (asg["status"] == "won") & asg["deal_value"].isna(),
                asg,
                "deal_value",
                "a deal value >= 0 for a won lead",
            )
        )
        if "first_contact_at" in asg:
            out.append(
                _rows(
                    "assignments",
                    asg["first_contact_at"] < asg["assigned_at"],
                    asg,
                    "first_contact_at",
                    "first contact on or after assigned_at",
                )
            )
        is_open = asg["status"] == "open"
        twice = is_open & asg.loc[is_open, "lead_id"].duplicated(keep=False).reindex(
            asg.index, fill_value=False
        )
        out.append(_rows("assignments", twice, asg, "lead_id", "at most one open owner per lead"))
    avail = t.get("availability")
    if avail is not None and "rep_id" in avail:
        out.append(
            _rows(
                "availability",
                ~avail["rep_id"].isin(rep_ids),
                avail,
                "rep_id",
                "a rep_id that exists in reps",
            )
        )
    return out
