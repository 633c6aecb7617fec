"""Off-policy evaluation: estimators against answers known by hand, the overlap verdict, the
propensity model, the reconstruction of historical candidates, and a small estimator check on
the simulator (the full one is benchmarks/bench_off_policy.py)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.config import OffPolicyConfig
from evaluation.off_policy import (
    ESTIMATORS,
    ChoiceModel,
    choice_features,
    cross_fit_folds,
    estimate_propensities,
    evaluate_policy,
    historical_candidates,
    logged_decisions,
)
from features.schemas import CrmData, validate_crm
from matching.config import EligibilityRules
from matching.eligibility import Cause, Eligibility
from simulation import simulate

# Few leads in hand-built cases: let the overlap rules judge only where a test asks them to.
SMALL = OffPolicyConfig(n_bootstrap=50, min_ess=0, min_agreement=0, max_unsupported_share=1)

# Three leads and their candidates: mu is the logging policy, y the (deterministic) reward the
# pair would earn, q a model that is deliberately wrong, pi a target policy.
CASE = pd.DataFrame(
    {
        "lead_id": ["L1", "L1", "L1", "L2", "L2", "L3", "L3", "L3"],
        "rep_id": ["A", "B", "C", "A", "B", "A", "B", "C"],
        "mu": [0.5, 0.3, 0.2, 0.6, 0.4, 0.2, 0.2, 0.6],
        "y": [0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0],
        "q": [0.3, 0.4, 0.2, 0.5, 0.5, 0.1, 0.2, 0.9],
        "pi": [0.0, 0.0, 1.0, 0.0, 1.0, 0.5, 0.5, 0.0],
    }
)
TRUE_VALUE = (CASE["pi"] * CASE["y"]).sum() / 3


def log_of(choices: dict[str, str], case: pd.DataFrame = CASE) -> pd.DataFrame:
    """The logged frame when lead -> rep was chosen: reward y and propensity mu of that pair."""
    chosen = pd.DataFrame({"lead_id": list(choices), "rep_id": list(choices.values())})
    rows = chosen.merge(case, on=["lead_id", "rep_id"])
    return rows[["lead_id", "rep_id"]].assign(reward=rows["y"], propensity=rows["mu"])


def target_of(case: pd.DataFrame = CASE, column: str = "pi") -> pd.DataFrame:
    return case[["lead_id", "rep_id"]].assign(prob=case[column])


def values(result) -> dict[str, float]:
    return dict(zip(result.raw["estimator"], result.raw["value"], strict=True))


# --- estimators against answers known by hand --------------------------------------------------


def test_when_the_target_is_the_logging_policy_ips_and_snips_are_the_observed_mean() -> None:
    # Every weight is pi / mu = 1, so reweighting changes nothing.
    logged = log_of({"L1": "B", "L2": "A", "L3": "C"})
    result = evaluate_policy(logged, CASE, target_of(CASE, "mu"), config=SMALL)
    got = values(result)
    assert got["snips"] == pytest.approx(logged["reward"].mean())
    assert got["ips"] == pytest.approx(logged["reward"].mean())
    assert got["logged"] == pytest.approx(2 / 3)
    assert result.overlap.ess == pytest.approx(3)


def test_ips_and_dr_are_unbiased_over_the_logging_policys_choices() -> None:
    # Average each estimator over every log the logging policy could have produced, weighted by
    # its probability: IPS and DR (even with a wrong model q) give exactly the target's value.
    # DM does not (q is wrong), nor, exactly, does SNIPS (a ratio).
    options = [CASE.loc[CASE["lead_id"] == lead] for lead in ("L1", "L2", "L3")]
    expected = dict.fromkeys(ESTIMATORS, 0.0)
    total_probability = 0.0
    for picks in itertools.product(*(o.itertuples() for o in options)):
        probability = float(np.prod([p.mu for p in picks]))
        logged = log_of({p.lead_id: p.rep_id for p in picks})
        for name, value in values(evaluate_policy(logged, CASE, target_of(), config=SMALL)).items():
            expected[name] += probability * value
        total_probability += probability
    assert total_probability == pytest.approx(1.0)
    assert expected["ips"] == pytest.approx(TRUE_VALUE)
    assert expected["dr"] == pytest.approx(TRUE_VALUE)
    assert expected["dm"] != pytest.approx(TRUE_VALUE)


def test_a_perfect_model_makes_dm_exact_and_dr_equal_to_it() -> None:
    perfect = CASE.assign(q=CASE["y"])
    logged = log_of({"L1": "A", "L2": "B", "L3": "C"}, perfect)
    got = values(evaluate_policy(logged, perfect, target_of(perfect), config=SMALL))
    assert got["dm"] == pytest.approx(TRUE_VALUE)
    assert got["dr"] == pytest.approx(TRUE_VALUE)
    assert got["sndr"] == pytest.approx(TRUE_VALUE)


def naive_estimates(
    logged: pd.DataFrame, candidates: pd.DataFrame, target: pd.DataFrame
) -> dict[str, float]:
    """The estimator formulas written out lead by lead: the reference for the vectorised code."""
    rows = {"y": [], "dm": [], "w": [], "residual": []}
    for lead in logged.itertuples():
        options = candidates.loc[candidates["lead_id"] == lead.lead_id].set_index("rep_id")
        pi = target.loc[target["lead_id"] == lead.lead_id].set_index("rep_id")["prob"]
        rows["y"].append(lead.reward)
        rows["dm"].append(sum(pi[r] * options.loc[r, "q"] for r in pi.index))
        rows["w"].append(pi.get(lead.rep_id, 0.0) / lead.propensity)
        rows["residual"].append(lead.reward - options.loc[lead.rep_id, "q"])
    y, dm, w, r = (np.array(rows[k]) for k in ("y", "dm", "w", "residual"))
    with np.errstate(invalid="ignore"):  # no weight at all: the self-normalised ones are 0 / 0
        return {
            "logged": y.mean(),
            "dm": dm.mean(),
            "ips": (w * y).mean(),
            "snips": (w * y).sum() / w.sum(),
            "dr": (dm + w * r).mean(),
            "sndr": dm.mean() + (w * r).sum() / w.sum(),
        }


def random_case(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A random logged problem: 2-8 leads, 1-4 candidates each, a stochastic logging policy."""
    rng = np.random.default_rng(seed)
    parts, logs = [], []
    for i in range(rng.integers(2, 9)):
        k = int(rng.integers(1, 5))
        mu = rng.dirichlet(np.ones(k))
        reps = [f"R{j}" for j in rng.choice(6, size=k, replace=False)]
        lead = f"L{i}"
        parts.append(
            pd.DataFrame(
                {
                    "lead_id": lead,
                    "rep_id": reps,
                    "q": rng.uniform(0, 1, k),
                    "prob": rng.dirichlet(np.ones(k)) if rng.random() < 0.5 else np.eye(k)[0],
                }
            )
        )
        a = int(rng.choice(k, p=mu))
        logs.append(
            {
                "lead_id": lead,
                "rep_id": reps[a],
                "reward": float(rng.random() < 0.4),
                "propensity": mu[a],
            }
        )
    candidates = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(logs), candidates, candidates[["lead_id", "rep_id", "prob"]]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_estimates_match_the_formulas_written_out_lead_by_lead(seed: int) -> None:
    logged, candidates, target = random_case(seed)
    result = evaluate_policy(logged, candidates, target, config=SMALL)
    expected = naive_estimates(logged, candidates, target)
    for name, value in values(result).items():
        if np.isnan(expected[name]):
            assert np.isnan(value), name
        else:
            assert value == pytest.approx(expected[name]), name
    assert 0 <= result.overlap.ess <= len(logged) + 1e-9
    rewards = logged["reward"]
    snips = values(result)["snips"]
    assert np.isnan(snips) or rewards.min() - 1e-12 <= snips <= rewards.max() + 1e-12


