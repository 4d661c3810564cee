"""Estimators of paper 2, Section 5: OLS and D-OLS (5.1), MLE and D-MLE (5.2) for the P-BDM, and the Bass (1969)
regression (BDM-OLS) plus the continuous-time nonlinear least squares fit (Srinivasan and Mason 1986).

Observations are stacked per (video, period) rows, so a category's videos are estimated as one group (Section
6.2, item ii). Time decay enters through ``decay = gamma**age`` multiplying every q-covariate (q_eff = q decay).
The BDM versions are the P-BDM ones with everyone promoted, x_t = 1 - A_{t-1}/m (Section 3.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

EPS = 1e-12


@dataclass(frozen=True)
class Observations:
    """Per-period rows of one or many videos (all arrays the same length).

    direct: a^d_t, promoted users who clicked; indirect: a^i_t, clicks without promotion; x: promotion fraction
    (promoted users / m); A_prev: cumulative adopters before the period; m: market size; decay: gamma**age.
    """

    direct: np.ndarray
    indirect: np.ndarray
    x: np.ndarray
    A_prev: np.ndarray
    m: np.ndarray
    decay: np.ndarray

    @classmethod
    def build(cls, direct, indirect, x, A_prev, m, decay=1.0) -> "Observations":
        arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (direct, indirect, x, A_prev, m, decay)))
        return cls(*(np.ascontiguousarray(a).ravel() for a in arrays))

    @property
    def new(self) -> np.ndarray:
        return self.direct + self.indirect

    def subset(self, mask: np.ndarray) -> "Observations":
        return Observations(*(getattr(self, f)[mask] for f in ("direct", "indirect", "x", "A_prev", "m", "decay")))

    def as_bass(self) -> "Observations":
        """The same rows read through the BDM: every non-adopter counts as promoted (x = 1 - A/m) and every click
        as direct, so the P-BDM estimators fit Eq. 1."""
        return Observations(self.new, np.zeros_like(self.new), 1.0 - self.A_prev / self.m, self.A_prev, self.m,
                            self.decay)


@dataclass(frozen=True)
class Estimate:
    p: float
    q: float
    m: float | None = None       # BDM-OLS and NLS only (the market is estimated)
    converged: bool = True
    loglik: float | None = None


# --- Section 5.1: OLS and D-OLS ---------------------------------------------------------------------------------

def ols_design(obs: Observations) -> tuple[np.ndarray, np.ndarray]:
    """Regressors of the OLS method for the P-BDM, a_t = p m x_t + q (A_{t-1} - A_{t-1}^2/m) + e_t (Section 5.1),
    with the decayed diffusion covariate. Returns (X, y)."""
    X = np.column_stack([obs.m * obs.x, obs.decay * obs.A_prev * (1.0 - obs.A_prev / obs.m)])
    return X, obs.new


def ols(obs: Observations) -> Estimate:
    """OLS (Section 5.1): least squares of a_t on (m x_t, A_{t-1}(1 - A_{t-1}/m)) without intercept;
    unconstrained, as in the paper (estimates may leave p, q >= 0)."""
    X, y = ols_design(obs)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    return Estimate(float(beta[0]), float(beta[1]))


def d_ols(obs: Observations) -> Estimate:
    """D-OLS (Section 5.1, steps i and ii): q from the indirect adopters, then p from the direct adopters given q."""
    z = obs.decay * obs.A_prev * (1.0 - obs.x - obs.A_prev / obs.m)
    zz = float(np.dot(z, z))
    q_hat = float(np.dot(z, obs.indirect)) / zz if zz > 0 else 0.0  # Section 5.1 step i (closed form for q)
    mx = obs.m * obs.x
    xx = float(np.dot(mx, mx))
    resid = obs.direct - q_hat * obs.decay * obs.A_prev * obs.x
    p_hat = float(np.dot(mx, resid)) / xx if xx > 0 else 0.0  # Section 5.1 step ii (closed form for p)
    return Estimate(p_hat, q_hat)


# --- Section 5.2: MLE and D-MLE ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Binomial:
    """k successes out of n trials with probability Z @ (p, q), one row per (period, adopter type)."""

    k: np.ndarray
    n: np.ndarray
    Z: np.ndarray  # (rows, 2)


def _mle_blocks(obs: Observations) -> _Binomial:
    """MLE log-likelihood (Section 5.2, adopter types pooled): a_t ~ Bin(m - A, p m x/(m - A) + q_eff A/m)."""
    n = obs.m - obs.A_prev
    keep = n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(keep, obs.m * obs.x / np.where(keep, n, 1.0), 0.0)
    Z = np.column_stack([u, obs.decay * obs.A_prev / obs.m])
    return _Binomial(obs.new[keep], n[keep], Z[keep])


def _d_mle_blocks(obs: Observations) -> _Binomial:
    """D-MLE log-likelihood (Section 5.2): a^i_t ~ Bin(m - A - m x, q_eff A/m) and a^d_t ~ Bin(m x, p + q_eff A/m)."""
    v = obs.decay * obs.A_prev / obs.m
    n_i = obs.m - obs.A_prev - obs.m * obs.x
    n_d = obs.m * obs.x
    k = np.concatenate([obs.indirect, obs.direct])
    n = np.concatenate([n_i, n_d])
    Z = np.concatenate([np.column_stack([np.zeros_like(v), v]), np.column_stack([np.ones_like(v), v])])
    keep = n > 0
    return _Binomial(k[keep], n[keep], Z[keep])


def binomial_loglik(theta: np.ndarray, b: _Binomial, hessian: bool = True) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Log-likelihood sum k log(pi) + (n - k) log(1 - pi), pi = Z theta; its gradient and (optionally) its
    Hessian, which is negative semi-definite (the log-likelihood is concave, Online Section A.2.3)."""
    pi = b.Z @ theta
    pi_c = np.clip(pi, EPS, 1.0 - EPS)
    fail = b.n - b.k
    ll = float(b.k @ np.log(pi_c) + fail @ np.log1p(-pi_c))
    w1 = b.k / pi_c - fail / (1.0 - pi_c)
    grad = b.Z.T @ w1
    if not hessian:
        return ll, grad, None
    w2 = b.k / pi_c**2 + fail / (1.0 - pi_c) ** 2
    hess = -(b.Z * w2[:, None]).T @ b.Z
    return ll, grad, hess


