"""The `train` flow: load and validate, build point-in-time pairs, fit and evaluate, log to MLflow.

The new model version becomes the ``champion`` of the registered model only if it beats the
current champion's log loss on this run's held-out slice (or there is no champion yet).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from features.describe import check_history
from features.pairs import TARGET, build_training_pairs, default_as_of
from features.schemas import CrmData
from models.evaluation import evaluate
from models.training import PAIR, TrainingResult, train_and_evaluate
from pipelines.config import LeadmatchConfig
from pipelines.errors import UserFacingError
from pipelines.io import LoadedData, load_data_folder
from pipelines.tracking import CHAMPION, REGISTERED_MODEL, use_experiment

EXPERIMENT = "leadmatch-train"


@dataclass(frozen=True)
class TrainSummary:
    """What `leadmatch train` reports: metrics per model, the rep signal, the registry decision."""

    run_id: str
    version: str
    promoted: bool
    decision: str
    metrics: dict[str, dict[str, float]]
    rep_signal: str
    n_train: int
    n_test: int
    label: tuple[str, ...] = ()


class TrainingDataError(UserFacingError):
    """The data cannot support a model (too few outcomes, one class, ...)."""


def refuse_unusable(data: CrmData, config: LeadmatchConfig) -> tuple[str, ...]:
    """The target and how the history's outcomes fall under it (features.describe); raises
    :class:`TrainingDataError` for a history `leadmatch validate` refuses or that cannot train
    a model, before any heavy work."""
    history = check_history(
        data,
        window_days=config.features.conversion_window_days,
        min_outcomes=config.model.min_outcomes,
        min_outcomes_per_class=config.model.min_outcomes_per_class,
    )
    refusals = history.problems + history.training
    if refusals:
        raise TrainingDataError(
            "this history cannot train a model:\n" + "\n".join(f"  - {r}" for r in refusals)
        )
    return tuple(history.label)


@task(cache_policy=NO_CACHE)
def load_history(path: Path, mapping: str | None, timezone: str = "UTC") -> LoadedData:
    """Load and validate the data folder (timestamps on the team's clock ``timezone``)."""
    loaded = load_data_folder(path, mapping, timezone=timezone)
    get_run_logger().info(
        "loaded %s leads, %s assignment rows, %s reps",
        len(loaded.data.leads),
        len(loaded.data.assignments),
        len(loaded.data.reps),
    )
    return loaded


@task(cache_policy=NO_CACHE)
def build_pairs(data: CrmData, config: LeadmatchConfig) -> pd.DataFrame:
    """Point-in-time training pairs (one per historical assignment with a known outcome)."""
    pairs = build_training_pairs(data, config=config.features)
    get_run_logger().info("built %s training pairs with %s columns", len(pairs), pairs.shape[1])
    return pairs


@task(cache_policy=NO_CACHE)
def fit_models(pairs: pd.DataFrame, config: LeadmatchConfig) -> TrainingResult:
    """Fit the pair model and both baselines on the earlier slice; evaluate on the latest."""
    try:
        result = train_and_evaluate(pairs, config.model)
    except ValueError as err:
        raise TrainingDataError(str(err)) from err
    get_run_logger().info("rep signal: %s", result.rep_signal.summary())
    return result


@task(cache_policy=NO_CACHE)
def log_training(
    result: TrainingResult, loaded: LoadedData, config: LeadmatchConfig, source: str
) -> TrainSummary:
    """Log params, metrics, plots and the model; register it and decide on the champion alias."""
    import matplotlib

    matplotlib.use("Agg")
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    from pipelines.serving import PairModelPyfunc, serving_requirements

    use_experiment(EXPERIMENT, config.tracking)
    data = loaded.data
    as_of = default_as_of(data)
    wrapper = PairModelPyfunc(result.model, config.features, result.rep_signal, data, as_of)
    example = _input_example(data)
    with mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags(
            {
                "source": source,
                "config_hash": config.digest(),
                "rep_signal": result.rep_signal.verdict,
            }
        )
        mlflow.log_params(
            {
                "data": source,
                "as_of": str(as_of),
                "n_train": result.n_train,
                "n_test": len(result.test),
                "conversion_window_days": config.features.conversion_window_days,
                "calibration": config.model.calibration,
                "best_iteration": getattr(result.model.booster_, "best_iteration_", None),
                **{f"lgbm.{k}": v for k, v in config.model.lightgbm.model_dump().items()},
            }
        )
        mlflow.log_metrics(result.flat_metrics())
        mlflow.log_dict(config.model_dump(mode="json"), "config.json")
        mlflow.log_dict(result.rep_signal.to_dict(), "rep_signal.json")
        mlflow.log_figure(result.calibration_figure(config.model.ece_bins), "calibration.png")
        mlflow.log_figure(_importance_figure(result), "feature_importance.png")
        calibration_path = Path(tmp) / "calibration_by_tenure.csv"
        result.calibration_by_tenure.to_csv(calibration_path, index=False)
        mlflow.log_artifact(str(calibration_path))
        output = wrapper.predict(None, example)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=wrapper,
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=serving_requirements(),
            registered_model_name=REGISTERED_MODEL,
        )
        version = str(info.registered_model_version)
        client = MlflowClient()
        promoted, decision = _champion_decision(client, result, data, config)
        if promoted:
            client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)
        mlflow.set_tag("champion_decision", decision)
        client.set_model_version_tag(
            REGISTERED_MODEL, version, "rep_signal", result.rep_signal.verdict
        )
        client.set_model_version_tag(
            REGISTERED_MODEL, version, "log_loss", f"{result.metrics[PAIR]['log_loss']:.6f}"
        )
    return TrainSummary(
        run_id=run.info.run_id,
        version=version,
        promoted=promoted,
        decision=decision,
        metrics=result.metrics,
        rep_signal=result.rep_signal.summary(),
        n_train=result.n_train,
        n_test=len(result.test),
    )


