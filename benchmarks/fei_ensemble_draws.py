"""How much do the workflow's FEI truth checks move with the Deep IV ensemble draw alone?

results/causal/truth_check.csv scores one ensemble (causal.members bootstrap members, member m seeded seed + 1000 m,
as rule train_causal). This benchmark retrains other, disjoint member sets on the same design (videos, post
statistics and a representation r; by default the workflow's results/represent/r.parquet) and prints for each set the
same figures as check_fei_truth: the average FEI curve's MAE against the truth and its band's coverage over the
data's 1st-99th percentile of log followers, the naive curve's MAE beside it, and the campaign tier MAE and shape
accuracy (Table 4). Members 0..k-1 reproduce the workflow's own figures exactly. A second --representation (e.g. r
from a VS-VAE variant) is scored on the same member sets, so a change of r can be told apart from the draw.

    .venv/bin/python benchmarks/fei_ensemble_draws.py [--sets 0-4 5-9 10-14] [--representation PATH ...]

Inputs: the workflow's outputs for the default world (results/ingest, results/features/post.npz,
results/causal/tables/naive.parquet) and the truth (results/synthetic/truth). Asserts nothing; ~25 s per member on 2
CPU threads.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from reach.causal.deepiv import DeepIVConfig, bootstrap_split, fit_deepiv
from reach.causal.design import build_design
from reach.causal.fei import (TIER_NAMES, bootstrap_mean_curve, campaign_shapes, classify_curve_shape,
                              fei_central_difference, tier_averages)
from reach.causal.truth import band_coverage, curve_error, data_support, true_fei_on_grid

ROOT = Path(__file__).resolve().parents[1]


def _members(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["0-4", "5-9", "10-14"], help="member sets, e.g. 0-4 (inclusive)")
    ap.add_argument("--representation", nargs="+", default=None,
                    help="r tables (columns video_id, r_*); default: the workflow's results/represent/r.parquet")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", default=str(ROOT / "results"))
    args = ap.parse_args()
    res = Path(args.results)
    config = yaml.safe_load((ROOT / "workflow_config.yaml").read_text())
    causal, seed = config["causal"], int(config["seed"])
    g = config["follower_grid"]
    grid = np.linspace(np.log(g["min_followers"]), np.log(g["max_followers"]), int(g["n"]))
    videos = pd.read_parquet(res / "ingest" / "videos.parquet")
    ids = videos["video_id"].astype(str).to_numpy()
    with np.load(res / "features" / "post.npz", allow_pickle=False) as d:
        post = {k: d[k] for k in d.files}
    true_fei = true_fei_on_grid(pd.read_parquet(res / "synthetic" / "truth" / "fei_grid.parquet"), ids, grid)
    true_average = true_fei.mean(axis=0)
    support, _, _ = data_support(videos["log_followers"], grid)
    campaigns = sorted(videos.loc[videos["hashtag_is_commerce"].astype(bool), "hashtag"].unique())
    true_types = pd.read_parquet(res / "synthetic" / "truth" / "campaign_tiers.parquet").set_index("hashtag")
    true_campaigns = campaign_shapes(true_fei, grid, videos["hashtag"].to_numpy(), campaigns,
                                     float(causal["linear_cv"]), support).set_index("hashtag")   # as check_fei_truth
    true_campaigns["campaign_type"] = true_types.loc[campaigns, "campaign_type"]
    naive_mae = curve_error(pd.read_parquet(res / "causal" / "tables" / "naive.parquet")["elasticity"], true_average,
                            support)
    rows = []
    for rep_path in args.representation or [str(res / "represent" / "r.parquet")]:
        design = build_design(videos, pd.read_parquet(rep_path), post["values"], post["video_id"],
                              [str(c) for c in post["meta_columns"]], source=rep_path)
        n = design.t.size
        fei_of: dict[int, np.ndarray] = {}
        for spec in args.sets:
            tic = time.perf_counter()
            for m in _members(spec):
                if m in fei_of:
                    continue
                cfg = DeepIVConfig(**causal["deepiv"], seed=seed + 1000 * m, threads=args.threads)
                if causal["bootstrap_members"]:  # as rule train_causal
                    fit_rows, val = bootstrap_split(n, cfg.val_share, np.random.default_rng([seed, 7, m]))
                    validation = (design.t[val], design.z[val], design.x[val], design.y[val])
                else:
                    fit_rows, validation = np.arange(n), None
                model = fit_deepiv(design.t[fit_rows], design.z[fit_rows], design.x[fit_rows], design.y[fit_rows],
                                   cfg, validation=validation)
                fei_of[m] = fei_central_difference(lambda lv: model.predict_grid(lv, design.x), grid,
                                                   float(causal["fei_epsilon"]))[1]
            fei = np.stack([fei_of[m] for m in _members(spec)])
            average = bootstrap_mean_curve(fei, int(causal["n_boot"]), seed)
            errors, hits = [], []
            for tag in campaigns:
                idx = np.flatnonzero(videos["hashtag"].to_numpy() == tag)
                est = tier_averages(fei[:, idx].mean(axis=1), grid, support).mean(axis=0)
                errors.append(np.abs(est - true_campaigns.loc[tag, list(TIER_NAMES)].to_numpy(float)).mean())
                hits.append(classify_curve_shape(est, float(causal["linear_cv"])) ==
                            true_campaigns.loc[tag, "campaign_type"])
            average_mae = curve_error(average["estimate"], true_average, support)
            row = {"representation": Path(rep_path).name, "members": spec, "average_fei_mae": average_mae,
                   "average_band_coverage": band_coverage(average["lower"], average["upper"], true_average, support),
                   "naive_fei_mae": naive_mae,
                   "naive / average": naive_mae / average_mae, "campaign_tier_mae": float(np.mean(errors)),
                   "shape_accuracy": float(np.mean(hits)), "seconds": time.perf_counter() - tic}
            rows.append(row)
            print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format=lambda f: f"{f:.3f}"))
    print("\nspread over the sets (max - min): "
          + ", ".join(f"{c} {table[c].max() - table[c].min():.3f}" for c in
                      ("average_fei_mae", "average_band_coverage", "campaign_tier_mae")))


if __name__ == "__main__":
    main()
