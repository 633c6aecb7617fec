"""Timestamps: the one place where text in an export becomes a point in time on the team's clock.

Canonical timestamps are naive ``datetime64[ns]`` values on the team's clock (the config's
``timezone``, an IANA name): a value written with a zone offset (``2024-03-01T09:00:00Z``,
``2024-03-01 17:00+08:00``) is converted to that clock and made naive; a value without one is
taken as already on it; one column may hold both.

Understood forms (a whole column is parsed at once, in a few vectorised passes, so the time
taken grows linearly with the export):

- ISO 8601: ``2024-03-01``, ``2024-03-01 14:30``, ``2024-03-01T14:30:00.000Z``,
  ``2024-03-01T17:00:00+0800``, ``2024-03-01 09:00:00 UTC``;
- year first with other separators: ``2024/3/1 9:00``, ``2024.03.01``, ``2024年3月1日``;
- day and month as numbers before the year (``15/03/2024 14:05``, ``03/15/2024``,
  ``15.03.2024``, ``15-03-2024``): whether the day or the month comes first is decided once per
  column, from all its values (see :func:`parse_timestamps`);
- month names: ``1 Mar 2024``, ``01-Mar-2024``, ``March 1, 2024``, ``Fri, 01 Mar 2024``;
- a 12-hour clock after any of these (``3/15/2024 2:05 PM``);
- Excel serial day numbers (``45352``, ``45352.5``).

Anything else (two-digit years, zone names other than UTC/GMT, a text longer than
:data:`MAX_TEXT` characters) is not understood: it is reported, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# No date-time form above is longer; a longer cell is refused without being parsed, so a stray
# multi-megabyte cell costs no more than reading it.
MAX_TEXT = 64
FORMS = "e.g. 2024-03-01, 2024-03-01 14:30 or 2024-03-01T14:30:00+08:00"

DAY_FIRST = "day first"
MONTH_FIRST = "month first"

DAY_NS = 86_400 * 10**9
"""Nanoseconds in a day: :func:`as_ns` differences divided by it are days."""
NAT = np.iinfo(np.int64).min
"""The integer :func:`as_ns` gives a missing time (NaT); it sorts before every real one."""

_EXCEL_EPOCH = np.datetime64("1899-12-30", "ns")
_NAT = np.datetime64("NaT", "ns")
# What datetime64[ns] can hold; a date outside it is not understood rather than overflowing.
_EARLIEST = pd.Timestamp.min.ceil("D")
_LATEST = pd.Timestamp.max.floor("D")

_SERIAL = r"^\d{5}(?:\.\d+)?$"
# Plain ISO 8601, the bulk of most exports: recognised in one pass, with or without a zone.
_PLAIN_ISO = (
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"
    r"(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?$"
)
# What the other forms are rewritten into before pandas' ISO parser reads them.
_LOOSE_ISO = (
    r"^\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?"
    r"\s*(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_YEAR_FIRST = (
    (r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})", r"\1-\2-\3"),
    (r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?", r"\1-\2-\3"),
)
_NUMERIC_DMY = (
    r"^(?P<first>\d{1,2})[/.-](?P<second>\d{1,2})[/.-](?P<year>\d{4})(?P<rest>(?:[T ].*)?)$"
)
# Letters other than ISO's T and Z: a month or weekday name, AM/PM, UTC/GMT (or not a date).
_LETTERS = r"[A-SU-Ya-z]"
_WEEKDAY = r"(?:(?i:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
_MONTHS = (
    ("jan", "january"),
    ("feb", "february"),
    ("mar", "march"),
    ("apr", "april"),
    ("may",),
    ("jun", "june"),
    ("jul", "july"),
    ("aug", "august"),
    ("sep", "sept", "september"),
    ("oct", "october"),
    ("nov", "november"),
    ("dec", "december"),
)
_MONTH_NUMBERS = {name: f"{n:02d}" for n, names in enumerate(_MONTHS, start=1) for name in names}
_NAMED_MONTH = (
    rf"^{_WEEKDAY}(?P<day>\d{{1,2}})(?:st|nd|rd|th)?[\s-]+(?P<month>[A-Za-z]{{3,9}})\.?[\s,-]+"
    r"(?P<year>\d{4})(?P<rest>.*)$",
    rf"^{_WEEKDAY}(?P<month>[A-Za-z]{{3,9}})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+"
    r"(?P<year>\d{4})(?P<rest>.*)$",
)
_TWELVE_HOUR = r"\s*(?P<half>[AaPp])\.?[Mm]\.?$"
_NAMED_UTC = r"\s*(?i:utc|gmt)$"


@dataclass(frozen=True)
class ParsedTimes:
    """A column of text parsed into timestamps, with what could not be read.

    ``values``: naive ``datetime64[ns]`` on the team's clock, on the input's index; NaT where
    the cell is empty, not understood, or written day/month in an order the column leaves open.
    ``bad``: bool, True where a non-empty cell is not understood (each is a row problem).
    ``order``: :data:`DAY_FIRST`, :data:`MONTH_FIRST`, or None when no value has the day and
    month as numbers before the year, or when the column does not settle it.
    ``ambiguous``: such values exist, some read differently day-first and month-first, and none
    has a day above 12 that would settle the order.
    ``day_first_at`` / ``month_first_at``: position (0-based) of the first value that proves the
    day, respectively the month, comes first; both set means the column mixes the two orders.
    """

    values: pd.Series
    bad: pd.Series
    order: str | None = None
    ambiguous: bool = False
    day_first_at: int | None = None
    month_first_at: int | None = None

    @property
    def mixed_order(self) -> bool:
        """Some values are written day-first and others month-first."""
        return self.day_first_at is not None and self.month_first_at is not None

    @property
    def undecided(self) -> bool:
        """Values written D/M/Y or M/D/Y were left unread (ambiguous or mixed order)."""
        return self.ambiguous or self.mixed_order


def parse_timestamps(
    values: pd.Series, *, timezone: str = "UTC", order: str | None = None
) -> ParsedTimes:
    """Parse one column of timestamps onto the team's clock ``timezone`` (an IANA name).

    ``values``: text (empty or NA cells are missing), or datetimes already (naive: taken as on
    the clock; zoned: converted to it). The day/month order of values such as ``05/03/2024`` is
    decided once for the column: a value whose first number is above 12 proves day-first, one
    whose second number is above 12 proves month-first, and with neither the day comes first
    when that changes nothing (``05/05/2024``). When both kinds occur (``mixed_order``), or when
    nothing settles an order that matters (``ambiguous``), those values are left unread (NaT,
    not ``bad``): the caller refuses the column as a whole. ``order`` (:data:`DAY_FIRST` or
    :data:`MONTH_FIRST`), when given, reads such values instead (``ambiguous`` stays False,
    ``day_first_at`` and ``month_first_at`` still say what the column holds): the order
    another date column of the same file proved, say.

    Runs in time linear in the size of the text: plain ISO values (the bulk of most exports)
    take one regular-expression pass and pandas' ISO parser; only the other values go through
    the passes that recognise the other forms, and no value is parsed twice.
    """
    index = values.index
    if pd.api.types.is_datetime64_any_dtype(values):
        return ParsedTimes(to_clock(values, timezone), pd.Series(False, index=index))
    text = pc.utf8_trim_whitespace(pa.array(values.astype("string[pyarrow]").array))
    if isinstance(text, pa.ChunkedArray):  # a column concatenated from several files
        text = text.combine_chunks()
    length = _numbers(pc.utf8_length(text), 0)
    present = length > 0
    readable = present & (length <= MAX_TEXT)
    out = np.full(len(text), _NAT)

    iso = pc.extract_regex(text, _PLAIN_ISO)
    plain = readable & _numbers(iso.is_valid(), False)
    zoned = plain & _numbers(pc.not_equal(pc.struct_field(iso, "zone"), ""), False)
    for mask, utc in ((plain & ~zoned, False), (zoned, True)):
        if mask.any():
            out[mask] = _iso_on_clock(_subset(text, mask), timezone, utc=utc)

    rest = np.flatnonzero(readable & ~plain)
    other = _Other(np.full(0, _NAT), np.zeros(0, bool))
    if len(rest):
        other = _parse_other(_subset(text, readable & ~plain), timezone, order)
        out[rest] = other.stamps
    unread = np.zeros(len(text), bool)
    unread[rest[other.unread]] = True
    return ParsedTimes(
        pd.Series(out, index=index, dtype="datetime64[ns]"),
        pd.Series(present & np.isnat(out) & ~unread, index=index),
        other.order,
        other.ambiguous,
        None if other.day_first_at is None else int(rest[other.day_first_at]),
        None if other.month_first_at is None else int(rest[other.month_first_at]),
    )


def parse_dates(values: pd.Series, *, timezone: str = "UTC") -> pd.Series:
    """Timestamps of ``values`` on the team's clock, NaT where a cell is empty or not read.

    The lenient form of :func:`parse_timestamps`, for deriving things from an export before it
    is validated (a rep's first day, the export's date): a column that does not settle its
    day/month order is read day first here, so that derivation goes on; validating the same
    column then refuses it and says why.
    """
    return parse_timestamps(values, timezone=timezone, order=DAY_FIRST).values


def parse_format(values: pd.Series, date_format: str) -> pd.Series:
    """Parse text with one strftime ``date_format`` (a mapping's ``date_format``).

    Returns naive ``datetime64[ns]`` for a format without a zone, UTC datetimes for one with
    ``%z``/``%Z`` (made naive on the team's clock by :func:`to_clock` at validation). Cells that
    are empty, do not match or are longer than :data:`MAX_TEXT` become NaT.
    """
    text = values.astype("string").str.strip()
    text = text.mask(text.str.len() > MAX_TEXT)
    zoned = "%z" in date_format or "%Z" in date_format
    parsed = pd.to_datetime(text, format=date_format, errors="coerce", utc=zoned)
    return _within(parsed).astype("datetime64[ns, UTC]" if zoned else "datetime64[ns]")


def to_clock(values: pd.Series, timezone: str) -> pd.Series:
    """Datetimes as naive ``datetime64[ns]`` on the clock ``timezone``: zoned values are
    converted to it, naive ones are taken as already on it."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert(timezone).dt.tz_localize(None)
    return values.astype("datetime64[ns]")


def as_ns(times: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """Canonical (naive) timestamps as int64 nanoseconds since the epoch, :data:`NAT` for a
    missing one: exact integers for the point-in-time comparisons of the features."""
    return np.asarray(times, dtype="datetime64[ns]").view("int64")


def show_time(value: pd.Timestamp) -> str:
    """A timestamp as a person writes it: the date alone at midnight, else to the minute (or
    second when it has one)."""
    if pd.isna(value):
        return "(empty)"
    value = pd.Timestamp(value)
    if value == value.normalize():
        return f"{value:%Y-%m-%d}"
    if value.second or value.microsecond or value.nanosecond:
        return f"{value:%Y-%m-%d %H:%M:%S}"
    return f"{value:%Y-%m-%d %H:%M}"


# --- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Other:
    """:func:`_parse_other`'s answer, positions relative to its input."""

    stamps: np.ndarray
    unread: np.ndarray
    order: str | None = None
    ambiguous: bool = False
    day_first_at: int | None = None
    month_first_at: int | None = None


def _parse_other(text: pa.Array, timezone: str, default_order: str | None) -> _Other:
    """Every form but plain ISO: Excel serials, day and month before the year (one order for
    the whole column), other year-first separators, month names, 12-hour clocks, zone names."""
    out = np.full(len(text), _NAT)
    serial = _matches(text, _SERIAL)
    if serial.any():
        days = pc.cast(_subset(text, serial), pa.float64()).to_numpy()
        out[serial] = _EXCEL_EPOCH + np.rint(days * 86_400e9).astype("timedelta64[ns]")

    positions: list[np.ndarray] = []
    rewritten: list[pa.Array] = []
    dmy = ~serial & _matches(text, _NUMERIC_DMY)
    order, ambiguous, unread = None, False, np.zeros(len(text), bool)
    day_first_at = month_first_at = None
    if dmy.any():
        where = np.flatnonzero(dmy)
        part = _subset(text, dmy)
        fields = pc.extract_regex(part, _NUMERIC_DMY)
        first_text, second_text = (pc.struct_field(fields, f) for f in ("first", "second"))
        first = pc.cast(first_text, pa.int32()).to_numpy()
        second = pc.cast(second_text, pa.int32()).to_numpy()
        proves_day = np.flatnonzero((first > 12) & (second <= 12))
        proves_month = np.flatnonzero((second > 12) & (first <= 12))
        day_first_at = int(where[proves_day[0]]) if len(proves_day) else None
        month_first_at = int(where[proves_month[0]]) if len(proves_month) else None
        if len(proves_day) and len(proves_month):
            order = default_order  # both orders occur: the column is refused as a whole
        elif len(proves_month):
            order = MONTH_FIRST
        elif len(proves_day) or (first == second).all():
            # With the same day and month number in every value the order changes nothing.
            order = DAY_FIRST
        elif default_order is not None:
            order = default_order
        else:
            ambiguous = True
        if order is None:
            # Left to the column's refusal, except values no order can read (13/13/2024).
            unread[where[(first <= 12) | (second <= 12)]] = True
        else:
            day, month = (
                (first_text, second_text) if order == DAY_FIRST else (second_text, first_text)
            )
            positions.append(where)
            rewritten.append(_join(pc.struct_field(fields, "year"), month, day, fields))

    rest = ~serial & ~dmy
    if rest.any():
        part = _subset(text, rest)
        for pattern, into in _YEAR_FIRST:
            part = pc.replace_substring_regex(part, pattern, into)
        positions.append(np.flatnonzero(rest))
        rewritten.append(part)
    if positions:
        where = np.concatenate(positions)
        out[where] = _parse_loose(pa.concat_arrays(rewritten), timezone)
    return _Other(out, unread, order, ambiguous, day_first_at, month_first_at)


def _numbers(values: pa.Array | pa.ChunkedArray, fill: object) -> np.ndarray:
    return pc.fill_null(values, fill).to_numpy(zero_copy_only=False)


def _matches(text: pa.Array, pattern: str) -> np.ndarray:
    return _numbers(pc.match_substring_regex(text, pattern), False).astype(bool)


def _iso_on_clock(text: pa.Array, timezone: str, *, utc: bool) -> np.ndarray:
    """Plain ISO text (all with a zone when ``utc``, all without otherwise) as naive
    ``datetime64[ns]`` on the clock; NaT for a value that is no date (2024-02-30)."""
    part = pd.Series(pd.arrays.ArrowStringArray(text))
    return _on_clock(pd.to_datetime(part, format="ISO8601", errors="coerce", utc=utc), timezone)


def _on_clock(parsed: pd.Series, timezone: str) -> np.ndarray:
    return to_clock(_within(parsed), timezone).to_numpy()


def _within(parsed: pd.Series) -> pd.Series:
    """Parsed datetimes (any resolution), NaT outside what ``datetime64[ns]`` can hold."""
    low, high = _EARLIEST, _LATEST
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        low, high = low.tz_localize(parsed.dt.tz), high.tz_localize(parsed.dt.tz)
    return parsed.where((parsed >= low) & (parsed <= high))


def _parse_loose(text: pa.Array, timezone: str) -> np.ndarray:
    """Text in ISO order (year, month, day; perhaps a time and a zone), or with words (month
    names, AM/PM, UTC), as naive ``datetime64[ns]`` on the clock; NaT for a value not read."""
    words = _matches(text, _LETTERS)
    out = np.full(len(text), _NAT)
    for mask in (~words, words):
        if not mask.any():
            continue
        part = _subset(text, mask)
        half = np.full(len(part), "", dtype=object)
        if mask is words:
            part = _month_names(pc.replace_substring_regex(part, _NAMED_UTC, "Z"))
            half = _numbers(pc.utf8_upper(_field(part, _TWELVE_HOUR, "half")), "")
            part = pc.replace_substring_regex(part, _TWELVE_HOUR, "")
        zone = pc.struct_field(pc.extract_regex(part, _LOOSE_ISO), "zone")
        iso = _numbers(pc.is_valid(zone), False).astype(bool)
        zoned = iso & _numbers(pc.not_equal(zone, ""), False).astype(bool)
        stamps = np.full(len(part), _NAT)
        for subset, utc in ((iso & ~zoned, False), (zoned, True)):
            if subset.any():
                series = pd.Series(pd.arrays.ArrowStringArray(_subset(part, subset)))
                parsed = pd.to_datetime(series, format="ISO8601", errors="coerce", utc=utc)
                stamps[subset] = _on_clock(_twelve_hour(parsed, half[subset]), timezone)
        out[mask] = stamps
    return out


def _month_names(text: pa.Array) -> pa.Array:
    """Rewrite dates with an English month name (1 Mar 2024, March 1, 2024) in ISO order."""
    for pattern in _NAMED_MONTH:
        fields = pc.extract_regex(text, pattern)
        which = pc.index_in(
            pc.utf8_lower(pc.struct_field(fields, "month")), pa.array(list(_MONTH_NUMBERS))
        )
        month = pc.take(pa.array(list(_MONTH_NUMBERS.values()), text.type), which)
        iso = _join(pc.struct_field(fields, "year"), month, pc.struct_field(fields, "day"), fields)
        text = pc.if_else(pc.is_valid(iso), iso, text)
    return text


def _join(year: pa.Array, month: pa.Array, day: pa.Array, fields: pa.StructArray) -> pa.Array:
    """year-month-day followed by the ``rest`` field of ``fields`` (null where any is null)."""
    sep = pa.scalar("-", year.type)
    date = pc.binary_join_element_wise(year, month, day, sep)
    return pc.binary_join_element_wise(
        date, pc.struct_field(fields, "rest"), pa.scalar("", year.type)
    )


def _subset(text: pa.Array, mask: np.ndarray) -> pa.Array:
    """The values of ``text`` where ``mask``, without a copy when that is all of them."""
    return text if mask.all() else pc.filter(text, pa.array(mask))


def _field(text: pa.Array, pattern: str, name: str) -> pa.Array:
    return pc.struct_field(pc.extract_regex(text, pattern), name)


def _twelve_hour(parsed: pd.Series, half: np.ndarray) -> pd.Series:
    """Move 12-hour clock times (``half``: "A", "P" or "") onto the 24-hour clock; a 12-hour
    time whose hour is not 1 to 12 is not a time."""
    is_am, is_pm = half == "A", half == "P"
    if not (is_am | is_pm).any():
        return parsed
    hour = parsed.dt.hour.to_numpy()
    invalid = (is_am | is_pm) & ((hour < 1) | (hour > 12))
    shift = np.where(is_pm & (hour < 12), 12, 0) - np.where(is_am & (hour == 12), 12, 0)
    return (parsed + pd.to_timedelta(shift, unit="h")).mask(invalid)


__all__ = [
    "DAY_FIRST",
    "FORMS",
    "MAX_TEXT",
    "MONTH_FIRST",
    "ParsedTimes",
    "parse_dates",
    "parse_format",
    "parse_timestamps",
    "show_time",
    "to_clock",
]
