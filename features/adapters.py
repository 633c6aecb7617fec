"""Adapters: raw CRM exports, with any column names, turned into the canonical tables.

Pure mapping logic: frames in, frames out. The caller (``pipelines.io``) reads the export's files
into text frames keyed by file stem and validates the result with
:func:`features.schemas.validate_crm`; nothing here reads a file.

Two kinds of adapters:

- a generic :class:`ColumnMapping` (usually written in YAML, see
  ``pipelines/mappings/example.yaml``) applied by :func:`apply_mapping`: one raw file per
  canonical table, column renames, value recoding, constants, date formats, and the derived
  fields that real exports need (reps as the distinct owners of the leads, assignments from the
  leads file's owner + stage + dates, hire dates and capacities from each rep's history);
- built-in adapters for known exports, in :data:`BUILTIN_MAPPINGS` (``maven``: the Maven
  Analytics "CRM Sales Opportunities" sample), which repair the export's known quirks and then
  apply a column mapping of their own.

Every adapter returns an :class:`AdapterResult`: the canonical tables and ``repairs``, one
plain sentence per thing it filled in, derived or corrected, with counts, so nothing is changed
silently.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from features.schemas import SCHEMAS, CrmData, show
from features.timestamps import parse_dates, parse_format

Scalar = str | int | float | bool

# Canonical columns by table, read from the pandera models so there is one source of truth.
_COLUMNS = {table: model.to_schema().columns for table, model in SCHEMAS.items()}
_KEYS = {"reps": "rep_id", "leads": "lead_id"}
# Required columns that must never be empty but that a mapping may leave out because they are
# derived (see the module docstring); every other required non-nullable column must be mapped.
_DERIVABLE = {
    ("reps", "hire_date"),
    ("reps", "daily_capacity"),
    ("reps", "active"),
    ("assignments", "assigned_at"),
}
# The share of days a derived daily capacity covers: a rep's volume on a busy, not record, day.
CAPACITY_QUANTILE = 0.9
_NUMBER = re.compile(r"[$€£¥]?\s*-?\d{1,3}(,\d{3})+(\.\d+)?|[$€£¥]\s*-?\d+(\.\d+)?")


def _is_date(table: str, column: str) -> bool:
    return column in _COLUMNS[table] and str(_COLUMNS[table][column].dtype).startswith("datetime")


def _is_number(table: str, column: str) -> bool:
    return column in _COLUMNS[table] and str(_COLUMNS[table][column].dtype) in ("Int64", "float64")


class MappingError(ValueError):
    """A mapping that is not valid, or that does not fit the export it is applied to."""


# --- the generic column mapping ---------------------------------------------------------------


class TableMapping(BaseModel):
    """How one canonical table is built from one raw file of the export."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(
        description="The raw file feeding this table, by name ('opportunities.csv') or stem."
    )
    columns: dict[str, str] = Field(
        default_factory=dict, description="canonical column <- raw column name."
    )
    values: dict[str, dict[str, Scalar | None]] = Field(
        default_factory=dict,
        description=(
            "Per canonical column, raw value -> canonical value (null: empty). The key '*' "
            "stands for every other non-empty value; without it, unlisted values are kept."
        ),
    )
    defaults: dict[str, Scalar] = Field(
        default_factory=dict,
        description=(
            "Per canonical column, a constant: the whole column when the column is not mapped, "
            "otherwise the value for its empty cells."
        ),
    )
    date_format: str | None = Field(
        default=None,
        description=(
            "strftime format of every date column of this table (e.g. '%d/%m/%Y'); by default "
            "ISO and common Excel forms are recognised (features.timestamps)."
        ),
    )
    distinct: bool = Field(
        default=False,
        description=(
            "reps and leads only: keep one row per rep_id / lead_id (the first non-empty value of "
            "each column), e.g. reps as the distinct owners of an opportunities file."
        ),
    )

    @field_validator("values", mode="before")
    @classmethod
    def _text_keys(cls, values: Any) -> Any:
        # YAML reads `{1: won}` with an integer key; raw values are always text.
        if isinstance(values, Mapping):
            return {
                k: ({str(raw): v for raw, v in m.items()} if isinstance(m, Mapping) else m)
                for k, m in values.items()
            }
        return values

    @field_validator("date_format")
    @classmethod
    def _has_directive(cls, fmt: str | None) -> str | None:
        if fmt is not None and "%" not in fmt:
            raise ValueError(f"{fmt!r} has no strftime directive; write e.g. '%d/%m/%Y'")
        return fmt

    def check_for(self, table: str) -> None:
        """Raise ``ValueError`` unless this mapping can build canonical ``table``."""
        known = list(_COLUMNS[table])
        for where, names in (("columns", self.columns), ("defaults", self.defaults)):
            for name in names:
                if name in _COLUMNS[table] or (table == "leads" and name.startswith("x_")):
                    continue
                hint = difflib.get_close_matches(name, known, n=1)
                extra = " or an x_* lead feature" if table == "leads" else ""
                raise ValueError(
                    f"{where}: {name!r} is not a column of {table}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                    + f"; the columns of {table} are {', '.join(known)}{extra}"
                )
        for name in self.values:
            if name not in self.columns:
                raise ValueError(
                    f"values: {name!r} is not mapped in columns; values recode mapped columns only"
                )
        for name, column in _COLUMNS[table].items():
            provided = name in self.columns or name in self.defaults
            must = column.required and not column.nullable and (table, name) not in _DERIVABLE
            if must and not provided:
                raise ValueError(
                    f"{name!r} is required: map it in columns or give it a value in defaults"
                )
        if self.distinct and table not in _KEYS:
            raise ValueError("distinct applies to reps and leads only")


