"""Why each lead went where it went: reason codes, their parameters and plain sentences.

Every reason text lives in a :class:`ReasonCatalogue` (templates keyed by reason code), so a
translation is one more catalogue: ``render(codes, params, catalogue)`` turns the
``reason_code`` and ``reason_params`` columns of an assignments frame into a sentence.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.schemas import Reps
from matching.day import Day
from matching.eligibility import Cause
from matching.fairness import Window


@dataclass(frozen=True)
class Plural:
    """A template whose wording follows a count parameter: ``one`` when ``params[count]`` is 1,
    ``other`` otherwise (a count that is not a number, e.g. "several", takes ``other``)."""

    count: str
    one: str
    other: str

    def pick(self, params: Mapping[str, object]) -> str:
        value = params.get(self.count)
        return self.one if isinstance(value, int | float) and value == 1 else self.other


Template = str | Plural

REASONS: dict[str, Template] = {
    "best_rep": "best expected win rate among available reps",
    "only_rep": "the only eligible rep",
    "pinned": "pinned to {rep_id} by a manager",
    "account_owner": "{rep_id} already handles account {account_id}",
    "no_rep_signal": "no reliable difference between reps: spreads lead value and load",
    "capacity": "{rank_ordinal} choice: {best_rep_id} is at capacity",
    "value_share": "{rank_ordinal} choice: {best_rep_id} already has its fair share of lead value",
    "value_share_min": "{rank_ordinal} choice: brings {rep_id} up to its fair share of lead value",
    "new_rep_quota": "{rank_ordinal} choice: new-rep quota of top-tier leads",
    "top_tier_cap": "{rank_ordinal} choice: {best_rep_id} reached the cap on top-tier leads",
    "tradeoff": "{rank_ordinal} choice: the better reps gain more on other leads",
    "round_robin": "round-robin turn",
    "weighted_round_robin": "capacity-weighted round-robin turn",
    "reclaimed": Plural(
        "days_without_contact",
        "reclaimed from {previous_rep_id} after 1 working day without contact",
        "reclaimed from {previous_rep_id} after {days_without_contact} working days without contact",
    ),
    "rep_left": "{previous_rep_id} has left the team",
    "keep": Plural(
        "days_without_contact",
        "stays with {rep_id}: no other rep can take it today; remind {rep_id} to make first "
        "contact (1 working day without contact)",
        "stays with {rep_id}: no other rep can take it today; remind {rep_id} to make first "
        "contact ({days_without_contact} working days without contact)",
    ),
    "hold_no_candidates": "held for tomorrow: no rep was scored for this lead",
    "hold_no_eligible": "held for tomorrow: no eligible rep ({why})",
    "hold_capacity": Plural(
        "n_eligible",
        "held for tomorrow: the only eligible rep is at capacity",
        "held for tomorrow: all {n_eligible} eligible reps are at capacity",
    ),
}
"""English templates by reason code; parameters in braces come from ``reason_params``."""

CAUSES: dict[str, str] = {
    "inactive": "{n} inactive",
    "absent": "{n} absent",
    "excluded": "{n} excluded",
    "previous_rep": "the previous rep",
    "pinned_elsewhere": "pinned to another rep",
    "account_elsewhere": "account owned by another rep",
    "region": "{n} in another region",
    "skills": "{n} without the skills",
    "language": "{n} without the language",
}
"""English phrases for the causes counted in ``why`` (hold_no_eligible)."""

REP_PARAMS = (Reps.rep_id, "best_rep_id", "previous_rep_id")
"""The reason parameters that name a rep (rendered with the rep's name when one is given)."""


def english_ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True)
class ReasonCatalogue:
    """Reason templates of one language.

    templates: by reason code (a :class:`Plural` where the wording follows a count); causes: by
    :class:`~matching.eligibility.Cause` label (with ``{n}``), joined into ``{why}``; ordinal:
    renders ``{rank_ordinal}`` from ``rank``.
    """

    templates: Mapping[str, Template]
    causes: Mapping[str, str]
    ordinal: Callable[[int], str]
    separator: str = "; "
    list_separator: str = ", "

    def render(
        self,
        codes: Sequence[str],
        params: Mapping[str, object],
        names: Mapping[str, str] | None = None,
    ) -> str:
        """The sentence for ``codes`` (in order) with ``params``; ``names`` (rep id -> how to
        call the rep) replaces the rep ids of :data:`REP_PARAMS`."""
        values = dict(params)
        if names:
            for key in REP_PARAMS:
                if key in values:
                    values[key] = names.get(str(values[key]), values[key])
        if "rank" in values:
            values["rank_ordinal"] = self.ordinal(int(values["rank"]))
        if "causes" in values:
            values["why"] = self.list_separator.join(
                self.causes[c].format(n=n) for c, n in dict(values["causes"]).items()
            )
        return self.separator.join(self._template(c, values).format(**values) for c in codes)

    def _template(self, code: str, values: Mapping[str, object]) -> str:
        template = self.templates[code]
        return template.pick(values) if isinstance(template, Plural) else template


