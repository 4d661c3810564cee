"""Rule simulate_band_sets: the width of CF-IV's bands from the procedure's spread over data sets. One CF-IV fit on
all videos (cross-validated choice), then causal.band_sets data sets drawn from it by the residual bootstrap of the
triangular model (reach.causal.control_function.simulate_from_fit: the videos' z and x as they are, their pairs of
first-stage and structural residuals permuted jointly), each fitted as an ensemble member is (a bootstrap resample,
the choice on its out-of-bag rows); their FEI curves on the follower grid. reach.causal.fei.band_width_factor turns
them into the bands' width (rule fei_tables). The fit on all videos is also CF-IV's point estimate (causal.point_estimate
all_rows): the estimator applied to the data, which the members' average over-smooths (docs/causal.md). It is saved as
a model (for a notebook's own videos) and as h and FEI on the grid (for the rules that read fei_members.npz)."""

import json
import time

import numpy as np

from reach.causal.control_function import simulate_from_fit
from reach.causal.design import load_design
from reach.causal.estimator import fit_estimator, fit_selected, make_config
from reach.causal.fei import fei_central_difference
from reach.causal.training import bootstrap_split
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "simulate_band_sets")
log_run_header(log, "cpu (numpy)", threads=smk.threads)
p = smk.params
_, design = load_design(smk.input.videos, smk.input.representation, smk.input.post,
                        hashtag_indicators=bool(p.hashtag_indicators))
n, sets, seed = design.t.size, int(p.band_sets), int(p.seed)
if sets < 2:
    raise ValueError(f"causal.band_sets is {sets}: a spread needs at least 2 data sets (0 turns the rule off)")
g = p.follower_grid
grid = np.linspace(np.log(g["min_followers"]), np.log(g["max_followers"]), int(g["n"]))
base_params = {**p.config, "direct_columns": design.n_hashtag_columns}
start = time.perf_counter()
base = fit_estimator("cfiv", design.t, design.z, design.x, design.y, make_config("cfiv", base_params, seed + 900_000))
log.info("fit on all %d videos: %s (%.1f s)", n, {k: base.info[k] for k in ("components", "penalty", "standardized",
                                                                             "first_stage_r2")},
         time.perf_counter() - start)
rng = np.random.default_rng([seed, 41])
curves, fits = [], []
for k in range(sets):
    t_star, y_star = simulate_from_fit(base, design.t, design.x, design.y, rng)
    rows, val = bootstrap_split(n, float(p.val_share), rng)
    candidates = [make_config("cfiv", {**base_params, **overrides}, seed + 900_000 + 1000 * (k + 1))
                  for overrides in (list(p.candidates) or [{}])]
    model, _ = fit_selected("cfiv", t_star[rows], design.z[rows], design.x[rows], y_star[rows], candidates,
                            (t_star[val], design.z[val], design.x[val], y_star[val]), groups=rows)
    curves.append(fei_central_difference(lambda lv: model.predict_grid(lv, design.x), grid, float(p.epsilon))[1]
                  .astype(np.float32))
    fits.append({"set": k, "components": model.info["components"], "penalty": model.info["penalty"],
                 "mean_fei": float(curves[-1].mean())})
    log.info("data set %d: %s", k, fits[-1])
curves = np.stack(curves)
base_h, base_fei = fei_central_difference(lambda lv: base.predict_grid(lv, design.x), grid, float(p.epsilon))
base.save(smk.output.fit)
truth = base_fei.mean(axis=0)
spread = curves.mean(axis=1).std(axis=0, ddof=1)
log.info("average curve over the %d data sets: sd %.4f (mean over the grid), |mean - the fit's| %.4f", sets,
         float(spread.mean()), float(np.abs(curves.mean(axis=(0, 1)) - truth).mean()))
np.savez_compressed(smk.output.sets, video_id=design.video_id.astype(str), log_followers_grid=grid, fei=curves,
                    fit_average_fei=truth, fit_fei=base_fei.astype(np.float32),   # the fit: the point estimate
                    fit_h=base_h.astype(np.float32), fit_h_observed=base.predict(design.t, design.x).astype(np.float32))
with open(smk.output.meta, "w") as f:
    json.dump({"sets": sets, "n_videos": int(n), "seconds": time.perf_counter() - start, "fit": base.info,
               "fits": fits}, f, indent=2, default=str)