class Tables(BaseModel):
    """The canonical tables of a mapping (availability is optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    leads: TableMapping
    reps: TableMapping
    assignments: TableMapping
    availability: TableMapping | None = None

    @field_validator("leads", "reps", "assignments", "availability")
    @classmethod
    def _fits_table(cls, mapping: TableMapping | None, info: ValidationInfo) -> TableMapping | None:
        if mapping is not None:
            mapping.check_for(info.field_name)
        return mapping


class ColumnMapping(BaseModel):
    """A generic mapping from a raw CRM export to the canonical tables (see example.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="custom", description="A short name shown in reports.")
    description: str = Field(default="", description="What export this mapping is for.")
    tables: Tables

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> ColumnMapping:
        """Validate a mapping given as plain data; raise :class:`MappingError` with clear text."""
        try:
            return cls.model_validate(spec)
        except ValidationError as err:
            lines = []
            for e in err.errors():
                where = ".".join(str(p) for p in e["loc"])
                lines.append(f"  {where}: {e['msg'].removeprefix('Value error, ')}")
            raise MappingError("the column mapping is not valid:\n" + "\n".join(lines)) from None

    @classmethod
    def from_yaml(cls, text: str) -> ColumnMapping:
        """Parse the text of a YAML mapping (the caller reads the file)."""
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise MappingError(f"the column mapping is not valid YAML: {err}") from None
        if not isinstance(spec, Mapping):
            raise MappingError("the column mapping must be a YAML mapping with a 'tables' key")
        return cls.parse(spec)


@dataclass(frozen=True)
class AdapterResult:
    """Canonical tables (not yet validated: pass them to ``validate_crm``) and what was repaired."""

    data: CrmData
    repairs: list[str] = field(default_factory=list)


def required_files(mapping: ColumnMapping | BuiltinMapping | str) -> list[str]:
    """The raw files a mapping reads, as named in the mapping (a bare stem: any .csv/.parquet)."""
    mapping = resolve_mapping(mapping)
    if isinstance(mapping, BuiltinMapping):
        return list(mapping.files)
    tables = [getattr(mapping.tables, t) for t in SCHEMAS]
    return sorted({t.file for t in tables if t is not None})


