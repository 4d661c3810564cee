"""The instrument checks of Section 3.3 (reach.causal.validity): first-stage strength against closed forms, and the
Eq. 7 validity test on simulated data where the instrument is valid or, by construction, invalid."""

import numpy as np
import pytest

from reach.causal.validity import first_stage_strength, instrument_given_covariates, iv_validity


def world(n=2500, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    u = rng.normal(size=n)                                   # unobserved confounder
    z = 0.6 * x[:, 0] + rng.normal(size=n)                   # instrument, related to x but not to u
    t = z + 0.5 * x[:, 1] + u + 0.5 * rng.normal(size=n)
    y = np.sin(t) + x[:, 2] + u + 0.5 * rng.normal(size=n)
    e = y - (np.sin(t) + x[:, 2])                            # structural residual e = y - h(t, x) (true h)
    return x, u, z, t, e, rng


def test_first_stage_strength_matches_closed_forms():
    x, u, z, t, e, rng = world()
    out = first_stage_strength(t, z)
    r = np.corrcoef(t, z)[0, 1]
    n = t.size
    assert out["correlation"] == pytest.approx(r)
    assert out["r2"] == pytest.approx(r ** 2)
    assert out["f_statistic"] == pytest.approx(r ** 2 / (1 - r ** 2) * (n - 2))
    assert out["coef"][0] == pytest.approx(np.cov(t, z)[0, 1] / np.var(z, ddof=1))
    with_x = first_stage_strength(t, z, x)
    # partial R^2 of z given x = squared correlation of the residuals of t and z on x (Frisch-Waugh-Lovell)
    design = np.column_stack([np.ones(n), x])
    res_t = t - design @ np.linalg.lstsq(design, t, rcond=None)[0]
    res_z = z - design @ np.linalg.lstsq(design, z, rcond=None)[0]
    rp = np.corrcoef(res_t, res_z)[0, 1]
    assert with_x["partial_r2"] == pytest.approx(rp ** 2)
    assert with_x["partial_f_statistic"] == pytest.approx(rp ** 2 / (1 - rp ** 2) * (n - x.shape[1] - 2))
    assert with_x["partial_f_statistic"] > 10


def test_valid_instrument_gamma_near_zero_and_not_significant():
    x, u, z, t, e, rng = world(seed=1)
    out = iv_validity(e, x, z, seed=0, n_permutations=39)
    assert out["null"] == "conditional"
    assert abs(out["gamma"]) < 0.02
    assert out["p_value"] > 0.05
    assert out["n_permutations"] == 39 and out["n_test"] == 750
    # gamma's bootstrap interval brackets it and reaches zero; what z adds beyond x is gamma - gamma_x_only
    assert out["gamma_ci_low"] <= out["gamma"] <= out["gamma_ci_high"] and out["gamma_ci_low"] < 0.0
    assert out["gamma_beyond_x"] == pytest.approx(out["gamma"] - out["gamma_x_only"], abs=1e-12)
    assert out["gamma_beyond_x_ci_low"] < 0.0 < out["gamma_beyond_x_ci_high"] + 1e-9
    # z = 0.6 x_0 + N(0, 1): the cross-fitted E^[z|x] explains about 0.36 / 1.36 of z's variance
    assert out["z_given_x_r2"] == pytest.approx(0.36 / 1.36, abs=0.05)


def test_invalid_instrument_gamma_positive_and_significant():
    x, u, z, t, e, rng = world(seed=2)
    proxy = u + 0.5 * rng.normal(size=u.size)               # a confounder proxy: correlated with the error
    out = iv_validity(e, x, proxy, seed=0, n_permutations=39)
    assert out["gamma"] > 0.2
    assert out["p_value"] < 0.05
    assert out["gamma_x_only"] < 0.02                        # x alone cannot predict e; z does
    # an instrument that enters y directly (exclusion violated) is caught too
    direct = iv_validity(e + 0.5 * z, x, z, seed=0, n_permutations=24)
    assert direct["gamma"] > 0.05 and direct["p_value"] < 0.05


def proxy_world(n, seed):
    """A valid instrument that is nearly a function of x (z = s + small noise, s a direction of x) and a residual
    that depends on x alone, through s: H0 (z adds nothing beyond x) holds, but z is the trees' best feature for s."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    s = x @ np.array([1.0, 1.0, -1.0, 0.5]) / np.sqrt(3.25)
    z = s + 0.15 * rng.normal(size=n)
    e = 0.6 * np.sin(2 * s) + rng.normal(size=n)
    return e, x, z


def test_conditional_null_keeps_a_proxy_of_x_where_the_marginal_null_rejects():
    """The earlier null (z permuted across rows) rejects this valid instrument: real z helps the model fit e^'s
    x-part, permuted z cannot. The conditional null (z's residual on E^[z|x] permuted) keeps that help, so it does
    not reject. Against the earlier null this test fails (the conditional p-values would be <= 0.05)."""
    old, new = [], []
    for seed in range(6):
        e, x, z = proxy_world(800, seed)
        out = iv_validity(e, x, z, seed=seed, n_permutations=19, n_boot=0, compare_marginal=True)
        old.append(out["p_value_marginal"])
        new.append(out["p_value"])
    # the same earlier null run on its own (null="marginal") rejects too
    e, x, z = proxy_world(800, 0)
    assert iv_validity(e, x, z, seed=0, n_permutations=19, null="marginal", n_boot=0)["p_value"] <= 0.05
    assert sum(p <= 0.05 for p in old) >= 4, old
    assert sum(p > 0.05 for p in new) >= 5, new


def test_instrument_given_covariates_matches_ols_on_a_linear_design():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 3))
    z = np.column_stack([1.0 + x @ np.array([0.5, -1.0, 0.0]), x[:, 2]]) + 0.3 * rng.normal(size=(2000, 2))
    fitted = instrument_given_covariates(x, z, seed=0)
    design = np.column_stack([np.ones(2000), x])
    ols = design @ np.linalg.lstsq(design, z, rcond=None)[0]
    assert fitted.shape == (2000, 2)
    assert np.sqrt(np.mean((fitted - ols) ** 2)) < 0.05                   # noise sd 0.3: close to the OLS fit
    assert instrument_given_covariates(np.empty((5, 0)), np.arange(5.0)).ravel().tolist() == [2.0] * 5


def test_validity_rejects_bad_input():
    x, u, z, t, e, rng = world(n=100)
    with pytest.raises(ValueError, match="must match"):
        iv_validity(e[:50], x, z, n_permutations=1)
    with pytest.raises(ValueError, match="null must be"):
        iv_validity(e, x, z, n_permutations=1, null="permute")
    e[3] = np.nan
    with pytest.raises(ValueError, match="residual has missing"):
        iv_validity(e, x, z, n_permutations=1)