# --- overlap and the identification verdict ----------------------------------------------------


def two_rep_case(n: int, target_rep: list[str], mu_b: float = 0.1) -> tuple:
    """n leads with candidates A and B; the history always chose A (propensity 1 - mu_b)."""
    leads = [f"L{i:03d}" for i in range(n)]
    candidates = pd.DataFrame(
        {
            "lead_id": np.repeat(leads, 2),
            "rep_id": ["A", "B"] * n,
            "q": 0.3,
            "propensity": [1 - mu_b, mu_b] * n,
        }
    )
    rewards = (np.arange(n) % 3 == 0).astype(float)
    logged = pd.DataFrame(
        {"lead_id": leads, "rep_id": "A", "reward": rewards, "propensity": 1 - mu_b}
    )
    target = pd.DataFrame({"lead_id": leads, "rep_id": target_rep, "prob": 1.0})
    return logged, candidates, target


def test_a_policy_the_history_never_followed_is_not_identified_and_shows_no_number() -> None:
    logged, candidates, target = two_rep_case(60, ["B"] * 60)
    result = evaluate_policy(logged, candidates, target, config=OffPolicyConfig(n_bootstrap=50))
    off_policy = result.estimates.loc[result.estimates["estimator"] != "logged"]
    assert not off_policy["identified"].any() and not result.identified
    assert off_policy[["value", "ci_low", "ci_high", "vs_logged"]].isna().all().all()
    assert result.raw.loc[result.raw["estimator"] == "dm", "value"].item() == pytest.approx(0.3)
    note = off_policy["note"].iloc[0]
    assert "effective sample of 0.0 leads" in note
    assert "agrees with the history on only 0.00% of the leads" in note
    summary = result.summary()
    assert "direct method (model only): not identified" in summary
    assert "doubly robust: not identified" in summary
    logged_row = result.estimates.loc[result.estimates["estimator"] == "logged"]
    assert logged_row["identified"].item() and logged_row["value"].item() == pytest.approx(20 / 60)


