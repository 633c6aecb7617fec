"""The nightly run's pure steps, without Prefect or MLflow: who owns an account, scoring in
chunks, and what becomes of reclaimed leads."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from features.config import FeatureConfig
from features.daily import account_owners, leads_to_place, rep_day, snapshot
from features.pairs import build_scoring_pairs, build_training_pairs
from features.reps import index_history
from features.schemas import validate_crm
from matching import candidate_pairs, match
from matching.nightly import settle_reclaims
from models.chunks import score_in_chunks
from models.config import LightGBMParams, ModelConfig
from models.pair_model import PairModel
from pipelines.config import LeadmatchConfig

# --- who owns an account ----------------------------------------------------------------------


def test_an_account_belongs_to_the_rep_of_its_latest_open_lead(tiny):
    data = validate_crm(
        replace(tiny, leads=tiny.leads.assign(account_id=["A1", "A1", "A1", "A2", None]))
    )
    # A1: L1 won by R1, L2 lost by R2, L3 open with R1 (the only open one); A2: L4 open with R2.
    owners = account_owners(data)
    assert owners.to_dict("list") == {"account_id": ["A1", "A2"], "rep_id": ["R1", "R2"]}
    # The later of two open leads decides; an account with no open lead has no owner.
    asg = data.assignments.assign(status=["won", "open", "open", "lost"])
    asg.loc[1, "assigned_at"] = pd.Timestamp("2024-03-05")
    owners = account_owners(replace(data, assignments=asg))
    assert owners.to_dict("list") == {"account_id": ["A1"], "rep_id": ["R2"]}
    assert account_owners(tiny) is None  # no account_id column


# --- scoring in chunks ------------------------------------------------------------------------


def test_chunks_hold_whole_leads_and_give_back_the_rows_order():
    candidates = pd.DataFrame(
        {
            "lead_id": ["L2", "L1", "L2", "L3", "L1", "L2", "L4"],
            "rep_id": ["R1", "R1", "R2", "R1", "R2", "R3", "R1"],
        }
    )
    leads = pd.DataFrame({"lead_id": ["L1", "L2", "L3", "L4", "L5"], "size": [1, 2, 3, 4, 5]})
    calls = []

    def score(chunk_leads, chunk):
        calls.append((sorted(chunk_leads["lead_id"]), sorted(set(chunk["lead_id"]))))
        size = chunk["lead_id"].map(chunk_leads.set_index("lead_id")["size"])
        return (size * 10 + chunk["rep_id"].str[1:].astype(int)).to_numpy(dtype=float)

    got = score_in_chunks(candidates, leads, score, chunk_rows=3)
    assert got.tolist() == [21, 11, 22, 31, 12, 23, 41]
    # L2 (3 pairs) fills a chunk; L1 (2) and L3 (1) share one; L4 comes last.
    assert calls == [(["L2"], ["L2"]), (["L1", "L3"], ["L1", "L3"]), (["L4"], ["L4"])]
    calls.clear()
    assert score_in_chunks(candidates, leads, score, chunk_rows=1).tolist() == got.tolist()
    assert len(calls) == 4  # a lead with more pairs than a chunk is a chunk of its own
    assert score_in_chunks(candidates.iloc[:0], leads, score, chunk_rows=3).tolist() == []
    with pytest.raises(ValueError, match="chunk_rows must be at least 1, not 0"):
        score_in_chunks(candidates, leads, score, chunk_rows=0)


@pytest.mark.slow
def test_a_trained_model_scores_the_same_in_many_chunks_as_in_one(small_world):
    """Every feature of a pair (the lead's account history included) is the same whichever
    other leads share its chunk."""
    data, as_of = small_world.data, small_world.as_of
    fast = ModelConfig(lightgbm=LightGBMParams(n_estimators=20))
    model = PairModel(fast).fit(build_training_pairs(data, as_of=as_of))
    leads = data.leads.loc[data.leads["account_id"].notna()].tail(40)
    reps = rep_day(data, as_of)
    candidates = candidate_pairs(leads, reps, LeadmatchConfig().matching).sample(
        frac=1.0, random_state=0
    )
    features = FeatureConfig()
    history = index_history(data.assignments, data.leads, data.reps, features)

    def score(chunk_leads, chunk):
        pairs = build_scoring_pairs(
            data,
            chunk_leads,
            as_of=as_of,
            config=features,
            candidates=chunk,
            history=history,
        )
        return model.predict_proba(pairs)[:, 1]

    whole = score_in_chunks(candidates, leads, score, chunk_rows=len(candidates))
    chunked = score_in_chunks(candidates, leads, score, chunk_rows=7)
    assert len(candidates) > 7 * 5
    np.testing.assert_array_equal(chunked, whole)
    assert np.unique(whole).size > 10  # the pairs differ: the equality is not trivial


# --- what becomes of reclaimed leads ----------------------------------------------------------


def plan_for(data, day: str, config=None):
    """The pool and the settled matching of ``day`` on ``data``, every pair at p = 0.3."""
    config = config or LeadmatchConfig()
    as_of = pd.Timestamp(day)
    state = snapshot(validate_crm(data), as_of)
    pool = leads_to_place(state, as_of, sla_days=3, max_age_days=30)
    reps = rep_day(state, as_of)
    candidates = candidate_pairs(pool.leads, reps, config.matching).assign(p_win=0.3)
    result = match(candidates, pool.leads, reps, config.matching)
    return settle_reclaims(result, pool)


def test_a_reclaimed_lead_nobody_else_can_take_stays_with_its_rep(tiny):
    # Friday 03-08: R2 has not contacted L4 (given Monday) for 4 working days. R1, the only
    # other active rep, is away, so nobody can take it: it stays with R2, with a reminder.
    away = pd.DataFrame({"rep_id": ["R1"], "date": ["2024-03-08"], "available": ["no"]})
    result, pool = plan_for(replace(tiny, availability=away), "2024-03-08")
    rows = result.assignments.set_index("lead_id")
    assert rows.loc["L4", "action"] == "keep" and rows.loc["L4", "rep_id"] == "R2"
    assert rows.loc["L4", "reason_code"] == "keep"
    assert rows.loc["L4", "reason"] == (
        "stays with R2: no other rep can take it today; remind R2 to make first contact "
        "(4 working days without contact)"
    )
    assert rows.loc["L5", "action"] == "assign" and rows.loc["L5", "rep_id"] == "R2"
    assert (pool.n_reclaimed, pool.kept) == (1, 1)
    # With R1 at work, the lead goes to R1.
    result, pool = plan_for(tiny, "2024-03-08")
    rows = result.assignments.set_index("lead_id")
    assert rows.loc["L4", "rep_id"] == "R1" and pool.kept == 0
    assert rows.loc["L4", "reason"].startswith(
        "reclaimed from R2 after 4 working days without contact"
    )


def test_leads_of_a_rep_who_left_are_placed_again_and_say_why(tiny):
    left = replace(tiny, reps=tiny.reps.assign(active=["true", "no", "0"]))
    result, pool = plan_for(left, "2024-03-08")
    rows = result.assignments.set_index("lead_id")
    # L2 (closed only after 03-08) and L4 were R2's; both go to R1, the one rep left.
    assert pool.n_rep_left == 2 and pool.kept == 0
    assert rows.loc[["L2", "L4"], "rep_id"].tolist() == ["R1", "R1"]
    assert rows.loc["L4", "reason_code"].split(";")[0] == "rep_left"
    assert rows.loc["L4", "reason"].startswith("R2 has left the team; ")
    # Nobody to take them: they are held (first in line tomorrow), never "kept" by a rep who left.
    away = pd.DataFrame({"rep_id": ["R1"], "date": ["2024-03-08"], "available": ["no"]})
    result, pool = plan_for(replace(left, availability=away), "2024-03-08")
    rows = result.assignments.set_index("lead_id")
    assert rows.loc[["L2", "L4"], "action"].tolist() == ["hold", "hold"]
    assert rows.loc[["L2", "L4"], "rep_id"].isna().all() and pool.kept == 0
    assert (
        rows.loc["L4", "reason"]
        == "R2 has left the team; held for tomorrow: no rep was scored for this lead"
    )
