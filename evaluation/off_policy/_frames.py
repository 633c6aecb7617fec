"""Small checks and keys shared by the off-policy modules."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.schemas import Leads, Reps


def require(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    """Raise ``ValueError`` naming the ``columns`` that ``frame`` (called ``name``) lacks."""
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}")


def finite(frame: pd.DataFrame, column: str, name: str) -> np.ndarray:
    """``frame[column]`` as floats, refused unless finite on every row."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if not np.isfinite(values).all():
        raise ValueError(
            f"{name} {column} must be a finite number on every row; "
            f"{int((~np.isfinite(values)).sum())} are not"
        )
    return values


def optional(frame: pd.DataFrame, column: str) -> np.ndarray:
    """``frame[column]`` as floats (NaN where missing, or everywhere without the column)."""
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def pair_keys(frame: pd.DataFrame) -> pd.Index:
    """One hashable key per (lead_id, rep_id) row (a unit separator cannot occur in an id)."""
    lead = frame[Leads.lead_id].astype("str").to_numpy(dtype=object)
    rep = frame[Reps.rep_id].astype("str").to_numpy(dtype=object)
    return pd.Index(lead + "\x1f" + rep, dtype=object)


def examples(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """The first five (lead_id, rep_id) pairs of ``frame``, for a message."""
    pairs = zip(frame[Leads.lead_id].astype(str), frame[Reps.rep_id].astype(str), strict=True)
    return list(pairs)[:5]
