"""The response network h(t, x) shared by the causal estimators (Deep IV's second stage, the control-function IV).

dense  (Web Appendix C): a ReLU network on [t, x] with one output; t is one input among the ~270 of [t, x].
spline (varying coefficients, the idea of VCNet, Nie et al. 2021): a dense ReLU body on x alone gives the
       coefficients of a restricted (natural) cubic spline in t, h(t, x) = c_0(x) + c_1(x) t + sum_j c_{j+1}(x) B_j(t),
       with knots at Harrell's quantiles of the training t (linear beyond the outer knots), so the t-shape of h — the
       FEI curve — is a function of x by construction.
Both evaluate h at many t per row for the cost of one x-projection per row (Monte Carlo draws, the follower grid).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# Knot quantiles of a restricted cubic spline by number of knots (Harrell 2015, Regression Modeling Strategies,
# Table 2.3).
RCS_KNOT_QUANTILES: dict[int, tuple[float, ...]] = {
    3: (0.10, 0.50, 0.90),
    4: (0.05, 0.35, 0.65, 0.95),
    5: (0.05, 0.275, 0.50, 0.725, 0.95),
    6: (0.05, 0.23, 0.41, 0.59, 0.77, 0.95),
    7: (0.025, 0.1833, 0.3417, 0.50, 0.6583, 0.8167, 0.975),
}
RESPONSES = ("dense", "spline")


def mlp(n_in: int, hidden: tuple[int, ...], dropout: float) -> tuple[nn.Sequential, int]:
    """Dense ReLU body (Linear, ReLU, Dropout per hidden layer) and its output width."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(dropout)]
        n_in = width
    return nn.Sequential(*layers), n_in


