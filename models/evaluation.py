"""Time-based evaluation: discrimination, log loss, calibration overall and per rep group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score


def calibration_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Reliability table over equal-count bins of ``p``.

    Columns: ``bin`` (0-based), ``n``, ``mean_predicted``, ``observed`` (win share).
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    bins = np.empty(len(p), dtype=int)
    bins[order] = np.arange(len(p)) * n_bins // max(len(p), 1)
    frame = pd.DataFrame({"bin": bins, "y": y, "p": p})
    return (
        frame.groupby("bin")
        .agg(n=("y", "size"), mean_predicted=("p", "mean"), observed=("y", "mean"))
        .reset_index()
    )


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Share-weighted mean of |mean predicted - observed| over equal-count bins of ``p``."""
    table = calibration_table(y, p, n_bins)
    gap = (table["mean_predicted"] - table["observed"]).abs()
    return float((gap * table["n"]).sum() / table["n"].sum())


def ece_noise_floor(p: np.ndarray, n_bins: int = 10) -> float:
    """The expected calibration error a *perfectly* calibrated model with predictions ``p`` would
    still show on this many pairs, from sampling noise alone.

    Each equal-count bin's observed win share scatters around its mean prediction with standard
    deviation ``sqrt(sum p(1 - p)) / n``; the mean absolute value of that (normal) scatter is
    ``sd * sqrt(2 / pi)``, weighted by bin size as in :func:`expected_calibration_error`. An ECE
    near this floor is as calibrated as the held-out slice can tell.
    """
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    bins = np.empty(len(p), dtype=int)
    bins[order] = np.arange(len(p)) * n_bins // max(len(p), 1)
    variance = np.bincount(bins, weights=p * (1.0 - p))
    sizes = np.bincount(bins).astype(float)
    used = sizes > 0
    sd = np.sqrt(variance[used]) / sizes[used]
    return float((sd * np.sqrt(2.0 / np.pi) * sizes[used]).sum() / sizes.sum())


def evaluate(y: np.ndarray, p: np.ndarray, *, n_bins: int = 10) -> dict[str, float]:
    """Held-out metrics of win probabilities ``p`` against 0/1 outcomes ``y``.

    Keys: ``n``, ``base_rate``, ``mean_predicted``, ``roc_auc`` (NaN with one class),
    ``log_loss``, ``brier``, ``ece`` (equal-count bins) and ``ece_noise`` (the ECE a perfectly
    calibrated model would show on these pairs: :func:`ece_noise_floor`).
    """
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    return {
        "n": float(len(y)),
        "base_rate": float(y.mean()),
        "mean_predicted": float(p.mean()),
        "roc_auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p, n_bins),
        "ece_noise": ece_noise_floor(p, n_bins),
    }


def tenure_band(tenure_days: pd.Series | np.ndarray, edges: Sequence[int]) -> pd.Series:
    """Rep tenure bands as labels, e.g. edges (90, 365) -> '<90d', '90-365d', '>=365d'."""
    edges = list(edges)
    labels = [f"<{edges[0]}d"]
    labels += [f"{lo}-{hi}d" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    labels += [f">={edges[-1]}d"]
    bands = pd.cut(
        pd.Series(np.asarray(tenure_days, dtype=float)),
        bins=[-np.inf, *edges, np.inf],
        labels=labels,
        right=False,
    )
    return bands.astype("str").fillna("unknown")


def calibration_by_group(
    y: np.ndarray, p: np.ndarray, groups: pd.Series | np.ndarray, *, n_bins: int = 10
) -> pd.DataFrame:
    """Calibration per group (e.g. rep tenure band).

    Columns: ``group``, ``n``, ``mean_predicted``, ``observed``, ``ece`` (within the group).
    """
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": p, "group": np.asarray(groups)})
    rows = [
        {
            "group": group,
            "n": len(part),
            "mean_predicted": part["p"].mean(),
            "observed": part["y"].mean(),
            "ece": expected_calibration_error(part["y"], part["p"], n_bins),
        }
        for group, part in frame.groupby("group", sort=True)
    ]
    return pd.DataFrame(rows, columns=["group", "n", "mean_predicted", "observed", "ece"])


def calibration_plot(
    y: np.ndarray, predictions: Mapping[str, np.ndarray], *, n_bins: int = 10
) -> Figure:
    """Reliability diagram: observed win share against mean predicted probability per bin, one
    line per model in ``predictions`` (name -> probabilities), with the diagonal."""
    figure = Figure(figsize=(5.5, 5))
    axes = figure.subplots()
    top = 0.0
    for name, p in predictions.items():
        table = calibration_table(y, p, n_bins)
        ece = expected_calibration_error(y, p, n_bins)
        axes.plot(
            table["mean_predicted"], table["observed"], marker="o", label=f"{name} (ECE {ece:.3f})"
        )
        top = max(top, table["mean_predicted"].max(), table["observed"].max())
    top = min(1.0, top * 1.05 + 0.01)
    axes.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="perfect")
    axes.set(
        xlim=(0, top),
        ylim=(0, top),
        xlabel="mean predicted win probability",
        ylabel="observed win share",
        title=f"Calibration on the held-out slice ({len(np.asarray(y))} pairs)",
    )
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure
