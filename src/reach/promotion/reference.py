"""The promotion planner as it was before its CPU work (commit 0b2945e, the ``*_reference`` functions), after its
first round (commit 10650d0, the ``*_v2`` functions) and the numpy planner of commit ccfb7e5, before the compiled h_v
kernel (the ``*_v3`` functions at the end), kept verbatim -- only renamed -- as oracles and baselines. The three are
bit-identical with each other; tests/test_promotion_{po,cgpo,platform}.py check ``po._solve_h_u``, ``po.solve_po``,
``cgpo.accelerated_greedy`` and whole platform runs against the ``*_v3`` oracles within stated tolerances, and
benchmarks/promotion_cpu.py times all of them against today's. Not used by the workflow."""

from __future__ import annotations

import numpy as np

from reach.promotion.cgpo import CgpoResult, _better, _subset, _tie_tol
from reach.promotion.po import PoResult, Pruned, _as_inputs, f_value


def _nonadopters_reference(y, p, q_eff, a0):
    """u_t = 1 - a_t under the equalities, with y_t = x_t / u_{t-1} the promoted share of non-adopters:
    u_t = u_{t-1} (1 - p y_t - q_t (1 - u_{t-1}))  (Eq. 2 rewritten; the cap (4c) becomes y_t <= 1)."""
    n, L = y.shape
    u = np.empty((n, L + 1))
    u[:, 0] = 1 - a0
    for t in range(L):
        u[:, t + 1] = u[:, t] * (1 - p * y[:, t] - q_eff[:, t] * (1 - u[:, t]))
    return u


def _lagrangian_reference(y, theta, p, q_eff, a0):
    """J(y) = a_L - theta * sum_t x_t with x_t = y_t u_{t-1}: the objective of h_v (Eq. 9)."""
    u = _nonadopters_reference(y, p, q_eff, a0)
    return 1 - u[:, -1] - theta * np.sum(y * u[:, :-1], axis=1)


def _lagrangian_derivatives_reference(y, theta, p, q_eff, a0):
    """Gradient and Hessian of J in y by the (second-order) adjoint of the scalar recursion u_t = F_t(u_{t-1}, y_t)."""
    n, L = y.shape
    u = _nonadopters_reference(y, p, q_eff, a0)
    s = u[:, :-1]                                   # u_{t-1}
    Fs = 1 - p[:, None] * y - q_eff + 2 * q_eff * s
    Fy = -p[:, None] * s
    mu = np.empty((n, L))                           # mu_t = dJ/du_t (t = 1..L); running cost -theta y_t u_{t-1}
    nxt = -np.ones(n)
    for t in range(L - 1, -1, -1):
        mu[:, t] = nxt
        nxt = nxt * Fs[:, t] - theta * y[:, t]
    grad = mu * Fy - theta * s
    Dstack = np.zeros((n, L, L))                    # Dstack[:, t] = d u_{t-1} / d y
    D = np.zeros((n, L))
    for t in range(L):
        Dstack[:, t] = D
        D = Fs[:, t, None] * D
        D[:, t] += Fy[:, t]
    curv = mu * 2 * q_eff                           # F_ss = 2 q_t, weighted by the adjoint
    hess = np.matmul(np.swapaxes(Dstack * curv[:, :, None], 1, 2), Dstack)
    cross = (mu * -p[:, None] - theta)[:, :, None] * Dstack   # F_sy = -p, r_sy = -theta: row t is e_t D_{t-1}'
    hess += cross + np.swapaxes(cross, 1, 2)
    return grad, hess


def _solve_h_reference(theta: float, p, q_eff, a0, y0=None, tol=1e-15, max_iter=300) -> np.ndarray:
    """argmax over y in [0, 1]^L of J(y) for every video (h_v of Eq. 9, with x_t = y_t u_{t-1}), by projected
    Newton (Bertsekas 1982) with an eigenvalue-clamped Hessian and Armijo steps, vectorised over videos."""
    n = p.size
    L = q_eff.shape[1]
    y = np.zeros((n, L)) if y0 is None else np.clip(y0, 0.0, 1.0).copy()
    active = np.ones(n, dtype=bool)
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        ya, pa, qa, aa = y[idx], p[idx], q_eff[idx], a0[idx]
        grad, hess = _lagrangian_derivatives_reference(ya, theta, pa, qa, aa)
        at_bound = ((ya <= 0) & (grad <= 0)) | ((ya >= 1) & (grad >= 0))
        free = ~at_bound
        pg = np.where(free, grad, 0.0)
        converged = np.abs(pg).max(axis=1) <= 1e-16
        # ascent direction (-H)_free^{-1} g on the free coordinates, with -H made positive definite
        M = -np.where(free[:, :, None] & free[:, None, :], hess, 0.0)
        w, V = np.linalg.eigh(M)
        floor = 1e-12 * np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-3)
        w = np.maximum(w, floor)
        d = np.matmul(V, (np.matmul(np.swapaxes(V, 1, 2), pg[..., None])[..., 0] / w)[..., None])[..., 0]
        d = np.where(free, d, 0.0)
        # In near-linear directions the clamped Newton step is huge; no useful step is longer than the box (width 1)
        d = d / np.maximum(np.abs(d).max(axis=1, keepdims=True), 1.0)
        # Newton decrement: the predicted gain of the step; below round-off there is nothing left to gain
        converged |= np.sum(pg * d, axis=1) <= 1e-13  # J is O(1) per video: below this is round-off
        obj_old = _lagrangian_reference(ya, theta, pa, qa, aa)
        step = np.ones(idx.size)
        accepted = converged.copy()
        y_new = ya.copy()
        for _ls in range(40):
            trial = np.clip(ya + step[:, None] * d, 0.0, 1.0)
            obj = _lagrangian_reference(trial, theta, pa, qa, aa)
            ok = (obj >= obj_old + 1e-4 * np.sum(grad * (trial - ya), axis=1) - 1e-15) & ~accepted
            y_new[ok] = trial[ok]
            accepted |= ok
            if accepted.all():
                break
            step = np.where(accepted, step, step * 0.5)
        change = np.abs(y_new - ya).max(axis=1)
        y[idx] = y_new
        done = converged | (change <= tol) | ~accepted
        active[idx[done]] = False
    return y


