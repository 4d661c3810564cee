"""PO for a fixed candidate set: the fast exact solver against the cvxpy PO-CR oracle, Theorem 2, and the
fractional-knapsack closed form at L = 1."""

from __future__ import annotations

import numpy as np
import pytest

from reach.promotion.po import Pruned, f_value, solve_po, solve_po_cvxpy, trajectory


def random_instance(rng: np.random.Generator, kind: str):
    n, L, m = int(rng.integers(1, 9)), int(rng.integers(1, 14)), float(rng.choice([1e3, 1e4, 5e5]))
    p = rng.uniform(0.005, 0.4, n)
    q = np.minimum(rng.uniform(0.0, 0.7, n), 1 - p)
    A0 = (rng.uniform(0.9, 0.999, n) if kind == "saturated" else rng.uniform(0, 0.3, n)) * m
    decay = 0.983 ** (rng.integers(0, 60, n)[:, None] + np.arange(L)[None]) if kind == "decay" else None
    c_bar = {"binding": rng.choice([1e-4, 1e-3, 1e-2]), "slack": 5.0, "saturated": rng.choice([1e-3, 0.05, 2.0]),
             "decay": rng.choice([1e-3, 1e-2, 0.3]), "large": rng.choice([0.3, 1.0])}[kind]
    return p, q, m, A0, L, c_bar * m * L, decay


CASES = [(kind, seed) for kind in ("binding", "slack", "saturated", "decay", "large") for seed in range(11)]


