"""Estimators of Section 5 against independent oracles: noiseless recovery, statsmodels OLS, a cvxpy MLE, the
textbook Bass fit, and the Section 5.3 findings."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import statsmodels.api as sm

from reach.diffusion import estimators as E
from reach.diffusion.dynamics import bass_adopters, simulate_pbdm
from reach.diffusion.study import StudySpec, run_study, summarise_study

P, Q, GAMMA = 0.3, 0.08, 0.97


def _noiseless(m=20_000, n=25, T=60, seed=0, gamma=GAMMA):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.01, (n, T))
    age0 = rng.integers(0, 20, n)
    path = simulate_pbdm(P, Q, m, x, gamma=gamma, age0=age0, A0=rng.integers(0, 50, n))
    A_prev = path.A[:, :-1]
    age = age0[:, None] + np.arange(T)
    return E.Observations.build(path.direct, path.indirect, np.minimum(x, 1 - A_prev / m), A_prev, m, gamma**age)


def _noisy(m=5_000, n=20, T=40, seed=1):
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(0, 0.02, (n, T)) * m) / m
    path = simulate_pbdm(P, Q, m, x, gamma=GAMMA, A0=5, rng=rng)
    return E.Observations.build(path.direct, path.indirect, x, path.A[:, :-1], m, GAMMA ** np.arange(T)[None, :])


@pytest.mark.parametrize("method", ["OLS", "D-OLS", "MLE", "D-MLE"])
def test_each_estimator_recovers_p_q_from_noiseless_dynamics(method):
    est = E.METHODS[method](_noiseless())
    assert est.p == pytest.approx(P, abs=1e-6) and est.q == pytest.approx(Q, abs=1e-6)


def test_bass_estimators_recover_p_q_on_the_bdm_special_case():
    m, T = 50_000, 40
    path = bass_adopters(0.01, 0.35, m, T, gamma=0.99)
    obs = E.Observations.build(np.diff(path.A), 0.0, 0.0, path.A[:-1], m, 0.99 ** np.arange(T)).as_bass()
    for method in ("OLS", "MLE"):
        est = E.METHODS[method](obs)
        assert (est.p, est.q) == pytest.approx((0.01, 0.35), abs=1e-6)


def test_bdm_ols_recovers_p_q_m_from_a_noiseless_bass_path():
    path = bass_adopters(0.02, 0.45, 80_000, 25, A0=0.0)
    est = E.bass_ols(np.diff(path.A))
    assert (est.p, est.q, est.m / 80_000) == pytest.approx((0.02, 0.45, 1.0), abs=1e-6)


def test_ols_matches_statsmodels():
    obs = _noisy()
    X, y = E.ols_design(obs)
    ref = sm.OLS(y, X).fit().params
    est = E.ols(obs)
    assert (est.p, est.q) == pytest.approx(tuple(ref), rel=1e-9)


def test_d_ols_closed_forms_match_statsmodels_two_step_regressions():
    obs = _noisy()
    z = obs.decay * obs.A_prev * (1 - obs.x - obs.A_prev / obs.m)
    q_ref = sm.OLS(obs.indirect, z[:, None]).fit().params[0]          # step i: a^i on z, no constant
    mx = obs.m * obs.x
    p_ref = sm.OLS(obs.direct - q_ref * obs.decay * obs.A_prev * obs.x, mx[:, None]).fit().params[0]  # step ii
    est = E.d_ols(obs)
    assert (est.p, est.q) == pytest.approx((p_ref, q_ref), rel=1e-9)


def _cvxpy_mle(blocks):
    theta = cp.Variable(2)
    pi = blocks.Z @ theta
    ll = cp.sum(cp.multiply(blocks.k, cp.log(pi)) + cp.multiply(blocks.n - blocks.k, cp.log(1 - pi)))
    cp.Problem(cp.Maximize(ll / blocks.n.sum()), [theta >= 0, cp.sum(theta) <= 1]).solve(solver=cp.CLARABEL)
    return theta.value


@pytest.mark.parametrize("method, blocks", [("MLE", E._mle_blocks), ("D-MLE", E._d_mle_blocks)])
def test_mles_match_a_cvxpy_oracle_on_noisy_data(method, blocks):
    obs = _noisy()
    est = E.METHODS[method](obs)
    ref = _cvxpy_mle(blocks(obs))
    assert (est.p, est.q) == pytest.approx(tuple(ref), abs=2e-5)
    ll_ours = E.binomial_loglik(np.array([est.p, est.q]), blocks(obs))[0]
    assert ll_ours >= E.binomial_loglik(np.asarray(ref), blocks(obs))[0] - 1e-6


def test_mle_respects_the_constraints_when_the_unconstrained_optimum_leaves_them():
    obs = _noisy()
    # no indirect clicks at all: q is pushed to its bound 0
    obs0 = E.Observations(obs.direct, np.zeros_like(obs.indirect), obs.x, obs.A_prev, obs.m, obs.decay)
    est = E.d_mle(obs0)
    assert est.q == pytest.approx(0.0, abs=1e-8) and 0 <= est.p <= 1


def test_textbook_bass_fit_is_reproduced():
    # The sales series and fit of a widely used R tutorial (nls of sales on m f(t), t = 1..10):
    # m = 6.798e4, p = 6.594e-3, q = 0.6381.
    sales = np.array([840, 1470, 2110, 4000, 7590, 10950, 10530, 9470, 7790, 5890])
    est = E.bass_nls(sales)
    assert est.m == pytest.approx(6.798e4, rel=5e-4)
    assert est.p == pytest.approx(6.594e-3, rel=5e-4)
    assert est.q == pytest.approx(0.6381, rel=5e-4)
    # BDM-OLS (Bass 1969) on the same series is a different estimator: check it against statsmodels
    A_prev = np.concatenate([[0], np.cumsum(sales)[:-1]]).astype(float)
    b0, b1, b2 = sm.OLS(sales.astype(float), np.column_stack([np.ones(10), A_prev, A_prev**2])).fit().params
    ols = E.bass_ols(sales)
    assert b0 + b1 * ols.m + b2 * ols.m**2 == pytest.approx(0, abs=1e-6 * b0)
    assert (ols.p * ols.m, -ols.q / ols.m) == pytest.approx((b0, b2), rel=1e-9)


def test_d_estimators_errors_shrink_as_the_market_grows():
    spec = StudySpec(markets=(1200, 40_000), replications=15)
    summary = summarise_study(run_study(spec, seed=5, methods=("D-OLS", "D-MLE")))
    for scheme in ("Const", "Linear"):
        for method in ("D-OLS", "D-MLE"):
            err = summary[(summary["scheme"] == scheme) & (summary["method"] == method)].set_index("market")["mean"]
            assert err.loc[40_000] < 0.25 * err.loc[1200]


def test_section_5_3_findings_d_methods_beat_plain_more_so_under_linear():
    spec = StudySpec(markets=(2500, 10_000), replications=30)
    s = summarise_study(run_study(spec, seed=11)).set_index(["scheme", "market", "method"])
    for scheme in ("Const", "Linear"):
        for m in spec.markets:
            assert s.loc[(scheme, m, "D-OLS"), "mean"] < s.loc[(scheme, m, "OLS"), "mean"]
            assert s.loc[(scheme, m, "D-MLE"), "mean"] < s.loc[(scheme, m, "MLE"), "mean"]
    gain = {sc: np.mean([s.loc[(sc, m, "OLS"), "mean"] / s.loc[(sc, m, "D-OLS"), "mean"] for m in spec.markets])
            for sc in ("Const", "Linear")}
    assert gain["Linear"] > gain["Const"]
