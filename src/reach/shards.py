"""Stable sharding of per-video work (DESIGN section 2): the same video lands in the same shard on any machine."""

from __future__ import annotations

import hashlib


def shard_of(video_id: str, n_shards: int) -> int:
    """Shard index in [0, n_shards) from a SHA-256 of the video id (not Python's salted hash)."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    return int.from_bytes(hashlib.sha256(str(video_id).encode("utf-8")).digest()[:8], "big") % n_shards
