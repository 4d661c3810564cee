"""Figures of paper 1's results (Figures 3, 6-12), drawn from the tables the causal rules write."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reach.tiers import TIERS  # noqa: E402


def _tier_lines(ax) -> None:
    for _name, lo, _hi in TIERS[1:]:
        ax.axvline(np.log(lo), color="0.85", lw=0.8, zorder=0)


def _band(ax, table: pd.DataFrame, label: str | None = None, value: str = "estimate", color=None) -> None:
    x = table["log_followers"]
    line, = ax.plot(x, table[value], label=label, color=color)
    ax.fill_between(x, table["lower"], table["upper"], alpha=0.2, color=line.get_color())


def average_figure(average: pd.DataFrame, path: Path, note: str = "") -> None:
    """Figure 6: average FEI (left) and the counterfactual prediction curve (right), 95% bootstrap bands."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    _band(axes[0], average)
    axes[0].set(xlabel="log followers", ylabel="FEI", title="Average FEI")
    x = average["log_followers"]
    axes[1].plot(x, average["impressions"])
    axes[1].fill_between(x, average["impressions_lower"], average["impressions_upper"], alpha=0.2)
    axes[1].set(xlabel="log followers", ylabel="impressions", yscale="log", title="Counterfactual prediction")
    for ax in axes:
        _tier_lines(ax)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="0.4")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def grouped_figure(table: pd.DataFrame, group: str, path: Path, title: str) -> None:
    """Figures 7 and 8: average FEI by engagement tactic or topic, with bands."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, part in table.groupby(group, sort=True):
        _band(ax, part, label=f"{name} (n={int(part['n_videos'].iloc[0])})")
    _tier_lines(ax)
    ax.set(xlabel="log followers", ylabel="FEI", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def naive_figure(naive: pd.DataFrame, average: pd.DataFrame, path: Path, estimator: str = "causal estimate") -> None:
    """Figure 3 beside Figure 6: the correlational slope of log impressions on log followers alone vs causal FEI
    (`estimator`: the estimator's name for the legend)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    inside = ~naive["extrapolated"].astype(bool)
    ax.plot(naive.loc[inside, "log_followers"], naive.loc[inside, "elasticity"], color="tab:red",
            label="naive (spline regression on log followers only)")
    _band(ax, average, label=f"causal average FEI ({estimator})", color="tab:blue")
    _tier_lines(ax)
    ax.set(xlabel="log followers", ylabel="elasticity", title="Naive vs causal follower elasticity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def campaigns_figure(curves: pd.DataFrame, shapes: pd.DataFrame, path: Path) -> None:
    """Figures 9-11: FEI (left) and counterfactual prediction (right) of one campaign per curve shape."""
    picks = shapes.drop_duplicates("shape").sort_values("shape")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for _, row in picks.iterrows():
        part = curves[curves["hashtag"] == row["hashtag"]]
        label = f"#{row['hashtag']} ({row['shape']})"
        _band(axes[0], part, label=label)
        axes[1].plot(part["log_followers"], part["impressions"], label=label)
    axes[0].set(xlabel="log followers", ylabel="FEI", title="Campaign FEI")
    axes[1].set(xlabel="log followers", ylabel="impressions", yscale="log", title="Counterfactual prediction")
    for ax in axes:
        _tier_lines(ax)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def heatmap_figure(heatmap: pd.DataFrame, path: Path, title: str) -> None:
    """Figure 12: optimal follower count (thousands) by cost per 1K followers and revenue per impression; a cell whose
    optimum lies outside the data's follower range (column `extrapolated`, when present) is marked with *."""
    table = heatmap.pivot(index="cost_per_1k_followers", columns="revenue_per_impression", values="optimal_followers")
    marked = (heatmap.pivot(index="cost_per_1k_followers", columns="revenue_per_impression", values="extrapolated")
              .astype(bool).to_numpy() if "extrapolated" in heatmap.columns else np.zeros(table.shape, bool))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    values = np.log10(table.to_numpy())
    im = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis")
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            ax.text(j, i, f"{table.iat[i, j] / 1e3:.0f}" + ("*" if marked[i, j] else ""), ha="center", va="center",
                    fontsize=7, color="w")
    ax.set_xticks(range(table.shape[1]), [f"{v:g}" for v in table.columns], rotation=45)
    ax.set_yticks(range(table.shape[0]), [f"{v:g}" for v in table.index])
    ax.set(xlabel="revenue per impression ($)", ylabel="cost per 1K followers ($)",
           title=title + ("\n* outside the data's follower range (extrapolated)" if marked.any() else ""))
    fig.colorbar(im, ax=ax, label="log10 optimal followers")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def truth_figure(average: pd.DataFrame, truth: pd.DataFrame, naive: pd.DataFrame, path: Path,
                 estimator: str = "causal estimate") -> None:
    """Estimated average FEI with its band against the true average FEI of the synthetic world, and the naive slope
    (`estimator`: the estimator's name for the legend)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    _band(ax, average, label=f"{estimator} (95% band)")
    ax.plot(truth["log_followers"], truth["fei"], "k--", label="truth")
    inside = ~naive["extrapolated"].astype(bool)
    ax.plot(naive.loc[inside, "log_followers"], naive.loc[inside, "elasticity"], color="tab:red", label="naive")
    _tier_lines(ax)
    ax.set(xlabel="log followers", ylabel="FEI", title="Average FEI: estimate vs truth")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
