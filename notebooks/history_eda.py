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
# # What the CRM history says: volumes, win rates, reps, follow-up, load and concentration
#
# Before any model: what is in a CRM history folder, how noisy it is, and how unevenly the
# historical routing shared the leads out (the unfairness leadmatch is meant to fix). By default
# it reads the committed sample `data/sample/` (the `small` simulated world: 12 reps, four
# months). Open it in JupyterLab with `make notebooks` (each figure shows under its cell), or run
# it as a script; environment variables point it at any data folder (for JupyterLab, set them on
# the `make notebooks` command):
#
#     uv run --locked python notebooks/history_eda.py
#     LEADMATCH_DATA=../shared/data/maven-crm-sales-opportunities LEADMATCH_MAPPING=maven \
#         uv run --locked python notebooks/history_eda.py
#
# `LEADMATCH_FIGURES=DIR` also saves every figure there as PNG. Measured with the first command
# on the 2-core development machine: 8 s on `data/sample/` (about 6 s of it imports),
# 8 s on the Maven export. It calls the same pure library functions as the flows
# (`load_data_folder`, `build_training_pairs`, the point-in-time rep features), without Prefect
# or MLflow.
#
# Win rates here use the model's target: a pair counts as won if the lead was won within the
# conversion window (90 days by default) of its assignment; assignments still open and younger
# than the window are left out, not counted as losses. Intervals are 95% Jeffreys intervals.

# %%
# %matplotlib inline
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import beta

from features.daily import leads_to_place, snapshot
from features.describe import describe_crm, usability_problems
from features.leads import LEAD_CATEGORICAL
from features.pairs import build_training_pairs, default_as_of
from features.reps import index_history, rep_features
from models.evaluation import tenure_band
from pipelines.config import LeadmatchConfig
from pipelines.io import load_data_folder
from pipelines.notebook_figures import keeper

# As a notebook (no __file__), Jupyter runs this in the notebook's folder; relative paths in the
# environment variables are then read from the repository's root, where `make notebooks` was typed.
NOTEBOOK = "__file__" not in globals()
ROOT = Path.cwd().parent if NOTEBOOK else Path(__file__).resolve().parents[1]
HERE = ROOT if NOTEBOOK else Path.cwd()
DATA = HERE / (os.environ.get("LEADMATCH_DATA") or ROOT / "data" / "sample")
MAPPING = os.environ.get("LEADMATCH_MAPPING") or None
FIGURES = os.environ.get("LEADMATCH_FIGURES") or None
config = LeadmatchConfig()
DAY = pd.Timedelta(days=1)
pd.set_option("display.width", 160)
figures: dict[str, Figure] = {}

keep = keeper(figures, "eda", HERE / FIGURES if FIGURES else None, NOTEBOOK)


def win_rates(frame: pd.DataFrame, by: str | pd.Series) -> pd.DataFrame:
    """Pairs, wins, win rate and its 95% Jeffreys interval per group of labelled pairs."""
    table = frame.groupby(by, dropna=False, observed=True)["won"].agg(n="size", wins="sum")
    table["wins"] = table["wins"].astype(int)
    table["win_rate"] = table["wins"] / table["n"]
    a, b = table["wins"] + 0.5, table["n"] - table["wins"] + 0.5
    table["low"] = np.where(table["wins"] > 0, beta.ppf(0.025, a, b), 0.0)
    table["high"] = np.where(table["wins"] < table["n"], beta.ppf(0.975, a, b), 1.0)
    return table


def rate_bars(ax, table: pd.DataFrame, title: str) -> None:
    """Horizontal win rates with their intervals, the pair count beside each bar."""
    y = np.arange(len(table))
    ax.errorbar(
        table["win_rate"],
        y,
        xerr=[table["win_rate"] - table["low"], table["high"] - table["win_rate"]],
        fmt="o",
        capsize=3,
    )
    ax.set_yticks(y, [str(i) for i in table.index])
    for yi, (high, n) in enumerate(zip(table["high"], table["n"], strict=True)):
        ax.annotate(f"n={n}", (high, yi), xytext=(4, 0), textcoords="offset points", va="center")
    ax.axvline(base_rate, color="grey", linestyle="--", linewidth=1)
    ax.set_title(title)
    ax.set_xlabel("won within the window")


