"""Hard eligibility: which rep may work which lead today, and why not.

:class:`Eligibility` encodes the day's leads and reps once, then answers for any arrays of
(lead, rep) positions with a :class:`Cause` per pair (``ELIGIBLE`` or the first rule that
excludes it), fully vectorised so it can screen the whole lead x rep cross product.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pandas as pd

from features.schemas import Leads, Reps
from features.tags import tag_sets, tag_values
from matching.config import EligibilityRules


class Cause(IntEnum):
    """Why a pair is not eligible, in the order the rules are checked."""

    ELIGIBLE = 0
    INACTIVE = 1
    ABSENT = 2
    EXCLUDED = 3
    PREVIOUS_REP = 4
    PINNED_ELSEWHERE = 5
    ACCOUNT_ELSEWHERE = 6
    REGION = 7
    SKILLS = 8
    LANGUAGE = 9

    @property
    def label(self) -> str:
        return self.name.lower()


def effective_capacity(reps: pd.DataFrame) -> np.ndarray:
    """(R,) leads each rep can still take today: 0 unless active and available, and never
    more than ``max_open_leads - open_load`` (rounded down) when the rep has an open-lead limit.

    ``reps``: capacity, active, available, open_load (a count, or an expected load such as 7.2
    open leads in a backtest) and optionally max_open_leads (nullable: no limit). The one
    definition of a rep's room today, for the matching and for counting its violations."""
    capacity = reps["capacity"].to_numpy(dtype=np.int64).copy()
    working = reps["active"].to_numpy(dtype=bool) & reps["available"].to_numpy(dtype=bool)
    capacity[~working] = 0
    if "max_open_leads" in reps:
        limit = reps["max_open_leads"].astype("Float64").to_numpy(dtype=float, na_value=np.inf)
        room = np.maximum(0.0, limit - reps["open_load"].to_numpy(dtype=float))
        capacity = np.minimum(capacity, room).astype(np.int64)
    return capacity


def _membership(rep_tags: list[frozenset[str]], lead_values: list[pd.Series]):
    """Vocabulary codes of the lead values and a (R, V) bool matrix of the reps' tags (both
    compared by :func:`features.tags.tag`)."""
    vocab: dict[str, int] = {}
    for tags in rep_tags:
        for t in sorted(tags):
            vocab.setdefault(t, len(vocab))
    matrix = np.zeros((len(rep_tags), max(1, len(vocab))), dtype=bool)
    for r, tags in enumerate(rep_tags):
        matrix[r, [vocab[t] for t in tags]] = True
    codes = []
    for values in lead_values:
        normed = tag_values(values)
        present = normed.notna().to_numpy()
        code = normed.map(lambda v: vocab.get(v, -1) if v is not None else -1).to_numpy(
            dtype=np.int64
        )
        codes.append((present, code))
    return codes, matrix


