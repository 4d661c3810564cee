"""FEI, curve shapes, bands, counterfactual curves and influencer selection against closed forms and the paper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reach.causal.fei import (UNDETERMINED, bootstrap_mean_curve, campaign_shapes, classify_curve_shape,
                              counterfactual_prediction, data_support, fei_central_difference, naive_curve,
                              tier_averages)
from reach.causal.selection import campaign_impressions_curve, optimal_influencer, selection_heatmap

REPO = Path(__file__).resolve().parents[1]
GRID = np.linspace(np.log(100), np.log(5e7), 61)


def test_central_differences_recover_the_derivative_of_a_known_h():
    a = np.array([0.5, -1.0, 2.0])
    h, fei = fei_central_difference(lambda lv: a[:, None] * np.sin(lv) + lv ** 2 / 10, GRID, epsilon=1e-3)
    np.testing.assert_allclose(h, a[:, None] * np.sin(GRID) + GRID ** 2 / 10)
    np.testing.assert_allclose(fei, a[:, None] * np.cos(GRID) + GRID / 5, atol=1e-6)
    with pytest.raises(ValueError, match="epsilon"):
        fei_central_difference(lambda lv: a[:, None] + lv, GRID, 0.0)


def test_tier_averages_of_constant_and_linear_fei():
    const = np.full((2, GRID.size), 0.3)
    np.testing.assert_allclose(tier_averages(const, GRID), 0.3)
    lin = tier_averages(GRID[None, :], GRID)[0]
    followers = np.exp(GRID)
    assert lin[0] == pytest.approx(GRID[followers < 1e3].mean())
    assert lin[2] == pytest.approx(GRID[(followers >= 1e4) & (followers < 5e4)].mean())
    assert np.all(np.diff(lin) > 0)


def test_tier_averages_over_the_data_support_leave_the_extrapolation_out():
    # an S-shaped truth, and an estimate equal to it inside the data's follower range (1,000-2M followers) but
    # flat beyond it, as a restricted cubic spline's FEI is: over the support the tier averages agree exactly, over
    # the whole grid the sub-nano and mega tiers carry the extrapolation
    followers = np.exp(GRID)
    truth = 0.05 + 0.4 * np.exp(-0.5 * ((GRID - np.log(2e4)) / 1.5) ** 2)
    lo, hi = np.log(1e3), np.log(2e6)
    estimate = np.interp(np.clip(GRID, lo, hi), GRID, truth)
    log_followers = np.random.default_rng(1).uniform(lo, hi, 20_000)
    support, s_lo, s_hi = data_support(log_followers, GRID)
    assert s_lo == pytest.approx(lo + 0.01 * (hi - lo), abs=0.02) and s_hi == pytest.approx(hi - 0.01 * (hi - lo),
                                                                                              abs=0.02)
    np.testing.assert_array_equal(support, (GRID >= s_lo) & (GRID <= s_hi))
    on_support = tier_averages(np.vstack([estimate, truth]), GRID, support)
    np.testing.assert_allclose(on_support[0], on_support[1])
    assert np.isnan(on_support[:, 0]).all()            # no grid point of the sub-nano tier lies in [1,000, 2M]
    assert on_support[0, 1] == pytest.approx(truth[support & (followers >= 1e3) & (followers < 1e4)].mean())
    whole = tier_averages(np.vstack([estimate, truth]), GRID)
    assert whole[0, 0] - whole[1, 0] > 0.02 and whole[0, 5] > whole[1, 5]   # flat beyond the data, a falling truth
    shapes = campaign_shapes(np.vstack([estimate, truth]), GRID, np.array(["est", "true"]), ["est", "true"],
                             support=support)
    assert shapes["shape"].tolist() == ["s_shaped", "s_shaped"]
    with pytest.raises(ValueError, match="support"):
        tier_averages(truth, GRID, support[:-1])


def test_a_curve_read_on_fewer_than_two_tiers_has_no_shape():
    only_micro = np.exp(GRID) < 3e4
    one_tier = tier_averages(np.full(GRID.size, 0.2), GRID, only_micro & (np.exp(GRID) >= 1e4))[0]
    assert np.isfinite(one_tier).sum() == 1
    assert classify_curve_shape(one_tier) == UNDETERMINED
    assert classify_curve_shape(np.array([0.3, 0.1, np.nan, np.nan, np.nan, np.nan])) == "concave"


def test_shape_rule_reproduces_every_label_of_the_papers_table_4():
    table = pd.read_csv(REPO / "resources" / "published" / "fei_table4.csv")
    tiers = table[["sub-nano", "nano", "micro", "mid-tier", "macro", "mega"]].to_numpy()
    predicted = [classify_curve_shape(row) for row in tiers]
    assert predicted == table["shape"].tolist()
    assert table["shape"].value_counts().to_dict() == {"linear": 16, "concave": 10, "s_shaped": 4}


def test_bootstrap_band_covers_the_true_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    true_mean = np.array([0.1, 0.3, 0.2])
    hits = 0
    reps = 200
    for r in range(reps):
        rows = true_mean + rng.standard_normal((150, 3)) * np.array([0.1, 0.2, 0.05])
        band = bootstrap_mean_curve(rows, n_boot=300, seed=r)
        hits += int(((band["lower"] <= true_mean) & (true_mean <= band["upper"])).all())
        assert np.allclose(band["estimate"], rows.mean(0))
    # three independent coordinates at 95% each: about 0.857 jointly
    assert 0.78 <= hits / reps <= 0.93


def test_bootstrap_band_widens_when_ensemble_members_disagree():
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((200, 2)) * 0.05
    agree = bootstrap_mean_curve(np.stack([rows, rows]), n_boot=400, seed=0)
    disagree = bootstrap_mean_curve(np.stack([rows - 0.2, rows + 0.2]), n_boot=400, seed=0)
    assert (disagree["upper"] - disagree["lower"] > 3 * (agree["upper"] - agree["lower"])).all()


def test_counterfactual_curve_of_a_constant_elasticity_is_a_power_law():
    beta, f0, r0 = 0.4, 5e4, 2e5
    curve = counterfactual_prediction(np.full(GRID.size, beta), GRID, np.log(f0), r0)
    np.testing.assert_allclose(curve, r0 * (np.exp(GRID) / f0) ** beta, rtol=1e-10)


def test_naive_curve_recovers_a_constant_slope():
    rng = np.random.default_rng(2)
    lf = rng.uniform(5, 16, 4000)
    y = 3.0 + 0.6 * lf + rng.standard_normal(lf.size) * 0.3
    out = naive_curve(lf, y, GRID)
    inside = ~out["extrapolated"]
    error = np.abs(out.loc[inside, "elasticity"] - 0.6)
    assert error.mean() < 0.04 and error.max() < 0.15
    assert out["extrapolated"].iloc[0] and out["extrapolated"].iloc[-1]


def test_optimal_size_matches_the_first_order_condition_of_a_power_law_curve():
    # R(F) = a F^beta: profit v a F^beta - c F / 1000 peaks at F* = (1000 v a beta / c)^(1 / (1 - beta))
    a, beta, v, c = 50.0, 0.7, 0.02, 10.0
    fine = np.linspace(np.log(100), np.log(5e7), 20001)
    s = optimal_influencer(fine, a * np.exp(fine) ** beta, v, c)
    f_star = (1000 * v * a * beta / c) ** (1 / (1 - beta))
    assert s.followers == pytest.approx(f_star, rel=2e-3)
    assert s.profit == pytest.approx(v * a * f_star ** beta - c * f_star / 1000, rel=1e-6)
    assert 1e4 <= s.micro_followers < 5e4 and s.mega_followers >= 1e6 and s.micro_profit <= s.profit
    row = s.as_row()
    assert row["gain_vs_micro"] == pytest.approx((s.profit - s.micro_profit) / s.micro_profit)


def test_heatmap_moves_the_optimum_down_as_pay_rises_and_up_as_revenue_rises():
    fine = np.linspace(np.log(100), np.log(5e7), 4001)
    curve = 50.0 * np.exp(fine) ** 0.7
    hm = selection_heatmap(fine, curve, revenues=np.array([0.01, 0.02, 0.04]), costs_per_1k=np.array([5, 10, 20]))
    table = hm.pivot(index="cost_per_1k_followers", columns="revenue_per_impression", values="optimal_followers")
    assert (np.diff(table.to_numpy(), axis=0) < 0).all() and (np.diff(table.to_numpy(), axis=1) > 0).all()


def test_campaign_curve_anchors_each_video_on_its_own_impressions():
    beta = np.array([0.3, 0.6])
    observed = np.array([np.log(2e4), np.log(3e5)])
    h_grid = beta[:, None] * GRID[None, :] + np.array([1.0, -2.0])[:, None]
    h_obs = beta * observed + np.array([1.0, -2.0])
    curve = campaign_impressions_curve(h_grid, h_obs, np.array([1e5, 4e5]))
    expected = (1e5 * (np.exp(GRID) / 2e4) ** 0.3 + 4e5 * (np.exp(GRID) / 3e5) ** 0.6) / 2
    np.testing.assert_allclose(curve, expected, rtol=1e-10)


def test_bootstrap_smoothing_bias_draws_add_to_the_replicates():
    """With zero bias draws the replicates are those without; a constant bias draw shifts every replicate by the
    row-weighted mean of rows @ delta; random draws widen the band."""
    from reach.causal.fei import bootstrap_draws

    rng = np.random.default_rng(3)
    curves = rng.normal(size=(2, 40, 5)) * 0.05
    rows = np.concatenate([np.ones((2, 40, 1)), rng.normal(size=(2, 40, 1))], axis=2)   # [1, w]
    plain = bootstrap_draws(curves, 50, seed=4)
    zero = bootstrap_draws(curves, 50, seed=4, bias=(rows, np.zeros((2, 7, 2, 5))))
    np.testing.assert_array_equal(zero, plain)
    shift = np.zeros((2, 1, 2, 5))
    shift[:, 0, 0] = 0.3                                          # every row's curve up by 0.3
    np.testing.assert_allclose(bootstrap_draws(curves, 50, seed=4, bias=(rows, shift)), plain + 0.3)
    doubled = rows.copy()
    doubled[1, :, 0] = 2.0                                        # member 1's curves move twice as far
    moved = bootstrap_draws(curves, 50, seed=4, bias=(doubled, shift)) - plain
    assert np.isclose(moved, 0.3).all(axis=1).any() and np.isclose(moved, 0.6).all(axis=1).any()
    assert (np.isclose(moved, 0.3).all(axis=1) | np.isclose(moved, 0.6).all(axis=1)).all()
    spread = rng.normal(size=(2, 16, 2, 5)) * 0.1
    wide = bootstrap_mean_curve(curves, 400, 0, bias=(rows, spread))
    narrow = bootstrap_mean_curve(curves, 400, 0)
    assert ((wide["upper"] - wide["lower"]) > (narrow["upper"] - narrow["lower"])).all()
    np.testing.assert_array_equal(wide["estimate"], narrow["estimate"])
    with pytest.raises(ValueError, match="do not fit"):
        bootstrap_draws(curves, 5, 0, bias=(rows[:, :10], spread))


def test_band_width_factor_is_the_ratio_of_spreads_over_data_sets_and_members():
    """Closed form: average curves whose spread over the simulated data sets is twice the members' give a factor 2
    (the variances are pooled over the grid); a narrower spread leaves the band as it is (factor 1); the widened
    replicates move exactly `factor` times as far from the ensemble's average curve."""
    from reach.causal.fei import band_width_factor, bootstrap_draws

    rng = np.random.default_rng(5)
    base = rng.normal(size=(1, 30, 4)) * 0.05
    offsets = np.array([-1.0, 1.0, -1.0, 1.0])[:, None, None] * np.array([0.01, 0.02, 0.01, 0.02])
    members = base + offsets                                  # per grid point, variance of the average: s^2 4/3
    simulated = base + 2.0 * offsets
    assert band_width_factor(members, simulated) == pytest.approx(2.0)
    assert band_width_factor(simulated, members) == 1.0       # floored: never narrower than the members' band
    rows = np.arange(10)
    assert band_width_factor(members, simulated, rows) == pytest.approx(2.0)
    centre = members.mean(axis=(0, 1))
    plain = bootstrap_draws(members, 40, seed=2)
    wide = bootstrap_draws(members, 40, seed=2, width_factor=2.5)
    np.testing.assert_allclose(wide - centre, 2.5 * (plain - centre))
    with pytest.raises(ValueError, match="two fits"):
        band_width_factor(members[:1], simulated)
    with pytest.raises(ValueError, match="positive"):
        bootstrap_draws(members, 10, seed=0, width_factor=0.0)


