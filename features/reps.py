"""Rep features as of a moment: tenure, shrunk trailing win rate, open load, recent volume.

Everything here is point-in-time: a feature of rep r at time t uses only what was known strictly
before t. The reps table is today's export, so what may have changed since t is read from it
only where the export says it held at t: the hire date always, skills and region from the rep's
``attributes_since`` on (:func:`features.pairs.attributes_held`); team and capacity never (the
rep's record by segment and its assignment history stand for them). The history is indexed once
(:func:`index_history`: integer keys, sorted cumulative sums) and then answers any number of
(key, t) questions by binary search, so a million historical assignments need no per-row Python
loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.config import FeatureConfig
from features.schemas import Leads, Reps
from features.timestamps import DAY_NS, NAT, as_ns

REP_FEATURES = [
    "rep_tenure_days",
    "rep_outcomes",
    "rep_win_rate",
    "rep_open_load",
    "rep_recent_volume",
]


def outcome_events(assignments: pd.DataFrame, *, window_days: int) -> pd.DataFrame:
    """When each assignment's target outcome became known, and what it was.

    Takes ``assignments`` (canonical columns ``assigned_at``, ``status``, ``closed_at``) and returns
    a frame on the same index with ``decided_at`` (datetime64[ns]) and ``won_in_window`` (0/1):
    won within ``window_days`` of the assignment. A row closed within the window is decided when
    it closed; any other row (still open, or closed later) is decided, as not won, when the window
    ends. So an outcome closed at or after t can never change what is known before t.
    """
    assigned = as_ns(assignments["assigned_at"])
    closed = as_ns(assignments["closed_at"])
    window_end = assigned + window_days * DAY_NS
    status = assignments["status"]
    closed_in_window = status.isin(["won", "lost"]).to_numpy() & (closed != NAT)
    closed_in_window &= closed <= window_end
    won = closed_in_window & (status == "won").to_numpy()
    return pd.DataFrame(
        {
            "decided_at": np.where(closed_in_window, closed, window_end).view("datetime64[ns]"),
            "won_in_window": won.astype(np.int8),
        },
        index=assignments.index,
    )


@dataclass(frozen=True)
class EventCounts:
    """Dated events grouped by an integer key, answering "how many, and what total, before t?".

    Events are sorted by (key, time) into one int64 code each, with a cumulative sum of the
    values beside them; a question is two binary searches. A key of -1 (unknown) counts 0.
    """

    times: np.ndarray
    codes: np.ndarray
    cumulative: np.ndarray

    @classmethod
    def build(
        cls, keys: np.ndarray, times_ns: np.ndarray, values: np.ndarray | None = None
    ) -> EventCounts:
        """Index events: int64 ``keys`` (>= 0), ``times_ns`` (int64 ns), optional ``values`` to
        sum (default: only counts)."""
        # Ranks among the sorted event times (ties share the rank of their first copy) keep the
        # (key, time) code within int64 whatever the time unit.
        sorted_times = np.sort(times_ns)
        code = keys * (len(sorted_times) + 1) + np.searchsorted(sorted_times, times_ns)
        order = np.argsort(code, kind="stable")
        summed = np.zeros(len(code)) if values is None else np.asarray(values, dtype=float)[order]
        return cls(
            times=sorted_times,
            codes=code[order],
            cumulative=np.concatenate([[0.0], np.cumsum(summed)]),
        )

    def before(
        self, keys: np.ndarray, times_ns: np.ndarray, since_ns: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Count and sum of the events with each query's key and a time in [since, time).

        Returns two float arrays, one entry per query.
        """
        base = np.maximum(keys, 0) * (len(self.times) + 1)
        upper_code = base + np.searchsorted(self.times, times_ns)
        lower_code = base + (0 if since_ns is None else np.searchsorted(self.times, since_ns))
        # Binary searches run about twice as fast on sorted needles; one order sorts both,
        # since the window start moves with the query time.
        order = np.argsort(upper_code, kind="stable")
        upper = np.empty(len(order), dtype=np.int64)
        lower = np.empty(len(order), dtype=np.int64)
        upper[order] = np.searchsorted(self.codes, upper_code[order])
        lower[order] = np.searchsorted(self.codes, lower_code[order])
        unknown = keys < 0
        upper[unknown] = 0
        lower[unknown] = 0
        return (upper - lower).astype(float), self.cumulative[upper] - self.cumulative[lower]


