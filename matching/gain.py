"""How much a plan is expected to gain over round-robin on the same day, and from what.

Two parts, each in words in the report: which leads get worked today (when capacity is short,
the plan gives the free places to the leads most likely to be won) and who works them (each
lead with a rep who does better with it than the average eligible rep). Pure functions over
assignment frames (lead_id, rep_id, p_win, p_baseline).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from features.schemas import Leads, Reps


@dataclass(frozen=True)
class GainSplit:
    """The expected gain of the plan over round-robin on the same day, split in two.

    unit: "wins" (objective conversions) or "revenue"; leadmatch / round_robin: each plan's
    expected worth; selection: the part from which leads get worked today (the round-robin
    worth of the leads leadmatch places minus that of the leads round-robin places); matching:
    the part from who works them (the rest: the rep-over-average uplift of leadmatch's pairs
    minus round-robin's; 0 without a reliable rep signal, which the plan does not count on);
    placed / placed_round_robin: leads each plan places; to_place: leads that could be placed.
    """

    unit: str
    leadmatch: float
    round_robin: float
    selection: float
    matching: float
    placed: int
    placed_round_robin: int
    to_place: int
    rep_signal: bool

    @property
    def gain(self) -> float:
        return self.leadmatch - self.round_robin

    @property
    def relative(self) -> float | None:
        """gain / round_robin, None when round-robin expects nothing."""
        return self.gain / self.round_robin if self.round_robin > 0 else None


def split_gain(
    leadmatch: pd.DataFrame,
    round_robin: pd.DataFrame,
    values: Mapping[str, float] | None = None,
    *,
    rep_signal: bool,
) -> GainSplit:
    """Split leadmatch's expected gain over round-robin into which leads and who works them.

    ``leadmatch`` and ``round_robin``: assignments of the same day (lead_id, rep_id (missing
    when held), p_win, p_baseline); ``values``: lead_id -> value(l) (default 1: wins).
    With worth_b = sum of value * p_baseline and worth_p = sum of value * p_win over a plan's
    placed leads: selection = worth_b(leadmatch) - worth_b(round-robin); with a rep signal the
    plans are worth worth_p and matching = the rest, without one they are worth worth_b (the
    model's per-rep differences are not trusted) and matching = 0.
    """

    selection = plan_worth(leadmatch, values, rep_signal=False) - plan_worth(
        round_robin, values, rep_signal=False
    )
    ours = plan_worth(leadmatch, values, rep_signal=rep_signal)
    theirs = plan_worth(round_robin, values, rep_signal=rep_signal)
    return GainSplit(
        unit="wins" if values is None else "revenue",
        leadmatch=ours,
        round_robin=theirs,
        selection=selection,
        matching=(ours - theirs - selection) if rep_signal else 0.0,
        placed=len(placed_rows(leadmatch)),
        placed_round_robin=len(placed_rows(round_robin)),
        to_place=int(leadmatch["p_baseline"].notna().sum()),
        rep_signal=rep_signal,
    )


def plan_worth(
    assignments: pd.DataFrame, values: Mapping[str, float] | None = None, *, rep_signal: bool
) -> float:
    """Expected worth of a plan: the sum of value * win chance over its placed leads (rep_id
    set), with the model's p_win when the rep signal is trusted and p_baseline otherwise;
    ``values``: lead_id -> value(l) (default 1: expected wins)."""
    placed = placed_rows(assignments)
    chance = placed["p_win" if rep_signal else "p_baseline"].to_numpy(float)
    value = placed[Leads.lead_id].map(values).to_numpy(float) if values is not None else 1.0
    return float((value * chance).sum())


def placed_rows(assignments: pd.DataFrame) -> pd.DataFrame:
    """The leads a plan places: a rep set, and not a reclaimed lead that stays with its rep
    (action "keep": the plan places nothing there and has no win chance for it)."""
    placed = assignments[Reps.rep_id].notna()
    if "action" in assignments:
        placed &= assignments["action"].ne("keep").to_numpy(dtype=bool, na_value=True)
    return assignments.loc[placed]
