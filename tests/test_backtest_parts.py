"""The backtest's building blocks on hand-built frames: pair features at each pair's own time,
open-load survival, effective capacity, hard-violation counting, the policy table's figures,
the soft limits out of a run's reach and what is printed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.config import OffPolicyConfig
from evaluation.messages import (
    OFF_POLICY_NOTE,
    off_policy_messages,
    off_policy_table,
    simulator_messages,
)
from evaluation.off_policy import evaluate_policy
from evaluation.off_policy_backtest import OffPolicyBacktest, leadmatch_target
from evaluation.policies import ORACLE_NO_FAIRNESS, POLICIES, OpenSurvival, whole_leads
from evaluation.policy_table import TABLE_COLUMNS, policy_figures, policy_table
from evaluation.replay import Replay
from evaluation.violations import hard_violations, out_of_reach
from features.pairs import build_pairs_at, build_scoring_pairs
from features.schemas import validate_crm
from matching import MatchingConfig
from matching.eligibility import effective_capacity
from matching.fairness import gini
from pipelines.backtest import BacktestError, run_backtest
from pipelines.config import LeadmatchConfig
from tests.conftest import tiny_crm


@pytest.fixture(scope="module")
def tiny_valid():
    return validate_crm(tiny_crm())


def test_pairs_at_their_own_times_equal_scoring_each_time_separately(tiny_valid):
    pairs = pd.DataFrame(
        {
            "lead_id": ["L5", "L1", "L5", "L2"],
            "rep_id": ["R1", "R2", "R2", "R1"],
            "at": pd.to_datetime(["2024-03-25", "2024-03-02", "2024-03-02", "2024-03-25"]),
        }
    )
    got = build_pairs_at(tiny_valid, pairs)
    assert (
        got[["lead_id", "rep_id"]].to_numpy().tolist()
        == pairs[["lead_id", "rep_id"]].to_numpy().tolist()
    )
    for at, group in pairs.groupby("at"):
        expected = build_scoring_pairs(
            tiny_valid,
            tiny_valid.leads,
            as_of=at,
            candidates=group[["lead_id", "rep_id"]],
        )
        pd.testing.assert_frame_equal(
            got.loc[group.index].reset_index(drop=True), expected.reset_index(drop=True)
        )


def test_a_rep_win_record_only_counts_outcomes_before_each_pairs_time(tiny_valid):
    # R1 won L1 on 2024-03-20: a pair before that date has no outcome for R1, a later one has.
    pairs = pd.DataFrame(
        {
            "lead_id": ["L5", "L5"],
            "rep_id": ["R1", "R1"],
            "at": pd.to_datetime(["2024-03-19", "2024-03-21"]),
        }
    )
    got = build_pairs_at(tiny_valid, pairs)
    assert got["rep_outcomes"].tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (pd.DataFrame({"lead_id": ["L1"], "rep_id": ["R1"]}), r"lack column\(s\) \['at'\]"),
        (
            pd.DataFrame({"lead_id": ["L1"], "rep_id": ["R1"], "at": [pd.NaT]}),
            r"1 pair\(s\) have no time 'at'",
        ),
        (
            pd.DataFrame({"lead_id": ["L9"], "rep_id": ["R1"], "at": [pd.Timestamp("2024-04-01")]}),
            r"missing from the leads table, e.g. \['L9'\]",
        ),
    ],
)
def test_pairs_at_refuse_bad_pairs(tiny_valid, pairs, message):
    with pytest.raises(ValueError, match=message):
        build_pairs_at(tiny_valid, pairs)


def test_open_survival_is_the_share_of_history_leads_still_open_at_an_age():
    truth = pd.DataFrame(
        {
            "assigned_at": pd.to_datetime(["2024-01-01"] * 4),
            "closes_at": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-03", "2024-01-11"]),
        }
    )
    survival = OpenSurvival.of(truth)
    assert [survival(a) for a in (0.5, 1, 2, 5, 10, 11)] == [1.0, 0.75, 0.25, 0.25, 0.0, 0.0]


def test_a_replayed_rep_takes_no_more_than_keeps_its_expected_open_load_under_the_cap():
    reps = pd.DataFrame(
        {
            "active": True,
            "available": True,
            "capacity": [5, 5, 5, 0],
            "max_open_leads": pd.array([None, 10, 12, 10], dtype="Int64"),
        }
    )
    load = whole_leads(np.array([100.0, 7.5, 11.2, 0.0]))
    assert load.tolist() == [100, 8, 12, 0]
    # no cap; 2.5 leads of room -> 2; 0.8 -> 0; no capacity today
    assert effective_capacity(reps.assign(open_load=load)).tolist() == [5, 2, 0, 0]


def test_a_rounding_error_above_a_whole_number_is_not_one_more_open_lead():
    assert whole_leads(np.array([7.0 + 1e-12, 7.0, 6.999, 0.0])).tolist() == [7, 7, 7, 0]


def test_hard_violations_count_each_placement_beyond_capacity():
    assert hard_violations(np.array([0, 0, 1, 2, 2, 2]), np.array([2, 1, 1])) == 2
    assert hard_violations(np.array([], dtype=int), np.array([0, 0])) == 0


# --- the policy figures and table ---------------------------------------------------------------


def hand_replay() -> Replay:
    """One run, reps R1 and R2 (capacity 2 each, R2 ramping up), four leads placed by two
    policies: "fair" splits value and tier-A leads evenly, "skewed" gives R1 everything; "idle"
    placed nothing."""
    leads = ["L1", "L2", "L3", "L4"]
    base = pd.DataFrame(
        {
            "run_at": pd.Timestamp("2026-01-06"),
            "lead_id": leads,
            "p_true": [0.5, 0.2, 0.4, 0.1],
            "p_model": [0.4, 0.2, 0.3, 0.1],
            "value": [1000.0, 500.0, 800.0, 200.0],
            "worth": [0.3, 0.1, 0.2, 0.2],
            "top_tier": [True, False, True, False],
        }
    )
    fair = base.assign(
        policy="fair", rep_id=["R1", "R1", "R2", "R2"], ramp=[False, False, True, True]
    )
    skewed = base.assign(policy="skewed", rep_id="R1", ramp=False)
    return Replay(
        placements=pd.concat([fair, skewed], ignore_index=True),
        capacity=pd.DataFrame(
            {
                "run_at": pd.Timestamp("2026-01-06"),
                "rep_id": ["R1", "R2"],
                "capacity": [2.0, 2.0],
                "ramp": [False, True],
            }
        ),
        runs=pd.DataFrame(
            {
                "policy": ["fair", "skewed", "idle"],
                "hard_violations": [0, 2, 0],
                "soft_violations": [0, 3, 0],
                "unreachable_violations": [0, 1, 0],
            }
        ),
        violations=pd.DataFrame(columns=["policy", "run_at", "constraint", "rep_id", "size"]),
        held={"fair": 0, "skewed": 1, "idle": 4},
        n_leads=4,
        seconds={"fair": 0.1, "skewed": 0.1, "idle": 0.0},
    )


def test_policy_figures_score_true_wins_and_fairness():
    figures = policy_figures(hand_replay())
    fair, skewed = figures.loc["fair"], figures.loc["skewed"]
    assert fair["expected_wins"] == pytest.approx(1.2)
    assert fair["expected_value"] == pytest.approx(500 + 100 + 320 + 20)
    # over the whole replay: one tier-A lead each (the ramping R2: 50%), even value per capacity
    assert fair["ramp_top_tier_share"] == pytest.approx(0.5)
    assert fair["max_top_tier_share"] == pytest.approx(0.5)
    assert fair[["soft_violations", "hard_violations", "gini"]].tolist() == [0, 0, 0.0]
    assert fair["max_value_share_deviation"] == 0.0
    # skewed: R1 holds every tier-A lead and all the value; the runs' violations add up
    assert skewed[["ramp_top_tier_share", "max_top_tier_share"]].tolist() == [0.0, 1.0]
    assert skewed["gini"] == pytest.approx(0.5)
    assert skewed[["soft_violations", "hard_violations", "held_at_end"]].tolist() == [3, 2, 1]
    assert figures["unreachable_violations"].tolist() == [0, 1, 0]
    # R1 holds 100% of the value with 50% of the capacity: +100%, R2 -100%
    assert skewed["max_value_share_deviation"] == pytest.approx(1.0)
    # a policy that placed nothing still has a row
    assert figures.loc["idle", "placed"] == 0 and figures.loc["idle", "expected_wins"] == 0


def test_gini_is_zero_for_equal_shares_and_grows_with_concentration():
    assert gini(np.array([2.0, 2.0, 2.0])) == 0.0
    assert gini(np.array([0.0, 0.0, 6.0])) == pytest.approx(2 / 3)
    assert gini(np.array([])) == 0.0


def figures_with_wins(**wins: float) -> pd.DataFrame:
    default = {
        "round_robin": 100.0,
        "weighted_round_robin": 101.0,
        "greedy": 110.0,
        "leadmatch_no_fairness": 125.0,
        "leadmatch": 120.0,
        "oracle": 130.0,
        ORACLE_NO_FAIRNESS: 134.0,
    } | wins
    columns = [c for c in TABLE_COLUMNS if c not in ("policy", "expected_wins")]
    columns = [
        c
        for c in columns
        if c not in ("lift_vs_round_robin", "oracle_lift_captured", "price_of_fairness")
    ]
    frame = pd.DataFrame(0.0, index=list(default), columns=columns)
    return frame.assign(expected_wins=pd.Series(default))


def test_policy_table_has_lift_oracle_share_and_price_of_fairness_in_policy_order():
    table = policy_table(figures_with_wins()).set_index("policy")
    assert list(table.index) == list(POLICIES)
    assert table.loc["leadmatch", "lift_vs_round_robin"] == pytest.approx(0.2)
    assert table.loc["leadmatch", "oracle_lift_captured"] == pytest.approx(2 / 3)
    assert table.loc["oracle", "oracle_lift_captured"] == pytest.approx(1.0)
    assert table.loc["round_robin", "oracle_lift_captured"] == pytest.approx(0.0)
    assert table.loc["leadmatch", "price_of_fairness"] == pytest.approx(5.0)
    assert table.loc["oracle", "price_of_fairness"] == pytest.approx(4.0)
    assert table["price_of_fairness"].drop(["leadmatch", "oracle"]).isna().all()


def test_an_oracle_no_better_than_round_robin_leaves_the_captured_share_undefined():
    table = policy_table(figures_with_wins(oracle=100.0)).set_index("policy")
    assert table["oracle_lift_captured"].isna().all()


def messages_for(wins: dict, *, effects: bool = True) -> str:
    figures = figures_with_wins(**wins)
    figures[["max_value_share_deviation", "ramp_top_tier_share", "max_top_tier_share"]] = 0.1
    table = policy_table(figures)
    curve = pd.DataFrame({"band": [0.1, 0.2, np.inf], "expected_wins": [118.0, 120.0, 125.0]})
    return "\n".join(
        simulator_messages(
            table,
            curve,
            has_rep_effects=effects,
            signal=None,
            fairness=MatchingConfig().fairness,
            window_days=7,
        )
    )


@pytest.mark.parametrize(
    ("wins", "effects", "expected"),
    [
        (
            {},
            True,
            "captured 67% of the oracle's lift over round-robin (+20.0% against the oracle's +30.0%); target at least 80%: NOT met",
        ),
        ({"leadmatch": 126.0}, True, "captured 87% of the oracle's lift"),
        (
            {"leadmatch": 100.5},
            False,
            "leadmatch is +0.50% from round-robin; target within 1%: met",
        ),
        (
            {"leadmatch": 102.0},
            False,
            "leadmatch is +2.00% from round-robin; target within 1%: NOT met",
        ),
    ],
)
def test_messages_say_plainly_whether_each_target_is_met(wins, effects, expected):
    assert expected in messages_for(wins, effects=effects)


def test_messages_report_the_price_of_fairness_and_the_curve():
    text = messages_for({})
    assert "Price of fairness: 5.0 expected wins (4.0% of leadmatch without fairness)" in text
    assert "by value-share band: 10%: 118.0, 20%: 120.0, none: 125.0" in text
    assert (
        "Every soft fairness constraint of leadmatch stayed within its limits at every run" in text
    )


def violation_messages(figures: pd.DataFrame, violations: pd.DataFrame, **kwargs) -> str:
    """The simulator messages for ``figures`` with these soft-constraint ``violations``."""
    curve = pd.DataFrame({"band": [0.2], "expected_wins": [120.0]})
    return "\n".join(
        simulator_messages(
            policy_table(figures),
            curve,
            has_rep_effects=True,
            signal=None,
            fairness=MatchingConfig().fairness,
            window_days=7,
            violations=violations,
            **kwargs,
        )
    )


def test_messages_break_misses_down_apart_from_limits_that_were_out_of_reach():
    figures = figures_with_wins()
    figures.loc["leadmatch", ["soft_violations", "unreachable_violations"]] = [2, 1]
    figures.loc["leadmatch", "ramp_top_tier_share"] = 0.02
    # quota: 2.5 short, 2 of them beyond any assignment (a miss of 0.5); 4 short, all
    # unavoidable (out of reach); a value floor missed by 0.01 that could have been kept
    violations = pd.DataFrame(
        {
            "constraint": ["new_rep_quota", "new_rep_quota", "value_share_min"],
            "size": [2.5, 4.0, 0.01],
            "unit": ["top-tier leads", "top-tier leads", "value"],
            "unavoidable": [2.0, 4.0, 0.0],
            "avoidable": [True, False, True],
        }
    )
    text = violation_messages(figures, violations, lead_worth=0.25)
    assert (
        "2 soft-constraint violation(s) over its runs (rolling 7-day window; target 0: NOT met)"
        in text
    )
    assert (
        "by constraint, beyond what was out of reach: new_rep_quota 1 (largest 0.5 top-tier "
        "leads), value_share_min 1 (largest 0.01 value, 0.04 of a lead's mean worth)."
    ) in text
    assert "1 more limit(s) were out of reach at their run whatever the assignment" in text
    assert "as close as possible: new_rep_quota 1 (largest 4 top-tier leads)." in text
    assert "ramping reps received 2.0% of leadmatch's tier-A leads (quota 15% of each" in text


def test_messages_count_a_limit_out_of_reach_apart_from_the_target():
    figures = figures_with_wins()
    figures.loc["leadmatch", "unreachable_violations"] = 1
    violations = pd.DataFrame(
        {
            "constraint": ["new_rep_quota"],
            "size": [4.0],
            "unit": ["top-tier leads"],
            "unavoidable": [4.0],
            "avoidable": [False],
        }
    )
    text = violation_messages(figures, violations)
    assert "stayed within its limits at every run where it could" in text
    assert "1 more limit(s) were out of reach" in text


# --- limits out of a run's reach ----------------------------------------------------------------


def run_reps(top_today: list[int], window_top: list[float]) -> pd.DataFrame:
    """A run's per-rep fairness (as matching.FairnessReport.per_rep): R1 (capacity 2) and the
    ramping R2 (capacity 1) work, each with half the window's capacity; R3 is off today. R1
    had 1.0 of value and R2 none before today; today R1 received 0.5 and R2 0.1."""
    return pd.DataFrame(
        {
            "rep_id": ["R1", "R2", "R3"],
            "working": [True, True, False],
            "ramp_up": [False, True, True],
            "capacity": [2, 1, 0],
            "value_today": [0.5, 0.1, 0.0],
            "window_value": [1.5, 0.1, 0.0],
            "fair_share": [0.5, 0.5, 0.0],
            "top_tier_today": [*top_today, 0],
            "window_top_tier": [*window_top, 0.0],
        }
    )


# today's leads are worth 0.1, 0.4 (tier A) and 0.1
WORTH = np.array([0.1, 0.4, 0.1])
TOP = np.array([False, True, False])


def test_each_violation_keeps_only_what_no_assignment_of_its_run_could_avoid():
    # window value 1.6, band 20%: R2's floor 0.64 (it has 0.1, could have had 0 + 0.4); R1's
    # ceiling 0.96 (it has 1.5, held 1.0 before today). Tier A over the window: 10, R1 holds
    # all (9 before today): cap 2.5, quota 1.5 with R2 able to take at most the one today.
    violations = pd.DataFrame(
        {
            "constraint": ["value_share_min", "value_share_max", "top_tier_max", "new_rep_quota"],
            "rep_id": ["R2", "R1", "R1", None],
            "size": [0.54, 0.54, 7.5, 1.5],
            "unit": ["value", "value", "top-tier leads", "top-tier leads"],
        }
    )
    got = out_of_reach(
        violations, run_reps([1, 0], [10.0, 0.0]), WORTH, TOP, MatchingConfig().fairness
    )
    assert got["unavoidable"].to_numpy() == pytest.approx([0.24, 0.04, 6.5, 0.5])
    assert got["avoidable"].all()
    assert list(got.columns[:4]) == list(violations.columns)


@pytest.mark.parametrize(
    ("top_today", "window_top", "size", "avoidable"),
    [
        # R2 took the day's tier-A lead and is still 0.5 short: out of reach
        ([0, 1], [9.0, 1.0], 0.5, False),
        # R1 took it: R2 could have been 1 lead closer
        ([1, 0], [10.0, 0.0], 1.5, True),
    ],
)
def test_a_quota_the_ramping_reps_capacity_cannot_meet_is_out_of_reach(
    top_today, window_top, size, avoidable
):
    violations = pd.DataFrame(
        {"constraint": ["new_rep_quota"], "rep_id": [None], "size": [size], "unit": ["leads"]}
    )
    got = out_of_reach(
        violations, run_reps(top_today, window_top), WORTH, TOP, MatchingConfig().fairness
    )
    assert got["unavoidable"].tolist() == pytest.approx([0.5])
    assert got["avoidable"].tolist() == [avoidable]


def test_a_quota_met_only_above_the_ramping_reps_value_ceiling_is_out_of_reach():
    # R2 now has a tenth of the window's capacity: its ceiling 1.2 * 0.1 * 1.6 = 0.192 leaves
    # no room for the 0.4 tier-A lead, so none of the 1.5 short could be met within the band
    reps = run_reps([1, 0], [10.0, 0.0]).assign(fair_share=[0.9, 0.1, 0.0])
    violations = pd.DataFrame(
        {"constraint": ["new_rep_quota"], "rep_id": [None], "size": [1.5], "unit": ["leads"]}
    )
    fairness = MatchingConfig().fairness
    got = out_of_reach(violations, reps, WORTH, TOP, fairness)
    assert got["unavoidable"].tolist() == pytest.approx([1.5])
    assert got["avoidable"].tolist() == [False]
    # without the value band only the capacity bounds it: one lead, 0.5 out of reach
    unbanded = fairness.model_copy(
        update={"value_share": fairness.value_share.model_copy(update={"enabled": False})}
    )
    got = out_of_reach(violations, reps, WORTH, TOP, unbanded)
    assert got["unavoidable"].tolist() == pytest.approx([0.5])
    assert got["avoidable"].tolist() == [True]


def test_a_limit_within_reach_has_nothing_unavoidable():
    # with a band of 90% R2's floor is 0.08: it holds 0.1; a 0.05 miss would be all its own
    fairness = MatchingConfig().fairness
    wide = fairness.model_copy(
        update={"value_share": fairness.value_share.model_copy(update={"band": 0.9})}
    )
    violations = pd.DataFrame(
        {"constraint": ["value_share_min"], "rep_id": ["R2"], "size": [0.05], "unit": ["value"]}
    )
    got = out_of_reach(violations, run_reps([1, 0], [10.0, 0.0]), WORTH, TOP, wide)
    assert got["unavoidable"].tolist() == [0.0] and got["avoidable"].tolist() == [True]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give either a scenario"),
        ({"scenario": "small", "data": "x"}, "give either a scenario"),
        ({"scenario": "small", "days": 0}, "days must be at least 1"),
        ({"scenario": "medium"}, "unknown scenario 'medium': choose one of default, demo, null"),
    ],
)
def test_bad_requests_are_refused_before_anything_runs(kwargs, message):
    with pytest.raises(BacktestError, match=message):
        run_backtest(config=LeadmatchConfig(), **kwargs)


# --- the off-policy target ----------------------------------------------------------------------


def target_of(share: float, decisions: pd.DataFrame, candidates: pd.DataFrame):
    fairness = MatchingConfig().fairness.disabled()
    target, held = leadmatch_target(
        validate_crm(tiny_crm()),
        decisions,
        candidates,
        MatchingConfig(fairness=fairness, price_of_fairness=False),
        rep_signal=True,
        share=pd.Series(share, index=pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-04"])),
        window_days=7,
    )
    return dict(zip(target["lead_id"], target["rep_id"], strict=True)), held, target


DECISIONS = pd.DataFrame(
    {
        "lead_id": ["L1", "L2", "L3", "L4", "L5"],
        "at": pd.to_datetime(
            [
                "2024-03-01 09:05",
                "2024-03-01 11:00",
                "2024-03-02 00:00",
                "2024-03-04 00:00",
                "2024-03-04 00:00",
            ]
        ),
    }
)
CANDIDATES = pd.DataFrame(
    {
        "lead_id": ["L1", "L1", "L2", "L2", "L3", "L3", "L4", "L5"],
        "rep_id": ["R1", "R2", "R1", "R2", "R1", "R2", "R1", "R1"],
        "p_win": [0.6, 0.3, 0.5, 0.4, 0.2, 0.7, 0.3, 0.8],
    }
)


def test_the_target_is_each_days_matching_within_the_candidate_sets():
    picks, held, target = target_of(1.0, DECISIONS, CANDIDATES)
    assert picks == {"L1": "R1", "L2": "R1", "L3": "R2", "L4": "R1", "L5": "R1"}
    assert held == [] and (target["prob"] == 1.0).all()


def test_the_target_shares_a_days_capacity_and_sends_a_lead_left_over_to_its_best_rep():
    # A fifth of the day's capacity: one lead each for R1 and R2. On March 1st the best total
    # is L1 -> R1 and L2 -> R2; on March 4th L5 takes R1's only slot and L4 falls back to R1.
    picks, held, _ = target_of(0.2, DECISIONS, CANDIDATES)
    assert picks == {"L1": "R1", "L2": "R2", "L3": "R2", "L4": "R1", "L5": "R1"}
    assert held == ["L4"]


# --- what is printed on real history ------------------------------------------------------------


def off_policy_case(target_rep: str) -> OffPolicyBacktest:
    """60 leads, candidates A and B; the history chose A (propensity 0.9) and won a third."""
    leads = [f"L{i:02d}" for i in range(60)]
    candidates = pd.DataFrame(
        {"lead_id": np.repeat(leads, 2), "rep_id": ["A", "B"] * 60, "q": 0.3}
    ).assign(propensity=[0.9, 0.1] * 60)
    logged = pd.DataFrame({"lead_id": leads, "rep_id": "A", "propensity": 0.9}).assign(
        reward=(np.arange(60) % 3 == 0).astype(float)
    )
    target = pd.DataFrame({"lead_id": leads, "rep_id": target_rep, "prob": 1.0})
    result = evaluate_policy(logged, candidates, target, config=OffPolicyConfig(n_bootstrap=50))
    return OffPolicyBacktest(result, ["no reliable signal: ..."], n_fallback=0, n_folds=1)


def test_a_value_that_is_not_identified_is_said_plainly_and_shows_no_number():
    backtest = off_policy_case("B")
    shown = off_policy_table(backtest.result).set_index("estimator")
    assert shown.loc["historical policy (observed mean)", "value per lead"].startswith("0.3333 [")
    others = shown.drop(index="historical policy (observed mean)")
    assert (others["value per lead"] == "not identified").all()
    assert (others["vs history"] == "not identified").all()
    messages = off_policy_messages(backtest)
    assert messages[0].startswith("Overlap between leadmatch's choices and the history is too poor")
    assert "NOT identified, so no number is given" in messages[0]
    assert "doubly robust: not identified" in "\n".join(messages)
    assert messages[-1] == OFF_POLICY_NOTE


def test_an_identified_value_leads_with_the_doubly_robust_difference():
    backtest = off_policy_case("A")
    shown = off_policy_table(backtest.result).set_index("estimator")
    # DR = DM + mean weighted residual = 0.3 + (1/3 - 0.3) / 0.9; the history won 1/3.
    assert shown.loc["doubly robust", "vs history"].startswith("+0.003704 [")
    assert off_policy_messages(backtest)[0].startswith(
        "Leadmatch's policy against the history, doubly robust: +0.003704 per lead ["
    )