def test_an_effective_sample_under_the_threshold_is_not_identified() -> None:
    # The target agrees with the history on 5 of 100 leads: 5% agreement, but 5 effective leads.
    logged, candidates, target = two_rep_case(100, ["A"] * 5 + ["B"] * 95)
    result = evaluate_policy(logged, candidates, target, config=OffPolicyConfig(n_bootstrap=50))
    assert result.overlap.ess == pytest.approx(5)
    assert result.overlap.agreement == pytest.approx(0.05)
    note = result.estimates.set_index("estimator").loc["snips", "note"]
    assert "effective sample of 5.0 leads, fewer than the 50 needed" in note
    assert "agrees" not in note


def test_choices_the_history_almost_never_made_make_the_value_unidentified() -> None:
    # Plenty of agreement, but 15% of the target's choices had propensity 0.5% in the history.
    logged, candidates, target = two_rep_case(100, ["A"] * 85 + ["B"] * 15, mu_b=0.005)
    result = evaluate_policy(logged, candidates, target, config=OffPolicyConfig(n_bootstrap=50))
    assert result.overlap.unsupported_share == pytest.approx(0.15)
    assert result.overlap.ess == pytest.approx(85)
    note = result.estimates.set_index("estimator").loc["dr", "note"]
    assert "15.0% of the policy's choices go to reps the history almost never chose" in note


def test_a_policy_inside_the_history_is_identified_with_intervals_around_the_value() -> None:
    logged, candidates, target = two_rep_case(100, ["A"] * 100)
    result = evaluate_policy(logged, candidates, target, config=OffPolicyConfig(n_bootstrap=200))
    assert result.identified and result.overlap.unsupported_share == 0
    rows = result.estimates.set_index("estimator")
    assert rows.loc["snips", "value"] == pytest.approx(logged["reward"].mean())
    assert rows.loc["snips", "ci_low"] < rows.loc["snips", "value"] < rows.loc["snips", "ci_high"]
    # Same decisions, same weights: the difference from history is exactly zero in every resample.
    assert rows.loc["snips", ["vs_logged", "vs_logged_low", "vs_logged_high"]].tolist() == (
        pytest.approx([0, 0, 0])
    )
    assert "not identified" not in result.summary()


# --- propensities: logged, estimated, clipped ---------------------------------------------------


def test_missing_logged_propensities_come_from_the_candidates_and_are_clipped() -> None:
    logged = log_of({"L1": "B", "L2": "A", "L3": "B"}).assign(propensity=[np.nan, 0.6, np.nan])
    estimated = CASE.assign(propensity=CASE["mu"].where(CASE["rep_id"] != "B", 0.004))
    result = evaluate_policy(logged, estimated, target_of(), config=SMALL)
    overlap = result.overlap
    assert overlap.propensity_source == "logged and estimated"
    assert (overlap.n_estimated, overlap.n_clipped) == (2, 2)
    assert overlap.low_propensity_share == pytest.approx(2 / 3)
    # L3 chose B, which the target picks with 0.5: its weight is 0.5 / floor.
    assert overlap.max_weight == pytest.approx(0.5 / SMALL.propensity_floor)
    assert (
        "2 estimated propensities clipped at 0.01"
        in result.raw.set_index("estimator").loc["snips", "note"]
    )


