"""Sales reps (latent skill, specialities, tenure, capacity) and their availability calendar."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from features.schemas import Reps
from simulation.clock import DAY_NS, YEAR_DAYS, is_business_day
from simulation.leads import INDUSTRIES, INDUSTRY_P, PRODUCTS, REGION_P, REGIONS
from simulation.scenarios import Scenario

FIRST_NAMES = np.array(
    [
        "Ana",
        "Ben",
        "Chloe",
        "David",
        "Elena",
        "Farid",
        "Grace",
        "Hugo",
        "Ines",
        "Jonas",
        "Kenji",
        "Lea",
        "Malik",
        "Nora",
        "Omar",
        "Priya",
        "Quentin",
        "Rosa",
        "Sven",
        "Tara",
        "Uma",
        "Victor",
        "Wei",
        "Yara",
    ],
    dtype=object,
)
LAST_NAMES = np.array(
    [
        "Alvarez",
        "Brown",
        "Chen",
        "Dubois",
        "Eriksen",
        "Fischer",
        "Garcia",
        "Haddad",
        "Ivanova",
        "Jensen",
        "Kowalski",
        "Li",
        "Moreau",
        "Nakamura",
        "Okafor",
        "Patel",
        "Rossi",
        "Schmidt",
        "Tanaka",
        "Wang",
    ],
    dtype=object,
)
TEAM_SIZE = 8
STAYED_NS = np.iinfo(np.int64).max
"""Leave time of a rep who is still with the company."""


@dataclasses.dataclass(frozen=True)
class RepTruth:
    """Reps by position: visible attributes and the latent ones behind the true win probability.

    region: region code; hire_ns / leave_ns: employment (leave_ns = STAYED_NS if still active);
    skill: latent logit bonus; industry_spec (n_reps x n_industries) and product_spec
    (n_reps x n_products): specialities, the tags in `skills`; daily_capacity; max_open: visible
    cap on open leads (inf when none); comfort: open load above which the rep gets overloaded;
    contact_rate: probability of ever contacting a lead that will be lost; contact_days: mean
    delay of a prompt first contact.
    """

    rep_id: np.ndarray
    region: np.ndarray
    hire_ns: np.ndarray
    leave_ns: np.ndarray
    skill: np.ndarray
    industry_spec: np.ndarray
    product_spec: np.ndarray
    daily_capacity: np.ndarray
    max_open: np.ndarray
    comfort: np.ndarray
    contact_rate: np.ndarray
    contact_days: np.ndarray
    index: pd.Index

    def __len__(self) -> int:
        return len(self.rep_id)


@dataclasses.dataclass(frozen=True)
class Calendar:
    """Availability of every rep on every business day from the start to the planning horizon.

    days: business day numbers (since the epoch); absent and capacity: (n_reps x n_days) matrices;
    capacity holds the day's capacity (daily_capacity or an override).
    """

    days: np.ndarray
    absent: np.ndarray
    capacity: np.ndarray


def _count(share: float, n: int) -> int:
    """How many of n reps a share means, at least one when the share is positive."""
    return 0 if share == 0 else min(n, max(1, round(share * n)))


def draw_reps(
    scenario: Scenario, rng: np.random.Generator, first_day: int
) -> tuple[RepTruth, pd.DataFrame]:
    """Reps of the scenario and the canonical reps table.

    Most reps were hired before the history (tenure 2 months to 8 years); `new_hire_share` are
    hired during it and `inactive_share` leave during it (active=False). Skill is mildly
    correlated with tenure. Capacities are sized so that all reps together can take
    `capacity_slack` times the mean weekday arrivals.
    """
    n = scenario.n_reps
    start_ns = first_day * DAY_NS
    n_new = _count(scenario.new_hire_share, n)
    n_gone = min(n - n_new, _count(scenario.inactive_share, n))
    roles = rng.permutation(np.repeat([0, 1, 2], [n - n_new - n_gone, n_new, n_gone]))
    is_new, is_gone = roles == 1, roles == 2

    tenure_years = np.exp(rng.uniform(np.log(2 / 12), np.log(8.0), n))
    hire_day = first_day - np.rint(tenure_years * YEAR_DAYS).astype(np.int64)
    last_hire = max(1, scenario.n_days - 30)
    hire_day[is_new] = first_day + rng.integers(min(10, last_hire - 1), last_hire, is_new.sum())
    hire_ns = hire_day * DAY_NS
    leave_day = first_day + rng.integers(
        int(0.2 * scenario.n_days), max(int(0.8 * scenario.n_days), 1), is_gone.sum()
    )
    leave_ns = np.full(n, STAYED_NS, dtype=np.int64)
    leave_ns[is_gone] = leave_day * DAY_NS

    seniority = np.log1p(np.maximum(start_ns - hire_ns, 0) / DAY_NS / YEAR_DAYS)
    seniority_z = (seniority - seniority.mean()) / max(seniority.std(), 1e-9)
    skill_z = 0.3 * seniority_z + np.sqrt(1 - 0.3**2) * rng.standard_normal(n)
    skill = scenario.skill_sd * skill_z

    industry_spec = np.zeros((n, len(INDUSTRIES)), dtype=bool)
    product_spec = np.zeros((n, len(PRODUCTS)), dtype=bool)
    product_p = np.full(len(PRODUCTS), 1 / len(PRODUCTS))
    for r in range(n):
        industry_spec[
            r, rng.choice(len(INDUSTRIES), rng.integers(1, 3), replace=False, p=INDUSTRY_P)
        ] = True
        product_spec[
            r,
            rng.choice(len(PRODUCTS), rng.choice(3, p=[0.3, 0.5, 0.2]), replace=False, p=product_p),
        ] = True

    # Proportional, deterministic split of reps over regions, shuffled.
    region = rng.permutation(np.searchsorted(np.cumsum(REGION_P), (np.arange(n) + 0.5) / n))
    weekday_arrivals = scenario.leads_per_day * 7 / (5 + 2 * scenario.weekend_rate)
    mean_capacity = weekday_arrivals * scenario.capacity_slack / n
    capacity = mean_capacity * rng.uniform(0.7, 1.3, n) * np.where(is_new, 0.7, 1.0)
    daily_capacity = np.maximum(1, np.rint(capacity)).astype(np.int64)
    comfort = scenario.comfort_days * daily_capacity
    has_cap = rng.random(n) < scenario.max_open_share
    max_open = np.where(has_cap, np.rint(comfort * rng.uniform(1.5, 2.0, n)), np.inf)

    never = scenario.never_contact_share * np.exp(-0.5 * skill_z + 0.4 * rng.standard_normal(n))
    contact_rate = 1 - np.clip(never, 0.0, 0.9)
    contact_days = rng.lognormal(np.log(0.4), 0.5, n)

    width = max(3, len(str(n)))
    rep_id = np.array([f"R{i + 1:0{width}d}" for i in range(n)], dtype=object)
    truth = RepTruth(
        rep_id=rep_id,
        region=region,
        hire_ns=hire_ns,
        leave_ns=leave_ns,
        skill=skill,
        industry_spec=industry_spec,
        product_spec=product_spec,
        daily_capacity=daily_capacity,
        max_open=max_open,
        comfort=comfort,
        contact_rate=contact_rate,
        contact_days=contact_days,
        index=pd.Index(rep_id),
    )
    return truth, _reps_frame(truth, rng, ~is_gone)


def _reps_frame(truth: RepTruth, rng: np.random.Generator, active: np.ndarray) -> pd.DataFrame:
    """The canonical reps table: one row per rep, teams of up to TEAM_SIZE within a region."""
    n = len(truth)
    names = (
        FIRST_NAMES[rng.integers(0, len(FIRST_NAMES), n)]
        + " "
        + LAST_NAMES[rng.integers(0, len(LAST_NAMES), n)]
    )
    rank_in_region = pd.Series(truth.region).groupby(truth.region).cumcount().to_numpy()
    teams = [
        f"{REGIONS[g]} {1 + k // TEAM_SIZE}"
        for g, k in zip(truth.region, rank_in_region, strict=True)
    ]
    tags = np.concatenate([INDUSTRIES, PRODUCTS])
    specs = np.concatenate([truth.industry_spec, truth.product_spec], axis=1)
    skills = [";".join(sorted(tags[row])) for row in specs]
    max_open = np.where(np.isfinite(truth.max_open), truth.max_open, np.nan)
    return pd.DataFrame(
        {
            Reps.rep_id: pd.array(truth.rep_id, dtype="str"),
            "name": pd.array(names, dtype="str"),
            "team": pd.array(teams, dtype="str"),
            "region": pd.array(REGIONS[truth.region], dtype="str"),
            "hire_date": truth.hire_ns.view("datetime64[ns]"),
            "skills": pd.array(skills, dtype="str"),
            "daily_capacity": pd.array(truth.daily_capacity, dtype="Int64"),
            "max_open_leads": pd.array(max_open, dtype="Int64"),
            "active": active.astype(bool),
            # A simulated rep's skills, region and team never change after the hire.
            "attributes_since": truth.hire_ns.view("datetime64[ns]"),
        }
    )


def draw_calendar(
    scenario: Scenario, rng: np.random.Generator, reps: RepTruth, first_day: int
) -> tuple[Calendar, pd.DataFrame]:
    """Absences and capacity overrides on business days up to the planning horizon.

    Absences are spells (vacations, sick leave) of geometric length (mean 4 business days) so
    that a rep is away `absence_rate` of the time; on `capacity_override_rate` of the other days
    the rep works with 30-70% of their capacity. The availability table lists only these
    exceptions, for days the rep is employed: rep_id, date, available (bool), capacity (Int64,
    the day's capacity; null when absent). A (rep, business day) without a row means available
    at daily_capacity.
    """
    all_days = first_day + np.arange(scenario.n_days + scenario.availability_horizon_days)
    days = all_days[is_business_day(all_days)]
    n, m = len(reps), len(days)
    absent = np.zeros((n, m), dtype=bool)
    mean_spell = 4.0
    for r in range(n):
        n_spells = rng.poisson(scenario.absence_rate * m / mean_spell)
        starts = rng.integers(0, m, n_spells)
        lengths = rng.geometric(1 / mean_spell, n_spells)
        for s, length in zip(starts, lengths, strict=True):
            absent[r, s : s + length] = True
    override = (rng.random((n, m)) < scenario.capacity_override_rate) & ~absent
    reduced = np.maximum(1, np.rint(reps.daily_capacity[:, None] * rng.uniform(0.3, 0.7, (n, m))))
    capacity = np.where(override, reduced, reps.daily_capacity[:, None]).astype(np.int64)

    day_ns = days * DAY_NS
    employed = (reps.hire_ns[:, None] <= day_ns[None, :]) & (
        day_ns[None, :] < reps.leave_ns[:, None]
    )
    # Rows in date order, then rep order.
    day_pos, rep_pos = np.nonzero(((absent | override) & employed).T)
    frame = pd.DataFrame(
        {
            Reps.rep_id: pd.array(reps.rep_id[rep_pos], dtype="str"),
            "date": day_ns[day_pos].view("datetime64[ns]"),
            "available": ~absent[rep_pos, day_pos],
            "capacity": pd.array(
                np.where(absent[rep_pos, day_pos], np.nan, capacity[rep_pos, day_pos]),
                dtype="Int64",
            ),
        }
    )
    return Calendar(days=days, absent=absent, capacity=capacity), frame
