"""The policies a replay compares, and what each carries from one run to the next.

``round_robin``, ``weighted_round_robin`` (by capacity) and ``greedy`` (each lead, in arrival
order, to the rep the model rates best who has room) are the baselines of
:func:`matching.match`; ``leadmatch_no_fairness`` and ``leadmatch`` are the optimiser on the
model's probabilities, without and with the fairness constraints (without a reliable rep signal
uplift is zero and leadmatch only balances); ``oracle`` is the same optimiser, with fairness,
fed the simulator's true probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from matching.config import MatchingConfig
from matching.fairness import RollingWindow

POLICIES = (
    "round_robin",
    "weighted_round_robin",
    "greedy",
    "leadmatch_no_fairness",
    "leadmatch",
    "oracle",
)
"""The policies of ``backtest.csv``, in its row order."""
BASE = "round_robin"
"""The policy every lift is measured against."""
ORACLE_NO_FAIRNESS = "oracle_no_fairness"
"""The oracle without fairness, replayed for the oracle's price of fairness."""
CURVE_BANDS = (0.05, 0.1, 0.2, 0.4)
"""Value-share band widths of the fairness curve (besides the configured one and none)."""
BAND_PREFIX = "leadmatch_band_"
"""Names of leadmatch's replays at other value-share bands start with this (see
:func:`band_policy`)."""
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class ReplayPolicy:
    """How one replayed policy chooses: the matching ``policy`` (round_robin,
    weighted_round_robin, greedy, no_fairness or leadmatch) and its matching config; the
    probabilities it is fed (``scores``: "model" under its own open loads, "shared" the model's
    at the history's loads, "truth" the simulator's); whether rep-specific uplift may drive it
    (``rep_signal``)."""

    policy: str
    matching: MatchingConfig
    scores: Literal["model", "shared", "truth"] = "model"
    rep_signal: bool = True


def replay_policies(
    matching: MatchingConfig, rep_signal: bool, bands: tuple[float, ...] = CURVE_BANDS
) -> dict[str, ReplayPolicy]:
    """The replayed policies: :data:`POLICIES`, the oracle without fairness (for its price of
    fairness) and leadmatch with each value-share band of ``bands`` (the fairness curve).
    ``rep_signal`` is the trained model's verdict; the greedy baseline ignores it. The price of
    fairness comes from the replays, so no policy solves a second time for it."""
    matching = matching.model_copy(update={"price_of_fairness": False})
    policies = {
        "round_robin": ReplayPolicy("round_robin", matching, scores="shared"),
        "weighted_round_robin": ReplayPolicy("weighted_round_robin", matching, scores="shared"),
        "greedy": ReplayPolicy("greedy", matching),
        "leadmatch_no_fairness": ReplayPolicy("no_fairness", matching, rep_signal=rep_signal),
        "leadmatch": ReplayPolicy("leadmatch", matching, rep_signal=rep_signal),
        "oracle": ReplayPolicy("leadmatch", matching, scores="truth"),
        ORACLE_NO_FAIRNESS: ReplayPolicy("no_fairness", matching, scores="truth"),
    }
    for band in sorted(set(bands) - {matching.fairness.value_share.band}):
        value_share = matching.fairness.value_share.model_copy(update={"band": band})
        fairness = matching.fairness.model_copy(update={"value_share": value_share})
        banded = matching.model_copy(update={"fairness": fairness})
        policies[band_policy(band)] = ReplayPolicy("leadmatch", banded, rep_signal=rep_signal)
    return policies


def band_policy(band: float) -> str:
    """Name of the leadmatch replay with value-share band ``band``."""
    return f"{BAND_PREFIX}{band:g}"


@dataclass(frozen=True)
class OpenSurvival:
    """Share of assigned leads still open ``age`` days after assignment, from the history.

    ``days``: sorted open durations (days from assignment to close) of the history's leads.
    """

    days: np.ndarray

    @classmethod
    def of(cls, history_truth: pd.DataFrame) -> OpenSurvival:
        """From ``CrmWorld.history_truth()`` (columns assigned_at, closes_at)."""
        open_days = (history_truth["closes_at"] - history_truth["assigned_at"]) / DAY
        return cls(np.sort(open_days.to_numpy(dtype=float)))

    def __call__(self, age_days: float) -> float:
        if len(self.days) == 0:
            return 0.0
        return 1.0 - np.searchsorted(self.days, age_days, side="right") / len(self.days)


def whole_leads(expected_load: np.ndarray) -> np.ndarray:
    """Expected open leads counted in whole leads, as the open-lead cap counts them: an expected
    7.2 open leads keep a rep with a cap of 10 to 2 more (a rounding error above a whole number
    is not one more lead)."""
    return np.ceil(np.asarray(expected_load, dtype=float) - 1e-9).astype(np.int64)


@dataclass
class PolicyState:
    """What one policy carries from run to run: the leads it has not placed yet (``pending``),
    how many leads it placed per rep on each run (``placed``: for open load and recent volume)
    and its fairness ``window`` (what each rep received on each run: worth, tier-A leads,
    capacity)."""

    pending: dict[str, None]
    window: RollingWindow
    placed: list[tuple[pd.Timestamp, np.ndarray]] = field(default_factory=list)

    def open_load(self, at: pd.Timestamp, survival: OpenSurvival, n_reps: int) -> np.ndarray:
        """Expected leads of this policy still open per rep at ``at`` (float, all reps)."""
        load = np.zeros(n_reps)
        for when, counts in self.placed:
            load += survival((at - when) / DAY) * counts
        return load

    def recent(self, at: pd.Timestamp, days: int, n_reps: int) -> np.ndarray:
        """Leads this policy placed per rep in the ``days`` before ``at``."""
        counts = np.zeros(n_reps)
        for when, placed in self.placed:
            if at - when <= pd.Timedelta(days=days):
                counts += placed
        return counts
