"""Every shape a scraped line comes in -> the items it holds, each in the web ``itemStruct`` form.

One line of ``items/<day>.jsonl`` is either a bare item or a page/API response that wraps items:

| format (``sources["format"]``) | where the items are |
|---|---|
| ``item`` | the line is the web itemStruct itself |
| ``itemList`` / ``items`` | ``itemList[]`` (item_list / recommend APIs) or the older ``items[]`` |
| ``itemInfo`` | ``itemInfo.itemStruct`` (item detail API), ``statusCode`` beside it |
| ``next_data`` | ``props.pageProps.itemInfo.itemStruct`` (``__NEXT_DATA__``, 2020-2021 pages) |
| ``sigi_state`` | ``ItemModule[id]`` with ``UserModule.users`` / ``.stats`` (``SIGI_STATE``, 2022-2023 pages) |
| ``universal_data`` | ``__DEFAULT_SCOPE__["webapp.video-detail"].itemInfo.itemStruct`` with ``statusCode`` (2023-) |
| ``aweme`` / ``aweme_detail`` / ``aweme_details`` / ``aweme_list`` | the mobile API's aweme objects |

The tracker's listing context (``_hashtag, _rank, _hashtag_trending, _scraped_at``) sits on each item or once
on the wrapping line; items of a list without their own ``_rank`` are ranked by position, starting at the
line's ``_rank`` (default 1). Placeholders (a non-zero ``statusCode``: private post, private account,
deleted/blocked, login required; an empty list) are one record each, refused with class ``unavailable``
(``empty_listing`` for an empty list); photo/slideshow posts are refused with class ``photo_post``.
"""

from __future__ import annotations

from typing import Any, Iterator

from reach.scrape.schema import CONTEXT_KEYS, as_count, as_id

# statusCode values TikTok's web pages and APIs return instead of an item (davidteather/TikTok-Api#403, #1007;
# yt-dlp/yt-dlp#10574, #14585)
STATUS_MEANING = {
    10101: "login required", 10102: "login required", 10201: "invalid item", 10202: "not found",
    10204: "deleted or blocked post", 10215: "item unavailable", 10216: "private post",
    10222: "private account", 10000: "captcha page",
}
DETAIL_SCOPES = ("webapp.video-detail", "webapp.reflow.video.detail")
PHOTO_AWEME_TYPES = frozenset({150})
_WRAPPER_KEYS = ("itemList", "items", "itemInfo", "props", "ItemModule", "SIGI_STATE", "__DEFAULT_SCOPE__",
                 "__UNIVERSAL_DATA_FOR_REHYDRATION__", "aweme_detail", "aweme_details", "aweme_list")


def _status(value: dict) -> Any:
    for key in ("statusCode", "status_code"):
        code = value.get(key)
        if code not in (None, 0, "0"):
            return code
    return None


def _unavailable(code: Any, where: str) -> str:
    try:
        meaning = STATUS_MEANING.get(int(code), "no item")
    except (TypeError, ValueError):
        meaning = "no item"
    return f"unavailable:{where} statusCode {code} ({meaning})"


class Unwrapped:
    """The records of one line: (index within the line or None, item or None, refusal or None), the format,
    whether items are mobile aweme objects, and the page's user tables (SIGI_STATE)."""

    __slots__ = ("records", "fmt", "mobile", "users", "user_stats", "is_list")

    def __init__(self, records, fmt, mobile=False, users=None, user_stats=None, is_list=False):
        self.records, self.fmt, self.mobile = records, fmt, mobile
        self.users, self.user_stats, self.is_list = users, user_stats, is_list


def _with_context(items: list, context: dict, positional: bool) -> list:
    out = []
    start = context.get("_rank", 1)
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            out.append((k, item, None))
            continue
        missing = {key: context[key] for key in CONTEXT_KEYS if key in context and key not in item}
        if positional and "_rank" not in item and isinstance(start, int) and not isinstance(start, bool):
            missing["_rank"] = start + k
        out.append((k, {**item, **missing} if missing else item, None))
    return out


def _list(value: dict, key: str, context: dict, fmt: str, mobile: bool = False) -> Unwrapped:
    items = value.get(key)
    if not isinstance(items, list):
        return Unwrapped([(None, None, f"wrong_type:{key} (expected list, got {type(items).__name__})")], fmt)
    if not items:
        code = _status(value)
        reason = _unavailable(code, key) if code is not None else f"empty_listing:{key} has no items"
        return Unwrapped([(None, None, reason)], fmt)
    return Unwrapped(_with_context(items, context, True), fmt, mobile, is_list=len(items) > 1)


def _single(item: Any, status_holder: dict, context: dict, fmt: str, where: str) -> Unwrapped:
    code = _status(status_holder)
    if code is not None:
        return Unwrapped([(None, None, _unavailable(code, where))], fmt)
    if not isinstance(item, dict):
        return Unwrapped([(None, None, f"missing_field:{where}.itemStruct")], fmt)
    return Unwrapped(_with_context([item], context, False), fmt)


