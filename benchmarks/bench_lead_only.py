"""The lead-only model of `leadmatch score` beside a plain LightGBM, on held-out time slices.

Each data set is read as a history without reps (its owners dropped, as a team that has only
leads and outcomes would export it); both models are fitted on the same earlier rows and judged
on the same most recent slice (:func:`models.lead_scores.train_lead_scores`): the calibrated
lead-only model that `leadmatch train` registers, and ``LGBMClassifier()`` with its defaults on
the same feature matrix. "at least as good" says whether the lead-only model is at least as
good on both AUC and log loss; "AUC gap interval" is the 95% bootstrap interval (held-out leads
resampled, 500 times) of the lead-only AUC minus the plain one, so a gap inside noise shows.

    uv run --locked python benchmarks/bench_lead_only.py
    uv run --locked python benchmarks/bench_lead_only.py --scenarios small default --seed 1

The real Maven export (../shared/data) is used when present.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.lead_scoring import build_lead_training_rows, no_reps
from features.pairs import TARGET
from features.schemas import CrmData
from models.lead_scores import PLAIN, train_lead_scores
from models.training import LEAD_ONLY
from pipelines.io import load_data_folder
from simulation import simulate

MAVEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "maven-crm-sales-opportunities"


def without_reps(data: CrmData) -> CrmData:
    """``data`` as a history of leads and outcomes only: no reps, no owners, no contacts."""
    asg = data.assignments.assign(rep_id=pd.NA, first_contact_at=pd.NaT)
    return replace(data, reps=no_reps(), assignments=asg)


def auc_gap_interval(test: pd.DataFrame, n: int = 500, seed: int = 0) -> tuple[float, float]:
    """95% interval of AUC(lead-only) - AUC(plain) on ``test`` (held-out rows with ``won`` and
    both ``p_<model>`` columns), leads resampled whole."""
    rng = np.random.default_rng(seed)
    codes, _ = pd.factorize(test["lead_id"])
    members = pd.Series(np.arange(len(test))).groupby(codes).apply(np.asarray).to_list()
    y = test[TARGET].to_numpy(dtype=int)
    ours, plain = test[f"p_{LEAD_ONLY}"].to_numpy(), test[f"p_{PLAIN}"].to_numpy()
    gaps = []
    for _ in range(n):
        rows = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        if len(np.unique(y[rows])) < 2:
            continue
        gaps.append(roc_auc_score(y[rows], ours[rows]) - roc_auc_score(y[rows], plain[rows]))
    low, high = np.quantile(gaps, [0.025, 0.975])
    return float(low), float(high)


def judge(name: str, data: CrmData) -> list[dict]:
    """Both models' held-out figures on ``data`` read without reps."""
    start = time.perf_counter()
    rows = build_lead_training_rows(without_reps(data))
    result = train_lead_scores(rows)
    seconds = time.perf_counter() - start
    ours, plain = result.metrics[LEAD_ONLY], result.metrics[PLAIN]
    low, high = auc_gap_interval(result.test)
    verdict = (
        "yes"
        if ours["roc_auc"] >= plain["roc_auc"] and ours["log_loss"] <= plain["log_loss"]
        else "no"
    )
    out = []
    for model, m in ((LEAD_ONLY, ours), (PLAIN, plain)):
        out.append(
            {
                "data set": name,
                "train rows": result.n_train,
                "test rows": int(m["n"]),
                "test from": f"{result.test_start:%Y-%m-%d}",
                "model": model,
                "AUC": m["roc_auc"],
                "log loss": m["log_loss"],
                "ECE": m["ece"],
                "mean p": m["mean_predicted"],
                "win rate": m["base_rate"],
                "at least as good": verdict if model == LEAD_ONLY else "",
                "AUC gap interval": f"[{low:+.4f}, {high:+.4f}]" if model == LEAD_ONLY else "",
                "seconds": seconds if model == LEAD_ONLY else float("nan"),
            }
        )
    print(f"  {name}: {seconds:.1f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="*", default=["small", "default"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = []
    if MAVEN.is_dir():
        table += judge("maven (real export)", load_data_folder(MAVEN, "maven").data)
    else:
        print(f"  {MAVEN} not present: real export skipped")
    for scenario in args.scenarios:
        world = simulate(scenario, seed=args.seed)
        table += judge(f"simulated {scenario} (seed {args.seed})", world.data)
    frame = pd.DataFrame(table)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep=""))


if __name__ == "__main__":
    main()
