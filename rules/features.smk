# Content features of Web Appendix E per shard, gathered per modality in videos.parquet order; post statistics;
# the linear probe against the synthetic world's content latent (evaluation: the only reader of the truth here).
# Shard jobs take one thread each, so two shards share a 2-core machine (GPU jobs are limited by gpu=1).
FEAT = config["features"]
MODELS = config["models"]
FEATURE_MODALITIES = ["text", "image", "audio", "editing"]
FEATURE_TARGETS = expand("results/features/{modality}.json", modality=FEATURE_MODALITIES) + [
    "results/features/post.json",
    "results/topics/topics.json",
]
if use_synthetic_world():
    FEATURE_TARGETS.append("results/features/probe.csv")


rule image_features:
    input:
        frames="results/media/frames/shard-{shard}.npz",
        status="results/media/frames/shard-{shard}.parquet",
    output:
        features="results/features/shards/image-{shard}.npz",
        manifest="results/features/shards/image-{shard}.json",
        status="results/features/shards/image_status-{shard}.parquet",
    params:
        vgg19_h5=MODELS["vgg19_h5"],
        sentiment_onnx=MODELS["sentiment_onnx"],
        batch_size=FEAT["image_batch"],
        code=package_digest("features/image.py", "features/store.py"),
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    conda:
        "../environment.yml"
    priority: 50  # on the critical path of `make` (media, features, r, Deep IV); simulation runs fill the gaps
    log:
        "results/logs/image_features/shard-{shard}.log",
    benchmark:
        "results/benchmarks/image_features/shard-{shard}.tsv"
    script:
        "../scripts/image_features.py"


rule audio_features:
    input:
        videos="results/ingest/videos.parquet",
        audio="results/media/audio/shard-{shard}.npz",
        status="results/media/audio/shard-{shard}.parquet",
    output:
        features="results/features/shards/audio-{shard}.npz",
        manifest="results/features/shards/audio-{shard}.json",
        status="results/features/shards/audio_status-{shard}.parquet",
    params:
        yamnet_dir=MODELS["yamnet_dir"],
        speech_threshold=FEAT["speech_threshold"],
        speech_window_s=FEAT["speech_window_s"],
        max_transcribe_s=FEAT["max_transcribe_s"],
        sound_max_patches=FEAT["sound_max_patches"],
        code=package_digest("features/audio.py", "features/speech.py", "features/store.py"),
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    conda:
        "../environment.yml"
    priority: 50  # on the critical path of `make` (media, features, r, Deep IV); simulation runs fill the gaps
    log:
        "results/logs/audio_features/shard-{shard}.log",
    benchmark:
        "results/benchmarks/audio_features/shard-{shard}.tsv"
    script:
        "../scripts/audio_features.py"


rule text_features:
    input:
        videos="results/ingest/videos.parquet",
        audio="results/media/audio/shard-{shard}.npz",
        audio_features="results/features/shards/audio-{shard}.npz",
    output:
        features="results/features/shards/text-{shard}.npz",
        manifest="results/features/shards/text-{shard}.json",
        status="results/features/shards/text_status-{shard}.parquet",
    params:
        n_shards=N_SHARDS,
        word2vec=MODELS["word2vec"],
        split_hashtags=FEAT["split_hashtags"],
        code=package_digest("features/text.py", "features/speech.py", "features/store.py", "shards.py"),
    threads: 1
    resources:
        mem_mb=6000,
    conda:
        "../environment.yml"
    priority: 50  # on the critical path of `make` (media, features, r, Deep IV); simulation runs fill the gaps
    log:
        "results/logs/text_features/shard-{shard}.log",
    benchmark:
        "results/benchmarks/text_features/shard-{shard}.tsv"
    script:
        "../scripts/text_features.py"


rule editing_features:
    input:
        videos="results/ingest/videos.parquet",
        frames="results/media/frames/shard-{shard}.npz",
        status="results/media/frames/shard-{shard}.parquet",
        image="results/features/shards/image-{shard}.npz",
    output:
        features="results/features/shards/editing-{shard}.npz",
        manifest="results/features/shards/editing-{shard}.json",
        status="results/features/shards/editing_status-{shard}.parquet",
    params:
        n_shards=N_SHARDS,
        scene_threshold=FEAT["scene_threshold"],
        min_scene_s=FEAT["min_scene_s"],
        code=package_digest("features/editing.py", "media/frames.py", "features/store.py", "shards.py"),
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../environment.yml"
    priority: 50  # on the critical path of `make` (media, features, r, Deep IV); simulation runs fill the gaps
    log:
        "results/logs/editing_features/shard-{shard}.log",
    benchmark:
        "results/benchmarks/editing_features/shard-{shard}.tsv"
    script:
        "../scripts/editing_features.py"


rule gather_features:
    input:
        videos="results/ingest/videos.parquet",
        shards=expand("results/features/shards/{{modality}}-{shard}.npz", shard=SHARDS),
        manifests=expand("results/features/shards/{{modality}}-{shard}.json", shard=SHARDS),
        tables=expand("results/features/shards/{{modality}}_status-{shard}.parquet", shard=SHARDS),
    output:
        features="results/features/{modality}.npz",
        manifest="results/features/{modality}.json",
        table="results/features/{modality}_status.parquet",
    wildcard_constraints:
        modality="text|image|audio|editing",
    params:
        code=package_digest("features/store.py"),
    conda:
        "../environment.yml"
    priority: 50  # on the critical path of `make` (media, features, r, Deep IV); simulation runs fill the gaps
    log:
        "results/logs/gather_features/{modality}.log",
    benchmark:
        "results/benchmarks/gather_features/{modality}.tsv"
    script:
        "../scripts/gather_features.py"


rule post_statistics:
    input:
        videos="results/ingest/videos.parquet",
    output:
        features="results/features/post.npz",
        manifest="results/features/post.json",
    params:
        code=package_digest("features/post.py", "features/store.py"),
    conda:
        "../environment.yml"
    # the causal design reads it: without a priority it waited 481 s behind 16 simulation jobs in a tiny-world run,
    # holding the causal fit 149 s after r was ready (docs/scale.md, scheduling)
    priority: 50
    log:
        "results/logs/post_statistics.log",
    benchmark:
        "results/benchmarks/post_statistics.tsv"
    script:
        "../scripts/post_statistics.py"


rule probe_features:
    input:
        videos="results/ingest/videos.parquet",
        truth="results/synthetic/truth/videos.parquet",
        features=expand("results/features/{modality}.npz", modality=FEATURE_MODALITIES),
    output:
        probe="results/features/probe.csv",
    params:
        modalities=FEATURE_MODALITIES,
        folds=FEAT["probe_folds"],
        max_columns=FEAT["probe_max_columns"],
        seed=config["seed"],
        code=package_digest("features/probe.py", "features/store.py"),
    conda:
        "../environment.yml"
    log:
        "results/logs/probe_features.log",
    benchmark:
        "results/benchmarks/probe_features.tsv"
    script:
        "../scripts/probe_features.py"
