"""Follower elasticity of impressions (paper 1, Section 3.4, Eqs. 8-10) and the curves and tables built on it.

Everything here works on plain arrays: `h` evaluated on a log-follower grid by whatever model (an ensemble of
Deep IV members, the synthetic truth, a test's closed form), so the same code serves estimates and oracles.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from reach.tiers import TIERS

TIER_NAMES: tuple[str, ...] = tuple(t[0] for t in TIERS)
SHAPES: tuple[str, ...] = ("s_shaped", "linear", "concave")
UNDETERMINED = "undetermined"   # a campaign whose followers span fewer than two tiers has no Table 4 shape


def fei_central_difference(h_on_grid: Callable[[np.ndarray], np.ndarray], log_followers_grid: np.ndarray,
                           epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """h and FEI = HME on the grid for every row (Eqs. 8-9): FEI(l | x) = (h(l + eps, x) - h(l - eps, x)) / 2 eps.

    `h_on_grid(levels)` returns h(l, x_j) for every row j (rows) at every log-follower level (columns).
    Returns (h, fei), each rows x grid.
    """
    if epsilon <= 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}")
    grid = np.asarray(log_followers_grid, float)
    h = np.atleast_2d(np.asarray(h_on_grid(grid), float))
    up = np.atleast_2d(np.asarray(h_on_grid(grid + epsilon), float))
    down = np.atleast_2d(np.asarray(h_on_grid(grid - epsilon), float))
    return h, (up - down) / (2.0 * epsilon)


def data_support(log_followers: np.ndarray, log_followers_grid: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Grid points inside the data's 1st-99th percentile of log followers, and those two bounds: the follower range
    the curves are read on (Table 4's tier averages, the truth checks); outside it every estimate is extrapolation."""
    lo, hi = np.percentile(np.asarray(log_followers, float), [1, 99])
    grid = np.asarray(log_followers_grid, float)
    return (grid >= lo) & (grid <= hi), float(lo), float(hi)


