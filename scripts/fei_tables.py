"""Rule fei_tables: average FEI and counterfactual prediction curves with bootstrap bands (Figure 6), by engagement
tactic (Figure 7) and topic (Figure 8), campaign FEI by influencer tier with curve shapes (Table 4, Figures 9-11),
and the naive correlational curve (Figure 3)."""

import json

import numpy as np
import pandas as pd

from reach.causal.estimator import SHORT_LABELS
from reach.causal.fei import (TIER_NAMES, band_width_factor, bootstrap_draws, bootstrap_mean_curve,
                              classify_curve_shape, counterfactual_prediction, data_support, label_groups,
                              naive_curve, tier_averages)
from reach.causal.figures import average_figure, campaigns_figure, grouped_figure, naive_figure
from reach.causal.selection import campaign_impressions_curve
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "fei_tables")
log_run_header(log, "cpu", threads=smk.threads)
p = smk.params
with np.load(smk.input.members, allow_pickle=False) as d:
    members = {k: d[k] for k in d.files}
fei = members["fei"].astype(np.float64)                     # members x videos x grid
# h, videos x grid, and at the videos' own followers: the point estimate's (the fit on all videos, causal.point_estimate
# all_rows) where fei_members.npz carries it, else the ensemble mean
h = (members["point_h"] if "point_h" in members else members["h"].mean(axis=0)).astype(np.float64)
h_observed = (members["point_h_observed"] if "point_h_observed" in members
              else members["h_observed"].mean(axis=0)).astype(np.float64)
grid = members["log_followers_grid"]
# CF-IV's bands add draws of the ridge's smoothing bias to the bootstrap (reach.causal.control_function.
# smoothing_bias_cov); Deep IV's members carry none
bias = (members["bias_rows"], members["bias_deltas"]) if "bias_rows" in members else None
# CF-IV's bands take their sampling width from fits on data sets drawn from its own fit (rule simulate_band_sets;
# reach.causal.fei.band_width_factor, per set of rows averaged); without them, the members' spread
simulated = members.get("sim_fei")
# CF-IV with causal.point_estimate all_rows: the point estimate is its fit on all videos (rule simulate_band_sets), the
# bands keep the members' spread centred on it; else the members' average
point = members["point_fei"].astype(np.float64) if "point_fei" in members else None


def width(rows=None) -> float:
    return 1.0 if simulated is None else band_width_factor(fei, simulated, rows)


videos = pd.read_parquet(smk.input.videos)
ids = videos["video_id"].astype(str).to_numpy()
if members["video_id"].astype(str).tolist() != ids.tolist():
    raise ValueError(f"{smk.input.members} is not aligned to {smk.input.videos}")
log.info("%d ensemble members, %d videos, %d grid points", fei.shape[0], fei.shape[1], grid.size)
seed = int(p.seed)
alpha = 0.025

# Figure 6: the average curve; the counterfactual curve anchored on average impressions at the average log
# followers (footnote 12), with its band from the same bootstrap draws
factor = width()
log.info("band width factor of the average curve: %.3f (%s)", factor,
         "members' spread" if simulated is None else f"{simulated.shape[0]} simulated data sets")
average = bootstrap_mean_curve(fei, p.n_boot, seed, bias=bias, width_factor=factor, point=point)
average.insert(0, "log_followers", grid)
anchor_l, anchor_r = float(videos["log_followers"].mean()), float(videos["impressions"].mean())
draws = bootstrap_draws(fei, p.n_boot, seed, bias=bias, width_factor=factor, point=point)
paths = np.stack([counterfactual_prediction(d, grid, anchor_l, anchor_r) for d in draws])
average["impressions"] = counterfactual_prediction(average["estimate"].to_numpy(), grid, anchor_l, anchor_r)
average["impressions_lower"] = np.quantile(paths, alpha, axis=0)
average["impressions_upper"] = np.quantile(paths, 1 - alpha, axis=0)
average["band_smoothing_bias"] = bias is not None   # the report says which band it shows
average["band_width_factor"] = factor               # 1: the members' spread alone
average["band_sets"] = 0 if simulated is None else int(simulated.shape[0])
average["point_estimate"] = "members" if point is None else "all_rows"
average.to_parquet(smk.output.average, index=False)


def grouped(labels, name: str) -> pd.DataFrame:
    groups, unlabelled = label_groups(labels)
    log.info("%s: %s (%d videos without one, in no group)", name, {v: int(r.size) for v, r in groups}, unlabelled)
    parts = []
    for k, (value, rows) in enumerate(groups):
        band = bootstrap_mean_curve(fei, p.n_boot, seed + 1 + k, rows=rows, bias=bias, width_factor=width(rows),
                                    point=point)
        band.insert(0, "log_followers", grid)
        band.insert(0, "n_videos", rows.size)
        band.insert(0, name, value)
        parts.append(band)
    return pd.concat(parts, ignore_index=True)


