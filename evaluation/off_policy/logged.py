"""The logged decisions of a CRM history and the reps that could have taken each one (Open
Bandit Pipeline's "logged bandit feedback"): what off-policy estimates are computed on.

:func:`logged_decisions` reads each lead's first assignment and its outcome;
:func:`historical_candidates` rebuilds who was eligible at that moment; :func:`choice_features`
describes what a router could see of each candidate pair (for the propensity model);
:func:`cross_fit_folds` splits the leads by account for cross-fitting.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from evaluation.off_policy._frames import pair_keys, require
from features.leads import is_number
from features.pairs import default_as_of
from features.reps import outcome_events
from features.schemas import CrmData, Leads, Reps
from features.tags import has_tag, same_tag, tag_sets
from features.timestamps import DAY_NS, NAT, as_ns

CHOICE_PAIR_COLUMNS = (
    "region_match",
    "skill_match_industry",
    "skill_match_product",
    "rep_log_tenure",
    "rep_log_tenure_x_value",
)
"""Pair columns of :func:`choice_features` that the propensity model uses."""


def logged_decisions(
    data: CrmData,
    *,
    as_of: pd.Timestamp | None = None,
    window_days: int = 90,
    reward: Literal["won", "value"] = "won",
) -> pd.DataFrame:
    """The routing decisions of the history: each lead's first assignment, with its outcome.

    ``data`` holds validated canonical tables; ``as_of`` (default: midnight after the last
    recorded event) is when the history was exported. A decision is ``mature`` when its whole
    conversion window has passed by ``as_of``: only then is its outcome final and an unbiased
    draw (recent decisions over-represent quick losses). Later reassignments of a lead are not
    decisions of the routing policy and are left out.

    Returns one row per assigned lead, in assignment order: ``lead_id``, ``rep_id``, ``at``
    (assigned_at), ``propensity`` (float, NaN where not logged), ``cluster`` (the lead's
    account_id, or its lead_id when it has none), ``mature`` (bool) and ``reward`` (float, NaN
    unless mature): 1.0 if won within ``window_days``, else 0.0; with ``reward="value"`` the
    deal value of such a win instead of 1.0.
    """
    if window_days <= 0:
        raise ValueError(f"window_days must be > 0, got {window_days}")
    if reward not in ("won", "value"):
        raise ValueError(f"reward must be 'won' or 'value', got {reward!r}")
    as_of = default_as_of(data) if as_of is None else pd.Timestamp(as_of)
    # An outcome with no rep was routed to nobody: it is not a decision of the routing policy.
    owned = data.assignments[data.assignments[Reps.rep_id].notna()]
    asg = owned.sort_values(["assigned_at", Leads.lead_id], kind="stable")
    first = asg.drop_duplicates(Leads.lead_id, keep="first")
    won = outcome_events(first, window_days=window_days)["won_in_window"].to_numpy() == 1
    mature = (first["assigned_at"] + pd.Timedelta(days=window_days) <= as_of).to_numpy()
    if reward == "value":
        gain = pd.to_numeric(first["deal_value"]).to_numpy(dtype=float, na_value=np.nan)
        gain = np.where(won, np.nan_to_num(gain, nan=0.0), 0.0)
    else:
        gain = won.astype(float)
    if "propensity" in first:
        propensity = pd.to_numeric(first["propensity"]).to_numpy(dtype=float, na_value=np.nan)
    else:
        propensity = np.full(len(first), np.nan)
    lead_ids = first[Leads.lead_id].astype("str").to_numpy(dtype=object)
    cluster = lead_ids
    if "account_id" in data.leads:
        accounts = data.leads.drop_duplicates(Leads.lead_id).set_index(Leads.lead_id)["account_id"]
        account = accounts.reindex(lead_ids).to_numpy(dtype=object)
        cluster = np.where(pd.isna(account), lead_ids, "account:" + account.astype(str))
    return pd.DataFrame(
        {
            Leads.lead_id: pd.array(lead_ids, dtype="str"),
            Reps.rep_id: pd.array(
                first[Reps.rep_id].astype("str").to_numpy(dtype=object), dtype="str"
            ),
            "at": first["assigned_at"].to_numpy(dtype="datetime64[ns]"),
            "propensity": propensity,
            "cluster": pd.array(cluster, dtype="str"),
            "mature": mature,
            "reward": np.where(mature, gain, np.nan),
        }
    )


def historical_candidates(data: CrmData, decisions: pd.DataFrame) -> pd.DataFrame:
    """The reps that could have taken each logged decision, reconstructed from the tables.

    ``decisions`` has ``lead_id``, ``rep_id`` (the rep chosen) and ``at``. A rep is a candidate
    at time ``at`` on day ``d`` when it was employed (hired on or before ``d``; a rep no longer
    active counts as employed up to the day of its last assignment), available that day (the
    availability table), under that day's capacity (its assignments earlier that day, from
    ``d``'s midnight up to the decision in routing order: by time, then table order) and, with
    ``max_open_leads``, its open leads at the start of the day plus that day's assignments are
    under the cap. This is the eligibility a capacity-aware router applies; on the simulator it
    reproduces the routing's candidate sets, except on a departed rep's last days without an
    assignment (the tables hold no leave date), where that rep is left out.

    The logged rep is always a candidate (an override, a rule outside the tables): ``eligible``
    is False on such rows, and their share tells how far the reconstruction can be trusted.
    Returns ``lead_id``, ``rep_id``, ``at``, ``eligible`` (bool), in decision order then
    ``data.reps`` order.
    """
    require(decisions, [Leads.lead_id, Reps.rep_id, "at"], "decisions")
    reps = data.reps.reset_index(drop=True)
    asg = data.assignments
    at = as_ns(decisions["at"])
    if (at == NAT).any():
        raise ValueError("decisions must have a time 'at' on every row")
    day = at - at % DAY_NS
    # Assignments in routing order: by time, then table order (routers stamp several leads
    # with the same second). A decision's place in that order counts what came before it.
    assigned_ns = as_ns(asg["assigned_at"])
    order = np.argsort(assigned_ns, kind="stable")
    sequence = np.empty(len(order), dtype=float)
    sequence[order] = np.arange(len(order))
    sorted_ns = assigned_ns[order]
    row_of = pd.Series(sequence, index=pair_keys(asg) + "\x1f" + assigned_ns.astype(str))
    row_of = row_of[~row_of.index.duplicated()]
    place = row_of.reindex(pair_keys(decisions) + "\x1f" + at.astype(str)).to_numpy()
    # A decision missing from the table comes before everything stamped at its time.
    place = np.where(np.isnan(place), np.searchsorted(sorted_ns, at, side="left") - 0.5, place)
    day_place = np.searchsorted(sorted_ns, day, side="left") - 0.5
    eligible = np.zeros((len(decisions), len(reps)), dtype=bool)
    rep_of_row = asg[Reps.rep_id].astype("str").to_numpy(dtype=object)
    availability = data.availability
    for j, rep in enumerate(reps[Reps.rep_id].astype("str")):
        mine = rep_of_row == rep
        places = np.sort(sequence[mine])
        closed = np.sort(as_ns(asg.loc[mine, "closed_at"]))
        closed = closed[closed != NAT]
        hired = as_ns(reps.loc[[j], "hire_date"])[0]
        employed = hired - hired % DAY_NS <= day
        if not bool(reps.loc[j, "active"]):
            last = assigned_ns[mine].max() if mine.any() else NAT
            employed &= day <= last - last % DAY_NS
        capacity = np.full(len(day), float(reps.loc[j, "daily_capacity"]))
        available = np.ones(len(day), dtype=bool)
        if availability is not None:
            rows = availability.loc[availability[Reps.rep_id].astype("str") == rep]
            dates = as_ns(rows["date"])
            known = pd.Series(np.arange(len(rows)), index=dates - dates % DAY_NS)
            position = known.reindex(day).to_numpy()
            hit = ~np.isnan(position)
            hit_rows = position[hit].astype(int)
            available[hit] = rows["available"].to_numpy(dtype=bool)[hit_rows]
            if "capacity" in rows:
                override = pd.to_numeric(rows["capacity"]).to_numpy(dtype=float, na_value=np.nan)
                capacity[hit] = np.where(
                    np.isnan(override[hit_rows]), capacity[hit], override[hit_rows]
                )
        before_today = np.searchsorted(places, day_place)
        used_today = np.searchsorted(places, place) - before_today
        ok = employed & available & (used_today < capacity)
        if "max_open_leads" in reps and pd.notna(reps.loc[j, "max_open_leads"]):
            open_at_start = before_today - np.searchsorted(closed, day, side="left")
            ok &= open_at_start + used_today < float(reps.loc[j, "max_open_leads"])
        eligible[:, j] = ok
    chosen = pd.Index(reps[Reps.rep_id].astype("str")).get_indexer(
        decisions[Reps.rep_id].astype("str")
    )
    if (chosen < 0).any():
        unknown = decisions[Reps.rep_id].to_numpy(dtype=object)[chosen < 0]
        raise ValueError(
            f"{int((chosen < 0).sum())} decision(s) name reps missing from the reps table, e.g. "
            f"{list(dict.fromkeys(unknown))[:5]}"
        )
    include = eligible.copy()
    include[np.arange(len(decisions)), chosen] = True
    row, col = np.nonzero(include)
    return pd.DataFrame(
        {
            Leads.lead_id: pd.array(
                decisions[Leads.lead_id].astype("str").to_numpy()[row], dtype="str"
            ),
            Reps.rep_id: pd.array(reps[Reps.rep_id].astype("str").to_numpy()[col], dtype="str"),
            "at": at[row].view("datetime64[ns]"),
            "eligible": eligible[row, col],
        }
    )


def choice_features(data: CrmData, candidates: pd.DataFrame) -> pd.DataFrame:
    """What a historical router could see of each candidate pair, for :class:`ChoiceModel`.

    ``candidates`` has ``lead_id``, ``rep_id`` and ``at``. Returns it with: ``region_match``,
    ``skill_match_industry`` and ``skill_match_product`` (1.0 when the lead's region is the rep's,
    or its industry / product is one of the rep's ';'-separated skills, compared by
    :func:`features.tags.tag` as the eligibility rules compare them), ``rep_log_tenure``
    (log(1 + years since hire) at ``at``), ``lead_log_value`` (log(1 + expected_value), NaN when
    unknown), ``rep_log_tenure_x_value`` (tenure times the lead's log value, centred: routers
    give senior reps the valuable leads) and every ``x_*`` lead column read as a number
    (:func:`features.leads.is_number`: yes/no values as 0/1) as it is.
    """
    require(candidates, [Leads.lead_id, Reps.rep_id, "at"], "candidates")
    leads = data.leads.drop_duplicates(Leads.lead_id).set_index(Leads.lead_id)
    reps = data.reps.drop_duplicates(Reps.rep_id).set_index(Reps.rep_id)
    lead_ids = candidates[Leads.lead_id].astype("str").to_numpy(dtype=object)
    rep_ids = candidates[Reps.rep_id].astype("str").to_numpy(dtype=object)
    lead_pos = leads.index.get_indexer(lead_ids)
    rep_pos = reps.index.get_indexer(rep_ids)
    if (lead_pos < 0).any() or (rep_pos < 0).any():
        raise ValueError(
            "candidates name leads or reps missing from the data: "
            f"{int((lead_pos < 0).sum())} unknown lead(s), {int((rep_pos < 0).sum())} unknown rep(s)"
        )
    lead_rows = leads.iloc[lead_pos]
    rep_rows = reps.iloc[rep_pos]

    def column(frame: pd.DataFrame, name: str) -> np.ndarray:
        if name not in frame:
            return np.full(len(frame), None, dtype=object)
        return frame[name].astype("object").to_numpy()

    # Compared as the eligibility rules compare them (features.tags), so the feature and the
    # rule agree on whether a rep has a lead's region or skill.
    region = same_tag(column(lead_rows, "region"), column(rep_rows, "region"))
    out = {"region_match": region.astype(float)}
    rep_tags = tag_sets(column(rep_rows, "skills"))
    for name in ("industry", "product"):
        out[f"skill_match_{name}"] = has_tag(column(lead_rows, name), rep_tags).astype(float)
    tenure_years = (as_ns(candidates["at"]) - as_ns(rep_rows["hire_date"])) / DAY_NS / 365.25
    out["rep_log_tenure"] = np.log1p(np.maximum(tenure_years, 0.0))
    if "expected_value" in lead_rows:
        value = pd.to_numeric(lead_rows["expected_value"]).to_numpy(dtype=float, na_value=np.nan)
        log_value = np.log1p(np.maximum(value, 0.0))
    else:
        log_value = np.full(len(candidates), np.nan)
    out["lead_log_value"] = log_value
    # Centred so the interaction does not duplicate the tenure column; unknown values count as
    # the mean.
    known = np.isfinite(log_value)
    centre = log_value[known].mean() if known.any() else 0.0
    out["rep_log_tenure_x_value"] = out["rep_log_tenure"] * np.where(known, log_value - centre, 0)
    for name in lead_rows.columns:
        if str(name).startswith("x_") and is_number(lead_rows[name]):
            out[str(name)] = pd.to_numeric(lead_rows[name]).to_numpy(dtype=float, na_value=np.nan)
    return pd.concat([candidates.reset_index(drop=True), pd.DataFrame(out)], axis=1).set_axis(
        candidates.index
    )


def cross_fit_folds(decisions: pd.DataFrame, n_folds: int = 2, seed: int = 0) -> pd.Series:
    """A fold (0 to n_folds - 1) for every decision's lead, drawn per ``cluster`` (so an
    account's leads share a fold), for cross-fitting the model and the target policy.

    ``decisions`` has ``lead_id`` and optionally ``cluster`` (default: each lead its own).
    Returns an int Series indexed by lead_id: score the leads of fold k, and choose their
    target, with a model trained on the other folds' outcomes only.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    require(decisions, [Leads.lead_id], "decisions")
    cluster = decisions["cluster"] if "cluster" in decisions else decisions[Leads.lead_id]
    codes, names = pd.factorize(cluster.astype("str"))
    fold = np.random.default_rng(seed).integers(0, n_folds, len(names))[codes]
    return pd.Series(
        fold, index=pd.Index(decisions[Leads.lead_id].astype("str"), name=Leads.lead_id)
    )
