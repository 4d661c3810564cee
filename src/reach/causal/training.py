"""Training pieces shared by the causal estimators (Deep IV, control-function IV): input checks, standardisation,
seeded runs that leave the caller's RNG alone, mini-batches, early stopping with learning-rate decay, and the
bootstrap split of the ensemble members. The weight average (Polyak) lives in reach.ema, shared with the VS-VAE."""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn


class JsonConfig:
    """to_json / from_json for the estimators' config dataclasses (tuples as lists; unknown keys refused)."""

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict):
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}")
        return cls(**d)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def seeded_run(seed: int, device: torch.device, threads: int | None = None):
    """torch seeded with `seed` inside a forked RNG (the caller's global RNG state is left untouched) and, when
    given, `threads` intra-op threads for the duration of the block."""
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(int(seed))
            yield
    finally:
        torch.set_num_threads(old_threads)


@dataclass
class Scaler:
    """Column-wise standardisation with the training rows' mean and sd (sd 1 for constant columns)."""

    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def fit(cls, a: np.ndarray) -> "Scaler":
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
    def from_json(cls, d: dict) -> "Scaler":
        return cls(np.asarray(d["mean"], float), np.asarray(d["sd"], float))


def check_inputs(t, z, x, y) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """t (n,), z (n,) or (n, k), x (n, d), y (n,) or None as float arrays; raises on shape mismatches and on missing
    or infinite values, naming the array and a row."""
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


def holdout_split(n: int, val_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows): a seeded random val_share of the n rows is held out for early stopping."""
    perm = np.random.default_rng([int(seed), 1]).permutation(n)
    n_val = max(1, int(round(val_share * n)))
    if n - n_val < 2:
        raise ValueError(f"too few rows ({n}) to hold out {n_val} for early stopping")
    return perm[n_val:], perm[:n_val]


def bootstrap_split(n: int, val_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) for one bootstrap member: a random val_share of the n rows is held out and the
    training rows are a bootstrap resample (with replacement, same size) of the others — so no held-out row is also
    a training row (duplicates of training rows in the validation set would make early stopping optimistic)."""
    perm = rng.permutation(n)
    n_val = max(1, int(round(val_share * n)))
    val, pool = perm[:n_val], perm[n_val:]
    return pool[rng.integers(0, pool.size, pool.size)], np.sort(val)


def batches(n: int, batch_size: int, generator: torch.Generator):
    """Row indices of one epoch's shuffled mini-batches."""
    order = torch.randperm(n, generator=generator)
    for s in range(0, n, batch_size):
        yield order[s:s + batch_size]


def optimiser_step(loss: torch.Tensor, optimiser: torch.optim.Optimizer, module: nn.Module, grad_clip: float,
                   ema=None, what: str = "loss") -> float:
    """One mini-batch step: refuse a non-finite loss (FloatingPointError naming `what`), backpropagate, clip the
    gradient norm of `module` to `grad_clip`, step, update the weight average `ema` (a reach.ema.ParameterEMA or
    None). Returns the batch's loss as a float."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite {what}")
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
    optimiser.step()
    if ema is not None:
        ema.update()
    return float(loss.detach())


class EarlyStopping:
    """Keeps the best weights by held-out loss, multiplies the learning rate by `lr_decay` after `lr_patience` epochs
    without improvement (never below lr / 1000), and stops after `patience` epochs without improvement; neither
    before `min_epochs`."""

    def __init__(self, module: nn.Module, opt: torch.optim.Optimizer, *, lr: float, patience: int, lr_decay: float,
                 lr_patience: int, min_epochs: int = 0):
        self.module, self.opt, self.min_epochs = module, opt, int(min_epochs)
        self.base_lr, self.patience, self.lr_decay, self.lr_patience = float(lr), int(patience), float(lr_decay), \
            int(lr_patience)
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
        if self.lr_decay < 1.0 and self.since_decay >= self.lr_patience and \
                self.lr * self.lr_decay >= self.base_lr * 1e-3:
            for group in self.opt.param_groups:
                group["lr"] *= self.lr_decay
            self.since_decay = 0
        return False, self.waited >= self.patience

    def restore(self) -> None:
        self.module.load_state_dict(self.best_state)
        self.module.eval()


def json_default(o):
    """json.dumps fallback for numpy scalars and arrays."""
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
