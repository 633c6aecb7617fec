"""The nightly `recommend` flow: who should work which lead on the run date, and why.

Steps: load and validate the data as of the run date; load the champion model; pick the leads
to place (unassigned, plus leads reclaimed after the first-contact SLA); work out each rep's day;
score lead x rep pairs in bounded chunks; match under capacity and fairness; write the CSVs and
the report, log the run to MLflow, and only then publish them atomically as ``<out>/<run_date>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from features.daily import LeadPool, leads_to_place, rep_day, snapshot
from features.schemas import CrmData
from matching import MatchResult, candidate_pairs, match
from matching.gain import plan_worth
from matching.summary import ManagerPlan, fairness_costs, manager_plan
from pipelines.config import LeadmatchConfig
from pipelines.errors import UserFacingError
from pipelines.io import atomic_directory, load_data_folder
from pipelines.outputs import read_plan_csv, write_plan
from pipelines.report import RecommendSummary, RunReport, write_report
from pipelines.tracking import (
    CHAMPION,
    REGISTERED_MODEL,
    TrackingError,
    use_experiment,
)

EXPERIMENT = "leadmatch-recommend"
MAX_DAYS_AHEAD = 7


class RecommendError(UserFacingError):
    """The run cannot be done as asked (no model, a date outside the data, ...)."""


@dataclass(frozen=True)
class Champion:
    """The served model and where it came from."""

    model: object  # pipelines.serving.PairModelPyfunc
    version: str
    rep_signal_used: bool
    rep_signal: str
    rep_signal_figures: dict[str, object] | None = None


@task(cache_policy=NO_CACHE)
def load_state(
    path: Path, mapping: str | None, run_date: pd.Timestamp, timezone: str = "UTC"
) -> CrmData:
    """Load and validate the data folder and return what was known at the start of the run date
    (timestamps on the team's clock ``timezone``)."""
    data = load_data_folder(path, mapping, timezone=timezone).data
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
def load_champion(config: LeadmatchConfig) -> Champion:
    """The registered model with the ``champion`` alias (a clear error when there is none)."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    use_experiment(EXPERIMENT, config.tracking)
    try:
        version = MlflowClient().get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
    except MlflowException as err:
        if "RESOURCE_DOES_NOT_EXIST" in str(err.error_code) or "not found" in str(err).lower():
            raise RecommendError(
                "no trained model: run `leadmatch train --data ...` first"
            ) from err
        raise TrackingError(f"cannot read the model registry: {err.message}") from err
    try:
        model = mlflow.pyfunc.load_model(
            f"models:/{REGISTERED_MODEL}@{CHAMPION}"
        ).unwrap_python_model()
    except (MlflowException, OSError) as err:
        raise TrackingError(
            f"the champion model (version {version.version}) cannot be loaded: {err}. Retrain with `leadmatch train`."
        ) from err
    signal = model.rep_signal
    return Champion(
        model, str(version.version), signal.has_signal, signal.summary(), signal.to_dict()
    )


def score_pairs(
    champion: Champion,
    data: CrmData,
    leads: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    chunk_rows: int,
) -> np.ndarray:
    """P(win) for each candidate pair, scored a chunk of whole leads at a time (bounded memory)."""
    if candidates.empty:
        return np.empty(0)
    lead_codes = pd.factorize(candidates["lead_id"])[0]
    per_lead = np.bincount(lead_codes)
    starts = np.concatenate([[0], np.cumsum(per_lead)])
    out = np.empty(len(candidates))
    history = champion.model.index(data)
    order = np.argsort(lead_codes, kind="stable")
    ordered = candidates.iloc[order]
    lead_start = 0
    while lead_start < len(per_lead):
        lead_end = int(np.searchsorted(starts, starts[lead_start] + chunk_rows, side="right")) - 1
        lead_end = max(lead_end, lead_start + 1)
        rows = slice(starts[lead_start], starts[lead_end])
        chunk = ordered.iloc[rows]
        chunk_leads = leads.loc[leads["lead_id"].isin(chunk["lead_id"])]
        out[order[rows]] = champion.model.score(
            data, chunk_leads, chunk, as_of=as_of, history=history
        )
        lead_start = lead_end
    return out


def window_history(out: Path, day: pd.Timestamp, days: int, objective: str) -> pd.DataFrame | None:
    """What each rep received on the previous ``days`` days, from earlier runs' outputs in ``out``.

    Returns rep_id, value_received, top_tier_received, capacity_days (window totals), or None
    when no earlier run exists.
    """
    rows = []
    for back in range(1, days + 1):
        folder = out / f"{day - pd.Timedelta(days=back):%Y-%m-%d}"
        if not (folder / "assignments.csv").is_file():
            continue
        asg = read_plan_csv(folder / "assignments.csv")
        reps = read_plan_csv(folder / "rep_summary.csv")
        placed = asg.loc[asg["action"].isin(["assign", "reassign"])]
        baseline = placed["lead_win_chance_pct"] / 100
        worth = baseline
        if objective == "expected_value":
            chance = placed["rep_win_chance_pct"].fillna(placed["lead_win_chance_pct"]) / 100
            worth = placed["expected_revenue"].fillna(0) / chance * baseline
        rows.append(
            pd.DataFrame(
                {
                    "rep_id": placed["rep_id"].astype(str),
                    "value_received": worth.fillna(0.0),
                    "top_tier_received": (placed["tier"] == "A").astype(float),
                    "capacity_days": 0.0,
                }
            )
        )
        rows.append(
            pd.DataFrame(
                {
                    "rep_id": reps["rep_id"].astype(str),
                    "value_received": 0.0,
                    "top_tier_received": 0.0,
                    "capacity_days": reps["capacity"].astype(float),
                }
            )
        )
    if not rows:
        return None
    return pd.concat(rows).groupby("rep_id", as_index=False).sum()


def account_owners(data: CrmData) -> pd.DataFrame | None:
    """account_id, rep_id: the rep holding each account's most recent open lead."""
    if "account_id" not in data.leads:
        return None
    open_rows = data.assignments.loc[
        data.assignments["status"] == "open", ["lead_id", "rep_id", "assigned_at"]
    ]
    owned = open_rows.merge(data.leads[["lead_id", "account_id"]], on="lead_id").dropna(
        subset=["account_id"]
    )
    owned = owned.sort_values("assigned_at", kind="stable").drop_duplicates(
        "account_id", keep="last"
    )
    return owned[["account_id", "rep_id"]].astype(str).reset_index(drop=True)


@flow(name="recommend")
def recommend_flow(
    data: Path,
    run_date: str | None = None,
    out: Path | None = None,
    config: LeadmatchConfig | None = None,
    lang: str = "en",
    mapping: str | None = None,
) -> RecommendSummary:
    """Recommend the run date's assignments from the data folder ``data``."""
    config = config or LeadmatchConfig()
    day = pd.Timestamp(run_date).normalize() if run_date else pd.Timestamp.now().normalize()
    out = Path(out) if out else config.paths.recommendations
    state = load_state(Path(data), mapping, day, config.timezone)
    champion = load_champion(config)
    pool = leads_to_place(
        state,
        day,
        sla_days=config.recommend.sla_days,
        max_age_days=config.recommend.max_lead_age_days,
    )
    reps_today = rep_day(state, day)
    fair, round_robin, n_pairs, rule_costs = match_leads(
        state, champion, pool, reps_today, day, out, config
    )
    plan = manager_plan(
        fair,
        round_robin,
        pool.leads,
        reps_today,
        config.matching,
        run_date=f"{day:%Y-%m-%d}",
        window_days=config.recommend.fairness_window_days,
        rule_costs=rule_costs,
    )
    summary = RecommendSummary(
        folder=out / f"{day:%Y-%m-%d}",
        run_date=f"{day:%Y-%m-%d}",
        placed=fair.diagnostics.n_assigned,
        held=fair.diagnostics.n_held,
        reclaimed=pool.n_reclaimed,
        too_old=pool.too_old,
        expected_wins=plan_worth(fair.assignments, rep_signal=plan.rep_signal),
        expected_wins_round_robin=plan_worth(round_robin.assignments, rep_signal=plan.rep_signal),
        price_of_fairness=fair.diagnostics.price_of_fairness,
        model_version=champion.version,
        rep_signal_used=champion.rep_signal_used,
    )
    # Logged before it is published: a run MLflow did not record never reaches the managers.
    with atomic_directory(summary.folder) as staging:
        write_outputs(plan, summary, champion, fair, n_pairs, lang, staging)
        log_recommendation(fair, summary, config, n_pairs, staging)
    return summary


@task(cache_policy=NO_CACHE)
def match_leads(
    state: CrmData,
    champion: Champion,
    pool: LeadPool,
    reps_today: pd.DataFrame,
    day: pd.Timestamp,
    out: Path,
    config: LeadmatchConfig,
) -> tuple[MatchResult, MatchResult, int, dict[str, float]]:
    """Score the candidate pairs; match them with leadmatch, and with round-robin to compare.
    Also what each fairness rule alone costs, when fairness costs enough to say
    (:func:`matching.summary.fairness_costs`)."""
    leads = pool.leads
    owners = account_owners(state)
    candidates = candidate_pairs(leads, reps_today, config.matching, account_owners=owners)
    get_run_logger().info(
        "placing %s leads (%s reclaimed) over %s candidate pairs",
        len(leads),
        pool.n_reclaimed,
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
    candidates = candidates[["lead_id", "rep_id"]].assign(p_win=p_win)
    common = dict(
        history=window_history(
            out, day, config.recommend.fairness_window_days, config.matching.objective
        ),
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
) -> None:
    """Log the run to MLflow (experiment leadmatch-recommend) with its output files, read from
    ``folder`` before they are published."""
    import mlflow

    d, f = fair.diagnostics, fair.fairness
    use_experiment(EXPERIMENT, config.tracking)
    with mlflow.start_run(run_name=summary.run_date):
        mlflow.set_tags(
            {
                "run_date": summary.run_date,
                "model_version": summary.model_version,
                "config_hash": config.digest(),
                "rep_signal_used": str(summary.rep_signal_used),
            }
        )
        metrics = {
            "leads_placed": summary.placed,
            "leads_held": summary.held,
            "leads_reclaimed": summary.reclaimed,
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
