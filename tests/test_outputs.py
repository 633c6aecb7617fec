"""The manager's plan and its CSV files: actions, numbers that agree, the gain split, plural
reasons, Chinese, schemas on write and read-back, and cells that are safe to open in Excel."""

from __future__ import annotations

import json

import pandas as pd
import pandera.pandas as pa
import pytest

from matching import MatchingConfig, match
from matching.config import FairnessConstraints
from matching.explain import ENGLISH
from matching.gain import plan_worth, split_gain
from matching.summary import (
    PlanAssignments,
    fairness_costs,
    manager_plan,
    rep_labels,
    tier_by_tenure,
)
from pipelines.outputs import (
    CHINESE,
    EXCEL_CELL_LIMIT,
    PLAN_DECIMALS,
    ZH_HEADERS,
    read_plan_csv,
    safe_cell,
    write_csv,
    write_plan,
)
from tests.day_frames import day_frames

NO_FAIRNESS = MatchingConfig(fairness=FairnessConstraints().disabled(), price_of_fairness=False)
RUN_DATE = "2025-01-07"


def day(p, capacity, *, leads=None, reps=None):
    """:func:`day_frames` with the columns a plan shows: each lead's previous rep (none), each
    rep's name and team, and two open leads per rep."""
    r = len(capacity)
    return day_frames(
        p,
        capacity,
        {"previous_rep_id": pd.array([None] * len(p), dtype="str"), **(leads or {})},
        {"name": [f"Rep {j}" for j in range(r)], "team": "north", "open_load": 2, **(reps or {})},
    )


def plan_of(p, capacity, *, config=NO_FAIRNESS, rep_signal=True, leads=None, reps=None, **kw):
    candidates, lead_frame, rep_frame = day(p, capacity, leads=leads, reps=reps)
    common = dict(rep_signal=rep_signal)
    fair = match(candidates, lead_frame, rep_frame, config, **common)
    rr = match(candidates, lead_frame, rep_frame, config, policy="round_robin", **common)
    return manager_plan(
        fair, rr, lead_frame, rep_frame, config, run_date=RUN_DATE, window_days=1, **kw
    )


# --- the gain over round-robin, split in two ----------------------------------------------


def asg(rows):
    return pd.DataFrame(rows, columns=["lead_id", "rep_id", "p_win", "p_baseline"])


def test_selection_is_the_round_robin_worth_of_the_leads_each_plan_works():
    # One slot, two leads: leadmatch works L1 (baseline 0.5) with its best rep (0.7);
    # round-robin works L0 (baseline 0.2) with whoever is next (0.1).
    ours = asg([("L0", None, None, 0.2), ("L1", "R0", 0.7, 0.5)])
    theirs = asg([("L0", "R1", 0.1, 0.2), ("L1", None, None, 0.5)])
    split = split_gain(ours, theirs, rep_signal=True)
    assert split.leadmatch == pytest.approx(0.7)
    assert split.round_robin == pytest.approx(0.1)
    assert split.selection == pytest.approx(0.5 - 0.2)
    assert split.matching == pytest.approx((0.7 - 0.5) - (0.1 - 0.2))
    assert split.selection + split.matching == pytest.approx(split.gain)
    assert (split.placed, split.placed_round_robin, split.to_place) == (1, 1, 2)
    assert split.relative == pytest.approx(6.0)


def test_without_rep_signal_who_works_a_lead_gains_nothing():
    ours = asg([("L0", None, None, 0.2), ("L1", "R0", 0.7, 0.5)])
    theirs = asg([("L0", "R1", 0.1, 0.2), ("L1", None, None, 0.5)])
    split = split_gain(ours, theirs, rep_signal=False)
    assert split.matching == 0.0
    assert split.gain == pytest.approx(split.selection) == pytest.approx(0.3)
    assert (split.leadmatch, split.round_robin) == (pytest.approx(0.5), pytest.approx(0.2))


def test_when_every_lead_is_worked_selection_is_zero():
    ours = asg([("L0", "R0", 0.6, 0.4), ("L1", "R1", 0.5, 0.3)])
    theirs = asg([("L0", "R1", 0.2, 0.4), ("L1", "R0", 0.1, 0.3)])
    split = split_gain(ours, theirs, rep_signal=True)
    assert split.selection == 0.0
    assert split.matching == pytest.approx(0.8)