def _maximise(b: _Binomial, start: np.ndarray) -> Estimate:
    """Maximise the concave binomial log-likelihood under p, q >= 0 and p + q <= 1: scipy's SLSQP with the exact
    gradient (objective scaled per trial), then, when the optimum is interior, Newton steps with the exact
    Hessian until the step is below 1e-13 (SLSQP alone stops near 1e-8)."""
    scale = max(float(b.n.sum()), 1.0)

    def f(theta):
        ll, g, _ = binomial_loglik(theta, b, hessian=False)
        return -ll / scale, -g / scale

    res = optimize.minimize(
        f, start, jac=True, method="SLSQP", bounds=[(0.0, 1.0), (0.0, 1.0)],
        constraints=[{"type": "ineq", "fun": lambda th: 1.0 - th.sum(), "jac": lambda th: -np.ones(2)}],
        options={"ftol": 1e-15, "maxiter": 500},
    )
    theta = np.clip(res.x, 0.0, 1.0)
    converged = bool(res.success)
    for _ in range(20):  # Newton polish of an interior optimum
        if theta.min() <= 1e-9 or theta.sum() >= 1 - 1e-9:
            break
        ll, g, H = binomial_loglik(theta, b)
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        cand = theta + step
        if cand.min() <= 0 or cand.sum() >= 1 or binomial_loglik(cand, b, hessian=False)[0] < ll - 1e-9 * abs(ll):
            break
        theta = cand
        if np.abs(step).max() < 1e-13:
            break
    return Estimate(float(theta[0]), float(theta[1]), converged=converged,
                    loglik=binomial_loglik(theta, b, hessian=False)[0])


