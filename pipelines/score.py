"""The `score` flow: each open lead of a history without reps, scored and explained.

Steps: load and validate the data as of the run date (as `recommend` does); load the data set's
champion, a lead-only model trained by `leadmatch train`; score the leads with no outcome yet
(those older than ``recommend.max_lead_age_days`` are left out and counted, as the nightly run
does: the model learnt from leads worked within weeks, and says nothing true of one left for a
year), tier them and say in words what drives each score; log the run to MLflow, and only then
publish ``<out>/<run_date>/lead_scores.csv`` atomically (UTF-8 with BOM, English or Chinese).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from features.lead_scoring import build_lead_scoring_rows, is_lead_scoring, open_leads
from features.schemas import CrmData
from matching.day import lead_values, tiers
from models.lead_scores import SCORE_DECIMALS, explain_leads, lead_score_table
from pipelines.checks import team_refusal
from pipelines.config import LeadmatchConfig
from pipelines.io import atomic_directory
from pipelines.outputs import ZH_HEADERS, write_csv
from pipelines.recommend import Champion, RecommendError, load_champion, load_state
from pipelines.registry import registered_model_name
from pipelines.tracking import config_params, use_experiment

EXPERIMENT = "leadmatch-score"
SCORES_FILE = "lead_scores.csv"
ZH_SCORE_HEADERS = {**ZH_HEADERS, "p_win": "赢单概率", "top_factors": "主要因素"}
"""Headers of lead_scores.csv in Chinese (the plan's words where the columns are the same)."""


@dataclass(frozen=True)
class ScoreSummary:
    """What `leadmatch score` reports: the published folder, how many open leads were scored,
    how many were left out as older than ``max_age_days``, the count per tier, their mean win
    chance and the model version."""

    folder: Path
    run_date: str
    scored: int
    too_old: int
    max_age_days: int
    tiers: dict[str, int]
    mean_p_win: float | None
    model_version: str


@task(cache_policy=NO_CACHE)
def score_leads(
    state: CrmData, champion: Champion, day: pd.Timestamp, config: LeadmatchConfig, lang: str
) -> tuple[pd.DataFrame, int]:
    """The rows of lead_scores.csv (:class:`models.lead_scores.LeadScores`) for the leads of
    ``state`` with no outcome on ``day`` and at most ``recommend.max_lead_age_days`` old: p_win
    from the champion, tiers by value x p_win (``matching.tier_quantiles``), the top factors in
    ``lang``; and how many older open leads were left out."""
    model = champion.model
    leads = open_leads(state)
    fresh = (day - leads["created_at"]) / pd.Timedelta(days=1) <= config.recommend.max_lead_age_days
    too_old = int((~fresh).sum())
    leads = leads.loc[fresh.to_numpy()].reset_index(drop=True)
    rows = build_lead_scoring_rows(state, leads, as_of=day, config=model.features)
    explained = explain_leads(model.estimator, rows, lang=lang)
    worth = lead_values(leads, config.matching.objective) * explained["p_win"].to_numpy(dtype=float)
    table = lead_score_table(
        leads,
        explained,
        tiers(worth, config.matching.tier_quantiles),
        run_date=f"{day:%Y-%m-%d}",
    )
    get_run_logger().info("scored %s open leads, left out %s older ones", len(table), too_old)
    return table, too_old


def write_scores(table: pd.DataFrame, folder: Path, lang: str) -> Path:
    """Write ``table`` as ``folder/lead_scores.csv`` in ``lang`` (headers in Chinese for zh)."""
    path = folder / SCORES_FILE
    frame = table.rename(columns=ZH_SCORE_HEADERS) if lang == "zh" else table
    p_win = ZH_SCORE_HEADERS["p_win"] if lang == "zh" else "p_win"
    write_csv(frame, path, {p_win: SCORE_DECIMALS})
    return path


@task(cache_policy=NO_CACHE)
def log_scores(
    summary: ScoreSummary, table: pd.DataFrame, config: LeadmatchConfig, folder: Path
) -> None:
    """Log the run to MLflow (experiment leadmatch-score) with its file, read from ``folder``
    before it is published."""
    import mlflow

    use_experiment(EXPERIMENT, config.tracking)
    with mlflow.start_run(run_name=summary.run_date):
        mlflow.log_params(config_params(config))
        mlflow.set_tags(
            {
                "run_date": summary.run_date,
                "model_version": summary.model_version,
                "config_hash": config.digest(),
            }
        )
        metrics = {"leads_scored": float(summary.scored), "leads_too_old": float(summary.too_old)}
        metrics.update({f"tier_{t}": float(n) for t, n in summary.tiers.items()})
        if summary.mean_p_win is not None:
            metrics["mean_p_win"] = summary.mean_p_win
            metrics["expected_wins"] = float(table["p_win"].sum())
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(folder))


@flow(name="score")
def score_flow(
    data: Path,
    run_date: str,
    out: Path,
    config: LeadmatchConfig | None = None,
    lang: str = "en",
    mapping: str | None = None,
) -> ScoreSummary:
    """Score the open leads of the lead-scoring history ``data`` on ``run_date`` with the data
    set's champion; publish ``<out>/<run_date>/lead_scores.csv``. The output folder is only
    written to."""
    config = config or LeadmatchConfig()
    day = pd.Timestamp(run_date).normalize()
    state = load_state(Path(data), mapping, day, config.timezone, config.privacy.allow_columns)
    if not is_lead_scoring(state):
        raise RecommendError(team_refusal(Path(data), f"{day:%Y-%m-%d}"))
    champion = load_champion(
        config, registered_model_name(Path(data), mapping, config.tracking), state
    )
    if champion.model.uses_rep_information:
        raise RecommendError(
            f"the champion model (version {champion.version}) tells reps apart, and this "
            "history has none: train on this data (`leadmatch train --data DIR`), which fits "
            "a lead-only model, or set tracking.model_name to this data's model"
        )
    table, too_old = score_leads(state, champion, day, config, lang)
    counts = table["tier"].value_counts()
    summary = ScoreSummary(
        folder=Path(out) / f"{day:%Y-%m-%d}",
        run_date=f"{day:%Y-%m-%d}",
        scored=len(table),
        too_old=too_old,
        max_age_days=config.recommend.max_lead_age_days,
        tiers={t: int(counts.get(t, 0)) for t in ("A", "B", "C")},
        mean_p_win=float(np.mean(table["p_win"])) if len(table) else None,
        model_version=champion.version,
    )
    # Logged before it is published: a run MLflow did not record never reaches the team.
    with atomic_directory(summary.folder) as staging:
        write_scores(table, staging, lang)
        log_scores(summary, table, config, staging)
    return summary
