"""A command's arguments, checked before anything heavy is imported or started.

Every check here uses the standard library only (plus yaml): the CLI runs them before pandas,
Prefect, MLflow or LightGBM are loaded and before a Prefect server starts, so a mistyped date or
folder is reported in about a second instead of after the 20-60 s a flow needs to start.
Each raises :class:`ArgumentError` with a message that says what to change.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import yaml

from pipelines.errors import UserFacingError

LANGUAGES = ("en", "zh")
_TABLE_SUFFIXES = (".csv", ".CSV", ".parquet")
BUILTIN_MAPPINGS = ("maven",)
"""Names of the built-in adapters of :mod:`features.adapters` (a test keeps the two in step),
listed here so that a mistyped ``--mapping`` is caught without importing pandas."""
MIN_FREE_BYTES = 100 * 2**20
"""Room an output folder's disk must have before a run starts (the nightly outputs of 100k leads
take about 30 MB; the rest is margin for the staging copy)."""


class ArgumentError(UserFacingError):
    """A bad command-line option or argument."""


def run_date(text: str) -> str:
    """``text`` as an ISO date (YYYY-MM-DD)."""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ArgumentError(
            f"--date {text!r} is not a date: use YYYY-MM-DD, e.g. 2025-05-06"
        ) from None


def language(lang: str) -> str:
    """``lang`` if leadmatch writes that language."""
    if lang not in LANGUAGES:
        raise ArgumentError(f"unknown language {lang!r}: use --lang en or --lang zh")
    return lang


def data_folder(folder: Path) -> Path:
    """``folder`` if it is an existing folder."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "no such folder"
        raise ArgumentError(f"{folder}: {what}; pass the folder that holds the CRM export")
    return folder


def mapping(value: str | None) -> None:
    """A built-in mapping's name or a readable YAML mapping file (its columns are checked when
    the data is loaded)."""
    if value is None:
        return
    path = Path(value)
    if path.suffix.lower() not in (".yaml", ".yml"):
        if value not in BUILTIN_MAPPINGS:
            raise ArgumentError(
                f"unknown mapping {value!r}: the built-in mappings are "
                f"{', '.join(BUILTIN_MAPPINGS)}; for another export write a YAML column mapping "
                "(see pipelines/mappings/example.yaml) and pass its path"
            )
        return
    if not path.is_file():
        raise ArgumentError(f"{path}: no such mapping file")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ArgumentError(f"{path}: not a valid YAML mapping ({err})") from None
    if not isinstance(spec, dict):
        raise ArgumentError(f"{path}: a mapping file holds sections such as leads: and reps:")


def scenario(name: str) -> str:
    """``name`` if the simulator knows that scenario."""
    from simulation.scenarios import SCENARIOS

    if name not in SCENARIOS:
        raise ArgumentError(
            f"unknown scenario {name!r}: choose one of {', '.join(sorted(SCENARIOS))}"
        )
    return name


def output_folder(folder: Path, option: str = "--out", min_free: int = MIN_FREE_BYTES) -> Path:
    """``folder`` if leadmatch can write into it: not a file, writable (tried, not guessed from
    permission bits) and with at least ``min_free`` bytes free on its disk. The folder is not
    created here; its nearest existing parent is what is tried."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ArgumentError(f"{option} {folder} is a file: pass a folder (it is created if needed)")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ArgumentError(
            f"{option} {folder}: {existing} is a file, so the folder cannot be created there"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise ArgumentError(
            f"{option} {folder}: cannot write in {existing} ({err.strerror}); pass a folder "
            "you can write to"
        ) from None
    free = shutil.disk_usage(existing).free
    if free < min_free:
        raise ArgumentError(
            f"{option} {folder}: only {free / 2**20:.0f} MB free on its disk, leadmatch needs "
            f"{min_free / 2**20:.0f} MB; free some space or pass another folder"
        )
    return folder


def lead_scoring_refusal(folder: Path, date: str = "YYYY-MM-DD") -> str:
    """What `recommend` says about a history without reps (see :func:`reps_to_match`)."""
    return (
        f"{folder} holds leads and outcomes but no reps (a lead-scoring history), so there is "
        f"nobody to match its leads to: score its open leads with `leadmatch score --data "
        f"{folder} --date {date} --out DIR`, or add the reps (reps.csv, or a reps table in "
        "the mapping) to recommend assignments"
    )


def team_refusal(folder: Path, date: str = "YYYY-MM-DD") -> str:
    """What `score` says about a history with reps (see :func:`no_reps`)."""
    return (
        f"{folder} has reps: `leadmatch score` scores the leads of a history without reps; for "
        f"a team, `leadmatch recommend --data {folder} --date {date}` scores its leads for "
        "each rep and places them"
    )


def reps_to_match(folder: Path, mapping: str | None, date: str) -> None:
    """For `recommend` on ``date``: refuse a data folder whose export has no reps (no reps
    file, or a mapping without a reps table), before any heavy work."""
    if _declares_reps(Path(folder), mapping) is False:
        raise ArgumentError(lead_scoring_refusal(folder, date))


def no_reps(folder: Path, mapping: str | None, date: str) -> None:
    """For `score` on ``date``: refuse a data folder whose export has reps (a reps file with
    rows, or a mapping with a reps table), before any heavy work."""
    if _declares_reps(Path(folder), mapping):
        raise ArgumentError(team_refusal(folder, date))


def _declares_reps(folder: Path, mapping: str | None) -> bool | None:
    """Whether the export has reps as far as its files and mapping tell without reading the
    data: True or False, None when only loading it can tell (a Parquet reps file)."""
    if mapping in BUILTIN_MAPPINGS:
        return True
    if mapping is not None:
        spec = yaml.safe_load(Path(mapping).read_text(encoding="utf-8"))  # checked by mapping()
        tables = spec.get("tables")
        return isinstance(tables, dict) and tables.get("reps") is not None
    for suffix in (".csv", ".CSV"):
        path = folder / f"reps{suffix}"
        if path.is_file():
            with path.open("rb") as file:  # a header line alone lists no rep
                return sum(1 for line, _ in zip(file, range(2), strict=False) if line.strip()) > 1
    if (folder / "reps.parquet").is_file():
        return None
    # Leads and outcomes without reps; a folder without those is a raw export whose missing
    # --mapping the loader names.
    tables = ("leads", "assignments")
    if all(any((folder / f"{t}{s}").is_file() for s in _TABLE_SUFFIXES) for t in tables):
        return False
    return None
