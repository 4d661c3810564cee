"""Rule hashtag_topics: Web Appendix D's five hashtag topics (segmentation, GloVe 50-d means, k-means, names)."""

from reach.features.store import write_manifest
from reach.features.text import load_glove_package
from reach.logs import log_run_header, setup_logging
from reach.topics import hashtag_topics

import pandas as pd

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "hashtag_topics")
log_run_header(log, "cpu", threads=smk.threads)
p = smk.params
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "hashtag"])
wv = load_glove_package()
res = hashtag_topics(videos["hashtag"], wv, n_topics=int(p.n_topics), min_exemplars=int(p.min_exemplars),
                     seed=int(p.seed), names=tuple(p.names))
res.hashtags.to_parquet(smk.output.hashtags, index=False)
res.clusters.to_parquet(smk.output.clusters, index=False)
write_manifest(smk.output.manifest, {
    "word_vectors": wv.name, "segmenter": "case/digit split, then wordsegment", "n_topics": int(p.n_topics),
    "min_exemplars": int(p.min_exemplars), "hashtags": int(len(res.hashtags)),
    "hashtags_in_fit": int(res.hashtags["in_fit"].sum()),
    "hashtags_without_vector": res.hashtags.loc[res.hashtags["n_found"] == 0, "hashtag"].tolist(),
    "clusters": res.clusters.to_dict(orient="records")})
log.info("topics:\n%s", res.clusters.to_string())