def solve_po_reference(p, q, m: float, A0, L: int, budget: float, decay=None, theta_lo: float = 0.0,
             theta_hi: float | None = None, y0: np.ndarray | None = None, tol: float = 1e-9,
             prune_below: float | None = None) -> PoResult | Pruned:
    """Exact PO-CR for one candidate set: dual root-finding on theta (Eq. 8) over vectorised h_v (Eq. 9).

    ``budget`` is C (impressions over the L-period window, Eq. 4d); ``theta_lo`` / ``theta_hi`` are known bounds
    on the optimal multiplier (the AGA passes the previous iteration's as the lower one, Lemma 2, and its dual
    grid's bracket); ``y0`` warm-starts the promoted shares y = x / (1 - a). Wrong bounds are detected and
    widened, so they only ever cost time. With ``prune_below`` (adopters), the solve stops and returns None as
    soon as a dual value -- an upper bound on the optimum by weak duality -- falls below it, and returns that
    bound as ``Pruned`` (the AGA's pruning)."""
    p, q_eff, a0 = _as_inputs(p, q, np.asarray(A0, dtype=float) / m, L, decay)
    b = budget / m
    n = p.size
    if n == 0:
        return PoResult(0.0, np.zeros((0, L)), 0.0, 0.0)

    class _Pruned(Exception):
        def __init__(self, bound):
            self.bound = bound

    def spend(theta, y0=None):
        y = _solve_h_reference(theta, p, q_eff, a0, y0)
        u = _nonadopters_reference(y, p, q_eff, a0)
        if prune_below is not None:
            dual = m * (float(_lagrangian_reference(y, theta, p, q_eff, a0).sum()) + theta * b)  # Eq. 8 at theta
            if dual < prune_below:
                raise _Pruned(dual)
        return y, float(np.sum(y * u[:, :-1]))

    def to_x(y):
        return y * _nonadopters_reference(y, p, q_eff, a0)[:, :-1]

    try:
        theta_max = float(np.max(p * np.prod(1 + q_eff, axis=1))) * (1 + 1e-9) + 1e-15  # no promotion pays above
        start = np.ones((n, L)) if y0 is None else y0
        lo = max(theta_lo, 0.0)
        if lo == 0.0:
            y_free, used_free = spend(0.0, np.ones((n, L)))
            if used_free <= b * (1 + 1e-12):
                x = to_x(y_free)
                return PoResult(float(m * f_value(x, p, q_eff, a0).sum()), x, 0.0, float(m * used_free))
            y_lo, used_lo = y_free, used_free
        else:
            y_lo, used_lo = spend(lo, start)
            if used_lo <= b:  # not a lower bound after all: start again from zero
                return solve_po_reference(p, q, m, A0, L, budget, decay, tol=tol, prune_below=prune_below)
        hi = theta_max if theta_hi is None or theta_hi <= lo else min(theta_hi, theta_max)
        y_hi, used_hi = spend(hi, start)
        if used_hi > b:  # not an upper bound after all
            hi = theta_max
            y_hi, used_hi = spend(hi)
        # Safeguarded secant (Illinois) on B(theta) - b: B is monotone, possibly with jumps where f_v is linear.
        f_lo, f_hi = used_lo - b, used_hi - b
        side = 0
        for _ in range(200):
            if hi - lo <= tol * max(hi, 1e-300):
                break
            mid = hi - f_hi * (hi - lo) / (f_hi - f_lo) if f_hi != f_lo else 0.5 * (lo + hi)
            if not lo < mid < hi or (hi - lo) < 1e-6 * max(hi, 1e-300) and side > 3:
                mid = 0.5 * (lo + hi)
            y_mid, used_mid = spend(mid, y_lo)
            f_mid = used_mid - b
            if f_mid > 0:
                lo, y_lo, used_lo, f_lo = mid, y_mid, used_mid, f_mid
                f_hi = f_hi / 2 if side == -1 else f_hi
                side = -1
            else:
                hi, y_hi, used_hi, f_hi = mid, y_mid, used_mid, f_mid
                f_lo = f_lo / 2 if side == 1 else f_lo
                side = 1
            if abs(f_mid) <= 1e-10 * max(b, 1e-300):
                lo = hi = mid
                y_lo = y_hi = y_mid
                used_lo = used_hi = used_mid
                break
        # Spend the budget exactly: mix the two optimal policies on either side of theta* (in x, where f is concave).
        x_lo, x_hi = to_x(y_lo), to_x(y_hi)
        w = 0.0 if used_lo == used_hi else float(np.clip((used_lo - b) / (used_lo - used_hi), 0.0, 1.0))
        x = (1 - w) * x_lo + w * x_hi
        theta = 0.5 * (lo + hi)
        return PoResult(float(m * f_value(x, p, q_eff, a0).sum()), x, theta, float(m * x.sum()))
    except _Pruned as stop:
        return Pruned(stop.bound)


def _tabulate_reference(p, q_eff, a0, thetas):
    """h_v(theta) (normalised), b_v(theta) = sum_t x_vt, the policies' values f_v and the policies themselves
    (as shares y) for every video at every grid theta; warm-started along the grid."""
    n, G = p.size, thetas.size
    L = q_eff.shape[1]
    h = np.empty((n, G))
    spend = np.empty((n, G))
    value = np.empty((n, G))
    shares = np.empty((n, G, L))
    y = np.ones((n, L))
    for g, theta in enumerate(thetas):
        y = _solve_h_reference(float(theta), p, q_eff, a0, y)
        x = y * _nonadopters_reference(y, p, q_eff, a0)[:, :-1]
        value[:, g] = f_value(x, p, q_eff, a0)
        spend[:, g] = x.sum(axis=1)
        h[:, g] = value[:, g] - theta * spend[:, g]
        shares[:, g] = y
    return h, spend, value, shares


