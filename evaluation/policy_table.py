"""The policy table of a replay: each policy's true expected wins and value, its lift over
round-robin, the share of the oracle's lift it captured, the price of fairness, the limits it
broke and how fairly it shared value and top-tier leads (``backtest.csv``), with the fairness
curve and each rep's shares."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.policies import BAND_PREFIX, BASE, ORACLE_NO_FAIRNESS, POLICIES
from evaluation.replay import Replay
from evaluation.schemas import PolicyTable
from features.schemas import Leads, Reps
from matching.fairness import gini

TABLE_COLUMNS = list(PolicyTable.to_schema().columns)
"""The columns of ``backtest.csv`` (:class:`~evaluation.schemas.PolicyTable`), in order."""
PRINTED_COLUMNS = [
    "policy",
    "expected_wins",
    "lift_vs_round_robin",
    "oracle_lift_captured",
    "price_of_fairness",
    "hard_violations",
    "soft_violations",
    "unreachable_violations",
    "max_value_share_deviation",
]
"""The columns of ``backtest.csv`` that `leadmatch backtest` prints (the file has them all)."""


def rep_shares(result: Replay) -> pd.DataFrame:
    """Per policy and rep over the whole replay: capacity_share (the fair share), value_share
    (share of the yardstick worth received), top_tier (tier-A leads received), leads."""
    capacity = result.capacity.groupby(Reps.rep_id)["capacity"].sum()
    frames = []
    for name in result.held:
        placed = result.placements.loc[result.placements["policy"] == name]
        by_rep = placed.groupby(Reps.rep_id).agg(
            worth=("worth", "sum"), top_tier=("top_tier", "sum"), leads=(Leads.lead_id, "size")
        )
        by_rep = by_rep.reindex(capacity.index, fill_value=0)
        total = by_rep["worth"].sum()
        frames.append(
            pd.DataFrame(
                {
                    "policy": name,
                    Reps.rep_id: capacity.index,
                    "capacity_share": (capacity / capacity.sum()).to_numpy(),
                    "value_share": (by_rep["worth"] / max(total, 1e-12)).to_numpy(),
                    "top_tier": by_rep["top_tier"].to_numpy(dtype=int),
                    "leads": by_rep["leads"].to_numpy(dtype=int),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def policy_figures(result: Replay) -> pd.DataFrame:
    """Every replayed policy's figures, indexed by policy.

    expected_wins / expected_value: sums of the true P(win) (times the lead's expected value)
    of its placements. Per run, as the nightly run sees them over its rolling fairness window:
    hard_violations (placements beyond a rep's capacity, a lead placed twice),
    soft_violations (soft constraints outside their limits by more than the run could avoid,
    summed over runs; the per-run largest share deviation is in ``runs``) and
    unreachable_violations (limits no assignment of their run could keep, see
    :func:`evaluation.violations.out_of_reach`). Over the whole replay: max_value_share_deviation
    (the largest |value share / fair share - 1| of any rep, fair share = share of the
    replay's capacity), ramp_top_tier_share (ramping reps' share of tier-A leads),
    max_top_tier_share (the largest rep share of tier-A leads), gini (of the value received
    per unit of capacity across reps). Then placed and held_at_end.
    """
    runs = result.runs.groupby("policy")
    capacity = result.capacity.groupby(Reps.rep_id)["capacity"].sum()
    shares = rep_shares(result)
    rows = {}
    for name in result.held:
        placed = result.placements.loc[result.placements["policy"] == name]
        mine = shares.loc[shares["policy"] == name]
        fair = mine["capacity_share"].to_numpy()
        ratio = mine["value_share"].to_numpy() / np.where(fair > 0, fair, 1.0)
        top = placed.groupby(Reps.rep_id)["top_tier"].sum()
        total_top = float(top.sum())
        worth = placed.groupby(Reps.rep_id)["worth"].sum().reindex(capacity.index, fill_value=0)
        rows[name] = {
            "expected_wins": float(placed["p_true"].sum()),
            "expected_value": float((placed["p_true"] * placed["value"]).sum()),
            "hard_violations": int(runs["hard_violations"].sum().get(name, 0)),
            "soft_violations": int(runs["soft_violations"].sum().get(name, 0)),
            "unreachable_violations": int(runs["unreachable_violations"].sum().get(name, 0)),
            "max_value_share_deviation": float(
                np.abs(ratio - 1)[fair > 0].max(initial=0.0) if len(placed) else 0.0
            ),
            "ramp_top_tier_share": float(placed.loc[placed["ramp"], "top_tier"].sum() / total_top)
            if total_top
            else np.nan,
            "max_top_tier_share": float(top.max() / total_top) if total_top else np.nan,
            "gini": gini((worth / capacity).to_numpy()),
            "placed": len(placed),
            "held_at_end": int(result.held[name]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def policy_table(figures: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``backtest.csv``: the :data:`POLICIES` with lift over round-robin (relative),
    the share of the oracle's lift captured and the price of fairness (expected wins given up
    for fairness: leadmatch against leadmatch_no_fairness, the oracle against itself without
    fairness)."""
    wins = figures["expected_wins"]
    base, oracle = wins[BASE], wins["oracle"]
    table = figures.loc[list(POLICIES)].copy()
    table["lift_vs_round_robin"] = table["expected_wins"] / base - 1 if base > 0 else np.nan
    gap = oracle - base
    table["oracle_lift_captured"] = (table["expected_wins"] - base) / gap if gap > 0 else np.nan
    price = pd.Series(np.nan, index=table.index)
    price["leadmatch"] = wins["leadmatch_no_fairness"] - wins["leadmatch"]
    if ORACLE_NO_FAIRNESS in wins:
        price["oracle"] = wins[ORACLE_NO_FAIRNESS] - wins["oracle"]
    table["price_of_fairness"] = price
    return table.rename_axis("policy").reset_index()[TABLE_COLUMNS]


def fairness_curve(figures: pd.DataFrame, band: float) -> pd.DataFrame:
    """Leadmatch's expected wins per value-share band width (``inf``: no fairness at all; its
    configured ``band`` is leadmatch's own row), with its largest value-share deviation and
    soft violations."""
    points = {"leadmatch": band, "leadmatch_no_fairness": np.inf}
    points |= {
        name: float(name.removeprefix(BAND_PREFIX))
        for name in figures.index
        if name.startswith(BAND_PREFIX)
    }
    curve = figures.loc[
        list(points), ["expected_wins", "max_value_share_deviation", "soft_violations"]
    ]
    curve.insert(0, "band", [points[n] for n in curve.index])
    return curve.rename_axis("policy").reset_index().sort_values("band", ignore_index=True)
