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


# -- the compiled h_v kernel (reach.promotion._compiled) against the numpy planner it replaced, kept in
# reach.promotion.reference as the *_v3 oracles (itself bit-identical with the planner before any CPU work). Not to
# the bit (another summation order, another LAPACK entry point): within the tolerances below -------------------------

from reach.promotion import _compiled  # noqa: E402
from reach.promotion.po import _as_inputs, _nonadopters, _solve_h_u  # noqa: E402
from reach.promotion.reference import _gradient_v3, _hessian_v3, _solve_h_u_v3, solve_po_v3  # noqa: E402

Y_TOL = 1e-9     # promoted shares y (the flattest directions of J move y most: p + q = 1 rows reach ~3e-11)
U_TOL = 1e-12    # non-adopters u
J_TOL = 1e-14    # the value of h_v (J at the solution)


def hard_batch(rng: np.random.Generator, n: int, L: int):
    """(p, q_eff, a0, y) with saturated videos (a0 = 1: u = 0), p + q = 1 at y = 1 (F_s near 0), q = 0 rows and
    rows with a tiny decayed q, besides plain ones."""
    p = rng.uniform(0.01, 0.4, n)
    q_eff = rng.uniform(0.0, 0.5, (n, L)) * np.minimum(1.0, (1 - p[:, None]) / 0.5)
    a0 = rng.uniform(0, 0.95, n)
    y = rng.uniform(0, 1, (n, L)) * (rng.random((n, L)) < 0.7)
    a0[:3] = 1.0
    q_eff[3:6] = (1 - p[3:6])[:, None]
    y[3:6] = 1.0
    q_eff[6:9] = 0.0
    q_eff[9:12] = 1e-3 * 0.983 ** (120 + np.arange(L))[None]
    return p, q_eff, a0, y


def _value(y, u, theta):
    return 1 - u[:, -1] - theta * np.sum(y * u[:, :-1], axis=1)


def _assert_close_h(new, old, theta) -> None:
    (y, u), (y_old, u_old) = new, old
    assert y.shape == y_old.shape and u.shape == u_old.shape
    np.testing.assert_allclose(y, y_old, rtol=0, atol=Y_TOL)
    np.testing.assert_allclose(u, u_old, rtol=0, atol=U_TOL)
    np.testing.assert_allclose(_value(y, u, theta), _value(y_old, u_old, theta), rtol=0, atol=J_TOL)


