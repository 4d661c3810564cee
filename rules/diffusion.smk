# Promotion-aware diffusion (paper 2, Sections 3, 5 and 6.2): promotion logs (simulated, or the user's own),
# their validation, the category calibration of the P-BDM and BDM with WMAPE (Figures 3-4), the recovery of the
# simulator's truth, and the estimator study of Section 5.3 (Figure 2).

DIFF = config["diffusion"]
DIFF_SYNTHETIC = use_simulated_promotion_logs()
DIFF_LOGS = "results/synthetic/promotion" if DIFF_SYNTHETIC else DIFF["promotion_logs"]["dir"]
DIFF_OUT = "results/diffusion"


rule simulate_promotion_logs:
    output:
        logs="results/synthetic/promotion/promotion_logs.parquet",
        metadata="results/synthetic/promotion/metadata.json",
        categories="results/synthetic/promotion/truth/categories.parquet",
        videos="results/synthetic/promotion/truth/videos.parquet",
    params:
        spec=DIFF["promotion_logs"]["simulate"],
        seed=config["seed"],
        code=package_digest("synthetic/promotion_logs.py", "diffusion/dynamics.py"),
    resources:
        mem_mb=8000,
    conda:
        "../environment.yml"
    log:
        "results/logs/simulate_promotion_logs.log",
    benchmark:
        "results/benchmarks/simulate_promotion_logs.tsv"
    script:
        "../scripts/simulate_promotion_logs.py"


rule prepare_promotion_logs:
    input:
        logs=f"{DIFF_LOGS}/promotion_logs.parquet",
        metadata=f"{DIFF_LOGS}/metadata.json",
    output:
        panel=f"{DIFF_OUT}/logs/panel.parquet",
        rejected=f"{DIFF_OUT}/logs/rejected.jsonl",
        summary=f"{DIFF_OUT}/logs/summary.json",
    params:
        code=package_digest("diffusion"),
    resources:
        mem_mb=8000,
    conda:
        "../environment.yml"
    log:
        "results/logs/prepare_promotion_logs.log",
    benchmark:
        "results/benchmarks/prepare_promotion_logs.tsv"
    script:
        "../scripts/prepare_promotion_logs.py"


rule calibrate_diffusion:
    input:
        panel=rules.prepare_promotion_logs.output.panel,
        summary=rules.prepare_promotion_logs.output.summary,
    output:
        estimates=f"{DIFF_OUT}/estimates.parquet",
        gamma_search=f"{DIFF_OUT}/gamma_search.parquet",
        wmape_videos=f"{DIFF_OUT}/wmape_videos.parquet",
        wmape=f"{DIFF_OUT}/wmape.parquet",
        wmape_md=f"{DIFF_OUT}/wmape.md",
        tests=f"{DIFF_OUT}/tests.json",
        pq_scatter=f"{DIFF_OUT}/pq_scatter.png",
        fitted_curves=f"{DIFF_OUT}/fitted_curves.png",
        fitted_curves_table=f"{DIFF_OUT}/fitted_curves.parquet",
    params:
        fit_share=DIFF["calibration"]["fit_share"],
        validation_share=DIFF["calibration"]["validation_share"],
        gamma_grid=DIFF["calibration"]["gamma_grid"],
        examples=DIFF["calibration"]["examples"],
        code=package_digest("diffusion"),
    resources:
        mem_mb=12000,
    conda:
        "../environment.yml"
    log:
        "results/logs/calibrate_diffusion.log",
    benchmark:
        "results/benchmarks/calibrate_diffusion.tsv"
    script:
        "../scripts/calibrate_diffusion.py"


rule evaluate_diffusion_recovery:
    input:
        estimates=rules.calibrate_diffusion.output.estimates,
        categories=rules.simulate_promotion_logs.output.categories,
        metadata=rules.simulate_promotion_logs.output.metadata,
    output:
        table=f"{DIFF_OUT}/recovery.parquet",
        summary=f"{DIFF_OUT}/recovery.json",
    params:
        code=package_digest("diffusion"),
    conda:
        "../environment.yml"
    log:
        "results/logs/evaluate_diffusion_recovery.log",
    benchmark:
        "results/benchmarks/evaluate_diffusion_recovery.tsv"
    script:
        "../scripts/evaluate_diffusion_recovery.py"


rule estimator_study:
    output:
        runs=f"{DIFF_OUT}/estimator_study/runs.parquet",
        summary=f"{DIFF_OUT}/estimator_study/summary.parquet",
        figure=f"{DIFF_OUT}/estimator_study/figure2.png",
    params:
        spec=DIFF["estimator_study"],
        seed=config["seed"],
        code=package_digest("diffusion"),
    conda:
        "../environment.yml"
    log:
        "results/logs/estimator_study.log",
    benchmark:
        "results/benchmarks/estimator_study.tsv"
    script:
        "../scripts/estimator_study.py"


# Final outputs of this stage for the default target (the truth comparison only when the logs are simulated).
DIFFUSION_TARGETS = [
    *rules.calibrate_diffusion.output,
    *rules.estimator_study.output,
    *(rules.evaluate_diffusion_recovery.output if DIFF_SYNTHETIC else []),
]
