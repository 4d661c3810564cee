"""reach.causal.truth: the truth check's curve comparisons on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reach.causal.truth import (band_coverage, curve_error, data_support, infeasible_campaign_fei,
                                resampled_campaign_fei, true_fei_on_grid)


def test_true_fei_is_interpolated_per_video_in_the_requested_order():
    truth = pd.DataFrame({"video_id": [1, 1, 2, 2], "log_followers": [0.0, 2.0, 0.0, 2.0],
                          "fei": [0.0, 1.0, 1.0, 1.0]})
    out = true_fei_on_grid(truth, np.array(["2", "1"]), np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(out, [[1.0, 1.0, 1.0], [0.0, 0.5, 1.0]])


def test_support_error_and_coverage_by_hand():
    grid = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    support, lo, hi = data_support(np.linspace(1.0, 3.0, 201), grid)
    assert np.allclose([lo, hi], [1.02, 2.98]) and support.tolist() == [False, False, True, False, False]
    support = np.array([False, True, True, True, False])
    truth = np.zeros(5)
    assert abs(curve_error(np.array([9.0, 0.1, -0.2, 0.3, 9.0]), truth, support) - 0.2) < 1e-12
    assert band_coverage(np.array([1, -1, 0.1, -1, 1.0]), np.array([2, 1, 1, 0, 2.0]), truth, support) == 2 / 3


def test_infeasible_floor_recovers_known_campaign_curves():
    """The floor estimator (handed the confounder) on two campaigns with known h: a constant FEI of 0.3 and a
    logistic h whose FEI is the logistic density (within 0.05: a 5-knot spline's approximation error), and the confounder
    it is handed is what removes the bias (without it the slope is off by about 0.5 x cov(u, t) / var(t))."""
    rng = np.random.default_rng(0)
    n = 4000
    campaign = np.repeat(["flat", "bend"], n)
    u = rng.normal(size=2 * n)
    t = 9.0 + 1.5 * rng.normal(size=2 * n) + 0.8 * u
    content = rng.normal(size=(2 * n, 2))
    h = np.where(campaign == "flat", 0.3 * t, 2.0 / (1.0 + np.exp(-(t - 9.0))))
    y = h + content @ np.array([0.4, -0.2]) + 0.5 * u + 0.1 * rng.normal(size=2 * n)
    grid = np.linspace(7.0, 11.0, 9)
    fei = infeasible_campaign_fei(t, y, np.column_stack([content, u]), campaign, grid)
    np.testing.assert_allclose(fei["flat"], 0.3, atol=0.03)
    logistic = 1.0 / (1.0 + np.exp(-(grid - 9.0)))
    np.testing.assert_allclose(fei["bend"], 2.0 * logistic * (1.0 - logistic), atol=0.05)
    biased = infeasible_campaign_fei(t, y, content, campaign, grid)   # not handed the confounder
    assert (biased["flat"] - 0.3).mean() > 0.1
    # outer knots at 1% / 99%: the logistic FEI is followed further out, where Harrell's 5% / 95% knots hold it constant
    tails = np.quantile(t[campaign == "bend"], [0.015, 0.04, 0.96, 0.985])
    logistic_tails = 1.0 / (1.0 + np.exp(-(tails - 9.0)))
    truth_tails = 2.0 * logistic_tails * (1.0 - logistic_tails)
    harrell = infeasible_campaign_fei(t, y, np.column_stack([content, u]), campaign, tails)["bend"]
    wide = infeasible_campaign_fei(t, y, np.column_stack([content, u]), campaign, tails, outer=0.01)["bend"]
    assert np.abs(wide - truth_tails).mean() < 0.5 * np.abs(harrell - truth_tails).mean()


def test_resampled_floor_centres_on_the_fit_and_spreads_with_the_campaign_size():
    """Bootstrap refits of the floor (resampled within campaigns): their mean is the full-sample fit (the estimator
    is linear in y), their spread shrinks like 1/sqrt(n) (a campaign 16x larger: about 4x narrower), same seed same
    draws."""
    rng = np.random.default_rng(1)
    sizes = {"small": 250, "large": 4000}
    campaign = np.concatenate([np.full(n, tag) for tag, n in sizes.items()])
    u = rng.normal(size=campaign.size)
    t = 9.0 + 1.5 * rng.normal(size=campaign.size) + 0.8 * u
    y = 0.3 * t + 0.5 * u + 0.5 * rng.normal(size=campaign.size)
    grid = np.linspace(7.5, 10.5, 5)
    args = (t, y, u[:, None], campaign, grid)
    draws = resampled_campaign_fei(*args, n_resamples=60, seed=3)
    full = infeasible_campaign_fei(*args)
    for tag in sizes:
        stack = np.stack([d[tag] for d in draws])
        assert np.abs(stack.mean(axis=0) - full[tag]).max() < 0.5 * stack.std(axis=0).max()
    ratio = np.stack([d["small"] for d in draws]).std(axis=0) / np.stack([d["large"] for d in draws]).std(axis=0)
    assert 2.5 < np.median(ratio) < 6.5
    again = resampled_campaign_fei(*args, n_resamples=2, seed=3)
    np.testing.assert_array_equal(again[1]["small"], draws[1]["small"])
