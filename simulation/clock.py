"""Time arithmetic of the simulator: timestamps are int64 nanoseconds since the epoch, whole seconds.

Working on integers keeps comparisons such as "assigned strictly before t" exact and vectorised;
frames get `datetime64[ns]` columns only when they are built.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SECOND_NS = 1_000_000_000
HOUR_NS = 3600 * SECOND_NS
DAY_NS = 24 * HOUR_NS
YEAR_DAYS = 365.25
OPEN_HOUR = 8
CLOSE_HOUR = 18
MISSING = np.iinfo(np.int64).min
"""Sentinel of a missing time in int64 arrays (the integer behind NaT)."""


def day_number(day: object) -> int:
    """Days since 1970-01-01 of a date-like value (time of day is dropped)."""
    return int(pd.Timestamp(day).normalize().value // DAY_NS)


def is_business_day(days: np.ndarray) -> np.ndarray:
    """Monday to Friday, for day numbers since the epoch (no public holidays in this world)."""
    return np.is_busday(np.asarray(days, dtype="datetime64[D]"))


def next_business_day(days: np.ndarray, *, include_today: bool) -> np.ndarray:
    """The first business day on or after (`include_today`) or strictly after each day number."""
    dates = np.asarray(days, dtype="datetime64[D]")
    offset = 0 if include_today else 1
    return np.busday_offset(dates, offset, roll="forward").astype(np.int64)


def to_ns(values: object) -> np.ndarray:
    """int64 nanoseconds of timestamps (a scalar, list, array or Series; naive datetimes).

    Raises ValueError on missing values, because every simulated comparison needs a time.
    """
    stamps = np.atleast_1d(np.asarray(pd.to_datetime(values), dtype="datetime64[ns]"))
    if np.isnat(stamps).any():
        raise ValueError("times must not be missing (NaT)")
    return stamps.view(np.int64)


def to_datetime(ns: np.ndarray) -> np.ndarray:
    """datetime64[ns] array of int64 nanoseconds; the MISSING sentinel becomes NaT."""
    return np.asarray(ns, dtype=np.int64).view("datetime64[ns]")


def seconds_to_ns(seconds: np.ndarray) -> np.ndarray:
    """Durations in seconds, rounded to whole seconds, as int64 nanoseconds."""
    return np.rint(seconds).astype(np.int64) * SECOND_NS