def tier_masks(log_followers_grid: np.ndarray, support: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Grid points inside each influencer tier (Section 4.2), the same partition the synthetic truth uses; with
    `support` (a boolean mask over the grid, e.g. data_support's), only the tier's grid points inside it."""
    followers = np.exp(np.asarray(log_followers_grid, float))
    keep = np.ones(followers.shape, bool) if support is None else np.asarray(support, bool)
    if keep.shape != followers.shape:
        raise ValueError(f"support has {keep.size} points, the grid {followers.size}")
    return {name: (followers >= lo) & (followers < hi) & keep for name, lo, hi in TIERS}


def tier_averages(fei: np.ndarray, log_followers_grid: np.ndarray, support: np.ndarray | None = None) -> np.ndarray:
    """Average FEI over each tier's grid points (inside `support` when given): rows x 6 (Table 4 columns); NaN for a
    tier with no such grid point."""
    fei = np.atleast_2d(fei)
    out = np.full((fei.shape[0], len(TIERS)), np.nan)
    for k, mask in enumerate(tier_masks(log_followers_grid, support).values()):
        if mask.any():
            out[:, k] = fei[:, mask].mean(axis=1)
    return out


def classify_curve_shape(tier_fei: np.ndarray, linear_cv: float = 0.4) -> str:
    """The curve shape of Table 4 from the six tier averages, by a stated rule.

    linear: the tier averages vary little (coefficient of variation below `linear_cv`), a constant FEI;
    concave: otherwise, when the smallest tier has the largest FEI (a decreasing FEI);
    s_shaped: otherwise (an interior peak: FEI rises then falls, an S-shaped prediction curve);
    undetermined: fewer than two finite tier averages (the data's follower range spans fewer than two tiers).
    On the paper's own Table 4 this rule reproduces all 30 published labels (linear CVs are at most 0.23, the
    others at least 0.58).
    """
    v = np.asarray(tier_fei, float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return UNDETERMINED
    mean = v.mean()
    if mean <= 0 or v.std() / mean < linear_cv:
        return "linear" if mean > 0 else "concave"
    return "concave" if int(np.argmax(v)) == 0 else "s_shaped"


def band_width_factor(member_curves: np.ndarray, simulated_curves: np.ndarray,
                      rows: np.ndarray | None = None) -> float:
    """How much wider the sampling part of an average curve's band must be: sqrt(mean over the grid of the variance
    of the average curve over `simulated_curves`' data sets / the same over the ensemble members), at least 1.

    Both are (fits x rows x grid) FEI curves on the same rows: members = bootstrap resamples of the one data set,
    simulated = one member-like fit per data set drawn from the fitted model (control_function.simulate_from_fit).
    The members see part of a fit's spread only (on designs with a known truth their spread is ~1/1.4 of the spread
    over data sets, docs/causal.md); the simulated data sets see the procedure's, selection included. Floored at 1:
    the band is never narrower than the members' (paper 1's) band."""
    def spread(curves: np.ndarray) -> float:
        c = np.asarray(curves, float)
        c = c if rows is None else c[:, rows]
        if c.shape[0] < 2 or c.shape[1] == 0:
            raise ValueError(f"need at least two fits and one row for a spread; got {c.shape}")
        return float(np.mean(np.var(c.mean(axis=1), axis=0, ddof=1)))

    members, simulated = spread(member_curves), spread(simulated_curves)
    return max(1.0, float(np.sqrt(simulated / members))) if members > 0 else 1.0


def bootstrap_draws(curves: np.ndarray, n_boot: int, seed: int, rows: np.ndarray | None = None,
                    bias: tuple[np.ndarray, np.ndarray] | None = None, width_factor: float = 1.0,
                    point: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap replicates (n_boot x grid) of the average curve over rows.

    `curves` is members x rows x grid (an ensemble of bootstrap-trained models) or rows x grid. Each draw resamples
    rows with replacement and, with several members, also draws one member, so the replicates carry both the
    sampling and the estimation uncertainty. `bias` = (bias_rows members x rows x p, bias_deltas members x draws x p
    x grid), the low-rank smoothing-bias draws of a penalised fit (ControlFunctionModel.smoothing_bias_draws): each
    replicate then adds one draw of its member's bias, (row weights @ bias_rows[m]) @ bias_deltas[m, s], from a
    stream of its own (with zero deltas the replicates are those without `bias`). `width_factor` (band_width_factor)
    scales each replicate's sampling deviation from the ensemble's average curve before the bias draw is added.
    `point` (rows x grid), the estimator's fit on all rows: the replicates are moved by its average curve minus the
    ensemble's, so the band keeps the members' spread and is centred on the point estimate."""
    c = np.asarray(curves, float)
    if c.ndim == 2:
        c = c[None]
    if rows is not None:
        c = c[:, rows]
    m, n, _g = c.shape
    if n == 0:
        raise ValueError("no rows to average")
    if bias is not None:
        bias_rows, bias_deltas = (np.asarray(a, float) for a in bias)
        if rows is not None:
            bias_rows = bias_rows[:, rows]
        if bias_rows.shape[:2] != (m, n) or bias_deltas.shape[0] != m or bias_deltas.shape[2] != bias_rows.shape[2] \
                or bias_deltas.shape[3] != c.shape[2]:
            raise ValueError(f"bias arrays {bias_rows.shape}, {bias_deltas.shape} do not fit the curves {c.shape}")
        bias_rng = np.random.default_rng([int(seed), 1])
    if not np.isfinite(width_factor) or width_factor <= 0:
        raise ValueError(f"width_factor must be positive, got {width_factor}")
    centre = c.mean(axis=(0, 1))
    rng = np.random.default_rng(seed)
    draws = np.empty((n_boot, c.shape[2]))
    for b in range(n_boot):
        weights = rng.multinomial(n, np.full(n, 1.0 / n)) / n
        member = rng.integers(m)
        draws[b] = weights @ c[member]
        if width_factor != 1.0:
            draws[b] = centre + width_factor * (draws[b] - centre)
        if bias is not None:
            draws[b] += (weights @ bias_rows[member]) @ bias_deltas[member, bias_rng.integers(bias_deltas.shape[1])]
    if point is not None:
        draws += _point_average(point, rows, c.shape[2]) - centre
    return draws


def _point_average(point: np.ndarray, rows: np.ndarray | None, n_grid: int) -> np.ndarray:
    q = np.asarray(point, float)
    q = q if rows is None else q[rows]
    if q.ndim != 2 or q.shape[1] != n_grid or q.shape[0] == 0:
        raise ValueError(f"point curves {q.shape} do not fit a grid of {n_grid}")
    return q.mean(axis=0)


