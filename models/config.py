"""The model slice of the leadmatch configuration (``LeadmatchConfig.model``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LightGBMParams(BaseModel):
    """LightGBM hyperparameters of the pair model (and of the lead-only baseline)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_estimators: int = Field(
        2000, gt=0, description="Most boosting rounds (early stopping ends sooner)."
    )
    learning_rate: float = Field(0.03, gt=0, le=1, description="Shrinkage per boosting round.")
    num_leaves: int = Field(15, ge=2, description="Most leaves per tree.")
    min_child_samples: int = Field(200, ge=1, description="Fewest pairs in a leaf.")
    subsample: float = Field(0.8, gt=0, le=1, description="Share of pairs used per round.")
    subsample_freq: int = Field(1, ge=0, description="Resample pairs every N rounds (0: never).")
    colsample_bytree: float = Field(0.8, gt=0, le=1, description="Share of features per tree.")
    reg_lambda: float = Field(1.0, ge=0, description="L2 penalty on leaf values.")
    cat_smooth: float = Field(20.0, ge=0, description="Smoothing of categorical splits.")
    early_stopping_rounds: int | None = Field(
        50,
        gt=0,
        description=(
            "Stop when the log loss on the calibration slice has not improved for this many "
            "rounds (None: always grow n_estimators trees)."
        ),
    )
    n_jobs: int = Field(2, description="Threads LightGBM may use.")


class ModelConfig(BaseModel):
    """How the pair model is trained, calibrated, evaluated and tested for a rep signal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lightgbm: LightGBMParams = Field(default_factory=LightGBMParams)
    calibration: Literal["auto", "isotonic", "platt"] = Field(
        "auto",
        description=(
            "Map from the trees' scores to probabilities, fitted on the calibration slice: "
            "isotonic regression, Platt scaling (a logistic fit on the trees' log-odds), or "
            "auto: isotonic when the slice holds at least `isotonic_min_pairs` pairs and, fitted "
            "on the slice's earlier 70%, isotonic predicts its latest 30% better (log loss) than "
            "Platt; else Platt (two parameters, which a small slice can still estimate)."
        ),
    )
    isotonic_min_pairs: int = Field(
        1000,
        ge=2,
        description=(
            "Fewest calibration pairs for `calibration: auto` to consider isotonic regression "
            "(it overfits smaller slices; scikit-learn's guide gives about 1,000)."
        ),
    )
    calibration_fraction: float = Field(
        0.2,
        gt=0,
        lt=1,
        description=(
            "Most recent share of the training pairs (by assignment time) held back from the "
            "trees to fit the calibration (and to stop boosting early)."
        ),
    )
    test_fraction: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Most recent share of the labelled pairs held out for evaluation.",
    )
    min_category_count: int = Field(
        20,
        ge=1,
        description=(
            "Category values seen fewer times at fit time share the 'unknown' code, as do "
            "values never seen (so that code is learned, not arbitrary)."
        ),
    )
    min_outcomes: int = Field(
        200, ge=2, description="Fewest labelled (decided) pairs needed to train at all."
    )
    min_outcomes_per_class: int = Field(
        20, ge=1, description="Fewest wins, and fewest non-wins, needed to train."
    )
    probability_floor: float = Field(
        1e-4,
        gt=0,
        lt=0.5,
        description="Probabilities are clipped to [floor, 1 - floor] so a log loss stays finite.",
    )
    ece_bins: int = Field(
        10, ge=2, description="Equal-count bins of the expected calibration error and the plot."
    )
    tenure_bands_days: tuple[int, ...] = Field(
        (90, 365, 1095),
        description="Edges (days) of the rep tenure bands used to report calibration per group.",
    )
    n_bootstrap: int = Field(
        1000, ge=100, description="Bootstrap resamples (of leads) of the rep-signal test."
    )
    signal_level: float = Field(
        0.95, gt=0.5, lt=1, description="Confidence level of the rep-signal interval."
    )
    seed: int = Field(0, description="Seed of LightGBM's sampling and of the bootstrap.")
