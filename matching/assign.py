"""One day's matching from frames: eligibility, uplift, tiers, the optimiser or a baseline policy,
and a plain-words reason for every lead.

Input frames:
- ``candidates``: lead_id, rep_id, p_win (scored pairs; any pair not listed is not a candidate).
- ``leads``: lead_id, created_at, expected_value (optional), industry, product, region,
  language, account_id (optional), previous_rep_id and days_without_contact (reclaimed leads).
- ``reps``: the reps' day as :func:`features.daily.rep_day` returns it.
- ``history`` (optional): rep_id, value, top_tier, capacity: what each rep received on the
  previous days of the fairness window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from matching.config import MatchingConfig
from matching.optimiser import AssignmentProblem, FairnessTerms, Optimiser, slacks_of

POLICIES = ("round_robin", "weighted_round_robin", "greedy", "no_fairness", "leadmatch")

REASONS_EN = {
    "best": "best expected win rate among available reps ({p:.0%})",
    "nth_capacity": "{rank_word} choice: {best} at capacity",
    "nth_fairness": "{rank_word} choice: keeps value shared fairly ({best} already has their share)",
    "new_rep": "{rank_word} choice: new-rep quota for top-tier leads",
    "balance": "no reliable difference between reps: balances value and load",
    "account": "account continuity: {rep} already owns this account",
    "policy": "{policy} assignment",
    "hold_none": "held: no eligible rep works today",
    "hold_capacity": "held: every eligible rep is at capacity",
    "reclaimed": "reclaimed from {previous} after {days:.0f} days without contact; ",
}
REASONS_ZH = {
    "best": "在可用销售中预计赢单率最高（{p:.0%}）",
    "nth_capacity": "第{rank}选择：{best}已满负荷",
    "nth_fairness": "第{rank}选择：保持价值分配公平（{best}已达到其份额）",
    "new_rep": "第{rank}选择：新人优质线索配额",
    "balance": "销售之间无可靠差异：按价值和负荷均衡分配",
    "account": "客户延续：{rep}已负责该客户",
    "policy": "{policy}分配",
    "hold_none": "暂缓：今天没有符合条件的销售在岗",
    "hold_capacity": "暂缓：所有符合条件的销售已满负荷",
    "reclaimed": "{days:.0f}天未联系，从{previous}收回；",
}


@dataclass(frozen=True)
class DayMatch:
    """The result of one day's matching.

    ``assignments``: one row per lead: lead_id, action (assign / reassign / hold), rep_id,
    previous_rep_id, p_win, p_baseline, uplift, expected_value, value, tier, rank_for_lead,
    best_rep_id, uplift_lost, reason_code, reason, reason_zh.
    ``reps``: one row per rep of the day: rep_id, capacity, assigned, tier_A/B/C, expected_wins,
    expected_value, value_received, fair_share, value_share.
    ``diagnostics``: solver status, objective, bound, gap, seconds, soft violations (sentences),
    rep_signal_used, hard_violations (always 0 by construction, checked).
    """

    assignments: pd.DataFrame
    reps: pd.DataFrame
    diagnostics: dict = field(default_factory=dict)


def eligible_pairs(
    candidates: pd.DataFrame,
    leads: pd.DataFrame,
    reps: pd.DataFrame,
    config: MatchingConfig,
    *,
    account_owners: pd.Series | None = None,
) -> pd.DataFrame:
    """The candidate pairs that pass every hard rule, with ``pinned`` True for account owners.

    Raises ValueError for NaN or out-of-range probabilities and for unknown leads or reps.
    """
    p = candidates["p_win"].to_numpy(dtype=float)
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        row = candidates.loc[bad].iloc[0]
        raise ValueError(
            f"p_win must be a probability in [0, 1]; lead {row.lead_id}, rep {row.rep_id} has {row.p_win}"
        )
    unknown = ~candidates["lead_id"].isin(leads["lead_id"])
    if unknown.any():
        raise ValueError(
            f"candidate pair for unknown lead {candidates.loc[unknown, 'lead_id'].iloc[0]}"
        )
    unknown = ~candidates["rep_id"].isin(reps["rep_id"])
    if unknown.any():
        raise ValueError(
            f"candidate pair for unknown rep {candidates.loc[unknown, 'rep_id'].iloc[0]}"
        )
    rules = config.eligibility
    pairs = candidates.merge(leads, on="lead_id", how="left").merge(
        reps.rename(columns={"region": "rep_region"}), on="rep_id", how="left"
    )
    keep = pairs["available"].to_numpy(bool) & (pairs["capacity"].to_numpy() > 0)
    if rules.region and "region" in pairs:
        both = pairs["region"].notna() & pairs["rep_region"].notna()
        keep &= ~(both & (pairs["region"] != pairs["rep_region"])).to_numpy()
    if rules.skills:
        keep &= _skill_ok(pairs, rules.skill_fields, rules.skill_match)
    if rules.language and "language" in pairs:
        keep &= (
            _in_tags(pairs["language"], pairs["languages"]) | pairs["language"].isna().to_numpy()
        )
    if rules.exclude_previous_rep and "previous_rep_id" in pairs:
        keep &= (pairs["previous_rep_id"].astype(object) != pairs["rep_id"]).to_numpy()
    out = candidates.loc[keep, ["lead_id", "rep_id", "p_win"]].reset_index(drop=True)
    out["pinned"] = False
    if rules.account_continuity and account_owners is not None and "account_id" in leads:
        owner = leads.set_index("lead_id")["account_id"].map(account_owners)
        owned = out["lead_id"].map(owner)
        out["pinned"] = (owned == out["rep_id"]).fillna(False).to_numpy(bool)
        has_owner_pair = out.groupby("lead_id")["pinned"].transform("any")
        out = out.loc[~has_owner_pair | out["pinned"]].reset_index(drop=True)
    return out


def _tags(text: pd.Series) -> list[set[str]]:
    return [
        set() if not isinstance(t, str) or not t else {x.strip().lower() for x in t.split(";")}
        for t in text
    ]


def _in_tags(values: pd.Series, tags: pd.Series) -> np.ndarray:
    sets = _tags(tags)
    return np.array(
        [
            not s or (isinstance(v, str) and v.lower() in s)
            for v, s in zip(values, sets, strict=True)
        ],
        dtype=bool,
    )


def _skill_ok(pairs: pd.DataFrame, fields: tuple[str, ...], mode: str) -> np.ndarray:
    sets = _tags(pairs["skills"])
    hits = []
    for column in fields:
        values = pairs[column] if column in pairs else pd.Series(pd.NA, index=pairs.index)
        hits.append(
            [
                None if not isinstance(v, str) else v.lower() in s
                for v, s in zip(values, sets, strict=True)
            ]
        )
    out = np.ones(len(pairs), dtype=bool)
    for i, s in enumerate(sets):
        if not s:
            continue  # a rep with no skills is a generalist
        known = [h[i] for h in hits if h[i] is not None]
        if known:
            out[i] = any(known) if mode == "any" else all(known)
    return out


def match_day(
    candidates: pd.DataFrame,
    leads: pd.DataFrame,
    reps: pd.DataFrame,
    config: MatchingConfig,
    *,
    history: pd.DataFrame | None = None,
    account_owners: pd.Series | None = None,
    rep_signal: bool = True,
    policy: str = "leadmatch",
    score: pd.Series | None = None,
) -> DayMatch:
    """Match the day's ``leads`` to ``reps`` over ``candidates`` with ``policy``.

    ``rep_signal`` False (the model found no reliable rep effect) makes every rep of a lead
    equally good, so leadmatch only balances value and load. ``score`` (optional, aligned with
    ``candidates``) replaces p_win as what the optimiser maximises (e.g. true probabilities for an
    oracle) while reports still use p_win.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    leads = leads.sort_values(["created_at", "lead_id"], kind="stable").reset_index(drop=True)
    reps = reps.reset_index(drop=True)
    scored = candidates.assign(
        objective_p=score.to_numpy() if score is not None else candidates["p_win"].to_numpy()
    )
    pairs = eligible_pairs(scored, leads, reps, config, account_owners=account_owners)
    pairs = pairs.merge(
        scored[["lead_id", "rep_id", "objective_p"]], on=["lead_id", "rep_id"], how="left"
    )
    lead_pos = pd.Series(np.arange(len(leads)), index=leads["lead_id"])
    working = reps.loc[reps["available"] & (reps["capacity"] > 0)].reset_index(drop=True)
    room = working["capacity"].to_numpy(dtype=float)
    if "max_open_leads" in working:
        limit = pd.to_numeric(working["max_open_leads"], errors="coerce").to_numpy(dtype=float)
        room = np.where(
            np.isnan(limit), room, np.minimum(room, np.maximum(limit - working["open_load"], 0))
        )
    room = room.astype(int)
    rep_pos = pd.Series(np.arange(len(working)), index=working["rep_id"])
    pairs = pairs.loc[pairs["rep_id"].isin(working["rep_id"][room > 0])]
    pairs = pairs.assign(
        l=pairs["lead_id"].map(lead_pos).to_numpy(), r=pairs["rep_id"].map(rep_pos).to_numpy()
    )
    pairs = pairs.sort_values(["l", "r"], kind="stable").reset_index(drop=True)

    value = _lead_value(leads, config)
    baseline = _baseline(pairs, working, len(leads), config)
    b = baseline[pairs["l"].to_numpy()]
    tier = _tiers(value * baseline, config)
    effective = pairs["objective_p"].to_numpy(dtype=float) if rep_signal or score is not None else b
    ramp = working["tenure_days"].to_numpy(dtype=float) < config.fairness.new_rep_quota.ramp_days
    hist = _history(history, working)
    keep_reps = room > 0
    # Reps with no room today stay out of the optimiser, which requires positive capacity.
    cols = np.flatnonzero(keep_reps)
    remap = -np.ones(len(working), dtype=int)
    remap[cols] = np.arange(len(cols))
    problem = AssignmentProblem(
        lead=pairs["l"].to_numpy(dtype=int),
        rep=remap[pairs["r"].to_numpy(dtype=int)],
        score=(value[pairs["l"].to_numpy()] * effective).clip(min=0),
        lead_value=value * baseline,
        top_tier=tier == "A",
        capacity=room[cols],
        ramp=ramp[cols],
        history_value=hist["value"][cols],
        history_top_tier=hist["top_tier"][cols],
        history_capacity=hist["capacity"][cols],
    )
    fairness = config.fairness if policy == "leadmatch" else config.fairness.disabled()
    diagnostics: dict = {"policy": policy, "rep_signal_used": bool(rep_signal)}
    if policy in ("leadmatch", "no_fairness"):
        solver = Optimiser(
            fairness=fairness,
            time_limit_seconds=config.solver.time_limit_seconds,
            mip_rel_gap=config.solver.mip_rel_gap,
            threads=config.solver.threads,
        )
        solution = solver.solve(problem)
        choice = solution.choice
        diagnostics.update(
            status=solution.status,
            objective=solution.objective,
            bound=solution.bound,
            gap=solution.gap,
            solve_seconds=solution.solve_seconds,
            n_fractional=solution.n_fractional,
            method=solution.method,
        )
    else:
        choice = _baseline_policy(policy, problem, leads)
        diagnostics.update(
            status="heuristic", objective=float(problem.score[choice[choice >= 0]].sum())
        )
    terms = FairnessTerms.of(problem, config.fairness)
    slack = slacks_of(problem, terms, choice)
    diagnostics["violations"] = _violation_sentences(
        slack, terms, working["rep_id"].to_numpy()[cols]
    )
    diagnostics["soft_violations"] = len(diagnostics["violations"])
    assignments = _explain(
        leads, pairs, problem, choice, value, baseline, tier, working, cols, rep_signal, policy
    )
    assignments, rep_table = _summaries(assignments, working, room, hist, cols, terms)
    diagnostics["hard_violations"] = int((rep_table["assigned"] > rep_table["room"]).sum())
    return DayMatch(assignments, rep_table.drop(columns="room"), diagnostics)


