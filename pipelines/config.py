"""The one typed configuration of leadmatch, loaded from a single YAML file at the entry point.

Each library receives only its slice: ``features`` (FeatureConfig), ``model`` (ModelConfig),
``matching`` (MatchingConfig), ``off_policy`` (OffPolicyConfig); the pipelines read
``recommend``, ``paths``, ``tracking`` and ``privacy`` (PrivacyConfig, applied when data is
loaded).
Every field has a documented default, so an empty file (or none) is a valid configuration.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evaluation.config import OffPolicyConfig
from features.config import FeatureConfig, PrivacyConfig
from matching.config import MatchingConfig
from models.config import ModelConfig
from pipelines.errors import UserFacingError


class ConfigError(UserFacingError):
    """The configuration file is missing, not YAML, or has invalid values."""


class TrackingConfig(BaseModel):
    """Where MLflow stores runs and models."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str | None = Field(
        None,
        description=(
            "MLflow tracking URI (e.g. http://mlflow:5000 or postgresql://...). "
            "MLFLOW_TRACKING_URI overrides it; when neither is set, a SQLite store under `root`."
        ),
    )
    root: Path = Field(
        Path(".leadmatch"),
        description=(
            "Folder of the local MLflow store (mlflow.db) and its artifacts. A relative path is "
            "taken from the config file's folder, or from the project folder when there is no "
            "config file; the LEADMATCH_HOME environment variable overrides it."
        ),
    )
    model_name: str | None = Field(
        None,
        min_length=1,
        description=(
            "Registered model of this data set; its training runs go to the experiment "
            "`<model_name>-train`. Default (None): derived from the data folder and the mapping, "
            "`leadmatch-<folder name>-<6 hex digits of the folder's absolute path and the "
            "mapping>`, so two companies' exports never share a champion. Set it when the "
            "data folder moves, or to give the model a name of your own."
        ),
    )


class Paths(BaseModel):
    """Default locations of outputs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recommendations: Path = Field(
        Path("data/recommendations"),
        description=(
            "Folder under which each nightly run writes <run_date>/. A relative path is taken "
            "from the config file's folder, or from the current folder when there is no config "
            "file."
        ),
    )


class RecommendConfig(BaseModel):
    """The nightly recommendation run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sla_days: float = Field(
        3.0,
        gt=0,
        description=(
            "An open lead whose rep has made no first contact within this many working days "
            "(the team's `working_days`, less the days the rep is marked unavailable; part days "
            "count in proportion) is reclaimed and re-matched, excluding that rep. Once per "
            "hand-over: on the first working day's run after the SLA passed; a lead no other rep "
            "can take stays with its rep (action keep), and one that the CRM does not show moved "
            "is not reclaimed again. A lead moved to another rep starts a new clock. Needs "
            "first-contact dates in the export (without them nothing is reclaimed, and the run "
            "says so); rows with `reclaimable` false are never reclaimed."
        ),
    )
    working_days: tuple[Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], ...] = Field(
        ("Mon", "Tue", "Wed", "Thu", "Fri"),
        min_length=1,
        description=(
            "The team's working days, counted by the first-contact SLA and by the fairness "
            "window's capacity (e.g. [Sun, Mon, Tue, Wed, Thu]). No lead is reclaimed on a run "
            "date outside them."
        ),
    )
    max_lead_age_days: int = Field(
        30,
        gt=0,
        description=(
            "Unassigned or reclaimed leads older than this are left out (and counted); so are "
            "open leads older than this in `score`."
        ),
    )
    fairness_window_days: int = Field(
        7,
        ge=0,
        description=(
            "Fairness is measured over this many previous days plus the run date: what the CRM "
            "shows each rep was given in those days (whoever decided it) against the reps' "
            "capacity on the team's working days. Earlier runs' outputs are never read."
        ),
    )
    score_chunk_rows: int = Field(
        200_000,
        gt=0,
        description="Lead x rep pairs scored at a time, which bounds memory.",
    )


class LeadmatchConfig(BaseModel):
    """Everything leadmatch can be told, with its defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(0, description="Seed for everything random outside the model slice.")
    timezone: str = Field(
        "UTC",
        description=(
            "The team's clock, an IANA time-zone name (e.g. Asia/Shanghai, Europe/Berlin). "
            "Timestamps with a zone offset in the data (2024-03-01T09:00:00Z, "
            "2024-03-01 17:00+08:00) are converted to it; timestamps without one are taken as "
            "already in it. Midnight of the run date, the first-contact SLA and the scheduled "
            "run's date are all counted on this clock."
        ),
    )
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
    off_policy: OffPolicyConfig = Field(default_factory=OffPolicyConfig)
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    paths: Paths = Field(default_factory=Paths)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{name!r} is not an IANA time-zone name; write e.g. UTC, Asia/Shanghai or "
                "America/New_York"
            ) from None
        return name

    def digest(self) -> str:
        """A short, stable hash of the whole configuration (logged with every run)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_config(path: Path | None = None) -> LeadmatchConfig:
    """Load and validate the YAML config at ``path`` (None: all defaults). Relative paths in
    the file (``tracking.root``, ``paths.recommendations``) are taken from the file's folder.

    Raises :class:`ConfigError` naming the file and each invalid field.
    """
    if path is None:
        return LeadmatchConfig()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the config must be a mapping of sections (features:, model:, ...)"
        )
    try:
        config = LeadmatchConfig.model_validate(raw)
    except ValidationError as err:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in err.errors()
        ]
        raise ConfigError(f"{path}: invalid configuration:\n" + "\n".join(lines)) from err
    return _paths_from(config, path.absolute().parent)


def _paths_from(config: LeadmatchConfig, folder: Path) -> LeadmatchConfig:
    """Relative paths of a config file are relative to its folder, wherever the command runs
    (a cron job started from / finds the same store and outputs as the user)."""

    def anchored(value: Path) -> Path:
        value = value.expanduser()
        return value if value.is_absolute() else folder / value

    return config.model_copy(
        update={
            "tracking": config.tracking.model_copy(update={"root": anchored(config.tracking.root)}),
            "paths": config.paths.model_copy(
                update={"recommendations": anchored(config.paths.recommendations)}
            ),
        }
    )
