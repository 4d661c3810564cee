# Media decoding for the feature stage (per shard): key frames and per-frame series, 16 kHz mono waveforms.
MEDIA = config["media"]


rule sample_frames:
    input:
        videos="results/ingest/videos.parquet",
    output:
        frames="results/media/frames/shard-{shard}.npz",
        status="results/media/frames/shard-{shard}.parquet",
    params:
        n_shards=N_SHARDS,
        interval_s=MEDIA["frame_interval_s"],
        height=MEDIA["frame_height"],
        width=MEDIA["frame_width"],
        hist_bins=MEDIA["hist_bins"],
        series_short_side=MEDIA["series_short_side"],
        code=package_digest("media", "features/store.py", "shards.py"),
    threads: 1  # also FFmpeg's decoder threads; two shards share a 2-core machine (raise with --set-threads)
    resources:
        mem_mb=4000,
    conda:
        "../environment.yml"
    priority: 50  # on the critical path of `make` (media, features, r, Deep IV); simulation runs fill the gaps
    log:
        "results/logs/sample_frames/shard-{shard}.log",
    benchmark:
        "results/benchmarks/sample_frames/shard-{shard}.tsv"
    script:
        "../scripts/sample_frames.py"


rule extract_audio:
    input:
        videos="results/ingest/videos.parquet",
    output:
        audio="results/media/audio/shard-{shard}.npz",
        status="results/media/audio/shard-{shard}.parquet",
    params:
        n_shards=N_SHARDS,
        rate=MEDIA["audio_rate"],
        code=package_digest("media", "features/store.py", "shards.py"),
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../environment.yml"
    priority: 50  # on the critical path of `make` (media, features, r, Deep IV); simulation runs fill the gaps
    log:
        "results/logs/extract_audio/shard-{shard}.log",
    benchmark:
        "results/benchmarks/extract_audio/shard-{shard}.tsv"
    script:
        "../scripts/extract_audio.py"
