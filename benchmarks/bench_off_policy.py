"""Estimator check: off-policy estimates against the true value of the same policy, many worlds.

On each simulated world (scenario ``small`` by default), the mature historical decisions are
the log, and fixed target policies are evaluated with every estimator of
``evaluation.off_policy``. The truth is the target's mean true win probability over the same leads
(``world.true_probability`` of each candidate at its decision time and history load), which is
what the estimators aim at. Over the seeds: bias (mean error, with its standard error), RMSE,
coverage of the 95% intervals, mean interval width and how often the estimate was identified.

Targets: the logging policy itself (sanity: rebuilt exactly from the simulator's routing rule),
epsilon-greedy on the knowable probability (overlap by construction), greedy on the knowable
probability, and greedy on the fitted pair model (what leadmatch does: the model chooses and the
model judges). Propensities: as logged (exact in the simulator) or estimated by the choice model
with the logged ones dropped. Models q for DM and DR: the knowable probability (the best any
model of the visible columns can do) or a PairModel, cross-fitted by account so a lead's own
outcome never trains the model that judges it.

    uv run --locked python benchmarks/bench_off_policy.py --seeds 30
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd

from evaluation.config import OffPolicyConfig
from evaluation.off_policy import (
    ESTIMATORS,
    choice_features,
    cross_fit_folds,
    estimate_propensities,
    evaluate_policy,
    historical_candidates,
    logged_decisions,
)
from features.config import FeatureConfig
from features.pairs import build_pairs_at, build_training_pairs
from features.reps import index_history
from models.config import LightGBMParams, ModelConfig
from models.pair_model import PairModel
from simulation import CrmWorld, simulate

# The sanity target rebuilds the simulator's routing rule and checks that it reproduces every
# logged propensity.
from simulation.routing import routing_scores, visible_value

EPSILON = 0.3
TARGETS = ("logging policy", f"{EPSILON:g}-greedy knowable", "greedy knowable", "greedy model")
Q_MODELS = ("knowable", "pair model")
PROPENSITIES = ("logged", "estimated")


def logging_policy(world: CrmWorld, candidates: pd.DataFrame) -> np.ndarray:
    """The historical routing's probability of every candidate (softmax over the candidates)."""
    data, scenario = world.data, world.scenario
    leads = data.leads.set_index("lead_id").loc[candidates["lead_id"]]
    reps = data.reps.set_index("rep_id")
    rep_pos = reps.index.get_indexer(candidates["rep_id"])
    value = visible_value(
        SimpleNamespace(
            expected_value=leads["expected_value"].to_numpy(), score=leads["x_score"].to_numpy()
        )
    )
    skill = world.rep_truth()["skill"].to_numpy()[rep_pos]
    skill_z = skill / scenario.skill_sd if scenario.skill_sd > 0 else np.zeros(len(skill))
    day = candidates["at"].dt.normalize()
    tenure = np.maximum((day - reps["hire_date"].to_numpy()[rep_pos]).dt.days.to_numpy(), 0)
    region_match = leads["region"].to_numpy() == reps["region"].to_numpy()[rep_pos]
    score = routing_scores(scenario, value, tenure / 365.25, skill_z, region_match)
    weight = np.exp(score - candidates.assign(s=score).groupby("lead_id")["s"].transform("max"))
    return (weight / weight.groupby(candidates["lead_id"]).transform("sum")).to_numpy()


def model_predictions(
    data, decisions: pd.DataFrame, candidates: pd.DataFrame, folds: int, seed: int
) -> np.ndarray:
    """Cross-fitted PairModel P(win) of every candidate pair: the logged leads' accounts are
    split into folds, and each fold is scored by a model trained without those accounts' leads."""
    config = FeatureConfig()
    pairs = build_training_pairs(data, config=config)
    history = index_history(data.assignments, data.leads, data.reps, config)
    features = build_pairs_at(
        data,
        candidates[["lead_id", "rep_id", "at"]].reset_index(drop=True),
        config=config,
        history=history,
    )
    fold_of = cross_fit_folds(decisions, folds, seed)
    pair_fold = pairs["lead_id"].map(fold_of).to_numpy()
    candidate_fold = candidates["lead_id"].map(fold_of).to_numpy()
    q = np.empty(len(candidates))
    for k in range(folds):
        # One thread: the machine is shared and LightGBM's threads thrash under contention.
        config = ModelConfig(seed=seed, lightgbm=LightGBMParams(n_jobs=1))
        model = PairModel(config).fit(pairs.loc[pair_fold != k])
        scored = candidate_fold == k
        q[scored] = model.predict_proba(features.loc[scored])[:, 1]
    return q


