# VS-VAE representation r (Section 3.1, Web Appendices B and F): training (GPU rule, CPU fallback), the posterior
# mean r for every video, and its validation (Table 2, Figure 5 neighbours; the truth probe is evaluation only).
REPR = config["represent"]
REPR_EVAL = REPR["eval"]
REPR_TRAIN_KEYS = ["latent_size", "width_scale", "min_width", "editing_width", "audio_width", "embedding_activation",
                   "lr", "weight_decay", "batch_size", "max_epochs", "patience", "max_words", "max_frames",
                   "vocab_min_count", "vocab_size", "amp", "learn_noise", "noise_lr", "ema"]
REPRESENT_TARGETS = [
    "results/represent/r.parquet",
    "results/represent/table2.csv",
]


rule train_vsvae:
    input:
        videos="results/ingest/videos.parquet",
        features=expand("results/features/{modality}.npz", modality=FEATURE_MODALITIES),
    output:
        weights="results/represent/vsvae.safetensors",
        history="results/represent/loss_history.parquet",
        manifest="results/represent/vsvae.json",
    params:
        modalities=FEATURE_MODALITIES,
        settings={key: REPR[key] for key in REPR_TRAIN_KEYS},
        device=REPR["device"],
        seed=config["seed"],
        checkpoint="results/represent/scratch/vsvae.ckpt",
        code=package_digest("represent", "features/store.py", "ema.py"),
    # one thread: on CPU the small LSTM / dense steps run faster on one torch thread than on two (145 vs 187 ms per
    # batch of 64, measured 2026-11-29), and the rule then does not wait for two free cores
    threads: 1
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    conda:
        "../environment.yml"
    priority: 50  # on the critical path of `make` (media, features, r, Deep IV); simulation runs fill the gaps
    log:
        "results/logs/train_vsvae.log",
    benchmark:
        "results/benchmarks/train_vsvae.tsv"
    script:
        "../scripts/train_vsvae.py"


rule encode_representations:
    input:
        videos="results/ingest/videos.parquet",
        features=expand("results/features/{modality}.npz", modality=FEATURE_MODALITIES),
        weights=rules.train_vsvae.output.weights,
    output:
        r="results/represent/r.parquet",
    params:
        modalities=FEATURE_MODALITIES,
        device=REPR["device"],
        code=package_digest("represent", "features/store.py"),
    # one thread, like train_vsvae before it: a rule starts only when its threads are free at once, and when
    # train_vsvae ends it frees one core while one-thread simulation jobs keep taking the other, so a two-thread rule
    # here waited for the simulations (272 s behind 95 of them in a tiny-world run; docs/scale.md, scheduling)
    threads: 1
    resources:
        mem_mb=8000,
    conda:
        "../environment.yml"
    priority: 50  # on the critical path of `make` (media, features, r, Deep IV); simulation runs fill the gaps
    log:
        "results/logs/encode_representations.log",
    benchmark:
        "results/benchmarks/encode_representations.tsv"
    script:
        "../scripts/encode_representations.py"


rule validate_representations:
    input:
        unpack(represent_truth),
        videos="results/ingest/videos.parquet",
        features=expand("results/features/{modality}.npz", modality=FEATURE_MODALITIES),
        weights=rules.train_vsvae.output.weights,
        r=rules.encode_representations.output.r,
        frames=expand("results/media/frames/shard-{shard}.npz", shard=SHARDS),
    output:
        table2="results/represent/table2.csv",
        probe="results/represent/probe.csv",
        rates="results/represent/neighbour_rates.csv",
        neighbours="results/represent/neighbours.csv",
        sheets=directory("results/represent/contact_sheets"),
    params:
        modalities=FEATURE_MODALITIES,
        device=REPR["device"],
        neighbours_k=REPR_EVAL["neighbours_k"],
        focal_hashtags=REPR_EVAL["focal_hashtags"],
        focal_per_hashtag=REPR_EVAL["focal_per_hashtag"],
        sheet_frames=REPR_EVAL["sheet_frames"],
        probe_folds=REPR_EVAL["probe_folds"],
        probe_max_columns=REPR_EVAL["probe_max_columns"],
        seed=config["seed"],
        code=package_digest("represent", "features/probe.py", "features/store.py"),
    threads: 1  # two threads waited 220 s for two free cores in a tiny-world run; one waited 35 s
    resources:
        mem_mb=8000,
    conda:
        "../environment.yml"
    log:
        "results/logs/validate_representations.log",
    benchmark:
        "results/benchmarks/validate_representations.tsv"
    script:
        "../scripts/validate_representations.py"
