"""A simulated CRM world: the canonical tables plus the ground truth behind them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.schemas import CrmData, Leads, Reps
from simulation import truth
from simulation.clock import DAY_NS, MISSING, day_number, to_datetime, to_ns
from simulation.leads import (
    Accounts,
    LeadTruth,
    arrival_times,
    concat_leads,
    draw_accounts,
    draw_leads,
    leads_frame,
)
from simulation.reps import STAYED_NS, RepTruth, draw_calendar, draw_reps
from simulation.routing import History, route_history
from simulation.scenarios import SCENARIOS, Scenario

_PAIR_COLUMNS = (Leads.lead_id, Reps.rep_id, "at")
_NEW_LEADS_STREAM = 1


class CrmWorld:
    """The canonical tables of a simulated CRM history and the truth that generated them.

    Attributes:
        scenario, seed: what the world was simulated from.
        data: reps, leads, assignments and availability as a `features.schemas.CrmData`, as
            of `as_of` (midnight after the last simulated day).
        as_of: the snapshot time; leads created on the last day may still be unassigned.

    The probability methods take a pairs frame with columns lead_id, rep_id, at (datetime) and
    optionally open_load (the rep's open leads at that time; default `open_load(rep_id, at)`
    under the history). Leads made by `new_leads` are known to the world as well. Build a
    world with `simulate`.
    """

    def __init__(
        self,
        *,
        scenario: Scenario,
        seed: int,
        data: CrmData,
        as_of: pd.Timestamp,
        reps: RepTruth,
        leads: LeadTruth,
        accounts: Accounts,
        history: History,
        first_day: int,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.data = data
        self.as_of = as_of
        self._reps = reps
        self._leads = leads
        self._accounts = accounts
        self._history = history
        self._loads = truth.LoadIndex.build(
            len(reps), history.rep, history.assigned_ns, history.close_ns, first_day * DAY_NS
        )

    def __repr__(self) -> str:
        return (
            f"CrmWorld(scenario={self.scenario.name!r}, seed={self.seed}, reps={len(self._reps)}, "
            f"leads={len(self.data.leads)}, assignments={len(self.data.assignments)}, "
            f"as_of={self.as_of})"
        )

    def true_probability(self, pairs: pd.DataFrame) -> np.ndarray:
        """True P(win) of each pair (float array, same order as `pairs`), latent quality included.

        Raises ValueError for a missing column, an unknown lead_id or rep_id, a missing time or
        a negative open_load.
        """
        return truth.true_probability(self.scenario, self._reps, self._leads, *self._pairs(pairs))

    def knowable_probability(self, pairs: pd.DataFrame) -> np.ndarray:
        """P(win) of each pair averaged over the lead's latent quality given its visible columns.

        The best a model of the lead columns, rep and time can achieve; it equals the true
        probability on average over leads. Same input and errors as `true_probability`.
        """
        return truth.knowable_probability(
            self.scenario, self._reps, self._leads, *self._pairs(pairs)
        )

    def open_load(self, rep_ids: Sequence[str] | pd.Series | np.ndarray, at: object) -> np.ndarray:
        """Open leads held by each rep at `at` (one time, or one per rep) under the history.

        A lead counts when assigned before `at` and closing after it, by its latent close time,
        so times after `as_of` see the history's open leads resolve. Leads placed by a policy
        under test are not counted: pass open_load in the pairs frame to include them.
        Returns an int64 array aligned with rep_ids.
        """
        rep_pos = _positions(self._reps.index, rep_ids, Reps.rep_id)
        at_ns = to_ns(at)
        if len(at_ns) not in (1, len(rep_pos)):
            raise ValueError(
                f"at must be one time or one per rep ({len(rep_pos)}), got {len(at_ns)}"
            )
        return self._loads.count(rep_pos, np.broadcast_to(at_ns, rep_pos.shape))

    def new_leads(self, day: object, n: int | None = None, seed: int = 0) -> pd.DataFrame:
        """Fresh leads created on `day`, from the same process as the history's leads.

        n: how many (default: Poisson around the day's arrival rate, weekends lighter).
        seed: mixed with the world's seed and the day, so the same call gives the same leads.
        The leads are registered in this world (so the probability methods know them) with new
        ids continuing the history's numbering; calling twice gives equal leads under new ids.
        Returns a leads frame with the columns of `data.leads`.
        """
        if n is not None and n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        first_day = day_number(day)
        rng = np.random.default_rng([self.seed, _NEW_LEADS_STREAM, first_day, seed])
        created = arrival_times(self.scenario, rng, first_day, 1, n)
        fresh = draw_leads(self.scenario, rng, self._accounts, created, len(self._leads) + 1)
        self._leads = concat_leads(self._leads, fresh)
        return leads_frame(fresh, self._accounts)

    def rep_truth(self) -> pd.DataFrame:
        """Latent rep attributes, one row per rep in `data.reps` order.

        Columns: rep_id, skill (logit bonus), comfort_load (open leads above which the rep is
        overloaded), contact_rate (chance of ever contacting a lead that will be lost),
        contact_days (mean delay of a prompt first contact), left_at (NaT if still active).
        """
        reps = self._reps
        return pd.DataFrame(
            {
                Reps.rep_id: pd.array(reps.rep_id, dtype="str"),
                "skill": reps.skill,
                "comfort_load": reps.comfort.astype(float),
                "contact_rate": reps.contact_rate,
                "contact_days": reps.contact_days,
                "left_at": to_datetime(
                    np.where(reps.leave_ns == STAYED_NS, MISSING, reps.leave_ns)
                ),
            }
        )

    def lead_truth(self) -> pd.DataFrame:
        """Latent lead quality (logit scale), one row per lead generated so far (history first).

        Columns: lead_id, observed_quality (the part the columns determine), latent_quality,
        quality (their sum), knowable_quality and knowable_quality_sd (mean and spread of the
        quality given the visible columns).
        """
        leads = self._leads
        every = np.arange(len(leads))
        mean, sd = truth.knowable_quality(self.scenario, leads, every)
        return pd.DataFrame(
            {
                Leads.lead_id: pd.array(leads.lead_id, dtype="str"),
                "observed_quality": leads.observed,
                "latent_quality": leads.latent,
                "quality": leads.observed + leads.latent,
                "knowable_quality": mean,
                "knowable_quality_sd": sd,
            }
        )

    def history_truth(self) -> pd.DataFrame:
        """The latent side of every assignment row, in `data.assignments` order.

        Columns: lead_id, rep_id, assigned_at, open_load (the rep's open leads just before),
        p_win (the true probability the outcome was drawn from), won (also for rows still open
        at as_of), contact_at and closes_at (latent times, possibly after as_of; contact_at NaT
        if never contacted).
        """
        h = self._history
        return pd.DataFrame(
            {
                Leads.lead_id: pd.array(self._leads.lead_id[h.lead], dtype="str"),
                Reps.rep_id: pd.array(self._reps.rep_id[h.rep], dtype="str"),
                "assigned_at": to_datetime(h.assigned_ns),
                "open_load": h.open_load,
                "p_win": h.p_win,
                "won": h.won,
                "contact_at": to_datetime(h.contact_ns),
                "closes_at": to_datetime(h.close_ns),
            }
        )

    def _pairs(self, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        missing = [c for c in _PAIR_COLUMNS if c not in pairs.columns]
        if missing:
            raise ValueError(
                f"pairs is missing column(s) {missing}: expected lead_id, rep_id, at "
                "and optionally open_load"
            )
        lead_pos = _positions(self._leads.index, pairs[Leads.lead_id], Leads.lead_id)
        rep_pos = _positions(self._reps.index, pairs[Reps.rep_id], Reps.rep_id)
        at_ns = to_ns(pairs["at"]) if len(pairs) else np.empty(0, dtype=np.int64)
        if "open_load" in pairs.columns:
            load = pd.to_numeric(pairs["open_load"]).to_numpy(dtype=float, na_value=np.nan)
            if np.isnan(load).any() or (load < 0).any():
                raise ValueError("open_load must be a non-negative number on every row")
        else:
            load = self._loads.count(rep_pos, at_ns)
        return lead_pos, rep_pos, at_ns, load


def _positions(index: pd.Index, ids: object, name: str) -> np.ndarray:
    """Positions of ids in index; ValueError naming a few unknown ones."""
    if not isinstance(ids, pd.Series):
        ids = pd.Series(np.atleast_1d(np.asarray(ids, dtype=object)))
    values = ids if pd.api.types.is_string_dtype(ids) else ids.astype("str")
    positions = index.get_indexer(values)
    unknown = positions < 0
    if unknown.any():
        examples = list(pd.unique(values[unknown]))[:5]
        raise ValueError(f"{unknown.sum()} {name} value(s) unknown to this world, e.g. {examples}")
    return positions


def assignments_frame(
    history: History, leads: LeadTruth, reps: RepTruth, as_of_ns: int
) -> pd.DataFrame:
    """The canonical assignments table: the history censored at the snapshot time as_of_ns.

    A lead whose latent close time is at or after as_of is open (no closed_at, no deal_value);
    a first contact after as_of has not happened yet. Columns: lead_id, rep_id, assigned_at,
    first_contact_at, status, closed_at, deal_value, propensity.
    """
    closed = history.close_ns < as_of_ns
    contacted = (history.contact_ns != MISSING) & (history.contact_ns < as_of_ns)
    status = np.where(closed, np.where(history.won, "won", "lost"), "open")
    return pd.DataFrame(
        {
            Leads.lead_id: pd.array(leads.lead_id[history.lead], dtype="str"),
            Reps.rep_id: pd.array(reps.rep_id[history.rep], dtype="str"),
            "assigned_at": to_datetime(history.assigned_ns),
            "first_contact_at": to_datetime(np.where(contacted, history.contact_ns, MISSING)),
            "status": pd.array(status, dtype="str"),
            "closed_at": to_datetime(np.where(closed, history.close_ns, MISSING)),
            "deal_value": np.where(closed & history.won, history.deal_value, np.nan),
            "propensity": history.propensity,
        }
    )


def simulate(scenario: str | Scenario = "default", seed: int = 0) -> CrmWorld:
    """Simulate a CRM world: a named scenario (see `SCENARIOS`) or a `Scenario`, and a seed.

    Deterministic: the same scenario and seed give identical frames. Each part (reps,
    availability, accounts, leads, routing) draws from its own stream of the seed.
    """
    if isinstance(scenario, str):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose one of {sorted(SCENARIOS)}")
        scenario = SCENARIOS[scenario]
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    reps_rng, calendar_rng, accounts_rng, leads_rng, routing_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    first_day = day_number(scenario.start)
    end_day = first_day + scenario.n_days
    reps, reps_table = draw_reps(scenario, reps_rng, first_day)
    calendar, availability = draw_calendar(scenario, calendar_rng, reps, first_day)
    accounts = draw_accounts(scenario, accounts_rng)
    created = arrival_times(scenario, leads_rng, first_day, scenario.n_days)
    leads = draw_leads(scenario, leads_rng, accounts, created, first_number=1)
    history = route_history(scenario, routing_rng, reps, leads, calendar, first_day)
    data = CrmData(
        reps=reps_table,
        leads=leads_frame(leads, accounts),
        assignments=assignments_frame(history, leads, reps, end_day * DAY_NS),
        availability=availability,
    )
    return CrmWorld(
        scenario=scenario,
        seed=seed,
        data=data,
        as_of=pd.Timestamp(end_day * DAY_NS),
        reps=reps,
        leads=leads,
        accounts=accounts,
        history=history,
        first_day=first_day,
    )
