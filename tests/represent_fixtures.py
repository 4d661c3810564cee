"""A small synthetic feature set with the layout of the features stage's gathered files (ragged text and frame
sequences with offsets), driven by a 2-d latent so that reconstruction from r is easy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reach.features.store import offsets_from_lengths


def make_features(n: int = 160, n_hashtags: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    video_id = np.array([f"{7000000000000000000 + i}" for i in range(n)])
    hashtag = np.array([f"Tag{k}" for k in rng.integers(0, n_hashtags, n)])
    centre = rng.normal(size=(n_hashtags, 2)) * 1.5
    z = centre[[int(h[3:]) for h in hashtag]] + 0.5 * rng.normal(size=(n, 2))
    word_dim = 8
    words = [f"w{k}" for k in range(12)]
    emb = rng.normal(size=(len(words), word_dim)).astype(np.float32)
    arrays = {"text": {"video_id": video_id}, "image": {"video_id": video_id}}
    for s, base_len in (("caption", 6), ("sticker", 2), ("voice", 0)):
        toks, lens = [], []
        for i in range(n):
            m = base_len if s != "sticker" or i % 2 == 0 else 0  # half the videos have no sticker, none voice
            a, b = int(z[i, 0] > 0), int(z[i, 1] > 0)
            seq = [words[(2 * a + b + 4 * (j % 3)) % len(words)] for j in range(m)]
            toks += seq
            lens.append(m)
        ids = np.array([words.index(w) for w in toks], dtype=int)
        arrays["text"][f"{s}_tokens"] = np.array(toks, dtype="<U4")
        arrays["text"][f"{s}_tokens__offsets"] = offsets_from_lengths(lens)
        arrays["text"][f"{s}_vectors"] = emb[ids].reshape(-1, word_dim)
        arrays["text"][f"{s}_vectors__offsets"] = offsets_from_lengths(lens)
        off = offsets_from_lengths(lens)
        vec = arrays["text"][f"{s}_vectors"]
        arrays["text"][f"{s}_mean"] = np.array([vec[off[i]:off[i + 1]].mean(0) if lens[i] else np.full(word_dim, np.nan)
                                                for i in range(n)], dtype=np.float32)
    n_frames = rng.integers(1, 4, n)
    A = rng.normal(size=(2, 12))
    frames = np.concatenate([z[i] @ A + 0.1 * rng.normal(size=(n_frames[i], 12)) for i in range(n)]).astype(np.float32)
    arrays["image"]["frame_embed"] = frames
    arrays["image"]["frame_embed__offsets"] = offsets_from_lengths(n_frames)
    logits = z @ rng.normal(size=(2, 6))
    arrays["image"]["objects"] = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    arrays["audio"] = {"video_id": video_id, "universality": 0.2 + 0.05 * z[:, 0],
                       "sound_classes": (z @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(n, 5))).astype(np.float32),
                       "acoustic": z @ rng.normal(size=(2, 3)) * 100 + 500}
    editing = z @ rng.normal(size=(2, 7)) + 0.1 * rng.normal(size=(n, 7))
    editing[3, 2] = np.nan
    arrays["editing"] = {"video_id": video_id, "values": editing, "meta_columns": np.array([f"e{k}" for k in range(7)])}
    videos = pd.DataFrame({"video_id": video_id, "hashtag": hashtag})
    return arrays, videos, z
