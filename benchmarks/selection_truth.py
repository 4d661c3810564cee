"""The influencer selection (paper 1, Section 4.4) graded against the synthetic world's truth, point estimates side by
side.

For every sponsored campaign and every (revenue per impression, pay per 1K followers) pair of causal.selection's
heatmap grid (Figure 12), the profit-maximising follower count from the true h of the simulator and from two point
estimates of a finished run's fei_members.npz: CF-IV's fit on all videos (point_h, causal.point_estimate all_rows) and
the members' average h. Prints, per campaign at the default pair, the true optimum, each estimate's pick and its regret
(true profit at the true optimum minus true profit at the pick), then over all campaigns x pairs the mean |log| ratio
of the picked to the true follower count and the mean regret relative to the true optimum's profit.

    .venv/bin/python benchmarks/selection_truth.py [--results results] [--config workflow_config.yaml]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from reach.causal.selection import campaign_impressions_curve, optimal_influencer, profit_curve

ROOT = Path(__file__).resolve().parents[1]


def impressions_on(fine: np.ndarray, grid: np.ndarray, h: np.ndarray, h_observed: np.ndarray,
                   impressions: np.ndarray) -> np.ndarray:
    """The campaign's impressions curve on the fine grid, h interpolated linearly as rule select_influencer does."""
    return campaign_impressions_curve(np.stack([np.interp(fine, grid, row) for row in h]), h_observed, impressions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--config", type=Path, default=ROOT / "workflow_config.yaml")
    args = ap.parse_args()
    sel = yaml.safe_load(args.config.read_text())["causal"]["selection"]
    res = args.results
    videos = pd.read_parquet(res / "ingest" / "videos.parquet",
                             columns=["video_id", "hashtag", "impressions", "log_followers"])
    ids = videos["video_id"].astype(str)
    campaigns = pd.read_csv(res / "causal" / "campaigns.tsv", sep="\t")["hashtag"].tolist()
    with np.load(res / "causal" / "fei_members.npz", allow_pickle=False) as d:
        if d["video_id"].astype(str).tolist() != ids.tolist():
            raise ValueError(f"{res / 'causal' / 'fei_members.npz'} is not aligned to the videos")
        if "point_h" not in d.files:
            raise ValueError("fei_members.npz has no point_h: a run with causal.point_estimate all_rows is needed")
        grid = d["log_followers_grid"]
        estimates = {"fit on all videos": (d["point_h"], d["point_h_observed"]),
                     "members' average": (d["h"].mean(axis=0), d["h_observed"].mean(axis=0))}
    truth = pd.read_parquet(res / "synthetic" / "truth" / "fei_grid.parquet").astype({"video_id": str})
    true_h = truth.pivot(index="video_id", columns="log_followers", values="h").loc[ids]
    true_grid, true_h = true_h.columns.to_numpy(float), true_h.to_numpy(float)
    fine = np.linspace(grid[0], grid[-1], int(sel["grid_points"]))
    pairs = [(float(r), float(c)) for r in sel["heatmap_revenues"] for c in sel["heatmap_costs"]]
    default = (float(sel["revenue_per_impression"]), float(sel["cost_per_1k_followers"]))
    rows = []
    for tag in campaigns:
        idx = np.flatnonzero(videos["hashtag"].to_numpy() == tag)
        own = videos["log_followers"].to_numpy()[idx]
        r_obs = videos["impressions"].to_numpy()[idx]
        t_h = true_h[idx]
        t_obs = np.array([np.interp(lv, true_grid, row) for lv, row in zip(own, t_h)])
        true_curve = impressions_on(fine, true_grid, t_h, t_obs, r_obs)
        curves = {name: impressions_on(fine, grid, h[idx], h_obs[idx], r_obs) for name, (h, h_obs) in estimates.items()}
        for revenue, cost in pairs:
            true_profit = profit_curve(np.exp(fine), true_curve, revenue, cost)
            best = optimal_influencer(fine, true_curve, revenue, cost)
            for name, curve in curves.items():
                pick = optimal_influencer(fine, curve, revenue, cost).followers
                at_pick = float(np.interp(np.log(pick), fine, true_profit))
                rows.append({"campaign": tag, "revenue": revenue, "cost": cost, "estimate": name,
                             "true_followers": best.followers, "picked_followers": pick,
                             "log_ratio": abs(np.log(pick / best.followers)), "regret": best.profit - at_pick,
                             "relative_regret": (best.profit - at_pick) / abs(best.profit)})
    df = pd.DataFrame(rows)
    at = df[(df.revenue == default[0]) & (df.cost == default[1])]
    wide = at.pivot(index="campaign", columns="estimate", values=["picked_followers", "regret"])
    wide.columns = [f"{value}: {name}" for value, name in wide.columns]
    wide.insert(0, "true_followers", at.groupby("campaign")["true_followers"].first())
    pd.set_option("display.width", 200)
    print(f"revenue per impression {default[0]}, pay per 1K followers {default[1]} (the run's default pair):")
    print(wide.round(0).to_string())
    print(f"\nover {len(campaigns)} campaigns x {len(pairs)} (revenue, pay) pairs of the heatmap grid:")
    summary = df.groupby("estimate").agg(mean_abs_log_ratio=("log_ratio", "mean"),
                                         mean_relative_regret=("relative_regret", "mean"),
                                         max_relative_regret=("relative_regret", "max"))
    print(summary.round(4).to_string())


if __name__ == "__main__":
    main()
