# The embedded synthetic TikTok world (DESIGN section 6): raw scrapes as a tracker leaves them, plus the truth.


rule simulate_world:
    output:
        items_dir=directory(f"{SYNTHETIC_SCRAPES}/items"),
        creators_dir=directory(f"{SYNTHETIC_SCRAPES}/creators"),
        labels=f"{SYNTHETIC_SCRAPES}/labels/engagement.csv",
        media_plan="results/synthetic/media_plan.parquet",
        truth_videos="results/synthetic/truth/videos.parquet",
        truth_fei="results/synthetic/truth/fei_grid.parquet",
        truth_campaigns="results/synthetic/truth/campaign_tiers.parquet",
        truth_hashtags="results/synthetic/truth/hashtags.parquet",
        truth_junk="results/synthetic/truth/junk.parquet",
        truth_world="results/synthetic/truth/world.json",
    params:
        world=config["world"],
        seed=config["seed"],
        n_shards=N_SHARDS,
        follower_grid=config["follower_grid"],
        code=package_digest("synthetic", "tiers.py", "shards.py"),
    conda:
        "../environment.yml"
    log:
        "results/logs/simulate_world.log",
    benchmark:
        "results/benchmarks/simulate_world.tsv"
    script:
        "../scripts/simulate_world.py"


rule render_media:
    input:
        plan="results/synthetic/media_plan.parquet",
    output:
        manifest="results/synthetic/media/shard-{shard}.parquet",
    params:
        media_dir=f"{SYNTHETIC_SCRAPES}/media",
        fps=config["world"]["media_fps"],
        width=config["world"]["media_width"],
        height=config["world"]["media_height"],
        aac_coder=config["world"]["media_aac_coder"],
        audio_kbps=config["world"]["media_audio_kbps"],
        seed=config["seed"],
        code=package_digest("synthetic", "tiers.py", "shards.py"),
    conda:
        "../environment.yml"
    priority: 50  # on the critical path of `make` (media, features, r, Deep IV); simulation runs fill the gaps
    log:
        "results/logs/render_media/shard-{shard}.log",
    benchmark:
        "results/benchmarks/render_media/shard-{shard}.tsv"
    script:
        "../scripts/render_media.py"
