"""Rule prepare_promotion_logs: validate the promotion logs (simulated or the user's), write the clean panel,
the rejected rows with reasons, and a summary (rows read = accepted + rejected + duplicates)."""

import json

import pandas as pd

from reach.diffusion.data import validate_promotion_logs
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "prepare_promotion_logs")
log_run_header(log, "cpu", threads=smk.threads)
with open(smk.input.metadata) as fh:
    meta = json.load(fh)
if "market" not in meta:
    raise ValueError(f"{smk.input.metadata} must give the market size as {{\"market\": <users>}}")
logs = pd.read_parquet(smk.input.logs)
log.info("read %d rows from %s; market %s", len(logs), smk.input.logs, meta["market"])
clean, rejected, summary = validate_promotion_logs(logs, int(meta["market"]))
clean.to_parquet(smk.output.panel, index=False)
with open(smk.output.rejected, "w") as fh:
    for rec in rejected.astype(object).where(rejected.notna(), None).to_dict(orient="records"):
        fh.write(json.dumps({"reason": rec.pop("reason"), "record": rec}, default=str) + "\n")
with open(smk.output.summary, "w") as fh:
    json.dump(summary, fh, indent=2)
r = summary["rows"]
log.info("rows: read %d = accepted %d + rejected %d + duplicates %d; %d empty hours filled", r["read"],
         r["accepted"], r["rejected"], r["duplicates"], r["filled_empty_hours"])
log.info("videos: %s; rejected by reason %s", summary["videos"], summary["rejected_by_reason"])
