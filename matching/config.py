"""The matching slice of the leadmatch configuration (``LeadmatchConfig.matching``).

Every field has a documented default, so ``MatchingConfig()`` is a valid configuration. Each
eligibility rule and each fairness constraint can be switched off on its own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SkillField = Literal["industry", "product", "source", "region"]


Objective = Literal["conversions", "expected_value"]
"""What a lead is worth to the matching: 1 (conversions) or its expected_value."""


class _Slice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EligibilityRules(_Slice):
    """Hard rules: a pair that breaks one is never assigned (inactive or absent reps never are).

    A rule only restricts where both sides carry the information: a lead with no region, or a
    rep with no skills or no languages, is not excluded by that rule. Regions, skills and
    languages compare as :func:`features.tags.tag` does: ignoring case (Unicode case folding),
    surrounding spaces and full-width forms.
    """

    region: bool = Field(False, description="The lead's region must be the rep's region.")
    skills: bool = Field(
        False,
        description=(
            "The lead's values in `skill_fields` must be among the rep's ';'-separated skills "
            "(see `skill_match`); a rep with no skills counts as a generalist."
        ),
    )
    skill_fields: tuple[SkillField, ...] = Field(
        ("industry", "product"), description="Lead columns looked up in the rep's skills."
    )
    skill_match: Literal["any", "all"] = Field(
        "any",
        description=(
            "'any': one of the lead's skill fields in the rep's skills is enough; 'all': every "
            "non-empty skill field must be."
        ),
    )
    language: bool = Field(
        True, description="The lead's language must be among the rep's ';'-separated languages."
    )
    exclude_previous_rep: bool = Field(
        True,
        description="A reclaimed lead (with a previous_rep_id) never goes back to that rep.",
    )
    account_continuity: bool = Field(
        True,
        description=(
            "A lead of an account that a rep already owns (the caller's account_owners) goes to "
            "that rep when the rep works today; otherwise the lead is matched as usual."
        ),
    )


class ValueShareRule(_Slice):
    """Each rep's share of the window's lead value stays near its capacity-proportional share.

    The value a rep receives is ``value(l) * b(l)`` summed over its leads: what the leads are
    worth under the baseline policy, whoever works them (so a skilled rep is not held back for
    being skilled). Over the window (history plus today) the rep's share must lie in
    ``fair_share * (1 - band)`` .. ``fair_share * (1 + band)``, where fair_share is the rep's
    share of the window's capacity.
    """

    enabled: bool = Field(True, description="Switch the value-share band on or off.")
    band: float = Field(
        0.2, ge=0, lt=1, description="Relative half-width of the band around the fair share."
    )
    penalty: float = Field(
        30.0,
        gt=0,
        description=(
            "Expected value (wins or revenue, as the objective) given up to move one unit of "
            "lead value back inside the band. Moving a lead l of worth value(l) * b(l) to a rep "
            "below its floor pays when penalty * b(l) exceeds the p_win it loses against the "
            "best rep, and a whole lead often overshoots a miss that is a small part of its "
            "worth. In the simulator backtest (default world, 10 days) 1 left 64 band misses "
            "over the runs, 10 left 7 (each under 1% of a lead's worth) and 30 none, for about "
            "0.1% of expected wins."
        ),
    )


class NewRepQuota(_Slice):
    """Reps in their ramp-up period together receive at least a share of the top-tier leads.

    The share is of the window's tier-A leads (history plus today), and applies only on days
    when a ramping rep works. It cannot always be met: the ramping reps hold at most their
    capacity in tier-A leads, and the value band caps the value they may receive near their
    capacity share. Tier-A leads are the most valuable fifth of the day's leads (with the
    default tiers), so ramping reps with a small share of the capacity (below roughly a fifth
    of min_share, e.g. one new rep among fifty for 15%) cannot meet the quota without going
    above the band. The penalty is then the tie-breaker: with the defaults the band holds and
    the quota gives way, and the backtest reports such a shortfall as out of reach rather
    than as a miss (``evaluation.violations.out_of_reach``).
    """

    enabled: bool = Field(True, description="Switch the new-rep quota on or off.")
    ramp_days: int = Field(90, gt=0, description="A rep with tenure below this is ramping up.")
    min_share: float = Field(
        0.15, ge=0, le=1, description="Minimum share of the window's top-tier leads they receive."
    )
    penalty: float = Field(
        1.0,
        gt=0,
        description=(
            "Penalty per top-tier lead short of the quota, in units of the mean baseline value "
            "of today's top-tier leads. Below value_share.penalty, so that a ramping rep is not "
            "taken above its value band to meet the quota."
        ),
    )


class TopTierCap(_Slice):
    """No rep receives more than a share of the top-tier leads."""

    enabled: bool = Field(True, description="Switch the top-tier cap on or off.")
    max_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description=(
            "Maximum share of the window's top-tier leads any one rep receives. With fewer "
            "than 1 / max_share reps working it cannot hold, and the cap is an even split "
            "instead (1 / working reps), so a small team is not held back from its best leads."
        ),
    )
    penalty: float = Field(
        1.0,
        gt=0,
        description=(
            "Penalty per top-tier lead above the cap, in units of the mean baseline value of "
            "today's top-tier leads."
        ),
    )


class FairnessConstraints(_Slice):
    """Soft constraints: violations are penalised in the objective and reported, never fatal.

    All are measured over a rolling window: the caller passes what each rep received on the
    previous days of the window (``history``), and the constraints apply to window totals.
    """

    value_share: ValueShareRule = Field(default_factory=ValueShareRule)
    new_rep_quota: NewRepQuota = Field(default_factory=NewRepQuota)
    top_tier_cap: TopTierCap = Field(default_factory=TopTierCap)

    @property
    def any_enabled(self) -> bool:
        """True when at least one fairness constraint is switched on."""
        return self.value_share.enabled or self.new_rep_quota.enabled or self.top_tier_cap.enabled

    def disabled(self) -> FairnessConstraints:
        """The same settings with every constraint switched off (the "no_fairness" policy)."""
        return FairnessConstraints(
            value_share=self.value_share.model_copy(update={"enabled": False}),
            new_rep_quota=self.new_rep_quota.model_copy(update={"enabled": False}),
            top_tier_cap=self.top_tier_cap.model_copy(update={"enabled": False}),
        )


class SolverSettings(_Slice):
    """How the optimiser solves (``matching.optimiser.Optimiser``).

    Every phase stops on a work limit (simplex iterations, L-BFGS iterations, branch-and-bound
    nodes, local-search rounds), never on the clock, so the same day gives the same plan on a
    fast, slow or busy machine. ``time_limit_seconds`` is a safety net only: when it stops a
    phase first, the answer depends on the machine, and the run says so
    (``MatchDiagnostics.limits_reached`` and a note).
    """

    time_limit_seconds: float = Field(
        600.0,
        gt=0,
        description=(
            "Safety net: wall-clock limit for one optimisation, well above what the work "
            "limits take. When it stops a phase, the best assignment found so far is returned "
            "with its gap, and the diagnostics say that the plan may differ on another "
            "machine."
        ),
    )
    mip_rel_gap: float = Field(
        1e-3,
        ge=0,
        lt=1,
        description=(
            "Relative gap to the bound (LP or Lagrangian dual) at which a solve counts as "
            "optimal; the local search and the mixed-integer steps stop there too."
        ),
    )
    lp_iterations_per_row: float = Field(
        10.0,
        gt=0,
        description=(
            "Simplex iterations allowed to the LP phase (the first LP and its re-solves after "
            "pricing together), per row of the LP; they typically need 2 to 3. When the limit "
            "stops the first LP, the dual's greedy choice plus the local search is "
            "returned with its gap, and when it stops a re-solve, the last LP's solution."
        ),
    )
    dual_iterations: int = Field(
        400,
        ge=1,
        description=(
            "L-BFGS iterations per temperature of the smoothed Lagrangian dual (large problems "
            "only); it usually stops on its own tolerance after 50 to 150."
        ),
    )
    local_search_rounds: int = Field(
        100,
        ge=1,
        description=(
            "Rounds of the local search (each applies the best gaining moves and swaps that "
            "touch disjoint reps) per start; it usually stops on its own after fewer than 10."
        ),
    )
    repair_mip_nodes: int = Field(
        50,
        ge=0,
        description=(
            "Branch-and-bound nodes of the MIP over the leads the LP left fractional (run "
            "only when the local search misses mip_rel_gap); 0 switches it off."
        ),
    )
    full_mip_nodes: int = Field(
        100,
        ge=0,
        description=(
            "Branch-and-bound nodes of the MIP over every pair, run on problems of at most "
            "full_mip_max_pairs candidate pairs that still miss mip_rel_gap; 0 switches it off."
        ),
    )
    full_mip_max_pairs: int = Field(
        2_000,
        ge=0,
        description="Largest problem (candidate pairs) that gets the MIP over every pair.",
    )
    decompose_above_pairs: int = Field(
        50_000,
        ge=0,
        description=(
            "Above this many candidate pairs, the problem is split into the connected "
            "components of its candidate graph (when every lead can be assigned) and the "
            "leads that clearly belong to one rep are fixed by the smoothed dual first."
        ),
    )
    contested_share: float = Field(
        0.05,
        gt=0,
        le=1,
        description=(
            "Share of leads (those with the smallest dual margins) left free for the LP "
            "when the dual fixes leads, at least."
        ),
    )
    threads: int = Field(
        1,
        ge=1,
        description=(
            "Threads HiGHS may use. HiGHS sets up its thread pool at the first solve in a "
            "process and then refuses any other count, so keep one value per process."
        ),
    )
    dual_threads: int = Field(
        2,
        ge=1,
        description=(
            "Threads for large problems: the smoothed dual splits its leads over them, and a "
            "problem that falls apart into components (regions) solves that many components "
            "side by side. Results are combined in a fixed order, so timing never changes "
            "the answer."
        ),
    )


class MatchingConfig(_Slice):
    """How the day's leads are matched to reps: objective, candidates, tiers, rules, fairness."""

    objective: Objective = Field(
        "conversions",
        description=(
            "'conversions': every lead is worth 1 (maximise expected wins); 'expected_value': "
            "a lead is worth its expected_value (maximise expected revenue; missing values are "
            "filled with the median of the day's known values)."
        ),
    )
    baseline: Literal["eligible_mean", "capacity_weighted_mean"] = Field(
        "eligible_mean",
        description=(
            "Baseline win probability b(l) that uplift is measured against: the mean over the "
            "lead's eligible reps who work today (round-robin), or that mean weighted by "
            "today's capacity (capacity-weighted round-robin)."
        ),
    )
    top_k: int = Field(
        20, ge=1, description="Candidate reps kept per lead for the optimiser, by uplift."
    )
    tier_quantiles: tuple[float, float] = Field(
        (0.5, 0.8),
        description=(
            "Quantiles of the day's baseline values value(l) * b(l) at which tier B and tier A "
            "start (C below the first)."
        ),
    )
    eligibility: EligibilityRules = Field(default_factory=EligibilityRules)
    fairness: FairnessConstraints = Field(default_factory=FairnessConstraints)
    solver: SolverSettings = Field(default_factory=SolverSettings)
    price_of_fairness: bool = Field(
        True,
        description=(
            "Also solve without fairness and report the expected wins (or value) given up for "
            "fairness (costs a second optimisation)."
        ),
    )

    @model_validator(mode="after")
    def _check_quantiles(self) -> MatchingConfig:
        low, high = self.tier_quantiles
        if not 0 < low <= high < 1:
            raise ValueError(
                f"tier_quantiles must satisfy 0 < B start <= A start < 1, got {self.tier_quantiles}"
            )
        return self