ENGLISH = ReasonCatalogue(templates=REASONS, causes=CAUSES, ordinal=english_ordinal)


def render(
    assignments: pd.DataFrame,
    catalogue: ReasonCatalogue = ENGLISH,
    names: Mapping[str, str] | None = None,
) -> pd.Series:
    """The reason column of ``assignments`` rendered again with ``catalogue`` (e.g. a
    translation), from its reason_code and reason_params columns; ``names`` maps rep ids to
    how the sentence calls each rep (e.g. its name)."""
    return pd.Series(
        [
            catalogue.render(code.split(";"), json.loads(params), names)
            for code, params in zip(
                assignments["reason_code"], assignments["reason_params"], strict=True
            )
        ],
        index=assignments.index,
        dtype="str",
    )


_FAIRNESS_POLICIES = ("leadmatch",)
_ROTATIONS = ("round_robin", "weighted_round_robin")
_MAX_LISTED = 3
_TOL = 1e-9


def _days(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 1)


def _best_pair(lead: np.ndarray, p: np.ndarray, start: np.ndarray, has: np.ndarray) -> np.ndarray:
    """(n,) per lead the pair with the highest ``p`` (first in rep order on ties), -1 where
    ``has`` is False; pairs are in (lead, rep) order."""
    best = np.full(len(has), -1)
    if not has.any():
        return best
    top = np.full(len(has), np.inf)
    top[has] = np.maximum.reduceat(p, start[:-1][has])
    at_top = np.flatnonzero(p == top[lead])
    leads, first = np.unique(lead[at_top], return_index=True)
    best[leads] = at_top[first]
    return best


