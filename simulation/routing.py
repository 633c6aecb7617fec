"""The biased historical routing policy, and what happened to every routed lead.

Routing runs on business days. A lead arriving in business hours (08:00-18:00) of a business
day is routed a few minutes later; other leads wait for the next business morning, as do
leads no rep had capacity for. Each lead goes to one eligible rep (employed, not absent, under
today's capacity and under max_open_leads) drawn from a softmax over

    strength_r * (visible_value_l + 0.5) + policy_region * [region_l == region_r]

divided by policy_temperature, where strength_r combines seniority (log tenure) and skill, and
visible_value_l combines the lead's expected value and x_score. Strong and senior reps
therefore get more leads and better ones, as in real teams; the softmax probability of the chosen
rep is its propensity.

The outcome is drawn from the true probability at the assignment time, with the rep's exact open
load; the first contact and the close follow the rep's habits, within the conversion window.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np

from simulation.clock import (
    CLOSE_HOUR,
    DAY_NS,
    HOUR_NS,
    MISSING,
    OPEN_HOUR,
    YEAR_DAYS,
    is_business_day,
    next_business_day,
    seconds_to_ns,
)
from simulation.leads import SCORE_CENTER, LeadTruth
from simulation.reps import Calendar, RepTruth
from simulation.scenarios import Scenario
from simulation.truth import true_probability

# Scales that make the visible lead value and the rep strength roughly standard normal.
_LOG_VALUE_CENTER = np.log(12_000.0)
_LOG_VALUE_SCALE = 0.65
_SCORE_SCALE = 16.0
_SENIORITY_CENTER = 1.0
_SENIORITY_SCALE = 0.6
_STRENGTH_SCALE = 0.5
_ROUTING_LAG_MEAN_S = 600.0
_MORNING_QUEUE_S = 3600.0
_DAY_BITS = 47


@dataclasses.dataclass(frozen=True)
class History:
    """One entry per historical assignment, in assignment order (latent, uncensored).

    lead, rep: positions; assigned_ns; propensity; open_load: the rep's open leads just before;
    p_win: the true probability the outcome was drawn from; won; contact_ns (MISSING if the rep
    never made contact); close_ns: when the lead is resolved (may lie after the history);
    deal_value (nan unless won). Leads still waiting at the end have no entry.
    """

    lead: np.ndarray
    rep: np.ndarray
    assigned_ns: np.ndarray
    propensity: np.ndarray
    open_load: np.ndarray
    p_win: np.ndarray
    won: np.ndarray
    contact_ns: np.ndarray
    close_ns: np.ndarray
    deal_value: np.ndarray


def visible_value(leads: LeadTruth) -> np.ndarray:
    """What the historical routing sees of a lead's worth: expected value and score, standardised."""
    log_value = (
        np.log(np.maximum(leads.expected_value, 1.0)) - _LOG_VALUE_CENTER
    ) / _LOG_VALUE_SCALE
    return 0.5 * log_value + 0.5 * (leads.score - SCORE_CENTER) / _SCORE_SCALE


def routing_scores(
    scenario: Scenario,
    value: np.ndarray,
    tenure_years: np.ndarray,
    skill_z: np.ndarray,
    region_match: np.ndarray,
) -> np.ndarray:
    """The historical routing's score of each (lead, rep): ``value`` the lead's
    :func:`visible_value`, ``tenure_years`` and ``skill_z`` (skill / scenario.skill_sd) the rep's,
    ``region_match`` (bool) whether they share a region, broadcast against each other. Among a
    lead's eligible reps, a rep is chosen with the softmax of these scores (its propensity)."""
    seniority_z = (np.log1p(tenure_years) - _SENIORITY_CENTER) / _SENIORITY_SCALE
    strength = _STRENGTH_SCALE * (
        scenario.policy_seniority * seniority_z + scenario.policy_skill * skill_z
    )
    scores = strength * (value + 0.5) + scenario.policy_region * region_match
    return scores / scenario.policy_temperature


