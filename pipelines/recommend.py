"""The nightly `recommend` flow: who should work which lead on the run date, and why.

Steps: load and validate the data as of the run date; load the champion model; pick the leads
to place (unassigned, plus leads reclaimed after the first-contact SLA); work out each rep's day;
score lead x rep pairs in bounded chunks; match under capacity and fairness; write the CSVs and
the report atomically into ``<out>/<run_date>/`` and log the run to MLflow.
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
from matching.assign import match_day
from pipelines.config import LeadmatchConfig
from pipelines.errors import UserFacingError
from pipelines.io import atomic_directory, load_data_folder
from pipelines.outputs import (
    ASSIGNMENT_COLUMNS,
    REP_SUMMARY_COLUMNS,
    ZH_HEADERS,
    localise,
    write_csv,
)
from pipelines.report import RunReport, render_report
from pipelines.tracking import (
    CHAMPION,
    REGISTERED_MODEL,
    TrackingError,
    quiet_mlflow,
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


@dataclass(frozen=True)
class RecommendSummary:
    """What `leadmatch recommend` prints."""

    folder: Path
    run_date: str
    placed: int
    held: int
    reclaimed: int
    too_old: int
    expected_wins: float
    expected_wins_round_robin: float
    price_of_fairness: float | None
    model_version: str
    rep_signal_used: bool


@task(cache_policy=NO_CACHE)
def load_state(path: Path, mapping: str | None, run_date: pd.Timestamp) -> CrmData:
    """Load and validate the data folder and return what was known at the start of the run date."""
    data = load_data_folder(path, mapping).data
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

    quiet_mlflow()
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
    return Champion(model, str(version.version), signal.has_signal, signal.summary())


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


def candidate_pairs(pool: LeadPool, reps_today: pd.DataFrame) -> pd.DataFrame:
    """Every placed lead x every rep who works today, minus the rep a reclaimed lead came from."""
    working = reps_today.loc[
        reps_today["available"] & (reps_today["capacity"] > 0), "rep_id"
    ].to_numpy()
    leads = pool.leads
    pairs = pd.DataFrame(
        {
            "lead_id": np.repeat(leads["lead_id"].to_numpy(dtype=object), len(working)),
            "rep_id": np.tile(working.astype(object), len(leads)),
        }
    )
    previous = leads.set_index("lead_id")["previous_rep_id"].astype(object)
    dropped = (pairs["rep_id"] == pairs["lead_id"].map(previous)).fillna(False).to_numpy(bool)
    return pairs.loc[~dropped].reset_index(drop=True)


def window_history(out: Path, day: pd.Timestamp, days: int, objective: str) -> pd.DataFrame | None:
    """What each rep received on the previous ``days`` days, from earlier runs' outputs in ``out``.

    Returns rep_id, value, top_tier, capacity (window totals), or None when no earlier run exists.
    """
    rows = []
    english = {v: k for k, v in ZH_HEADERS.items()}
    for back in range(1, days + 1):
        folder = out / f"{day - pd.Timedelta(days=back):%Y-%m-%d}"
        if not (folder / "assignments.csv").is_file():
            continue
        asg = pd.read_csv(folder / "assignments.csv", encoding="utf-8-sig").rename(columns=english)
        reps = pd.read_csv(folder / "rep_summary.csv", encoding="utf-8-sig").rename(columns=english)
        placed = asg.loc[asg["rep_id"].notna()]
        worth = placed["p_baseline"] * (
            placed["expected_value"].fillna(0) if objective == "expected_value" else 1.0
        )
        rows.append(
            pd.DataFrame(
                {
                    "rep_id": placed["rep_id"].astype(str),
                    "value": worth,
                    "top_tier": (placed["tier"] == "A").astype(float),
                    "capacity": 0.0,
                }
            )
        )
        rows.append(
            pd.DataFrame(
                {
                    "rep_id": reps["rep_id"].astype(str),
                    "value": 0.0,
                    "top_tier": 0.0,
                    "capacity": reps["capacity"],
                }
            )
        )
    if not rows:
        return None
    return pd.concat(rows).groupby("rep_id", as_index=False).sum()


def account_owners(data: CrmData) -> pd.Series:
    """account_id -> the rep holding that account's most recent open lead."""
    if "account_id" not in data.leads:
        return pd.Series(dtype=object)
    open_rows = data.assignments.loc[
        data.assignments["status"] == "open", ["lead_id", "rep_id", "assigned_at"]
    ]
    owned = open_rows.merge(data.leads[["lead_id", "account_id"]], on="lead_id").dropna(
        subset=["account_id"]
    )
    owned = owned.sort_values("assigned_at", kind="stable").drop_duplicates(
        "account_id", keep="last"
    )
    return owned.set_index("account_id")["rep_id"]


