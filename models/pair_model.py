"""The calibrated lead x rep conversion model: P(won within the window | lead, rep, at)."""

from __future__ import annotations

from typing import get_args

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from features.config import SegmentColumn
from features.pairs import TARGET, feature_columns
from features.schemas import Reps
from models.config import ModelConfig
from models.encoding import CategoryCodes
from models.splits import time_split_masks

SEGMENT_COLUMNS = get_args(SegmentColumn)


class PairModel(ClassifierMixin, BaseEstimator):
    """LightGBM on pair features, calibrated on a later time slice than the trees.

    ``fit(pairs)`` takes a training-pair frame (``features.pairs.build_training_pairs``: columns
    ``at``, ``won``, ``mature`` and the features). The trees learn from the pairs before the most
    recent ``calibration_fraction`` of mature pairs (:func:`models.splits.time_split_masks`); the
    calibration map (isotonic or Platt, ``ModelConfig.calibration``) is fitted on the trees'
    scores on that later slice, so the probabilities are honest for pairs the trees never saw.
    ``rep_information=False`` gives the lead-only baseline: same learner, lead columns only.

    Learned state: ``categorical_features_``, ``numeric_features_``, ``feature_names_in_``,
    ``encoder_`` (stable integer codes), ``booster_`` (the fitted ``LGBMClassifier``),
    ``calibrator_`` (``calibration_method_`` says which: "isotonic" or "platt"),
    ``calibration_start_`` (first ``at`` of the calibration slice),
    ``classes_``; and ``rep_signal_`` (:class:`models.rep_signal.RepSignal`), which
    :func:`models.training.train_and_evaluate` stores once the held-out rep-signal test has run.
    """

    def __init__(self, config: ModelConfig | None = None, rep_information: bool = True):
        self.config = config
        self.rep_information = rep_information

    def fit(self, pairs: pd.DataFrame, y: pd.Series | np.ndarray | None = None) -> PairModel:
        """Fit on ``pairs`` (target ``y``, default the ``won`` column); returns self."""
        config = self.config or ModelConfig()
        target = check_training_pairs(pairs, y, config=config, rep_information=self.rep_information)
        self.categorical_features_, self.numeric_features_ = feature_columns(
            pairs, rep_information=self.rep_information
        )
        self.feature_names_in_ = np.array(self.categorical_features_ + self.numeric_features_)
        self.encoder_ = CategoryCodes(
            self.categorical_features_, min_count=config.min_category_count
        ).fit(pairs)
        X = self.design_matrix(pairs)
        early, late = time_split_masks(pairs, config.calibration_fraction)
        self.calibration_start_ = pd.Timestamp(pairs.loc[late, "at"].min())
        params = config.lightgbm
        self.booster_ = lgb.LGBMClassifier(
            objective="binary",
            n_estimators=params.n_estimators,
            learning_rate=params.learning_rate,
            num_leaves=params.num_leaves,
            min_child_samples=params.min_child_samples,
            subsample=params.subsample,
            subsample_freq=params.subsample_freq,
            colsample_bytree=params.colsample_bytree,
            reg_lambda=params.reg_lambda,
            cat_smooth=params.cat_smooth,
            n_jobs=params.n_jobs,
            random_state=config.seed,
            # The same data, seed and thread count give the same trees on every run: LightGBM's
            # docs ask for deterministic=True together with a forced histogram layout (row-wise
            # or column-wise), since choosing between them at run time can differ.
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        callbacks = (
            []
            if params.early_stopping_rounds is None
            else [lgb.early_stopping(params.early_stopping_rounds, verbose=False)]
        )
        self.booster_.fit(
            X[early],
            target[early],
            eval_X=(X[late],),
            eval_y=(target[late],),
            eval_metric="binary_logloss",
            categorical_feature=self.categorical_features_,
            callbacks=callbacks,
        )
        scores = self.booster_.predict(X[late], raw_score=True)
        self.calibrator_ = _fit_calibrator(
            scores, target[late], pairs.loc[late, "at"].to_numpy(), config
        )
        self.calibration_method_ = (
            "isotonic" if isinstance(self.calibrator_, IsotonicRegression) else "platt"
        )
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, pairs: pd.DataFrame) -> np.ndarray:
        """The trees' uncalibrated log-odds of a win, one per pair."""
        return self.booster_.predict(self.design_matrix(pairs), raw_score=True)

    def predict_proba(self, pairs: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape (n_pairs, 2): columns P(not won), P(won)."""
        p_win = self.calibrate(self.decision_function(pairs))
        return np.column_stack([1.0 - p_win, p_win])

    def predict(self, pairs: pd.DataFrame) -> np.ndarray:
        """1 where the calibrated win probability is at least one half, else 0."""
        return (self.predict_proba(pairs)[:, 1] >= 0.5).astype(int)

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated win probabilities of raw tree log-odds ``scores``."""
        return _calibrated(
            self.calibrator_, scores, (self.config or ModelConfig()).probability_floor
        )

    def design_matrix(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """The model inputs of ``pairs``: categories as learned integer codes, numbers as float."""
        missing = [str(c) for c in self.feature_names_in_ if c not in pairs]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise ValueError(
                f"the pairs lack feature column(s) {missing[:5]}{more}: build them with "
                "features.pairs.build_scoring_pairs (or build_training_pairs)"
            )
        frame = self.encoder_.transform(pairs[list(self.feature_names_in_)])
        numeric = {
            c: pd.to_numeric(frame[c], errors="coerce").astype(float)
            for c in self.numeric_features_
        }
        return frame.assign(**numeric)


def check_training_pairs(
    pairs: pd.DataFrame,
    y: pd.Series | np.ndarray | None,
    *,
    config: ModelConfig,
    rep_information: bool,
) -> np.ndarray:
    """The 0/1 target as an int array, or a ``ValueError`` saying what the data lacks.

    Checks: the key and feature columns are there; enough decided outcomes and both classes
    (overall and in the calibration slice); and, when rep information is used, at least two reps
    and some segment value worked by two or more reps (otherwise a rep's effect cannot be told
    apart from its segment's).
    """
    needed = ["at", Reps.rep_id] + ([] if y is not None else [TARGET])
    missing = [c for c in needed if c not in pairs]
    if missing:
        raise ValueError(
            f"the training pairs lack column(s) {missing}: build them with "
            "features.pairs.build_training_pairs"
        )
    target = pd.Series(pairs[TARGET] if y is None else y)
    if target.isna().any():
        raise ValueError(
            f"{int(target.isna().sum())} training pair(s) have no outcome: leave undecided "
            "assignments out (build_training_pairs does)"
        )
    target = target.astype(int).to_numpy()
    if len(target) < config.min_outcomes:
        raise ValueError(
            f"too few closed outcomes: {len(target)} labelled pairs, at least "
            f"{config.min_outcomes} are needed (ModelConfig.min_outcomes); collect more history "
            "or lower the conversion window"
        )
    wins = int(target.sum())
    if wins == 0 or wins == len(target):
        kind = "won" if wins else "not won"
        raise ValueError(
            f"a single class: all {len(target)} labelled pairs were {kind} within the window; "
            "the model needs both wins and non-wins"
        )
    fewest = min(wins, len(target) - wins)
    if fewest < config.min_outcomes_per_class:
        raise ValueError(
            f"too few closed outcomes of one class: {wins} wins and {len(target) - wins} "
            f"non-wins; at least {config.min_outcomes_per_class} of each are needed "
            "(ModelConfig.min_outcomes_per_class)"
        )
    early, late = time_split_masks(pairs, config.calibration_fraction)
    if len(np.unique(target[late])) < 2 or len(np.unique(target[early])) < 2:
        raise ValueError(
            "the calibration slice (the most recent "
            f"{config.calibration_fraction:.0%} of pairs) and the earlier pairs must each hold "
            "both wins and non-wins; add history or change ModelConfig.calibration_fraction"
        )
    if rep_information:
        _check_rep_overlap(pairs)
    return target


def _check_rep_overlap(pairs: pd.DataFrame) -> None:
    n_reps = pairs[Reps.rep_id].nunique()
    if n_reps < 2:
        raise ValueError(
            f"only {n_reps} rep in the training pairs: rep effects need at least two reps"
        )
    segments = [c for c in SEGMENT_COLUMNS if c in pairs]
    shared = any(
        (pairs.groupby(c, dropna=False)[Reps.rep_id].nunique() >= 2).any() for c in segments
    )
    if not shared:
        raise ValueError(
            "no overlap between reps and segments: every "
            f"{'/'.join(segments)} value was worked by a single rep, so a rep's effect cannot be "
            "told apart from its segment's; train the lead-only model (rep_information=False)"
        )


def _fit_calibrator(
    scores: np.ndarray, target: np.ndarray, at: np.ndarray, config: ModelConfig
) -> IsotonicRegression | LogisticRegression:
    method = config.calibration
    if method == "auto":
        method = choose_calibration(scores, target, at, config)
    if method == "isotonic":
        return _isotonic(scores, target, config)
    return _platt(scores, target)


def _isotonic(scores: np.ndarray, target: np.ndarray, config: ModelConfig) -> IsotonicRegression:
    return IsotonicRegression(
        y_min=config.probability_floor,
        y_max=1.0 - config.probability_floor,
        out_of_bounds="clip",
    ).fit(scores, target)


def _platt(scores: np.ndarray, target: np.ndarray) -> LogisticRegression:
    # Platt scaling on the log-odds: a slope and an intercept, practically unpenalised.
    return LogisticRegression(C=1e6).fit(np.asarray(scores).reshape(-1, 1), target)


def choose_calibration(
    scores: np.ndarray, target: np.ndarray, at: np.ndarray, config: ModelConfig
) -> str:
    """The calibration map ``calibration: auto`` fits to raw tree ``scores`` with 0/1 ``target``
    at times ``at``: "isotonic" when the slice holds at least ``isotonic_min_pairs`` pairs and,
    fitted on its earlier 70% (by time), isotonic predicts the latest 30% with a lower log loss
    than Platt; else "platt".

    Isotonic regression can follow a score distribution no sigmoid fits (e.g. a group of
    near-certain losses beside a middle where the scores tell little), but it overfits a small
    slice. The choice is judged forward in time, as the model will be used: folds that predict
    the past from the future favour whichever map extrapolates backwards, which says nothing.
    """
    if len(scores) < config.isotonic_min_pairs:
        return "platt"
    scores, target = np.asarray(scores, dtype=float), np.asarray(target)
    order = np.argsort(np.asarray(at, dtype="datetime64[ns]"), kind="stable")
    fit, held = order[: int(0.7 * len(order))], order[int(0.7 * len(order)) :]
    if len(np.unique(target[fit])) < 2:
        return "platt"
    floor = config.probability_floor
    losses = {
        name: log_loss(target[held], _calibrated(calibrator, scores[held], floor), labels=[0, 1])
        for name, calibrator in (
            ("isotonic", _isotonic(scores[fit], target[fit], config)),
            ("platt", _platt(scores[fit], target[fit])),
        )
    }
    return "isotonic" if losses["isotonic"] < losses["platt"] else "platt"


def _calibrated(
    calibrator: IsotonicRegression | LogisticRegression, scores: np.ndarray, floor: float
) -> np.ndarray:
    if isinstance(calibrator, IsotonicRegression):
        p = calibrator.predict(scores)
    else:
        p = calibrator.predict_proba(np.asarray(scores).reshape(-1, 1))[:, 1]
    return np.clip(p, floor, 1.0 - floor)