def unwrap(value: Any) -> Unwrapped:
    """Split one parsed line into its records (see the module docstring)."""
    if not isinstance(value, dict):
        return Unwrapped([(None, value, None)], "item")
    if "desc" in value or not any(key in value for key in _WRAPPER_KEYS):
        return Unwrapped([(None, value, None)], "aweme" if "aweme_id" in value else "item",
                         mobile="aweme_id" in value)
    context = {key: value[key] for key in CONTEXT_KEYS if key in value}
    if "SIGI_STATE" in value and isinstance(value["SIGI_STATE"], dict):
        value = {**value["SIGI_STATE"], **context}
    if "__UNIVERSAL_DATA_FOR_REHYDRATION__" in value and isinstance(value["__UNIVERSAL_DATA_FOR_REHYDRATION__"], dict):
        value = {**value["__UNIVERSAL_DATA_FOR_REHYDRATION__"], **context}
    if "itemList" in value:
        return _list(value, "itemList", context, "itemList")
    if "items" in value and isinstance(value["items"], list):
        return _list(value, "items", context, "items")
    if "aweme_list" in value:
        return _list(value, "aweme_list", context, "aweme_list", mobile=True)
    if "aweme_details" in value:
        out = _list(value, "aweme_details", context, "aweme_details", mobile=True)
        return out
    if "aweme_detail" in value:
        detail = value.get("aweme_detail")
        out = _single(detail, value, context, "aweme_detail", "aweme_detail")
        if detail is None and _status(value) is None:
            filtered = value.get("filter_detail") or {}
            reason = f"unavailable:aweme_detail is null ({filtered.get('filter_reason') or filtered.get('detail_msg') or 'filtered'})"
            return Unwrapped([(None, None, reason)], "aweme_detail")
        out.mobile = True
        return out
    if "itemInfo" in value:
        info = value.get("itemInfo") or {}
        return _single(info.get("itemStruct") if isinstance(info, dict) else None, value, context, "itemInfo", "itemInfo")
    if "props" in value:
        page = (value.get("props") or {}).get("pageProps") if isinstance(value.get("props"), dict) else None
        if not isinstance(page, dict):
            return Unwrapped([(None, None, "missing_field:props.pageProps")], "next_data")
        info = page.get("itemInfo") or {}
        return _single(info.get("itemStruct") if isinstance(info, dict) else None, page, context, "next_data",
                       "props.pageProps.itemInfo")
    if "__DEFAULT_SCOPE__" in value:
        scope = value.get("__DEFAULT_SCOPE__")
        detail = next((scope[k] for k in DETAIL_SCOPES if isinstance(scope, dict) and isinstance(scope.get(k), dict)),
                      None)
        if detail is None:
            return Unwrapped([(None, None, "missing_field:__DEFAULT_SCOPE__[\"webapp.video-detail\"]")], "universal_data")
        info = detail.get("itemInfo") or {}
        return _single(info.get("itemStruct") if isinstance(info, dict) else None, detail, context, "universal_data",
                       "webapp.video-detail.itemInfo")
    if "ItemModule" in value:
        module = value.get("ItemModule")
        if not isinstance(module, dict) or not module:
            return Unwrapped([(None, None, "empty_listing:ItemModule has no items")], "sigi_state")
        user_module = value.get("UserModule") if isinstance(value.get("UserModule"), dict) else {}
        users = user_module.get("users") if isinstance(user_module.get("users"), dict) else None
        stats = user_module.get("stats") if isinstance(user_module.get("stats"), dict) else None
        items = list(module.values())
        return Unwrapped(_with_context(items, context, True), "sigi_state", users=users, user_stats=stats,
                         is_list=len(items) > 1)
    return Unwrapped([(None, value, None)], "item")


def is_photo_post(item: dict, mobile: bool) -> bool:
    """Slideshows / photo mode: web ``imagePost``, mobile ``image_post_info`` or aweme_type 150."""
    if mobile:
        return bool(item.get("image_post_info")) or item.get("aweme_type") in PHOTO_AWEME_TYPES
    return bool(item.get("imagePost"))


