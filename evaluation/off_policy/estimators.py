"""The estimators: direct method, inverse propensity (plain and self-normalised) and doubly
robust (plain and self-normalised), from one value per logged decision, with bootstrap
intervals over clusters of leads.

Everything is computed from per-cluster sums (:func:`cluster_sums`), so a bootstrap resample is
a matrix product (resample counts times the sums) and every estimator and its difference from
the historical policy's value share the same resamples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.config import OffPolicyConfig

ESTIMATORS = ("logged", "dm", "ips", "snips", "dr", "sndr")
"""Row order of the estimates frame; ``logged`` is the historical policy's on-policy value."""

ESTIMATOR_NAMES = {
    "logged": "historical policy (observed mean)",
    "dm": "direct method (model only)",
    "ips": "inverse propensity",
    "snips": "self-normalised inverse propensity",
    "dr": "doubly robust",
    "sndr": "doubly robust, self-normalised weights",
}

# Bootstrap resamples are drawn in blocks so that the count matrix stays near 20M cells.
_BOOTSTRAP_CELLS = 20_000_000


@dataclass(frozen=True)
class WeightedDecisions:
    """The logged decisions reduced to what the estimators need, one value per decision.

    ``y``: reward; ``w``: importance weight pi(a|i) / mu(a|i); ``q_logged``: the model's
    expected reward of the logged pair; ``dm``: the target's expected reward by the model;
    ``pi_logged``: the target's probability of the logged rep; ``raw_propensity``: mu(a|i)
    before clipping; ``estimated``: whether it was estimated (bool); ``cluster``: the bootstrap
    cluster; ``unsupported``: the target's mass on pairs under the low-propensity threshold,
    per decision on average (NaN when candidate propensities are unknown);
    ``outside_rules``: whether the logged pair broke the rebuilt eligibility rules (NaN when
    the candidates have no ``eligible`` column).
    """

    y: np.ndarray
    w: np.ndarray
    q_logged: np.ndarray
    dm: np.ndarray
    pi_logged: np.ndarray
    raw_propensity: np.ndarray
    estimated: np.ndarray
    cluster: np.ndarray
    unsupported: float
    outside_rules: np.ndarray


def cluster_sums(decisions: WeightedDecisions) -> np.ndarray:
    """Per bootstrap cluster (rows, in order of first appearance), the sums of n, y, dm, w,
    w * y and w * (y - q_logged): every estimator is a ratio of these totals."""
    w, y = decisions.w, decisions.y
    clusters = pd.factorize(decisions.cluster)[0]
    per_lead = np.column_stack(
        [np.ones(len(y)), y, decisions.dm, w, w * y, w * (y - decisions.q_logged)]
    )
    sums = np.zeros((clusters.max() + 1, per_lead.shape[1]))
    np.add.at(sums, clusters, per_lead)
    return sums


def estimates(sums: np.ndarray) -> np.ndarray:
    """Every estimator from cluster-sum totals (rows: resamples; columns: n, y, dm, w, wy, wr).

    Columns of the result follow :data:`ESTIMATORS`.
    """
    n, y, dm, w, wy, wr = sums.T
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.column_stack([y / n, dm / n, wy / n, wy / w, (dm + wr) / n, dm / n + wr / w])


def bootstrap(sums: np.ndarray, config: OffPolicyConfig) -> np.ndarray:
    """Estimates on ``n_bootstrap`` resamples of the clusters (rows of ``sums``), with
    replacement; shape (n_bootstrap, len(ESTIMATORS))."""
    rng = np.random.default_rng(config.seed)
    k = len(sums)
    block = max(1, _BOOTSTRAP_CELLS // k)
    out = []
    for start in range(0, config.n_bootstrap, block):
        size = min(block, config.n_bootstrap - start)
        counts = rng.multinomial(k, np.full(k, 1.0 / k), size=size)
        out.append(estimates(counts @ sums))
    return np.concatenate(out)


def interval(draws: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval of the defined draws (a self-normalised estimate is undefined, 0 / 0,
    in a resample without weight); NaN when none is defined."""
    defined = draws[np.isfinite(draws)]
    if len(defined) == 0:
        return np.nan, np.nan
    low, high = np.quantile(defined, [alpha, 1 - alpha])
    return float(low), float(high)