def test_revenue_weights_each_lead_by_its_value():
    ours = asg([("L0", None, None, 0.2), ("L1", "R0", 0.7, 0.5)])
    theirs = asg([("L0", "R1", 0.1, 0.2), ("L1", None, None, 0.5)])
    split = split_gain(ours, theirs, {"L0": 1000.0, "L1": 10.0}, rep_signal=True)
    assert split.unit == "revenue"
    assert split.selection == pytest.approx(10 * 0.5 - 1000 * 0.2)
    assert plan_worth(theirs, {"L0": 1000.0}, rep_signal=True) == pytest.approx(100.0)


def test_a_reclaimed_lead_that_stays_with_its_rep_is_not_placed_by_the_plan():
    # L2 was reclaimed and nobody else could take it: it stays with R1 (action keep, rep set,
    # no win chance), so the plan neither places it nor counts a chance for it.
    ours = asg([("L0", "R0", 0.6, 0.4), ("L1", None, None, 0.3), ("L2", "R1", None, 0.2)])
    ours["action"] = ["assign", "hold", "keep"]
    theirs = asg([("L0", "R1", 0.2, 0.4), ("L1", "R0", 0.1, 0.3), ("L2", None, None, 0.2)])
    assert plan_worth(ours, rep_signal=True) == pytest.approx(0.6)
    assert plan_worth(ours, rep_signal=False) == pytest.approx(0.4)
    split = split_gain(ours, theirs, rep_signal=True)
    assert (split.placed, split.placed_round_robin) == (1, 2)
    assert split.leadmatch == pytest.approx(0.6) and split.round_robin == pytest.approx(0.3)
    assert split.selection == pytest.approx(0.4 - 0.7)


def test_the_plan_headline_splits_a_day_short_of_capacity():
    # Three leads, one slot: round-robin takes the first to arrive, leadmatch the best.
    plan = plan_of([[0.2, 0.1], [0.3, 0.35], [0.9, 0.5]], [1, 0])
    gain = plan.gain
    assert gain.placed == gain.placed_round_robin == 1 and gain.to_place == 3
    assert gain.leadmatch == pytest.approx(0.9)
    assert gain.round_robin == pytest.approx(0.2)
    assert gain.selection + gain.matching == pytest.approx(gain.gain)


# --- the plan's rows ----------------------------------------------------------------------


def test_actions_read_right_and_rows_are_sorted_as_a_manager_works():
    leads = {"previous_rep_id": pd.array([None, "R1", None, None], dtype="str")}
    leads["days_without_contact"] = [None, 4.0, None, None]
    plan = plan_of([[0.5, 0.4], [0.6, None], [0.3, None], [0.2, None]], [2, 0], leads=leads)
    rows = plan.assignments.set_index("lead_id")
    assert rows.loc["L1", "action"] == "reassign"
    assert rows.loc["L1", "previous_rep_name"] == "Rep 1"
    assert rows.loc["L1", "reason"].startswith(
        "reclaimed from Rep 1 after 4 working days without contact"
    )
    assert plan.assignments["action"].tolist() == ["reassign", "assign", "hold", "hold"]
    held = rows.loc[rows["action"] == "hold"]
    assert held["rep_id"].isna().all() and held["rep_win_chance_pct"].isna().all()
    assert (held["reason"] == "held for tomorrow: the only eligible rep is at capacity").all()
    assert plan.counts == {"assign": 1, "reassign": 1, "keep": 0, "hold": 2, "left_out": 0}
    reps = plan.rep_summary.set_index("rep_id")
    # the reassigned lead leaves R1's open leads and joins R0's
    assert reps.loc["R0", "open_load_after"] == 4 and reps.loc["R1", "open_load_after"] == 1


def test_win_chances_are_percentages_and_uplift_is_in_points():
    plan = plan_of([[0.5, 0.3]], [1, 1])
    row = plan.assignments.iloc[0]
    assert row["rep_win_chance_pct"] == pytest.approx(50.0)
    assert row["lead_win_chance_pct"] == pytest.approx(40.0)
    assert row["uplift_pts"] == pytest.approx(10.0)
    assert row["rank_for_lead"] == 1 and row["best_rep_id"] == "R0"
    assert "expected_revenue" not in plan.assignments  # no money column when counting wins
    assert plan.rep_summary.set_index("rep_id").loc["R0", "capacity_used_pct"] == 100.0