def aweme_to_item(aweme: dict) -> tuple[dict | None, dict, str | None]:
    """A mobile aweme object -> (the web form validate_item takes, preset sources, refusal or None).
    Durations are milliseconds; ids come as strings (``aweme_id``, ``uid``) or ints with ``id_str``; the
    embedded author often carries zeroed counts (then an ``authorStats`` block the tracker added is needed)."""
    preset = {"_exact_label": "statistics", "_duration_scale": 1000, "duration": "video.duration (ms)"}
    author = aweme.get("author") if isinstance(aweme.get("author"), dict) else {}
    status = aweme.get("status") if isinstance(aweme.get("status"), dict) else {}
    if status.get("is_delete"):
        return None, preset, "unavailable:aweme status.is_delete (deleted post)"
    if status.get("private_status") not in (None, 0):
        return None, preset, f"unavailable:aweme status.private_status={status.get('private_status')} (private post)"
    stats = aweme.get("statistics") if isinstance(aweme.get("statistics"), dict) else None
    vid, reason = as_id(aweme.get("aweme_id"), "aweme_id", ((stats or {}).get("aweme_id"), aweme.get("group_id")))
    if reason and aweme.get("aweme_id") is not None:
        return None, preset, reason
    uid = author.get("uid")
    author_id, reason = as_id(uid if uid is not None else aweme.get("author_user_id"), "author.uid",
                              (aweme.get("author_user_id"),) if uid is not None else ())
    if reason and (uid is not None or aweme.get("author_user_id") is not None):
        return None, preset, reason
    author_stats = aweme.get("authorStats")
    if author_stats is None:
        counts = {"followerCount": author.get("follower_count"), "heartCount": author.get("total_favorited"),
                  "videoCount": author.get("aweme_count")}
        zeroed = all(as_count(v, "")[0] in (0, None) for v in (counts["followerCount"], counts["videoCount"]))
        if zeroed:
            preset["_no_author_stats"] = ("zeroed_author_stats:the embedded mobile author has zeroed counts "
                                          "(follower_count, aweme_count) and no authorStats was added")
        else:
            author_stats = counts
            preset["author_stats"] = "author (mobile)"
    music = aweme.get("music") if isinstance(aweme.get("music"), dict) else None
    music_out = None
    if music is not None:
        original = music.get("is_original_sound", music.get("is_original"))
        music_out = {"id": music.get("id_str") if music.get("id_str") is not None else music.get("id"),
                     "id_str": music.get("id") if music.get("id_str") is not None else None,
                     "title": music.get("title"), "original": original}
    video = aweme.get("video") if isinstance(aweme.get("video"), dict) else {}
    duration = video.get("duration", aweme.get("duration"))
    item = {
        "id": vid, "desc": aweme.get("desc"), "createTime": aweme.get("create_time"),
        "author": {"id": author_id, "uniqueId": author.get("unique_id"),
                   "verified": bool(author.get("custom_verify") or author.get("enterprise_verify_reason"))},
        "authorStats": author_stats,
        "statsV2": {"playCount": (stats or {}).get("play_count"), "diggCount": (stats or {}).get("digg_count"),
                    "shareCount": (stats or {}).get("share_count"),
                    "commentCount": (stats or {}).get("comment_count")} if stats is not None else None,
        "challenges": [{"title": c.get("cha_name"), "desc": c.get("desc") or "", "isCommerce": bool(c.get("is_commerce"))}
                       for c in aweme.get("cha_list") or [] if isinstance(c, dict)],
        "textExtra": [{"hashtagName": t.get("hashtag_name") or ""} for t in aweme.get("text_extra") or []
                      if isinstance(t, dict)],
        "music": music_out,
        "video": {"duration": duration} if duration is not None else {},
        "isAd": bool(aweme.get("is_ads", False)),
    }
    preset["verified"] = "author.custom_verify / enterprise_verify_reason (mobile)"
    for key in CONTEXT_KEYS:
        if key in aweme:
            item[key] = aweme[key]
    return item, preset, None


def records(value: Any) -> Iterator[tuple[int | None, dict | None, dict | None, str | None]]:
    """(index within the line, web-form item, preset sources, refusal) for each record of a parsed line,
    ready for ``schema.validate_item``; photo posts and placeholders come with their refusal."""
    unwrapped = unwrap(value)
    for index, item, reason in unwrapped.records:
        if reason is not None or not isinstance(item, dict):
            yield (index if unwrapped.is_list else None), item, {}, reason
            continue
        mobile = unwrapped.mobile or ("aweme_id" in item and "id" not in item)
        if is_photo_post(item, mobile):
            yield (index if unwrapped.is_list else None), None, None, \
                "photo_post:slideshow/photo post (imagePost / aweme_type 150) has no video"
            continue
        preset: dict = {}
        if mobile:
            item, preset, reason = aweme_to_item(item)
            if reason is not None:
                yield (index if unwrapped.is_list else None), None, None, reason
                continue
        elif item.get("privateItem") is True:
            yield (index if unwrapped.is_list else None), None, None, "unavailable:privateItem (private post)"
            continue
        if unwrapped.fmt != "item" or mobile:
            preset["format"] = "aweme" if mobile and unwrapped.fmt == "item" else unwrapped.fmt
        if unwrapped.users is not None or unwrapped.user_stats is not None:
            preset["_users"] = unwrapped.users
            preset["_user_stats"] = unwrapped.user_stats
        yield (index if unwrapped.is_list else None), item, preset, None
