"""Rule ingest_scrapes: parse and validate the scrapes; write videos, daily plays, rejected records, summary."""

from reach.logs import setup_logging
from reach.scrape.ingest import ingest, write_outputs

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "ingest_scrapes")
result = ingest(smk.params.scrapes_dir, impressions_day=int(smk.params.impressions_day),
                require_media=bool(smk.params.require_media), workers=smk.threads)
write_outputs(result, smk.output.videos, smk.output.daily_plays, smk.output.rejected, smk.output.summary,
              smk.output.value_sources)
rec = result.summary["records"]
log.info("records: read %d = accepted %d + rejected %d + duplicates %d", rec["read"], rec["accepted"],
         rec["rejected"], rec["duplicates"])
log.info("videos accepted %d, refused %s", result.summary["videos"]["accepted"],
         result.summary["videos"]["rejected_by_reason"])
for column in result.value_sources.columns[1:]:
    log.info("value source %s: %s", column, result.value_sources[column].value_counts().to_dict())
