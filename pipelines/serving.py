"""The pair model as an MLflow pyfunc that scores raw lead and rep frames.

A generic MLflow consumer calls ``predict`` with one row per (lead, rep) pair: the lead's
canonical columns plus ``rep_id`` (and optionally ``at``, the scoring time). Rep and pair
features are computed from the CRM history snapshot stored with the model. The nightly flow
instead calls :meth:`PairModelPyfunc.score` with the *current* history, so features are always
as of the run date.
"""

from __future__ import annotations

from importlib import metadata

import mlflow.pyfunc
import numpy as np
import pandas as pd

from features.config import FeatureConfig
from features.pairs import build_scoring_pairs
from features.reps import OutcomeHistory, index_history
from features.schemas import CrmData
from models.pair_model import PairModel
from models.rep_signal import RepSignal

SERVING_REQUIREMENTS = (
    "lightgbm",
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "pandera",
    "pydantic",
)


class PairModelPyfunc(mlflow.pyfunc.PythonModel):
    """The fitted pair model with its feature config, rep-signal verdict and history snapshot."""

    def __init__(
        self,
        model: PairModel,
        features: FeatureConfig,
        rep_signal: RepSignal,
        history: CrmData,
        as_of: pd.Timestamp,
    ):
        self.model = model
        # Stored as plain values so a model pickled by an older leadmatch still loads: fields added
        # to FeatureConfig since then take their defaults.
        self.feature_settings = features.model_dump(mode="json")
        self.rep_signal = rep_signal
        self.history = history
        self.as_of = pd.Timestamp(as_of)

    @property
    def features(self) -> FeatureConfig:
        """The feature configuration the model was trained with."""
        return FeatureConfig.model_validate(self.feature_settings)

    def index(self, data: CrmData) -> OutcomeHistory:
        """The history index of ``data`` under this model's feature config (build once, score many)."""
        return index_history(data.assignments, data.leads, data.reps, self.features)

    def score(
        self,
        data: CrmData,
        leads: pd.DataFrame,
        candidates: pd.DataFrame,
        *,
        as_of: pd.Timestamp,
        history: OutcomeHistory | None = None,
    ) -> np.ndarray:
        """Calibrated P(win) for each row of ``candidates`` (lead_id, rep_id), as of ``as_of``.

        ``data`` is the CRM history to take rep features from (``history``: its prebuilt
        :meth:`index`, to score many chunks); ``leads`` the leads to score.
        """
        pairs = build_scoring_pairs(
            data, leads, as_of=as_of, config=self.features, candidates=candidates, history=history
        )
        return self.model.predict_proba(pairs)[:, 1]

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Score pairs given as raw lead columns + ``rep_id`` (+ optional ``at``, default: the
        training snapshot's time). Returns a frame with ``lead_id``, ``rep_id``, ``p_win``.
        """
        frame = model_input.copy()
        at = frame.pop("at") if "at" in frame else pd.Series(self.as_of, index=frame.index)
        out = pd.Series(np.nan, index=frame.index)
        for when, rows in frame.groupby(pd.to_datetime(at), sort=True):
            leads = rows.drop(columns="rep_id").drop_duplicates("lead_id")
            candidates = rows[["lead_id", "rep_id"]]
            out.loc[rows.index] = self.score(self.history, leads, candidates, as_of=when)
        return pd.DataFrame({"lead_id": frame["lead_id"], "rep_id": frame["rep_id"], "p_win": out})


def serving_requirements() -> list[str]:
    """Pinned requirements of the logged model (inferring them takes seconds and gets them wrong)."""
    pins = []
    for name in SERVING_REQUIREMENTS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins
