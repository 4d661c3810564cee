"""Image-feature throughput: frames/s of the configured image model on CPU and, when present, on the GPU, with
the GPU figure as a share of the model's FLOP-bound limit at the measured batch size; the feature stage's wall
time per rule from results/benchmarks when the workflow has run. Prints figures and ratios; asserts nothing.

    .venv/bin/python benchmarks/features.py [--frames 256] [--batch 64] [--height 160 --width 96] [--peak-tflops X]

Frames are real: scikit-image's sample photographs resized to the stored key-frame size (or the workflow's key
frames when results/media/frames/shard-0.npz exists).
"""

from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

import numpy as np
import pandas as pd

from reach.features.image import lite0_flops, load_efficientnet_lite0

REPO = Path(__file__).resolve().parents[1]
# dense fp32 / tf32-tensor-core peaks (FLOP/s) of GPUs this project meets; override with --peak-tflops
PEAKS = {"H100": {"fp32": 67e12, "tf32": 494e12}, "H200": {"fp32": 67e12, "tf32": 494e12},
         "A100": {"fp32": 19.5e12, "tf32": 156e12}}


def frames(n: int, height: int, width: int) -> np.ndarray:
    shard = REPO / "results/media/frames/shard-0.npz"
    if shard.exists():
        with np.load(shard, allow_pickle=False) as d:
            x = d["frames"][:n]
        if x.shape[0] == n and x.shape[1:3] == (height, width):
            print(f"frames: {n} key frames from {shard.relative_to(REPO)}")
            return x
    import cv2
    import skimage.data

    photos = [getattr(skimage.data, k)()[..., :3] for k in ("chelsea", "coffee", "astronaut", "rocket")]
    print(f"frames: {n} scikit-image photographs at {height}x{width}")
    return np.stack([cv2.resize(photos[i % 4], (width, height), interpolation=cv2.INTER_AREA) for i in range(n)])


def rate(model, x: np.ndarray, batch: int, sync=None) -> float:
    model.run(x[:batch], batch)                       # warm-up
    if sync:
        sync()
    start = time.perf_counter()
    model.run(x, batch)
    if sync:
        sync()
    return x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peak-tflops", type=float, default=None, help="GPU peak to compare with (TFLOP/s)")
    a = ap.parse_args()
    import torch

    x = frames(a.frames, a.height, a.width)
    flops = lite0_flops(a.height, a.width)
    print(f"model: EfficientNet-Lite0 (packaged substitute for VGG-19), {flops / 1e9:.3f} GFLOP per "
          f"{a.height}x{a.width} frame ({lite0_flops(224, 224) / 1e9:.3f} at 224x224; VGG-19: ~39 GFLOP)")
    cpu = load_efficientnet_lite0(device="cpu", threads=a.threads)
    r_cpu = rate(cpu, x, a.batch)
    print(f"CPU ({a.threads} threads, batch {a.batch}): {r_cpu:.1f} frames/s = {r_cpu * flops / 1e9:.1f} GFLOP/s")
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        gpu = load_efficientnet_lite0(device="cuda")
        r_gpu = rate(gpu, x, a.batch, torch.cuda.synchronize)
        achieved = r_gpu * flops
        key = next((k for k in PEAKS if k in name), None)
        peak = a.peak_tflops * 1e12 if a.peak_tflops else (PEAKS[key]["fp32"] if key else None)
        print(f"GPU {name} (batch {a.batch}): {r_gpu:.1f} frames/s = {achieved / 1e12:.2f} TFLOP/s; "
              f"GPU/CPU {r_gpu / r_cpu:.1f}x")
        if peak:
            print(f"FLOP-bound limit at fp32 peak {peak / 1e12:.0f} TFLOP/s: {peak / flops:.0f} frames/s; "
                  f"measured share {achieved / peak:.1%}")
        else:
            print("no peak known for this GPU: pass --peak-tflops")
    else:
        print("GPU: none on this machine (torch.cuda.is_available() is False); no GPU figure measured.")
        print("On a GPU this prints: share = FLOPs per frame x frames/s / peak FLOP/s, e.g. on an H100 SXM "
              f"(fp32 67 TFLOP/s) the FLOP-bound limit is {67e12 / flops:,.0f} frames/s at this frame size "
              f"and share = {flops / 1e9:.3f} GFLOP x (measured frames/s) / 67,000 GFLOP/s.")
    rows = []
    for rule in ("sample_frames", "extract_audio", "image_features", "audio_features", "text_features",
                 "editing_features", "gather_features", "post_statistics", "probe_features", "hashtag_topics"):
        files = glob.glob(str(REPO / "results/benchmarks" / rule / "*.tsv")) + \
            glob.glob(str(REPO / "results/benchmarks" / f"{rule}.tsv"))
        if files:
            s = sum(pd.read_csv(f, sep="\t")["s"].iloc[0] for f in files)
            rows.append((rule, len(files), s))
    if rows:
        print("\nfeature stage, summed job seconds (results/benchmarks):")
        for rule, n, s in rows:
            print(f"  {rule:18s} {n:2d} jobs {s:8.1f} s")
        print(f"  {'total':18s}          {sum(r[2] for r in rows):8.1f} s (job-seconds; wall time is less with 2 cores)")


if __name__ == "__main__":
    main()
