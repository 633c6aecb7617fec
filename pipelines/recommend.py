"""The nightly `recommend` flow: who should work which lead on the run date, and why.

Steps: load and validate the data as of the run date; load the champion model; pick the leads
to place (unassigned, plus leads reclaimed after the first-contact SLA); work out each rep's day;
score lead x rep pairs in bounded chunks; match under capacity and fairness; write the CSVs and
the report, log the run to MLflow, and only then publish them atomically as ``<out>/<run_date>/``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from features.daily import LeadPool, account_owners, leads_to_place, rep_day, snapshot
from features.lead_scoring import is_lead_scoring
from features.schemas import CrmData, Leads, Reps
from matching import MatchResult, candidate_pairs, match
from matching.fairness import RollingWindow
from matching.gain import plan_worth
from matching.nightly import crm_window, settle_reclaims
from matching.summary import ManagerPlan, fairness_costs, manager_plan
from models.chunks import score_in_chunks
from pipelines.checks import lead_scoring_refusal
from pipelines.config import LeadmatchConfig
from pipelines.errors import UserFacingError
from pipelines.io import atomic_directory, load_data_folder
from pipelines.outputs import write_plan
from pipelines.registry import data_set_label, registered_model_name
from pipelines.report import RecommendSummary, RunReport, write_report
from pipelines.tracking import (
    CHAMPION,
    TrackingError,
    config_params,
    use_experiment,
)

EXPERIMENT = "leadmatch-recommend"
MAX_DAYS_AHEAD = 7


class RecommendError(UserFacingError):
    """The run cannot be done as asked (no model, a date outside the data, ...)."""


@dataclass(frozen=True)
class Champion:
    """The served model and where it came from."""

    model: object  # pipelines.serving.LeadmatchModel
    version: str
    rep_signal_used: bool
    rep_signal: str
    rep_signal_figures: dict[str, object] | None = None


@task(cache_policy=NO_CACHE)
def load_state(
    path: Path,
    mapping: str | None,
    run_date: pd.Timestamp,
    timezone: str = "UTC",
    allow_personal: tuple[str, ...] = (),
) -> CrmData:
    """Load and validate the data folder and return what was known at the start of the run date
    (timestamps on the team's clock ``timezone``; ``allow_personal``: privacy.allow_columns)."""
    data = load_data_folder(path, mapping, timezone=timezone, allow_personal=allow_personal).data
    if data.leads.empty and data.assignments.empty:
        return snapshot(data, run_date)
    first = data.leads["created_at"].min()
    last = max(data.leads["created_at"].max(), data.assignments["assigned_at"].max()).normalize()
    if run_date <= first:
        raise RecommendError(
            f"run date {run_date:%Y-%m-%d} is before the data starts ({first:%Y-%m-%d}): pick a later date"
        )
    if run_date > last + pd.Timedelta(days=MAX_DAYS_AHEAD):
        raise RecommendError(
            f"run date {run_date:%Y-%m-%d} is more than {MAX_DAYS_AHEAD} days after the data ends "
            f"({last:%Y-%m-%d}): export fresh CRM data first, or pick an earlier date"
        )
    return snapshot(data, run_date)


@task(cache_policy=NO_CACHE)
def load_champion(config: LeadmatchConfig, name: str, state: CrmData) -> Champion:
    """The champion of the data set's registered model ``name`` (a clear error when there is
    none, or when it does not fit the data ``state``: other lead columns, categories or reps)."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    use_experiment(EXPERIMENT, config.tracking)
    try:
        version = MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException as err:
        if "RESOURCE_DOES_NOT_EXIST" in str(err.error_code) or "not found" in str(err).lower():
            raise RecommendError(
                "no trained model: run `leadmatch train --data ...` first on this data set "
                f"(its registered model {name} has no champion), or set tracking.model_name "
                "to the model it was trained as"
            ) from err
        raise TrackingError(f"cannot read the model registry: {err.message}") from err
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}").unwrap_python_model()
    except (MlflowException, OSError, AttributeError, ModuleNotFoundError) as err:
        raise TrackingError(
            f"the champion model (version {version.version} of {name}) cannot be loaded: {err}. "
            "Retrain with `leadmatch train`."
        ) from err
    problems = model.misfit(state)
    if problems:
        raise RecommendError(
            f"the champion model (version {version.version} of {name}) does not fit this data: "
            + "; ".join(problems)
            + ". It was trained on other data: train a model on this data (`leadmatch train "
            "--data DIR`), or set tracking.model_name to this data's model."
        )
    return Champion(
        model,
        str(version.version),
        model.rep_signal_used,
        model.signal_sentence(),
        model.rep_signal.to_dict(),
    )


def score_pairs(
    champion: Champion,
    data: CrmData,
    leads: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    chunk_rows: int,
    history: object | None = None,
) -> np.ndarray:
    """The champion's P(win) for each candidate pair as of ``as_of``, a chunk of whole leads
    at a time (:func:`models.chunks.score_in_chunks`).

    ``history``: ``champion.model.index(data)``, when the caller scores several batches."""
    if candidates.empty:
        return np.empty(0)
    if history is None:
        history = champion.model.index(data)

    def score(chunk_leads: pd.DataFrame, chunk: pd.DataFrame) -> np.ndarray:
        return champion.model.score(data, chunk_leads, chunk, as_of=as_of, history=history)

    return score_in_chunks(candidates, leads, score, chunk_rows=chunk_rows)


@task(cache_policy=NO_CACHE)
def fairness_window(
    state: CrmData, champion: Champion, day: pd.Timestamp, config: LeadmatchConfig
) -> RollingWindow:
    """What each rep was given over the fairness window before ``day``, from the CRM itself
    (:func:`matching.nightly.crm_window`), the leads' worth scored by the champion. Nothing is
    read from earlier runs' outputs."""
    history = functools.cache(lambda: champion.model.index(state))

    def p_win(leads: pd.DataFrame, candidates: pd.DataFrame, at: pd.Timestamp) -> np.ndarray:
        return score_pairs(
            champion,
            state,
            leads,
            candidates,
            as_of=at,
            chunk_rows=config.recommend.score_chunk_rows,
            history=history(),
        )

    return crm_window(
        state,
        day,
        config.matching,
        p_win,
        days=config.recommend.fairness_window_days,
        working_days=config.recommend.working_days,
    )


@flow(name="recommend")
def recommend_flow(
    data: Path,
    run_date: str | None = None,
    out: Path | None = None,
    config: LeadmatchConfig | None = None,
    lang: str = "en",
    mapping: str | None = None,
) -> RecommendSummary:
    """Recommend the run date's assignments from the data folder ``data``.

    The CRM export is the only input besides the model and the config: ``out`` is only
    written to, so the same inputs give the same plan whatever ``out`` already holds.
    Without ``run_date``, today on the team's clock (``config.timezone``).
    """
    config = config or LeadmatchConfig()
    day = (
        pd.Timestamp(run_date).normalize()
        if run_date
        else pd.Timestamp.now(tz=config.timezone).tz_localize(None).normalize()
    )
    out = Path(out) if out else config.paths.recommendations
    state = load_state(Path(data), mapping, day, config.timezone, config.privacy.allow_columns)
    if is_lead_scoring(state):
        raise RecommendError(lead_scoring_refusal(Path(data), f"{day:%Y-%m-%d}"))
    model_name = registered_model_name(Path(data), mapping, config.tracking)
    champion = load_champion(config, model_name, state)
    pool = leads_to_place(
        state,
        day,
        sla_days=config.recommend.sla_days,
        max_age_days=config.recommend.max_lead_age_days,
        working_days=config.recommend.working_days,
    )
    reps_today = rep_day(state, day)
    window = fairness_window(state, champion, day, config)
    fair, round_robin, n_pairs, rule_costs = match_leads(
        state, champion, pool, reps_today, day, window, config
    )
    fair, pool = settle_reclaims(fair, pool)
    plan = manager_plan(
        fair,
        round_robin,
        pool.leads,
        reps_today,
        config.matching,
        run_date=f"{day:%Y-%m-%d}",
        window_days=config.recommend.fairness_window_days,
        too_old_leads=pool.too_old_leads,
        rule_costs=rule_costs,
    )
    notes = list(pool.notes)
    if state.leads.empty:
        notes.insert(0, EMPTY_EXPORT)
    summary = RecommendSummary(
        folder=out / f"{day:%Y-%m-%d}",
        run_date=f"{day:%Y-%m-%d}",
        placed=fair.diagnostics.n_assigned,
        held=fair.diagnostics.n_held - pool.kept,
        reclaimed=pool.n_reclaimed,
        too_old=pool.too_old,
        expected_wins=plan_worth(fair.assignments, rep_signal=plan.rep_signal),
        expected_wins_round_robin=plan_worth(round_robin.assignments, rep_signal=plan.rep_signal),
        price_of_fairness=fair.diagnostics.price_of_fairness,
        model_version=champion.version,
        rep_signal_used=champion.rep_signal_used,
        kept=pool.kept,
        notes=notes,
    )
    # Logged before it is published: a run MLflow did not record never reaches the managers.
    with atomic_directory(summary.folder) as staging:
        write_outputs(plan, summary, champion, fair, n_pairs, lang, staging)
        log_recommendation(
            fair, summary, config, n_pairs, staging, data_set_label(Path(data)), model_name
        )
    return summary


EMPTY_EXPORT = (
    "The export has no leads as of the run date: there is nothing to place, so the files are empty."
)


@task(cache_policy=NO_CACHE)
def match_leads(
    state: CrmData,
    champion: Champion,
    pool: LeadPool,
    reps_today: pd.DataFrame,
    day: pd.Timestamp,
    window: RollingWindow,
    config: LeadmatchConfig,
) -> tuple[MatchResult, MatchResult, int, dict[str, float]]:
    """Score the candidate pairs; match them with leadmatch, and with round-robin to compare.
    Also what each fairness rule alone costs, when fairness costs enough to say
    (:func:`matching.summary.fairness_costs`)."""
    leads = pool.leads
    owners = account_owners(state)
    candidates = candidate_pairs(leads, reps_today, config.matching, account_owners=owners)
    get_run_logger().info(
        "placing %s leads (%s reclaimed after the SLA, %s from reps who left) over %s candidate "
        "pairs",
        len(leads),
        pool.n_reclaimed,
        pool.n_rep_left,
        len(candidates),
    )
    p_win = score_pairs(
        champion,
        state,
        leads,
        candidates,
        as_of=day,
        chunk_rows=config.recommend.score_chunk_rows,
    )
    candidates = candidates[[Leads.lead_id, Reps.rep_id]].assign(p_win=p_win)
    common = dict(
        history=window.history(day),
        account_owners=owners,
        rep_signal=champion.rep_signal_used,
    )
    fair = match(candidates, leads, reps_today, config.matching, policy="leadmatch", **common)
    round_robin = match(
        candidates, leads, reps_today, config.matching, policy="round_robin", **common
    )
    costs = fairness_costs(candidates, leads, reps_today, config.matching, fair, **common)
    return fair, round_robin, len(candidates), costs


@task(cache_policy=NO_CACHE)
def write_outputs(
    plan: ManagerPlan,
    summary: RecommendSummary,
    champion: Champion,
    fair: MatchResult,
    n_pairs: int,
    lang: str,
    folder: Path,
) -> Path:
    """Write the plan's CSVs (assignments, rep_summary, left_out) and report.html into
    ``folder`` (the staging folder the flow publishes)."""
    report = RunReport(
        summary=summary,
        plan=plan,
        rep_signal=champion.rep_signal_figures,
        solver_status=fair.diagnostics.status,
        solver_gap=fair.diagnostics.gap,
        candidate_pairs=n_pairs,
    )
    write_plan(plan, folder, lang)
    write_report(report, folder / "report.html", lang)
    return folder


@task(cache_policy=NO_CACHE)
def log_recommendation(
    fair: MatchResult,
    summary: RecommendSummary,
    config: LeadmatchConfig,
    n_pairs: int,
    folder: Path,
    data_set: str,
    model_name: str,
) -> None:
    """Log the run to MLflow (experiment leadmatch-recommend) with its output files, read from
    ``folder`` before they are published. The run is named for what it is, e.g. ``crm
    2025-05-06 plan, model v3`` (``data_set``: the data folder's short name; ``model_name``:
    the registered model that scored it), and its params are the whole config."""
    import mlflow

    d, f = fair.diagnostics, fair.fairness
    use_experiment(EXPERIMENT, config.tracking)
    run_name = f"{data_set} {summary.run_date} plan, model v{summary.model_version}"
    with mlflow.start_run(run_name=run_name):
        mlflow.log_params(config_params(config))
        mlflow.set_tags(
            {
                "data_set": data_set,
                "run_date": summary.run_date,
                "registered_model": model_name,
                "model_version": summary.model_version,
                "config_hash": config.digest(),
                "rep_signal_used": str(summary.rep_signal_used),
            }
        )
        metrics = {
            "leads_placed": summary.placed,
            "leads_held": summary.held,
            "leads_reclaimed": summary.reclaimed,
            "leads_kept": summary.kept,
            "leads_too_old": summary.too_old,
            "candidate_pairs": n_pairs,
            "expected_wins": summary.expected_wins,
            "expected_wins_round_robin": summary.expected_wins_round_robin,
            "lift_vs_round_robin": summary.expected_wins - summary.expected_wins_round_robin,
            "expected_value": d.expected_value,
            "soft_violations": len(d.soft_violations),
            "hard_violations": len(f.hard_violations),
            "gini_value_per_capacity": f.gini_value_per_capacity,
            "max_value_share": f.max_value_share,
            "max_top_tier_share": f.max_top_tier_share,
            "solver_objective": d.objective,
            "solver_bound": d.bound,
            "solver_gap": d.gap,
            "solver_seconds": d.solve_seconds,
            "solver_fractional_leads": d.n_fractional,
        }
        if summary.price_of_fairness is not None:
            metrics["price_of_fairness"] = summary.price_of_fairness
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(float(v))})
        mlflow.log_artifacts(str(folder))