def _input_example(data: CrmData, n: int = 3) -> pd.DataFrame:
    leads = data.leads.tail(n).reset_index(drop=True)
    rep = data.reps.loc[data.reps["active"], "rep_id"].iloc[0]
    return leads.assign(rep_id=rep)


def _importance_figure(result: TrainingResult):
    from matplotlib.figure import Figure

    model = result.model
    importance = pd.Series(
        model.booster_.booster_.feature_importance("gain"), index=model.feature_names_in_
    )
    importance = importance.sort_values().tail(20)
    fig = Figure(figsize=(7, 0.3 * len(importance) + 1))
    ax = fig.add_subplot()
    ax.barh(importance.index, importance.to_numpy())
    ax.set_xlabel("total gain")
    ax.set_title("Pair model: feature importance")
    fig.tight_layout()
    return fig


def _champion_decision(
    client, result: TrainingResult, data: CrmData, config: LeadmatchConfig
) -> tuple[bool, str]:
    """Compare with the current champion on this run's held-out pairs (same keys, same outcomes)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    new_loss = result.metrics[PAIR]["log_loss"]
    try:
        current = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
    except MlflowException:
        return True, f"no champion yet: this version (log loss {new_loss:.4f}) becomes champion"
    champion = mlflow.pyfunc.load_model(
        f"models:/{REGISTERED_MODEL}@{CHAMPION}"
    ).unwrap_python_model()
    keys = result.test[["lead_id", "rep_id", "at"]]
    pairs = build_training_pairs(data, config=champion.features)
    held_out = keys.merge(pairs, on=["lead_id", "rep_id", "at"], how="inner")
    if len(held_out) != len(keys):
        return True, (
            f"champion v{current.version} cannot be scored on this held-out slice (it was built for "
            f"other data): this version (log loss {new_loss:.4f}) becomes champion"
        )
    try:
        p = champion.model.predict_proba(held_out)[:, 1]
    except (KeyError, ValueError) as err:
        return (
            True,
            f"champion v{current.version} cannot score these features ({err}): this version becomes champion",
        )
    old_loss = evaluate(held_out[TARGET].astype(int).to_numpy(), p)["log_loss"]
    if new_loss < old_loss:
        return True, (
            f"beats champion v{current.version} on the same held-out slice: log loss {new_loss:.4f} < {old_loss:.4f}"
        )
    return False, (
        f"does not beat champion v{current.version} on the same held-out slice "
        f"(log loss {new_loss:.4f} >= {old_loss:.4f}): champion unchanged"
    )


@flow(name="train", log_prints=False)
def train_flow(data: Path, config: LeadmatchConfig, mapping: str | None = None) -> TrainSummary:
    """Train, evaluate and register the pair model on the data folder ``data``."""
    loaded = load_history(data, mapping, config.timezone)
    label = refuse_unusable(loaded.data, config)
    pairs = build_pairs(loaded.data, config)
    result = fit_models(pairs, config)
    return replace(log_training(result, loaded, config, str(data)), label=label)


def metrics_table(summary: TrainSummary) -> pd.DataFrame:
    """Held-out metrics, one row per model (the pair model first)."""
    table = pd.DataFrame(summary.metrics).T
    return table.loc[[PAIR, *[m for m in table.index if m != PAIR]]]