def accelerated_greedy_reference(p, q, m: float, A0, L: int, budget: float, K: int, decay=None,
                       grid_size: int = 160) -> CgpoResult:
    """AGA: the same choices as ``greedy`` (up to solver tolerance on exact ties), with dual bounds from a
    per-step theta grid deciding which candidates need an exact PO solve (see the module docstring)."""
    p, q, A0 = (np.asarray(a, dtype=float) for a in (p, q, A0))
    n = p.size
    pp, q_eff, a0 = _as_inputs(p, q, A0 / m, L, decay)
    b = budget / m
    base = m * f_value(np.zeros((n, L)), pp, q_eff, a0)
    theta_max = float(np.max(pp * np.prod(1 + q_eff, axis=1))) * (1 + 1e-9) + 1e-15
    thetas = np.concatenate([[0.0], np.geomspace(theta_max * 1e-6, theta_max, grid_size - 1)])
    h, spend, value, shares = _tabulate_reference(pp, q_eff, a0, thetas)
    h_m, value_m = m * h, m * value

    chosen: list[int] = []
    gains: list[float] = []
    in_set = np.zeros(n, dtype=bool)
    phi = np.zeros(thetas.size)          # Phi_U(theta) = sum_{u in U} h_u(theta), in adopters
    spend_u = np.zeros(thetas.size)      # B_U(theta)
    value_u = np.zeros(thetas.size)      # sum_{u in U} f_u(x_u(theta)), in adopters
    current = PoResult(0.0, np.zeros((0, L)), 0.0, 0.0)
    theta_prev = np.zeros(n)             # theta*(U_{k-1} + v) from the last exact solve of v
    gain_prev = np.full(n, np.inf)       # an upper bound on v's gain from an earlier iteration (submodularity)
    evaluations = 0
    for _ in range(min(K, n)):
        cand = np.flatnonzero(~in_set)
        # upper bound: weak duality on the grid
        upper = np.min(phi[None, :] + h_m[cand] + thetas[None, :] * m * b, axis=1)
        # lower bound: the best budget-feasible grid point, mixed with its neighbour to spend exactly
        tot_spend = spend_u[None, :] + spend[cand]
        tot_value = value_u[None, :] + value_m[cand]
        feasible = tot_spend <= b * (1 + 1e-12)
        first = np.where(feasible.any(axis=1), feasible.argmax(axis=1), thetas.size - 1)
        lower = tot_value[np.arange(cand.size), first]
        has_prev = first > 0
        j = np.maximum(first - 1, 0)
        s_hi, s_lo = tot_spend[np.arange(cand.size), j], tot_spend[np.arange(cand.size), first]
        w = np.where(has_prev & (s_hi > s_lo), np.clip((b - s_lo) / np.where(s_hi > s_lo, s_hi - s_lo, 1), 0, 1), 0.0)
        mixed = (1 - w) * lower + w * tot_value[np.arange(cand.size), j]  # concavity: f(mix) >= mix of f
        lower = np.maximum(lower, mixed)
        gain_upper = np.minimum(upper - current.adopters - base[cand], gain_prev[cand])  # lazy bound (Theorem 3)
        gain_lower = np.minimum(lower - current.adopters - base[cand], gain_upper)
        # A candidate that would spend nothing at theta*(U) leaves the optimum unchanged: its gain is exactly 0
        # (KKT of Eq. 13 hold for U + w with x_w = 0 and the same multiplier), so it needs no solve.
        y_at = _solve_h_reference(current.theta, pp[cand], q_eff[cand], a0[cand])
        idle = np.sum(y_at * _nonadopters_reference(y_at, pp[cand], q_eff[cand], a0[cand])[:, :-1], axis=1) <= 0
        if chosen and current.theta > 0:
            gain_upper = np.where(idle, 0.0, gain_upper)
            gain_lower = np.where(idle, 0.0, gain_lower)
        else:
            idle[:] = False
        # exact solves for every candidate that could still be the best, best upper bound first
        order = np.lexsort((cand, -gain_upper))
        best, best_gain, best_po = -1, -np.inf, None
        tol = _tie_tol(current.adopters, base)
        threshold = gain_lower.max()
        for k in order:
            if gain_upper[k] < max(best_gain, threshold) - tol:
                break
            v = int(cand[k])
            if best >= 0 and gain_upper[k] <= best_gain + tol and v > best:
                continue  # can at most tie, and ties go to the smaller index
            if idle[k]:
                if _better(0.0, v, best_gain, best, tol):
                    best, best_gain = v, 0.0
                    best_po = PoResult(current.adopters + base[v], np.vstack([current.x, np.zeros((1, L))]),
                                       current.theta, current.budget_used)
                continue
            idx = chosen + [v]
            f = int(first[k])
            res = solve_po_reference(p[idx], q[idx], m, A0[idx], L, budget, _subset(decay, idx),
                           theta_lo=max(current.theta, theta_prev[v], thetas[f - 1] if f > 0 else 0.0),
                           theta_hi=thetas[f], y0=shares[idx, f],
                           prune_below=current.adopters + base[v] + best_gain - tol if best >= 0 else None)
            evaluations += 1
            if isinstance(res, Pruned):  # a dual value proved v cannot beat the best so far
                gain_prev[v] = res.bound - current.adopters - base[v]
                continue
            theta_prev[v] = res.theta
            gain = res.adopters - current.adopters - base[v]
            gain_prev[v] = gain
            if _better(gain, v, best_gain, best, tol):
                best, best_gain, best_po = v, gain, res
        chosen.append(best)
        gains.append(float(best_gain))
        in_set[best] = True
        phi += h_m[best]
        spend_u += spend[best]
        value_u += value_m[best]
        current = best_po
    rest = np.flatnonzero(~in_set)
    return CgpoResult(chosen, current, float(current.adopters + base[rest].sum()), gains, evaluations,
                      {"grid_size": grid_size})


# -- The planner as of commit 10650d0 (after the first CPU work, before the second), kept verbatim -- only renamed --
# as the oracle of the second: the u0 warm start of the non-adopters, the in-place adjoint and the leaner first
# Newton iteration must not change a bit (``_nonadopters_v2`` and ``_hessian_v2`` are unchanged today; copied so
# that the oracle stands alone).

def _nonadopters_v2(y, p, q_eff, a0):
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


def _gradient_v2(y, theta, p, q_eff, a0, u=None):
    """u (the non-adopters; pass them when known), F_s, F_y, the adjoint mu and the gradient of J in y, by the
    adjoint of the scalar recursion u_t = F_t(u_{t-1}, y_t)."""
    n, L = y.shape
    u = _nonadopters_v2(y, p, q_eff, a0) if u is None else u
    s = u[:, :-1]                                   # u_{t-1}
    Fs = 1 - p[:, None] * y - q_eff + 2 * q_eff * s
    Fy = -p[:, None] * s
    mu = np.empty((n, L))                           # mu_t = dJ/du_t (t = 1..L); running cost -theta y_t u_{t-1}
    nxt = -np.ones(n)
    ty = theta * y
    for t in range(L - 1, -1, -1):
        mu[:, t] = nxt
        nxt = nxt * Fs[:, t] - ty[:, t]
    grad = mu * Fy - theta * s
    return u, Fs, Fy, mu, grad


def _hessian_v2(theta, p, q_eff, Fs, Fy, mu):
    """Hessian of J in y by the second-order adjoint, from ``_gradient``'s F_s, F_y and mu."""
    n, L = Fs.shape
    Dstack = np.zeros((n, L, L))                    # Dstack[:, t] = d u_{t-1} / d y
    for t in range(L - 1):                          # D_t = F_s,t D_{t-1} + F_y,t e_t, written in place
        np.multiply(Fs[:, t, None], Dstack[:, t], out=Dstack[:, t + 1])
        Dstack[:, t + 1, t] += Fy[:, t]
    curv = mu * 2 * q_eff                           # F_ss = 2 q_t, weighted by the adjoint
    hess = np.matmul(np.swapaxes(Dstack * curv[:, :, None], 1, 2), Dstack)
    cross = (mu * -p[:, None] - theta)[:, :, None] * Dstack   # F_sy = -p, r_sy = -theta: row t is e_t D_{t-1}'
    hess += cross + np.swapaxes(cross, 1, 2)
    return hess


