"""Reading and writing data folders: the file edge of leadmatch.

CSV files may be UTF-8, UTF-8 with BOM or GBK/GB18030 (Chinese Excel), comma-, semicolon- or
tab-separated; Parquet files with the same stems are accepted too. Every value is read as text and
parsed by the schemas, so a bad cell is reported with its file, line and column instead of
turning a whole column into the wrong type. Lines are counted as a person counts them in the
file (header = line 1), across blank lines and quoted cells that span lines; Parquet problems
name 1-based rows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.lead_scoring import no_reps
from features.privacy import PersonalColumn, drop_personal_columns
from features.schemas import CrmData, CrmValidationError, Origin, Reps, check_crm
from pipelines.errors import UserFacingError

CANONICAL_STEMS = ("reps", "leads", "assignments", "availability")
REQUIRED_STEMS = ("reps", "leads", "assignments")
ENCODINGS = ("utf-8-sig", "gb18030")


class DataError(UserFacingError):
    """A problem with the user's data or paths; the CLI prints it without a traceback."""

    def __init__(self, message: str, problems: pd.DataFrame | None = None):
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class LoadedData:
    """Validated canonical tables, where they came from, what an adapter repaired, and the
    columns dropped because they look like personal data (``features.privacy``)."""

    data: CrmData
    files: dict[str, Path]
    repairs: list[str] = field(default_factory=list)
    personal: list[PersonalColumn] = field(default_factory=list)


def read_table(path: Path) -> pd.DataFrame:
    """Read one CSV or Parquet file with every column as text (empty cells become NA)."""
    return read_located(path)[0]


def read_located(path: Path) -> tuple[pd.DataFrame, Origin]:
    """Read one CSV or Parquet file as text, with where each row is in the file.

    Returns the frame and its :class:`~features.schemas.Origin`: the file name and, for a CSV
    file, the line each row starts on (header = line 1; blank lines, which are skipped, and
    quoted cells that span lines counted); for Parquet, 1-based row numbers.
    """
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({err})") from err
        return frame.astype("string"), Origin(path.name, unit="row")
    text = _decode(path.read_bytes(), path)
    if not text or text.isspace():
        raise DataError(f"{path}: the file is empty; it needs a header line and data rows")
    try:
        header = text[: text.find("\n")] if "\n" in text else text
        sep = csv.Sniffer().sniff(header, delimiters=",;\t").delimiter
    except csv.Error:
        sep = ","
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, dtype="string", keep_default_na=False, na_values=[""]
        )
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: cannot be read as CSV ({err})") from err
    frame.columns = [str(c).strip() for c in frame.columns]
    lines = _row_lines(text, sep, len(frame))
    if lines is None:
        return frame, Origin(path.name, unit="row")
    return frame, Origin(path.name, lines=lines)


def _row_lines(text: str, sep: str, n_rows: int) -> np.ndarray | None:
    """The line each of the ``n_rows`` data rows of CSV ``text`` starts on, as pandas reads it.

    When every line is a row (the common case) that is row + 2; otherwise the text is walked
    once with the csv module, skipping blank lines as pandas does. None when the two readers
    disagree on the rows, so that no wrong line is ever named.
    """
    physical = text.count("\n") + (0 if text.endswith("\n") else 1)
    if physical == n_rows + 1:
        return np.arange(2, n_rows + 2)
    starts = []
    header = False
    end = 0
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # a single cell may be larger than the 128 KiB default
    try:
        reader = csv.reader(io.StringIO(text), delimiter=sep)
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if header:
                starts.append(start)
            header = True
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(limit)
    return np.array(starts) if len(starts) == n_rows else None


def _decode(raw: bytes, path: Path) -> str:
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DataError(
        f"{path}: the text encoding is not UTF-8 or GBK/GB18030; save it as 'CSV UTF-8' from Excel"
    )


def find_table(folder: Path, stem: str) -> Path | None:
    """The file holding table ``stem`` in ``folder`` (``.csv`` preferred over ``.parquet``)."""
    for suffix in (".csv", ".parquet", ".CSV"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_raw_folder(folder: Path) -> dict[str, pd.DataFrame]:
    """Every CSV/Parquet file of ``folder`` as a text frame, keyed by file stem."""
    folder = _existing_folder(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".parquet"))
    if not files:
        raise DataError(f"{folder}: no .csv or .parquet files found")
    return {p.stem: read_table(p) for p in files}


def _existing_folder(folder: Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; pass the folder that holds the CRM export")
    return folder


def load_data_folder(
    folder: Path,
    mapping: str | Path | None = None,
    *,
    timezone: str = "UTC",
    allow_personal: Iterable[str] = (),
) -> LoadedData:
    """Load and validate a data folder, in canonical form or through an adapter mapping.

    ``mapping`` is None for a canonical folder (reps, leads, assignments, optional availability),
    the name of a built-in mapping (e.g. ``"maven"``), or the path of a YAML column mapping.
    ``timezone`` is the team's clock (``LeadmatchConfig.timezone``): timestamps with a zone are
    converted to it, those without are taken as on it.
    Columns beyond the contract that look like personal data are dropped (and listed in
    ``LoadedData.personal``) unless named in ``allow_personal`` (config
    ``privacy.allow_columns``). Raises :class:`DataError` listing every problem with its file,
    line and column.
    """
    folder = _existing_folder(folder)
    if mapping is not None:
        return _without_personal(_load_mapped(folder, mapping, timezone), allow_personal)
    files: dict[str, Path] = {}
    for stem in CANONICAL_STEMS:
        path = find_table(folder, stem)
        if path is not None:
            files[stem] = path
    missing = [s for s in REQUIRED_STEMS if s not in files]
    if missing and missing != ["reps"]:
        raise DataError(_missing_tables(folder, missing))
    read = {stem: read_located(path) for stem, path in files.items()}
    if missing:
        read["reps"] = (no_reps(), Origin("reps.csv"))
        read["assignments"] = _without_reps(folder, *read["assignments"])
    data = CrmData(**{stem: frame for stem, (frame, _) in read.items()})
    origins = {stem: origin for stem, (_, origin) in read.items()}
    try:
        checked = check_crm(data, timezone=timezone, origins=origins)
    except CrmValidationError as err:
        raise _contract_error(
            f"{folder}: the data does not meet the contract", err, origins
        ) from err
    return _without_personal(LoadedData(checked.data, files, checked.repairs), allow_personal)


def _without_personal(loaded: LoadedData, allowed: Iterable[str]) -> LoadedData:
    data, dropped = drop_personal_columns(loaded.data, allowed)
    return replace(loaded, data=data, personal=dropped)


def _missing_tables(folder: Path, missing: list[str]) -> str:
    return (
        f"{folder}: missing {', '.join(f'{s}.csv' for s in missing)}. A data folder holds "
        "reps.csv, leads.csv, assignments.csv and optionally availability.csv (a history of "
        "leads and outcomes without reps, for lead scoring, has no reps.csv and no rep_id in "
        "assignments.csv); for a raw CRM export pass --mapping (e.g. --mapping maven, or a YAML "
        "mapping file)."
    )


def _without_reps(
    folder: Path, assignments: pd.DataFrame, origin: Origin
) -> tuple[pd.DataFrame, Origin]:
    """The assignments of a folder without reps.csv: a lead-scoring history when no row names
    a rep, whose rep_id and first_contact_at columns (the owners' work) may be left out;
    otherwise the reps.csv that the rows name is missing."""
    named = assignments[Reps.rep_id].notna() if Reps.rep_id in assignments else pd.Series(False)
    if named.any():
        first = int(np.flatnonzero(named.to_numpy())[0])
        raise DataError(
            _missing_tables(folder, ["reps"])
            + f" Here {origin.file} names reps ({int(named.sum())} rows, the first on "
            f"{origin.at(first)}: {assignments['rep_id'].iloc[first]!r}): add reps.csv, or "
            "empty the rep_id column to use the history for lead scoring only."
        )
    absent = [c for c in (Reps.rep_id, "first_contact_at") if c not in assignments]
    return assignments.assign(**dict.fromkeys(absent, pd.NA)), origin


def _contract_error(
    headline: str, err: CrmValidationError, origins: dict[str, Origin]
) -> DataError:
    """The validation error as the user sees it: a sentence per column refused as a whole,
    then the bad cells by file and line (None when there are none)."""
    message = headline + "".join(f"\n  - {sentence}" for sentence in err.columns)
    problems = _locate(err.problems, origins)
    return DataError(message, problems if len(problems) else None)


def _locate(problems: pd.DataFrame, origins: dict[str, Origin]) -> pd.DataFrame:
    """Turn table row positions into file names and line (Parquet, mapped: row) numbers."""
    out = problems.copy()
    out.insert(0, "file", [origins[t].file for t in out["table"]])
    lines = pd.Series(pd.NA, index=out.index, dtype="Int64")
    for table, rows in out.groupby("table")["row"]:
        known = rows.dropna()
        lines[known.index] = origins[table].number(known.astype(int).to_numpy())
    out["row"] = lines
    return out.drop(columns="table").rename(columns={"row": "line"})


def _load_mapped(folder: Path, mapping: str | Path, timezone: str) -> LoadedData:
    from features import adapters

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".parquet"))
    if not paths:
        raise DataError(f"{folder}: no .csv or .parquet files found")
    read = {p.stem: read_located(p) for p in paths}
    raw = {stem: frame for stem, (frame, _) in read.items()}
    try:
        if Path(mapping).suffix.lower() in (".yaml", ".yml"):
            path = Path(mapping)
            if not path.is_file():
                raise DataError(f"{path}: no such mapping file")
            mapping = adapters.ColumnMapping.from_yaml(path.read_text(encoding="utf-8"))
        result = adapters.adapt(raw, adapters.resolve_mapping(mapping), timezone=timezone)
    except adapters.MappingError as err:
        raise DataError(f"{folder}: {err}") from err
    files = {stem: origin for stem, (_, origin) in read.items()}
    origins = {table: _mapped_origin(result, table, files) for table in result.data.tables()}
    try:
        checked = check_crm(result.data, timezone=timezone, origins=origins)
    except CrmValidationError as err:
        message = f"{folder}: the mapped data does not meet the contract"
        message += "".join(f"\n  - {sentence}" for sentence in err.columns)
        problems = _locate_mapped(err.problems, result, files)
        raise DataError(message, problems if len(problems) else None) from err
    used = {p.stem: p for p in paths if p.stem in raw}
    return LoadedData(checked.data, used, result.repairs + checked.repairs)


def _mapped_origin(result, table: str, files: dict[str, Origin]) -> Origin:
    """How messages name the rows of a mapped table: each row's raw file and its line there
    (the adapter keeps them, see :class:`features.adapters.AdapterResult`); a table with rows
    derived from no line is named by its mapped rows."""
    origin = result.origins.get(table)
    if origin is None or origin.empty or origin["row"].isna().any():
        return Origin(f"{table} (mapped)", unit="row", mapped=True)
    stems = [Path(str(f)).stem for f in origin["file"]]
    if any(stem not in files for stem in stems):
        return Origin(f"{table} (mapped)", unit="row", mapped=True)
    names = [files[stem].file for stem in stems]
    lines = [
        int(files[stem].number([int(row)])[0])
        for stem, row in zip(stems, origin["row"], strict=True)
    ]
    distinct = list(dict.fromkeys(names))
    several = names if len(distinct) > 1 else None
    return Origin(" + ".join(distinct), lines=lines, files=several, mapped=True)


def _locate_mapped(problems: pd.DataFrame, result, files: dict[str, Origin]) -> pd.DataFrame:
    """Problems of mapped tables at the line of the raw file each value came from.

    ``result`` is the adapter's :class:`~features.adapters.AdapterResult`; ``files`` the
    :class:`Origin` of each raw file of the export, by stem. A derived value with no raw line is
    named by its canonical table; the column is the raw column with the canonical one in
    brackets ("Amount (assignments.deal_value)").
    """
    rows = []
    for problem in problems.itertuples(index=False):
        row = None if pd.isna(problem.row) else int(problem.row)
        found = result.locate(problem.table, row, problem.column)
        file, line = f"{problem.table} (mapped)", pd.NA
        column = f"{problem.table}.{problem.column}"
        if found is not None:
            origin = files.get(Path(found.file).stem)
            file = origin.file if origin is not None else found.file
            if found.row is not None and origin is not None:
                line = int(origin.number([found.row])[0])
            if found.column is not None:
                column = f"{found.column} ({column})"
        rows.append(
            {
                "file": file,
                "line": line,
                "column": column,
                "value": problem.value,
                "expected": problem.expected,
            }
        )
    columns = ["file", "line", "column", "value", "expected"]
    return pd.DataFrame(rows, columns=columns).astype({"line": "Int64"})


