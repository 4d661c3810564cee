"""The true follower-elasticity family of the synthetic world.

An FEI curve over log followers ``l`` is a non-negative sum of

* a constant ``const``                         -> linear counterfactual prediction curve,
* up to three Gaussian bumps ``amp * N(l; peak, width)`` (unnormalised) -> inverted-U / inverted-N FEI,
* a decreasing logistic ``drop * sigmoid(-(l - mid) / scale)``          -> concave prediction curve.

Because FEI = d h / d log F (paper 1, Eqs. 9-10), the counterfactual prediction curve is its integral, which is
closed form for every component, so the truth never relies on numerical differentiation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

N_BUMPS = 3


@dataclass(frozen=True)
class FeiParams:
    """Vectorised FEI parameters for n videos (bump arrays are n x N_BUMPS)."""

    const: np.ndarray
    amp: np.ndarray
    peak: np.ndarray
    width: np.ndarray
    drop: np.ndarray
    mid: np.ndarray
    scale: np.ndarray


def fei_curve(params: FeiParams, log_followers: np.ndarray) -> np.ndarray:
    """FEI(l | x) for each video (rows) at each log-follower value (columns)."""
    grid = np.atleast_1d(np.asarray(log_followers, dtype=float))
    lvl = grid[None, :] if grid.ndim == 1 else grid
    out = params.const[:, None] + params.drop[:, None] / (1.0 + np.exp((lvl - params.mid[:, None]) / params.scale[:, None]))
    for k in range(params.amp.shape[1]):
        z = (lvl - params.peak[:, k, None]) / params.width[:, k, None]
        out = out + params.amp[:, k, None] * np.exp(-0.5 * z**2)
    return out


def fei_integral(params: FeiParams, log_followers: np.ndarray, reference: float) -> np.ndarray:
    """int_reference^l FEI(s) ds: the follower part of the counterfactual prediction curve h(l, x)."""

    def antiderivative(lvl: np.ndarray) -> np.ndarray:
        val = params.const[:, None] * lvl
        # d/dl [-scale * softplus(-(l - mid)/scale)] = sigmoid(-(l - mid)/scale)
        u = -(lvl - params.mid[:, None]) / params.scale[:, None]
        val = val - params.drop[:, None] * params.scale[:, None] * np.logaddexp(0.0, u)
        for k in range(params.amp.shape[1]):
            w = params.width[:, k, None]
            val = val + params.amp[:, k, None] * w * np.sqrt(np.pi / 2) * erf((lvl - params.peak[:, k, None]) / (np.sqrt(2) * w))
        return val

    grid = np.atleast_1d(np.asarray(log_followers, dtype=float))
    lvl = grid[None, :] if grid.ndim == 1 else grid
    return antiderivative(lvl) - antiderivative(np.full((params.const.shape[0], 1), reference))
