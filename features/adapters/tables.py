"""Applying a :class:`~features.adapters.spec.ColumnMapping`: raw text frames in, canonical
tables out, with every repair reported and each row's source file and row kept.

Rows carry their origin while the tables are built, in columns that start with ``__``:
``__file`` and ``__row`` (the raw file, as the mapping names it, and the 0-based data row in it),
and ``__file:<column>`` / ``__row:<column>`` where one column came from another file (a join,
the activity of a first contact). :func:`split_origin` takes them off at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np
import pandas as pd

from features.adapters.derive import derive_assignments, derive_reps, times
from features.adapters.spec import (
    COLUMNS,
    KEYS,
    AssignmentsMapping,
    ColumnMapping,
    Join,
    MappingError,
    RowFilter,
    Scalar,
    TableMapping,
    files_read,
    is_date,
    is_number,
    table_specs,
)
from features.adapters.text import clean_text, n, plural, where
from features.lead_scoring import no_reps
from features.schemas import CrmData, show

_NUMBER = r"[$€£¥]?\s*-?\d{1,3}(,\d{3})+(\.\d+)?|[$€£¥]\s*-?\d+(\.\d+)?"


@dataclass(frozen=True)
class Located:
    """Where a canonical value came from: the raw file (as the mapping names it), its 0-based
    data row there (None for a derived row) and the raw column (None for a derived value)."""

    file: str
    row: int | None
    column: str | None


@dataclass(frozen=True)
class AdapterResult:
    """Canonical tables (not yet validated: pass them to ``validate_crm``), what was repaired,
    and where each row came from.

    ``origins`` maps a table name to a frame with one row per table row: ``file`` (the raw file
    as the mapping names it) and ``row`` (its 0-based data row there; empty for a derived row),
    plus ``file:<column>`` and ``row:<column>`` where that column came from another file.
    ``sources`` maps a table name to {canonical column: {raw file: raw column}}.
    """

    data: CrmData
    repairs: list[str] = field(default_factory=list)
    origins: dict[str, pd.DataFrame] = field(default_factory=dict)
    sources: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def locate(self, table: str, row: int | None, column: str) -> Located | None:
        """Where ``column`` of row ``row`` of ``table`` came from (row None: the whole column,
        located when it comes from one file)."""
        origin = self.origins.get(table)
        raw = self.sources.get(table, {}).get(column, {})
        if origin is None or origin.empty:
            return None
        if row is None or not 0 <= row < len(origin):
            files = list(raw) or list(origin["file"].dropna().unique())
            if len(files) != 1:
                return None
            return Located(str(files[0]), None, raw.get(files[0]))
        at = origin.iloc[row]
        own = f"file:{column}" in origin and pd.notna(at[f"file:{column}"])
        file = at[f"file:{column}"] if own else at["file"]
        position = at[f"row:{column}"] if own else at["row"]
        if pd.isna(file):
            return None
        return Located(str(file), None if pd.isna(position) else int(position), raw.get(file))


def required_files(mapping: ColumnMapping) -> list[str]:
    """The raw files a generic mapping reads, as named in the mapping, sorted."""
    return sorted(files_read(mapping))


def apply_mapping(
    raw: Mapping[str, pd.DataFrame], mapping: ColumnMapping, *, timezone: str = "UTC"
) -> AdapterResult:
    """Build the canonical tables from raw text frames with a generic column mapping.

    ``raw`` maps file names or stems to frames whose cells are text (empty cells may be "" or
    NA); each frame's index is its row position in the file, as read. Filters run first, on the
    raw files; then the tables are built in the order leads, assignments, reps, availability,
    because assignments may take ``assigned_at`` from the leads and reps may take
    ``hire_date`` and ``daily_capacity`` from the assignments. Raises :class:`MappingError`
    naming every raw file or column the mapping needs but the export lacks, every date that does
    not match a declared ``date_format``, and every problem of a whole column (a status nobody
    recoded, a deal value missing on every won row) once, with the mapping change that fixes it.
    Timestamps the mapping compares or parses with a ``date_format`` are put on the team's clock
    ``timezone`` (an IANA name), as validation does with the others.
    """
    names = files_read(mapping)
    frames = {name: _source(raw, name) for name in names}
    _check_columns(mapping, frames, list(raw))
    present = {name: frame for name, frame in frames.items() if frame is not None}
    repairs: list[str] = []
    errors: list[str] = []
    kept, dropped = _filter_rows(present, mapping.filters, repairs)
    specs = table_specs(mapping)
    gone = {
        key: _gone(specs[table], key, kept, dropped)
        for table, key in KEYS.items()
        if table in specs
    }
    built: dict[str, pd.DataFrame] = {}
    origins: dict[str, pd.DataFrame] = {}
    for table in ("leads", "assignments", "reps", "availability"):
        spec = specs.get(table)
        if spec is None:
            continue
        frame = map_table(table, kept, spec, repairs, errors, timezone)
        if isinstance(spec, AssignmentsMapping):
            frame = derive_assignments(
                frame, built["leads"], origins["leads"], spec, kept, gone, repairs, errors, timezone
            )
        if table == "reps":
            if errors:  # reps are derived from the assignments: those must be right first
                raise MappingError("\n".join(errors))
            frame = derive_reps(frame, built["assignments"], built["leads"], repairs, timezone)
        frame = _fill_unmapped(table, frame, repairs)
        built[table], origins[table] = split_origin(frame)
    if errors:
        raise MappingError("\n".join(errors))
    built.setdefault("reps", no_reps())  # an export without owners: a lead-scoring history
    sources = {table: _sources(spec) for table, spec in specs.items()}
    return AdapterResult(CrmData(**built), repairs, origins, sources)


def _source(raw: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame | None:
    for key in (name, PurePath(name).stem):
        if key in raw:
            return raw[key]
    return None


def _check_columns(
    mapping: ColumnMapping, frames: dict[str, pd.DataFrame | None], files: list[str]
) -> None:
    """Every file and raw column the mapping names must be in the export: list all that are not."""
    lines = []
    for table, spec in table_specs(mapping).items():
        needed = {column: f"mapped to {table}.{name}" for name, column in spec.columns.items()}
        for join in spec.join:
            needed.setdefault(join.keys[0], f"the key of the join with {join.file}")
        for file in spec.files:
            lines += missing(file, frames[file], needed, files, f"needed for {table}")
        for join in spec.join:
            wanted = {
                column: f"joined into {table}.{name}" for name, column in join.columns.items()
            }
            wanted.setdefault(join.keys[1], f"the key of the join into {table}")
            lines += missing(join.file, frames[join.file], wanted, files, f"joined into {table}")
        if isinstance(spec, AssignmentsMapping):
            for source in spec.first_contact:
                wanted = {source.lead: "the lead of each activity", source.at: "its time"}
                if source.rep is not None:
                    wanted[source.rep] = "who did it"
                lines += missing(
                    source.file, frames[source.file], wanted, files, "activities for first_contact"
                )
    for i, row_filter in enumerate(mapping.filters):
        lines += missing(
            row_filter.file,
            frames[row_filter.file],
            {row_filter.column: f"tested by filters[{i}]"},
            files,
            "filtered",
        )
    if lines:
        raise MappingError("\n".join(dict.fromkeys(lines)))


def missing(
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


def _filter_rows(
    frames: dict[str, pd.DataFrame], filters: list[RowFilter], repairs: list[str]
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(kept rows, dropped rows) of every file; each filter's count goes to the repairs."""
    kept = dict(frames)
    dropped: dict[str, pd.DataFrame] = {}
    for row_filter in filters:
        frame = kept[row_filter.file]
        hit = _drops(row_filter, clean_text(frame[row_filter.column]))
        kept[row_filter.file] = frame[~hit]
        dropped[row_filter.file] = pd.concat([dropped.get(row_filter.file), frame[hit]])
        why = f" ({row_filter.reason})" if row_filter.reason else ""
        repairs.append(
            f"filters: {plural(hit.sum(), 'row')} of {row_filter.file} dropped where "
            f"{row_filter.describe()}{why}"
        )
    return kept, dropped