def apply_mapping(raw: Mapping[str, pd.DataFrame], mapping: ColumnMapping) -> AdapterResult:
    """Build the canonical tables from raw text frames with a generic column mapping.

    ``raw`` maps file names or stems to frames whose cells are text (empty cells may be "" or
    NA). Tables are built in the order leads, assignments, reps, availability, because
    assignments may take ``assigned_at`` from the leads and reps may take ``hire_date`` and
    ``daily_capacity`` from the assignments. Raises :class:`MappingError` naming every raw file
    or column the mapping needs but the export lacks, and every date that does not match a
    declared ``date_format``.
    """
    frames = {table: _source(raw, getattr(mapping.tables, table)) for table in SCHEMAS}
    _check_columns(mapping, frames, list(raw))
    repairs: list[str] = []
    errors: list[str] = []
    built: dict[str, pd.DataFrame] = {}
    for table in ("leads", "assignments", "reps", "availability"):
        spec = getattr(mapping.tables, table)
        if spec is None:
            continue
        frame = _map_table(table, frames[table], spec, repairs, errors)
        if table == "assignments":
            frame = _derive_assignments(frame, built["leads"], spec, repairs)
        if table == "reps":
            frame = _derive_reps(frame, built["assignments"], built["leads"], repairs)
        built[table] = _fill_unmapped(table, frame, repairs)
    if errors:
        raise MappingError("\n".join(errors))
    return AdapterResult(CrmData(**built), repairs)


def _source(raw: Mapping[str, pd.DataFrame], spec: TableMapping | None) -> pd.DataFrame | None:
    if spec is None:
        return None
    for key in (spec.file, PurePath(spec.file).stem):
        if key in raw:
            return raw[key]
    return None


def _check_columns(
    mapping: ColumnMapping, frames: dict[str, pd.DataFrame | None], files: list[str]
) -> None:
    """Every file and raw column the mapping names must be in the export: list all that are not."""
    lines = []
    for table in SCHEMAS:
        spec = getattr(mapping.tables, table)
        if spec is not None:
            needed = {column: f"mapped to {table}.{name}" for name, column in spec.columns.items()}
            lines += _missing(spec.file, frames[table], needed, files, f"needed for {table}")
    if lines:
        raise MappingError("\n".join(dict.fromkeys(lines)))


def _missing(
    file: str,
    frame: pd.DataFrame | None,
    needed: Mapping[str, str],
    files: list[str],
    purpose: str,
) -> list[str]:
    """Sentences naming the file, or each column of it (``needed``: column -> its use), that
    the export lacks, with what the export has instead."""
    if frame is None:
        return [
            f"the export has no file {file!r} ({purpose}); its files are: "
            + ", ".join(sorted(files))
        ]
    return [
        f"{file} has no column {column!r} ({use}); its columns are: "
        + ", ".join(map(str, frame.columns))
        for column, use in needed.items()
        if column not in frame.columns
    ]


def _map_table(
    table: str, raw: pd.DataFrame, spec: TableMapping, repairs: list[str], errors: list[str]
) -> pd.DataFrame:
    """Rename, clean, recode and fill one table; rows stay in the raw file's order."""
    out = pd.DataFrame(
        {canonical: _clean_text(raw[column]) for canonical, column in spec.columns.items()},
        index=pd.RangeIndex(len(raw)),
    )
    for column, recode in spec.values.items():
        out[column] = _recode(table, column, out[column], recode, repairs)
    for column in list(out.columns):
        if _is_number(table, column):
            out[column] = _clean_number(table, column, out[column], repairs)
        elif column.startswith("x_"):
            out[column] = _numbers_if_all(out[column])
        elif _is_date(table, column) and spec.date_format is not None:
            out[column] = _parse_format(
                table, column, out[column], spec, spec.columns[column], errors
            )
    for column, value in spec.defaults.items():
        if column in out:
            empty = out[column].isna()
            if empty.any():
                out[column] = out[column].astype(object).where(~empty, value)
                repairs.append(
                    f"{table}.{column}: {_plural(empty.sum(), 'empty value')} set to {value!r}"
                )
        else:
            out[column] = value
            repairs.append(
                f"{table}.{column}: not in the export, set to {value!r} in all {_plural(len(out), 'row')}"
            )
    if spec.distinct:
        out = _distinct(table, out, spec, repairs)
    return out


