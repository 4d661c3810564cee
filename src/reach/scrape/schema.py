"""TikTok web ``itemStruct`` records as the Discover-page tracker writes them: field rules and validation.

A record either becomes a flat ``Observation`` dict or is refused with a reason string of the form
``<class>:<detail>``; the class (the part before the colon) is what summaries count.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

SAFE_ID = re.compile(r"^[0-9]{1,25}$")
SAFE_UNIQUE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]{0,63}$")
MAX_FOLLOWERS = 2_000_000_000  # more accounts than the platform has users is impossible
MAX_DURATION_S = 600.0

# (path, kind, required). kinds: int (non-negative count unless noted), str, bool, number, list, dict
FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("id", "str", True),
    ("desc", "str", True),
    ("createTime", "int", True),
    ("author", "dict", True),
    ("author.id", "str", True),
    ("author.uniqueId", "str", True),
    ("author.verified", "bool", True),
    ("authorStats", "dict", True),
    ("authorStats.followerCount", "int", True),
    ("authorStats.heartCount", "int", True),
    ("authorStats.videoCount", "int", True),
    ("stats", "dict", True),
    ("stats.playCount", "int", True),
    ("stats.diggCount", "int", True),
    ("stats.shareCount", "int", True),
    ("stats.commentCount", "int", True),
    ("challenges", "list", True),
    ("textExtra", "list", True),
    ("stickersOnItem", "list", False),
    ("music", "dict", True),
    ("music.id", "str", True),
    ("music.title", "str", True),
    ("music.original", "bool", True),
    ("video", "dict", True),
    ("video.duration", "number", True),
    ("isAd", "bool", False),
    ("_hashtag", "str", True),
    ("_rank", "int", True),
    ("_hashtag_trending", "bool", True),
    ("_scraped_at", "str", True),
)

_MISSING = object()


def _get(record: dict, path: str) -> Any:
    cur: Any = record
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "bool": bool, "list": list, "dict": dict}[kind])


def parse_scraped_at(text: str) -> dt.datetime:
    """ISO-8601 UTC timestamp (``2020-10-05T09:12:00Z``) -> aware datetime; ValueError otherwise."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


def valid_hashtag(tag: str) -> bool:
    """A hashtag is data: any letters (unicode kept), no control characters, no '#', no whitespace."""
    return 0 < len(tag) <= 150 and not any(unicodedata.category(ch)[0] in ("C", "Z") for ch in tag) and "#" not in tag


def validate_item(record: Any) -> tuple[dict | None, str | None]:
    """Validate one parsed JSON value. Returns (observation, None) or (None, reason)."""
    if not isinstance(record, dict):
        return None, f"not_an_object:{type(record).__name__}"
    for path, kind, required in FIELDS:
        value = _get(record, path)
        if value is _MISSING or value is None:
            if required:
                return None, f"missing_field:{path}"
            continue
        if not _type_ok(value, kind):
            return None, f"wrong_type:{path} (expected {kind}, got {type(value).__name__})"
        if kind == "int" and value < 0:
            return None, f"negative_count:{path}={value}"
    if not SAFE_ID.match(record["id"]):
        return None, "unsafe_id:id must be 1-25 digits"
    if not SAFE_ID.match(record["author"]["id"]):
        return None, "unsafe_id:author.id must be 1-25 digits"
    if not SAFE_UNIQUE_ID.match(record["author"]["uniqueId"]):
        return None, "unsafe_id:author.uniqueId has characters outside [A-Za-z0-9_.]"
    if not valid_hashtag(record["_hashtag"]):
        return None, "invalid_hashtag:_hashtag is empty, too long or has control/space characters"
    stats, author_stats = record["stats"], record["authorStats"]
    if author_stats["videoCount"] < 1:
        return None, f"impossible_value:authorStats.videoCount={author_stats['videoCount']} (the item itself is a video)"
    if author_stats["followerCount"] > MAX_FOLLOWERS:
        return None, f"impossible_value:authorStats.followerCount={author_stats['followerCount']}"
    if author_stats["heartCount"] < stats["diggCount"]:
        return None, "impossible_value:authorStats.heartCount below this video's diggCount"
    if record["_rank"] < 1:
        return None, f"impossible_value:_rank={record['_rank']}"
    duration = float(record["video"]["duration"])
    if not 0 < duration <= MAX_DURATION_S:
        return None, f"impossible_value:video.duration={duration}"
    try:
        scraped = parse_scraped_at(record["_scraped_at"])
    except ValueError:
        return None, f"wrong_type:_scraped_at is not an ISO-8601 time ({record['_scraped_at'][:40]!r})"
    created = record["createTime"]
    if created < 1_000_000_000 or created > scraped.timestamp() + 3600:
        return None, f"impossible_value:createTime={created} is not before _scraped_at"
    tags: list[str] = []
    for entry in record["textExtra"]:
        if isinstance(entry, dict) and isinstance(entry.get("hashtagName"), str) and entry["hashtagName"]:
            tags.append(entry["hashtagName"])
    listed_commerce, listed_desc = False, ""
    for entry in record["challenges"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("title"), str):
            return None, "wrong_type:challenges[] entry without a string title"
        tags.append(entry["title"])
        if entry["title"] == record["_hashtag"]:
            listed_commerce = bool(entry.get("isCommerce", False))
            listed_desc = str(entry.get("desc", "") or "")
    sticker_texts: list[str] = []
    for entry in record.get("stickersOnItem") or []:
        texts = entry.get("stickerText") if isinstance(entry, dict) else None
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return None, "wrong_type:stickersOnItem[] entry without a stickerText list of strings"
        sticker_texts.append(" ".join(texts))
    unique_tags = list(dict.fromkeys(t.lower() for t in tags))
    obs = {
        "video_id": record["id"],
        "hashtag": record["_hashtag"],
        "scraped_at": scraped,
        "rank": record["_rank"],
        "hashtag_trending": record["_hashtag_trending"],
        "plays": stats["playCount"], "diggs": stats["diggCount"], "shares": stats["shareCount"],
        "comments": stats["commentCount"],
        "followers": author_stats["followerCount"], "heart_count": author_stats["heartCount"],
        "video_count": author_stats["videoCount"],
        "create_time": created,
        "author_id": record["author"]["id"], "unique_id": record["author"]["uniqueId"],
        "is_verified": record["author"]["verified"],
        "desc": record["desc"], "sticker_texts": sticker_texts, "tags": unique_tags,
        "music_id": record["music"]["id"], "music_title": record["music"]["title"],
        "music_original": record["music"]["original"], "duration_s": duration,
        "is_sponsored": bool(record.get("isAd", False)),
        "hashtag_is_commerce": listed_commerce, "hashtag_desc": listed_desc,
    }
    return obs, None


def validate_creator_post(record: Any) -> tuple[dict | None, str | None]:
    """One line of ``creators/<uniqueId>.jsonl``: id, createTime, stats.diggCount."""
    if not isinstance(record, dict):
        return None, f"not_an_object:{type(record).__name__}"
    for path, kind in (("id", "str"), ("createTime", "int"), ("stats", "dict"), ("stats.diggCount", "int")):
        value = _get(record, path)
        if value is _MISSING or value is None:
            return None, f"missing_field:{path}"
        if not _type_ok(value, kind):
            return None, f"wrong_type:{path} (expected {kind}, got {type(value).__name__})"
        if kind == "int" and value < 0:
            return None, f"negative_count:{path}={value}"
    return {"post_id": record["id"], "create_time": record["createTime"], "diggs": record["stats"]["diggCount"]}, None
