"""Rule fit_growth_model: Web Appendix G Stage 1, the Stan log-growth model (Eqs. 17-23), with cmdstanpy when a
CmdStan installation is found, else pystan 3 (httpstan) on the same .stan file; the backend is written out."""

import json
import logging
import os
import time

import numpy as np
import pandas as pd

from reach.growth import stage1 as s1
from reach.growth.diagnostics import bayes_r2
from reach.growth.figures import stage1_figure
from reach.logs import log_run_header, setup_logging, stderr_to_log

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "fit_growth_model")
for noisy in ("aiohttp.access", "httpstan", "asyncio"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
p = smk.params
backend = s1.stan_backend() if p.backend == "auto" else p.backend
log_run_header(log, "cpu", f"Stan model log_growth.stan through {backend}",
               "paper" if backend == "cmdstanpy" else "substitute", threads=smk.threads)
t_start = time.perf_counter()
videos = pd.read_parquet(smk.input.videos)
daily = pd.read_parquet(smk.input.daily)
sub = p.max_videos_per_hashtag
full = s1.build_panel(videos, daily, noise_scale=p.noise_scale)
panel, rest = (full, None) if sub is None else s1.subsample(full, int(sub), int(p.seed))
log.info("panel: %d videos, %d hashtags, %d video-days, covariates %s; dropped %s", len(panel.videos),
         len(panel.hashtags), panel.plays.size, panel.covariates, panel.dropped)
data = s1.stan_data(panel, prior_sd=float(p.prior_sd), ig_shape=float(p.ig_shape), ig_scale=float(p.ig_scale))
log.info("Stan backend: %s (requested %s); method %s", backend, p.backend, p.method)
chains = int(p.chains)
inits = s1.initial_values(panel, data, chains, int(p.seed))
os.environ.setdefault("STAN_NUM_THREADS", str(smk.threads))
# stanc's notes (e.g. "parameter ... has no priors ... may be a false positive": the priors' scales are data) and the
# sampler's progress go to this rule's log, not the console
with stderr_to_log(log, f"{backend} build and sampling output"):
    fit = s1.fit_stan(data, inits, backend=backend, method=p.method, chains=chains, warmup=int(p.warmup),
                      samples=int(p.samples), adapt_delta=float(p.adapt_delta), max_treedepth=int(p.max_treedepth),
                      seed=int(p.seed), parallel_chains=int(smk.threads))
log.info("sampling took %.1f s; divergences %d, max-treedepth hits %d, mean leapfrog steps %.1f, step size %.3g",
         fit.seconds, fit.divergences, fit.max_treedepth_hits, fit.mean_leapfrog, fit.mean_stepsize)
summary = s1.summaries(panel, fit)
summary.insert(0, "backend", backend)
summary.to_parquet(smk.output.summary, index=False)
parts = s1.covariate_parts(panel, fit)
vt = s1.video_table(panel, fit, parts)
vt["source"] = f"posterior mean ({fit.method})"
if rest is not None and len(rest.videos):
    cm = s1.conditional_map(rest, fit)
    cm["source"] = "conditional mode given posterior means (not in the NUTS subsample)"
    log.info("%d videos outside the subsample: a, b by the conditional mode", len(cm))
    vt = pd.concat([vt, cm], ignore_index=True)
vt.to_parquet(smk.output.videos, index=False)
r2 = s1.r2_table(fit, parts)
r2.insert(0, "backend", backend)
r2.to_parquet(smk.output.r2, index=False)
log.info("Bayesian R^2:\n%s", r2.to_string())
r2_draws = {f"{t} (hashtag-level part)": bayes_r2(fit.draws[t].reshape(-1, fit.draws[t].shape[-1]),
                                                 parts[f"{t}_hat_hashtag"]) for t in ("a", "b")}
stage1_figure(smk.output.figure, panel, vt.iloc[:len(panel.videos)], r2_draws, seed=int(p.seed))
reported = summary[summary["group"] != "video"]
vids = summary[summary["group"] == "video"]
manifest = {
    "backend": backend, "method": fit.method,
    "scale": ("all videos" if sub is None else f"subsample of at most {sub} videos per hashtag (growth.max_videos_per_hashtag)"),
    "noise_scale": panel.noise_scale, "settings": fit.settings, "sampling_seconds": round(fit.seconds, 1),
    "rule_seconds": round(time.perf_counter() - t_start, 1), "threads": int(smk.threads),
    "videos": int(len(panel.videos)), "videos_conditional_mode": 0 if rest is None else int(len(rest.videos)), "hashtags": len(panel.hashtags), "video_days": int(panel.plays.size),
    "covariates": panel.covariates, "dropped": panel.dropped,
    "divergences": fit.divergences, "max_treedepth_hits": fit.max_treedepth_hits,
    "mean_leapfrog": fit.mean_leapfrog, "mean_stepsize": fit.mean_stepsize,
    "max_rhat_reported": float(reported["rhat"].max()), "min_ess_bulk_reported": float(reported["ess_bulk"].min()),
    "share_reported_rhat_below_1.01": float((reported["rhat"] < 1.01).mean()),
    "max_rhat_video_a_b": float(vids["rhat"].max()), "min_ess_bulk_video_a_b": float(vids["ess_bulk"].min()),
    "bayes_r2": r2.drop(columns="backend").to_dict(orient="records"),
    "rhat_note": ("R-hat and ESS are NaN for pathfinder/variational draws (no Markov chains)"
                  if fit.method != "nuts" else "rank-normalised split R-hat, bulk/tail ESS (Vehtari et al. 2021)"),
}
with open(smk.output.manifest, "w") as fh:
    json.dump(manifest, fh, indent=2, default=float)
log.info("manifest: %s", json.dumps({k: manifest[k] for k in ("backend", "method", "scale", "sampling_seconds",
                                                               "max_rhat_reported", "max_rhat_video_a_b")}))
