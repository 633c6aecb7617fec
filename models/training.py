"""Train the pair model and its baselines on one time split, evaluate them, test the rep signal.

The train flow calls :func:`train_and_evaluate` and logs what it returns; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.pairs import TARGET
from features.schemas import Leads, Reps
from models.baselines import LogisticPairModel, lead_only_model
from models.config import ModelConfig
from models.evaluation import calibration_by_group, calibration_plot, evaluate, tenure_band
from models.pair_model import PairModel
from models.rep_signal import RepSignal, rep_signal_test
from models.splits import time_split

PAIR, LEAD_ONLY, LOGISTIC = "pair_model", "lead_only", "logistic"
# Ties in held-out log loss go to the earlier model: the pair model, then the simpler logistic.
MODELS = (PAIR, LOGISTIC, LEAD_ONLY)


@dataclass(frozen=True)
class TrainingResult:
    """What one training run produced.

    ``model`` is the LightGBM pair model (its ``rep_signal_`` holds the verdict); ``baselines``
    the lead-only and logistic models fitted on the same training slice; ``served`` names the
    one of the three with the lowest held-out log loss, the one to register and serve
    (:attr:`served_model`); ``metrics`` model name -> :func:`models.evaluation.evaluate` on the
    held-out slice; ``calibration_by_tenure`` the served model's calibration per rep tenure
    band; ``test`` the held-out pairs' keys, ``won``, ``rep_tenure_days`` and one ``p_<model>``
    column per model; ``n_train`` the pairs the models were fitted on, all assigned before
    ``test_start`` (the first ``at`` of the held-out slice).
    """

    model: PairModel
    baselines: dict[str, object]
    metrics: dict[str, dict[str, float]]
    calibration_by_tenure: pd.DataFrame
    rep_signal: RepSignal
    test: pd.DataFrame
    n_train: int
    served: str
    test_start: pd.Timestamp

    @property
    def served_model(self):
        """The fitted model named :attr:`served` (it carries ``rep_signal_`` too)."""
        return self.model if self.served == PAIR else self.baselines[self.served]

    def served_reason(self) -> str:
        """Why the served model was chosen, in one sentence."""
        losses = {name: self.metrics[name]["log_loss"] for name in MODELS if name in self.metrics}
        others = ", ".join(f"{n} {v:.4f}" for n, v in losses.items() if n != self.served)
        text = (
            f"{self.served} has the lowest held-out log loss ({losses[self.served]:.4f}; "
            f"{others}) and is the model served"
        )
        if self.served == LEAD_ONLY:
            text += ": it has no rep information, so matching only balances value and load"
        return text

    def flat_metrics(self) -> dict[str, float]:
        """``<model>.<metric>`` -> value (``served.<metric>`` too), plus the rep-signal figures,
        for a tracking server."""
        out = {
            f"{name}.{key}": value for name, m in self.metrics.items() for key, value in m.items()
        }
        out.update({f"served.{key}": value for key, value in self.metrics[self.served].items()})
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
    ``test_fraction`` of mature pairs; the one with the lowest held-out log loss is served.
    Raises ``ValueError`` when the data cannot support a model.
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
        test[Leads.lead_id],
        n_bootstrap=config.n_bootstrap,
        level=config.signal_level,
        seed=config.seed,
    )
    served = min(MODELS, key=lambda name: metrics[name]["log_loss"])
    for fitted in (models[PAIR], models[served]):
        fitted.rep_signal_ = signal
    bands = tenure_band(test["rep_tenure_days"], config.tenure_bands_days)
    held_out = test[[Leads.lead_id, Reps.rep_id, "at", TARGET, "rep_tenure_days"]].assign(
        **{f"p_{name}": p for name, p in predictions.items()}
    )
    return TrainingResult(
        model=models[PAIR],
        baselines={LEAD_ONLY: models[LEAD_ONLY], LOGISTIC: models[LOGISTIC]},
        metrics=metrics,
        calibration_by_tenure=calibration_by_group(
            y, predictions[served], np.asarray(bands), n_bins=config.ece_bins
        ),
        rep_signal=signal,
        test=held_out.reset_index(drop=True),
        n_train=len(train),
        served=served,
        test_start=pd.Timestamp(test["at"].min()),
    )
