"""MLflow set-up: where the store is, whether it can be used, and pointing MLflow at it.

The tracking URI comes from ``MLFLOW_TRACKING_URI`` when set, else from the config's
``tracking.uri``, else it is a local SQLite store ``<store>/mlflow.db`` with its artifacts in
``<store>/artifacts/``. The store folder is ``LEADMATCH_HOME`` when set, else the config's
``tracking.root`` (default ``.leadmatch``; :func:`pipelines.config.load_config` resolves a
relative one against the config file's folder), and without a config file ``.leadmatch/`` in the
project folder (the leadmatch checkout; ``~`` when leadmatch is installed as a package). It is
never the current directory, so a cron job started from ``/`` finds the store the user trained.

This module imports nothing heavy: the CLI checks the store (:func:`check_store`) before it
loads MLflow.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipelines.errors import UserFacingError

if TYPE_CHECKING:
    from pipelines.config import LeadmatchConfig, TrackingConfig

CHAMPION = "champion"
HOME_ENV = "LEADMATCH_HOME"
SQLITE_HEADER = b"SQLite format 3\x00"
CONNECT_TIMEOUT_S = 5.0
# The experiments' kind: model development, not GenAI. MLflow UIs that read this tag open such
# an experiment on its runs view; 3.17's follows its own "GenAI | Model training" switch instead
# (GenAI unless told otherwise), hence UI_TRAINING_VIEW.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
# The MLflow UI's address (after host and port) that opens the experiments on model training
# (runs, metrics, registered models) rather than on GenAI traces; seen in 3.17.2's UI, where a
# bare address opened the training experiment on an empty "Traces / Latency / Errors" page.
UI_TRAINING_VIEW = "#/experiments?workflowType=machine_learning"


class TrackingError(UserFacingError):
    """The MLflow store cannot be reached or read; the CLI prints it without a traceback."""


def project_folder() -> Path:
    """The leadmatch checkout (the folder of its pyproject.toml), or the user's home folder when
    leadmatch runs from an installed package."""
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / "pyproject.toml").is_file() else Path.home()


def store_folder(config: TrackingConfig) -> Path:
    """The folder of the local store (mlflow.db and artifacts/), as an absolute path."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser().absolute()
    root = config.root.expanduser()
    return root if root.is_absolute() else project_folder() / root


def _remote_uri(config: TrackingConfig) -> str | None:
    return os.environ.get("MLFLOW_TRACKING_URI") or config.uri


def tracking_uri(config: TrackingConfig) -> str:
    """The MLflow tracking URI in force: environment first, then config, then the local store."""
    return _remote_uri(config) or f"sqlite:///{store_folder(config) / 'mlflow.db'}"


