"""The average FEI curve's shape (paper 1, Figure 6: inverted U) against the synthetic world's truth, with the floor.

Reads a finished run: the average curve of results/causal/tables/average.parquet (the point estimate and its 95% band)
and the simulator's true FEI of every video (results/synthetic/truth/fei_grid.parquet). Prints, at every fourth grid
point inside the data's follower range (1st-99th percentile), the estimate, its band and the truth; then where each
curve peaks and how far it rises from the range's lower end to its peak (the inverted U's rising limb). Beside them
the floor: OLS of log impressions on one restricted cubic spline in log followers over all videos, handed the true
content and the unobserved confounder (reach.causal.truth.infeasible_campaign_fei with every video in one group), with
5 knots at Harrell's 5/95% quantiles or spaced from 1% to 99%, and with 7 knots (Harrell's) — what the data's follower
spread allows an estimator with no IV problem.

    .venv/bin/python benchmarks/average_curve_truth.py [--results results] [--epsilon 0.1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from reach.causal.truth import infeasible_campaign_fei, rise_to_peak, true_fei_on_grid

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--epsilon", type=float, default=0.1, help="causal.fei_epsilon of the run")
    args = ap.parse_args()
    res = args.results
    average = pd.read_parquet(res / "causal" / "tables" / "average.parquet")
    videos = pd.read_parquet(res / "ingest" / "videos.parquet")
    ids = videos["video_id"].astype(str).to_numpy()
    grid = average["log_followers"].to_numpy(float)
    truth = true_fei_on_grid(pd.read_parquet(res / "synthetic" / "truth" / "fei_grid.parquet"), ids, grid).mean(axis=0)
    tv = pd.read_parquet(res / "synthetic" / "truth" / "videos.parquet")
    tv = tv.assign(video_id=tv["video_id"].astype(str)).set_index("video_id").loc[ids]
    controls = np.column_stack([tv[[c for c in tv.columns if c.startswith("content_")]].to_numpy(float),
                                tv["confounder"].to_numpy(float)])
    t = videos["log_followers"].to_numpy(float)
    floors = {name: infeasible_campaign_fei(t, tv["log_impressions"].to_numpy(float), controls,
                                            np.zeros(t.size, dtype=int), grid, n_knots=knots, epsilon=args.epsilon,
                                            outer=outer)["0"]
              for name, knots, outer in (("floor 5 knots 5/95%", 5, None), ("floor 5 knots 1/99%", 5, 0.01),
                                         ("floor 7 knots", 7, None))}
    lo, hi = np.percentile(t, [1, 99])
    inside = (grid >= lo) & (grid <= hi)
    table = pd.DataFrame({"followers": np.exp(grid), "estimate": average["estimate"], "band_low": average["lower"],
                          "band_high": average["upper"], "truth": truth, **floors})[inside]
    print(f"average FEI over {np.exp(lo):,.0f}-{np.exp(hi):,.0f} followers ({res}):")
    print(table.iloc[::4].round(3).to_string(index=False))
    print("\nwhere each curve peaks inside that range, and its rise from the range's lower end to the peak:")
    g = grid[inside]
    rows = []
    for name in ("truth", "estimate", *floors):
        at, peak, rise = rise_to_peak(table[name].to_numpy(float), g)
        mae = float(np.abs(table[name] - table["truth"]).mean())
        rows.append({"curve": name, "peak_followers": round(at), "peak": round(peak, 3), "rise_to_peak": round(rise, 3),
                     "mae_vs_truth": round(mae, 3)})
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