def _drops(row_filter: RowFilter, values: pd.Series) -> np.ndarray:
    """Which rows ``row_filter`` drops, given the column's cleaned text (NA for empty)."""
    if row_filter.in_ is not None:
        hit = values.isin(row_filter.in_)
    elif row_filter.not_in is not None:
        hit = ~values.isin(row_filter.not_in) | values.isna()
    elif row_filter.matches is not None:
        # count, not contains: contains warns about a pattern's groups, which do not matter here
        hit = values.str.count(row_filter.matches) > 0
    else:
        hit = values.isna()
    return hit.fillna(False).to_numpy(dtype=bool)


def _gone(
    spec: TableMapping,
    key: str,
    kept: dict[str, pd.DataFrame],
    dropped: dict[str, pd.DataFrame],
) -> set[str]:
    """Keys (lead or rep ids) whose every row of ``spec``'s own files was filtered out."""
    raw = spec.columns.get(key)
    if raw is None:
        return set()
    removed: set[str] = set()
    remaining: set[str] = set()
    for file in spec.files:
        if file in dropped:
            removed |= set(clean_text(dropped[file][raw]).dropna())
        remaining |= set(clean_text(kept[file][raw]).dropna())
    return removed - remaining


def map_table(
    table: str,
    frames: dict[str, pd.DataFrame],
    spec: TableMapping,
    repairs: list[str],
    errors: list[str],
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Rename, join, clean, recode and fill one table; rows stay in the raw files' order."""
    parts = []
    for file in spec.files:
        raw = frames[file]
        part = {canonical: clean_text(raw[column]) for canonical, column in spec.columns.items()}
        for j, join in enumerate(spec.join):
            part[f"__key{j}"] = clean_text(raw[join.keys[0]])
        part["__file"] = pd.Series(file, index=range(len(raw)), dtype=object)
        part["__row"] = pd.Series(raw.index.to_numpy(), dtype="Int64")
        parts.append(pd.DataFrame(part, index=pd.RangeIndex(len(raw))))
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if len(parts) > 1:
        counts = ", ".join(f"{file}: {n(len(frames[file]))}" for file in spec.files)
        repairs.append(f"{table}: {plural(len(out), 'row')} from {len(parts)} files ({counts})")
    for j, join in enumerate(spec.join):
        out = _join(table, out, j, join, frames[join.file], spec, repairs, errors)
    if isinstance(spec, AssignmentsMapping) and spec.reclaimable_stages is not None:
        out["__stage"] = out["status"]
    _all_empty(table, out, spec, errors)
    for column, recode in spec.values.items():
        out[column] = _recode(table, column, out[column], recode, repairs)
    for column in [c for c in out.columns if not c.startswith("__")]:
        if is_number(table, column):
            out[column] = _clean_number(table, column, out[column], repairs)
        elif column.startswith("x_"):
            out[column] = _numbers_if_all(out[column])
        elif is_date(table, column) and spec.date_format_of(column) is not None:
            out[column] = _parse_format(table, column, out[column], spec, errors, timezone)
    for column, value in spec.defaults.items():
        if column in out:
            empty = out[column].isna()
            if empty.any():
                out[column] = out[column].astype(object).where(~empty, value)
                repairs.append(
                    f"{table}.{column}: {plural(empty.sum(), 'empty value')} set to {value!r}"
                )
    if spec.distinct:
        out = _distinct(table, out, spec, repairs)
    # Columns the export lacks are constants: set after the distinct step, so the count is of
    # the table's own rows (6 reps, not the 2,399 deal rows they came from).
    for column, value in spec.defaults.items():
        if column not in out:
            out[column] = value
            repairs.append(
                f"{table}.{column}: not in the export, set to {value!r} in all {plural(len(out), 'row')}"
            )
    return out


def _join(
    table: str,
    out: pd.DataFrame,
    j: int,
    join: Join,
    raw: pd.DataFrame,
    spec: TableMapping,
    repairs: list[str],
    errors: list[str],
) -> pd.DataFrame:
    """Left-join ``join``'s columns onto ``out`` (whose ``__key{j}`` holds the left key)."""
    left, right = join.keys
    key = clean_text(raw[right])
    present = key.notna().to_numpy()
    repeated = key[present][key[present].duplicated(keep=False)].drop_duplicates()
    if len(repeated):
        examples = ", ".join(repr(v) for v in repeated.head(3))
        errors.append(
            f"{join.file}: {plural(len(repeated), 'value')} of {right!r} on more than one row "
            f"(e.g. {examples}); a join takes one row per key: add a filter that keeps one "
            f"row per {right!r}"
        )
    joined = pd.DataFrame({f"__j:{c}": clean_text(raw[col]) for c, col in join.columns.items()})
    joined["__jkey"] = key
    joined["__jrow"] = pd.Series(raw.index.to_numpy(), dtype="Int64")
    joined = joined[present].drop_duplicates("__jkey")
    merged = out.merge(joined, left_on=f"__key{j}", right_on="__jkey", how="left", sort=False)
    matched = merged["__jrow"].notna().to_numpy()
    for column in join.columns:
        values = merged.pop(f"__j:{column}")
        own = column in merged
        # A column the table maps too keeps its own value where the joined file has none.
        take = values.notna().to_numpy() if own else matched
        merged[column] = values.where(take, merged[column]) if own else values
        before_file = merged.get(f"__file:{column}", pd.Series(None, index=merged.index))
        before_row = merged.get(f"__row:{column}", pd.Series(pd.NA, index=merged.index))
        merged[f"__file:{column}"] = np.where(take, join.file, before_file.to_numpy(dtype=object))
        merged[f"__row:{column}"] = merged["__jrow"].where(take, before_row).astype("Int64")
    unused = len(raw) - int(joined["__jkey"].isin(out[f"__key{j}"].dropna()).sum())
    files = " + ".join(spec.files)
    repairs.append(
        f"{table}: {n(matched.sum())} of {plural(len(out), 'row')} of {files} matched a row of "
        f"{join.file} on {left!r} = {right!r} ({', '.join(join.columns)} from {join.file})"
        + (f"; not used: {plural(unused, 'row')} of {join.file} with no match" if unused else "")
    )
    return merged.drop(columns=[f"__key{j}", "__jkey", "__jrow"])


def _all_empty(table: str, out: pd.DataFrame, spec: TableMapping, errors: list[str]) -> None:
    """A required column mapped to a raw column that is empty on every row: one message."""
    if out.empty:
        return
    for name, column in COLUMNS[table].items():
        required = column.required and not column.nullable
        if required and name in out and name not in spec.defaults and out[name].isna().all():
            errors.append(
                f"{where(spec, name)} (mapped to {table}.{name}) is empty on all "
                f"{plural(len(out), 'row')}: map the column that holds {name}"
            )


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
            f"{raw!r} -> {listed.get(raw, other)!r} ({n(count)})"
            for raw, count in counts.head(10).items()
        ]
        more = f" and {len(counts) - 10} more values" if len(counts) > 10 else ""
        repairs.append(f"{table}.{column} recoded: {', '.join(shown)}{more}")
    if "*" not in recode and rest.any():
        kept = as_text[rest].value_counts()
        shown = [f"{raw!r} ({n(count)})" for raw, count in kept.head(10).items()]
        repairs.append(
            f"{table}.{column}: {plural(len(kept), 'value')} not in the mapping kept as they are: "
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
        f"{plural(fancy.sum(), 'value')}"
    )
    return values.where(~fancy, values.str.replace(r"[$€£¥,\s]", "", regex=True))


