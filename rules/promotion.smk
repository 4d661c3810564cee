# Promotion optimisation on a simulated platform (paper 2, Sections 4 and 6.3): one run per
# (policy, K, L, C-bar, replicate), then Table 1, the L sweep (Figures 5-6) and the allocation view (Figure 7).

rule simulate_promotion:
    input:
        unpack(promotion_pq_inputs),
    output:
        periods=f"{PROMO_RUN}.periods.parquet",
        videos=f"{PROMO_RUN}.videos.parquet",
    wildcard_constraints:
        policy="|".join(["AGA", "NoD", "ATT", "TIM", "POT"]),
        K=r"\d+",
        L=r"\d+",
        cbar=r"[0-9.]+",
        rep=r"\d+",
    params:
        platform={k: PROMO[k] for k in ("market", "initial_videos", "new_per_period", "periods", "gamma")},
        pq_source=PROMO["pq_source"],
        seed=config["seed"],
        code=package_digest("promotion", "diffusion/dynamics.py"),
    threads: 1
    resources:
        runtime=30,
    conda:
        "../environment.yml"
    log:
        "results/logs/simulate_promotion/{policy}_K{K}_L{L}_C{cbar}_r{rep}.log",
    benchmark:
        "results/benchmarks/simulate_promotion/{policy}_K{K}_L{L}_C{cbar}_r{rep}.tsv"
    script:
        "../scripts/simulate_promotion.py"


rule benchmark_promotion:
    input:
        table_periods=table1_runs("periods"),
        table_videos=table1_runs("videos"),
        sweep_periods=sweep_runs("periods"),
        sweep_videos=sweep_runs("videos"),
    output:
        table1="results/promotion/table1.parquet",
        table1_md="results/promotion/table1.md",
        sweep="results/promotion/l_sweep.parquet",
        sweep_png="results/promotion/l_sweep.png",
        allocation="results/promotion/allocation.parquet",
        allocation_png="results/promotion/allocation.png",
    params:
        fig5_c_bar=PROMO["l_sweep"]["c_bar"],
        fig6_K=PROMO["l_sweep"]["budget_K"],
        code=package_digest("promotion"),
    conda:
        "../environment.yml"
    log:
        "results/logs/benchmark_promotion.log",
    benchmark:
        "results/benchmarks/benchmark_promotion.tsv"
    script:
        "../scripts/benchmark_promotion.py"