# %% [markdown]
# ## The data set at a glance
#
# `load_data_folder` validates every table against the data contract (a folder that fails stops
# here with the list of problems). The summary is what `leadmatch validate` prints; the
# adapter's repairs (Maven only) say what was guessed or fixed on the way in. The labelled pairs
# are exactly the ones `leadmatch train` learns from, with point-in-time rep features (tenure and
# open load at the moment of each assignment).

# %%
loaded = load_data_folder(DATA, MAPPING, timezone=config.timezone)
data = loaded.data
leads, asg, reps = data.leads, data.assignments, data.reps
as_of = default_as_of(data)
summary = describe_crm(data)
for label, value in summary.items():
    print(f"{label:>24}: {value:.3f}" if isinstance(value, float) else f"{label:>24}: {value}")
for repair in loaded.repairs:
    print("repair:", repair)
pairs = build_training_pairs(data, as_of=as_of, config=config.features)
base_rate = float(pairs["won"].mean())
print(
    f"\n{len(pairs):,} labelled pairs (of {len(asg):,} assignment rows), "
    f"{int(pairs['mature'].sum()):,} with a mature label; win rate {base_rate:.1%} "
    f"({pairs.loc[pairs['mature'], 'won'].mean():.1%} among mature labels)"
)

# %% [markdown]
# ## Volumes over time
#
# Leads created, assignments made and outcomes decided per week. Look for the start-up of the
# export (the first weeks have no outcome history, so every rep-record feature starts empty),
# holidays, and a spike or drop at the end: there, a bulk import or the export date itself
# (Maven's "Prospecting" deals all carry it) rather than real arrivals. Outcomes are counted in
# the week they were decided, so they ramp up over the first sales cycle. Counted by the week of
# the assignment instead, the most recent weeks would show a collapse of wins: that is censoring
# (their outcomes are not in yet), not a bad quarter, and it is why the model only judges itself
# on mature labels.

# %%
weekly = pd.DataFrame(
    {
        "leads created": leads.set_index("created_at").resample("W-MON")["lead_id"].size(),
        "assignments": asg.set_index("assigned_at").resample("W-MON")["lead_id"].size(),
        "won (by close week)": asg.loc[asg["status"] == "won"]
        .set_index("closed_at")
        .resample("W-MON")["lead_id"]
        .size(),
        "lost (by close week)": asg.loc[asg["status"] == "lost"]
        .set_index("closed_at")
        .resample("W-MON")["lead_id"]
        .size(),
    }
).fillna(0)
weekly = weekly.loc[weekly.index <= as_of + 7 * DAY]
print(weekly.describe().loc[["mean", "min", "max"]].round(1).to_string())
fig = Figure(figsize=(9, 3.5))
ax = fig.add_subplot()
for column, style in zip(weekly.columns, ["-", "--", ":", "-."], strict=True):
    ax.plot(weekly.index, weekly[column], style, label=column)
ax.set_ylabel("per week")
ax.set_title("Volumes per week (weeks ending on Monday)")
ax.legend(fontsize=8)
keep(fig, "volumes")

# %% [markdown]
# ## Win rate by source, industry, region and product
#
# Each dot is a segment's win rate with its 95% interval; the dashed line is the overall rate.
# Segments whose interval misses the line differ for real; the others may not. These are rates
# *under the historical routing*: a segment that was mostly handed to strong reps looks better
# than its leads are. A segment with a single value (e.g. `source` "unknown" throughout the
# Maven export) carries no information for the model.

# %%
segment_rates = {column: win_rates(pairs, column) for column in config.features.segment_columns}
fig = Figure(figsize=(10, 2.2 + 0.9 * len(segment_rates)))
for i, (column, table) in enumerate(segment_rates.items()):
    rate_bars(fig.add_subplot(2, 2, i + 1), table, column)
    print(table.round(3).to_string(), end="\n\n")
