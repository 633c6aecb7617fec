"""A history without reps: leads and their outcomes only, read for lead scoring.

Many teams start with leads and outcomes but no usable owner history: no reps table, and
assignments (or an outcomes table mapped to them) without a ``rep_id``. Such a *lead-scoring
history* cannot drive matching, but it can train a lead-only model: the win chance of a lead
whoever works it, from what is known about the lead itself (:func:`features.pairs.feature_columns`
with ``rep_information=False``: its attributes, its age, its account's earlier outcomes).

Its rows are built by the pair-feature code itself (:mod:`features.pairs`), so the lead columns
are computed exactly as for the pair model: every outcome row is read as the lead handed to one
stand-in rep, :data:`NO_REP`, whose rep columns carry nothing and are not model inputs. The
target is the pair model's: won within ``conversion_window_days`` of ``assigned_at`` (in an
export without owners, the moment the lead's outcome record starts, often its creation).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from features.checks import positions_in
from features.config import FeatureConfig
from features.pairs import build_scoring_pairs, build_training_pairs
from features.reps import OutcomeHistory, index_history
from features.schemas import CrmData, Leads, Reps

NO_REP = ""
"""The rep of every lead-scoring row: nobody (an empty id no reps table can hold)."""


def no_reps() -> pd.DataFrame:
    """The reps table of a history without reps: the canonical columns, no rows."""
    return pd.DataFrame({name: pd.Series(dtype="string") for name in Reps.to_schema().columns})


def is_lead_scoring(data: CrmData) -> bool:
    """Whether ``data`` is a lead-scoring history: no reps, and no assignment that names one."""
    asg = data.assignments
    named = asg[Reps.rep_id].notna().any() if Reps.rep_id in asg else False
    return len(data.reps) == 0 and not named


def stand_in(data: CrmData) -> CrmData:
    """``data`` with every outcome row given to :data:`NO_REP`: the history a lead-only model
    trains on (every outcome counts, owned or not; the reps table is left as it is)."""
    return replace(data, assignments=data.assignments.assign(rep_id=NO_REP))


def build_lead_training_rows(
    data: CrmData, *, as_of: pd.Timestamp | None = None, config: FeatureConfig | None = None
) -> pd.DataFrame:
    """Training rows of a lead-scoring history: one per outcome row whose target is known
    before ``as_of``.

    ``data`` is a validated lead-scoring history (:func:`is_lead_scoring`). Returns a
    :class:`features.pairs.PairFeatures` frame as :func:`features.pairs.build_training_pairs`
    makes it (target ``won``, ``decided_at``, ``mature``, sorted by ``at``), with ``rep_id``
    :data:`NO_REP` on every row.
    """
    return build_training_pairs(stand_in(data), as_of=as_of, config=config)


def index_lead_history(data: CrmData, config: FeatureConfig) -> OutcomeHistory:
    """The history index :func:`build_lead_scoring_rows` reads (build once, score many)."""
    every = stand_in(data)
    return index_history(every.assignments, every.leads, every.reps, config)


def build_lead_scoring_rows(
    data: CrmData,
    leads: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    config: FeatureConfig | None = None,
    history: OutcomeHistory | None = None,
) -> pd.DataFrame:
    """Scoring rows of ``leads`` (canonical leads table) as of ``as_of``: one per lead, in
    the leads' order, each as if handed over at ``as_of`` (its ``lead_age_days`` is its age
    then). ``history`` is :func:`index_lead_history` of ``data`` under ``config``."""
    config = config or FeatureConfig()
    candidates = pd.DataFrame(
        {Leads.lead_id: leads[Leads.lead_id].astype("str").to_numpy(), Reps.rep_id: NO_REP}
    )
    return build_scoring_pairs(
        stand_in(data),
        leads,
        as_of=as_of,
        config=config,
        candidates=candidates,
        history=history if history is not None else index_lead_history(data, config),
    )


def open_leads(data: CrmData) -> pd.DataFrame:
    """The leads of ``data`` with no outcome yet: no won or lost row (never handed over, or
    only open rows). ``data`` is a snapshot of the history at the scoring moment
    (:func:`features.daily.snapshot`), so an outcome recorded later does not count. Returns
    the canonical leads rows, oldest first (ties by lead_id)."""
    asg = data.assignments
    closed = asg.loc[asg["status"].isin(["won", "lost"]), Leads.lead_id]
    leads = data.leads.loc[positions_in(data.leads[Leads.lead_id], closed) < 0]
    order = np.lexsort(
        (leads[Leads.lead_id].astype(str).to_numpy(), leads["created_at"].to_numpy())
    )
    return leads.iloc[order].reset_index(drop=True)
