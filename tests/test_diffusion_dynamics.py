"""P-BDM (Eq. 2) and Bass (Eq. 1) dynamics: identities, special cases, and the stochastic counterpart's mean."""

from __future__ import annotations

import numpy as np
import pytest

from reach.diffusion.dynamics import (bass_adopters, bass_cdf, bass_expected, pbdm_expected, simulate_pbdm)


def test_pbdm_terms_add_up_to_the_second_line_of_eq2():
    rng = np.random.default_rng(0)
    m = 5000.0
    A = rng.uniform(0, 3000, 100)
    x = rng.uniform(0, 1, 100) * (1 - A / m)
    p, q, decay = 0.3, 0.2, rng.uniform(0.5, 1, 100)
    d, i = pbdm_expected(A, x, p, q, m, decay)
    np.testing.assert_allclose(d + i, p * m * x + q * decay * A / m * (m - A))
    np.testing.assert_allclose(d, (p + q * decay * A / m) * m * x)


def test_bass_is_the_pbdm_with_everyone_promoted():
    m, p, q, T = 2000.0, 0.02, 0.4, 30
    bass = bass_adopters(p, q, m, T, gamma=0.97)
    x = np.empty(T)
    A = bass.A
    x[:] = 1 - A[:-1] / m  # x_t = 1 - A_{t-1}/m, fixed from the Bass path
    pbdm = simulate_pbdm(p, q, m, x, gamma=0.97)
    np.testing.assert_allclose(pbdm.A, bass.A, rtol=1e-12)
    a = np.diff(bass.A)
    np.testing.assert_allclose(a, (p + q * 0.97 ** np.arange(T) * A[:-1] / m) * (m - A[:-1]))
    np.testing.assert_allclose(sum(bass_expected(A[:-1], p, q, m, 0.97 ** np.arange(T))), a)


def test_simulation_broadcasts_over_videos_and_respects_age():
    x = np.full((4, 25), 0.002)
    ps, qs = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.05, 0.04, 0.03, 0.02])
    paths = simulate_pbdm(ps, qs, 10_000, x, gamma=0.95, age0=np.array([0, 3, 0, 7]))
    for k in range(4):
        one = simulate_pbdm(ps[k], qs[k], 10_000, x[k], gamma=0.95, age0=[0, 3, 0, 7][k])
        np.testing.assert_allclose(paths.A[k], one.A)
    # age0 = 3 equals the tail of a path started 3 periods earlier with the same state
    long = simulate_pbdm(0.2, 0.04, 10_000, np.full(28, 0.002), gamma=0.95)
    tail = simulate_pbdm(0.2, 0.04, 10_000, np.full(25, 0.002), gamma=0.95, age0=3, A0=long.A[3])
    np.testing.assert_allclose(tail.A, long.A[3:])


def test_promotion_is_capped_at_the_non_adopters():
    path = simulate_pbdm(0.9, 0.1, 100, np.full(10, 1.0))
    assert np.all(path.A <= 100 + 1e-9) and np.all(np.diff(path.A) >= 0)


def test_stochastic_mean_matches_eq2():
    rng = np.random.default_rng(3)
    n, T, m = 4000, 12, 3000
    x = np.full((n, T), 0.01)
    paths = simulate_pbdm(0.3, 0.1, m, x, gamma=0.9, A0=20, rng=rng)
    A_prev = paths.A[:, :-1]
    exp_d, exp_i = pbdm_expected(A_prev, np.round(x * m) / m, 0.3, 0.1, m, 0.9 ** np.arange(T))
    # conditional means: the average of (draw - its conditional expectation) vanishes
    for draw, expect in ((paths.direct, exp_d), (paths.indirect, exp_i)):
        resid = (draw - expect).mean()
        se = np.sqrt(expect.mean() / n / T) * 3
        assert abs(resid) < 4 * se + 1e-9
    assert paths.A.dtype == np.int64


def test_bass_discrete_close_to_continuous_for_small_steps():
    # Eq. 1 with p, q scaled by dt tends to the continuous Bass curve
    dt, m = 0.01, 1.0e6
    T = int(10 / dt)
    path = bass_adopters(0.03 * dt, 0.4 * dt, m, T)
    assert path.A[-1] / m == pytest.approx(bass_cdf(10.0, 0.03, 0.4), abs=5e-3)
