"""The ground truth: the true and the knowable win probability of a (lead, rep, time), open loads.

True logit of lead l assigned to rep r at time t while r holds `load` open leads:

    base_logit + observed_l + latent_l                        (lead quality)
    + skill_r
    + (industry_match * [industry_l in specialities_r]
       + product_match  * [product_l in specialities_r]) * max(0, 1 + match_size_slope * z_l)
    + region_match   * [region_l == region_r]
    - ramp_penalty * max(0, 1 - tenure_r(t) / ramp_days)      (new reps are weaker)
    - overload_penalty * max(0, load / comfort_r - 1)         (too many open leads)

where z_l is the lead's log company size in standard deviations from the typical account.

The knowable probability replaces latent_l by its conditional distribution given the visible
columns (a Gaussian posterior, since x_score is quality + Gaussian noise) and averages the
logistic over it with a fixed Gauss-Hermite rule: the best any model of the lead columns can do.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.special import expit

from simulation.clock import DAY_NS
from simulation.leads import LOG_SIZE_CENTER, LOG_SIZE_SD, SCORE_CENTER, SCORE_SCALE, LeadTruth
from simulation.reps import RepTruth
from simulation.scenarios import Scenario

_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite.hermgauss(20)
_CHUNK = 1 << 17


def rep_terms(
    scenario: Scenario,
    reps: RepTruth,
    leads: LeadTruth,
    lead_pos: np.ndarray,
    rep_pos: np.ndarray,
    at_ns: np.ndarray,
    open_load: np.ndarray,
) -> np.ndarray:
    """Rep-dependent part of the true logit for each pair (identically 0 in a null world)."""
    product = leads.product[lead_pos]
    product_match = reps.product_spec[rep_pos, np.maximum(product, 0)] & (product >= 0)
    industry_match = reps.industry_spec[rep_pos, leads.industry[lead_pos]]
    region_match = reps.region[rep_pos] == leads.region[lead_pos]
    tenure_days = (at_ns - reps.hire_ns[rep_pos]) / DAY_NS
    ramp = np.clip(1 - tenure_days / scenario.ramp_days, 0.0, 1.0)
    overload = np.maximum(open_load / reps.comfort[rep_pos] - 1, 0.0)
    by_size = 1.0
    if scenario.match_size_slope != 0:
        size_z = (np.log(leads.company_size[lead_pos]) - LOG_SIZE_CENTER) / LOG_SIZE_SD
        by_size = np.maximum(0.0, 1 + scenario.match_size_slope * size_z)
    return (
        reps.skill[rep_pos]
        + scenario.industry_match * industry_match * by_size
        + scenario.product_match * product_match * by_size
        + scenario.region_match * region_match
        - scenario.ramp_penalty * ramp
        - scenario.overload_penalty * overload
    )


def true_probability(
    scenario: Scenario,
    reps: RepTruth,
    leads: LeadTruth,
    lead_pos: np.ndarray,
    rep_pos: np.ndarray,
    at_ns: np.ndarray,
    open_load: np.ndarray,
) -> np.ndarray:
    """P(win) of each pair given everything, latent lead quality included."""
    terms = rep_terms(scenario, reps, leads, lead_pos, rep_pos, at_ns, open_load)
    return expit(scenario.base_logit + leads.observed[lead_pos] + leads.latent[lead_pos] + terms)


def knowable_quality(
    scenario: Scenario, leads: LeadTruth, lead_pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of a lead's quality given its visible columns.

    latent ~ N(0, account_sd^2 + lead_noise_sd^2) and the score shows latent + N(0, score_noise_sd^2)
    on top of the observed part, so latent | columns is Gaussian with shrinkage k = prior / (prior
    + noise variance). The score is used as written (rounded to 0.1, i.e. 0.007 on the logit).
    """
    prior = scenario.account_sd**2 + scenario.lead_noise_sd**2
    noise = scenario.score_noise_sd**2
    shrink = prior / (prior + noise) if prior + noise > 0 else 0.0
    observed = leads.observed[lead_pos]
    signal = (leads.score[lead_pos] - SCORE_CENTER) / SCORE_SCALE - observed
    mean = observed + shrink * signal
    return mean, np.full(len(mean), np.sqrt((1 - shrink) * prior))


def knowable_probability(
    scenario: Scenario,
    reps: RepTruth,
    leads: LeadTruth,
    lead_pos: np.ndarray,
    rep_pos: np.ndarray,
    at_ns: np.ndarray,
    open_load: np.ndarray,
) -> np.ndarray:
    """E[true P(win) | visible lead columns, rep, time, load], by 20-point Gauss-Hermite."""
    terms = rep_terms(scenario, reps, leads, lead_pos, rep_pos, at_ns, open_load)
    mean, sd = knowable_quality(scenario, leads, lead_pos)
    centre = scenario.base_logit + mean + terms
    spread = np.sqrt(2.0) * sd
    out = np.empty(len(centre))
    for lo in range(0, len(centre), _CHUNK):
        hi = lo + _CHUNK
        grid = centre[lo:hi, None] + spread[lo:hi, None] * _HERMITE_NODES[None, :]
        out[lo:hi] = expit(grid) @ _HERMITE_WEIGHTS / np.sqrt(np.pi)
    return out


@dataclasses.dataclass(frozen=True)
class LoadIndex:
    """Open leads per rep at any time, from the latent (uncensored) history.

    A lead counts as open for its rep at time t when assigned_at < t and it closes after t
    (closed_at > t), so a lead assigned exactly at t does not count itself. Keys are
    rep_pos << 40 | milliseconds since `origin_ms` (34 years of range), sorted; `*_start[r]` is
    where rep r's keys begin.
    """

    assign_keys: np.ndarray
    close_keys: np.ndarray
    assign_start: np.ndarray
    close_start: np.ndarray
    origin_ms: int

    @classmethod
    def build(
        cls,
        n_reps: int,
        rep_pos: np.ndarray,
        assigned_ns: np.ndarray,
        close_ns: np.ndarray,
        origin_ns: int,
    ) -> LoadIndex:
        origin_ms = origin_ns // 1_000_000
        assign_keys = np.sort(_key(rep_pos, assigned_ns // 1_000_000 - origin_ms))
        close_keys = np.sort(_key(rep_pos, close_ns // 1_000_000 - origin_ms))
        firsts = _key(np.arange(n_reps), 0)
        return cls(
            assign_keys=assign_keys,
            close_keys=close_keys,
            assign_start=np.searchsorted(assign_keys, firsts),
            close_start=np.searchsorted(close_keys, firsts),
            origin_ms=origin_ms,
        )

    def count(self, rep_pos: np.ndarray, at_ns: np.ndarray) -> np.ndarray:
        """Open leads held by rep_pos[i] at at_ns[i] (int64 array)."""
        # History times are whole seconds: "assigned < t" compares with t rounded up to the
        # millisecond, "closed <= t" with t rounded down.
        up = -(-at_ns // 1_000_000) - self.origin_ms
        down = at_ns // 1_000_000 - self.origin_ms
        assigned = np.searchsorted(self.assign_keys, _key(rep_pos, up), side="left")
        closed = np.searchsorted(self.close_keys, _key(rep_pos, down), side="right")
        return (assigned - self.assign_start[rep_pos]) - (closed - self.close_start[rep_pos])


def _key(rep_pos: np.ndarray, offset_ms: np.ndarray | int) -> np.ndarray:
    clipped = np.clip(offset_ms, 0, (1 << 40) - 1)
    return (np.asarray(rep_pos, dtype=np.int64) << 40) | clipped
