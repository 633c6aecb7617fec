"""Lead scores: each lead's win chance whoever works it, judged beside a plain LightGBM, and
its top factors in words (English or Simplified Chinese).

The model is the lead-only model (:func:`models.baselines.lead_only_model`: the pair model's
learner and calibration on lead columns only), trained on the rows of a history without reps
(:func:`features.lead_scoring.build_lead_training_rows`). :func:`train_lead_scores` fits it on
the earlier rows and judges it on the most recent mature slice beside a plain
``LGBMClassifier`` (default parameters, no calibration) fitted on the same rows and the same
feature matrix, so every run says whether the calibrated model earns its keep.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

from features.pairs import TARGET
from features.schemas import Leads, Reps
from models.baselines import lead_only_model
from models.config import ModelConfig
from models.evaluation import calibration_by_group, evaluate
from models.explain import MIN_EFFECT, factor_effects
from models.pair_model import PairModel
from models.rep_signal import untested
from models.splits import time_split
from models.training import LEAD_ONLY, TrainingResult

PLAIN = "plain_lightgbm"
TIERS = ("A", "B", "C")


class LeadScores(pa.DataFrameModel):
    """``lead_scores.csv``: one row per open lead, best first (ties: oldest first).

    p_win: the lead-only model's calibrated chance that the lead is won within the conversion
    window if it is worked from the run date; tier: A, B or C by rank of the day's open leads'
    value x p_win (``MatchingConfig.tier_quantiles``, as recommend's tiers); top_factors: what
    raises or lowers the chance most, in words, each with its effect in percentage points
    (empty when no factor moves it by half a point).
    """

    run_date: Series[str] = pa.Field()
    lead_id: Series[str] = pa.Field(unique=True)
    created_at: Series[pd.Timestamp] = pa.Field()
    p_win: Series[float] = pa.Field(ge=0, le=1)
    tier: Series[str] = pa.Field(isin=list(TIERS))
    top_factors: Series[str] = pa.Field()

    class Config:
        strict = True
        ordered = True
        coerce = True


SCORE_DECIMALS = 4
"""Decimals of p_win in lead_scores.csv (the order of the rows follows the written value)."""

NO_REP_SIGNAL = "the lead-only model does not tell reps apart"


@dataclass(frozen=True)
class LeadScoresResult(TrainingResult):
    """A training run of the lead-only model, in the shape the train flow and the registry
    read (:class:`models.training.TrainingResult`).

    ``model`` and ``served_model``: the calibrated lead-only model (fitted on the rows before
    ``test_start``); ``baselines``: it (:data:`LEAD_ONLY`) and the plain reference
    (:data:`PLAIN`, never served: it is not calibrated); ``metrics``: both on the held-out
    slice; ``test``: the held-out rows' ``lead_id``, ``rep_id``, ``at``, ``won`` and one
    ``p_<model>`` column per model; ``rep_signal``: untested.
    """

    def served_reason(self) -> str:
        """Why the lead-only model is served, with both held-out log losses."""
        ours, plain = (self.metrics[n]["log_loss"] for n in (LEAD_ONLY, PLAIN))
        return (
            f"{LEAD_ONLY} is the model served (held-out log loss {ours:.4f}; a plain LightGBM "
            f"on the same rows, uncalibrated, {plain:.4f}): the outcomes cannot tell reps "
            "apart, so a lead's win chance is the same whoever works it"
        )


def plain_lightgbm(model: PairModel, rows: pd.DataFrame) -> lgb.LGBMClassifier:
    """The reference: ``LGBMClassifier`` with its default parameters on ``model``'s feature
    matrix of ``rows`` (the same columns and category codes), no calibration."""
    return lgb.LGBMClassifier(verbose=-1, deterministic=True, force_row_wise=True).fit(
        model.design_matrix(rows),
        rows[TARGET].astype(int).to_numpy(),
        categorical_feature=model.categorical_features_,
    )


def train_lead_scores(rows: pd.DataFrame, config: ModelConfig | None = None) -> LeadScoresResult:
    """Split lead-only training ``rows`` (:func:`features.lead_scoring.build_lead_training_rows`)
    by time, fit the calibrated lead-only model and the plain reference on the earlier part,
    and judge both on the most recent ``test_fraction`` of mature rows. Raises ``ValueError``
    when the rows cannot support a model (too few outcomes, one class, ...)."""
    config = config or ModelConfig()
    train, test = time_split(rows, config.test_fraction)
    model = lead_only_model(config).fit(train)
    reference = plain_lightgbm(model, train)
    y = test[TARGET].astype(int).to_numpy()
    predictions = {
        LEAD_ONLY: model.predict_proba(test)[:, 1],
        PLAIN: reference.predict_proba(model.design_matrix(test))[:, 1],
    }
    signal = untested(NO_REP_SIGNAL)
    model.rep_signal_ = signal
    return LeadScoresResult(
        model=model,
        baselines={LEAD_ONLY: model, PLAIN: reference},
        metrics={name: evaluate(y, p, n_bins=config.ece_bins) for name, p in predictions.items()},
        calibration_by_tenure=calibration_by_group(
            y, predictions[LEAD_ONLY], np.full(len(y), "all leads"), n_bins=config.ece_bins
        ),
        rep_signal=signal,
        test=test[[Leads.lead_id, Reps.rep_id, "at", TARGET]]
        .assign(**{f"p_{name}": p for name, p in predictions.items()})
        .reset_index(drop=True),
        n_train=len(train),
        served=LEAD_ONLY,
        test_start=pd.Timestamp(test["at"].min()),
    )


# --- top factors in words -------------------------------------------------------------------

_LABELS = {
    "en": {
        "source": "source",
        "industry": "industry",
        "region": "region",
        "product": "product",
        "company_size": "company size",
        "expected_value": "expected value",
    },
    "zh": {
        "source": "来源",
        "industry": "行业",
        "region": "地区",
        "product": "产品",
        "company_size": "公司规模",
        "expected_value": "预期价值",
    },
}
_WEEKDAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "zh": ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"],
}
_ACCOUNT = "account_history"
SEPARATORS = {"en": "; ", "zh": "；"}
"""How the factors of one lead are joined in a cell, by language."""


def explain_leads(
    model: PairModel, rows: pd.DataFrame, *, top_k: int = 3, lang: str = "en"
) -> pd.DataFrame:
    """The top factors of each lead's win chance, in words.

    ``rows`` are scoring rows (:func:`features.lead_scoring.build_lead_scoring_rows`);
    ``lang`` is "en" or "zh". Returns, on the rows' index, ``lead_id``, ``p_win``
    (calibrated), ``factors`` (up to ``top_k`` phrases, largest effect first, e.g. "industry =
    retail raises it (+4.1 pts)"; effects under half a percentage point left out) and
    ``reason`` (the phrases joined by :data:`SEPARATORS`). A factor's effect is the change in
    the calibrated win chance if its LightGBM ``pred_contrib`` terms were removed; an
    account's earlier outcomes (count and rate) are one factor.
    """
    if lang not in _LABELS:
        raise ValueError(f"unknown language {lang!r}: use en or zh")
    p_win, frame = factor_effects(model, rows, _lead_factor)
    effects, names = frame.to_numpy(), frame.columns.to_numpy()
    factors = []
    for i, row in enumerate(rows.to_dict("records")):
        order = np.argsort(-np.abs(effects[i]), kind="stable")[:top_k]
        factors.append(
            [_sentence(names[j], effects[i, j], row, lang) for j in order if _shown(effects[i, j])]
        )
    return pd.DataFrame(
        {
            Leads.lead_id: rows[Leads.lead_id].to_numpy(),
            "p_win": p_win,
            "factors": factors,
            "reason": [SEPARATORS[lang].join(f) for f in factors],
        },
        index=rows.index,
    )


def _shown(effect: float) -> bool:
    return abs(effect) >= MIN_EFFECT


def _lead_factor(feature: str) -> str:
    """An account's count of earlier outcomes and its win rate tell one story."""
    return _ACCOUNT if feature in ("account_outcomes", "account_win_rate") else feature


def _sentence(factor: str, effect: float, row: dict, lang: str) -> str:
    points = 100 * effect
    phrase = _phrase(factor, row, lang)
    if lang == "zh":
        return f"{phrase}，{'提高' if effect > 0 else '降低'}赢单率（{points:+.1f}个百分点）"
    return f"{phrase} {'raises' if effect > 0 else 'lowers'} it ({points:+.1f} pts)"


def _phrase(factor: str, row: dict, lang: str) -> str:
    """What the lead is, as far as ``factor`` goes ("industry = retail", "lead age 40 days")."""
    zh = lang == "zh"
    value = row.get(factor)
    if factor == _ACCOUNT:
        n = int(row.get("account_outcomes") or 0)
        if zh:
            return f"其客户此前有{n}个结果" if n else "其客户此前没有结果"
        if not n:
            return "no earlier outcome for its account"
        return f"{n} earlier outcome{'s' if n != 1 else ''} for its account"
    if factor == "lead_age_days":
        days = max(0, int(np.floor(value)))
        return f"线索已创建{days}天" if zh else f"lead age {days} day{'s' if days != 1 else ''}"
    if factor == "created_weekday" and not pd.isna(value):
        day = _WEEKDAYS[lang][int(value)]
        return f"创建于{day}" if zh else f"created on a {day}"
    if factor == "created_hour" and not pd.isna(value):
        return (
            f"创建于{int(value)}点" if zh else f"created at {int(value):02d}:00-{int(value):02d}:59"
        )
    label = _LABELS[lang].get(factor, factor.removeprefix("x_").replace("_", " "))
    if value is None or pd.isna(value):
        return f"{label}未知" if zh else f"{label} unknown"
    if isinstance(value, float | np.floating):
        shown = f"{value:,.0f}" if value == round(value) or abs(value) >= 100 else f"{value:.3g}"
        return f"{label} = {shown}"
    return f"{label} = {value}"


def lead_score_table(
    leads: pd.DataFrame, explained: pd.DataFrame, tiers: np.ndarray, *, run_date: str
) -> pd.DataFrame:
    """The rows of ``lead_scores.csv`` (:class:`LeadScores`): ``leads`` (canonical leads rows),
    ``explained`` (:func:`explain_leads` of them, same order) and their ``tiers``."""
    table = pd.DataFrame(
        {
            "run_date": run_date,
            Leads.lead_id: leads[Leads.lead_id].astype(str).to_numpy(),
            "created_at": leads["created_at"].to_numpy(),
            "p_win": explained["p_win"].to_numpy(dtype=float),
            "tier": np.asarray(tiers, dtype=object),
            "top_factors": explained["reason"].to_numpy(dtype=object),
        }
    )
    # Rounded as written, so that leads that read the same are listed oldest first.
    order = np.lexsort(
        (table["created_at"].to_numpy(), -table["p_win"].round(SCORE_DECIMALS).to_numpy())
    )
    return LeadScores.validate(table.iloc[order].reset_index(drop=True))
