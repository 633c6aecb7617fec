"""Baselines trained and evaluated on the same split as the pair model."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from features.pairs import feature_columns
from models.config import ModelConfig
from models.encoding import CategoryCodes
from models.pair_model import PairModel, check_training_pairs


def lead_only_model(config: ModelConfig | None = None) -> PairModel:
    """The lead-only baseline: the pair model's learner and calibration, without any rep column."""
    return PairModel(config=config, rep_information=False)


class LogisticPairModel(ClassifierMixin, BaseEstimator):
    """Logistic regression on the same pair features (one-hot categories, signed-log numbers).

    Learned state: ``categorical_features_``, ``numeric_features_``, ``pipeline_``, ``classes_``.
    """

    def __init__(self, config: ModelConfig | None = None, C: float = 1.0):
        self.config = config
        self.C = C

    def fit(
        self, pairs: pd.DataFrame, y: pd.Series | np.ndarray | None = None
    ) -> LogisticPairModel:
        """Fit on ``pairs`` (target ``y``, default the ``won`` column); returns self."""
        config = self.config or ModelConfig()
        target = check_training_pairs(pairs, y, config=config, rep_information=True)
        self.categorical_features_, self.numeric_features_ = feature_columns(pairs)
        numbers = make_pipeline(
            # Counts, values and tenures are heavy-tailed; a signed log keeps them usable linearly.
            FunctionTransformer(_signed_log),
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
        )
        self.pipeline_ = make_pipeline(
            CategoryCodes(self.categorical_features_, min_count=config.min_category_count),
            ColumnTransformer(
                [
                    (
                        "categories",
                        OneHotEncoder(handle_unknown="ignore"),
                        self.categorical_features_,
                    ),
                    ("numbers", numbers, self.numeric_features_),
                ]
            ),
            LogisticRegression(C=self.C, max_iter=2000),
        )
        self.pipeline_.fit(self._inputs(pairs), target)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, pairs: pd.DataFrame) -> np.ndarray:
        """Probabilities, shape (n_pairs, 2): columns P(not won), P(won)."""
        floor = (self.config or ModelConfig()).probability_floor
        p_win = np.clip(self.pipeline_.predict_proba(self._inputs(pairs))[:, 1], floor, 1 - floor)
        return np.column_stack([1.0 - p_win, p_win])

    def predict(self, pairs: pd.DataFrame) -> np.ndarray:
        """1 where the win probability is at least one half, else 0."""
        return (self.predict_proba(pairs)[:, 1] >= 0.5).astype(int)

    def _inputs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        frame = pairs[self.categorical_features_ + self.numeric_features_]
        return frame.assign(**{c: frame[c].astype(float) for c in self.numeric_features_})


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))
