"""Reading and writing data folders: the file edge of leadmatch.

CSV files may be UTF-8, UTF-8 with BOM or GBK/GB18030 (Chinese Excel), comma-, semicolon- or
tab-separated; Parquet files with the same stems are accepted too. Every value is read as text and
parsed by the schemas, so a bad cell is reported with its file, line and column instead of
turning a whole column into the wrong type.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.schemas import CrmData, CrmValidationError, validate_crm
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
    """Validated canonical tables, where they came from, and what an adapter repaired."""

    data: CrmData
    files: dict[str, Path]
    repairs: list[str] = field(default_factory=list)


def read_table(path: Path) -> pd.DataFrame:
    """Read one CSV or Parquet file with every column as text (empty cells become NA)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({err})") from err
        return frame.astype("string")
    raw = path.read_bytes()
    text = _decode(raw, path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty; it needs a header line and data rows")
    try:
        sep = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t").delimiter
    except csv.Error:
        sep = ","
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, dtype="string", keep_default_na=False, na_values=[""]
        )
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: cannot be read as CSV ({err})") from err
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


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


def load_data_folder(folder: Path, mapping: str | Path | None = None) -> LoadedData:
    """Load and validate a data folder, in canonical form or through an adapter mapping.

    ``mapping`` is None for a canonical folder (reps, leads, assignments, optional availability),
    the name of a built-in mapping (e.g. ``"maven"``), or the path of a YAML column mapping.
    Raises :class:`DataError` listing every problem with its file, line and column.
    """
    folder = _existing_folder(folder)
    if mapping is not None:
        return _load_mapped(folder, mapping)
    files: dict[str, Path] = {}
    for stem in CANONICAL_STEMS:
        path = find_table(folder, stem)
        if path is not None:
            files[stem] = path
    missing = [s for s in REQUIRED_STEMS if s not in files]
    if missing:
        raise DataError(
            f"{folder}: missing {', '.join(f'{s}.csv' for s in missing)}. A data folder holds "
            "reps.csv, leads.csv, assignments.csv and optionally availability.csv; for a raw CRM "
            "export pass --mapping (e.g. --mapping maven, or a YAML mapping file)."
        )
    frames = {stem: read_table(path) for stem, path in files.items()}
    data = CrmData(**frames)
    try:
        return LoadedData(validate_crm(data), files)
    except CrmValidationError as err:
        raise DataError(
            f"{folder}: the data does not meet the contract", _locate(err.problems, files)
        ) from err


def _locate(problems: pd.DataFrame, files: dict[str, Path]) -> pd.DataFrame:
    """Turn table row positions into file names and line numbers (line 1 is the CSV header)."""
    out = problems.copy()
    out.insert(0, "file", [files[t].name if t in files else t for t in out["table"]])
    is_csv = [files[t].suffix.lower() == ".csv" if t in files else False for t in out["table"]]
    out["row"] = out["row"] + pd.Series([2 if c else 1 for c in is_csv], index=out.index)
    return out.drop(columns="table").rename(columns={"row": "line"})


def _load_mapped(folder: Path, mapping: str | Path) -> LoadedData:
    from features import adapters

    raw = read_raw_folder(folder)
    try:
        if Path(mapping).suffix.lower() in (".yaml", ".yml"):
            path = Path(mapping)
            if not path.is_file():
                raise DataError(f"{path}: no such mapping file")
            mapping = adapters.ColumnMapping.from_yaml(path.read_text(encoding="utf-8"))
        result = adapters.adapt(raw, adapters.resolve_mapping(mapping))
    except adapters.MappingError as err:
        raise DataError(f"{folder}: {err}") from err
    try:
        data = validate_crm(result.data)
    except CrmValidationError as err:
        problems = err.problems.rename(columns={"table": "file", "row": "line"})
        problems["file"] = problems["file"] + " (mapped)"
        raise DataError(f"{folder}: the mapped data does not meet the contract", problems) from err
    return LoadedData(data, {stem: folder for stem in raw}, list(result.repairs))


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` whole.

    On any error the temporary folder is removed and ``target`` is left as it was, so readers
    never see a half-written output.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; outputs are for the team to read
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_data_folder(data: CrmData, folder: Path) -> dict[str, Path]:
    """Write canonical tables as UTF-8 CSV files, atomically. Returns the written paths."""
    folder = Path(folder)
    with atomic_directory(folder) as tmp:
        for stem, frame in data.tables().items():
            frame.to_csv(tmp / f"{stem}.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")
    return {stem: folder / f"{stem}.csv" for stem in data.tables()}
