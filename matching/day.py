"""One day's matching inputs, validated and encoded as arrays (the engine's working form).

:func:`prepare` validates the frames, orders leads by arrival and reps by id, checks what
spans tables (unknown leads or reps, pins to ineligible reps), and computes per pair the
eligibility cause and the uplift, and per lead the value, baseline b(l) and tier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.schemas import Leads, Reps
from matching.config import MatchingConfig, Objective
from matching.eligibility import Cause, Eligibility, effective_capacity
from matching.schemas import (
    AccountOwners,
    Candidates,
    Exclusions,
    MatchLeads,
    Pins,
    RepHistory,
    RepsToday,
    validated,
)


@dataclass(frozen=True)
class Day:
    """The prepared day. Leads are in arrival order, reps sorted by rep_id; pairs are the
    candidate pairs sorted by (lead, rep).

    Attributes:
        leads, reps: the validated frames in that order; lead_ids (n,), rep_ids (R,).
        capacity: (R,) effective capacity today; ramp: (R,) tenure below the ramp-up period.
        history_value, history_top_tier, history_capacity: (R,) the window's previous days.
        lead, rep, p: (J,) pair positions and win probabilities; cause: (J,) eligibility
            :class:`Cause` (0 = eligible).
        value: (n,) value(l) (1 for conversions); baseline: (n,) b(l), nan without candidates;
        lead_value: (n,) value * baseline (0 where unknown), what fairness measures;
        tier: (n,) "A"/"B"/"C", None without candidates.
        uplift: (J,) value * (p - b) (0 without rep signal); score: (J,) the objective's worth
            of the pair (value * p, or value * b without rep signal).
        rep_signal: whether rep differences are trusted; notes: plain-language remarks.
    """

    config: MatchingConfig
    leads: pd.DataFrame
    reps: pd.DataFrame
    lead_ids: np.ndarray
    rep_ids: np.ndarray
    capacity: np.ndarray
    ramp: np.ndarray
    history_value: np.ndarray
    history_top_tier: np.ndarray
    history_capacity: np.ndarray
    lead: np.ndarray
    rep: np.ndarray
    p: np.ndarray
    cause: np.ndarray
    value: np.ndarray
    baseline: np.ndarray
    lead_value: np.ndarray
    tier: np.ndarray
    uplift: np.ndarray
    score: np.ndarray
    rep_signal: bool
    eligibility: Eligibility
    notes: tuple[str, ...]

    @property
    def n_leads(self) -> int:
        return len(self.lead_ids)

    @property
    def n_reps(self) -> int:
        return len(self.rep_ids)

    @property
    def eligible(self) -> np.ndarray:
        """(J,) pairs that pass every hard rule (capacity aside)."""
        return self.cause == Cause.ELIGIBLE

    @property
    def assignable(self) -> np.ndarray:
        """(J,) eligible pairs whose rep has capacity today."""
        return self.eligible & (self.capacity[self.rep] > 0)

    @property
    def lead_start(self) -> np.ndarray:
        return np.searchsorted(self.lead, np.arange(self.n_leads + 1))


def prepare(
    candidates: pd.DataFrame,
    leads: pd.DataFrame,
    reps_today: pd.DataFrame,
    config: MatchingConfig,
    *,
    history: pd.DataFrame | None = None,
    pins: pd.DataFrame | None = None,
    exclusions: pd.DataFrame | None = None,
    account_owners: pd.DataFrame | None = None,
    rep_signal: bool = True,
) -> Day:
    """Validate and encode one day (see :func:`matching.match` for the frames)."""
    if not isinstance(config, MatchingConfig):
        raise ValueError(f"config must be a MatchingConfig, got {type(config).__name__}")
    candidates = validated(Candidates, candidates, "candidates")
    leads = _in_arrival_order(validated(MatchLeads, leads, "leads"))
    reps = validated(RepsToday, reps_today, "reps_today").sort_values(Reps.rep_id, kind="stable")
    reps = reps.reset_index(drop=True)
    pins = validated(Pins, pins, "pins") if pins is not None else None
    exclusions = validated(Exclusions, exclusions, "exclusions") if exclusions is not None else None
    if account_owners is not None:
        account_owners = validated(AccountOwners, account_owners, "account_owners")
    lead_index, rep_index = pd.Index(leads[Leads.lead_id]), pd.Index(reps[Reps.rep_id])
    lead = _positions(lead_index, candidates[Leads.lead_id])
    rep = _positions(rep_index, candidates[Reps.rep_id])
    _check_known(candidates, lead, rep, "candidates")
    if pins is not None:
        pinned = [
            _positions(index, pins[c])
            for index, c in [(lead_index, Leads.lead_id), (rep_index, Reps.rep_id)]
        ]
        _check_known(pins, *pinned, "pins")
    notes: list[str] = []

    eligibility = Eligibility.build(
        leads,
        reps,
        config.eligibility,
        rep_index=rep_index,
        pins=pins,
        exclusions=exclusions,
        account_owners=account_owners,
    )
    key = lead.astype(np.int64) * max(len(reps), 1) + rep
    order = np.argsort(key, kind="stable") if np.any(key[1:] < key[:-1]) else slice(None)
    lead, rep = lead[order], rep[order]
    p = candidates["p_win"].to_numpy(dtype=float)[order]
    cause = eligibility.causes(lead, rep)
    if pins is not None:
        _check_pins(pins, eligibility, lead_index, rep_index, lead, rep)

    capacity = effective_capacity(reps)
    value = lead_values(leads, config.objective, notes)
    baseline = _baselines(lead, rep, p, cause, capacity, len(leads), config)
    lead_value = np.nan_to_num(value * baseline)
    tier = tiers(value * baseline, config.tier_quantiles)
    if rep_signal:
        uplift = value[lead] * (p - baseline[lead])
        score = value[lead] * p
    else:
        notes.append(
            "no reliable rep signal: uplift is zero and the matching only balances lead value "
            "and load"
        )
        uplift = np.zeros(len(p))
        score = lead_value[lead]
    hv, ht, hc = _history(history, rep_index)
    ramp = reps["tenure_days"].to_numpy(dtype=float) < config.fairness.new_rep_quota.ramp_days
    return Day(
        config=config,
        leads=leads,
        reps=reps,
        lead_ids=leads[Leads.lead_id].to_numpy(dtype=object),
        rep_ids=reps[Reps.rep_id].to_numpy(dtype=object),
        capacity=capacity,
        ramp=ramp,
        history_value=hv,
        history_top_tier=ht,
        history_capacity=hc,
        lead=lead,
        rep=rep,
        p=p,
        cause=cause,
        value=value,
        baseline=baseline,
        lead_value=lead_value,
        tier=tier,
        uplift=uplift,
        score=score,
        rep_signal=rep_signal,
        eligibility=eligibility,
        notes=tuple(notes),
    )


def _in_arrival_order(leads: pd.DataFrame) -> pd.DataFrame:
    keys = ["created_at", Leads.lead_id] if "created_at" in leads else [Leads.lead_id]
    return leads.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)


def _positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Position of each value in ``index`` (-1 = not there), looking up each distinct value
    once (candidates repeat every lead id once per rep)."""
    codes, uniques = pd.factorize(values)
    found = index.get_indexer(uniques)
    return np.where(codes >= 0, found[codes], -1)


