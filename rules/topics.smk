# Hashtag topics of Web Appendix D: segmented hashtags, GloVe 50-d means, k-means, named by the paper's topics.
TOPICS = config["topics"]


rule hashtag_topics:
    input:
        videos="results/ingest/videos.parquet",
    output:
        hashtags="results/topics/hashtags.parquet",
        clusters="results/topics/clusters.parquet",
        manifest="results/topics/topics.json",
    params:
        n_topics=TOPICS["n_topics"],
        min_exemplars=TOPICS["min_exemplars"],
        names=TOPICS["names"],
        seed=config["seed"],
        code=package_digest("topics.py", "features/text.py", "features/store.py"),
    conda:
        "../environment.yml"
    log:
        "results/logs/hashtag_topics.log",
    benchmark:
        "results/benchmarks/hashtag_topics.tsv"
    script:
        "../scripts/hashtag_topics.py"
