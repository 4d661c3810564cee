"""Rule iv_validity: the instrument's first-stage strength (relevance) and the validity check of Eq. 7 (Li et al.
2022): gamma = 1 - loss(model of e^ from x, z) / loss(zero) on held-out videos with its bootstrap interval, and the
p-value of a conditional permutation test of z given x (H0: z adds nothing to predicting e^ beyond x)."""

import json

import pandas as pd

from reach.causal.design import load_design
from reach.causal.validity import first_stage_strength, iv_validity
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "iv_validity")
log_run_header(log, "cpu", threads=smk.threads)
p = smk.params
videos, design = load_design(smk.input.videos, smk.input.representation, smk.input.post,
                             hashtag_indicators=bool(smk.params.hashtag_indicators))
residuals = pd.read_parquet(smk.input.residuals)
if residuals["video_id"].astype(str).tolist() != design.video_id.tolist():
    raise ValueError(f"{smk.input.residuals} is not aligned to {smk.input.videos}")
strength = first_stage_strength(design.t, design.z, design.x)
validity = iv_validity(residuals["residual"].to_numpy(float), design.x, design.z, seed=int(p.seed), **p.validity)
level = validity["ci_level"]
summary = (f"gamma = {validity['gamma']:.5f} [{level:.0%} CI {validity['gamma_ci_low']:.5f}, "
           f"{validity['gamma_ci_high']:.5f}], beyond x {validity['gamma_beyond_x']:.5f} "
           f"[{validity['gamma_beyond_x_ci_low']:.5f}, {validity['gamma_beyond_x_ci_high']:.5f}]; "
           f"p = {validity['p_value']:.3f} ({validity['method']}, {validity['n_permutations']} draws)")
out = {"instrument": "log past average hearts", "treatment": "log followers",
       "instrument_sources": videos["instrument_source"].value_counts().to_dict(),
       "first_stage": strength, "validity": validity, "validity_summary": summary}
with open(smk.output[0], "w") as f:
    json.dump(out, f, indent=2, default=float)
log.info("first stage %s; validity %s", strength, validity)
log.info("validity (Eq. 7): %s", summary)