def first_routing_time(created_ns: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """When the routing first sees each lead: minutes after arrival in business hours, otherwise
    in the next business morning's queue (08:00 to 09:00)."""
    day = created_ns // DAY_NS
    time_of_day = created_ns - day * DAY_NS
    business = is_business_day(day)
    in_hours = (
        business & (time_of_day >= OPEN_HOUR * HOUR_NS) & (time_of_day < CLOSE_HOUR * HOUR_NS)
    )
    early = business & (time_of_day < OPEN_HOUR * HOUR_NS)
    later_day = next_business_day(day, include_today=False)
    routing_day = np.where(
        early, day, np.where(business, later_day, next_business_day(day, include_today=True))
    )
    lag = seconds_to_ns(np.minimum(rng.exponential(_ROUTING_LAG_MEAN_S, len(day)), 7200))
    morning = (
        routing_day * DAY_NS
        + OPEN_HOUR * HOUR_NS
        + seconds_to_ns(rng.uniform(0, _MORNING_QUEUE_S, len(day)))
    )
    return np.where(in_hours, created_ns + lag, morning)


def route_history(
    scenario: Scenario,
    rng: np.random.Generator,
    reps: RepTruth,
    leads: LeadTruth,
    calendar: Calendar,
    first_day: int,
) -> History:
    """Route the history's leads day by day and draw every outcome (see the module docstring)."""
    n_reps = len(reps)
    route_ns = first_routing_time(leads.created_ns, rng)
    order = np.argsort(route_ns, kind="stable")
    route_day = route_ns[order] // DAY_NS
    value = visible_value(leads)
    skill_z = reps.skill / scenario.skill_sd if scenario.skill_sd > 0 else np.zeros(n_reps)
    calendar_pos = {int(d): i for i, d in enumerate(calendar.days)}

    assigned_before = np.zeros(n_reps, dtype=np.int64)
    closed_before = np.zeros(n_reps, dtype=np.int64)
    closes: defaultdict[int, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    backlog = np.empty(0, dtype=np.int64)
    parts: list[dict[str, np.ndarray]] = []
    for day in range(first_day, first_day + scenario.n_days):
        day_ns = day * DAY_NS
        for rep_part, _ in closes.pop(day - 1, []):
            closed_before += np.bincount(rep_part, minlength=n_reps)
        if day not in calendar_pos:
            continue
        arriving = order[
            np.searchsorted(route_day, day) : np.searchsorted(route_day, day, side="right")
        ]
        queue = np.concatenate([backlog, arriving])
        times = np.concatenate(
            [
                day_ns
                + OPEN_HOUR * HOUR_NS
                + seconds_to_ns(rng.uniform(0, _MORNING_QUEUE_S, len(backlog))),
                route_ns[arriving],
            ]
        )
        by_time = np.argsort(times, kind="stable")
        queue, times = queue[by_time], times[by_time]

        slot = calendar_pos[day]
        employed = (reps.hire_ns <= day_ns) & (day_ns < reps.leave_ns)
        remaining = np.where(employed & ~calendar.absent[:, slot], calendar.capacity[:, slot], 0)
        tenure_years = np.maximum(day_ns - reps.hire_ns, 0) / DAY_NS / YEAR_DAYS
        scores = routing_scores(
            scenario,
            value[queue, None],
            tenure_years[None, :],
            skill_z[None, :],
            leads.region[queue, None] == reps.region[None, :],
        )
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        chosen, propensity = _route_day(
            weights, remaining, assigned_before - closed_before, reps.max_open, rng
        )

        placed = chosen >= 0
        backlog = queue[~placed]
        if placed.any():
            part = _resolve(
                scenario,
                rng,
                reps,
                leads,
                queue[placed],
                chosen[placed],
                times[placed],
                propensity[placed],
                day_ns,
                assigned_before,
                closed_before,
                closes.get(day, []),
            )
            parts.append(part)
            assigned_before += np.bincount(part["rep"], minlength=n_reps)
            _file_closes(closes, part["rep"], part["close_ns"], first_day + scenario.n_days)

    history = (
        {key: np.concatenate([p[key] for p in parts]) for key in parts[0]} if parts else _empty()
    )
    return History(**history)


def _route_day(
    weights: np.ndarray,
    remaining: np.ndarray,
    open_at_start: np.ndarray,
    max_open: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a rep for each of the day's leads in order (rows of `weights`); -1 when none is free.

    A rep stays eligible while under today's capacity and, counting the open leads at the start
    of the day plus today's assignments (an upper bound of the exact load), under max_open.
    """
    n = len(weights)
    chosen = np.full(n, -1, dtype=np.int64)
    propensity = np.zeros(n)
    load = open_at_start.astype(np.float64)
    eligible = np.flatnonzero((remaining > 0) & (load < max_open))
    draws = rng.random(n)
    for i in range(n):
        if len(eligible) == 0:
            break
        cumulative = np.cumsum(weights[i, eligible])
        k = int(np.searchsorted(cumulative, draws[i] * cumulative[-1], side="right"))
        k = min(k, len(eligible) - 1)
        rep = eligible[k]
        chosen[i] = rep
        propensity[i] = (cumulative[k] - (cumulative[k - 1] if k else 0.0)) / cumulative[-1]
        remaining[rep] -= 1
        load[rep] += 1
        if remaining[rep] == 0 or load[rep] >= max_open[rep]:
            eligible = np.delete(eligible, k)
    return chosen, propensity


def _resolve(
    scenario: Scenario,
    rng: np.random.Generator,
    reps: RepTruth,
    leads: LeadTruth,
    lead: np.ndarray,
    rep: np.ndarray,
    assigned_ns: np.ndarray,
    propensity: np.ndarray,
    day_ns: int,
    assigned_before: np.ndarray,
    closed_before: np.ndarray,
    closing_today: list[tuple[np.ndarray, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Exact open loads, true probabilities and outcomes of one day's assignments.

    Closes happen at least a day after assignment, so today's closes all come from earlier days
    (`closing_today`) and today's own assignments only add load.
    """
    keys = (rep << _DAY_BITS) | (assigned_ns - day_ns)
    rep_start = rep << _DAY_BITS
    today = np.sort(keys)
    earlier_today = np.searchsorted(today, keys, side="left") - np.searchsorted(
        today, rep_start, side="left"
    )
    closed_today = np.zeros(len(rep), dtype=np.int64)
    if closing_today:
        close_rep = np.concatenate([c[0] for c in closing_today])
        close_ns = np.concatenate([c[1] for c in closing_today])
        close_keys = np.sort((close_rep << _DAY_BITS) | (close_ns - day_ns))
        closed_today = np.searchsorted(close_keys, keys, side="right") - np.searchsorted(
            close_keys, rep_start, side="left"
        )
    open_load = assigned_before[rep] + earlier_today - closed_before[rep] - closed_today
    p_win = true_probability(scenario, reps, leads, lead, rep, assigned_ns, open_load)

    n = len(lead)
    window_days = scenario.conversion_window_days
    won = rng.random(n) < p_win
    prompt = rng.random(n) >= scenario.late_contact_share
    contact_days = np.where(prompt, rng.exponential(reps.contact_days[rep]), rng.uniform(3, 21, n))
    contacted = won | (rng.random(n) < reps.contact_rate[rep])
    after_contact = np.where(won, rng.gamma(2.0, 15.0, n), rng.gamma(1.5, 12.0, n))
    # Leads nobody ever calls are closed as lost when the CRM's stale-lead cleanup finds them.
    gone_cold = rng.uniform(window_days / 6, window_days / 2, n)
    close_days = np.clip(
        np.where(contacted, contact_days + after_contact, gone_cold), 1.0, window_days
    )
    contact_days = np.minimum(contact_days, close_days)
    close_ns = assigned_ns + seconds_to_ns(close_days * 86_400)
    contact_ns = np.where(contacted, assigned_ns + seconds_to_ns(contact_days * 86_400), MISSING)
    deal_noise = rng.lognormal(-(0.25**2) / 2, 0.25, n)
    deal_value = np.where(won, np.round(leads.expected_value[lead] * deal_noise, 2), np.nan)
    return {
        "lead": lead,
        "rep": rep,
        "assigned_ns": assigned_ns,
        "propensity": propensity,
        "open_load": open_load,
        "p_win": p_win,
        "won": won,
        "contact_ns": contact_ns,
        "close_ns": close_ns,
        "deal_value": deal_value,
    }


def _file_closes(
    closes: defaultdict[int, list[tuple[np.ndarray, np.ndarray]]],
    rep: np.ndarray,
    close_ns: np.ndarray,
    end_day: int,
) -> None:
    """Bucket close events by day (only days inside the history matter for the routing)."""
    close_day = close_ns // DAY_NS
    keep = close_day < end_day
    rep, close_ns, close_day = rep[keep], close_ns[keep], close_day[keep]
    order = np.argsort(close_day, kind="stable")
    if len(order) == 0:
        return
    days, starts = np.unique(close_day[order], return_index=True)
    for day, lo, hi in zip(days, starts, [*starts[1:], len(order)], strict=True):
        rows = order[lo:hi]
        closes[int(day)].append((rep[rows], close_ns[rows]))


def _empty() -> dict[str, np.ndarray]:
    ints = np.empty(0, dtype=np.int64)
    floats = np.empty(0)
    return {
        "lead": ints,
        "rep": ints,
        "assigned_ns": ints,
        "propensity": floats,
        "open_load": ints,
        "p_win": floats,
        "won": np.empty(0, dtype=bool),
        "contact_ns": ints,
        "close_ns": ints,
        "deal_value": floats,
    }