by_tactic = grouped(videos["engagement_tactic"].to_numpy(), "engagement_tactic")
by_tactic.to_parquet(smk.output.by_tactic, index=False)
topics = pd.read_parquet(smk.input.topics).set_index("hashtag")["topic"]
by_topic = grouped(videos["hashtag"].map(topics).to_numpy(), "topic")
by_topic.to_parquet(smk.output.by_topic, index=False)

# Table 4: per sponsored campaign (a commerce hashtag), tier averages of its videos' FEI, bands and the shape. A tier
# average runs over the grid points inside the data's follower range (1st-99th percentile of log followers): below
# and above it every curve is the spline's extrapolation, which no data informs (docs/causal.md)
campaigns = sorted(videos.loc[videos["hashtag_is_commerce"].astype(bool), "hashtag"].unique())
support, support_lo, support_hi = data_support(videos["log_followers"], grid)
log.info("Table 4's tier averages over %.0f-%.0f followers (%d of %d grid points)", np.exp(support_lo),
         np.exp(support_hi), int(support.sum()), grid.size)
tier_rows, curve_parts = [], []
for k, tag in enumerate(campaigns):
    rows = np.flatnonzero(videos["hashtag"].to_numpy() == tag)
    member_tiers = tier_averages(fei[:, rows].mean(axis=1), grid, support)            # members x tiers
    factor = width(rows)
    tier_draws = tier_averages(bootstrap_draws(fei, p.n_boot, seed + 100 + k, rows=rows, bias=bias,
                                               width_factor=factor, point=point), grid, support)
    estimate = member_tiers.mean(axis=0) if point is None else tier_averages(point[rows].mean(axis=0), grid, support)[0]
    row = {"hashtag": tag, "n_videos": rows.size, "shape": classify_curve_shape(estimate, p.linear_cv),
           "support_min_followers": float(np.exp(support_lo)), "support_max_followers": float(np.exp(support_hi)),
           "band_width_factor": factor}
    row.update({t: v for t, v in zip(TIER_NAMES, estimate)})
    row.update({f"{t}_lower": v for t, v in zip(TIER_NAMES, np.quantile(tier_draws, alpha, axis=0))})
    row.update({f"{t}_upper": v for t, v in zip(TIER_NAMES, np.quantile(tier_draws, 1 - alpha, axis=0))})
    tier_rows.append(row)
    band = bootstrap_mean_curve(fei, p.n_boot, seed + 100 + k, rows=rows, bias=bias, width_factor=factor,
                                point=point)
    band.insert(0, "log_followers", grid)
    band.insert(0, "hashtag", tag)
    band["impressions"] = campaign_impressions_curve(h[rows], h_observed[rows], videos["impressions"].to_numpy()[rows])
    curve_parts.append(band)
campaign_tiers = pd.DataFrame(tier_rows)
campaign_tiers.to_parquet(smk.output.campaign_tiers, index=False)
campaign_curves = pd.concat(curve_parts, ignore_index=True) if curve_parts else pd.DataFrame()
campaign_curves.to_parquet(smk.output.campaign_curves, index=False)
with open(smk.output.table4, "w") as f:
    f.write(f"Tier averages over {np.exp(support_lo):,.0f}-{np.exp(support_hi):,.0f} followers (the data's 1st-99th "
            "percentile); a tier outside it is blank.\n\n")
    f.write("| campaign | shape | " + " | ".join(TIER_NAMES) + " |\n|---|---|" + "---|" * len(TIER_NAMES) + "\n")
    for row in tier_rows:
        f.write(f"| #{row['hashtag']} | {row['shape']} | "
                + " | ".join("" if not np.isfinite(row[t]) else f"{row[t]:.2f}" for t in TIER_NAMES) + " |\n")
log.info("campaign shapes: %s", json.dumps({r["hashtag"]: r["shape"] for r in tier_rows}))

# Figure 3: the naive curve, a flexible regression of log impressions on log followers alone
naive = naive_curve(videos["log_followers"].to_numpy(), videos["log_impressions"].to_numpy(), grid, df=p.naive_df)
naive.to_parquet(smk.output.naive, index=False)

average_figure(average, smk.output.fig6)
grouped_figure(by_tactic, "engagement_tactic", smk.output.fig7, "Average FEI by engagement tactic")
grouped_figure(by_topic, "topic", smk.output.fig8, "Average FEI by topic")
with open(smk.input.choice) as f:
    estimator_name = json.load(f)["estimator"]                # the legend names the estimator behind the curve
naive_figure(naive, average, smk.output.fig3, SHORT_LABELS.get(estimator_name, estimator_name))
if tier_rows:
    campaigns_figure(campaign_curves, campaign_tiers[["hashtag", "shape"]], smk.output.fig9)
else:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.text(0.5, 0.5, "no sponsored campaigns in this corpus", ha="center")
    fig.savefig(smk.output.fig9)
log.info("average FEI peaks at %.0f followers (%.3f)", np.exp(grid[int(np.argmax(average["estimate"]))]),
         float(average["estimate"].max()))