@pytest.mark.parametrize("kind, seed", CASES)
def test_fast_po_matches_cvxpy(kind, seed):
    rng = np.random.default_rng([seed, len(kind)])
    p, q, m, A0, L, budget, decay = random_instance(rng, kind)
    fast = solve_po(p, q, m, A0, L, budget, decay)
    oracle = solve_po_cvxpy(p, q, m, A0, L, budget, decay)
    assert fast.adopters == pytest.approx(oracle.adopters, rel=1e-6)
    assert fast.budget_used <= budget * (1 + 1e-9)
    assert fast.x.min() >= 0
    # the fast policy is feasible for PO itself (Eq. 4c under the equalities) and its value is what it reports
    q_eff = q[:, None] * (1 if decay is None else decay) * np.ones((1, L))
    a = trajectory(fast.x / 1.0, p, q_eff, A0 / m)
    assert np.all(fast.x <= 1 - a[:, :-1] + 1e-9)
    assert m * a[:, -1].sum() == pytest.approx(fast.adopters, rel=1e-9)
    if kind == "slack":
        assert fast.theta == 0.0
    if oracle.theta > 1e-6 and kind in ("binding", "decay"):
        assert fast.theta == pytest.approx(oracle.theta, rel=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_po_cr_optimum_satisfies_the_pbdm_equalities(seed):
    """Theorem 2: the relaxation's optimum keeps (5) tight, so it is feasible for PO (4)."""
    import cvxpy as cp  # noqa: F401 - the oracle's dependency

    rng = np.random.default_rng(100 + seed)
    p, q, m, A0, L, budget, decay = random_instance(rng, "binding")
    res = solve_po_cvxpy(p, q, m, A0, L, budget, decay)
    a = trajectory(res.x, p, q[:, None] * np.ones((1, L)), A0 / m)
    # objective recomputed from the equalities equals the relaxed optimum
    assert m * a[:, -1].sum() == pytest.approx(res.adopters, rel=1e-6)
    assert m * f_value(res.x, p, q[:, None] * np.ones((1, L)), A0 / m).sum() == pytest.approx(res.adopters, rel=1e-6)


def test_single_period_is_a_fractional_knapsack():
    """L = 1: adopters gained per impression are p_v, so the budget goes to the largest p first, up to each
    video's non-adopters (closed form, independent of both solvers)."""
    m = 1e4
    p = np.array([0.05, 0.3, 0.2, 0.1])
    q = np.array([0.1, 0.2, 0.05, 0.3])
    A0 = np.array([0.1, 0.95, 0.5, 0.2]) * m
    budget = 0.6 * m
    order = np.argsort(-p)
    x = np.zeros(4)
    left = budget / m
    for v in order:
        x[v] = min(1 - A0[v] / m, left)
        left -= x[v]
    a0 = A0 / m
    expected = m * np.sum(a0 + p * x + q * a0 * (1 - a0))
    fast = solve_po(p, q, m, A0, 1, budget)
    assert fast.adopters == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(fast.x[:, 0], x, atol=1e-10)


def test_zero_budget_and_bad_inputs():
    m = 1e3
    res = solve_po([0.1, 0.2], [0.3, 0.1], m, [10.0, 0.0], 5, 0.0)
    a = trajectory(np.zeros((2, 5)), np.array([0.1, 0.2]), np.array([[0.3] * 5, [0.1] * 5]), np.array([0.01, 0.0]))
    assert res.adopters == pytest.approx(m * a[:, -1].sum(), rel=1e-12)
    with pytest.raises(ValueError, match="p \\+ q <= 1"):
        solve_po([0.8], [0.5], m, [0.0], 3, 10.0)


# -- the CPU work on the solver keeps every bit: the pre-optimisation copy in reach.promotion.reference is the oracle

from reach.promotion.po import _as_inputs, _solve_h  # noqa: E402
from reach.promotion.reference import _solve_h_reference, solve_po_reference  # noqa: E402


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _assert_same_solution(new, old) -> None:
    """Both pruned with the same bound, or the same plan to the bit."""
    assert type(new) is type(old)
    if isinstance(new, Pruned):
        assert new.bound == old.bound
    else:
        assert _identical(new.x, old.x) and (new.adopters, new.theta, new.budget_used) == (
            old.adopters, old.theta, old.budget_used)


@pytest.mark.parametrize("seed", range(8))
def test_solve_h_is_bit_identical_to_the_reference(seed):
    """Thetas from 0 past theta_max, cold and warm starts, L from 1 to 13, and one platform-sized batch."""
    rng = np.random.default_rng([seed, 77])
    n, L = 300, 13
    big = (np.clip(rng.normal(0.156, 0.055, n), 0.01, 0.5), np.clip(rng.normal(0.0547, 0.0225, n), 0.001, 0.3),
           1e4, rng.uniform(0, 0.6, n) * 1e4 * (rng.random(n) < 0.6), L, 0.0,
           0.983 ** (rng.integers(0, 120, n)[:, None] + np.arange(L)[None]))
    for kind in ("binding", "saturated", "decay", "large", "big"):
        p, q, m, A0, L, _, decay = big if kind == "big" else random_instance(rng, kind)
        p, q_eff, a0 = _as_inputs(p, q, A0 / m, L, decay)
        theta_max = float(np.max(p * np.prod(1 + q_eff, axis=1)))
        y0 = rng.uniform(0, 1, q_eff.shape) * (rng.random(q_eff.shape) < 0.7)
        for theta in (0.0, *theta_max * rng.uniform(0, 1.2, 4)):
            for start in (None, y0):
                assert _identical(_solve_h(theta, p, q_eff, a0, start), _solve_h_reference(theta, p, q_eff, a0, start))


@pytest.mark.parametrize("kind, seed", CASES[::2])
def test_solve_po_is_bit_identical_to_the_reference(kind, seed):
    """Plain solves, the AGA's bracketed warm-started ones and pruned ones."""
    rng = np.random.default_rng([seed, len(kind), 5])
    p, q, m, A0, L, budget, decay = random_instance(rng, kind)
    plain = solve_po(p, q, m, A0, L, budget, decay)
    ref = solve_po_reference(p, q, m, A0, L, budget, decay)
    assert _identical(plain.x, ref.x) and (plain.adopters, plain.theta, plain.budget_used) == (
        ref.adopters, ref.theta, ref.budget_used)
    y0 = rng.uniform(0, 1, (p.size, L))
    for kw in ({"theta_lo": 0.5 * plain.theta, "theta_hi": 2 * plain.theta + 1e-3, "y0": y0},
               {"theta_lo": 2 * plain.theta + 1e-3},                               # a wrong lower bound
               {"prune_below": plain.adopters * 1.001}, {"prune_below": plain.adopters * 0.999}):
        new, old = solve_po(p, q, m, A0, L, budget, decay, **kw), solve_po_reference(p, q, m, A0, L, budget, decay, **kw)
        _assert_same_solution(new, old)


# -- the second round of CPU work (u0 warm starts, in-place adjoint, leaner first Newton iteration) against the
# planner as it was before it (reach.promotion.reference, the *_v2 copies) ---------------------------------------

from reach.promotion.po import _gradient, _nonadopters, _solve_h_u  # noqa: E402
from reach.promotion.reference import _gradient_v2, _solve_h_u_v2, solve_po_v2  # noqa: E402


@pytest.mark.parametrize("L", [1, 2, 4, 13, 20])
def test_gradient_is_bit_identical_to_v2(L):
    """The in-place adjoint, with saturated videos (u = 0) and p + q = 1 at y = 1 (F_s near 0) in some batches."""
    rng = np.random.default_rng([L, 3])
    n = 40
    for case in ("plain", "saturated", "edge"):
        p = rng.uniform(0.01, 0.4, n)
        q_eff = rng.uniform(0.0, 0.5, (n, L)) * np.minimum(1.0, (1 - p[:, None]) / 0.5)
        a0 = rng.uniform(0, 0.95, n)
        y = rng.uniform(0, 1, (n, L)) * (rng.random((n, L)) < 0.7)
        if case == "saturated":
            a0[:3] = 1.0
        if case == "edge":
            q_eff[:4] = (1 - p[:4])[:, None]
            y[:4] = 1.0
        for theta in (0.0, 0.03):
            new, old = _gradient(y, theta, p, q_eff, a0), _gradient_v2(y, theta, p, q_eff, a0)
            assert all(_identical(a, b) for a, b in zip(new, old))


@pytest.mark.parametrize("seed", range(4))
def test_solve_h_u_with_known_nonadopters_is_bit_identical_to_v2(seed):
    """u0 (the non-adopters of y0) spares a recursion and changes nothing; a y0 outside [0, 1] is clipped, so
    its u0 must be ignored (a wrong u0 here would change the result)."""
    rng = np.random.default_rng([seed, 91])
    for kind in ("binding", "saturated", "decay", "large"):
        p, q, m, A0, L, _, decay = random_instance(rng, kind)
        p, q_eff, a0 = _as_inputs(p, q, A0 / m, L, decay)
        theta_max = float(np.max(p * np.prod(1 + q_eff, axis=1)))
        y0 = rng.uniform(0, 1, q_eff.shape) * (rng.random(q_eff.shape) < 0.7)
        wild = y0 * 1.5 - 0.2
        for theta in (0.0, *theta_max * rng.uniform(0, 1.2, 3)):
            for start in (y0, wild):
                new = _solve_h_u(theta, p, q_eff, a0, start, u0=_nonadopters(start, p, q_eff, a0))
                old = _solve_h_u_v2(theta, p, q_eff, a0, start)
                assert _identical(new[0], old[0]) and _identical(new[1], old[1])
            assert all(_identical(a, b) for a, b in zip(_solve_h_u(theta, p, q_eff, a0), _solve_h_u_v2(theta, p, q_eff, a0)))


@pytest.mark.parametrize("kind, seed", CASES[1::3])
def test_solve_po_with_a_warm_start_is_bit_identical_to_v2(kind, seed):
    """The AGA's call: bracket, y0 and its non-adopters u0 (as the grid passes them)."""
    rng = np.random.default_rng([seed, len(kind), 8])
    p, q, m, A0, L, budget, decay = random_instance(rng, kind)
    plain = solve_po(p, q, m, A0, L, budget, decay)
    pp, q_eff, a0 = _as_inputs(p, q, A0 / m, L, decay)
    y0 = rng.uniform(0, 1, (p.size, L))
    u0 = _nonadopters(y0, pp, q_eff, a0)
    for kw in ({"theta_lo": 0.5 * plain.theta, "theta_hi": 2 * plain.theta + 1e-3, "y0": y0},
               {"theta_lo": 0.9 * plain.theta, "theta_hi": 1.1 * plain.theta + 1e-6, "y0": y0,
                "prune_below": plain.adopters * 0.999}):
        new, old = solve_po(p, q, m, A0, L, budget, decay, u0=u0, **kw), solve_po_v2(p, q, m, A0, L, budget, decay, **kw)
        _assert_same_solution(new, old)
