r"""The GPU rules measured on one GPU (issue 20): image-feature throughput, the VS-VAE at the paper's widths, Deep IV
at the paper's 518,303 rows; one JSON per step, merged into one file. Run through benchmarks/gpu.sh, which gives
every step its own time budget (a hard `timeout`) and also runs the `cuda` tests.

    python benchmarks/gpu_bench.py env|image|vsvae|deepiv --out PART.json [--budget S] [--dry-run]
    python benchmarks/gpu_bench.py merge --parts DIR --out gpu-bench.json

--dry-run rehearses a step on the CPU at tiny sizes (whatever devices are present): every code path runs, no figure
in its output is a measurement of anything (the JSON says so in `label`). Without --dry-run a step uses CUDA and
refuses to run without it.

Figures and how they are obtained (the same in the JSON's `method` fields):
* time: wall clock around work followed by torch.cuda.synchronize(); warm-up repetitions first; median of the timed
  repetitions (each at least a few milliseconds of GPU work).
* FLOPs: torch.utils.flop_counter.FlopCounterMode (matrix products and convolutions, 2 FLOPs per multiply-add;
  element-wise work is not counted), run on the CPU with oneDNN off (on CUDA, cuDNN's fused LSTM is one op the
  counter does not see; on the CPU the LSTM decomposes into counted matrix products). Checked against a second
  count: the library's own convolution/linear hook count for EfficientNet-Lite0 and the published 19.6 G
  multiply-adds for VGG-19 at 224 px.
* bytes: a floor, the fewest bytes a step must move through device memory (inputs read once, outputs written once,
  weights read once per batch; training adds each parameter's gradient and AdamW state traffic, 4 B x 8 per
  parameter per step), not a measured count.
* ratios: achieved FLOP/s over the H200's bf16 dense matrix rate (790 TFLOP/s) and floor bytes/s over its
  device-copy bandwidth (4.3 TB/s), both as measured on this workplace's H200s (KINDS.md, 2026-10/11); the env step
  re-measures both ceilings on the machine at hand and records them beside the fixed ones.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
FORMAT = "reach.gpu_bench/1"
PAPER_VIDEOS = 518_303
LIMITS = {"bf16_dense_flop_s": 790e12, "copy_byte_s": 4.3e12,
          "source": "H200 as measured in this workplace (.library/device/KINDS.md: 8192^3 bf16 matmul 769-798 "
                    "TFLOP/s on random data; device-to-device copy ~4.3 TB/s counting bytes read + written)"}
DRY_LABEL = "CPU DRY RUN at tiny sizes: rehearses the code paths; not a measurement"
VGG19_PARAMETERS = 143_667_240      # Keras VGG19(include_top=True) / torchvision vgg19: the paper's network
VGG19_MACS_224 = 19.6e9             # Simonyan & Zisserman (2015) Table 4 / torchvision's 19.63 GFLOPS (multiply-adds)


# ----------------------------------------------------------------------------------------------- helpers
def pick_device(dry: bool) -> torch.device:
    if dry:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device (run with --dry-run to rehearse on the CPU)")
    return torch.device("cuda")


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev: torch.device, budget_s: float, warmup: int = 2, min_reps: int = 3, max_reps: int = 200
          ) -> list[float]:
    """Seconds of each timed call of fn (after `warmup` untimed ones) until budget_s is spent (at least min_reps)."""
    for _ in range(warmup):
        fn()
    sync(dev)
    times: list[float] = []
    end = time.perf_counter() + budget_s
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() < end):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        times.append(time.perf_counter() - t0)
    return times


def count_flops(fn) -> float:
    """FLOPs of fn() by torch.utils.flop_counter (matrix products and convolutions), oneDNN off so that CPU LSTMs
    decompose into counted matrix products."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def ratios(flop_s: float | None, byte_s: float | None) -> dict:
    return {"share_bf16_peak": None if flop_s is None else flop_s / LIMITS["bf16_dense_flop_s"],
            "share_copy_bw": None if byte_s is None else byte_s / LIMITS["copy_byte_s"]}


def peak_mem(dev: torch.device) -> int | None:
    return int(torch.cuda.max_memory_allocated()) if dev.type == "cuda" else None


def reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def median(xs: list[float]) -> float:
    return float(np.median(np.asarray(xs, float)))


T0 = time.perf_counter()
PARTIAL: dict = {}      # the step's record so far and its path (main sets them): saved after each part


def save_partial(part: dict) -> None:
    """Write what the step has measured so far, so a step killed at its hard limit still leaves its figures."""
    if PARTIAL.get("path"):
        rec = {**PARTIAL["rec"], **part, "status": "partial", "seconds": time.perf_counter() - T0}
        Path(PARTIAL["path"]).write_text(json.dumps(rec, indent=1, default=str))


