# Paper 1, Sections 3.2-4.4: Deep IV (Eqs. 1-6), the IV validity test (Eq. 7), FEI curves and tables (Eqs. 8-10,
# Figures 3 and 6-11, Table 4) and optimal influencer size (Section 4.4, Figure 12).
CAUSAL = config["causal"]
CAUSAL_MEMBERS = list(range(CAUSAL["members"]))
# every estimator fitted: the compared ones and the configured one (auto: chosen among the compared ones)
CAUSAL_FITTED = list(dict.fromkeys([*CAUSAL["compare"], *([] if CAUSAL["estimator"] == "auto" else [CAUSAL["estimator"]])]))
if CAUSAL["estimator"] == "auto" and not CAUSAL["bootstrap_members"]:
    raise ValueError("causal.estimator: auto chooses on the members' out-of-bag rows: set causal.bootstrap_members: true")
CAUSAL_DESIGN = {
    "videos": "results/ingest/videos.parquet",
    "representation": "results/represent/r.parquet",
    "post": "results/features/post.npz",
}
CAUSAL_TARGETS = [
    "results/causal/fei_grid.parquet",
    "results/causal/validity.json",
    "results/causal/tables/campaign_tiers.parquet",
    "results/causal/selection.parquet",
    "results/causal/estimators.csv",
]
if use_synthetic_world():
    CAUSAL_TARGETS.append("results/causal/truth_check.csv")


wildcard_constraints:
    estimator="deepiv|cfiv",


rule train_causal:
    input:
        **CAUSAL_DESIGN,
    output:
        weights="results/causal/{estimator}/member-{member}.safetensors",
        meta="results/causal/{estimator}/member-{member}.json",
        history="results/causal/{estimator}/history-{member}.parquet",
    params:
        hashtag_indicators=CAUSAL["hashtag_indicators"],
        config=lambda wc: CAUSAL[wc.estimator],
        candidates=lambda wc: CAUSAL["candidates"].get(wc.estimator, []),
        val_share=CAUSAL["deepiv"]["val_share"],
        bootstrap=CAUSAL["bootstrap_members"],
        seed=config["seed"],
        code=package_digest("causal/deepiv.py", "causal/control_function.py", "causal/estimator.py",
                            "causal/training.py", "causal/response.py", "causal/design.py", "ema.py"),
    threads: 1  # a 2-thread job never finds 2 free cores while 1-thread jobs keep arriving (docs/scale.md)
    resources:
        gpu=lambda wc: int(wc.estimator == "deepiv"),
        mem_mb=8000,
        runtime=60,
    conda:
        "../environment.yml"
    priority: 50  # on the critical path of `make` (media, features, r, the causal fit); simulation runs fill the gaps
    log:
        "results/logs/train_causal/{estimator}/member-{member}.log",
    benchmark:
        "results/benchmarks/train_causal/{estimator}/member-{member}.tsv"
    script:
        "../scripts/train_causal.py"


rule simulate_band_sets:
    """CF-IV's band width from the procedure's spread over data sets drawn from its own fit (docs/causal.md)."""
    input:
        **CAUSAL_DESIGN,
    output:
        sets="results/causal/cfiv/band_sets.npz",
        meta="results/causal/cfiv/band_sets.json",
        fit="results/causal/cfiv/fit-all.safetensors",
    params:
        hashtag_indicators=CAUSAL["hashtag_indicators"],
        config=CAUSAL["cfiv"],
        candidates=CAUSAL["candidates"].get("cfiv", []),
        val_share=CAUSAL["deepiv"]["val_share"],
        band_sets=CAUSAL["band_sets"],
        follower_grid=config["follower_grid"],
        epsilon=CAUSAL["fei_epsilon"],
        seed=config["seed"],
        code=package_digest("causal/control_function.py", "causal/estimator.py", "causal/training.py",
                            "causal/response.py", "causal/design.py", "causal/fei.py"),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../environment.yml"
    priority: 50
    log:
        "results/logs/simulate_band_sets.log",
    benchmark:
        "results/benchmarks/simulate_band_sets.tsv"
    script:
        "../scripts/simulate_band_sets.py"


