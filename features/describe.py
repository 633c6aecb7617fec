"""What a history holds, and whether leadmatch can learn from it.

`leadmatch validate` prints :func:`describe_crm` and :func:`check_history`; `leadmatch train`
runs :func:`check_history` before the heavy work and refuses the same histories. Labels are
counted exactly as :func:`features.pairs.build_training_pairs` makes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.checks import positions_in
from features.daily import sla_reclaim_off_reason
from features.lead_scoring import is_lead_scoring
from features.pairs import default_as_of
from features.reps import outcome_events
from features.schemas import CrmData, Leads, Reps

# Wins closed after the conversion window, as a share of all wins: above it, say so.
LATE_WIN_SHARE = 0.2
# Share of the wins the suggested conversion window counts.
WINDOW_COVERAGE = 0.9
# Lost share of the closed outcomes below which a history has "almost no losses", judged from
# this many closed outcomes on (a handful of wins and no loss is a small sample, not a sign).
FEW_LOSSES_SHARE = 0.05
FEW_LOSSES_MIN_CLOSED = 20
# Share of the leads older than the window with no assignment row above which "most leads
# have no owner".
UNOWNED_SHARE = 0.5
# Gap between validate's win rate and the training base rate that deserves an explanation.
RATE_GAP = 0.05

LEAD_SCORING = (
    "a lead-scoring history (no reps: no matching); `leadmatch train` trains a lead-only "
    "model and `leadmatch score` scores the open leads"
)
_FIX_OWNERS = (
    "If a lead without an owner was lost, say so in the mapping: `unassigned_outcome: lost` "
    "under tables.assignments; otherwise export the lost leads with their owners."
)


def describe_crm(data: CrmData) -> dict[str, object]:
    """Row counts, the leads' date range, win rate of closed assignments and ownership counts.

    ``data`` must be validated (typed) tables. Returns a flat, ordered mapping of label -> value.
    """
    asg = data.assignments
    closed = asg["status"].isin(["won", "lost"])
    created = data.leads["created_at"]
    out: dict[str, object] = {
        "reps": len(data.reps),
        "active reps": int(data.reps["active"].sum()),
        "leads": len(data.leads),
        "assignment rows": len(asg),
        "availability rows": 0 if data.availability is None else len(data.availability),
        "leads created": _date_range(created),
        "closed (won + lost)": int(closed.sum()),
        "win rate of closed": float((asg["status"] == "won").sum() / closed.sum())
        if closed.any()
        else None,
        "open": int((asg["status"] == "open").sum()),
        # Without any first-contact date nothing shows which open leads were contacted.
        "open, never contacted": "unknown (no first-contact dates)"
        if sla_reclaim_off_reason(data)
        else int(((asg["status"] == "open") & asg["first_contact_at"].isna()).sum()),
        "unassigned leads": int(
            (positions_in(data.leads[Leads.lead_id], asg[Leads.lead_id]) < 0).sum()
        ),
        "reps with history": int(asg[Reps.rep_id].nunique()),
    }
    if is_lead_scoring(data):
        # Nobody to count: say what the history is instead.
        for key in ("active reps", "reps with history", "open, never contacted"):
            del out[key]
        out["reps"] = "none: lead scoring"
        return out
    no_rep = int((closed & asg[Reps.rep_id].isna()).sum())
    if no_rep:
        out["closed with no rep"] = no_rep
    return out


def _date_range(values: pd.Series) -> str:
    if values.empty:
        return "(none)"
    return f"{values.min():%Y-%m-%d} .. {values.max():%Y-%m-%d}"


@dataclass(frozen=True)
class HistoryCheck:
    """What a history means for the model, and what it lacks.

    ``label``: the target and how the history's outcomes fall under it (printed by validate
    and train). ``problems``: why the history cannot be used at all (validate exits 2, train
    refuses). ``training``: why no model can be trained on it yet (train refuses; validate
    says so and still exits 0, since the data itself is sound). ``lead_scoring``: a history
    without reps (:func:`features.lead_scoring.is_lead_scoring`), whose outcomes train the
    lead-only model (:data:`LEAD_SCORING` says so). ``lead_only``: train fits the lead-only
    model on every outcome (:func:`features.lead_scoring.stand_in`): a lead-scoring history,
    or one whose outcomes with no rep leave the reps' own outcomes unable to train a lead x
    rep model (e.g. a won-only export read with ``unassigned_outcome: lost``).
    """

    label: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    training: list[str] = field(default_factory=list)
    lead_scoring: bool = False
    lead_only: bool = False


@dataclass(frozen=True)
class _Outcomes:
    """Row masks over the assignments, and the training labels as build_training_pairs makes
    them (``labelled``: a pair whose label is known before the export's end)."""

    won: np.ndarray
    lost: np.ndarray
    has_rep: np.ndarray
    labelled: np.ndarray
    won_in_window: np.ndarray
    late_win: np.ndarray
    open_old: np.ndarray
    open_young: np.ndarray
    days_to_win: np.ndarray


def _outcomes(
    data: CrmData, window_days: int, as_of: pd.Timestamp, lead_scoring: bool
) -> _Outcomes:
    asg = data.assignments
    events = outcome_events(asg, window_days=window_days)
    status = asg["status"]
    won = (status == "won").to_numpy(dtype=bool)
    is_open = (status == "open").to_numpy(dtype=bool)
    decided = (events["decided_at"] < as_of).to_numpy(dtype=bool)
    # In a lead-scoring history every outcome is a training row (of the lead-only model).
    has_rep = asg[Reps.rep_id].notna().to_numpy(dtype=bool) | lead_scoring
    days = ((asg["closed_at"] - asg["assigned_at"]).dt.total_seconds() / 86_400).to_numpy()
    return _Outcomes(
        won=won,
        lost=(status == "lost").to_numpy(dtype=bool),
        has_rep=has_rep,
        labelled=decided & has_rep,
        won_in_window=events["won_in_window"].to_numpy(dtype=bool),
        late_win=won & (days > window_days),
        open_old=is_open & decided,
        open_young=is_open & ~decided,
        days_to_win=days[won & ~np.isnan(days)],
    )


def check_history(
    data: CrmData,
    *,
    window_days: int = 90,
    min_outcomes: int = 200,
    min_outcomes_per_class: int = 20,
) -> HistoryCheck:
    """Check a validated history against what the model needs.

    ``window_days`` is ``features.conversion_window_days``; ``min_outcomes`` and
    ``min_outcomes_per_class`` are the model's (``model.min_outcomes``,
    ``model.min_outcomes_per_class``). Returns a :class:`HistoryCheck` whose sentences give the
    numbers and the change that would make the history usable.
    """
    target = (
        f"target: won within {window_days} days of assignment (features.conversion_window_days)"
    )
    lead_scoring = is_lead_scoring(data)
    problems = _basic_problems(data, lead_scoring)
    if data.assignments.empty:
        return HistoryCheck([target], problems, [], lead_scoring, lead_scoring)
    as_of = default_as_of(data)
    counts = (window_days, min_outcomes, min_outcomes_per_class)
    out = _outcomes(data, window_days, as_of, lead_scoring)
    training = _training_problems(data, out, *counts, lead_scoring)
    lead_only = lead_scoring
    no_rep = int(((out.won | out.lost) & ~out.has_rep).sum())
    if training and no_rep:
        # The reps' own outcomes cannot train a lead x rep model, but every outcome together
        # may train the lead-only one (who worked a lead is then not needed).
        every = _outcomes(data, window_days, as_of, True)
        if not _training_problems(data, every, *counts, True):
            out, training, lead_only = every, [], True
    label = [target, *_window_lines(out, window_days), _base_rate_line(out, window_days)]
    if lead_only and not lead_scoring:
        label.append(_lead_only_line(no_rep, out))
    problems += _ownership_problems(data, out, window_days, as_of)
    return HistoryCheck(label, problems, training, lead_scoring, lead_only)


def _lead_only_line(no_rep: int, out: _Outcomes) -> str:
    return (
        f"lead-only model: the {_plural(no_rep, 'outcome')} with no rep "
        f"{_s(no_rep, 'is not a', 'are not')} lead x rep {_s(no_rep, 'pair', 'pairs')}, and the "
        "reps' own outcomes are too few or one-sided to tell reps apart, so `leadmatch train` "
        f"fits the lead-only model on all {_plural(int(out.labelled.sum()), 'labelled outcome')} "
        "(the win chance of a lead whoever works it; matching then only balances value and load)"
    )


def usability_problems(data: CrmData, window_days: int = 90) -> list[str]:
    """Reasons the data cannot drive leadmatch even though every row is valid (empty list: usable)."""
    return check_history(data, window_days=window_days).problems


def _basic_problems(data: CrmData, lead_scoring: bool) -> list[str]:
    problems = []
    if not lead_scoring and (data.reps.empty or not data.reps["active"].any()):
        problems.append("no active reps: at least one rep must be active")
    if data.leads.empty:
        problems.append("no leads")
    if not data.assignments["status"].isin(["won", "lost"]).any():
        problems.append(
            "no closed assignments (won or lost): a model cannot learn without outcomes"
        )
    return problems


def _window_lines(out: _Outcomes, window_days: int) -> list[str]:
    wins = int(out.won.sum())
    if not wins:
        return []
    late = int(out.late_win.sum())
    line = (
        f"wins outside the window: {_n(late)} of {_plural(wins, 'win')} ({late / wins:.1%}) "
        f"closed more than {window_days} days after assignment and count as not won"
    )
    if late / wins > LATE_WIN_SHARE:
        days = float(np.quantile(out.days_to_win, WINDOW_COVERAGE))
        suggested = max(30, math.ceil(days / 30) * 30)
        line += (
            f". That is a large share: features.conversion_window_days: {suggested} would count "
            f"{WINDOW_COVERAGE:.0%} of the wins (the slowest took {out.days_to_win.max():.0f} days)"
        )
    return [line]


def _base_rate_line(out: _Outcomes, window_days: int) -> str:
    closed = int((out.won | out.lost).sum())
    labelled = int(out.labelled.sum())
    if not labelled or not closed:
        return "training base rate: no assignment has a label yet"
    base = float(out.won_in_window[out.labelled].mean())
    rate = float(out.won.sum() / closed)
    head = (
        f"training base rate: {base:.1%} of {_plural(labelled, 'labelled assignment')} won "
        f"within {window_days} days"
    )
    if abs(base - rate) < RATE_GAP:
        return f"{head}, close to the win rate of closed leads ({rate:.1%})"
    reasons = []
    late = int((out.late_win & out.labelled).sum())
    if late:
        reasons.append(
            f"{_plural(late, 'win')} came after {window_days} days and "
            f"{_s(late, 'counts', 'count')} as not won"
        )
    old = int((out.open_old & out.labelled).sum())
    if old:
        reasons.append(
            f"{_plural(old, 'lead')} still open {window_days} days after assignment "
            f"{_s(old, 'counts', 'count')} as not won"
        )
    young = int((out.open_young & out.has_rep).sum())
    if young:
        reasons.append(
            f"{_plural(young, 'open lead')} younger than {window_days} days "
            f"{_s(young, 'is left out until its', 'are left out until their')} window ends"
        )
    no_rep = int(((out.won | out.lost) & ~out.has_rep).sum())
    if no_rep:
        reasons.append(
            f"{_plural(no_rep, 'outcome')} with no rep "
            f"{_s(no_rep, 'counts', 'count')} in the win rate of closed leads but "
            f"{_s(no_rep, 'is not a training pair', 'are not training pairs')} (the model's win "
            "chances are those of a lead that reached an owner)"
        )
    return (
        f"{head}, against a win rate of {rate:.1%} of closed leads (the figure above), because "
        + "; ".join(reasons)
    )


def _ownership_problems(
    data: CrmData, out: _Outcomes, window_days: int, as_of: pd.Timestamp
) -> list[str]:
    """Histories that keep owners (or rows) for won leads only."""
    facts = []
    won, lost = int(out.won.sum()), int(out.lost.sum())
    closed = won + lost
    few_losses = closed >= FEW_LOSSES_MIN_CLOSED and lost / closed < FEW_LOSSES_SHARE
    if few_losses:
        if lost:
            facts.append(
                f"almost no losses: {_n(won)} of {_plural(closed, 'closed assignment')} are won "
                f"and {_n(lost)} lost ({lost / closed:.1%})"
            )
        else:
            facts.append(f"no losses: all {_plural(closed, 'closed assignment')} are won")
    leads = data.leads
    # Leads keep arriving after the last recorded outcome: the export ends with the later of both.
    end = max(as_of, leads["created_at"].max().normalize() + pd.Timedelta(days=1))
    old = (leads["created_at"] < end - pd.Timedelta(days=window_days)).to_numpy(dtype=bool)
    unowned = old & (positions_in(leads[Leads.lead_id], data.assignments[Leads.lead_id]) < 0)
    if old.any() and unowned.sum() / old.sum() > UNOWNED_SHARE:
        facts.append(
            f"most leads have no owner: {_n(unowned.sum())} of the "
            f"{_plural(old.sum(), 'lead')} created more than {window_days} days before the "
            f"end of the export ({unowned.sum() / old.sum():.0%}) have no assignment row, so "
            "they are neither wins nor losses"
        )
    if not facts:
        return []
    if few_losses:
        why = (
            "Exports that keep an owner only for won leads look like this: a model trained on "
            "them learns that an assigned lead is almost always won, and gives confident win "
            "chances to leads that mostly do not convert. "
        )
    else:
        why = (
            f"The outcomes left are those of the leads that reached an owner ({won / closed:.0%} "
            "won), so a model trained on them gives every new lead the win chances of a lead "
            "someone already took on. "
        )
    return ["; ".join(facts) + ". " + why + _FIX_OWNERS]


def _training_problems(
    data: CrmData,
    out: _Outcomes,
    window_days: int,
    min_outcomes: int,
    min_per_class: int,
    lead_scoring: bool,
) -> list[str]:
    asg = data.assignments
    labelled = int(out.labelled.sum())
    times = asg.loc[out.labelled, "assigned_at"]
    problems = []
    one_time = labelled >= 2 and times.nunique() == 1
    if one_time:
        problems.append(
            f"one timestamp for everything: all {_plural(labelled, 'labelled assignment')} "
            f"were assigned at {times.iloc[0]:%Y-%m-%d %H:%M}, so there is no earlier history "
            "to learn from and no later slice to test on. The export gives every lead one date "
            "(often the day it was exported): map the column that holds each lead's own "
            "creation or assignment date; a longer history will not help"
        )
    reps = asg.loc[out.labelled, Reps.rep_id].unique()
    if len(reps) == 1 and not lead_scoring:
        problems.append(
            f"one rep: only {reps[0]} has labelled outcomes, and the model learns how reps "
            "differ, so it needs the outcomes of two reps or more: add the other reps' leads "
            "to the export"
        )
    span = (times.max() - times.min()).days if labelled else 0
    longer = (
        "" if one_time else f"; collect a longer history (this one spans {_plural(span, 'day')})"
    )
    no_rep_lost = int((out.lost & ~out.has_rep).sum())
    wins = int(out.won_in_window[out.labelled].sum())
    non_wins = labelled - wins
    if not wins or not non_wins:  # one class: more history of the same kind will not help
        longer = ""
    if labelled < min_outcomes:
        young = int((out.open_young & out.has_rep).sum())
        help_ = []
        if young:
            help_.append(
                f"{_plural(young, 'open assignment')} younger than {window_days} days "
                f"{_s(young, 'gets a label when its', 'get a label when their')} window ends (a "
                "shorter features.conversion_window_days labels them sooner)"
            )
        if no_rep_lost:
            help_.append(
                f"{_plural(no_rep_lost, 'loss', 'losses')} with no rep "
                f"{_s(no_rep_lost, 'is not a training pair', 'are not training pairs')}"
            )
        problems.append(
            f"too few outcomes: {_plural(labelled, 'assignment')} with a label (won within "
            f"{window_days} days, or not won by then), the model needs at least {min_outcomes} "
            "(model.min_outcomes)" + "".join(f"; {h}" for h in help_) + longer
        )
    enough = labelled >= min_outcomes and min(wins, non_wins) >= min_per_class
    if not labelled or enough or (labelled < min_outcomes and min(wins, non_wins) > 0):
        return problems
    few = "wins" if wins <= non_wins else "non-wins"
    message = (
        f"too few {few}: {_n(wins)} labelled assignments were won within {window_days} days "
        f"and {_n(non_wins)} were not; the model needs at least {min_per_class} of each "
        "(model.min_outcomes_per_class)"
    )
    late = int((out.late_win & out.labelled).sum())
    if few == "non-wins" and no_rep_lost:
        message += (
            f". The {_plural(no_rep_lost, 'loss', 'losses')} with no rep count in the lead-level "
            "win rates but are not lead x rep pairs, so the model sees only the reps' wins: "
            "export the owners of lost leads"
        )
    elif few == "wins" and late:
        message += (
            f"; {_plural(late, 'win')} came after {window_days} days: a longer "
            "features.conversion_window_days counts them"
        )
    else:
        message += longer
    problems.append(message)
    return problems


def _n(count: int | np.integer) -> str:
    return f"{int(count):,}"


def _s(count: int | np.integer, one: str, many: str) -> str:
    return one if count == 1 else many


def _plural(count: int | np.integer, noun: str, nouns: str | None = None) -> str:
    return f"{_n(count)} {noun if count == 1 else (nouns or noun + 's')}"