def test_without_rep_signal_the_plan_keeps_per_rep_chances_out():
    plan = plan_of([[0.9, 0.1], [0.8, 0.2]], [2, 2], rep_signal=False)
    asg_ = plan.assignments
    assert (
        asg_[["rep_win_chance_pct", "uplift_pts", "rank_for_lead", "best_rep_id"]]
        .isna()
        .all()
        .all()
    )
    assert asg_["lead_win_chance_pct"].tolist() == pytest.approx([50.0, 50.0])
    # expected wins count each lead's round-robin chance, not the rep's
    assert plan.rep_summary["expected_wins"].sum() == pytest.approx(1.0)
    assert plan.gain.matching == 0.0
    assert (
        asg_["reason"] == "no reliable difference between reps: spreads lead value and load"
    ).all()


def test_the_revenue_objective_adds_a_money_column():
    config = NO_FAIRNESS.model_copy(update={"objective": "expected_value"})
    leads = {"expected_value": [1000.0, None]}
    plan = plan_of([[0.5, 0.3], [0.4, 0.2]], [1, 1], config=config, leads=leads)
    rows = plan.assignments.set_index("lead_id")
    assert plan.gain.unit == "revenue"
    assert rows["expected_revenue"].sum() == pytest.approx(1000 * 0.5 + 1000 * 0.2 + 0 * 0)


def test_a_kept_lead_stays_with_its_rep_and_says_so():
    leads = {"previous_rep_id": pd.array(["R1"], dtype="str"), "days_without_contact": [3.0]}
    candidates, lead_frame, rep_frame = day([[0.5, None]], [0, 1], leads=leads)
    fair = match(candidates, lead_frame, rep_frame, NO_FAIRNESS)
    # the nightly flow turns a reclaimed lead that nobody took into a keep row
    kept = fair.assignments.assign(
        action="keep",
        rep_id="R1",
        reason_code="keep",
        reason_params=json.dumps({"rep_id": "R1", "days_without_contact": 3}),
    )
    kept_result = type(fair)(kept, fair.rep_summary, fair.diagnostics, fair.fairness)
    plan = manager_plan(
        kept_result, fair, lead_frame, rep_frame, NO_FAIRNESS, run_date=RUN_DATE, window_days=1
    )
    row = plan.assignments.iloc[0]
    assert (row["action"], row["rep_id"], row["previous_rep_id"]) == ("keep", "R1", "R1")
    assert row["reason"] == (
        "stays with Rep 1: no other rep can take it today; remind Rep 1 to make first contact "
        "(3 working days without contact)"
    )
    assert plan.rep_summary.set_index("rep_id").loc["R1", "kept"] == 1


@pytest.mark.parametrize(
    ("n_eligible", "english", "chinese"),
    [
        (
            1,
            "held for tomorrow: the only eligible rep is at capacity",
            "暂缓到明天：唯一符合条件的销售已满负荷",
        ),
        (
            2,
            "held for tomorrow: all 2 eligible reps are at capacity",
            "暂缓到明天：2名符合条件的销售均已满负荷",
        ),
    ],
)
def test_held_reasons_agree_in_number(n_eligible, english, chinese):
    params = {"n_eligible": n_eligible}
    assert ENGLISH.render(["hold_capacity"], params) == english
    assert CHINESE.render(["hold_capacity"], params) == chinese


@pytest.mark.parametrize(
    ("days", "text"),
    [
        (1, "reclaimed from Ana after 1 working day without contact"),
        (3, "reclaimed from Ana after 3 working days without contact"),
        ("several", "reclaimed from Ana after several working days without contact"),
    ],
)
def test_reclaim_reasons_agree_in_number(days, text):
    params = {"previous_rep_id": "R1", "days_without_contact": days}
    assert ENGLISH.render(["reclaimed"], params, {"R1": "Ana"}) == text


def test_chinese_ranks_read_as_first_and_second_choice():
    params = {"rank": 2, "best_rep_id": "R0", "rep_id": "R1"}
    assert CHINESE.render(["capacity"], params, {"R0": "王芳"}) == "次选：王芳已满负荷"
    assert CHINESE.render(["capacity"], {**params, "rank": 3}) == "第3顺位：R0已满负荷"


