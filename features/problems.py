"""Problems in CRM data, as a user is told about them.

A :class:`ProblemLog` collects what the checks of the data contract find: one row per bad cell
(the columns of :data:`PROBLEM_COLUMNS`), and one sentence per column that is wrong as a whole.
A check failed by (nearly) every row it applies to is a problem of the column, not of N rows:
"deal_value is missing on all 842 won rows: map it, or add `defaults: {deal_value: 0}`".
Each table's :class:`Origin` names it as its user knows it (file, line), and values are cut to
:data:`SHOWN_CHARS` characters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.timestamps import FORMS, show_time

PROBLEM_COLUMNS = ["table", "row", "column", "value", "expected"]
SHOWN_CHARS = 80
"""A value in a message is cut to this many characters (then an ellipsis)."""
COLLAPSE_MIN_ROWS = 5
COLLAPSE_SHARE = 0.9
"""A check failed by at least COLLAPSE_MIN_ROWS rows and COLLAPSE_SHARE of the rows it applies
to is a problem of the column, reported in one sentence rather than row by row."""


@dataclass(frozen=True)
class Origin:
    """Where one table was read from, so that messages name it as its user knows it.

    ``file``: the name shown (``leads.csv``). ``lines``: the number of each row in the file,
    in row order (None: row position + 2, a CSV file whose header is line 1). ``unit``:
    ``"line"`` (a text file's lines, header = line 1) or ``"row"`` (Parquet, or a table built
    by a mapping: 1-based rows). ``mapped``: built by a column mapping, so a fix names the
    mapping rather than the file. ``files``: for a table a mapping built from several files,
    the file of each row (its ``lines`` are lines of that file).
    """

    file: str
    lines: Sequence[int] | None = None
    unit: str = "line"
    mapped: bool = False
    files: Sequence[str] | None = None

    def number(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The line (or row) numbers of table row positions ``rows``."""
        rows = np.asarray(rows, dtype=int)
        if self.lines is None:
            return rows + (2 if self.unit == "line" else 1)
        return np.asarray(self.lines, dtype=int)[rows]

    def at(self, row: int) -> str:
        """'line 7' (or 'row 6', or 'deals.csv line 7' when rows come from several files)
        for table row position ``row``."""
        where = f"{self.files[row]} " if self.files is not None else ""
        return f"{where}{self.unit} {self.number([row])[0]}"


Expected = str | Callable[[np.ndarray], list[str]]
# Values a mapping can give a column in `defaults:` when the export lacks it.
_DEFAULT_HINTS = {"deal_value": "0", "active": "true", "available": "true"}