def _lead_value(leads: pd.DataFrame, config: MatchingConfig) -> np.ndarray:
    if config.objective == "conversions" or "expected_value" not in leads:
        return np.ones(len(leads))
    values = pd.to_numeric(leads["expected_value"], errors="coerce")
    fill = values.median() if values.notna().any() else 1.0
    return values.fillna(fill).to_numpy(dtype=float)


def _baseline(
    pairs: pd.DataFrame, working: pd.DataFrame, n: int, config: MatchingConfig
) -> np.ndarray:
    """b(l): mean p over the lead's eligible working reps (optionally weighted by capacity)."""
    weights = np.ones(len(pairs))
    if config.baseline == "capacity_weighted_mean":
        weights = working["capacity"].to_numpy(dtype=float)[pairs["r"].to_numpy()]
    lead = pairs["l"].to_numpy()
    num = np.bincount(lead, weights * pairs["p_win"].to_numpy(dtype=float), minlength=n)
    den = np.bincount(lead, weights, minlength=n)
    return np.divide(num, den, out=np.zeros(n), where=den > 0)


def _tiers(baseline_value: np.ndarray, config: MatchingConfig) -> np.ndarray:
    if len(baseline_value) == 0:
        return np.array([], dtype=object)
    low, high = np.quantile(baseline_value, config.tier_quantiles)
    return np.where(baseline_value >= high, "A", np.where(baseline_value >= low, "B", "C")).astype(
        object
    )


