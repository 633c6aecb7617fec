"""What a sales manager reads after a nightly run, as plain frames (no I/O, no language).

:func:`manager_plan` turns the matching's answer into the plan a manager can act on: one row per
lead with an action (assign, reassign, keep, hold), each rep's day, the leads left out for age,
top-tier leads by tenure, where the expected gain over round-robin comes from
(:func:`split_gain`) and the fairness rules that could not hold or cost wins. The frames follow
the pandera models below, which are also the contract of the CSV files
(``pipelines/outputs.py`` writes and reads them back, in English or Chinese).

Numbers are what they say: win chances and shares in percent, differences in percentage
points. Without a reliable rep signal the model's per-rep win chances are not used by the plan,
so the per-rep columns stay empty and expected wins are counted with each lead's round-robin
chance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

from features.schemas import Leads, Reps
from matching.config import MatchingConfig
from matching.day import lead_values
from matching.engine import MatchResult, match
from matching.explain import ENGLISH, render
from matching.gain import GainSplit, plan_worth, split_gain

ACTIONS = ("assign", "reassign", "keep", "hold")
TIERS = ("A", "B", "C")
TENURE_GROUPS = ("ramp_up", "to_1_year", "over_1_year")
FAIRNESS_RULES = ("value_share", "new_rep_quota", "top_tier_cap")
# A rule's cost is worked out (one more optimisation per rule) only when fairness as a whole
# gives up at least this share of the plan's expected worth, and listed when it alone costs at
# least RULE_COST_LISTED of it.
COST_SHARE_WORTH_EXPLAINING = 0.01
RULE_COST_LISTED = 0.001


class PlanAssignments(pa.DataFrameModel):
    """``assignments.csv``: one row per lead the run looked at, in the order a manager works.

    action: assign (a new lead to rep_id), reassign (taken from previous_rep_id, given to
    rep_id), keep (reclaim found no other rep with room: stays with rep_id, who is reminded),
    hold (nobody can take it today: placed again in tomorrow's run). lead_win_chance_pct: the
    lead's chance of being won when a rep is picked in turn (round-robin: the mean over its
    eligible reps), in percent; rep_win_chance_pct: the model's chance with rep_id, in percent
    (empty when the model found no reliable difference between reps, or for keep and hold);
    uplift_pts: rep_win_chance_pct minus lead_win_chance_pct, in percentage points;
    rank_for_lead: rep_id's rank among the lead's eligible reps by the model (1 = best);
    best_rep_id: the lead's best rep by the model; expected_revenue: the lead's expected deal
    value times its win chance (only when the objective is expected_value).
    """

    run_date: Series[str] = pa.Field()
    lead_id: Series[str] = pa.Field(unique=True)
    action: Series[str] = pa.Field(isin=list(ACTIONS))
    rep_id: Series[str] = pa.Field(nullable=True)
    rep_name: Series[str] = pa.Field(nullable=True)
    previous_rep_id: Series[str] = pa.Field(nullable=True)
    previous_rep_name: Series[str] = pa.Field(nullable=True)
    tier: Series[str] = pa.Field(nullable=True, isin=list(TIERS))
    lead_win_chance_pct: Series[float] = pa.Field(nullable=True, ge=0, le=100)
    rep_win_chance_pct: Series[float] = pa.Field(nullable=True, ge=0, le=100)
    uplift_pts: Series[float] = pa.Field(nullable=True, ge=-100, le=100)
    rank_for_lead: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1)
    best_rep_id: Series[str] = pa.Field(nullable=True)
    expected_revenue: Series[float] | None = pa.Field(nullable=True, ge=0)
    reason: Series[str] = pa.Field()

    class Config:
        strict = True
        ordered = True
        coerce = True

    @pa.dataframe_check(error="assign and reassign rows name the rep; hold rows name none")
    def _rep_follows_action(cls, frame: pd.DataFrame) -> pd.Series:
        placed = frame["action"].isin(["assign", "reassign", "keep"])
        return frame[Reps.rep_id].notna() == placed

    @pa.dataframe_check(error="reassign and keep rows name the previous rep")
    def _previous_rep_follows_action(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["previous_rep_id"].notna() | ~frame["action"].isin(["reassign", "keep"])

    @pa.dataframe_check(error="a keep row stays with its previous rep")
    def _keep_stays(cls, frame: pd.DataFrame) -> pd.Series:
        return (frame["action"] != "keep") | (frame[Reps.rep_id] == frame["previous_rep_id"])


class PlanRepSummary(pa.DataFrameModel):
    """``rep_summary.csv``: one row per rep of the day, by rep_id.

    capacity: leads the rep can take today (0 when absent or at the open-lead limit);
    assigned: leads given today (assign and reassign); kept: leads that stay with the rep with a
    reminder; tier_A/B/C: today's leads by tier; tier_A_in_proportion: the tier-A leads the rep
    would get if today's were shared in proportion to capacity; expected_wins: sum of today's
    leads' win chances (rep-specific with a reliable rep signal, else round-robin);
    capacity_used_pct; value_share_pct: the rep's share of the lead worth given out over the
    fairness window (today included); fair_share_pct: its share of the window's capacity;
    share_gap_pts: value_share_pct minus fair_share_pct; open_load_after: open leads the rep
    holds after today's plan (reassigned leads move to their new rep).
    """

    rep_id: Series[str] = pa.Field(unique=True)
    rep_name: Series[str] = pa.Field(nullable=True)
    team: Series[str] = pa.Field(nullable=True)
    available: Series[bool] = pa.Field()
    capacity: Series[int] = pa.Field(ge=0)
    assigned: Series[int] = pa.Field(ge=0)
    kept: Series[int] = pa.Field(ge=0)
    tier_A: Series[int] = pa.Field(ge=0)
    tier_B: Series[int] = pa.Field(ge=0)
    tier_C: Series[int] = pa.Field(ge=0)
    tier_A_in_proportion: Series[float] = pa.Field(ge=0)
    expected_wins: Series[float] = pa.Field(ge=0)
    expected_revenue: Series[float] | None = pa.Field(ge=0)
    capacity_used_pct: Series[float] = pa.Field(nullable=True, ge=0, le=100)
    value_share_pct: Series[float] = pa.Field(nullable=True, ge=0, le=100)
    fair_share_pct: Series[float] = pa.Field(ge=0, le=100)
    share_gap_pts: Series[float] = pa.Field(nullable=True, ge=-100, le=100)
    open_load_after: Series[int] = pa.Field(ge=0)

    class Config:
        strict = True
        ordered = True
        coerce = True


class LeftOut(pa.DataFrameModel):
    """``left_out.csv``: leads the run did not place because they are older than the maximum
    age (``recommend.max_lead_age_days``), oldest first. age_days: whole days since created_at;
    previous_rep_id / previous_rep_name: the rep holding it, if any."""

    lead_id: Series[str] = pa.Field(unique=True)
    created_at: Series[pd.Timestamp] = pa.Field()
    age_days: Series[int] = pa.Field(ge=0)
    previous_rep_id: Series[str] = pa.Field(nullable=True)
    previous_rep_name: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = True
        ordered = True
        coerce = True


class TierByTenure(pa.DataFrameModel):
    """Top-tier leads placed today per tenure group (one row per :data:`TENURE_GROUPS`).

    reps: reps of the group working today; top_tier_leads: tier-A leads they received; share:
    of today's tier-A leads; in_proportion: what they would get shared by capacity.
    """

    group: Series[str] = pa.Field(isin=list(TENURE_GROUPS))
    reps: Series[int] = pa.Field(ge=0)
    top_tier_leads: Series[int] = pa.Field(ge=0)
    share: Series[float] = pa.Field(ge=0, le=1)
    in_proportion: Series[float] = pa.Field(ge=0)

    class Config:
        strict = True


@dataclass(frozen=True)
class FairnessNote:
    """A fairness rule that could not hold, or that cost expected worth.

    rule: "value_share_min" / "value_share_max" (rep_id's window share of lead worth ``share``
    outside its band, ``limit`` the end it missed), "top_tier_max" (rep_id holds ``share`` of
    the window's tier-A leads, above the cap ``limit``), "new_rep_quota" (reps in ramp-up hold
    ``share``, below the quota ``limit``; ``rep_ids`` names them), "top_tier_cap_unreachable" (only ``n_reps`` reps
    work, fewer than the cap ``limit`` needs: the matching caps at an even split instead), or "cost:<rule>" (that rule alone holds back
    ``cost`` of the ``total`` expected worth; ``n_reps`` working reps). Shares are fractions.
    """

    rule: str
    rep_id: str | None = None
    share: float | None = None
    limit: float | None = None
    cost: float | None = None
    total: float | None = None
    n_reps: int | None = None
    rep_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ManagerPlan:
    """Everything a manager reads about one run (frames follow the models above).

    explanations: reason_code and reason_params aligned with ``assignments`` (to render the
    reasons in another language); labels: rep_id -> how to call the rep (its name, with the id
    when two reps share a name); objective, band (value-share band), window_days,
    top_tier_cap (share), ramp_days, tier_quantiles: the settings the words refer to; price_of_fairness:
    expected worth given up for every fairness rule together (None when not computed).
    """

    run_date: str
    assignments: pd.DataFrame
    rep_summary: pd.DataFrame
    left_out: pd.DataFrame
    tier_by_tenure: pd.DataFrame
    gain: GainSplit
    fairness: list[FairnessNote]
    explanations: pd.DataFrame
    labels: dict[str, str]
    rep_signal: bool
    objective: str
    band: float
    window_days: int
    top_tier_cap: float
    ramp_days: int
    tier_quantiles: tuple[float, float]
    price_of_fairness: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Rows per action (every action present, 0 when none) and leads left out."""
        counts = self.assignments["action"].value_counts()
        out = {action: int(counts.get(action, 0)) for action in ACTIONS}
        out["left_out"] = len(self.left_out)
        return out


