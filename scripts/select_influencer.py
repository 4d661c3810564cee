"""Rule select_influencer: the profit-maximising follower count for one sponsored campaign (Section 4.4), the best
micro and mega picks, and the cost x revenue heatmap of Figure 12. The search runs over the FEI grid's whole range
(100 to 50M followers, as the README's notebook does); an optimum outside the data's follower range (1st-99th
percentile of all videos, Table 4's range) rests on the curve's extrapolation and is flagged (`optimum_extrapolated`,
the heatmap's `extrapolated`)."""

import numpy as np
import pandas as pd

from reach.causal.fei import data_support
from reach.causal.figures import heatmap_figure
from reach.causal.selection import campaign_impressions_curve, optimal_influencer, selection_heatmap
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "select_influencer")
log_run_header(log, "cpu", threads=smk.threads)
p = smk.params.selection
campaigns = pd.read_csv(smk.input.campaigns, sep="\t")
match = campaigns.loc[campaigns["slug"] == smk.wildcards.campaign, "hashtag"]
if match.empty:
    raise ValueError(f"{smk.wildcards.campaign} is not a campaign listed in {smk.input.campaigns}")
tag = match.iloc[0]
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "hashtag", "impressions", "log_followers"])
with np.load(smk.input.members, allow_pickle=False) as d:
    if d["video_id"].astype(str).tolist() != videos["video_id"].astype(str).tolist():
        raise ValueError(f"{smk.input.members} is not aligned to {smk.input.videos}")
    grid = d["log_followers_grid"]
    rows = np.flatnonzero(videos["hashtag"].to_numpy() == tag)
    if "point_h" in d.files:   # causal.point_estimate all_rows: the fit on all videos (rule simulate_band_sets)
        h = d["point_h"][rows].astype(np.float64)
        h_obs = d["point_h_observed"][rows].astype(np.float64)
    else:                      # the members' average
        h = d["h"][:, rows].astype(np.float64).mean(axis=0)
        h_obs = d["h_observed"][:, rows].astype(np.float64).mean(axis=0)
# a fine grid over the FEI grid's range: h is linear between the FEI grid's points at this resolution
fine = np.linspace(grid[0], grid[-1], int(p["grid_points"]))
_, support_lo, support_hi = data_support(videos["log_followers"].to_numpy(), grid)


def outside(followers) -> np.ndarray:
    """Follower counts outside the data's range, where the curve is its extrapolation."""
    log_f = np.log(np.asarray(followers, float))
    return (log_f < support_lo - 1e-9) | (log_f > support_hi + 1e-9)



h_fine = np.stack([np.interp(fine, grid, row) for row in h])
curve = campaign_impressions_curve(h_fine, h_obs, videos["impressions"].to_numpy()[rows])
best = optimal_influencer(fine, curve, p["revenue_per_impression"], p["cost_per_1k_followers"])
row = {"hashtag": tag, "n_videos": rows.size, "revenue_per_impression": p["revenue_per_impression"],
       "cost_per_1k_followers": p["cost_per_1k_followers"], **best.as_row(),
       "support_min_followers": float(np.exp(support_lo)), "support_max_followers": float(np.exp(support_hi)),
       "optimum_extrapolated": bool(outside(best.followers))}
pd.DataFrame([row]).to_csv(smk.output.selection, index=False)
log.info("#%s: optimum %.0f followers, profit %.0f (micro %.0f, mega %.0f)%s", tag, best.followers, best.profit,
         best.micro_profit, best.mega_profit, " -- outside the data's follower range %.0f-%.0f, an extrapolation"
         % (np.exp(support_lo), np.exp(support_hi)) if row["optimum_extrapolated"] else "")
heat = selection_heatmap(fine, curve, np.asarray(p["heatmap_revenues"], float), np.asarray(p["heatmap_costs"], float))
heat.insert(0, "hashtag", tag)
heat["extrapolated"] = outside(heat["optimal_followers"])
log.info("heatmap: %d of %d cells' optimum outside the data's follower range", int(heat["extrapolated"].sum()), len(heat))
heat.to_parquet(smk.output.heatmap, index=False)
heatmap_figure(heat, smk.output.figure, f"#{tag}: optimal followers (K)")
