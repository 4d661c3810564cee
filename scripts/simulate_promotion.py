"""Rules simulate_promotion (one run) and simulate_promotion_policies (Table 1's policies on one replicate's seed):
120-period platform runs for a (K, L, C-bar, replicate), one per policy in params.policies. Output order: the periods
table of every policy, then the videos table of every policy."""

import numpy as np
import pandas as pd
from tqdm import tqdm

from reach.logs import log_run_header, setup_logging
from reach.promotion.platform import PlatformSpec, category_gamma, category_pq, simulate_platform

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "simulate_promotion")
log_run_header(log, "cpu", threads=smk.threads)
w = smk.wildcards
policies = list(smk.params.policies)
if len(smk.output) != 2 * len(policies):
    raise ValueError(f"{len(smk.output)} outputs for policies {policies}: expected a periods and a videos file each")
platform = dict(smk.params.platform)
seed = int(np.random.SeedSequence([int(smk.params.seed), int(w.rep)]).generate_state(1)[0])
categories = None
if smk.params.pq_source == "estimates":
    estimates = pd.read_parquet(smk.input.estimates)
    categories = category_pq(estimates)
    # q decays as it was estimated: the calibrated gamma, not promotion.gamma (which serves pq_source: published)
    gamma = category_gamma(estimates)
    if gamma != float(platform["gamma"]):
        log.warning("promotion.gamma is %s, but the categories' q were estimated under gamma %s: using %s",
                    platform["gamma"], gamma, gamma)
    platform["gamma"] = gamma
    log.info("video (p, q) drawn from %d calibrated categories (P-BDM D-OLS, gamma %s)", len(categories), gamma)
else:
    log.info("video (p, q) drawn from the published 61-category summary")
spec = PlatformSpec(K=int(w.K), L=int(w.L), c_bar=float(w.cbar), **platform)
for i, policy in enumerate(policies):
    log.info("policy %s, %s, replicate %s (seed %d)", policy, spec, w.rep, seed)
    periods, videos = simulate_platform(policy, spec, seed, categories,
                                        progress=lambda it: tqdm(it, desc=policy, mininterval=10))
    for table in (periods, videos):
        table.insert(0, "policy", policy)
        table.insert(1, "K", spec.K)
        table.insert(2, "L", spec.L)
        table.insert(3, "c_bar", spec.c_bar)
        table.insert(4, "replicate", int(w.rep))
    periods.to_parquet(smk.output[i], index=False)
    videos.to_parquet(smk.output[len(policies) + i], index=False)
    log.info("%s: total adoptions %d (direct %d, indirect %d)", policy, int(videos["adopters"].sum()),
             int(periods["direct"].sum()), int(periods["indirect"].sum()))