def rep_labels(reps: pd.DataFrame) -> dict[str, str]:
    """rep_id -> the rep's name (name and id when the name is missing or not unique)."""
    ids = reps[Reps.rep_id].astype(str)
    names = reps["name"] if "name" in reps else pd.Series(pd.NA, index=reps.index)
    names = names.astype("string").str.strip()
    repeated = names.duplicated(keep=False) | names.isna() | (names == "")
    label = names.where(~repeated, names.fillna("") + " (" + ids + ")")
    label = label.where(names.notna() & (names != ""), ids)
    return dict(zip(ids, label.astype(str), strict=True))


def tier_by_tenure(
    assignments: pd.DataFrame, reps_today: pd.DataFrame, ramp_days: int
) -> pd.DataFrame:
    """Top-tier leads placed today per tenure group (:class:`TierByTenure`): ramp-up (tenure
    below ``ramp_days``), up to a year, over a year. ``assignments``: lead_id, rep_id, tier."""
    reps = reps_today.set_index(Reps.rep_id)
    tenure = reps["tenure_days"].astype(float)
    group = pd.Series(
        np.select([tenure < ramp_days, tenure <= 365], TENURE_GROUPS[:2], TENURE_GROUPS[2]),
        index=reps.index,
    )
    working = reps["capacity"] > 0
    top = assignments.loc[
        (assignments["tier"] == "A") & assignments[Reps.rep_id].notna(), Reps.rep_id
    ]
    counts = top.map(group).value_counts().reindex(TENURE_GROUPS, fill_value=0)
    capacity = reps["capacity"].where(working, 0).groupby(group).sum()
    capacity = capacity.reindex(TENURE_GROUPS, fill_value=0).astype(float)
    total = int(counts.sum())
    frame = pd.DataFrame(
        {
            "group": list(TENURE_GROUPS),
            "reps": working.groupby(group).sum().reindex(TENURE_GROUPS, fill_value=0).astype(int),
            "top_tier_leads": counts.to_numpy().astype(int),
            "share": counts.to_numpy() / max(total, 1),
            "in_proportion": total * capacity.to_numpy() / max(capacity.sum(), 1.0),
        }
    ).reset_index(drop=True)
    return TierByTenure.validate(frame)


