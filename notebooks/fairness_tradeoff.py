# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     notebook_metadata_filter: -jupytext.text_representation
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The fairness trade-off: expected wins against the value-share band
#
# leadmatch keeps each rep's share of the day's lead value within a band around their
# capacity-proportional fair share. A narrow band is fairer and costs expected wins; how many?
# On the simulator the truth is known, so each band's price is measured in *true* expected
# wins, not in the model's own belief.
#
# This notebook replays a few days of the `default` world (three to five minutes, most of it
# training; `LEADMATCH_DAYS=30` gives the full picture in about eight) with leadmatch at several
# band widths, and plots wins against the band, next to round-robin and the oracle. (The `small`
# world, `LEADMATCH_SCENARIO=small`, is quicker, but its history is too short for the model to
# find a reliable rep signal: leadmatch then only balances, and the curve is flat.) Run it top to
# bottom in JupyterLab (`make notebooks`), or as a script:
#
#     uv run --locked python notebooks/fairness_tradeoff.py
#     LEADMATCH_SCENARIO=small LEADMATCH_DAYS=1 uv run --locked python notebooks/fairness_tradeoff.py
#
# `LEADMATCH_FIGURES=DIR` also saves the figures there as PNG. It calls the same pure functions
# as the `backtest` flow, without Prefect or MLflow.

# %%
# %matplotlib inline
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evaluation.policy_table import (
    fairness_curve,
    policy_figures,
    policy_table,
    rep_shares,
)
from evaluation.replay import ReplaySettings, replay
from features.pairs import build_training_pairs
from models.training import train_and_evaluate
from pipelines.config import LeadmatchConfig
from pipelines.notebook_figures import keeper
from simulation import simulate

SCENARIO = os.environ.get("LEADMATCH_SCENARIO") or "default"
DAYS = int(os.environ.get("LEADMATCH_DAYS") or 3)
SEED = 0
BANDS = (0.05, 0.1, 0.3, 0.5)
# As a notebook (no __file__), Jupyter runs this in the notebook's folder; a relative
# LEADMATCH_FIGURES is then read from the repository's root, where `make notebooks` was typed.
NOTEBOOK = "__file__" not in globals()
HERE = Path.cwd().parent if NOTEBOOK else Path.cwd()
FIGURES = os.environ.get("LEADMATCH_FIGURES") or None
config = LeadmatchConfig()
pd.set_option("display.width", 160)
figures: dict[str, Figure] = {}

keep = keeper(figures, "fairness", HERE / FIGURES if FIGURES else None, NOTEBOOK)


# %% [markdown]
# ## Train on the history, as `leadmatch train` would

# %%
world = simulate(SCENARIO, seed=SEED)
trained = train_and_evaluate(
    build_training_pairs(world.data, as_of=world.as_of, config=config.features), config.model
)
print(world)
print(trained.rep_signal.summary())

# %% [markdown]
# ## Replay the days after it under every policy and every band

# %%
settings = ReplaySettings(config.features, config.matching, config.recommend.fairness_window_days)
result = replay(world, trained.model, settings, days=DAYS, seed=SEED, bands=BANDS)
per_policy = policy_figures(result)
table = policy_table(per_policy)
curve = fairness_curve(per_policy, config.matching.fairness.value_share.band)
print(
    table[
        [
            "policy",
            "expected_wins",
            "lift_vs_round_robin",
            "oracle_lift_captured",
            "soft_violations",
            "unreachable_violations",
            "max_value_share_deviation",
        ]
    ]
    .round(3)
    .to_string(index=False)
)
print(curve.round(3).to_string(index=False))

# %% [markdown]
# ## The curve
#
# Each point is leadmatch replayed with that band (the other fairness constraints unchanged);
# the dashed lines are leadmatch without any fairness, round-robin and the oracle. The gap
# between the dashed "no fairness" line and a point is the price of that band.

# %%
wins = per_policy["expected_wins"]
finite = curve.loc[np.isfinite(curve["band"])]
fig = Figure(figsize=(7, 4))
ax = fig.add_subplot()
ax.plot(finite["band"], finite["expected_wins"], marker="o", label="leadmatch")
for name, style in [
    ("leadmatch_no_fairness", "--"),
    ("round_robin", ":"),
    ("oracle", "-."),
]:
    ax.axhline(wins[name], linestyle=style, color="grey")
    ax.annotate(name, (finite["band"].max(), wins[name]), ha="right", va="bottom", fontsize=8)
ax.set_xlabel("value-share band (± share of the fair share)")
ax.set_ylabel("true expected wins")
ax.set_title(f"{SCENARIO}: {DAYS} day{'' if DAYS == 1 else 's'} replayed")
keep(fig, "curve")

# %% [markdown]
# ## Who gets the value
#
# Each rep's share of the value (what the leads are worth under round-robin) against their
# fair share, per policy: the band is what keeps leadmatch's dots near the diagonal (the dotted
# lines are the configured band; it holds over the nightly run's rolling window, so the whole
# replay can stray a little past it).

# %%
shares = rep_shares(result)
spread = shares.assign(ratio=shares["value_share"] / shares["capacity_share"])
print(spread.groupby("policy")["ratio"].agg(["min", "max"]).round(2).loc[list(table["policy"])])
band = config.matching.fairness.value_share.band
shown = {"round_robin": "s", "leadmatch_no_fairness": "^", "leadmatch": "o"}
fig = Figure(figsize=(5.5, 5))
ax = fig.add_subplot()
for name, marker in shown.items():
    mine = shares.loc[shares["policy"] == name]
    ax.scatter(mine["capacity_share"], mine["value_share"], marker=marker, label=name, alpha=0.7)
top = float(shares.loc[shares["policy"].isin(shown), ["capacity_share", "value_share"]].max().max())
top *= 1.05
ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1)
for factor in (1 - band, 1 + band):
    ax.plot([0, top], [0, top * factor], color="grey", linestyle=":", linewidth=1)
ax.set(xlim=(0, top), ylim=(0, top), xlabel="fair share (share of capacity)", ylabel="value share")
ax.set_title(f"each rep's share of the value (band ±{band:.0%})")
ax.legend(fontsize=8)
keep(fig, "shares")
