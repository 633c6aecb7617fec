"""The `train` flow: load and validate, build point-in-time pairs, fit and evaluate, log to MLflow.

Three models are fitted on the same earlier slice and judged on the same held-out slice (the pair
model, the logistic and the lead-only baselines); the one with the lowest held-out log loss is
registered and served. Each data set has its own registered model and experiment
(:mod:`pipelines.registry`); the new version becomes the ``champion`` only through the registry's
gate. ``dry_run`` trains, evaluates and reports what the gate would decide, and logs nothing.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from features.describe import HistoryCheck, check_history
from features.lead_scoring import stand_in
from features.pairs import build_training_pairs, default_as_of
from features.schemas import CrmData, Leads, Reps
from models.lead_scores import train_lead_scores
from models.training import TrainingResult, train_and_evaluate
from pipelines.config import LeadmatchConfig
from pipelines.errors import UserFacingError
from pipelines.io import LoadedData, load_data_folder
from pipelines.registry import (
    CurrentChampion,
    Decision,
    PromotionMode,
    current_champion,
    data_set_label,
    decide,
    registered_model_name,
    train_experiment,
    version_description,
)
from pipelines.serving import LeadmatchModel, model_inputs
from pipelines.tracking import (
    CHAMPION,
    config_params,
    tracking_uri,
    use_experiment,
)


@dataclass(frozen=True)
class TrainSummary:
    """What `leadmatch train` reports: metrics per model, the served model, the rep signal, the
    registry decision (``run_id`` and ``version`` are None in a dry run)."""

    model_name: str
    experiment: str
    run_id: str | None
    version: str | None
    promoted: bool
    decision: str
    served: str
    served_reason: str
    metrics: dict[str, dict[str, float]]
    rep_signal: str
    n_train: int
    n_test: int
    personal_columns: list[str]
    dry_run: bool = False
    label: tuple[str, ...] = ()


class TrainingDataError(UserFacingError):
    """The data cannot support a model (too few outcomes, one class, ...)."""


def refuse_unusable(data: CrmData, config: LeadmatchConfig) -> HistoryCheck:
    """What the history means for the model (features.describe: the target and how the
    outcomes fall under it, whether only a lead-only model can learn from it); raises
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
    return history


@task(cache_policy=NO_CACHE)
def load_history(path: Path, mapping: str | None, config: LeadmatchConfig) -> LoadedData:
    """Load and validate the data folder (timestamps on the team's clock ``config.timezone``;
    columns that look personal are dropped)."""
    loaded = load_data_folder(
        path, mapping, timezone=config.timezone, allow_personal=config.privacy.allow_columns
    )
    logger = get_run_logger()
    logger.info(
        "loaded %s leads, %s assignment rows, %s reps",
        len(loaded.data.leads),
        len(loaded.data.assignments),
        len(loaded.data.reps),
    )
    for column in loaded.personal:
        logger.info("dropped %s", column.sentence())
    return loaded


@task(cache_policy=NO_CACHE)
def build_pairs(loaded: LoadedData, config: LeadmatchConfig) -> pd.DataFrame:
    """Point-in-time training pairs (one per historical assignment with a known outcome)."""
    pairs = build_training_pairs(loaded.data, config=config.features)
    get_run_logger().info("built %s training pairs with %s columns", len(pairs), pairs.shape[1])
    return pairs


@task(cache_policy=NO_CACHE)
def fit_models(
    pairs: pd.DataFrame, config: LeadmatchConfig, lead_only: bool = False
) -> TrainingResult:
    """Fit the pair model and both baselines on the earlier slice; evaluate on the latest.
    ``lead_only``: the lead-only model instead, beside a plain LightGBM (a history whose
    outcomes cannot tell reps apart)."""
    fit = train_lead_scores if lead_only else train_and_evaluate
    try:
        result = fit(pairs, config.model)
    except ValueError as err:
        raise TrainingDataError(str(err)) from err
    logger = get_run_logger()
    logger.info("rep signal: %s", result.rep_signal.summary())
    logger.info("%s", result.served_reason())
    return result


