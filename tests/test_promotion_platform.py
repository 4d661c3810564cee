"""The simulated platform of Section 6.3: stochastic P-BDM, budgets, determinism, arrivals shared by policies."""

from __future__ import annotations

import numpy as np
import pytest

from reach.promotion.platform import PUBLISHED_PQ, POLICIES, PlatformSpec, pbdm_draw, sample_pq, simulate_platform

TINY = PlatformSpec(market=2000, initial_videos=8, new_per_period=2, periods=14, K=4, L=3, c_bar=0.5)


def test_stochastic_pbdm_has_eq2_as_its_mean():
    rng = np.random.default_rng(0)
    m = 10_000
    A = np.array([0, 500, 3000, 9000])
    x = np.array([0.2, 0.1, 0.3, 0.05])
    p = np.array([0.15, 0.2, 0.1, 0.3])
    q = np.array([0.05, 0.08, 0.3, 0.1])
    draws = [pbdm_draw(rng, A, x, p, q, m) for _ in range(4000)]
    direct = np.mean([d[1] for d in draws], axis=0)
    indirect = np.mean([d[2] for d in draws], axis=0)
    exp_direct = (p + q * A / m) * np.minimum(x * m, m - A)                    # Eq. 2, direct adopters
    exp_indirect = q * A / m * (m - A - np.minimum(x * m, m - A))              # Eq. 2, indirect adopters
    np.testing.assert_allclose(direct, exp_direct, rtol=0.02, atol=1.0)
    np.testing.assert_allclose(indirect, exp_indirect, rtol=0.02, atol=1.0)
    assert all((d[1] + d[2] <= m - A).all() for d in draws)


def test_published_summary_is_matched():
    p, q = sample_pq(np.random.default_rng(1), 20_000)
    assert p.mean() == pytest.approx(PUBLISHED_PQ["p_mean"], abs=0.003)
    assert q.mean() == pytest.approx(PUBLISHED_PQ["q_mean"], abs=0.002)
    assert np.corrcoef(p, q)[0, 1] == pytest.approx(PUBLISHED_PQ["corr"], abs=0.03)
    assert (p + q <= 1).all() and (p > 0).all() and (q > 0).all()


@pytest.mark.parametrize("policy", POLICIES)
def test_runs_respect_the_budget_and_are_deterministic(policy):
    periods, videos = simulate_platform(policy, TINY, seed=3)
    horizon = 1 if policy == "NoD" else TINY.L
    window = periods["period"] // horizon
    per_window = periods.groupby(window)["promoted_impressions"].sum()
    # Eq. 4d over each planning window, up to rounding of m x to whole users
    assert (per_window <= TINY.c_bar * TINY.market * horizon + TINY.K * horizon).all()
    assert (periods["promoted_videos"] <= TINY.K).all()
    assert videos["adopters"].le(TINY.market).all()
    assert int(videos["adopters"].sum()) == int(periods["direct"].sum() + periods["indirect"].sum())
    again_periods, again_videos = simulate_platform(policy, TINY, seed=3)
    assert again_periods.equals(periods) and again_videos.equals(videos)


def test_every_policy_sees_the_same_videos():
    vids = [simulate_platform(policy, TINY, seed=5)[1][["born", "p", "q"]] for policy in POLICIES]
    for v in vids[1:]:
        assert v.equals(vids[0])


def test_promotion_beats_no_promotion():
    """With budget, every policy gets more adoptions than the same arrivals with (almost) none."""
    none = simulate_platform("TIM", PlatformSpec(**{**TINY.__dict__, "c_bar": 1e-9}), seed=7)[1]["adopters"].sum()
    for policy in ("AGA", "ATT"):
        assert simulate_platform(policy, TINY, seed=7)[1]["adopters"].sum() > none


def test_category_estimates_are_the_empirical_distribution():
    import pandas as pd

    from reach.promotion.platform import category_pq

    est = pd.DataFrame({"category": ["a", "b", "a"], "model": ["P-BDM", "P-BDM", "BDM"],
                        "method": ["D-OLS", "D-OLS", "OLS"], "gamma": 0.983,
                        "p": [0.1, 0.3, 0.9], "q": [0.05, 0.02, 0.5]})
    pq = category_pq(est)
    p, q = sample_pq(np.random.default_rng(0), 4000, pq)
    assert set(np.round(p, 6)) == {0.1, 0.3} and set(np.round(q, 6)) == {0.05, 0.02}
    assert abs(np.mean(p == 0.1) - 0.5) < 0.05
    with pytest.raises(ValueError, match="no P-BDM D-OLS rows"):
        category_pq(est[est["model"] == "BDM"])
