"""The instrument checks of Section 3.3 (reach.causal.validity): first-stage strength against closed forms, and the
Eq. 7 validity test on simulated data where the instrument is valid or, by construction, invalid."""

import numpy as np
import pytest

from reach.causal.validity import first_stage_strength, iv_validity


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
    assert abs(out["gamma"]) < 0.02
    assert out["p_value"] > 0.05
    assert out["n_permutations"] == 39 and out["n_test"] == 750


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


def test_validity_rejects_bad_input():
    x, u, z, t, e, rng = world(n=100)
    with pytest.raises(ValueError, match="must match"):
        iv_validity(e[:50], x, z, n_permutations=1)
    e[3] = np.nan
    with pytest.raises(ValueError, match="residual has missing"):
        iv_validity(e, x, z, n_permutations=1)
