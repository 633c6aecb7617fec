"""Adapters: raw CRM exports, with any column names, turned into the canonical tables.

Pure mapping logic: frames in, frames out. The caller (``pipelines.io``) reads the export's files
into text frames keyed by file stem and validates the result with
:func:`features.schemas.validate_crm`; nothing here reads a file.

Two kinds of adapters:

- a generic :class:`ColumnMapping` (usually written in YAML, see
  ``pipelines/mappings/example.yaml``) applied by :func:`apply_mapping`: one or several raw
  files per canonical table (a union), columns joined from other files on a key, row filters
  with their counts, column renames, value recoding, constants, date formats, and the derived
  fields that real exports need (reps as the distinct owners of the leads, assignments from the
  leads file's owner + stage + dates, first contacts as the earliest activity in call, e-mail or
  meeting files, the open stages that may be reclaimed, leads without an owner as losses, hire
  dates and capacities from each rep's history);
- built-in adapters for known exports, in :data:`BUILTIN_MAPPINGS` (``maven``: the Maven
  Analytics "CRM Sales Opportunities" sample), which repair the export's known quirks and then
  apply a column mapping of their own.

Every adapter returns an :class:`AdapterResult`: the canonical tables, ``repairs`` (one plain
sentence per thing it filled in, derived, dropped or corrected, with counts, so nothing is
changed silently) and ``origins`` (each row's raw file and row, so a problem found later names
the line of the file the user has).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.adapters.derive import CAPACITY_QUANTILE, rep_history
from features.adapters.maven import MAVEN_COLUMNS, MAVEN_FILES, adapt_maven
from features.adapters.spec import (
    Activities,
    AssignmentsMapping,
    ColumnMapping,
    Join,
    MappingError,
    RowFilter,
    TableMapping,
    Tables,
)
from features.adapters.tables import AdapterResult, Located, apply_mapping
from features.adapters.tables import required_files as _mapping_files

__all__ = [
    "BUILTIN_MAPPINGS",
    "CAPACITY_QUANTILE",
    "MAVEN_COLUMNS",
    "Activities",
    "AdapterResult",
    "AssignmentsMapping",
    "BuiltinMapping",
    "ColumnMapping",
    "Join",
    "Located",
    "MappingError",
    "RowFilter",
    "TableMapping",
    "Tables",
    "adapt",
    "adapt_maven",
    "apply_mapping",
    "rep_history",
    "required_files",
    "resolve_mapping",
]


@dataclass(frozen=True)
class BuiltinMapping:
    """An adapter for a known export: the raw files it reads (by stem) and the function."""

    name: str
    description: str
    files: tuple[str, ...]
    adapt: Callable[..., AdapterResult]
    """``adapt(raw, timezone=...)``: raw text frames by file stem -> :class:`AdapterResult`."""


BUILTIN_MAPPINGS: dict[str, BuiltinMapping] = {
    "maven": BuiltinMapping(
        name="maven",
        description='Maven Analytics "CRM Sales Opportunities" sample (sales_pipeline.csv, ...)',
        files=MAVEN_FILES,
        adapt=adapt_maven,
    )
}


def required_files(mapping: ColumnMapping | BuiltinMapping | str) -> list[str]:
    """The raw files a mapping reads, as named in the mapping (a bare stem: any .csv/.parquet)."""
    mapping = resolve_mapping(mapping)
    if isinstance(mapping, BuiltinMapping):
        return list(mapping.files)
    return _mapping_files(mapping)


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
    raw: Mapping[str, pd.DataFrame],
    mapping: str | ColumnMapping | BuiltinMapping,
    *,
    timezone: str = "UTC",
) -> AdapterResult:
    """Apply a built-in or generic mapping to raw text frames keyed by file stem; timestamps
    are read on the team's clock ``timezone``."""
    mapping = resolve_mapping(mapping)
    if isinstance(mapping, BuiltinMapping):
        return mapping.adapt(raw, timezone=timezone)
    return apply_mapping(raw, mapping, timezone=timezone)
