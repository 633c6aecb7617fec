"""The registry: one model per data set, and a gate that never promotes blindly.

The gate is judged here on real models trained on the `small` world: a good one, and a crippled
one whose probabilities are all squeezed into [0.45, 0.55] (the win rate is about 0.22).
"""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, RESOURCE_DOES_NOT_EXIST

from features.config import FeatureConfig
from features.pairs import build_training_pairs
from models.config import ModelConfig
from models.training import train_and_evaluate
from pipelines.config import TrackingConfig
from pipelines.registry import (
    CurrentChampion,
    current_champion,
    decide,
    registered_model_name,
    train_experiment,
)
from pipelines.serving import LeadmatchModel

FAST = ModelConfig(n_bootstrap=200)
CRIPPLED = FAST.model_copy(update={"probability_floor": 0.45})


# --- names -----------------------------------------------------------------------------------


def test_each_data_set_has_its_own_model_and_experiment(tmp_path):
    tracking = TrackingConfig()
    acme, globex = tmp_path / "acme" / "crm", tmp_path / "globex" / "crm"
    name = registered_model_name(acme, None, tracking)
    assert name.startswith("leadmatch-crm-") and len(name) == len("leadmatch-crm-") + 6
    assert registered_model_name(acme, None, tracking) == name
    assert registered_model_name(globex, None, tracking) != name
    assert registered_model_name(acme, "maven", tracking) != name
    assert train_experiment(name) == f"{name}-train"
    assert registered_model_name(acme, None, TrackingConfig(model_name="acme")) == "acme"
    # A data folder that is a link to its latest version stays the same data set when the link
    # moves to a new version.
    latest = tmp_path / "exports" / "latest"
    names = []
    for version in ("2025-05-05", "2025-05-06"):
        (tmp_path / "exports" / version).mkdir(parents=True)
        latest.unlink(missing_ok=True)
        latest.symlink_to(tmp_path / "exports" / version)
        names.append(registered_model_name(latest, None, tracking))
    assert names[0] == names[1] and names[0].startswith("leadmatch-latest-")


# --- the gate --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_pairs(small_world):
    return build_training_pairs(small_world.data, as_of=small_world.as_of)


@pytest.fixture(scope="module")
def good(small_pairs):
    return train_and_evaluate(small_pairs, FAST)


@pytest.fixture(scope="module")
def crippled(small_pairs):
    return train_and_evaluate(small_pairs, CRIPPLED)


def _served(result, pairs, world, features: FeatureConfig | None = None) -> LeadmatchModel:
    return LeadmatchModel.from_training(
        result.served_model,
        result.served,
        pairs,
        features or FeatureConfig(),
        result.rep_signal,
        trained_before=result.test_start,
        as_of=world.as_of,
    )


@pytest.mark.slow
def test_a_worse_model_is_never_promoted_and_a_better_one_is(
    good, crippled, small_pairs, small_world
):
    data = small_world.data
    champion = CurrentChampion("1", _served(good, small_pairs, small_world))
    worse = decide(champion, crippled, data, _served(crippled, small_pairs, small_world), FAST)
    assert not worse.promote
    assert worse.comparison.gain < 0 and worse.comparison.interval[1] < 0
    assert worse.reason.startswith(f"champion v1 stays: on the same {len(good.test)} held-out")
    assert "the new model is worse; `leadmatch train --promote` replaces it anyway" in worse.reason

    weak_champion = CurrentChampion("1", _served(crippled, small_pairs, small_world))
    better = decide(weak_champion, good, data, _served(good, small_pairs, small_world), FAST)
    assert better.promote and better.comparison.interval[0] > 0
    assert better.reason.startswith("beats champion v1: on the same")

    same = decide(champion, good, data, _served(good, small_pairs, small_world), FAST)
    assert not same.promote
    assert "is not reliably better: the interval includes zero" in same.reason


@pytest.mark.slow
def test_a_changed_label_or_feature_set_is_never_compared_silently(good, small_pairs, small_world):
    data = small_world.data
    new = _served(good, small_pairs, small_world)
    window = CurrentChampion(
        "2", _served(good, small_pairs, small_world, FeatureConfig(conversion_window_days=60))
    )
    kept = decide(window, good, data, new, FAST)
    assert not kept.promote and kept.comparison is None
    assert kept.reason == (
        "not compared with champion v2, which stays: the label definition changed (won within "
        "60 days of assignment for the champion, 90 days now), so the two log losses do not "
        "measure the same thing; `leadmatch train --promote` replaces it anyway"
    )
    forced = decide(window, good, data, new, FAST, mode="promote")
    assert forced.promote and forced.reason.startswith("promoted by --promote; not compared")

    fewer = _served(good, small_pairs, small_world)
    fewer.feature_set = [c for c in fewer.feature_set if c != "x_score"]
    changed = decide(CurrentChampion("2", fewer), good, data, new, FAST)
    assert not changed.promote
    assert "the feature set changed (new feature column(s) x_score)" in changed.reason


@pytest.mark.slow
def test_errors_keep_the_champion_and_say_why(good, crippled, small_pairs, small_world):
    data, new = small_world.data, _served(good, small_pairs, small_world)

    locked = current_champion(_Registry(MlflowException("database is locked", INTERNAL_ERROR)), "m")
    assert locked == CurrentChampion(
        None, problem="the registry cannot be read (database is locked)"
    )
    kept = decide(locked, good, data, new, FAST)
    assert not kept.promote
    assert kept.reason.startswith("the champion stays: the registry cannot be read")

    missing = _Registry(MlflowException("no such model", RESOURCE_DOES_NOT_EXIST))
    assert current_champion(missing, "m") == CurrentChampion(None)
    assert current_champion(_Registry(aliases={}), "m") == CurrentChampion(None)
    first = decide(CurrentChampion(None), good, data, new, FAST)
    assert first.promote and first.reason.startswith("no champion yet (held-out log loss")

    broken = _served(crippled, small_pairs, small_world)
    broken.estimator = _Raises()
    failed = decide(CurrentChampion("3", broken), good, data, new, FAST)
    assert not failed.promote
    assert failed.reason.startswith(
        "champion v3 stays: it cannot score this run's held-out pairs (RuntimeError: corrupt)"
    )

    later = _served(crippled, small_pairs, small_world)
    later.trained_before = good.test["at"].max() + pd.Timedelta(days=1)
    unseen = decide(CurrentChampion("3", later), good, data, new, FAST)
    assert not unseen.promote and "no held-out pair of this run is new to it" in unseen.reason

    never = decide(
        CurrentChampion("3", _served(crippled, small_pairs, small_world)),
        good,
        data,
        new,
        FAST,
        mode="never",
    )
    assert not never.promote and never.reason.startswith("not promoted (--no-promote); beats")


class _Registry:
    """A registry client whose model lookup fails with ``error`` or returns ``aliases``."""

    def __init__(self, error: Exception | None = None, aliases: dict | None = None):
        self.error, self.aliases = error, aliases

    def get_registered_model(self, name):
        if self.error is not None:
            raise self.error
        return type("Registered", (), {"aliases": self.aliases})()


class _Raises:
    def predict_proba(self, pairs):
        raise RuntimeError("corrupt")
