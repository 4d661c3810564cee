"""Candidate generation: greedy (Algorithm 1) = accelerated greedy on the selected sets; both within the
(1 - 1/e) guarantee of exhaustive search on tiny instances; the dual bounds are valid."""

from __future__ import annotations

import numpy as np
import pytest

from reach.promotion.cgpo import accelerated_greedy, exhaustive, greedy, no_promotion_adopters
from reach.promotion.po import solve_po_cvxpy


def corpus(rng: np.random.Generator, n: int, L: int, m: float = 1e4):
    """Videos like the paper's: (p, q) around the published category means, mixed ages and adoption levels."""
    p = np.clip(rng.normal(0.156, 0.055, n), 0.01, 0.5)
    q = np.clip(rng.normal(0.0547, 0.0225, n), 0.001, 0.3)
    A0 = rng.uniform(0, 0.6, n) * m * (rng.random(n) < 0.6)
    decay = 0.983 ** (rng.integers(0, 60, n)[:, None] + np.arange(L)[None])
    return p, q, m, A0, decay


@pytest.mark.parametrize("seed, c_bar", [(0, 0.02), (1, 0.2), (2, 1.0), (3, 2.0), (4, 6.0), (5, 0.005)])
def test_accelerated_greedy_makes_greedys_choices(seed, c_bar):
    rng = np.random.default_rng(seed)
    L, K = int(rng.integers(2, 14)), int(rng.integers(3, 9))
    p, q, m, A0, decay = corpus(rng, 24, L)
    budget = c_bar * m * L
    plain = greedy(p, q, m, A0, L, budget, K, decay)
    fast = accelerated_greedy(p, q, m, A0, L, budget, K, decay)
    assert fast.selected == plain.selected
    assert fast.objective == pytest.approx(plain.objective, rel=1e-8)
    assert fast.exact_evaluations <= plain.exact_evaluations
    # marginal gains never grow (Theorem 3, submodularity), up to solver tolerance
    assert np.all(np.diff(plain.gains) <= 1e-6 * plain.objective)


@pytest.mark.parametrize("seed", range(6))
def test_greedy_against_exhaustive_search(seed):
    rng = np.random.default_rng(50 + seed)
    L, K, n = int(rng.integers(1, 6)), int(rng.integers(1, 4)), 7
    p, q, m, A0, decay = corpus(rng, n, L)
    budget = float(rng.choice([0.01, 0.1, 1.0])) * m * L
    _, best = exhaustive(p, q, m, A0, L, budget, K, decay)
    got = accelerated_greedy(p, q, m, A0, L, budget, K, decay).objective
    base = no_promotion_adopters(p, q, m, A0, L, decay).sum()
    ratio = (got - base) / (best - base) if best > base else 1.0
    assert ratio >= 1 - 1 / np.e - 1e-9
    assert got <= best * (1 + 1e-9)


def test_greedy_with_the_cvxpy_oracle_agrees():
    """The paper's way (a QCP solve per candidate) picks the same set as ours."""
    rng = np.random.default_rng(9)
    L, K = 5, 3
    p, q, m, A0, decay = corpus(rng, 8, L)
    budget = 0.5 * m * L
    ours = accelerated_greedy(p, q, m, A0, L, budget, K, decay)
    paper = greedy(p, q, m, A0, L, budget, K, decay, solver=solve_po_cvxpy)
    assert ours.selected == paper.selected
    assert ours.objective == pytest.approx(paper.objective, rel=1e-6)


@pytest.mark.parametrize("seed, c_bar, K", [(0, 0.3, 6), (1, 2.0, 10), (2, 0.05, 3), (3, 5.0, 4)])
def test_single_period_optimum_is_exact(seed, c_bar, K):
    """At L = 1 the closed-form knapsack equals exhaustive search, and greedy never beats it."""
    from reach.promotion.cgpo import single_period_optimum

    rng = np.random.default_rng(seed)
    p, q, m, A0, decay = corpus(rng, 8, 1)
    budget = c_bar * m
    closed = single_period_optimum(p, q, m, A0, budget, K, decay)
    if closed.stats["exact"]:
        _, best = exhaustive(p, q, m, A0, 1, budget, K, decay)
        assert closed.objective == pytest.approx(best, rel=1e-10)
    assert closed.objective >= greedy(p, q, m, A0, 1, budget, K, decay).objective * (1 - 1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_single_period_closed_form_greedy_matches_algorithm_1(seed):
    """When K videos cannot absorb the budget, the closed-form L = 1 greedy makes Algorithm 1's choices."""
    from reach.promotion.cgpo import single_period_optimum

    rng = np.random.default_rng(200 + seed)
    p, q, m, A0, decay = corpus(rng, 12, 1)
    A0 = np.where(rng.random(12) < 0.5, 0.9 * m, A0)     # many nearly saturated videos: small capacities
    K = 4
    budget = 6.0 * m
    closed = single_period_optimum(p, q, m, A0, budget, K, decay)
    plain = greedy(p, q, m, A0, 1, budget, K, decay)
    assert closed.stats["exact"] is False
    assert closed.selected == plain.selected
    assert closed.objective == pytest.approx(plain.objective, rel=1e-9)


# -- the AGA with the compiled h_v kernel against the numpy planner it replaced (reach.promotion.reference's *_v3
# oracles, bit-identical with the planner before any CPU work): the same choices, values to round-off --------------

from reach.promotion.reference import accelerated_greedy_v3  # noqa: E402


def _assert_same_plan(new, old) -> None:
    """Same picks and exact solves; gains, objective and promotion policy to round-off (measured on these
    instances: gains 7e-11 adopters, x 5e-14, objective to the bit)."""
    assert new.selected == old.selected and new.exact_evaluations == old.exact_evaluations
    np.testing.assert_allclose(new.gains, old.gains, rtol=0, atol=1e-8)
    assert new.objective == pytest.approx(old.objective, rel=1e-12)
    assert new.po.x.shape == old.po.x.shape
    np.testing.assert_allclose(new.po.x, old.po.x, rtol=0, atol=1e-12)
    assert new.po.adopters == pytest.approx(old.po.adopters, rel=1e-12)
    assert new.po.theta == pytest.approx(old.po.theta, rel=1e-8, abs=1e-15)


@pytest.mark.parametrize("seed, n, K, L, c_bar", [(0, 40, 10, 13, 6.0), (1, 60, 12, 7, 2.0), (2, 30, 8, 4, 10.0),
                                                  (3, 45, 15, 13, 0.5), (4, 25, 25, 3, 0.02), (5, 50, 6, 16, 4.0),
                                                  (6, 20, 5, 2, 8.0), (7, 35, 35, 10, 1.0), (11, 50, 20, 4, 6.0),
                                                  (12, 30, 8, 20, 2.0)])
def test_accelerated_greedy_matches_the_numpy_planner(seed, n, K, L, c_bar):
    """Budgets from slack to binding, K = n, L from 2 to 20."""
    rng = np.random.default_rng(300 + seed)
    p, q, m, A0, decay = corpus(rng, n, L)
    budget = c_bar * m * L
    new = accelerated_greedy(p, q, m, A0, L, budget, K, decay)
    old = accelerated_greedy_v3(p, q, m, A0, L, budget, K, decay)
    _assert_same_plan(new, old)
