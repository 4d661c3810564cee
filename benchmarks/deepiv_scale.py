"""Deep IV training time at paper scale (Web Appendix C): 518,303 videos, x of width 73 (a 64-dimensional r plus 9
post statistics), batches of 256, both second-stage losses.

On CUDA (an NVIDIA H100 is the target) every row is used: `--epochs` epochs per stage are timed and the total for
Web Appendix C's 100 epochs per stage is extrapolated from the measured seconds per epoch (`--full` trains to early
stopping instead, up to 100 epochs per stage, and reports the measured total). On a CPU only `--cpu-batches`
batches per epoch are run; seconds per epoch and the total are extrapolated from them to the full 2,025 batches and
labelled as such. The data are random (timing only): x, z ~ N(0, 1), t and y linear in them plus noise.

    .venv/bin/python benchmarks/deepiv_scale.py [--rows 518303] [--x-width 73] [--epochs 2] [--cpu-batches 40]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from reach.causal.deepiv import DeepIVConfig, fit_deepiv


def data(n: int, width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, width)).astype(np.float32)
    z = rng.standard_normal(n).astype(np.float32)
    u = rng.standard_normal(n).astype(np.float32)
    t = 0.8 * z + 0.3 * x[:, 0] + u + 0.3 * rng.standard_normal(n).astype(np.float32)
    y = np.sin(t) + 0.5 * x[:, 1] + u + 0.3 * rng.standard_normal(n).astype(np.float32)
    return t, z, x, y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=518_303)
    ap.add_argument("--x-width", type=int, default=73)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per stage")
    ap.add_argument("--paper-epochs", type=int, default=100, help="epochs per stage the total is extrapolated to")
    ap.add_argument("--cpu-batches", type=int, default=40, help="batches per epoch on a CPU (extrapolated)")
    ap.add_argument("--full", action="store_true", help="CUDA: train to early stopping (max --paper-epochs)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    name = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} torch threads)"
    full_batches = int(np.ceil(args.rows * 0.9 / args.batch_size))   # 90% training rows (val_share 0.1)
    if cuda:
        n_rows, scale = args.rows, 1.0
    else:
        n_rows = int(np.ceil(args.cpu_batches * args.batch_size / 0.9))
        scale = args.rows / n_rows
    print(f"Deep IV at paper scale on {name}: {args.rows:,} rows, x width {args.x_width}, batch {args.batch_size} "
          f"({full_batches:,} training batches per epoch), torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.1f} at start")
    if not cuda:
        print(f"NO CUDA DEVICE: the H100 figures were NOT measured here. Timing {n_rows:,} rows "
              f"({args.cpu_batches} batches per epoch) and extrapolating x{scale:.1f} to the full epoch — "
              "labelled 'extrapolated' below.")
    t, z, x, y = data(n_rows, args.x_width)
    for loss in ("unbiased", "biased"):
        epochs = args.paper_epochs if (cuda and args.full) else args.epochs
        cfg = DeepIVConfig(loss=loss, max_epochs=epochs, patience=10 if args.full else 10 ** 6, device=device,
                           batch_size=args.batch_size, seed=0)
        if cuda:
            torch.cuda.synchronize()
        tic = time.perf_counter()
        model = fit_deepiv(t, z, x, y, cfg)
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - tic
        h = model.history
        # the first epoch of a stage carries warm-up costs: use the later ones when there are any
        per = {stage: float(np.median(sec[1:] if sec.size > 1 else sec)) * scale
               for stage in ("first", "second") for sec in [h.loc[h["stage"] == stage, "seconds"].to_numpy()]}
        n_ep = {stage: int((h["stage"] == stage).sum()) for stage in ("first", "second")}
        label = "measured" if cuda else "extrapolated from a reduced epoch"
        total_paper = args.paper_epochs * (per["first"] + per["second"])
        print(f"\n[{loss} loss] seconds per epoch ({label}): first stage {per['first']:.2f}, "
              f"second stage {per['second']:.2f}")
        if cuda and args.full:
            print(f"  trained to early stopping: {n_ep['first']} + {n_ep['second']} epochs, total {wall:.1f} s "
                  "(measured)")
        print(f"  total for {args.paper_epochs} epochs per stage: {total_paper:.0f} s = {total_paper / 60:.1f} min "
              f"({'extrapolated from measured epochs' if cuda else 'extrapolated, CPU, reduced batches'}); "
              f"this run: {n_ep['first']} + {n_ep['second']} epochs in {wall:.1f} s wall on {n_rows:,} rows")


if __name__ == "__main__":
    main()