VERSIONS = ".versions"
"""Folder, beside each published output, of the complete versions its links point to."""
_STAGING: set[Path] = set()
"""This process's staging folders still being written (never cleaned as leftovers)."""


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success publish it as ``target`` with one atomic rename.

    ``target`` becomes a symbolic link to a complete version in ``<parent>/.versions/``.
    Publishing writes a new link beside it and renames that over ``target`` (``os.replace``,
    atomic on POSIX file systems), so whenever the process dies a reader of ``target/...`` sees
    the previous version or the new one, never a missing or half-written folder; the replaced
    version is deleted afterwards. On any error the staging folder is removed and ``target`` is
    left as it was. Leftovers of runs that died (their staging folders and links, the temporary
    folders of the earlier two-rename layout) are deleted first, but only while ``target``
    exists: when it does not, they may hold the last complete copy.
    """
    target = Path(target)
    versions = target.parent / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(target)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.{os.getpid()}.", dir=versions))
    staging.chmod(0o755)  # mkdtemp makes it private; outputs are for the team to read
    _STAGING.add(staging)
    try:
        yield staging
        _sync(staging)
        _publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            versions.rmdir()  # only when nothing else is in it
        raise
    finally:
        _STAGING.discard(staging)


def _publish(staging: Path, target: Path) -> None:
    parent = target.parent
    previous = target.resolve() if target.is_symlink() else None
    if target.is_dir() and not target.is_symlink():
        # A plain folder from before versioned outputs: moved into .versions once, so that the
        # link can replace it (a crash right here leaves it there, and nothing is cleaned until
        # the target exists again).
        previous = staging.with_name(f"{target.name}.{os.getpid()}.plain")
        target.rename(previous)
    link = parent / f".{target.name}.{os.getpid()}.link"
    link.unlink(missing_ok=True)
    link.symlink_to(staging.relative_to(parent))  # relative: the output folder can be moved
    os.replace(link, target)
    _sync(parent, files=False)
    if previous is not None and previous != staging.resolve():
        shutil.rmtree(previous, ignore_errors=True)


def _clean_leftovers(target: Path) -> None:
    if not target.exists():
        return
    parent, name = target.parent, re.escape(target.name)
    live = target.resolve() if target.is_symlink() else None
    for entry in (parent / VERSIONS).iterdir():
        owner = re.fullmatch(rf"{name}\.(\d+)\.[^.]+", entry.name)
        if owner and entry.resolve() != live and _abandoned(entry, int(owner[1])):
            shutil.rmtree(entry, ignore_errors=True)
    for entry in parent.iterdir():
        link = re.fullmatch(rf"\.{name}\.(\d+)\.link", entry.name)
        if link and _abandoned(entry, int(link[1])):
            entry.unlink(missing_ok=True)
        elif entry.is_dir() and re.fullmatch(rf"\.{name}\.(old-\d+|[a-z0-9_]{{8}})", entry.name):
            shutil.rmtree(entry, ignore_errors=True)  # the two-rename layout's temporary folders


def _abandoned(entry: Path, pid: int) -> bool:
    """Whether ``entry``, made by process ``pid``, is no run's work in progress."""
    if pid == os.getpid():
        return entry not in _STAGING
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _sync(folder: Path, files: bool = True) -> None:
    """Flush ``folder`` (and the files under it) to disk, so that a power cut after publishing
    cannot leave a link to a folder whose contents were never written."""
    paths = [p for p in folder.rglob("*") if p.is_file()] if files else []
    for path in [*paths, folder]:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_data_folder(data: CrmData, folder: Path) -> dict[str, Path]:
    """Write canonical tables as UTF-8 CSV files, atomically. Returns the written paths."""
    folder = Path(folder)
    with atomic_directory(folder) as tmp:
        for stem, frame in data.tables().items():
            frame.to_csv(tmp / f"{stem}.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")
    return {stem: folder / f"{stem}.csv" for stem in data.tables()}
