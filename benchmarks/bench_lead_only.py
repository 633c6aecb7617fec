"""The lead-only model of `leadmatch score` beside a plain LightGBM, on held-out time slices.

Each data set is read as a history without reps (its owners dropped, as a team that has only
leads and outcomes would export it); both models are fitted on the same earlier rows and judged
on the same most recent slice (:func:`models.lead_scores.train_lead_scores`): the calibrated
lead-only model that `leadmatch train` registers, and ``LGBMClassifier()`` with its defaults on
the same feature matrix. The last column says whether the lead-only model is at least as good
on both AUC and log loss.

    uv run --locked python benchmarks/bench_lead_only.py
    uv run --locked python benchmarks/bench_lead_only.py --scenarios small default --seed 1

The real Maven export (../shared/data) is used when present.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from features.lead_scoring import build_lead_training_rows, no_reps
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


def judge(name: str, data: CrmData) -> list[dict]:
    """Both models' held-out figures on ``data`` read without reps."""
    start = time.perf_counter()
    rows = build_lead_training_rows(without_reps(data))
    result = train_lead_scores(rows)
    seconds = time.perf_counter() - start
    ours, plain = result.metrics[LEAD_ONLY], result.metrics[PLAIN]
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
