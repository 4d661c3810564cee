"""Rule estimate_fei: h and FEI (Eqs. 8-9, central differences) on the log-follower grid for every video and every
ensemble member of one causal estimator; ensemble means per video; structural residuals e^ = y - h(t, x) for the validity test."""

import numpy as np
import pandas as pd

from reach.causal.estimator import load_model
from reach.causal.design import load_design
from reach.causal.fei import fei_central_difference
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "estimate_fei")
log_run_header(log, "cpu", threads=smk.threads)
p = smk.params
_, design = load_design(smk.input.videos, smk.input.representation, smk.input.post,
                        hashtag_indicators=bool(smk.params.hashtag_indicators))
g = p.follower_grid
grid = np.linspace(np.log(g["min_followers"]), np.log(g["max_followers"]), int(g["n"]))
h_all, fei_all, h_obs, bias = [], [], [], []
for m, path in enumerate(smk.input.members):
    model = load_model(path)
    h, fei = fei_central_difference(lambda levels: model.predict_grid(levels, design.x), grid, float(p.epsilon))
    if int(p.band_bias_draws) and hasattr(model, "smoothing_bias_draws"):   # CF-IV: the bands' smoothing-bias term
        bias.append(model.smoothing_bias_draws(grid, design.x, float(p.epsilon), int(p.band_bias_draws),
                                               int(p.seed) * 1000 + m))
    h_all.append(h.astype(np.float32))
    fei_all.append(fei.astype(np.float32))
    h_obs.append(model.predict(design.t, design.x).astype(np.float32))
    log.info("%s: mean FEI %.3f, FEI at own followers %.3f", path, float(fei.mean()), float(np.mean(
        [np.interp(t, grid, row) for t, row in zip(design.t, fei)])))
tuning = pd.concat([pd.read_parquet(path) for path in smk.input.histories], ignore_index=True)
tuning.to_csv(smk.output.tuning, index=False)   # Deep IV: epochs and held-out losses; CF-IV: the selection grid
h_all, fei_all, h_obs = np.stack(h_all), np.stack(fei_all), np.stack(h_obs)
extra = {}
if bias:   # members x rows x p and members x draws x p x grid, zero-padded to the widest member's p
    if len(bias) != len(h_all):
        raise ValueError("some members carry smoothing-bias draws and others not")
    width = max(r.shape[1] for r, _ in bias)
    extra["bias_rows"] = np.stack([np.pad(r, ((0, 0), (0, width - r.shape[1]))) for r, _ in bias]).astype(np.float32)
    extra["bias_deltas"] = np.stack([np.pad(d, ((0, 0), (0, width - d.shape[1]), (0, 0))) for _, d in bias]
                                    ).astype(np.float32)
    log.info("smoothing-bias draws: %d per member, width %d", extra["bias_deltas"].shape[1], width)
band_sets = list(getattr(smk.input, "band_sets", []) or [])
if band_sets:   # CF-IV: FEI curves of fits on data sets drawn from its own fit (rule simulate_band_sets), the bands' width
    with np.load(band_sets[0], allow_pickle=False) as d:
        if d["video_id"].astype(str).tolist() != design.video_id.astype(str).tolist() or not np.allclose(
                d["log_followers_grid"], grid):
            raise ValueError(f"{band_sets[0]} is not aligned to the videos and the grid of {smk.output.members}")
        extra["sim_fei"] = d["fei"].astype(np.float32)
        if p.point_estimate == "all_rows" and "fit_fei" in d.files:   # the fit on all videos is the point
            # estimate of FEI and of h (Table 4's impressions curves, the selection); the members, the band
            if "fit_h" not in d.files:
                raise ValueError(f"{band_sets[0]} has fit_fei but no fit_h: rerun rule simulate_band_sets")
            extra["point_fei"] = d["fit_fei"].astype(np.float32)
            extra["point_h"] = d["fit_h"].astype(np.float32)
            extra["point_h_observed"] = d["fit_h_observed"].astype(np.float32)
    log.info("band width: %d simulated data sets", extra["sim_fei"].shape[0])
if p.point_estimate == "all_rows" and "point_fei" not in extra and band_sets:
    raise ValueError(f"{band_sets[0]} has no fit_fei (the fit on all videos): rerun rule simulate_band_sets")
log.info("point estimate: %s", "the fit on all videos (causal.point_estimate all_rows)" if "point_fei" in extra
         else "the members' average" + (" (no band sets: causal.band_sets 0, or Deep IV)"
                                        if p.point_estimate == "all_rows" else ""))
np.savez_compressed(smk.output.members, video_id=design.video_id.astype(str), log_followers_grid=grid, h=h_all, fei=fei_all,
                    h_observed=h_obs, meta_epsilon=np.array([float(p.epsilon)]), **extra)
n, k = design.video_id.size, grid.size
pd.DataFrame({
    "video_id": np.repeat(design.video_id, k),
    "log_followers": np.tile(grid, n),
    "h": extra["point_h"].ravel() if "point_h" in extra else h_all.mean(axis=0).ravel(),
    "fei": extra["point_fei"].ravel() if "point_fei" in extra else fei_all.mean(axis=0).ravel(),
    "fei_sd": fei_all.std(axis=0).ravel(),
}).to_parquet(smk.output.grid, index=False)
residual = design.y - h_obs.mean(axis=0)   # the validity test's residuals stay the members' (docs/causal.md)
pd.DataFrame({"video_id": design.video_id, "h_observed": h_obs.mean(axis=0), "residual": residual}).to_parquet(
    smk.output.residuals, index=False)
log.info("%d members x %d videos x %d grid points; residual sd %.3f (y sd %.3f)", len(h_all), n, k,
         float(residual.std()), float(design.y.std()))
