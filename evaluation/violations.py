"""Which limits a policy's run broke: hard ones (placements beyond a rep's capacity) and soft
ones (fairness constraints outside their limits), each soft one split into what no assignment
of the run's leads could have avoided and what the policy is answerable for."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.schemas import Reps
from matching.config import FairnessConstraints

SOFT_VIOLATIONS = pd.DataFrame(
    columns=["constraint", Reps.rep_id, "size", "unit", "unavoidable", "avoidable"]
).astype({"size": float, "unavoidable": float, "avoidable": bool})
"""One run's soft violations when there are none (the columns :func:`out_of_reach` returns)."""
# A violation no larger than its unavoidable part (up to rounding) is out of reach, not a miss.
_REACH_TOLERANCE = 1e-6


def out_of_reach(
    violations: pd.DataFrame,
    per_rep: pd.DataFrame,
    worth: np.ndarray,
    top_tier: np.ndarray,
    fairness: FairnessConstraints,
) -> pd.DataFrame:
    """``violations`` (constraint, rep_id, size, unit: one run's soft violations) with
    ``unavoidable``, the part of each size that no assignment of the run's leads within the
    reps' capacities could avoid, and ``avoidable`` (size exceeds it).

    ``per_rep``: the run's :attr:`matching.FairnessReport.per_rep` (working, capacity,
    value_today, window_value, fair_share, top_tier_today, window_top_tier, ramp_up; the window
    as assigned); ``worth``: (n,) value(l) * b(l) of each of the run's leads, placed or not;
    ``top_tier``: (n,) bool, tier A. Bounds are taken against the window totals as assigned,
    ignoring eligibility rules, so ``unavoidable`` is a lower bound: a rep below its value
    floor could at most add its capacity's worth of the run's most valuable leads; one above
    its value ceiling or top-tier cap could at most receive nothing today. The ramping reps
    could at most add, within their capacity, the run's least valuable tier-A leads that fit
    under their value ceilings: a quota met only by taking them above the value band is out
    of reach too, since the band would then be missed instead (it happens when the ramping
    reps hold a small share of the capacity; see :class:`matching.config.NewRepQuota`).
    """
    working = per_rep.loc[per_rep["working"].to_numpy(dtype=bool)]
    value, top = working["window_value"], working["window_top_tier"]
    value_before = (value - working["value_today"]).to_numpy(dtype=float)
    top_before = (top - working["top_tier_today"]).to_numpy(dtype=float)
    capacity = working["capacity"].to_numpy(dtype=np.int64)
    fair = working["fair_share"].to_numpy(dtype=float)
    ramp = working["ramp_up"].to_numpy(dtype=bool)
    band = fairness.value_share.band
    ceiling = (
        (1 + band) * fair * value.sum()
        if fairness.value_share.enabled
        else np.full(len(fair), np.inf)
    )
    # the most value k leads of the run can add: the k most valuable ones
    best = np.concatenate([[0.0], np.cumsum(np.sort(worth)[::-1])])
    most_value = value_before + best[np.minimum(capacity, len(worth))]
    rep_ids = working[Reps.rep_id].astype(str).to_numpy()
    per_rep_bound = {
        "value_share_min": (1 - band) * fair * value.sum() - most_value,
        "value_share_max": value_before - ceiling,
        "top_tier_max": top_before - fairness.top_tier_cap.max_share * top.sum(),
    }
    bounds = {
        (name, rep_id): max(0.0, float(x))
        for name, values in per_rep_bound.items()
        for rep_id, x in zip(rep_ids, values, strict=True)
    }
    # the ramping reps' room under their ceilings, pooled (an upper bound on any split)
    room = np.maximum(ceiling[ramp] - value_before[ramp], 0.0).sum()
    cheapest = np.cumsum(np.sort(worth[np.asarray(top_tier, dtype=bool)]))
    fits = int(np.searchsorted(cheapest, room * (1 + 1e-12), side="right"))
    ramp_most = top_before[ramp].sum() + min(int(capacity[ramp].sum()), fits)
    quota = fairness.new_rep_quota.min_share * top.sum() - ramp_most
    unavoidable = [
        max(0.0, float(quota)) if name == "new_rep_quota" else bounds.get((name, str(rep)), 0.0)
        for name, rep in zip(violations["constraint"], violations[Reps.rep_id], strict=True)
    ]
    size = violations["size"].to_numpy(dtype=float)
    out = violations.assign(size=size, unavoidable=np.minimum(unavoidable, size))
    return out.assign(avoidable=size > out["unavoidable"].to_numpy() + _REACH_TOLERANCE)


def hard_violations(rep_pos: np.ndarray, capacity: np.ndarray) -> int:
    """Placements beyond a rep's capacity (every placement to a rep without any counts):
    ``rep_pos`` the rep of each placement, ``capacity`` per rep (all reps)."""
    counts = np.bincount(rep_pos, minlength=len(capacity))
    return int(np.maximum(counts - capacity, 0).sum())
