"""The estimator study of paper 2, Section 5.3 (Figure 2).

Diffusion processes of one content piece (p = 0.523, q = 0.062 by default) are simulated with the stochastic P-BDM
of Section 5.2 (adopter types distinguishable) in markets of growing size, the number of observations growing in
proportion to the market (the triangular array of Section 5.1.1: ``processes = ceil(m / users_per_process)``
independent processes of ``horizon`` periods each). Two promotion schemes: Const (x_t = c) and Linear
(x_t = a + b A_{t-1}/m, the platform promoting in proportion to adoption, which makes the OLS covariates nearly
collinear). Error = sqrt((p - p_hat)^2 + (q - q_hat)^2) for OLS, D-OLS, MLE and D-MLE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reach.diffusion.dynamics import exposure, pbdm_draw
from reach.diffusion.estimators import METHODS, Observations

SCHEMES = ("Const", "Linear")


@dataclass(frozen=True)
class StudySpec:
    p: float = 0.523
    q: float = 0.062
    markets: tuple[int, ...] = (1200, 2500, 5000, 10000, 20000, 40000)
    replications: int = 100
    horizon: int = 30              # periods per diffusion process
    users_per_process: int = 1200  # one more process (horizon observations) per this many users of market
    initial_share: float = 0.001   # A_0 / m (a few seed adopters, so diffusion can start)
    const_x: float = 0.01          # Const scheme: x_t
    linear_x0: float = 0.001       # Linear scheme: x_t = linear_x0 + linear_slope * A_{t-1}/m
    linear_slope: float = 0.05


def promotion_fraction(scheme: str, A_prev: np.ndarray, m: float, spec: StudySpec) -> np.ndarray:
    """x_t under the Const or Linear scheme of Section 5.3."""
    if scheme == "Const":
        return np.full(A_prev.shape, spec.const_x)
    if scheme == "Linear":
        return spec.linear_x0 + spec.linear_slope * A_prev / m
    raise ValueError(f"scheme must be one of {SCHEMES}, not {scheme!r}")


def simulate_processes(scheme: str, m: int, n_processes: int, spec: StudySpec,
                       rng: np.random.Generator) -> Observations:
    """``n_processes`` independent stochastic P-BDM processes (Section 5.2) of ``spec.horizon`` periods under a
    scheme whose promotion reacts to the realised adopters; stacked as estimation rows (no time decay)."""
    A = np.full(n_processes, max(1, round(spec.initial_share * m)), dtype=np.int64)
    rows = {k: [] for k in ("direct", "indirect", "x", "A_prev")}
    for _ in range(spec.horizon):
        x = promotion_fraction(scheme, A.astype(float), m, spec)
        shown = exposure(A, x, m, stochastic=True).astype(np.int64)
        direct, indirect = pbdm_draw(rng, A, shown, spec.p, spec.q, m)
        rows["direct"].append(direct)
        rows["indirect"].append(indirect)
        rows["x"].append(shown / m)
        rows["A_prev"].append(A.copy())
        A = A + direct + indirect
    cat = {k: np.concatenate(v) for k, v in rows.items()}
    return Observations.build(cat["direct"], cat["indirect"], cat["x"], cat["A_prev"], float(m), 1.0)


def run_study(spec: StudySpec, seed: int, methods: tuple[str, ...] = ("OLS", "D-OLS", "MLE", "D-MLE"),
              progress=None) -> pd.DataFrame:
    """One row per (scheme, market, replication, method): estimates and the Euclidean error. Each (scheme,
    market, replication) draws from its own stream np.random.default_rng([seed, scheme, market, replication])."""
    cells = [(s, m, r) for s in SCHEMES for m in spec.markets for r in range(spec.replications)]
    it = cells if progress is None else progress(cells)
    out = []
    for scheme, m, r in it:
        rng = np.random.default_rng([seed, SCHEMES.index(scheme), int(m), r])
        n_proc = int(np.ceil(m / spec.users_per_process))
        obs = simulate_processes(scheme, int(m), n_proc, spec, rng)
        for method in methods:
            est = METHODS[method](obs)
            err = float(np.hypot(spec.p - est.p, spec.q - est.q))
            out.append((scheme, int(m), r, n_proc * spec.horizon, method, est.p, est.q, err))
    return pd.DataFrame(out, columns=["scheme", "market", "replication", "observations", "method", "p_hat", "q_hat",
                                      "error"])


def summarise_study(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd, median and quartiles of the error per (scheme, market, method), with the paired ratio of each
    D-method's error to its plain version's (below 1: distinguishing adopter types helps)."""
    g = runs.groupby(["scheme", "market", "method"])["error"]
    summary = g.agg(mean="mean", sd="std", median="median", q25=lambda e: e.quantile(0.25),
                    q75=lambda e: e.quantile(0.75), n="size").reset_index()
    wide = runs.pivot_table(index=["scheme", "market", "replication"], columns="method", values="error")
    ratios = []
    for d, plain in (("D-OLS", "OLS"), ("D-MLE", "MLE")):
        if d in wide and plain in wide:
            r = (wide[d] / wide[plain]).groupby(level=["scheme", "market"]).median().rename("median_ratio_to_plain")
            win = (wide[d] < wide[plain]).groupby(level=["scheme", "market"]).mean().rename("share_d_better")
            ratios.append(pd.concat([r, win], axis=1).reset_index().assign(method=d))
    if ratios:
        summary = summary.merge(pd.concat(ratios), on=["scheme", "market", "method"], how="left")
    return summary
