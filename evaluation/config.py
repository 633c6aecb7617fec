"""The evaluation slice of the leadmatch configuration (``LeadmatchConfig.off_policy``): how
off-policy estimates are computed and when they count as identified."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class OffPolicyConfig(BaseModel):
    """How off-policy estimates are computed and when they count as identified."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_bootstrap: int = Field(
        1000, ge=50, description="Bootstrap resamples (of lead clusters) behind every interval."
    )
    level: float = Field(0.95, gt=0.5, lt=1, description="Confidence level of the intervals.")
    seed: int = Field(0, ge=0, description="Seed of the bootstrap.")
    min_ess: float = Field(
        50.0,
        ge=0,
        description=(
            "Fewest effective leads (Kish effective sample size of the importance weights) for an "
            "off-policy estimate to count as identified (below 50 the bootstrap intervals were "
            "too narrow in the estimator check)."
        ),
    )
    min_agreement: float = Field(
        0.01,
        ge=0,
        le=1,
        description=(
            "Least share of leads on which the target policy agrees with the history "
            "(mean probability the target gives the logged rep) for an estimate to count."
        ),
    )
    low_propensity: float = Field(
        0.01,
        gt=0,
        lt=1,
        description=(
            "Propensity below which a historical choice counts as rare: reported as the share of "
            "logged choices below it, and as the target's share of choices that the history "
            "(almost) never made."
        ),
    )
    max_unsupported_share: float = Field(
        0.10,
        ge=0,
        le=1,
        description=(
            "Largest share of the target's choices that may go to pairs the history chose with "
            "probability below low_propensity (checked when candidate propensities are known)."
        ),
    )
    propensity_floor: float = Field(
        0.01,
        gt=0,
        lt=1,
        description=(
            "Estimated propensities are clipped below at this value, which caps any weight at "
            "1 / floor; logged propensities are used as they are."
        ),
    )
    choice_alpha: float = Field(
        1.0, gt=0, description="L2 penalty of the propensity model (ChoiceModel.alpha)."
    )
