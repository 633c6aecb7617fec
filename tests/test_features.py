"""Lead, rep and pair features on hand-built frames: targets, point-in-time counts, matches."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from features.config import FeatureConfig
from features.leads import lead_features
from features.pairs import (
    PairFeatures,
    build_scoring_pairs,
    build_training_pairs,
    default_as_of,
    feature_columns,
)
from features.reps import EventCounts, outcome_events
from features.schemas import CrmData, CrmValidationError, validate_crm
from features.timestamps import as_ns
from tests.conftest import tiny_crm

T0 = pd.Timestamp("2024-01-01")


def day(n: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=n)


def crm(rows: list[tuple], *, reps: pd.DataFrame | None = None) -> CrmData:
    """History from (lead_id, rep_id, assigned day, status, closed day | None, industry) rows."""
    reps = (
        reps
        if reps is not None
        else pd.DataFrame(
            {
                "rep_id": ["A", "B", "C"],
                "name": ["Ann", "Bob", "Cy"],
                "team": ["t1", "t1", "t2"],
                "region": ["EU", "US", "EU"],
                "hire_date": [day(-400), day(-30), day(-1000)],
                "skills": ["Retail; software", "e-retail", None],
                "daily_capacity": pd.array([5, 0, 2], dtype="Int64"),
                "active": [True, True, False],
            }
        )
    )
    leads = pd.DataFrame(
        {
            "lead_id": [r[0] for r in rows],
            "created_at": [day(r[2]) - pd.Timedelta(hours=6) for r in rows],
            "source": "web",
            "industry": [r[5] for r in rows],
            "region": "EU",
            "product": "basic",
        }
    )
    assignments = pd.DataFrame(
        {
            "lead_id": [r[0] for r in rows],
            "rep_id": [r[1] for r in rows],
            "assigned_at": [day(r[2]) for r in rows],
            "first_contact_at": pd.NaT,
            "status": [r[3] for r in rows],
            "closed_at": [pd.NaT if r[4] is None else day(r[4]) for r in rows],
            "deal_value": [1.0 if r[3] == "won" else np.nan for r in rows],
        }
    )
    return validate_crm(CrmData(reps=reps, leads=leads, assignments=assignments))


# --- the target ------------------------------------------------------------------------------

OUTCOMES = [
    # status, closed (days after assignment), decided (days after), won in a 90-day window
    ("won", 10, 10, 1),
    ("lost", 10, 10, 0),
    ("won", 120, 90, 0),  # won, but after the window: not a win of the target
    ("lost", 120, 90, 0),
    ("open", None, 90, 0),  # still open when the window ends: decided then, as not won
]


@pytest.mark.parametrize(("status", "closed", "decided", "won"), OUTCOMES)
def test_an_outcome_is_decided_when_it_closes_in_the_window_or_when_the_window_ends(
    status, closed, decided, won
):
    asg = pd.DataFrame(
        {
            "assigned_at": [T0],
            "status": [status],
            "closed_at": [pd.NaT if closed is None else day(closed)],
        }
    )
    events = outcome_events(asg, window_days=90)
    assert events.loc[0, "decided_at"] == day(decided)
    assert events.loc[0, "won_in_window"] == won


def test_training_pairs_leave_out_young_open_leads_and_count_old_open_ones_as_not_won():
    data = crm(
        [
            ("L1", "A", 0, "won", 5, "Retail"),
            ("L2", "A", 1, "open", None, "Retail"),  # open, 99 days old at as_of: not won
            ("L3", "B", 60, "open", None, "Retail"),  # open, 40 days old: no label yet
            ("L4", "B", 70, "lost", 80, "Retail"),  # young but closed: labelled
        ]
    )
    pairs = build_training_pairs(data, as_of=day(100), config=FeatureConfig())
    assert pairs["lead_id"].tolist() == ["L1", "L2", "L4"]
    assert pairs["won"].tolist() == [1, 0, 0]
    assert pairs["mature"].tolist() == [True, True, False]
    PairFeatures.validate(pairs)


def test_outcomes_recorded_after_as_of_are_not_yet_known():
    data = crm([("L1", "A", 0, "won", 50, "Retail"), ("L2", "A", 0, "lost", 5, "Retail")])
    pairs = build_training_pairs(data, as_of=day(30))
    assert pairs["lead_id"].tolist() == ["L2"]


def test_default_as_of_is_the_midnight_after_the_last_event():
    data = crm([("L1", "A", 0, "won", 50.5, "Retail")])
    assert default_as_of(data) == day(51)


# --- point-in-time counting ------------------------------------------------------------------


def test_event_counts_count_only_strictly_earlier_events_of_the_same_key():
    times = as_ns(pd.Series([day(1), day(2), day(2), day(5)]))
    counts = EventCounts.build(np.array([0, 0, 1, 0]), times, np.array([1.0, 0.0, 1.0, 1.0]))
    queries = as_ns(pd.Series([day(2), day(2.5), day(9), day(9), day(9)]))
    n, total = counts.before(np.array([0, 0, 0, 1, -1]), queries)
    assert n.tolist() == [1, 2, 3, 1, 0]  # day 2's event is not before day 2; -1 is unknown
    assert total.tolist() == [1, 1, 2, 1, 0]
    since = as_ns(pd.Series([day(2)] * 5))
    n, _ = counts.before(np.array([0, 0, 0, 1, -1]), queries, since)
    assert n.tolist() == [0, 1, 2, 1, 0]


def test_rep_features_as_of_a_time_use_only_what_happened_before_it():
    data = crm(
        [
            ("L1", "A", 0, "won", 5, "Retail"),
            ("L2", "A", 1, "lost", 20, "Retail"),
            ("L3", "A", 8, "open", None, "Software"),
            ("L4", "B", 9, "won", 12, "Retail"),
        ]
    )
    config = FeatureConfig(shrinkage_strength=0, recent_days=7)
    pairs = build_scoring_pairs(data, data.leads.iloc[[0]], as_of=day(10), config=config)
    a = pairs.set_index("rep_id").loc["A"]
    assert a["rep_outcomes"] == 1  # L1 won on day 5; L2 closes on day 20
    assert a["rep_win_rate"] == 1.0  # raw rate without shrinkage
    assert a["rep_open_load"] == 2  # L2 and L3
    assert a["rep_recent_volume"] == 1  # only L3 was assigned in the 7 days before day 10
    assert a["rep_tenure_days"] == 410
    b = pairs.set_index("rep_id").loc["B"]
    assert b["rep_open_load"] == 1


def test_win_rates_are_shrunk_towards_the_company():
    data = crm(
        [
            ("L1", "A", 0, "won", 1, "Retail"),
            ("L2", "A", 0, "won", 1, "Retail"),
            ("L3", "B", 0, "lost", 1, "Retail"),
            ("L4", "C", 0, "lost", 1, "Retail"),
        ]
    )
    config = FeatureConfig(shrinkage_strength=2, segment_shrinkage_strength=1)
    pairs = build_scoring_pairs(data, data.leads.iloc[[0]], as_of=day(2), config=config)
    a = pairs.set_index("rep_id").loc["A"]
    company = (2 + 1) / (4 + 2)  # Beta(1, 1) prior
    # Not towards the team: the export knows today's teams, not those of the time.
    rep = (2 + 2 * company) / (2 + 2)
    assert a["rep_win_rate"] == pytest.approx(rep)
    # All history is Retail, so the segment's rate equals the company's and the prior is the
    # rep's own rate: the segment rate is the rep's rate pulled once more towards the data.
    assert a["rep_industry_win_rate"] == pytest.approx((2 + 1 * rep) / (2 + 1))


def test_a_rep_without_history_gets_the_company_rate_whatever_its_team():
    data = crm([("L1", "A", 0, "won", 1, "Retail"), ("L3", "A", 0, "won", 1, "Retail")])
    new_rep = data.reps.iloc[[2]].assign(rep_id="N", team="t9", active=True)
    data = replace(data, reps=pd.concat([data.reps, new_rep], ignore_index=True))
    pairs = build_scoring_pairs(data, data.leads.iloc[[0]], as_of=day(2)).set_index("rep_id")
    company = (2 + 1) / (2 + 2)
    assert pairs.loc["B", "rep_win_rate"] == pytest.approx(company)  # B shares A's team
    assert pairs.loc["N", "rep_win_rate"] == pytest.approx(company)
    assert pairs.loc["N", "rep_outcomes"] == 0


def test_an_outcome_with_no_rep_counts_for_the_company_and_the_lead_never_for_a_rep():
    # L3 was lost with no known rep (a mapping's unassigned_outcome: lost): it lowers the
    # company rate, is not a training pair, and is in nobody's record.
    data = crm(
        [
            ("L1", "A", 0, "won", 1, "Retail"),
            ("L2", "B", 0, "lost", 1, "Retail"),
            ("L3", None, 0, "lost", 1, "Retail"),
        ]
    )
    assert build_training_pairs(data, as_of=day(2))["lead_id"].tolist() == ["L1", "L2"]
    config = FeatureConfig(shrinkage_strength=2, segment_shrinkage_strength=1)
    pairs = build_scoring_pairs(data, data.leads.iloc[[0]], as_of=day(2), config=config)
    a = pairs.set_index("rep_id").loc["A"]
    company = (1 + 1) / (3 + 2)  # Beta(1, 1) prior over all three outcomes
    assert a["rep_outcomes"] == 1
    assert a["rep_win_rate"] == pytest.approx((1 + 2 * company) / (1 + 2))
    assert a["account_win_rate"] == pytest.approx(company)


def test_only_a_won_or_lost_row_may_have_no_rep():
    with pytest.raises(CrmValidationError, match="a rep for an open lead"):
        crm([("L1", None, 0, "open", None, "Retail")])


# --- experience as of the time: shares of earlier leads ------------------------------------


def test_a_reps_share_of_earlier_leads_in_the_leads_industry_and_region_as_of_the_time():
    data = crm(
        [
            ("L1", "A", 0, "won", 5, "Retail"),
            ("L2", "A", 1, "lost", 20, "Retail"),
            ("L3", "A", 8, "open", None, "Software"),
            ("L4", "B", 9, "won", 12, "Retail"),
        ]
    )
    retail = data.leads.iloc[[0]].assign(lead_id="N1")
    candidates = pd.DataFrame({"lead_id": ["N1"] * 3, "rep_id": ["A", "B", "C"]})
    shares = {
        when: build_scoring_pairs(data, retail, as_of=day(when), candidates=candidates).set_index(
            "rep_id"
        )
        for when in (0.5, 5, 10)
    }
    # Whatever today's skills say (A lists Retail, B only e-retail, C nothing), what counts is
    # what each rep had worked by then.
    assert shares[0.5]["rep_industry_share"].to_dict() == {"A": 1.0, "B": 0.0, "C": 0.0}
    assert shares[5]["rep_industry_share"].to_dict() == {"A": 1.0, "B": 0.0, "C": 0.0}
    assert shares[10]["rep_industry_share"].to_dict() == pytest.approx(
        {"A": 2 / 3, "B": 1.0, "C": 0.0}
    )
    # Every lead is in EU: the region share is 1 for anyone who has worked a lead.
    assert shares[10]["rep_region_share"].to_dict() == {"A": 1.0, "B": 1.0, "C": 0.0}
    assert shares[10]["rep_product_share"].to_dict() == {"A": 1.0, "B": 1.0, "C": 0.0}


def test_without_attributes_since_todays_skills_region_team_and_capacity_change_no_feature():
    data = crm([("L1", "A", 0, "won", 1, "Retail"), ("L2", "B", 1, "lost", 3, "Software")])
    moved = data.reps.assign(
        team=["t9", "t8", "t7"],
        region=["APAC", "APAC", "US"],
        skills=["Software", None, "Retail"],
        daily_capacity=pd.array([1, 9, 3], dtype="Int64"),
    )
    before, after = (
        build_scoring_pairs(d, data.leads, as_of=day(5)) for d in (data, replace(data, reps=moved))
    )
    pd.testing.assert_frame_equal(before, after)
    assert (
        before[["skill_match_industry", "skill_match_product", "region_match"]].isna().all().all()
    )
    assert not {"rep_team", "rep_daily_capacity", "rep_load_per_capacity"} & set(before)


NAN = float("nan")
# A (EU, skills "Retail; software"), B (US, "e-retail"), C (EU, no skills), scored at day 5 for
# a Retail / basic lead in EU: (reps' attributes_since, expected industry / product / region
# matches of A, B, C).
DECLARED_CASES = [
    ("known long before", [day(-10)] * 3, [1, 0, 0], [0, 0, 0], [1, 0, 1]),
    ("known from exactly then", [day(5)] * 3, [1, 0, 0], [0, 0, 0], [1, 0, 1]),
    ("changed after then", [day(6)] * 3, [NAN] * 3, [NAN] * 3, [NAN] * 3),
    ("empty", [None] * 3, [NAN] * 3, [NAN] * 3, [NAN] * 3),
    ("one rep each", [day(-10), day(6), None], [1, NAN, NAN], [0, NAN, NAN], [1, NAN, NAN]),
    ("no column", None, [NAN] * 3, [NAN] * 3, [NAN] * 3),
]


@pytest.mark.parametrize(
    ("since", "industry", "product", "region"),
    [case[1:] for case in DECLARED_CASES],
    ids=[case[0] for case in DECLARED_CASES],
)
def test_declared_skill_and_region_matches_are_read_only_from_attributes_since_on(
    since, industry, product, region
):
    base = crm([("L1", "A", 0, "won", 1, "Retail"), ("L2", "B", 1, "lost", 3, "Software")])
    reps = base.reps if since is None else base.reps.assign(attributes_since=since)
    data = validate_crm(replace(base, reps=reps))
    candidates = pd.DataFrame({"lead_id": ["L1"] * 3, "rep_id": ["A", "B", "C"]})
    pairs = build_scoring_pairs(data, data.leads, as_of=day(5), candidates=candidates)
    np.testing.assert_array_equal(pairs["skill_match_industry"], industry)
    np.testing.assert_array_equal(pairs["skill_match_product"], product)
    np.testing.assert_array_equal(pairs["region_match"], region)


def test_training_pairs_read_declared_matches_only_once_they_held():
    base = crm(
        [
            ("L1", "A", 0, "won", 1, "Retail"),
            ("L2", "A", 4, "lost", 5, "Retail"),
            ("L3", "A", 9, "lost", 12, "Retail"),
        ]
    )
    # A's skills and region were set on day 4: the pair of day 0 must not read them.
    data = validate_crm(replace(base, reps=base.reps.assign(attributes_since=day(4))))
    pairs = build_training_pairs(data, as_of=day(200)).set_index("lead_id")
    np.testing.assert_array_equal(pairs["skill_match_industry"], [NAN, 1.0, 1.0])
    np.testing.assert_array_equal(pairs["region_match"], [NAN, 1.0, 1.0])
    _, numeric = feature_columns(pairs)
    assert {"skill_match_industry", "skill_match_product", "region_match"} <= set(numeric)
    _, lead_only = feature_columns(pairs, rep_information=False)
    assert "region_match" not in lead_only


def test_a_declared_skill_matches_whole_tags_in_any_case_and_width():
    base = crm([("L1", "A", 0, "won", 1, "Retail")])
    reps = base.reps.assign(skills=["ＲＥＴＡＩＬ；Pro", "retailers", "software"])
    data = validate_crm(replace(base, reps=reps.assign(attributes_since=day(-1))))
    candidates = pd.DataFrame({"lead_id": ["L1"] * 3, "rep_id": ["A", "B", "C"]})
    pairs = build_scoring_pairs(data, data.leads, as_of=day(2), candidates=candidates)
    assert pairs["skill_match_industry"].tolist() == [1.0, 0.0, 0.0]


# --- the frames ------------------------------------------------------------------------------


def test_scoring_pairs_are_every_lead_with_every_active_rep_in_order():
    data = validate_crm(tiny_crm())
    pairs = build_scoring_pairs(data, data.leads.iloc[[3, 4]], as_of=pd.Timestamp("2024-03-21"))
    assert list(zip(pairs["lead_id"], pairs["rep_id"], strict=True)) == [
        ("L4", "R1"),
        ("L4", "R2"),
        ("L5", "R1"),
        ("L5", "R2"),
    ]
    assert (pairs["at"] == pd.Timestamp("2024-03-21")).all()
    assert "won" not in pairs


def test_training_and_scoring_build_the_same_features_for_the_same_pair_and_time():
    data = crm(
        [
            ("L1", "A", 0, "won", 5, "Retail"),
            ("L2", "B", 2, "lost", 6, "Software"),
            ("L3", "A", 8, "lost", 9, "Software"),
        ]
    )
    training = build_training_pairs(data, as_of=day(200)).set_index("lead_id")
    candidates = pd.DataFrame({"lead_id": ["L3"], "rep_id": ["A"]})
    scoring = build_scoring_pairs(data, data.leads, as_of=day(8), candidates=candidates)
    features = [c for c in scoring.columns if c not in ("lead_id", "rep_id", "at")]
    pd.testing.assert_series_equal(
        training.loc["L3", features], scoring.iloc[0][features], check_names=False
    )


def test_renaming_a_rep_changes_no_feature():
    data = crm(
        [
            ("L1", "A", 0, "won", 5, "Retail"),
            ("L2", "B", 2, "lost", 6, "Software"),
            ("L3", "A", 8, "lost", 9, "Software"),
        ]
    )
    renamed = replace(
        data,
        reps=data.reps.assign(rep_id=data.reps["rep_id"].replace({"A": "zz"})),
        assignments=data.assignments.assign(rep_id=data.assignments["rep_id"].replace({"A": "zz"})),
    )
    before = build_training_pairs(data, as_of=day(100))
    after = build_training_pairs(renamed, as_of=day(100))
    pd.testing.assert_frame_equal(before.drop(columns="rep_id"), after.drop(columns="rep_id"))


def test_lead_features_keep_text_as_text_and_extra_columns():
    leads = validate_crm(tiny_crm()).leads.assign(x_score=[1.5, 2, 3, 4, 5], x_tier=list("abcab"))
    features = lead_features(leads)
    assert features.loc["L2", "created_weekday"] == 4  # 2024-03-01 was a Friday
    assert features.loc["L2", "created_hour"] == 10
    assert np.isnan(features.loc["L1", "company_size"])  # optional column absent
    assert features["x_score"].dtype == float
    pairs_like = features.assign(x_tier=features["x_tier"])
    categorical, numeric = feature_columns(pairs_like, rep_information=False)
    assert "x_tier" in categorical and "x_score" in numeric
    assert not [c for c in numeric if c.startswith("rep_")]


def test_pairs_of_unknown_leads_are_refused_with_their_ids():
    data = validate_crm(tiny_crm())
    candidates = pd.DataFrame({"lead_id": ["L404"], "rep_id": ["R1"]})
    with pytest.raises(ValueError, match=r"missing from the leads table, e.g. \['L404'\]"):
        build_scoring_pairs(data, data.leads, as_of=day(100), candidates=candidates)


def test_building_features_does_not_mutate_the_input():
    data = validate_crm(tiny_crm())
    before = {name: frame.copy() for name, frame in data.tables().items()}
    build_training_pairs(data, as_of=pd.Timestamp("2024-07-01"))
    build_scoring_pairs(data, data.leads, as_of=pd.Timestamp("2024-03-21"))
    for name, frame in data.tables().items():
        pd.testing.assert_frame_equal(frame, before[name])
