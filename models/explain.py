"""Readable reasons for chosen pairs: the top factors of each win probability.

LightGBM's ``pred_contrib`` splits a pair's log-odds into one term per feature (about 2 ms per
row, so explain the chosen pairs, not every candidate). Each term becomes a phrase with the
change in calibrated win probability it stands for, e.g. "strong record in Retail (+0.12)".
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from features.schemas import Leads, Reps
from models.pair_model import PairModel

_SEGMENT = re.compile(r"rep_(industry|source|product|region)_(outcomes|win_rate)")
_SEGMENT_WORDS = {
    "industry": "record in {value}",
    "source": "record with {value} leads",
    "product": "record selling {value}",
    "region": "record in region {value}",
}
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_REP_FACTORS = {"rep_overall", "rep_tenure_days", "rep_open_load", "rep_recent_volume"}
_REP_FACTORS |= {f"rep_{s}" for s in _SEGMENT_WORDS} | {f"rep_{s}_share" for s in _SEGMENT_WORDS}
_REP_FACTORS |= {f"skill_match_{s}" for s in _SEGMENT_WORDS} | {"region_match"}
_SHARE = re.compile(r"rep_(industry|source|product|region)_share")
_SKILL = re.compile(r"skill_match_(industry|source|product|region)")
MIN_EFFECT = 0.005
"""Smallest change in win probability a factor needs to be listed (less prints as +0.00)."""


def explain(
    model: PairModel, pairs: pd.DataFrame, *, top_k: int = 3, rep_factors_only: bool = False
) -> pd.DataFrame:
    """Top factors of each pair's win probability.

    ``pairs`` is a pair-feature frame (``lead_id``, ``rep_id`` and the model's features). With
    ``rep_factors_only`` only what depends on the rep is listed (why this rep rather than
    another). Returns, on the pairs' index, ``lead_id``, ``rep_id``, ``p_win`` (calibrated),
    ``factors`` (list of up to ``top_k`` phrases, largest effect first; effects under half a
    percentage point are left out) and ``reason`` (the phrases joined by "; "). A factor's effect is the change in calibrated probability if its
    log-odds term were removed.
    """
    p_win, frame = factor_effects(model, pairs, _factor_of)
    if rep_factors_only:
        frame = frame[[c for c in frame.columns if c in _REP_FACTORS]]
    effects, names = frame.to_numpy(), frame.columns.to_numpy()
    factors = []
    for row, pair in enumerate(pairs.to_dict("records")):
        order = np.argsort(-np.abs(effects[row]), kind="stable")[:top_k]
        factors.append(
            [
                f"{_phrase(names[i], effects[row, i], pair)} ({effects[row, i]:+.2f})"
                for i in order
                if abs(effects[row, i]) >= MIN_EFFECT
            ]
        )
    return pd.DataFrame(
        {
            Leads.lead_id: pairs[Leads.lead_id].to_numpy(),
            Reps.rep_id: pairs[Reps.rep_id].to_numpy(),
            "p_win": p_win,
            "factors": factors,
            "reason": ["; ".join(f) for f in factors],
        },
        index=pairs.index,
    )


def factor_effects(
    model: PairModel, pairs: pd.DataFrame, factor_of: Callable[[str], str]
) -> tuple[np.ndarray, pd.DataFrame]:
    """Each pair's calibrated win probability, and what each factor does to it.

    ``factor_of`` names the factor of each model feature (features of one story, e.g. a rate
    and its count, are summed). Returns ``p_win`` (one per pair) and a frame on the pairs'
    index, one column per factor: the change in calibrated probability if the factor's
    LightGBM ``pred_contrib`` log-odds terms were removed (positive: it raises the chance).
    """
    contributions = model.booster_.predict(model.design_matrix(pairs), pred_contrib=True)
    p_win = model.calibrate(contributions.sum(axis=1))
    terms = pd.DataFrame(contributions[:, :-1], columns=model.feature_names_in_, index=pairs.index)
    grouped = terms.T.groupby(factor_of).sum().T
    log_odds = logit(np.clip(p_win, 1e-9, 1 - 1e-9))[:, None]
    effects = p_win[:, None] - expit(log_odds - grouped.to_numpy())
    return p_win, pd.DataFrame(effects, columns=grouped.columns, index=pairs.index)


def _factor_of(feature: str) -> str:
    """Features that tell one story are explained together (a rate and its count)."""
    match = _SEGMENT.fullmatch(feature)
    if match:
        return f"rep_{match.group(1)}"
    if feature in ("rep_outcomes", "rep_win_rate"):
        return "rep_overall"
    return feature


def _phrase(factor: str, effect: float, pair: dict) -> str:
    good = effect > 0
    if factor.startswith("rep_") and factor[4:] in _SEGMENT_WORDS:
        segment = factor[4:]
        value = pair.get(segment)
        shown = "unknown" if pd.isna(value) else str(value)
        return ("strong " if good else "weak ") + _SEGMENT_WORDS[segment].format(value=shown)
    if factor == "rep_overall":
        return "high overall win rate" if good else "low overall win rate"
    if factor == "rep_tenure_days":
        days = pair.get(factor)
        if pd.isna(days):
            return "unknown tenure"
        if days < 180:
            return f"new rep ({days:.0f} days)"
        if days < 730:
            return f"{days / 30.44:.0f} months' tenure"
        return f"{days / 365.25:.1f} years' tenure"
    if factor == "rep_open_load":
        return f"{'light' if good else 'heavy'} open load ({pair.get(factor):.0f} leads)"
    if factor == "rep_recent_volume":
        return f"{pair.get(factor):.0f} leads in recent weeks"
    share = _SHARE.fullmatch(factor)
    if share:
        value = pair.get(share.group(1))
        shown = "unknown" if pd.isna(value) else str(value)
        return f"{pair.get(factor):.0%} of the rep's leads so far in {shown}"
    skill = _SKILL.fullmatch(factor)
    if skill:
        value = pair.get(skill.group(1))
        shown = "unknown" if pd.isna(value) else str(value)
        match = pair.get(factor)
        if pd.isna(match):
            return "the rep's skills then are not known"
        return f"{shown} {'is' if match == 1 else 'is not'} among the rep's skills"
    if factor == "region_match":
        match = pair.get(factor)
        if pd.isna(match):
            return "the rep's region then is not known"
        return "same region" if match == 1 else "different region"
    value = pair.get(factor)
    if factor == "created_weekday" and not pd.isna(value):
        return f"created on a {_WEEKDAYS[int(value)]}"
    if factor == "created_hour" and not pd.isna(value):
        return f"created at {int(value):02d}h"
    if factor == "lead_age_days":
        return f"lead {value:.0f} days old"
    label = factor.removeprefix("x_").replace("_", " ")
    if pd.isna(value):
        return f"{label} unknown"
    if isinstance(value, float):
        return f"{label} {value:,.0f}" if abs(value) >= 10 else f"{label} {value:.2g}"
    return f"{label} {value}"