@dataclass(frozen=True)
class OutcomeHistory:
    """The assignment history, indexed for point-in-time questions (built by
    :func:`index_history`).

    ``reps`` is the reps table indexed by rep_id (its hire dates, and its skills and regions
    from ``attributes_since`` on);
    ``vocabularies`` map each key kind (``rep``, ``account`` and every segment and skill column)
    to the pd.Index whose positions are the integer keys of the :class:`EventCounts`. Outcome
    counts hold decided outcomes (value: won in window); ``assigned_by_rep`` / ``closed_by_rep``
    hold assignment and close times; ``assigned_by_rep_value`` the assignment times by rep and
    the lead's value of each column of ``FeatureConfig.skill_columns`` and region.
    """

    config: FeatureConfig
    reps: pd.DataFrame
    vocabularies: dict[str, pd.Index]
    outcomes_all: EventCounts
    outcomes_by_rep: EventCounts
    outcomes_by_account: EventCounts
    outcomes_by_segment: dict[str, EventCounts]
    outcomes_by_rep_segment: dict[str, EventCounts]
    assigned_by_rep: EventCounts
    closed_by_rep: EventCounts
    assigned_by_rep_value: dict[str, EventCounts]

    def codes(self, kind: str, values: pd.Series | np.ndarray) -> np.ndarray:
        """Integer keys of ``values`` of one key kind; -1 for a value the history never saw."""
        return self.vocabularies[kind].get_indexer(values).astype(np.int64)


def index_history(
    assignments: pd.DataFrame, leads: pd.DataFrame, reps: pd.DataFrame, config: FeatureConfig
) -> OutcomeHistory:
    """Index the assignment history (canonical ``assignments``, with ``leads`` for segment and
    account columns and ``reps`` for hire dates and declared attributes). Rows of any date may be passed: each question only
    ever sees the events strictly before its own time."""
    rep_table = reps.drop_duplicates(Reps.rep_id).set_index(Reps.rep_id)
    events = outcome_events(assignments, window_days=config.conversion_window_days)
    decided, won = as_ns(events["decided_at"]), events["won_in_window"].to_numpy()
    lead_rows = leads.drop_duplicates(Leads.lead_id).set_index(Leads.lead_id)
    lead_ids = assignments[Leads.lead_id]
    vocabularies: dict[str, pd.Index] = {}
    keys: dict[str, np.ndarray] = {}

    def encode(kind: str, values: pd.Series, *, missing_is_value: bool = True) -> None:
        codes, uniques = pd.factorize(values, use_na_sentinel=not missing_is_value)
        vocabularies[kind] = pd.Index(uniques)
        keys[kind] = codes.astype(np.int64)

    encode("rep", assignments[Reps.rep_id], missing_is_value=False)
    for column in dict.fromkeys([*config.segment_columns, *share_columns(config)]):
        encode(column, lead_rows[column].reindex(lead_ids))
    accounts = (
        lead_rows["account_id"].reindex(lead_ids)
        if "account_id" in lead_rows
        else pd.Series(np.nan, index=lead_ids.index, dtype="str")
    )
    # Leads without an account are not one account: their key is -1, so they count nowhere.
    encode("account", accounts, missing_is_value=False)
    has_account = keys["account"] >= 0
    # An outcome with no rep (rep_id empty) counts for the company, segments and accounts, and
    # in no rep's record.
    has_rep = keys["rep"] >= 0

    def by_rep_and(column: str) -> np.ndarray:
        return keys["rep"] * len(vocabularies[column]) + keys[column]

    closed = assignments["closed_at"].notna().to_numpy() & has_rep
    assigned = as_ns(assignments["assigned_at"])
    return OutcomeHistory(
        config=config,
        reps=rep_table,
        vocabularies=vocabularies,
        outcomes_all=EventCounts.build(np.zeros(len(decided), np.int64), decided, won),
        outcomes_by_rep=EventCounts.build(keys["rep"][has_rep], decided[has_rep], won[has_rep]),
        outcomes_by_account=EventCounts.build(
            keys["account"][has_account], decided[has_account], won[has_account]
        ),
        outcomes_by_segment={
            column: EventCounts.build(keys[column], decided, won)
            for column in config.segment_columns
        },
        outcomes_by_rep_segment={
            column: EventCounts.build(by_rep_and(column)[has_rep], decided[has_rep], won[has_rep])
            for column in config.segment_columns
        },
        assigned_by_rep=EventCounts.build(keys["rep"][has_rep], assigned[has_rep]),
        closed_by_rep=EventCounts.build(
            keys["rep"][closed], as_ns(assignments["closed_at"])[closed]
        ),
        assigned_by_rep_value={
            column: EventCounts.build(by_rep_and(column)[has_rep], assigned[has_rep])
            for column in share_columns(config)
        },
    )


def share_columns(config: FeatureConfig) -> tuple[str, ...]:
    """Lead columns in which each rep's share of earlier leads is a feature: the skill columns
    and region (what today's skills and region say, but as of the pair's time)."""
    return tuple(dict.fromkeys([*config.skill_columns, "region"]))


def shrink(wins: np.ndarray, n: np.ndarray, prior: np.ndarray, strength: float) -> np.ndarray:
    """Empirical-Bayes (beta-binomial) estimate: ``(wins + strength * prior) / (n + strength)``;
    the prior itself where there is neither data nor prior weight."""
    total = n + strength
    safe = np.where(total > 0, total, 1.0)
    return np.where(total > 0, (wins + strength * prior) / safe, prior)


@dataclass(frozen=True)
class RepRates:
    """Win rates known before each query's time: company-wide and the rep's."""

    company: np.ndarray
    rep: np.ndarray
    rep_outcomes: np.ndarray


def rep_win_rates(
    history: OutcomeHistory, rep_ids: pd.Series | np.ndarray, at_ns: np.ndarray
) -> RepRates:
    """Trailing won-in-window rates as of ``at_ns``: the company rate (uniform Beta(1, 1)
    prior, so it exists before any outcome) and the rep's rate shrunk towards it. (Not towards
    the rep's team: the export only knows today's teams.)"""
    config = history.config
    since = history_start(config, at_ns)
    rep_keys = history.codes("rep", rep_ids)
    n_all, w_all = history.outcomes_all.before(np.zeros(len(at_ns), np.int64), at_ns, since)
    company = (w_all + 1.0) / (n_all + 2.0)
    n_rep, w_rep = history.outcomes_by_rep.before(rep_keys, at_ns, since)
    return RepRates(
        company=company,
        rep=shrink(w_rep, n_rep, company, config.shrinkage_strength),
        rep_outcomes=n_rep,
    )


def rep_features(queries: pd.DataFrame, history: OutcomeHistory) -> pd.DataFrame:
    """Features of rep ``rep_id`` as of ``at`` for each query row (columns ``rep_id``, ``at``).

    Returns a frame on the queries' index with the :data:`REP_FEATURES` columns (float):
    ``rep_tenure_days`` (days since hire), ``rep_outcomes`` (outcomes decided within the
    trailing history window), ``rep_win_rate`` (their won-in-window rate, shrunk towards the
    company rate), ``rep_open_load`` (assignments made and not closed before ``at``) and
    ``rep_recent_volume`` (assignments in the ``recent_days`` before ``at``).
    """
    config = history.config
    rep_ids = queries[Reps.rep_id]
    at = as_ns(queries["at"])
    rates = rep_win_rates(history, rep_ids, at)
    rep_keys = history.codes("rep", rep_ids)
    assigned, _ = history.assigned_by_rep.before(rep_keys, at)
    closed, _ = history.closed_by_rep.before(rep_keys, at)
    recent, _ = history.assigned_by_rep.before(rep_keys, at, at - config.recent_days * DAY_NS)
    hired = as_ns(history.reps["hire_date"].reindex(rep_ids))
    tenure = np.where(hired == NAT, np.nan, (at - hired) / DAY_NS)
    return pd.DataFrame(
        {
            "rep_tenure_days": tenure,
            "rep_outcomes": rates.rep_outcomes,
            "rep_win_rate": rates.rep,
            "rep_open_load": assigned - closed,
            "rep_recent_volume": recent,
        },
        index=queries.index,
    )


def history_start(config: FeatureConfig, at_ns: np.ndarray) -> np.ndarray | None:
    """Start of the trailing window of win rates for questions at ``at_ns`` (None: no window)."""
    if config.history_days is None:
        return None
    return at_ns - config.history_days * DAY_NS