def test_the_bootstrap_is_reproducible_for_a_seed_and_changes_with_it() -> None:
    logged, candidates, target = random_case(7)
    first = evaluate_policy(logged, candidates, target, config=SMALL)
    again = evaluate_policy(logged, candidates, target, config=SMALL)
    other = evaluate_policy(logged, candidates, target, config=SMALL.model_copy(update={"seed": 1}))
    pd.testing.assert_frame_equal(first.raw, again.raw)
    assert first.raw["value"].equals(other.raw["value"])
    assert not first.raw["ci_low"].equals(other.raw["ci_low"])


def _drop_candidate(c: pd.DataFrame) -> pd.DataFrame:
    return c.loc[~((c["lead_id"] == "L1") & (c["rep_id"] == "B"))]


BAD_INPUTS = [
    (
        "logged",
        lambda f: f.assign(propensity=[0.0, 0.6, 0.6]),
        r"logged propensity must be in \(0, 1\]",
    ),
    (
        "logged",
        lambda f: f.assign(propensity=[1.5, 0.6, 0.6]),
        r"logged propensity must be in \(0, 1\]",
    ),
    (
        "logged",
        lambda f: f.assign(propensity=[-0.2, 0.6, 0.6]),
        r"logged propensity must be in \(0, 1\]",
    ),
    ("logged", lambda f: f.assign(propensity=np.nan), r"3 decision\(s\) have no propensity"),
    (
        "logged",
        lambda f: f.assign(reward=[1.0, np.nan, 0.0]),
        r"logged reward must be a finite number",
    ),
    ("logged", lambda f: pd.concat([f, f.iloc[[0]]]), r"1 duplicated lead_id"),
    ("logged", lambda f: f.drop(columns="reward"), r"logged is missing column\(s\) \['reward'\]"),
    ("logged", lambda f: f.iloc[:0], r"logged has no decisions"),
    ("candidates", _drop_candidate, r"1 logged choice\(s\) are not among their lead's candidates"),
    ("candidates", lambda f: f.drop(columns="q"), r"candidates is missing column\(s\) \['q'\]"),
    ("candidates", lambda f: pd.concat([f, f.iloc[[0]]]), r"candidates has 1 duplicated"),
    ("candidates", lambda f: f.assign(q=np.inf), r"candidates q must be a finite number"),
    ("target", lambda f: f.assign(prob=f["prob"] * 0.8), r"must sum to 1 over each logged lead"),
    ("target", lambda f: f.loc[f["lead_id"] != "L2"], r"must sum to 1 .* e\.g\. \['L2'\]"),
    ("target", lambda f: f.assign(prob=-f["prob"]), r"target prob must be in \[0, 1\]"),
    (
        "target",
        lambda f: pd.concat([f, pd.DataFrame({"lead_id": ["L2"], "rep_id": ["Z"], "prob": [0.0]})]),
        r"1 target pair\(s\) are not candidates, e\.g\. \[\('L2', 'Z'\)\]",
    ),
]


@pytest.mark.parametrize(("which", "change", "message"), BAD_INPUTS)
def test_bad_inputs_are_refused_with_a_clear_message(which, change, message) -> None:
    frames = {
        "logged": log_of({"L1": "B", "L2": "A", "L3": "C"}),
        "candidates": CASE[["lead_id", "rep_id", "q"]],
        "target": target_of(),
    }
    frames[which] = change(frames[which])
    with pytest.raises(ValueError, match=message):
        evaluate_policy(frames["logged"], frames["candidates"], frames["target"], config=SMALL)


def test_config_refuses_thresholds_that_make_no_sense() -> None:
    with pytest.raises(ValueError, match="level"):
        OffPolicyConfig(level=1.2)
    with pytest.raises(ValueError, match="propensity_floor"):
        OffPolicyConfig(propensity_floor=0)


# --- the propensity model ----------------------------------------------------------------------


