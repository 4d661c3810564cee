# Ingestion: raw scrapes -> videos at earliest appearance, daily plays, refused records, counts that add up.


rule ingest_scrapes:
    input:
        unpack(ingest_inputs),
    output:
        videos="results/ingest/videos.parquet",
        daily_plays="results/ingest/daily_plays.parquet",
        rejected="results/ingest/rejected.jsonl",
        summary="results/ingest/summary.json",
        value_sources="results/ingest/value_sources.parquet",
    params:
        scrapes_dir=scrapes_dir(),
        impressions_day=config["ingest"]["impressions_day"],
        # a world simulated without media cannot be held to having media
        require_media=config["ingest"]["require_media"]
        and (config["world"]["media"] or not use_synthetic_world()),
        code=package_digest("scrape"),
        scrapes=scrape_folder_digest(),  # a user's scrape files changed in place rerun ingestion
    threads: 1  # parsing processes; raise with --set-threads ingest_scrapes=2 (or a profile) for large scrapes
    conda:
        "../environment.yml"
    log:
        "results/logs/ingest_scrapes.log",
    benchmark:
        "results/benchmarks/ingest_scrapes.tsv"
    script:
        "../scripts/ingest_scrapes.py"
