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
# # Model diagnostics: is the pair model good enough to route leads with?
#
# Trains the pair model exactly as `leadmatch train` does (`build_training_pairs`, then
# `train_and_evaluate`: trees on the earlier pairs, calibration on a later slice, judged on the
# most recent mature slice) and looks at it from every side the optimiser depends on: held-out
# metrics against the lead-only and logistic baselines, calibration overall and per tenure band,
# what the trees use, the rep-signal test, explanations of single pairs, and where it is weakest.
# On the committed simulator sample the truth is known, so the last part compares the model with
# the best probability any model could reach; that part is skipped on real data. Open it in
# JupyterLab with `make notebooks` (each figure shows under its cell), or run it as a script; the
# same environment variables as `history_eda.py` choose the data (for JupyterLab, set them on the
# `make notebooks` command):
#
#     uv run --locked python notebooks/model_diagnostics.py
#     LEADMATCH_DATA=../shared/data/maven-crm-sales-opportunities LEADMATCH_MAPPING=maven \
#         uv run --locked python notebooks/model_diagnostics.py
#
# `LEADMATCH_FIGURES=DIR` also saves every figure there as PNG. Measured with the first command
# on the 2-core development machine: 12 s on `data/sample/` when the machine is quiet,
# up to 30 s when other jobs compete for the cores (LightGBM's two threads suffer most); 35 s on
# the Maven export when quiet, up to about 2.5 minutes under load. No Prefect, no MLflow: the
# same pure functions the train flow wraps.

# %%
# %matplotlib inline
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.pairs import (
    KEY_COLUMNS,
    TARGET,
    build_pairs_at,
    build_training_pairs,
    feature_columns,
)
from models.evaluation import (
    calibration_by_group,
    calibration_table,
    evaluate,
    tenure_band,
)
from models.explain import explain
from models.rep_signal import rep_signal_test
from models.splits import time_split
from models.training import LEAD_ONLY, LOGISTIC, PAIR, train_and_evaluate
from pipelines.config import LeadmatchConfig
from pipelines.io import load_data_folder
from pipelines.notebook_figures import keeper
from simulation import simulate

# As a notebook (no __file__), Jupyter runs this in the notebook's folder; relative paths in the
# environment variables are then read from the repository's root, where `make notebooks` was typed.
NOTEBOOK = "__file__" not in globals()
ROOT = Path.cwd().parent if NOTEBOOK else Path(__file__).resolve().parents[1]
HERE = ROOT if NOTEBOOK else Path.cwd()
SAMPLE = ROOT / "data" / "sample"
# data/sample/ is `leadmatch simulate --scenario small --seed 0`: its truth can be recomputed.
SAMPLE_SCENARIO, SAMPLE_SEED = "small", 0
DATA = HERE / (os.environ.get("LEADMATCH_DATA") or SAMPLE)
MAPPING = os.environ.get("LEADMATCH_MAPPING") or None
FIGURES = os.environ.get("LEADMATCH_FIGURES") or None
config = LeadmatchConfig()
MODELS = [PAIR, LEAD_ONLY, LOGISTIC]
pd.set_option("display.width", 160)
figures: dict[str, Figure] = {}

keep = keeper(figures, "model", HERE / FIGURES if FIGURES else None, NOTEBOOK)


# %% [markdown]
# ## Train as the train flow does
#
# The held-out slice is the most recent `test_fraction` of the pairs whose label is *mature*
# (assigned at least one conversion window before the end of the history): younger labels
# over-represent quick losses. The trees and their calibration learn only from the pairs
# assigned before that slice; younger labelled pairs after it are in neither part. On a short
# history both parts are small: the `small` sample covers four months with a 90-day window, so
# only its first month has mature labels, the model learns from its first three weeks (about a
# thousand pairs, while the reps' records are still nearly empty) and is judged on a couple of
# hundred pairs. Every figure below inherits that noise; the intervals say how much.

