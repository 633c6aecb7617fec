"""Matching: who works which lead today, and why. A pure library (no I/O, no model needed).

    from matching import MatchingConfig, candidate_pairs, match

    pairs = candidate_pairs(leads, reps_today, config)        # what is worth scoring
    pairs["p_win"] = model_scores(pairs)                       # the caller's pair model
    result = match(pairs, leads, reps_today, config, history=window, rep_signal=True)
    result.assignments      # one row per lead: assign/hold, rep, p_win, uplift, reason, ...
    result.rep_summary      # one row per rep: counts by tier, expected wins, shares
    result.diagnostics      # status, objective, bound, gap, seconds, soft violations, ...
    result.fairness         # FairnessReport: shares, Gini, hard and soft violations

``match(candidates, leads, reps_today, config, *, history=None, pins=None, exclusions=None,
account_owners=None, rep_signal=True, policy="leadmatch") -> MatchResult``

Inputs (pandera models in :mod:`matching.schemas`, validated on entry; a problem raises a
``ValueError`` naming the lead or rep):

- ``candidates``: lead_id, rep_id, p_win in [0, 1] (no NaN), one row per scored pair. Every
  pair a pin names must be there; pairs of reps who are absent or ineligible are allowed
  (they are screened out, and counted when a lead is held).
- ``leads``: lead_id plus the optional canonical columns: created_at (arrival order),
  region, industry, product, source, language, account_id, expected_value, and for a lead
  reclaimed from a rep who did not contact it, previous_rep_id and days_without_contact.
- ``reps_today``: rep_id, active, available, capacity (today), open_load, max_open_leads
  (nullable), tenure_days, skills, region, languages (``features.daily.rep_day``).
- ``history``: what each rep received on the previous days of the fairness window: rep_id,
  value_received, top_tier_received, capacity_days (sums over the days; the rep_summary
  columns value_received, top_tier_received and capacity of each day add up to it).
- ``pins`` (lead_id -> rep_id, the rep must be eligible), ``exclusions`` (lead_id, rep_id
  pairs never matched), ``account_owners`` (account_id -> rep_id, account continuity).
- ``rep_signal=False`` when the model found no reliable difference between reps: uplift is
  then zero and the matching only balances lead value and load (the diagnostics say so).

Policies, all with the same input and output: "round_robin", "weighted_round_robin"
(capacity-weighted), "greedy" (best rep with capacity, in arrival order), "no_fairness"
(the optimiser without fairness) and "leadmatch" (the optimiser with fairness; it also
reports the price of fairness when ``config.price_of_fairness``).

The objective, the eligibility rules, the fairness constraints and the optimiser are
described in :mod:`matching.config` and :mod:`matching.optimiser`; reason texts live in
:mod:`matching.explain` (``explain.render`` re-renders them with another catalogue).
"""

import importlib

# Exports are imported on first use, so reading the configuration (matching.config) does not
# load the optimiser stack: the CLI checks a config file before any heavy import.
_EXPORTS = {
    "MatchingConfig": "matching.config",
    "POLICIES": "matching.engine",
    "MatchDiagnostics": "matching.engine",
    "MatchResult": "matching.engine",
    "candidate_pairs": "matching.engine",
    "match": "matching.engine",
    "ENGLISH": "matching.explain",
    "REASONS": "matching.explain",
    "ReasonCatalogue": "matching.explain",
    "render": "matching.explain",
    "FairnessReport": "matching.fairness",
    "SoftViolation": "matching.fairness",
    "fairness_metrics": "matching.fairness",
    "AssignmentProblem": "matching.optimiser",
    "Optimiser": "matching.optimiser",
    "Solution": "matching.optimiser",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'matching' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