def _clean_text(values: pd.Series) -> pd.Series:
    """Strip text cells and make empty ones NA; non-text columns (already typed) pass through."""
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return values.reset_index(drop=True)
    text = values.astype("string").str.strip()
    return text.mask(text == "").reset_index(drop=True)


def _recode(
    table: str,
    column: str,
    values: pd.Series,
    recode: dict[str, Scalar | None],
    repairs: list[str],
) -> pd.Series:
    other = recode.get("*", "*")
    listed = {k: v for k, v in recode.items() if k != "*"}
    as_text = values.astype("string")
    hit = as_text.isin(listed).fillna(False).astype(bool)
    rest = values.notna() & ~hit
    out = values.astype(object).where(~hit, as_text.map(listed))
    if "*" in recode:
        out = out.where(~rest, other)
    changed = hit | rest if "*" in recode else hit
    counts = as_text[changed].value_counts()
    if len(counts):
        shown = [
            f"{raw!r} -> {listed.get(raw, other)!r} ({_n(count)})"
            for raw, count in counts.head(10).items()
        ]
        more = f" and {len(counts) - 10} more values" if len(counts) > 10 else ""
        repairs.append(f"{table}.{column} recoded: {', '.join(shown)}{more}")
    if "*" not in recode and rest.any():
        kept = as_text[rest].value_counts()
        shown = [f"{raw!r} ({_n(count)})" for raw, count in kept.head(10).items()]
        repairs.append(
            f"{table}.{column}: {_plural(len(kept), 'value')} not in the mapping kept as they are: "
            + ", ".join(shown)
        )
    return out


def _clean_number(table: str, column: str, values: pd.Series, repairs: list[str]) -> pd.Series:
    """Drop thousands separators and currency signs ('$1,200.50' -> '1200.50'); the schema
    coerces the text, so a value that is still not a number is reported there, with its row."""
    if not pd.api.types.is_string_dtype(values):
        return values
    fancy = values.str.fullmatch(_NUMBER).fillna(False).astype(bool)
    if not fancy.any():
        return values
    repairs.append(
        f"{table}.{column}: thousands separators or currency signs removed from "
        f"{_plural(fancy.sum(), 'value')}"
    )
    return values.where(~fancy, values.str.replace(r"[$€£¥,\s]", "", regex=True))


def _numbers_if_all(values: pd.Series) -> pd.Series:
    """An x_* feature column becomes numeric when every non-empty cell is a number."""
    if not pd.api.types.is_string_dtype(values):
        return values
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.astype(float) if numbers.notna().sum() == values.notna().sum() else values


def _parse_format(
    table: str, column: str, values: pd.Series, spec: TableMapping, raw: str, errors: list[str]
) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    parsed = parse_format(values, spec.date_format)
    bad = values[parsed.isna() & values.notna()]
    if len(bad):
        examples = ", ".join(repr(show(v)) for v in bad.drop_duplicates().head(5))
        errors.append(
            f"{table}.{column}: {spec.file} column {raw!r} has {_plural(len(bad), 'value')} not "
            f"matching date_format {spec.date_format!r}, e.g. {examples}; fix the values or the "
            "date_format"
        )
    return parsed


def _distinct(
    table: str, frame: pd.DataFrame, spec: TableMapping, repairs: list[str]
) -> pd.DataFrame:
    key = _KEYS[table]
    keyed = frame[frame[key].notna()]
    out = keyed.groupby(key, sort=False, as_index=False).first()
    repairs.append(
        f"{table}: one row per distinct {key} of {spec.file} "
        f"({_n(len(out))} {table} from {_plural(len(frame), 'row')})"
    )
    return out[list(frame.columns)]


