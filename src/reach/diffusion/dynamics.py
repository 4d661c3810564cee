"""Bass (Eq. 1) and promotion Bass (P-BDM, Eq. 2) dynamics of paper 2, deterministic and stochastic (Section 5.2).

Every function is numpy-vectorised: parameters broadcast against each other and against the leading axes of the
state, so one call advances or simulates many videos at once. Time decay (Section 6.2, Online B.1.2) multiplies
the diffusion coefficient: ``q_eff = q * gamma**age`` with ``age`` = periods since upload (the first period of a
video has age ``age0``, 0 by default).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

ArrayLike = np.ndarray | float | int


class DiffusionPath(NamedTuple):
    """A simulated path: cumulative adopters ``A`` (..., T+1) with ``A[..., 0] = A0``, and per-period direct and
    indirect adopters (..., T). For the Bass model, ``direct`` holds the innovative and ``indirect`` the
    imitative adopters."""

    A: np.ndarray
    direct: np.ndarray
    indirect: np.ndarray

    @property
    def new(self) -> np.ndarray:
        """New adopters per period, a_t = direct + indirect (..., T)."""
        return self.direct + self.indirect


def decay_factor(gamma: ArrayLike, age: ArrayLike) -> np.ndarray:
    """gamma ** age, the multiplicative time decay of the diffusion coefficient (Section 6.2, item i)."""
    return np.power(np.asarray(gamma, dtype=float), np.asarray(age, dtype=float))


def pbdm_expected(A_prev: ArrayLike, x: ArrayLike, p: ArrayLike, q: ArrayLike, m: ArrayLike,
                  decay: ArrayLike = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Expected (direct, indirect) adopters in one period of the P-BDM, Eq. 2, with q_eff = q * decay.

    direct   = (p + q_eff A/m) m x   = p m x + q_eff A x        (promoted users who click)
    indirect = q_eff (A/m) (m - A - m x)                         (unexposed users who click)
    Their sum is p m x + q_eff (A/m)(m - A), the second line of Eq. 2.
    """
    A_prev = np.asarray(A_prev, dtype=float)
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    q_eff = np.asarray(q, dtype=float) * np.asarray(decay, dtype=float)
    direct = np.asarray(p, dtype=float) * m * x + q_eff * A_prev * x  # Eq. 2, direct adopters
    indirect = q_eff * (A_prev / m) * (m - A_prev - m * x)  # Eq. 2, indirect adopters
    return direct, indirect


