# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
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
# training; `DAYS = 30` gives the full picture in about eight) with leadmatch at several band
# widths, and plots wins against the band, next to round-robin and the oracle. (The `small`
# world is quicker, but its history is too short for the model to find a reliable rep signal:
# leadmatch then only balances, and the curve is flat.) Run it top to bottom:
#
#     uv run --locked python notebooks/fairness_tradeoff.py
#
# (or open it in Jupyter with jupytext). It calls the same pure functions as the `backtest` flow,
# without Prefect or MLflow.

# %%
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from features.pairs import build_training_pairs  # noqa: E402
from models.training import train_and_evaluate  # noqa: E402
from pipelines.backtest import (  # noqa: E402
    fairness_curve,
    policy_figures,
    policy_table,
    replay,
    rep_shares,
)
from pipelines.config import LeadmatchConfig  # noqa: E402
from simulation import simulate  # noqa: E402

SCENARIO, DAYS, SEED = "default", 3, 0
BANDS = (0.05, 0.1, 0.3, 0.5)
config = LeadmatchConfig()

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
result = replay(world, trained.model, days=DAYS, seed=SEED, config=config, bands=BANDS)
figures = policy_figures(result, config)
table = policy_table(figures)
curve = fairness_curve(figures, config)
pd.set_option("display.width", 160)
print(table[["policy", "expected_wins", "lift_vs_round_robin", "oracle_lift_captured",
             "soft_violations", "unreachable_violations", "max_value_share_deviation"]].round(3).to_string(index=False))
print(curve.round(3).to_string(index=False))

# %% [markdown]
# ## The curve
#
# Each point is leadmatch replayed with that band (the other fairness constraints unchanged);
# the dashed lines are leadmatch without any fairness, round-robin and the oracle. The gap
# between the dashed "no fairness" line and a point is the price of that band.

# %%
wins = figures["expected_wins"]
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
ax.set_title(f"{SCENARIO}: {DAYS} days replayed")
fig.tight_layout()
fig

# %% [markdown]
# ## Who gets the value
#
# Each rep's share of the value (what the leads are worth under round-robin) against their
# fair share, per policy: the band is what keeps leadmatch's dots near the diagonal.

# %%
shares = rep_shares(result)
spread = shares.assign(ratio=shares["value_share"] / shares["capacity_share"])
print(spread.groupby("policy")["ratio"].agg(["min", "max"]).round(2).loc[list(table["policy"])])
