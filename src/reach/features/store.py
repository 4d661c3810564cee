"""Per-shard feature files and their concatenation in videos.parquet order.

A feature file is an ``.npz`` (loaded with ``allow_pickle=False``) holding ``video_id`` (n,), per-video arrays
(first axis n), ragged per-video sequences stored as ``NAME`` (total rows, ...) plus ``NAME__offsets`` (n + 1),
and shared arrays named ``meta_*`` (column names and the like), which must agree across shards.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OFFSETS = "__offsets"


def shard_rows(video_ids, shard: int, n_shards: int) -> np.ndarray:
    """Row numbers (in the given order) of the videos that fall in `shard` (reach.shards.shard_of)."""
    from reach.shards import shard_of

    return np.array([i for i, v in enumerate(video_ids) if shard_of(str(v), n_shards) == shard], dtype=np.int64)


def offsets_from_lengths(lengths) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))]).astype(np.int64)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write arrays (no object dtypes: strings become fixed-width unicode) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {}
    for key, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            arr = arr.astype(str)
        clean[key] = arr
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **clean)
    tmp.replace(path)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def ragged_rows(offsets: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index into a ragged array that lists the sequences of `order` in turn, and the new offsets."""
    starts, ends = offsets[order], offsets[order + 1]
    lengths = ends - starts
    rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(order) else np.zeros(0, int)
    return rows.astype(np.int64), offsets_from_lengths(lengths)


def concat_in_order(parts: list[dict[str, np.ndarray]], video_ids) -> dict[str, np.ndarray]:
    """Concatenate shard dicts and reorder every per-video and ragged array to `video_ids`' order. Raises when a
    video is missing or duplicated, or when shards disagree on a shared array."""
    video_ids = np.asarray(video_ids).astype(str)
    if not parts:
        raise ValueError("no shard files to concatenate")
    keys = list(parts[0])
    for p in parts[1:]:
        if list(p) != keys:
            raise ValueError(f"shards hold different arrays: {sorted(set(p) ^ set(keys))}")
    ids = np.concatenate([p["video_id"].astype(str) for p in parts])
    pos = {v: i for i, v in enumerate(ids)}
    if len(pos) != ids.size:
        raise ValueError("a video appears in more than one shard")
    missing = [v for v in video_ids if v not in pos]
    if missing or len(video_ids) != ids.size:
        raise ValueError(f"shards do not cover the videos exactly: {len(missing)} missing, "
                         f"{ids.size - len(video_ids) + len(missing)} extra")
    order = np.array([pos[v] for v in video_ids], dtype=np.int64)
    out: dict[str, np.ndarray] = {"video_id": video_ids}
    n_parts = [p["video_id"].shape[0] for p in parts]
    for key in keys:
        if key == "video_id" or key.endswith(OFFSETS):
            continue
        if key + OFFSETS in parts[0]:
            shifted, base = [], 0
            for p in parts:
                off = p[key + OFFSETS]
                shifted.append(off[:-1] + base)
                base += int(off[-1])
            offsets = np.concatenate(shifted + [[base]]).astype(np.int64)
            rows, new_off = ragged_rows(offsets, order)
            out[key] = np.concatenate([p[key] for p in parts])[rows]
            out[key + OFFSETS] = new_off
        elif key.startswith("meta_"):
            for p in parts[1:]:
                if not np.array_equal(p[key], parts[0][key]):
                    raise ValueError(f"shards disagree on shared array {key}")
            out[key] = parts[0][key]
        else:
            if any(p[key].shape[0] != n for p, n in zip(parts, n_parts)):
                raise ValueError(f"{key}: first axis is not the shard's video count")
            out[key] = np.concatenate([p[key] for p in parts])[order]
    return out


def write_manifest(path: str | Path, manifest: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
