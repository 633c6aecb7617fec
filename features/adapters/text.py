"""Small text helpers shared by the adapter steps: cleaning raw cells and writing counts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.adapters.spec import TableMapping


def clean_text(values: pd.Series) -> pd.Series:
    """Strip text cells and make empty ones NA, on a fresh RangeIndex; non-text columns
    (already typed) pass through."""
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return values.reset_index(drop=True)
    text = values.astype("string").str.strip()
    return text.mask(text == "").reset_index(drop=True)


def n(count: int | np.integer) -> str:
    """A count with thousands separators: 1,234."""
    return f"{int(count):,}"


def plural(count: int | np.integer, noun: str) -> str:
    """'1 row', '2 rows', '1,234 rows'."""
    return f"{n(count)} {noun}{'' if count == 1 else 's'}"


def where(spec: TableMapping, column: str) -> str:
    """Where canonical ``column`` comes from in the export, e.g. "deals.csv column 'Amount'"."""
    places = []
    if column in spec.columns:
        places.append(f"{' + '.join(spec.files)} column {spec.columns[column]!r}")
    for join in spec.join:
        if column in join.columns:
            places.append(f"{join.file} column {join.columns[column]!r}")
    return " or ".join(places) if places else f"{column} (not mapped)"