def test_rep_labels_are_names_unless_two_reps_share_one():
    reps = pd.DataFrame({"rep_id": ["R1", "R2", "R3", "R4"], "name": ["Ana", "Li", "Li", None]})
    assert rep_labels(reps) == {"R1": "Ana", "R2": "Li (R2)", "R3": "Li (R3)", "R4": "R4"}


def test_top_tier_leads_by_tenure_compare_with_capacity():
    asg_ = pd.DataFrame(
        {"lead_id": ["L0", "L1", "L2"], "rep_id": ["R0", "R0", None], "tier": ["A", "A", "A"]}
    )
    reps = pd.DataFrame({"rep_id": ["R0", "R1"], "tenure_days": [30.0, 800.0], "capacity": [1, 3]})
    table = tier_by_tenure(asg_, reps, ramp_days=90).set_index("group")
    assert table.loc["ramp_up", "top_tier_leads"] == 2
    assert table.loc["ramp_up", "in_proportion"] == pytest.approx(0.5)
    assert table.loc["over_1_year", "in_proportion"] == pytest.approx(1.5)
    assert table["reps"].tolist() == [1, 0, 1]


# --- the files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-A1", "'-A1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("Ana = Bo", "Ana = Bo"),
        ("王芳", "王芳"),
    ],
)
def test_cells_that_would_start_a_formula_are_neutralised(text, written):
    assert safe_cell(text) == written


def test_long_cells_are_cut_at_the_excel_limit():
    cut = safe_cell("x" * 40_000)
    assert len(cut) == EXCEL_CELL_LIMIT == 32_767 and cut.endswith("…")
    assert len(safe_cell("=" + "x" * 40_000)) == EXCEL_CELL_LIMIT


def test_a_written_csv_is_safe_and_keeps_numbers_as_numbers(tmp_path):
    frame = pd.DataFrame(
        {"name": ["=cmd|'/c calc'!A1", "Ana", "y" * 33_000], "gap": [-1.25, 0.04, -0.04]}
    )
    write_csv(frame, tmp_path / "x.csv", {"gap": 1})
    raw = (tmp_path / "x.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").split("\n")
    assert lines[1] == "'=cmd|'/c calc'!A1,-1.2"
    assert lines[2] == "Ana,0.0"
    assert len(lines[3].split(",")[0]) == EXCEL_CELL_LIMIT and lines[3].endswith(",0.0")


def hostile_plan():
    names = ["=cmd|'/c calc'!A1", "<b>Bo</b> & $x^2$", "张" * 33_000]
    return plan_of(
        [[0.5, 0.4, 0.3], [0.4, 0.5, 0.3], [0.3, 0.4, 0.5]], [1, 1, 1], reps={"name": names}
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_plan_files_round_trip_through_their_schemas(tmp_path, lang):
    plan = hostile_plan()
    write_plan(plan, tmp_path, lang)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "assignments.csv",
        "left_out.csv",
        "rep_summary.csv",
    ]
    back = read_plan_csv(tmp_path / "assignments.csv")
    assert back.columns.tolist() == plan.assignments.columns.tolist()
    assert back["lead_id"].tolist() == plan.assignments["lead_id"].tolist()
    assert back["action"].tolist() == plan.assignments["action"].tolist()
    assert (
        back["rep_win_chance_pct"].tolist()
        == plan.assignments["rep_win_chance_pct"].round(1).tolist()
    )
    reps = read_plan_csv(tmp_path / "rep_summary.csv")
    assert reps["rep_name"].iloc[0] == "=cmd|'/c calc'!A1"  # the apostrophe is undone on reading
    assert reps["available"].all()
    assert len(reps["rep_name"].iloc[2]) == EXCEL_CELL_LIMIT
    text = (tmp_path / "rep_summary.csv").read_text(encoding="utf-8-sig")
    assert ",'=cmd|'/c calc'!A1," in text
    assert read_plan_csv(tmp_path / "left_out.csv").empty