def say(msg: str) -> None:
    """Progress to the log (gpu.sh collects stdout), with seconds since the step started."""
    print(f"  [{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


def sh(cmd: list[str]) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# ----------------------------------------------------------------------------------------------- env
def step_env(args, dev: torch.device) -> dict:
    out: dict = {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
                 "cpu_count": os.cpu_count(), "torch": torch.__version__, "cuda_runtime": torch.version.cuda,
                 "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                 "device": str(dev), "cuda_available": torch.cuda.is_available(),
                 "tf32": {"cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                          "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                          "float32_matmul_precision": torch.get_float32_matmul_precision()}}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out["gpu"] = {"name": torch.cuda.get_device_name(0), "capability": list(torch.cuda.get_device_capability(0)),
                      "multiprocessors": p.multi_processor_count, "memory_bytes": int(p.total_memory)}
    out["nvidia_smi_L"] = sh(["nvidia-smi", "-L"])
    out["nvidia_smi_query"] = sh(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,"
                                  "clocks.sm,power.limit", "--format=csv"])
    mods = {}
    for name in ("efficientnet_pytorch", "snakemake", "av", "cv2", "pandas", "pyarrow", "scipy", "safetensors",
                 "filelock", "pytest"):
        try:
            m = __import__(name)
            mods[name] = getattr(m, "__version__", "present")
        except Exception as e:  # noqa: BLE001 (any import failure is a fact to record)
            mods[name] = f"missing ({type(e).__name__})"
    out["modules"] = mods
    # the two ceilings on the machine at hand (METHOD.md): a large bf16 matrix product and a device-to-device copy
    n = 256 if args.dry_run else 8192
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    t = timed(lambda: a @ b, dev, budget_s=0.5 if args.dry_run else 2.0, warmup=3, min_reps=10, max_reps=50)
    out["measured_bf16_matmul"] = {"n": n, "reps": len(t), "seconds_median": median(t),
                                   "flop_s": 2 * n ** 3 / median(t), "data": "random normal"}
    del a, b
    nbytes = (8 << 20) if args.dry_run else (4 << 30)
    src = torch.empty(nbytes, dtype=torch.uint8, device=dev).random_()
    dst = torch.empty_like(src)
    t = timed(lambda: dst.copy_(src), dev, budget_s=0.5 if args.dry_run else 2.0, warmup=3, min_reps=10, max_reps=50)
    out["measured_copy"] = {"bytes": nbytes, "reps": len(t), "seconds_median": median(t),
                            "byte_s_read_plus_written": 2 * nbytes / median(t)}
    return out


# ----------------------------------------------------------------------------------------------- image
VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


class VGG19(nn.Module):
    """VGG-19 of the paper's shape (Keras `VGG19(include_top=True)`: 16 3x3 convolutions, fc1 and fc2 of 4,096 with
    ReLU, 1,000 classes), random weights. The adaptive pool is the identity at 224 px (a 7x7 map) and lets the dry
    run use small frames."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((7, 7))
        self.fc1, self.fc2, self.predictions = nn.Linear(512 * 49, 4096), nn.Linear(4096, 4096), nn.Linear(4096, 1000)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.pool(self.features(x)).flatten(1)
        emb = torch.relu(self.fc2(torch.relu(self.fc1(h))))          # fc2: the paper's 4,096-d frame vector
        return emb, torch.softmax(self.predictions(emb), dim=1)


class Lite0Head(nn.Module):
    """reach.features.image's EfficientNet-Lite0 as its loader runs it: pooled 1,280-d features and class
    probabilities."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.net._avg_pooling(self.net.extract_features(x)).flatten(1)
        return feats, torch.softmax(self.net._fc(feats), dim=1)


