"""Rule check_growth_truth (evaluation only): posterior coverage of the true hashtag-level means of a and b."""

import json

import pandas as pd

from reach.growth.evaluate import coverage_table, hashtag_truth
from reach.growth.figures import coverage_figure
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "check_growth_truth")
log_run_header(log, "cpu", threads=smk.threads)
summary = pd.read_parquet(smk.input.summary)
fitted = pd.read_parquet(smk.input.videos)
truth = hashtag_truth(pd.read_parquet(smk.input.truth), fitted)
per, agg = coverage_table(summary, truth)
per.to_parquet(smk.output.per_hashtag, index=False)
agg.to_csv(smk.output.table, index=False)
coverage_figure(smk.output.figure, per)
log.info("coverage of true hashtag-level means:\n%s", agg.to_string())
with open(smk.input.manifest) as fh:
    fit = json.load(fh)
with open(smk.output.manifest, "w") as fh:
    json.dump({"backend": fit["backend"], "method": fit["method"], "scale": fit["scale"],
               "nominal": 0.9, "coverage_90": dict(zip(agg["quantity"], agg["covered_90"])),
               "coverage_50": dict(zip(agg["quantity"], agg["covered_50"])),
               "hashtags": int(agg["hashtags"].max()), "table": agg.to_dict(orient="records")}, fh, indent=2,
              default=float)