def test_chinese_files_have_chinese_headers_actions_and_reasons(tmp_path):
    leads = {"previous_rep_id": pd.array(["R1", None], dtype="str")}
    leads["days_without_contact"] = [5.0, None]
    plan = plan_of([[0.5, None], [0.4, 0.6]], [1, 0], leads=leads)
    write_plan(plan, tmp_path, "zh")
    frame = pd.read_csv(tmp_path / "assignments.csv", encoding="utf-8-sig", dtype=str)
    assert frame.columns.tolist() == [ZH_HEADERS[c] for c in plan.assignments.columns]
    assert frame["操作"].tolist() == ["改派", "暂缓"]
    assert frame["原因"].tolist() == [
        "Rep 1已5个工作日未联系，收回；唯一符合条件的销售",
        "暂缓到明天：2名符合条件的销售均已满负荷",
    ]
    assert frame["轮流分配基准赢单率(%)"].tolist() == ["50.0", "40.0"]


def test_a_file_that_breaks_its_schema_is_refused_on_reading(tmp_path):
    plan = plan_of([[0.5, 0.4]], [1, 1])
    write_plan(plan, tmp_path, "en")
    path = tmp_path / "assignments.csv"
    text = path.read_text(encoding="utf-8-sig").replace(",assign,", ",give,")
    path.write_text(text, encoding="utf-8-sig")
    with pytest.raises(pa.errors.SchemaError, match="isin"):
        read_plan_csv(path)


def test_a_hold_with_a_rep_breaks_the_plan_contract():
    plan = plan_of([[0.5, 0.4]], [1, 1])
    broken = plan.assignments.assign(action="hold")
    with pytest.raises(pa.errors.SchemaError, match="hold rows name none"):
        PlanAssignments.validate(broken)


def test_plan_decimals_cover_every_float_column():
    plan = plan_of([[0.5, 0.4]], [1, 1])
    floats = [
        c
        for frame in (plan.assignments, plan.rep_summary)
        for c in frame.columns
        if pd.api.types.is_float_dtype(frame[c])
    ]
    assert set(floats) <= set(PLAN_DECIMALS)


def test_an_empty_day_gives_empty_valid_files(tmp_path):
    plan = plan_of([], [1, 1])
    assert plan.assignments.empty and len(plan.rep_summary) == 2
    assert plan.gain.gain == 0 and plan.counts["hold"] == 0
    write_plan(plan, tmp_path, "zh")
    assert read_plan_csv(tmp_path / "assignments.csv").empty
    assert read_plan_csv(tmp_path / "rep_summary.csv")["assigned"].tolist() == [0, 0]


def test_each_fairness_rule_alone_is_costed_when_fairness_costs_enough():
    # R0 is far better on the two top leads; the value band spreads the leads over four reps
    p = [[0.9, 0.3, 0.3, 0.3]] * 2 + [[0.4, 0.3, 0.3, 0.3]] * 6
    candidates, leads, reps = day(p, [8, 8, 8, 8])
    config = MatchingConfig()
    fair = match(candidates, leads, reps, config)
    price = fair.diagnostics.price_of_fairness
    assert price == pytest.approx(1.1)
    costs = fairness_costs(candidates, leads, reps, config, fair)
    # without the band the plan gets all of it back; the other rules alone cost nothing here
    assert costs == {
        "value_share": pytest.approx(price),
        "new_rep_quota": 0.0,
        "top_tier_cap": 0.0,
    }
    rr = match(candidates, leads, reps, config, policy="round_robin")
    plan = manager_plan(
        fair, rr, leads, reps, config, run_date=RUN_DATE, window_days=1, rule_costs=costs
    )
    # two top-tier leads cannot stay under a 25% cap (each is half of them); then the cost
    assert [n.rule for n in plan.fairness] == ["top_tier_max", "top_tier_max", "cost:value_share"]
    assert {n.rep_id for n in plan.fairness[:2]} == {"R0", "R1"}
    assert plan.fairness[0].share == pytest.approx(0.5) and plan.fairness[0].limit == 0.25
    assert plan.fairness[2].cost == pytest.approx(1.1) and plan.fairness[2].n_reps == 4


def test_fairness_that_costs_little_is_not_costed_rule_by_rule():
    candidates, leads, reps = day([[0.5, 0.5]] * 4, [4, 4])
    fair = match(candidates, leads, reps, MatchingConfig())
    assert fair.diagnostics.price_of_fairness == pytest.approx(0.0)
    assert fairness_costs(candidates, leads, reps, MatchingConfig(), fair) == {}