keep(fig, "segments")

# %% [markdown]
# ## Reps: volume, win rate and how much of it is noise
#
# Left: each rep's raw win rate over their labelled pairs with its interval (sorted), and the
# shrunk rate the model sees for them today (`rep_win_rate` as of the end of the history:
# trailing window, pulled towards the team rate with a prior worth `shrinkage_strength`
# outcomes). Right: a funnel plot, each rep's raw rate against their number of pairs, inside the
# band where 95% of reps would fall if every rep had the overall rate (the reps outside it are
# named). If about 5% of reps fall outside, the differences between reps are what luck alone
# produces and a ranking of reps is noise; a rep with few leads can look like the best or the
# worst by chance. Many more outside the funnel means the reps really differ, but not
# necessarily in skill: the raw rates also carry the leads each rep was given (next sections)
# and, on real exports, how diligently each rep closes dead deals in the CRM. This is why the
# features shrink and why training runs a rep-signal test before the matching may trust rep
# differences.

# %%
rep_table = win_rates(pairs, "rep_id")
now = rep_features(
    pd.DataFrame({"rep_id": rep_table.index.astype(str), "at": as_of}, index=rep_table.index),
    index_history(asg, leads, reps, config.features),
)
rep_table = rep_table.assign(
    assignments=asg.groupby("rep_id").size().reindex(rep_table.index),
    shrunk_rate=now["rep_win_rate"],
    tenure_days=now["rep_tenure_days"].round(0),
    active=reps.set_index("rep_id")["active"].reindex(rep_table.index),
    interval_width=rep_table["high"] - rep_table["low"],
).sort_values("win_rate")
print(rep_table.round(3).to_string())
outside = (rep_table["win_rate"] - base_rate).abs() > 1.96 * np.sqrt(
    base_rate * (1 - base_rate) / rep_table["n"]
)
print(
    f"\nmedian interval width {rep_table['interval_width'].median():.2f}; spread of raw rates "
    f"(max - min) {rep_table['win_rate'].max() - rep_table['win_rate'].min():.2f}, "
    f"of shrunk rates {rep_table['shrunk_rate'].max() - rep_table['shrunk_rate'].min():.2f}; "
    f"{int(outside.sum())} of {len(rep_table)} reps outside the funnel "
    f"(about {0.05 * len(rep_table):.1f} expected by chance)"
)
fig = Figure(figsize=(11, 1.5 + 0.28 * len(rep_table)))
ax = fig.add_subplot(1, 2, 1)
rate_bars(ax, rep_table, "raw win rate (dots), shrunk rate today (x)")
ax.plot(rep_table["shrunk_rate"], np.arange(len(rep_table)), "x", color="C3")
ax = fig.add_subplot(1, 2, 2)
n_grid = np.geomspace(max(rep_table["n"].min(), 1) / 2, rep_table["n"].max() * 2, 100)
half_width = 1.96 * np.sqrt(base_rate * (1 - base_rate) / n_grid)
ax.fill_between(n_grid, base_rate - half_width, base_rate + half_width, color="grey", alpha=0.2)
ax.axhline(base_rate, color="grey", linestyle="--", linewidth=1)
ax.scatter(rep_table["n"], rep_table["win_rate"])
for rep_id, row in rep_table.loc[outside].iterrows():
    ax.annotate(
        str(rep_id),
        (row["n"], row["win_rate"]),
        fontsize=7,
        xytext=(3, 2),
        textcoords="offset points",
    )
ax.set_xscale("log")
ax.set_xlabel("labelled pairs of the rep (log scale)")
ax.set_ylabel("raw win rate")
ax.set_title("funnel: where 95% of reps fall by luck")
keep(fig, "reps")

# %% [markdown]
# ## Tenure and win rate
#
# Win rate by the rep's tenure *at the time of the assignment* (the bands of the calibration
# report, with how many reps each holds), next to the mean expected value of the leads each band
# was given. New reps do worse in most teams, but the historical routing also gave them
# different leads: a lower win rate of new reps mixes "still learning" with "got the leftovers",
# and only a model that sees the lead can begin to separate the two.

