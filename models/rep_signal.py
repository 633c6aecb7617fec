"""The rep-signal test: does knowing the rep improve held-out predictions beyond noise?

Later stages read its verdict: without a reliable rep signal, rep-specific uplift must not drive
assignments (matching then only balances value and load, and says so).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

SIGNAL = "signal"
NO_SIGNAL = "no reliable signal"


@dataclass(frozen=True)
class RepSignal:
    """Outcome of :func:`rep_signal_test`.

    ``gain`` is the held-out log loss of the lead-only model minus that of the pair model (nats per
    pair; positive: the rep information helps), ``relative_gain`` the same as a share of the
    lead-only log loss, ``interval`` its bootstrap interval at ``level``. The verdict is
    ``"signal"`` when the whole interval is above zero.
    """

    verdict: Literal["signal", "no reliable signal"]
    gain: float
    relative_gain: float
    interval: tuple[float, float]
    level: float
    n_pairs: int
    n_clusters: int
    n_bootstrap: int

    @property
    def has_signal(self) -> bool:
        """Whether rep-specific uplift may drive assignments."""
        return self.verdict == SIGNAL

    def to_dict(self) -> dict[str, object]:
        """Flat, JSON-ready mapping (the interval as ``interval_low`` / ``interval_high``)."""
        out = asdict(self)
        low, high = out.pop("interval")
        return {**out, "interval_low": low, "interval_high": high}

    def summary(self) -> str:
        """One sentence for logs and reports."""
        low, high = self.interval
        return (
            f"{self.verdict}: rep information changes held-out log loss by {self.gain:+.4f} "
            f"nats per pair ({self.relative_gain:+.2%}), {self.level:.0%} interval "
            f"[{low:+.4f}, {high:+.4f}] over {self.n_clusters} leads"
        )


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
    (``p_lead``) on the same pairs (0/1 outcomes ``y``).

    The interval comes from a cluster bootstrap: ``clusters`` (normally the lead_id) are
    resampled whole, so pairs of the same lead never count as independent evidence.
    """
    y = np.asarray(y, dtype=float)
    p_pair, p_lead = np.asarray(p_pair, dtype=float), np.asarray(p_lead, dtype=float)
    difference = _log_loss_terms(y, p_lead) - _log_loss_terms(y, p_pair)
    codes, uniques = pd.factorize(np.asarray(clusters, dtype=object))
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
    return RepSignal(
        verdict=SIGNAL if low > 0 else NO_SIGNAL,
        gain=gain,
        relative_gain=gain / float(_log_loss_terms(y, p_lead).mean()),
        interval=(float(low), float(high)),
        level=level,
        n_pairs=len(y),
        n_clusters=len(uniques),
        n_bootstrap=n_bootstrap,
    )


def _log_loss_terms(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))