def _numbers_if_all(values: pd.Series) -> pd.Series:
    """An x_* feature column becomes numeric when every non-empty cell is a number."""
    if not pd.api.types.is_string_dtype(values):
        return values
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.astype(float) if numbers.notna().sum() == values.notna().sum() else values


def _parse_format(
    table: str,
    column: str,
    values: pd.Series,
    spec: TableMapping,
    errors: list[str],
    timezone: str,
) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    fmt = spec.date_format_of(column)
    parsed = times(values, fmt, timezone)
    bad = values[parsed.isna() & values.notna()]
    if len(bad):
        examples = ", ".join(repr(show(v)) for v in bad.drop_duplicates().head(5))
        shown = repr(fmt[0]) if fmt and len(fmt) == 1 else repr(fmt)
        errors.append(
            f"{table}.{column}: {where(spec, column)} has {plural(len(bad), 'value')} not "
            f"matching date_format {shown}, e.g. {examples}; fix the values or the date_format"
        )
    return parsed


def _distinct(
    table: str, frame: pd.DataFrame, spec: TableMapping, repairs: list[str]
) -> pd.DataFrame:
    key = KEYS[table]
    keyed = frame[frame[key].notna()]
    out = keyed.groupby(key, sort=False, as_index=False).first()
    repairs.append(
        f"{table}: one row per distinct {key} of {' + '.join(spec.files)} "
        f"({n(len(out))} {table} from {plural(len(frame), 'row')})"
    )
    return out[list(frame.columns)]


