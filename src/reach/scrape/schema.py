"""TikTok web ``itemStruct`` records as the Discover-page tracker writes them: field rules and validation.

A record either becomes a flat ``Observation`` dict or is refused with a reason string of the form
``<class>:<detail>``; the class (the part before the colon) is what summaries count.

The rules accept what TikTok and the common scrapers really write (see ``reach.scrape.normalise`` for the
wrappers and the mobile ``aweme`` form, and tests/fixtures/real/ for transcribed records):

- counts are ints or numeric strings; the exact ``statsV2`` count wins over the rounded ``stats`` one
  (``authorStatsV2`` over ``authorStats``), per value, and the observation records which one it used;
- ``createTime`` is an int or a numeric string (2022 ``SIGI_STATE`` records);
- ``author`` is an object or a plain uniqueId string with ``authorId`` beside it (resolved against
  ``UserModule.users`` when the page gave one); ``heart`` stands in for ``heartCount``;
- ``challenges`` / ``textExtra`` / ``stickersOnItem`` may be missing; mentions (``textExtra`` entries with an
  empty ``hashtagName``) are not hashtags;
- ids are digit strings; an id that reached the file as a number above 2**53 with the digits a float
  round trip leaves (or disagreeing with a copy of itself in that way) has lost precision and is refused;
- an int32-wrapped (negative), zero or too-small ``heartCount`` does not refuse the record: it marks the
  creator's hearts unusable, so that the instrument must come from the post list (``reach.scrape.ingest``).
Cross-field checks allow what TikTok's rounding produces (rounded playCount below an exact diggCount,
shares above plays); only values impossible under any rounding are refused.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from decimal import Decimal
from typing import Any

SAFE_ID = re.compile(r"^[0-9]{1,25}$")
SAFE_UNIQUE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]{0,63}$")
DIGITS = re.compile(r"^-?[0-9]{1,25}$")
MAX_FOLLOWERS = 2_000_000_000  # more accounts than the platform has users is impossible
MAX_DURATION_S = 3600.0        # TikTok accepts uploads of up to 60 minutes
EXACT_INT = 2 ** 53
MAX_COUNT = 10 ** 15           # a count above a million billion is no rounding of a real one
MAX_RANK = 10 ** 7
MAX_EPOCH_S = 10 ** 11          # seconds since 1970 up to the year 5138: a larger createTime is milliseconds
STAT_KEYS = (("playCount", "plays"), ("diggCount", "diggs"), ("shareCount", "shares"), ("commentCount", "comments"))
CONTEXT_KEYS = ("_hashtag", "_rank", "_hashtag_trending", "_scraped_at")
_MISSING = object()


_KIND_TYPES = {"int": (int,), "number": (int, float), "str": (str,), "bool": (bool,), "list": (list,),
               "dict": (dict,)}


def _type_ok(value: Any, kind: str) -> bool:
    return type(value) in _KIND_TYPES[kind]


def as_count(value: Any, path: str) -> tuple[int | None, str | None]:
    """An int or a numeric string (``statsV2``) -> int; anything else -> a wrong_type reason."""
    if type(value) is int:
        return value, None
    if isinstance(value, str) and DIGITS.match(value):
        return int(value), None
    return None, f"wrong_type:{path} (expected int, got {type(value).__name__})"


def looks_float_rounded(number: int) -> bool:
    """True when ``number``'s digits are what a float round trip leaves: the double itself
    (7022407054702806016) or its shortest decimal form (7022407054702806000)."""
    f = float(number)
    return int(f) == number or int(Decimal(repr(f))) == number


def as_id(value: Any, path: str, copies: tuple = ()) -> tuple[str | None, str | None]:
    """A TikTok id -> its digit string. Refused with ``id_precision_lost`` when it is a float above 2**53, an
    int above 2**53 with float round-trip digits and no copy confirming it, or one whose copy (``video.id``,
    ``id_str``, ``statistics.aweme_id`` ...) is the same double with other digits."""
    kind = type(value)
    if kind is str:
        text = value
    elif kind is int:
        text = str(value)
    elif kind is float:
        if abs(value) >= EXACT_INT:
            return None, f"id_precision_lost:{path}={value!r} is a floating-point number above 2**53"
        return None, f"wrong_type:{path} (expected str, got float)"
    else:
        return None, f"wrong_type:{path} (expected str, got {kind.__name__})"
    if not SAFE_ID.match(text):
        return None, f"unsafe_id:{path} must be 1-25 digits"
    if len(text) < 16 or int(text) < EXACT_INT:
        return text, None
    confirmed, clash = False, None
    for copy in copies:
        if copy is None or type(copy) not in (str, int, float):
            continue
        ctext = repr(copy) if type(copy) is float else str(copy)
        if ctext == text:
            confirmed = True
        elif type(copy) is float or (SAFE_ID.match(ctext) and float(int(ctext)) == float(int(text))):
            clash = ctext
    if clash is None and (kind is str or confirmed):
        return text, None
    rounded = looks_float_rounded(int(text))
    if clash is not None and rounded:
        return None, f"id_precision_lost:{path}={text} and its copy {clash} are the same double (a float-parsing tool)"
    if kind is int and rounded and not confirmed:
        return None, f"id_precision_lost:{path}={text} is a JSON number above 2**53 with float round-trip digits"
    return text, None


def parse_scraped_at(text: str) -> dt.datetime:
    """ISO-8601 UTC timestamp (``2020-10-05T09:12:00Z``) -> aware datetime; ValueError otherwise."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