def bass_expected(A_prev: ArrayLike, p: ArrayLike, q: ArrayLike, m: ArrayLike,
                  decay: ArrayLike = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Expected (innovative, imitative) new adopters in one period of the discrete Bass model, Eq. 1:
    a_t = (p + q_eff A/m)(m - A) = p (m - A) + q_eff (A/m)(m - A). The BDM is the P-BDM with x = 1 - A/m."""
    A_prev = np.asarray(A_prev, dtype=float)
    m = np.asarray(m, dtype=float)
    rest = m - A_prev
    q_eff = np.asarray(q, dtype=float) * np.asarray(decay, dtype=float)
    return np.asarray(p, dtype=float) * rest, q_eff * (A_prev / m) * rest  # Eq. 1, the two terms


def pbdm_draw(rng: np.random.Generator, A_prev: np.ndarray, exposed: np.ndarray, p: ArrayLike, q_eff: ArrayLike,
              m: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """One period of the stochastic P-BDM with distinguishable adopter types (Section 5.2): each of the ``exposed``
    promoted non-adopters clicks with probability p + q_eff A/m (direct), each of the other m - A - exposed
    non-adopters with probability q_eff A/m (indirect). Integer arrays in, (direct, indirect) integer arrays out."""
    A_prev = np.asarray(A_prev, dtype=np.int64)
    exposed = np.asarray(exposed, dtype=np.int64)
    m_int = np.asarray(m, dtype=np.int64)
    share = A_prev / m_int
    q_eff = np.asarray(q_eff, dtype=float)
    direct = rng.binomial(exposed, np.clip(np.asarray(p, dtype=float) + q_eff * share, 0.0, 1.0))  # Sec. 5.2
    indirect = rng.binomial(m_int - A_prev - exposed, np.clip(q_eff * share, 0.0, 1.0))  # Sec. 5.2
    return direct, indirect


def exposure(A_prev: np.ndarray, x: np.ndarray, m: ArrayLike, stochastic: bool) -> np.ndarray:
    """Users shown the promotion: m x, capped at the non-adopters m - A (the platform never promotes a video to
    a user who already clicked it); rounded to whole users in the stochastic model."""
    m = np.asarray(m, dtype=float)
    n = np.asarray(x, dtype=float) * m
    if stochastic:
        n = np.round(n)
    return np.clip(n, 0.0, m - A_prev)


def simulate_pbdm(p: ArrayLike, q: ArrayLike, m: ArrayLike, x: np.ndarray, gamma: ArrayLike = 1.0,
                  age0: ArrayLike = 0, A0: ArrayLike = 0, rng: np.random.Generator | None = None) -> DiffusionPath:
    """P-BDM paths (Eq. 2) under the promotion-fraction path ``x`` of shape (..., T).

    p, q, m, gamma, age0 and A0 broadcast against ``x[..., 0]``. In period t (t = 1..T) the diffusion
    coefficient is q * gamma**(age0 + t - 1). Deterministic (real-valued expected dynamics) when ``rng`` is None;
    with a Generator, binomial direct and indirect adopters (Section 5.2), which needs an integer market and A0.
    Promotion beyond the remaining non-adopters is capped (x_t <= 1 - A_{t-1}/m).
    """
    x = np.asarray(x, dtype=float)
    lead, T = x.shape[:-1], x.shape[-1]
    p_b, q_b, m_b, g_b, age_b, A0_b = (np.broadcast_to(np.asarray(v), lead) for v in (p, q, m, gamma, age0, A0))
    stochastic = rng is not None
    A = np.empty(lead + (T + 1,), dtype=np.int64 if stochastic else float)
    direct = np.empty(lead + (T,), dtype=A.dtype)
    indirect = np.empty(lead + (T,), dtype=A.dtype)
    A[..., 0] = A0_b
    mf = m_b.astype(float)
    for t in range(T):
        A_prev = A[..., t]
        decay = decay_factor(g_b, age_b + t)
        n_exp = exposure(A_prev, x[..., t], mf, stochastic)
        if stochastic:
            d, i = pbdm_draw(rng, A_prev, n_exp.astype(np.int64), p_b, q_b * decay, m_b)
        else:
            d, i = pbdm_expected(A_prev, n_exp / mf, p_b, q_b, mf, decay)
        direct[..., t] = d
        indirect[..., t] = i
        A[..., t + 1] = A_prev + d + i
    return DiffusionPath(A, direct, indirect)


def bass_adopters(p: ArrayLike, q: ArrayLike, m: ArrayLike, T: int, gamma: ArrayLike = 1.0, age0: ArrayLike = 0,
                  A0: ArrayLike = 0, rng: np.random.Generator | None = None) -> DiffusionPath:
    """Discrete Bass paths (Eq. 1) over T periods, broadcasting p, q, m, gamma, age0, A0.

    Deterministic when ``rng`` is None: ``direct`` = innovative adopters p(m - A), ``indirect`` = imitative adopters
    q_eff (A/m)(m - A). Otherwise each of the m - A non-adopters adopts with probability p + q_eff A/m (the P-BDM
    draw with every non-adopter exposed, x = 1 - A/m), so every adopter comes out in ``direct`` and ``indirect`` is
    zero: a stochastic path has no innovator / imitator split. ``A`` has shape (..., T+1).
    """
    lead = np.broadcast_shapes(*(np.shape(v) for v in (p, q, m, gamma, age0, A0)))
    p_b, q_b, m_b, g_b, age_b, A0_b = (np.broadcast_to(np.asarray(v), lead) for v in (p, q, m, gamma, age0, A0))
    stochastic = rng is not None
    A = np.empty(lead + (T + 1,), dtype=np.int64 if stochastic else float)
    inno = np.empty(lead + (T,), dtype=A.dtype)
    imit = np.empty(lead + (T,), dtype=A.dtype)
    A[..., 0] = A0_b
    mf = m_b.astype(float)
    for t in range(T):
        A_prev = A[..., t]
        decay = decay_factor(g_b, age_b + t)
        if stochastic:  # everyone not yet adopted is "exposed" (x = 1 - A/m): Eq. 1 as the P-BDM special case
            d, i = pbdm_draw(rng, A_prev, m_b.astype(np.int64) - A_prev, p_b, q_b * decay, m_b)
        else:
            d, i = bass_expected(A_prev, p_b, q_b, mf, decay)
        inno[..., t] = d
        imit[..., t] = i
        A[..., t + 1] = A_prev + d + i
    return DiffusionPath(A, inno, imit)


def bass_cdf(t: ArrayLike, p: ArrayLike, q: ArrayLike) -> np.ndarray:
    """Continuous-time Bass (1969) adoption share F(t) = (1 - e^{-(p+q)t}) / (1 + (q/p) e^{-(p+q)t})."""
    t, p, q = (np.asarray(v, dtype=float) for v in (t, p, q))
    e = np.exp(-(p + q) * t)
    return (1.0 - e) / (1.0 + (q / p) * e)


def bass_pdf(t: ArrayLike, p: ArrayLike, q: ArrayLike) -> np.ndarray:
    """Continuous-time Bass density f(t) = ((p+q)^2/p) e^{-(p+q)t} / (1 + (q/p) e^{-(p+q)t})^2."""
    t, p, q = (np.asarray(v, dtype=float) for v in (t, p, q))
    e = np.exp(-(p + q) * t)
    return ((p + q) ** 2 / p) * e / (1.0 + (q / p) * e) ** 2
