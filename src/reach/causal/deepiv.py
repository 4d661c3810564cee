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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from reach.causal.response import (RCS_KNOT_QUANTILES, RESPONSES, ResponseNet, ResponsePredictor, SplineResponseNet,
                                   build_response, mlp, restricted_cubic_basis, spline_knots)
from reach.causal.training import (EarlyStopping, JsonConfig, Scaler, batches, bootstrap_split, check_inputs,
                                   holdout_split, json_default, optimiser_step, resolve_device, seeded_run)
from reach.ema import ParameterEMA

__all__ = ["DeepIVConfig", "DeepIVModel", "MixtureDensityNet", "ResponseNet", "SplineResponseNet", "RCS_KNOT_QUANTILES",
           "bootstrap_split", "fit_deepiv", "fit_direct", "fit_ensemble", "mixture_nll", "resolve_device",
           "restricted_cubic_basis", "sample_mixture", "spline_knots"]
log = logging.getLogger(__name__)

FORMAT = "reach.deepiv/1"

@dataclass
class DeepIVConfig(JsonConfig):
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



# ----------------------------------------------------------------------------------------------- networks
class MixtureDensityNet(nn.Module):
    """F(t | x, z): dense ReLU body on [x, z] -> log mixture weights, means, clipped log sds (standardised t)."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_components: int, dropout: float,
                 log_sigma_clip: tuple[float, float]):
        super().__init__()
        self.body, width = mlp(n_in, hidden, dropout)
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


# ----------------------------------------------------------------------------------------------- model
@dataclass
class DeepIVModel(ResponsePredictor):
    """A fitted Deep IV model: first stage F(t | x, z) and response h(t, x) with their scalers."""

    config: DeepIVConfig
    first_stage: MixtureDensityNet | None      # None for a direct (non-IV) regression, see fit_direct
    response: ResponseNet | SplineResponseNet
    scalers: dict[str, Scaler]
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    info: dict = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    causal_validation_rows: np.ndarray | None = None   # per held-out row of the fit (not saved)

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
        save_file(tensors, str(path), metadata={"reach_deepiv": json.dumps(meta, default=json_default)})

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
        scalers = {k: Scaler.from_json(v) for k, v in meta["scalers"].items()}
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


def _build_response(config: DeepIVConfig, n_x: int, t_standardised: np.ndarray | None
                    ) -> ResponseNet | SplineResponseNet:
    return build_response(config.response, n_x, config.hidden, config.dropout, config.response_knots, t_standardised)


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


def _stopper(module: nn.Module, opt: torch.optim.Optimizer, config: DeepIVConfig, min_epochs: int = 0) -> EarlyStopping:
    return EarlyStopping(module, opt, lr=config.lr, patience=config.patience, lr_decay=config.lr_decay,
                         lr_patience=config.lr_patience, min_epochs=min_epochs)


def fit_deepiv(t: np.ndarray, z: np.ndarray, x: np.ndarray, y: np.ndarray, config: DeepIVConfig | None = None,
               validation: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
               callback=None) -> DeepIVModel:
    """Fit Deep IV (Eqs. 4-5) on arrays t (n,), z (n,) or (n, k), x (n, d), y (n,).

    Early stopping in both stages uses held-out rows: `validation` = (t, z, x, y) if given (e.g. out-of-bag rows of a
    bootstrap resample, see `bootstrap_split`), else a random `config.val_share` of the rows. `callback(model)`, if
    given, is called after every second-stage epoch with the current model (in eval mode) and may return a dict of
    extra history columns (e.g. the error against a simulator's truth in benchmarks)."""
    config = config or DeepIVConfig()
    t, z, x, y = check_inputs(t, z, x, y)
    if validation is None:
        tr, va = holdout_split(t.size, config.val_share, config.seed)
        train, val = (t[tr], z[tr], x[tr], y[tr]), (t[va], z[va], x[va], y[va])
    else:
        train, val = (t, z, x, y), check_inputs(*validation)
        if val[2].shape[1] != x.shape[1] or val[1].shape[1] != z.shape[1]:
            raise ValueError("validation arrays have other x or z widths than the training arrays")
    device = resolve_device(config.device)
    with seeded_run(config.seed, device, config.threads):
        return _fit(train, val, config, device, callback)


def _fit(train, val, config: DeepIVConfig, device: torch.device, callback=None) -> DeepIVModel:
    t, z, x, y = train
    scalers = {"t": Scaler.fit(t), "y": Scaler.fit(y), "x": Scaler.fit(x), "z": Scaler.fit(z)}

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
    stopper, ema = _stopper(first, opt, config), ParameterEMA(first, config.ema)
    for epoch in range(1, (config.first_stage_max_epochs or config.max_epochs) + 1):
        tic = time.perf_counter()
        first.train()
        total, count = 0.0, 0
        for idx in batches(t_tr.shape[0], config.batch_size, gen):
            idx = idx.to(device)
            loss = mixture_nll(*first(xz_tr[idx]), t_tr[idx]).mean()
            total += optimiser_step(loss, opt, first, config.grad_clip, ema,
                                    f"NLL in Deep IV's first stage, epoch {epoch}") * idx.numel()
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
    stopper, ema = _stopper(response, opt, config, config.min_epochs), ParameterEMA(response, config.ema)
    first_rows = len(rows)
    for epoch in range(1, config.max_epochs + 1):
        tic = time.perf_counter()
        response.train()
        total, count = 0.0, 0
        for idx in batches(t_tr.shape[0], config.batch_size, gen):
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
            total += optimiser_step(loss, opt, response, config.grad_clip, ema,
                                    f"loss in Deep IV's second stage, epoch {epoch}") * idx.numel()
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
    with torch.no_grad():     # the kept weights' held-out loss per row (its mean is `best`): paired comparisons
        cv_rows = ((y_va - response.forward_many(val_draws, x_va).mean(dim=1)) ** 2).cpu().numpy().astype(float)
    best, best_epoch = stopper.best, stopper.best_epoch
    info |= {"second_stage_best_epoch": best_epoch, "second_stage_val_loss": best, "causal_validation_loss": best,
             "second_stage_epochs": len(rows) - first_rows, "seconds": time.perf_counter() - start}
    log.info("Deep IV second stage (%s loss, %d samples): best held-out loss %.4f (standardised y) at epoch %d; "
             "%.1f s on %s", config.loss, s, best, best_epoch, info["seconds"], device)
    history = pd.DataFrame(rows)
    model = DeepIVModel(config, first, response, scalers, history, info, device)
    model.causal_validation_rows = cv_rows
    return model


def fit_ensemble(t: np.ndarray, z: np.ndarray, x: np.ndarray, y: np.ndarray, config: DeepIVConfig | None = None,
                 n_members: int = 5, bootstrap: bool = True) -> list[DeepIVModel]:
    """n_members Deep IV fits; member k uses seed config.seed + k and, when bootstrap, a bootstrap resample of the
    non-held-out rows (see `bootstrap_split`); without bootstrap members differ by seed only."""
    config = config or DeepIVConfig()
    t, z, x, y = check_inputs(t, z, x, y)
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
    t, _, x, y = check_inputs(t, np.zeros(np.asarray(t).size), x, y)
    tr, va = holdout_split(t.size, config.val_share, config.seed)
    device = resolve_device(config.device)
    with seeded_run(config.seed, device, config.threads):
        scalers = {"t": Scaler.fit(t[tr]), "y": Scaler.fit(y[tr]), "x": Scaler.fit(x[tr]),
                   "z": Scaler(np.zeros(1), np.ones(1))}
        as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=device)  # noqa: E731
        tt, xx, yy = as_t(scalers["t"](t)), as_t(scalers["x"](x)), as_t(scalers["y"](y))
        tr_t, va_t = torch.as_tensor(tr, device=device), torch.as_tensor(va, device=device)
        response = _build_response(config, x.shape[1], scalers["t"](t[tr])).to(device)
        rw = config.weight_decay if config.response_weight_decay is None else config.response_weight_decay
        opt = torch.optim.Adam(response.parameters(), lr=config.lr, weight_decay=rw)
        gen = torch.Generator().manual_seed(int(config.seed) + 17)
        rows, ema = [], ParameterEMA(response, config.ema)
        stopper = _stopper(response, opt, config, config.min_epochs)
        start = time.perf_counter()
        for epoch in range(1, config.max_epochs + 1):
            response.train()
            total = 0.0
            for b in batches(tr.size, config.batch_size, gen):
                idx = tr_t[b.to(device)]
                loss = ((yy[idx] - response(tt[idx], xx[idx])) ** 2).mean()
                total += optimiser_step(loss, opt, response, config.grad_clip, ema,
                                        f"loss in direct regression, epoch {epoch}") * idx.numel()
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
    info = {"kind": "direct", "device": str(device), "best_epoch": best_epoch, "val_loss": best,
            "seconds": time.perf_counter() - start}
    return DeepIVModel(config, None, response, scalers, pd.DataFrame(rows), info, device)
