"""One day's matching inputs from a small win-probability matrix, shared by the matching,
fairness-window and output tests."""

from __future__ import annotations

import pandas as pd


def day_frames(p, capacity, leads=None, reps=None, *, start="2025-01-06 08:00"):
    """candidates, leads and reps_today for a p matrix (rows leads L0.., columns reps R0..; None:
    pair not scored) and per-rep capacities. Leads are created an hour apart from ``start``;
    reps are active, available, in region EU with no skills and no open-lead limit. ``leads``
    and ``reps``: extra or replacing columns (lists, or one value for every row)."""
    n, r = len(p), len(capacity)
    rows = [(f"L{i}", f"R{j}", p[i][j]) for i in range(n) for j in range(r) if p[i][j] is not None]
    candidates = pd.DataFrame(rows, columns=["lead_id", "rep_id", "p_win"])
    lead_frame = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "created_at": pd.date_range(start, periods=n, freq="h"),
            **(leads or {}),
        }
    )
    rep_frame = pd.DataFrame(
        {
            "rep_id": [f"R{j}" for j in range(r)],
            "active": True,
            "available": True,
            "capacity": capacity,
            "open_load": 0,
            "max_open_leads": pd.array([None] * r, dtype="Int64"),
            "tenure_days": 400.0,
            "skills": "",
            "region": "EU",
            "languages": "",
            **(reps or {}),
        }
    )
    return candidates, lead_frame, rep_frame
