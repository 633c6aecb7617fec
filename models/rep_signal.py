"""Paired log-loss comparisons with a cluster bootstrap, and the rep-signal test built on them.

:func:`paired_log_loss_gain` judges two models' probabilities for the same pairs and outcomes;
the rep-signal test asks it whether knowing the rep improves held-out predictions beyond noise,
and the registry's promotion gate asks it whether a new model beats the current champion.

Later stages read the rep-signal verdict: without a reliable rep signal, rep-specific uplift must
not drive assignments (matching then only balances value and load, and says so).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

SIGNAL = "signal"
NO_SIGNAL = "no reliable signal"

UNITS = "nats per held-out pair"
GAIN_SIGN = (
    "gain = log loss of the lead-only model minus log loss of the pair model (the same learner "
    "with rep information); positive: rep information lowers the log loss"
)


@dataclass(frozen=True)
class PairedGain:
    """How much lower model B's held-out log loss is than model A's on the same pairs.

    ``gain`` is A's mean log loss minus B's (nats per pair; positive: B predicts better),
    ``relative_gain`` the same as a share of A's log loss, ``interval`` its bootstrap interval at
    ``level`` (whole clusters resampled), ``loss_a`` / ``loss_b`` the two mean log losses.
    """

    gain: float
    relative_gain: float
    interval: tuple[float, float]
    level: float
    loss_a: float
    loss_b: float
    n_pairs: int
    n_clusters: int
    n_bootstrap: int

    @property
    def reliable(self) -> bool:
        """Whether the whole interval lies above zero (B is better beyond noise)."""
        return self.interval[0] > 0


def paired_log_loss_gain(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    clusters: pd.Series | np.ndarray,
    *,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedGain:
    """Compare the log loss of probabilities ``p_b`` with ``p_a`` on the same pairs (0/1
    outcomes ``y``).

    The interval comes from a cluster bootstrap: ``clusters`` (normally the lead_id) are
    resampled whole, so pairs of the same lead never count as independent evidence.
    Raises ``ValueError`` when the inputs differ in length or are empty.
    """
    y = np.asarray(y, dtype=float)
    p_a, p_b = np.asarray(p_a, dtype=float), np.asarray(p_b, dtype=float)
    clusters = np.asarray(clusters, dtype=object)
    if not (len(y) == len(p_a) == len(p_b) == len(clusters)) or len(y) == 0:
        raise ValueError(
            f"a paired comparison needs the same non-empty pairs for both models: got "
            f"{len(y)} outcomes, {len(p_a)} and {len(p_b)} probabilities, {len(clusters)} clusters"
        )
    loss_a, loss_b = _log_loss_terms(y, p_a), _log_loss_terms(y, p_b)
    difference = loss_a - loss_b
    codes, uniques = pd.factorize(clusters)
    per_cluster = np.bincount(codes, weights=difference, minlength=len(uniques))
    sizes = np.bincount(codes, minlength=len(uniques)).astype(float)
    rng = np.random.default_rng(seed)
    gains = np.empty(n_bootstrap)
    # Draw resamples in blocks so memory stays near 8 million indices whatever the data size.
    block = max(1, 8_000_000 // max(len(uniques), 1))
    for start in range(0, n_bootstrap, block):
        size = min(block, n_bootstrap - start)
        picks = rng.integers(0, len(uniques), size=(size, len(uniques)))
        gains[start : start + size] = per_cluster[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(gains, [tail, 1.0 - tail])
    gain = float(difference.mean())
    return PairedGain(
        gain=gain,
        relative_gain=gain / float(loss_a.mean()),
        interval=(float(low), float(high)),
        level=level,
        loss_a=float(loss_a.mean()),
        loss_b=float(loss_b.mean()),
        n_pairs=len(y),
        n_clusters=len(uniques),
        n_bootstrap=n_bootstrap,
    )


@dataclass(frozen=True)
class RepSignal:
    """Outcome of :func:`rep_signal_test`.

    ``gain`` is the held-out log loss of the lead-only model minus that of the pair model
    (:data:`UNITS`; positive: the rep information helps), ``relative_gain`` the same
    as a share of the lead-only log loss, ``interval`` its bootstrap interval at ``level``.
    The verdict is ``"signal"`` when the whole interval is above zero. ``not_tested`` says why
    there was no test (a history without reps: :func:`untested`).
    """

    verdict: Literal["signal", "no reliable signal"]
    gain: float
    relative_gain: float
    interval: tuple[float, float]
    level: float
    n_pairs: int
    n_clusters: int
    n_bootstrap: int
    not_tested: str | None = None

    @property
    def has_signal(self) -> bool:
        """Whether rep-specific uplift may drive assignments."""
        return self.verdict == SIGNAL

    def to_dict(self) -> dict[str, object]:
        """Flat, JSON-ready mapping (the interval as ``interval_low`` / ``interval_high``), with
        the ``units`` and ``sign`` of the gain spelled out."""
        out = asdict(self)
        low, high = out.pop("interval")
        return {
            **out,
            "interval_low": low,
            "interval_high": high,
            "units": UNITS,
            "sign": GAIN_SIGN,
        }

    def summary(self) -> str:
        """One sentence for logs and reports, e.g. "signal: rep information lowers held-out log
        loss by 0.0083 (1.7%), ..."."""
        if self.not_tested:
            return f"{self.verdict}: not tested, {self.not_tested}"
        low, high = self.interval
        change = "lowers" if self.gain > 0 else "raises" if self.gain < 0 else "does not change"
        size = "" if self.gain == 0 else f" by {abs(self.gain):.4f} ({abs(self.relative_gain):.1%})"
        return (
            f"{self.verdict}: rep information {change} held-out log loss{size}, "
            f"{self.level:.0%} interval of the reduction [{low:+.4f}, {high:+.4f}] nats per pair "
            f"over {self.n_clusters} leads"
        )


def untested(reason: str) -> RepSignal:
    """The verdict of a model trained without telling reps apart (``reason`` says why): no
    signal, since none was measured."""
    return RepSignal(NO_SIGNAL, 0.0, 0.0, (0.0, 0.0), 0.0, 0, 0, 0, not_tested=reason)


def rep_signal_test(
    y: np.ndarray,
    p_pair: np.ndarray,
    p_lead: np.ndarray,
    clusters: pd.Series | np.ndarray,
    *,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> RepSignal:
    """Compare the held-out log loss of the pair model (``p_pair``) with the lead-only model's
    (``p_lead``: the same learner without rep columns) on the same pairs (0/1 outcomes ``y``),
    through :func:`paired_log_loss_gain` (lead-only as A, the pair model as B)."""
    paired = paired_log_loss_gain(
        y, p_lead, p_pair, clusters, n_bootstrap=n_bootstrap, level=level, seed=seed
    )
    return RepSignal(
        verdict=SIGNAL if paired.reliable else NO_SIGNAL,
        gain=paired.gain,
        relative_gain=paired.relative_gain,
        interval=paired.interval,
        level=level,
        n_pairs=paired.n_pairs,
        n_clusters=paired.n_clusters,
        n_bootstrap=n_bootstrap,
    )


def _log_loss_terms(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))