@functools.lru_cache(maxsize=1 << 16)
def valid_hashtag(tag: str) -> bool:
    """A hashtag is data: any letters (unicode kept), no control characters, no '#', no whitespace."""
    return 0 < len(tag) <= 150 and not any(unicodedata.category(ch)[0] in ("C", "Z") for ch in tag) and "#" not in tag


def _required(record: dict, key: str, kind: str, path: str | None = None) -> tuple[Any, str | None]:
    value = record.get(key, _MISSING) if isinstance(record, dict) else _MISSING
    path = path or key
    if value is _MISSING or value is None:
        return None, f"missing_field:{path}"
    if not _type_ok(value, kind):
        return None, f"wrong_type:{path} (expected {kind}, got {type(value).__name__})"
    return value, None


def _counts(blocks: tuple[tuple[str, Any], ...], keys: tuple[tuple[str, ...], ...], missing: str,
            sources: dict, names: tuple[str, ...]) -> tuple[list[int] | None, str | None]:
    """For each count (alternative key names in ``keys``), the first block that has it; the block's name is
    recorded in ``sources`` under the observation's name for the count."""
    out = []
    if blocks[0][1] is None and type(blocks[1][1]) is dict:
        block, label = blocks[1][1], blocks[1][0]
        for alternatives, name in zip(keys, names):  # the common case: one block, int counts
            value = block.get(alternatives[0])
            if type(value) is not int:
                break
            out.append(value)
            sources[name] = label
        else:
            return out, None
        out = []
    for alternatives, name in zip(keys, names):
        found = False
        for label, block in blocks:
            if not isinstance(block, dict):
                continue
            for key in alternatives:
                value = block.get(key)
                if value is None:
                    continue
                number, reason = as_count(value, f"{label}.{key}")
                if reason is not None:
                    return None, reason
                out.append(number)
                sources[name] = label
                found = True
                break
            if found:
                break
        if not found:
            present = [label for label, block in blocks if isinstance(block, dict)]
            return None, f"missing_field:{present[-1] + '.' + alternatives[0] if present else missing}"
    return out, None


