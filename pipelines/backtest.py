"""The `backtest` flow: does leadmatch beat round-robin, by how much, at what fairness cost, and
how sure are we? The logic is the pure :mod:`evaluation` library; this module runs it as a
Prefect flow, draws the chart, writes the files (each checked against its schema in
:mod:`evaluation.schemas`, and again by :func:`read_backtest_csv`) and logs one MLflow run.

**On the simulator** (``scenario``), where the truth is known: the pair model is trained on the
simulated history, then ``days`` days of new leads are replayed under every policy of
:mod:`evaluation.policies` and scored by the simulator's true probabilities
(:mod:`evaluation.replay`, where the protocol and its limits are described). Files:
backtest.csv, fairness_curve.csv, rep_shares.csv, runs.csv, soft_violations.csv, backtest.png.

**On real history** (``data``), where there is no ground truth: leadmatch's policy is evaluated
against the logged one with the off-policy estimators, cross-fitted
(:mod:`evaluation.off_policy_backtest`). Files: off_policy.csv, overlap.json.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from evaluation.messages import off_policy_messages, off_policy_table, simulator_messages
from evaluation.off_policy_backtest import CannotEvaluate, OffPolicyBacktest, off_policy_backtest
from evaluation.policies import CURVE_BANDS
from evaluation.policy_table import (
    PRINTED_COLUMNS,
    fairness_curve,
    policy_figures,
    policy_table,
    rep_shares,
)
from evaluation.replay import Replay, ReplaySettings, replay
from evaluation.schemas import BACKTEST_FILES
from features.pairs import build_training_pairs
from features.schemas import CrmData
from models.pair_model import PairModel
from models.training import TrainingResult, train_and_evaluate
from pipelines.config import LeadmatchConfig
from pipelines.errors import UserFacingError
from pipelines.io import atomic_directory, load_data_folder
from pipelines.outputs import write_csv
from pipelines.registry import data_set_label
from pipelines.tracking import use_experiment

EXPERIMENT = "leadmatch-backtest"


class BacktestError(UserFacingError):
    """The backtest cannot run as asked (no scenario or data, an unknown scenario, ...)."""


@dataclass(frozen=True)
class BacktestSummary:
    """What `leadmatch backtest` prints and where it wrote it.

    ``table``: one row per policy (simulator: the :data:`PRINTED_COLUMNS` of backtest.csv) or
    per estimator (real history), ready to print;
    ``messages``: plain sentences (targets met or not, verdicts, limits); ``curve``: expected
    wins per value-share band (simulator only); ``out``: the output folder (or None);
    ``run_id``: the MLflow run; ``seconds``: wall-clock time of the whole backtest.
    """

    table: pd.DataFrame
    messages: list[str]
    curve: pd.DataFrame | None
    out: Path | None
    run_id: str | None
    seconds: float


# --- outputs ------------------------------------------------------------------------------------


def backtest_chart(table: pd.DataFrame, curve: pd.DataFrame):
    """Expected wins per policy (with the lift over round-robin) and leadmatch's expected wins
    against the value-share band width."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.8))
    bars, line = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    colours = ["#9aa5b1"] * 3 + ["#7fb3d5", "#1f618d", "#c0392b"]
    bars.bar(table["policy"], table["expected_wins"], color=colours)
    for x, (wins, lift) in enumerate(
        zip(table["expected_wins"], table["lift_vs_round_robin"], strict=True)
    ):
        bars.annotate(f"{lift:+.1%}", (x, wins), ha="center", va="bottom", fontsize=9)
    bars.set_ylabel("true expected wins")
    bars.set_title("Expected wins per policy (lift over round-robin)")
    bars.tick_params(axis="x", rotation=25)
    finite = curve.loc[np.isfinite(curve["band"])]
    line.plot(
        finite["band"], finite["expected_wins"], marker="o", color="#1f618d", label="leadmatch"
    )
    unfair = curve.loc[~np.isfinite(curve["band"]), "expected_wins"]
    if len(unfair):
        line.axhline(unfair.iloc[0], linestyle="--", color="#7fb3d5", label="no fairness")
    line.set_xlabel("value-share band (± share of the fair share)")
    line.set_ylabel("true expected wins")
    line.set_title("Price of fairness")
    line.legend()
    fig.tight_layout()
    return fig


def write_simulator_outputs(
    folder: Path, table: pd.DataFrame, curve: pd.DataFrame, result: Replay
) -> list[Path]:
    """Write backtest.csv, fairness_curve.csv, rep_shares.csv, runs.csv, soft_violations.csv
    (each checked against its schema first) and backtest.png into ``folder`` (already
    existing). Returns the written paths."""
    files = {
        "backtest.csv": table,
        "fairness_curve.csv": curve,
        "rep_shares.csv": rep_shares(result),
        "runs.csv": result.runs,
        "soft_violations.csv": result.violations,
    }
    for name, frame in files.items():
        write_csv(BACKTEST_FILES[name].validate(frame), folder / name)
    fig = backtest_chart(table, curve)
    fig.savefig(folder / "backtest.png", dpi=100, metadata={"Software": None})
    return [folder / name for name in [*files, "backtest.png"]]


