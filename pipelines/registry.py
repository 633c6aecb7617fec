"""The model registry: one registered model per data set, and the gate that picks its champion.

**Names.** Each data set (a data folder, read with or without a mapping) has its own registered
model, ``leadmatch-<folder name>-<6 hex digits>``, the digits hashing the folder's absolute path
(links not followed) and the mapping, and its own training experiment ``<model name>-train``. So a second company's
export never replaces the first one's champion. ``tracking.model_name`` overrides the name (e.g.
when the folder moves).

**The gate.** A new version becomes the ``champion`` only when it is *reliably* better than the
current champion: both score the same held-out pairs (identical keys and outcomes, and only pairs
the champion was not fitted on), and the whole bootstrap interval of the log-loss reduction lies
above zero (:func:`models.rep_signal.paired_log_loss_gain`, leads resampled whole). Anything
that prevents a fair comparison keeps the champion and says why: an unreadable registry, a
champion that cannot be loaded or cannot score the pairs, a changed label definition or feature
set (those need ``leadmatch train --promote``), no held-out pair after the champion's own data.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from features.pairs import TARGET, build_pairs_at
from features.schemas import CrmData, Leads, Reps
from models.config import ModelConfig
from models.rep_signal import PairedGain, paired_log_loss_gain
from models.training import TrainingResult
from pipelines.config import TrackingConfig
from pipelines.tracking import CHAMPION

PromotionMode = Literal["gate", "promote", "never"]
"""``gate``: promote only a reliably better model; ``promote``: always (``--promote``);
``never``: register without promoting (``--no-promote``)."""

_FORCE = "`leadmatch train --promote` replaces it anyway"


def data_set_label(folder: Path) -> str:
    """A short readable name of the data folder, e.g. ``maven-crm-sales-opportunities``."""
    slug = re.sub(r"[^a-z0-9]+", "-", _absolute(folder).name.lower()).strip("-")
    return slug[:40].strip("-") or "data"


def registered_model_name(
    folder: Path, mapping: str | Path | None, tracking: TrackingConfig
) -> str:
    """The registered model of this data set (``tracking.model_name`` when set)."""
    if tracking.model_name:
        return tracking.model_name
    mapping_key = ""
    if mapping is not None:
        is_file = Path(mapping).suffix.lower() in (".yaml", ".yml")
        mapping_key = str(_absolute(mapping)) if is_file else str(mapping)
    key = f"{_absolute(folder)}|{mapping_key}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:6]
    return f"leadmatch-{data_set_label(folder)}-{digest}"


def _absolute(path: str | Path) -> Path:
    # The path as the user names it, made absolute but with links kept: a data folder that is a
    # link to its latest version (as leadmatch's own writers publish it, or a `latest` link to
    # dated exports) stays the same data set when the link moves.
    return Path(os.path.abspath(path))


def train_experiment(model_name: str) -> str:
    """The MLflow experiment of the training runs of ``model_name``."""
    return f"{model_name}-train"


@dataclass(frozen=True)
class Decision:
    """The gate's verdict: ``promote`` or not, ``reason`` in words, and the paired comparison
    with the champion when one could be made."""

    promote: bool
    reason: str
    comparison: PairedGain | None = None


@dataclass(frozen=True)
class CurrentChampion:
    """The current champion as the gate sees it: its version and the loaded served model (None
    with ``problem`` when it could not be read or loaded)."""

    version: str | None
    model: object | None = None  # pipelines.serving.LeadmatchModel
    problem: str | None = None


def current_champion(client, name: str) -> CurrentChampion:
    """Read the champion of ``name`` from the registry: no version when there is none yet, a
    ``problem`` when the registry or the model cannot be read."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(name)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return CurrentChampion(None)
        return CurrentChampion(None, problem=f"the registry cannot be read ({err.message})")
    except Exception as err:  # a broken store raises sqlalchemy, OS and network errors alike
        return CurrentChampion(None, problem=f"the registry cannot be read ({err})")
    version = (registered.aliases or {}).get(CHAMPION)
    if version is None:
        return CurrentChampion(None)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}").unwrap_python_model()
    except Exception as err:  # unpickling an old or damaged artefact can raise anything
        return CurrentChampion(
            str(version), problem=f"it cannot be loaded ({type(err).__name__}: {err})"
        )
    return CurrentChampion(str(version), model=model)


def decide(
    champion: CurrentChampion,
    result: TrainingResult,
    data: CrmData,
    served,
    config: ModelConfig,
    mode: PromotionMode = "gate",
) -> Decision:
    """Whether the new served model (``served``, a ``LeadmatchModel`` of ``result``) should
    become the champion, and why. ``data`` is the history the result was trained on."""
    compared = _compare(champion, result, data, served, config)
    if mode == "never":
        return Decision(
            False, f"not promoted (--no-promote); {compared.reason}", compared.comparison
        )
    if mode == "promote":
        return Decision(True, f"promoted by --promote; {compared.reason}", compared.comparison)
    return compared