def _preprocess(name: str, frames_u8: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """uint8 NCHW RGB frames -> the model's input (the library's preprocessing for each model)."""
    from reach.features.image import LITE0_MEAN, LITE0_STD

    if name == "efficientnet-lite0":
        x = (frames_u8.to(dtype) - LITE0_MEAN) / LITE0_STD
    else:   # VGG: RGB -> BGR, ImageNet channel means subtracted (as load_vgg19_h5 does)
        mean_bgr = torch.tensor([103.939, 116.779, 123.68], device=frames_u8.device, dtype=dtype).view(1, 3, 1, 1)
        x = frames_u8.flip(1).to(dtype) - mean_bgr
    return x.contiguous(memory_format=torch.channels_last)


def _image_flops(name: str, model: nn.Module, px: int) -> tuple[float, str]:
    """FLOPs of one frame's forward pass: on the meta device (shapes only), else on the CPU."""
    x = torch.zeros(1, 3, px, px)
    for where in ("meta", "cpu"):
        try:
            m = copy.deepcopy(model).float().to(where).eval()
            with torch.no_grad():
                return count_flops(lambda: m(x.to(where))), f"FlopCounterMode on {where}, batch 1"
        except Exception:  # noqa: BLE001 (meta kernels missing: count on the CPU instead)
            continue
    raise RuntimeError(f"could not count the FLOPs of {name}")


def step_image(args, dev: torch.device) -> dict:
    from reach.features.image import build_efficientnet_lite0, lite0_flops, load_efficientnet_lite0

    px = 64 if args.dry_run else 224
    batch = 2 if args.dry_run else 256
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    models = {"efficientnet-lite0": Lite0Head(build_efficientnet_lite0()).eval(), "vgg19": VGG19().eval()}
    per = args.budget * 0.13            # 4 model x dtype runs + the library path, with room for set-up
    out: dict = {"px": px, "batch": batch, "channels_last": True, "cudnn_benchmark": True,
                 "tf32": {"cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                          "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32},
                 "bf16_method": "weights and activations in bfloat16 (model.to(bfloat16)), inference_mode",
                 "runs": [], "flops": {}}
    for name, model in models.items():
        flops, how = _image_flops(name, model, px)
        n_par = sum(p.numel() for p in model.parameters())
        check = {"parameters": n_par}
        if name == "efficientnet-lite0":
            check["library_hook_flops"] = lite0_flops(px, px)      # an independent count (conv/linear hooks)
        else:
            check["published_flops_224"] = 2 * VGG19_MACS_224
            check["published_parameters"] = VGG19_PARAMETERS
        if px != 224:      # the check against the published figure is made at 224 px whatever the run's size
            check["per_frame_224"] = _image_flops(name, model, 224)[0]
        out["flops"][name] = {"per_frame": flops, "method": how, **check}
        say(f"{name}: {flops / 1e9:.3g} GFLOP per frame at {px} px ({how})")
        for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            m = copy.deepcopy(model).to(dev, dtype).to(memory_format=torch.channels_last).eval()
            g = torch.Generator(device=dev).manual_seed(1)
            frames = torch.randint(0, 256, (batch, 3, px, px), device=dev, dtype=torch.uint8, generator=g)
            reset_peak(dev)

            def run():
                with torch.inference_mode():
                    emb, probs = m(_preprocess(name, frames, dtype))
                return emb, probs

            emb, probs = run()
            finite = bool(torch.isfinite(emb.float()).all() and torch.isfinite(probs.float()).all())
            t = timed(run, dev, per)
            sec = median(t)
            fps = batch / sec
            n_weights_bytes = sum(p.numel() * p.element_size() for p in m.parameters())
            bytes_frame = 3 * px * px + (emb.shape[1] + probs.shape[1]) * emb.element_size() + n_weights_bytes / batch
            out["runs"].append({"model": name, "dtype": dtype_name, "path": "forward on device-resident uint8 frames",
                                "reps": len(t), "seconds_per_batch_median": sec, "frames_per_s": fps,
                                "flops_per_frame": flops, "achieved_flop_s": flops * fps,
                                "bytes_per_frame_floor": bytes_frame, "floor_byte_s": bytes_frame * fps,
                                **ratios(flops * fps, bytes_frame * fps), "peak_mem_bytes": peak_mem(dev),
                                "outputs_finite": finite, "embed_dim": int(emb.shape[1])})
            say(f"{name} {dtype_name}: {fps:,.1f} frames/s over {len(t)} batches of {batch}")
            save_partial(out)
            del m, frames
    # the library's own path (what rule image_features runs): host uint8 frames -> ImageModel.run -> numpy, float32
    with tempfile.TemporaryDirectory() as tmp:
        w = Path(tmp) / "lite0-random.pt"
        torch.save(models["efficientnet-lite0"].net.state_dict(), w)
        lib = load_efficientnet_lite0(weights_path=w, device=str(dev))
        n_frames = 4 if args.dry_run else 1024
        frames_np = np.random.default_rng(2).integers(0, 256, (n_frames, px, px, 3), dtype=np.uint8)
        lib_batch = 2 if args.dry_run else 64       # config features.image_batch
        reset_peak(dev)
        t = timed(lambda: lib.run(frames_np, batch_size=lib_batch), dev, per, warmup=1, min_reps=2, max_reps=20)
        say(f"library EfficientNet-Lite0 run(): {n_frames / median(t):,.1f} frames/s")
        flops = out["flops"]["efficientnet-lite0"]["per_frame"]
        fps = n_frames / median(t)
        bytes_frame = 3 * px * px + (1280 + 1000) * 4
        out["runs"].append({"model": "efficientnet-lite0", "dtype": "fp32",
                            "path": f"library ImageModel.run (host uint8 frames in, numpy out, batches of {lib_batch})",
                            "reps": len(t), "seconds_per_call_median": median(t), "frames_per_call": n_frames,
                            "frames_per_s": fps, "flops_per_frame": flops, "achieved_flop_s": flops * fps,
                            "bytes_per_frame_floor": bytes_frame, "floor_byte_s": bytes_frame * fps,
                            **ratios(flops * fps, bytes_frame * fps), "peak_mem_bytes": peak_mem(dev)})
    return out


# ----------------------------------------------------------------------------------------------- VS-VAE
PAPER_DIMS = {"word_dim": 300, "frame_dim": 4096, "image_vector_dim": 1000 + 2089, "audio_dim": 543,
              "editing_dim": 157, "vocab_size": 5000, "max_words": 32, "max_frames": 8, "objects_dim": 1000}
TINY_DIMS = {"word_dim": 8, "frame_dim": 16, "image_vector_dim": 12, "audio_dim": 10, "editing_dim": 6,
             "vocab_size": 50, "max_words": 6, "max_frames": 3, "objects_dim": 8}


class DeviceFeatureSet:
    """A synthetic VS-VAE feature set held on the device: z-scored features N(0, 1) in bfloat16, masks as bool
    (10% of editing entries missing), word ids int16, lengths int64; `batch(idx)` casts to what fit() holds
    (float32 features and masks, int64 ids), so a step sees the dtypes of the library's training loop."""

    FLOAT = ("frames", "image_vector", "audio", "editing")

    def __init__(self, dims: dict, n: int, dev: torch.device, seed: int = 0):
        from reach.represent.data import TEXT_SOURCES

        g = torch.Generator(device=dev).manual_seed(seed)
        L, T = dims["max_words"], dims["max_frames"]
        bf = torch.bfloat16

        def randn(*shape):
            return torch.randn(*shape, generator=g, device=dev, dtype=bf)

        def randint(lo, hi, shape, dtype=torch.int64):
            return torch.randint(lo, hi, shape, generator=g, device=dev, dtype=dtype)

        self.t: dict[str, torch.Tensor] = {
            "frames": randn(n, T, dims["frame_dim"]), "n_frames": randint(1, T + 1, (n,)),
            "image_vector": randn(n, dims["image_vector_dim"]), "audio": randn(n, dims["audio_dim"]),
            "editing": randn(n, dims["editing_dim"])}
        self.t["image_vector_mask"] = torch.ones(n, dims["image_vector_dim"], device=dev, dtype=torch.bool)
        self.t["audio_mask"] = torch.ones(n, dims["audio_dim"], device=dev, dtype=torch.bool)
        self.t["editing_mask"] = torch.rand(n, dims["editing_dim"], generator=g, device=dev) > 0.1
        for s in TEXT_SOURCES:
            self.t[f"{s}_vectors"] = randn(n, L, dims["word_dim"])
            self.t[f"{s}_ids"] = randint(2, dims["vocab_size"], (n, L), torch.int16)
            self.t[f"{s}_lengths"] = randint(0, L + 1, (n,))
        self.n = n
        self.nbytes = sum(v.numel() * v.element_size() for v in self.t.values())

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in self.t.items():
            x = v[idx]
            if x.dtype in (torch.bfloat16, torch.bool):
                x = x.float()
            elif x.dtype == torch.int16:
                x = x.long()
            out[k] = x
        return out


def _fp32_bytes_per_row(dims: dict) -> int:
    """Bytes per video of the arrays fit() moves to the device (batch_arrays: float32 features and masks, int64
    ids and lengths)."""
    L, T = dims["max_words"], dims["max_frames"]
    floats = (T * dims["frame_dim"] + 2 * (dims["image_vector_dim"] + dims["audio_dim"] + dims["editing_dim"])
              + 3 * L * dims["word_dim"])
    ints = 1 + 3 * (L + 1)
    return 4 * floats + 8 * ints


def _vsvae_data_host(dims: dict, n: int, seed: int = 0):
    """A VSVAEData of n synthetic videos (host numpy) for one real reach.represent.train.fit epoch."""
    from reach.represent.data import TEXT_SOURCES, VSVAEData

    rng = np.random.default_rng(seed)
    L, T = dims["max_words"], dims["max_frames"]

    def f32(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    split = np.array(["train"] * n, dtype=object)
    split[int(0.8 * n): int(0.9 * n)] = "val"
    split[int(0.9 * n):] = "test"
    return VSVAEData(
        video_id=np.array([f"v{i}" for i in range(n)]), hashtag=np.array(["h"] * n), split=split.astype(str),
        text_vectors={s: f32(n, L, dims["word_dim"]) for s in TEXT_SOURCES},
        text_ids={s: rng.integers(2, dims["vocab_size"], (n, L)).astype(np.int64) for s in TEXT_SOURCES},
        text_lengths={s: rng.integers(0, L + 1, n).astype(np.int64) for s in TEXT_SOURCES},
        frames=f32(n, T, dims["frame_dim"]), n_frames=rng.integers(1, T + 1, n).astype(np.int64),
        image_vector=f32(n, dims["image_vector_dim"]), audio=f32(n, dims["audio_dim"]),
        editing=f32(n, dims["editing_dim"]),
        editing_mask=(rng.random((n, dims["editing_dim"])) > 0.1).astype(np.float32),
        audio_mask=np.ones((n, dims["audio_dim"]), np.float32),
        image_vector_mask=np.ones((n, dims["image_vector_dim"]), np.float32),
        vocab=["<pad>", "<unk>"] + [f"w{k}" for k in range(dims["vocab_size"] - 2)], dims=dict(dims))


def step_vsvae(args, dev: torch.device) -> dict:
    from reach.ema import ParameterEMA
    from reach.represent import train as tr
    from reach.represent.model import loss_terms, n_parameters

    dry = args.dry_run
    dims = TINY_DIMS if dry else PAPER_DIMS
    n = 2_000 if dry else args.rows
    # Web Appendix B: batch 32, latent 256, widths at scale 1; learn_noise as the workflow default
    cfg = tr.VSVAEConfig(latent_size=16 if dry else 256, width_scale=1.0, min_width=4 if dry else 16,
                         batch_size=32, lr=1e-5, learn_noise=True, max_words=dims["max_words"],
                         max_frames=dims["max_frames"], seed=0)
    n_train, n_val = int(round(0.8 * n)), int(round(0.1 * n))
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    t0 = time.perf_counter()
    reset_peak(dev)
    data = DeviceFeatureSet(dims, n, dev)
    sync(dev)
    base_mem = int(torch.cuda.memory_allocated()) if dev.type == "cuda" else None
    out: dict = {"rows": n, "n_train": n_train, "n_val": n_val, "batch": cfg.batch_size, "dims": dims,
                 "data_seconds": time.perf_counter() - t0, "data_bytes_on_device": data.nbytes,
                 "data_storage": DeviceFeatureSet.__doc__.split("\n\n")[0].replace("\n", " "),
                 "fit_fp32_bytes_needed": _fp32_bytes_per_row(dims) * n,
                 "fit_note": ("reach.represent.train.fit holds every split's features on the device as float32 "
                              "(fit_fp32_bytes_needed), built first as host numpy arrays by prepare(): at the paper's "
                              "widths and 518,303 videos that is more than the GPU machine's 128 GiB of host memory "
                              "and, with the model, optimiser and activations, about the whole card; this benchmark "
                              "keeps the set on the device in bfloat16 instead and times fit()'s own step (below) "
                              "on it; fit_check runs fit() itself on a small set"),
                 "tf32": {"cudnn_allow_tf32 (LSTMs in the fp32 mode)": torch.backends.cudnn.allow_tf32,
                          "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32},
                 "steps_per_epoch": steps_per_epoch, "modes": {}}
    say(f"feature set: {n:,} rows, {data.nbytes / 2**30:.2f} GiB on {dev}")
    model0 = tr.build_model(dims, cfg)
    out["widths"] = model0.widths.to_dict()
    out["n_parameters"] = n_parameters(model0)
    # FLOPs of one training step (forward, Eq. 16, backward), counted on the CPU on 8 rows and scaled to the batch
    rows8 = torch.arange(8, device=dev)
    b8 = {k: v.cpu() for k, v in data.batch(rows8).items()}
    m_cpu = copy.deepcopy(model0)

    def fwd_bwd():
        o, mu, ls = m_cpu(b8, sample=True, generator=torch.Generator().manual_seed(0))
        loss_terms(o, b8, mu, ls, m_cpu.log_noise)["loss"].backward()

    flops_step = count_flops(fwd_bwd) * cfg.batch_size / 8
    out["flops_per_step"] = flops_step
    say(f"VS-VAE: {out['n_parameters']:,} parameters, {flops_step / 1e9:.3g} GFLOP per step")
    out["flops_method"] = "FlopCounterMode on the CPU, forward + Eq. 16 + backward on 8 rows, x batch/8"
    n_par = out["n_parameters"]
    del m_cpu, b8
    val_idx = torch.arange(n_train, n_train + n_val, device=dev)
    eval_rows = min(n_val, 64 if dry else 4096)
    t_eval = data.batch(val_idx[:eval_rows])
    per_mode = args.budget * 0.3
    for mode, amp in (("bf16", True), ("fp32", False)):
        cfg_m = tr.VSVAEConfig(**{**cfg.__dict__, "amp": amp})
        model = copy.deepcopy(model0).to(dev)
        opt = tr._optimizer(model, cfg_m)            # the library's AdamW groups (decoupled decay, noise rate)
        ema = ParameterEMA(model, cfg_m.ema)
        use_amp = bool(amp and dev.type == "cuda")   # as fit(): autocast on CUDA only
        g_shuffle = torch.Generator().manual_seed(cfg.seed + 1)
        g_noise = torch.Generator().manual_seed(cfg.seed + 2)
        perm = torch.randperm(n_train, generator=g_shuffle).to(dev)
        reset_peak(dev)
        losses: list[float] = []
        pos = [0]

        def one_step():                               # reach.represent.train.fit's inner loop, step for step
            s = pos[0] % max(1, n_train - cfg.batch_size)
            pos[0] += cfg.batch_size
            idx = perm[s: s + cfg.batch_size]
            b = data.batch(idx)
            with tr._autocast(dev, use_amp):
                o, mu, ls = model(b, sample=True, generator=g_noise)
            terms = loss_terms(o, b, mu, ls, model.log_noise)
            if not torch.isfinite(terms["loss"]):
                raise FloatingPointError(f"VS-VAE loss not finite in the {mode} benchmark")
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            ema.update()
            vals = {k: float(terms[k].detach()) for k in tr.TERMS}
            losses.append(vals["loss"])

        model.train()
        t = timed(one_step, dev, per_mode * 0.8, warmup=3, min_reps=3 if dry else 20, max_reps=3 if dry else 4000)
        step_s = median(t)
        te = timed(lambda: tr.evaluate_loss(model, t_eval, 256, dev, use_amp, cfg.seed + 3), dev, per_mode * 0.15,
                   warmup=1, min_reps=1, max_reps=5)
        eval_s = median(te) * n_val / eval_rows
        epoch_s = step_s * steps_per_epoch + eval_s
        bytes_step = (sum(v.numel() * v.element_size() for v in data.batch(perm[:cfg.batch_size]).values())
                      + 32 * n_par)        # the batch read once + weights, grads and AdamW moments (4 B x 8 per param)
        pm = peak_mem(dev)
        out["modes"][mode] = {
            "autocast_bf16": use_amp, "steps_timed": len(t), "step_s_median": step_s, "step_s_mean": float(np.mean(t)),
            "eval_s_per_val_set": eval_s, "eval_rows_timed": eval_rows, "epoch_s": epoch_s,
            "epoch_method": f"median step x {steps_per_epoch} steps + validation pass ({eval_rows} rows timed, "
                            f"scaled to {n_val})",
            "samples_per_s": cfg.batch_size / step_s, "achieved_flop_s": flops_step / step_s,
            "bytes_per_step_floor": bytes_step, "floor_byte_s": bytes_step / step_s,
            **ratios(flops_step / step_s, bytes_step / step_s),
            "peak_mem_bytes": pm, "peak_mem_minus_data_bytes": None if pm is None else pm - base_mem,
            "train_loss_first": losses[0], "train_loss_last20_mean": float(np.mean(losses[-20:]))}
        say(f"VS-VAE {mode}: {step_s * 1e3:.2f} ms/step over {len(t)} steps, epoch {epoch_s:,.1f} s")
        save_partial(out)
        del model, opt, ema
    # bf16 vs fp32: the same weights, rows and noise draws; Eq. 16 terms through the library's evaluate_loss
    model = copy.deepcopy(model0).to(dev)
    terms = {mode: tr.evaluate_loss(model, t_eval, 256, dev, amp, 11) for mode, amp in (("fp32", False),
                                                                                         ("bf16", True))}
    out["loss_bf16_vs_fp32"] = {
        "rows": eval_rows, "weights": "initial (seed 0)", "fp32": terms["fp32"], "bf16": terms["bf16"],
        "relative_difference": {k: abs(terms["bf16"][k] - terms["fp32"][k]) / max(abs(terms["fp32"][k]), 1e-12)
                                for k in terms["fp32"]},
        "note": "autocast is CPU-off in the library: on the CPU both runs are float32" if dev.type != "cuda" else
                "bfloat16 autocast (reach.represent.train) vs float32"}
    del model, t_eval, data
    reset_peak(dev)
    # one epoch of the library's own fit() on a small set at the same widths: does the loop above time what fit runs?
    n_fit = 200 if dry else 2_000
    host = _vsvae_data_host(dims, n_fit)
    cfg_fit = tr.VSVAEConfig(**{**cfg.__dict__, "max_epochs": 1, "amp": True})
    say("fit() check")
    res = tr.fit(host, cfg_fit, device=str(dev))
    steps = math.ceil(len(host.rows("train")) / cfg.batch_size)
    out["fit_check"] = {
        "rows": n_fit, "epoch_s_fit": float(res.history["seconds"].iloc[0]), "device": res.device, "amp": res.amp,
        "predicted_from_bench": steps * out["modes"]["bf16"]["step_s_median"]
                                + out["modes"]["bf16"]["eval_s_per_val_set"] * len(host.rows("val")) / n_val,
        "note": "reach.represent.train.fit, 1 epoch (train + validation) vs the benchmark's median step x steps"}
    return out


# ----------------------------------------------------------------------------------------------- Deep IV
def deepiv_data(n: int, width: int, seed: int = 0):
    """Random IV data (timing only): x, z ~ N(0, 1); t confounded by u; y nonlinear in t."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, width), dtype=np.float32)
    z = rng.standard_normal(n, dtype=np.float32)
    u = rng.standard_normal(n, dtype=np.float32)
    t = 0.8 * z + 0.3 * x[:, 0] + u + 0.3 * rng.standard_normal(n, dtype=np.float32)
    y = np.sin(t) + 0.5 * x[:, 1] + u + 0.3 * rng.standard_normal(n, dtype=np.float32)
    return t, z, x, y


def _deepiv_step_flops(cfg, n_x: int) -> dict:
    """FLOPs of one training step of each stage (forward + backward of its network on one batch) and the networks'
    parameter counts, for cfg's loss (the unbiased loss evaluates h at two sample sets)."""
    from reach.causal.deepiv import MixtureDensityNet, ResponseNet

    b = cfg.batch_size
    first = MixtureDensityNet(n_x + 1, cfg.hidden, cfg.n_components, cfg.dropout, cfg.log_sigma_clip)
    resp = ResponseNet(n_x, cfg.hidden, cfg.dropout)
    xz, x = torch.randn(b, n_x + 1), torch.randn(b, n_x)
    draws = torch.randn(b, (2 if cfg.loss == "unbiased" else 1) * cfg.n_samples)
    return {"first": count_flops(lambda: sum(o.sum() for o in first(xz)).backward()),
            "second": count_flops(lambda: resp.forward_many(draws, x).sum().backward()),
            "parameters": {"first": sum(p.numel() for p in first.parameters()),
                           "second": sum(p.numel() for p in resp.parameters())},
            "method": "FlopCounterMode on the CPU: one batch's forward + backward of the stage's network"}


def step_deepiv(args, dev: torch.device) -> dict:
    from reach.causal.deepiv import DeepIVConfig, fit_deepiv

    dry = args.dry_run
    start = time.perf_counter()
    n = 3_000 if dry else args.rows
    width = args.x_width
    t, z, x, y = deepiv_data(n, width)
    base = DeepIVConfig(device=str(dev), seed=0)
    n_train = n - int(round(base.val_share * n))
    steps = math.ceil(n_train / base.batch_size)
    out: dict = {"rows": n, "x_width": width, "x_width_note": "r (256) + 9 post statistics, as the workflow's x",
                 "batch": base.batch_size, "n_train": n_train, "steps_per_epoch": steps, "fits": {},
                 "config": {k: v for k, v in base.to_json().items() if k in ("hidden", "n_components", "dropout",
                                                                             "batch_size", "ema", "n_samples")}}
    # calibrate: one epoch per stage on an eighth of the rows, to size the timed fits to the budget
    m = max(base.batch_size * 4, n // 8)
    tic = time.perf_counter()
    fit_deepiv(t[:m], z[:m], x[:m], y[:m], DeepIVConfig(device=str(dev), seed=0, max_epochs=1,
                                                        first_stage_max_epochs=1))
    calib = (time.perf_counter() - tic) * n / m        # ~ seconds of one epoch per stage at n rows (an overestimate)
    left = args.budget * 0.85 - (time.perf_counter() - start)
    epochs = 1 if dry else int(max(1, min(3, left / 2 / max(calib, 1e-9))))
    say(f"Deep IV calibration: ~{calib:.1f} s per epoch of both stages at {n:,} rows -> {epochs} epochs per stage")
    out["calibration"] = {"rows": m, "projected_s_one_epoch_each_stage": calib, "epochs_per_stage_chosen": epochs}
    save_partial(out)
    bytes_row = 4 * (width + 3)                          # t, z, x, y read once per epoch
    for loss in ("unbiased", "biased"):
        left = args.budget * 0.9 - (time.perf_counter() - start)
        need = out["fits"].get("unbiased", {}).get("wall_s", epochs * calib)   # the biased fit costs about the same
        if loss != "unbiased" and not dry and left < 1.1 * need:
            out["fits"][loss] = {"status": f"skipped: {left:.0f} s of the step budget left, ~{need:.0f} s needed"}
            continue
        cfg = DeepIVConfig(device=str(dev), seed=0, loss=loss, max_epochs=epochs, first_stage_max_epochs=epochs)
        sync(dev)
        tic = time.perf_counter()
        model = fit_deepiv(t, z, x, y, cfg)
        sync(dev)
        wall = time.perf_counter() - tic
        h = model.history
        flops = _deepiv_step_flops(cfg, width)
        rec: dict = {"status": "ok", "epochs_per_stage": epochs, "wall_s": wall, "device": model.info.get("device"),
                     "flops_per_step": flops}
        for stage in ("first", "second"):
            s = h[h["stage"] == stage]
            sec = s["seconds"].to_numpy(float)
            per = float(np.median(sec[1:] if sec.size > 1 else sec))   # the first epoch carries warm-up
            fs = flops[stage] * steps / per
            # floor: the rows read once per epoch, and per step each parameter's weight, gradient and Adam moments
            byte_s = (bytes_row * n_train + 32 * flops["parameters"][stage] * steps) / per
            rec[stage] = {"seconds_per_epoch": sec.tolist(), "s_per_epoch": per, "s_per_step": per / steps,
                          "train_loss": s["train_loss"].tolist(), "val_loss": s["val_loss"].tolist(),
                          "achieved_flop_s": fs, "floor_byte_s": byte_s, **ratios(fs, byte_s)}
        rec["per_member_s_100_epochs_per_stage"] = 100 * (rec["first"]["s_per_epoch"] + rec["second"]["s_per_epoch"])
        out["fits"][loss] = rec
        say(f"Deep IV {loss}: {rec['first']['s_per_epoch']:.2f} + {rec['second']['s_per_epoch']:.2f} s/epoch, "
            f"{wall:.1f} s wall")
        save_partial(out)
    out["per_member_note"] = ("projection: 100 epochs per stage (Web Appendix C's maximum; early stopping ends most "
                              "fits sooner) x the measured seconds per epoch; an assumption, not a measurement")
    return out


# ----------------------------------------------------------------------------------------------- cuda tests
def step_cuda_tests(args, dev: torch.device) -> dict:
    """pytest -m cuda tests/test_cuda.py (CUDA against CPU within stated tolerances; they skip without CUDA)."""
    import re

    cmd = [sys.executable, *(["-S"] if sys.flags.no_site else []), "-m", "pytest", "-q", "-rs", "-m", "cuda",
           "-p", "no:cacheprovider", "tests/test_cuda.py"]
    env = dict(os.environ)
    if args.dry_run:      # rehearse the tests' code paths CPU against CPU (tests/test_cuda.py, DEVICE)
        env["REACH_CUDA_TEST_DEVICE"] = "cpu"
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=max(10.0, args.budget - 5), env=env)
    text = p.stdout + p.stderr
    lines = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", ln)]
    counts = {k: int(m.group(1)) for k in ("passed", "failed", "skipped", "error")
              for m in [re.search(rf"(\d+) {k}", lines[-1] if lines else "")] if m}
    out = {"command": " ".join(cmd[2:]), "pytest_rc": p.returncode,
           "test_device": env.get("REACH_CUDA_TEST_DEVICE", "cuda"),
           "summary": lines[-1].strip("= ") if lines else None,
           **counts, "skip_reasons": [ln for ln in text.splitlines() if ln.startswith("SKIPPED")],
           "output_tail": text[-4000:]}
    if p.returncode != 0:
        raise RuntimeError(f"cuda tests: pytest exit {p.returncode}: {out['summary']}; tail: {text[-1500:]}")
    return out


# ----------------------------------------------------------------------------------------------- merge
def _fmt(x, unit="", digits=3):
    if x is None:
        return "-"
    return f"{x:,.{digits}g}{unit}"


def merge(parts: Path, out_path: Path) -> dict:
    steps, dry = {}, None
    for name in ("env", "image", "vsvae", "deepiv", "cuda_tests"):
        p = parts / f"{name}.json"
        rc_file = parts / f"{name}.rc"
        rc = int(rc_file.read_text().strip()) if rc_file.exists() else None
        if p.exists():
            steps[name] = json.loads(p.read_text())
            steps[name]["rc"] = rc
            if steps[name].get("status") == "partial":
                steps[name]["error"] = (f"killed at its hard limit (rc {rc}) after "
                                        f"{steps[name].get('seconds', 0):.0f} s: the figures measured before are kept")
            if name != "cuda_tests":
                dry = steps[name].get("dry_run", dry)
        elif rc is None:
            steps[name] = {"status": "not run", "rc": None, "error": "not among the steps asked for (--only)"}
        else:
            why = "step budget exceeded (killed by timeout)" if rc in (124, 137) else "no output"
            steps[name] = {"status": "missing", "rc": rc, "error": why}
    env = steps.get("env", {})
    measured = any(st.get("status") == "ok" for st in steps.values())
    label = DRY_LABEL if dry else ("measured on the GPU named in gpu" if measured else "nothing measured")
    doc = {"format": FORMAT, "dry_run": bool(dry), "label": label,
           "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "gpu": (env.get("gpu") or {}) | {"nvidia_smi_L": env.get("nvidia_smi_L"),
                                            "nvidia_smi_query": env.get("nvidia_smi_query")},
           "limits": LIMITS, "steps": steps}
    out_path.write_text(json.dumps(doc, indent=1, default=str))
    print_summary(doc)
    return doc


def print_summary(doc: dict) -> None:
    s = doc["steps"]
    print(f"\n== {doc['label']} ({doc['date_utc']}); GPU: {doc['gpu'].get('name') or 'none'}")
    for name, st in s.items():
        print(f"  step {name}: {st.get('status')} ({_fmt(st.get('seconds'), ' s')})"
              + (f" - {st.get('error', '')[-200:]}" if st.get("status") != "ok" else ""))
    env = s.get("env", {})
    if env.get("status") == "ok":
        mm, cp = env["measured_bf16_matmul"], env["measured_copy"]
        print(f"  ceilings here: bf16 {mm['n']}^3 matmul {_fmt(mm['flop_s'] / 1e12)} TFLOP/s "
              f"({_fmt(mm['flop_s'] / LIMITS['bf16_dense_flop_s'])} of 790); copy "
              f"{_fmt(cp['byte_s_read_plus_written'] / 1e12)} TB/s ({_fmt(cp['byte_s_read_plus_written'] / 4.3e12)} "
              "of 4.3)")
    img = s.get("image", {})
    for r in img.get("runs", []):
        print(f"  image {r['model']:<18} {r['dtype']} {img['px']}px: {_fmt(r['frames_per_s'])} frames/s, "
              f"{_fmt(r['achieved_flop_s'] / 1e12)} TFLOP/s = {_fmt(r['share_bf16_peak'])} of bf16 peak, "
              f"{_fmt(r['share_copy_bw'])} of copy bw  [{r['path'][:40]}]")
    v = s.get("vsvae", {})
    for mode, r in v.get("modes", {}).items():
        print(f"  vsvae {mode}: {_fmt(r['step_s_median'] * 1e3)} ms/step, epoch {_fmt(r['epoch_s'])} s at "
              f"{v['rows']:,} rows, peak {_fmt(r['peak_mem_bytes'] and r['peak_mem_bytes'] / 2**30)} GiB "
              f"(data {_fmt(v['data_bytes_on_device'] / 2**30)} GiB), "
              f"{_fmt(r['share_bf16_peak'])} of bf16 peak")
    if "loss_bf16_vs_fp32" in v:
        rel = v["loss_bf16_vs_fp32"]["relative_difference"]["loss"]
        print(f"  vsvae loss bf16 vs fp32: relative difference {_fmt(rel)}")
    if "fit_check" in v:
        fc = v["fit_check"]
        print(f"  vsvae fit() epoch on {fc['rows']} rows: {_fmt(fc['epoch_s_fit'])} s vs "
              f"{_fmt(fc['predicted_from_bench'])} s predicted by the step timing")
    d = s.get("deepiv", {})
    for loss, r in d.get("fits", {}).items():
        if r.get("status") != "ok":
            print(f"  deepiv {loss}: {r.get('status')}")
            continue
        print(f"  deepiv {loss}: {d['rows']:,} rows, s/epoch first {_fmt(r['first']['s_per_epoch'])}, second "
              f"{_fmt(r['second']['s_per_epoch'])}; per member (100+100 epochs, projected) "
              f"{_fmt(r['per_member_s_100_epochs_per_stage'])} s; last val loss first "
              f"{_fmt(r['first']['val_loss'][-1])}, second {_fmt(r['second']['val_loss'][-1])}")
    ct = s.get("cuda_tests", {})
    print(f"  cuda tests: {ct.get('summary') or ct.get('error')}")
    for reason in ct.get("skip_reasons", [])[:3]:
        print(f"    {reason[:150]}")


# ----------------------------------------------------------------------------------------------- main
STEPS = {"env": step_env, "image": step_image, "vsvae": step_vsvae, "deepiv": step_deepiv,
         "cuda_tests": step_cuda_tests}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=[*STEPS, "merge"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--parts", type=Path, help="merge: the folder of step JSONs")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds this step may take (loops size to it)")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: rehearsal, not a measurement")
    ap.add_argument("--rows", type=int, default=PAPER_VIDEOS)
    ap.add_argument("--x-width", type=int, default=265)
    args = ap.parse_args()
    if args.step == "merge":
        merge(args.parts, args.out)
        return
    torch.manual_seed(0)
    tic = time.perf_counter()
    rec: dict = {"step": args.step, "dry_run": args.dry_run, "label": DRY_LABEL if args.dry_run else "measured",
                 "budget_s": args.budget}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    PARTIAL.update(path=args.out, rec=rec)
    try:
        dev = pick_device(args.dry_run)
        rec["device"] = str(dev)
        rec |= STEPS[args.step](args, dev)
        rec["status"] = "ok"
    except (Exception, SystemExit) as e:  # noqa: BLE001 (the JSON records any failure; the exit code says so too)
        rec["status"] = "error"
        rec["error"] = f"{type(e).__name__}: {e}"[:4000]
        rec["traceback"] = traceback.format_exc()[-3000:]
        print(rec["traceback"], file=sys.stderr)
    rec["seconds"] = time.perf_counter() - tic
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rec, indent=1, default=str))
    print(f"{args.step}: {rec['status']} in {rec['seconds']:.1f} s -> {args.out}")
    sys.exit(0 if rec["status"] == "ok" else 1)


if __name__ == "__main__":
    main()
