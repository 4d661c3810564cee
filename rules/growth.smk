# Impression growth, Web Appendix G: Stage 1, the Bayesian multi-level log-growth model in Stan (Eqs. 17-23), and
# Stage 2, the growth residuals (Eqs. 24-26) predicted from the VS-VAE representation r.
GROWTH = config["growth"]
GROWTH_TARGETS = [
    "results/growth/fit.json",
    "results/growth/residual_prediction.csv",
]
if use_synthetic_world():
    GROWTH_TARGETS.append("results/growth/truth_check.csv")


rule fit_growth_model:
    input:
        videos="results/ingest/videos.parquet",
        daily="results/ingest/daily_plays.parquet",
    output:
        summary="results/growth/posterior_summary.parquet",
        videos="results/growth/video_growth.parquet",
        r2="results/growth/bayes_r2.parquet",
        manifest="results/growth/fit.json",
        figure="results/growth/figures/stage1.png",
    params:
        backend=GROWTH["backend"],
        method=GROWTH["method"],
        chains=GROWTH["chains"],
        warmup=GROWTH["warmup"],
        samples=GROWTH["samples"],
        adapt_delta=GROWTH["adapt_delta"],
        max_treedepth=GROWTH["max_treedepth"],
        max_videos_per_hashtag=GROWTH["max_videos_per_hashtag"],
        noise_scale=GROWTH["noise_scale"],
        prior_sd=GROWTH["prior_sd"],
        ig_shape=GROWTH["ig_shape"],
        ig_scale=GROWTH["ig_scale"],
        seed=config["seed"],
        code=package_digest("growth"),
    threads: 1  # keeps the critical path moving on 2 cores (docs/scale.md)
    priority: 50
    resources:
        mem_mb=6000,
        runtime=30,
    conda:
        "../environment.yml"
    log:
        "results/logs/fit_growth_model.log",
    benchmark:
        "results/benchmarks/fit_growth_model.tsv"
    script:
        "../scripts/fit_growth_model.py"


rule predict_growth_residuals:
    input:
        videos=rules.fit_growth_model.output.videos,
        r="results/represent/r.parquet",
    output:
        table="results/growth/residual_prediction.csv",
        residuals="results/growth/residuals.parquet",
        manifest="results/growth/residual_prediction.json",
        figure="results/growth/figures/stage2.png",
    params:
        test_split=GROWTH["stage2"]["test_split"],
        epochs=GROWTH["stage2"]["epochs"],
        batch_size=GROWTH["stage2"]["batch_size"],
        lr=GROWTH["stage2"]["lr"],
        weight_decay=GROWTH["stage2"]["weight_decay"],
        patience=GROWTH["stage2"]["patience"],
        device=GROWTH["stage2"]["device"],
        seed=config["seed"],
        code=package_digest("growth"),
    threads: 1  # keeps the critical path moving on 2 cores (docs/scale.md)
    priority: 50
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=20,
    conda:
        "../environment.yml"
    log:
        "results/logs/predict_growth_residuals.log",
    benchmark:
        "results/benchmarks/predict_growth_residuals.tsv"
    script:
        "../scripts/predict_growth_residuals.py"


rule check_growth_truth:
    input:
        summary=rules.fit_growth_model.output.summary,
        videos=rules.fit_growth_model.output.videos,
        manifest=rules.fit_growth_model.output.manifest,
        truth="results/synthetic/truth/videos.parquet",
    output:
        table="results/growth/truth_check.csv",
        per_hashtag="results/growth/truth_check_hashtags.parquet",
        manifest="results/growth/truth_check.json",
        figure="results/growth/figures/truth_coverage.png",
    params:
        code=package_digest("growth"),
    conda:
        "../environment.yml"
    log:
        "results/logs/check_growth_truth.log",
    benchmark:
        "results/benchmarks/check_growth_truth.tsv"
    script:
        "../scripts/check_growth_truth.py"