def _derive_assignments(
    asg: pd.DataFrame, leads: pd.DataFrame, spec: TableMapping, repairs: list[str]
) -> pd.DataFrame:
    """Rows without an owner are unassigned leads; open rows have no close date; a missing
    ``assigned_at`` is the lead's creation time (an opportunity is owned from its creation)."""
    no_owner = asg["rep_id"].isna()
    if no_owner.any():
        repairs.append(
            f"assignments: {_plural(no_owner.sum(), 'row')} of {spec.file} without a rep_id: "
            "those leads are unassigned"
        )
        asg = asg[~no_owner].reset_index(drop=True)
    if "assigned_at" not in asg:
        created = leads.drop_duplicates("lead_id").set_index("lead_id")["created_at"]
        asg = asg.assign(assigned_at=asg["lead_id"].map(created))
        repairs.append(
            "assignments.assigned_at: not in the export, set to the lead's created_at "
            f"for {_plural(len(asg), 'row')}"
        )
    if "closed_at" in asg:
        stale = (asg["status"] == "open").fillna(False).astype(bool) & asg["closed_at"].notna()
        if stale.any():
            # CRMs fill "Close Date" with the *expected* close date of open deals.
            asg = asg.assign(closed_at=asg["closed_at"].where(~stale))
            repairs.append(
                f"assignments.closed_at: cleared for {_plural(stale.sum(), 'open row')} "
                "(an expected close date is not a close date)"
            )
    return asg


def _derive_reps(
    reps: pd.DataFrame, asg: pd.DataFrame, leads: pd.DataFrame, repairs: list[str]
) -> pd.DataFrame:
    need = [c for c in ("hire_date", "daily_capacity") if c not in reps]
    if need:
        assigned = parse_dates(asg["assigned_at"])
        known = assigned.notna() & asg["rep_id"].isin(reps["rep_id"])
        dates = [assigned, parse_dates(leads["created_at"])]
        if "closed_at" in asg:
            dates.append(parse_dates(asg["closed_at"]))
        as_of = pd.concat(dates).max()
        if not known.any():
            raise MappingError(
                f"reps: {' and '.join(need)} not in the mapping and there is no assignment "
                "history to derive them from; map them or give them values in defaults"
            )
        derived, notes = rep_history(
            reps["rep_id"], asg.loc[known, "rep_id"], assigned[known], as_of, "assigned_at", need
        )
        reps = reps.assign(**{c: derived[c].to_numpy() for c in need})
        repairs.extend(notes)
    if "active" not in reps:
        reps = reps.assign(active=True)
        repairs.append(
            f"reps.active: not in the export, set to True for all {_plural(len(reps), 'rep')}"
        )
    if "name" not in reps:
        reps = reps.assign(name=reps["rep_id"])
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
    with_history = _n(ids.isin(first.index).sum())
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
            f"{_plural(len(missing), 'rep')} with no assignment history ({names}): kept as reps "
            "with no history, " + " and ".join(what)
        )
    return derived, notes


def _busy_day_volume(days: pd.Series) -> int:
    per_day = days.value_counts()
    span = (days.max() - days.min()).days + 1
    counts = np.concatenate([per_day.to_numpy(), np.zeros(span - len(per_day))])
    return max(1, math.ceil(float(np.quantile(counts, CAPACITY_QUANTILE))))


def _fill_unmapped(table: str, frame: pd.DataFrame, repairs: list[str]) -> pd.DataFrame:
    """Add the required-but-nullable canonical columns the export lacks, empty; put the columns
    in the schema's order, extra (x_*) columns last."""
    absent = [
        name
        for name, column in _COLUMNS[table].items()
        if column.required and column.nullable and name not in frame
    ]
    if absent:
        repairs.append(f"{table}: {', '.join(absent)} not in the export, left empty")
        frame = frame.assign(**{name: pd.NA for name in absent})
    order = [c for c in _COLUMNS[table] if c in frame]
    return frame[order + [c for c in frame.columns if c not in order]]


def _n(count: int | np.integer) -> str:
    return f"{int(count):,}"


def _plural(count: int | np.integer, noun: str) -> str:
    return f"{_n(count)} {noun}{'' if count == 1 else 's'}"


