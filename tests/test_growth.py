"""Impression growth (Web Appendix G): diagnostics and Bayesian R^2 against hand computations, the Stan model's
recovery of known parameters on a panel drawn from the model itself, Stage-2 residual prediction, truth coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reach.growth import stage1 as s1
from reach.growth.diagnostics import bayes_r2, ess_bulk, rhat, summarise
from reach.growth.evaluate import coverage_table, hashtag_truth
from reach.growth.simulate import simulate_growth_panel
from reach.growth.stage2 import evaluate_residual_prediction, growth_residuals


def test_bayes_r2_matches_a_hand_computation():
    y = np.array([[1.0, 2.0, 4.0], [0.0, 1.0, 1.0]])
    fit = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 1.0]])
    # draw 1: V(fit) = var(1,2,3) = 1; residuals (0,0,1): mean 1/3, V = ((1/3)^2*2 + (2/3)^2)/2 = 1/3 -> 1/(1+1/3)
    # draw 2: V(fit) = var(.5,.5,1) = 1/12; residuals (-.5,.5,0): V = (.25+.25)/2 = 1/4 -> (1/12)/(1/12+1/4)
    assert np.allclose(bayes_r2(y, fit), [0.75, 0.25])
    with pytest.raises(ValueError, match="shape"):
        bayes_r2(y, fit[:, :2])


def test_rhat_and_ess_behave_on_known_chains():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(4, 1000))
    assert abs(rhat(iid) - 1) < 0.01
    assert 3000 < ess_bulk(iid) < 5000
    shifted = iid + np.array([0, 0, 0, 1.0])[:, None]
    assert rhat(shifted) > 1.1
    # AR(1) with rho = 0.8: ESS ~ n (1 - rho) / (1 + rho) = 4000 / 9
    x = np.zeros((4, 1000))
    for t in range(1, 1000):
        x[:, t] = 0.8 * x[:, t - 1] + rng.normal(size=4)
    assert 250 < ess_bulk(x) < 700
    rows = summarise("theta", np.stack([iid, x], axis=-1))
    assert [r["parameter"] for r in rows] == ["theta[1]", "theta[2]"]


def test_growth_residuals_are_eqs_25_26():
    vg = pd.DataFrame({"video_id": ["1", "2"], "a_mean": [2.0, 3.0], "a_hat_global": [1.5, 3.5],
                       "b_mean": [5.0, 4.0], "b_hat_global": [4.0, 4.0]})
    r = growth_residuals(vg)
    assert r["resid_a"].tolist() == [0.5, -0.5] and r["resid_b"].tolist() == [1.0, 0.0]


def test_stage2_sign_classifier_beats_majority_on_learnable_residuals():
    rng = np.random.default_rng(1)
    n = 600
    r = rng.normal(size=(n, 8)).astype(np.float32)
    resid = np.column_stack([r[:, 0] - 0.4 * r[:, 1] + 0.3 + 0.3 * rng.normal(size=n),
                             np.tanh(r[:, 2]) + 0.3 * rng.normal(size=n)])
    is_test = np.arange(n) % 5 == 0
    tab, preds = evaluate_residual_prediction(r, resid, is_test, seed=0, epochs=40, patience=10)
    acc = tab[tab["metric"] == "accuracy"].set_index("residual")
    assert (acc["model"] > acc["baseline"] + 0.15).all()
    r2 = tab[tab["metric"] == "r2"].set_index("residual")
    assert (r2["model"] > 0.5).all() and (r2["baseline"] <= 0.01).all()
    assert preds["p_positive_a"].shape == (is_test.sum(),)


def test_coverage_table_counts_intervals_that_hold_the_truth():
    summary = pd.DataFrame({
        "parameter": ["sample_a[x]", "sample_a[y]", "sample_b[x]", "sample_b[y]"],
        "mean": [1.0, 2.0, 3.0, 4.0], "sd": [0.1] * 4, "q05": [0.8, 1.8, 2.8, 3.8], "q95": [1.2, 2.2, 3.2, 4.2],
        "rhat": [1.0] * 4})
    truth_videos = pd.DataFrame({"video_id": ["1", "2", "3", "4"], "growth_a": [1.1, 0.9, 3.0, 99.0],
                                 "growth_b": [3.5, 3.5, 4.0, 99.0]})
    fitted = pd.DataFrame({"video_id": ["1", "2", "3", "4"], "hashtag": ["x", "x", "y", "y"],
                           "source": ["posterior mean (nuts)"] * 3 + ["conditional mode (not in the subsample)"]})
    truth = hashtag_truth(truth_videos, fitted)
    assert truth.set_index("hashtag")["true_a"].to_dict() == pytest.approx({"x": 1.0, "y": 3.0})
    per, agg = coverage_table(summary, truth)
    cov = agg.set_index("quantity")["covered_90"]
    assert cov["sample_a"] == 0.5 and cov["sample_b"] == 0.5  # a: x in, y (3.0) out; b: x (3.5) out, y in


def _fit_tiny(backend: str):
    videos, daily, truth = simulate_growth_panel(n_hashtags=4, videos_per_hashtag=20, days=8, seed=3)
    panel = s1.build_panel(videos, daily, noise_scale="per_video")
    data = s1.stan_data(panel)
    inits = s1.initial_values(panel, data, 2, seed=0)
    fit = s1.fit_stan(data, inits, backend=backend, chains=2, warmup=250, samples=250, seed=7)
    return panel, fit, truth


def _check_recovery(panel, fit, truth):
    a = fit.draws["a"].reshape(-1, len(panel.videos))
    b = fit.draws["b"].reshape(-1, len(panel.videos))
    for est, true in ((a, truth["a"]), (b, truth["b"])):
        lo, hi = np.quantile(est, [0.025, 0.975], axis=0)
        assert ((lo <= true) & (true <= hi)).mean() >= 0.85
        assert np.corrcoef(est.mean(0), true)[0, 1] > 0.99
    tau = fit.draws["tau"].ravel()
    assert 0.5 * truth["rel_noise"] < np.median(tau) < 2 * truth["rel_noise"]
    means = s1.hashtag_means(panel, fit)
    for par in ("a", "b"):
        m = means[f"sample_{par}"].reshape(-1, len(panel.hashtags))
        lo, hi = np.quantile(m, [0.005, 0.995], axis=0)
        assert ((lo <= truth[f"hashtag_mean_{par}"]) & (truth[f"hashtag_mean_{par}"] <= hi)).mean() >= 0.75
    # the generating slope on standardised log followers: 0.5 for b, 0.4 for a (hashtag spread 0.05)
    mu_b = fit.draws["mu_beta"].reshape(-1, fit.draws["mu_beta"].shape[-1])[:, panel.covariates.index("log_followers")]
    assert abs(np.median(mu_b) - 0.5) < 0.15
    summary = s1.summaries(panel, fit)
    assert summary.loc[summary["group"] == "global", "rhat"].max() < 1.1
    r2 = s1.r2_table(fit, s1.covariate_parts(panel, fit)).set_index(["target", "covariate_part"])
    assert 0.3 < r2.loc[("b", "hashtag"), "mean"] < 1.0
    # the scale switch's fill-in (mode of a, b given the posterior means) agrees with the NUTS posterior means
    cm = s1.conditional_map(panel, fit)
    assert np.abs(cm["a_mean"].to_numpy() - a.mean(0)).max() < 3 * a.std(0).max()
    assert np.abs(cm["b_mean"].to_numpy() - b.mean(0)).max() < 3 * b.std(0).max()


@pytest.mark.workflow
def test_stan_model_recovers_known_parameters_pystan():
    panel, fit, truth = _fit_tiny("pystan")
    assert fit.backend == "pystan" and fit.divergences <= 5
    _check_recovery(panel, fit, truth)


@pytest.mark.skipif(s1.stan_backend() != "cmdstanpy",
                    reason="no CmdStan installation (cmdstanpy.cmdstan_path() fails); the pystan test covers the model")
@pytest.mark.workflow
def test_stan_model_recovers_known_parameters_cmdstanpy():
    panel, fit, truth = _fit_tiny("cmdstanpy")
    _check_recovery(panel, fit, truth)


def test_panel_drops_short_videos_and_standardises():
    videos, daily, _ = simulate_growth_panel(n_hashtags=2, videos_per_hashtag=5, days=6, seed=0)
    daily = daily[~((daily["video_id"] == "v00000") & (daily["day"] > 2))]
    full = s1.build_panel(videos, daily)
    assert "v00000" not in set(full.videos["video_id"]) and len(full.videos) == 9
    assert np.allclose(full.X.std(0), 1)
    fit, rest = s1.subsample(full, 3, seed=0)
    assert fit.videos.groupby("hashtag").size().max() <= 3 and len(fit.videos) + len(rest.videos) == 9
    assert fit.plays.size + rest.plays.size == full.plays.size
    keep = full.videos["video_id"].isin(fit.videos["video_id"]).to_numpy()
    assert np.array_equal(fit.X, full.X[keep])  # the subsample keeps the full panel's standardisation
    with pytest.raises(ValueError, match="noise_scale"):
        s1.build_panel(videos, daily, noise_scale="bogus")