def _history(history: pd.DataFrame | None, working: pd.DataFrame) -> dict[str, np.ndarray]:
    zeros = np.zeros(len(working))
    if history is None or history.empty:
        return {"value": zeros, "top_tier": zeros, "capacity": zeros}
    h = history.set_index("rep_id").reindex(working["rep_id"]).fillna(0)
    return {k: h[k].to_numpy(dtype=float) for k in ("value", "top_tier", "capacity")}


def _subset(problem: AssignmentProblem, keep: np.ndarray) -> AssignmentProblem:
    return AssignmentProblem(
        lead=problem.lead[keep],
        rep=problem.rep[keep],
        score=problem.score[keep],
        lead_value=problem.lead_value,
        top_tier=problem.top_tier,
        capacity=problem.capacity,
        ramp=problem.ramp,
        history_value=problem.history_value,
        history_top_tier=problem.history_top_tier,
        history_capacity=problem.history_capacity,
    )


def _baseline_policy(policy: str, problem: AssignmentProblem, leads: pd.DataFrame) -> np.ndarray:
    """Round-robin (arrival order), capacity-weighted round-robin, or greedy best rep."""
    n, n_reps = problem.n_leads, problem.n_reps
    starts = problem.lead_start
    left = problem.capacity.astype(float).copy()
    given = np.zeros(n_reps)
    choice = -np.ones(n, dtype=int)
    pointer = 0
    for lead in range(n):
        options = np.arange(starts[lead], starts[lead + 1])
        options = options[left[problem.rep[options]] > 0]
        if not len(options):
            continue
        reps = problem.rep[options]
        if policy == "greedy":
            pick = options[np.argmax(problem.score[options])]
        elif policy == "weighted_round_robin":
            # The rep furthest behind its capacity-proportional share so far.
            lag = given[reps] / problem.capacity[reps]
            pick = options[np.lexsort((reps, lag))[0]]
        else:
            # The next rep in a fixed rotation, skipping those who cannot take the lead.
            order = (reps - pointer) % n_reps
            pick = options[np.argmin(order)]
            pointer = (problem.rep[pick] + 1) % n_reps
        choice[lead] = pick
        left[problem.rep[pick]] -= 1
        given[problem.rep[pick]] += 1
    return choice