def _compare(
    champion: CurrentChampion, result: TrainingResult, data: CrmData, served, config: ModelConfig
) -> Decision:
    new_loss = result.metrics[result.served]["log_loss"]
    if champion.version is None and champion.problem is None:
        return Decision(True, f"no champion yet (held-out log loss {new_loss:.4f})")
    current = f"champion v{champion.version}" if champion.version else "the champion"
    if champion.problem is not None:
        return Decision(False, f"{current} stays: {champion.problem}; {_FORCE}")
    old = champion.model
    changed = _definition_changes(old, served)
    if changed:
        return Decision(
            False,
            f"not compared with {current}, which stays: {changed}, so the two log losses do not "
            f"measure the same thing; {_FORCE}",
        )
    test = result.test.loc[result.test["at"] >= old.trained_before]
    if test.empty:
        return Decision(
            False,
            f"{current} stays: it was fitted on pairs up to {old.trained_before:%Y-%m-%d}, so no "
            f"held-out pair of this run is new to it; {_FORCE}",
        )
    try:
        pairs = build_pairs_at(data, test[[Leads.lead_id, Reps.rep_id, "at"]], config=old.features)
        p_old = np.asarray(old.estimator.predict_proba(pairs)[:, 1], dtype=float)
    except Exception as err:  # whatever the old model raises, it cannot be compared
        return Decision(
            False,
            f"{current} stays: it cannot score this run's held-out pairs "
            f"({type(err).__name__}: {err}); {_FORCE}",
        )
    if len(p_old) != len(test) or not np.all(np.isfinite(p_old) & (p_old >= 0) & (p_old <= 1)):
        return Decision(
            False,
            f"{current} stays: it gave {len(p_old)} probabilities, not all in [0, 1], for "
            f"{len(test)} held-out pairs; {_FORCE}",
        )
    gain = paired_log_loss_gain(
        test[TARGET].astype(int).to_numpy(),
        p_old,
        test[f"p_{result.served}"].to_numpy(),
        test[Leads.lead_id],
        n_bootstrap=config.n_bootstrap,
        level=config.signal_level,
        seed=config.seed,
    )
    low, high = gain.interval
    figures = (
        f"on the same {gain.n_pairs} held-out pairs its log loss is {gain.loss_b:.4f} against "
        f"{current}'s {gain.loss_a:.4f} ({abs(gain.gain):.4f} "
        f"{'lower' if gain.gain > 0 else 'higher' if gain.gain < 0 else 'apart'}, "
        f"{gain.level:.0%} interval of the reduction [{low:+.4f}, {high:+.4f}])"
    )
    if gain.reliable:
        return Decision(True, f"beats {current}: {figures}", gain)
    why = "is worse" if high < 0 else "is not reliably better: the interval includes zero"
    return Decision(False, f"{current} stays: {figures}; the new model {why}; {_FORCE}", gain)


def _definition_changes(old, new) -> str | None:
    """What makes the two models' log losses incomparable, in words (None: nothing)."""
    old_window = old.features.conversion_window_days
    new_window = new.features.conversion_window_days
    if old_window != new_window:
        return (
            f"the label definition changed (won within {old_window} days of assignment for the "
            f"champion, {new_window} days now)"
        )
    old_settings = {k: v for k, v in old.feature_settings.items() if k != "conversion_window_days"}
    new_settings = {k: v for k, v in new.feature_settings.items() if k != "conversion_window_days"}
    settings = sorted(
        k
        for k in old_settings.keys() | new_settings.keys()
        if old_settings.get(k) != new_settings.get(k)
    )
    added = sorted(set(new.feature_set) - set(old.feature_set))
    removed = sorted(set(old.feature_set) - set(new.feature_set))
    parts = []
    if settings:
        parts.append(f"feature settings {', '.join(settings)}")
    if added:
        parts.append(f"new feature column(s) {', '.join(added)}")
    if removed:
        parts.append(f"feature column(s) no longer there: {', '.join(removed)}")
    if parts:
        return "the feature set changed (" + "; ".join(parts) + ")"
    return None


def version_description(
    *,
    data_set: str,
    mapping: str | Path | None,
    result: TrainingResult,
    served,
    decision: Decision,
    as_of: pd.Timestamp,
) -> str:
    """The registered version's description: data set, label, model, metrics, rep signal."""
    m = result.metrics[result.served]
    source = f"{data_set}" + (f" (mapping {mapping})" if mapping else "")
    return "\n".join(
        [
            f"Data set: {source}; history as of {as_of:%Y-%m-%d}.",
            f"Label: {served.label_definition()}.",
            f"Model: {result.served_reason()}.",
            f"Trained on {result.n_train} pairs assigned before {result.test_start:%Y-%m-%d}; "
            f"held out {len(result.test)} later pairs: log loss {m['log_loss']:.4f}, AUC "
            f"{m['roc_auc']:.3f}, ECE {m['ece']:.3f} (a perfectly calibrated model would show "
            f"about {m['ece_noise']:.3f} on these pairs).",
            f"Rep signal: {result.rep_signal.summary()}; rep-specific matching "
            f"{'on' if served.rep_signal_used else 'off'}.",
            f"Champion decision: {decision.reason}.",
        ]
    )
