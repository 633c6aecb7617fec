"""Benchmark the model stage: features and training on ~1M historical assignments, scoring
throughput for a night of leads x reps, and (with --quality) the model's acceptance figures.

    uv run --locked python benchmarks/bench_training.py                 # speed and memory
    uv run --locked python benchmarks/bench_training.py --quality       # + log loss, ECE, verdicts
    uv run --locked python benchmarks/bench_training.py --assignments 200000 --leads 2000

Budget (2 cores): features + training on 1M assignments within 5 minutes and 8 GB.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from features.config import FeatureConfig
from features.pairs import TARGET, build_scoring_pairs, build_training_pairs
from features.reps import index_history
from models.baselines import LogisticPairModel, lead_only_model
from models.config import ModelConfig
from models.evaluation import evaluate
from models.pair_model import PairModel
from models.rep_signal import rep_signal_test
from models.splits import time_split
from models.training import PAIR, train_and_evaluate
from simulation import SCENARIOS, simulate

BUDGET_SECONDS = 300.0
BUDGET_GB = 8.0
MAVEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "maven-crm-sales-opportunities"


class PeakMemory:
    """Peak resident memory of this process while the block runs (sampled every 20 ms)."""

    def __enter__(self) -> PeakMemory:
        self._process = psutil.Process()
        self.peak = self._process.memory_info().rss
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self._running = False
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def measure(rows: list[dict], stage: str, run: Callable[[], Any], note: str = "") -> Any:
    """Run one stage, append its wall time and peak memory to ``rows``, return its result."""
    start = time.perf_counter()
    with PeakMemory() as memory:
        result = run()
    rows.append(
        {
            "stage": stage,
            "seconds": time.perf_counter() - start,
            "peak_gb": memory.peak / 1e9,
            "note": note(result) if callable(note) else note,
        }
    )
    print(f"  {stage}: {rows[-1]['seconds']:.1f} s", flush=True)
    return result


def bench_speed(n_assignments: int, n_leads: int, n_reps: int, chunk: int) -> pd.DataFrame:
    base = SCENARIOS["default"]
    # Keep the default's leads per rep; the history has one assignment per routed lead.
    per_rep = base.leads_per_day / base.n_reps
    reps = max(n_reps + 30, round(n_assignments / (base.n_days * per_rep)))
    scenario = dataclasses.replace(
        base, name="bench", n_reps=reps, leads_per_day=n_assignments / base.n_days
    )
    rows: list[dict] = []
    world = measure(
        rows, "simulate (not in budget)", lambda: simulate(scenario, seed=0), lambda w: repr(w)
    )
    features, model_config = FeatureConfig(), ModelConfig()
    pairs = measure(
        rows,
        "build training pairs",
        lambda: build_training_pairs(world.data, as_of=world.as_of, config=features),
        lambda p: f"{len(p):,} pairs x {p.shape[1]} columns",
    )
    train, test = time_split(pairs, model_config.test_fraction)
    model = measure(
        rows,
        "fit pair model",
        lambda: PairModel(model_config).fit(train),
        lambda m: f"{len(train):,} pairs, {m.booster_.best_iteration_} trees",
    )
    lead_only = measure(
        rows, "fit lead-only model", lambda: lead_only_model(model_config).fit(train)
    )
    measure(rows, "fit logistic baseline", lambda: LogisticPairModel(model_config).fit(train))

    def judge() -> dict:
        p = model.predict_proba(test)[:, 1]
        y = test[TARGET].astype(int).to_numpy()
        metrics = evaluate(y, p)
        p_lead = lead_only.predict_proba(test)[:, 1]
        signal = rep_signal_test(
            y, p, p_lead, test["lead_id"], n_bootstrap=model_config.n_bootstrap
        )
        return {"log_loss": metrics["log_loss"], "signal": signal.verdict}

    measure(rows, "evaluate + rep-signal bootstrap", judge, f"{len(test):,} held-out pairs")
    budget = sum(r["seconds"] for r in rows[1:])
    rows.append(
        {
            "stage": "features + training total",
            "seconds": budget,
            "peak_gb": max(r["peak_gb"] for r in rows),
            "note": f"budget {BUDGET_SECONDS:.0f} s, {BUDGET_GB:.0f} GB: "
            + ("within" if budget <= BUDGET_SECONDS else "OVER"),
        }
    )

    day = world.as_of.normalize()
    new_leads = world.new_leads(day, n=n_leads, seed=1)
    reps_ids = world.data.reps.loc[world.data.reps["active"], "rep_id"].head(n_reps).to_numpy()
    history = measure(
        rows,
        "index history for scoring",
        lambda: index_history(world.data.assignments, world.data.leads, world.data.reps, features),
    )
    timing = {"features": 0.0, "predict": 0.0}

    def score() -> int:
        scored = 0
        for start in range(0, len(new_leads), chunk):
            leads = new_leads.iloc[start : start + chunk]
            candidates = pd.DataFrame(
                {
                    "lead_id": np.repeat(leads["lead_id"].to_numpy(), len(reps_ids)),
                    "rep_id": np.tile(reps_ids, len(leads)),
                }
            )
            t0 = time.perf_counter()
            chunk_pairs = build_scoring_pairs(
                world.data,
                leads,
                as_of=day,
                config=features,
                candidates=candidates,
                history=history,
            )
            t1 = time.perf_counter()
            model.predict_proba(chunk_pairs)
            timing["features"] += t1 - t0
            timing["predict"] += time.perf_counter() - t1
            scored += len(chunk_pairs)
        return scored

    n_pairs = measure(
        rows,
        f"score {len(new_leads):,} leads x {len(reps_ids)} reps",
        score,
        lambda n: f"{n:,} pairs in chunks of {chunk} leads",
    )
    seconds = rows[-1]["seconds"]
    rows[-1]["note"] += (
        f"; {n_pairs / seconds:,.0f} pairs/s (features {n_pairs / timing['features']:,.0f}/s, "
        f"predict {n_pairs / timing['predict']:,.0f}/s)"
    )
    return pd.DataFrame(rows)


def bench_quality(scenarios: list[str], config: ModelConfig) -> pd.DataFrame:
    """Acceptance figures: held-out log loss against the knowable and true probabilities, ECE,
    baselines and the rep-signal verdict, per simulated scenario (and the Maven sample)."""
    rows = []
    for name in scenarios:
        print(f"  quality on {name} ...", flush=True)
        world = simulate(name, seed=0)
        result = train_and_evaluate(build_training_pairs(world.data, as_of=world.as_of), config)
        keys = result.test[["lead_id", "rep_id", "at"]]
        y = result.test[TARGET].astype(int).to_numpy()
        knowable = evaluate(y, world.knowable_probability(keys))["log_loss"]
        true = evaluate(y, world.true_probability(keys))["log_loss"]
        rows.append(_quality_row(name, result, knowable, true))
    if MAVEN.is_dir():
        from features.adapters import adapt_maven
        from features.schemas import validate_crm
        from pipelines.io import read_raw_folder

        print("  quality on the Maven sample ...", flush=True)
        data = validate_crm(adapt_maven(read_raw_folder(MAVEN)).data)
        result = train_and_evaluate(build_training_pairs(data), config)
        rows.append(_quality_row("maven", result, np.nan, np.nan))
    return pd.DataFrame(rows)


def _quality_row(name: str, result, knowable: float, true: float) -> dict:
    pair = result.metrics[PAIR]
    signal = result.rep_signal
    return {
        "data": name,
        "test pairs": int(pair["n"]),
        "pair LL": pair["log_loss"],
        "knowable LL": knowable,
        "pair/knowable": pair["log_loss"] / knowable,
        "true LL": true,
        "pair ECE": pair["ece"],
        "pair AUC": pair["roc_auc"],
        "lead-only LL": result.metrics["lead_only"]["log_loss"],
        "logistic LL": result.metrics["logistic"]["log_loss"],
        "verdict": signal.verdict,
        "gain (nats)": signal.gain,
        "interval": f"[{signal.interval[0]:+.4f}, {signal.interval[1]:+.4f}]",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=1_000_000)
    parser.add_argument("--leads", type=int, default=10_000, help="new leads to score")
    parser.add_argument("--reps", type=int, default=200, help="candidate reps per lead")
    parser.add_argument("--chunk", type=int, default=1_000, help="leads per scoring chunk")
    parser.add_argument("--quality", action="store_true", help="also measure model quality")
    parser.add_argument("--skip-speed", action="store_true", help="only measure model quality")
    args = parser.parse_args(argv)
    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        if not args.skip_speed:
            print(f"speed and memory ({psutil.cpu_count()} cores):", flush=True)
            table = bench_speed(args.assignments, args.leads, args.reps, args.chunk)
            print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        if args.quality or args.skip_speed:
            print("model quality (held-out, most recent mature slice):", flush=True)
            table = bench_quality(["default", "null"], ModelConfig())
            print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
