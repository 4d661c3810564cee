"""Rule simulate_promotion: one 120-period platform run for a (policy, K, L, C-bar, replicate)."""

import numpy as np
import pandas as pd
from tqdm import tqdm

from reach.logs import setup_logging
from reach.promotion.platform import PlatformSpec, category_pq, simulate_platform

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "simulate_promotion")
w = smk.wildcards
spec = PlatformSpec(K=int(w.K), L=int(w.L), c_bar=float(w.cbar), **smk.params.platform)
seed = int(np.random.SeedSequence([int(smk.params.seed), int(w.rep)]).generate_state(1)[0])
log.info("policy %s, %s, replicate %s (seed %d)", w.policy, spec, w.rep, seed)
categories = None
if smk.params.pq_source == "estimates":
    categories = category_pq(pd.read_parquet(smk.input.estimates))
    log.info("video (p, q) drawn from %d calibrated categories (P-BDM D-OLS)", len(categories))
else:
    log.info("video (p, q) drawn from the published 61-category summary")
periods, videos = simulate_platform(w.policy, spec, seed, categories,
                                    progress=lambda it: tqdm(it, desc=w.policy, mininterval=10))
for table in (periods, videos):
    table.insert(0, "policy", w.policy)
    table.insert(1, "K", spec.K)
    table.insert(2, "L", spec.L)
    table.insert(3, "c_bar", spec.c_bar)
    table.insert(4, "replicate", int(w.rep))
periods.to_parquet(smk.output.periods, index=False)
videos.to_parquet(smk.output.videos, index=False)
log.info("total adoptions %d (direct %d, indirect %d)", int(videos["adopters"].sum()), int(periods["direct"].sum()),
         int(periods["indirect"].sum()))
