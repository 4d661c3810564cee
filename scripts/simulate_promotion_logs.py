"""Rule simulate_promotion_logs: synthetic hourly promotion logs (DESIGN sections 4 and 6) and their truth."""

import json

from tqdm import tqdm

from reach.logs import log_run_header, setup_logging
from reach.synthetic.promotion_logs import PromotionLogSpec, simulate_promotion_logs

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "simulate_promotion_logs")
log_run_header(log, "cpu", threads=smk.threads)
spec = PromotionLogSpec(**smk.params.spec)
log.info("%s, seed %d", spec, smk.params.seed)
logs, categories, videos, meta = simulate_promotion_logs(spec, int(smk.params.seed),
                                                         progress=lambda it: tqdm(it, desc="categories", mininterval=10))
logs.to_parquet(smk.output.logs, index=False)
categories.to_parquet(smk.output.categories, index=False)
videos.to_parquet(smk.output.videos, index=False)
with open(smk.output.metadata, "w") as fh:
    json.dump(meta, fh, indent=2)
log.info("%d rows, %d videos in %d categories; mean promotion fraction %.6f per hour; %d videos with a junk row",
         len(logs), len(videos), len(categories), meta["mean_promotion_fraction"], int(videos["junk"].sum()))
