"""Leadmatch's policy against the logged one on real history, where there is no ground truth:
the off-policy estimates of :mod:`evaluation.off_policy`, cross-fitted.

The logged leads are split into folds by account, and each fold is scored, and its leadmatch
assignment chosen day by day, by a model trained without it. When overlap is too thin the value
is reported as not identified, with no number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.config import OffPolicyConfig
from evaluation.off_policy.logged import (
    choice_features,
    cross_fit_folds,
    historical_candidates,
    logged_decisions,
)
from evaluation.off_policy.propensity import estimate_propensities
from evaluation.off_policy.results import OffPolicyResult
from evaluation.off_policy.runner import evaluate_policy
from features.config import FeatureConfig
from features.daily import rep_day
from features.pairs import build_pairs_at, build_training_pairs
from features.schemas import CrmData, Leads, Reps
from matching import match
from matching.config import MatchingConfig
from matching.day import lead_values
from matching.fairness import RollingWindow
from models.config import ModelConfig
from models.training import train_and_evaluate


class CannotEvaluate(ValueError):
    """The history cannot support an off-policy backtest (no final outcome yet, or too little
    to train a cross-fitted model on)."""


@dataclass(frozen=True)
class OffPolicyBacktest:
    """Leadmatch's policy against the logged one on real history.

    ``result``: the estimates (``result.summary()`` is what to print); ``rep_signal``: each
    fold's rep-signal verdict; ``n_fallback``: evaluated (mature) leads the target policy could
    not place within the day's capacity, sent to their best candidate instead.
    """

    result: OffPolicyResult
    rep_signal: list[str]
    n_fallback: int
    n_folds: int


def off_policy_backtest(
    data: CrmData,
    *,
    features: FeatureConfig,
    model: ModelConfig,
    matching: MatchingConfig,
    off_policy: OffPolicyConfig,
    window_days: int,
    n_folds: int = 2,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> OffPolicyBacktest:
    """Estimate the value of leadmatch's policy on the logged history of ``data``.

    Logged propensities are used where present, estimated ones elsewhere. Cross-fitted: the
    logged leads are split into ``n_folds`` folds by account; for each fold a model is trained
    (with its rep-signal test) on the training pairs of the other folds' leads, scores the
    fold's candidate pairs at each decision's own time (``q``), and chooses leadmatch's
    assignment of the fold's leads day by day (the optimiser over each day's leads, restricted to
    their historical candidates, with the day's capacities scaled to the fold's share of the
    day's decisions). The estimators then compare that choice with the logged one on the mature
    decisions. Reward: won within the conversion window, or its deal value when the matching
    objective is expected value. ``window_days``: the fairness window carried from day to day.

    Raises :class:`CannotEvaluate` when no decision is old enough to have a final outcome or a
    fold's model cannot be trained.
    """
    reward = "won" if matching.objective == "conversions" else "value"
    decisions = logged_decisions(data, window_days=features.conversion_window_days, reward=reward)
    if not decisions["mature"].any():
        raise CannotEvaluate(
            "no logged decision is older than the conversion window, so no outcome is final: "
            "there is nothing to evaluate yet"
        )
    candidates = choice_features(data, historical_candidates(data, decisions))
    if decisions["propensity"].isna().any():
        candidates = estimate_propensities(decisions, candidates, config=off_policy)
    folds = cross_fit_folds(decisions, n_folds, seed)
    pairs = build_training_pairs(data, config=features)
    pair_features = build_pairs_at(
        data, candidates[[Leads.lead_id, Reps.rep_id, "at"]], config=features
    )
    candidate_fold = candidates[Leads.lead_id].map(folds).to_numpy()
    pair_fold = pairs[Leads.lead_id].map(folds).to_numpy()
    decision_fold = decisions[Leads.lead_id].map(folds).to_numpy()
    q = np.empty(len(candidates))
    target_matching = matching.model_copy(update={"price_of_fairness": False})
    targets, verdicts, fallback = [], [], 0
    for k in range(n_folds):
        try:
            trained = train_and_evaluate(pairs.loc[pair_fold != k], model)
        except ValueError as err:
            raise CannotEvaluate(
                f"cannot train the cross-fitted model of fold {k + 1}: {err}"
            ) from err
        rows = candidate_fold == k
        q[rows] = trained.model.predict_proba(pair_features.loc[rows])[:, 1]
        verdicts.append(trained.rep_signal.summary())
        target, held = leadmatch_target(
            data,
            decisions.loc[decision_fold == k],
            candidates.loc[rows, [Leads.lead_id, Reps.rep_id]].assign(p_win=q[rows]),
            target_matching,
            rep_signal=trained.rep_signal.has_signal,
            share=_fold_shares(decisions, decision_fold == k),
            window_days=window_days,
        )
        targets.append(target)
        fallback += int(decisions.loc[decisions["mature"], Leads.lead_id].isin(held).sum())
        if progress is not None:
            progress(f"fold {k + 1} of {n_folds}: {trained.rep_signal.verdict}")
    value = lead_values(
        data.leads.set_index(Leads.lead_id).loc[candidates[Leads.lead_id]], matching.objective
    )
    result = evaluate_policy(
        decisions.loc[decisions["mature"]],
        candidates.assign(q=q * value),
        pd.concat(targets, ignore_index=True),
        config=off_policy,
    )
    return OffPolicyBacktest(result, verdicts, fallback, n_folds)


def _fold_shares(decisions: pd.DataFrame, in_fold: np.ndarray) -> pd.Series:
    """Per day: the fold's share of the day's logged decisions."""
    day = decisions["at"].dt.normalize()
    return pd.Series(in_fold, index=day).groupby(level=0).mean()


def leadmatch_target(
    data: CrmData,
    decisions: pd.DataFrame,
    candidates: pd.DataFrame,
    matching: MatchingConfig,
    *,
    rep_signal: bool,
    share: pd.Series,
    window_days: int,
) -> tuple[pd.DataFrame, list[str]]:
    """Leadmatch's choice for each logged lead, day by day, as an off-policy target.

    ``decisions``: the logged leads (lead_id, at); ``candidates``: lead_id, rep_id, p_win (their
    historical candidate reps, scored); ``share``: per day, the share of the day's capacity these
    leads may use. Each day's leads are matched by :func:`matching.match` (with a fairness
    window of ``window_days`` carried from day to day); the reps' availability is already in
    the candidate sets.
    A lead the day's capacity could not take goes to its best candidate. Returns (target frame
    lead_id, rep_id, prob = 1.0; the lead_ids of such leads).
    """
    leads = data.leads.set_index(Leads.lead_id, drop=False)
    daily_capacity = data.reps["daily_capacity"].fillna(0).to_numpy(dtype=float)
    best_rep = (
        candidates.sort_values("p_win", ascending=False, kind="stable")
        .drop_duplicates(Leads.lead_id)
        .set_index(Leads.lead_id)[Reps.rep_id]
    )
    window = RollingWindow.empty(window_days)
    chosen: list[pd.DataFrame] = []
    held: list[str] = []
    for day, group in decisions.groupby(decisions["at"].dt.normalize(), sort=True):
        reps = rep_day(data, day)
        # An absent or departed rep keeps a slot only for a logged choice the rules missed.
        capacity = np.where(reps["available"], reps["capacity"], daily_capacity)
        # Employment, availability, capacity used earlier that day and open-lead caps are
        # already in the candidate sets; the day's capacity still bounds the batch.
        reps = reps.assign(
            capacity=np.ceil(capacity * share.get(day, 1.0)).astype(int),
            active=True,
            available=True,
            open_load=0,
            max_open_leads=pd.NA,
        )
        lead_ids = group[Leads.lead_id].to_numpy(dtype=object)
        day_candidates = candidates.loc[candidates[Leads.lead_id].isin(lead_ids)]
        result = match(
            day_candidates,
            leads.loc[lead_ids].reset_index(drop=True),
            reps,
            matching,
            history=window.history(day),
            rep_signal=rep_signal,
        )
        picks = result.assignments[[Leads.lead_id, Reps.rep_id]].copy()
        missing = picks[Reps.rep_id].isna().to_numpy()
        held += picks.loc[missing, Leads.lead_id].tolist()
        picks.loc[missing, Reps.rep_id] = picks.loc[missing, Leads.lead_id].map(best_rep)
        chosen.append(picks)
        window = window.add_run(day, result.rep_summary)
    target = pd.concat(chosen, ignore_index=True).assign(prob=1.0)
    return target, held