@dataclass(frozen=True)
class Eligibility:
    """The day's eligibility rules, encoded for vectorised checks.

    Build with :meth:`build`; ``leads`` and ``reps`` positions are those of the frames given
    there. ``pin_rep`` and ``owner_rep`` hold, per lead, the position of the pinned rep and of
    the account owner who works today (-1 when none).
    """

    rules: EligibilityRules
    working: np.ndarray
    active: np.ndarray
    lead_region: np.ndarray
    rep_region: np.ndarray
    skill_codes: list[tuple[np.ndarray, np.ndarray]]
    skill_matrix: np.ndarray
    generalist: np.ndarray
    language_code: tuple[np.ndarray, np.ndarray]
    language_matrix: np.ndarray
    speaks_any: np.ndarray
    excluded_keys: np.ndarray
    previous_rep: np.ndarray
    pin_rep: np.ndarray
    owner_rep: np.ndarray

    @classmethod
    def build(
        cls,
        leads: pd.DataFrame,
        reps: pd.DataFrame,
        rules: EligibilityRules,
        *,
        rep_index: pd.Index,
        pins: pd.DataFrame | None = None,
        exclusions: pd.DataFrame | None = None,
        account_owners: pd.DataFrame | None = None,
    ) -> Eligibility:
        """Encode validated ``leads`` and ``reps`` (``rep_index``: rep_id -> position)."""
        n, R = len(leads), len(reps)
        active = reps["active"].to_numpy(dtype=bool)
        working = active & reps["available"].to_numpy(dtype=bool)
        lead_index = pd.Index(leads[Leads.lead_id])

        def column(frame: pd.DataFrame, name: str) -> pd.Series:
            return frame[name] if name in frame else pd.Series([None] * len(frame), dtype=object)

        regions = pd.concat(
            [tag_values(column(leads, "region")), tag_values(column(reps, "region"))]
        )
        region_codes = pd.factorize(regions, use_na_sentinel=True)[0]
        skill_codes, skill_matrix = _membership(
            tag_sets(column(reps, "skills")), [column(leads, f) for f in rules.skill_fields]
        )
        (language_code,), language_matrix = _membership(
            tag_sets(column(reps, "languages")), [column(leads, "language")]
        )
        excluded = np.zeros(0, dtype=np.int64)
        if exclusions is not None and len(exclusions):
            li = lead_index.get_indexer(exclusions[Leads.lead_id])
            ri = rep_index.get_indexer(exclusions[Reps.rep_id])
            known = (li >= 0) & (ri >= 0)
            excluded = np.unique(li[known] * max(R, 1) + ri[known])
        previous = np.full(n, -1)
        if rules.exclude_previous_rep and "previous_rep_id" in leads:
            prev = leads["previous_rep_id"]
            previous = np.where(prev.notna(), rep_index.get_indexer(prev.fillna("")), -1)
        pin_rep = np.full(n, -1)
        if pins is not None and len(pins):
            pin_rep[lead_index.get_indexer(pins[Leads.lead_id])] = rep_index.get_indexer(
                pins[Reps.rep_id]
            )
        owner_rep = np.full(n, -1)
        if rules.account_continuity and account_owners is not None and "account_id" in leads:
            owners = account_owners.set_index("account_id")[Reps.rep_id]
            owner_id = leads["account_id"].map(owners)
            owner = np.where(owner_id.notna(), rep_index.get_indexer(owner_id.fillna("")), -1)
            # continuity only binds when the owner works today and may take this lead
            ok = owner >= 0
            ok[ok] &= working[owner[ok]] & (owner[ok] != previous[ok])
            keys = np.arange(n) * max(R, 1) + owner
            ok &= ~np.isin(keys, excluded)
            owner_rep = np.where(ok, owner, -1)
        return cls(
            rules=rules,
            working=working,
            active=active,
            lead_region=region_codes[:n],
            rep_region=region_codes[n:],
            skill_codes=skill_codes,
            skill_matrix=skill_matrix,
            generalist=~skill_matrix.any(axis=1),
            language_code=language_code,
            language_matrix=language_matrix,
            speaks_any=language_matrix.any(axis=1),
            excluded_keys=excluded,
            previous_rep=previous,
            pin_rep=pin_rep,
            owner_rep=owner_rep,
        )

    def causes(self, lead: np.ndarray, rep: np.ndarray, *, with_pins: bool = True) -> np.ndarray:
        """(J,) int8 :class:`Cause` of each (lead, rep) pair (0 = eligible).

        ``with_pins=False`` ignores pins and account continuity (to check a pin itself).
        """
        rules = self.rules
        out = np.zeros(len(lead), dtype=np.int8)

        def mark(mask: np.ndarray, cause: Cause) -> None:
            out[(out == 0) & mask] = cause

        mark(~self.active[rep], Cause.INACTIVE)
        mark(~self.working[rep], Cause.ABSENT)
        if len(self.excluded_keys):
            mark(np.isin(lead * len(self.working) + rep, self.excluded_keys), Cause.EXCLUDED)
        mark(self.previous_rep[lead] == rep, Cause.PREVIOUS_REP)
        owner = np.full(len(lead), False)
        if with_pins:
            pin = self.pin_rep[lead]
            mark((pin >= 0) & (pin != rep), Cause.PINNED_ELSEWHERE)
            owner_of = np.where(pin >= 0, -1, self.owner_rep[lead])
            mark((owner_of >= 0) & (owner_of != rep), Cause.ACCOUNT_ELSEWHERE)
            # the account owner keeps the account even outside the rules below
            owner = owner_of == rep
        if rules.region:
            lr, rr = self.lead_region[lead], self.rep_region[rep]
            mark((lr >= 0) & (rr >= 0) & (lr != rr) & ~owner, Cause.REGION)
        if rules.skills and self.skill_codes:
            mark(~self._skill_ok(lead, rep) & ~owner, Cause.SKILLS)
        if rules.language:
            present, code = self.language_code
            speaks = self.language_matrix[rep, np.maximum(code[lead], 0)] & (code[lead] >= 0)
            fails = present[lead] & self.speaks_any[rep] & ~speaks
            mark(fails & ~owner, Cause.LANGUAGE)
        return out

    def _skill_ok(self, lead: np.ndarray, rep: np.ndarray) -> np.ndarray:
        """Skill rule per pair: a generalist rep, or the lead's skill fields found in the
        rep's skills ('any': one of the non-empty fields, 'all': every non-empty field)."""
        any_mode = self.rules.skill_match == "any"
        has_field = np.zeros(len(lead), dtype=bool)
        result = np.zeros(len(lead), dtype=bool) if any_mode else np.ones(len(lead), dtype=bool)
        for present, code in self.skill_codes:
            p, c = present[lead], code[lead]
            hit = p & (c >= 0) & self.skill_matrix[rep, np.maximum(c, 0)]
            has_field |= p
            result = (result | hit) if any_mode else (result & (hit | ~p))
        return self.generalist[rep] | ~has_field | result