def explain(day: Day, choice: np.ndarray, policy: str, state: Window) -> pd.DataFrame:
    """Per lead (arrival order): rank_for_lead, best_rep_id, uplift_lost, reason_code,
    reason_params, reason, binding, for ``choice`` made by ``policy``."""
    n = day.n_leads
    eligible = day.eligible
    lead, rep, p = day.lead, day.rep, day.p
    chosen_p = (
        np.where(choice >= 0, p[np.maximum(choice, 0)], np.nan) if len(p) else np.full(n, np.nan)
    )
    better = eligible & (p > chosen_p[lead] + _TOL)
    rank = np.bincount(lead[better], minlength=n) + 1
    n_eligible = np.bincount(lead[eligible], minlength=n)
    start = day.lead_start
    best = _best_pair(lead, np.where(eligible, p, -np.inf), start, n_eligible > 0)
    full = state.used >= day.capacity
    # better reps that are full, listed best first, for the binding column
    full_better = np.flatnonzero(better & full[rep])
    full_better = full_better[np.lexsort((-p[full_better], lead[full_better]))]
    fb_start = np.searchsorted(lead[full_better], np.arange(n + 1))
    cause_counts: dict[int, dict[str, int]] = {}
    blocked = ~eligible & (n_eligible[lead] == 0)
    if blocked.any():
        counts = pd.crosstab(lead[blocked], day.cause[blocked])
        cause_counts = {
            int(k): {Cause(int(c)).label: int(v) for c, v in row.items() if v}
            for k, row in counts.iterrows()
        }
    has_pairs = np.diff(start) > 0
    t = state.terms
    fair = policy in _FAIRNESS_POLICIES
    top = day.tier == "A"
    previous = day.leads.get("previous_rep_id")
    waited = day.leads.get("days_without_contact")
    accounts = day.leads.get("account_id")
    rep_ids = day.rep_ids

    codes_out, params_out, reasons_out, binding_out = [], [], [], []
    for lead_pos in range(n):
        codes: list[str] = []
        params: dict[str, object] = {}
        binding: list[str] = []
        if previous is not None and pd.notna(previous.iloc[lead_pos]):
            codes.append("reclaimed")
            params["previous_rep_id"] = str(previous.iloc[lead_pos])
            days = waited.iloc[lead_pos] if waited is not None else np.nan
            params["days_without_contact"] = _days(days) if pd.notna(days) else "several"
        j = choice[lead_pos]
        b = best[lead_pos]
        if j < 0:
            if not has_pairs[lead_pos]:
                codes.append("hold_no_candidates")
            elif n_eligible[lead_pos] == 0:
                codes.append("hold_no_eligible")
                params["causes"] = cause_counts.get(lead_pos, {})
            else:
                codes.append("hold_capacity")
                params["n_eligible"] = int(n_eligible[lead_pos])
                mine = np.arange(start[lead_pos], start[lead_pos + 1])
                mine = mine[eligible[mine]]
                mine = mine[np.argsort(-p[mine], kind="stable")]
                binding += [f"capacity:{rep_ids[rep[k]]}" for k in mine[:_MAX_LISTED]]
                if len(mine) > _MAX_LISTED:
                    binding.append(f"+{len(mine) - _MAX_LISTED} more")
        else:
            r = rep[j]
            params[Reps.rep_id] = str(rep_ids[r])
            params["rank"] = int(rank[lead_pos])
            params["best_rep_id"] = str(rep_ids[rep[b]])
            if day.eligibility.pin_rep[lead_pos] == r:
                codes.append("pinned")
            elif day.eligibility.owner_rep[lead_pos] == r:
                codes.append("account_owner")
                params["account_id"] = str(accounts.iloc[lead_pos])
            elif policy in _ROTATIONS:
                codes.append(policy)
            elif not day.rep_signal:
                codes.append("no_rep_signal")
            elif n_eligible[lead_pos] == 1:
                codes.append("only_rep")
            elif rank[lead_pos] == 1:
                codes.append("best_rep")
            else:
                br = rep[b]
                e = day.lead_value[lead_pos]
                quota = fair and t.ramp_on and top[lead_pos] and day.ramp[r] and not day.ramp[br]
                quota = quota and state.ramp_top - 1 < state.quota - _TOL
                cap_blocks = (
                    fair and t.cap_on and top[lead_pos] and state.top[br] + 1 > state.top_cap + _TOL
                )
                high_blocks = fair and t.value_on and state.value[br] + e > state.high[br] + _TOL
                low_needs = fair and t.value_on and state.value[r] - e < state.low[r] - _TOL
                if quota:
                    codes.append("new_rep_quota")
                elif full[br]:
                    codes.append("capacity")
                elif cap_blocks:
                    codes.append("top_tier_cap")
                elif high_blocks:
                    codes.append("value_share")
                elif low_needs:
                    codes.append("value_share_min")
                else:
                    codes.append("tradeoff")
                listed = full_better[fb_start[lead_pos] : fb_start[lead_pos + 1]]
                binding += [f"capacity:{rep_ids[rep[k]]}" for k in listed[:_MAX_LISTED]]
                if len(listed) > _MAX_LISTED:
                    binding.append(f"+{len(listed) - _MAX_LISTED} more")
                if cap_blocks:
                    binding.append(f"top_tier_max:{rep_ids[br]}")
                if high_blocks:
                    binding.append(f"value_share_max:{rep_ids[br]}")
                if low_needs:
                    binding.append(f"value_share_min:{rep_ids[r]}")
                if quota:
                    binding.append("new_rep_quota")
        codes_out.append(";".join(codes))
        params_out.append(json.dumps(params, sort_keys=True, ensure_ascii=False))
        reasons_out.append(ENGLISH.render(codes, params))
        binding_out.append(";".join(binding))

    best_p = np.where(best >= 0, p[np.maximum(best, 0)], np.nan) if len(p) else np.full(n, np.nan)
    assigned = choice >= 0
    uplift_lost = np.where(assigned, day.value * (best_p - chosen_p), np.nan)
    if not day.rep_signal:
        uplift_lost = np.where(assigned, 0.0, np.nan)
    return pd.DataFrame(
        {
            "rank_for_lead": pd.Series(rank, dtype="Int64").where(assigned),
            "best_rep_id": pd.array(
                [str(rep_ids[rep[k]]) if k >= 0 else None for k in best], dtype="str"
            ),
            "uplift_lost": uplift_lost,
            "reason_code": pd.array(codes_out, dtype="str"),
            "reason_params": pd.array(params_out, dtype="str"),
            "reason": pd.array(reasons_out, dtype="str"),
            "binding": pd.array(binding_out, dtype="str"),
        }
    )
