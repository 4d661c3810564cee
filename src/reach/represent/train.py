"""Training the VS-VAE (Web Appendices B and F), saving it to safetensors, and encoding r (the posterior mean).

Optimiser: Adam with the L2 regularisation of Web Appendix B (weight penalty 0.05) applied as decoupled weight
decay (AdamW: every step shrinks the weight matrices by lr * weight_decay; biases are not decayed). The coupled,
Keras-style penalty 0.05 * sum(w^2) inside Adam's gradient collapsed the image branch on the default world (its
encoder weights decayed to zero before the data gradient grew: image loss stayed at the no-information level),
so the paper's number is kept with the decoupled form. The learned log noise sds (learn_noise) get their own rate,
`noise_lr` (default: lr): Adam moves a parameter by about its rate per step, so at lr they trail the residuals for
tens of epochs. Optional Polyak averaging (`ema` > 0, reach.ema): the averaged weights are the ones validated, kept
and saved. Early stopping: after every epoch
the validation split's Eq. 16 loss is computed with a fixed noise draw (the same generator state every epoch, so
epochs are comparable); training stops after `patience` epochs without a new best and the best epoch's weights
are kept.

Determinism: initialisation, shuffling and the reparameterisation noise come from torch generators seeded from
`seed` (the global torch RNG is forked, not touched), so on CPU a fit is a function of (data, config, threads).
Mixed precision (bfloat16 autocast) is used only on CUDA and only when `amp` is set; the loss terms are always
computed in float32.

Resuming: with `checkpoint` set, the full state (weights, optimiser, best weights, history, generator states) is
written there after every epoch (atomically, torch.save of tensors and plain containers, read back with
weights_only=True) together with a fingerprint of the data and config; a later call with the same fingerprint
continues from it and gives the same result as an uninterrupted run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from reach.ema import ParameterEMA
from reach.represent.data import TEXT_SOURCES, Scaler, VSVAEData, batch_arrays
from reach.represent.model import VSVAE, Widths, layer_widths, loss_terms, n_parameters

log = logging.getLogger(__name__)

FORMAT = "reach.vsvae/1"
SPLITS = ("train", "val", "test")
TERMS = ("loss", "text", "image", "audio", "editing", "kl")


@dataclass
class VSVAEConfig:
    """Hyper-parameters. Defaults follow Web Appendix B except where the workflow config says otherwise."""

    latent_size: int = 256
    width_scale: float = 1.0
    min_width: int = 16
    editing_width: int | None = None   # width of the editing encoder (None: Web Appendix B's 16, scaled and floored)
    audio_width: int | None = None     # width of the audio encoder (None: Web Appendix B's 64, scaled and floored)
    embedding_activation: str = "relu"  # of the audio and editing encoders' dense layer; "linear": no ReLU there
    lr: float = 1e-5
    weight_decay: float = 0.05
    batch_size: int = 32
    max_epochs: int = 300
    patience: int = 10
    max_words: int = 32
    max_frames: int = 8
    vocab_min_count: int = 2
    vocab_size: int = 5000
    amp: bool = True
    learn_noise: bool = False   # True: a learned noise sd per feature column instead of Eq. 16's unit variance
    noise_lr: float | None = None  # Adam rate of the learned log noise sds (None: lr)
    ema: float = 0.0            # per-step decay of the weight average used for validation and the kept weights (0: off)
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "VSVAEConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown VS-VAE settings: {sorted(unknown)}")
        return cls(**d)


@dataclass
class FitResult:
    model: VSVAE
    history: pd.DataFrame
    best_epoch: int
    stopped_early: bool
    finished: bool
    seconds: float
    device: str
    amp: bool


def choose_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def to_tensors(data: VSVAEData, rows: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.ascontiguousarray(v)).to(device) for k, v in batch_arrays(data, rows).items()}


def _take(t: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v[idx] for k, v in t.items()}


def build_model(dims: dict, cfg: VSVAEConfig, widths: Widths | None = None) -> VSVAE:
    widths = widths or layer_widths(dims, cfg.latent_size, cfg.width_scale, cfg.min_width, cfg.editing_width,
                                    cfg.audio_width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return VSVAE(dims, widths, learn_noise=cfg.learn_noise, embedding_activation=cfg.embedding_activation)


def _optimizer(model: VSVAE, cfg: VSVAEConfig) -> torch.optim.AdamW:
    noise = {id(p) for p in model.log_noise.parameters()} if model.log_noise is not None else set()
    weights = [p for p in model.parameters() if p.ndim > 1]
    others = [p for p in model.parameters() if p.ndim <= 1 and id(p) not in noise]
    groups = [{"params": weights, "weight_decay": cfg.weight_decay}, {"params": others, "weight_decay": 0.0}]
    if noise:
        groups.append({"params": [p for p in model.parameters() if id(p) in noise], "weight_decay": 0.0,
                       "lr": cfg.lr if cfg.noise_lr is None else cfg.noise_lr})
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _autocast(device: torch.device, amp: bool):
    if device.type == "cuda" and amp:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def evaluate_loss(model: VSVAE, t: dict[str, torch.Tensor], batch_size: int, device: torch.device, amp: bool,
                  seed: int) -> dict[str, float]:
    """Eq. 16 terms averaged over all rows of `t`, with noise from a generator seeded by `seed`."""
    model.eval()
    n = len(t["audio"])
    g = torch.Generator().manual_seed(seed)
    sums = {k: 0.0 for k in TERMS}
    with torch.no_grad():
        for start in range(0, n, batch_size):
            b = _take(t, torch.arange(start, min(n, start + batch_size), device=device))
            with _autocast(device, amp):
                out, mu, ls = model(b, sample=True, generator=g)
            terms = loss_terms(out, b, mu, ls, model.log_noise)
            m = len(b["audio"])
            for k in TERMS:
                sums[k] += float(terms[k]) * m
    return {k: v / max(n, 1) for k, v in sums.items()}


def fingerprint(data: VSVAEData, cfg: VSVAEConfig) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    h.update(json.dumps(data.dims, sort_keys=True).encode())
    h.update("\n".join(data.video_id.tolist()).encode())
    h.update("\n".join(data.split.tolist()).encode())
    # every input array in full (text ids and lengths too): a checkpoint of other inputs must never be resumed
    arrays = [data.frames, data.n_frames, data.audio, data.editing, data.image_vector]
    for s in sorted(data.text_ids):
        arrays += [data.text_ids[s], data.text_lengths[s]]
    for arr in arrays:
        h.update(str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:24]


def fit(data: VSVAEData, cfg: VSVAEConfig, device: str = "auto", checkpoint: str | Path | None = None,
        stop_after: int | None = None, progress: bool = False) -> FitResult:
    """Train on the "train" rows with early stopping on the "val" rows. `stop_after` ends the call after that many
    epochs in total (to test resuming; the result then has finished=False)."""
    dev = choose_device(device)
    amp = bool(cfg.amp and dev.type == "cuda")
    train_rows, val_rows = data.rows("train"), data.rows("val")
    if len(val_rows) == 0:
        raise ValueError("the validation split is empty: early stopping needs validation videos")
    model = build_model(data.dims, cfg).to(dev)
    opt = _optimizer(model, cfg)
    ema = ParameterEMA(model, cfg.ema)
    g_shuffle = torch.Generator().manual_seed(cfg.seed + 1)
    g_noise = torch.Generator().manual_seed(cfg.seed + 2)
    history: list[dict] = []
    best_val, best_epoch, bad, epoch = float("inf"), 0, 0, 0
    best_state = copy.deepcopy(model.state_dict())
    fp = fingerprint(data, cfg)
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            best_state = state["best_state"]
            best_val, best_epoch, bad, epoch = (float(state["best_val"]), int(state["best_epoch"]),
                                                int(state["bad"]), int(state["epoch"]))
            history = list(state["history"])
            ema.load_state(state["ema"])
            g_shuffle.set_state(state["g_shuffle"])
            g_noise.set_state(state["g_noise"])
            log.info("resumed from %s after epoch %d (best %d, val loss %.4f)", ckpt, epoch, best_epoch, best_val)
        else:
            log.warning("ignoring checkpoint %s: it belongs to other data or settings", ckpt)
    log.info("VS-VAE on %s (mixed precision: %s): %d parameters, widths %s; %d train / %d val videos", dev, amp,
             n_parameters(model), model.widths.to_dict(), len(train_rows), len(val_rows))
    t_train = to_tensors(data, train_rows, dev)
    t_val = to_tensors(data, val_rows, dev)
    n = len(train_rows)
    t0 = time.perf_counter()
    stopped_early = bad >= cfg.patience
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_epochs, initial=epoch, desc="VS-VAE epochs")
    while epoch < cfg.max_epochs and not stopped_early:
        if stop_after is not None and epoch >= stop_after:
            break
        te = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=g_shuffle).to(dev)
        sums = {k: 0.0 for k in TERMS}
        for start in range(0, n, cfg.batch_size):
            idx = perm[start: start + cfg.batch_size]
            b = _take(t_train, idx)
            with _autocast(dev, amp):
                out, mu, ls = model(b, sample=True, generator=g_noise)
            terms = loss_terms(out, b, mu, ls, model.log_noise)
            if not torch.isfinite(terms["loss"]):
                raise FloatingPointError(f"VS-VAE loss is not finite at epoch {epoch + 1} "
                                         f"(terms {({k: float(v) for k, v in terms.items()})})")
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            ema.update()
            for k in TERMS:
                sums[k] += float(terms[k].detach()) * len(idx)
        epoch += 1
        with ema.applied():
            val = evaluate_loss(model, t_val, max(cfg.batch_size, 256), dev, amp, cfg.seed + 3)
        row = {"epoch": epoch, **{f"train_{k}": v / n for k, v in sums.items()},
               **{f"val_{k}": v for k, v in val.items()}, "seconds": time.perf_counter() - te}
        improved = val["loss"] < best_val
        if improved:
            best_val, best_epoch, bad = val["loss"], epoch, 0
            with ema.applied():
                best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
        row["best"] = improved
        history.append(row)
        log.info("epoch %d: train %.3f val %.3f (text %.2f image %.2f audio %.2f editing %.2f kl %.2f) %.1fs%s",
                 epoch, row["train_loss"], val["loss"], val["text"], val["image"], val["audio"], val["editing"],
                 val["kl"], row["seconds"], " *" if improved else "")
        stopped_early = bad >= cfg.patience
        if ckpt is not None:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt.with_name(ckpt.name + ".tmp")
            torch.save({"fingerprint": fp, "model": model.state_dict(), "optimizer": opt.state_dict(),
                        "best_state": best_state, "best_val": best_val, "best_epoch": best_epoch, "bad": bad,
                        "epoch": epoch, "history": history, "ema": ema.state(), "g_shuffle": g_shuffle.get_state(),
                        "g_noise": g_noise.get_state()}, tmp)
            tmp.replace(ckpt)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    finished = stopped_early or epoch >= cfg.max_epochs
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(model=model, history=pd.DataFrame(history), best_epoch=best_epoch, stopped_early=stopped_early,
                     finished=finished, seconds=time.perf_counter() - t0, device=str(dev), amp=amp)


# -- saving ----------------------------------------------------------------------------------------------------
def save_weights(path: str | Path, model: VSVAE, data: VSVAEData, cfg: VSVAEConfig, extra: dict | None = None) -> None:
    """Weights, scalers and the split (uint8 codes in videos.parquet order) as tensors; config, widths, dims,
    vocabulary and column names as JSON in the safetensors header metadata. No pickle."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for name, sc in data.scalers.items():
        tensors[f"scaler.{name}.mean"] = torch.as_tensor(sc.mean)
        tensors[f"scaler.{name}.sd"] = torch.as_tensor(sc.sd)
    codes = np.array([SPLITS.index(s) for s in data.split], dtype=np.uint8)
    tensors["split"] = torch.as_tensor(codes)
    meta = {"format": FORMAT, "config": json.dumps(asdict(cfg)), "widths": json.dumps(model.widths.to_dict()),
            "dims": json.dumps(model.dims), "vocab": json.dumps(data.vocab), "columns": json.dumps(data.columns),
            "video_ids_sha256": hashlib.sha256("\n".join(data.video_id.tolist()).encode()).hexdigest(),
            "extra": json.dumps(extra or {}, default=str)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


@dataclass
class Saved:
    model: VSVAE
    cfg: VSVAEConfig
    vocab: list[str]
    scalers: dict[str, Scaler]
    split: np.ndarray
    video_ids_sha256: str
    columns: dict
    extra: dict


def load_weights(path: str | Path) -> Saved:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a VS-VAE weights file (format {meta.get('format')!r}, expected {FORMAT!r})")
    tensors = load_file(str(path))
    cfg = VSVAEConfig.from_dict(json.loads(meta["config"]))
    dims = json.loads(meta["dims"])
    model = VSVAE(dims, Widths.from_dict(json.loads(meta["widths"])), learn_noise=cfg.learn_noise,
                  embedding_activation=cfg.embedding_activation)
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    model.eval()
    scalers = {}
    for k in tensors:
        if k.startswith("scaler.") and k.endswith(".mean"):
            name = k[len("scaler."): -len(".mean")]
            scalers[name] = Scaler(tensors[k].numpy(), tensors[f"scaler.{name}.sd"].numpy())
    split = np.array(SPLITS, dtype=object)[tensors["split"].numpy().astype(int)].astype(str)
    return Saved(model=model, cfg=cfg, vocab=json.loads(meta["vocab"]), scalers=scalers, split=split,
                 video_ids_sha256=meta["video_ids_sha256"], columns=json.loads(meta.get("columns", "{}")),
                 extra=json.loads(meta.get("extra", "{}")))


def check_videos(saved: Saved, video_ids, path: str = "weights") -> None:
    digest = hashlib.sha256("\n".join(np.asarray(video_ids).astype(str).tolist()).encode()).hexdigest()
    if digest != saved.video_ids_sha256:
        raise ValueError(f"{path} was trained on another list of videos than videos.parquet (re-run train_vsvae)")


# -- encoding --------------------------------------------------------------------------------------------------
def posterior(model: VSVAE, data: VSVAEData, rows: np.ndarray | None = None, batch_size: int = 512,
              device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(mu, log sigma) of q(r | x) for `rows` (all videos by default), float32 on CPU."""
    dev = choose_device(device)
    model = model.to(dev).eval()
    rows = np.arange(data.n) if rows is None else np.asarray(rows)
    mus, lss = [], []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            b = to_tensors(data, rows[start: start + batch_size], dev)
            mu, ls = model.encode(b)
            mus.append(mu.float().cpu().numpy())
            lss.append(ls.float().cpu().numpy())
    d = model.widths.latent
    return (np.concatenate(mus) if mus else np.zeros((0, d), np.float32),
            np.concatenate(lss) if lss else np.zeros((0, d), np.float32))


def reconstruct(model: VSVAE, data: VSVAEData, rows: np.ndarray, batch_size: int = 512,
                device: str = "auto") -> dict[str, np.ndarray]:
    """Decoder outputs at r = mu (the posterior mean) for `rows`: text logits' argmax ids per source, frames,
    image vector, audio, editing (standardised units)."""
    dev = choose_device(device)
    model = model.to(dev).eval()
    parts: dict[str, list] = {}
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            b = to_tensors(data, rows[start: start + batch_size], dev)
            out, _, _ = model(b, sample=False)
            for s in TEXT_SOURCES:
                parts.setdefault(f"{s}_ids", []).append(out[f"{s}_logits"].argmax(-1).cpu().numpy())
            for k in ("frames", "image_vector", "audio", "editing"):
                parts.setdefault(k, []).append(out[k].float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def r_table(video_ids, split, mu: np.ndarray) -> pd.DataFrame:
    """The r.parquet contract: video_id, split, r_0..r_{d-1} (posterior mean), in the given (videos.parquet) order."""
    df = pd.DataFrame({"video_id": np.asarray(video_ids).astype(str), "split": np.asarray(split).astype(str)})
    r = pd.DataFrame(mu.astype(np.float64), columns=[f"r_{k}" for k in range(mu.shape[1])])
    return pd.concat([df, r], axis=1)