# %%
band = tenure_band(pairs["rep_tenure_days"], config.model.tenure_bands_days)
band.index = pairs.index
edges = config.model.tenure_bands_days
order = [*tenure_band([0.0, *edges], edges), "unknown"]
tenure_table = win_rates(pairs, band).reindex([b for b in order if b in set(band)])
tenure_table["mean_expected_value"] = pairs.groupby(band)["expected_value"].mean()
tenure_table["reps"] = pairs.groupby(band)["rep_id"].nunique()
print(tenure_table.round(3).to_string())
fig = Figure(figsize=(9, 3.2))
rate_bars(fig.add_subplot(1, 2, 1), tenure_table, "win rate by tenure band")
ax = fig.add_subplot(1, 2, 2)
ax.barh(np.arange(len(tenure_table)), tenure_table["mean_expected_value"])
ax.set_yticks(np.arange(len(tenure_table)), tenure_table.index)
ax.set_xlabel("mean expected value of the leads given")
ax.set_title("what each tenure band was given")
keep(fig, "tenure")

# %% [markdown]
# ## First contact: how fast, how often never, and the win rate
#
# Delay from assignment to first contact, and the share of rows never contacted by status. The
# win rate by delay is *not* a causal effect of speed: a lead can only be won after a contact,
# so "never contacted" is almost by definition "not won", and reps who call fast may also be the
# strong reps who got the good leads. What it does show is the size of the problem the nightly
# run's SLA reclaim addresses: open leads nobody has called after `sla_days`. The last line is
# what the next nightly run would take on (`features.daily.leads_to_place`, as the recommend flow
# calls it): unassigned leads and reclaimed ones, leaving out those older than
# `max_lead_age_days`.

# %%
delay_days = (asg["first_contact_at"] - asg["assigned_at"]) / DAY
print(
    "share never contacted, by status:\n"
    + asg["first_contact_at"].isna().groupby(asg["status"]).mean().round(3).to_string()
)
print("\ndelay to first contact (days), contacted rows:")
print(delay_days.describe(percentiles=[0.25, 0.5, 0.75, 0.9, 0.99]).round(2).to_string())
closed = asg.loc[asg["status"].isin(["won", "lost"])].assign(
    won=lambda f: (f["status"] == "won").astype(int)
)
delay_edges = [0, 1 / 24, 4 / 24, 1, 3, 7, np.inf]
labels = ["< 1 h", "1-4 h", "4-24 h", "1-3 d", "3-7 d", "> 7 d"]
bucket = pd.cut(delay_days.loc[closed.index], delay_edges, labels=labels, right=False)
bucket = bucket.cat.add_categories("never").fillna("never")
delay_table = win_rates(closed, bucket)
print("\nclosed rows by delay to first contact:\n" + delay_table.round(3).to_string())
pool = leads_to_place(
    snapshot(data, as_of),
    as_of,
    sla_days=config.recommend.sla_days,
    max_age_days=config.recommend.max_lead_age_days,
    working_days=config.recommend.working_days,
)
print(
    f"\nthe next nightly run ({as_of:%Y-%m-%d}) would place {pool.n_unassigned} unassigned "
    f"leads, {pool.n_rep_left} of reps who left, and reclaim {pool.n_reclaimed} whose SLA of "
    f"{config.recommend.sla_days:g} working days passed since the previous working day; "
    f"{pool.too_old} are older than {config.recommend.max_lead_age_days} days and left out"
)
for note in pool.notes:
    print(f"note: {note}")
fig = Figure(figsize=(9, 3.2))
ax = fig.add_subplot(1, 2, 1)
hours = (delay_days.loc[delay_days > 0] * 24).dropna()
if len(hours):
    ax.hist(hours, bins=np.geomspace(hours.min(), hours.max(), 40))
