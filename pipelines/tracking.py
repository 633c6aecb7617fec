"""MLflow set-up: a local SQLite store and artifact folder by default, never the current directory.

The tracking URI comes from ``MLFLOW_TRACKING_URI`` when set, else from the config's
``tracking.uri``, else ``sqlite:///<project>/.leadmatch/mlflow.db`` with artifacts beside it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import UserFacingError

if TYPE_CHECKING:
    from pipelines.config import TrackingConfig

REGISTERED_MODEL = "leadmatch-pair"
CHAMPION = "champion"


class TrackingError(UserFacingError):
    """The MLflow store cannot be reached or read; the CLI prints it without a traceback."""


def quiet_mlflow() -> None:
    """Keep MLflow's informational chatter (schema hints, uv detection) out of the user's terminal."""
    import logging
    import warnings

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")
    warnings.filterwarnings("ignore", message=".*serialized using CloudPickle.*")


def tracking_uri(config: TrackingConfig) -> str:
    """The MLflow tracking URI in force: environment first, then config, then the local default."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or config.uri
    if uri:
        return uri
    return f"sqlite:///{(config.root / 'mlflow.db').resolve()}"


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
    """Select (creating if needed) the experiment ``name`` with artifacts under the project."""
    import mlflow
    from mlflow.exceptions import MlflowException

    configure_mlflow(config)
    try:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            location = None
            if not (os.environ.get("MLFLOW_TRACKING_URI") or config.uri):
                location = (config.root / "artifacts").resolve().as_uri()
            experiment_id = mlflow.create_experiment(name, artifact_location=location)
        else:
            experiment_id = experiment.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
    except MlflowException as err:
        raise TrackingError(
            f"cannot use the MLflow store at {tracking_uri(config)}: {err.message}. Check "
            "MLFLOW_TRACKING_URI or tracking.uri in the config."
        ) from err
    return experiment_id