def validate_item(record: Any, users: dict | None = None, user_stats: dict | None = None,
                  preset: dict | None = None) -> tuple[dict | None, str | None]:
    """Validate one item (web itemStruct, or the web form ``normalise.aweme_to_item`` made of a mobile one).
    ``users`` / ``user_stats``: a page's ``UserModule.users`` / ``.stats`` (keyed by uniqueId).
    Returns (observation, None) or (None, reason); the observation's ``sources`` says where values came from."""
    if not isinstance(record, dict):
        return None, f"not_an_object:{type(record).__name__}"
    sources: dict[str, str] = dict(preset) if preset else {}
    vid = record.get("id")
    if vid is None:
        return None, "missing_field:id"
    desc, reason = _required(record, "desc", "str")
    if reason:
        return None, reason
    created = record.get("createTime")
    if created is None:
        return None, "missing_field:createTime"
    if isinstance(created, str):
        sources["create_time"] = "createTime (numeric string)"
    created, reason = as_count(created, "createTime")
    if reason:
        return None, reason

    # author: an object, or a uniqueId string with authorId beside it (SIGI_STATE ItemModule)
    author = record.get("author")
    if author is None:
        return None, "missing_field:author"
    if isinstance(author, str):
        user = (users or {}).get(author)
        author = {"uniqueId": author, "id": record.get("authorId", (user or {}).get("id")),
                  "verified": (user or {}).get("verified", record.get("authorVerified"))}
        sources["author"] = "UserModule.users" if user else "author string + authorId"
    elif not isinstance(author, dict):
        return None, f"wrong_type:author (expected dict, got {type(author).__name__})"
    unique_id, reason = _required(author, "uniqueId", "str", "author.uniqueId")
    if author.get("id") is None:
        return None, "missing_field:author.id"
    if reason:
        return None, reason
    verified = author.get("verified")
    if verified is None:
        verified = False
        sources["verified"] = "absent (taken as false)"
    elif not isinstance(verified, bool):
        return None, f"wrong_type:author.verified (expected bool, got {type(verified).__name__})"

    # creator statistics: exact authorStatsV2, then authorStats, then the page's UserModule.stats
    author_blocks = (("authorStatsV2", record.get("authorStatsV2")), ("authorStats", record.get("authorStats")),
                     ("UserModule.stats", (user_stats or {}).get(unique_id)))
    if not any(isinstance(b, dict) for _, b in author_blocks):
        if "authorStats" in record and record["authorStats"] is not None:
            return None, f"wrong_type:authorStats (expected dict, got {type(record['authorStats']).__name__})"
        return None, preset.get("_no_author_stats", "missing_field:authorStats") if preset else \
            "missing_field:authorStats"
    author_counts, reason = _counts(author_blocks, (("followerCount",), ("heartCount", "heart"), ("videoCount",)),
                                    "authorStats", sources, ("followers", "heart_count", "video_count"))
    if reason:
        return None, reason
    followers, hearts, video_count = author_counts

    stat_blocks = ((preset or {}).get("_exact_label", "statsV2"), record.get("statsV2")), ("stats", record.get("stats"))
    if not any(isinstance(b, dict) for _, b in stat_blocks):
        if record.get("stats") is not None:
            return None, f"wrong_type:stats (expected dict, got {type(record['stats']).__name__})"
        return None, "missing_field:stats"
    stat_counts, reason = _counts(stat_blocks, tuple((k,) for k, _ in STAT_KEYS), "stats", sources,
                                  tuple(n for _, n in STAT_KEYS))
    if reason:
        return None, reason
    plays, diggs, shares, comments = stat_counts

    challenges = record.get("challenges")
    if challenges is None:
        challenges = []
    elif not isinstance(challenges, list):
        return None, f"wrong_type:challenges (expected list, got {type(challenges).__name__})"
    text_extra = record.get("textExtra")
    if text_extra is None:
        text_extra = []
    elif not isinstance(text_extra, list):
        return None, f"wrong_type:textExtra (expected list, got {type(text_extra).__name__})"
    stickers = record.get("stickersOnItem")
    if stickers is not None and not isinstance(stickers, list):
        return None, f"wrong_type:stickersOnItem (expected list, got {type(stickers).__name__})"
    music, reason = _required(record, "music", "dict")
    if reason:
        return None, reason
    music_id = music.get("id")
    if music_id is None:
        return None, "missing_field:music.id"
    music_title, reason = _required(music, "title", "str", "music.title")
    if reason:
        return None, reason
    music_original, reason = _required(music, "original", "bool", "music.original")
    if reason:
        return None, reason
    video, reason = _required(record, "video", "dict")
    if reason:
        return None, reason
    duration, reason = _required(video, "duration", "number", "video.duration")
    if reason:
        return None, reason
    is_ad = record.get("isAd")
    if is_ad is not None and not isinstance(is_ad, bool):
        return None, f"wrong_type:isAd (expected bool, got {type(is_ad).__name__})"
    hashtag, reason = _required(record, "_hashtag", "str")
    if reason:
        return None, reason
    rank, reason = _required(record, "_rank", "int")
    if reason:
        return None, reason
    trending, reason = _required(record, "_hashtag_trending", "bool")
    if reason:
        return None, reason
    scraped_text, reason = _required(record, "_scraped_at", "str")
    if reason:
        return None, reason

    for name, value in (("stats.playCount", plays), ("stats.diggCount", diggs), ("stats.shareCount", shares),
                        ("stats.commentCount", comments), ("authorStats.followerCount", followers),
                        ("authorStats.videoCount", video_count)):
        if value < 0:
            return None, f"negative_count:{name}={value}"
    if created < 0:
        return None, f"negative_count:createTime={created}"
    if rank < 0:
        return None, f"negative_count:_rank={rank}"

    vid, reason = as_id(vid, "id", (video.get("id"),))
    if reason:
        return None, reason
    author_id, reason = as_id(author["id"], "author.id", (record.get("authorId"),))
    if reason:
        return None, reason
    if not SAFE_UNIQUE_ID.match(unique_id):
        return None, "unsafe_id:author.uniqueId has characters outside [A-Za-z0-9_.]"
    if type(music_id) is str and not SAFE_ID.match(music_id):
        pass  # a music id is data, never a path: kept as written
    else:
        music_id, reason = as_id(music_id, "music.id", (music.get("id_str"),))
        if reason:
            return None, reason
    if not valid_hashtag(hashtag):
        return None, "invalid_hashtag:_hashtag is empty, too long or has control/space characters"
    if video_count < 1:
        return None, f"impossible_value:authorStats.videoCount={video_count} (the item itself is a video)"
    for name, value in (("stats.playCount", plays), ("stats.diggCount", diggs), ("stats.shareCount", shares),
                        ("stats.commentCount", comments), ("authorStats.heartCount", hearts),
                        ("authorStats.videoCount", video_count)):
        if value > MAX_COUNT:
            return None, f"impossible_value:{name}={value} (above {MAX_COUNT:.0e} under any rounding)"
    if followers > MAX_FOLLOWERS:
        return None, f"impossible_value:authorStats.followerCount={followers}"
    # Hearts: int32-wrapped (negative), zeroed for billions, or below this video's own diggs (allowing for
    # the 2-significant-digit rounding of both) cannot be the creator's total; the record stays, its hearts
    # are flagged so that the instrument cannot be taken from them.
    hearts_ok = hearts > 0 and hearts >= 0.9 * diggs
    if not hearts_ok:
        sources["heart_count"] = f"unusable ({sources.get('heart_count', 'authorStats')}={hearts})"
    if rank < 1 or rank > MAX_RANK:
        return None, f"impossible_value:_rank={rank}"
    duration = float(duration) / float((preset or {}).get("_duration_scale", 1))
    if not 0 < duration <= MAX_DURATION_S:
        return None, f"impossible_value:video.duration={duration}"
    try:
        scraped = parse_scraped_at(scraped_text)
    except ValueError:
        return None, f"wrong_type:_scraped_at is not an ISO-8601 time ({scraped_text[:40]!r})"
    if created > MAX_EPOCH_S:
        return None, f"impossible_value:createTime={created} looks like milliseconds (want seconds since 1970)"
    if created < 1_000_000_000 or created > scraped.timestamp() + 3600:
        return None, f"impossible_value:createTime={created} is not before _scraped_at"
    tags: list[str] = []
    for entry in text_extra:
        if isinstance(entry, dict) and isinstance(entry.get("hashtagName"), str) and entry["hashtagName"]:
            tags.append(entry["hashtagName"])
    listed_commerce, listed_desc = False, ""
    for entry in challenges:
        if not isinstance(entry, dict) or not isinstance(entry.get("title"), str):
            return None, "wrong_type:challenges[] entry without a string title"
        tags.append(entry["title"])
        if entry["title"] == hashtag:
            listed_commerce = bool(entry.get("isCommerce", False))
            listed_desc = str(entry.get("desc", "") or "")
    sticker_texts: list[str] = []
    for entry in stickers or []:
        texts = entry.get("stickerText") if isinstance(entry, dict) else None
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return None, "wrong_type:stickersOnItem[] entry without a stickerText list of strings"
        sticker_texts.append(" ".join(texts))
    unique_tags = list(dict.fromkeys(t.lower() for t in tags))
    obs = {
        "video_id": vid,
        "hashtag": hashtag,
        "scraped_at": scraped,
        "rank": rank,
        "hashtag_trending": trending,
        "plays": plays, "diggs": diggs, "shares": shares, "comments": comments,
        "followers": followers, "heart_count": hearts, "video_count": video_count, "hearts_ok": hearts_ok,
        "create_time": created,
        "author_id": author_id, "unique_id": unique_id,
        "is_verified": verified,
        "desc": desc, "sticker_texts": sticker_texts, "tags": unique_tags,
        "music_id": music_id, "music_title": music_title,
        "music_original": music_original, "duration_s": duration,
        "is_sponsored": bool(is_ad or False),
        "hashtag_is_commerce": listed_commerce, "hashtag_desc": listed_desc,
        "sources": {k: v for k, v in sources.items() if not k.startswith("_")},
    }
    return obs, None


