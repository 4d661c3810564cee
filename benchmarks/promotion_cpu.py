"""CPU of one platform run of paper 2's simulation (rule simulate_promotion, default config: AGA at K = 50, L = 13,
C-bar = 6, 120 periods, m = 10,000): the planner as it was before its CPU work (``reach.promotion.reference``'s
``*_reference`` functions, commit 0b2945e), after its first round (the ``*_v2`` functions, commit 10650d0) and the
numpy planner before the compiled h_v kernel (the ``*_v3`` functions, commit ccfb7e5), each patched into the
platform, against today's, same seed, in one run. Prints the CPU times (time.process_time), the ratios, the runs'
total adopters and whether their tables are identical (the compiled kernel agrees with numpy to round-off, not to
the bit), and the CPU of the simulate_promotion script's imports; asserts nothing. Today's run is timed after one
small warm-up solve, so numba's compilation (or cache load) is not in it; it is in the imports' figure only if the
cache is empty (see docs/promotion.md for the compile and cache-load figures).

    .venv/bin/python benchmarks/promotion_cpu.py [--policy AGA] [--K 50] [--L 13] [--c-bar 6] [--replicate 1]
                                                 [--periods 120] [--estimates results/diffusion/estimates.parquet]
                                                 [--baselines reference v2 v3]

The platform settings and the seed come from workflow_config.yaml; video (p, q) from the calibrated categories when
the estimates file exists (as the workflow does), else from the published summary.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import yaml

import reach.promotion.platform as platform
from reach.promotion import reference
from reach.promotion.po import _solve_h_u
from reach.promotion.platform import PlatformSpec, category_pq, simulate_platform

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_IMPORTS = ("import numpy, pandas, tqdm, pyarrow.parquet; import reach.logs; "
                  "import reach.promotion.platform")


BASELINES = {"reference": (reference.accelerated_greedy_reference, reference.solve_po_reference, "before (0b2945e)"),
             "v2": (reference.accelerated_greedy_v2, reference.solve_po_v2, "first round (10650d0)"),
             "v3": (reference.accelerated_greedy_v3, reference.solve_po_v3, "numpy, second round (ccfb7e5)")}


def run(policy: str, spec: PlatformSpec, seed: int, categories, old: str | None):
    """(tables, CPU s) of one run, with the ``old`` baseline planner patched in (None: today's)."""
    patches = ([mock.patch.object(platform, "accelerated_greedy", BASELINES[old][0]),
                mock.patch.object(platform, "solve_po", BASELINES[old][1])] if old else [])
    for p in patches:
        p.start()
    try:
        start = time.process_time()
        tables = simulate_platform(policy, spec, seed, categories)
        return tables, time.process_time() - start
    finally:
        for p in patches:
            p.stop()


def warm_up() -> float:
    """CPU s of one tiny h_v solve: loads (or compiles) the numba kernel, kept out of the timed run."""
    start = time.process_time()
    _solve_h_u(0.1, np.array([0.2]), np.full((1, 3), 0.05), np.zeros(1))
    return time.process_time() - start


def import_cpu() -> float:
    """CPU s of a fresh interpreter doing the script's imports (user + system, children's rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", SCRIPT_IMPORTS], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    config = yaml.safe_load((ROOT / "workflow_config.yaml").read_text())
    promo = config["promotion"]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default="AGA")
    ap.add_argument("--K", type=int, default=promo["K"])
    ap.add_argument("--L", type=int, default=promo["L"])
    ap.add_argument("--c-bar", type=float, default=promo["l_sweep"]["c_bar"])
    ap.add_argument("--replicate", type=int, default=1)
    ap.add_argument("--periods", type=int, default=promo["periods"])
    ap.add_argument("--estimates", default=str(ROOT / "results/diffusion/estimates.parquet"))
    ap.add_argument("--baselines", nargs="*", choices=sorted(BASELINES), default=["reference", "v2", "v3"])
    args = ap.parse_args()

    spec = PlatformSpec(market=promo["market"], initial_videos=promo["initial_videos"],
                        new_per_period=promo["new_per_period"], periods=promo["periods"], gamma=promo["gamma"],
                        K=args.K, L=args.L, c_bar=args.c_bar)
    spec = replace(spec, periods=args.periods)
    seed = int(np.random.SeedSequence([int(config["seed"]), args.replicate]).generate_state(1)[0])  # as the script
    categories = None
    if promo["pq_source"] == "estimates" and Path(args.estimates).exists():
        categories = category_pq(pd.read_parquet(args.estimates))
    print(f"{args.policy} run: {spec}, replicate {args.replicate} (seed {seed}), (p, q) from "
          + (f"{len(categories)} categories of {args.estimates}" if categories is not None else "the published summary"))
    print(f"  first compiled h_v solve in this process (numba cache load, or compile if empty): {warm_up():.2f} CPU s")
    new, t_new = run(args.policy, spec, seed, categories, old=None)
    new_total = int(new[1]["adopters"].sum())
    print(f"  {'today' + chr(39) + 's planner (compiled h_v):':38s} {t_new:8.2f} CPU s; total adopters {new_total}")
    for name in args.baselines:
        old, t_old = run(args.policy, spec, seed, categories, old=name)
        same = all(a.equals(b) for a, b in zip(new, old))
        total_old = int(old[1]["adopters"].sum())
        print(f"  {BASELINES[name][2] + ' planner:':38s} {t_old:8.2f} CPU s; ratio to today's {t_old / t_new:.2f}x; "
              f"total adopters {total_old} (relative difference {abs(total_old / new_total - 1):.2g}); "
              f"periods and videos tables identical: {same}")
    print(f"  start-up, the script's imports in a fresh interpreter: {import_cpu():.2f} CPU s "
          f"({SCRIPT_IMPORTS!r})")


if __name__ == "__main__":
    main()