@pytest.mark.parametrize("L", [1, 2, 4, 13, 20])
def test_compiled_gradient_and_hessian_match_numpy(L):
    """The compiled adjoint and second-order adjoint against the numpy ones, saturated and F_s ~ 0 rows included."""
    rng = np.random.default_rng([L, 3])
    p, q_eff, a0, y = hard_batch(rng, 40, L)
    for theta in (0.0, 0.03):
        u, Fs, Fy, mu, grad = _gradient_v3(y, theta, p, q_eff, a0)
        hess = _hessian_v3(theta, p, q_eff, Fs, Fy, mu)
        for v in range(p.size):
            uv = np.empty(L + 1)
            _compiled.nonadopters_video(y[v], p[v], q_eff[v], a0[v], uv)
            out = [np.empty(L) for _ in range(4)]
            _compiled.gradient_video(y[v], theta, p[v], q_eff[v], uv, *out)
            D, H = np.empty((L, L)), np.empty((L, L))
            _compiled.hessian_video(theta, p[v], q_eff[v], out[0], out[1], out[2], D, H)
            np.testing.assert_allclose(uv, u[v], rtol=0, atol=1e-15)
            for a, b in zip(out, (Fs[v], Fy[v], mu[v], grad[v])):
                np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(H, hess[v], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("L", [1, 2, 3, 5, 8, 13, 16, 20])
def test_compiled_solve_h_matches_numpy(L):
    """h_v for thetas from 0 past theta_max, from the all-ones start (solve_po's), from a random start with and
    without its non-adopters u0, and from a start outside the box (clipped: its u0 must be ignored), on the hard
    rows of ``hard_batch``. q = 0 rows are left out of the zero and random starts: J is then multilinear in y with
    repeated Hessian eigenvalues, so both solvers' paths -- and where they stall -- are set by round-off."""
    rng = np.random.default_rng([L, 17])
    p, q_eff, a0, y0 = hard_batch(rng, 60, L)
    theta_max = float(np.max(p * np.prod(1 + q_eff, axis=1)))
    linear = np.zeros(p.size, dtype=bool)
    linear[6:9] = True
    wild = y0 * 1.5 - 0.2
    for theta in (0.0, *theta_max * rng.uniform(0, 1.2, 5)):
        ones = np.ones_like(y0)
        _assert_close_h(_solve_h_u(theta, p, q_eff, a0, ones), _solve_h_u_v3(theta, p, q_eff, a0, ones), theta)
        k = ~linear
        args = (p[k], q_eff[k], a0[k])
        _assert_close_h(_solve_h_u(theta, *args), _solve_h_u_v3(theta, *args), theta)
        for start in (y0[k], wild[k]):
            u0 = _nonadopters(start, *args)
            new = _solve_h_u(theta, *args, start, u0=u0)
            _assert_close_h(new, _solve_h_u_v3(theta, *args, start, u0=u0), theta)
            _assert_close_h(new, _solve_h_u_v3(theta, *args, start), theta)
            np.testing.assert_allclose(new[1], _nonadopters(new[0], *args), rtol=0, atol=1e-15)
    # max_iter = 0: the (clipped) start and its non-adopters
    y, u = _solve_h_u(0.1, p, q_eff, a0, wild, max_iter=0)
    assert (y == np.clip(wild, 0, 1)).all() and (u == _nonadopters(y, p, q_eff, a0)).all()


@pytest.mark.parametrize("kind, seed", CASES[::2])
def test_solve_po_matches_the_numpy_planner(kind, seed):
    """Plain solves, the AGA's bracketed warm-started ones (with and without u0) and pruned ones."""
    rng = np.random.default_rng([seed, len(kind), 5])
    p, q, m, A0, L, budget, decay = random_instance(rng, kind)
    plain = solve_po(p, q, m, A0, L, budget, decay)
    _assert_close_po(plain, solve_po_v3(p, q, m, A0, L, budget, decay))
    pp, q_eff, a0 = _as_inputs(p, q, A0 / m, L, decay)
    y0 = rng.uniform(0, 1, (p.size, L))
    u0 = _nonadopters(y0, pp, q_eff, a0)
    for kw in ({"theta_lo": 0.5 * plain.theta, "theta_hi": 2 * plain.theta + 1e-3, "y0": y0},
               {"theta_lo": 0.5 * plain.theta, "theta_hi": 2 * plain.theta + 1e-3, "y0": y0, "u0": u0},
               {"theta_lo": 2 * plain.theta + 1e-3},                               # a wrong lower bound
               {"prune_below": plain.adopters * 1.001}, {"prune_below": plain.adopters * 0.999}):
        _assert_close_po(solve_po(p, q, m, A0, L, budget, decay, **kw), solve_po_v3(p, q, m, A0, L, budget, decay, **kw))


def _assert_close_po(new, old) -> None:
    """Both pruned with the same bound, or the same plan, to round-off."""
    assert type(new) is type(old)
    if isinstance(new, Pruned):
        assert new.bound == pytest.approx(old.bound, rel=1e-12)
    else:
        assert new.x.shape == old.x.shape
        np.testing.assert_allclose(new.x, old.x, rtol=0, atol=PO_X_TOL)
        assert new.adopters == pytest.approx(old.adopters, rel=1e-12)
        assert new.budget_used == pytest.approx(old.budget_used, rel=1e-9, abs=1e-9)
        assert new.theta == pytest.approx(old.theta, rel=1e-8, abs=1e-15)   # measured: 4e-11


PO_X_TOL = 1e-12   # promotion fractions x (measured: 7e-15 on these cases)


def test_any_input_layout_runs_the_one_compiled_kernel():
    """Read-only, Fortran-ordered and strided inputs give the C-contiguous inputs' answer and do not make numba
    compile another specialisation (each costs seconds in a fresh cache)."""
    rng = np.random.default_rng(5)
    p, q_eff, a0, y0 = hard_batch(rng, 20, 6)
    plain = _solve_h_u(0.02, p, q_eff, a0, y0)
    ro = p.copy()
    ro.flags.writeable = False
    strided = np.empty((20, 12))[:, ::2]
    strided[:] = q_eff
    other = _solve_h_u(0.02, ro, np.asfortranarray(q_eff), a0[::-1][::-1].copy(), np.asfortranarray(y0))
    again = _solve_h_u(0.02, p, strided, a0, y0)
    for got in (other, again):
        assert (got[0] == plain[0]).all() and (got[1] == plain[1]).all()
    assert len(_compiled.solve_h_batch.signatures) == 1
