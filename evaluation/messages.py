"""What a backtest says in words: the simulator replay's verdicts (targets met or not, the
price of fairness, the limits of the replay) and the off-policy estimates as printed (numbers
only where identified)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.off_policy import ESTIMATOR_NAMES, ESTIMATORS, OffPolicyResult
from evaluation.off_policy_backtest import OffPolicyBacktest
from evaluation.violations import SOFT_VIOLATIONS
from matching.config import FairnessConstraints
from models.rep_signal import RepSignal

OFF_POLICY_NOTE = (
    "The estimand is per decision: each logged lead keeps the moment, candidate reps and rep "
    "loads it had in the history; what leadmatch would change through load (overloaded reps, "
    "capacity used by earlier leads) is not captured. The simulator backtest measures that."
)


def simulator_messages(
    table: pd.DataFrame,
    curve: pd.DataFrame,
    *,
    has_rep_effects: bool,
    signal: RepSignal | None,
    fairness: FairnessConstraints,
    window_days: int,
    violations: pd.DataFrame | None = None,
    lead_worth: float = np.nan,
) -> list[str]:
    """Plain sentences: the rep-signal verdict, the targets (met or not), the price of fairness,
    the curve and the limits of the replay. ``table`` and ``curve``: the policy table and the
    fairness curve (:mod:`evaluation.policy_table`); ``signal``: the model's rep-signal test;
    ``fairness`` and ``window_days``: the constraints and the rolling window the replay ran
    with. ``violations``: leadmatch's soft violations (constraint, unit, size, unavoidable,
    avoidable; see :class:`evaluation.replay.Replay`) for a breakdown of the misses and of the
    limits that were out of reach, with ``lead_worth`` the mean worth of its leads (to say how
    big a value-share violation is)."""
    rows = table.set_index("policy")
    lm, oracle = rows.loc["leadmatch"], rows.loc["oracle"]
    out = []
    if signal is not None and not signal.has_signal:
        out.append(
            f"The model found no reliable rep signal ({signal.summary()}): leadmatch used no "
            "rep-specific uplift and only balanced value and load."
        )
    if has_rep_effects:
        captured = lm["oracle_lift_captured"]
        verdict = "met" if captured >= 0.8 else "NOT met"
        out.append(
            f"leadmatch captured {captured:.0%} of the oracle's lift over round-robin "
            f"({lm['lift_vs_round_robin']:+.1%} against the oracle's "
            f"{oracle['lift_vs_round_robin']:+.1%}); target at least 80%: {verdict}."
        )
    else:
        lift = lm["lift_vs_round_robin"]
        verdict = "met" if abs(lift) <= 0.01 else "NOT met"
        out.append(
            f"This world has no rep effects: leadmatch is {lift:+.2%} from round-robin; "
            f"target within 1%: {verdict}."
        )
    hard = int(lm["hard_violations"])
    verdict = "met" if hard == 0 else "NOT met"
    out.append(f"Hard-constraint violations by leadmatch: {hard} (target 0: {verdict}).")
    soft, unreachable = int(lm["soft_violations"]), int(lm["unreachable_violations"])
    limits = (
        f"over the whole replay the largest value-share deviation is "
        f"{lm['max_value_share_deviation']:.1%} of the fair share (band "
        f"{fairness.value_share.band:.0%} per window)"
    )
    if violations is None:
        violations = SOFT_VIOLATIONS
    if soft == 0:
        out.append(
            "Every soft fairness constraint of leadmatch stayed within its limits at every run "
            f"where it could (rolling {window_days}-day window): {limits}."
        )
    else:
        missed = violations.loc[violations["avoidable"].astype(bool)]
        kinds = _breakdown(missed, missed["size"] - missed["unavoidable"], lead_worth)
        out.append(
            f"leadmatch had {soft} soft-constraint violation(s) over its runs (rolling "
            f"{window_days}-day window; target 0: NOT met): {limits}"
            + (f"; by constraint, beyond what was out of reach: {kinds}" if kinds else "")
            + "."
        )
    if unreachable:
        beyond = violations.loc[~violations["avoidable"].astype(bool)]
        kinds = _breakdown(beyond, beyond["size"], lead_worth)
        out.append(
            f"{unreachable} more limit(s) were out of reach at their run whatever the "
            "assignment (not within the reps' capacities, given the window so far; for the "
            "new-rep quota, not without taking a ramping rep above its value band), so they "
            "are not counted as misses; leadmatch came as close as possible"
            + (f": {kinds}" if kinds else "")
            + "."
        )
    quota = fairness.new_rep_quota
    if quota.enabled:
        out.append(
            f"Over the replay, ramping reps received {lm['ramp_top_tier_share']:.1%} of "
            f"leadmatch's tier-A leads (quota {quota.min_share:.0%} of each run's window while "
            "a ramping rep works)."
        )
    price = lm["price_of_fairness"]
    unfair = rows.loc["leadmatch_no_fairness", "expected_wins"]
    out.append(
        f"Price of fairness: {price:.1f} expected wins ({price / unfair:.1%} of leadmatch without "
        f"fairness); the oracle's: {oracle['price_of_fairness']:.1f}."
    )
    points = ", ".join(
        f"{'none' if np.isinf(b) else f'{b:.0%}'}: {w:.1f}"
        for b, w in zip(curve["band"], curve["expected_wins"], strict=True)
    )
    out.append(f"Expected wins of leadmatch by value-share band: {points}.")
    out.append(
        "Limits: every policy starts with an empty fairness window and none of its own leads "
        "open; its leads stay open along the history's survival curve whoever works them; reps' "
        "features see the history's outcomes as they resolve, never the replayed leads'; no lead "
        "is reclaimed after the first-contact SLA and no account continuity applies."
    )
    return out


def _breakdown(violations: pd.DataFrame, sizes: pd.Series, lead_worth: float) -> str:
    """Per constraint: its name, count and largest size (with the unit, and for value the
    share of a lead's mean worth)."""
    parts = []
    frame = violations[["constraint", "unit"]].assign(size=sizes.to_numpy(dtype=float))
    for (name, unit), (n, largest) in (
        frame.groupby(["constraint", "unit"])["size"].agg(["size", "max"]).iterrows()
    ):
        text = f"{name} {int(n)} (largest {largest:.3g} {unit}"
        if unit == "value" and np.isfinite(lead_worth) and lead_worth > 0:
            text += f", {largest / lead_worth:.2g} of a lead's mean worth"
        parts.append(text + ")")
    return ", ".join(parts)


def off_policy_table(result: OffPolicyResult) -> pd.DataFrame:
    """The estimates as printed: numbers only where identified, "not identified" elsewhere."""
    rows = []
    for row in (result.estimate(name) for name in ESTIMATORS):
        if row.identified:
            value = f"{row.value:.4g} [{row.ci_low:.4g}, {row.ci_high:.4g}]"
            diff = (
                f"{row.vs_logged:+.4g} [{row.vs_logged_low:+.4g}, {row.vs_logged_high:+.4g}]"
                if row.estimator != "logged"
                else ""
            )
        else:
            value, diff = "not identified", "not identified"
        rows.append(
            {
                "estimator": ESTIMATOR_NAMES[row.estimator],
                "value per lead": value,
                "vs history": diff,
            }
        )
    return pd.DataFrame(rows)


def off_policy_messages(backtest: OffPolicyBacktest) -> list[str]:
    """Plain sentences: the verdict, the estimates and overlap, the models' rep signal, limits."""
    result = backtest.result
    out = []
    if result.identified:
        dr = result.estimate("dr")
        out.append(
            f"Leadmatch's policy against the history, doubly robust: {dr.vs_logged:+.4g} per "
            f"lead [{dr.vs_logged_low:+.4g}, {dr.vs_logged_high:+.4g}] at {result.level:.0%}."
        )
    else:
        out.append(
            "Overlap between leadmatch's choices and the history is too poor: the value of "
            "leadmatch's policy on this history is NOT identified, so no number is given."
        )
    out.extend(result.summary().splitlines())
    for k, verdict in enumerate(backtest.rep_signal, start=1):
        out.append(f"Cross-fitted model {k} of {backtest.n_folds}: {verdict}.")
    if backtest.n_fallback:
        out.append(
            f"{backtest.n_fallback} of the evaluated leads found no capacity in leadmatch's day "
            "and went to their best candidate."
        )
    out.append(OFF_POLICY_NOTE)
    return out
