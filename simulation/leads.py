"""Accounts and leads: arrivals, visible attributes and latent quality.

The quality of a lead (logit scale) is `observed + latent`:
- `observed` is a fixed function of the visible columns source, industry, product and
  company_size (the effects below);
- `latent` = the account's hidden effect + the lead's own noise, never shown directly. The visible
  marketing score `x_score = 50 + 15 * (observed + latent + noise)` reveals part of it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from features.schemas import Leads
from simulation.clock import CLOSE_HOUR, DAY_NS, OPEN_HOUR, SECOND_NS, is_business_day
from simulation.scenarios import Scenario

SOURCES = np.array(["Web", "Referral", "Event", "Partner", "Outbound", "Ads"], dtype=object)
SOURCE_P = np.array([0.33, 0.12, 0.10, 0.13, 0.16, 0.16])
SOURCE_EFFECT = np.array([0.0, 0.5, 0.1, 0.3, -0.3, -0.4])

INDUSTRIES = np.array(
    [
        "Software",
        "Finance",
        "Healthcare",
        "Retail",
        "Manufacturing",
        "Education",
        "Logistics",
        "Energy",
    ],
    dtype=object,
)
INDUSTRY_P = np.array([0.20, 0.15, 0.13, 0.13, 0.12, 0.09, 0.09, 0.09])
INDUSTRY_EFFECT = np.array([0.2, 0.1, 0.0, -0.2, 0.1, -0.3, 0.0, 0.1])

# The last entry is "no product stated": `product` is null for those leads.
PRODUCTS = np.array(["Core", "Analytics", "Security", "Cloud"], dtype=object)
PRODUCT_P = np.array([0.35, 0.25, 0.20, 0.15, 0.05])
PRODUCT_EFFECT = np.array([0.0, 0.1, 0.2, -0.1, -0.2])
PRODUCT_VALUE = np.array([8_000.0, 15_000.0, 20_000.0, 12_000.0, 10_000.0])

REGIONS = np.array(["North", "South", "East", "West"], dtype=object)
REGION_P = np.array([0.30, 0.25, 0.25, 0.20])

LOG_SIZE_CENTER = np.log(80.0)
LOG_SIZE_SD = 1.3
SIZE_EFFECT = 0.15
VALUE_SIZE_ELASTICITY = 0.35
VALUE_NOISE_SD = 0.35
SCORE_CENTER = 50.0
SCORE_SCALE = 15.0


@dataclasses.dataclass(frozen=True)
class Accounts:
    """Companies that leads come from; a company keeps its industry, region and size.

    Arrays of length n_accounts: industry and region codes, log_size, hidden quality `effect`,
    and `weight`, the probability that a new lead comes from that account.
    """

    industry: np.ndarray
    region: np.ndarray
    log_size: np.ndarray
    effect: np.ndarray
    weight: np.ndarray

    def account_ids(self, positions: np.ndarray) -> np.ndarray:
        """Account ids ("A000001", ...) of account positions."""
        width = max(6, len(str(len(self.weight))))
        return np.array([f"A{i + 1:0{width}d}" for i in positions], dtype=object)


@dataclasses.dataclass(frozen=True)
class LeadTruth:
    """Every lead the world has generated, visible attributes and latent quality, by position.

    Codes index the module's category arrays (product -1 = none stated). `observed` and `latent`
    are the two parts of the lead's quality on the logit scale; `score` is the visible x_score.
    """

    lead_id: np.ndarray
    created_ns: np.ndarray
    account: np.ndarray
    source: np.ndarray
    industry: np.ndarray
    region: np.ndarray
    product: np.ndarray
    company_size: np.ndarray
    expected_value: np.ndarray
    observed: np.ndarray
    latent: np.ndarray
    score: np.ndarray
    index: pd.Index

    def __len__(self) -> int:
        return len(self.lead_id)


def draw_accounts(scenario: Scenario, rng: np.random.Generator) -> Accounts:
    """A pool sized so that the history has `leads_per_account` leads per account on average."""
    n = max(1, round(scenario.leads_per_day * scenario.n_days / scenario.leads_per_account))
    popularity = rng.lognormal(0.0, 1.0, n)
    return Accounts(
        industry=rng.choice(len(INDUSTRIES), size=n, p=INDUSTRY_P),
        region=rng.choice(len(REGIONS), size=n, p=REGION_P),
        log_size=rng.normal(LOG_SIZE_CENTER, LOG_SIZE_SD, n),
        effect=rng.normal(0.0, scenario.account_sd, n),
        weight=popularity / popularity.sum(),
    )


def arrival_times(
    scenario: Scenario,
    rng: np.random.Generator,
    first_day: int,
    n_days: int,
    n: int | None = None,
) -> np.ndarray:
    """Sorted creation times (int64 ns) of the leads arriving on `n_days` days from `first_day`.

    Daily counts are Poisson, weekdays heavier than weekends, with `leads_per_day` as the mean
    over the week; `n` fixes the count instead (only for a single day). Most leads arrive in
    business hours (a late-morning peak), `after_hours_share` at any time of day.
    """
    days = first_day + np.arange(n_days, dtype=np.int64)
    if n is None:
        weekday_rate = scenario.leads_per_day * 7 / (5 + 2 * scenario.weekend_rate)
        business = is_business_day(days)
        counts = rng.poisson(np.where(business, weekday_rate, weekday_rate * scenario.weekend_rate))
    elif n_days == 1:
        counts = np.array([n])
    else:
        raise ValueError("a fixed number of leads needs exactly one day")
    day_of = np.repeat(days, counts)
    m = len(day_of)
    after_hours = rng.random(m) < scenario.after_hours_share
    in_hours = OPEN_HOUR * 3600 + (CLOSE_HOUR - OPEN_HOUR) * 3600 * rng.beta(2.0, 2.5, m)
    seconds = np.where(after_hours, rng.uniform(0, 86_400, m), in_hours)
    return np.sort(day_of * DAY_NS + np.floor(seconds).astype(np.int64) * SECOND_NS)


def draw_leads(
    scenario: Scenario,
    rng: np.random.Generator,
    accounts: Accounts,
    created_ns: np.ndarray,
    first_number: int,
) -> LeadTruth:
    """Attributes and latent quality of leads created at `created_ns`, numbered from first_number.

    Lead ids are "L" + the number, zero-padded to 6 digits.
    """
    m = len(created_ns)
    account = rng.choice(len(accounts.weight), size=m, p=accounts.weight)
    source = rng.choice(len(SOURCES), size=m, p=SOURCE_P)
    product_draw = rng.choice(len(PRODUCT_P), size=m, p=PRODUCT_P)
    company_size = np.maximum(1, np.rint(np.exp(accounts.log_size[account]))).astype(np.int64)
    industry = accounts.industry[account]
    # The observed part uses the size as written in the table, so it is a function of the
    # visible columns exactly.
    observed = (
        SOURCE_EFFECT[source]
        + INDUSTRY_EFFECT[industry]
        + PRODUCT_EFFECT[product_draw]
        + SIZE_EFFECT * (np.log(company_size) - LOG_SIZE_CENTER)
    )
    latent = accounts.effect[account] + rng.normal(0.0, scenario.lead_noise_sd, m)
    noise = rng.normal(0.0, scenario.score_noise_sd, m)
    score = np.round(SCORE_CENTER + SCORE_SCALE * (observed + latent + noise), 1)
    value_noise = rng.normal(-(VALUE_NOISE_SD**2) / 2, VALUE_NOISE_SD, m)
    size_factor = (company_size / np.exp(LOG_SIZE_CENTER)) ** VALUE_SIZE_ELASTICITY
    expected_value = np.round(PRODUCT_VALUE[product_draw] * size_factor * np.exp(value_noise), 2)
    lead_id = np.array([f"L{i:06d}" for i in range(first_number, first_number + m)], dtype=object)
    return LeadTruth(
        lead_id=lead_id,
        created_ns=np.asarray(created_ns, dtype=np.int64),
        account=account,
        source=source,
        industry=industry,
        region=accounts.region[account],
        product=np.where(product_draw == len(PRODUCTS), -1, product_draw),
        company_size=company_size,
        expected_value=expected_value,
        observed=observed,
        latent=latent,
        score=score,
        index=pd.Index(lead_id),
    )


def concat_leads(first: LeadTruth, second: LeadTruth) -> LeadTruth:
    """All leads of `first` then `second` (ids must not overlap)."""
    arrays = {
        f.name: np.concatenate([getattr(first, f.name), getattr(second, f.name)])
        for f in dataclasses.fields(LeadTruth)
        if f.name != "index"
    }
    return LeadTruth(**arrays, index=pd.Index(arrays[Leads.lead_id]))


def leads_frame(leads: LeadTruth, accounts: Accounts) -> pd.DataFrame:
    """The canonical leads table (one row per lead, in creation order).

    Columns: lead_id, created_at (datetime64[ns]), source, industry, region, product (null when
    no product was stated), company_size (Int64), expected_value (float), account_id, x_score
    (float, a marketing score around 50: higher is better).
    """
    product = np.where(leads.product >= 0, PRODUCTS[np.maximum(leads.product, 0)], None)
    return pd.DataFrame(
        {
            Leads.lead_id: pd.array(leads.lead_id, dtype="str"),
            "created_at": leads.created_ns.view("datetime64[ns]"),
            "source": pd.array(SOURCES[leads.source], dtype="str"),
            "industry": pd.array(INDUSTRIES[leads.industry], dtype="str"),
            "region": pd.array(REGIONS[leads.region], dtype="str"),
            "product": pd.array(product, dtype="str"),
            "company_size": pd.array(leads.company_size, dtype="Int64"),
            "expected_value": leads.expected_value.astype(np.float64),
            "account_id": pd.array(accounts.account_ids(leads.account), dtype="str"),
            "x_score": leads.score.astype(np.float64),
        }
    )
