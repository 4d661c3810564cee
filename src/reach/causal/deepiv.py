"""Deep IV (Hartford et al. 2017) in torch, as used in paper 1, Section 3.2 (Eqs. 1-5) and Web Appendix C.

Stage 1 (Eq. 5's F_eta): F(t | x, z) is a mixture of `n_components` Gaussians whose weights, means and (log)
standard deviations come from a dense ReLU network (128-64-32 by default) on [x, z]; trained by maximum likelihood
with early stopping on the held-out negative log likelihood.

Stage 2 (Eqs. 4-5): the response h(t, x) is a dense ReLU network (128-64-32-1) on [t, x] (response="dense", Web
Appendix C), or, with response="spline", a varying-coefficient network: the same dense body on x alone gives the
coefficients of a restricted (natural) cubic spline in t, h(t, x) = c_0(x) + c_1(x) t + sum_j c_{j+1}(x) B_j(t), with
`response_knots` knots at Harrell's quantiles of the training t (linear beyond the outer knots). In the dense net t is
one input among the ~270 of [t, x], and on the synthetic worlds its fits stay nearly linear in t whatever x
(benchmarks/fei_identification.py); the spline head makes the t-shape of h, hence the FEI curve, a function of x by
construction (the varying-coefficient idea of VCNet, Nie et al. 2021). The integral over F in Eq. 5 is
replaced by Monte Carlo samples t ~ F_eta*(t | x, z) of the frozen first stage:
  * loss="unbiased" (default; Hartford et al. 2017, Section 3): two independent sets of `n_samples` draws give
    a = mean h(t^(1), x), b = mean h(t^(2), x) and the loss (y - a)(y - b), whose gradient is an unbiased estimate of
    the gradient of Eq. 5's (y - E_F h)^2;
  * loss="biased": one set of `n_samples` draws and (y - a)^2 (biased by Var(a) for finite n_samples; the bias
    vanishes as n_samples grows).
Early stopping of stage 2 uses the held-out Monte Carlo estimate of Eq. 5, mean (y - mean_m h(t_m, x))^2 with
`val_samples` fixed draws per row (the same draws every epoch, so epochs are comparable and runs reproducible).

t, y, every column of x and z are standardised with the training rows' mean and sd (stored with the model); h is
reported on y's original scale. NaN guards: log sigma is clipped to `log_sigma_clip`, mixture weights are a
log-softmax, gradients are clipped, and every epoch logs the minimum sigma, the mean largest mixture weight, the
mean smallest log weight and the effective number of components (exp entropy) in `history`; a non-finite loss
raises FloatingPointError naming the stage and epoch.

Hyper-parameters. Web Appendix C: 10 components, 128-64-32 / 128-64-32-1, ReLU, dropout 0.2, batches of 256,
100 epochs with early stopping, learning rate 1e-5 — kept except for the schedule. The learning rate 1e-5 goes with
~2,000 Adam steps per epoch on 518,303 videos; on a few thousand rows (about 20 steps per epoch) it would not move
the weights. Tuned on the demand simulation (benchmarks/deepiv_demand.py, n = 5,000): lr 3e-3, halved after 8
epochs without held-out improvement, at most 300 epochs per stage with patience 20, L2 1e-4 on F and 1e-3 on h
(Hartford et al.'s code uses the same two penalties), and a Polyak (exponential moving) average of the weights
for validation and prediction. The average matters: the second-stage held-out loss improves slowly (by ~0.03 on
a standardised scale over 100+ epochs) and under raw SGD noise early stopping fired after ~15 epochs with 2-3x the
attainable error; for the same reason the second stage runs at least `min_epochs` (100) epochs before early
stopping or rate decay may act (its held-out loss plateaus for tens of epochs before h's slower directions are
learned). For paper scale set lr=1e-5 (and e.g. max_epochs=100, min_epochs=10) in the config. Weight decay is an L2
penalty in Adam's gradient (Keras-style l2).

Determinism: on CPU a fit is a function of (data, config) — all randomness (initialisation, dropout, shuffling,
validation split, Monte Carlo draws) is seeded from config.seed inside a forked torch RNG, so the caller's global
RNG state is left untouched. CUDA is used when present (device="auto"); CUDA kernels may be nondeterministic.

Saving: one safetensors file holds both networks' weights and, in its header metadata (`__metadata__`, string to
string), a JSON document with the config, scalers, history and best epochs — no pickle anywhere. (An extra .json
file next to the weights would collide with the rule outputs that use member-<k>.json for run metadata.)
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from reach.ema import ParameterEMA

log = logging.getLogger(__name__)

FORMAT = "reach.deepiv/1"

# Knot quantiles of a restricted cubic spline by number of knots (Harrell 2015, Regression Modeling Strategies,
# Table 2.3).
RCS_KNOT_QUANTILES: dict[int, tuple[float, ...]] = {
    3: (0.10, 0.50, 0.90),
    4: (0.05, 0.35, 0.65, 0.95),
    5: (0.05, 0.275, 0.50, 0.725, 0.95),
    6: (0.05, 0.23, 0.41, 0.59, 0.77, 0.95),
    7: (0.025, 0.1833, 0.3417, 0.50, 0.6583, 0.8167, 0.975),
}


@dataclass
class DeepIVConfig:
    """Deep IV hyper-parameters (defaults follow Web Appendix C except lr; see the module docstring)."""

    n_components: int = 10                    # Gaussians in the first-stage mixture F(t | x, z)
    hidden: tuple[int, ...] = (128, 64, 32)   # hidden layers of both networks (h adds the output unit)
    dropout: float = 0.2                      # Web Appendix C
    lr: float = 3e-3                          # Adam learning rate (paper: 1e-5 at 518K rows; see module doc)
    weight_decay: float = 1e-4                # L2 penalty of the first stage (and of h if the next is None)
    response_weight_decay: float | None = 1e-3  # L2 penalty of h (Hartford et al.'s code: 1e-3 for h, 1e-4 for F)
    batch_size: int = 256                     # Web Appendix C
    max_epochs: int = 300                     # per stage, an upper bound: early stopping ends most fits sooner
    patience: int = 20                        # epochs without a held-out improvement before stopping
    lr_decay: float = 0.5                     # learning rate factor after lr_patience epochs without improvement
    lr_patience: int = 8                      # (1.0 disables the decay; the rate never falls below lr / 1000)
    min_epochs: int = 100                     # second stage: no early stop or rate decay before this epoch
    ema: float = 0.99                         # per-step decay of the weight average used for validation and
                                              # prediction (Polyak averaging; 0 disables)
    response: str = "dense"                   # "dense" (Web Appendix C) or "spline" (varying-coefficient, module doc)
    response_knots: int = 5                   # knots of the spline response (3-7, at Harrell's quantiles of t)
    n_samples: int = 1                        # draws from F per row per set in the second-stage loss
    loss: str = "unbiased"                    # "unbiased" (two independent sample sets) or "biased"
    val_share: float = 0.1                    # held-out share of rows for early stopping (both stages)
    val_samples: int = 32                     # fixed draws per held-out row for the stage-2 validation loss
    seed: int = 0
    device: str = "auto"                      # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    log_sigma_clip: tuple[float, float] = (-5.0, 3.0)  # on the standardised t scale
    grad_clip: float = 10.0                   # max gradient norm per step
    first_stage_max_epochs: int | None = None  # defaults to max_epochs
    threads: int | None = None                # torch intra-op threads for the fit (None: leave as is)

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)
        self.log_sigma_clip = tuple(float(v) for v in self.log_sigma_clip)
        if self.loss not in ("unbiased", "biased"):
            raise ValueError(f"DeepIVConfig.loss must be 'unbiased' or 'biased', not {self.loss!r}")
        if not 0.0 < self.val_share < 1.0:
            raise ValueError(f"DeepIVConfig.val_share must lie in (0, 1), not {self.val_share}")
        if self.n_components < 1 or self.n_samples < 1 or self.batch_size < 1 or not self.hidden:
            raise ValueError(f"invalid DeepIVConfig: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"DeepIVConfig.dropout must lie in [0, 1), not {self.dropout}")
        if self.response not in ("dense", "spline"):
            raise ValueError(f"DeepIVConfig.response must be 'dense' or 'spline', not {self.response!r}")
        if self.response_knots not in RCS_KNOT_QUANTILES:
            raise ValueError(f"DeepIVConfig.response_knots must be one of {sorted(RCS_KNOT_QUANTILES)}, "
                             f"not {self.response_knots}")

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict) -> "DeepIVConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown DeepIVConfig keys {sorted(unknown)}")
        return cls(**d)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ----------------------------------------------------------------------------------------------- networks
def _mlp(n_in: int, hidden: tuple[int, ...], dropout: float) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(dropout)]
        n_in = width
    return nn.Sequential(*layers), n_in


class MixtureDensityNet(nn.Module):
    """F(t | x, z): dense ReLU body on [x, z] -> log mixture weights, means, clipped log sds (standardised t)."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_components: int, dropout: float,
                 log_sigma_clip: tuple[float, float]):
        super().__init__()
        self.body, width = _mlp(n_in, hidden, dropout)
        self.head = nn.Linear(width, 3 * n_components)
        self.n_components = n_components
        self.log_sigma_clip = log_sigma_clip

    def forward(self, xz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.head(self.body(xz))
        logits, mu, log_sigma = out.split(self.n_components, dim=-1)
        log_w = torch.log_softmax(logits, dim=-1)
        log_sigma = log_sigma.clamp(*self.log_sigma_clip)  # NaN guard: sigma bounded away from 0 and inf
        return log_w, mu, log_sigma


def mixture_nll(log_w: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per-row negative log likelihood of t (n,) under the Gaussian mixture (n, K)."""
    zt = (t[:, None] - mu) * torch.exp(-log_sigma)
    comp = -0.5 * zt ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)
    return -torch.logsumexp(log_w + comp, dim=-1)


def sample_mixture(log_w: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, n: int,
                   generator: torch.Generator) -> torch.Tensor:
    """n draws per row (rows, n) from the mixtures (rows, K); draws made on the CPU generator for reproducibility."""
    w = torch.exp(log_w).detach().to("cpu", torch.float64)
    comp = torch.multinomial(w, n, replacement=True, generator=generator)
    eps = torch.randn(comp.shape, generator=generator, dtype=torch.float32)
    comp, eps = comp.to(mu.device), eps.to(mu.device)
    return torch.gather(mu, 1, comp) + torch.exp(torch.gather(log_sigma, 1, comp)) * eps


class ResponseNet(nn.Module):
    """h(t, x): dense ReLU network on [t, x] with one output. The first layer is split into its t column and its x
    columns so that h at many t per row costs one x-projection per row (used by sampling and predict_grid)."""

    def __init__(self, n_x: int, hidden: tuple[int, ...], dropout: float):
        super().__init__()
        self.first = nn.Linear(1 + n_x, hidden[0])
        self.drop0 = nn.Dropout(dropout)
        rest, width = _mlp(hidden[0], hidden[1:], dropout)
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
    a restricted cubic spline in t (response="spline", see the module doc). The knots (standardised t) are a buffer,
    so they are saved with the weights."""

    def __init__(self, n_x: int, hidden: tuple[int, ...], dropout: float, knots: np.ndarray):
        super().__init__()
        knots = np.asarray(knots, float)
        if knots.ndim != 1 or knots.size < 3 or not np.all(np.diff(knots) > 0):
            raise ValueError(f"spline response knots must be >= 3 strictly increasing values, got {knots}")
        self.body, width = _mlp(n_x, hidden, dropout)
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


# ----------------------------------------------------------------------------------------------- scalers
@dataclass
class _Scaler:
    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def fit(cls, a: np.ndarray) -> "_Scaler":
        a = np.asarray(a, float)
        mean, sd = a.mean(axis=0), a.std(axis=0)
        sd = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
        return cls(np.atleast_1d(mean), np.atleast_1d(sd))

    def __call__(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, float)
        if a.ndim == 1:
            return (a - self.mean[0]) / self.sd[0]
        return (a - self.mean) / self.sd

    def inverse(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a, float) * self.sd[0] + self.mean[0]

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "sd": self.sd.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "_Scaler":
        return cls(np.asarray(d["mean"], float), np.asarray(d["sd"], float))


def _check_inputs(t, z, x, y) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    t = np.asarray(t, float).reshape(-1)
    n = t.size
    z = np.asarray(z, float)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2:
        raise ValueError(f"z must be 1-D or 2-D; got shape {z.shape}")
    x = np.asarray(x, float)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (rows, columns); got shape {x.shape}")
    arrays = {"t": t, "z": z, "x": x}
    if y is not None:
        y = np.asarray(y, float).reshape(-1)
        arrays["y"] = y
    for name, a in arrays.items():
        if a.shape[0] != n:
            raise ValueError(f"{name} has {a.shape[0]} rows but t has {n}")
        bad = ~np.isfinite(a) if a.ndim == 1 else ~np.isfinite(a).all(axis=1)
        if bad.any():
            raise ValueError(f"{name} is missing or infinite in {int(bad.sum())} rows, e.g. row {int(np.argmax(bad))}")
    return t, z, x, y


# ----------------------------------------------------------------------------------------------- model
@dataclass
class DeepIVModel:
    """A fitted Deep IV model: first stage F(t | x, z) and response h(t, x) with their scalers."""

    config: DeepIVConfig
    first_stage: MixtureDensityNet | None      # None for a direct (non-IV) regression, see fit_direct
    response: ResponseNet | SplineResponseNet
    scalers: dict[str, _Scaler]
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    info: dict = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    # ---------------------------------------------------------------- prediction
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
        return self.scalers["y"].inverse(out)

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
        return self.scalers["y"].inverse(out)

    @torch.no_grad()
    def first_stage_params(self, x: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
        """Mixture weights, means and sds of F(t | x, z) per row, on t's original scale."""
        log_w, mu, log_sigma = self._first_stage(x, z)
        ts = self.scalers["t"]
        return {"weights": torch.exp(log_w).cpu().numpy().astype(float),
                "means": mu.cpu().numpy() * ts.sd[0] + ts.mean[0],
                "sds": torch.exp(log_sigma).cpu().numpy() * ts.sd[0]}

    def _first_stage(self, x, z):
        if self.first_stage is None:
            raise ValueError("this model is a direct (non-IV) regression and has no first stage")
        xs = self._x(x)
        z = np.asarray(z, float).reshape(xs.shape[0], -1)
        zs = self.scalers["z"](z)
        self.first_stage.eval()
        return self.first_stage(self._tensor(np.column_stack([xs, zs])))

    @torch.no_grad()
    def first_stage_sample(self, x: np.ndarray, z: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
        """n draws t ~ F(t | x, z) per row -> (n_rows, n) on t's original scale."""
        log_w, mu, log_sigma = self._first_stage(x, z)
        g = torch.Generator().manual_seed(int(seed))
        draws = sample_mixture(log_w, mu, log_sigma, int(n), g).cpu().numpy().astype(float)
        return self.scalers["t"].inverse(draws)

    @torch.no_grad()
    def first_stage_nll(self, t: np.ndarray, x: np.ndarray, z: np.ndarray) -> float:
        """Mean negative log likelihood of t under F(t | x, z), on t's original scale."""
        log_w, mu, log_sigma = self._first_stage(x, z)
        ts = self._tensor(self.scalers["t"](np.asarray(t, float).reshape(-1)))
        return float(mixture_nll(log_w, mu, log_sigma, ts).mean()) + float(np.log(self.scalers["t"].sd[0]))

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Weights (safetensors) with the config, scalers, history and info as JSON in the header metadata."""
        from safetensors.torch import save_file

        first = {} if self.first_stage is None else self.first_stage.state_dict()
        tensors = {f"first_stage.{k}": v.detach().cpu().contiguous() for k, v in first.items()}
        tensors |= {f"response.{k}": v.detach().cpu().contiguous() for k, v in self.response.state_dict().items()}
        meta = {"format": FORMAT, "config": self.config.to_json(),
                "scalers": {k: s.to_json() for k, s in self.scalers.items()},
                "history": json.loads(self.history.to_json(orient="split", index=False)) if len(self.history) else None,
                "info": self.info}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path), metadata={"reach_deepiv": json.dumps(meta, default=_json_default)})

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "DeepIVModel":
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"Deep IV weights {path} do not exist")
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("reach_deepiv")
        if raw is None:
            raise ValueError(f"{path} is not a reach Deep IV model (no 'reach_deepiv' metadata)")
        meta = json.loads(raw)
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: unsupported format {meta.get('format')!r} (expected {FORMAT})")
        config = DeepIVConfig.from_json(meta["config"])
        scalers = {k: _Scaler.from_json(v) for k, v in meta["scalers"].items()}
        dev = resolve_device(device)
        first, response = _build_networks(config, scalers["x"].mean.size, scalers["z"].mean.size)
        tensors = load_file(str(path))
        first_tensors = {k[len("first_stage."):]: v for k, v in tensors.items() if k.startswith("first_stage.")}
        if first_tensors:
            first.load_state_dict(first_tensors)
            first.to(dev).eval()
        else:
            first = None
        response.load_state_dict({k[len("response."):]: v for k, v in tensors.items() if k.startswith("response.")})
        response.to(dev).eval()
        h = meta.get("history")
        history = pd.DataFrame(h["data"], columns=h["columns"]) if h else pd.DataFrame()
        return cls(config, first, response, scalers, history, meta.get("info", {}), dev)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _build_response(config: DeepIVConfig, n_x: int, t_standardised: np.ndarray | None
                    ) -> ResponseNet | SplineResponseNet:
    """The response network of config.response. A spline response takes its knots from the standardised training t;
    without it (load) it gets placeholders, which the saved state dict overwrites with the fitted knots."""
    if config.response == "dense":
        return ResponseNet(n_x, config.hidden, config.dropout)
    knots = (np.linspace(-1.0, 1.0, config.response_knots) if t_standardised is None
             else spline_knots(t_standardised, config.response_knots))
    return SplineResponseNet(n_x, config.hidden, config.dropout, knots)


def _build_networks(config: DeepIVConfig, n_x: int, n_z: int, t_standardised: np.ndarray | None = None
                    ) -> tuple[MixtureDensityNet, ResponseNet | SplineResponseNet]:
    first = MixtureDensityNet(n_x + n_z, config.hidden, config.n_components, config.dropout, config.log_sigma_clip)
    return first, _build_response(config, n_x, t_standardised)


# ----------------------------------------------------------------------------------------------- training
def _mixture_diagnostics(log_w: torch.Tensor, log_sigma: torch.Tensor) -> dict[str, float]:
    w = torch.exp(log_w)
    entropy = -(w * log_w).sum(dim=-1)
    return {"min_sigma": float(torch.exp(log_sigma).min()),
            "sigma_at_clip": float((log_sigma <= log_sigma.new_tensor(-4.999)).float().mean()),
            "max_weight": float(w.max(dim=-1).values.mean()),
            "min_log_weight": float(log_w.min(dim=-1).values.mean()),
            "effective_components": float(torch.exp(entropy).mean())}


class _EarlyStopping:
    """Keeps the best weights by held-out loss, halves the learning rate (factor lr_decay) after lr_patience epochs
    without improvement, and stops after `patience` epochs without improvement."""

    def __init__(self, module: nn.Module, opt: torch.optim.Optimizer, config: "DeepIVConfig", min_epochs: int = 0):
        self.module, self.opt, self.config, self.min_epochs = module, opt, config, int(min_epochs)
        self.best, self.best_state, self.best_epoch, self.waited, self.since_decay = math.inf, None, 0, 0, 0

    @property
    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def step(self, val_loss: float, epoch: int) -> tuple[bool, bool]:
        """(improved, stop)."""
        improved = val_loss < self.best - 1e-6
        if improved:
            self.best, self.best_epoch, self.waited, self.since_decay = val_loss, epoch, 0, 0
            self.best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
            return True, False
        if epoch < self.min_epochs:        # neither decay nor stop before min_epochs (plateaus early in stage 2)
            return False, False
        self.waited += 1
        self.since_decay += 1
        c = self.config
        if c.lr_decay < 1.0 and self.since_decay >= c.lr_patience and self.lr * c.lr_decay >= c.lr * 1e-3:
            for group in self.opt.param_groups:
                group["lr"] *= c.lr_decay
            self.since_decay = 0
        return False, self.waited >= c.patience

    def restore(self) -> None:
        self.module.load_state_dict(self.best_state)
        self.module.eval()


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for s in range(0, n, batch_size):
        yield order[s:s + batch_size]


def fit_deepiv(t: np.ndarray, z: np.ndarray, x: np.ndarray, y: np.ndarray, config: DeepIVConfig | None = None,
               validation: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
               callback=None) -> DeepIVModel:
    """Fit Deep IV (Eqs. 4-5) on arrays t (n,), z (n,) or (n, k), x (n, d), y (n,).

    Early stopping in both stages uses held-out rows: `validation` = (t, z, x, y) if given (e.g. out-of-bag rows of a
    bootstrap resample, see `bootstrap_split`), else a random `config.val_share` of the rows. `callback(model)`, if
    given, is called after every second-stage epoch with the current model (in eval mode) and may return a dict of
    extra history columns (e.g. the error against a simulator's truth in benchmarks)."""
    config = config or DeepIVConfig()
    t, z, x, y = _check_inputs(t, z, x, y)
    if validation is None:
        rng = np.random.default_rng([config.seed, 1])
        perm = rng.permutation(t.size)
        n_val = max(1, int(round(config.val_share * t.size)))
        if t.size - n_val < 2:
            raise ValueError(f"too few rows ({t.size}) to hold out {n_val} for early stopping")
        va, tr = perm[:n_val], perm[n_val:]
        train, val = (t[tr], z[tr], x[tr], y[tr]), (t[va], z[va], x[va], y[va])
    else:
        train, val = (t, z, x, y), _check_inputs(*validation)
        if val[2].shape[1] != x.shape[1] or val[1].shape[1] != z.shape[1]:
            raise ValueError("validation arrays have other x or z widths than the training arrays")
    device = resolve_device(config.device)
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(int(config.threads))
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(config.seed)
            return _fit(train, val, config, device, callback)
    finally:
        torch.set_num_threads(old_threads)


def _fit(train, val, config: DeepIVConfig, device: torch.device, callback=None) -> DeepIVModel:
    t, z, x, y = train
    scalers = {"t": _Scaler.fit(t), "y": _Scaler.fit(y), "x": _Scaler.fit(x), "z": _Scaler.fit(z)}

    def tensors(arrs):
        tt, zz, xx, yy = arrs
        xs = scalers["x"](xx)
        as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=device)  # noqa: E731
        return (as_t(scalers["t"](tt)), as_t(np.column_stack([xs, scalers["z"](zz)])), as_t(xs),
                as_t(scalers["y"](yy)))

    t_tr, xz_tr, x_tr, y_tr = tensors(train)
    t_va, xz_va, x_va, y_va = tensors(val)
    gen = torch.Generator().manual_seed(int(config.seed) + 17)  # shuffling and Monte Carlo draws (CPU)
    first, response = _build_networks(config, x.shape[1], z.shape[1], scalers["t"](t))
    first.to(device)
    response.to(device)
    rows: list[dict] = []
    start = time.perf_counter()
    info = {"device": str(device), "n_train": int(t.size), "n_val": int(val[0].size)}

    # ---- stage 1: mixture density network, maximum likelihood (Eq. 5's F_eta)
    opt = torch.optim.Adam(first.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    stopper, ema = _EarlyStopping(first, opt, config), ParameterEMA(first, config.ema)
    for epoch in range(1, (config.first_stage_max_epochs or config.max_epochs) + 1):
        tic = time.perf_counter()
        first.train()
        total, count = 0.0, 0
        for idx in _batches(t_tr.shape[0], config.batch_size, gen):
            idx = idx.to(device)
            loss = mixture_nll(*first(xz_tr[idx]), t_tr[idx]).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"Deep IV first stage: non-finite NLL in epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(first.parameters(), config.grad_clip)
            opt.step()
            ema.update()
            total += float(loss.detach()) * idx.numel()
            count += idx.numel()
        first.eval()
        with ema.applied():
            with torch.no_grad():
                log_w, mu, log_sigma = first(xz_va)
                val_loss = float(mixture_nll(log_w, mu, log_sigma, t_va).mean())
                diag = _mixture_diagnostics(log_w, log_sigma)
            if not math.isfinite(val_loss):
                raise FloatingPointError(f"Deep IV first stage: non-finite held-out NLL in epoch {epoch}")
            lr = stopper.lr
            improved, stop = stopper.step(val_loss, epoch)
        rows.append({"stage": "first", "epoch": epoch, "train_loss": total / count, "val_loss": val_loss,
                     **diag, "improved": improved, "lr": lr, "seconds": time.perf_counter() - tic})
        if stop:
            break
    stopper.restore()
    best, best_epoch = stopper.best, stopper.best_epoch
    info |= {"first_stage_best_epoch": best_epoch, "first_stage_val_nll": best}
    log.info("Deep IV first stage: best held-out NLL %.4f (standardised t) at epoch %d of %d; min sigma %.3g",
             best, best_epoch, rows[-1]["epoch"], rows[best_epoch - 1]["min_sigma"])

    # ---- stage 2: response h by Monte Carlo integration over the frozen F (Eqs. 4-5)
    with torch.no_grad():
        mix_tr = first(xz_tr)
        mix_va = first(xz_va)
        val_draws = sample_mixture(*mix_va, config.val_samples, torch.Generator().manual_seed(int(config.seed) + 29))
    rw = config.weight_decay if config.response_weight_decay is None else config.response_weight_decay
    opt = torch.optim.Adam(response.parameters(), lr=config.lr, weight_decay=rw)
    s = config.n_samples
    stopper, ema = _EarlyStopping(response, opt, config, config.min_epochs), ParameterEMA(response, config.ema)
    first_rows = len(rows)
    for epoch in range(1, config.max_epochs + 1):
        tic = time.perf_counter()
        response.train()
        total, count = 0.0, 0
        for idx in _batches(t_tr.shape[0], config.batch_size, gen):
            mix = tuple(m[idx.to(device)] for m in mix_tr)
            xb, yb = x_tr[idx.to(device)], y_tr[idx.to(device)]
            if config.loss == "unbiased":
                draws = sample_mixture(*mix, 2 * s, gen)
                h = response.forward_many(draws, xb)
                a, b = h[:, :s].mean(dim=1), h[:, s:].mean(dim=1)
                loss = ((yb - a) * (yb - b)).mean()
            else:
                draws = sample_mixture(*mix, s, gen)
                loss = ((yb - response.forward_many(draws, xb).mean(dim=1)) ** 2).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"Deep IV second stage: non-finite loss in epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(response.parameters(), config.grad_clip)
            opt.step()
            ema.update()
            total += float(loss.detach()) * idx.numel()
            count += idx.numel()
        response.eval()
        with ema.applied():
            with torch.no_grad():
                val_loss = float(((y_va - response.forward_many(val_draws, x_va).mean(dim=1)) ** 2).mean())
            if not math.isfinite(val_loss):
                raise FloatingPointError(f"Deep IV second stage: non-finite held-out loss in epoch {epoch}")
            lr = stopper.lr
            improved, stop = stopper.step(val_loss, epoch)
            rows.append({"stage": "second", "epoch": epoch, "train_loss": total / count, "val_loss": val_loss,
                         "improved": improved, "lr": lr, "seconds": time.perf_counter() - tic})
            if callback is not None:
                rows[-1] |= callback(DeepIVModel(config, first, response, scalers, device=device)) or {}
        if stop:
            break
    stopper.restore()
    best, best_epoch = stopper.best, stopper.best_epoch
    info |= {"second_stage_best_epoch": best_epoch, "second_stage_val_loss": best,
             "second_stage_epochs": len(rows) - first_rows, "seconds": time.perf_counter() - start}
    log.info("Deep IV second stage (%s loss, %d samples): best held-out loss %.4f (standardised y) at epoch %d; "
             "%.1f s on %s", config.loss, s, best, best_epoch, info["seconds"], device)
    history = pd.DataFrame(rows)
    return DeepIVModel(config, first, response, scalers, history, info, device)


def bootstrap_split(n: int, val_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) for one bootstrap member: a random val_share of the n rows is held out and the
    training rows are a bootstrap resample (with replacement, same size) of the others — so no held-out row is also
    a training row (duplicates of training rows in the validation set would make early stopping optimistic)."""
    perm = rng.permutation(n)
    n_val = max(1, int(round(val_share * n)))
    val, pool = perm[:n_val], perm[n_val:]
    return pool[rng.integers(0, pool.size, pool.size)], np.sort(val)


def fit_ensemble(t: np.ndarray, z: np.ndarray, x: np.ndarray, y: np.ndarray, config: DeepIVConfig | None = None,
                 n_members: int = 5, bootstrap: bool = True) -> list[DeepIVModel]:
    """n_members Deep IV fits; member k uses seed config.seed + k and, when bootstrap, a bootstrap resample of the
    non-held-out rows (see `bootstrap_split`); without bootstrap members differ by seed only."""
    config = config or DeepIVConfig()
    t, z, x, y = _check_inputs(t, z, x, y)
    members = []
    for k in range(int(n_members)):
        cfg = DeepIVConfig.from_json({**config.to_json(), "seed": int(config.seed) + k})
        if bootstrap:
            tr, va = bootstrap_split(t.size, cfg.val_share, np.random.default_rng([cfg.seed, 3]))
            model = fit_deepiv(t[tr], z[tr], x[tr], y[tr], cfg, validation=(t[va], z[va], x[va], y[va]))
            model.info["bootstrap"] = True
        else:
            model = fit_deepiv(t, z, x, y, cfg)
            model.info["bootstrap"] = False
        model.info["member"] = k
        members.append(model)
    return members


def fit_direct(t: np.ndarray, x: np.ndarray, y: np.ndarray, config: DeepIVConfig | None = None) -> DeepIVModel:
    """Direct (non-IV) regression with the same response network: h fitted to the observed (t, x) by MSE, with the
    same scaling, optimiser, dropout and early stopping as Deep IV's second stage. It estimates E[y | t, x], which is
    biased for h(t, x) under confounding — the yardstick Deep IV must beat. The returned model has no first stage."""
    config = config or DeepIVConfig()
    t, _, x, y = _check_inputs(t, np.zeros(np.asarray(t).size), x, y)
    rng = np.random.default_rng([config.seed, 1])
    perm = rng.permutation(t.size)
    n_val = max(1, int(round(config.val_share * t.size)))
    va, tr = perm[:n_val], perm[n_val:]
    device = resolve_device(config.device)
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(int(config.threads))
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(config.seed)
            scalers = {"t": _Scaler.fit(t[tr]), "y": _Scaler.fit(y[tr]), "x": _Scaler.fit(x[tr]),
                       "z": _Scaler(np.zeros(1), np.ones(1))}
            as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=device)  # noqa: E731
            tt, xx, yy = as_t(scalers["t"](t)), as_t(scalers["x"](x)), as_t(scalers["y"](y))
            tr_t, va_t = torch.as_tensor(tr, device=device), torch.as_tensor(va, device=device)
            response = _build_response(config, x.shape[1], scalers["t"](t[tr])).to(device)
            rw = config.weight_decay if config.response_weight_decay is None else config.response_weight_decay
            opt = torch.optim.Adam(response.parameters(), lr=config.lr, weight_decay=rw)
            gen = torch.Generator().manual_seed(int(config.seed) + 17)
            rows, ema = [], ParameterEMA(response, config.ema)
            stopper = _EarlyStopping(response, opt, config, config.min_epochs)
            start = time.perf_counter()
            for epoch in range(1, config.max_epochs + 1):
                response.train()
                total = 0.0
                for b in _batches(tr.size, config.batch_size, gen):
                    idx = tr_t[b.to(device)]
                    loss = ((yy[idx] - response(tt[idx], xx[idx])) ** 2).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(response.parameters(), config.grad_clip)
                    opt.step()
                    ema.update()
                    total += float(loss.detach()) * idx.numel()
                response.eval()
                with ema.applied(), torch.no_grad():
                    val_loss = float(((yy[va_t] - response(tt[va_t], xx[va_t])) ** 2).mean())
                    lr = stopper.lr
                    improved, stop = stopper.step(val_loss, epoch)
                rows.append({"stage": "direct", "epoch": epoch, "train_loss": total / tr.size, "val_loss": val_loss,
                             "improved": improved, "lr": lr})
                if stop:
                    break
            stopper.restore()
            best, best_epoch = stopper.best, stopper.best_epoch
    finally:
        torch.set_num_threads(old_threads)
    info = {"kind": "direct", "device": str(device), "best_epoch": best_epoch, "val_loss": best,
            "seconds": time.perf_counter() - start}
    return DeepIVModel(config, None, response, scalers, pd.DataFrame(rows), info, device)
