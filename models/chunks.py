"""Scoring many candidate pairs in bounded memory: a chunk of whole leads at a time."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from features.schemas import Leads

ChunkScores = Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]
"""``score(leads, candidates)``: one probability per row of ``candidates`` (lead_id, rep_id),
whose leads are the rows of ``leads``."""


def score_in_chunks(
    candidates: pd.DataFrame,
    leads: pd.DataFrame,
    score: ChunkScores,
    *,
    chunk_rows: int,
) -> np.ndarray:
    """``score`` of every row of ``candidates``, in the rows' order, called on chunks of about
    ``chunk_rows`` pairs that never split a lead's pairs (a lead with more pairs than that is a
    chunk of its own), so each call sees every candidate rep of its leads and only those leads'
    rows of ``leads``. The pairs of one lead need not be next to each other."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    out = np.empty(len(candidates))
    if candidates.empty:
        return out
    lead_codes = pd.factorize(candidates[Leads.lead_id])[0]
    per_lead = np.bincount(lead_codes)
    starts = np.concatenate([[0], np.cumsum(per_lead)])
    order = np.argsort(lead_codes, kind="stable")
    ordered = candidates.iloc[order]
    lead_start = 0
    while lead_start < len(per_lead):
        lead_end = int(np.searchsorted(starts, starts[lead_start] + chunk_rows, side="right")) - 1
        lead_end = max(lead_end, lead_start + 1)
        rows = slice(starts[lead_start], starts[lead_end])
        chunk = ordered.iloc[rows]
        chunk_leads = leads.loc[leads[Leads.lead_id].isin(chunk[Leads.lead_id])]
        out[order[rows]] = score(chunk_leads, chunk)
        lead_start = lead_end
    return out