def _feasible_start(est: Estimate) -> np.ndarray:
    theta = np.clip(np.array([est.p, est.q]), 1e-4, 1.0)
    return theta / max(1.0, theta.sum() / 0.999)


def mle(obs: Observations, start: Estimate | None = None) -> Estimate:
    """MLE (Section 5.2) when adopter types cannot be told apart; started from OLS projected onto the
    feasible set."""
    return _maximise(_mle_blocks(obs), _feasible_start(start or ols(obs)))


def d_mle(obs: Observations, start: Estimate | None = None) -> Estimate:
    """D-MLE (Section 5.2) with direct and indirect adopters observed; started from D-OLS."""
    return _maximise(_d_mle_blocks(obs), _feasible_start(start or d_ols(obs)))


METHODS = {"OLS": ols, "D-OLS": d_ols, "MLE": mle, "D-MLE": d_mle}


# --- Bass (1969) regression and the continuous-time NLS fit ------------------------------------------------------

def bass_ols(sales: np.ndarray, A0: float = 0.0) -> Estimate:
    """BDM-OLS (Bass 1969): a_t = b0 + b1 A_{t-1} + b2 A_{t-1}^2 by least squares; m is the positive root of
    b0 + b1 A + b2 A^2 = 0 (the market where adoption stops), p = b0/m, q = -b2 m (Eq. 1 expanded)."""
    sales = np.asarray(sales, dtype=float)
    A_prev = A0 + np.concatenate([[0.0], np.cumsum(sales)[:-1]])
    X = np.column_stack([np.ones_like(A_prev), A_prev, A_prev**2])
    (b0, b1, b2), *_ = np.linalg.lstsq(X, sales, rcond=None)
    disc = b1 * b1 - 4.0 * b2 * b0
    if b2 == 0 or disc < 0:
        return Estimate(float("nan"), float("nan"), float("nan"), converged=False)
    roots = np.array([(-b1 - np.sqrt(disc)) / (2 * b2), (-b1 + np.sqrt(disc)) / (2 * b2)])
    positive = roots[roots > 0]
    m = float(positive.min()) if positive.size else float(roots.max())
    return Estimate(float(b0 / m), float(-b2 * m), m)


def bass_nls(sales: np.ndarray, t: np.ndarray | None = None, form: str = "density",
             start: Estimate | None = None) -> Estimate:
    """Continuous-time Bass fit by nonlinear least squares (Srinivasan and Mason 1986) with scipy's curve_fit:
    sales_t = m f(t) ("density", the common textbook form) or m (F(t) - F(t-1)) ("interval"). Starts from
    BDM-OLS when it is usable."""
    from reach.diffusion.dynamics import bass_cdf, bass_pdf

    sales = np.asarray(sales, dtype=float)
    t = np.arange(1, sales.size + 1, dtype=float) if t is None else np.asarray(t, dtype=float)
    if form == "density":
        def model(tt, m, p, q):
            return m * bass_pdf(tt, p, q)
    elif form == "interval":
        def model(tt, m, p, q):
            return m * (bass_cdf(tt, p, q) - bass_cdf(tt - 1.0, p, q))
    else:
        raise ValueError(f"form must be 'density' or 'interval', not {form!r}")
    start = start or bass_ols(sales)
    if not (start.converged and start.p > 0 and start.q > 0):
        start = Estimate(0.01, 0.3, 2.0 * sales.sum())
    popt, _ = optimize.curve_fit(model, t, sales, p0=[start.m, start.p, start.q],
                                 bounds=([sales.sum(), 1e-8, 1e-8], [np.inf, 1.0, 5.0]), maxfev=20_000,
                                 xtol=1e-14, ftol=1e-14, gtol=1e-14)
    return Estimate(float(popt[1]), float(popt[2]), float(popt[0]))