# --- built-in adapters ------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltinMapping:
    """An adapter for a known export: the raw files it reads (by stem) and the function."""

    name: str
    description: str
    files: tuple[str, ...]
    adapt: Callable[[Mapping[str, pd.DataFrame]], AdapterResult]


_MAVEN_RAW = {
    "sales_pipeline": (
        "opportunity_id",
        "sales_agent",
        "product",
        "account",
        "deal_stage",
        "engage_date",
        "close_date",
        "close_value",
    ),
    "accounts": ("account", "sector", "revenue", "employees", "office_location"),
    "products": ("product", "series", "sales_price"),
    "sales_teams": ("sales_agent", "manager", "regional_office"),
}
_MAVEN_OPEN = ("Engaging", "Prospecting")
# Misspellings in accounts.csv (see the sample's SOURCE.md), by column.
_MAVEN_SPELLING = {
    "sector": {"technolgy": "technology"},
    "office_location": {"Philipines": "Philippines"},
}

# What is left once the quirks are repaired: a plain column mapping over two prepared frames,
# "opportunities" (one row per deal, joined with its account and product) and "agents".
MAVEN_COLUMNS = ColumnMapping.parse(
    {
        "name": "maven",
        "description": "Maven Analytics CRM Sales Opportunities, after adapt_maven's repairs",
        "tables": {
            "leads": {
                "file": "opportunities",
                "columns": {
                    "lead_id": "opportunity_id",
                    "created_at": "created",
                    "industry": "sector",
                    "region": "office_location",
                    "product": "product",
                    "company_size": "employees",
                    "expected_value": "sales_price",
                    "account_id": "account",
                    "x_account_revenue": "revenue",
                    "x_product_series": "series",
                },
                "defaults": {"source": "unknown"},
            },
            "assignments": {
                "file": "opportunities",
                "columns": {
                    "lead_id": "opportunity_id",
                    "rep_id": "sales_agent",
                    "assigned_at": "created",
                    "first_contact_at": "engage_date",
                    "status": "deal_stage",
                    "closed_at": "close_date",
                    "deal_value": "close_value",
                },
                "values": {
                    "status": {
                        "Won": "won",
                        "Lost": "lost",
                        "Engaging": "open",
                        "Prospecting": "open",
                    }
                },
            },
            "reps": {
                "file": "agents",
                "columns": {
                    "rep_id": "sales_agent",
                    "name": "sales_agent",
                    "team": "manager",
                    "region": "regional_office",
                    "hire_date": "hire_date",
                    "daily_capacity": "daily_capacity",
                },
            },
        },
    }
)


def adapt_maven(raw: Mapping[str, pd.DataFrame]) -> AdapterResult:
    """The Maven "CRM Sales Opportunities" sample as canonical tables, its quirks repaired.

    ``raw``: text frames keyed by file stem: ``sales_pipeline``, ``accounts``, ``products``,
    ``sales_teams``. Opportunities are the leads, sales agents the reps (rep_id and name: the
    agent's name; team: their manager; region: their regional office, Central/East/West).
    A lead's industry is its account's sector, its region the account's headquarters country
    (office_location: not the same vocabulary as the reps' regions, so region-match rules do
    not apply to this data), its company_size the account's employees, its expected_value the
    product's sales_price, its account_id the account; x_account_revenue (USD millions) and
    x_product_series are extra lead features. Each deal is one assignment to its agent:
    assigned (and first contacted) on engage_date, status won/lost/open from deal_stage,
    closed_at the close_date, deal_value the close_value. Every repair is reported with counts.
    """
    lines = []
    for stem, columns in _MAVEN_RAW.items():
        lines += _missing(
            f"{stem}.csv",
            raw.get(stem),
            dict.fromkeys(columns, "needed by the maven mapping"),
            list(raw),
            "needed by the maven mapping",
        )
    if lines:
        raise MappingError("\n".join(lines))
    pipeline, accounts, products, teams = (
        raw[stem][list(columns)].apply(_clean_text) for stem, columns in _MAVEN_RAW.items()
    )
    repairs: list[str] = []
    pipeline = _maven_products(pipeline, products, repairs)
    accounts = _maven_spelling(accounts, pipeline, repairs)
    deals = pipeline.merge(accounts, on="account", how="left", validate="many_to_one")
    deals = deals.merge(products, on="product", how="left", validate="many_to_one")
    deals = _maven_accounts(deals, set(accounts["account"]), repairs)
    deals = _maven_values(deals, repairs)
    deals, as_of = _maven_dates(deals, repairs)
    agents = _maven_agents(teams, deals, as_of, repairs)
    result = apply_mapping({"opportunities": deals, "agents": agents}, MAVEN_COLUMNS)
    return AdapterResult(result.data, repairs + result.repairs)


