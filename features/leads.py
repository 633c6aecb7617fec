"""Lead features: what is known about a lead itself, whoever works it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.reps import OutcomeHistory, history_start, shrink
from features.schemas import Leads
from features.timestamps import DAY_NS, as_ns, parse_dates

LEAD_CATEGORICAL = ["source", "industry", "region", "product"]
LEAD_NUMERIC = ["company_size", "expected_value", "created_weekday", "created_hour"]
LEAD_HISTORY = ["lead_age_days", "account_outcomes", "account_win_rate"]


def extra_columns(leads: pd.DataFrame) -> list[str]:
    """The extra lead feature columns (names starting with ``x_``), in table order."""
    return [str(c) for c in leads.columns if str(c).startswith("x_")]


def is_number(values: pd.Series) -> bool:
    """Whether a lead column is read as a number (numbers, and yes/no values as 0/1) rather
    than as categories (text): the one rule for every model that reads ``x_*`` columns."""
    return pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def lead_features(leads: pd.DataFrame) -> pd.DataFrame:
    """One row per lead, indexed by ``lead_id``.

    Columns: ``created_at`` and ``account_id`` if present (kept for the history features of
    :func:`lead_history_features`, not model inputs themselves), :data:`LEAD_CATEGORICAL` as text (missing stays missing), ``company_size`` and
    ``expected_value`` as float (NaN when the optional column is absent), ``created_weekday``
    (0 = Monday) and ``created_hour`` (0-23) of ``created_at``, then every ``x_*`` column: text
    columns as text, numeric and yes/no columns as float.
    """
    created = parse_dates(leads["created_at"])
    out = {"created_at": created}
    if "account_id" in leads:
        out["account_id"] = leads["account_id"].astype("str")
    out.update({column: leads[column].astype("str") for column in LEAD_CATEGORICAL})
    for column in ("company_size", "expected_value"):
        out[column] = (
            pd.to_numeric(leads[column], errors="coerce").astype(float)
            if column in leads
            else pd.Series(np.nan, index=leads.index)
        )
    out["created_weekday"] = created.dt.day_of_week.astype(float)
    out["created_hour"] = created.dt.hour.astype(float)
    for column in extra_columns(leads):
        values = leads[column]
        out[column] = values.astype(float) if is_number(values) else values.astype("str")
    frame = pd.DataFrame(out)
    frame.index = pd.Index(leads[Leads.lead_id].to_numpy(dtype=object), name=Leads.lead_id)
    return frame


def lead_history_features(queries: pd.DataFrame, history: OutcomeHistory) -> pd.DataFrame:
    """What the history says about each query's lead as of ``at`` (whoever works it).

    ``queries`` has ``at``, ``created_at`` and ``account_id`` (may be missing). Returns, on the
    queries' index, :data:`LEAD_HISTORY`: ``lead_age_days`` (days since the lead was created),
    ``account_outcomes`` (decided outcomes of the account's leads in the trailing history window)
    and ``account_win_rate`` (their won-in-window rate, shrunk towards the company rate; the
    company rate for a lead without an account).
    """
    config = history.config
    at = as_ns(queries["at"])
    since = history_start(config, at)
    n_all, w_all = history.outcomes_all.before(np.zeros(len(at), np.int64), at, since)
    company = (w_all + 1.0) / (n_all + 2.0)
    accounts = (
        queries["account_id"]
        if "account_id" in queries
        else pd.Series(np.nan, index=queries.index, dtype="str")
    )
    keys = history.codes("account", accounts)
    n, w = history.outcomes_by_account.before(keys, at, since)
    return pd.DataFrame(
        {
            "lead_age_days": (at - as_ns(queries["created_at"])) / DAY_NS,
            "account_outcomes": n,
            "account_win_rate": shrink(w, n, company, config.account_shrinkage_strength),
        },
        index=queries.index,
    )
