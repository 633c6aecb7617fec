"""The feature slice of the leadmatch configuration (``LeadmatchConfig.features``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SegmentColumn = Literal["industry", "source", "product", "region"]


class FeatureConfig(BaseModel):
    """How lead, rep and pair features and the training target are built.

    Every feature of a pair (lead, rep, at) uses only what was known strictly before ``at``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    conversion_window_days: int = Field(
        90,
        gt=0,
        description=(
            "Target: a lead counts as won if it was won within this many days of its assignment. "
            "An assignment still open and younger than the window has no label yet and is left out "
            "of training; open (or won) later than the window counts as not won. Rep win rates use "
            "the same definition, so features and target agree."
        ),
    )
    history_days: int | None = Field(
        365,
        gt=0,
        description=(
            "Trailing window of the rep win rates (days of decided outcomes before the assignment); "
            "None uses the whole history."
        ),
    )
    recent_days: int = Field(
        30, gt=0, description="Window of the rep's recent volume: assignments in the last N days."
    )
    shrinkage_strength: float = Field(
        20.0,
        ge=0,
        description=(
            "Empirical-Bayes prior strength, in pseudo-outcomes, pulling a rep's win rate towards "
            "the team rate (and a team's towards the company rate). 0 means raw rates."
        ),
    )
    segment_shrinkage_strength: float = Field(
        10.0,
        ge=0,
        description=(
            "Prior strength, in pseudo-outcomes, pulling a rep's win rate in one segment (e.g. "
            "industry) towards what the rep's overall rate and the segment's rate predict."
        ),
    )
    account_shrinkage_strength: float = Field(
        5.0,
        ge=0,
        description=(
            "Prior strength, in pseudo-outcomes, pulling an account's win rate (its earlier "
            "leads' outcomes) towards the company rate."
        ),
    )
    segment_columns: tuple[SegmentColumn, ...] = Field(
        ("industry", "source", "product", "region"),
        description="Lead columns in which each rep's record is measured (pair features).",
    )
    skill_columns: tuple[SegmentColumn, ...] = Field(
        ("industry", "product"),
        description=(
            "Lead columns in which each rep's share of earlier leads is a feature (with region): "
            "the rep's experience as of each pair's time, instead of today's skills."
        ),
    )


class PrivacyConfig(BaseModel):
    """What is done with columns that look like personal data (``features.privacy``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow_columns: tuple[str, ...] = Field(
        (),
        description=(
            "Columns that look like personal data (an e-mail, phone or person-name column, by "
            "its name or its values) but may be kept, e.g. x_contact_channel or "
            "leads.x_contact_channel. By default every such column beyond the data contract is "
            "dropped when the data is loaded, so it is never a feature and never stored."
        ),
    )
