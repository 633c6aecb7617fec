"""The frames a backtest hands out, as pandera models: the contract of its files.

``backtest.csv`` (:class:`PolicyTable`), ``runs.csv`` (:class:`PolicyRuns`),
``fairness_curve.csv`` (:class:`FairnessCurve`), ``rep_shares.csv`` (:class:`RepShares`),
``soft_violations.csv`` (:class:`SoftViolations`) and, on real history, ``off_policy.csv``
(:class:`evaluation.off_policy.results.OffPolicyEstimates`). ``pipelines/backtest.py`` checks
each frame when it writes the file and again when it reads one back
(:data:`BACKTEST_FILES` maps the file names to their models).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

from evaluation.frame_model import FileFrame
from evaluation.off_policy.results import OffPolicyEstimates
from evaluation.policies import POLICIES
from features.schemas import Reps

_SHARE = {"ge": 0, "le": 1}


class PolicyTable(FileFrame):
    """``backtest.csv``: one row per policy of :data:`~evaluation.policies.POLICIES`, in order.

    expected_wins / expected_value: sums of the true P(win) (times the lead's expected value)
    of the policy's placements; lift_vs_round_robin: expected wins over round-robin's, minus 1;
    oracle_lift_captured: the policy's gain over round-robin as a share of the oracle's (empty
    when the oracle gains nothing); price_of_fairness: expected wins given up for fairness
    (leadmatch and the oracle only); hard_violations, soft_violations and
    unreachable_violations: counts over the runs (see :class:`PolicyRuns`);
    max_value_share_deviation: the largest |value share / fair share - 1| of any rep over the
    whole replay; ramp_top_tier_share: ramping reps' share of the tier-A leads;
    max_top_tier_share: the largest rep share of them (both empty without tier-A leads);
    gini: of the value received per unit of capacity; placed; held_at_end.
    """

    policy: Series[str] = pa.Field()
    expected_wins: Series[float] = pa.Field(ge=0)
    expected_value: Series[float] = pa.Field(ge=0)
    lift_vs_round_robin: Series[float] = pa.Field(nullable=True)
    oracle_lift_captured: Series[float] = pa.Field(nullable=True)
    price_of_fairness: Series[float] = pa.Field(nullable=True)
    hard_violations: Series[int] = pa.Field(ge=0)
    soft_violations: Series[int] = pa.Field(ge=0)
    unreachable_violations: Series[int] = pa.Field(ge=0)
    max_value_share_deviation: Series[float] = pa.Field(ge=0)
    ramp_top_tier_share: Series[float] = pa.Field(nullable=True, **_SHARE)
    max_top_tier_share: Series[float] = pa.Field(nullable=True, **_SHARE)
    gini: Series[float] = pa.Field(**_SHARE)
    placed: Series[int] = pa.Field(ge=0)
    held_at_end: Series[int] = pa.Field(ge=0)

    @pa.dataframe_check(error="the policies are those of POLICIES, in that order")
    def _policies_in_order(cls, frame: pd.DataFrame) -> bool:
        return frame["policy"].tolist() == list(POLICIES)

    @pa.dataframe_check(error="round_robin is the base: no lift over itself")
    def _base_has_no_lift(cls, frame: pd.DataFrame) -> pd.Series:
        lift = frame["lift_vs_round_robin"].to_numpy(dtype=float, na_value=np.nan)
        return pd.Series(
            (frame["policy"] != "round_robin").to_numpy() | np.isnan(lift) | (lift == 0),
            index=frame.index,
        )

    @pa.dataframe_check(error="only leadmatch and the oracle have a price of fairness")
    def _price_of_fairness_rows(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["price_of_fairness"].isna() | frame["policy"].isin(["leadmatch", "oracle"])


class PolicyRuns(FileFrame):
    """``runs.csv``: one row per policy and run (see :class:`evaluation.replay.PolicyRun`).

    pending: leads the policy had to place; placed; hard_violations, soft_violations and
    unreachable_violations of the run; max_share_deviation: the largest |window value share /
    fair share - 1| over the working reps; status: the solver's ("empty": nothing to place).
    """

    policy: Series[str] = pa.Field()
    run_at: Series[pd.Timestamp] = pa.Field()
    pending: Series[int] = pa.Field(ge=0)
    placed: Series[int] = pa.Field(ge=0)
    hard_violations: Series[int] = pa.Field(ge=0)
    soft_violations: Series[int] = pa.Field(ge=0)
    unreachable_violations: Series[int] = pa.Field(ge=0)
    max_share_deviation: Series[float] = pa.Field(ge=0)
    status: Series[str] = pa.Field()

    @pa.dataframe_check(error="a run places no more leads than it had pending")
    def _placed_within_pending(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["placed"] <= frame["pending"]

    @pa.dataframe_check(error="a policy runs once a day")
    def _one_run_a_day(cls, frame: pd.DataFrame) -> pd.Series:
        return ~frame.duplicated(["policy", "run_at"])


class FairnessCurve(FileFrame):
    """``fairness_curve.csv``: leadmatch's expected wins per value-share band width (``inf``:
    no fairness at all), with its largest value-share deviation and soft violations."""

    policy: Series[str] = pa.Field(unique=True)
    band: Series[float] = pa.Field(gt=0, unique=True)
    expected_wins: Series[float] = pa.Field(ge=0)
    max_value_share_deviation: Series[float] = pa.Field(ge=0)
    soft_violations: Series[int] = pa.Field(ge=0)

    @pa.check("band", element_wise=False, error="bands run from the narrowest to none (inf)")
    def _sorted(cls, band: pd.Series) -> bool:
        return bool(band.is_monotonic_increasing)


class RepShares(FileFrame):
    """``rep_shares.csv``: per policy and rep over the whole replay: capacity_share (its fair
    share), value_share (its share of the worth placed), top_tier (tier-A leads) and leads."""

    policy: Series[str] = pa.Field()
    rep_id: Series[str] = pa.Field()
    capacity_share: Series[float] = pa.Field(**_SHARE)
    value_share: Series[float] = pa.Field(**_SHARE)
    top_tier: Series[int] = pa.Field(ge=0)
    leads: Series[int] = pa.Field(ge=0)

    @pa.dataframe_check(error="one row per policy and rep")
    def _one_row_per_rep(cls, frame: pd.DataFrame) -> pd.Series:
        return ~frame.duplicated(["policy", Reps.rep_id])


class SoftViolations(FileFrame):
    """``soft_violations.csv``: one row per soft constraint outside its limit at a run.

    constraint: value_share_min, value_share_max, new_rep_quota or top_tier_max; rep_id (empty
    for the team-wide quota); size: how far outside, in ``unit``; unavoidable: the part of it
    no assignment of the run could avoid; avoidable: size exceeds it (a miss the policy is
    answerable for).
    """

    constraint: Series[str] = pa.Field()
    rep_id: Series[str] = pa.Field(nullable=True)
    size: Series[float] = pa.Field(ge=0)
    unit: Series[str] = pa.Field()
    unavoidable: Series[float] = pa.Field(ge=0)
    avoidable: Series[bool] = pa.Field()
    policy: Series[str] = pa.Field()
    run_at: Series[pd.Timestamp] = pa.Field()

    @pa.dataframe_check(error="the unavoidable part of a violation is no larger than it")
    def _unavoidable_within_size(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["unavoidable"] <= frame["size"]


BACKTEST_FILES: dict[str, type[pa.DataFrameModel]] = {
    "backtest.csv": PolicyTable,
    "runs.csv": PolicyRuns,
    "fairness_curve.csv": FairnessCurve,
    "rep_shares.csv": RepShares,
    "soft_violations.csv": SoftViolations,
    "off_policy.csv": OffPolicyEstimates,
}
"""The backtest's CSV files and the pandera model each one holds to."""
