"""Overlap between the history and the target policy, and the identification verdict.

Weights only reach leads where the history did what the target would do. When that overlap is
too thin the estimate is not identified (the rules and their thresholds are in
:mod:`evaluation.off_policy` and :class:`evaluation.config.OffPolicyConfig`): no number is
shown, and the note says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from evaluation.config import OffPolicyConfig
from evaluation.off_policy.estimators import WeightedDecisions


@dataclass(frozen=True)
class Overlap:
    """How well the history covers the target policy.

    ``n_decisions`` logged leads in ``n_clusters`` bootstrap clusters; ``low_propensity``: the
    threshold of the rare-choice figures (``OffPolicyConfig.low_propensity``); ``ess``: Kish effective
    sample size of the importance weights, ``ess_share`` = ess / n_decisions; ``agreement``: mean
    probability the target gives the logged rep (for a deterministic target, the share of leads
    where it picks the logged rep); ``low_propensity_share``: share of logged choices whose
    propensity (before clipping) is below ``OffPolicyConfig.low_propensity``;
    ``unsupported_share``: the target's share of choices on pairs the history chose with
    probability below that (NaN unless candidate propensities are known);
    ``outside_rules_share``: share of logged choices that the reconstructed eligibility rules
    would not have allowed (candidates' ``eligible`` column; NaN without it): the larger, the
    less the candidate sets and estimated propensities can be trusted; ``max_weight`` and
    ``max_weight_share`` (of the sum of weights); ``propensity_source`` ("logged", "estimated" or
    "logged and estimated"), ``n_estimated`` decisions using estimated propensities, of which
    ``n_clipped`` were clipped at the floor.
    """

    n_decisions: int
    n_clusters: int
    low_propensity: float
    ess: float
    ess_share: float
    agreement: float
    low_propensity_share: float
    unsupported_share: float
    outside_rules_share: float
    max_weight: float
    max_weight_share: float
    propensity_source: str
    n_estimated: int
    n_clipped: int

    def to_dict(self) -> dict[str, object]:
        """Flat mapping, for a tracking server or a report."""
        return asdict(self)


def measure_overlap(
    decisions: WeightedDecisions, config: OffPolicyConfig, n_clusters: int
) -> Overlap:
    """How well the history covers the target: the figures of :class:`Overlap`."""
    w = decisions.w
    n = len(w)
    total = w.sum()
    ess = float(total**2 / (w @ w)) if total > 0 else 0.0
    estimated = decisions.estimated
    clipped = estimated & (decisions.raw_propensity < config.propensity_floor)
    source = (
        "estimated"
        if estimated.all()
        else ("logged and estimated" if estimated.any() else "logged")
    )
    return Overlap(
        n_decisions=n,
        n_clusters=n_clusters,
        low_propensity=config.low_propensity,
        ess=ess,
        ess_share=ess / n,
        agreement=float(decisions.pi_logged.mean()),
        low_propensity_share=float((decisions.raw_propensity < config.low_propensity).mean()),
        unsupported_share=decisions.unsupported,
        outside_rules_share=float(np.mean(decisions.outside_rules)),
        max_weight=float(w.max()),
        max_weight_share=float(w.max() / total) if total > 0 else np.nan,
        propensity_source=source,
        n_estimated=int(estimated.sum()),
        n_clipped=int(clipped.sum()),
    )


def not_identified(overlap: Overlap, config: OffPolicyConfig) -> list[str]:
    """The reasons (plain sentences) why the off-policy value is not identified; empty if it is."""
    reasons = []
    if overlap.ess < config.min_ess:
        reasons.append(
            f"the importance weights leave an effective sample of {overlap.ess:.1f} leads, fewer "
            f"than the {config.min_ess:g} needed: the history holds too few decisions like the "
            "policy's"
        )
    if overlap.agreement < config.min_agreement:
        reasons.append(
            f"the policy agrees with the history on only {overlap.agreement:.2%} of the leads "
            f"(at least {config.min_agreement:.0%} needed)"
        )
    if overlap.unsupported_share > config.max_unsupported_share:
        reasons.append(
            f"{overlap.unsupported_share:.1%} of the policy's choices go to reps the history "
            f"almost never chose for such leads (propensity under {config.low_propensity:.0%}; "
            f"at most {config.max_unsupported_share:.0%} allowed)"
        )
    return reasons


def estimate_note(name: str, reasons: list[str], overlap: Overlap, config: OffPolicyConfig) -> str:
    """What estimator ``name``'s number rests on, or why it is not identified (``reasons``)."""
    if name == "logged":
        return "observed outcomes of the historical decisions"
    if reasons:
        return "Value not identified: " + "; ".join(reasons) + "."
    notes = {"dm": "the model's prediction alone, unchecked by outcomes"}
    note = notes.get(name, "")
    if overlap.n_clipped and name != "dm":
        clip = f"{overlap.n_clipped} estimated propensities clipped at {config.propensity_floor:g}"
        note = f"{note}; {clip}" if note else clip
    return note