# %%
loaded = load_data_folder(DATA, MAPPING, timezone=config.timezone)
data = loaded.data
pairs = build_training_pairs(data, config=config.features)
result = train_and_evaluate(pairs, config.model)
train_pairs, test_pairs = time_split(pairs, config.model.test_fraction)
test_pairs = test_pairs.reset_index(drop=True)
# The same split as inside train_and_evaluate: its held-out rows, with every feature column.
assert test_pairs[KEY_COLUMNS].equals(result.test[KEY_COLUMNS])
test = result.test.assign(
    **{c: test_pairs[c] for c in test_pairs.columns if c not in result.test.columns}
)
y = test[TARGET].astype(int).to_numpy()
print(
    f"{len(pairs):,} labelled pairs; trees and calibration on {result.n_train:,} assigned "
    f"{train_pairs['at'].min():%Y-%m-%d} .. {train_pairs['at'].max():%Y-%m-%d}; "
    f"held out {len(test):,} assigned {test['at'].min():%Y-%m-%d} .. {test['at'].max():%Y-%m-%d}"
)
print(f"boosting rounds kept by early stopping: {result.model.booster_.best_iteration_}")

# %% [markdown]
# ## Held-out metrics against the baselines
#
# One row per model on the same held-out pairs, plus the constant prediction (the training win
# rate for everyone) as the no-skill floor. Lower log loss and Brier are better, higher ROC AUC
# is better, ECE is the average gap between predicted and observed win rates (equal-count bins).
# `lead_only` is the same learner without any rep column: the pair model must beat it, or the
# rep information only adds noise. The logistic model checks that the trees earn their keep.
# Differences in the third decimal of the log loss are within noise on a few hundred pairs;
# the rep-signal test below puts an interval on the one that matters.

# %%
constant = np.full(len(y), train_pairs[TARGET].astype(float).mean())
metrics = pd.DataFrame({**result.metrics, "constant": evaluate(y, constant)}).T
metrics["log_loss_vs_lead_only"] = metrics["log_loss"] - metrics.loc[LEAD_ONLY, "log_loss"]
print(metrics.round(4).to_string())

# %% [markdown]
# ## Calibration, overall and per tenure band
#
# The optimiser compares probabilities across reps, so they must mean what they say: on the
# left, the reliability diagram (observed win share against mean prediction in equal-count
# bins; the diagonal is perfect). On the right, the pair model per rep tenure band at the time
# of the assignment: a model that is calibrated overall can still flatter new reps (predicting
# the team's rate for them) or under-rate seniors, which would move leads between exactly the
# groups the fairness rules protect. Bands with few pairs get few bins and wide error; read the
# table's `n` before the line.

