"""Compiled (numba) kernel of h_v (paper 2, Eq. 9) for ``po._solve_h_u``: the projected Newton method of
``reference._solve_h_u_v3`` (the numpy version, vectorised over videos, kept as the oracle) written for one video at
a time, so that a Newton iteration is a few loops over L <= 20 periods instead of ~40 numpy calls.

Same method and constants as the oracle: gradient by the adjoint, Hessian by the second-order adjoint of the
scalar recursion u_t = F_t(u_{t-1}, y_t), an eigenvalue-clamped Newton direction on the free coordinates (LAPACK
``eigh``), the step capped to the box, the Newton-decrement stop (1e-13), the stationary test (1e-16) and Armijo
steps (1e-4, halving, 40 trials). Not bit-identical with the oracle (sums and matrix products in another order,
another LAPACK entry point): the tests compare within a tolerance.

Compiled on first use and cached (``cache=True``) next to this file, under ``__pycache__``; numba is a hard
dependency (requirements.txt): importing this module fails if it is missing.
"""

from __future__ import annotations

import numba
import numpy as np

ARMIJO = 1e-4           # sufficient increase of the Armijo rule
TRIALS = 40             # step halvings before a line search gives up
STATIONARY = 1e-16      # max |projected gradient| at which a video is converged as it is
DECREMENT = 1e-13       # Newton decrement (predicted gain) below which there is nothing left to gain


@numba.njit(cache=True)
def nonadopters_video(y, p, q, a0, u):
    """u_t = u_{t-1} ((1 - p y_t) - q_t (1 - u_{t-1})), u_0 = 1 - a0, into ``u`` (L + 1): Eq. 2 with
    y_t = x_t / u_{t-1} the promoted share of the non-adopters."""
    u[0] = 1 - a0
    for t in range(y.size):
        u[t + 1] = u[t] * ((1 - p * y[t]) - q[t] * (1 - u[t]))


@numba.njit(cache=True)
def lagrangian_video(y, theta, u):
    """J(y) = a_L - theta sum_t y_t u_{t-1} (the objective of h_v, Eq. 9), from y's non-adopters u."""
    spent = 0.0
    for t in range(y.size):
        spent += y[t] * u[t]
    return 1 - u[y.size] - theta * spent


@numba.njit(cache=True)
def gradient_video(y, theta, p, q, u, Fs, Fy, mu, grad):
    """F_s, F_y (the partial derivatives of F_t in u_{t-1} and y_t), the adjoint mu_t = dJ/du_t and the gradient of
    J in y, into the given arrays, from y's non-adopters u."""
    L = y.size
    for t in range(L):
        s = u[t]                                           # u_{t-1}
        Fs[t] = 1 - p * y[t] - q[t] + 2 * q[t] * s
        Fy[t] = -p * s
    mu[L - 1] = -1.0
    for t in range(L - 2, -1, -1):                         # running cost -theta y_t u_{t-1}
        mu[t] = mu[t + 1] * Fs[t + 1] - theta * y[t + 1]
    for t in range(L):
        grad[t] = mu[t] * Fy[t] - theta * u[t]


@numba.njit(cache=True)
def hessian_video(theta, p, q, Fs, Fy, mu, D, hess):
    """Hessian of J in y by the second-order adjoint into ``hess`` (L x L); ``D[t] = d u_{t-1} / d y`` (work)."""
    L = Fs.size
    D[0, :] = 0.0
    for t in range(L - 1):                                 # D_t = F_s,t D_{t-1} + F_y,t e_t
        for j in range(L):
            D[t + 1, j] = Fs[t] * D[t, j]
        D[t + 1, t] += Fy[t]
    hess[:, :] = 0.0
    for t in range(L):
        curv = mu[t] * 2 * q[t]                            # F_ss = 2 q_t, weighted by the adjoint
        cross = mu[t] * -p - theta                         # F_sy = -p, r_sy = -theta
        for i in range(t):                                 # D[t, i] = 0 for i >= t
            ci = curv * D[t, i]
            for j in range(t):
                hess[i, j] += ci * D[t, j]
            hess[t, i] += cross * D[t, i]
            hess[i, t] += cross * D[t, i]