def _solve_h_u_v2(theta: float, p, q_eff, a0, y0=None, tol=1e-15, max_iter=300) -> tuple[np.ndarray, np.ndarray]:
    """argmax over y in [0, 1]^L of J(y) for every video (h_v of Eq. 9, with x_t = y_t u_{t-1}), by projected
    Newton (Bertsekas 1982) with an eigenvalue-clamped Hessian and Armijo steps, vectorised over videos.

    Every video's iterates depend on its own data only, so the work is restricted row by row without changing a
    bit (``reference._solve_h_reference`` is the unrestricted original): a video whose projected gradient already
    vanishes stops before its Hessian and eigendecomposition are formed, the objective at the iterate reuses the
    gradient pass's non-adopters, and the line search evaluates only the videos still without an accepted step; the non-adopters of an accepted
    step are kept for the next iteration and returned with y, (y, u)."""
    n = p.size
    y = np.zeros((n, q_eff.shape[1])) if y0 is None else np.clip(y0, 0.0, 1.0).copy()
    U = np.empty((n, q_eff.shape[1] + 1))    # the non-adopters of y, row by row (valid where ``known``)
    known = np.zeros(n, dtype=bool)
    active = np.ones(n, dtype=bool)
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        ya, pa, qa, aa = y[idx], p[idx], q_eff[idx], a0[idx]
        u = U[idx] if known[idx].all() else None
        u, Fs, Fy, mu, grad = _gradient_v2(ya, theta, pa, qa, aa, u)
        U[idx] = u
        known[idx] = True
        at_bound = ((ya <= 0) & (grad <= 0)) | ((ya >= 1) & (grad >= 0))
        free = ~at_bound
        pg = np.where(free, grad, 0.0)
        stationary = np.abs(pg).max(axis=1) <= 1e-16
        if stationary.any():  # converged as they are: y unchanged, done
            active[idx[stationary]] = False
            keep = np.flatnonzero(~stationary)
            if keep.size == 0:
                continue
            idx, ya, pa, qa, aa = idx[keep], ya[keep], pa[keep], qa[keep], aa[keep]
            u, Fs, Fy, mu, grad, free, pg = u[keep], Fs[keep], Fy[keep], mu[keep], grad[keep], free[keep], pg[keep]
        hess = _hessian_v2(theta, pa, qa, Fs, Fy, mu)
        # ascent direction (-H)_free^{-1} g on the free coordinates, with -H made positive definite
        M = -np.where(free[:, :, None] & free[:, None, :], hess, 0.0)
        w, V = np.linalg.eigh(M)
        floor = 1e-12 * np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-3)
        w = np.maximum(w, floor)
        d = np.matmul(V, (np.matmul(np.swapaxes(V, 1, 2), pg[..., None])[..., 0] / w)[..., None])[..., 0]
        d = np.where(free, d, 0.0)
        # In near-linear directions the clamped Newton step is huge; no useful step is longer than the box (width 1)
        d = d / np.maximum(np.abs(d).max(axis=1, keepdims=True), 1.0)
        # Newton decrement: the predicted gain of the step; below round-off there is nothing left to gain
        converged = np.sum(pg * d, axis=1) <= 1e-13  # J is O(1) per video: below this is round-off
        obj_old = 1 - u[:, -1] - theta * np.sum(ya * u[:, :-1], axis=1)   # _lagrangian(ya, ...)
        step = np.ones(idx.size)
        accepted = converged.copy()
        y_new = ya.copy()
        pend = np.flatnonzero(~accepted)
        for _ls in range(40):
            if pend.size == 0:
                break
            yp, dp = ya[pend], d[pend]
            trial = np.clip(yp + step[pend, None] * dp, 0.0, 1.0)
            ut = _nonadopters_v2(trial, pa[pend], qa[pend], aa[pend])
            obj = 1 - ut[:, -1] - theta * np.sum(trial * ut[:, :-1], axis=1)   # _lagrangian(trial, ...)
            ok = obj >= obj_old[pend] + 1e-4 * np.sum(grad[pend] * (trial - yp), axis=1) - 1e-15
            y_new[pend[ok]] = trial[ok]
            U[idx[pend[ok]]] = ut[ok]
            accepted[pend[ok]] = True
            pend = pend[~ok]
            step[pend] = step[pend] * 0.5
        change = np.abs(y_new - ya).max(axis=1)
        y[idx] = y_new
        done = converged | (change <= tol) | ~accepted
        active[idx[done]] = False
    if not known.all():  # only with max_iter = 0
        U = _nonadopters_v2(y, p, q_eff, a0)
    return y, U


def solve_po_v2(p, q, m: float, A0, L: int, budget: float, decay=None, theta_lo: float = 0.0,
             theta_hi: float | None = None, y0: np.ndarray | None = None, tol: float = 1e-9,
             prune_below: float | None = None) -> PoResult | Pruned:
    """Exact PO-CR for one candidate set: dual root-finding on theta (Eq. 8) over vectorised h_v (Eq. 9).

    ``budget`` is C (impressions over the L-period window, Eq. 4d); ``theta_lo`` / ``theta_hi`` are known bounds
    on the optimal multiplier (the AGA passes the previous iteration's as the lower one, Lemma 2, and its dual
    grid's bracket); ``y0`` warm-starts the promoted shares y = x / (1 - a). Wrong bounds are detected and
    widened, so they only ever cost time. With ``prune_below`` (adopters), the solve stops and returns None as
    soon as a dual value -- an upper bound on the optimum by weak duality -- falls below it, and returns that
    bound as ``Pruned`` (the AGA's pruning)."""
    p, q_eff, a0 = _as_inputs(p, q, np.asarray(A0, dtype=float) / m, L, decay)
    b = budget / m
    n = p.size
    if n == 0:
        return PoResult(0.0, np.zeros((0, L)), 0.0, 0.0)

    class _Pruned(Exception):
        def __init__(self, bound):
            self.bound = bound

    def spend(theta, y0=None):
        y, u = _solve_h_u_v2(theta, p, q_eff, a0, y0)
        if prune_below is not None:
            lag = 1 - u[:, -1] - theta * np.sum(y * u[:, :-1], axis=1)                 # _lagrangian, reusing u
            dual = m * (float(lag.sum()) + theta * b)  # Eq. 8 at theta
            if dual < prune_below:
                raise _Pruned(dual)
        return y, float(np.sum(y * u[:, :-1]))

    def to_x(y):
        return y * _nonadopters_v2(y, p, q_eff, a0)[:, :-1]

    try:
        theta_max = float(np.max(p * np.prod(1 + q_eff, axis=1))) * (1 + 1e-9) + 1e-15  # no promotion pays above
        start = np.ones((n, L)) if y0 is None else y0
        lo = max(theta_lo, 0.0)
        if lo == 0.0:
            y_free, used_free = spend(0.0, np.ones((n, L)))
            if used_free <= b * (1 + 1e-12):
                x = to_x(y_free)
                return PoResult(float(m * f_value(x, p, q_eff, a0).sum()), x, 0.0, float(m * used_free))
            y_lo, used_lo = y_free, used_free
        else:
            y_lo, used_lo = spend(lo, start)
            if used_lo <= b:  # not a lower bound after all: start again from zero
                return solve_po_v2(p, q, m, A0, L, budget, decay, tol=tol, prune_below=prune_below)
        hi = theta_max if theta_hi is None or theta_hi <= lo else min(theta_hi, theta_max)
        y_hi, used_hi = spend(hi, start)
        if used_hi > b:  # not an upper bound after all
            hi = theta_max
            y_hi, used_hi = spend(hi)
        # Safeguarded secant (Illinois) on B(theta) - b: B is monotone, possibly with jumps where f_v is linear.
        f_lo, f_hi = used_lo - b, used_hi - b
        side = 0
        for _ in range(200):
            if hi - lo <= tol * max(hi, 1e-300):
                break
            mid = hi - f_hi * (hi - lo) / (f_hi - f_lo) if f_hi != f_lo else 0.5 * (lo + hi)
            if not lo < mid < hi or (hi - lo) < 1e-6 * max(hi, 1e-300) and side > 3:
                mid = 0.5 * (lo + hi)
            y_mid, used_mid = spend(mid, y_lo)
            f_mid = used_mid - b
            if f_mid > 0:
                lo, y_lo, used_lo, f_lo = mid, y_mid, used_mid, f_mid
                f_hi = f_hi / 2 if side == -1 else f_hi
                side = -1
            else:
                hi, y_hi, used_hi, f_hi = mid, y_mid, used_mid, f_mid
                f_lo = f_lo / 2 if side == 1 else f_lo
                side = 1
            if abs(f_mid) <= 1e-10 * max(b, 1e-300):
                lo = hi = mid
                y_lo = y_hi = y_mid
                used_lo = used_hi = used_mid
                break
        # Spend the budget exactly: mix the two optimal policies on either side of theta* (in x, where f is concave).
        x_lo, x_hi = to_x(y_lo), to_x(y_hi)
        w = 0.0 if used_lo == used_hi else float(np.clip((used_lo - b) / (used_lo - used_hi), 0.0, 1.0))
        x = (1 - w) * x_lo + w * x_hi
        theta = 0.5 * (lo + hi)
        return PoResult(float(m * f_value(x, p, q_eff, a0).sum()), x, theta, float(m * x.sum()))
    except _Pruned as stop:
        return Pruned(stop.bound)


