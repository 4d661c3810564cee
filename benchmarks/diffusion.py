"""Speed of the diffusion stage: the Section 5.3 estimator study at the configured size, the estimators per call
(closed forms against the MLEs), the promotion-log simulator and the calibration on a scaled-down set of logs.
Prints figures and ratios; asserts nothing.

    .venv/bin/python benchmarks/diffusion.py [--replications 200] [--categories 8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import yaml

from reach.diffusion import estimators as E
from reach.diffusion.calibrate import calibrate, panel_from_logs
from reach.diffusion.data import validate_promotion_logs
from reach.diffusion.study import StudySpec, run_study, simulate_processes
from reach.synthetic.promotion_logs import PromotionLogSpec, simulate_promotion_logs

REPO = Path(__file__).resolve().parents[1]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    cfg = yaml.safe_load((REPO / "workflow_config.yaml").read_text())["diffusion"]
    ap = argparse.ArgumentParser()
    ap.add_argument("--replications", type=int, default=cfg["estimator_study"]["replications"])
    ap.add_argument("--categories", type=int, default=8)
    ap.add_argument("--seed", type=int, default=20201001)
    args = ap.parse_args()

    study = dict(cfg["estimator_study"], replications=args.replications)
    study["markets"] = tuple(study["markets"])
    spec = StudySpec(**study)
    runs, sec = timed(run_study, spec, args.seed)
    cells = 2 * len(spec.markets) * spec.replications
    print(f"estimator study (Section 5.3): {cells} cells x 4 methods in {sec:.1f} s "
          f"({1e3 * sec / cells:.1f} ms per cell); limit in the issue: 300 s on 2 cores")

    obs = simulate_processes("Linear", 40_000, 34, spec, np.random.default_rng(0))
    per = {}
    for name, fn in E.METHODS.items():
        reps = 200 if name in ("OLS", "D-OLS") else 20
        _, s = timed(lambda: [fn(obs) for _ in range(reps)])
        per[name] = s / reps
    print(f"per call on {obs.new.size} rows: " + ", ".join(f"{k} {1e3 * v:.2f} ms" for k, v in per.items()))
    print(f"D-MLE / D-OLS time ratio: {per['D-MLE'] / per['D-OLS']:.0f}x")

    sim = dict(cfg["promotion_logs"]["simulate"], n_categories=args.categories)
    (logs, cats, videos, meta), sec = timed(simulate_promotion_logs, PromotionLogSpec(**sim), args.seed)
    print(f"simulate_promotion_logs: {args.categories} categories, {len(videos)} videos, {len(logs):,} rows in "
          f"{sec:.1f} s ({len(logs) / sec / 1e6:.2f} M rows/s)")
    (clean, _, _), sec = timed(validate_promotion_logs, logs, meta["market"])
    print(f"validate_promotion_logs: {len(logs) / sec / 1e6:.2f} M rows/s")
    panel = panel_from_logs(clean, meta["market"])
    g = cfg["calibration"]["gamma_grid"]
    grid = np.round(np.arange(g["start"], g["stop"] + g["step"] / 2, g["step"]), 6)
    _, sec = timed(calibrate, panel, grid, cfg["calibration"]["fit_share"], cfg["calibration"]["validation_share"])
    print(f"calibrate: {len(videos)} videos, {grid.size} gamma values, 6 model x method in {sec:.1f} s "
          f"({1e3 * sec / len(videos):.2f} ms per video)")


if __name__ == "__main__":
    main()
