"""VS-VAE training throughput at paper scale (Section 3.1, Web Appendix B): epoch time and samples/s over 518,303
videos with synthetic features of the real widths, peak GPU memory, and whether bfloat16 mixed precision changes
the loss. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/vsvae.py [--widths paper|substitute] [--width-scale 1] [--batch 32]
        [--steps 30] [--cpu-steps 2] [--videos 518303] [--frames 8] [--words 32] [--vocab 10000]

--widths paper: the paper's extractors (VGG-19 fc2 4,096 per frame, 1,000 objects, 2,089 SentiBank, Word2Vec 300,
543 audio, 157 editing) at Web Appendix B's architecture (width scale 1: image LSTM 4,096, dense 4096-1024-512,
joint 656, latent 256). --widths substitute: the offline substitutes of this repository (EfficientNet-Lite0 1,280
+ 1,000 objects, no sentiment, GloVe 50, 72 audio, 157 editing).

On CUDA: `--steps` timed training steps (after warm-up) with and without bfloat16 autocast; epoch time = the 8:1:1
split's training videos / samples/s plus the validation pass. Without CUDA the H100 figure is NOT measured: the
script times `--cpu-steps` steps on the CPU and extrapolates the CPU epoch time from them, labelled as such.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see scripts/train_vsvae.py

import torch

from reach.represent.model import VSVAE, layer_widths, loss_terms, n_parameters
from reach.represent.data import TEXT_SOURCES

WIDTHS = {
    "paper": {"word_dim": 300, "frame_dim": 4096, "image_vector_dim": 1000 + 2089, "audio_dim": 543,
              "editing_dim": 157},
    "substitute": {"word_dim": 50, "frame_dim": 1280, "image_vector_dim": 1000, "audio_dim": 72, "editing_dim": 157},
}


def synthetic_batch(dims: dict, n: int, device: torch.device, g: torch.Generator) -> dict[str, torch.Tensor]:
    L, T = dims["max_words"], dims["max_frames"]

    def randn(*shape):
        return torch.randn(*shape, generator=g).to(device)

    def lengths(hi):
        return torch.randint(0, hi + 1, (n,), generator=g).to(device)

    b = {"frames": randn(n, T, dims["frame_dim"]), "n_frames": torch.randint(1, T + 1, (n,), generator=g).to(device),
         "image_vector": randn(n, dims["image_vector_dim"]), "audio": randn(n, dims["audio_dim"]),
         "editing": randn(n, dims["editing_dim"])}
    for k in ("image_vector", "audio", "editing"):
        b[f"{k}_mask"] = torch.ones_like(b[k])
    for s in TEXT_SOURCES:
        b[f"{s}_vectors"] = randn(n, L, dims["word_dim"])
        b[f"{s}_ids"] = torch.randint(0, dims["vocab_size"], (n, L), generator=g).to(device)
        b[f"{s}_lengths"] = lengths(L)
    return b


def time_steps(model, opt, batch, steps: int, amp: bool, device: torch.device) -> float:
    """Seconds per training step (forward, Eq. 16 loss, backward, AdamW step)."""
    g = torch.Generator().manual_seed(0)

    def step():
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if (amp and device.type == "cuda") else \
            torch.autocast("cpu", enabled=False)
        with ctx:
            out, mu, ls = model(batch, generator=g)
        loss = loss_terms(out, batch, mu, ls, model.log_noise)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up (allocations, cuDNN plans)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def eval_seconds(model, batch, reps: int, amp: bool, device: torch.device) -> float:
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if (amp and device.type == "cuda") else \
        torch.autocast("cpu", enabled=False)
    with torch.no_grad(), ctx:
        model(batch, sample=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            model(batch, sample=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", choices=sorted(WIDTHS), default="paper")
    ap.add_argument("--width-scale", type=float, default=1.0)
    ap.add_argument("--latent", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32, help="paper: 32")
    ap.add_argument("--steps", type=int, default=30, help="timed steps on CUDA")
    ap.add_argument("--cpu-steps", type=int, default=2, help="timed steps on CPU (reduced; extrapolated)")
    ap.add_argument("--videos", type=int, default=518_303)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--words", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dims = {**WIDTHS[args.widths], "vocab_size": args.vocab, "max_words": args.words, "max_frames": args.frames}
    widths = layer_widths(dims, args.latent, args.width_scale)
    torch.manual_seed(0)
    model = VSVAE(dims, widths, learn_noise=True).to(device)  # as the workflow default (represent.learn_noise)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.05)
    g = torch.Generator().manual_seed(1)
    batch = synthetic_batch(dims, args.batch, device, g)
    n_train = int(round(args.videos * 0.8))
    n_val = args.videos - n_train - int(round(args.videos * 0.1))
    print(f"VS-VAE benchmark: {args.widths} input widths {WIDTHS[args.widths]}, width scale {args.width_scale}")
    print(f"  layer widths {widths.to_dict()}; {n_parameters(model) / 1e6:.1f}M parameters; batch {args.batch}; "
          f"{args.frames} frames, {args.words} words x 3 sources, vocabulary {args.vocab}")
    print(f"  paper scale: {args.videos:,} videos -> {n_train:,} training / {n_val:,} validation (8:1:1)")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(0)
        print(f"  device: CUDA ({name})")
        results = {}
        for amp in (False, True):
            torch.cuda.reset_peak_memory_stats()
            sec = time_steps(model, opt, batch, args.steps, amp, device)
            ev = eval_seconds(model, batch, max(3, args.steps // 3), amp, device)
            epoch = n_train / args.batch * sec + n_val / args.batch * ev
            mem = torch.cuda.max_memory_allocated() / 2 ** 30
            results[amp] = sec
            label = "bfloat16 autocast" if amp else "float32"
            print(f"  [{name}, measured, {label}] {args.batch / sec:,.0f} samples/s; {sec * 1e3:.1f} ms/step; "
                  f"epoch (train + validation) {epoch / 60:.1f} min; peak GPU memory {mem:.2f} GiB")
        print(f"  mixed precision speed-up: {results[False] / results[True]:.2f}x")
        # does autocast change the loss? same weights, same batch, same noise
        model.eval()
        with torch.no_grad():
            losses = {}
            for amp in (False, True):
                gg = torch.Generator().manual_seed(5)
                ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else torch.autocast("cuda", enabled=False)
                with ctx:
                    out, mu, ls = model(batch, generator=gg)
                losses[amp] = float(loss_terms(out, batch, mu, ls, model.log_noise)["loss"])
        rel = abs(losses[True] - losses[False]) / abs(losses[False])
        print(f"  Eq. 16 loss on one batch: float32 {losses[False]:.3f}, bfloat16 autocast {losses[True]:.3f} "
              f"(relative difference {rel:.2e})")
    else:
        print("  device: CPU only. The H100 figure was NOT measured here (no CUDA device); run this script on a "
              "GPU machine for it.")
        threads = torch.get_num_threads()
        sec = time_steps(model, opt, batch, args.cpu_steps, False, device)
        ev = eval_seconds(model, batch, 1, False, device)
        epoch = n_train / args.batch * sec + n_val / args.batch * ev
        print(f"  [CPU, {threads} threads, measured over {args.cpu_steps} steps] {args.batch / sec:,.1f} samples/s; "
              f"{sec:.2f} s/step")
        print(f"  [CPU, EXTRAPOLATED from {args.cpu_steps} steps, not run] one paper-scale epoch "
              f"(train + validation) = {epoch / 3600:.1f} h")
        print("  mixed precision: not measured (bfloat16 autocast is used on CUDA only)")


if __name__ == "__main__":
    main()