def conditional_logit_data(n_leads: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Leads choosing among 2-5 of reps R0-R4 by a known conditional logit: a match bonus of 1.5,
    rep intercepts, and a rep-specific slope on the lead's value. Returns pairs and true P."""
    rng = np.random.default_rng(seed)
    intercept = np.array([0.0, 0.5, -0.5, 1.0, 0.2])
    slope = np.array([0.0, 0.8, -0.8, 0.0, 0.4])
    offered = rng.random((n_leads, 5)) < 0.7
    offered[offered.sum(axis=1) < 2, :2] = True
    lead, rep = np.nonzero(offered)
    value = rng.normal(size=n_leads)[lead]
    match = rng.integers(0, 2, len(lead)).astype(float)
    u = 1.5 * match + intercept[rep] + slope[rep] * value
    weight = pd.Series(np.exp(u))
    p = (weight / weight.groupby(lead).transform("sum")).to_numpy()
    # One draw per lead: the first candidate whose cumulative probability passes a uniform.
    cumulative = pd.Series(p).groupby(lead).cumsum().to_numpy()
    passed = cumulative > rng.random(n_leads)[lead]
    chosen = passed & ~pd.Series(passed).groupby(lead).shift(fill_value=False).to_numpy()
    pairs = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in lead],
            "rep_id": [f"R{r}" for r in rep],
            "match": match,
            "value": value,
            "chosen": chosen,
        }
    )
    return pairs, p


def test_the_choice_model_recovers_a_known_conditional_logit() -> None:
    pairs, truth = conditional_logit_data(3000, seed=0)
    model = ChoiceModel(pair_columns=("match",), lead_columns=("value",)).fit(pairs)
    assert model.converged_
    p = model.predict_proba(pairs)
    assert np.abs(p - truth).mean() < 0.02
    assert pd.Series(p).groupby(pairs["lead_id"]).sum().to_numpy() == pytest.approx(1.0)
    # The match coefficient on the original scale (columns are standardised inside).
    assert model.pair_coef_[0] / model.pair_scale_[0] == pytest.approx(1.5, abs=0.15)


def test_the_choice_model_scores_unknown_reps_and_refuses_two_choices_for_a_lead() -> None:
    pairs, _ = conditional_logit_data(300, seed=1)
    model = ChoiceModel(pair_columns=("match",), lead_columns=("value",)).fit(pairs)
    fresh = pd.DataFrame(
        {"lead_id": ["N", "N"], "rep_id": ["R1", "R_new"], "match": [0.0, 0.0], "value": [0.0, 0.0]}
    )
    assert model.predict_proba(fresh).sum() == pytest.approx(1.0)
    twice = pairs.assign(chosen=pairs["chosen"] | (pairs["lead_id"] == "L0"))
    with pytest.raises(ValueError, match=r"1 lead\(s\) do not have exactly one chosen candidate"):
        ChoiceModel(pair_columns=("match",)).fit(twice)


# --- the logged decisions and their candidates, from canonical tables ---------------------------


def routing_day() -> CrmData:
    """One Monday of routing. R1 takes one lead a day; R2 is away; R3 joins on Tuesday; R4 has
    left (last lead the Friday before); R5 holds one open lead under a cap of one; R6 is free."""
    reps = pd.DataFrame(
        {
            "rep_id": ["R1", "R2", "R3", "R4", "R5", "R6"],
            "name": ["a", "b", "c", "d", "e", "f"],
            "team": "t",
            "region": ["EU", "EU", "EU", "US", "US", "US"],
            "hire_date": [
                "2023-01-01",
                "2023-01-01",
                "2024-03-05",
                "2020-01-01",
                "2022-01-01",
                "2021-06-01",
            ],
            "skills": ["retail", "", "", "", "software;pro", ""],
            "daily_capacity": [1, 5, 5, 5, 5, 5],
            "max_open_leads": [None, None, None, None, 1, None],
            "active": [True, True, True, False, True, True],
        }
    )
    leads = pd.DataFrame(
        {
            "lead_id": ["P0", "P1", "L1", "L2", "L3"],
            "created_at": [
                "2024-02-28",
                "2024-03-01",
                "2024-03-04 08:00",
                "2024-03-04 08:30",
                "2024-03-04 09:00",
            ],
            "source": "web",
            "industry": ["retail", "retail", "retail", "software", "retail"],
            "region": ["US", "EU", "EU", "US", "EU"],
            "product": ["basic", "basic", "basic", "pro", "basic"],
            "expected_value": [1000.0, 1000.0, 5000.0, 200.0, None],
            "account_id": ["A1", "A2", "A1", None, "A3"],
        }
    )
    assignments = pd.DataFrame(
        {
            "lead_id": ["P0", "P1", "L1", "L2", "L3", "L1"],
            "rep_id": ["R5", "R4", "R1", "R1", "R6", "R6"],
            "assigned_at": [
                "2024-02-28 10:00",
                "2024-03-01 10:00",
                "2024-03-04 09:00",
                "2024-03-04 09:00",
                "2024-03-04 11:00",
                "2024-03-10",
            ],
            "first_contact_at": None,
            "status": ["open", "lost", "won", "lost", "won", "open"],
            "closed_at": [None, "2024-03-02", "2024-04-20", "2024-03-20", "2024-07-01", None],
            "deal_value": [None, None, 900.0, None, 1200.0, None],
        }
    )
    availability = pd.DataFrame(
        {"rep_id": ["R2"], "date": ["2024-03-04"], "available": [False], "capacity": [None]}
    )
    return validate_crm(CrmData(reps, leads, assignments, availability))


