"""Train the pair model and its baselines on one time split, evaluate them, test the rep signal.

The train flow calls :func:`train_and_evaluate` and logs what it returns; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.pairs import TARGET
from models.baselines import LogisticPairModel, lead_only_model
from models.config import ModelConfig
from models.evaluation import calibration_by_group, calibration_plot, evaluate, tenure_band
from models.pair_model import PairModel
from models.rep_signal import RepSignal, rep_signal_test
from models.splits import time_split

PAIR, LEAD_ONLY, LOGISTIC = "pair_model", "lead_only", "logistic"


@dataclass(frozen=True)
class TrainingResult:
    """What one training run produced.

    ``model`` is the pair model to serve (its ``rep_signal_`` holds the verdict);
    ``baselines`` the lead-only and logistic models fitted on the same training slice;
    ``metrics`` model name -> :func:`models.evaluation.evaluate` on the held-out slice;
    ``calibration_by_tenure`` the pair model's calibration per rep tenure band; ``test`` the
    held-out pairs' keys, ``won``, ``rep_tenure_days`` and one ``p_<model>`` column per model.
    """

    model: PairModel
    baselines: dict[str, object]
    metrics: dict[str, dict[str, float]]
    calibration_by_tenure: pd.DataFrame
    rep_signal: RepSignal
    test: pd.DataFrame
    n_train: int

    def flat_metrics(self) -> dict[str, float]:
        """``<model>.<metric>`` -> value, plus the rep-signal figures, for a tracking server."""
        out = {
            f"{name}.{key}": value for name, m in self.metrics.items() for key, value in m.items()
        }
        signal = self.rep_signal.to_dict()
        out.update(
            {f"rep_signal.{k}": float(v) for k, v in signal.items() if isinstance(v, int | float)}
        )
        out["n_train"] = float(self.n_train)
        return out

    def calibration_figure(self, n_bins: int = 10) -> Figure:
        """Reliability diagram of every model on the held-out slice."""
        predictions = {name: self.test[f"p_{name}"].to_numpy() for name in self.metrics}
        return calibration_plot(self.test[TARGET].to_numpy(), predictions, n_bins=n_bins)


def train_and_evaluate(pairs: pd.DataFrame, config: ModelConfig | None = None) -> TrainingResult:
    """Split ``pairs`` (from ``build_training_pairs``) by time, fit the pair model, the lead-only
    and the logistic baselines on the earlier part, and judge all three on the most recent
    ``test_fraction`` of mature pairs. Raises ``ValueError`` when the data cannot support a model.
    """
    config = config or ModelConfig()
    train, test = time_split(pairs, config.test_fraction)
    models = {
        PAIR: PairModel(config=config).fit(train),
        LEAD_ONLY: lead_only_model(config).fit(train),
        LOGISTIC: LogisticPairModel(config=config).fit(train),
    }
    y = test[TARGET].astype(int).to_numpy()
    predictions = {name: m.predict_proba(test)[:, 1] for name, m in models.items()}
    metrics = {name: evaluate(y, p, n_bins=config.ece_bins) for name, p in predictions.items()}
    signal = rep_signal_test(
        y,
        predictions[PAIR],
        predictions[LEAD_ONLY],
        test["lead_id"],
        n_bootstrap=config.n_bootstrap,
        level=config.signal_level,
        seed=config.seed,
    )
    model = models[PAIR]
    model.rep_signal_ = signal
    bands = tenure_band(test["rep_tenure_days"], config.tenure_bands_days)
    held_out = test[["lead_id", "rep_id", "at", TARGET, "rep_tenure_days"]].assign(
        **{f"p_{name}": p for name, p in predictions.items()}
    )
    return TrainingResult(
        model=model,
        baselines={LEAD_ONLY: models[LEAD_ONLY], LOGISTIC: models[LOGISTIC]},
        metrics=metrics,
        calibration_by_tenure=calibration_by_group(
            y, predictions[PAIR], np.asarray(bands), n_bins=config.ece_bins
        ),
        rep_signal=signal,
        test=held_out.reset_index(drop=True),
        n_train=len(train),
    )