def validate_creator_post(record: Any) -> tuple[dict | None, str | None]:
    """One post of ``creators/<uniqueId>.jsonl``: id, createTime (int or numeric string), and the hearts as
    ``statsV2.diggCount`` (exact, preferred) or ``stats.diggCount``; mobile ``aweme_id`` / ``create_time`` /
    ``statistics.digg_count`` too."""
    if not isinstance(record, dict):
        return None, f"not_an_object:{type(record).__name__}"
    mobile = "aweme_id" in record and "id" not in record
    id_key, time_key = ("aweme_id", "create_time") if mobile else ("id", "createTime")
    blocks = (("statistics", record.get("statistics")),) if mobile else \
        (("statsV2", record.get("statsV2")), ("stats", record.get("stats")))
    value = record.get(id_key)
    if value is None:
        return None, f"missing_field:{id_key}"
    created = record.get(time_key)
    if created is None:
        return None, f"missing_field:{time_key}"
    if not any(isinstance(b, dict) for _, b in blocks):
        if not mobile and record.get("stats") is not None:
            return None, f"wrong_type:stats (expected dict, got {type(record['stats']).__name__})"
        return None, f"missing_field:{blocks[-1][0]}"
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return None, f"wrong_type:{id_key} (expected str, got {type(value).__name__})"
    created, reason = as_count(created, time_key)
    if reason:
        return None, reason
    sources: dict[str, str] = {}
    counts, reason = _counts(blocks, (("digg_count",),) if mobile else (("diggCount",),), blocks[-1][0],
                             sources, ("diggs",))
    if reason:
        return None, reason
    copies = ((record.get("statistics") or {}).get("aweme_id"),) if mobile else ()
    post_id, reason = as_id(value, id_key, copies)
    if reason:
        return None, reason
    if counts[0] < 0:
        return None, f"negative_count:{sources['diggs']}.{'digg_count' if mobile else 'diggCount'}={counts[0]}"
    if created < 0:
        return None, f"negative_count:{time_key}={created}"
    if created > MAX_EPOCH_S:
        return None, f"impossible_value:{time_key}={created} looks like milliseconds (want seconds since 1970)"
    return {"post_id": post_id, "create_time": created, "diggs": counts[0]}, None
