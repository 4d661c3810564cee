"""Control-function IV (CF-IV), series (sieve) estimator: the second causal estimator beside Deep IV.

Model (the triangular IV model with an additive first-stage error; Newey, Powell & Vella 1999, "Nonparametric
estimation of triangular simultaneous equations models", Econometrica 67(3), estimated by series as there):

    t = m(z, x) + v,        v independent of (z, x)
    y = h(t, x) + e,        E[e | v, z, x] = rho(v)
so  E[y | t, x, z] = h(t, x) + rho(t - m(z, x)).

Bases (t, z, x standardised with the training rows): B(a) = [a, B_1(a), .., B_{K-2}(a)], the restricted cubic
spline of reach.causal.response with K knots at Harrell's quantiles; w(x) the first `components` principal
components of x (standardised), each through a restricted cubic spline (`component_knots`), followed by the last
`direct_columns` columns of x as they are (the workflow's hashtag indicators, which the leading components of a
~300-column x need not carry): the directions along which h and its t-shape may vary.

Stage 1: m(z, x) = ridge regression on [1, B(z_j) for each instrument, x, B(z) (x) w(x)], cross-fitted over
`cross_fit_folds` folds so that every row's control v^ = t - m^(z, x) comes from a fit that did not see it.
Stage 2: y on [1, B(t), B(t) (x) w(x), x, w(x), B(v^)] by ridge regression (no penalty on the constant): h(t, x) is the
part without B(v^) (a varying-coefficient spline: h(t, x) = a(x) + B(t) . (c_0 + C w(x)) with a(x) = x . d + w(x) . e),
rho(v) = B(v) . beta, and h is reported with the training mean of rho(v^) added (E[e] = 0). The ridge penalty, the
number of components (from `component_grid`, capped by the columns of x) and the column scaling (`standardize_grid`:
False, the raw columns, or True, every column but the constant scaled to unit standard deviation before the ridge and
the coefficients mapped back — the spline columns B_k(t) have standard deviations 0.3 and 0.09 beside t's 1 on the
default world, so one penalty on the raw columns holds the curve's bends 12-116x tighter than its slope) are chosen
per data set by the held-out squared error of stage 2
(the rows in `validation`, e.g. a bootstrap member's out-of-bag rows, else `cv_folds`-fold cross-validation), and so
are the follower spline's outer knots (`response_outer_grid`) and a factor on the penalty of the per-direct-column
bends B(t) (x) x_j (`direct_penalty_grid`; with `direct_penalty_per_column`, one factor per direct column, by coordinate
descent on the same loss from the common choice) and a factor on the penalty of all the follower curve's columns B(t),
B(t) (x) w(x) beside the content block a(x) (`curve_penalty_grid`); every candidate's held-out loss is kept in
`history` (the selection table of the workflow). With `penalty_selection` "reml" the penalties are not taken from
the grids: each block (content [x, w(x)], curve, per-hashtag bends, control B(v^)) gets its own penalty by REML on the
training rows (reml_block_penalties; one smoothing parameter per term, as mgcv chooses them), and the held-out loss
only chooses among knots, scalings and components.

Why beside Deep IV: Deep IV's second stage sees y only through E_F[h(t, x) | x, z], an ill-posed integral equation
fitted by early-stopped networks, and on the designs of benchmarks/iv_suite.py its h stays flatter in t than the
truth — also when the same network is handed the confounder, so the flattening is the network fit's, not the IV
step's. The control function turns the same identifying variation into a regression with an additive nuisance
rho(v), which is not ill-posed (Newey et al. 1999: regression rates), and the series form is solved in closed form.
Its price is the triangular assumption: when the first-stage error is not independent of (z, x) (e.g. its scale moves
with z), h is biased; benchmarks/iv_suite.py has such a design ("heteroskedastic").

Saved as one safetensors file (numpy arrays) with the config, scalers, selection history and info as JSON metadata.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reach.causal.response import RCS_KNOT_QUANTILES
from reach.causal.training import JsonConfig, Scaler, check_inputs, json_default

log = logging.getLogger(__name__)

FORMAT = "reach.cfiv/1"
CAUSAL_VALIDATION_DRAWS = 32     # quantiles of the first-stage errors that integrate h over F in the causal validation
METADATA_KEY = "reach_cfiv"


@dataclass
class ControlFunctionConfig(JsonConfig):
    """CF-IV hyper-parameters; the penalty and the number of components are chosen per data set (module doc)."""

    response_knots: int = 5                   # knots of B(t) in h (3-7)
    control_knots: int = 5                    # knots of rho(v) (3-7)
    instrument_knots: int = 5                 # knots of B(z) in the first stage (3-7)
    component_grid: tuple[int, ...] = (0, 5, 10, 20)   # candidate numbers of principal components w(x)
    penalty_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)  # ridge penalties (sum of squares)
    first_stage_components: int = 10          # w(x) columns in the first stage's B(z) (x) w(x)
    component_knots: int = 4                  # 0: w(x) linear; else each component also enters through a restricted
                                              # cubic spline with this many knots (3-7): a(x) and the t-slopes bend in x
    direct_columns: int = 0                   # the last k columns of x (e.g. hashtag indicators) enter w(x) as they are,
                                              # beside the principal components of the other columns
    standardize_grid: tuple[bool, ...] = (False, True)  # stage 2 on raw and/or unit-variance columns (module doc)
    response_outer_grid: tuple[float | None, ...] = (None,)  # outer knot quantiles of B(t) to choose from (module doc):
                                              # None: Harrell's; q: knots equally spaced in quantile from q to 1 - q
    direct_penalty_grid: tuple[float, ...] = (1.0,)  # factors on the penalty of B(t) (x) direct columns (per-hashtag
                                              # follower-curve bends), chosen with the rest
    curve_penalty_grid: tuple[float, ...] = (1.0,)  # factors on the penalty of the follower curve's columns B(t) and
                                              # B(t) (x) w(x) (the only ones FEI reads) beside the content block a(x),
                                              # chosen with the rest ((1.0,): one penalty for both)
    penalty_selection: str = "held_out"       # held_out: the penalty and its factors from the grids by the held-out
                                              # loss; reml: one penalty per block (content a(x), curve, per-hashtag
                                              # bends, control rho(v)) by REML on the training rows (module doc)
    direct_penalty_per_column: bool = False   # then each direct column's bends get their own factor from the grid
                                              # (coordinate descent on the same held-out loss, from the common choice)
    direct_penalty_sweeps: int = 2            # passes of that coordinate descent over the direct columns
    cross_fit_folds: int = 5                  # >= 2
    cv_folds: int = 5                         # >= 2; used when no validation rows are given
    seed: int = 0

    def __post_init__(self):
        self.component_grid = tuple(int(c) for c in self.component_grid)
        self.penalty_grid = tuple(float(p) for p in self.penalty_grid)
        self.curve_penalty_grid = tuple(float(f) for f in self.curve_penalty_grid)
        if self.penalty_selection not in ("held_out", "reml"):
            raise ValueError(f"ControlFunctionConfig.penalty_selection must be held_out or reml: {self.penalty_selection!r}")
        if not self.curve_penalty_grid or any(f <= 0 for f in self.curve_penalty_grid):
            raise ValueError(f"ControlFunctionConfig.curve_penalty_grid needs positive factors: {self.curve_penalty_grid}")
        self.standardize_grid = tuple(bool(b) for b in self.standardize_grid)
        self.response_outer_grid = tuple(None if q is None else float(q) for q in self.response_outer_grid)
        self.direct_penalty_grid = tuple(float(f) for f in self.direct_penalty_grid)
        if not self.response_outer_grid or any(q is not None and not 0.0 < q < 0.5 for q in self.response_outer_grid):
            raise ValueError("ControlFunctionConfig.response_outer_grid needs entries None or in (0, 0.5): "
                             f"{self.response_outer_grid}")
        if not self.direct_penalty_grid or min(self.direct_penalty_grid) <= 0:
            raise ValueError(f"ControlFunctionConfig.direct_penalty_grid must be positive: {self.direct_penalty_grid}")
        if not self.standardize_grid:
            raise ValueError("ControlFunctionConfig.standardize_grid needs at least one of false, true")
        for name in ("response_knots", "control_knots", "instrument_knots"):
            if getattr(self, name) not in RCS_KNOT_QUANTILES:
                raise ValueError(f"ControlFunctionConfig.{name} must be one of {sorted(RCS_KNOT_QUANTILES)}, "
                                 f"not {getattr(self, name)}")
        if not self.component_grid or min(self.component_grid) < 0:
            raise ValueError(f"ControlFunctionConfig.component_grid must be non-negative integers: "
                             f"{self.component_grid}")
        if not self.penalty_grid or min(self.penalty_grid) <= 0:
            raise ValueError(f"ControlFunctionConfig.penalty_grid must be positive: {self.penalty_grid}")
        if self.component_knots != 0 and self.component_knots not in RCS_KNOT_QUANTILES:
            raise ValueError(f"ControlFunctionConfig.component_knots must be 0 or one of {sorted(RCS_KNOT_QUANTILES)}")
        if self.direct_penalty_sweeps < 1:
            raise ValueError(f"ControlFunctionConfig.direct_penalty_sweeps must be >= 1: {self.direct_penalty_sweeps}")
        if self.cross_fit_folds < 2 or self.cv_folds < 2 or self.first_stage_components < 0 or self.direct_columns < 0:
            raise ValueError(f"invalid ControlFunctionConfig: {self}")



# ----------------------------------------------------------------------------------------------- bases
def rcs_basis(a: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """[a, B_1(a), .., B_{K-2}(a)] (n, K-1): the restricted cubic spline basis of reach.causal.response in numpy."""
    a = np.asarray(a, float)
    k = np.asarray(knots, float)
    n_knots = k.size
    lo, hi = k[n_knots - 2], k[n_knots - 1]

    def cube(u):
        return np.clip(u, 0.0, None) ** 3

    cols = [a]
    for j in range(n_knots - 2):
        cols.append((cube(a - k[j]) - cube(a - lo) * (hi - k[j]) / (hi - lo) + cube(a - hi) * (lo - k[j]) / (hi - lo))
                    / (hi - k[0]) ** 2)
    return np.stack(cols, axis=-1)


def knot_quantiles(n_knots: int, outer: float | None = None) -> tuple[float, ...]:
    """Harrell's knot quantiles for n_knots (outer None; 5 knots: 0.05, 0.275, 0.5, 0.725, 0.95), or n_knots quantiles
    equally spaced from `outer` to 1 - `outer` (Harrell's are equally spaced too, with outer 0.10 / 0.05 / 0.025)."""
    if outer is None:
        return RCS_KNOT_QUANTILES[int(n_knots)]
    return tuple(float(q) for q in np.linspace(float(outer), 1.0 - float(outer), int(n_knots)))


def quantile_knots(a: np.ndarray, n_knots: int, outer: float | None = None) -> np.ndarray:
    knots = np.quantile(np.unique(np.asarray(a, float)), knot_quantiles(n_knots, outer))  # ties of a resample
    if not np.all(np.diff(knots) > 0):
        raise ValueError(f"too few distinct values for {n_knots} spline knots (quantiles {knots})")
    return knots


def _interact(b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Row-wise tensor product of the columns of b (n, p) and w (n, q) -> (n, p q)."""
    return (b[:, :, None] * w[:, None, :]).reshape(b.shape[0], -1)


def _ridge(design: np.ndarray, y: np.ndarray, penalty) -> np.ndarray:
    """argmin |y - D b|^2 + penalty |b_{1:}|^2 (column 0, the constant, unpenalised)."""
    return _ridge_solve(design.T @ design, design.T @ y, penalty)


def _column_scale(design: np.ndarray, standardize: bool) -> np.ndarray:
    """Per-column factors that give the training design's columns unit standard deviation (1 for the constant and
    for constant columns); all ones when not standardising. D / s is fitted, coefficients b / s apply to D."""
    if not standardize:
        return np.ones(design.shape[1])
    sd = design.std(axis=0)
    sd[0] = 1.0
    return np.where(sd > 1e-12, sd, 1.0)


def _ridge_solve(gram: np.ndarray, moment: np.ndarray, penalty) -> np.ndarray:
    """The ridge solution from D'D and D'y (constant unpenalised); `penalty` a number or one per column."""
    a = gram.copy()
    pen = np.broadcast_to(np.asarray(penalty, float), (a.shape[0],))
    a[np.diag_indices_from(a)] += pen
    a[0, 0] -= pen[0]
    return np.linalg.solve(a, moment)


def smoothing_bias_cov(design: np.ndarray, y: np.ndarray, penalty) -> tuple[np.ndarray, float]:
    """The ridge fit's prior-expected squared bias, sigma^2 A P A with A = (D'D + P)^-1, P the per-column penalty
    (the constant's 0), and the residual variance sigma^2 = RSS / (n - edf), edf = tr(A D'D).

    The Bayesian reading of a penalised regression (Wahba 1983; Nychka 1988, "Bayesian confidence intervals for
    smoothing splines", JASA 83; Marra & Wood 2012, Scand. J. Stat. 39): with the prior b ~ N(0, sigma^2 P^-1) the
    posterior covariance sigma^2 A is the sampling covariance sigma^2 A D'D A plus sigma^2 A P A, the expected
    bias-bias' of the shrunken fit (its bias is -A P b). A band that carries only the sampling spread (a bootstrap)
    misses the second part; Nychka shows the posterior band covers close to its level averaged over the function."""
    gram = design.T @ design
    pen = np.array(np.broadcast_to(np.asarray(penalty, float), (gram.shape[0],)))
    pen[0] = 0.0
    a = np.linalg.inv(gram + np.diag(pen))
    a = 0.5 * (a + a.T)
    coef = a @ (design.T @ y)
    edf = float(np.trace(a @ gram))
    sigma2 = float(np.sum((y - design @ coef) ** 2)) / max(y.size - edf, 1.0)
    cov = sigma2 * (a * pen[None, :]) @ a
    return 0.5 * (cov + cov.T), sigma2


def _psd_factor(cov: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """F with F F' = cov (cov symmetric positive semi-definite), the eigenvalues below rtol x the largest dropped."""
    values, vectors = np.linalg.eigh(cov)
    keep = values > rtol * max(float(values.max()), 0.0) if values.size else values > 0
    return vectors[:, keep] * np.sqrt(values[keep])[None, :]


def _direct_bend_owner(n_b: int, n_w: int, n_direct: int, n_columns: int) -> np.ndarray:
    """For each of stage 2's columns, the direct column j (0..n_direct-1) whose bends B_k(t) x (direct column j) it
    is, else -1. The design is [1, B(t) (n_b), B(t) (x) w(x) (n_b x n_w, B-major), x, w(x), B(v^)], the direct
    columns w(x)'s last n_direct."""
    owner = np.full(n_columns, -1)
    if n_direct:
        inter = np.full((n_b, n_w), -1)
        inter[:, n_w - n_direct:] = np.arange(n_direct)
        owner[1 + n_b:1 + n_b + n_b * n_w] = inter.ravel()
    return owner


def _curve_columns(n_b: int, n_w: int, n_columns: int) -> np.ndarray:
    """Mask of stage 2's follower-curve columns B(t) and B(t) (x) w(x): the part of h that FEI = dh/dt reads."""
    mask = np.zeros(n_columns, bool)
    mask[1:1 + n_b + n_b * n_w] = True
    return mask


def _direct_bends(n_b: int, n_w: int, n_direct: int, n_columns: int) -> np.ndarray:
    """Mask of stage 2's columns B_k(t) x (direct column j): the follower curve's bends per hashtag."""
    return _direct_bend_owner(n_b, n_w, n_direct, n_columns) >= 0


def _per_column_factors(loss_of, n_direct: int, start: float, factors: tuple[float, ...],
                        sweeps: int) -> tuple[np.ndarray, float, list[dict]]:
    """Coordinate descent over the direct columns: each column's bends take the factor of `factors` with the lowest
    `loss_of(per-column factors)`, the others held, for `sweeps` passes (or until none moves), starting from all at
    `start`. Returns the factors, their loss and one record per trial."""
    current = np.full(n_direct, float(start))
    best = loss_of(current)
    trials = []
    for sweep in range(int(sweeps)):
        moved = False
        for j in range(n_direct):
            for f in factors:
                if f == current[j]:
                    continue
                trial = current.copy()
                trial[j] = f
                loss = loss_of(trial)
                trials.append({"sweep": sweep, "direct_column": j, "factor": f, "val_loss": loss})
                if loss < best - 1e-12:
                    best, current, moved = loss, trial, True
        if not moved:
            break
    return current, best, trials


@dataclass
class _Components:
    """w(x): principal directions of the standardised x (from the training rows) scaled to unit variance, each
    optionally expanded by a restricted cubic spline (knots per component from the training rows; a row of NaN knots:
    linear), followed by `direct` trailing columns of x taken as they are (unit directions, linear)."""

    directions: np.ndarray     # (d, q)
    scale: np.ndarray          # (q,)
    knots: np.ndarray          # (q, K) or (q, 0) for linear components; NaN rows are linear

    @classmethod
    def fit(cls, xs: np.ndarray, q: int, n_knots: int = 0, direct: int = 0) -> "_Components":
        d = xs.shape[1]
        direct = int(min(direct, d))
        pc_x = xs[:, :d - direct]
        q = int(min(q, pc_x.shape[1], max(xs.shape[0] - 1, 0)))
        directions = np.zeros((d, q + direct))
        if q:
            _, _, vt = np.linalg.svd(pc_x - pc_x.mean(axis=0), full_matrices=False)
            directions[:d - direct, :q] = vt[:q].T
        directions[d - direct:, q:] = np.eye(direct)
        scale = (xs @ directions).std(axis=0) if q + direct else np.ones(0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        knots = np.zeros((q + direct, 0))
        if n_knots and q:
            w = (xs @ directions[:, :q]) / scale[:q]
            try:
                knots = np.full((q + direct, n_knots), np.nan)
                knots[:q] = np.stack([quantile_knots(w[:, j], n_knots) for j in range(q)])
            except ValueError:       # a component with too few distinct values (e.g. one-hot x): linear only
                knots = np.zeros((q + direct, 0))
        return cls(directions, scale, knots)

    def __call__(self, xs: np.ndarray) -> np.ndarray:
        w = (xs @ self.directions) / self.scale
        if self.knots.shape[1] == 0:
            return w
        return np.column_stack([rcs_basis(w[:, j], self.knots[j]) if np.isfinite(self.knots[j]).all()
                                else w[:, j:j + 1] for j in range(w.shape[1])])


# ----------------------------------------------------------------------------------------------- model
@dataclass
class ControlFunctionModel:
    """A fitted CF-IV model: h(t, x) (predict / predict_grid, y's scale) and the control term rho(v)."""

    config: ControlFunctionConfig
    scalers: dict[str, Scaler]                # t, x, y (y is identity-scaled: the ridge works on raw y)
    response_knots: np.ndarray                # on the standardised t scale
    control_knots: np.ndarray                 # on the standardised t scale (v = t - m)
    components: _Components
    h_coef: np.ndarray                        # [1, B(t), B(t) (x) w(x), x] coefficients
    control_coef: np.ndarray                  # B(v) coefficients
    h_offset: float                           # training mean of rho(v^)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    info: dict = field(default_factory=dict)
    causal_validation_rows: np.ndarray | None = None   # per held-out row of the fit (not saved)
    first_stage_rows: np.ndarray | None = None   # per training row, the cross-fitted m^(z, x) on t's scale (not saved)
    fei_bias_factor: np.ndarray | None = None  # F (p, r), F F' = the prior-expected squared bias of the coefficients
                                              # of B(t) and B(t) (x) w(x), the ones FEI depends on (smoothing_bias_cov)

    def _xs(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        if x.ndim != 2 or x.shape[1] != self.scalers["x"].mean.size:
            raise ValueError(f"x must have shape (rows, {self.scalers['x'].mean.size}); got {x.shape}")
        return self.scalers["x"](x)

    def _h(self, ts: np.ndarray, xs: np.ndarray, w: np.ndarray) -> np.ndarray:
        b = rcs_basis(ts, self.response_knots)
        return _h_design(b, w, xs) @ self.h_coef + self.h_offset

    def predict(self, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        """h(t, x) per row."""
        t = np.asarray(t, float).reshape(-1)
        xs = self._xs(x)
        if t.size != xs.shape[0]:
            raise ValueError(f"t has {t.size} rows but x has {xs.shape[0]}")
        return self._h(self.scalers["t"](t), xs, self.components(xs))

    def predict_grid(self, t_grid: np.ndarray, x: np.ndarray) -> np.ndarray:
        """h(t_g, x_i) for every row i and grid value t_g -> (n_rows, n_grid). h is linear in the basis, so the grid
        costs one x-part per row plus the basis at the grid."""
        grid = self.scalers["t"](np.asarray(t_grid, float).reshape(-1))
        xs = self._xs(x)
        w = self.components(xs)
        n_b = self.response_knots.size - 1
        c = self.h_coef
        n_w, n_x = w.shape[1], xs.shape[1]
        const, c_main = c[0], c[1:1 + n_b]
        c_inter = c[1 + n_b:1 + n_b + n_b * n_w]
        c_x, c_w = c[1 + n_b + n_b * n_w:1 + n_b + n_b * n_w + n_x], c[1 + n_b + n_b * n_w + n_x:]
        coef_t = c_main[None, :] + (w @ c_inter.reshape(n_b, n_w).T if n_w else 0.0)               # (rows, n_b)
        base = const + xs @ c_x + (w @ c_w if n_w else 0.0) + self.h_offset                          # (rows,)
        return base[:, None] + coef_t @ rcs_basis(grid, self.response_knots).T

    def smoothing_bias_draws(self, t_grid: np.ndarray, x: np.ndarray, epsilon: float, n_draws: int,
                             seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Draws of the FEI curves' smoothing bias (smoothing_bias_cov), in low-rank form: returns rows (n_rows,
        1 + n_w) = [1, w(x_i)] and deltas (n_draws, 1 + n_w, n_grid) such that rows[i] @ deltas[s] is draw s of row
        i's FEI deviation on the grid (central differences, as fei_central_difference), and a weighted average of
        rows' curves deviates by (weights @ rows) @ deltas[s]. FEI is linear in the coefficients of B(t) and
        B(t) (x) w(x), so this is exact for the coefficient draws N(0, F F')."""
        if epsilon <= 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        xs = self._xs(x)
        w = self.components(xs)
        rows = np.column_stack([np.ones(xs.shape[0]), w])
        grid = np.asarray(t_grid, float).reshape(-1)
        slope = (rcs_basis(self.scalers["t"](grid + epsilon), self.response_knots)
                 - rcs_basis(self.scalers["t"](grid - epsilon), self.response_knots)) / (2.0 * epsilon)  # (G, n_b)
        n_b, n_w = slope.shape[1], w.shape[1]
        factor = self.fei_bias_factor
        if factor is None or factor.shape[1] == 0:
            return rows, np.zeros((int(n_draws), 1 + n_w, grid.size))
        if factor.shape[0] != n_b * (1 + n_w):
            raise ValueError(f"fei_bias_factor has {factor.shape[0]} rows, the model {n_b * (1 + n_w)} coefficients")
        delta = factor @ np.random.default_rng(int(seed)).standard_normal((factor.shape[1], int(n_draws)))
        by_column = np.concatenate([delta[:n_b, None, :], delta[n_b:].reshape(n_b, n_w, delta.shape[1])], axis=1)  # (n_b, 1+n_w, S)
        return rows, np.einsum("gk,kjs->sjg", slope, by_column)

    def control_curve(self, v: np.ndarray) -> np.ndarray:
        """rho(v) - mean rho^ at first-stage errors v (t's original scale)."""
        vs = np.asarray(v, float).reshape(-1) / self.scalers["t"].sd[0]
        return rcs_basis(vs, self.control_knots) @ self.control_coef - self.h_offset

    def save(self, path: str | Path) -> None:
        from safetensors.numpy import save_file

        arrays = {"response_knots": self.response_knots, "control_knots": self.control_knots,
                  "directions": self.components.directions, "components_scale": self.components.scale,
                  "components_knots": self.components.knots,
                  "h_coef": self.h_coef, "control_coef": self.control_coef}
        if self.fei_bias_factor is not None:
            arrays["fei_bias_factor"] = self.fei_bias_factor
        meta = {"format": FORMAT, "config": self.config.to_json(), "h_offset": self.h_offset,
                "scalers": {k: s.to_json() for k, s in self.scalers.items()},
                "history": json.loads(self.history.to_json(orient="split", index=False)) if len(self.history) else None,
                "info": self.info}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}, str(path),
                  metadata={METADATA_KEY: json.dumps(meta, default=json_default)})

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "ControlFunctionModel":
        """`device` is accepted for the estimator protocol; the series model runs in numpy."""
        from safetensors import safe_open
        from safetensors.numpy import load_file

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"CF-IV model {path} does not exist")
        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
        if raw is None:
            raise ValueError(f"{path} is not a reach CF-IV model (no {METADATA_KEY!r} metadata)")
        meta = json.loads(raw)
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: unsupported format {meta.get('format')!r} (expected {FORMAT})")
        a = load_file(str(path))
        h = meta.get("history")
        return cls(ControlFunctionConfig.from_json(meta["config"]),
                   {k: Scaler.from_json(v) for k, v in meta["scalers"].items()}, a["response_knots"],
                   a["control_knots"], _Components(a["directions"], a["components_scale"], a["components_knots"]),
                   a["h_coef"],
                   a["control_coef"], float(meta["h_offset"]),
                   pd.DataFrame(h["data"], columns=h["columns"]) if h else pd.DataFrame(), meta.get("info", {}),
                   fei_bias_factor=a.get("fei_bias_factor"))


def simulate_from_fit(model: ControlFunctionModel, t: np.ndarray, x: np.ndarray, y: np.ndarray,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One data set (t*, y*) drawn from a CF-IV fit on the rows (t, z, x, y) it was fitted on: the residual bootstrap
    of the triangular model (module doc). The rows' pairs (v^_i, e^_i) of first-stage control and structural
    residual, v^ = t - m^(z, x) (cross-fitted) and e^ = y - h^(t, x) - rho^(v^), are permuted jointly across rows,
    which keeps their dependence (the confounding) and draws them independently of (z, x), as the model assumes:

        t* = m^(z, x) + v*,    y* = h^(t*, x) + rho^(v*) + e*.

    z and x stay as they are; the structural function of the new data set is the fit's h^, so a refit on (t*, z, x,
    y*) shows the procedure's spread over data sets with a known truth (Efron & Tibshirani 1993, Ch. 6.5 and 9.5:
    the residual bootstrap; the pairs bootstrap of the members resamples one data set's rows)."""
    if model.first_stage_rows is None:
        raise ValueError("the model carries no first-stage fit per row: simulate from a model fitted in this run")
    t, y = np.asarray(t, float).reshape(-1), np.asarray(y, float).reshape(-1)
    m_hat = model.first_stage_rows
    if not (t.size == y.size == m_hat.size == np.asarray(x).shape[0]):
        raise ValueError(f"t ({t.size}), x ({np.asarray(x).shape[0]}) and y ({y.size}) are not the model's "
                         f"{m_hat.size} training rows")
    v = t - m_hat
    e = y - model.predict(t, x) - model.control_curve(v)
    order = rng.permutation(t.size)
    t_star = m_hat + v[order]
    return t_star, model.predict(t_star, x) + model.control_curve(v[order]) + e[order]


def _h_design(b: np.ndarray, w: np.ndarray, xs: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(b.shape[0]), b, _interact(b, w), xs, w])


def _first_stage_design(zs: np.ndarray, z_knots: list[np.ndarray], xs: np.ndarray, w: np.ndarray) -> np.ndarray:
    bz = np.column_stack([rcs_basis(zs[:, j], z_knots[j]) for j in range(zs.shape[1])])
    return np.column_stack([np.ones(xs.shape[0]), bz, xs, _interact(bz, w)])


def _penalty_vector(penalty: float, curve: np.ndarray, curve_factor: float, bends: np.ndarray,
                    bend_factor) -> np.ndarray:
    """Stage 2's per-column ridge penalty: `penalty` on every column, x `curve_factor` on the follower curve's
    columns (`curve`), and on the per-hashtag bends (`bends`, a subset of them) x `bend_factor` more (a number or one
    per column)."""
    pen = np.where(curve, penalty * curve_factor, penalty)
    pen = np.where(bends, pen * bend_factor, pen)
    return pen


def reml_criterion(gram: np.ndarray, moment: np.ndarray, yy: float, n: int, penalty: np.ndarray,
                   sigma2: float | None = None) -> float:
    """-2 x the restricted (REML) log likelihood of a ridge regression, up to a constant, from D'D, D'y and y'y: the
    coefficients' prior b_j ~ N(0, sigma^2 / penalty_j) on the penalised columns, a flat one on the unpenalised
    (penalty 0) columns (Wood 2011, JRSS-B 73, Eq. 4 for the Gaussian case; Harville 1977):

        (n - M) log sigma^2 + (|y - D b^|^2 + b^' P b^) / sigma^2 + log|D'D + P| - log|P|_+

    with M the unpenalised columns and b^ the ridge solution (so |y - D b^|^2 + b^' P b^ = y'y - y'D b^). With
    `sigma2` None, sigma^2 is profiled out (its REML estimate (y'y - y'D b^) / (n - M))."""
    pen = np.asarray(penalty, float)
    chol = np.linalg.cholesky(gram + np.diag(pen))
    coef = np.linalg.solve(chol.T, np.linalg.solve(chol, moment))
    rss_pen = max(float(yy - moment @ coef), 1e-300)
    dof = n - int(np.sum(pen == 0))
    s2 = rss_pen / dof if sigma2 is None else float(sigma2)
    return float(dof * np.log(s2) + rss_pen / s2 + 2.0 * np.sum(np.log(np.diag(chol))) - np.sum(np.log(pen[pen > 0])))


def reml_block_penalties(design: np.ndarray, y: np.ndarray, blocks: np.ndarray,
                         bounds: tuple[float, float] = (1e-4, 1e6)) -> np.ndarray:
    """One ridge penalty per block of columns (`blocks[j]` = the block of column j, -1 unpenalised), the REML choice
    (reml_criterion, sigma^2 profiled; L-BFGS-B over log penalties within `bounds`, started at 1): mgcv's default for
    a model with several smooth terms, each its own smoothing parameter. Returns the penalties, one per block."""
    from scipy.optimize import minimize

    blocks = np.asarray(blocks, int)
    k = int(blocks.max()) + 1
    gram, moment, yy = design.T @ design, design.T @ y, float(y @ y)

    def objective(log_pen: np.ndarray) -> float:
        return reml_criterion(gram, moment, yy, y.size, np.where(blocks >= 0, np.exp(log_pen)[np.maximum(blocks, 0)], 0.0))

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    result = minimize(objective, np.zeros(k), method="L-BFGS-B", bounds=[(lo, hi)] * k)
    return np.exp(result.x)


def _cv_penalty(design: np.ndarray, y: np.ndarray, penalties,
                folds: np.ndarray) -> tuple[float | np.ndarray, list[float]]:
    """Cross-validated mean squared error per penalty, a number or one per column (each fold's D'D formed once, reused
    for every penalty); returns the best penalty and every loss."""
    gram, moment = design.T @ design, design.T @ y
    sse = np.zeros(len(penalties))
    for k in np.unique(folds):
        own = folds == k
        d_own = design[own]
        g_k, m_k = gram - d_own.T @ d_own, moment - d_own.T @ y[own]
        for j, penalty in enumerate(penalties):
            sse[j] += float(np.sum((y[own] - d_own @ _ridge_solve(g_k, m_k, penalty)) ** 2))
    losses = [float(v) / y.size for v in sse]
    return penalties[int(np.argmin(losses))], losses


def _group_folds(ids: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A fold (0..k-1) per row, random over the distinct ids (0..m-1, one per observation) and shared by its copies."""
    return (rng.permutation(int(ids.max()) + 1) % k)[ids]


def fit_control_function(t: np.ndarray, z: np.ndarray, x: np.ndarray, y: np.ndarray,
                         config: ControlFunctionConfig | None = None,
                         validation: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
                         groups: np.ndarray | None = None) -> ControlFunctionModel:
    """Fit CF-IV (module doc) on t (n,), z (n,) or (n, k), x (n, d), y (n,). The penalty and the number of
    components are chosen on the rows of `validation` = (t, z, x, y) when given, else by cross-validation.
    `groups` (n,): rows with the same id are copies of one observation (a bootstrap resample's duplicates: pass the
    resampled row indices) and fall in the same fold of every cross-fitting and cross-validation split, so that no
    row's control v^ comes from a first stage that saw its copy."""
    config = config or ControlFunctionConfig()
    start = time.perf_counter()
    t, z, x, y = check_inputs(t, z, x, y)
    if validation is not None:
        validation = check_inputs(*validation)
        if validation[2].shape[1] != x.shape[1] or validation[1].shape[1] != z.shape[1]:
            raise ValueError("validation arrays have other x or z widths than the training arrays")
    n = t.size
    if n < 20:
        raise ValueError(f"too few rows ({n}) for the control-function fit")
    scalers = {"t": Scaler.fit(t), "x": Scaler.fit(x), "z": Scaler.fit(z), "y": Scaler(np.zeros(1), np.ones(1))}
    ts, xs, zs = scalers["t"](t), scalers["x"](x), scalers["z"](z)
    rng = np.random.default_rng([int(config.seed), 5])
    z_knots = [quantile_knots(zs[:, j], config.instrument_knots) for j in range(zs.shape[1])]
    w_first = _Components.fit(xs, config.first_stage_components)

    # ---- stage 1: cross-fitted m(z, x), controls v^ = t - m^(z, x) (standardised t scale)
    first = _first_stage_design(zs, z_knots, xs, w_first(xs))
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if groups.size != n:
            raise ValueError(f"groups has {groups.size} entries for {n} rows")
    ids = np.arange(n) if groups is None else np.unique(groups, return_inverse=True)[1]
    folds = _group_folds(ids, int(config.cross_fit_folds), rng)
    m_hat = np.empty(n)
    first_penalties = []
    for k in range(int(config.cross_fit_folds)):
        own = folds == k
        inner = np.unique(ids[~own], return_inverse=True)[1] % int(config.cv_folds)
        penalty, _ = _cv_penalty(first[~own], ts[~own], config.penalty_grid, inner)
        m_hat[own] = first[own] @ _ridge(first[~own], ts[~own], penalty)
        first_penalties.append(penalty)
    v = ts - m_hat
    first_r2 = float(1.0 - np.mean(v ** 2) / max(float(np.var(ts)), 1e-12))
    if validation is not None:   # held-out rows: the first stage on all training rows
        t_va, z_va, x_va, y_va = validation
        ts_va, xs_va, zs_va = scalers["t"](t_va), scalers["x"](x_va), scalers["z"](z_va)
        penalty = float(np.median(first_penalties))
        coef = _ridge(first, ts, penalty)
        v_va = ts_va - _first_stage_design(zs_va, z_knots, xs_va, w_first(xs_va)) @ coef

    # ---- stage 2: y on [h basis, B(v^)]; penalty, components, scaling and the knots of B(t) chosen on held-out loss
    v_knots = quantile_knots(v, config.control_knots)
    b_v = rcs_basis(v, v_knots)
    if validation is not None:
        b_v_va = rcs_basis(v_va, v_knots)
    cv = _group_folds(ids, int(config.cv_folds), rng)
    rows, best = [], None
    if config.direct_columns > x.shape[1]:
        raise ValueError(f"ControlFunctionConfig.direct_columns {config.direct_columns} exceeds x's {x.shape[1]} columns")
    n_direct = int(config.direct_columns)
    n_pc = x.shape[1] - n_direct
    factors = config.direct_penalty_grid if n_direct else (1.0,)
    components = {q: _Components.fit(xs, q, config.component_knots, config.direct_columns)   # one SVD per q, not
                  for q in sorted({min(int(c), n_pc) for c in config.component_grid})}      # per (knots, scaling)
    for outer in config.response_outer_grid:
        t_knots_o = quantile_knots(ts, config.response_knots, outer)
        b_t = rcs_basis(ts, t_knots_o)
        for standardize in config.standardize_grid:
            for comps in components.values():
                w = comps(xs)
                design = np.column_stack([_h_design(b_t, w, xs), b_v])
                scale = _column_scale(design, standardize)
                design = design / scale
                bends = _direct_bends(b_t.shape[1], w.shape[1], n_direct, design.shape[1])
                curve = _curve_columns(b_t.shape[1], w.shape[1], design.shape[1])
                if validation is not None:
                    design_va = np.column_stack([_h_design(rcs_basis(ts_va, t_knots_o), comps(xs_va), xs_va),
                                                 b_v_va]) / scale
                    gram, moment = design.T @ design, design.T @ y
                if validation is None:
                    design_va = gram = moment = None
                if config.penalty_selection == "reml":
                    block = np.zeros(design.shape[1], int)           # 0: content a(x) = [x, w(x)]
                    block[0] = -1                                    # the constant
                    block[curve & (block >= 0)] = 1                  # the follower curve B(t), B(t) (x) w(x)
                    block[bends] = 2 if n_direct else 1              # its per-hashtag bends
                    block[design.shape[1] - b_v.shape[1]:] = 3 if n_direct else 2   # the control rho(v)
                    lam = reml_block_penalties(design, y, block)
                    pen = np.where(block >= 0, lam[np.maximum(block, 0)], 0.0)
                    if validation is not None:
                        loss = float(np.mean((y_va - design_va @ _ridge_solve(gram, moment, pen)) ** 2))
                    else:
                        loss = _cv_penalty(design, y, [pen], cv)[1][0]
                    p, curve_factor = float(lam[0]), float(lam[1] / lam[0])
                    factor = float(lam[2] / lam[1]) if n_direct else 1.0
                    rows.append({"stage": "second", "response_outer": np.nan if outer is None else outer,
                                 "standardized": standardize,
                                 "components": int(comps.directions.shape[1]) - n_direct, "penalty": p,
                                 "curve_penalty_factor": curve_factor, "direct_penalty_factor": factor,
                                 "control_penalty_factor": float(lam[-1] / lam[0]), "val_loss": loss,
                                 "validation": "held-out rows (penalties by REML)" if validation is not None
                                 else f"{config.cv_folds}-fold cross-validation (penalties by REML)"})
                    if best is None or loss < best[0] - 1e-12:
                        best = (loss, comps, p, pen, design, scale, standardize, outer, t_knots_o, factor,
                                curve_factor, curve, (design_va, gram, moment))
                    continue
                for curve_factor, factor in itertools.product(config.curve_penalty_grid, factors):
                    penalties = [_penalty_vector(p, curve, curve_factor, bends, factor) for p in config.penalty_grid]
                    if validation is not None:
                        losses = [float(np.mean((y_va - design_va @ _ridge_solve(gram, moment, pen)) ** 2))
                                  for pen in penalties]
                    else:
                        losses = _cv_penalty(design, y, penalties, cv)[1]
                    for p, pen, loss in zip(config.penalty_grid, penalties, losses):
                        rows.append({"stage": "second", "response_outer": np.nan if outer is None else outer,
                                     "standardized": standardize,
                                     "components": int(comps.directions.shape[1]) - n_direct, "penalty": p,
                                     "curve_penalty_factor": curve_factor,
                                     "direct_penalty_factor": factor, "val_loss": loss,
                                     "validation": "held-out rows" if validation is not None
                                     else f"{config.cv_folds}-fold cross-validation"})
                        if best is None or loss < best[0] - 1e-12:
                            best = (loss, comps, p, pen, design, scale, standardize, outer, t_knots_o, factor,
                                    curve_factor, curve, (design_va, gram, moment))
    (loss, comps, penalty, pen, design, scale, standardized, outer, t_knots, factor, curve_factor, curve,
     (design_va, gram, moment)) = best
    column_factors = None
    if config.direct_penalty_per_column and n_direct and len(factors) > 1 and config.penalty_selection == "held_out":
        # each hashtag's bends their own factor (a campaign's curve may bend more than another's), by the same
        # held-out loss, from the common choice; the common factor stays one of the candidates of every column
        owner = _direct_bend_owner(rcs_basis(ts[:2], t_knots).shape[1], comps(xs[:2]).shape[1], n_direct,
                                   design.shape[1])

        def penalty_of(per_column: np.ndarray) -> np.ndarray:
            return _penalty_vector(penalty, curve, curve_factor, owner >= 0, per_column[np.maximum(owner, 0)])

        def loss_of(per_column: np.ndarray) -> float:
            if validation is not None:
                return float(np.mean((y_va - design_va @ _ridge_solve(gram, moment, penalty_of(per_column))) ** 2))
            return _cv_penalty(design, y, [penalty_of(per_column)], cv)[1][0]

        column_factors, loss, trials = _per_column_factors(loss_of, n_direct, factor, factors,
                                                           config.direct_penalty_sweeps)
        pen = penalty_of(column_factors)
        for r in trials:
            rows.append({"stage": "second, per direct column", "response_outer": np.nan if outer is None else outer,
                         "standardized": standardized, "components": int(comps.directions.shape[1]) - n_direct,
                         "penalty": penalty, "curve_penalty_factor": curve_factor,
                         "direct_penalty_factor": r["factor"], "direct_column": r["direct_column"],
                         "val_loss": r["val_loss"], "validation": "held-out rows" if validation is not None
                         else f"{config.cv_folds}-fold cross-validation"})
    coef = _ridge(design, y, pen) / scale
    n_h = design.shape[1] - b_v.shape[1]
    bias_cov, sigma2 = smoothing_bias_cov(design, y, pen)
    fei_columns = np.arange(1, 1 + t_knots.size - 1 + (t_knots.size - 1) * comps(xs[:2]).shape[1])  # B(t), B(t) (x) w
    fei_bias_factor = _psd_factor(bias_cov[np.ix_(fei_columns, fei_columns)]
                                  / np.outer(scale[fei_columns], scale[fei_columns]))
    h_coef, control_coef = coef[:n_h], coef[n_h:]
    h_offset = float(np.mean(b_v @ control_coef))
    history = pd.DataFrame(rows)
    history["chosen"] = ((history["components"] == comps.directions.shape[1] - n_direct)
                         & (history["penalty"] == penalty) & (history["standardized"] == standardized)
                         & (history["direct_penalty_factor"] == factor)
                         & (history["curve_penalty_factor"] == curve_factor)
                         & (history["response_outer"].isna() if outer is None else history["response_outer"] == outer)
                         & (history["stage"] == "second"))
    info = {"estimator": "cfiv", "n_train": int(n), "n_val": int(validation[0].size) if validation is not None else 0,
            "first_stage_r2": first_r2, "first_stage_penalties": first_penalties,
            "components": int(comps.directions.shape[1]) - n_direct, "direct_columns": n_direct, "penalty": penalty,
            "standardized": bool(standardized), "response_outer": outer, "response_knots": t_knots.tolist(),
            "curve_penalty_factor": float(curve_factor), "direct_penalty_factor": float(factor),
            "direct_penalty_factors": None if column_factors is None else column_factors.tolist(),
            # held-out squared error over var(y) of the training rows (Deep IV's scale: standardised y); raw beside it
            "second_stage_val_loss": loss / max(float(np.var(y)), 1e-12), "second_stage_val_loss_raw": loss,
            "n_coefficients": int(coef.size), "residual_variance": sigma2,
            "fei_bias_rank": int(fei_bias_factor.shape[1]), "seconds": time.perf_counter() - start}
    model = ControlFunctionModel(config, scalers, t_knots, v_knots, comps, h_coef, control_coef, h_offset, history,
                                 info, fei_bias_factor=fei_bias_factor)
    model.first_stage_rows = scalers["t"].inverse(m_hat)
    if validation is not None:
        # Hartford et al.'s causal validation, the criterion Deep IV reports: held-out (y - E_F[h(t, x) | z, x])^2 with
        # F the fitted first stage, t = m^(z, x) + v and v from the (cross-fitted) first-stage errors, so the two
        # estimators can be compared on the same rows (reach.causal.estimator.choose_estimator)
        m_va = ts_va - v_va
        draws = np.quantile(v, (np.arange(CAUSAL_VALIDATION_DRAWS) + 0.5) / CAUSAL_VALIDATION_DRAWS)
        w_va = comps(xs_va)
        expected = np.mean([model._h(m_va + d, xs_va, w_va) for d in draws], axis=0)
        rows_loss = (y_va - expected) ** 2 / max(float(np.var(y)), 1e-12)
        info["causal_validation_loss"] = float(np.mean(rows_loss))
        model.causal_validation_rows = rows_loss      # per held-out row (not saved): paired comparisons
    info["seconds"] = time.perf_counter() - start
    log.info("CF-IV: first stage cross-fitted R^2 %.3f; chose %d components and penalty %g (held-out loss %.4f; "
             "causal validation %.4f); %d coefficients, %.2f s", first_r2, info["components"], penalty, loss,
             info.get("causal_validation_loss", float("nan")), coef.size, info["seconds"])
    return model
