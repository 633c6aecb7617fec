"""Baseline routing policies, with the same input (a prepared day) and output as the optimiser.

Each returns ``choice``: (n,) the chosen pair position per lead (into the day's pairs), -1 when
the lead is held. Leads are served in arrival order; a lead only goes to an eligible rep with
capacity left, and is held when there is none.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from matching.day import Day


def _serve(day: Day, pick: Callable[[np.ndarray, np.ndarray], int]) -> np.ndarray:
    """Serve leads in arrival order; ``pick(pairs, left)`` chooses among the lead's
    assignable pairs whose rep has capacity left (pairs are sorted by rep position)."""
    start = day.lead_start
    ok = day.assignable
    left = day.capacity.copy()
    choice = np.full(day.n_leads, -1)
    for lead in range(day.n_leads):
        pairs = np.arange(start[lead], start[lead + 1])
        pairs = pairs[ok[pairs]]
        pairs = pairs[left[day.rep[pairs]] > 0]
        if len(pairs):
            j = pick(pairs, left)
            choice[lead] = j
            left[day.rep[j]] -= 1
    return choice


def round_robin(day: Day) -> np.ndarray:
    """Each lead to the next rep in rep_id order (cyclically) who may take it and has room."""
    pointer = 0

    def pick(pairs: np.ndarray, left: np.ndarray) -> int:
        nonlocal pointer
        reps = day.rep[pairs]
        k = int(np.searchsorted(reps, pointer))
        j = int(pairs[k if k < len(pairs) else 0])
        pointer = int(day.rep[j]) + 1
        return j

    return _serve(day, pick)


def weighted_round_robin(day: Day) -> np.ndarray:
    """Capacity-weighted round-robin: each lead to the eligible rep with room whose share of
    its capacity used after taking it would be lowest (ties: rep_id order)."""
    capacity = np.maximum(day.capacity, 1)

    def pick(pairs: np.ndarray, left: np.ndarray) -> int:
        reps = day.rep[pairs]
        used = day.capacity[reps] - left[reps]
        return int(pairs[np.argmin((used + 1) / capacity[reps])])

    return _serve(day, pick)


def greedy(day: Day) -> np.ndarray:
    """Each lead, in arrival order, to its best rep (highest p_win) with capacity left."""

    def pick(pairs: np.ndarray, left: np.ndarray) -> int:
        return int(pairs[np.argmax(day.p[pairs])])

    return _serve(day, pick)


BASELINES: dict[str, Callable[[Day], np.ndarray]] = {
    "round_robin": round_robin,
    "weighted_round_robin": weighted_round_robin,
    "greedy": greedy,
}