ax.set_xscale("log")
ax.set_xlabel("hours from assignment to first contact (log scale)")
ax.set_ylabel("rows")
ax.set_title(f"contact delay ({int((delay_days == 0).sum())} rows at exactly 0 left out)")
rate_bars(fig.add_subplot(1, 2, 2), delay_table, "win rate of closed rows by delay")
keep(fig, "first_contact")

# %% [markdown]
# ## Open load over time
#
# Each rep's open leads (assigned and not yet closed) at the start of every day, divided by their
# daily capacity as the export states it today: "days of work in hand" (the model does not use
# capacity, which may have been different on those days). Rows that stay dark
# while others are bright mean the routing loaded reps unevenly. The total starts at zero (the
# export holds no leads from before its first day) and should level off once leads close as fast
# as they arrive; a total that keeps rising means leads that are never closed in the CRM (stale
# open records: see the data-quality table). Overloaded reps convert worse in most teams (and in
# the simulator), which the matching's open-load limits guard against.

# %%
days = pd.date_range(asg["assigned_at"].min().normalize() + DAY, as_of, freq="D")
rep_ids = reps["rep_id"].astype(str).to_numpy()
grid = pd.DataFrame({"rep_id": np.repeat(rep_ids, len(days)), "at": np.tile(days, len(rep_ids))})
loads = pd.concat(
    [grid, rep_features(grid, index_history(asg, leads, reps, config.features))], axis=1
)
capacity = loads["rep_id"].map(reps.set_index("rep_id")["daily_capacity"]).astype(float)
loads["load_per_capacity"] = loads["rep_open_load"] / np.maximum(capacity, 1.0)
hired = loads["rep_tenure_days"] >= 0
open_total = loads.groupby("at")["rep_open_load"].sum()
load_per_capacity = loads.loc[hired].pivot(index="rep_id", columns="at", values="load_per_capacity")
print(
    f"open assignments at the start of a day: median {open_total.median():.0f}, "
    f"max {open_total.max():.0f} (on {open_total.idxmax():%Y-%m-%d})"
)
print(
    "days of capacity in hand per rep (median over days):\n"
    + load_per_capacity.median(axis=1).sort_values().round(1).to_string()
)
fig = Figure(figsize=(9, 2 + 0.25 * len(load_per_capacity)))
ax = fig.add_subplot(2, 1, 1)
ax.plot(open_total.index, open_total.to_numpy())
ax.set_ylabel("open assignments")
ax.set_title("open load, whole team")
ax = fig.add_subplot(2, 1, 2)
image = ax.imshow(
    load_per_capacity.to_numpy(dtype=float),
    aspect="auto",
    interpolation="nearest",
    extent=(0, len(days), len(load_per_capacity) - 0.5, -0.5),
)
ax.set_yticks(range(len(load_per_capacity)), load_per_capacity.index)
ax.set_xlabel(f"days since {days[0]:%Y-%m-%d}")
ax.set_title("open load per rep, in days of daily capacity (blank before hire)")
fig.colorbar(image, ax=ax)
keep(fig, "open_load")

# %% [markdown]
# ## How concentrated was the historical routing?
#
# The top leads are the most valuable fifth by expected value (the share of the matching's tier
# A, `tier_quantiles`), i.e. what the routing of the time could see of a lead's worth. For each
# rep: their share of all first assignments, of the top leads, and of the capacity (daily
# capacity times the days they were on the team during the history; a rep who left is counted
# until their last assignment). A fair routing gives each rep roughly their capacity share of
# the top leads (ratio 1). Historical routing usually does not: the senior reps keep the best
# leads and new reps starve, which is what the matching's value-share band, top-tier cap
# (`max_share`) and new-rep quota (`min_share` of the top leads for reps in their first
# `ramp_days`) correct.

# %%
first = asg.sort_values("assigned_at", kind="stable").drop_duplicates("lead_id")
lead_value = leads.set_index("lead_id")["expected_value"] if "expected_value" in leads else None
if lead_value is None or lead_value.isna().all():
    concentration = None
    print("the leads have no expected_value: no value tiers to measure concentration on")