def test_logged_decisions_are_first_assignments_with_outcomes_only_once_mature() -> None:
    data = routing_day()
    decisions = logged_decisions(data, as_of=pd.Timestamp("2024-06-02 10:00"), window_days=90)
    assert decisions["lead_id"].tolist() == ["P0", "P1", "L1", "L2", "L3"]
    by_lead = decisions.set_index("lead_id")
    assert by_lead.loc["L1", "rep_id"] == "R1"  # the later reassignment to R6 is not a decision
    assert by_lead["mature"].tolist() == [True, True, True, True, False]
    # P0 still open after its window: not won. L3 is not mature: no outcome yet.
    assert by_lead["reward"].tolist()[:4] == [0.0, 0.0, 1.0, 0.0]
    assert np.isnan(by_lead.loc["L3", "reward"])
    assert by_lead["cluster"].tolist() == [
        "account:A1",
        "account:A2",
        "account:A1",
        "L2",
        "account:A3",
    ]
    assert by_lead["propensity"].isna().all()
    value = logged_decisions(data, as_of=pd.Timestamp("2024-06-02 10:00"), reward="value")
    assert value.set_index("lead_id").loc["L1", "reward"] == 900.0


def test_a_win_after_the_window_counts_as_not_won() -> None:
    decisions = logged_decisions(routing_day(), as_of=pd.Timestamp("2024-12-31"), window_days=30)
    assert decisions.set_index("lead_id").loc[["L1", "L3"], "reward"].tolist() == [0.0, 0.0]


def test_historical_candidates_follow_employment_availability_capacity_and_caps() -> None:
    data = routing_day()
    decisions = logged_decisions(data, as_of=pd.Timestamp("2024-06-04"))
    monday = decisions.loc[decisions["lead_id"].isin(["L1", "L2", "L3"])]
    candidates = historical_candidates(data, monday)
    sets = {
        lead: dict(zip(g["rep_id"], g["eligible"], strict=True))
        for lead, g in candidates.groupby("lead_id")
    }
    # L1 and L2 share a timestamp; table order says L1 came first and used R1's one slot, so L2
    # went to R1 over capacity: kept as a candidate, flagged not eligible.
    assert sets["L1"] == {"R1": True, "R6": True}
    assert sets["L2"] == {"R1": False, "R6": True}
    assert sets["L3"] == {"R6": True}
    friday = historical_candidates(data, decisions.loc[decisions["lead_id"] == "P1"])
    # On Friday R4 had not left yet, and R5's one lead (P0) was open: R5 is at its cap.
    assert set(friday["rep_id"]) == {"R1", "R2", "R4", "R6"}


def test_logged_choices_outside_the_rebuilt_rules_are_counted_in_the_overlap() -> None:
    data = routing_day()
    decisions = logged_decisions(data, as_of=pd.Timestamp("2024-06-02 10:00"))
    logged = decisions.loc[decisions["mature"]].assign(propensity=0.5)
    candidates = historical_candidates(data, logged).assign(q=0.2)
    target = logged[["lead_id", "rep_id"]].assign(prob=1.0)
    overlap = evaluate_policy(logged, candidates, target, config=SMALL).overlap
    assert overlap.outside_rules_share == pytest.approx(1 / 4)  # L2, over R1's capacity
    unknown = evaluate_policy(logged, candidates.drop(columns="eligible"), target, config=SMALL)
    assert np.isnan(unknown.overlap.outside_rules_share)


def test_cross_fit_folds_keep_an_accounts_leads_together_and_are_reproducible() -> None:
    decisions = logged_decisions(routing_day(), as_of=pd.Timestamp("2024-06-02 10:00"))
    folds = cross_fit_folds(decisions, n_folds=2, seed=3)
    assert folds.index.tolist() == decisions["lead_id"].tolist()
    assert folds["P0"] == folds["L1"]  # both of account A1
    assert set(folds) <= {0, 1}
    pd.testing.assert_series_equal(folds, cross_fit_folds(decisions, n_folds=2, seed=3))
    with pytest.raises(ValueError, match="n_folds must be at least 2"):
        cross_fit_folds(decisions, n_folds=1)


def test_choice_features_describe_what_a_router_could_see() -> None:
    data = routing_day()
    pairs = pd.DataFrame(
        {
            "lead_id": ["L1", "L1", "L2"],
            "rep_id": ["R1", "R6", "R5"],
            "at": pd.Timestamp("2024-03-04"),
        }
    )
    features = choice_features(data, pairs)
    assert features["region_match"].tolist() == [1.0, 0.0, 1.0]
    assert features["skill_match_industry"].tolist() == [1.0, 0.0, 1.0]
    assert features["skill_match_product"].tolist() == [0.0, 0.0, 1.0]
    assert features.loc[0, "lead_log_value"] == pytest.approx(np.log1p(5000))
    assert features.loc[0, "rep_log_tenure"] == pytest.approx(np.log1p(428 / 365.25))


@pytest.mark.parametrize(
    ("rep_region", "rep_skills", "lead_region", "industry", "region_match", "skill_match"),
    [
        ("EU", "retail", "eu ", "Retail", 1.0, 1.0),
        ("Straße", "logistics;STRASSE", "STRASSE", "Straße", 1.0, 1.0),
        ("华东", "医疗；教育", "华东", "教育", 1.0, 1.0),
        ("EU", "ＳａａＳ", "EU", "saas", 1.0, 1.0),
        ("EU", "ISTANBUL", "US", "İstanbul", 0.0, 0.0),
    ],
)
def test_choice_features_compare_regions_and_skills_as_the_eligibility_rules_do(
    rep_region, rep_skills, lead_region, industry, region_match, skill_match
) -> None:
    data = routing_day()
    reps = data.reps.assign(
        region=data.reps["region"].mask(data.reps["rep_id"] == "R1", rep_region),
        skills=data.reps["skills"].mask(data.reps["rep_id"] == "R1", rep_skills),
    )
    leads = data.leads.assign(
        region=data.leads["region"].mask(data.leads["lead_id"] == "L1", lead_region),
        industry=data.leads["industry"].mask(data.leads["lead_id"] == "L1", industry),
    )
    pair = pd.DataFrame({"lead_id": ["L1"], "rep_id": ["R1"], "at": pd.Timestamp("2024-03-04")})
    features = choice_features(CrmData(reps, leads, data.assignments, data.availability), pair)
    assert features[["region_match", "skill_match_industry"]].iloc[0].tolist() == [
        region_match,
        skill_match,
    ]
    # the eligibility rules, on the same two rows
    rule_leads = pd.DataFrame(
        {"lead_id": ["L1"], "region": [lead_region], "industry": [industry], "product": [None]}
    )
    rule_reps = pd.DataFrame(
        {
            "rep_id": ["R1"],
            "active": [True],
            "available": [True],
            "region": [rep_region],
            "skills": [rep_skills],
        }
    )
    rules = EligibilityRules(region=True, skills=True, language=False)
    eligibility = Eligibility.build(
        rule_leads, rule_reps, rules, rep_index=pd.Index(rule_reps["rep_id"])
    )
    cause = eligibility.causes(np.array([0]), np.array([0]))[0]
    assert (cause == Cause.ELIGIBLE) == bool(region_match and skill_match)