def _check_known(frame: pd.DataFrame, lead: np.ndarray, rep: np.ndarray, name: str) -> None:
    """``lead`` and ``rep``: the positions of the frame's ids (-1 = unknown)."""
    for column, codes, what in [(Leads.lead_id, lead, "leads"), (Reps.rep_id, rep, "reps_today")]:
        unknown = frame.loc[codes < 0, column].unique()
        if len(unknown):
            shown = ", ".join(map(str, unknown[:5])) + (
                f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            )
            raise ValueError(f"{name}: {column} not in {what}: {shown}")


def _check_pins(
    pins: pd.DataFrame,
    eligibility: Eligibility,
    leads: pd.Index,
    reps: pd.Index,
    lead: np.ndarray,
    rep: np.ndarray,
) -> None:
    """A pin must name a rep who may take the lead today and whose pair was scored."""
    li = leads.get_indexer(pins[Leads.lead_id])
    ri = reps.get_indexer(pins[Reps.rep_id])
    cause = eligibility.causes(li, ri, with_pins=False)
    for k in np.flatnonzero(cause != Cause.ELIGIBLE):
        raise ValueError(
            f"pins: lead {pins['lead_id'].iloc[k]} is pinned to rep {pins['rep_id'].iloc[k]}, "
            f"who is not eligible for it today ({Cause(cause[k]).label}); remove the pin or "
            "switch the rule off"
        )
    scored = np.isin(li * max(len(reps), 1) + ri, lead * max(len(reps), 1) + rep)
    for k in np.flatnonzero(~scored):
        raise ValueError(
            f"pins: lead {pins['lead_id'].iloc[k]} is pinned to rep {pins['rep_id'].iloc[k]}, "
            "but candidates has no p_win for that pair"
        )