class ProblemLog:
    """Problems found so far: bad cells, and columns refused as a whole."""

    def __init__(self, origins: dict[str, Origin]):
        self.origins = origins
        self.cells: list[pd.DataFrame] = []
        self.columns: dict[tuple[str, str], str] = {}

    def add(
        self,
        table: str,
        mask: pd.Series | np.ndarray,
        frame: pd.DataFrame,
        column: str,
        expected: Expected,
        *,
        check: str | None = None,
        scope: pd.Series | np.ndarray | None = None,
        noun: str = "rows",
        missing: bool = False,
    ) -> None:
        """Rows where ``mask`` fail one check of ``column``.

        ``expected``: the text, or a function of the failing row positions giving one text each
        (to quote compared values). ``check``: what groups failures of the same kind (default
        the text). ``scope``: the rows the check applies to (default all), ``noun`` what they
        are called; ``missing``: the failure is an empty cell that must be filled.
        """
        hit = np.flatnonzero(flags(mask))
        if not len(hit):
            return
        values = frame[column].iloc[hit] if column in frame else pd.Series([None] * len(hit))
        texts = expected(hit) if callable(expected) else expected
        self.cells.append(
            pd.DataFrame(
                {
                    "table": table,
                    "row": hit,
                    "column": column,
                    "value": [show(v) for v in values],
                    "expected": texts,
                    "check": check or (expected if isinstance(expected, str) else column),
                    "scope": len(frame) if scope is None else int(flags(scope).sum()),
                    "noun": noun,
                    "missing": missing,
                }
            )
        )

    def refuse_column(self, table: str, column: str, sentence: str) -> None:
        """The whole column is wrong; its cells are not listed one by one."""
        self.columns[(table, column)] = sentence

    def pandera(self, table: str, frame: pd.DataFrame, failures: pd.DataFrame) -> None:
        """Record pandera's failure cases (one per failing cell or missing column)."""
        failures = failures.assign(column=failures["column"].astype(str))
        absent = failures["check"] == "column_in_dataframe"
        for case in failures[absent].itertuples(index=False):
            self.cells.append(
                pd.DataFrame(
                    {
                        "table": [table],
                        "row": [pd.NA],
                        "column": [str(case.failure_case)],
                        "value": [""],
                        "expected": [_CHECK_WORDS["column_in_dataframe"]],
                        "check": ["column_in_dataframe"],
                        "scope": [len(frame)],
                        "noun": ["rows"],
                        "missing": [False],
                    }
                )
            )
        cells = failures[~absent & failures["index"].notna()]
        for (column, check), group in cells.groupby(["column", "check"], sort=False):
            rows = np.zeros(len(frame), bool)
            rows[group["index"].astype(int).to_numpy()] = True
            nullable = check == "not_nullable"
            self.add(
                table,
                rows,
                frame,
                column,
                expected_text(check, column),
                check=str(check),
                scope=None if nullable or column not in frame else frame[column].notna(),
                noun="rows" if nullable else "values",
                missing=nullable,
            )

    def report(self) -> tuple[pd.DataFrame, list[str]]:
        """The bad cells (one per cell, columns reported as a whole left out) and the
        sentences of the columns wrong as a whole, in table and row order."""
        columns = dict(self.columns)
        if not self.cells:
            return pd.DataFrame(columns=PROBLEM_COLUMNS), list(columns.values())
        cells = pd.concat(self.cells, ignore_index=True)
        refused = pd.Series(list(zip(cells["table"], cells["column"], strict=True)))
        cells = cells[~refused.isin(list(self.columns)).to_numpy()]
        # One problem per cell: a value that could not be parsed is not also reported as empty.
        cells = cells.drop_duplicates(["table", "row", "column"])
        keep = np.ones(len(cells), bool)
        for (table, column, _check), group in cells.groupby(
            ["table", "column", "check"], sort=False
        ):
            scope = int(group["scope"].iloc[0])
            if group["row"].notna().all() and _systematic(len(group), scope):
                columns.setdefault((table, column), self._sentence(group, scope))
                keep[cells.index.get_indexer(group.index)] = False
        cells = cells[keep][PROBLEM_COLUMNS].astype({"row": "Int64"})
        cells = cells.sort_values(["table", "row", "column"], na_position="first", kind="stable")
        return cells.reset_index(drop=True), list(columns.values())

    def _sentence(self, group: pd.DataFrame, scope: int) -> str:
        first = group.iloc[0]
        origin = self.origins[first["table"]]
        column, noun = first["column"], first["noun"]
        count = f"all {scope:,}" if len(group) == scope else f"{len(group):,} of {scope:,}"
        if first["missing"]:
            if not origin.mapped:
                fix = f"fill it in {origin.file}"
            elif column in _DEFAULT_HINTS:
                fix = f"map it, or add `defaults: {{{column}: {_DEFAULT_HINTS[column]}}}`"
            else:
                fix = "map it"
            return f"{column} is missing on {count} {noun}: {fix}"
        return (
            f"{origin.file} {column}: {count} {noun} have the same problem, e.g. "
            f"{origin.at(int(first['row']))} has {first['value']}, expected {first['expected']}"
        )


def _systematic(failed: int, scope: int) -> bool:
    return failed >= COLLAPSE_MIN_ROWS and failed >= COLLAPSE_SHARE * scope


def flags(mask: pd.Series | np.ndarray) -> np.ndarray:
    """A boolean mask as a numpy array, NA counted as False."""
    if isinstance(mask, pd.Series):
        return mask.fillna(False).to_numpy(dtype=bool)
    return np.asarray(mask, dtype=bool)


def show(value: object) -> str:
    """A cell's value for a message: "(empty)", a timestamp as a person writes it, or the text
    cut to :data:`SHOWN_CHARS` characters."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "(empty)"
    if isinstance(value, pd.Timestamp):
        return show_time(value)
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


_CHECK_WORDS = {
    "not_nullable": "a value (it must not be empty)",
    "field_uniqueness": "a unique value (this one appears more than once)",
    "multiple_fields_uniqueness": "a unique combination of {column}",
    "column_in_dataframe": "the column to be present",
}


def expected_text(check: str, column: str) -> str:
    """What a pandera check expects, in words."""
    check = str(check)
    if check.startswith("coerce_dtype("):
        dtype = check[len("coerce_dtype(") : -1].strip("'")
        words = {
            "datetime64[ns]": f"a date or date-time ({FORMS})",
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