def _tabulate_v2(p, q_eff, a0, thetas):
    """h_v(theta) (normalised), b_v(theta) = sum_t x_vt, the policies' values f_v and the policies themselves
    (as shares y) for every video at every grid theta; warm-started along the grid."""
    n, G = p.size, thetas.size
    L = q_eff.shape[1]
    h = np.empty((n, G))
    spend = np.empty((n, G))
    value = np.empty((n, G))
    shares = np.empty((n, G, L))
    y = np.ones((n, L))
    for g, theta in enumerate(thetas):
        y, u = _solve_h_u_v2(float(theta), p, q_eff, a0, y)
        x = y * u[:, :-1]
        value[:, g] = f_value(x, p, q_eff, a0)
        spend[:, g] = x.sum(axis=1)
        h[:, g] = value[:, g] - theta * spend[:, g]
        shares[:, g] = y
    return h, spend, value, shares


def accelerated_greedy_v2(p, q, m: float, A0, L: int, budget: float, K: int, decay=None,
                       grid_size: int = 160) -> CgpoResult:
    """AGA: the same choices as ``greedy`` (up to solver tolerance on exact ties), with dual bounds from a
    per-step theta grid deciding which candidates need an exact PO solve (see the module docstring)."""
    p, q, A0 = (np.asarray(a, dtype=float) for a in (p, q, A0))
    n = p.size
    pp, q_eff, a0 = _as_inputs(p, q, A0 / m, L, decay)
    b = budget / m
    base = m * f_value(np.zeros((n, L)), pp, q_eff, a0)
    theta_max = float(np.max(pp * np.prod(1 + q_eff, axis=1))) * (1 + 1e-9) + 1e-15
    thetas = np.concatenate([[0.0], np.geomspace(theta_max * 1e-6, theta_max, grid_size - 1)])
    h, spend, value, shares = _tabulate_v2(pp, q_eff, a0, thetas)
    h_m, value_m = m * h, m * value

    chosen: list[int] = []
    gains: list[float] = []
    in_set = np.zeros(n, dtype=bool)
    phi = np.zeros(thetas.size)          # Phi_U(theta) = sum_{u in U} h_u(theta), in adopters
    spend_u = np.zeros(thetas.size)      # B_U(theta)
    value_u = np.zeros(thetas.size)      # sum_{u in U} f_u(x_u(theta)), in adopters
    current = PoResult(0.0, np.zeros((0, L)), 0.0, 0.0)
    theta_prev = np.zeros(n)             # theta*(U_{k-1} + v) from the last exact solve of v
    gain_prev = np.full(n, np.inf)       # an upper bound on v's gain from an earlier iteration (submodularity)
    evaluations = 0
    idle_theta, idle_all = None, np.zeros(n, dtype=bool)   # the idle flags of candidates at theta = idle_theta
    theta_mb = thetas[None, :] * m * b
    for _ in range(min(K, n)):
        cand = np.flatnonzero(~in_set)
        # upper bound: weak duality on the grid
        upper = np.min(phi[None, :] + h_m[cand] + theta_mb, axis=1)
        # lower bound: the best budget-feasible grid point, mixed with its neighbour to spend exactly
        tot_spend = spend_u[None, :] + spend[cand]
        tot_value = value_u[None, :] + value_m[cand]
        feasible = tot_spend <= b * (1 + 1e-12)
        first = np.where(feasible.any(axis=1), feasible.argmax(axis=1), thetas.size - 1)
        lower = tot_value[np.arange(cand.size), first]
        has_prev = first > 0
        j = np.maximum(first - 1, 0)
        s_hi, s_lo = tot_spend[np.arange(cand.size), j], tot_spend[np.arange(cand.size), first]
        w = np.where(has_prev & (s_hi > s_lo), np.clip((b - s_lo) / np.where(s_hi > s_lo, s_hi - s_lo, 1), 0, 1), 0.0)
        mixed = (1 - w) * lower + w * tot_value[np.arange(cand.size), j]  # concavity: f(mix) >= mix of f
        lower = np.maximum(lower, mixed)
        gain_upper = np.minimum(upper - current.adopters - base[cand], gain_prev[cand])  # lazy bound (Theorem 3)
        gain_lower = np.minimum(lower - current.adopters - base[cand], gain_upper)
        # A candidate that would spend nothing at theta*(U) leaves the optimum unchanged: its gain is exactly 0
        # (KKT of Eq. 13 hold for U + w with x_w = 0 and the same multiplier), so it needs no solve.
        # (Only used once a multiplier is positive; h_v at a given theta depends on v alone, so the flags of the
        # last theta solved are reused while theta* stays put -- after an idle pick.)
        if chosen and current.theta > 0:
            if idle_theta != current.theta:
                y_at, u_at = _solve_h_u_v2(current.theta, pp[cand], q_eff[cand], a0[cand])
                idle_all[cand] = np.sum(y_at * u_at[:, :-1], axis=1) <= 0
                idle_theta = current.theta
            idle = idle_all[cand]
            gain_upper = np.where(idle, 0.0, gain_upper)
            gain_lower = np.where(idle, 0.0, gain_lower)
        else:
            idle = np.zeros(cand.size, dtype=bool)
        # exact solves for every candidate that could still be the best, best upper bound first
        order = np.lexsort((cand, -gain_upper))
        best, best_gain, best_po = -1, -np.inf, None
        tol = _tie_tol(current.adopters, base)
        threshold = gain_lower.max()
        for k in order:
            if gain_upper[k] < max(best_gain, threshold) - tol:
                break
            v = int(cand[k])
            if best >= 0 and gain_upper[k] <= best_gain + tol and v > best:
                continue  # can at most tie, and ties go to the smaller index
            if idle[k]:
                if _better(0.0, v, best_gain, best, tol):
                    best, best_gain = v, 0.0
                    best_po = PoResult(current.adopters + base[v], np.vstack([current.x, np.zeros((1, L))]),
                                       current.theta, current.budget_used)
                continue
            idx = chosen + [v]
            f = int(first[k])
            res = solve_po_v2(p[idx], q[idx], m, A0[idx], L, budget, _subset(decay, idx),
                           theta_lo=max(current.theta, theta_prev[v], thetas[f - 1] if f > 0 else 0.0),
                           theta_hi=thetas[f], y0=shares[idx, f],
                           prune_below=current.adopters + base[v] + best_gain - tol if best >= 0 else None)
            evaluations += 1
            if isinstance(res, Pruned):  # a dual value proved v cannot beat the best so far
                gain_prev[v] = res.bound - current.adopters - base[v]
                continue
            theta_prev[v] = res.theta
            gain = res.adopters - current.adopters - base[v]
            gain_prev[v] = gain
            if _better(gain, v, best_gain, best, tol):
                best, best_gain, best_po = v, gain, res
        chosen.append(best)
        gains.append(float(best_gain))
        in_set[best] = True
        phi += h_m[best]
        spend_u += spend[best]
        value_u += value_m[best]
        current = best_po
    rest = np.flatnonzero(~in_set)
    return CgpoResult(chosen, current, float(current.adopters + base[rest].sum()), gains, evaluations,
                      {"grid_size": grid_size})