def manager_plan(
    fair: MatchResult,
    round_robin: MatchResult,
    leads: pd.DataFrame,
    reps_today: pd.DataFrame,
    config: MatchingConfig,
    *,
    run_date: str,
    window_days: int,
    too_old_leads: pd.DataFrame | None = None,
    rule_costs: Mapping[str, float] | None = None,
) -> ManagerPlan:
    """The plan as a manager reads it, from leadmatch's and round-robin's matching of one day.

    ``leads``: the leads placed (with previous_rep_id for reclaimed ones); ``reps_today``: the
    reps' day (rep_id, name, team, available, capacity, open_load, tenure_days);
    ``too_old_leads``: lead_id, created_at, age_days, previous_rep_id of the leads left out
    for age; ``rule_costs``: see :func:`fairness_costs`.
    """
    rep_signal = fair.diagnostics.rep_signal_used
    labels = rep_labels(reps_today)
    values = _values(leads, config)
    asg, explanations = _plan_rows(fair.assignments, leads, reps_today, run_date, values)
    asg = _figures_used(asg, values, rep_signal)
    explanations = _keep_names_its_rep(explanations, asg)
    asg = asg.assign(reason=render(explanations, ENGLISH, labels).to_numpy())
    fairness = config.fairness
    return ManagerPlan(
        run_date=run_date,
        assignments=PlanAssignments.validate(asg),
        rep_summary=PlanRepSummary.validate(_rep_rows(fair, asg, reps_today, values, rep_signal)),
        left_out=_left_out(too_old_leads, reps_today),
        tier_by_tenure=tier_by_tenure(
            fair.assignments, reps_today, fairness.new_rep_quota.ramp_days
        ),
        gain=split_gain(fair.assignments, round_robin.assignments, values, rep_signal=rep_signal),
        fairness=_fairness_notes(
            fair, config, rule_costs, plan_worth(fair.assignments, values, rep_signal=rep_signal)
        ),
        explanations=explanations,
        labels=labels,
        rep_signal=rep_signal,
        objective=config.objective,
        band=fairness.value_share.band,
        window_days=window_days,
        top_tier_cap=fairness.top_tier_cap.max_share,
        ramp_days=fairness.new_rep_quota.ramp_days,
        tier_quantiles=config.tier_quantiles,
        price_of_fairness=fair.diagnostics.price_of_fairness,
        notes=list(fair.diagnostics.notes),
    )