class ResponseNet(nn.Module):
    """h(t, x): dense ReLU network on [t, x] with one output. The first layer is split into its t column and its x
    columns so that h at many t per row costs one x-projection per row (used by sampling and predict_grid)."""

    def __init__(self, n_x: int, hidden: tuple[int, ...], dropout: float):
        super().__init__()
        self.first = nn.Linear(1 + n_x, hidden[0])
        self.drop0 = nn.Dropout(dropout)
        rest, width = mlp(hidden[0], hidden[1:], dropout)
        self.rest = rest
        self.out = nn.Linear(width, 1)

    def forward_many(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """h at t (rows, m) for x (rows, d) -> (rows, m) on the standardised scale."""
        w = self.first.weight
        base = x @ w[:, 1:].T + self.first.bias                      # (rows, H)
        a = base[:, None, :] + t[..., None] * w[:, 0]                # (rows, m, H)
        a = self.drop0(torch.relu(a))
        return self.out(self.rest(a)).squeeze(-1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.forward_many(t[:, None], x)[:, 0]


def restricted_cubic_basis(t: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """[t, B_1(t), ..., B_{K-2}(t)] (shape t.shape + (K-1,)): with a constant, a basis of the natural cubic splines
    with knots k_1 < ... < k_K (cubic between knots, linear beyond k_1 and k_K; Harrell 2015, Section 2.4.5), each B_j
    divided by (k_K - k_1)^2 so that its scale is that of t."""
    k = knots
    n_knots = k.numel()
    a, b = k[n_knots - 2], k[n_knots - 1]

    def cube(u: torch.Tensor) -> torch.Tensor:
        return torch.clamp(u, min=0) ** 3

    cols = [t]
    for j in range(n_knots - 2):
        cols.append((cube(t - k[j]) - cube(t - a) * (b - k[j]) / (b - a) + cube(t - b) * (a - k[j]) / (b - a))
                    / (b - k[0]) ** 2)
    return torch.stack(cols, dim=-1)


class SplineResponseNet(nn.Module):
    """h(t, x) = c_0(x) + [t, B(t)] . c_{1:}(x): a dense ReLU body on x whose output layer gives the coefficients of
    a restricted cubic spline in t (see the module doc). The knots (standardised t) are a buffer, so they are saved
    with the weights."""

    def __init__(self, n_x: int, hidden: tuple[int, ...], dropout: float, knots: np.ndarray):
        super().__init__()
        knots = np.asarray(knots, float)
        if knots.ndim != 1 or knots.size < 3 or not np.all(np.diff(knots) > 0):
            raise ValueError(f"spline response knots must be >= 3 strictly increasing values, got {knots}")
        self.body, width = mlp(n_x, hidden, dropout)
        self.register_buffer("knots", torch.as_tensor(knots, dtype=torch.float32))
        self.out = nn.Linear(width, knots.size)   # c_0 and the coefficients of t, B_1 .. B_{K-2}

    def forward_many(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """h at t (rows, m) for x (rows, d) -> (rows, m) on the standardised scale."""
        c = self.out(self.body(x))                                   # (rows, K)
        basis = restricted_cubic_basis(t, self.knots)                # (rows, m, K - 1)
        return c[:, None, 0] + (basis * c[:, None, 1:]).sum(dim=-1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.forward_many(t[:, None], x)[:, 0]


def spline_knots(t_standardised: np.ndarray, n_knots: int) -> np.ndarray:
    """Knots of the spline response at Harrell's quantiles of the (standardised) training treatment."""
    knots = np.quantile(np.asarray(t_standardised, float), RCS_KNOT_QUANTILES[int(n_knots)])
    if not np.all(np.diff(knots) > 0):
        raise ValueError(f"the treatment has too few distinct values for {n_knots} spline knots (quantiles {knots})")
    return knots


def build_response(kind: str, n_x: int, hidden: tuple[int, ...], dropout: float, n_knots: int,
                   t_standardised: np.ndarray | None) -> ResponseNet | SplineResponseNet:
    """The response network of `kind`. A spline response takes its knots from the standardised training t; without
    it (load) it gets placeholders, which the saved state dict overwrites with the fitted knots."""
    if kind == "dense":
        return ResponseNet(n_x, hidden, dropout)
    if kind != "spline":
        raise ValueError(f"response must be one of {RESPONSES}, not {kind!r}")
    knots = (np.linspace(-1.0, 1.0, n_knots) if t_standardised is None else spline_knots(t_standardised, n_knots))
    return SplineResponseNet(n_x, hidden, dropout, knots)


class ResponsePredictor:
    """h(t, x) on y's original scale from a fitted response network; a model class provides `response`, `scalers`
    (t, x, y: reach.causal.training.Scaler) and `device`, and may set `h_offset` (standardised y scale, e.g. the
    control function's mean, see reach.causal.control_function)."""

    h_offset: float = 0.0

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=self.device)

    def _x(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        if x.ndim != 2 or x.shape[1] != self.scalers["x"].mean.size:
            raise ValueError(f"x must have shape (rows, {self.scalers['x'].mean.size}); got {x.shape}")
        return self.scalers["x"](x)

    @torch.no_grad()
    def predict(self, t: np.ndarray, x: np.ndarray, batch_rows: int = 65536) -> np.ndarray:
        """h(t, x) per row, on y's original scale."""
        t = np.asarray(t, float).reshape(-1)
        xs = self._x(x)
        if t.size != xs.shape[0]:
            raise ValueError(f"t has {t.size} rows but x has {xs.shape[0]}")
        ts = self.scalers["t"](t)
        self.response.eval()
        out = np.empty(t.size)
        for s in range(0, t.size, batch_rows):
            out[s:s + batch_rows] = self.response(self._tensor(ts[s:s + batch_rows]),
                                                  self._tensor(xs[s:s + batch_rows])).cpu().numpy()
        return self.scalers["y"].inverse(out + self.h_offset)

    @torch.no_grad()
    def predict_grid(self, t_grid: np.ndarray, x: np.ndarray, batch_cells: int = 250_000) -> np.ndarray:
        """h(t_g, x_i) for every row i and every grid value t_g -> (n_rows, n_grid), on y's original scale."""
        grid = np.asarray(t_grid, float).reshape(-1)
        xs = self._x(x)
        n = xs.shape[0]
        tg = self._tensor(self.scalers["t"](grid))
        self.response.eval()
        out = np.empty((n, grid.size))
        step = max(1, batch_cells // max(1, grid.size))
        for s in range(0, n, step):
            xb = self._tensor(xs[s:s + step])
            out[s:s + step] = self.response.forward_many(tg.expand(xb.shape[0], -1), xb).cpu().numpy()
        return self.scalers["y"].inverse(out + self.h_offset)

