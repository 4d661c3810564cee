"""VS-VAE inputs (Section 3.1, Web Appendices B and F) from the feature files of the features stage.

Per video, aligned to results/ingest/videos.parquet order:

* text: for each source (caption, sticker, voice-over) the word vectors (padded to `max_words`) that the Bi-LSTM
  encoder reads, and the word ids that the text decoder predicts (categorical over a vocabulary built on the
  training split: id 0 pads, id 1 is "a word outside the vocabulary");
* image: the per-frame embeddings (VGG-19 fc2 slot, padded to `max_frames`), the video's object vector and the
  visual-sentiment vector (width 0 when no sentiment model ran);
* audio: music universality, sound classes and the acoustic features;
* editing: the editing feature vector.

Real-valued blocks are standardised with the training split's mean and sd (the scalers travel with the weights),
so every MSE is in sd units and the no-information rate ("predict the mean value for every feature", Table 2) is
the mean of squared z-scores. A NaN (e.g. an editing statistic the video lacks) is kept as a mask: it enters no
loss and no metric.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

TEXT_SOURCES = ("caption", "sticker", "voice")
PAD, UNK = 0, 1
SD_FLOOR = 1e-6


@dataclass
class Scaler:
    """Column mean and sd of a training block (sd floored so constant columns stay finite)."""

    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> "Scaler":
        X = np.asarray(X, np.float64)
        if X.shape[0] == 0:
            raise ValueError("cannot fit a scaler on zero rows")
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (e.g. an empty sentiment slot)
            mean = np.nanmean(X, axis=0) if X.size else np.zeros(X.shape[1])
            sd = np.nanstd(X, axis=0) if X.size else np.ones(X.shape[1])
        mean = np.where(np.isfinite(mean), mean, 0.0)
        sd = np.where(np.isfinite(sd) & (sd > SD_FLOOR), sd, 1.0)
        return cls(mean.astype(np.float32), sd.astype(np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, np.float32) - self.mean) / self.sd).astype(np.float32)

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        return (np.asarray(Z, np.float32) * self.sd + self.mean).astype(np.float32)


@dataclass
class VSVAEData:
    """Model-ready arrays for n videos (float32 z-scores; NaN already replaced by 0 and recorded in masks)."""

    video_id: np.ndarray                      # (n,)
    hashtag: np.ndarray                       # (n,)
    split: np.ndarray                         # (n,) "train" | "val" | "test"
    text_vectors: dict[str, np.ndarray]       # source -> (n, max_words, word_dim)
    text_ids: dict[str, np.ndarray]           # source -> (n, max_words) int64 (PAD beyond the length)
    text_lengths: dict[str, np.ndarray]       # source -> (n,) int64
    frames: np.ndarray                        # (n, max_frames, frame_dim)
    n_frames: np.ndarray                      # (n,) int64 (at least 1 where a video has frames)
    image_vector: np.ndarray                  # (n, objects + sentiment)
    audio: np.ndarray                         # (n, audio_dim)
    editing: np.ndarray                       # (n, editing_dim)
    editing_mask: np.ndarray                  # (n, editing_dim) 1 = observed
    audio_mask: np.ndarray                    # (n, audio_dim)
    image_vector_mask: np.ndarray             # (n, image_vector_dim)
    vocab: list[str]                          # id -> word (ids 0, 1: "<pad>", "<unk>")
    scalers: dict[str, Scaler] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    # videos whose sequence was cut to max_words / max_frames (per text source and "frames"): the model sees the
    # first max_frames frames (max_frames x the sampling interval seconds) and the first max_words words
    truncated: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.video_id)

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def stratified_split(groups, shares=(0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Assign "train" / "val" / "test" at ratio 8:1:1 within each group (hashtag), randomly (Web Appendix B).

    Within a group of size m, the counts are the largest-remainder rounding of m * shares, with the group's
    remainders broken in a seeded random order, so that every group keeps the ratio as closely as integers allow
    and small groups still contribute to every split when m >= 3."""
    groups = np.asarray(groups).astype(str)
    shares = np.asarray(shares, float)
    if shares.shape != (3,) or np.any(shares < 0) or not np.isclose(shares.sum(), 1.0):
        raise ValueError(f"split shares must be three non-negative numbers summing to 1, got {shares.tolist()}")
    rng = np.random.default_rng(seed)
    out = np.empty(len(groups), dtype=object)
    for g in sorted(set(groups)):
        idx = np.flatnonzero(groups == g)
        idx = idx[rng.permutation(len(idx))]
        m = len(idx)
        raw = m * shares
        counts = np.floor(raw).astype(int)
        # small groups: give val and test one video each before train takes the rest of the remainder
        rest = m - counts.sum()
        order = np.lexsort((rng.random(3), -(raw - counts)))
        for k in order[:rest]:
            counts[k] += 1
        if m >= 3:
            for k in (1, 2):
                if counts[k] == 0 and counts[0] > 1:
                    counts[k] += 1
                    counts[0] -= 1
        names = np.repeat(np.array(["train", "val", "test"], dtype=object), counts)
        out[idx] = names
    return out.astype(str)