def _maven_products(
    pipeline: pd.DataFrame, products: pd.DataFrame, repairs: list[str]
) -> pd.DataFrame:
    """Match product names that differ from products.csv only by spaces or case."""
    catalogue = set(products["product"].dropna())
    squashed = {re.sub(r"\s+", "", p).lower(): p for p in catalogue}
    names = pipeline["product"]
    for name in sorted(set(names.dropna()) - catalogue):
        fixed = squashed.get(re.sub(r"\s+", "", name).lower())
        count = int((names == name).sum())
        if fixed is None:
            repairs.append(
                f"product {name!r} is not in products.csv ({_plural(count, 'deal')}): "
                "expected_value left empty"
            )
        else:
            names = names.mask(names == name, fixed)
            repairs.append(
                f"product {name!r} renamed to {fixed!r} (its name in products.csv) "
                f"in {_plural(count, 'deal')}"
            )
    return pipeline.assign(product=names)


def _maven_spelling(
    accounts: pd.DataFrame, pipeline: pd.DataFrame, repairs: list[str]
) -> pd.DataFrame:
    for column, fixes in _MAVEN_SPELLING.items():
        values = accounts[column]
        for wrong, right in fixes.items():
            hit = (values == wrong).fillna(False).astype(bool)
            if hit.any():
                deals = pipeline["account"].isin(accounts.loc[hit, "account"]).sum()
                repairs.append(
                    f"{column} {wrong!r} corrected to {right!r} in "
                    f"{_plural(hit.sum(), 'account')} ({_plural(deals, 'deal')})"
                )
                values = values.mask(hit, right)
        accounts = accounts.assign(**{column: values})
    return accounts


def _maven_accounts(deals: pd.DataFrame, known: set[str], repairs: list[str]) -> pd.DataFrame:
    """Deals without a (known) account: industry and region 'unknown', the rest empty."""
    no_account = deals["account"].isna()
    unknown = deals["account"].notna() & ~deals["account"].isin(known)
    is_open = deals["deal_stage"].isin(_MAVEN_OPEN)
    for mask, what in (
        (no_account, "have no account"),
        (unknown, "name an account not in accounts.csv"),
    ):
        for stage_mask, kind in (
            (is_open, "open deals (Engaging/Prospecting)"),
            (~is_open, "closed deals"),
        ):
            count = (mask & stage_mask).sum()
            if count:
                repairs.append(
                    f"{_n(count)} {kind} {what}: industry and region set to 'unknown', "
                    "company_size and account_id left empty"
                )
    missing = no_account | unknown
    return deals.assign(
        sector=deals["sector"].mask(missing, "unknown"),
        office_location=deals["office_location"].mask(missing, "unknown"),
        account=deals["account"].mask(unknown),
    )


def _maven_values(deals: pd.DataFrame, repairs: list[str]) -> pd.DataFrame:
    lost_zero = (deals["deal_stage"] == "Lost") & (pd.to_numeric(deals["close_value"]) == 0)
    if lost_zero.any():
        repairs.append(
            f"{_plural(lost_zero.sum(), 'lost deal')} with close_value 0: deal_value left empty "
            "(0 is what a lost deal earned, not its size)"
        )
    return deals.assign(close_value=deals["close_value"].mask(lost_zero))


