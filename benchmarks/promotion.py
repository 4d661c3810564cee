"""One planning step of the CGPO problem (paper 2, Section 4.3): greedy with a cvxpy (Clarabel) PO-CR solve per
candidate -- the paper's way, with an open solver -- against our accelerated greedy (AGA). Prints times, their
ratio and the objective gap; asserts nothing.

    .venv/bin/python benchmarks/promotion.py [--videos 200] [--K 50] [--L 13] [--c-bar 6] [--small 40 --small-K 10]

Two instances: a small one where both algorithms run to the end, and a platform-sized one (a mid-run state of the
Section 6.3 simulation) where the cvxpy greedy's full time is extrapolated: its k-th iteration makes |V| - k solves
of size k, and solve times are measured on samples at several sizes and interpolated (printed as such).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from reach.promotion.cgpo import accelerated_greedy, exhaustive, greedy, no_promotion_adopters
from reach.promotion.platform import PlatformSpec, sample_pq
from reach.promotion.po import solve_po_cvxpy


def platform_state(n: int, L: int, seed: int, m: float = 10_000.0, gamma: float = 0.983):
    """Videos as the simulated platform holds them mid-run: ages 0..n/5 periods, adopters grown by diffusion."""
    rng = np.random.default_rng(seed)
    p, q = sample_pq(rng, n)
    age = np.sort(rng.integers(0, max(1, n // 5), size=n))[::-1]
    A0 = np.where(rng.random(n) < 0.5, 0.0, m * rng.beta(1.2, 6, size=n)) * (age > 0)
    decay = gamma ** (age[:, None] + np.arange(L)[None, :])
    return p, q, m, A0, decay


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    spec = PlatformSpec()
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--K", type=int, default=spec.K)
    ap.add_argument("--L", type=int, default=spec.L)
    ap.add_argument("--c-bar", type=float, default=6.0)
    ap.add_argument("--small", type=int, default=40)
    ap.add_argument("--small-K", type=int, default=10)
    ap.add_argument("--samples", type=int, default=6, help="cvxpy solves timed per set size")
    ap.add_argument("--exhaustive", type=int, default=30, help="tiny instances for the approximation ratio")
    ap.add_argument("--seed", type=int, default=20201001)
    args = ap.parse_args()

    # 1. small instance: both to the end
    p, q, m, A0, decay = platform_state(args.small, args.L, args.seed)
    budget = args.c_bar * m * args.L
    paper, t_paper = timed(greedy, p, q, m, A0, args.L, budget, args.small_K, decay, solver=solve_po_cvxpy)
    ours, t_ours = timed(accelerated_greedy, p, q, m, A0, args.L, budget, args.small_K, decay)
    print(f"small instance: {args.small} videos, K = {args.small_K}, L = {args.L}, C-bar = {args.c_bar}")
    print(f"  greedy + cvxpy PO per candidate: {t_paper:8.2f} s  ({paper.exact_evaluations} PO solves)")
    print(f"  accelerated greedy (ours):       {t_ours:8.2f} s  ({ours.exact_evaluations} exact PO solves)")
    print(f"  speed-up: {t_paper / t_ours:.0f}x; same set: {paper.selected == ours.selected}; "
          f"objective gap (ours - cvxpy greedy) / cvxpy: {(ours.objective - paper.objective) / paper.objective:+.2e}")

    # 2. approximation ratio against exhaustive search on tiny instances
    ratios = []
    for k in range(args.exhaustive):
        rng = np.random.default_rng([args.seed, k])
        n, L, K = 8, int(rng.integers(1, 6)), int(rng.integers(2, 4))
        pt, qt, mt, At, dt = platform_state(n, L, args.seed + 100 + k)
        bt = float(rng.choice([0.05, 0.5, 2.0])) * mt * L
        _, best = exhaustive(pt, qt, mt, At, L, bt, K, dt)
        got = accelerated_greedy(pt, qt, mt, At, L, bt, K, dt).objective
        base = no_promotion_adopters(pt, qt, mt, At, L, dt).sum()
        ratios.append((got - base) / (best - base) if best > base else 1.0)
    ratios = np.array(ratios)
    print(f"approximation ratio vs exhaustive search ({args.exhaustive} instances of 8 videos, K <= 3): "
          f"min {ratios.min():.4f}, mean {ratios.mean():.4f}, share exactly optimal {np.mean(ratios > 1 - 1e-9):.2f} "
          f"(guarantee 1 - 1/e = {1 - 1 / np.e:.4f})")

    # 3. platform-sized instance: ours in full, cvxpy greedy extrapolated from its first iterations
    p, q, m, A0, decay = platform_state(args.videos, args.L, args.seed + 1)
    budget = args.c_bar * m * args.L
    ours, t_ours = timed(accelerated_greedy, p, q, m, A0, args.L, budget, args.K, decay)
    # the greedy's k-th iteration solves PO for |U| = k sets; time a sample of them at several sizes
    per_size: dict[int, list[float]] = {}
    rng = np.random.default_rng(args.seed)
    for size in sorted({1, 2, 5, 10, 20, 35, args.K}):
        if size > args.K:
            continue
        base_set = ours.selected[: size - 1]
        rest = [v for v in range(p.size) if v not in base_set]
        times = []
        for v in rng.choice(rest, size=min(args.samples, len(rest)), replace=False):
            idx = base_set + [int(v)]
            _, t = timed(solve_po_cvxpy, p[idx], q[idx], m, A0[idx], args.L, budget, decay[idx])
            times.append(t)
        per_size[size] = times
    sizes = np.array(sorted(per_size))
    mean_t = np.array([np.mean(per_size[s]) for s in sizes])
    total = sum((p.size - k) * float(np.interp(k + 1, sizes, mean_t)) for k in range(args.K))
    n_solves = sum(p.size - k for k in range(args.K))
    print(f"platform-sized instance: {args.videos} videos, K = {args.K}, L = {args.L}, C-bar = {args.c_bar}")
    print(f"  accelerated greedy (ours): {t_ours:8.2f} s  ({ours.exact_evaluations} exact PO solves)")
    print(f"  greedy + cvxpy, measured: {sum(map(len, per_size.values()))} PO-CR solves at set sizes "
          + ", ".join(f"{s}: {t * 1e3:.0f} ms" for s, t in zip(sizes, mean_t)))
    print(f"  greedy + cvxpy, extrapolated to all {args.K} iterations ({n_solves} solves): {total:8.0f} s")
    print(f"  speed-up (extrapolated): {total / t_ours:.0f}x")


if __name__ == "__main__":
    main()
