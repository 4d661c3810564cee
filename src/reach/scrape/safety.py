"""Turning scraped strings into file names and wildcards safely (no traversal, no shell metacharacters)."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SLUG_CHARS = re.compile(r"[^A-Za-z0-9]+")


def hashtag_slug(hashtag: str) -> str:
    """A file-name-safe, collision-free name for a hashtag: ASCII-folded letters and digits plus a short hash
    of the exact unicode text (``CaféMornings`` -> ``CafeMornings-1a2b3c4d``). The hashtag itself stays data."""
    folded = unicodedata.normalize("NFKD", hashtag).encode("ascii", "ignore").decode("ascii")
    stem = _SLUG_CHARS.sub("", folded)[:40] or "tag"
    digest = hashlib.sha256(hashtag.encode("utf-8")).hexdigest()[:8]
    return f"{stem}-{digest}"


def is_safe_component(name: str) -> bool:
    """True when ``name`` can be used as one path component: no separators, not '.'/'..', printable ASCII
    letters, digits, '_', '-', '.'."""
    return bool(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}", name)) and name not in (".", "..")
