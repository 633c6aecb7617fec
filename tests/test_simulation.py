"""The simulated CRM world: determinism, the data contract, and the ground truth behind the data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logit

from features.schemas import validate_crm
from simulation import SCENARIOS, CrmWorld, Scenario, simulate


@pytest.fixture(scope="session")
def world() -> CrmWorld:
    return simulate("small", seed=0)


@pytest.fixture(scope="session")
def null_world() -> CrmWorld:
    return simulate("null_small", seed=0)


def _assignment_pairs(world: CrmWorld) -> pd.DataFrame:
    a = world.data.assignments
    return pd.DataFrame({"lead_id": a["lead_id"], "rep_id": a["rep_id"], "at": a["assigned_at"]})


def _every_rep_pairs(world: CrmWorld, n_leads: int, at: str) -> pd.DataFrame:
    """The first n_leads leads crossed with every rep, all at time `at`."""
    grid = pd.MultiIndex.from_product(
        [world.data.leads["lead_id"].iloc[:n_leads], world.data.reps["rep_id"]],
        names=["lead_id", "rep_id"],
    ).to_frame(index=False)
    return grid.assign(at=pd.Timestamp(at))


# --- determinism and size ----------------------------------------------------------------------


def test_the_same_seed_gives_identical_frames(world: CrmWorld) -> None:
    again = simulate("small", seed=0)
    for name, table in world.data.tables().items():
        pd.testing.assert_frame_equal(table, again.data.tables()[name], obj=name)


def test_a_different_seed_gives_a_different_world(world: CrmWorld) -> None:
    other = simulate("small", seed=1)
    assert not other.data.leads.head(50).equals(world.data.leads.head(50))
    assert not other.data.reps["skills"].equals(world.data.reps["skills"])


def test_small_is_roughly_as_large_as_announced() -> None:
    # How long a world takes to simulate is measured by benchmarks/bench_simulation.py.
    small = simulate("small", seed=3)
    scenario = SCENARIOS["small"]
    assert len(small.data.reps) == scenario.n_reps
    expected_leads = scenario.leads_per_day * scenario.n_days
    assert 0.9 * expected_leads < len(small.data.leads) < 1.1 * expected_leads


def test_scenarios_can_be_resized_with_replace() -> None:
    tiny = dataclasses.replace(SCENARIOS["small"], name="tiny", n_reps=4, n_days=20)
    w = simulate(tiny, seed=0)
    assert len(w.data.reps) == 4
    assert w.data.leads["created_at"].max() < pd.Timestamp(tiny.start) + pd.Timedelta(days=20)
    assert w.as_of == pd.Timestamp(tiny.start) + pd.Timedelta(days=20)


def test_null_scenarios_match_their_worlds_in_size_but_have_no_rep_effects() -> None:
    for name, null_name in [("default", "null"), ("small", "null_small")]:
        base, null = SCENARIOS[name], SCENARIOS[null_name]
        assert base.has_rep_effects and not null.has_rep_effects
        assert (null.n_reps, null.n_days, null.leads_per_day) == (
            base.n_reps,
            base.n_days,
            base.leads_per_day,
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_reps", 0, "n_reps must be > 0"),
        ("leads_per_day", -1.0, "leads_per_day must be > 0"),
        ("policy_temperature", 0.0, "policy_temperature must be > 0"),
        ("skill_sd", -0.1, "skill_sd must be >= 0"),
        ("absence_rate", 1.5, r"absence_rate must be in \[0, 1\]"),
        ("base_logit", float("nan"), "base_logit must be finite"),
        ("new_hire_share", 0.97, "new_hire_share \\+ inactive_share must be <= 1"),
        ("start", "2025-01-01", "start must be a datetime.date"),
    ],
)
def test_bad_scenario_knobs_are_rejected(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SCENARIOS["small"], **{field: value})


@pytest.mark.parametrize(
    ("scenario", "seed", "message"),
    [("huge", 0, "unknown scenario 'huge'"), ("small", -1, "seed must be >= 0")],
)
def test_simulate_rejects_unknown_scenarios_and_bad_seeds(
    scenario: str, seed: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        simulate(scenario, seed=seed)


# --- the data contract ---------------------------------------------------------------------------

EXPECTED_DTYPES = {
    "reps": {
        "rep_id": "str",
        "name": "str",
        "team": "str",
        "region": "str",
        "hire_date": "datetime64[ns]",
        "skills": "str",
        "daily_capacity": "Int64",
        "max_open_leads": "Int64",
        "active": "bool",
        "attributes_since": "datetime64[ns]",
    },
    "availability": {
        "rep_id": "str",
        "date": "datetime64[ns]",
        "available": "bool",
        "capacity": "Int64",
    },
    "leads": {
        "lead_id": "str",
        "created_at": "datetime64[ns]",
        "source": "str",
        "industry": "str",
        "region": "str",
        "product": "str",
        "company_size": "Int64",
        "expected_value": "float64",
        "account_id": "str",
        "x_score": "float64",
    },
    "assignments": {
        "lead_id": "str",
        "rep_id": "str",
        "assigned_at": "datetime64[ns]",
        "first_contact_at": "datetime64[ns]",
        "status": "str",
        "closed_at": "datetime64[ns]",
        "deal_value": "float64",
        "propensity": "float64",
    },
}


@pytest.mark.parametrize("table", sorted(EXPECTED_DTYPES))
def test_tables_have_exactly_the_contract_columns_and_dtypes(world: CrmWorld, table: str) -> None:
    frame = world.data.tables()[table]
    assert {c: str(t) for c, t in frame.dtypes.items()} == EXPECTED_DTYPES[table]


def test_tables_pass_the_contract_validation(world: CrmWorld, null_world: CrmWorld) -> None:
    validate_crm(world.data)
    validate_crm(null_world.data)


def test_ids_are_readable_strings(world: CrmWorld) -> None:
    assert world.data.reps["rep_id"].iloc[:2].tolist() == ["R001", "R002"]
    assert world.data.leads["lead_id"].iloc[:2].tolist() == ["L000001", "L000002"]
    assert world.data.leads["account_id"].str.fullmatch(r"A\d{6}").all()


def test_skills_are_tags_from_the_leads_vocabulary(world: CrmWorld) -> None:
    leads = world.data.leads
    vocabulary = set(leads["industry"]) | set(leads["product"].dropna())
    tags = {t for skills in world.data.reps["skills"] for t in skills.split(";")}
    assert tags <= vocabulary


def test_assignment_rows_are_internally_consistent(world: CrmWorld) -> None:
    a = world.data.assignments
    is_open, won = a["status"] == "open", a["status"] == "won"
    assert (a["closed_at"].isna() == is_open).all()
    assert (a["deal_value"].notna() == won).all()
    assert (a.loc[won, "deal_value"] > 0).all()
    window = pd.Timedelta(days=world.scenario.conversion_window_days)
    closed = a[~is_open]
    assert (closed["closed_at"] >= closed["assigned_at"] + pd.Timedelta(days=1)).all()
    assert (closed["closed_at"] <= closed["assigned_at"] + window).all()
    contacted = a[a["first_contact_at"].notna()]
    assert (contacted["first_contact_at"] >= contacted["assigned_at"]).all()
    assert (contacted["first_contact_at"] < world.as_of).all()
    assert not (contacted["first_contact_at"] > contacted["closed_at"]).any()
    assert a["lead_id"].is_unique
    assert a["assigned_at"].is_monotonic_increasing


def test_won_deals_are_worth_about_the_expected_value(world: CrmWorld) -> None:
    a = world.data.assignments
    won = a[a["status"] == "won"].merge(world.data.leads, on="lead_id")
    ratio = won["deal_value"] / won["expected_value"]
    assert 0.9 < ratio.median() < 1.1


# --- the world's process -------------------------------------------------------------------------


def test_leads_arrive_mostly_on_weekdays_in_business_hours(world: CrmWorld) -> None:
    created = world.data.leads["created_at"]
    per_day = created.dt.normalize().value_counts()
    weekend = per_day.index.day_of_week >= 5
    assert per_day[~weekend].mean() > 2.5 * per_day[weekend].mean()
    assert created.dt.hour.between(8, 17).mean() > 0.8


def test_accounts_recur_and_keep_their_attributes(world: CrmWorld) -> None:
    leads = world.data.leads
    assert leads["account_id"].duplicated().mean() > 0.3
    per_account = leads.groupby("account_id")[["industry", "region", "company_size"]].nunique()
    assert (per_account == 1).all().all()


def test_staff_includes_new_hires_and_leavers_who_only_work_while_employed(world: CrmWorld) -> None:
    reps = world.data.reps.merge(world.rep_truth(), on="rep_id")
    start = pd.Timestamp(world.scenario.start)
    assert (reps["hire_date"] > start).any()
    assert (~reps["active"]).any()
    assert (reps["left_at"].notna() == ~reps["active"]).all()
    a = world.data.assignments.merge(reps, on="rep_id")
    assert (a["assigned_at"] >= a["hire_date"]).all()
    assert not (a["assigned_at"] >= a["left_at"]).any()


def test_routing_respects_daily_capacity_and_absences(world: CrmWorld) -> None:
    a = world.data.assignments
    per_day = (
        a.assign(date=a["assigned_at"].dt.normalize())
        .groupby(["rep_id", "date"])
        .size()
        .rename("n")
        .reset_index()
        .merge(world.data.availability, on=["rep_id", "date"], how="left")
        .merge(world.data.reps[["rep_id", "daily_capacity"]], on="rep_id")
    )
    capacity = per_day["capacity"].fillna(per_day["daily_capacity"])
    assert (per_day["n"] <= capacity).all()
    assert not (per_day["available"] == False).any()  # noqa: E712 (nullable after the merge)
    assert world.data.availability["available"].eq(False).any()
    assert world.data.availability["available"].eq(True).any()
    assert (a["assigned_at"].dt.day_of_week < 5).all()


def test_historical_policy_gives_better_leads_to_senior_and_strong_reps(world: CrmWorld) -> None:
    a = world.data.assignments.merge(world.data.reps[["rep_id", "hire_date"]], on="rep_id")
    a = a.merge(world.rep_truth()[["rep_id", "skill"]], on="rep_id")
    a = a.merge(world.lead_truth()[["lead_id", "quality"]], on="lead_id")
    a = a.merge(world.data.leads[["lead_id", "expected_value"]], on="lead_id")
    tenure = (a["assigned_at"] - a["hire_date"]).dt.days
    for strong in (tenure > tenure.median(), a["skill"] > a["skill"].median()):
        for column in ("quality", "expected_value"):
            top, rest = a.loc[strong, column], a.loc[~strong, column]
            z = (top.mean() - rest.mean()) / np.sqrt(top.var() / len(top) + rest.var() / len(rest))
            assert z > 4, (column, z)


def test_propensities_are_probabilities_and_far_from_uniform(world: CrmWorld) -> None:
    propensity = world.data.assignments["propensity"]
    assert ((propensity > 0) & (propensity <= 1)).all()
    assert propensity.std() > 0.1
    assert propensity.quantile(0.05) < 0.5 / world.scenario.n_reps
    assert propensity.quantile(0.95) > 3 / world.scenario.n_reps


def test_history_ends_with_open_uncontacted_and_unassigned_leads(world: CrmWorld) -> None:
    a, leads = world.data.assignments, world.data.leads
    assert (a["status"] == "open").sum() > 100
    assert a.loc[a["status"] == "lost", "first_contact_at"].isna().mean() > 0.05
    assert a.loc[a["status"] == "open", "first_contact_at"].isna().any()
    pool = leads[~leads["lead_id"].isin(a["lead_id"])]
    assert 0 < len(pool) < 0.05 * len(leads)
    assert (pool["created_at"] >= world.as_of - pd.Timedelta(days=4)).all()


def test_base_win_rate_is_realistic(world: CrmWorld) -> None:
    assert 0.15 < world.history_truth()["p_win"].mean() < 0.30


# --- the ground truth ----------------------------------------------------------------------------


def test_history_outcomes_were_drawn_from_the_true_probability(world: CrmWorld) -> None:
    truth = world.history_truth()
    pairs = _assignment_pairs(world)
    np.testing.assert_allclose(world.true_probability(pairs), truth["p_win"], rtol=1e-12)
    np.testing.assert_array_equal(world.open_load(pairs["rep_id"], pairs["at"]), truth["open_load"])
    closed = world.data.assignments["status"] != "open"
    observed = (world.data.assignments.loc[closed, "status"] == "won").mean()
    assert abs(observed - truth.loc[closed, "p_win"].mean()) < 0.03


def test_open_load_matches_a_naive_count(world: CrmWorld) -> None:
    truth = world.history_truth()
    reps = world.data.reps["rep_id"]
    times = [pd.Timestamp("2025-02-03 08:30"), truth["assigned_at"].iloc[1000], world.as_of]
    for at in times:
        naive = [
            ((truth["rep_id"] == r) & (truth["assigned_at"] < at) & (truth["closes_at"] > at)).sum()
            for r in reps
        ]
        np.testing.assert_array_equal(world.open_load(reps, at), naive)
    assert (world.open_load(reps, world.as_of + pd.Timedelta(days=365)) == 0).all()


def test_true_probability_depends_on_the_rep(world: CrmWorld) -> None:
    pairs = _every_rep_pairs(world, n_leads=100, at="2025-03-03 10:00")
    p = world.true_probability(pairs)
    assert ((p > 0) & (p < 1)).all()
    spread = pd.Series(p).groupby(pairs["lead_id"].to_numpy()).agg(np.ptp)
    assert spread.mean() > 0.1


def test_specialists_matter_more_on_bigger_accounts_when_asked() -> None:
    """match_size_slope scales the speciality bonus with company size and touches nothing else:
    the two worlds share their leads and reps (drawn before any outcome)."""
    flat = dataclasses.replace(SCENARIOS["small"], name="flat", n_days=20)
    sloped = dataclasses.replace(flat, name="sloped", match_size_slope=1.0)
    flat_world, sloped_world = simulate(flat, seed=0), simulate(sloped, seed=0)
    pairs = _every_rep_pairs(flat_world, n_leads=150, at="2025-01-20 10:00").assign(open_load=0)
    change = logit(sloped_world.true_probability(pairs)) - logit(flat_world.true_probability(pairs))

    leads = flat_world.data.leads.set_index("lead_id").loc[pairs["lead_id"]]
    skills = flat_world.data.reps.set_index("rep_id").loc[pairs["rep_id"], "skills"].str.split(";")
    specialist = np.array(
        [
            industry in tags or product in tags
            for industry, product, tags in zip(
                leads["industry"], leads["product"], skills, strict=True
            )
        ]
    )
    size = leads["company_size"].to_numpy(dtype=float)
    assert specialist.any() and (~specialist).any()
    assert np.allclose(change[~specialist], 0.0)
    assert (change[specialist & (size > 80)] > 0).all()
    assert (change[specialist & (size < 80)] < 0).all()


def test_null_world_gives_every_rep_the_same_probability(null_world: CrmWorld) -> None:
    pairs = _every_rep_pairs(null_world, n_leads=100, at="2025-03-03 10:00")
    loaded = pairs.assign(open_load=np.arange(len(pairs)) % 400)
    for frame in (pairs, loaded):
        for p in (null_world.true_probability(frame), null_world.knowable_probability(frame)):
            spread = pd.Series(p).groupby(frame["lead_id"].to_numpy()).agg(np.ptp)
            assert spread.max() == 0


@pytest.mark.parametrize(
    ("change", "direction"),
    [
        ({"open_load": 1000}, "down"),  # overload
        ({"at": pd.Timestamp("2030-01-01")}, "up"),  # every rep is past the ramp-up
    ],
)
def test_overload_lowers_and_tenure_raises_the_probability(
    world: CrmWorld, change: dict[str, object], direction: str
) -> None:
    pairs = _every_rep_pairs(world, n_leads=20, at="2025-03-03 10:00").assign(open_load=0)
    before, after = world.true_probability(pairs), world.true_probability(pairs.assign(**change))
    assert (after <= before).all() if direction == "down" else (after >= before).all()
    assert (after != before).any()


@settings(max_examples=50, deadline=None)
@given(
    lead=st.integers(0, 999),
    rep=st.integers(0, 11),
    loads=st.lists(st.integers(0, 2000), min_size=2, max_size=6),
)
def test_true_probability_never_rises_with_open_load(
    world: CrmWorld, lead: int, rep: int, loads: list[int]
) -> None:
    loads = sorted(loads)
    pairs = pd.DataFrame(
        {
            "lead_id": world.data.leads["lead_id"].iloc[lead],
            "rep_id": world.data.reps["rep_id"].iloc[rep],
            "at": pd.Timestamp("2025-04-01 09:00"),
            "open_load": loads,
        }
    )
    p = world.true_probability(pairs)
    assert ((p > 0) & (p < 1)).all()
    assert (np.diff(p) <= 0).all()


def test_knowable_probability_is_the_true_one_averaged_over_hidden_quality(
    world: CrmWorld,
) -> None:
    pairs = _assignment_pairs(world)
    true, knowable = world.true_probability(pairs), world.knowable_probability(pairs)
    assert np.abs(true - knowable).mean() > 0.03
    assert abs(true.mean() - knowable.mean()) < 0.01
    # Calibrated: within each decile of the knowable probability, the true one averages the same.
    deciles = pd.qcut(knowable, 10, labels=False)
    by_decile = pd.DataFrame({"true": true, "knowable": knowable}).groupby(deciles).mean()
    np.testing.assert_allclose(by_decile["true"], by_decile["knowable"], atol=0.025)


def test_knowable_probability_is_deterministic(world: CrmWorld) -> None:
    pairs = _assignment_pairs(world).head(500)
    np.testing.assert_array_equal(
        world.knowable_probability(pairs), world.knowable_probability(pairs)
    )


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (
            pd.DataFrame({"lead_id": ["L000001"], "rep_id": ["R001"]}),
            r"missing column\(s\) \['at'\]",
        ),
        (
            pd.DataFrame({"lead_id": ["L999999"], "rep_id": ["R001"], "at": ["2025-02-01"]}),
            r"1 lead_id value\(s\) unknown to this world, e.g. \['L999999'\]",
        ),
        (
            pd.DataFrame({"lead_id": ["L000001"], "rep_id": ["R777"], "at": ["2025-02-01"]}),
            r"rep_id value\(s\) unknown",
        ),
        (
            pd.DataFrame({"lead_id": ["L000001"], "rep_id": ["R001"], "at": [pd.NaT]}),
            r"times must not be missing",
        ),
        (
            pd.DataFrame(
                {
                    "lead_id": ["L000001"],
                    "rep_id": ["R001"],
                    "at": ["2025-02-01"],
                    "open_load": [-1],
                }
            ),
            "open_load must be a non-negative number",
        ),
    ],
)
def test_bad_pairs_are_rejected(world: CrmWorld, pairs: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        world.true_probability(pairs)


# --- leads after the history ---------------------------------------------------------------------


def test_new_leads_look_like_history_leads_and_are_known_to_the_world() -> None:
    world = simulate("small", seed=0)
    day = world.as_of + pd.Timedelta(days=1)
    fresh = world.new_leads(day, n=30)
    assert len(fresh) == 30
    assert fresh.dtypes.equals(world.data.leads.dtypes)
    assert (fresh["created_at"].dt.normalize() == day).all()
    assert not fresh["lead_id"].isin(world.data.leads["lead_id"]).any()
    pairs = pd.DataFrame({"lead_id": fresh["lead_id"], "rep_id": "R001", "at": day})
    assert ((world.true_probability(pairs) > 0) & (world.knowable_probability(pairs) > 0)).all()
    recurring = fresh["account_id"].isin(world.data.leads["account_id"])
    assert recurring.any()


def test_new_leads_are_reproducible_and_vary_with_seed_and_day() -> None:
    world = simulate("small", seed=0)
    monday = world.as_of + pd.Timedelta(days=6)
    first, again = world.new_leads(monday), world.new_leads(monday)
    assert first.drop(columns="lead_id").equals(again.drop(columns="lead_id"))
    assert not set(first["lead_id"]) & set(again["lead_id"])
    assert 0.5 * 40 < len(first) < 2.5 * 40
    assert not first.equals(world.new_leads(monday, seed=1))
    saturday = world.new_leads(monday + pd.Timedelta(days=5))
    assert len(saturday) < len(first)


def test_new_leads_rejects_a_negative_count() -> None:
    with pytest.raises(ValueError, match="n must be >= 0"):
        simulate("small", seed=0).new_leads("2025-06-01", n=-1)


def test_scenario_is_a_frozen_dataclass() -> None:
    assert dataclasses.is_dataclass(Scenario)
    with pytest.raises(dataclasses.FrozenInstanceError):
        SCENARIOS["small"].n_days = 5  # type: ignore[misc]
