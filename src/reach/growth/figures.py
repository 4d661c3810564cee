"""Figures of the growth stage (matplotlib, Agg)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def stage1_figure(path, panel, video_tab: pd.DataFrame, r2_draws: dict[str, np.ndarray], n_videos: int = 6,
                  seed: int = 0):
    """Left: daily plays of a few videos with the posterior-mean curve exp(a) log t + exp(b) (Eq. 17).
    Right: posterior of the Bayesian R^2 of a and b (hashtag-level covariate part)."""
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(video_tab), size=min(n_videos, len(video_tab)), replace=False)
    for j in pick:
        m = panel.video == j
        t = panel.t[m]
        line, = ax[0].plot(t, panel.plays[m], "o", ms=3)
        tt = np.linspace(1, t.max(), 50)
        ax[0].plot(tt, np.exp(video_tab["a_mean"].iloc[j]) * np.log(tt) + np.exp(video_tab["b_mean"].iloc[j]),
                   color=line.get_color(), lw=1)
    ax[0].set_yscale("log")
    ax[0].set_xlabel("day t under the hashtag")
    ax[0].set_ylabel("impressions y_ijt")
    ax[0].set_title("Eq. 17 fit (posterior means), sample of videos")
    for name, x in r2_draws.items():
        ax[1].hist(x, bins=40, alpha=0.6, label=name)
    ax[1].set_xlabel("Bayesian R^2 (Gelman et al. 2019)")
    ax[1].set_title("share of a, b explained by non-content covariates")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def coverage_figure(path, per: pd.DataFrame):
    """Posterior 90% intervals of the hashtag-level means against the true means, per quantity."""
    qs = sorted(per["quantity"].unique())
    fig, ax = plt.subplots(1, len(qs), figsize=(4 * len(qs), 4), squeeze=False)
    for k, q in enumerate(qs):
        g = per[per["quantity"] == q].sort_values("truth")
        x = np.arange(len(g))
        col = np.where(g["covered_90"], "tab:blue", "tab:red")
        ax[0, k].vlines(x, g["q05"], g["q95"], colors=col, lw=2)
        ax[0, k].plot(x, g["truth"], "k.", ms=4)
        ax[0, k].set_title(f"{q}: 90% coverage {g['covered_90'].mean():.2f}")
        ax[0, k].set_xlabel("hashtag (sorted by truth)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def stage2_figure(path, preds: dict[str, np.ndarray]):
    """Held-out residual sign probabilities against the residuals, and predicted vs actual residual values."""
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("a", "b"):
        y = preds[f"resid_{name}"]
        if 0 < (y > 0).mean() < 1:
            fpr, tpr, _ = roc_curve(y > 0, preds[f"p_positive_{name}"])
            ax[0].plot(fpr, tpr, label=f"sign of {name} residual")
        ax[1].plot(y, preds[f"pred_{name}"], ".", ms=3, alpha=0.5, label=f"{name}")
    ax[0].plot([0, 1], [0, 1], "k:")
    ax[0].set_xlabel("false positive rate")
    ax[0].set_ylabel("true positive rate")
    ax[0].set_title("held-out ROC (Eqs. 24-26 signs from r)")
    ax[0].legend()
    ax[1].set_xlabel("residual (Stage 1)")
    ax[1].set_ylabel("predicted from r")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
