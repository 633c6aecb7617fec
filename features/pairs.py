"""Lead x rep pair features, built by the same code for training and for scoring.

A *pair* is (lead, rep, at): the lead handed to the rep at time ``at``. Training pairs are the
historical assignments (``at`` = ``assigned_at``, with the target ``won``); scoring pairs are new
leads x candidate reps (``at`` = the run's ``as_of``). Both go through :func:`_pair_frame`, so
training and serving cannot drift apart, and every feature uses only outcomes decided strictly
before ``at``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series
from scipy.special import expit, logit

from features.config import FeatureConfig
from features.leads import (
    LEAD_CATEGORICAL,
    LEAD_HISTORY,
    LEAD_NUMERIC,
    extra_columns,
    is_number,
    lead_features,
    lead_history_features,
)
from features.reps import (
    REP_FEATURES,
    OutcomeHistory,
    history_start,
    index_history,
    outcome_events,
    rep_features,
    rep_win_rates,
    share_columns,
    shrink,
)
from features.schemas import CrmData, Leads, Reps
from features.tags import tag_sets, tag_values
from features.timestamps import NAT, as_ns

KEY_COLUMNS = [Leads.lead_id, Reps.rep_id, "at"]
TARGET = "won"


class PairFeatures(pa.DataFrameModel):
    """One row per (lead, rep, at) pair. Segment columns follow ``FeatureConfig.segment_columns``
    (``rep_<segment>_outcomes``, ``rep_<segment>_win_rate``), share columns follow
    ``FeatureConfig.skill_columns`` and region (``rep_<column>_share``), and so do the declared
    matches (``skill_match_<column>``, ``region_match``: 0/1, missing when the rep's attributes
    as of ``at`` are unknown); ``x_*`` lead columns pass through."""

    lead_id: Series[str] = pa.Field()
    rep_id: Series[str] = pa.Field()
    at: Series[pd.Timestamp] = pa.Field()
    won: Series[pd.Int8Dtype] | None = pa.Field(isin=[0, 1])
    decided_at: Series[pd.Timestamp] | None = pa.Field()
    mature: Series[bool] | None = pa.Field()
    source: Series[str] = pa.Field(nullable=True)
    industry: Series[str] = pa.Field(nullable=True)
    region: Series[str] = pa.Field(nullable=True)
    product: Series[str] = pa.Field(nullable=True)
    company_size: Series[float] = pa.Field(nullable=True, ge=0)
    expected_value: Series[float] = pa.Field(nullable=True, ge=0)
    created_weekday: Series[float] = pa.Field(ge=0, le=6)
    created_hour: Series[float] = pa.Field(ge=0, le=23)
    lead_age_days: Series[float] = pa.Field()
    account_outcomes: Series[float] = pa.Field(ge=0)
    account_win_rate: Series[float] = pa.Field(ge=0, le=1)
    rep_tenure_days: Series[float] = pa.Field(nullable=True)
    rep_outcomes: Series[float] = pa.Field(ge=0)
    rep_win_rate: Series[float] = pa.Field(ge=0, le=1)
    rep_open_load: Series[float] = pa.Field(ge=0)
    rep_recent_volume: Series[float] = pa.Field(ge=0)
    rep_industry_share: Series[float] | None = pa.Field(ge=0, le=1)
    rep_product_share: Series[float] | None = pa.Field(ge=0, le=1)
    rep_region_share: Series[float] = pa.Field(ge=0, le=1)
    skill_match_industry: Series[float] | None = pa.Field(isin=[0.0, 1.0], nullable=True)
    skill_match_product: Series[float] | None = pa.Field(isin=[0.0, 1.0], nullable=True)
    region_match: Series[float] = pa.Field(isin=[0.0, 1.0], nullable=True)

    class Config:
        strict = False
        coerce = False


def feature_columns(pairs: pd.DataFrame, *, rep_information: bool = True) -> tuple[list, list]:
    """The model inputs of a pair frame: (categorical columns, numeric columns).

    With ``rep_information=False`` only what is known about the lead itself (the lead-only
    baseline): no rep, rep-in-segment or match column.
    """
    extras = extra_columns(pairs)
    categorical = LEAD_CATEGORICAL + [c for c in extras if not is_number(pairs[c])]
    numeric = LEAD_NUMERIC + LEAD_HISTORY + [c for c in extras if is_number(pairs[c])]
    if rep_information:
        segment = [c for c in pairs.columns if _is_segment_feature(str(c))]
        shares = [c for c in pairs.columns if _is_share_feature(str(c))]
        matches = [c for c in pairs.columns if str(c).startswith("skill_match_")]
        numeric += REP_FEATURES + segment + shares + matches + ["region_match"]
    return categorical, numeric


def default_as_of(data: CrmData) -> pd.Timestamp:
    """Midnight after the latest assignment or close in ``data``: everything recorded is before it."""
    asg = data.assignments
    latest = pd.concat([asg["assigned_at"], asg["closed_at"]]).max()
    if pd.isna(latest):
        raise ValueError("the data has no assignments: there is no history to learn from")
    return pd.Timestamp(latest).normalize() + pd.Timedelta(days=1)


def build_training_pairs(
    data: CrmData, *, as_of: pd.Timestamp | None = None, config: FeatureConfig | None = None
) -> pd.DataFrame:
    """Training pairs: one per historical assignment whose target is known before ``as_of``.

    ``data`` holds validated canonical tables; ``as_of`` (default :func:`default_as_of`) is the
    moment of the snapshot: outcomes recorded at or after it are treated as not yet known. The
    target ``won`` (Int8, 0/1) is "won within ``conversion_window_days`` of ``assigned_at``";
    assignments still open and younger than the window are left out, not counted as lost, and
    so are outcomes with no rep (they count in the lead-level rates only).
    Returns a :class:`PairFeatures` frame sorted by ``at`` (then lead_id, rep_id), with
    ``decided_at`` (when the target became known), ``mature`` (the whole window has passed, so
    the label is final and unbiased; early-decided labels over-represent quick outcomes) and
    ``propensity`` when the history has it.
    """
    config = config or FeatureConfig()
    as_of = default_as_of(data) if as_of is None else pd.Timestamp(as_of)
    asg = data.assignments
    events = outcome_events(asg, window_days=config.conversion_window_days)
    # An outcome with no rep is not a pair: it only enters the lead-level rates (index_history).
    known = (events["decided_at"] < as_of).to_numpy() & asg[Reps.rep_id].notna().to_numpy()
    rows = asg.loc[known]
    pairs = pd.DataFrame(
        {
            Leads.lead_id: rows[Leads.lead_id].astype("str"),
            Reps.rep_id: rows[Reps.rep_id].astype("str"),
            "at": rows["assigned_at"].astype("datetime64[ns]"),
        }
    )
    history = index_history(asg, data.leads, data.reps, config)
    out = _pair_frame(pairs, lead_features(data.leads), history)
    extra = {TARGET: events.loc[known, "won_in_window"].astype("Int8").to_numpy()}
    extra["decided_at"] = events.loc[known, "decided_at"].to_numpy()
    window = pd.Timedelta(days=config.conversion_window_days)
    extra["mature"] = (rows["assigned_at"] + window <= as_of).to_numpy()
    if "propensity" in rows:
        extra["propensity"] = rows["propensity"].astype(float).to_numpy()
    out = pd.concat(
        [out[KEY_COLUMNS], pd.DataFrame(extra, index=out.index), out.drop(columns=KEY_COLUMNS)],
        axis=1,
    )
    out = out.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)
    return PairFeatures.validate(out, lazy=True)


def build_scoring_pairs(
    data: CrmData,
    leads: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    config: FeatureConfig | None = None,
    candidates: pd.DataFrame | None = None,
    history: OutcomeHistory | None = None,
) -> pd.DataFrame:
    """Scoring pairs: ``leads`` (canonical leads table, new or already in ``data``) x reps, as of
    ``as_of``.

    ``data`` is the CRM history (reps, leads, assignments); only what was decided strictly before
    ``as_of`` is used. ``candidates`` (columns ``lead_id``, ``rep_id``; every lead_id one of
    ``leads``) limits the pairs; by default every lead is paired with every active rep.
    ``history`` is ``features.reps.index_history(data.assignments, data.leads, data.reps,
    config)``, built once and passed in when scoring many chunks of leads (default: built here).
    Returns a :class:`PairFeatures` frame (no ``won``) in the order of ``candidates`` (default:
    lead order, then rep order).
    """
    config = config or FeatureConfig()
    if history is None:
        history = index_history(data.assignments, data.leads, data.reps, config)
    elif history.config != config:
        raise ValueError("the history index was built with another FeatureConfig than config")
    as_of = pd.Timestamp(as_of)
    if candidates is None:
        rep_ids = data.reps.loc[data.reps["active"].astype(bool), Reps.rep_id].to_numpy(
            dtype=object
        )
        lead_ids = leads[Leads.lead_id].to_numpy(dtype=object)
        candidates = pd.DataFrame(
            {
                Leads.lead_id: np.repeat(lead_ids, len(rep_ids)),
                Reps.rep_id: np.tile(rep_ids, len(lead_ids)),
            }
        )
    pairs = pd.DataFrame(
        {
            Leads.lead_id: candidates[Leads.lead_id].astype("str").to_numpy(),
            Reps.rep_id: candidates[Reps.rep_id].astype("str").to_numpy(),
            "at": np.full(len(candidates), as_of.to_datetime64(), dtype="datetime64[ns]"),
        }
    )
    out = _pair_frame(pairs, lead_features(leads.drop_duplicates(Leads.lead_id)), history)
    return PairFeatures.validate(out, lazy=True)


def build_pairs_at(
    data: CrmData,
    pairs: pd.DataFrame,
    *,
    config: FeatureConfig | None = None,
    history: OutcomeHistory | None = None,
) -> pd.DataFrame:
    """Pair features of ``pairs`` (columns ``lead_id``, ``rep_id``, ``at``), each pair as of its
    own ``at``: e.g. every candidate rep of a historical lead at the moment it was routed.

    ``data`` is the CRM history and every pair's lead must be in ``data.leads``; each pair sees
    only what was decided strictly before its ``at``. ``history`` as in
    :func:`build_scoring_pairs`. Returns a :class:`PairFeatures` frame (no ``won``) in the order
    of ``pairs``. Raises ``ValueError`` for a missing column or time.
    """
    missing = [c for c in KEY_COLUMNS if c not in pairs]
    if missing:
        raise ValueError(f"pairs lack column(s) {missing}: expected lead_id, rep_id, at")
    at = pd.to_datetime(pairs["at"]).to_numpy(dtype="datetime64[ns]")
    if np.isnat(at).any():
        raise ValueError(f"{int(np.isnat(at).sum())} pair(s) have no time 'at'")
    config = config or FeatureConfig()
    if history is None:
        history = index_history(data.assignments, data.leads, data.reps, config)
    elif history.config != config:
        raise ValueError("the history index was built with another FeatureConfig than config")
    keys = pd.DataFrame(
        {
            Leads.lead_id: pairs[Leads.lead_id].astype("str").to_numpy(),
            Reps.rep_id: pairs[Reps.rep_id].astype("str").to_numpy(),
            "at": at,
        }
    )
    out = _pair_frame(keys, lead_features(data.leads.drop_duplicates(Leads.lead_id)), history)
    return PairFeatures.validate(out, lazy=True)


def pair_features(queries: pd.DataFrame, history: OutcomeHistory) -> pd.DataFrame:
    """Features of the rep ``rep_id`` for the lead described by the query row, as of ``at``.

    ``queries`` has ``rep_id``, ``at`` and the lead's segment and skill columns (``industry``,
    ``source``, ``product``, ``region``). Returns, on the queries' index, for each configured
    segment ``rep_<segment>_outcomes`` (the rep's decided outcomes in the lead's segment value,
    within the history window) and ``rep_<segment>_win_rate`` (their won-in-window rate, shrunk
    towards what the rep's overall rate and the segment's rate predict together), then
    ``rep_<column>_share`` for each skill column and region: the share of the rep's leads
    assigned before ``at`` whose value in that column is the lead's (0 for a rep with none yet);
    last the declared matches ``skill_match_<column>`` (1.0 if the lead's value, e.g. its
    industry, is one of the rep's ';'-separated skills) and ``region_match`` (1.0 if the lead's
    region is the rep's), compared by :mod:`features.tags`. The reps table holds today's skills
    and region, so the declared matches are read only where they held at ``at`` (the rep's
    ``attributes_since`` is at or before it) and are missing (NaN) elsewhere; the shares stand
    for them there.
    """
    config = history.config
    rep_ids = queries[Reps.rep_id]
    at = as_ns(queries["at"])
    since = history_start(config, at)
    rates = rep_win_rates(history, rep_ids, at)
    rep_keys = history.codes("rep", rep_ids)
    out = {}
    for segment in config.segment_columns:
        keys = history.codes(segment, queries[segment])
        n_seg, w_seg = history.outcomes_by_segment[segment].before(keys, at, since)
        segment_rate = shrink(w_seg, n_seg, rates.company, config.shrinkage_strength)
        # Without a record in the segment, expect the rep's overall edge applied to the
        # segment's own rate (additive on the log-odds scale).
        prior = expit(_logit(rates.rep) + _logit(segment_rate) - _logit(rates.company))
        both = (rep_keys >= 0) & (keys >= 0)
        pair_keys = np.where(both, rep_keys * len(history.vocabularies[segment]) + keys, -1)
        n, w = history.outcomes_by_rep_segment[segment].before(pair_keys, at, since)
        out[f"rep_{segment}_outcomes"] = n
        out[f"rep_{segment}_win_rate"] = shrink(w, n, prior, config.segment_shrinkage_strength)
    assigned, _ = history.assigned_by_rep.before(rep_keys, at)
    for column in share_columns(config):
        keys = history.codes(column, queries[column])
        both = (rep_keys >= 0) & (keys >= 0)
        pair_keys = np.where(both, rep_keys * len(history.vocabularies[column]) + keys, -1)
        n, _ = history.assigned_by_rep_value[column].before(pair_keys, at)
        out[f"rep_{column}_share"] = n / np.maximum(assigned, 1.0)
    held = attributes_held(history.reps, rep_ids, at)
    for column in config.skill_columns:
        hit = _skill_match(rep_ids, queries[column], history.reps)
        out[f"skill_match_{column}"] = np.where(held, hit, np.nan)
    out["region_match"] = np.where(
        held, _region_match(rep_ids, queries["region"], history.reps), np.nan
    )
    return pd.DataFrame(out, index=queries.index)


def attributes_held(
    reps: pd.DataFrame, rep_ids: pd.Series | np.ndarray, at_ns: np.ndarray
) -> np.ndarray:
    """(n,) bool: the reps table's skills and region of rep ``rep_ids[k]`` held at
    ``at_ns[k]``, i.e. the rep's ``attributes_since`` is at or before it (``reps`` indexed by
    rep_id). False when the column is absent or empty, and for a rep not in the table."""
    if "attributes_since" not in reps:
        return np.zeros(len(at_ns), dtype=bool)
    since = as_ns(reps["attributes_since"].reindex(rep_ids))
    return (since != NAT) & (since <= at_ns)


def _skill_match(rep_ids: pd.Series, values: pd.Series, reps: pd.DataFrame) -> np.ndarray:
    """Whether each lead value is one of its rep's ';'-separated skills (:mod:`features.tags`).

    Decided once per distinct (rep, value), not once per pair.
    """
    rep_codes, rep_uniques = pd.factorize(np.asarray(rep_ids, dtype=object))
    value_codes, value_uniques = pd.factorize(tag_values(values), use_na_sentinel=True)
    skills = tag_sets(reps["skills"].reindex(rep_uniques))
    # Missing values have code -1; shift so they get a slot of their own and never match.
    stride = len(value_uniques) + 1
    distinct, inverse = np.unique(rep_codes * stride + value_codes + 1, return_inverse=True)
    hit = np.array(
        [
            code % stride > 0 and value_uniques[code % stride - 1] in skills[code // stride]
            for code in distinct
        ],
        dtype=bool,
    )
    return hit[inverse]


def _region_match(rep_ids: pd.Series, regions: pd.Series, reps: pd.DataFrame) -> np.ndarray:
    """Whether each lead's region is its rep's (:mod:`features.tags`; false when either is
    missing)."""
    rep_region = tag_values(reps["region"]).reindex(rep_ids).to_numpy(dtype=object)
    lead_region = tag_values(regions).to_numpy(dtype=object)
    return pd.notna(lead_region) & (lead_region == rep_region)


def _pair_frame(pairs: pd.DataFrame, leads: pd.DataFrame, history: OutcomeHistory) -> pd.DataFrame:
    """``pairs`` (lead_id, rep_id, at) with lead, rep and pair features as of ``at``; ``leads``
    is :func:`features.leads.lead_features` of (at least) the pairs' leads."""
    position = leads.index.get_indexer(pairs[Leads.lead_id])
    if (position < 0).any():
        missing = pairs[Leads.lead_id].to_numpy(dtype=object)[position < 0]
        raise ValueError(
            f"{len(missing)} pair(s) refer to leads missing from the leads table, e.g. "
            f"{list(dict.fromkeys(missing))[:5]}: pass the leads of every pair"
        )
    lead_part = leads.iloc[position].reset_index(drop=True)
    lead_part.index = pairs.index
    queries = pd.concat([pairs, lead_part], axis=1)
    return pd.concat(
        [
            queries.drop(columns=["created_at", "account_id"], errors="ignore"),
            lead_history_features(queries, history),
            rep_features(queries, history),
            pair_features(queries, history),
        ],
        axis=1,
    )


def _logit(p: np.ndarray) -> np.ndarray:
    return logit(np.clip(p, 1e-6, 1 - 1e-6))


def _is_share_feature(column: str) -> bool:
    return re.fullmatch(r"rep_(industry|source|product|region)_share", column) is not None


def _is_segment_feature(column: str) -> bool:
    return (
        re.fullmatch(r"rep_(industry|source|product|region)_(outcomes|win_rate)", column)
        is not None
    )
