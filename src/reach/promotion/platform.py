"""The 120-period platform of paper 2, Section 6.3.1, and the promotion policies of Section 6.3.3.

Each period new videos arrive with no adopters; users follow the stochastic P-BDM of Section 5.2 (binomial direct
adopters among the promoted, binomial indirect adopters among the rest) with the time-decayed diffusion
coefficient q * gamma^age; every L periods the platform re-plans with a policy that knows each video's (p, q).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reach.diffusion.dynamics import exposure
from reach.diffusion.dynamics import pbdm_draw as draw_adopters
from reach.promotion.cgpo import accelerated_greedy, single_period_optimum
from reach.promotion.po import solve_po

POLICIES = ("AGA", "NoD", "ATT", "TIM", "POT")

# Published summary of the 61 category estimates (paper 2, Section 6.2; DESIGN section 6)
PUBLISHED_PQ = {"p_mean": 0.156, "p_sd": 0.055, "q_mean": 0.0547, "q_sd": 0.0225, "corr": -0.53}


@dataclass(frozen=True)
class PlatformSpec:
    market: int = 10_000
    initial_videos: int = 50
    new_per_period: int = 5
    periods: int = 120
    gamma: float = 0.983
    K: int = 50
    L: int = 13
    c_bar: float = 2.0     # average promotion budget per user per period: C = c_bar * m * L (Eq. 4d)


def category_pq(estimates: pd.DataFrame, model: str = "P-BDM", method: str = "D-OLS") -> np.ndarray:
    """The (p, q) of every category from a diffusion estimates table (category, model, method, gamma, p, q):
    the empirical distribution new videos draw from (Section 6.3.1)."""
    rows = estimates[(estimates["model"] == model) & (estimates["method"] == method)]
    if rows.empty:
        raise ValueError(f"no {model} {method} rows in the estimates table")
    pq = rows[["p", "q"]].to_numpy(dtype=float)
    if not np.isfinite(pq).all():
        raise ValueError(f"non-finite {model} {method} estimates for categories "
                         f"{list(rows.loc[~np.isfinite(pq).all(axis=1), 'category'])}")
    return pq


def category_gamma(estimates: pd.DataFrame, model: str = "P-BDM", method: str = "D-OLS") -> float:
    """The time decay gamma the categories' (p, q) were estimated under (Eq. 3's q * gamma^age): the simulation must
    decay q as the calibration did. One value per (model, method) in the estimates table."""
    rows = estimates[(estimates["model"] == model) & (estimates["method"] == method)]
    values = np.unique(rows["gamma"].to_numpy(dtype=float))
    if values.size != 1 or not np.isfinite(values).all():
        raise ValueError(f"the {model} {method} estimates carry gamma {list(values)}: expected one finite value")
    return float(values[0])


def sample_pq(rng: np.random.Generator, n: int, categories: np.ndarray | None = None,
              summary: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(p, q) for n new videos: a category's estimate drawn uniformly (the empirical distribution), or, with no
    estimates, a bivariate normal matching the published summary, kept inside p, q >= 0.001 and p + q <= 1."""
    if categories is not None and len(categories):
        pick = np.asarray(categories, dtype=float)[rng.integers(0, len(categories), size=n)]
        p, q = pick[:, 0], pick[:, 1]
    else:
        s = summary or PUBLISHED_PQ
        cov = np.array([[s["p_sd"] ** 2, s["corr"] * s["p_sd"] * s["q_sd"]],
                        [s["corr"] * s["p_sd"] * s["q_sd"], s["q_sd"] ** 2]])
        draw = rng.multivariate_normal([s["p_mean"], s["q_mean"]], cov, size=n)
        p, q = draw[:, 0], draw[:, 1]
    p = np.clip(p, 0.001, 0.999)
    q = np.clip(q, 0.001, 0.999)
    q = np.minimum(q, 1 - p)
    return p, q


