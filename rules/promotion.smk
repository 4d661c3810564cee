# Promotion optimisation on a simulated platform (paper 2, Sections 4 and 6.3): one run per
# (policy, K, L, C-bar, replicate), then Table 1, the L sweep (Figures 5-6) and the allocation view (Figure 7).
# Table 1's runs are batched: one job per (K, L, C-bar, replicate) runs the five policies on that replicate's seed, so
# that 75 one-minute jobs become 15 (fewer interpreter start-ups; see docs/scale.md on scheduling). The sweep's other
# runs (AGA only) stay one job each. Every run keeps its own output files and values either way.
import re

PROMO_POLICIES = ["AGA", "NoD", "ATT", "TIM", "POT"]
PROMO_PLATFORM = {k: PROMO[k] for k in ("market", "initial_videos", "new_per_period", "periods", "gamma")}
PROMO_TABLE1_RUN = "results/promotion/runs/{policy}_K{{K}}_L{{L}}_C{{cbar}}_r{{rep}}.{kind}.parquet"


rule simulate_promotion_policies:
    input:
        unpack(promotion_pq_inputs),
    output:
        # periods of every policy, then videos of every policy (the script relies on this order)
        expand(PROMO_TABLE1_RUN, kind="periods", policy=PROMO["policies"]),
        expand(PROMO_TABLE1_RUN, kind="videos", policy=PROMO["policies"]),
    wildcard_constraints:  # only Table 1's grid; any other run goes to simulate_promotion
        K=re.escape(str(PROMO["K"])),
        L=re.escape(str(PROMO["L"])),
        cbar="|".join(re.escape(str(v)) for v in PROMO["c_bars"]),
        rep="|".join(re.escape(str(v)) for v in PROMO["replicates"]),
    params:
        policies=PROMO["policies"],
        platform=PROMO_PLATFORM,
        pq_source=PROMO["pq_source"],
        seed=config["seed"],
        code=package_digest("promotion", "diffusion/dynamics.py"),
    threads: 1
    resources:
        runtime=60,
    conda:
        "../environment.yml"
    log:
        "results/logs/simulate_promotion/K{K}_L{L}_C{cbar}_r{rep}.log",
    benchmark:  # beside the single runs': benchmarks/scale.py sums results/benchmarks/simulate_promotion/
        "results/benchmarks/simulate_promotion/K{K}_L{L}_C{cbar}_r{rep}.tsv"
    script:
        "../scripts/simulate_promotion.py"


# A run that Table 1's batch also makes (AGA at Table 1's K, L, C-bar and replicate, wanted by the sweep) comes from
# the batch: the two rules never both make a file.
ruleorder: simulate_promotion_policies > simulate_promotion


rule simulate_promotion:
    input:
        unpack(promotion_pq_inputs),
    output:
        f"{PROMO_RUN}.periods.parquet",
        f"{PROMO_RUN}.videos.parquet",
    wildcard_constraints:
        policy="|".join(PROMO_POLICIES),
        K=r"\d+",
        L=r"\d+",
        cbar=r"[0-9.]+",
        rep=r"\d+",
    params:
        policies=lambda wildcards: [wildcards.policy],
        platform=PROMO_PLATFORM,
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