# -- The planner as of commit ccfb7e5 (numpy, after the second CPU round, before the compiled kernel), kept verbatim --
# only renamed -- as the oracle of the compiled ``po._solve_h_u`` (``_compiled.solve_h_batch``): the tests compare
# h solves, PO solves, AGA plans and platform runs within a tolerance (not to the bit: another summation order and
# LAPACK entry point).

def _nonadopters_v3(y, p, q_eff, a0):
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


def _gradient_v3(y, theta, p, q_eff, a0, u=None):
    """u (the non-adopters; pass them when known), F_s, F_y, the adjoint mu and the gradient of J in y, by the
    adjoint of the scalar recursion u_t = F_t(u_{t-1}, y_t)."""
    n, L = y.shape
    u = _nonadopters_v3(y, p, q_eff, a0) if u is None else u
    s = u[:, :-1]                                   # u_{t-1}
    Fs = 1 - p[:, None] * y - q_eff + 2 * q_eff * s
    Fy = -p[:, None] * s
    mu = np.empty((n, L))                           # mu_t = dJ/du_t (t = 1..L); running cost -theta y_t u_{t-1}
    mu[:, L - 1] = -1.0
    ty = theta * y
    for t in range(L - 2, -1, -1):                  # mu_t = mu_{t+1} F_s,t+1 - theta y_t+1, written in place
        np.multiply(mu[:, t + 1], Fs[:, t + 1], out=mu[:, t])
        np.subtract(mu[:, t], ty[:, t + 1], out=mu[:, t])
    grad = mu * Fy - theta * s
    return u, Fs, Fy, mu, grad


def _hessian_v3(theta, p, q_eff, Fs, Fy, mu):
    """Hessian of J in y by the second-order adjoint, from ``_gradient``'s F_s, F_y and mu."""
    n, L = Fs.shape
    Dstack = np.zeros((n, L, L))                    # Dstack[:, t] = d u_{t-1} / d y
    for t in range(L - 1):                          # D_t = F_s,t D_{t-1} + F_y,t e_t, written in place
        np.multiply(Fs[:, t, None], Dstack[:, t], out=Dstack[:, t + 1])
        Dstack[:, t + 1, t] += Fy[:, t]
    curv = mu * 2 * q_eff                           # F_ss = 2 q_t, weighted by the adjoint
    hess = np.matmul(np.swapaxes(Dstack * curv[:, :, None], 1, 2), Dstack)
    cross = (mu * -p[:, None] - theta)[:, :, None] * Dstack   # F_sy = -p, r_sy = -theta: row t is e_t D_{t-1}'
    hess += cross + np.swapaxes(cross, 1, 2)
    return hess