def bootstrap_mean_curve(curves: np.ndarray, n_boot: int, seed: int, level: float = 0.95,
                         rows: np.ndarray | None = None, bias: tuple[np.ndarray, np.ndarray] | None = None,
                         width_factor: float = 1.0, point: np.ndarray | None = None) -> pd.DataFrame:
    """Average curve over rows with a percentile bootstrap band (Figures 6-8: "95% confidence intervals for the mean,
    computed by bootstrapping"); see `bootstrap_draws` (with `bias`, the band also carries the smoothing bias; with
    `point`, the estimate is the average of the fit on all rows and the band is centred on it). Returns columns estimate, lower, upper (one row per grid point)."""
    c = np.asarray(curves, float)
    c = c[None] if c.ndim == 2 else c
    draws = bootstrap_draws(c, n_boot, seed, rows=rows, bias=bias, width_factor=width_factor, point=point)
    c = c if rows is None else c[:, rows]
    alpha = (1.0 - level) / 2.0
    estimate = c.mean(axis=(0, 1)) if point is None else _point_average(point, rows, c.shape[2])
    return pd.DataFrame({"estimate": estimate, "lower": np.quantile(draws, alpha, axis=0),
                         "upper": np.quantile(draws, 1.0 - alpha, axis=0)})


def counterfactual_prediction(fei: np.ndarray, log_followers_grid: np.ndarray, anchor_log_followers: float,
                              anchor_impressions: float) -> np.ndarray:
    """Impressions implied by an FEI curve (Eq. 10 integrated; footnote 12): log R(l) = log R0 + int_{l0}^{l} FEI.

    The integration constant is the anchor: average impressions at the average log followers for average curves,
    a video's own impressions at its own followers for a single video."""
    grid = np.asarray(log_followers_grid, float)
    f = np.asarray(fei, float)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(grid))])
    at_anchor = np.interp(anchor_log_followers, grid, cum)
    return anchor_impressions * np.exp(cum - at_anchor)


def naive_curve(log_followers: np.ndarray, log_impressions: np.ndarray, log_followers_grid: np.ndarray,
                df: int = 6, epsilon: float = 0.05) -> pd.DataFrame:
    """The correlational curve of Figure 3: a cubic B-spline regression (OLS, `df` basis functions) of log impressions
    on log followers alone, and its slope (a "naive elasticity") by central differences."""
    import statsmodels.api as sm
    from patsy import build_design_matrices, dmatrix

    x = np.asarray(log_followers, float)
    y = np.asarray(log_impressions, float)
    lo, hi = float(x.min()), float(x.max())
    basis = dmatrix(f"bs(l, df={df}, degree=3, include_intercept=False, lower_bound={lo}, upper_bound={hi})",
                    {"l": x}, return_type="dataframe")
    fit = sm.OLS(y, basis).fit()
    grid = np.clip(np.asarray(log_followers_grid, float), lo, hi)

    def predict(values: np.ndarray) -> np.ndarray:
        (design,) = build_design_matrices([basis.design_info], {"l": np.clip(values, lo, hi)})
        return np.asarray(design) @ fit.params.to_numpy()

    inner = np.clip(grid, lo + epsilon, hi - epsilon)          # central differences stay inside the data range
    slope = (predict(inner + epsilon) - predict(inner - epsilon)) / (2 * epsilon)
    return pd.DataFrame({"log_followers": np.asarray(log_followers_grid, float), "log_impressions": predict(grid),
                         "elasticity": slope, "extrapolated": (np.asarray(log_followers_grid) < lo) |
                         (np.asarray(log_followers_grid) > hi)})


def campaign_shapes(fei: np.ndarray, log_followers_grid: np.ndarray, hashtags: np.ndarray, campaigns: list[str],
                    linear_cv: float = 0.4, support: np.ndarray | None = None) -> pd.DataFrame:
    """Per campaign: the tier averages of its videos' mean FEI curve (over `support` when given) and the curve shape
    of Table 4 (one row each)."""
    rows = []
    for tag in campaigns:
        mask = np.asarray(hashtags) == tag
        tiers = tier_averages(fei[mask].mean(axis=0), log_followers_grid, support)[0]
        rows.append({"hashtag": tag, "videos": int(mask.sum()), **dict(zip(TIER_NAMES, tiers)),
                     "shape": classify_curve_shape(tiers, linear_cv)})
    return pd.DataFrame(rows)


def label_groups(labels) -> tuple[list[tuple[object, np.ndarray]], int]:
    """The videos of each label (an engagement tactic, a topic; Figures 7-8) as positional row indices into the
    videos, labels sorted, and the number of videos without a label (None or NaN), which belong to no group."""
    labels = pd.Series(np.asarray(labels, dtype=object))
    present = labels.notna().to_numpy()
    groups = [(value, np.flatnonzero(present & (labels == value).to_numpy()))
              for value in sorted(labels[present].unique())]
    return groups, int((~present).sum())
