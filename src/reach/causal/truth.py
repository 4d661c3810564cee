"""Estimated FEI against the synthetic world's true FEI (evaluation only: rule check_fei_truth and
benchmarks/fei_ensemble_draws.py share these, so the benchmark's figures are the rule's)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reach.causal.fei import data_support  # noqa: F401 (the truth checks' support; re-exported)


def true_fei_on_grid(truth_grid: pd.DataFrame, video_ids: np.ndarray, log_followers_grid: np.ndarray) -> np.ndarray:
    """The true FEI (videos x grid) of `video_ids`, interpolated from the truth's own follower levels
    (truth_grid: long table video_id, log_followers, fei)."""
    wide = truth_grid.assign(video_id=truth_grid["video_id"].astype(str)).pivot(
        index="video_id", columns="log_followers", values="fei")
    levels = wide.columns.to_numpy(float)
    rows = wide.loc[np.asarray(video_ids).astype(str)].to_numpy()
    return np.stack([np.interp(log_followers_grid, levels, row) for row in rows])


def curve_error(estimate: np.ndarray, truth: np.ndarray, support: np.ndarray) -> float:
    """Mean absolute error of a curve against the truth over the support."""
    return float(np.abs(np.asarray(estimate, float) - truth)[support].mean())


def band_coverage(lower: np.ndarray, upper: np.ndarray, truth: np.ndarray, support: np.ndarray) -> float:
    """Share of the support's grid points where the band [lower, upper] contains the truth."""
    covered = (np.asarray(lower, float) <= truth) & (truth <= np.asarray(upper, float))
    return float(covered[support].mean())


def infeasible_campaign_fei(log_followers: np.ndarray, log_impressions: np.ndarray, controls: np.ndarray,
                            campaign: np.ndarray, log_followers_grid: np.ndarray, n_knots: int = 5,
                            epsilon: float = 0.1, outer: float | None = None) -> dict[str, np.ndarray]:
    """The measured floor of the campaign truth check: per campaign, OLS (statsmodels) of log impressions on a
    restricted cubic spline in log followers (knots at Harrell's quantiles of the campaign's followers, or equally
    spaced from the `outer` quantile to 1 - `outer` as in CF-IV's response_outer_grid) plus
    `controls`, which the caller fills with what no user has (the true content and the unobserved confounder).
    No IV problem is left, so its error is what the campaign's sample size and follower spread allow. Returns each
    campaign's FEI on the grid (Eq. 9's central difference, h(l + eps) - h(l - eps) over 2 eps as in
    reach.causal.fei; linear h, i.e. constant FEI, beyond the outer knots like the estimators' splines)."""
    import statsmodels.api as sm

    from reach.causal.control_function import quantile_knots, rcs_basis

    t = np.asarray(log_followers, float)
    y = np.asarray(log_impressions, float)
    controls = np.asarray(controls, float)
    campaign = np.asarray(campaign).astype(str)
    grid = np.asarray(log_followers_grid, float)
    out = {}
    for tag in np.unique(campaign):
        rows = campaign == tag
        knots = quantile_knots(t[rows], n_knots, outer)
        design = np.column_stack([np.ones(rows.sum()), rcs_basis(t[rows], knots), controls[rows]])
        coef = np.asarray(sm.OLS(y[rows], design).fit().params)[1:knots.size]
        h_up, h_down = rcs_basis(grid + epsilon, knots) @ coef, rcs_basis(grid - epsilon, knots) @ coef
        out[tag] = (h_up - h_down) / (2.0 * epsilon)
    return out


def resampled_campaign_fei(log_followers: np.ndarray, log_impressions: np.ndarray, controls: np.ndarray,
                           campaign: np.ndarray, log_followers_grid: np.ndarray, n_resamples: int, seed: int,
                           **floor_options) -> list[dict[str, np.ndarray]]:
    """The floor of `infeasible_campaign_fei` refitted on `n_resamples` bootstrap resamples of each campaign's videos
    (drawn within campaigns): how often even an estimator handed the confounder reads a campaign's shape right is
    the share of resamples that do, the floor's expected score rather than the one draw of the data."""
    campaign = np.asarray(campaign).astype(str)
    groups = [np.flatnonzero(campaign == tag) for tag in np.unique(campaign)]
    rng = np.random.default_rng([int(seed), 23])
    out = []
    for _ in range(int(n_resamples)):
        rows = np.concatenate([rng.choice(g, g.size) for g in groups])
        out.append(infeasible_campaign_fei(np.asarray(log_followers)[rows], np.asarray(log_impressions)[rows],
                                           np.asarray(controls)[rows], campaign[rows], log_followers_grid,
                                           **floor_options))
    return out


def rise_to_peak(curve: np.ndarray, log_followers_grid: np.ndarray) -> tuple[float, float, float]:
    """(followers at the curve's peak, the peak value, the rise from the curve's first point to its peak): the
    rising limb of an inverted U (Figure 6). Pass the curve and grid restricted to the range to read."""
    curve = np.asarray(curve, float)
    k = int(np.argmax(curve))
    return float(np.exp(np.asarray(log_followers_grid, float)[k])), float(curve[k]), float(curve[k] - curve[0])
