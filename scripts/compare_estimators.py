"""Rule compare_estimators: the causal estimators side by side on the same design — per estimator and sponsored
campaign the six tier-average FEIs of its point estimate (CF-IV's fit on all videos under causal.point_estimate
all_rows, else the members' average) and the Table 4 shape, the estimator's own held-out loss (member 0), and on the
synthetic world the errors against the simulator's truth (campaign tier MAE, shapes right, average-curve MAE,
per-video FEI correlation). The estimator of results/causal/estimator.json (rule use_estimator) is the one the rest
of the report uses; its mean causal validation loss over the members stands beside each."""

import json

import numpy as np
import pandas as pd

from reach.causal.estimator import LABELS
from reach.causal.fei import TIER_NAMES, campaign_shapes, data_support
from reach.causal.truth import curve_error, true_fei_on_grid
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "compare_estimators")
log_run_header(log, "cpu", threads=smk.threads)
p = smk.params
videos = pd.read_parquet(smk.input.videos)
ids = videos["video_id"].astype(str).to_numpy()
campaigns = sorted(videos.loc[videos["hashtag_is_commerce"].astype(bool), "hashtag"].unique())
if smk.input.truth:   # synthetic world only: the simulator's truth files grade, nothing is fitted on them
    truth_grid = pd.read_parquet(smk.input.truth[0])
    true_types = pd.read_parquet(smk.input.truth[1]).set_index("hashtag")["campaign_type"]
with open(smk.input.choice) as f:
    choice = json.load(f)
validation = {r["estimator"]: (np.nan if r["causal_validation_loss"] is None else r["causal_validation_loss"])
              for r in choice["estimators"]}
parts = []
for name, members_path, meta_path in zip(p.estimators, smk.input.members, smk.input.metas):
    with np.load(members_path, allow_pickle=False) as d:
        # the estimator's point estimate, as fei_tables and check_fei_truth take it: CF-IV's fit on all videos where
        # the file carries it (causal.point_estimate all_rows), else the members' average
        point = "point_fei" in d.files
        grid = d["log_followers_grid"]
        fei = (d["point_fei"] if point else d["fei"].mean(axis=0)).astype(np.float64)
        if d["video_id"].astype(str).tolist() != ids.tolist():
            raise ValueError(f"{members_path} is not aligned to {smk.input.videos}")
    with open(meta_path) as f:
        info = json.load(f).get("info", {})
    support, _, _ = data_support(videos["log_followers"], grid)   # Table 4 over the data's follower range (fei_tables)
    tab = campaign_shapes(fei, grid, videos["hashtag"].to_numpy(), campaigns, float(p.linear_cv), support)
    tab.insert(0, "estimator", name)
    tab["label"] = LABELS[name]
    tab["used_by_report"] = name == choice["estimator"]
    tab["point_estimate"] = "all_rows" if point else "members"
    tab["held_out_loss_member0"] = float(info.get("second_stage_val_loss", np.nan))   # each estimator's own criterion
    tab["causal_validation_loss"] = validation.get(name, np.nan)   # the same criterion for both, mean over members
    if smk.input.truth:
        true_fei = true_fei_on_grid(truth_grid, ids, grid)
        true_tab = campaign_shapes(true_fei, grid, videos["hashtag"].to_numpy(), campaigns, float(p.linear_cv),
                                   support)
        tab["true_shape"] = [true_types.get(t, s) for t, s in zip(tab["hashtag"], true_tab["shape"])]
        tab["tier_mae"] = np.nanmean(np.abs(tab[list(TIER_NAMES)].to_numpy() - true_tab[list(TIER_NAMES)].to_numpy()),
                                     axis=1)
        tab["average_fei_mae"] = curve_error(fei.mean(axis=0), true_fei.mean(axis=0), support)
        own = np.array([np.interp(t, grid, row) for t, row in zip(videos["log_followers"], fei)])
        true_own = np.array([np.interp(t, grid, row) for t, row in zip(videos["log_followers"], true_fei)])
        tab["video_fei_corr"] = float(np.corrcoef(own, true_own)[0, 1])
        log.info("%s: campaign tier MAE %.3f, shapes %d/%d, average FEI MAE %.3f, video corr %.2f", name,
                 tab["tier_mae"].mean(), int((tab["shape"] == tab["true_shape"]).sum()), len(tab),
                 tab["average_fei_mae"].iloc[0] if len(tab) else np.nan, tab["video_fei_corr"].iloc[0] if len(tab)
                 else np.nan)
    parts.append(tab)
pd.concat(parts, ignore_index=True).to_csv(smk.output[0], index=False)