def manager_tables(
    match, reps_today: pd.DataFrame, run_date: str, lang: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``assignments.csv`` and ``rep_summary.csv`` as managers read them (sorted, localised)."""
    names = reps_today.set_index("rep_id")["name"]
    asg = match.assignments.assign(run_date=run_date, rep_name=lambda f: f["rep_id"].map(names))
    tier_order = asg["tier"].map({"A": 0, "B": 1, "C": 2})
    asg = asg.assign(_held=asg["rep_id"].isna(), _tier=tier_order)
    asg = asg.sort_values(["_held", "rep_id", "_tier", "lead_id"], kind="stable")
    reasons_zh = asg["reason_zh"]
    asg = asg[ASSIGNMENT_COLUMNS].reset_index(drop=True)
    summary = reps_today[["rep_id", "name", "team", "available", "capacity", "open_load"]].merge(
        match.reps.drop(columns="capacity"), on="rep_id", how="left"
    )
    counts = ["assigned", "tier_A", "tier_B", "tier_C"]
    summary[counts] = summary[counts].fillna(0).astype(int)
    summary = summary.fillna(
        {"expected_wins": 0.0, "expected_value": 0.0, "value_share": 0.0, "fair_share": 0.0}
    )
    summary = (
        summary.assign(
            rep_name=summary["name"],
            capacity_used=np.where(
                summary["capacity"] > 0,
                summary["assigned"] / summary["capacity"].clip(lower=1),
                0.0,
            ),
            share_vs_fair=summary["value_share"] - summary["fair_share"],
            open_load_after=summary["open_load"] + summary["assigned"],
        )[REP_SUMMARY_COLUMNS]
        .sort_values("rep_id", kind="stable")
        .reset_index(drop=True)
    )
    return localise(asg, lang, reasons_zh=reasons_zh), localise(summary, lang)


def tier_by_tenure(
    assignments: pd.DataFrame, reps_today: pd.DataFrame, ramp_days: int
) -> pd.DataFrame:
    """Top-tier leads placed today per tenure group (ramp-up, 1 year, longer)."""
    tenure = reps_today.set_index("rep_id")["tenure_days"]
    bands = pd.cut(
        tenure,
        [-1, ramp_days, 365, np.inf],
        labels=[f"< {ramp_days} days", "to 1 year", "over 1 year"],
    )
    top = assignments.loc[(assignments["tier"] == "A") & assignments["rep_id"].notna(), "rep_id"]
    counts = top.map(bands).value_counts().reindex(bands.cat.categories, fill_value=0)
    total = max(int(counts.sum()), 1)
    return pd.DataFrame(
        {
            "group": counts.index.astype(str),
            "top_tier_leads": counts.to_numpy(),
            "share": counts.to_numpy() / total,
        }
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
    """Recommend the run date's assignments from the data folder ``data``."""
    config = config or LeadmatchConfig()
    day = pd.Timestamp(run_date).normalize() if run_date else pd.Timestamp.now().normalize()
    out = Path(out) if out else config.paths.recommendations
    state = load_state(Path(data), mapping, day)
    champion = load_champion(config)
    pool = leads_to_place(
        state,
        day,
        sla_days=config.recommend.sla_days,
        max_age_days=config.recommend.max_lead_age_days,
    )
    reps_today = rep_day(state, day)
    match, round_robin, no_fairness, p_scored = match_leads(
        state, champion, pool, reps_today, day, out, config
    )
    folder = write_outputs(
        match, round_robin, no_fairness, pool, reps_today, champion, day, out, config, lang
    )
    return log_recommendation(
        folder, match, round_robin, no_fairness, pool, champion, config, day, p_scored
    )


@task(cache_policy=NO_CACHE)
def match_leads(
    state, champion: Champion, pool: LeadPool, reps_today, day, out: Path, config: LeadmatchConfig
):
    """Score the candidate pairs and match them with leadmatch, round-robin and no fairness."""
    candidates = candidate_pairs(pool, reps_today)
    get_run_logger().info(
        "placing %s leads (%s reclaimed) over %s candidate pairs",
        len(pool.leads),
        pool.n_reclaimed,
        len(candidates),
    )
    p_win = score_pairs(
        champion,
        state,
        pool.leads,
        candidates,
        as_of=day,
        chunk_rows=config.recommend.score_chunk_rows,
    )
    candidates = candidates.assign(p_win=p_win)
    history = window_history(
        out, day, config.recommend.fairness_window_days, config.matching.objective
    )
    common = dict(
        history=history, account_owners=account_owners(state), rep_signal=champion.rep_signal_used
    )
    leads = pool.leads
    match = match_day(candidates, leads, reps_today, config.matching, policy="leadmatch", **common)
    round_robin = match_day(
        candidates, leads, reps_today, config.matching, policy="round_robin", **common
    )
    no_fairness = match_day(
        candidates, leads, reps_today, config.matching, policy="no_fairness", **common
    )
    return match, round_robin, no_fairness, len(candidates)


def _expected_wins(match) -> float:
    return float(match.assignments["p_win"].sum())


@task(cache_policy=NO_CACHE)
def write_outputs(
    match, round_robin, no_fairness, pool, reps_today, champion, day, out: Path, config, lang
) -> Path:
    """Write assignments.csv, rep_summary.csv and report.html atomically into ``out/<day>/``."""
    run_date = f"{day:%Y-%m-%d}"
    assignments, summary = manager_tables(match, reps_today, run_date, lang)
    english_summary = manager_tables(match, reps_today, run_date, "en")[1]
    report = RunReport(
        run_date=run_date,
        placed=int((match.assignments["action"] != "hold").sum()),
        held=int((match.assignments["action"] == "hold").sum()),
        reclaimed=pool.n_reclaimed,
        too_old=pool.too_old,
        expected_wins=_expected_wins(match),
        expected_wins_round_robin=_expected_wins(round_robin),
        price_of_fairness=_expected_wins(no_fairness) - _expected_wins(match),
        rep_signal=champion.rep_signal,
        rep_signal_used=champion.rep_signal_used,
        model_version=champion.version,
        rep_summary=english_summary,
        tier_by_group=tier_by_tenure(
            match.assignments, reps_today, config.matching.fairness.new_rep_quota.ramp_days
        ),
        band=config.matching.fairness.value_share.band,
        violations=match.diagnostics["violations"],
        solver=_solver_line(match.diagnostics),
    )
    target = out / run_date
    with atomic_directory(target) as tmp:
        write_csv(assignments, tmp / "assignments.csv")
        write_csv(summary, tmp / "rep_summary.csv")
        (tmp / "report.html").write_text(render_report(report), encoding="utf-8")
    return target


def _solver_line(diagnostics: dict) -> str:
    if diagnostics.get("status") in (None, "empty"):
        return "Nothing to optimise today."
    return (
        f"Optimiser: {diagnostics['status']}, gap {diagnostics.get('gap', 0):.2e}, "
        f"{diagnostics.get('solve_seconds', 0):.2f} s."
    )


@task(cache_policy=NO_CACHE)
def log_recommendation(
    folder: Path, match, round_robin, no_fairness, pool, champion, config, day, n_pairs
) -> RecommendSummary:
    """Log the run to MLflow (experiment leadmatch-recommend) and summarise it."""
    import mlflow

    from matching.assign import fairness_metrics

    wins, rr, nf = _expected_wins(match), _expected_wins(round_robin), _expected_wins(no_fairness)
    placed = int((match.assignments["action"] != "hold").sum())
    held = len(match.assignments) - placed
    use_experiment(EXPERIMENT, config.tracking)
    with mlflow.start_run(run_name=f"{day:%Y-%m-%d}"):
        mlflow.set_tags(
            {
                "run_date": f"{day:%Y-%m-%d}",
                "model_version": champion.version,
                "config_hash": config.digest(),
            }
        )
        metrics = {
            "leads_placed": placed,
            "leads_held": held,
            "leads_reclaimed": pool.n_reclaimed,
            "leads_too_old": pool.too_old,
            "candidate_pairs": n_pairs,
            "expected_wins": wins,
            "expected_wins_round_robin": rr,
            "lift_vs_round_robin": wins - rr,
            "price_of_fairness": nf - wins,
            "soft_violations": match.diagnostics["soft_violations"],
            "hard_violations": match.diagnostics["hard_violations"],
            "rep_signal_used": float(champion.rep_signal_used),
            **{
                k: v
                for k, v in fairness_metrics(
                    match.reps, config.matching.fairness.value_share.band
                ).items()
            },
            **{
                f"solver_{k}": float(v)
                for k, v in match.diagnostics.items()
                if k in ("objective", "bound", "gap", "solve_seconds", "n_fractional")
            },
        }
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(folder))
    return RecommendSummary(
        folder=folder,
        run_date=f"{day:%Y-%m-%d}",
        placed=placed,
        held=held,
        reclaimed=pool.n_reclaimed,
        too_old=pool.too_old,
        expected_wins=wins,
        expected_wins_round_robin=rr,
        price_of_fairness=nf - wins,
        model_version=champion.version,
        rep_signal_used=champion.rep_signal_used,
    )