rule estimate_fei:
    input:
        **CAUSAL_DESIGN,
        members=lambda wc: expand("results/causal/{estimator}/member-{member}.safetensors",
                                  estimator=wc.estimator, member=CAUSAL_MEMBERS),
        histories=lambda wc: expand("results/causal/{estimator}/history-{member}.parquet",
                                    estimator=wc.estimator, member=CAUSAL_MEMBERS),
        band_sets=lambda wc: ["results/causal/cfiv/band_sets.npz"] if wc.estimator == "cfiv" and CAUSAL["band_sets"]
        else [],
    output:
        grid="results/causal/{estimator}/fei_grid.parquet",
        members="results/causal/{estimator}/fei_members.npz",
        residuals="results/causal/{estimator}/residuals.parquet",
        tuning="results/causal/{estimator}/tuning.csv",
    params:
        hashtag_indicators=CAUSAL["hashtag_indicators"],
        follower_grid=config["follower_grid"],
        epsilon=CAUSAL["fei_epsilon"],
        band_bias_draws=CAUSAL["band_bias_draws"],
        point_estimate=CAUSAL["point_estimate"],
        seed=config["seed"],
        code=package_digest("causal/deepiv.py", "causal/control_function.py", "causal/estimator.py",
                            "causal/response.py", "causal/design.py", "causal/fei.py"),
    threads: 1  # a 2-thread job never finds 2 free cores while 1-thread jobs keep arriving (docs/scale.md)
    conda:
        "../environment.yml"
    priority: 50
    log:
        "results/logs/estimate_fei/{estimator}.log",
    benchmark:
        "results/benchmarks/estimate_fei/{estimator}.tsv"
    script:
        "../scripts/estimate_fei.py"


rule use_estimator:
    """The estimator behind the tables, the selection, the validity test and the report: causal.estimator, or with
    `auto` the one with the lowest causal validation loss over its members (reach.causal.estimator.choose_estimator)."""
    input:
        grids=expand("results/causal/{estimator}/fei_grid.parquet", estimator=CAUSAL_FITTED),
        members=expand("results/causal/{estimator}/fei_members.npz", estimator=CAUSAL_FITTED),
        residuals=expand("results/causal/{estimator}/residuals.parquet", estimator=CAUSAL_FITTED),
        metas=expand("results/causal/{estimator}/member-{member}.json", estimator=CAUSAL_FITTED,
                     member=CAUSAL_MEMBERS),
        fits=["results/causal/cfiv/fit-all.safetensors"] if "cfiv" in CAUSAL_FITTED and CAUSAL["band_sets"] else [],
    output:
        grid="results/causal/fei_grid.parquet",
        members="results/causal/fei_members.npz",
        residuals="results/causal/residuals.parquet",
        choice="results/causal/estimator.json",
    params:
        estimator=CAUSAL["estimator"],
        fitted=CAUSAL_FITTED,
        code=package_digest("causal/estimator.py"),
    conda:
        "../environment.yml"
    priority: 50  # the report waits for it; ahead of the promotion simulations queued at the same time
    log:
        "results/logs/use_estimator.log",
    benchmark:
        "results/benchmarks/use_estimator.tsv"
    script:
        "../scripts/use_estimator.py"


rule compare_estimators:
    input:
        videos="results/ingest/videos.parquet",
        members=expand("results/causal/{estimator}/fei_members.npz", estimator=CAUSAL["compare"]),
        metas=expand("results/causal/{estimator}/member-0.json", estimator=CAUSAL["compare"]),
        choice="results/causal/estimator.json",
        truth=(["results/synthetic/truth/fei_grid.parquet", "results/synthetic/truth/campaign_tiers.parquet"]
               if use_synthetic_world() else []),
    output:
        "results/causal/estimators.csv",
    params:
        estimators=CAUSAL["compare"],
        linear_cv=CAUSAL["linear_cv"],
        code=package_digest("causal/fei.py", "causal/truth.py", "causal/estimator.py"),
    conda:
        "../environment.yml"
    priority: 50  # the report waits for it; ahead of the promotion simulations queued at the same time
    log:
        "results/logs/compare_estimators.log",
    benchmark:
        "results/benchmarks/compare_estimators.tsv"
    script:
        "../scripts/compare_estimators.py"


rule iv_validity:
    input:
        **CAUSAL_DESIGN,
        residuals="results/causal/residuals.parquet",
    output:
        "results/causal/validity.json",
    params:
        hashtag_indicators=CAUSAL["hashtag_indicators"],
        validity=CAUSAL["validity"],
        seed=config["seed"],
        code=package_digest("causal/validity.py", "causal/design.py"),
    threads: 1  # a 2-thread job never finds 2 free cores while 1-thread jobs keep arriving (docs/scale.md)
    conda:
        "../environment.yml"
    priority: 50  # the report waits for it; ahead of the promotion simulations queued at the same time
    log:
        "results/logs/iv_validity.log",
    benchmark:
        "results/benchmarks/iv_validity.tsv"
    script:
        "../scripts/iv_validity.py"