def pbdm_draw(rng: np.random.Generator, A: np.ndarray, x: np.ndarray, p: np.ndarray, q_eff: np.ndarray,
              m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One period of the stochastic P-BDM (Section 5.2) for promotion fractions x: round(m x) non-adopters are
    shown the promotion (never more than there are). Returns (exposed, direct, indirect)."""
    exposed = exposure(A, x, m, stochastic=True).astype(np.int64)
    direct, indirect = draw_adopters(rng, A, exposed, p, q_eff, m)
    return exposed, direct, indirect


def plan(policy: str, p, q, A, age, new_last, spec: PlatformSpec, horizon: int,
         rng: np.random.Generator | None = None) -> np.ndarray:
    """Promotion fractions x (n_videos x horizon) that ``policy`` sets for the next ``horizon`` periods.
    The heuristic policies break ties at random (``rng``; by index without one): POT's score, new adopters
    last period, is 0 for every video that has none, and an index tie-break would never pick a new upload."""
    n = p.size
    m = float(spec.market)
    decay = spec.gamma ** (age[:, None] + np.arange(horizon)[None, :])
    budget = spec.c_bar * m * horizon
    x = np.zeros((n, horizon))
    if n == 0:
        return x
    if policy in ("AGA", "NoD") and horizon == 1:  # CGPO at L = 1 (NoD, or AGA with L = 1): the knapsack optimum
        res = single_period_optimum(p, q, m, A, budget, spec.K, decay)
        x[res.selected] = res.po.x
        return x
    if policy in ("AGA", "NoD"):
        res = accelerated_greedy(p, q, m, A, horizon, budget, spec.K, decay)
        x[res.selected] = res.po.x
        return x
    if policy == "ATT":
        score = p * (m - A)                      # promotion potential
    elif policy == "TIM":
        score = -age.astype(float)               # the newest
    elif policy == "POT":
        score = new_last.astype(float)           # most new adopters last period (rich get richer)
    else:
        raise ValueError(f"unknown policy {policy!r}; expected one of {POLICIES}")
    tie = np.arange(n) if rng is None else rng.permutation(n)
    chosen = np.lexsort((tie, -score))[: spec.K]
    res = solve_po(p[chosen], q[chosen], m, A[chosen], horizon, budget, decay[chosen])
    x[chosen] = res.x
    return x


def simulate_platform(policy: str, spec: PlatformSpec, seed: int, categories: np.ndarray | None = None,
                      progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the platform; returns (per-period totals, per-video outcomes). NoD plans with L = 1 every period; the
    other policies plan every spec.L periods. Arrivals and users draw from separate streams, so every policy
    sees the same videos."""
    arrivals = np.random.default_rng([seed, 1])
    users = np.random.default_rng([seed, 2])
    ties = np.random.default_rng([seed, 3])
    m = spec.market
    horizon = 1 if policy == "NoD" else spec.L
    total = spec.initial_videos + spec.new_per_period * (spec.periods - 1)
    p_all, q_all = sample_pq(arrivals, total, categories)
    born = np.concatenate([np.zeros(spec.initial_videos, dtype=int),
                           np.repeat(np.arange(1, spec.periods), spec.new_per_period)])
    A = np.zeros(total, dtype=np.int64)
    new_last = np.zeros(total, dtype=np.int64)
    promoted_impressions = np.zeros(total)
    promoted_periods = np.zeros(total, dtype=int)
    schedule = np.zeros((0, horizon))
    planned_at, planned_n = 0, 0
    rows = []
    periods = range(spec.periods) if progress is None else progress(range(spec.periods))
    for t in periods:
        live = born <= t
        n_live = int(live.sum())
        if t % horizon == 0:  # re-plan every L periods (every period for NoD)
            age = t - born[:n_live]
            schedule = plan(policy, p_all[:n_live], q_all[:n_live], A[:n_live].astype(float), age,
                            new_last[:n_live], spec, horizon, ties)
            planned_at, planned_n = t, n_live
        x = np.zeros(n_live)
        x[:planned_n] = schedule[:, t - planned_at]
        q_eff = q_all[:n_live] * spec.gamma ** (t - born[:n_live])
        exposed, direct, indirect = pbdm_draw(users, A[:n_live], x, p_all[:n_live], q_eff, m)
        new = direct + indirect
        A[:n_live] += new
        new_last[:n_live] = new
        promoted_impressions[:n_live] += exposed
        promoted_periods[:n_live] += exposed > 0
        rows.append((t, n_live, int(exposed.sum()), int((exposed > 0).sum()), int(direct.sum()), int(indirect.sum())))
    periods_tab = pd.DataFrame(rows, columns=["period", "videos", "promoted_impressions", "promoted_videos",
                                              "direct", "indirect"])
    videos = pd.DataFrame({"video": np.arange(total), "born": born, "p": p_all, "q": q_all, "adopters": A,
                           "promoted_impressions": promoted_impressions, "promoted_periods": promoted_periods})
    return periods_tab, videos
