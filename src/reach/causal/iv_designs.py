"""Simulated IV designs with a known structural function, shared by benchmarks/iv_suite.py and the tests (the demand
design of Hartford et al. 2017 lives in reach.causal.demand).

Each design returns an `IVData` (t, z, x, y and the noiseless structural h at the observed rows) and a `truth(t, x)`
/ `truth_derivative(t, x)` pair for scoring on fresh test points.

deepgmm_<g>  the low-dimensional designs of Bennett, Kallus & Schnabel (2019, "Deep generalized method of moments
             for instrumental variable analysis", NeurIPS, Section 5.1), reused by Lewis & Syrgkanis (2018) and later
             IV benchmarks: z ~ U([-3, 3]^2), e ~ N(0, 1), gamma, delta ~ N(0, 0.1^2), t = z_1 + e + gamma,
             y = g(t) + e + delta, with g = sin (smooth, oscillating), abs (a kink) or step (a jump: 1{t >= 0});
             the confounder e enters both. One irrelevant N(0, 1) covariate is passed as x (the estimators take x).
heteroskedastic  the deepgmm sin design with a first-stage error whose scale depends on the instrument,
             t = z_1 + (0.4 + 0.6 |z_1| / 3)(e + gamma) * 2: v is not independent of z, so the triangular
             (control-function) assumption fails while the IV moment condition E[y - h(t) | z] = 0 still holds.
three_group  paper 1's question in miniature: x = (one-hot group, 4 N(0, 1) covariates); within group g the FEI
             dh/dt has the shape of reach.synthetic's campaign types — S-shaped (an inverted-U FEI), linear
             (constant FEI) or concave (a decreasing FEI); t = "log followers" = 11 + 1.5 q + 0.9 u + 0.3 x_c + 0.7 nu,
             z = q + 0.45 eta (past hearts), y = h_g(t) + 0.2 x_c + 0.5 u + noise_sd N(0, 1); u is the unobserved
             confounder. Scored per group on dh/dt over the 1st-99th percentile of t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import erf

DEEPGMM_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sin": np.sin,
    "abs": np.abs,
    "step": lambda t: (np.asarray(t) >= 0).astype(float),
}
GROUPS = ("s_shaped", "linear", "concave")


@dataclass(frozen=True)
class IVData:
    t: np.ndarray
    z: np.ndarray
    x: np.ndarray
    y: np.ndarray
    h: np.ndarray            # noiseless structural function at the observed (t, x)


@dataclass(frozen=True)
class IVDesign:
    name: str
    simulate: Callable[[int, int], IVData]                       # (n, seed) -> data
    truth: Callable[[np.ndarray, np.ndarray], np.ndarray]         # h(t, x)
    truth_derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]
    groups: Callable[[np.ndarray], np.ndarray] | None = None      # x -> group label per row (three_group only)


def _deepgmm(g: str, heteroskedastic: bool = False) -> IVDesign:
    f = DEEPGMM_FUNCTIONS[g]
    deriv = {"sin": np.cos, "abs": np.sign, "step": lambda t: np.zeros_like(np.asarray(t, float))}[g]

    def simulate(n: int, seed: int) -> IVData:
        rng = np.random.default_rng([int(seed), 101])
        z = rng.uniform(-3, 3, size=(n, 2))
        e = rng.normal(size=n)
        gamma, delta = 0.1 * rng.normal(size=n), 0.1 * rng.normal(size=n)
        if heteroskedastic:
            t = z[:, 0] + 2.0 * (0.4 + 0.6 * np.abs(z[:, 0]) / 3.0) * (e + gamma)
        else:
            t = z[:, 0] + e + gamma
        y = f(t) + e + delta
        x = rng.normal(size=(n, 1))
        return IVData(t, z, x, y, f(t))

    name = "heteroskedastic" if heteroskedastic else f"deepgmm_{g}"
    return IVDesign(name, simulate, lambda t, x: f(np.asarray(t, float)), lambda t, x: deriv(np.asarray(t, float)))


# FEI families of the three groups (natural-log "followers"), as in reach.synthetic.world's campaign types.
def _three_group_fei(t: np.ndarray, group: np.ndarray) -> np.ndarray:
    t = np.asarray(t, float)
    s = 0.05 + 0.42 * np.exp(-0.5 * ((t - 11.0) / 1.3) ** 2)
    lin = np.full_like(t, 0.26)
    con = 0.04 + 0.55 / (1.0 + np.exp((t - 10.0) / 0.9))
    return np.select([group == 0, group == 1], [s, lin], con)


def _three_group_h(t: np.ndarray, group: np.ndarray, ref: float = 11.0) -> np.ndarray:
    """int_ref^t FEI: closed forms of the three families."""
    t = np.asarray(t, float)

    def s_int(a):
        w = 1.3
        return 0.05 * a + 0.42 * w * np.sqrt(np.pi / 2) * erf((a - 11.0) / (np.sqrt(2) * w))

    def c_int(a):
        return 0.04 * a - 0.55 * 0.9 * np.logaddexp(0.0, -(a - 10.0) / 0.9)

    s = s_int(t) - s_int(ref)
    lin = 0.26 * (t - ref)
    con = c_int(t) - c_int(ref)
    return np.select([group == 0, group == 1], [s, lin], con)


def three_group(noise_sd: float = 0.6) -> IVDesign:
    def group_of(x: np.ndarray) -> np.ndarray:
        return np.argmax(np.asarray(x)[:, :3], axis=1)

    def simulate(n: int, seed: int) -> IVData:
        rng = np.random.default_rng([int(seed), 103])
        group = rng.integers(0, 3, size=n)
        cov = rng.normal(size=(n, 4))
        q, u = rng.normal(size=n), rng.normal(size=n)
        t = 11.0 + 1.5 * q + 0.9 * u + 0.3 * cov[:, 0] + 0.7 * rng.normal(size=n)
        z = q + 0.45 * rng.normal(size=n)
        x = np.column_stack([(group[:, None] == np.arange(3)).astype(float), cov])
        h = _three_group_h(t, group) + 0.2 * cov[:, 1]
        y = h + 0.5 * u + noise_sd * rng.normal(size=n)
        return IVData(t, z, x, y, h)

    return IVDesign("three_group", simulate,
                    lambda t, x: _three_group_h(t, group_of(x)) + 0.2 * np.asarray(x)[:, 4],
                    lambda t, x: _three_group_fei(t, group_of(x)), group_of)


DESIGNS: dict[str, Callable[[], IVDesign]] = {
    "deepgmm_sin": lambda: _deepgmm("sin"),
    "deepgmm_abs": lambda: _deepgmm("abs"),
    "deepgmm_step": lambda: _deepgmm("step"),
    "heteroskedastic": lambda: _deepgmm("sin", heteroskedastic=True),
    "three_group": three_group,
}


def derivative_errors(predict_grid: Callable[[np.ndarray, np.ndarray], np.ndarray], design: IVDesign,
                      x: np.ndarray, t_support: np.ndarray, n_grid: int = 41, eps: float = 0.05) -> dict:
    """Mean |dh/dt - truth| over rows x (n, d) and a grid over the 1st-99th percentile of `t_support` by central
    differences of the model's h. For designs with groups also, per group, the error of the group's average dh/dt
    curve (its shape: what Table 4 reports for a campaign) and its ratio to the group's peak true derivative, next to
    the per-row error (which also counts spurious heterogeneity within the group)."""
    lo, hi = np.percentile(t_support, [1, 99])
    grid = np.linspace(lo, hi, n_grid)
    est = (predict_grid(grid + eps, x) - predict_grid(grid - eps, x)) / (2 * eps)
    true = np.stack([design.truth_derivative(np.full(x.shape[0], g), x) for g in grid], axis=1)
    out = {"dh_mae": float(np.mean(np.abs(est - true)))}
    if design.groups is not None:
        groups = design.groups(x)
        for k, name in enumerate(GROUPS):
            rows = groups == k
            peak = float(np.max(np.abs(true[rows].mean(axis=0))))
            out[f"dh_mae_{name}"] = float(np.mean(np.abs(est[rows] - true[rows])))          # per row
            out[f"dh_curve_mae_{name}"] = float(np.mean(np.abs(est[rows].mean(axis=0) - true[rows].mean(axis=0))))
            out[f"dh_peak_{name}"] = peak
            out[f"dh_ratio_{name}"] = out[f"dh_curve_mae_{name}"] / peak                  # the group's shape
    return out
