"""Rule select_influencer: the profit-maximising follower count for one sponsored campaign (Section 4.4), the best
micro and mega picks, and the cost x revenue heatmap of Figure 12."""

import numpy as np
import pandas as pd

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
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "hashtag", "impressions"])
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
# a fine grid inside the reported follower range: h is linear between the FEI grid's points at this resolution
fine = np.linspace(grid[0], grid[-1], int(p["grid_points"]))
h_fine = np.stack([np.interp(fine, grid, row) for row in h])
curve = campaign_impressions_curve(h_fine, h_obs, videos["impressions"].to_numpy()[rows])
best = optimal_influencer(fine, curve, p["revenue_per_impression"], p["cost_per_1k_followers"])
row = {"hashtag": tag, "n_videos": rows.size, "revenue_per_impression": p["revenue_per_impression"],
       "cost_per_1k_followers": p["cost_per_1k_followers"], **best.as_row()}
pd.DataFrame([row]).to_csv(smk.output.selection, index=False)
log.info("#%s: optimum %.0f followers, profit %.0f (micro %.0f, mega %.0f)", tag, best.followers, best.profit,
         best.micro_profit, best.mega_profit)
heat = selection_heatmap(fine, curve, np.asarray(p["heatmap_revenues"], float), np.asarray(p["heatmap_costs"], float))
heat.insert(0, "hashtag", tag)
heat.to_parquet(smk.output.heatmap, index=False)
heatmap_figure(heat, smk.output.figure, f"#{tag}: optimal followers (K)")
