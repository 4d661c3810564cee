"""Hashtag topics (Web Appendix D): segment each hashtag into dictionary words, average their GloVe 50-d vectors,
k-means the hashtags with at least `min_exemplars` videos into `n_topics` clusters, and name each cluster by the
nearest of the paper's topic words (life, holidays, skills, food, gaming) to its centre, one name per cluster
(an optimal assignment on cosine similarity). Hashtags with fewer videos get the nearest centre's topic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reach.features.text import WordVectors, segment_hashtag

PAPER_TOPICS = ("life", "holidays", "skills", "food", "gaming")


@dataclass
class TopicResult:
    hashtags: pd.DataFrame      # hashtag, n_videos, words, n_found, in_fit, cluster, topic, similarity
    clusters: pd.DataFrame      # cluster, topic, name_similarity, n_hashtags, nearest_hashtag
    centres: np.ndarray


def hashtag_vector(tag: str, wv: WordVectors) -> tuple[tuple[str, ...], np.ndarray | None, int]:
    """(segmented words, mean vector of the words in the vocabulary or None, number found)."""
    words = segment_hashtag(tag)
    idx = [wv.lookup(w) for w in words]
    idx = [i for i in idx if i is not None]
    return words, (wv.vectors[idx].mean(0) if idx else None), len(idx)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def name_clusters(centres: np.ndarray, wv: WordVectors, names=PAPER_TOPICS) -> tuple[list[str], np.ndarray]:
    """Give each centre a distinct topic word, maximising total cosine similarity (Hungarian); with more clusters
    than words the rest take their nearest word with a numeric suffix."""
    from scipy.optimize import linear_sum_assignment

    words = [n for n in names if wv.lookup(n) is not None]
    sim = _unit(centres) @ _unit(wv.vectors[[wv.lookup(w) for w in words]]).T
    rows, cols = linear_sum_assignment(-sim)
    out = [""] * len(centres)
    best = np.zeros(len(centres))
    for r, c in zip(rows, cols):
        out[r], best[r] = words[c], sim[r, c]
    for r in range(len(centres)):
        if not out[r]:
            c = int(np.argmax(sim[r]))
            out[r], best[r] = f"{words[c]}_{r}", sim[r, c]
    return out, best


def hashtag_topics(video_hashtags, wv: WordVectors, n_topics: int = 5, min_exemplars: int = 15,
                   seed: int = 0, names=PAPER_TOPICS) -> TopicResult:
    from sklearn.cluster import KMeans

    counts = pd.Series(list(map(str, video_hashtags))).value_counts()
    rows, vecs = [], []
    for tag, n in sorted(counts.items()):
        words, vec, found = hashtag_vector(tag, wv)
        rows.append({"hashtag": tag, "n_videos": int(n), "words": " ".join(words), "n_found": found})
        vecs.append(vec)
    table = pd.DataFrame(rows)
    has_vec = np.array([v is not None for v in vecs])
    table["in_fit"] = (table["n_videos"] >= min_exemplars) & has_vec
    fit = np.flatnonzero(table["in_fit"].to_numpy())
    if fit.size < n_topics:
        raise ValueError(f"only {fit.size} hashtags have >= {min_exemplars} videos and a word vector; "
                         f"cannot form {n_topics} topics")
    X = np.stack([vecs[i] for i in fit])
    km = KMeans(n_clusters=n_topics, n_init=20, random_state=seed).fit(X)
    centres = km.cluster_centers_
    topic_names, name_sim = name_clusters(centres, wv, names)
    cluster = np.full(len(table), -1)
    dist = np.full(len(table), np.nan)
    for i, v in enumerate(vecs):
        if v is not None:
            d = np.linalg.norm(centres - v, axis=1)
            cluster[i], dist[i] = int(np.argmin(d)), float(d.min())
    cluster[fit] = km.labels_
    table["cluster"] = cluster
    table["topic"] = [topic_names[c] if c >= 0 else None for c in cluster]
    table["distance"] = dist
    nearest = []
    for k in range(n_topics):
        members = fit[km.labels_ == k]
        d = np.linalg.norm(X[km.labels_ == k] - centres[k], axis=1)
        nearest.append(table["hashtag"].iloc[members[int(np.argmin(d))]])
    clusters = pd.DataFrame({"cluster": range(n_topics), "topic": topic_names, "name_similarity": name_sim,
                             "n_hashtags": np.bincount(km.labels_, minlength=n_topics), "nearest_hashtag": nearest})
    return TopicResult(table, clusters, centres)