def _violation_sentences(slack, terms: FairnessTerms, rep_ids: np.ndarray) -> list[str]:
    out = []
    if terms.value_on:
        for rep, low, high in zip(rep_ids, slack.value_low, slack.value_high, strict=True):
            if low > 1e-6:
                out.append(
                    f"{rep} received {low:.2f} less value than the bottom of their fair band"
                )
            if high > 1e-6:
                out.append(f"{rep} received {high:.2f} more value than the top of their fair band")
    if terms.ramp_on and slack.ramp > 1e-6:
        out.append(f"reps in ramp-up are {slack.ramp:.1f} top-tier leads short of their quota")
    if terms.cap_on:
        for rep, over in zip(rep_ids, slack.top_cap, strict=True):
            if over > 1e-6:
                out.append(f"{rep} holds {over:.1f} top-tier leads above the cap")
    return out


_RANK_WORDS = {2: "2nd", 3: "3rd"}


def _explain(
    leads, pairs, problem, choice, value, baseline, tier, working, cols, rep_signal, policy
) -> pd.DataFrame:
    rep_ids = working["rep_id"].to_numpy()[cols]
    names = working.set_index("rep_id")["name"]
    starts = problem.lead_start
    left = problem.capacity.astype(int) - np.bincount(
        problem.rep[choice[choice >= 0]], minlength=problem.n_reps
    )
    p = pairs["p_win"].to_numpy(dtype=float)
    rows = []
    for lead in range(problem.n_leads):
        options = np.arange(starts[lead], starts[lead + 1])
        info = leads.iloc[lead]
        prev = info.get("previous_rep_id")
        prev = prev if isinstance(prev, str) else None
        row = {
            "lead_id": info["lead_id"],
            "previous_rep_id": prev,
            "expected_value": info.get("expected_value", np.nan),
            "value": value[lead],
            "p_baseline": baseline[lead],
            "tier": tier[lead],
        }
        prefix_en = prefix_zh = ""
        if prev is not None:
            days = float(info.get("days_without_contact", 0) or 0)
            prefix_en = REASONS_EN["reclaimed"].format(previous=prev, days=days)
            prefix_zh = REASONS_ZH["reclaimed"].format(previous=prev, days=days)
        if choice[lead] < 0:
            code = "hold_none" if not len(options) else "hold_capacity"
            row.update(
                action="hold", rep_id=None, p_win=np.nan, uplift=np.nan, rank_for_lead=np.nan
            )
            row.update(
                best_rep_id=rep_ids[problem.rep[options[np.argmax(p[options])]]]
                if len(options)
                else None
            )
            row.update(uplift_lost=np.nan, reason_code=code)
            params: dict = {}
        else:
            j = choice[lead]
            order = options[np.lexsort((problem.rep[options], -p[options]))]
            rank = int(np.flatnonzero(order == j)[0]) + 1
            best = order[0]
            best_rep = rep_ids[problem.rep[best]]
            row.update(
                action="reassign" if prev is not None else "assign",
                rep_id=rep_ids[problem.rep[j]],
                p_win=p[j],
                uplift=value[lead] * (p[j] - baseline[lead]),
                rank_for_lead=rank,
                best_rep_id=best_rep,
                uplift_lost=value[lead] * (p[best] - p[j]),
            )
            params = {
                "p": p[j],
                "rank": rank,
                "best": f"{best_rep} ({names.get(best_rep, best_rep)})",
            }
            if bool(pairs["pinned"].iloc[j]):
                code, params["rep"] = "account", row["rep_id"]
            elif policy not in ("leadmatch", "no_fairness"):
                code, params["policy"] = "policy", policy.replace("_", "-")
            elif not rep_signal:
                code = "balance"
            elif rank == 1:
                code = "best"
            elif left[problem.rep[best]] <= 0:
                code = "nth_capacity"
            elif tier[lead] == "A" and problem.ramp[problem.rep[j]]:
                code = "new_rep"
            else:
                code = "nth_fairness"
            row["reason_code"] = code
        params["rank_word"] = _RANK_WORDS.get(params.get("rank", 0), f"{params.get('rank', 0)}th")
        row["reason"] = prefix_en + REASONS_EN[row["reason_code"]].format(**params)
        row["reason_zh"] = prefix_zh + REASONS_ZH[row["reason_code"]].format(**params)
        rows.append(row)
    columns = [
        "lead_id", "action", "rep_id", "previous_rep_id", "p_win", "p_baseline", "uplift", "expected_value",
        "value", "tier", "rank_for_lead", "best_rep_id", "uplift_lost", "reason_code", "reason", "reason_zh",
    ]  # fmt: skip
    out = pd.DataFrame(rows, columns=columns)
    out["rank_for_lead"] = out["rank_for_lead"].astype("Int64")
    return out