# %%
print(result.calibration_by_tenure.round(3).to_string(index=False))
fig = result.calibration_figure(config.model.ece_bins)
keep(fig, "calibration")
bands = tenure_band(test["rep_tenure_days"], config.model.tenure_bands_days).to_numpy()
fig = Figure(figsize=(5.5, 5))
ax = fig.add_subplot()
top = 0.0
for band in sorted(set(bands)):
    mask = bands == band
    n_bins = int(np.clip(mask.sum() // 30, 1, config.model.ece_bins))
    table = calibration_table(y[mask], test.loc[mask, f"p_{PAIR}"].to_numpy(), n_bins)
    ax.plot(
        table["mean_predicted"], table["observed"], marker="o", label=f"{band} (n={mask.sum()})"
    )
    top = max(top, table["mean_predicted"].max(), table["observed"].max())
top = min(1.0, top * 1.05 + 0.01)
ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1)
ax.set(xlim=(0, top), ylim=(0, top), xlabel="mean predicted", ylabel="observed win share")
ax.set_title("pair model calibration by rep tenure band")
ax.legend(fontsize=8)
keep(fig, "calibration_by_tenure")

# %% [markdown]
# ## What the trees use
#
# Total gain of each feature's splits (how much the trees leaned on it) and the number of
# splits, coloured by whether the feature describes the lead alone or depends on the rep.
# Gain is not an effect size and has no sign: correlated features share the credit (the rep's
# overall and per-segment win rates), and a rep feature can be used a lot in training while
# adding nothing out of sample, which only the rep-signal test can tell. Features the trees never
# split on are listed apart: on a small training slice, `min_child_samples` (200 pairs per leaf
# by default) leaves room for only a few splits, so most features go unused.

# %%
booster = result.model.booster_.booster_
lead_columns = sum(feature_columns(pairs, rep_information=False), [])
importance = pd.DataFrame(
    {
        "gain": booster.feature_importance("gain"),
        "splits": booster.feature_importance("split"),
    },
    index=result.model.feature_names_in_,
)
importance["gain_share"] = importance["gain"] / importance["gain"].sum()
importance["kind"] = np.where(importance.index.isin(lead_columns), "lead", "rep / pair")
importance = importance.sort_values("gain", ascending=False)
print(importance.loc[importance["splits"] > 0].head(20).round(3).to_string())
print(
    "\nshare of the gain from features that depend on the rep: "
    f"{importance.loc[importance['kind'] == 'rep / pair', 'gain_share'].sum():.0%}"
)
unused = importance.index[importance["splits"] == 0]
print(f"never split on ({len(unused)} of {len(importance)}): {', '.join(unused)}")
shown = importance.loc[importance["splits"] > 0].head(20).iloc[::-1]
fig = Figure(figsize=(7, 0.3 * len(shown) + 1))
ax = fig.add_subplot()
ax.barh(
    shown.index,
    shown["gain_share"],
    color=np.where(shown["kind"] == "lead", "C0", "C1"),
)
ax.set_xlabel("share of total gain (blue: lead, orange: rep / pair)")
ax.set_title("pair model: feature importance")
keep(fig, "importance")

# %% [markdown]
# ## The rep-signal test: does knowing the rep help?
#
# The held-out log loss of the lead-only model minus the pair model's, per pair, with a 95%
# bootstrap interval that resamples whole leads. The verdict is "signal" only when the whole
# interval is above zero. It travels with the model (`PairModel.rep_signal_`): without a signal
# the nightly run treats every uplift as zero, so the matching only balances value and load and
# the outputs say so; a rep ranking built on noise would move leads for nothing. A negative gain
# means the rep columns made held-out predictions *worse* (the trees fitted noise in small rep
# records). "No reliable signal" on a small test slice is the test being honest about too little
# data, not a proof that reps are alike: the interval's width says how much more history would
# be needed. The same test per tenure band (with at least 30 pairs) shows where the rep
# information helps; with several bands, one interval clear of zero can be luck.

# %%
signal = result.rep_signal
print(signal.summary())
per_band = [("all", signal)]
for band in sorted(set(bands)):
    mask = bands == band
    if mask.sum() >= 30:
        per_band.append(
            (
                band,
                rep_signal_test(
                    y[mask],
                    test.loc[mask, f"p_{PAIR}"],
                    test.loc[mask, f"p_{LEAD_ONLY}"],
                    test.loc[mask, "lead_id"],
                    n_bootstrap=config.model.n_bootstrap,
                    level=config.model.signal_level,
                    seed=config.model.seed,
                ),
            )
        )
signal_table = pd.DataFrame(
    [
        {"group": name, **{k: v for k, v in s.to_dict().items() if k != "n_bootstrap"}}
        for name, s in per_band
    ]
)
print(signal_table.round(4).to_string(index=False))
fig = Figure(figsize=(6, 0.5 * len(signal_table) + 1.2))
ax = fig.add_subplot()
rows = np.arange(len(signal_table))
ax.errorbar(
    signal_table["gain"],
    rows,
    xerr=[
        signal_table["gain"] - signal_table["interval_low"],
        signal_table["interval_high"] - signal_table["gain"],
    ],
    fmt="o",
    capsize=3,
)
ax.axvline(0, color="grey", linestyle="--")
ax.set_yticks(
    rows,
    [f"{g} (n={n})" for g, n in zip(signal_table["group"], signal_table["n_pairs"], strict=True)],
)
ax.set_xlabel("log loss gain from rep information (nats per pair)")
ax.set_title(f"rep-signal test: {signal.verdict}")
keep(fig, "rep_signal")

# %% [markdown]
# ## Explaining single pairs
#
# LightGBM's `pred_contrib` splits each pair's log-odds into one term per feature;
# `models.explain` groups them into readable factors and converts each into the change in
# calibrated win probability it stands for. These are the reasons managers read in the
# recommendation CSV. Below: the most and least promising held-out pairs, the biggest surprise
# each way, and the pair with the newest rep. Then one lead scored against every rep on the team
# at the moment it was routed, with the factors that depend on the rep only: why the model
# would prefer one rep over another (the rep who actually got it is marked).

# %%
p_pair = test[f"p_{PAIR}"]
wins, losses = test[TARGET] == 1, test[TARGET] == 0
candidates_by_example = {
    "most promising": p_pair.sort_values(ascending=False).index,
    "least promising": p_pair.sort_values().index,
    "won against the odds": p_pair.loc[wins].sort_values().index,
    "lost despite the odds": p_pair.loc[losses].sort_values(ascending=False).index,
    "newest rep": test["rep_tenure_days"].sort_values().index,
}
examples: dict[str, int] = {}
for name, ordered in candidates_by_example.items():
    # Each example a different pair: the most promising pair is often also the biggest loss.
    examples[name] = next(i for i in ordered if i not in examples.values())
explained = explain(result.model, test.loc[list(examples.values())], top_k=4)
explained.insert(0, "example", list(examples))
explained["won"] = test.loc[list(examples.values()), TARGET].to_numpy()
for row in explained.itertuples():
    print(f"{row.example}: {row.lead_id} -> {row.rep_id}, p_win {row.p_win:.2f}, won {row.won}")
    print(f"    {row.reason}")

lead = test.loc[examples["most promising"]]
roster = data.reps.set_index("rep_id")
last_assigned = data.assignments.groupby("rep_id")["assigned_at"].max()
on_team = (roster["hire_date"] <= lead["at"]) & (
    roster["active"] | (last_assigned.reindex(roster.index) >= lead["at"])
)
one_lead = build_pairs_at(
    data,
    pd.DataFrame({"lead_id": lead["lead_id"], "rep_id": roster.index[on_team], "at": lead["at"]}),
    config=config.features,
)
rep_reasons = explain(result.model, one_lead, top_k=3, rep_factors_only=True)
rep_reasons["historical_rep"] = np.where(rep_reasons["rep_id"] == lead["rep_id"], "<-", "")
rep_reasons = rep_reasons.sort_values("p_win", ascending=False)
print(
    f"\nlead {lead['lead_id']} ({lead['industry']}, {lead['product']}, {lead['region']}) "
    f"scored for every rep on {lead['at']:%Y-%m-%d %H:%M}:"
)
print(
    rep_reasons[["rep_id", "p_win", "historical_rep", "reason"]]
    .round(3)
    .to_string(index=False, max_colwidth=90)
)

# %% [markdown]
# ## Where the model is weakest
#
# The held-out pairs cut by segment, tenure band, the size of the rep's record and whether the
# lead's account had history. For each slice: the pair model's and the lead-only model's log
# loss, AUC (empty when a slice has one class), and the calibration gap (mean predicted minus
# observed) with a z-score against pure chance. With a few hundred pairs and some thirty
# slices, one |z| above 2 is expected by luck alone: look for patterns (every slice of new reps
# over-predicted, say), not for single cells. The histogram shows how well the predictions
# separate wins from losses: the more they overlap, the less a ranking of leads can be trusted.

# %%
rep_record = pd.cut(
    test["rep_outcomes"], [-np.inf, 20, 100, np.inf], labels=["< 20", "20-100", ">= 100"]
)
slicings = {
    **{c: test[c].fillna("(missing)") for c in config.features.segment_columns},
    "tenure band": pd.Series(bands, index=test.index),
    "rep outcomes": rep_record.astype(str),
    "account history": np.where(test["account_outcomes"] > 0, "yes", "no"),
}
rows = []
for slicing, groups in slicings.items():
    groups = np.asarray(groups)
    calibration = calibration_by_group(y, p_pair.to_numpy(), groups, n_bins=5)
    for group in calibration.itertuples():
        mask = groups == group.group
        pair_m = evaluate(y[mask], p_pair.to_numpy()[mask])
        lead_m = evaluate(y[mask], test.loc[mask, f"p_{LEAD_ONLY}"].to_numpy())
        se = np.sqrt(group.mean_predicted * (1 - group.mean_predicted) / group.n)
        rows.append(
            {
                "slicing": slicing,
                "group": group.group,
                "n": group.n,
                "observed": group.observed,
                "predicted": group.mean_predicted,
                "gap_z": (group.mean_predicted - group.observed) / se,
                "auc": pair_m["roc_auc"],
                "log_loss": pair_m["log_loss"],
                "log_loss_lead_only": lead_m["log_loss"],
            }
        )
slices = pd.DataFrame(rows)
slices["rep_info_hurts_by"] = slices["log_loss"] - slices["log_loss_lead_only"]
weakest = slices.loc[slices["n"] >= 20].reindex(
    slices.loc[slices["n"] >= 20, "gap_z"].abs().sort_values(ascending=False).index
)
print("slices with the largest calibration gaps (n >= 20):")
print(weakest.head(8).round(3).to_string(index=False))
print("\nslices where the rep information hurts most (log loss above lead-only):")
print(
    slices.loc[slices["n"] >= 20]
    .sort_values("rep_info_hurts_by", ascending=False)
    .head(5)
    .round(3)
    .to_string(index=False)
)
fig = Figure(figsize=(6, 3.5))
ax = fig.add_subplot()
bins = np.linspace(0, p_pair.max(), 30)
ax.hist(p_pair[y == 0], bins=bins, alpha=0.6, density=True, label="not won")
ax.hist(p_pair[y == 1], bins=bins, alpha=0.6, density=True, label="won")
ax.set_xlabel("pair model win probability (held out)")
ax.set_ylabel("density")
ax.set_title("separation of wins and losses")
ax.legend()
keep(fig, "separation")

# %% [markdown]
# ## Against the truth (simulator sample only)
#
# The committed sample is a simulated world, so for every pair the simulator knows the *true*
# win probability (with the lead's hidden quality) and the *knowable* one: the true probability
# averaged over what the lead's visible columns cannot tell, i.e. the best any model of these
# columns can reach. Three questions, each free of outcome noise where possible:
#
# 1. On the held-out pairs, how far is each model's log loss from the knowable one (the floor
#    for a model; the true probability's is lower still, out of any model's reach)?
# 2. On every pair assigned after the training slice ended (the test slice plus the younger pairs
#    the model never saw, several times more pairs and no labels needed), how close are the
#    model's probabilities to the knowable ones, overall and per slice, and is the model
#    calibrated against them (a reliability curve without sampling noise)?
# 3. For a sample of those leads, scored against every rep on the team at that moment: does the
#    model pick a better rep than chance? Compared with the best rep (by the knowable
#    probability) and with the rep the biased historical routing chose. This ignores capacity:
#    it measures the ranking the optimiser is fed, not the matching.

# %%
world = None
if MAPPING is None and DATA.resolve() == SAMPLE.resolve():
    candidate = simulate(SAMPLE_SCENARIO, seed=SAMPLE_SEED)
    keys = ["lead_id", "rep_id", "assigned_at"]
    if candidate.data.assignments[keys].astype(str).equals(data.assignments[keys].astype(str)):
        world = candidate
if world is None:
    print("not the simulator sample: there is no ground truth, the comparison is skipped")
else:
    history_truth = world.history_truth().rename(columns={"assigned_at": "at"})
    truth_keys = history_truth[["lead_id", "rep_id", "at", "open_load", "p_win"]]
    held = test[KEY_COLUMNS].merge(truth_keys, on=KEY_COLUMNS, how="left", validate="one_to_one")
    p_knowable = world.knowable_probability(held)
    truth_metrics = pd.DataFrame(
        {
            **{name: evaluate(y, test[f"p_{name}"]) for name in MODELS},
            "knowable": evaluate(y, p_knowable),
            "true": evaluate(y, held["p_win"]),
        }
    ).T
    reachable = truth_metrics.loc[LEAD_ONLY, "log_loss"] - truth_metrics.loc["knowable", "log_loss"]
    reached = truth_metrics.loc[LEAD_ONLY, "log_loss"] - truth_metrics.loc[PAIR, "log_loss"]
    print(truth_metrics.round(4).to_string())
    print(
        f"\nof the log loss a model could gain over lead-only ({reachable:+.4f} nats per pair on "
        f"these pairs), the pair model gains {reached:+.4f}"
    )

# %%
if world is not None:
    cut = test["at"].min()
    unseen_keys = history_truth.loc[history_truth["at"] >= cut].reset_index(drop=True)
    unseen = build_pairs_at(data, unseen_keys[KEY_COLUMNS], config=config.features)
    unseen = unseen.assign(
        p_knowable=world.knowable_probability(unseen_keys),
        **{
            f"p_{name}": model.predict_proba(unseen)[:, 1]
            for name, model in {PAIR: result.model, **result.baselines}.items()
        },
        tenure_band=tenure_band(
            unseen["rep_tenure_days"], config.model.tenure_bands_days
        ).to_numpy(),
    )
    closeness = pd.DataFrame(
        {
            name: {
                "mean_abs_error": (unseen[f"p_{name}"] - unseen["p_knowable"]).abs().mean(),
                "bias": (unseen[f"p_{name}"] - unseen["p_knowable"]).mean(),
                "correlation": np.corrcoef(unseen[f"p_{name}"], unseen["p_knowable"])[0, 1],
            }
            for name in MODELS
        }
    ).T
    print(f"{len(unseen):,} pairs assigned from {cut:%Y-%m-%d} on, never seen in training:")
    print(closeness.round(4).to_string())
    by_slice = (
        unseen.assign(error=unseen[f"p_{PAIR}"] - unseen["p_knowable"])
        .groupby("tenure_band")
        .agg(
            n=("error", "size"),
            bias=("error", "mean"),
            mean_abs_error=("error", lambda e: e.abs().mean()),
        )
    )
    print("\npair model against the knowable probability, by rep tenure band:")
    print(by_slice.round(4).to_string())
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    for name in MODELS:
        table = calibration_table(unseen["p_knowable"], unseen[f"p_{name}"], config.model.ece_bins)
        ax.plot(table["mean_predicted"], table["observed"], marker="o", label=name)
    top = float(unseen[["p_knowable", f"p_{PAIR}"]].max().max()) * 1.05
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1)
    ax.set(
        xlabel="mean predicted", ylabel="mean knowable probability", xlim=(0, top), ylim=(0, top)
    )
    ax.set_title("calibration against the knowable probability")
    ax.legend(fontsize=8)
    keep(fig, "truth_calibration")

