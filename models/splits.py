"""Splits by time: never random, and never judged on labels that are not final yet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.timestamps import as_ns


def time_split_masks(pairs: pd.DataFrame, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(earlier, recent) boolean masks over ``pairs`` (columns ``at`` and optionally ``mature``).

    ``recent`` is the most recent ``fraction`` of the pairs whose label is mature (all pairs when
    there is no ``mature`` column); ``earlier`` is every pair assigned before that slice starts.
    Pairs of the same moment stay on one side. Young pairs after the slice start are in neither:
    a label decided early is a biased sample (quick losses close before slow wins), so it must
    not judge or calibrate a model.
    """
    at = as_ns(pairs["at"])
    mature = pairs["mature"].to_numpy(dtype=bool) if "mature" in pairs else np.ones(len(at), bool)
    if not mature.any():
        raise ValueError(
            "no pair has a mature label (assigned at least one conversion window before as_of): "
            "collect a longer history"
        )
    cut = np.quantile(at[mature], 1.0 - fraction)
    recent = mature & (at >= cut)
    earlier = at < cut
    if not earlier.any():
        raise ValueError(
            f"cannot hold out the most recent {fraction:.0%} of the {int(mature.sum())} "
            "mature pairs: no pair is older than that slice"
        )
    return earlier, recent


def time_split(pairs: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) frames of :func:`time_split_masks`: test is the most recent mature slice."""
    earlier, recent = time_split_masks(pairs, fraction)
    return pairs.loc[earlier], pairs.loc[recent]