def _summaries(assignments, working, room, hist, cols, terms: FairnessTerms):
    placed = assignments.loc[assignments["action"] != "hold"]
    grouped = placed.groupby("rep_id")
    table = pd.DataFrame(
        {"rep_id": working["rep_id"], "capacity": working["capacity"], "room": room}
    )
    table["assigned"] = table["rep_id"].map(grouped.size()).fillna(0).astype(int)
    for t in ("A", "B", "C"):
        table[f"tier_{t}"] = (
            table["rep_id"].map(placed.loc[placed["tier"] == t].groupby("rep_id").size()).fillna(0)
        )
        table[f"tier_{t}"] = table[f"tier_{t}"].astype(int)
    table["expected_wins"] = table["rep_id"].map(grouped["p_win"].sum()).fillna(0.0)
    ev = placed.assign(ev=placed["p_win"] * placed["value"]).groupby("rep_id")["ev"].sum()
    table["expected_value"] = table["rep_id"].map(ev).fillna(0.0)
    received = placed.assign(v=placed["value"] * placed["p_baseline"]).groupby("rep_id")["v"].sum()
    table["value_received"] = table["rep_id"].map(received).fillna(0.0)
    window_value = hist["value"] + table["value_received"].to_numpy()
    window_capacity = hist["capacity"] + table["capacity"].to_numpy(dtype=float)
    table["fair_share"] = window_capacity / window_capacity.sum() if window_capacity.sum() else 0.0
    table["value_share"] = window_value / window_value.sum() if window_value.sum() else 0.0
    return assignments, table


def fairness_metrics(rep_table: pd.DataFrame, band: float) -> dict[str, float]:
    """Summary fairness figures of a day (or a window) from :class:`DayMatch`.reps."""
    working = rep_table.loc[rep_table["capacity"] > 0]
    deviation = (working["value_share"] - working["fair_share"]).abs()
    per_capacity = working["value_received"] / working["capacity"]
    return {
        "max_value_share": float(working["value_share"].max()) if len(working) else 0.0,
        "max_value_share_deviation": float(deviation.max()) if len(working) else 0.0,
        "reps_outside_band": int((deviation > band * working["fair_share"] + 1e-9).sum()),
        "gini_value_per_capacity": gini(per_capacity.to_numpy()),
    }


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0: all equal)."""
    values = np.sort(np.asarray(values, dtype=float))
    if len(values) == 0 or values.sum() == 0:
        return 0.0
    ranks = np.arange(1, len(values) + 1)
    return float((2 * ranks - len(values) - 1) @ values / (len(values) * values.sum()))
