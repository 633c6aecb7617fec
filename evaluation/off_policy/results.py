"""What an off-policy evaluation found: one :class:`Estimate` per estimator, the overlap, and
the frame that ``off_policy.csv`` holds (:class:`OffPolicyEstimates`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

from evaluation.frame_model import FileFrame
from evaluation.off_policy.estimators import ESTIMATOR_NAMES, ESTIMATORS
from evaluation.off_policy.overlap import Overlap


@dataclass(frozen=True)
class Estimate:
    """One estimator's answer.

    ``value``: expected reward per lead (the unit of the logged ``reward``); ``ci_low`` and
    ``ci_high``: its bootstrap interval; ``vs_logged`` (value minus the historical policy's)
    with ``vs_logged_low`` and ``vs_logged_high`` (NaN for ``logged`` itself); ``identified``;
    ``note``: why it is not identified, or what the number rests on. The numbers of an
    unidentified estimate are NaN in :attr:`OffPolicyResult.estimates`.
    """

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    vs_logged: float
    vs_logged_low: float
    vs_logged_high: float
    identified: bool
    note: str


ESTIMATE_COLUMNS = [f.name for f in fields(Estimate)]
"""Columns of the estimates frame (``off_policy.csv``)."""


class OffPolicyEstimates(FileFrame):
    """``off_policy.csv``: one :class:`Estimate` per estimator of :data:`ESTIMATORS`, in that
    order; the numbers of an estimate that is not identified are empty."""

    estimator: Series[str] = pa.Field()
    value: Series[float] = pa.Field(nullable=True)
    ci_low: Series[float] = pa.Field(nullable=True)
    ci_high: Series[float] = pa.Field(nullable=True)
    vs_logged: Series[float] = pa.Field(nullable=True)
    vs_logged_low: Series[float] = pa.Field(nullable=True)
    vs_logged_high: Series[float] = pa.Field(nullable=True)
    identified: Series[bool] = pa.Field()
    note: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(error="the estimators are those of ESTIMATORS, in that order")
    def _estimators_in_order(cls, frame: pd.DataFrame) -> bool:
        return frame["estimator"].tolist() == list(ESTIMATORS)

    @pa.dataframe_check(error="the historical policy's own value is always identified")
    def _logged_identified(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["identified"] | (frame["estimator"] != "logged")

    @pa.dataframe_check(error="an estimate that is not identified shows no number")
    def _no_number_unless_identified(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["identified"] | frame[ESTIMATE_COLUMNS[1:7]].isna().all(axis=1)

    @pa.dataframe_check(error="an interval's low end is not above its high end")
    def _intervals_in_order(cls, frame: pd.DataFrame) -> pd.Series:
        ordered = pd.Series(True, index=frame.index)
        for low, high in (("ci_low", "ci_high"), ("vs_logged_low", "vs_logged_high")):
            ordered &= ~(frame[low] > frame[high])
        return ordered


def estimate_frames(rows: list[Estimate]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The estimates of ``rows`` as shown (an :class:`OffPolicyEstimates` frame: the numbers of
    an estimate that is not identified left out) and raw (every number, for research)."""
    raw = pd.DataFrame([asdict(row) for row in rows], columns=ESTIMATE_COLUMNS)
    numbers = ESTIMATE_COLUMNS[1:7]
    shown = raw.assign(**{c: raw[c].where(raw["identified"]) for c in numbers})
    return OffPolicyEstimates.validate(shown), raw


@dataclass(frozen=True)
class OffPolicyResult:
    """What :func:`evaluation.off_policy.evaluate_policy` found.

    ``estimates``: one row per estimator of :data:`ESTIMATORS` with columns
    :data:`ESTIMATE_COLUMNS` (see :class:`Estimate`; an :class:`OffPolicyEstimates` frame). The numbers of an unidentified
    estimate are NaN: do not print them. ``raw`` has the same rows with every number, for
    estimator research only. :meth:`estimate` gives one row as an :class:`Estimate`.
    """

    estimates: pd.DataFrame
    raw: pd.DataFrame
    overlap: Overlap
    level: float
    n_bootstrap: int

    def estimate(self, estimator: str, *, raw: bool = False) -> Estimate:
        """The row of ``estimator`` (one of :data:`ESTIMATORS`), from ``raw`` if asked."""
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}: one of {', '.join(ESTIMATORS)}")
        frame = self.raw if raw else self.estimates
        row = frame.loc[frame["estimator"] == estimator].iloc[0]
        return Estimate(
            estimator=estimator,
            **{name: float(row[name]) for name in ESTIMATE_COLUMNS[1:7]},
            identified=bool(row["identified"]),
            note=row["note"] if isinstance(row["note"], str) else "",
        )

    @property
    def identified(self) -> bool:
        """Whether the off-policy estimates are identified (they share one verdict)."""
        return self.estimate("dr").identified

    def summary(self) -> str:
        """Plain-text lines for logs and reports: one per estimator, then the overlap."""
        lines = []
        for name in ESTIMATORS:
            row = self.estimate(name)
            label = ESTIMATOR_NAMES[name]
            if not row.identified:
                lines.append(f"{label}: not identified. {row.note}")
                continue
            text = f"{label}: {row.value:.4g} per lead [{row.ci_low:.4g}, {row.ci_high:.4g}]"
            if name != "logged":
                text += (
                    f", {row.vs_logged:+.4g} vs history "
                    f"[{row.vs_logged_low:+.4g}, {row.vs_logged_high:+.4g}]"
                )
            lines.append(text + (f" ({row.note})" if row.note else ""))
        o = self.overlap
        rare = f"{o.low_propensity:.0%}"
        parts = [
            f"overlap: effective sample {o.ess:.0f} of {o.n_decisions} leads ({o.ess_share:.1%})",
            f"target agrees with history on {o.agreement:.1%}",
            f"{o.low_propensity_share:.1%} of logged choices had propensity under {rare}",
            f"largest weight {o.max_weight:.3g} ({o.max_weight_share:.1%} of the total)",
        ]
        if not np.isnan(o.unsupported_share):
            parts.append(
                f"{o.unsupported_share:.1%} of the target's choices had propensity under {rare}"
            )
        if not np.isnan(o.outside_rules_share):
            parts.append(
                f"{o.outside_rules_share:.1%} of logged choices broke the eligibility rules"
            )
        source = f"propensities {o.propensity_source}"
        if o.n_estimated:
            source += f" ({o.n_clipped} of {o.n_estimated} estimated ones clipped)"
        lines.append(", ".join(parts) + "; " + source)
        return "\n".join(lines)