def _solve_h_u_v3(theta: float, p, q_eff, a0, y0=None, tol=1e-15, max_iter=300,
               u0=None) -> tuple[np.ndarray, np.ndarray]:
    """argmax over y in [0, 1]^L of J(y) for every video (h_v of Eq. 9, with x_t = y_t u_{t-1}), by projected
    Newton (Bertsekas 1982) with an eigenvalue-clamped Hessian and Armijo steps, vectorised over videos.

    Every video's iterates depend on its own data only, so the work is restricted row by row without changing a
    bit (``reference._solve_h_reference`` is the unrestricted original): a video whose projected gradient already
    vanishes stops before its Hessian and eigendecomposition are formed, the objective at the iterate reuses the
    gradient pass's non-adopters, and the line search evaluates only the videos still without an accepted step; the
    non-adopters of an accepted step are kept for the next iteration and returned with y, (y, u). ``u0``, the
    non-adopters of ``y0`` when the caller has them (a previous solve's), spares their first recursion; it is used
    only where the clipped start is y0 itself. ``reference._solve_h_u_v2`` is this before those last savings."""
    n = p.size
    y = np.zeros((n, q_eff.shape[1])) if y0 is None else np.clip(y0, 0.0, 1.0).copy()
    if u0 is not None and y0 is not None and (y == y0).all():  # u depends on y through 1 - p y only
        U = np.array(u0, dtype=float, copy=True)
        known = True
    else:
        U = np.empty((n, q_eff.shape[1] + 1))    # the non-adopters of y, row by row (valid where ``known``)
        known = False
    active = np.ones(n, dtype=bool)
    first = True
    for _ in range(max_iter):
        if not active.any():
            break
        if first:  # every video is active: the whole arrays, no gathers (nothing below writes into ya, pa, qa, aa)
            idx = np.arange(n)
            ya, pa, qa, aa = y, p, q_eff, a0
            u = U if known else None
        else:
            idx = np.flatnonzero(active)
            ya, pa, qa, aa = y[idx], p[idx], q_eff[idx], a0[idx]
            u = U[idx]                           # known from the first iteration on
        u, Fs, Fy, mu, grad = _gradient_v3(ya, theta, pa, qa, aa, u)
        if first:  # U is u itself: u is read (objective at the iterate) before the line search writes into U
            U = u
            known = True
            first = False
        at_bound = ((ya <= 0) & (grad <= 0)) | ((ya >= 1) & (grad >= 0))
        free = ~at_bound
        pg = np.where(free, grad, 0.0)
        stationary = np.abs(pg).max(axis=1) <= 1e-16
        if stationary.any():  # converged as they are: y unchanged, done
            active[idx[stationary]] = False
            keep = np.flatnonzero(~stationary)
            if keep.size == 0:
                continue
            idx, ya, pa, qa, aa = idx[keep], ya[keep], pa[keep], qa[keep], aa[keep]
            u, Fs, Fy, mu, grad, free, pg = u[keep], Fs[keep], Fy[keep], mu[keep], grad[keep], free[keep], pg[keep]
        hess = _hessian_v3(theta, pa, qa, Fs, Fy, mu)
        # ascent direction (-H)_free^{-1} g on the free coordinates, with -H made positive definite
        M = -np.where(free[:, :, None] & free[:, None, :], hess, 0.0)
        w, V = np.linalg.eigh(M)
        floor = 1e-12 * np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-3)
        w = np.maximum(w, floor)
        d = np.matmul(V, (np.matmul(np.swapaxes(V, 1, 2), pg[..., None])[..., 0] / w)[..., None])[..., 0]
        d = np.where(free, d, 0.0)
        # In near-linear directions the clamped Newton step is huge; no useful step is longer than the box (width 1)
        d = d / np.maximum(np.abs(d).max(axis=1, keepdims=True), 1.0)
        # Newton decrement: the predicted gain of the step; below round-off there is nothing left to gain
        converged = np.sum(pg * d, axis=1) <= 1e-13  # J is O(1) per video: below this is round-off
        obj_old = 1 - u[:, -1] - theta * np.sum(ya * u[:, :-1], axis=1)   # _lagrangian(ya, ...)
        step = np.ones(idx.size)
        accepted = converged.copy()
        y_new = ya.copy()
        pend = np.flatnonzero(~accepted)
        for _ls in range(40):
            if pend.size == 0:
                break
            yp, dp = ya[pend], d[pend]
            # the first trial's step is 1 for all, and 1 * d is d to the bit
            trial = np.clip(yp + dp if _ls == 0 else yp + step[pend, None] * dp, 0.0, 1.0)
            ut = _nonadopters_v3(trial, pa[pend], qa[pend], aa[pend])
            obj = 1 - ut[:, -1] - theta * np.sum(trial * ut[:, :-1], axis=1)   # _lagrangian(trial, ...)
            ok = obj >= obj_old[pend] + 1e-4 * np.sum(grad[pend] * (trial - yp), axis=1) - 1e-15
            y_new[pend[ok]] = trial[ok]
            U[idx[pend[ok]]] = ut[ok]
            accepted[pend[ok]] = True
            pend = pend[~ok]
            step[pend] = step[pend] * 0.5
        change = np.abs(y_new - ya).max(axis=1)
        y[idx] = y_new
        done = converged | (change <= tol) | ~accepted
        active[idx[done]] = False
    if not known:  # only with max_iter = 0
        U = _nonadopters_v3(y, p, q_eff, a0)
    return y, U


def solve_po_v3(p, q, m: float, A0, L: int, budget: float, decay=None, theta_lo: float = 0.0,
             theta_hi: float | None = None, y0: np.ndarray | None = None, tol: float = 1e-9,
             prune_below: float | None = None, u0: np.ndarray | None = None) -> PoResult | Pruned:
    """Exact PO-CR for one candidate set: dual root-finding on theta (Eq. 8) over vectorised h_v (Eq. 9).

    ``budget`` is C (impressions over the L-period window, Eq. 4d); ``theta_lo`` / ``theta_hi`` are known bounds
    on the optimal multiplier (the AGA passes the previous iteration's as the lower one, Lemma 2, and its dual
    grid's bracket); ``y0`` warm-starts the promoted shares y = x / (1 - a). Wrong bounds are detected and
    widened, so they only ever cost time. With ``prune_below`` (adopters), the solve stops and returns None as
    soon as a dual value -- an upper bound on the optimum by weak duality -- falls below it, and returns that
    bound as ``Pruned`` (the AGA's pruning). ``u0``, the non-adopters of ``y0`` under the equalities (normalised,
    n x (L + 1); the AGA has them from its grid), only spares their recomputation. Each solve of h passes on its
    non-adopters with its y, to the next solve it warm-starts and to the final policy x = y u, which is how this
    differs from ``reference.solve_po_v2`` (same bits)."""
    p, q_eff, a0 = _as_inputs(p, q, np.asarray(A0, dtype=float) / m, L, decay)
    b = budget / m
    n = p.size
    if n == 0:
        return PoResult(0.0, np.zeros((0, L)), 0.0, 0.0)

    class _Pruned(Exception):
        def __init__(self, bound):
            self.bound = bound

    def spend(theta, y0=None, u0=None):
        y, u = _solve_h_u_v3(theta, p, q_eff, a0, y0, u0=u0)
        if prune_below is not None:
            lag = 1 - u[:, -1] - theta * np.sum(y * u[:, :-1], axis=1)                 # _lagrangian, reusing u
            dual = m * (float(lag.sum()) + theta * b)  # Eq. 8 at theta
            if dual < prune_below:
                raise _Pruned(dual)
        return y, u, float(np.sum(y * u[:, :-1]))

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
                return solve_po_v3(p, q, m, A0, L, budget, decay, tol=tol, prune_below=prune_below)
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


def _tabulate_v3(p, q_eff, a0, thetas):
    """h_v(theta) (normalised), b_v(theta) = sum_t x_vt, the policies' values f_v and the policies themselves
    (as shares y, with their non-adopters u) for every video at every grid theta; warm-started along the grid
    (y and its u: ``reference._tabulate_v2`` recomputed u, to the same bits)."""
    n, G = p.size, thetas.size
    L = q_eff.shape[1]
    h = np.empty((n, G))
    spend = np.empty((n, G))
    value = np.empty((n, G))
    shares = np.empty((n, G, L))
    nonadopters = np.empty((n, G, L + 1))
    y, u = np.ones((n, L)), None
    for g, theta in enumerate(thetas):
        y, u = _solve_h_u_v3(float(theta), p, q_eff, a0, y, u0=u)
        x = y * u[:, :-1]
        value[:, g] = f_value(x, p, q_eff, a0)
        spend[:, g] = x.sum(axis=1)
        h[:, g] = value[:, g] - theta * spend[:, g]
        shares[:, g] = y
        nonadopters[:, g] = u
    return h, spend, value, shares, nonadopters