def greedy(candidates: pd.DataFrame, score: np.ndarray, epsilon: float = 0.0) -> np.ndarray:
    """Probabilities of a policy choosing each lead's top-scoring candidate (first on ties), and
    with probability epsilon a uniformly random candidate instead."""
    frame = candidates[["lead_id"]].assign(score=score, row=np.arange(len(candidates)))
    top = frame.sort_values(["lead_id", "score", "row"], ascending=[True, False, True])
    best = np.zeros(len(candidates))
    best[top.drop_duplicates("lead_id")["row"].to_numpy()] = 1.0
    size = frame.groupby("lead_id")["row"].transform("size").to_numpy()
    return (1 - epsilon) * best + epsilon / size


def one_world(scenario: str, seed: int, config: OffPolicyConfig, folds: int) -> list[dict]:
    """Every (target, estimator, propensities, model) estimate on one world, with the truth."""
    world = simulate(scenario, seed=seed)
    data = world.data
    decisions = logged_decisions(data)
    candidates = choice_features(data, historical_candidates(data, decisions))
    candidates = estimate_propensities(decisions, candidates, config=config)
    logged = decisions.loc[decisions["mature"]].reset_index(drop=True)
    candidates = candidates.loc[candidates["lead_id"].isin(logged["lead_id"])]
    candidates = candidates.reset_index(drop=True)
    truth = world.true_probability(candidates)
    mu = logging_policy(world, candidates)
    logged_mu = logged.merge(candidates.assign(mu=mu), on=["lead_id", "rep_id"])["mu"]
    # The rebuilt rule over the rebuilt candidates reproduces the logged propensities, except
    # where a rep who left stayed eligible after its last assignment (no leave date in the
    # tables). A target policy only needs its support inside the history's, which holds anyway.
    missed = np.mean(np.abs(logged_mu.to_numpy() - logged["propensity"].to_numpy()) > 1e-9)
    if missed > 0.02:
        raise RuntimeError(f"the rebuilt routing rule misses {missed:.1%} of logged propensities")
    q = {"knowable": world.knowable_probability(candidates)}
    q["pair model"] = model_predictions(data, decisions, candidates, folds, seed)
    targets = {
        "logging policy": mu,
        TARGETS[1]: greedy(candidates, q["knowable"], EPSILON),
        "greedy knowable": greedy(candidates, q["knowable"]),
        "greedy model": greedy(candidates, q["pair model"]),
    }
    logs = {"logged": logged, "estimated": logged.assign(propensity=np.nan)}
    rows = []
    for target_name, prob in targets.items():
        target = candidates[["lead_id", "rep_id"]].assign(prob=prob)
        true_value = float(pd.Series(prob * truth).groupby(candidates["lead_id"]).sum().mean())
        for propensities, log in logs.items():
            for model_name, q_values in q.items():
                result = evaluate_policy(log, candidates.assign(q=q_values), target, config=config)
                overlap = result.overlap
                for row in result.raw.itertuples(index=False):
                    rows.append(
                        {
                            "seed": seed,
                            "target": target_name,
                            "estimator": row.estimator,
                            "propensities": propensities,
                            "model": model_name,
                            "truth": true_value,
                            "value": row.value,
                            "ci_low": row.ci_low,
                            "ci_high": row.ci_high,
                            "identified": row.identified,
                            "ess": overlap.ess,
                            "agreement": overlap.agreement,
                            "unsupported": overlap.unsupported_share,
                            "n": overlap.n_decisions,
                        }
                    )
    return rows


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE, coverage and identification per (target, estimator, propensities, model),
    keeping only the inputs an estimator depends on."""
    uses = {
        "logged": (),
        "dm": ("model",),
        "ips": ("propensities",),
        "snips": ("propensities",),
        "dr": ("propensities", "model"),
        "sndr": ("propensities", "model"),
    }
    keep = []
    for name, inputs in uses.items():
        rows = runs["estimator"] == name
        if "model" not in inputs:
            rows &= runs["model"] == Q_MODELS[0]
        if "propensities" not in inputs:
            rows &= runs["propensities"] == PROPENSITIES[0]
        if name == "logged":
            rows &= runs["target"] == "logging policy"
        keep.append(
            runs.loc[rows].assign(**{c: "-" for c in ("model", "propensities") if c not in inputs})
        )
    runs = pd.concat(keep)
    runs = runs.assign(
        error=runs["value"] - runs["truth"],
        covered=(runs["ci_low"] <= runs["truth"]) & (runs["truth"] <= runs["ci_high"]),
        width=runs["ci_high"] - runs["ci_low"],
    )
    # What a user sees: the runs where the estimate was identified (and so printed).
    runs = runs.assign(
        covered_shown=runs["covered"].where(runs["identified"]),
        error_shown=runs["error"].where(runs["identified"]),
    )
    keys = ["target", "estimator", "propensities", "model"]
    table = runs.groupby(keys, sort=False).agg(
        seeds=("seed", "nunique"),
        truth=("truth", "mean"),
        bias=("error", "mean"),
        sd=("error", "std"),
        rmse=("error", lambda e: float(np.sqrt(np.mean(e**2)))),
        coverage=("covered", "mean"),
        width=("width", "mean"),
        identified=("identified", "mean"),
        bias_shown=("error_shown", "mean"),
        coverage_shown=("covered_shown", "mean"),
    )
    table["bias_se"] = table["sd"] / np.sqrt(table["seeds"])
    order = {name: i for i, name in enumerate(ESTIMATORS)}
    table = table.reset_index()
    table["_t"] = table["target"].map({t: i for i, t in enumerate(TARGETS)})
    table["_e"] = table["estimator"].map(order)
    return table.sort_values(["_t", "_e", "propensities", "model"]).drop(columns=["_t", "_e"])


def print_table(table: pd.DataFrame, runs: pd.DataFrame) -> None:
    overlap = (
        runs.drop_duplicates(["seed", "target", "propensities"])
        .groupby(["target", "propensities"], sort=False)[["n", "ess", "agreement", "unsupported"]]
        .mean()
    )
    print(
        "\nOverlap (means over seeds; unsupported: target share on pairs with estimated "
        "propensity < 1%)"
    )
    print(overlap.to_string(float_format=lambda v: f"{v:.3g}"))
    print(
        "\nAll seeds: bias (± its standard error), RMSE, coverage and width of the intervals. "
        "Identified: share of seeds where the estimate passed the overlap rules; the last two "
        "columns use only those seeds (what a user would be shown)."
    )
    print(
        "\n| target | estimator | propensities | model | bias (± se) | RMSE | coverage | "
        "CI width | identified | bias if identified | coverage if identified |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table.itertuples(index=False):
        shown = "-" if np.isnan(r.bias_shown) else f"{r.bias_shown:+.4f}"
        covered = "-" if np.isnan(r.coverage_shown) else f"{r.coverage_shown:.0%}"
        print(
            f"| {r.target} | {r.estimator} | {r.propensities} | {r.model} | "
            f"{r.bias:+.4f} (± {r.bias_se:.4f}) | {r.rmse:.4f} | {r.coverage:.0%} | "
            f"{r.width:.3f} | {r.identified:.0%} | {shown} | {covered} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="small")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=500)
    parser.add_argument("--folds", type=int, default=2, help="cross-fitting folds of the model")
    parser.add_argument("--runs-csv", help="also write every seed's estimates to this CSV file")
    args = parser.parse_args()
    config = OffPolicyConfig(n_bootstrap=args.bootstrap)
    started = time.perf_counter()
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rows += one_world(args.scenario, seed, config, args.folds)
        print(f"seed {seed} done ({time.perf_counter() - started:.0f} s)", flush=True)
    runs = pd.DataFrame(rows)
    if args.runs_csv:
        runs.to_csv(args.runs_csv, index=False)
    print(
        f"\nScenario {args.scenario!r}, {args.seeds} seeds, {args.bootstrap} bootstrap resamples, "
        f"{config.level:.0%} intervals; truth = mean true P(win) of the target on the logged "
        f"leads (averages: "
        + ", ".join(
            f"{t} {v:.3f}" for t, v in runs.groupby("target", sort=False)["truth"].mean().items()
        )
        + ")"
    )
    print_table(summarise(runs), runs)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