def describe_store(config: TrackingConfig) -> str:
    """Which store is used and why, in a line for the user."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return f"{os.environ['MLFLOW_TRACKING_URI']} (from MLFLOW_TRACKING_URI)"
    if config.uri:
        return f"{config.uri} (tracking.uri of the config)"
    if os.environ.get(HOME_ENV):
        why = f"from {HOME_ENV}"
    elif config.root.expanduser().is_absolute():
        why = "from the config"
    else:
        why = f"the default: {config.root} in {project_folder()}"
    return f"{store_folder(config)} ({why})"


def check_store(config: TrackingConfig) -> None:
    """Refuse a store that cannot work, before MLflow is loaded: a local database that is empty,
    damaged or not MLflow's (MLflow would crash on it, or silently start an empty store over a
    truncated one), a local folder that cannot be written, or a tracking server that does not
    answer (MLflow would retry for minutes)."""
    uri = tracking_uri(config)
    if uri.startswith("sqlite:///"):
        _check_sqlite(Path(uri.removeprefix("sqlite:///")), own_store=_remote_uri(config) is None)
    elif urlsplit(uri).scheme in ("http", "https"):
        _check_reachable(uri)


def _check_sqlite(db: Path, *, own_store: bool) -> None:
    from pipelines.checks import ArgumentError, output_folder

    restore = (
        f"Restore {db.name} from a backup, or move it away to start an empty store (the runs "
        "and models it held are then gone)."
    )
    if not db.exists():
        artifacts = db.parent / "artifacts"
        if own_store and artifacts.is_dir() and any(artifacts.iterdir()):
            raise TrackingError(
                f"the MLflow store {db.parent} holds artifacts of earlier runs but no {db.name}: "
                f"the database was moved or deleted. Put it back, or move {db.parent} away to "
                "start an empty store."
            )
        try:
            output_folder(db.parent, option="MLflow store", min_free=0)
        except ArgumentError as err:
            raise TrackingError(str(err)) from None
        return
    if db.is_dir():
        raise TrackingError(f"the MLflow database {db} is a folder, not a file")
    if db.stat().st_size == 0:
        raise TrackingError(
            f"the MLflow database {db} is empty (0 bytes): it was truncated. {restore}"
        )
    with db.open("rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise TrackingError(f"{db} is not an SQLite database: it is damaged. {restore}")
    try:
        with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=10) as connection:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.OperationalError as err:
        if "locked" in str(err):
            return  # another run is writing to it: a busy store is not a damaged one
        raise TrackingError(f"the MLflow database {db} is damaged ({err}). {restore}") from None
    except sqlite3.DatabaseError as err:
        raise TrackingError(f"the MLflow database {db} is damaged ({err}). {restore}") from None
    if verdict != "ok":
        raise TrackingError(f"the MLflow database {db} is damaged ({verdict}). {restore}")
    if not {"alembic_version", "experiments"} <= tables:
        raise TrackingError(
            f"{db} is an SQLite database but not an MLflow store; point LEADMATCH_HOME or "
            "tracking.root at another folder"
        )


def _check_reachable(uri: str) -> None:
    import urllib.request

    parts = urlsplit(uri)
    host = parts.hostname or "localhost"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return  # reached through a proxy: MLflow's own (short, see pipelines.runtime) retries decide
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {uri} ({err.strerror or err}): start "
            "it, or fix MLFLOW_TRACKING_URI / tracking.uri in the config"
        ) from None


def configure_mlflow(config: TrackingConfig) -> str:
    """Point MLflow at the configured store (creating the local folder if needed); return the URI."""
    import mlflow

    uri = tracking_uri(config)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    user_setting = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # MLflow exports the URI to the environment; put the user's own setting back so it alone
    # decides the next time (a different config in the same process must still win).
    if user_setting is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = user_setting
    return uri


def use_experiment(name: str, config: TrackingConfig) -> str:
    """Select (creating if needed) the experiment ``name`` with artifacts under the store."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    configure_mlflow(config)
    try:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            location = None
            if _remote_uri(config) is None:
                location = (store_folder(config) / "artifacts").as_uri()
            experiment_id = mlflow.create_experiment(
                name, artifact_location=location, tags=dict([EXPERIMENT_KIND])
            )
        else:
            experiment_id = experiment.experiment_id
            if experiment.tags.get(EXPERIMENT_KIND[0]) is None:
                mlflow.MlflowClient().set_experiment_tag(experiment_id, *EXPERIMENT_KIND)
        mlflow.set_experiment(experiment_id=experiment_id)
    except MlflowException as err:
        raise TrackingError(
            f"cannot use the MLflow store at {tracking_uri(config)}: {err.message}. Check "
            "MLFLOW_TRACKING_URI or tracking.uri in the config."
        ) from err
    except SQLAlchemyError as err:
        raise TrackingError(
            f"cannot use the MLflow store at {tracking_uri(config)}: "
            f"{getattr(err, 'orig', None) or err}. Restore the database from a backup, or move "
            "it away to start an empty store."
        ) from err
    return experiment_id


def config_params(config: LeadmatchConfig) -> dict[str, str]:
    """Every setting of ``config`` as a flat ``section.field`` -> text mapping (MLflow params),
    e.g. ``matching.fairness.value_share.band``."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            out[prefix] = "None" if value is None else str(value)

    walk("", config.model_dump(mode="json"))
    return out