def _ragged(arrays: dict, key: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    if key not in arrays or key + "__offsets" not in arrays:
        raise ValueError(f"{path}: no ragged array {key!r} (with {key}__offsets)")
    return arrays[key], arrays[key + "__offsets"].astype(np.int64)


def _pad_sequences(values: np.ndarray, offsets: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, max_len, ...) zero-padded copies of the first `max_len` rows of each sequence, and the kept lengths."""
    n = len(offsets) - 1
    lengths = np.minimum(np.diff(offsets), max_len).astype(np.int64)
    out = np.zeros((n, max_len) + values.shape[1:], dtype=values.dtype)
    for i in range(n):
        if lengths[i]:
            out[i, : lengths[i]] = values[offsets[i]: offsets[i] + lengths[i]]
    return out, lengths


def build_vocab(token_lists: list[list[str]], min_count: int = 2, max_size: int = 5000) -> list[str]:
    """Words seen at least `min_count` times (most frequent first, ties alphabetical), capped at `max_size`."""
    counts = Counter(w for toks in token_lists for w in toks)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return ["<pad>", "<unk>"] + words[: max(0, max_size - 2)]


def load_feature_arrays(paths: dict[str, str]) -> dict[str, dict[str, np.ndarray]]:
    from reach.features.store import load_npz

    return {m: load_npz(p) for m, p in paths.items()}


def prepare(arrays: dict[str, dict[str, np.ndarray]], videos: pd.DataFrame, *, seed: int, max_words: int = 32,
            max_frames: int = 8, vocab_min_count: int = 2, vocab_size: int = 5000,
            split: np.ndarray | None = None, vocab: list[str] | None = None,
            scalers: dict[str, Scaler] | None = None, sources: dict[str, str] | None = None) -> VSVAEData:
    """Build `VSVAEData` from the gathered feature arrays (modality -> npz dict) and videos.parquet (video_id,
    hashtag). The split, vocabulary and scalers are fitted on the training split unless given (e.g. from saved
    weights at encoding time). `sources` names the files in error messages."""
    sources = sources or {m: m for m in arrays}
    order = videos["video_id"].astype(str).to_numpy()
    for m in ("text", "image", "audio", "editing"):
        if m not in arrays:
            raise ValueError(f"missing {m} features")
        ids = arrays[m]["video_id"].astype(str)
        if not np.array_equal(ids, order):
            bad = int(np.flatnonzero(ids != order)[0]) if len(ids) == len(order) else None
            raise ValueError(f"{sources[m]}: video_id is not in videos.parquet order "
                             f"({len(ids)} vs {len(order)} videos; first mismatch at row {bad})")
    n = len(order)
    hashtag = videos["hashtag"].astype(str).to_numpy()
    if split is None:
        split = stratified_split(hashtag, seed=seed)
    split = np.asarray(split).astype(str)
    train = split == "train"
    if not train.any():
        raise ValueError("the training split is empty")

    # text: word vectors in, word ids out
    text = arrays["text"]
    tokens = {}
    vecs, lens = {}, {}
    truncated: dict[str, int] = {}
    for s in TEXT_SOURCES:
        v, off = _ragged(text, f"{s}_vectors", sources["text"])
        t, toff = _ragged(text, f"{s}_tokens", sources["text"])
        if not np.array_equal(off, toff):
            raise ValueError(f"{sources['text']}: {s}_tokens and {s}_vectors are not aligned")
        vecs[s], lens[s] = _pad_sequences(np.nan_to_num(v.astype(np.float32)), off, max_words)
        truncated[s] = int((np.diff(off) > max_words).sum())
        tokens[s] = [t[off[i]: off[i] + lens[s][i]].tolist() for i in range(n)]
    if vocab is None:
        vocab = build_vocab([tokens[s][i] for s in TEXT_SOURCES for i in np.flatnonzero(train)],
                            vocab_min_count, vocab_size)
    index = {w: k for k, w in enumerate(vocab)}
    ids = {}
    for s in TEXT_SOURCES:
        a = np.zeros((n, max_words), dtype=np.int64)
        for i, toks in enumerate(tokens[s]):
            a[i, : len(toks)] = [index.get(w, UNK) for w in toks]
        ids[s] = a

    # image: frame sequence + object/sentiment vector
    image = arrays["image"]
    fe, foff = _ragged(image, "frame_embed", sources["image"])
    frames_raw, n_frames = _pad_sequences(fe.astype(np.float32), foff, max_frames)
    truncated["frames"] = int((np.diff(foff) > max_frames).sum())
    vec_parts = [image["objects"].astype(np.float32)]
    vec_cols = [f"object_{k}" for k in range(image["objects"].shape[1])]
    if "sentiment" in image and image["sentiment"].ndim == 2 and image["sentiment"].shape[1] > 0:
        vec_parts.append(image["sentiment"].astype(np.float32))
        vec_cols += [f"sentiment_{k}" for k in range(image["sentiment"].shape[1])]
    image_vector = np.column_stack(vec_parts)

    audio = arrays["audio"]
    audio_x = np.column_stack([np.asarray(audio["universality"], np.float32).reshape(n, -1),
                               audio["sound_classes"].astype(np.float32), audio["acoustic"].astype(np.float32)])
    audio_cols = (["universality"] + [f"sound_{x}" for x in audio.get("meta_sound_labels", range(
        audio["sound_classes"].shape[1]))] + [str(x) for x in audio.get("meta_acoustic_names", range(
            audio["acoustic"].shape[1]))])
    editing_x = np.asarray(arrays["editing"]["values"], np.float32)
    editing_cols = [str(c) for c in arrays["editing"].get("meta_columns", range(editing_x.shape[1]))]

    if scalers is None:
        frame_rows = np.concatenate([frames_raw[i, : n_frames[i]] for i in np.flatnonzero(train)]) \
            if n_frames[train].sum() else np.zeros((1, frames_raw.shape[2]), np.float32)
        scalers = {"frames": Scaler.fit(frame_rows), "image_vector": Scaler.fit(image_vector[train]),
                   "audio": Scaler.fit(audio_x[train]), "editing": Scaler.fit(editing_x[train])}
    frames = scalers["frames"].transform(frames_raw)
    fmask = np.arange(max_frames)[None, :] < n_frames[:, None]
    frames = np.where(fmask[..., None], np.nan_to_num(frames), 0.0).astype(np.float32)

    def z(block, name):
        Z = scalers[name].transform(block)
        mask = np.isfinite(Z).astype(np.float32)
        return np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32), mask

    image_z, image_mask = z(image_vector, "image_vector")
    audio_z, audio_mask = z(audio_x, "audio")
    editing_z, editing_mask = z(editing_x, "editing")
    dims = {"word_dim": int(vecs["caption"].shape[2]), "frame_dim": int(frames.shape[2]),
            "image_vector_dim": int(image_z.shape[1]), "audio_dim": int(audio_z.shape[1]),
            "editing_dim": int(editing_z.shape[1]), "vocab_size": len(vocab), "max_words": int(max_words),
            "max_frames": int(max_frames), "objects_dim": int(image["objects"].shape[1])}
    return VSVAEData(
        video_id=order, hashtag=hashtag, split=split, text_vectors=vecs, text_ids=ids, text_lengths=lens,
        frames=frames, n_frames=n_frames, image_vector=image_z, audio=audio_z, editing=editing_z,
        editing_mask=editing_mask, audio_mask=audio_mask, image_vector_mask=image_mask, vocab=list(vocab),
        scalers=scalers, dims=dims,
        columns={"image_vector": vec_cols, "audio": audio_cols, "editing": editing_cols}, truncated=truncated)


def batch_arrays(data: VSVAEData, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays of `rows` under the names the model's forward pass expects."""
    out = {"frames": data.frames[rows], "n_frames": data.n_frames[rows], "image_vector": data.image_vector[rows],
           "image_vector_mask": data.image_vector_mask[rows], "audio": data.audio[rows],
           "audio_mask": data.audio_mask[rows], "editing": data.editing[rows],
           "editing_mask": data.editing_mask[rows]}
    for s in TEXT_SOURCES:
        out[f"{s}_vectors"] = data.text_vectors[s][rows]
        out[f"{s}_ids"] = data.text_ids[s][rows]
        out[f"{s}_lengths"] = data.text_lengths[s][rows]
    return out
