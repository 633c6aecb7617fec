"""The served model as an MLflow pyfunc: the fitted estimator and what is needed to check and use
it, and no CRM data.

The artefact holds the fitted model (pair model, logistic or lead-only: whichever had the lowest
held-out log loss), its feature settings, the rep-signal verdict, and a few aggregates to check
that it fits the data it is asked to score: the share of training pairs whose category values it
knows, and one-way hashes of the reps it was trained on. No lead, contact, deal or rep name is
stored: the history that rep and pair features need is read, at scoring time, from the data
folder given to `recommend` (:meth:`LeadmatchModel.score`).

A generic MLflow consumer calls ``predict`` with pair features as built by
``features.pairs.build_scoring_pairs`` (one row per lead x rep pair, extra columns ignored).
"""

from __future__ import annotations

from importlib import metadata

import mlflow.pyfunc
import numpy as np
import pandas as pd

from features.config import FeatureConfig
from features.leads import lead_features
from features.pairs import build_scoring_pairs, feature_columns
from features.privacy import pseudonyms
from features.reps import OutcomeHistory, index_history
from features.schemas import CrmData, Leads, Reps
from models.encoding import CategoryCodes
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
# A champion knowing less than half as many of the data's category values as it knew of its
# training pairs' was trained on something else (a new product line lowers the share a little,
# another company's export to nearly nothing).
FAMILIAR_SHARE = 0.5


class LeadmatchModel(mlflow.pyfunc.PythonModel):
    """The served model with its feature settings, rep-signal verdict and fit-check aggregates.

    ``estimator`` is fitted on training pairs (``predict_proba`` on pair features); ``kind``
    names it (pair_model, logistic, lead_only); ``trained_before`` is the first ``at`` of its
    held-out slice (it was fitted on earlier pairs only); ``as_of`` the moment of the training
    snapshot; ``feature_set`` the candidate feature columns of the training pairs;
    ``category_shares`` (category column -> share of the training pairs whose value the model
    knows) and ``rep_keys`` (one-way hashes of the reps in the training pairs) let
    :meth:`misfit` tell data it was not trained for.
    """

    def __init__(
        self,
        estimator: object,
        kind: str,
        features: FeatureConfig,
        rep_signal: RepSignal,
        *,
        trained_before: pd.Timestamp,
        as_of: pd.Timestamp,
        feature_set: list[str],
        category_shares: dict[str, float],
        rep_keys: list[str],
    ):
        self.estimator = estimator
        self.kind = kind
        # Stored as plain values so a model pickled by an older leadmatch still loads: fields added
        # to FeatureConfig since then take their defaults.
        self.feature_settings = features.model_dump(mode="json")
        self.rep_signal = rep_signal
        self.trained_before = pd.Timestamp(trained_before)
        self.as_of = pd.Timestamp(as_of)
        self.feature_set = list(feature_set)
        self.category_shares = dict(category_shares)
        self.rep_keys = sorted(rep_keys)

    @classmethod
    def from_training(
        cls,
        estimator: object,
        kind: str,
        pairs: pd.DataFrame,
        features: FeatureConfig,
        rep_signal: RepSignal,
        *,
        trained_before: pd.Timestamp,
        as_of: pd.Timestamp,
    ) -> LeadmatchModel:
        """The served model of ``estimator`` fitted on (the earlier part of) training ``pairs``."""
        categorical, numeric = feature_columns(pairs)
        encoder = category_encoder(estimator)
        fitted = pairs.loc[pairs["at"] < trained_before]
        return cls(
            estimator,
            kind,
            features,
            rep_signal,
            trained_before=trained_before,
            as_of=as_of,
            feature_set=sorted(categorical + numeric),
            category_shares=encoder.known_shares(fitted),
            rep_keys=pseudonyms(fitted[Reps.rep_id].unique()),
        )

    @property
    def features(self) -> FeatureConfig:
        """The feature configuration the model was trained with."""
        return FeatureConfig.model_validate(self.feature_settings)

    @property
    def uses_rep_information(self) -> bool:
        """Whether the model reads rep columns at all (the lead-only model does not)."""
        return bool(getattr(self.estimator, "rep_information", True))

    @property
    def rep_signal_used(self) -> bool:
        """Whether rep-specific uplift may drive assignments: a model with rep information and a
        reliable rep signal."""
        return self.uses_rep_information and self.rep_signal.has_signal

    def signal_sentence(self) -> str:
        """The rep-signal verdict in words, saying when the served model has no rep information."""
        if self.uses_rep_information:
            return self.rep_signal.summary()
        return (
            f"{self.rep_signal.summary()}; the lead-only model is served (it had the lowest "
            "held-out log loss), so reps are not told apart"
        )

    def label_definition(self) -> str:
        """The training target in words, e.g. "won within 90 days of assignment"."""
        return f"won within {self.features.conversion_window_days} days of assignment"

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
        return self.estimator.predict_proba(pairs)[:, 1]

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Score pair-feature rows (``features.pairs.build_scoring_pairs``). Returns ``p_win``,
        after ``lead_id`` and ``rep_id`` when the input has them."""
        p_win = self.estimator.predict_proba(model_input)[:, 1]
        keys = [c for c in (Leads.lead_id, Reps.rep_id) if c in model_input]
        return model_input[keys].reset_index(drop=True).assign(p_win=p_win)

    def misfit(self, data: CrmData) -> list[str]:
        """Why this model does not fit ``data`` (empty when it does): lead feature columns the
        data lacks; category columns whose values it mostly does not know (less than
        :data:`FAMILIAR_SHARE` of the share it knew in training); for a model with rep
        information, no active rep of the data among those it was trained on."""
        problems = []
        needed = [str(c) for c in self.feature_set if str(c).startswith("x_")]
        missing = [c for c in needed if c not in data.leads]
        if missing:
            problems.append(f"the leads have no column {', '.join(missing)}")
        now = category_encoder(self.estimator).known_shares(lead_features(data.leads))
        for column, share in now.items():
            trained = self.category_shares.get(column, 0.0)
            if trained > 0 and share < FAMILIAR_SHARE * trained:
                problems.append(
                    f"it knows {share:.0%} of the leads' {column} values (it knew {trained:.0%} "
                    "of its training pairs')"
                )
        if self.uses_rep_information:
            active = data.reps.loc[data.reps["active"].astype(bool), Reps.rep_id]
            if len(active) and not set(pseudonyms(active)) & set(self.rep_keys):
                problems.append(f"none of the {len(active)} active reps was in its training data")
        return problems


def model_inputs(estimator: object) -> tuple[list[str], list[str]]:
    """(category columns, numeric columns) a fitted pair, lead-only or logistic model reads."""
    return list(estimator.categorical_features_), list(estimator.numeric_features_)


def category_encoder(estimator: object) -> CategoryCodes:
    """The category encoder of a fitted pair, lead-only or logistic model."""
    encoder = getattr(estimator, "encoder_", None)
    if encoder is None:
        encoder = estimator.pipeline_.steps[0][1]
    return encoder


def serving_requirements() -> list[str]:
    """Pinned requirements of the logged model (inferring them takes seconds and gets them wrong)."""
    pins = []
    for name in SERVING_REQUIREMENTS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins
