"""The runner: estimate a target policy's value on logged decisions with every estimator, and
say whether the history supports it (Open Bandit Pipeline's ``OffPolicyEvaluation``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.config import OffPolicyConfig
from evaluation.off_policy._frames import examples, finite, optional, pair_keys, require
from evaluation.off_policy.estimators import (
    ESTIMATORS,
    WeightedDecisions,
    bootstrap,
    cluster_sums,
    estimates,
    interval,
)
from evaluation.off_policy.overlap import estimate_note, measure_overlap, not_identified
from evaluation.off_policy.results import Estimate, OffPolicyResult, estimate_frames
from features.schemas import Leads, Reps

_SUM_TOLERANCE = 1e-6


def evaluate_policy(
    logged: pd.DataFrame,
    candidates: pd.DataFrame,
    target: pd.DataFrame,
    *,
    config: OffPolicyConfig | None = None,
) -> OffPolicyResult:
    """Estimate the value of the ``target`` policy on the ``logged`` decisions.

    ``logged``: one row per decision: ``lead_id`` (unique), ``rep_id`` (the rep chosen),
    ``reward`` (float: won 0/1, or deal value), ``propensity`` (optional, in (0, 1], NaN where not
    logged) and ``cluster`` (optional bootstrap cluster, e.g. the account; default the lead).
    ``candidates``: one row per (lead, rep) the target could have chosen, every logged choice
    included: ``lead_id``, ``rep_id``, ``q`` (the model's expected reward of the pair, same unit
    as ``reward``) and optionally ``propensity`` (the logging policy's probability of each
    candidate, e.g. from :func:`estimate_propensities`; used where the log has none, and for the
    support check). ``target``: ``lead_id``, ``rep_id``, ``prob`` (>= 0, summing to 1 over each
    logged lead; a deterministic policy has one row per lead with prob 1), on candidate pairs.
    Rows of candidates and target for leads not in ``logged`` are ignored.

    Raises ``ValueError`` naming the problem for a missing column, a duplicated lead or pair, a
    propensity outside (0, 1], a logged choice or target pair that is not a candidate, target
    probabilities that do not sum to 1, or a decision without any propensity.
    """
    config = config or OffPolicyConfig()
    decisions = weigh_decisions(logged, candidates, target, config)
    sums = cluster_sums(decisions)
    point = estimates(sums.sum(axis=0, keepdims=True))[0]
    draws = bootstrap(sums, config)
    overlap = measure_overlap(decisions, config, n_clusters=len(sums))
    reasons = not_identified(overlap, config)
    alpha = (1 - config.level) / 2
    rows = []
    for k, name in enumerate(ESTIMATORS):
        low, high = interval(draws[:, k], alpha)
        diff_low, diff_high = interval(draws[:, k] - draws[:, 0], alpha)
        off_policy = name != "logged"
        rows.append(
            Estimate(
                estimator=name,
                value=point[k],
                ci_low=low,
                ci_high=high,
                vs_logged=point[k] - point[0] if off_policy else np.nan,
                vs_logged_low=diff_low if off_policy else np.nan,
                vs_logged_high=diff_high if off_policy else np.nan,
                identified=not (off_policy and reasons),
                note=estimate_note(name, reasons, overlap, config),
            )
        )
    shown, raw = estimate_frames(rows)
    return OffPolicyResult(
        estimates=shown,
        raw=raw,
        overlap=overlap,
        level=config.level,
        n_bootstrap=config.n_bootstrap,
    )


def weigh_decisions(
    logged: pd.DataFrame, candidates: pd.DataFrame, target: pd.DataFrame, config: OffPolicyConfig
) -> WeightedDecisions:
    """Validate the three frames of :func:`evaluate_policy` and reduce them to one value per
    logged decision (aligned with ``logged``)."""
    require(logged, [Leads.lead_id, Reps.rep_id, "reward"], "logged")
    require(candidates, [Leads.lead_id, Reps.rep_id, "q"], "candidates")
    require(target, [Leads.lead_id, Reps.rep_id, "prob"], "target")
    if len(logged) == 0:
        raise ValueError("logged has no decisions: there is nothing to evaluate")
    duplicated = logged[Leads.lead_id].duplicated()
    if duplicated.any():
        raise ValueError(
            f"logged has {int(duplicated.sum())} duplicated lead_id(s), e.g. "
            f"{list(logged.loc[duplicated, 'lead_id'][:5])}: keep one decision per lead"
        )
    for name, frame in (("candidates", candidates), ("target", target)):
        dup = pair_keys(frame).duplicated()
        if dup.any():
            raise ValueError(f"{name} has {int(dup.sum())} duplicated (lead_id, rep_id) pair(s)")
    y = finite(logged, "reward", "logged")
    leads = pd.Index(logged[Leads.lead_id].astype("str"))
    candidates = candidates.loc[candidates[Leads.lead_id].astype("str").isin(leads)]
    target = target.loc[target[Leads.lead_id].astype("str").isin(leads)]
    q = finite(candidates, "q", "candidates")
    prob = finite(target, "prob", "target")
    if (prob < 0).any() or (prob > 1 + _SUM_TOLERANCE).any():
        raise ValueError("target prob must be in [0, 1] on every row")
    candidate_keys = pair_keys(candidates)
    logged_pos = candidate_keys.get_indexer(pair_keys(logged))
    if (logged_pos < 0).any():
        raise ValueError(
            f"{int((logged_pos < 0).sum())} logged choice(s) are not among their lead's "
            f"candidates, e.g. {examples(logged.loc[logged_pos < 0])}: every logged (lead_id, "
            "rep_id) must be a candidate"
        )
    target_pos = candidate_keys.get_indexer(pair_keys(target))
    if (target_pos < 0).any():
        raise ValueError(
            f"{int((target_pos < 0).sum())} target pair(s) are not candidates, e.g. "
            f"{examples(target.loc[target_pos < 0])}: the target may only choose candidate reps"
        )
    target_lead = leads.get_indexer(target[Leads.lead_id].astype("str"))
    total = np.bincount(target_lead, weights=prob, minlength=len(leads))
    if (np.abs(total - 1) > _SUM_TOLERANCE).any():
        bad = leads[np.abs(total - 1) > _SUM_TOLERANCE]
        raise ValueError(
            f"target prob must sum to 1 over each logged lead; {len(bad)} lead(s) do not "
            f"(a lead without target rows sums to 0), e.g. {list(bad[:5])}"
        )
    dm = np.bincount(target_lead, weights=prob * q[target_pos], minlength=len(leads))
    pi_logged = np.zeros(len(leads))
    hits = pair_keys(target).get_indexer(pair_keys(logged))
    pi_logged[hits >= 0] = prob[hits[hits >= 0]]

    logged_p = optional(logged, "propensity")
    candidate_p = optional(candidates, "propensity")
    for name, values in (("logged", logged_p), ("candidates", candidate_p)):
        present = values[~np.isnan(values)]
        if ((present <= 0) | (present > 1)).any() and name == "logged":
            raise ValueError(
                "logged propensity must be in (0, 1] (the probability the routing chose the "
                "logged rep); leave it empty where unknown"
            )
        if ((present < 0) | (present > 1)).any():
            raise ValueError("candidates propensity must be in [0, 1] on every row")
    estimated = np.isnan(logged_p)
    raw_p = np.where(estimated, candidate_p[logged_pos], logged_p)
    if np.isnan(raw_p).any():
        raise ValueError(
            f"{int(np.isnan(raw_p).sum())} decision(s) have no propensity: neither logged nor in "
            "candidates; estimate them with estimate_propensities"
        )
    used_p = np.where(estimated, np.maximum(raw_p, config.propensity_floor), raw_p)
    unsupported = np.nan
    if not np.isnan(candidate_p).all():
        rare = prob * (candidate_p[target_pos] < config.low_propensity)
        unsupported = float(np.nansum(rare) / len(leads))
    cluster = (
        logged["cluster"].astype("str").to_numpy(dtype=object)
        if "cluster" in logged
        else leads.to_numpy(dtype=object)
    )
    return WeightedDecisions(
        y=y,
        w=pi_logged / used_p,
        q_logged=q[logged_pos],
        dm=dm,
        pi_logged=pi_logged,
        raw_propensity=raw_p,
        estimated=estimated,
        cluster=cluster,
        unsupported=unsupported,
        outside_rules=(
            ~candidates["eligible"].to_numpy(dtype=bool)[logged_pos]
            if "eligible" in candidates
            else np.full(len(leads), np.nan)
        ),
    )
