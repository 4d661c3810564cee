"""Rule evaluate_diffusion_recovery: compare the category estimates with the simulator's truth (synthetic runs
only): errors, rank correlations, and the recovered time decay."""

import json

import numpy as np
import pandas as pd
from scipy import stats

from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "evaluate_diffusion_recovery")
log_run_header(log, "cpu", threads=smk.threads)
est = pd.read_parquet(smk.input.estimates)
truth = pd.read_parquet(smk.input.categories)
with open(smk.input.metadata) as fh:
    true_gamma = json.load(fh)["gamma"]
merged = est.merge(truth[["category", "p", "q"]], on="category", suffixes=("", "_true"))
merged["error"] = np.hypot(merged["p"] - merged["p_true"], merged["q"] - merged["q_true"])
merged.to_parquet(smk.output.table, index=False)
summary = {"true_gamma": true_gamma, "by_model_method": {}}
for (model, method), d in merged.groupby(["model", "method"]):
    ok = d[["p", "q"]].notna().all(axis=1)
    d = d[ok]
    summary["by_model_method"][f"{model} {method}"] = {
        "gamma": float(d["gamma"].iloc[0]),
        "categories": int(len(d)),
        "mean_error": float(d["error"].mean()),
        "p_mean_abs_rel_error": float((d["p"] / d["p_true"] - 1).abs().mean()),
        "q_mean_abs_rel_error": float((d["q"] / d["q_true"] - 1).abs().mean()),
        "p_spearman": float(stats.spearmanr(d["p"], d["p_true"])[0]),
        "q_spearman": float(stats.spearmanr(d["q"], d["q_true"])[0]),
        "p_pearson": float(stats.pearsonr(d["p"], d["p_true"])[0]),
        "q_pearson": float(stats.pearsonr(d["q"], d["q_true"])[0]),
    }
with open(smk.output.summary, "w") as fh:
    json.dump(summary, fh, indent=2)
log.info("%s", json.dumps(summary, indent=1))