def served_model(
    result: TrainingResult, pairs: pd.DataFrame, loaded: LoadedData, config: LeadmatchConfig
) -> LeadmatchModel:
    """The artefact to register: the served estimator and its fit-check aggregates."""
    return LeadmatchModel.from_training(
        result.served_model,
        result.served,
        pairs,
        config.features,
        result.rep_signal,
        trained_before=result.test_start,
        as_of=default_as_of(loaded.data),
    )


@task(cache_policy=NO_CACHE)
def judge_dry_run(
    result: TrainingResult,
    loaded: LoadedData,
    served: LeadmatchModel,
    config: LeadmatchConfig,
    name: str,
    promotion: PromotionMode,
) -> Decision:
    """What the gate would decide, reading the registry only (a missing local store is not
    created: it simply has no champion)."""
    uri = tracking_uri(config.tracking)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        champion = CurrentChampion(None)
    else:
        from mlflow.tracking import MlflowClient

        from pipelines.tracking import configure_mlflow

        configure_mlflow(config.tracking)
        champion = current_champion(MlflowClient(), name)
    return decide(champion, result, loaded.data, served, config.model, promotion)


@task(cache_policy=NO_CACHE)
def log_training(
    result: TrainingResult,
    pairs: pd.DataFrame,
    loaded: LoadedData,
    served: LeadmatchModel,
    config: LeadmatchConfig,
    data: Path,
    mapping: str | None,
    name: str,
    promotion: PromotionMode,
) -> TrainSummary:
    """Log params, metrics, plots and the served model; register it and let the gate decide on
    the champion alias."""
    import matplotlib

    matplotlib.use("Agg")
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    from pipelines.serving import serving_requirements

    experiment = train_experiment(name)
    use_experiment(experiment, config.tracking)
    client = MlflowClient()
    champion = current_champion(client, name)
    as_of = served.as_of
    example = _input_example(pairs, served)
    run_name = f"{data_set_label(data)} {dt.date.today():%Y-%m-%d} {result.served}"
    with mlflow.start_run(run_name=run_name) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags(
            {
                "data_set": str(data),
                "mapping": str(mapping or ""),
                "registered_model": name,
                "served_model": result.served,
                "config_hash": config.digest(),
                "rep_signal": result.rep_signal.verdict,
            }
        )
        mlflow.log_params(
            {
                "data": str(data),
                "mapping": str(mapping or ""),
                "as_of": str(as_of),
                "label": served.label_definition(),
                "served_model": result.served,
                "n_train": result.n_train,
                "n_test": len(result.test),
                "test_start": str(result.test_start),
                "calibration_used": getattr(
                    result.served_model, "calibration_method_", "none (logistic regression)"
                ),
                "best_iteration": getattr(result.model.booster_, "best_iteration_", None),
                "personal_columns_dropped": ", ".join(p.column for p in loaded.personal) or "-",
                **config_params(config),
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
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=served,
            signature=infer_signature(example, served.predict(None, example)),
            input_example=example,
            pip_requirements=serving_requirements(),
            registered_model_name=name,
        )
        version = str(info.registered_model_version)
        decision = decide(champion, result, loaded.data, served, config.model, promotion)
        if decision.promote:
            client.set_registered_model_alias(name, CHAMPION, version)
        description = version_description(
            data_set=str(data),
            mapping=mapping,
            result=result,
            served=served,
            decision=decision,
            as_of=as_of,
        )
        mlflow.set_tags({"champion_decision": decision.reason, "mlflow.note.content": description})
        if decision.comparison is not None:
            mlflow.log_metrics(
                {
                    "champion.log_loss": decision.comparison.loss_a,
                    "champion.gain": decision.comparison.gain,
                    "champion.gain_low": decision.comparison.interval[0],
                    "champion.gain_high": decision.comparison.interval[1],
                }
            )
        client.update_model_version(name, version, description=description)
        served_metrics = result.metrics[result.served]
        for key, value in {
            "served_model": result.served,
            "rep_signal": result.rep_signal.verdict,
            "log_loss": f"{served_metrics['log_loss']:.6f}",
            "ece": f"{served_metrics['ece']:.6f}",
            "label": served.label_definition(),
        }.items():
            client.set_model_version_tag(name, version, key, value)
        if not client.get_registered_model(name).description:
            client.update_registered_model(
                name, description=f"leadmatch models of the data set {data}"
            )
    return _summary(result, loaded, name, experiment, decision, run.info.run_id, version)


@flow(name="train", log_prints=False)
def train_flow(
    data: Path,
    config: LeadmatchConfig,
    mapping: str | None = None,
    promotion: PromotionMode = "gate",
    dry_run: bool = False,
) -> TrainSummary:
    """Train, evaluate and register the best model on the data folder ``data``.

    ``promotion``: ``gate`` (the champion changes only for a reliably better model), ``promote``
    (always) or ``never``; ``dry_run``: log nothing, report what the gate would decide.
    """
    data = Path(data)
    name = registered_model_name(data, mapping, config.tracking)
    loaded = load_history(data, mapping, config)
    history = refuse_unusable(loaded.data, config)
    if history.lead_only:
        # Every outcome counts, owned or not; the registry's gate scores these same rows.
        loaded = replace(loaded, data=stand_in(loaded.data))
    pairs = build_pairs(loaded, config)
    result = fit_models(pairs, config, history.lead_only)
    served = served_model(result, pairs, loaded, config)
    if dry_run:
        decision = judge_dry_run(result, loaded, served, config, name, promotion)
        summary = _summary(result, loaded, name, train_experiment(name), decision, None, None)
    else:
        summary = log_training(
            result, pairs, loaded, served, config, data, mapping, name, promotion
        )
    return replace(summary, label=tuple(history.label))


def _summary(
    result: TrainingResult,
    loaded: LoadedData,
    name: str,
    experiment: str,
    decision: Decision,
    run_id: str | None,
    version: str | None,
) -> TrainSummary:
    return TrainSummary(
        model_name=name,
        experiment=experiment,
        run_id=run_id,
        version=version,
        promoted=decision.promote and version is not None,
        decision=decision.reason,
        served=result.served,
        served_reason=result.served_reason(),
        metrics=result.metrics,
        rep_signal=result.rep_signal.summary(),
        n_train=result.n_train,
        n_test=len(result.test),
        personal_columns=[p.sentence() for p in loaded.personal],
        dry_run=version is None,
    )


def _input_example(pairs: pd.DataFrame, served: LeadmatchModel, n: int = 3) -> pd.DataFrame:
    """Synthetic pair-feature rows: the quartiles of each numeric input and the most frequent
    values of each category input (no lead, rep or contact of the data)."""
    categorical, numeric = model_inputs(served.estimator)
    rows: dict[str, object] = {
        Leads.lead_id: [f"example-lead-{i + 1}" for i in range(n)],
        Reps.rep_id: ["example-rep"] * n,
    }
    for column in categorical:
        common = pairs[column].astype("str").value_counts(dropna=True).index.tolist()[:n]
        common = common or ["<missing>"]
        rows[column] = [common[i % len(common)] for i in range(n)]
    for column in numeric:
        values = pd.to_numeric(pairs[column], errors="coerce").astype(float)
        rows[column] = values.quantile([0.25, 0.5, 0.75][:n]).to_numpy()
    return pd.DataFrame(rows)


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
    kind = "Pair model" if model.rep_information else "Lead-only model"
    ax.set_title(f"{kind}: feature importance")
    fig.tight_layout()
    return fig


def metrics_table(summary: TrainSummary) -> pd.DataFrame:
    """Held-out metrics, one row per model (the served model first)."""
    table = pd.DataFrame(summary.metrics).T
    return table.loc[[summary.served, *[m for m in table.index if m != summary.served]]]