def _maven_dates(deals: pd.DataFrame, repairs: list[str]) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Deals not yet engaged (Prospecting) have no engage_date: they are owned by their agent
    but untouched, so they are taken as created and assigned on the export date."""
    engaged = deals["engage_date"].notna()
    as_of = pd.concat([parse_dates(deals["engage_date"]), parse_dates(deals["close_date"])]).max()
    stages = deals.loc[~engaged, "deal_stage"].value_counts()
    if len(stages):
        by_stage = ", ".join(f"{_n(c)} {s}" for s, c in stages.items())
        repairs.append(
            f"{_n((~engaged).sum())} deals have no engage_date ({by_stage}): they keep their "
            f"agent as open deals not yet contacted; created_at and assigned_at set to the "
            f"export date {as_of:%Y-%m-%d} (the latest date in the file), first_contact_at "
            "left empty"
        )
    repairs.append(
        f"first_contact_at set to engage_date (the day the agent began engaging) for "
        f"{_plural(engaged.sum(), 'deal')}"
    )
    created = deals["engage_date"].fillna(f"{as_of:%Y-%m-%d}")
    return deals.assign(created=created), as_of


def _maven_agents(
    teams: pd.DataFrame, deals: pd.DataFrame, as_of: pd.Timestamp, repairs: list[str]
) -> pd.DataFrame:
    """Agents with hire_date and daily_capacity derived from their engaged deals only: the
    export dates given to Prospecting deals are not days on which the agent took leads."""
    extra = sorted(set(deals["sales_agent"].dropna()) - set(teams["sales_agent"]))
    if extra:
        repairs.append(
            f"{_n(len(extra))} agents have deals but are not in sales_teams.csv "
            f"({', '.join(extra[:10])}): added as reps with no team or region"
        )
        teams = pd.concat([teams, pd.DataFrame({"sales_agent": extra})], ignore_index=True)
    engaged = deals[deals["engage_date"].notna()]
    derived, notes = rep_history(
        teams["sales_agent"],
        engaged["sales_agent"],
        parse_dates(engaged["engage_date"]),
        as_of,
        "engage_date",
        ["hire_date", "daily_capacity"],
    )
    repairs.extend(notes)
    return teams.assign(
        hire_date=derived["hire_date"].to_numpy(),
        daily_capacity=derived["daily_capacity"].to_numpy(),
    )


BUILTIN_MAPPINGS: dict[str, BuiltinMapping] = {
    "maven": BuiltinMapping(
        name="maven",
        description='Maven Analytics "CRM Sales Opportunities" sample (sales_pipeline.csv, ...)',
        files=tuple(_MAVEN_RAW),
        adapt=adapt_maven,
    )
}


def resolve_mapping(
    mapping: str | ColumnMapping | BuiltinMapping | Mapping[str, Any],
) -> ColumnMapping | BuiltinMapping:
    """A built-in mapping by name, a :class:`ColumnMapping`, or plain data validated as one.

    A YAML file is read by the caller and parsed with :meth:`ColumnMapping.from_yaml`.
    """
    if isinstance(mapping, ColumnMapping | BuiltinMapping):
        return mapping
    if isinstance(mapping, str):
        if mapping in BUILTIN_MAPPINGS:
            return BUILTIN_MAPPINGS[mapping]
        raise MappingError(
            f"unknown mapping {mapping!r}: the built-in mappings are "
            f"{', '.join(BUILTIN_MAPPINGS)}; for another export write a YAML column mapping "
            "(see pipelines/mappings/example.yaml) and pass its path"
        )
    return ColumnMapping.parse(mapping)


def adapt(
    raw: Mapping[str, pd.DataFrame], mapping: str | ColumnMapping | BuiltinMapping
) -> AdapterResult:
    """Apply a built-in or generic mapping to raw text frames keyed by file stem."""
    mapping = resolve_mapping(mapping)
    if isinstance(mapping, BuiltinMapping):
        return mapping.adapt(raw)
    return apply_mapping(raw, mapping)
