"""The nightly run's steps around the matching, as plain functions of the CRM state.

:func:`crm_window` builds the fairness window from what the CRM shows reps were given (never
from earlier outputs); :func:`settle_reclaims` says what becomes of the leads taken from their
rep once the matching has run. The flow (``pipelines.recommend``) only wires them to the
champion model, Prefect and MLflow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from features.daily import (
    MONDAY_TO_FRIDAY,
    LeadPool,
    given_in_window,
    rep_day,
    working_days_before,
)
from features.schemas import CrmData, Leads, Reps
from matching.config import MatchingConfig
from matching.engine import MatchResult, candidate_pairs
from matching.explain import ENGLISH
from matching.fairness import RollingWindow, lead_worth

PairScores = Callable[[pd.DataFrame, pd.DataFrame, pd.Timestamp], np.ndarray]
"""``p_win(leads, candidates, at)``: P(win) of each candidate pair (lead_id, rep_id) of
``leads``, scored as of ``at``."""


def crm_window(
    state: CrmData,
    day: pd.Timestamp,
    config: MatchingConfig,
    p_win: PairScores,
    *,
    days: int,
    working_days: tuple[str, ...] = MONDAY_TO_FRIDAY,
) -> RollingWindow:
    """What each rep was given over the ``days`` days before ``day``, from the CRM itself.

    Every hand-over the CRM ``state`` records in the window counts for the rep who was given
    the lead (:func:`features.daily.given_in_window`), worth what the matching would have
    counted it on its day: value(l) * b(l), with b from ``p_win`` over the lead's eligible reps
    of that day (:func:`matching.fairness.lead_worth`), tiers among that day's hand-overs.
    Capacity is the reps' capacity on each of the team's ``working_days`` of the window
    (availability included). ``p_win`` is called once per day that has hand-overs.
    """
    given = given_in_window(state, day, days)
    worth = []
    for when, group in given.groupby(given["assigned_at"].dt.normalize(), sort=True):
        leads = state.leads.loc[state.leads[Leads.lead_id].isin(group[Leads.lead_id])]
        reps = rep_day(state, when)
        candidates = candidate_pairs(leads, reps, config)
        scored = candidates.assign(p_win=p_win(leads, candidates, when))
        worth.append(group.merge(lead_worth(scored, leads, reps, config), on=Leads.lead_id))
    capacity = [
        rep_day(state, when)[[Reps.rep_id, "capacity"]].assign(day=when)
        for when in working_days_before(day, days, working_days)
    ]
    if not worth and not capacity:
        return RollingWindow.empty(days)
    given = (
        pd.concat(worth, ignore_index=True)
        if worth
        else pd.DataFrame(columns=["assigned_at", Reps.rep_id, "worth", "top_tier"])
    )
    return RollingWindow.of(
        days,
        given.rename(columns={"assigned_at": "at"}),
        pd.concat(capacity, ignore_index=True)
        if capacity
        else pd.DataFrame(columns=["day", Reps.rep_id, "capacity"]),
    )


def settle_reclaims(result: MatchResult, pool: LeadPool) -> tuple[MatchResult, LeadPool]:
    """What becomes of the leads taken from their rep, once the matching has run.

    A lead reclaimed after the SLA that no other rep took today stays with its rep: action
    "keep", rep_id the current owner, reason_code "keep" with a reminder (never a hold with no
    owner). A lead whose rep left says so in its reason ("rep_left" instead of "reclaimed").
    Returns the result with these rows rewritten and the pool with ``kept`` counted.
    """
    asg = result.assignments
    by_lead = pool.leads.set_index(Leads.lead_id)
    reclaim = asg[Leads.lead_id].map(by_lead["reclaim"]).astype("string")
    previous = asg[Leads.lead_id].map(by_lead["previous_rep_id"]).astype("string")
    waited = asg[Leads.lead_id].map(by_lead["days_without_contact"])
    keep = ((reclaim == "sla") & asg[Reps.rep_id].isna()).to_numpy(dtype=bool, na_value=False)
    left = (reclaim == "rep_left").to_numpy(dtype=bool, na_value=False)
    if not keep.any() and not left.any():
        return result, pool
    asg = asg.copy()
    codes, params, reasons = (asg[c].tolist() for c in ("reason_code", "reason_params", "reason"))
    for k in np.flatnonzero(keep):
        values = {
            Reps.rep_id: str(previous.iloc[k]),
            "days_without_contact": int(waited.iloc[k]),
        }
        codes[k], params[k] = "keep", json.dumps(values, sort_keys=True, ensure_ascii=False)
        reasons[k] = ENGLISH.render(["keep"], values)
    for k in np.flatnonzero(left):
        values = json.loads(params[k])
        values.pop("days_without_contact", None)
        parts = ["rep_left" if c == "reclaimed" else c for c in codes[k].split(";")]
        codes[k], params[k] = (
            ";".join(parts),
            json.dumps(values, sort_keys=True, ensure_ascii=False),
        )
        reasons[k] = ENGLISH.render(parts, values)
    asg["reason_code"], asg["reason_params"], asg["reason"] = codes, params, reasons
    asg["action"] = asg["action"].mask(keep, "keep")
    asg[Reps.rep_id] = asg[Reps.rep_id].mask(keep, previous)
    asg.loc[keep, "binding"] = ""
    return replace(result, assignments=asg), replace(pool, kept=int(keep.sum()))
