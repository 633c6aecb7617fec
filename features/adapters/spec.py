"""The generic column mapping: what a YAML mapping may say, validated with clear messages.

A :class:`ColumnMapping` names, for each canonical table, the raw file(s) it is built from, the
raw column behind each canonical column, and the repairs and derivations the export needs (see
``pipelines/mappings/example.yaml``). Validation here knows only the mapping itself; whether the
export has the files and columns it names is checked when it is applied
(:func:`features.adapters.apply_mapping`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from features.schemas import SCHEMAS, Leads, Reps

Scalar = str | int | float | bool

# Canonical columns by table, read from the pandera models so there is one source of truth.
COLUMNS = {table: model.to_schema().columns for table, model in SCHEMAS.items()}
KEYS = {"reps": Reps.rep_id, "leads": Leads.lead_id}
# Required columns that must never be empty but that a mapping may leave out because they are
# derived (see the package docstring); every other required non-nullable column must be mapped.
DERIVABLE = {
    ("reps", "hire_date"),
    ("reps", "daily_capacity"),
    ("reps", "active"),
    ("assignments", "assigned_at"),
}


def is_date(table: str, column: str) -> bool:
    """Whether canonical ``table.column`` holds dates."""
    return column in COLUMNS[table] and str(COLUMNS[table][column].dtype).startswith("datetime")


def is_number(table: str, column: str) -> bool:
    """Whether canonical ``table.column`` holds numbers."""
    return column in COLUMNS[table] and str(COLUMNS[table][column].dtype) in ("Int64", "float64")


class MappingError(ValueError):
    """A mapping that is not valid, or that does not fit the export it is applied to."""


def _texts(values: Any) -> Any:
    # YAML reads `[1, 2]` or `{1: won}` with numbers; raw values are always text.
    if isinstance(values, list):
        return [str(v) for v in values]
    return values


Formats = str | list[str]


def _has_directive(fmt: Formats) -> Formats:
    for one in [fmt] if isinstance(fmt, str) else fmt:
        if "%" not in one:
            raise ValueError(f"{one!r} has no strftime directive; write e.g. '%d/%m/%Y'")
    if isinstance(fmt, list) and not fmt:
        raise ValueError("list at least one format")
    return fmt


def formats(fmt: Formats | None) -> list[str] | None:
    """A declared date format as a list of the formats to try in turn (None: recognised)."""
    return None if fmt is None else [fmt] if isinstance(fmt, str) else list(fmt)


class RowFilter(BaseModel):
    """Drop rows of one raw file before any table is built: test records, internal users.

    Give exactly one test: ``in``, ``not_in``, ``matches`` or ``empty``. Each filter's count of
    dropped rows is reported with the repairs. A lead (or rep) whose rows are all dropped from
    the file its table is built from is dropped from the assignments too.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    file: str = Field(description="The raw file the filter applies to (name or stem).")
    column: str = Field(description="The raw column it tests.")
    in_: list[str] | None = Field(
        default=None, alias="in", description="Drop the rows whose value is one of these."
    )
    not_in: list[str] | None = Field(
        default=None,
        description="Drop the rows whose value is not one of these, empty cells too: keep only these.",
    )
    matches: str | None = Field(
        default=None,
        description=(
            "Drop the rows whose value contains a match of this regular expression (Python "
            "syntax; start it with (?i) to ignore case)."
        ),
    )
    empty: Literal[True] | None = Field(
        default=None, description="true: drop the rows whose cell is empty."
    )
    reason: str = Field(
        default="", description="Why, shown beside the count (e.g. 'test records')."
    )

    @field_validator("in_", "not_in", mode="before")
    @classmethod
    def _text_values(cls, values: Any) -> Any:
        return _texts(values)

    @field_validator("matches")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"{pattern!r} is not a regular expression ({err})") from None
        return pattern

    @model_validator(mode="after")
    def _one_test(self) -> RowFilter:
        tests = {
            "in": self.in_,
            "not_in": self.not_in,
            "matches": self.matches,
            "empty": self.empty,
        }
        given = [name for name, value in tests.items() if value is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of in, not_in, matches, empty"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    def describe(self) -> str:
        """The test in words, e.g. "Deal Name matches '(?i)test'"."""
        if self.in_ is not None:
            return f"{self.column} is one of {', '.join(map(repr, self.in_))}"
        if self.not_in is not None:
            return f"{self.column} is not one of {', '.join(map(repr, self.not_in))}"
        if self.matches is not None:
            return f"{self.column} matches '{self.matches}'"  # as written: no repr escapes
        return f"{self.column} is empty"


class Join(BaseModel):
    """More columns for a table's rows from another raw file, matched on a key (a left join).

    Each row of the table's own file(s) takes the one row of the joined file with the same key;
    rows without a match keep empty joined columns. The joined file must have at most one row
    per key (add a filter otherwise).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(description="The joined raw file, by name or stem.")
    on: str | None = Field(
        default=None, description="The key column, when it has the same name in both files."
    )
    left_on: str | None = Field(default=None, description="The key column of the table's file(s).")
    right_on: str | None = Field(default=None, description="The key column of the joined file.")
    columns: dict[str, str] = Field(
        description=(
            "canonical column <- raw column of the joined file. A column the table maps too "
            "takes the joined value where the join found a non-empty one, and keeps its own "
            "elsewhere (e.g. status from the deal's stage, else from the lead's status)."
        )
    )

    @model_validator(mode="after")
    def _one_key(self) -> Join:
        both = self.left_on is not None and self.right_on is not None
        either = self.left_on is not None or self.right_on is not None
        if (self.on is not None and either) or (self.on is None and not both):
            raise ValueError(
                "give the key as on (the same name in both files) or as left_on and right_on"
            )
        if not self.columns:
            raise ValueError("columns: name at least one column to take from the joined file")
        return self

    @property
    def keys(self) -> tuple[str, str]:
        """(key column of the table's file, key column of the joined file)."""
        if self.on is not None:
            return self.on, self.on
        assert self.left_on is not None and self.right_on is not None
        return self.left_on, self.right_on


class Activities(BaseModel):
    """An activity file (calls, e-mails, meetings) from which first contacts are derived."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(description="The raw activity file, by name or stem.")
    lead: str = Field(description="The raw column holding the lead_id the activity was with.")
    at: str = Field(description="The raw column holding when the activity happened.")
    rep: str | None = Field(
        default=None,
        description=(
            "The raw column holding who did it (the rep_id); when given, only the assigned "
            "rep's own activities count as their first contact."
        ),
    )
    date_format: Formats | None = Field(
        default=None,
        description="strftime format(s) of `at`, tried in turn (default: ISO and common forms).",
    )

    @field_validator("date_format")
    @classmethod
    def _format(cls, fmt: Formats | None) -> Formats | None:
        return fmt if fmt is None else _has_directive(fmt)


class TableMapping(BaseModel):
    """How one canonical table is built from the raw files of the export."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | list[str] = Field(
        description=(
            "The raw file feeding this table, by name ('opportunities.csv') or stem; a list of "
            "files with the same columns is read as one (their union, in the order given)."
        )
    )
    columns: dict[str, str] = Field(
        default_factory=dict, description="canonical column <- raw column name."
    )
    join: list[Join] = Field(
        default_factory=list, description="Columns from other files, matched on a key."
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
    date_format: Formats | dict[str, Formats] | None = Field(
        default=None,
        description=(
            "strftime format of every date column of this table (e.g. '%d/%m/%Y'), or one per "
            "canonical column ({assigned_at: '%d/%m/%Y %H:%M', closed_at: '%d/%m/%Y'}); a list "
            "of formats is tried in turn (a column joined from two files with two forms). By "
            "default ISO and common Excel forms are recognised (features.timestamps)."
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
        if isinstance(values, Mapping):
            return {
                k: ({str(raw): v for raw, v in m.items()} if isinstance(m, Mapping) else m)
                for k, m in values.items()
            }
        return values

    @field_validator("file")
    @classmethod
    def _files(cls, file: str | list[str]) -> str | list[str]:
        if isinstance(file, list):
            if not file:
                raise ValueError("list at least one file")
            twice = sorted({f for f in file if file.count(f) > 1})
            if twice:
                raise ValueError(f"{', '.join(map(repr, twice))} listed twice")
        return file

    @field_validator("date_format")
    @classmethod
    def _formats(
        cls, fmt: Formats | dict[str, Formats] | None
    ) -> Formats | dict[str, Formats] | None:
        if isinstance(fmt, dict):
            for value in fmt.values():
                _has_directive(value)
        elif fmt is not None:
            _has_directive(fmt)
        return fmt

    @property
    def files(self) -> list[str]:
        """The table's own raw files (one, or the files of a union)."""
        return [self.file] if isinstance(self.file, str) else list(self.file)

    def mapped(self) -> set[str]:
        """Canonical columns taken from the export: mapped in columns or joined."""
        out = set(self.columns)
        for join in self.join:
            out |= set(join.columns)
        return out

    def provided(self) -> set[str]:
        """Canonical columns this mapping gives a value: mapped, joined or defaulted."""
        return self.mapped() | set(self.defaults)

    def date_format_of(self, column: str) -> list[str] | None:
        """The declared strftime formats of canonical date ``column``, to try in turn (None:
        recognised forms)."""
        if isinstance(self.date_format, dict):
            return formats(self.date_format.get(column))
        return formats(self.date_format)

    def check_for(self, table: str) -> None:
        """Raise ``ValueError`` unless this mapping can build canonical ``table``."""
        known = list(COLUMNS[table])
        named = [("columns", self.columns), ("defaults", self.defaults)]
        named += [(f"join[{i}].columns", j.columns) for i, j in enumerate(self.join)]
        for where, names in named:
            for name in names:
                if name in COLUMNS[table] or (table == "leads" and name.startswith("x_")):
                    continue
                hint = difflib.get_close_matches(name, known, n=1)
                extra = " or an x_* lead feature" if table == "leads" else ""
                raise ValueError(
                    f"{where}: {name!r} is not a column of {table}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                    + f"; the columns of {table} are {', '.join(known)}{extra}"
                )
        for name in self.values:
            if name not in self.mapped():
                raise ValueError(
                    f"values: {name!r} is not mapped in columns; values recode mapped columns only"
                )
        for name, column in COLUMNS[table].items():
            must = column.required and not column.nullable and (table, name) not in DERIVABLE
            if must and name not in self.provided():
                raise ValueError(
                    f"{name!r} is required: map it in columns or give it a value in defaults"
                )
        if isinstance(self.date_format, dict):
            for name in self.date_format:
                if not is_date(table, name):
                    dates = [c for c in known if is_date(table, c)]
                    raise ValueError(
                        f"date_format: {name!r} is not a date column of {table} "
                        f"(those are {', '.join(dates)})"
                    )
        if self.distinct and table not in KEYS:
            raise ValueError("distinct applies to reps and leads only")


class AssignmentsMapping(TableMapping):
    """The assignments table, with what only ownership history needs."""

    first_contact: list[Activities] = Field(
        default_factory=list,
        description=(
            "Derive first_contact_at from activity files: for each assignment, the earliest "
            "activity with its lead at or after assigned_at (by its rep, where the file says who)."
        ),
    )
    reclaimable_stages: list[str] | None = Field(
        default=None,
        description=(
            "Raw status values (stages) of open leads that may be reclaimed after the "
            "first-contact SLA; open leads in any other stage stay with their rep. Sets "
            "assignments.reclaimable. Default: every open lead may be reclaimed."
        ),
    )
    unassigned_outcome: Literal["unassigned", "lost"] = Field(
        default="unassigned",
        description=(
            "What a lead without an owner (no assignment row, or an open row with no rep) "
            "means. unassigned: it waits for an owner and the nightly run places it. lost: the "
            "export keeps owners of won leads only, so a lead nobody owns was lost: it becomes "
            "a lost outcome with no rep, assigned at its created_at and closed on the export "
            "date (the latest date in the export). It counts as not won in the base rate and "
            "in the lead-level win rates (segments, accounts), never in a rep's record, and is "
            "not a lead x rep training pair."
        ),
    )

    @field_validator("reclaimable_stages", mode="before")
    @classmethod
    def _text_stages(cls, stages: Any) -> Any:
        return _texts(stages)

    @model_validator(mode="after")
    def _derivations(self) -> AssignmentsMapping:
        provided = self.provided()
        if self.first_contact and "first_contact_at" in provided:
            raise ValueError(
                "first_contact derives first_contact_at: do not also map it in columns, "
                "join or defaults"
            )
        if self.reclaimable_stages is not None:
            if "reclaimable" in provided:
                raise ValueError(
                    "reclaimable_stages sets reclaimable: do not also map it in columns, join "
                    "or defaults"
                )
            if not self.reclaimable_stages:
                raise ValueError(
                    "reclaimable_stages: list at least one stage, or leave it out so that "
                    "every open lead may be reclaimed"
                )
            recode = self.values.get("status", {})
            for stage in self.reclaimable_stages:
                target = recode.get(stage, recode.get("*", stage))
                if target in ("won", "lost"):
                    raise ValueError(
                        f"reclaimable_stages: {stage!r} is recoded to {target!r} by values.status; "
                        "only open stages can be reclaimed"
                    )
        return self


class Tables(BaseModel):
    """The canonical tables of a mapping (availability is optional; so are reps, for an export
    of leads and outcomes without owners: a lead-scoring history, features.lead_scoring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    leads: TableMapping
    reps: TableMapping | None = None
    assignments: AssignmentsMapping
    availability: TableMapping | None = None

    @field_validator("leads", "reps", "assignments", "availability")
    @classmethod
    def _fits_table(cls, mapping: TableMapping | None, info: ValidationInfo) -> TableMapping | None:
        if mapping is not None:
            mapping.check_for(info.field_name)
        return mapping

    @model_validator(mode="after")
    def _owners_need_reps(self) -> Tables:
        if self.reps is None and Reps.rep_id in self.assignments.provided():
            raise ValueError(
                "reps: assignments map rep_id, so the reps must be mapped too (e.g. the "
                "distinct owners of the leads file, with `distinct: true`); for an export of "
                "leads and outcomes without owners (lead scoring), leave rep_id out"
            )
        if self.reps is None and self.availability is not None:
            raise ValueError("availability: there are no reps to be available; map reps too")
        return self


class ColumnMapping(BaseModel):
    """A generic mapping from a raw CRM export to the canonical tables (see example.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="custom", description="A short name shown in reports.")
    description: str = Field(default="", description="What export this mapping is for.")
    filters: list[RowFilter] = Field(
        default_factory=list,
        description="Rows dropped from raw files before any table is built (counted).",
    )
    tables: Tables

    @model_validator(mode="after")
    def _filters_read_files(self) -> ColumnMapping:
        read = files_read(self)
        for i, row_filter in enumerate(self.filters):
            if row_filter.file not in read:
                raise ValueError(
                    f"filters[{i}]: {row_filter.file!r} is not a file the mapping reads "
                    f"({', '.join(read)})"
                )
        return self

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> ColumnMapping:
        """Validate a mapping given as plain data; raise :class:`MappingError` with clear text."""
        try:
            return cls.model_validate(spec)
        except ValidationError as err:
            lines = []
            for e in err.errors():
                where = ".".join(str(p) for p in e["loc"])
                message = e["msg"].removeprefix("Value error, ")
                lines.append(f"  {where}: {message}" if where else f"  {message}")
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


def table_specs(mapping: ColumnMapping) -> dict[str, TableMapping]:
    """The mapping of each canonical table present, by name."""
    out = {}
    for table in SCHEMAS:
        spec = getattr(mapping.tables, table)
        if spec is not None:
            out[table] = spec
    return out


def files_read(mapping: ColumnMapping) -> list[str]:
    """Every raw file the mapping reads, as named, in order of first use."""
    names: list[str] = []
    for spec in table_specs(mapping).values():
        names += spec.files + [j.file for j in spec.join]
        if isinstance(spec, AssignmentsMapping):
            names += [a.file for a in spec.first_contact]
    return list(dict.fromkeys(names))
