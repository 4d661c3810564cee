"""Figures of paper 2 reproduced from the tables: Figure 2 (estimator study), Figure 3 (category p-q scatter),
Figure 4 (fitted curves of example videos). matplotlib with the Agg backend; each function returns a Figure."""

from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

COLOURS = {"OLS": "#1f77b4", "D-OLS": "#d62728", "MLE": "#2ca02c", "D-MLE": "#9467bd"}


def estimator_study_figure(summary: pd.DataFrame) -> plt.Figure:
    """Figure 2: mean estimation error against market size, with the interquartile band, for (a) Const OLS-based,
    (b) Const MLE-based, (c) Linear OLS-based, (d) Linear MLE-based."""
    fig, axes = plt.subplots(2, 2, figsize=(9, 7), sharex=True)
    panels = [("Const", ("OLS", "D-OLS")), ("Const", ("MLE", "D-MLE")), ("Linear", ("OLS", "D-OLS")),
              ("Linear", ("MLE", "D-MLE"))]
    for ax, (scheme, methods), tag in zip(axes.ravel(), panels, "abcd"):
        for method in methods:
            d = summary[(summary["scheme"] == scheme) & (summary["method"] == method)].sort_values("market")
            if d.empty:
                continue
            ax.plot(d["market"], d["mean"], "o-", color=COLOURS[method], label=method)
            ax.fill_between(d["market"], d["q25"], d["q75"], color=COLOURS[method], alpha=0.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        markets = sorted(summary["market"].unique())
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks(markets, [f"{m:,}" for m in markets], rotation=45)
        ax.set_title(f"({tag}) {scheme}: {methods[0]}-based")
        ax.set_ylabel("estimation error")
        ax.legend()
    for ax in axes[-1]:
        ax.set_xlabel("market size m (observations grow with m)")
    fig.suptitle("Estimation error sqrt((p-p^)^2+(q-q^)^2): mean and interquartile range over replications")
    fig.tight_layout()
    return fig


def pq_scatter_figure(estimates: pd.DataFrame, test: dict | None = None) -> plt.Figure:
    """Figure 3: category estimates (p, q), point size proportional to the category's number of videos."""
    fig, ax = plt.subplots(figsize=(6, 5))
    size = 20 + 180 * estimates["videos"] / max(1, estimates["videos"].max())
    ax.scatter(estimates["p"], estimates["q"], s=size, alpha=0.6, edgecolor="k")
    ax.set_xlabel("promotion coefficient p")
    ax.set_ylabel("diffusion coefficient q")
    if test:
        ax.set_title(f"{len(estimates)} categories: Pearson r = {test['pearson_r']:.3f}, "
                     f"t = {test['t_statistic']:.2f} (critical {test['critical_t_0.05']:.3f})", fontsize=9)
    fig.tight_layout()
    return fig


def fitted_curves_figure(curves: list[pd.DataFrame]) -> plt.Figure:
    """Figure 4: actual cumulative adopters against the P-BDM and BDM curves fitted on each video's first 60%."""
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4.2), squeeze=False)
    for ax, c, tag in zip(axes[0], curves, "abcdefgh"):
        a = c.attrs
        ax.plot(c["period"], c["actual"], "k-", lw=2, label="actual")
        ax.plot(c["period"], c["pbdm"], "r--", label=f"P-BDM D-OLS (p={a['pbdm_p']:.3g}, q={a['pbdm_q']:.3g}, "
                                                     f"gamma={a['gamma']:.3f})")
        ax.plot(c["period"], c["bdm"], "b:", label=f"{a['bdm_label']} (p={a['bdm_p']:.3g}, q={a['bdm_q']:.3g})")
        ax.axvline(a["fit_periods"], color="grey", lw=1)
        vals = c[["actual", "pbdm", "bdm"]].to_numpy()
        ax.set_ylim(min(0.0, np.nanmin(vals)), min(np.nanmax(vals), 3.0 * np.nanmax(c["actual"])) * 1.05)
        ax.set_title(f"({tag}) video {a['video_id']} ({a['category']})", fontsize=10)
        ax.set_xlabel("hours since upload (fit left of the grey line)")
        ax.set_ylabel("cumulative adopters")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