def _values(leads: pd.DataFrame, config: MatchingConfig) -> dict[str, float] | None:
    """lead_id -> value(l) under the revenue objective; None (every lead worth 1) for wins."""
    if config.objective == "conversions":
        return None
    return dict(
        zip(leads[Leads.lead_id].astype(str), lead_values(leads, config.objective), strict=True)
    )


_ACTION_ORDER = {"assign": 0, "reassign": 0, "keep": 1, "hold": 2}


def _plan_rows(
    matched: pd.DataFrame,
    leads: pd.DataFrame,
    reps_today: pd.DataFrame,
    run_date: str,
    values: Mapping[str, float] | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plan's rows (reason still empty) and their reason codes, sorted as a manager works:
    placed leads by rep, then kept leads by rep, then held leads; each by tier and lead."""
    names = reps_today.set_index(Reps.rep_id)["name"]
    if "previous_rep_id" in leads:
        previous_rep = matched[Leads.lead_id].map(leads.set_index(Leads.lead_id)["previous_rep_id"])
    else:
        previous_rep = pd.Series(pd.NA, index=matched.index)
    previous_rep = previous_rep.astype("str")
    reclaimed = previous_rep.notna() & (matched["action"] == "assign")
    action = matched["action"].mask(reclaimed, "reassign").astype("str")
    placed = action.isin(["assign", "reassign"])
    p_win = matched["p_win"].where(placed)
    frame = pd.DataFrame(
        {
            "run_date": run_date,
            Leads.lead_id: matched[Leads.lead_id].astype("str"),
            "action": action,
            Reps.rep_id: matched[Reps.rep_id].astype("str"),
            "rep_name": matched[Reps.rep_id].map(names).astype("str"),
            "previous_rep_id": previous_rep,
            "previous_rep_name": previous_rep.map(names).astype("str"),
            "tier": matched["tier"],
            "lead_win_chance_pct": 100 * matched["p_baseline"],
            "rep_win_chance_pct": 100 * p_win,
            "uplift_pts": 100 * (p_win - matched["p_baseline"]),
            "rank_for_lead": matched["rank_for_lead"].where(placed),
            "best_rep_id": matched["best_rep_id"].where(placed),
        }
    )
    if values is not None:
        frame["expected_revenue"] = matched[Leads.lead_id].map(values).astype(float) * p_win
    frame["reason"] = ""
    order = frame.assign(
        _group=action.map(_ACTION_ORDER),
        _tier=frame["tier"].map({"A": 0, "B": 1, "C": 2}),
    ).sort_values(
        ["_group", Reps.rep_id, "_tier", Leads.lead_id], kind="stable", na_position="last"
    )
    explanations = matched.loc[order.index, ["reason_code", "reason_params"]]
    return frame.loc[order.index].reset_index(drop=True), explanations.reset_index(drop=True)


def _figures_used(
    asg: pd.DataFrame, values: Mapping[str, float] | None, rep_signal: bool
) -> pd.DataFrame:
    """Without a reliable rep signal the plan does not use the model's per-rep chances: those
    columns stay empty and expected revenue counts the lead's round-robin chance."""
    if rep_signal:
        return asg
    placed = asg["action"].isin(["assign", "reassign"])
    out = asg.assign(
        rep_win_chance_pct=np.nan,
        uplift_pts=np.nan,
        rank_for_lead=pd.array([pd.NA] * len(asg), dtype="Int64"),
        best_rep_id=pd.array([pd.NA] * len(asg), dtype="str"),
    )
    if values is not None:
        value = asg[Leads.lead_id].map(values).astype(float)
        out["expected_revenue"] = (value * asg["lead_win_chance_pct"] / 100).where(placed)
    return out


def _keep_names_its_rep(explanations: pd.DataFrame, asg: pd.DataFrame) -> pd.DataFrame:
    """A keep row's reason names the rep it stays with, whatever parameters it came with."""
    params = []
    for text, action, rep in zip(
        explanations["reason_params"], asg["action"], asg[Reps.rep_id], strict=True
    ):
        if action == "keep":
            values = json.loads(text)
            values.setdefault(Reps.rep_id, rep)
            values.setdefault("days_without_contact", "several")
            text = json.dumps(values, sort_keys=True, ensure_ascii=False)
        params.append(text)
    return explanations.assign(reason_params=pd.array(params, dtype="str"))


def _rep_rows(
    fair: MatchResult,
    asg: pd.DataFrame,
    reps_today: pd.DataFrame,
    values: Mapping[str, float] | None,
    rep_signal: bool,
) -> pd.DataFrame:
    matched = fair.assignments.loc[fair.assignments[Reps.rep_id].notna()]
    chance = matched["p_win" if rep_signal else "p_baseline"]
    wins = chance.groupby(matched[Reps.rep_id]).sum()
    summary = reps_today[[Reps.rep_id, "name", "team", "available", "open_load"]].merge(
        fair.rep_summary, on=Reps.rep_id, how="left"
    )
    rep = summary[Reps.rep_id]
    kept = asg.loc[asg["action"] == "keep"].groupby(Reps.rep_id).size()
    moved_away = asg.loc[asg["action"] == "reassign"].groupby("previous_rep_id").size()
    assigned = summary["assigned"].fillna(0).astype(int)
    capacity = summary["capacity"].fillna(0).astype(int)
    tier_a = summary["tier_A"].fillna(0).astype(int)
    share = 100 * summary["window_value_share"]
    fair_share = 100 * summary["fair_share"].fillna(0.0)
    frame = pd.DataFrame(
        {
            Reps.rep_id: rep.astype("str"),
            "rep_name": summary["name"].astype("str"),
            "team": summary["team"].astype("str"),
            "available": summary["available"].astype(bool),
            "capacity": capacity,
            "assigned": assigned,
            "kept": rep.map(kept).fillna(0).astype(int),
            "tier_A": tier_a,
            "tier_B": summary["tier_B"].fillna(0).astype(int),
            "tier_C": summary["tier_C"].fillna(0).astype(int),
            "tier_A_in_proportion": tier_a.sum() * capacity / max(int(capacity.sum()), 1),
            "expected_wins": rep.map(wins).fillna(0.0).astype(float),
        }
    )
    if values is not None:
        worth = matched[Leads.lead_id].map(values).astype(float) * chance
        frame["expected_revenue"] = rep.map(worth.groupby(matched[Reps.rep_id]).sum()).fillna(0.0)
    open_after = summary["open_load"] + assigned - rep.map(moved_away).fillna(0).astype(int)
    frame = frame.assign(
        capacity_used_pct=100 * summary["capacity_use"],
        value_share_pct=share,
        fair_share_pct=fair_share,
        share_gap_pts=share - fair_share,
        open_load_after=open_after.clip(lower=0).astype(int),
    )
    return frame.sort_values(Reps.rep_id, kind="stable").reset_index(drop=True)


def _left_out(too_old: pd.DataFrame | None, reps_today: pd.DataFrame) -> pd.DataFrame:
    columns = [Leads.lead_id, "created_at", "age_days", "previous_rep_id"]
    if too_old is None:
        too_old = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    names = reps_today.set_index(Reps.rep_id)["name"]
    previous = too_old["previous_rep_id"].astype("str")
    frame = pd.DataFrame(
        {
            Leads.lead_id: too_old[Leads.lead_id].astype("str"),
            "created_at": pd.to_datetime(too_old["created_at"]),
            "age_days": too_old["age_days"].astype(int),
            "previous_rep_id": previous,
            "previous_rep_name": previous.map(names).astype("str"),
        }
    )
    frame = frame.sort_values(["created_at", Leads.lead_id], kind="stable").reset_index(drop=True)
    return LeftOut.validate(frame)


def _fairness_notes(
    fair: MatchResult,
    config: MatchingConfig,
    rule_costs: Mapping[str, float] | None,
    total: float,
) -> list[FairnessNote]:
    """The rules that did not hold (from the soft violations, as shares) and what they cost."""
    rules = config.fairness
    summary = fair.rep_summary.set_index(Reps.rep_id)
    working = int((summary["capacity"] > 0).sum())
    notes: list[FairnessNote] = []
    cap = rules.top_tier_cap
    if cap.enabled and 0 < working < math.ceil(1 / cap.max_share - 1e-9):
        notes.append(FairnessNote("top_tier_cap_unreachable", limit=cap.max_share, n_reps=working))
    band = rules.value_share.band
    for violation in fair.diagnostics.soft_violations:
        rep = violation.rep_id
        if violation.constraint in ("value_share_min", "value_share_max") and rep in summary.index:
            end = 1 - band if violation.constraint == "value_share_min" else 1 + band
            notes.append(
                FairnessNote(
                    violation.constraint,
                    rep_id=rep,
                    share=_finite(summary.at[rep, "window_value_share"]),
                    limit=float(summary.at[rep, "fair_share"]) * end,
                )
            )
        elif violation.constraint == "top_tier_max" and rep in summary.index:
            notes.append(
                FairnessNote(
                    "top_tier_max",
                    rep_id=rep,
                    share=_finite(summary.at[rep, "window_top_tier_share"]),
                    limit=max(cap.max_share, 1 / max(working, 1)),
                )
            )
        elif violation.constraint == "new_rep_quota":
            ramping = summary["ramp_up"] & (summary["capacity"] > 0)
            share = float(summary.loc[ramping, "window_top_tier_share"].fillna(0).sum())
            notes.append(
                FairnessNote(
                    "new_rep_quota",
                    share=share,
                    limit=rules.new_rep_quota.min_share,
                    rep_ids=tuple(str(r) for r in summary.index[ramping]),
                )
            )
    for rule, cost in sorted((rule_costs or {}).items()):
        if cost >= RULE_COST_LISTED * max(total, 1e-12):
            notes.append(FairnessNote(f"cost:{rule}", cost=cost, total=total, n_reps=working))
    return notes


def _finite(value: object) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def fairness_costs(
    candidates: pd.DataFrame,
    leads: pd.DataFrame,
    reps_today: pd.DataFrame,
    config: MatchingConfig,
    fair: MatchResult,
    **match_options: object,
) -> dict[str, float]:
    """Expected worth each enabled fairness rule holds back on its own: the plan with that rule
    switched off minus ``fair`` (the plan with every rule on, matched from the same inputs and
    ``match_options``). Costs one optimisation per rule, so it is only done when fairness as a
    whole gives up at least :data:`COST_SHARE_WORTH_EXPLAINING` of the plan's worth ({}
    otherwise)."""
    rep_signal = fair.diagnostics.rep_signal_used
    values = _values(leads, config)
    worth = plan_worth(fair.assignments, values, rep_signal=rep_signal)
    price = fair.diagnostics.price_of_fairness
    if price is None or price < COST_SHARE_WORTH_EXPLAINING * max(worth, 1e-12):
        return {}
    costs = {}
    for rule in FAIRNESS_RULES:
        setting = getattr(config.fairness, rule)
        if not setting.enabled:
            continue
        fairness = config.fairness.model_copy(
            update={rule: setting.model_copy(update={"enabled": False})}
        )
        without = match(
            candidates,
            leads,
            reps_today,
            config.model_copy(update={"fairness": fairness, "price_of_fairness": False}),
            policy="leadmatch",
            **match_options,
        )
        costs[rule] = max(
            plan_worth(without.assignments, values, rep_signal=rep_signal) - worth, 0.0
        )
    return costs
