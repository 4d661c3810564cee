"""Promotion optimisation for a fixed candidate set (paper 2, Section 4.2): PO (Eq. 4) through its convex
relaxation PO-CR (Eq. 5, Theorem 2), solved two ways.

Units: everything is normalised by the market size m, so a = A / m, the budget is b = C / m = C-bar * L
(Eq. 4d) and objectives are returned in adopters (times m). Time decay enters as a per-period multiplier on q:
``q_eff[v, t] = q[v] * decay[v, t]`` (decay = gamma ** age).

* ``solve_po_cvxpy``: PO-CR as one cvxpy problem (the oracle).
* ``solve_po``: the structure the paper proves -- separable concave f_v (Lemma 1), the dual of Eqs. 8-9 with one
  budget multiplier theta found by safeguarded secant steps (B(theta) is monotone), each h_v(theta) solved by a projected Newton
  method, video by video in compiled code (``_compiled``). Where B(theta) jumps (linear pieces of f_v, e.g. L = 1 or q = 0), the two
  optimal solutions at theta* are mixed to spend the budget exactly (the knapsack rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reach.promotion._compiled import solve_h_batch


@dataclass(frozen=True)
class PoResult:
    adopters: float        # optimal sum_v A_{v,L} (in adopters)
    x: np.ndarray          # (n, L) optimal promotion fractions
    theta: float           # budget multiplier of Eq. 8 (per unit of sum x, in normalised adopters)
    budget_used: float     # m * sum x


@dataclass(frozen=True)
class Pruned:
    """A solve stopped early: ``bound`` (adopters) is a dual value, an upper bound on the optimum."""

    bound: float


def _as_inputs(p, q, a0, L, decay):
    p = np.asarray(p, dtype=float).ravel()
    q = np.asarray(q, dtype=float).ravel()
    a0 = np.asarray(a0, dtype=float).ravel()
    n = p.size
    if decay is None:
        q_eff = np.repeat(q[:, None], L, axis=1)
    else:
        q_eff = q[:, None] * np.broadcast_to(np.asarray(decay, dtype=float), (n, L))
    if np.any(p < 0) or np.any(q < 0) or np.any(p + q > 1 + 1e-12):
        raise ValueError("P-BDM needs p, q >= 0 and p + q <= 1")
    if np.any((a0 < 0) | (a0 > 1)):
        raise ValueError("initial adopters must lie in [0, m]")
    return p, q_eff, a0


def trajectory(x: np.ndarray, p: np.ndarray, q_eff: np.ndarray, a0: np.ndarray) -> np.ndarray:
    """Normalised adopters a[:, 0..L] under the P-BDM equalities (Eq. 2 / 4b): a_t = g_t(a_{t-1}) + p x_t."""
    n, L = x.shape
    a = np.empty((n, L + 1))
    a[:, 0] = a0
    for t in range(L):
        a[:, t + 1] = a[:, t] + p * x[:, t] + q_eff[:, t] * a[:, t] * (1 - a[:, t])
    return a


def f_value(x: np.ndarray, p: np.ndarray, q_eff: np.ndarray, a0: np.ndarray) -> np.ndarray:
    """f_v(x) of Eq. 7: max a_L under the relaxed dynamics (5) and a_{t-1} <= 1 - x_t (4c) -- the forward pass
    that takes the largest feasible a_t each period (g_t is increasing on [0, 1])."""
    n, L = x.shape
    a = a0.copy()
    for t in range(L):
        a = a + p * x[:, t] + q_eff[:, t] * a * (1 - a)
        if t + 1 < L:
            a = np.minimum(a, 1 - x[:, t + 1])
    return a


def _nonadopters(y, p, q_eff, a0):
    """u_t = 1 - a_t under the equalities, with y_t = x_t / u_{t-1} the promoted share of non-adopters:
    u_t = u_{t-1} (1 - p y_t - q_t (1 - u_{t-1}))  (Eq. 2 rewritten; the cap (4c) becomes y_t <= 1)."""
    n, L = y.shape
    u = np.empty((n, L + 1))
    u[:, 0] = 1 - a0
    stay = 1 - p[:, None] * y          # 1 - p y_t for every t at once: the same products as period by period
    tmp = np.empty(n)
    for t in range(L):                 # u_t = u_{t-1} ((1 - p y_t) - q_t (1 - u_{t-1})), the same operations in place
        np.subtract(1, u[:, t], out=tmp)
        np.multiply(q_eff[:, t], tmp, out=tmp)
        np.subtract(stay[:, t], tmp, out=tmp)
        np.multiply(u[:, t], tmp, out=u[:, t + 1])
    return u


def _solve_h(theta: float, p, q_eff, a0, y0=None, tol=1e-15, max_iter=300) -> np.ndarray:
    """y of ``_solve_h_u``."""
    return _solve_h_u(theta, p, q_eff, a0, y0, tol, max_iter)[0]


def _solve_h_u(theta: float, p, q_eff, a0, y0=None, tol=1e-15, max_iter=300,
               u0=None) -> tuple[np.ndarray, np.ndarray]:
    """argmax over y in [0, 1]^L of J(y) = a_L - theta sum_t x_t for every video (h_v of Eq. 9, with
    x_t = y_t u_{t-1}), by projected Newton (Bertsekas 1982) with an eigenvalue-clamped Hessian and Armijo steps,
    video by video in compiled code (``_compiled.solve_h_batch``; ``reference._solve_h_u_v3`` is the numpy
    version, vectorised over videos, and the tests' oracle). Returns y and its non-adopters u (n x (L + 1)).

    ``y0`` (clipped to the box) is the start, all zeros without one; ``u0``, the non-adopters of ``y0`` when the
    caller has them (a previous solve's), spares their first recursion and is used only where the clipped start
    is y0 itself (u depends on y through 1 - p y only)."""
    y, u, _, _ = _solve_h_totals(theta, p, q_eff, a0, y0, tol, max_iter, u0)
    return y, u


def _solve_h_totals(theta: float, p, q_eff, a0, y0=None, tol=1e-15, max_iter=300,
                    u0=None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``_solve_h_u``'s (y, u) with the solution's budget sum_v sum_t x_vt and Lagrangian sum_v J_v(y) (Eq. 8)."""
    n, L = q_eff.shape
    if y0 is None:
        y = np.zeros((n, L))
    else:  # a fresh array (the kernel writes into it); ufuncs rather than np.clip: less call overhead, same values
        y = np.ascontiguousarray(np.minimum(np.maximum(np.asarray(y0, dtype=float), 0.0), 1.0))
    known = u0 is not None and y0 is not None and bool((y == y0).all())
    u = np.array(u0, dtype=float, order="C", copy=True) if known else np.empty((n, L + 1))
    spent, lagrangian = solve_h_batch(float(theta), _kernel_array(p), _kernel_array(q_eff), _kernel_array(a0),
                                      y, u, known, float(tol), int(max_iter))
    return y, u, spent, lagrangian


def _kernel_array(a) -> np.ndarray:
    """a as the one array type the kernel is compiled for (C-contiguous, writeable float64), so that a read-only or
    strided input does not trigger another numba compilation."""
    a = np.ascontiguousarray(a, dtype=float)
    return a if a.flags.writeable else a.copy()


def solve_po(p, q, m: float, A0, L: int, budget: float, decay=None, theta_lo: float = 0.0,
             theta_hi: float | None = None, y0: np.ndarray | None = None, tol: float = 1e-9,
             prune_below: float | None = None, u0: np.ndarray | None = None) -> PoResult | Pruned:
    """Exact PO-CR for one candidate set: dual root-finding on theta (Eq. 8) over h_v (Eq. 9) for every video.

    ``budget`` is C (impressions over the L-period window, Eq. 4d); ``theta_lo`` / ``theta_hi`` are known bounds
    on the optimal multiplier (the AGA passes the previous iteration's as the lower one, Lemma 2, and its dual
    grid's bracket); ``y0`` warm-starts the promoted shares y = x / (1 - a). Wrong bounds are detected and
    widened, so they only ever cost time. With ``prune_below`` (adopters), the solve stops and returns None as
    soon as a dual value -- an upper bound on the optimum by weak duality -- falls below it, and returns that
    bound as ``Pruned`` (the AGA's pruning). ``u0``, the non-adopters of ``y0`` under the equalities (normalised,
    n x (L + 1); the AGA has them from its grid), only spares their recomputation. Each solve of h passes on its
    non-adopters with its y, to the next solve it warm-starts and to the final policy x = y u; the compiled kernel
    also sums the budget and the Lagrangian. ``reference.solve_po_v3`` is this with the numpy h_v (round-off apart)."""
    p, q_eff, a0 = _as_inputs(p, q, np.asarray(A0, dtype=float) / m, L, decay)
    b = budget / m
    n = p.size
    if n == 0:
        return PoResult(0.0, np.zeros((0, L)), 0.0, 0.0)

    class _Pruned(Exception):
        def __init__(self, bound):
            self.bound = bound

    def spend(theta, y0=None, u0=None):
        y, u, used, lagrangian = _solve_h_totals(theta, p, q_eff, a0, y0, u0=u0)
        if prune_below is not None:
            dual = m * (lagrangian + theta * b)  # Eq. 8 at theta
            if dual < prune_below:
                raise _Pruned(dual)
        return y, u, used

    try:
        theta_max = float(np.max(p * np.prod(1 + q_eff, axis=1))) * (1 + 1e-9) + 1e-15  # no promotion pays above
        if y0 is None:
            start = np.ones((n, L))
            u_start = None
        else:
            start, u_start = y0, u0
        lo = max(theta_lo, 0.0)
        if lo == 0.0:
            y_free, u_free, used_free = spend(0.0, np.ones((n, L)))
            if used_free <= b * (1 + 1e-12):
                x = y_free * u_free[:, :-1]
                return PoResult(float(m * f_value(x, p, q_eff, a0).sum()), x, 0.0, float(m * used_free))
            y_lo, u_lo, used_lo = y_free, u_free, used_free
        else:
            y_lo, u_lo, used_lo = spend(lo, start, u_start)
            if used_lo <= b:  # not a lower bound after all: start again from zero
                return solve_po(p, q, m, A0, L, budget, decay, tol=tol, prune_below=prune_below)
        hi = theta_max if theta_hi is None or theta_hi <= lo else min(theta_hi, theta_max)
        y_hi, u_hi, used_hi = spend(hi, start, u_start)
        if used_hi > b:  # not an upper bound after all
            hi = theta_max
            y_hi, u_hi, used_hi = spend(hi)
        # Safeguarded secant (Illinois) on B(theta) - b: B is monotone, possibly with jumps where f_v is linear.
        f_lo, f_hi = used_lo - b, used_hi - b
        side = 0
        for _ in range(200):
            if hi - lo <= tol * max(hi, 1e-300):
                break
            mid = hi - f_hi * (hi - lo) / (f_hi - f_lo) if f_hi != f_lo else 0.5 * (lo + hi)
            if not lo < mid < hi or (hi - lo) < 1e-6 * max(hi, 1e-300) and side > 3:
                mid = 0.5 * (lo + hi)
            y_mid, u_mid, used_mid = spend(mid, y_lo, u_lo)
            f_mid = used_mid - b
            if f_mid > 0:
                lo, y_lo, u_lo, used_lo, f_lo = mid, y_mid, u_mid, used_mid, f_mid
                f_hi = f_hi / 2 if side == -1 else f_hi
                side = -1
            else:
                hi, y_hi, u_hi, used_hi, f_hi = mid, y_mid, u_mid, used_mid, f_mid
                f_lo = f_lo / 2 if side == 1 else f_lo
                side = 1
            if abs(f_mid) <= 1e-10 * max(b, 1e-300):
                lo = hi = mid
                y_lo = y_hi = y_mid
                u_lo = u_hi = u_mid
                used_lo = used_hi = used_mid
                break
        # Spend the budget exactly: mix the two optimal policies on either side of theta* (in x, where f is concave).
        x_lo, x_hi = y_lo * u_lo[:, :-1], y_hi * u_hi[:, :-1]
        w = 0.0 if used_lo == used_hi else float(np.clip((used_lo - b) / (used_lo - used_hi), 0.0, 1.0))
        x = (1 - w) * x_lo + w * x_hi
        theta = 0.5 * (lo + hi)
        return PoResult(float(m * f_value(x, p, q_eff, a0).sum()), x, theta, float(m * x.sum()))
    except _Pruned as stop:
        return Pruned(stop.bound)


def solve_po_cvxpy(p, q, m: float, A0, L: int, budget: float, decay=None, solver: str = "CLARABEL") -> PoResult:
    """PO-CR (Eqs. 4a, 5, 4c, 4d) in cvxpy, normalised by m; the oracle for ``solve_po``."""
    import cvxpy as cp

    p, q_eff, a0 = _as_inputs(p, q, np.asarray(A0, dtype=float) / m, L, decay)
    n = p.size
    x = cp.Variable((n, L), nonneg=True)
    a = cp.Variable((n, L + 1))
    cons = [a[:, 0] == a0]
    for t in range(L):
        prev = a[:, t]
        cons += [a[:, t + 1] <= prev + cp.multiply(p, x[:, t]) + cp.multiply(q_eff[:, t], prev)
                 - cp.multiply(q_eff[:, t], cp.square(prev)),           # (5), normalised
                 x[:, t] <= 1 - prev]                                   # (4c)
    budget_con = cp.sum(x) <= budget / m                                # (4d)
    cons.append(budget_con)
    prob = cp.Problem(cp.Maximize(cp.sum(a[:, L])), cons)
    prob.solve(solver=solver)
    if prob.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"cvxpy PO-CR: {prob.status}")
    xv = np.maximum(x.value, 0.0)
    return PoResult(float(m * prob.value), xv, float(budget_con.dual_value), float(m * xv.sum()))