else:
    tier_start = lead_value.quantile(config.matching.tier_quantiles[1])
    first = first.assign(top=(lead_value.reindex(first["lead_id"]) >= tier_start).to_numpy())
    rep_info = reps.set_index("rep_id")
    start = asg["assigned_at"].min().normalize()
    last_seen = asg.groupby("rep_id")["assigned_at"].max()
    until = pd.Series(as_of, index=rep_info.index).where(
        rep_info["active"], last_seen.reindex(rep_info.index)
    )
    on_team = ((until - rep_info["hire_date"].clip(lower=start)) / DAY).clip(lower=0).fillna(0)
    capacity_days = rep_info["daily_capacity"].astype(float) * on_team
    concentration = pd.DataFrame(
        {
            "leads": first.groupby("rep_id").size(),
            "top_leads": first.groupby("rep_id")["top"].sum(),
        }
    ).reindex(rep_info.index, fill_value=0)
    concentration = concentration.assign(
        share_of_leads=concentration["leads"] / concentration["leads"].sum(),
        share_of_top=concentration["top_leads"] / concentration["top_leads"].sum(),
        capacity_share=capacity_days / capacity_days.sum(),
        tenure_now_days=((as_of - rep_info["hire_date"]) / DAY).round(0),
    )
    concentration["top_per_capacity"] = (
        concentration["share_of_top"] / concentration["capacity_share"]
    )
    concentration = concentration.sort_values("share_of_top", ascending=False)
    n_top_reps = max(1, int(np.ceil(0.2 * (concentration["leads"] > 0).sum())))
    head = concentration.head(n_top_reps)
    top_reps_share = float(head["share_of_top"].sum())
    print(concentration.round(3).to_string())
    top_won = win_rates(
        pairs.assign(top=pairs["lead_id"].map(first.set_index("lead_id")["top"])), "top"
    )
    print(f"\nwin rate of top leads vs the rest:\n{top_won.round(3).to_string()}")
    print(
        f"\nthe {n_top_reps} reps with the most top leads (a fifth of those with history) got "
        f"{top_reps_share:.0%} of the top leads with "
        f"{head['capacity_share'].sum():.0%} of the capacity; the largest single share is "
        f"{concentration['share_of_top'].max():.0%} (the matching caps it at "
        f"{config.matching.fairness.top_tier_cap.max_share:.0%})"
    )
    ramp = config.matching.fairness.new_rep_quota.ramp_days
    ramping = ((first["assigned_at"] - first["rep_id"].map(rep_info["hire_date"])) / DAY) < ramp
    print(
        f"reps in their first {ramp} days got {ramping.mean():.1%} of all leads and "
        f"{ramping[first['top']].mean():.1%} of the top leads (the matching's quota: at least "
        f"{config.matching.fairness.new_rep_quota.min_share:.0%} of the top leads on days they work)"
    )
    fig = Figure(figsize=(10, 3.6))
    ax = fig.add_subplot(1, 2, 1)
    ratio = concentration.sort_values("top_per_capacity")
    ax.barh(ratio.index, ratio["top_per_capacity"])
    ax.axvline(1, color="grey", linestyle="--")
    ax.set_xlabel("share of top leads / share of capacity")
    ax.set_title("top leads per unit of capacity")
    ax = fig.add_subplot(1, 2, 2)
    lorenz = concentration.sort_values("top_per_capacity")
    ax.plot(
        np.r_[0, lorenz["capacity_share"].cumsum()],
        np.r_[0, lorenz["share_of_top"].cumsum()],
        marker="o",
        label="historical routing",
    )
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="top leads by capacity")
    ax.set_xlabel("cumulative share of capacity (reps by ratio)")
    ax.set_ylabel("cumulative share of top leads")
    ax.set_title("concentration of the top leads")
    ax.legend(fontsize=8)
    keep(fig, "concentration")

# %% [markdown]
# ## Data quality: what a data scientist should know before trusting the rest
#
# Every row passed the contract, but a valid table can still mislead a model. Each line is a
# check, how many rows (or columns, or values) it concerns and why it matters; 0 is good news.

