"""Optimal influencer size (paper 1, Section 4.4).

Profit of sponsoring a creator with F followers for a campaign video x:
    profit(F) = revenue_per_impression * R(F | x) - cost_per_1k_followers * F / 1000,
with R(F | x) the counterfactual prediction curve (impressions as a function of followers, anchored on the
video's observed impressions, footnote 12). The optimum sets marginal revenue (revenue x FEI x R / F) equal to the
marginal cost per follower; we find it on a fine log-follower grid, which also handles S-shaped curves whose first
order condition has several roots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reach.tiers import TIERS


@dataclass(frozen=True)
class Selection:
    """The profit-maximising follower count and how the best picks inside the micro and mega tiers compare."""

    followers: float
    impressions: float
    profit: float
    micro_followers: float
    micro_profit: float
    mega_followers: float
    mega_profit: float

    def as_row(self) -> dict[str, float]:
        row = dict(self.__dict__)
        row["gain_vs_micro"] = _gain(self.profit, self.micro_profit)
        row["gain_vs_mega"] = _gain(self.profit, self.mega_profit)
        return row


def _gain(best: float, other: float) -> float:
    """Relative profit advantage of the optimum (0.37 = 37% more); NaN when the comparison profit is not positive."""
    return (best - other) / other if other > 0 else float("nan")


def profit_curve(followers: np.ndarray, impressions: np.ndarray, revenue_per_impression: float,
                 cost_per_1k_followers: float) -> np.ndarray:
    """Section 4.4's profit at each follower count: revenue per impression x impressions - pay per 1K followers."""
    return revenue_per_impression * np.asarray(impressions, float) - cost_per_1k_followers * np.asarray(followers,
                                                                                                           float) / 1e3


def _best(followers: np.ndarray, profit: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    if not mask.any():
        return float("nan"), float("nan")
    k = int(np.argmax(np.where(mask, profit, -np.inf)))
    return float(followers[k]), float(profit[k])


def optimal_influencer(log_followers_grid: np.ndarray, impressions: np.ndarray, revenue_per_impression: float,
                       cost_per_1k_followers: float) -> Selection:
    """The profit-maximising follower count on the grid, and the best micro (10-50K) and mega (> 1M) picks.

    `impressions` is the counterfactual prediction curve R(F | x) on `log_followers_grid` (use a fine grid)."""
    grid = np.asarray(log_followers_grid, float)
    r = np.asarray(impressions, float)
    if grid.shape != r.shape:
        raise ValueError(f"grid and impressions differ in shape: {grid.shape} vs {r.shape}")
    followers = np.exp(grid)
    profit = profit_curve(followers, r, revenue_per_impression, cost_per_1k_followers)
    k = int(np.argmax(profit))
    tiers = {name: (followers >= lo) & (followers < hi) for name, lo, hi in TIERS}
    micro = _best(followers, profit, tiers["micro"])
    mega = _best(followers, profit, tiers["mega"])
    return Selection(float(followers[k]), float(r[k]), float(profit[k]), *micro, *mega)


def selection_heatmap(log_followers_grid: np.ndarray, impressions: np.ndarray, revenues: np.ndarray,
                      costs_per_1k: np.ndarray) -> pd.DataFrame:
    """Figure 12: the optimal follower count for every (cost per 1K followers, revenue per impression) pair."""
    rows = []
    for cost in costs_per_1k:
        for revenue in revenues:
            s = optimal_influencer(log_followers_grid, impressions, float(revenue), float(cost))
            rows.append({"cost_per_1k_followers": float(cost), "revenue_per_impression": float(revenue),
                         "optimal_followers": s.followers, "profit": s.profit})
    return pd.DataFrame(rows)


def campaign_impressions_curve(h_grid: np.ndarray, h_at_observed: np.ndarray,
                               observed_impressions: np.ndarray) -> np.ndarray:
    """Expected impressions of a campaign's videos on the grid: mean over its videos j of
    R_j exp(h(l, x_j) - h(log F_j, x_j)) (each video anchored on its own impressions, footnote 12).

    h_grid: videos x grid (log impressions scale); h_at_observed: h at each video's own log followers."""
    h_grid = np.atleast_2d(np.asarray(h_grid, float))
    shift = h_grid - np.asarray(h_at_observed, float)[:, None]
    return (np.asarray(observed_impressions, float)[:, None] * np.exp(shift)).mean(axis=0)
