"""No leakage: features at time t depend only on outcomes decided before t.

Two proofs: a naive row-by-row reference implementation (the definitions, written as plainly as
possible) that the fast one must match, and hypothesis properties: rewriting every outcome that
happens at or after t, and deleting every assignment made at or after t, changes no feature at t;
nor does rewriting what today's export says about the reps (team, region, skills, capacity,
status; a rep whose skills or region change after t has its ``attributes_since`` moved to the
change) and about the leads created after t.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit

from features.config import FeatureConfig
from features.pairs import build_scoring_pairs, build_training_pairs
from features.schemas import CrmData
from features.tags import tag, tag_set

T0 = pd.Timestamp("2024-01-01")
CONFIG = FeatureConfig(
    conversion_window_days=20,
    history_days=30,
    recent_days=7,
    shrinkage_strength=3,
    segment_shrinkage_strength=2,
    account_shrinkage_strength=1.5,
)
KEYS = ["lead_id", "rep_id", "at"]


def random_crm(seed: int, n_assignments: int = 60) -> CrmData:
    """A small messy history: missing values, reassignments, late wins, open leads."""
    rng = np.random.default_rng(seed)
    reps = pd.DataFrame(
        {
            "rep_id": ["R1", "R2", "R3", "R4"],
            "name": list("abcd"),
            "team": ["t1", "t1", "t2", None],
            "region": ["EU", "US", None, "EU"],
            "hire_date": [T0 - pd.Timedelta(days=d) for d in (400, 10, 90, 0)],
            "skills": ["Retail;Pro", "retail", None, "Software"],
            "daily_capacity": pd.array([3, 1, 0, 2], dtype="Int64"),
            "active": [True, True, True, False],
            # Known since before the history, since within it, unknown, since within it.
            "attributes_since": [T0 - pd.Timedelta(days=5), T0 + pd.Timedelta(days=30), pd.NaT]
            + [T0 + pd.Timedelta(days=60)],
        }
    )
    n_leads = n_assignments - 10
    created = T0 + pd.to_timedelta(np.sort(rng.uniform(0, 80, n_leads)), unit="D")
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i:03d}" for i in range(n_leads)],
            "created_at": created.astype("datetime64[ns]"),
            "source": rng.choice(["web", "event", None], n_leads),
            "industry": rng.choice(["Retail", "Software", None], n_leads),
            "region": rng.choice(["EU", "US"], n_leads),
            "product": rng.choice(["Basic", "Pro"], n_leads),
            "account_id": rng.choice(["A1", "A2", "A3", None], n_leads),
            "expected_value": rng.uniform(0, 100, n_leads),
            "x_score": rng.normal(size=n_leads),
        }
    )
    # Every lead once, some twice (reassigned): the history has repeated leads.
    lead_pos = np.concatenate([np.arange(n_leads), rng.integers(0, n_leads, 10)])
    assigned = leads["created_at"].to_numpy()[lead_pos] + pd.to_timedelta(
        rng.uniform(0, 3, len(lead_pos)), unit="D"
    )
    status = rng.choice(["won", "lost", "open"], len(lead_pos), p=[0.3, 0.5, 0.2])
    closed = assigned + pd.to_timedelta(rng.uniform(0, 40, len(lead_pos)), unit="D")
    assignments = pd.DataFrame(
        {
            "lead_id": leads["lead_id"].to_numpy()[lead_pos],
            "rep_id": rng.choice(reps["rep_id"], len(lead_pos)),
            "assigned_at": pd.Series(assigned).astype("datetime64[ns]"),
            "first_contact_at": pd.NaT,
            "status": status,
            "closed_at": pd.Series(np.where(status == "open", np.datetime64("NaT"), closed)),
            "deal_value": np.where(status == "won", 1.0, np.nan),
        }
    ).astype({"closed_at": "datetime64[ns]", "first_contact_at": "datetime64[ns]"})
    return CrmData(reps=reps, leads=leads, assignments=assignments)


# --- the naive reference ---------------------------------------------------------------------


def _same(a: object, b: object) -> bool:
    """Equality where a missing value is a value of its own (as the features treat it)."""
    return (pd.isna(a) and pd.isna(b)) or (not pd.isna(a) and not pd.isna(b) and a == b)


def _shrink(wins: float, n: float, prior: float, strength: float) -> float:
    return (wins + strength * prior) / (n + strength)


def naive_features(data: CrmData, pairs: pd.DataFrame, config: FeatureConfig) -> pd.DataFrame:
    """Every feature of every pair, by looping over the whole history for each pair."""
    window = pd.Timedelta(days=config.conversion_window_days)
    reps = {r.rep_id: r for r in data.reps.itertuples()}
    leads = {lead.lead_id: lead for lead in data.leads.itertuples()}
    history = list(data.assignments.itertuples())

    def decided(h) -> tuple[pd.Timestamp, int]:
        if h.status in ("won", "lost") and h.closed_at <= h.assigned_at + window:
            return h.closed_at, int(h.status == "won")
        return h.assigned_at + window, 0

    rows = []
    for pair in pairs.itertuples():
        t, rep, lead = pair.at, reps[pair.rep_id], leads[pair.lead_id]
        start = t - pd.Timedelta(days=config.history_days)
        known = []
        for h in history:
            when, won = decided(h)
            if start <= when < t:
                known.append((h, won))

        def record(select, known=known) -> tuple[int, int]:
            chosen = [won for h, won in known if select(h)]
            return len(chosen), sum(chosen)

        n, w = record(lambda h: True)
        company = (w + 1) / (n + 2)
        n_rep, w_rep = record(lambda h, rep=rep: h.rep_id == rep.rep_id)
        rep_rate = _shrink(w_rep, n_rep, company, config.shrinkage_strength)
        load = sum(
            1
            for h in history
            if h.rep_id == rep.rep_id
            and h.assigned_at < t
            and not (pd.notna(h.closed_at) and h.closed_at < t)
        )
        recent = sum(
            1
            for h in history
            if h.rep_id == rep.rep_id
            and t - pd.Timedelta(days=config.recent_days) <= h.assigned_at < t
        )
        n_acc, w_acc = record(
            lambda h, lead=lead: (
                pd.notna(lead.account_id) and _same(leads[h.lead_id].account_id, lead.account_id)
            )
        )
        row = {
            "lead_age_days": (t - lead.created_at) / pd.Timedelta(days=1),
            "account_outcomes": n_acc,
            "account_win_rate": _shrink(w_acc, n_acc, company, config.account_shrinkage_strength),
            "rep_tenure_days": (t - rep.hire_date) / pd.Timedelta(days=1),
            "rep_outcomes": n_rep,
            "rep_win_rate": rep_rate,
            "rep_open_load": load,
            "rep_recent_volume": recent,
        }
        clip = lambda p: np.clip(p, 1e-6, 1 - 1e-6)  # noqa: E731
        for segment in config.segment_columns:
            value = getattr(lead, segment)
            n, w = record(lambda h, s=segment, v=value: _same(getattr(leads[h.lead_id], s), v))
            segment_rate = _shrink(w, n, company, config.shrinkage_strength)
            prior = expit(logit(clip(rep_rate)) + logit(clip(segment_rate)) - logit(clip(company)))
            n, w = record(
                lambda h, s=segment, v=value, r=rep.rep_id: (
                    h.rep_id == r and _same(getattr(leads[h.lead_id], s), v)
                )
            )
            row[f"rep_{segment}_outcomes"] = n
            row[f"rep_{segment}_win_rate"] = _shrink(w, n, prior, config.segment_shrinkage_strength)
        given = [h for h in history if h.rep_id == rep.rep_id and h.assigned_at < t]
        for column in (*config.skill_columns, "region"):
            value = getattr(lead, column)
            same = [h for h in given if _same(getattr(leads[h.lead_id], column), value)]
            row[f"rep_{column}_share"] = len(same) / max(len(given), 1)
        # Today's skills and region, only where the export says they already held at t.
        held = pd.notna(rep.attributes_since) and rep.attributes_since <= t
        for column in config.skill_columns:
            value = tag(getattr(lead, column))
            hit = value is not None and value in tag_set(rep.skills)
            row[f"skill_match_{column}"] = float(hit) if held else np.nan
        same_region = tag(lead.region) is not None and tag(lead.region) == tag(rep.region)
        row["region_match"] = float(same_region) if held else np.nan
        rows.append(row)
    return pd.DataFrame(rows, index=pairs.index)


def _assert_matches_reference(fast: pd.DataFrame, data: CrmData) -> None:
    reference = naive_features(data, fast[KEYS], CONFIG)
    for column in reference.columns:
        np.testing.assert_allclose(
            fast[column].to_numpy(dtype=float),
            reference[column].to_numpy(dtype=float),
            rtol=1e-9,
            atol=1e-12,
            err_msg=column,
        )


def test_training_features_match_the_naive_reference():
    data = random_crm(seed=1)
    pairs = build_training_pairs(data, as_of=T0 + pd.Timedelta(days=200), config=CONFIG)
    assert len(pairs) == len(data.assignments)
    _assert_matches_reference(pairs, data)


def test_scoring_features_match_the_naive_reference():
    data = random_crm(seed=2)
    leads = data.leads.sample(8, random_state=0)
    for as_of in ("2024-01-20", "2024-02-15 13:30", "2024-04-01"):
        pairs = build_scoring_pairs(data, leads, as_of=pd.Timestamp(as_of), config=CONFIG)
        assert len(pairs) == 8 * 3  # R4 is inactive
        _assert_matches_reference(pairs, data)


# --- the property ----------------------------------------------------------------------------


def rewrite_the_future(data: CrmData, t: pd.Timestamp, seed: int) -> CrmData:
    """Change every outcome at or after t at random (reopen, win, lose, later or sooner, but
    still at or after t) and delete every assignment made at or after t."""
    rng = np.random.default_rng(seed)
    asg = data.assignments.loc[data.assignments["assigned_at"] < t].copy()
    future = (asg["closed_at"] >= t) | asg["closed_at"].isna()
    n = int(future.sum())
    status = rng.choice(["won", "lost", "open"], n)
    earliest = asg.loc[future, "assigned_at"].clip(lower=t)
    closed = earliest + pd.to_timedelta(rng.uniform(0, 60, n), unit="D")
    asg.loc[future, "status"] = status
    asg.loc[future, "closed_at"] = closed.where(status != "open")
    return replace(data, assignments=asg.reset_index(drop=True))


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    t_days=st.floats(0, 90, allow_nan=False),
    mutation_seed=st.integers(0, 10_000),
)
def test_rewriting_or_deleting_the_future_changes_no_feature_at_t(seed, t_days, mutation_seed):
    data = random_crm(seed, n_assignments=30)
    t = (T0 + pd.Timedelta(days=t_days)).round("s")
    changed = rewrite_the_future(data, t, mutation_seed)

    scoring = [
        build_scoring_pairs(d, d.leads.head(6), as_of=t, config=CONFIG) for d in (data, changed)
    ]
    pd.testing.assert_frame_equal(scoring[0], scoring[1])

    # Training rows made before t keep their features (their labels may change, of course).
    far = T0 + pd.Timedelta(days=400)
    label = ["won", "decided_at", "mature"]
    before, after = (
        build_training_pairs(d, as_of=far, config=CONFIG).drop(columns=label)
        for d in (data, changed)
    )
    before = before.loc[before["at"] < t].reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after.reset_index(drop=True))


def rewrite_the_present(data: CrmData, t: pd.Timestamp, seed: int) -> CrmData:
    """What today's export may say that was not so at t: every rep's team, capacity, name and
    status rewritten at random; some reps' region and skills rewritten at a moment after t, with
    ``attributes_since`` moved to that moment (or emptied); a rep hired after t; and every lead
    created at or after t rewritten (its columns, its account), plus new leads after t."""
    rng = np.random.default_rng(seed)
    reps = data.reps.copy()
    n = len(reps)
    reps["team"] = rng.choice(["t1", "t2", "t3", None], n)
    moved = rng.random(n) < 0.7
    k = int(moved.sum())
    reps.loc[moved, "region"] = rng.choice(["EU", "US", None], k)
    reps.loc[moved, "skills"] = rng.choice(["Retail", "software;pro", "Basic", None], k)
    since = pd.Series(t + pd.to_timedelta(rng.uniform(1e-3, 10, k), unit="D"))
    reps["attributes_since"] = reps["attributes_since"].astype("datetime64[ns]")
    reps.loc[moved, "attributes_since"] = since.where(rng.random(k) < 0.8).to_numpy()
    reps["daily_capacity"] = pd.array(rng.integers(0, 9, n), dtype="Int64")
    reps["active"] = rng.random(n) < 0.5
    reps["name"] = [f"renamed {i}" for i in range(n)]
    hired = t + pd.Timedelta(days=float(rng.uniform(0, 10)))
    newcomer = pd.DataFrame(
        {
            "rep_id": ["R9"],
            "name": ["new"],
            "team": ["t1"],
            "region": ["EU"],
            "hire_date": [hired],
            "skills": ["Retail"],
            "daily_capacity": pd.array([4], dtype="Int64"),
            "active": [True],
            "attributes_since": [hired],
        }
    )
    leads = data.leads.copy()
    later = leads["created_at"] >= t
    k = int(later.sum())
    leads.loc[later, "source"] = rng.choice(["web", "event", "partner"], k)
    leads.loc[later, "industry"] = rng.choice(["Retail", "Software", "Energy"], k)
    leads.loc[later, "region"] = rng.choice(["EU", "US"], k)
    leads.loc[later, "product"] = rng.choice(["Basic", "Pro"], k)
    leads.loc[later, "account_id"] = rng.choice(["A1", "A2", "A9"], k)
    leads.loc[later, "expected_value"] = rng.uniform(0, 1000, k)
    leads.loc[later, "x_score"] = rng.normal(size=k)
    fresh = leads.head(3).assign(
        lead_id=["N1", "N2", "N3"],
        created_at=[t + pd.Timedelta(hours=h) for h in (1, 5, 30)],
        industry="Retail",
        account_id="A1",
    )
    return replace(
        data,
        reps=pd.concat([reps, newcomer], ignore_index=True),
        leads=pd.concat([leads, fresh], ignore_index=True),
    )


DECLARED = ["skill_match_industry", "skill_match_product", "region_match"]


def only_the_dates_moved(data: CrmData, changed: CrmData) -> CrmData:
    """``data`` with the reps' ``attributes_since`` of ``changed`` but their old values."""
    since = changed.reps.set_index("rep_id")["attributes_since"].reindex(data.reps["rep_id"])
    return replace(data, reps=data.reps.assign(attributes_since=since.to_numpy()))