def _fill_unmapped(table: str, frame: pd.DataFrame, repairs: list[str]) -> pd.DataFrame:
    """Add the required-but-nullable canonical columns the export lacks, empty; put the columns
    in the schema's order, extra (x_*) columns last."""
    absent = [
        name
        for name, column in COLUMNS[table].items()
        if column.required and column.nullable and name not in frame
    ]
    if absent:
        repairs.append(f"{table}: {', '.join(absent)} not in the export, left empty")
        frame = frame.assign(**{name: pd.NA for name in absent})
    order = [c for c in COLUMNS[table] if c in frame]
    return frame[order + [c for c in frame.columns if c not in order]]


def split_origin(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the table, its origin frame) from a frame whose origin columns start with ``__``."""
    marked = [c for c in frame.columns if str(c).startswith("__")]
    origin = frame[marked].rename(columns=lambda c: c[2:]).reset_index(drop=True)
    return frame.drop(columns=marked).reset_index(drop=True), origin


def _sources(spec: TableMapping) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, column in spec.columns.items():
        out[name] = dict.fromkeys(spec.files, column)
    for join in spec.join:
        for name, column in join.columns.items():
            out.setdefault(name, {})[join.file] = column
    if isinstance(spec, AssignmentsMapping):
        for source in spec.first_contact:
            out.setdefault("first_contact_at", {})[source.file] = source.at
    return out