def accelerated_greedy_v3(p, q, m: float, A0, L: int, budget: float, K: int, decay=None,
                       grid_size: int = 160) -> CgpoResult:
    """AGA: the same choices as ``greedy`` (up to solver tolerance on exact ties), with dual bounds from a
    per-step theta grid deciding which candidates need an exact PO solve (see the module docstring)."""
    p, q, A0 = (np.asarray(a, dtype=float) for a in (p, q, A0))
    n = p.size
    pp, q_eff, a0 = _as_inputs(p, q, A0 / m, L, decay)
    b = budget / m
    base = m * f_value(np.zeros((n, L)), pp, q_eff, a0)
    theta_max = float(np.max(pp * np.prod(1 + q_eff, axis=1))) * (1 + 1e-9) + 1e-15
    thetas = np.concatenate([[0.0], np.geomspace(theta_max * 1e-6, theta_max, grid_size - 1)])
    h, spend, value, shares, nonadopters = _tabulate_v3(pp, q_eff, a0, thetas)
    h_m, value_m = m * h, m * value

    chosen: list[int] = []
    gains: list[float] = []
    in_set = np.zeros(n, dtype=bool)
    phi = np.zeros(thetas.size)          # Phi_U(theta) = sum_{u in U} h_u(theta), in adopters
    spend_u = np.zeros(thetas.size)      # B_U(theta)
    value_u = np.zeros(thetas.size)      # sum_{u in U} f_u(x_u(theta)), in adopters
    current = PoResult(0.0, np.zeros((0, L)), 0.0, 0.0)
    theta_prev = np.zeros(n)             # theta*(U_{k-1} + v) from the last exact solve of v
    gain_prev = np.full(n, np.inf)       # an upper bound on v's gain from an earlier iteration (submodularity)
    evaluations = 0
    idle_theta, idle_all = None, np.zeros(n, dtype=bool)   # the idle flags of candidates at theta = idle_theta
    theta_mb = thetas[None, :] * m * b
    for _ in range(min(K, n)):
        cand = np.flatnonzero(~in_set)
        # upper bound: weak duality on the grid
        upper = np.min(phi[None, :] + h_m[cand] + theta_mb, axis=1)
        # lower bound: the best budget-feasible grid point, mixed with its neighbour to spend exactly
        tot_spend = spend_u[None, :] + spend[cand]
        tot_value = value_u[None, :] + value_m[cand]
        feasible = tot_spend <= b * (1 + 1e-12)
        first = np.where(feasible.any(axis=1), feasible.argmax(axis=1), thetas.size - 1)
        lower = tot_value[np.arange(cand.size), first]
        has_prev = first > 0
        j = np.maximum(first - 1, 0)
        s_hi, s_lo = tot_spend[np.arange(cand.size), j], tot_spend[np.arange(cand.size), first]
        w = np.where(has_prev & (s_hi > s_lo), np.clip((b - s_lo) / np.where(s_hi > s_lo, s_hi - s_lo, 1), 0, 1), 0.0)
        mixed = (1 - w) * lower + w * tot_value[np.arange(cand.size), j]  # concavity: f(mix) >= mix of f
        lower = np.maximum(lower, mixed)
        gain_upper = np.minimum(upper - current.adopters - base[cand], gain_prev[cand])  # lazy bound (Theorem 3)
        gain_lower = np.minimum(lower - current.adopters - base[cand], gain_upper)
        # A candidate that would spend nothing at theta*(U) leaves the optimum unchanged: its gain is exactly 0
        # (KKT of Eq. 13 hold for U + w with x_w = 0 and the same multiplier), so it needs no solve.
        # (Only used once a multiplier is positive; h_v at a given theta depends on v alone, so the flags of the
        # last theta solved are reused while theta* stays put -- after an idle pick.)
        if chosen and current.theta > 0:
            if idle_theta != current.theta:
                y_at, u_at = _solve_h_u_v3(current.theta, pp[cand], q_eff[cand], a0[cand])
                idle_all[cand] = np.sum(y_at * u_at[:, :-1], axis=1) <= 0
                idle_theta = current.theta
            idle = idle_all[cand]
            gain_upper = np.where(idle, 0.0, gain_upper)
            gain_lower = np.where(idle, 0.0, gain_lower)
        else:
            idle = np.zeros(cand.size, dtype=bool)
        # exact solves for every candidate that could still be the best, best upper bound first
        order = np.lexsort((cand, -gain_upper))
        best, best_gain, best_po = -1, -np.inf, None
        tol = _tie_tol(current.adopters, base)
        threshold = gain_lower.max()
        for k in order:
            if gain_upper[k] < max(best_gain, threshold) - tol:
                break
            v = int(cand[k])
            if best >= 0 and gain_upper[k] <= best_gain + tol and v > best:
                continue  # can at most tie, and ties go to the smaller index
            if idle[k]:
                if _better(0.0, v, best_gain, best, tol):
                    best, best_gain = v, 0.0
                    best_po = PoResult(current.adopters + base[v], np.vstack([current.x, np.zeros((1, L))]),
                                       current.theta, current.budget_used)
                continue
            idx = chosen + [v]
            f = int(first[k])
            res = solve_po_v3(p[idx], q[idx], m, A0[idx], L, budget, _subset(decay, idx),
                           theta_lo=max(current.theta, theta_prev[v], thetas[f - 1] if f > 0 else 0.0),
                           theta_hi=thetas[f], y0=shares[idx, f], u0=nonadopters[idx, f],
                           prune_below=current.adopters + base[v] + best_gain - tol if best >= 0 else None)
            evaluations += 1
            if isinstance(res, Pruned):  # a dual value proved v cannot beat the best so far
                gain_prev[v] = res.bound - current.adopters - base[v]
                continue
            theta_prev[v] = res.theta
            gain = res.adopters - current.adopters - base[v]
            gain_prev[v] = gain
            if _better(gain, v, best_gain, best, tol):
                best, best_gain, best_po = v, gain, res
        chosen.append(best)
        gains.append(float(best_gain))
        in_set[best] = True
        phi += h_m[best]
        spend_u += spend[best]
        value_u += value_m[best]
        current = best_po
    rest = np.flatnonzero(~in_set)
    return CgpoResult(chosen, current, float(current.adopters + base[rest].sum()), gains, evaluations,
                      {"grid_size": grid_size})