def lead_values(
    leads: pd.DataFrame, objective: Objective, notes: list[str] | None = None
) -> np.ndarray:
    """(n,) value(l) of each row of ``leads`` under the matching ``objective``: 1 for
    conversions, else expected_value with missing values filled by the median of the known ones
    (said in ``notes`` when given). The one definition of what a lead is worth: the matching,
    the plan's figures and the backtest's all take it from here."""
    if objective == "conversions":
        return np.ones(len(leads))
    if "expected_value" not in leads:
        raise ValueError("leads: objective 'expected_value' needs an expected_value column")
    value = leads["expected_value"].to_numpy(dtype=float, na_value=np.nan)
    missing = np.isnan(value)
    if missing.all() and len(value):
        raise ValueError("leads: objective 'expected_value' but every expected_value is missing")
    if missing.any():
        median = float(np.median(value[~missing]))
        value = np.where(missing, median, value)
        if notes is not None:
            notes.append(
                f"expected_value missing for {int(missing.sum())} lead(s): used the median "
                f"{median:g}"
            )
    return value


def _baselines(
    lead: np.ndarray,
    rep: np.ndarray,
    p: np.ndarray,
    cause: np.ndarray,
    capacity: np.ndarray,
    n: int,
    config: MatchingConfig,
) -> np.ndarray:
    """b(l): mean p over the lead's eligible reps with capacity (weighted by capacity for
    'capacity_weighted_mean'); falling back to its eligible reps, then to all its pairs."""
    working = capacity[rep] > 0
    first = capacity[rep].astype(float) if config.baseline == "capacity_weighted_mean" else 1.0
    out = np.full(n, np.nan)
    for mask, weight in [
        ((cause == 0) & working, first),
        (cause == 0, 1.0),
        (np.ones(len(p), bool), 1.0),
    ]:
        w = np.where(mask, weight, 0.0)
        total = np.bincount(lead, w, n)
        mean = np.bincount(lead, w * p, n) / np.where(total > 0, total, 1.0)
        fill = np.isnan(out) & (total > 0)
        out[fill] = mean[fill]
    return out


def tiers(base: np.ndarray, quantiles: tuple[float, float]) -> np.ndarray:
    """A/B/C by rank of ``base``, the leads' value * b(l) (ties by position, e.g. arrival):
    the top (1 - A start) share is A, the next (A start - B start) share is B, the rest C;
    ``quantiles`` is ``MatchingConfig.tier_quantiles``. A NaN value gets no tier (None)."""
    tier = np.full(len(base), None, dtype=object)
    known = np.flatnonzero(np.isfinite(base))
    order = known[np.argsort(-base[known], kind="stable")]
    n_a = int(round((1 - quantiles[1]) * len(order)))
    n_b = int(round((1 - quantiles[0]) * len(order)))
    tier[order] = "C"
    tier[order[:n_b]] = "B"
    tier[order[:n_a]] = "A"
    return tier


def _history(
    history: pd.DataFrame | None, reps: pd.Index
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    zeros = np.zeros(len(reps))
    if history is None:
        return zeros, zeros.copy(), zeros.copy()
    history = validated(RepHistory, history, "history")
    at = reps.get_indexer(history[Reps.rep_id])
    known = at >= 0
    out = []
    for column in ("value_received", "top_tier_received", "capacity_days"):
        values = np.zeros(len(reps))
        values[at[known]] = history[column].to_numpy(dtype=float)[known]
        out.append(values)
    return out[0], out[1], out[2]