def assert_same_or_forgotten(before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Every feature equal, except declared matches that may only have become unknown: a new
    export that moves ``attributes_since`` forgets what held before, it never says otherwise."""
    pd.testing.assert_frame_equal(before.drop(columns=DECLARED), after.drop(columns=DECLARED))
    told = after[DECLARED].notna()
    pd.testing.assert_frame_equal(before[DECLARED].where(told), after[DECLARED])


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    t_days=st.floats(0, 90, allow_nan=False),
    mutation_seed=st.integers(0, 10_000),
)
def test_rewriting_the_reps_and_leads_after_t_changes_no_feature_before_t(
    seed, t_days, mutation_seed
):
    original = random_crm(seed, n_assignments=30)
    t = (T0 + pd.Timedelta(days=t_days)).round("s")
    changed = rewrite_the_present(original, t, mutation_seed)
    # The same export before the rewrite, had it already said since when the attributes hold:
    # then nothing at or before t may differ at all.
    data = only_the_dates_moved(original, changed)

    # Scoring at t: the leads known at t, with every rep known at t.
    known = data.leads.loc[data.leads["created_at"] < t].head(6)
    reps = data.reps.loc[data.reps["hire_date"] < t, "rep_id"]
    candidates = pd.DataFrame(
        {
            "lead_id": np.repeat(known["lead_id"].to_numpy(), len(reps)),
            "rep_id": np.tile(reps.to_numpy(), len(known)),
        }
    )
    if len(candidates):
        scoring = [
            build_scoring_pairs(d, known, as_of=t, config=CONFIG, candidates=candidates)
            for d in (original, data, changed)
        ]
        pd.testing.assert_frame_equal(scoring[1], scoring[2])
        assert_same_or_forgotten(scoring[0], scoring[2])

    # Training rows made before t keep their features (and their labels).
    far = T0 + pd.Timedelta(days=400)
    before, moved, after = (
        build_training_pairs(d, as_of=far, config=CONFIG).pipe(lambda p: p.loc[p["at"] < t])
        for d in (original, data, changed)
    )
    pd.testing.assert_frame_equal(moved.reset_index(drop=True), after.reset_index(drop=True))
    assert_same_or_forgotten(before.reset_index(drop=True), after.reset_index(drop=True))