def test_a_point_estimate_centres_the_band_and_keeps_its_spread():
    """bootstrap_mean_curve with `point` (the fit on all rows): the estimate is the point curves' average over the
    rows, the band is the members' band moved by (that average - the members' average), so its width is unchanged;
    misshapen point curves are an error."""
    rng = np.random.default_rng(0)
    members = rng.normal(0.3, 0.05, size=(6, 40, 9))
    point = members.mean(axis=0) + np.linspace(-0.1, 0.1, 9)[None, :]
    rows = np.arange(25)
    plain = bootstrap_mean_curve(members, 200, 3, rows=rows)
    centred = bootstrap_mean_curve(members, 200, 3, rows=rows, point=point)
    np.testing.assert_allclose(centred["estimate"], point[rows].mean(axis=0))
    shift = point[rows].mean(axis=0) - members[:, rows].mean(axis=(0, 1))
    np.testing.assert_allclose(centred["lower"], plain["lower"] + shift, atol=1e-12)
    np.testing.assert_allclose(centred["upper"] - centred["lower"], plain["upper"] - plain["lower"], atol=1e-12)
    with pytest.raises(ValueError, match="point curves"):
        bootstrap_mean_curve(members, 10, 3, point=point[:, :5])


def test_label_groups_index_the_videos_themselves_when_some_have_no_label():
    from reach.causal.fei import label_groups
    labels = ["a", None, "b", "a", np.nan, "b", "c"]
    groups, unlabelled = label_groups(labels)
    assert unlabelled == 2
    assert [v for v, _ in groups] == ["a", "b", "c"]
    for value, rows in groups:                                # brute force: the positions holding each label
        assert rows.tolist() == [i for i, lab in enumerate(labels) if lab == value]
    fei = np.array([0.1, 9.0, 0.2, 0.1, 9.0, 0.2, 0.3])       # the groups' means see no unlabelled video
    assert [float(fei[rows].mean()) for _, rows in groups] == pytest.approx([0.1, 0.2, 0.3])
