"""Rule ingest_scrapes: parse and validate the scrapes; write videos, daily plays, rejected records, summary."""

import json
from collections import Counter
from pathlib import Path

from reach.logs import setup_logging
from reach.scrape.ingest import IngestError, ingest, write_outputs

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "ingest_scrapes")
try:
    result = ingest(smk.params.scrapes_dir, impressions_day=int(smk.params.impressions_day),
                    require_media=bool(smk.params.require_media), workers=smk.threads)
except IngestError as exc:
    if exc.rejected:   # a failed rule's outputs are removed: the refused records go beside the log
        side = Path(smk.log[0]).with_suffix(".rejected.jsonl")
        with open(side, "w", encoding="utf-8") as fh:
            for r in exc.rejected:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        reasons = Counter(str(r["reason"]).split(":")[0] for r in exc.rejected)
        log.error("%s; %d refused records with their reasons in %s; by reason: %s; first: %s", exc,
                  len(exc.rejected), side, dict(reasons.most_common(10)),
                  "; ".join(f"{r['file']}:{r['line']} {r['reason']}" for r in exc.rejected[:5]))
        raise IngestError(f"{exc}; the refused records and their reasons: {side}") from exc
    raise
write_outputs(result, smk.output.videos, smk.output.daily_plays, smk.output.rejected, smk.output.summary,
              smk.output.value_sources)
rec = result.summary["records"]
log.info("records: read %d = accepted %d + rejected %d + duplicates %d", rec["read"], rec["accepted"],
         rec["rejected"], rec["duplicates"])
log.info("videos accepted %d, refused %s", result.summary["videos"]["accepted"],
         result.summary["videos"]["rejected_by_reason"])
for column in result.value_sources.columns[1:]:
    log.info("value source %s: %s", column, result.value_sources[column].value_counts().to_dict())