@numba.njit(cache=True)
def solve_h_video(theta, p, q, a0, y, u, tol, max_iter):
    """argmax over y in [0, 1]^L of J(y) for one video (h_v of Eq. 9), in place: ``y`` holds the start (inside the
    box) and ``u`` its non-adopters; both hold the solution on return."""
    L = y.size
    Fs, Fy, mu, grad = np.empty(L), np.empty(L), np.empty(L), np.empty(L)
    pg, d, trial = np.empty(L), np.empty(L), np.empty(L)
    ut = np.empty(L + 1)
    free = np.empty(L, dtype=np.bool_)
    D, hess = np.empty((L, L)), np.empty((L, L))
    index = np.empty(L, dtype=np.int64)          # the free coordinates
    for _ in range(max_iter):
        gradient_video(y, theta, p, q, u, Fs, Fy, mu, grad)
        biggest = 0.0
        for t in range(L):
            free[t] = not ((y[t] <= 0 and grad[t] <= 0) or (y[t] >= 1 and grad[t] >= 0))
            pg[t] = grad[t] if free[t] else 0.0
            biggest = max(biggest, abs(pg[t]))
        if biggest <= STATIONARY:                          # converged as it is
            return
        hessian_video(theta, p, q, Fs, Fy, mu, D, hess)
        # ascent direction (-H)_free^{-1} g on the free coordinates, with -H made positive definite: the
        # eigendecomposition of the free block only (the masked matrix's other eigenvalues are 0, their vectors
        # lie on the fixed coordinates, where the direction is 0)
        nf = 0
        for i in range(L):
            if free[i]:
                index[nf] = i
                nf += 1
        for t in range(L):
            d[t] = 0.0
        if nf == 1:                                        # one free coordinate: the eigenvalue is -H_ii itself
            i = index[0]
            w0 = -hess[i, i]
            d[i] = pg[i] / max(w0, 1e-12 * max(abs(w0), 1e-3))
        else:
            M = np.empty((nf, nf))
            for a in range(nf):
                for b in range(nf):
                    M[a, b] = -hess[index[a], index[b]]
            w, V = np.linalg.eigh(M)
            wmax = 0.0
            for k in range(nf):
                wmax = max(wmax, abs(w[k]))
            floor = 1e-12 * max(wmax, 1e-3)
            for k in range(nf):
                c = 0.0
                for a in range(nf):
                    c += V[a, k] * pg[index[a]]
                c /= max(w[k], floor)
                for a in range(nf):
                    d[index[a]] += V[a, k] * c
        longest = 0.0
        for t in range(L):
            if not free[t]:
                d[t] = 0.0
            longest = max(longest, abs(d[t]))
        # in near-linear directions the clamped Newton step is huge; no useful step is longer than the box
        scale = max(longest, 1.0)
        decrement = 0.0
        for t in range(L):
            d[t] = d[t] / scale
            decrement += pg[t] * d[t]
        if decrement <= DECREMENT:                         # J is O(1): below this is round-off
            return
        obj_old = lagrangian_video(y, theta, u)
        step = 1.0
        accepted = False
        change = 0.0
        for _ls in range(TRIALS):
            rise = 0.0
            for t in range(L):
                trial[t] = min(max(y[t] + step * d[t], 0.0), 1.0)
                rise += grad[t] * (trial[t] - y[t])
            nonadopters_video(trial, p, q, a0, ut)
            if lagrangian_video(trial, theta, ut) >= obj_old + ARMIJO * rise - 1e-15:
                for t in range(L):
                    change = max(change, abs(trial[t] - y[t]))
                    y[t] = trial[t]
                u[:] = ut
                accepted = True
                break
            step *= 0.5
        if change <= tol or not accepted:
            return


@numba.njit(cache=True)
def solve_h_batch(theta, p, q_eff, a0, y, u, known, tol, max_iter):
    """``solve_h_video`` for every row of y (n x L, in place) and u (n x (L + 1)); u is computed first unless
    ``known`` (the non-adopters of the start are given). Returns the solution's budget sum_v sum_t x_vt and its
    Lagrangian sum_v J_v (the two sums ``po.solve_po`` needs, Eq. 8)."""
    spent, lagrangian = 0.0, 0.0
    for v in range(p.size):
        if not known:
            nonadopters_video(y[v], p[v], q_eff[v], a0[v], u[v])
        solve_h_video(theta, p[v], q_eff[v], a0[v], y[v], u[v], tol, max_iter)
        lagrangian += lagrangian_video(y[v], theta, u[v])
        for t in range(y.shape[1]):
            spent += y[v, t] * u[v, t]
    return spent, lagrangian