def test_yes_no_lead_columns_are_choice_features_as_0_and_1() -> None:
    data = routing_day()
    # leads P0, P1, L1, L2, L3
    flagged = data.leads.assign(x_referral=pd.array([True, False, True, None, False], "boolean"))
    pairs = pd.DataFrame(
        {"lead_id": ["L1", "L2", "P1"], "rep_id": "R1", "at": pd.Timestamp("2024-03-04")}
    )
    crm = CrmData(data.reps, flagged, data.assignments, data.availability)
    features = choice_features(crm, pairs)
    np.testing.assert_array_equal(features["x_referral"].to_numpy(), [1.0, np.nan, 0.0])


def test_estimated_propensities_need_every_logged_choice_among_the_candidates() -> None:
    data = routing_day()
    decisions = logged_decisions(data, as_of=pd.Timestamp("2024-06-04"))
    candidates = choice_features(data, historical_candidates(data, decisions))
    with pytest.raises(ValueError, match=re.escape("1 logged choice(s) are not among")):
        estimate_propensities(decisions, candidates.loc[candidates["rep_id"] != "R5"])


# --- on the simulator, where the truth is known -------------------------------------------------


def test_rebuilt_candidates_and_estimated_propensities_match_the_simulated_history(small_world):
    data = small_world.data
    decisions = logged_decisions(data)
    candidates = historical_candidates(data, decisions)
    assert candidates["eligible"].all()
    estimated = estimate_propensities(decisions, choice_features(data, candidates))
    pairs = decisions.merge(estimated, on=["lead_id", "rep_id"], suffixes=("", "_estimated"))
    assert np.corrcoef(pairs["propensity"], pairs["propensity_estimated"])[0, 1] > 0.95


def epsilon_greedy(candidates: pd.DataFrame, score: np.ndarray, epsilon: float) -> np.ndarray:
    frame = candidates[["lead_id"]].assign(score=score, row=np.arange(len(candidates)))
    top = frame.sort_values(["lead_id", "score", "row"], ascending=[True, False, True])
    best = np.zeros(len(candidates))
    best[top.drop_duplicates("lead_id")["row"].to_numpy()] = 1.0
    size = frame.groupby("lead_id")["row"].transform("size").to_numpy()
    return (1 - epsilon) * best + epsilon / size


@pytest.mark.slow
def test_estimates_on_simulated_worlds_cover_the_true_value() -> None:
    # A small version of benchmarks/bench_off_policy.py: an epsilon-greedy policy on the knowable
    # probability, judged against its true value on the same leads, with the simulator's exact
    # propensities and with estimated ones.
    config = OffPolicyConfig(n_bootstrap=200)
    covered, errors = {}, {}
    for seed in range(4):
        world = simulate("small", seed=seed)
        decisions = logged_decisions(world.data)
        candidates = choice_features(world.data, historical_candidates(world.data, decisions))
        candidates = estimate_propensities(decisions, candidates, config=config)
        logged = decisions.loc[decisions["mature"]]
        candidates = candidates.loc[candidates["lead_id"].isin(logged["lead_id"])]
        candidates = candidates.assign(q=world.knowable_probability(candidates))
        prob = epsilon_greedy(candidates, candidates["q"].to_numpy(), 0.3)
        target = candidates[["lead_id", "rep_id"]].assign(prob=prob)
        truth = (
            pd.Series(prob * world.true_probability(candidates))
            .groupby(candidates["lead_id"].to_numpy())
            .sum()
            .mean()
        )
        for source, log in (("logged", logged), ("estimated", logged.assign(propensity=np.nan))):
            result = evaluate_policy(log, candidates, target, config=config)
            assert result.identified
            for row in result.estimates.itertuples():
                key = (source, row.estimator)
                covered.setdefault(key, []).append(row.ci_low <= truth <= row.ci_high)
                errors.setdefault(key, []).append(row.value - truth)
    for source in ("logged", "estimated"):
        # The model is the knowable probability: the direct method is nearly exact.
        assert np.abs(errors[(source, "dm")]).max() < 0.01
        for name in ("snips", "dr"):
            assert sum(covered[(source, name)]) >= 3, (source, name)
    # Estimated propensities tell nearly the same story as the exact ones.
    gap = np.array(errors[("estimated", "dr")]) - np.array(errors[("logged", "dr")])
    assert np.abs(gap).max() < 0.02