def write_off_policy_outputs(folder: Path, backtest: OffPolicyBacktest) -> list[Path]:
    """Write off_policy.csv (the estimates, checked against their schema first; empty where not
    identified) and overlap.json."""
    write_csv(
        BACKTEST_FILES["off_policy.csv"].validate(backtest.result.estimates),
        folder / "off_policy.csv",
    )
    overlap = folder / "overlap.json"
    overlap.write_text(
        json.dumps(backtest.result.overlap.to_dict(), indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    return [folder / "off_policy.csv", overlap]


def read_backtest_csv(path: Path) -> pd.DataFrame:
    """One of the backtest's CSV files (:data:`evaluation.schemas.BACKTEST_FILES`) read back and
    checked against its schema (``pandera.errors.SchemaError`` when it does not hold)."""
    return BACKTEST_FILES[path.name].validate(pd.read_csv(path, encoding="utf-8-sig"))


# --- the flow -----------------------------------------------------------------------------------


def _check_scenario(scenario: str) -> None:
    from simulation import SCENARIOS

    if scenario not in SCENARIOS:
        raise BacktestError(
            f"unknown scenario {scenario!r}: choose one of {', '.join(sorted(SCENARIOS))}"
        )


@task(cache_policy=NO_CACHE)
def simulate_world(scenario: str, seed: int):
    """The simulated world of ``scenario`` (its history and its truth)."""
    from simulation import simulate

    _check_scenario(scenario)
    world = simulate(scenario, seed=seed)
    get_run_logger().info("simulated %r: %s", scenario, world)
    return world


@task(cache_policy=NO_CACHE)
def train_on_history(data: CrmData, as_of: pd.Timestamp, config: LeadmatchConfig) -> TrainingResult:
    """Train the pair model on the history up to ``as_of``, as `leadmatch train` does."""
    pairs = build_training_pairs(data, as_of=as_of, config=config.features)
    try:
        result = train_and_evaluate(pairs, config.model)
    except ValueError as err:
        raise BacktestError(f"cannot train a model on this history: {err}") from err
    get_run_logger().info("rep signal: %s", result.rep_signal.summary())
    return result


@task(cache_policy=NO_CACHE)
def replay_days(
    world, model: PairModel, days: int, seed: int, config: LeadmatchConfig, bands: tuple
) -> Replay:
    """Replay ``days`` days of new leads under every policy."""
    settings = ReplaySettings(
        config.features, config.matching, config.recommend.fairness_window_days
    )
    return replay(
        world, model, settings, days=days, seed=seed, bands=bands, progress=get_run_logger().info
    )


@task(cache_policy=NO_CACHE)
def evaluate_off_policy(
    path: Path, mapping: str | None, config: LeadmatchConfig
) -> OffPolicyBacktest:
    """Load the data folder and estimate leadmatch's policy against the logged one."""
    data = load_data_folder(path, mapping, timezone=config.timezone).data
    try:
        return off_policy_backtest(
            data,
            features=config.features,
            model=config.model,
            matching=config.matching,
            off_policy=config.off_policy,
            window_days=config.recommend.fairness_window_days,
            seed=config.seed,
            progress=get_run_logger().info,
        )
    except CannotEvaluate as err:
        raise BacktestError(str(err)) from err


@task(cache_policy=NO_CACHE)
def log_backtest(
    params: dict,
    metrics: dict[str, float],
    files: list[Path],
    texts: dict[str, object],
    config: LeadmatchConfig,
) -> str:
    """One MLflow run in the `leadmatch-backtest` experiment: params, metrics, files, texts;
    named for what it replayed, e.g. ``default world, 30 days, seed 0: simulator backtest``."""
    import mlflow

    if params["mode"] == "simulator":
        what = f"{params['scenario']} world, {params['days']} days, seed {params['seed']}"
    else:
        what = data_set_label(Path(params["data"]))
    use_experiment(EXPERIMENT, config.tracking)
    with mlflow.start_run(run_name=f"{what}: {params['mode'].replace('_', '-')} backtest") as run:
        mlflow.set_tags({"mode": params["mode"], "config_hash": config.digest()})
        mlflow.log_params(params)
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        for path in files:
            mlflow.log_artifact(str(path))
        for name, content in texts.items():
            if isinstance(content, str):
                mlflow.log_text(content, name)
            else:
                mlflow.log_dict(content, name)
    return run.info.run_id


def _table_metrics(table: pd.DataFrame, key: str) -> dict[str, float]:
    """``<row key>.<column>`` -> value for every numeric cell of ``table``."""
    numeric = table.set_index(key).select_dtypes("number")
    return {
        f"{row}.{column}": float(value)
        for row, values in numeric.iterrows()
        for column, value in values.items()
    }


@dataclass(frozen=True)
class _Outcome:
    """What either kind of backtest hands to the logging and writing steps."""

    table: pd.DataFrame
    curve: pd.DataFrame | None
    messages: list[str]
    files: list[Path]
    params: dict[str, object]
    metrics: dict[str, float]


def _simulator_backtest(
    scenario: str, days: int, seed: int, config: LeadmatchConfig, bands: tuple, folder: Path
) -> _Outcome:
    world = simulate_world(scenario, seed)
    trained = train_on_history(world.data, world.as_of, config)
    result = replay_days(world, trained.model, days, seed, config, bands)
    figures = policy_figures(result)
    table = policy_table(figures)
    curve = fairness_curve(figures, config.matching.fairness.value_share.band)
    mine = result.placements.loc[result.placements["policy"] == "leadmatch"]
    messages = simulator_messages(
        table,
        curve,
        has_rep_effects=world.scenario.has_rep_effects,
        signal=trained.rep_signal,
        fairness=config.matching.fairness,
        window_days=config.recommend.fairness_window_days,
        violations=result.violations.loc[result.violations["policy"] == "leadmatch"],
        lead_worth=float(mine["worth"].mean()),
    )
    metrics = _table_metrics(table, "policy") | _table_metrics(
        curve.assign(band=curve["band"].astype(str)), "band"
    )
    metrics |= {f"{name}.seconds": seconds for name, seconds in result.seconds.items()}
    return _Outcome(
        table=table[PRINTED_COLUMNS],
        curve=curve,
        messages=messages,
        files=write_simulator_outputs(folder, table, curve, result),
        params={
            "mode": "simulator",
            "scenario": scenario,
            "days": days,
            "seed": seed,
            "rep_signal": trained.rep_signal.verdict,
        },
        metrics=metrics,
    )


def _history_backtest(
    data: Path, mapping: str | None, config: LeadmatchConfig, folder: Path
) -> _Outcome:
    backtest = evaluate_off_policy(data, mapping, config)
    result = backtest.result
    metrics = _table_metrics(result.estimates.drop(columns=["identified"]), "estimator")
    metrics |= {
        f"overlap.{k}": float(v)
        for k, v in result.overlap.to_dict().items()
        if isinstance(v, int | float)
    }
    return _Outcome(
        table=off_policy_table(result),
        curve=None,
        messages=off_policy_messages(backtest),
        files=write_off_policy_outputs(folder, backtest),
        params={
            "mode": "off_policy",
            "data": str(data),
            "mapping": str(mapping),
            "identified": result.identified,
        },
        metrics=metrics,
    )


@flow(name="backtest", log_prints=False)
def backtest_flow(
    scenario: str | None = None,
    days: int = 30,
    seed: int = 0,
    data: Path | None = None,
    mapping: str | None = None,
    out: Path | None = None,
    config: LeadmatchConfig | None = None,
    bands: tuple[float, ...] = CURVE_BANDS,
) -> BacktestSummary:
    """Backtest leadmatch on the simulator (``scenario``) or on logged history (``data``);
    write the files to ``out`` (atomically) and log one MLflow run."""
    config = config or LeadmatchConfig()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        if scenario is not None:
            outcome = _simulator_backtest(scenario, days, seed, config, tuple(bands), folder)
        else:
            outcome = _history_backtest(Path(data), mapping, config, folder)
        seconds = time.perf_counter() - started
        run_id = log_backtest(
            outcome.params,
            outcome.metrics | {"seconds": seconds},
            outcome.files,
            {"messages.txt": "\n".join(outcome.messages) + "\n"},
            config,
        )
        if out is not None:
            with atomic_directory(Path(out)) as target:
                for path in outcome.files:
                    (target / path.name).write_bytes(path.read_bytes())
    logger = get_run_logger()
    for line in outcome.messages:
        logger.info(line)
    return BacktestSummary(
        table=outcome.table,
        messages=outcome.messages,
        curve=outcome.curve,
        out=Path(out) if out is not None else None,
        run_id=run_id,
        seconds=seconds,
    )


def run_backtest(
    *,
    scenario: str | None = None,
    days: int = 30,
    seed: int = 0,
    data: Path | None = None,
    mapping: str | None = None,
    out: Path | None = None,
    config: LeadmatchConfig,
    bands: tuple[float, ...] = CURVE_BANDS,
) -> BacktestSummary:
    """What `leadmatch backtest` runs: the simulator replay (``scenario``, ``days``, ``seed``;
    ``bands``: the value-share band widths of the fairness curve besides the configured one)
    or the off-policy estimates on a data folder (``data``, optionally through ``mapping``).
    Results go to ``out`` (when given) and to MLflow. ``seconds`` in the summary is the whole
    wall-clock time, flow start-up included."""
    if (scenario is None) == (data is None):
        raise BacktestError("give either a scenario (simulator) or a data folder (real history)")
    if days < 1:
        raise BacktestError(f"days must be at least 1, got {days}")
    if scenario is not None:
        _check_scenario(scenario)
    started = time.perf_counter()
    summary = backtest_flow(
        scenario=scenario,
        days=days,
        seed=seed,
        data=data,
        mapping=mapping,
        out=out,
        config=config,
        bands=tuple(bands),
    )
    return replace(summary, seconds=time.perf_counter() - started)