# %%
categorical = LEAD_CATEGORICAL + [c for c in leads.columns if str(c).startswith("x_")]
categorical = [c for c in categorical if not pd.api.types.is_numeric_dtype(leads[c])]
rare = {
    c: int((leads[c].value_counts() < config.model.min_category_count).sum()) for c in categorical
}
created = leads.set_index("lead_id")["created_at"]
rows_per_lead = asg.groupby("lead_id").size()
open_rows = asg["status"] == "open"
window = pd.Timedelta(days=config.features.conversion_window_days)
reps_with_history = set(asg["rep_id"])
checks = [
    (
        "data cannot drive leadmatch",
        len(usability_problems(data)),
        "; ".join(usability_problems(data)),
    ),
    (
        "repairs made by the adapter",
        len(loaded.repairs),
        "guessed or fixed on the way in (see above)",
    ),
    *[
        (f"leads missing {c}", int(leads[c].isna().sum()), "missing stays missing for the model")
        for c in leads.columns
        if leads[c].isna().any()
    ],
    *[
        (f"lead column {c} has a single value", 1, "carries no information")
        for c in leads.columns
        if c != "lead_id" and leads[c].nunique(dropna=False) <= 1
    ],
    (
        "leads created exactly at midnight",
        int((created == created.dt.normalize()).sum()),
        "dates without a time: created_hour is meaningless",
    ),
    *[
        (
            f"{c} values seen < {config.model.min_category_count} times",
            n,
            "share the model's 'unknown' code",
        )
        for c, n in rare.items()
        if n
    ],
    *[
        (
            f"{c} = {value!r}: all {'won' if row.wins else 'not won'}",
            row.n,
            "one value decides the outcome: a recording artefact",
        )
        for c, table in segment_rates.items()
        for value, row in zip(table.index, table.itertuples(), strict=True)
        if row.n >= 30 and row.wins in (0, row.n)
    ],
    (
        "assignments before their lead was created",
        int((asg["assigned_at"] < asg["lead_id"].map(created)).sum()),
        "the contract does not check it; lead_age_days turns negative",
    ),
    (
        "leads assigned more than once",
        int((rows_per_lead > 1).sum()),
        "reassignments: each row is a separate training pair",
    ),
    (
        "leads never assigned",
        int((~leads["lead_id"].isin(asg["lead_id"])).sum()),
        f"the next nightly run places those younger than {config.recommend.max_lead_age_days} days",
    ),
    (
        "open rows older than the conversion window",
        int((open_rows & (as_of - asg["assigned_at"] > window)).sum()),
        "count as not won in training: stale CRM records or slow deals?",
    ),
    (
        f"open leads not contacted after {config.recommend.sla_days:g} days",
        pool.n_reclaimed,
        "the next nightly run reclaims them (older ones are left out)",
    ),
    (
        "leads too old for the next nightly run",
        pool.too_old,
        f"unassigned or reclaimable, older than {config.recommend.max_lead_age_days} days",
    ),
    (
        "first contact at the very moment of assignment",
        int((asg["first_contact_at"] == asg["assigned_at"]).sum()),
        "contact times filled in from the assignment date, not recorded",
    ),
    (
        "won rows with a deal value of 0",
        int(((asg["status"] == "won") & (asg["deal_value"] == 0)).sum()),
        "value objectives would count them as worthless",
    ),
    (
        "reps without any assignment",
        int((~reps["rep_id"].isin(reps_with_history)).sum()),
        "no record: the model treats them as new (team rate)",
    ),
    (
        "open rows held by inactive reps",
        int(asg.loc[open_rows, "rep_id"].isin(reps.loc[~reps["active"], "rep_id"]).sum()),
        "only uncontacted ones are reclaimed: reassign the rest by hand",
    ),
]
findings = pd.DataFrame(checks, columns=["check", "count", "why it matters"])
print(findings.to_string(index=False, max_colwidth=70))