rule fei_tables:
    input:
        videos="results/ingest/videos.parquet",
        members="results/causal/fei_members.npz",
        choice="results/causal/estimator.json",
        topics="results/topics/hashtags.parquet",
    output:
        average="results/causal/tables/average.parquet",
        by_tactic="results/causal/tables/by_tactic.parquet",
        by_topic="results/causal/tables/by_topic.parquet",
        campaign_tiers="results/causal/tables/campaign_tiers.parquet",
        campaign_curves="results/causal/tables/campaign_curves.parquet",
        naive="results/causal/tables/naive.parquet",
        table4="results/causal/tables/table4.md",
        fig3="results/causal/figures/fig3_naive_vs_causal.png",
        fig6="results/causal/figures/fig6_average.png",
        fig7="results/causal/figures/fig7_tactic.png",
        fig8="results/causal/figures/fig8_topic.png",
        fig9="results/causal/figures/fig9_11_campaigns.png",
    params:
        n_boot=CAUSAL["n_boot"],
        linear_cv=CAUSAL["linear_cv"],
        naive_df=CAUSAL["naive_df"],
        seed=config["seed"],
        code=package_digest("causal/fei.py", "causal/figures.py", "tiers.py"),
    conda:
        "../environment.yml"
    priority: 50  # the report waits for it; ahead of the promotion simulations queued at the same time
    log:
        "results/logs/fei_tables.log",
    benchmark:
        "results/benchmarks/fei_tables.tsv"
    script:
        "../scripts/fei_tables.py"


checkpoint list_campaigns:
    input:
        videos="results/ingest/videos.parquet",
    output:
        "results/causal/campaigns.tsv",
    params:
        code=package_digest("scrape/safety.py"),
    conda:
        "../environment.yml"
    log:
        "results/logs/list_campaigns.log",
    benchmark:
        "results/benchmarks/list_campaigns.tsv"
    script:
        "../scripts/list_campaigns.py"


rule select_influencer:
    input:
        videos="results/ingest/videos.parquet",
        campaigns="results/causal/campaigns.tsv",
        members="results/causal/fei_members.npz",
    output:
        selection="results/causal/selection/{campaign}.csv",
        heatmap="results/causal/selection/{campaign}_heatmap.parquet",
        figure="results/causal/selection/{campaign}_fig12.png",
    params:
        selection=CAUSAL["selection"],
        code=package_digest("causal/selection.py", "causal/figures.py"),
    conda:
        "../environment.yml"
    priority: 50  # the report waits for it; ahead of the promotion simulations queued at the same time
    log:
        "results/logs/select_influencer/{campaign}.log",
    benchmark:
        "results/benchmarks/select_influencer/{campaign}.tsv"
    script:
        "../scripts/select_influencer.py"


rule gather_selection:
    input:
        campaign_selections,
    output:
        "results/causal/selection.parquet",
    conda:
        "../environment.yml"
    priority: 50  # the report waits for it; ahead of the promotion simulations queued at the same time
    log:
        "results/logs/gather_selection.log",
    benchmark:
        "results/benchmarks/gather_selection.tsv"
    script:
        "../scripts/gather_selection.py"


rule check_fei_truth:
    input:
        **CAUSAL_DESIGN,
        members="results/causal/fei_members.npz",
        choice="results/causal/estimator.json",
        residuals="results/causal/residuals.parquet",
        average="results/causal/tables/average.parquet",
        naive="results/causal/tables/naive.parquet",
        campaign_tiers="results/causal/tables/campaign_tiers.parquet",
        truth_videos="results/synthetic/truth/videos.parquet",
        truth_grid="results/synthetic/truth/fei_grid.parquet",
        truth_campaigns="results/synthetic/truth/campaign_tiers.parquet",
    output:
        table="results/causal/truth_check.csv",
        figure="results/causal/figures/truth_average.png",
        truth_campaigns="results/causal/truth_campaign_tiers.parquet",  # Table 4's truth over the data's range
    params:
        hashtag_indicators=CAUSAL["hashtag_indicators"],
        validity=CAUSAL["validity"],
        seed=config["seed"],
        fei_epsilon=CAUSAL["fei_epsilon"],
        linear_cv=CAUSAL["linear_cv"],
        floor_resamples=CAUSAL["floor_resamples"],
        code=package_digest("causal/fei.py", "causal/validity.py", "causal/figures.py", "causal/truth.py",
                            "causal/control_function.py", "tiers.py"),
    conda:
        "../environment.yml"
    priority: 50  # the report waits for it; ahead of the promotion simulations queued at the same time
    log:
        "results/logs/check_fei_truth.log",
    benchmark:
        "results/benchmarks/check_fei_truth.tsv"
    script:
        "../scripts/check_fei_truth.py"