# %%
if world is not None:
    rng = np.random.default_rng(config.seed)
    sampled = unseen_keys.loc[
        rng.choice(len(unseen_keys), size=min(300, len(unseen_keys)), replace=False)
    ]
    reps_truth = world.rep_truth().set_index("rep_id")
    hired = data.reps.set_index("rep_id")["hire_date"]
    grid = sampled[["lead_id", "at", "rep_id"]].rename(columns={"rep_id": "historical_rep"})
    grid = grid.merge(pd.DataFrame({"rep_id": hired.index}), how="cross")
    working = (grid["rep_id"].map(hired) <= grid["at"]) & ~(
        grid["rep_id"].map(reps_truth["left_at"]) <= grid["at"]
    )
    grid = grid.loc[working].reset_index(drop=True)
    candidates = build_pairs_at(data, grid[KEY_COLUMNS], config=config.features)
    grid = grid.assign(
        p_knowable=world.knowable_probability(grid[KEY_COLUMNS]),
        p_pair_model=result.model.predict_proba(candidates)[:, 1],
        p_logistic=result.baselines[LOGISTIC].predict_proba(candidates)[:, 1],
    )
    by_lead = grid.groupby("lead_id")
    mean_knowable = by_lead["p_knowable"].transform("mean")
    best_gain = (
        (by_lead["p_knowable"].transform("max") - mean_knowable).groupby(grid["lead_id"]).first()
    )

    def gain_of(pick: pd.Series) -> float:
        """Mean knowable win probability of each lead's picked rep above the team's mean."""
        return float((grid["p_knowable"] - mean_knowable).loc[pick].mean())

    picks = {
        "best rep (knowable)": by_lead["p_knowable"].idxmax(),
        "pair model's top rep": by_lead["p_pair_model"].idxmax(),
        "logistic's top rep": by_lead["p_logistic"].idxmax(),
        "historical routing": grid.index[grid["rep_id"] == grid["historical_rep"]],
    }
    ranking = pd.DataFrame(
        {
            "gain_over_random_rep": {name: gain_of(pick) for name, pick in picks.items()},
        }
    )
    ranking["share_of_best"] = ranking["gain_over_random_rep"] / best_gain.mean()
    spearman = by_lead[["p_pair_model", "p_knowable"]].corr(method="spearman")
    within = spearman.xs("p_pair_model", level=1)["p_knowable"]
    spread = by_lead[["p_pair_model", "p_knowable"]].std().mean()
    print(
        f"{grid['lead_id'].nunique()} leads x {len(grid) / grid['lead_id'].nunique():.1f} reps on "
        "the team: knowable win probability of the chosen rep above a random rep"
    )
    print(ranking.round(4).to_string())
    print(
        f"\nwithin a lead, rank correlation of the pair model's and the knowable probabilities "
        f"across reps: median {within.median():.2f}; spread across reps (mean std): "
        f"model {spread['p_pair_model']:.3f}, knowable {spread['p_knowable']:.3f}"
    )
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot()
    ax.scatter(grid["p_knowable"], grid["p_pair_model"], s=4, alpha=0.3)
    top = float(grid[["p_knowable", "p_pair_model"]].max().max()) * 1.05
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="knowable win probability", ylabel="pair model", xlim=(0, top), ylim=(0, top))
    ax.set_title("every rep for sampled leads: model against truth")
    keep(fig, "truth_ranking")

# %% [markdown]
# ## Reading it
#
# - If the pair model does not beat `lead_only` on log loss and the rep-signal interval straddles
#   zero, the nightly run will only balance load and value: that is the correct outcome for this
#   history, not a failure.
# - A calibration curve far off the diagonal in one tenure band means uplift is biased for those
#   reps, and the fairness rules, not the model, are what keeps their share right.
# - On the simulator, the gap between the pair model and the knowable probability is what more
#   history (or better features) could still buy, and the ranking table is the part the optimiser
#   actually feeds on: a model can have a modest log loss gain and still pick clearly better reps
#   than chance, or the reverse.
