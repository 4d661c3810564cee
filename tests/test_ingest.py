"""Ingestion against a hand-written itemStruct fixture (one case per bad-input class, the rules of earliest
appearance, the instrument and its fallbacks, counts that add up) and against real TikTok records transcribed in
tests/fixtures/real/ (every accepted shape with its exact values and value sources, every refused class)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from reach.scrape.ingest import IngestError, ingest, media_status, write_outputs
from reach.scrape.safety import hashtag_slug, is_safe_component

FIXTURE = Path(__file__).parent / "fixtures" / "item_base.json"
MP4_HEADER = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
DAY0 = dt.date(2020, 10, 5)


def base() -> dict:
    return json.loads(FIXTURE.read_text())


def day_record(rec: dict, t: int, plays: int) -> dict:
    """The same listing observed on tracking day t (t=1 is the earliest appearance)."""
    r = copy.deepcopy(rec)
    r["_scraped_at"] = (dt.datetime(2020, 10, 5, 10, tzinfo=dt.timezone.utc) + dt.timedelta(days=t - 1)) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")
    r["stats"]["playCount"] = plays
    return r


class Scrape:
    """Builds a scrape folder line by line and remembers which (file, line) holds what."""

    def __init__(self, root: Path):
        self.root = root
        for sub in ("items", "creators", "media", "labels"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.lines: dict[str, list[bytes]] = {}

    def add(self, rec: dict | bytes, t: int | None = None) -> tuple[str, int]:
        if isinstance(rec, dict):
            day = dt.date.fromisoformat(rec["_scraped_at"][:10])
            payload = json.dumps(rec, ensure_ascii=False).encode()
        else:
            day = DAY0 + dt.timedelta(days=(t or 1) - 1)
            payload = rec
        name = f"items/{day.isoformat()}.jsonl"
        self.lines.setdefault(name, []).append(payload)
        return name, len(self.lines[name])

    def track(self, rec: dict, days: int = 14, start_plays: int = 1000) -> None:
        for t in range(1, days + 1):
            self.add(day_record(rec, t, start_plays + 100 * (t - 1)))

    def media(self, video_id: str, payload: bytes = MP4_HEADER) -> None:
        (self.root / "media" / f"{video_id}.mp4").write_bytes(payload)

    def write(self) -> Path:
        for name, lines in self.lines.items():
            (self.root / name).write_bytes(b"\n".join(lines) + b"\n")
        return self.root


def video(n: int, **changes) -> dict:
    rec = base()
    rec["id"] = f"68900000000000000{n:02d}"
    for key, value in changes.items():
        target = rec
        parts = key.split("__")
        for p in parts[:-1]:
            target = target[p]
        target[parts[-1]] = value
    return rec


@pytest.fixture
def scrape(tmp_path):
    return Scrape(tmp_path / "scrapes")


def test_clean_video_row_values(scrape):
    rec = video(1)
    scrape.track(rec)
    scrape.media(rec["id"])
    (scrape.root / "creators" / "chef.anna_01.jsonl").write_text(
        "\n".join(json.dumps({"id": str(100 + k), "createTime": 1600000000 + k, "stats": {"diggCount": d}})
                  for k, d in enumerate([100, 300, 200])) + "\n"
        + json.dumps({"id": "999", "createTime": 1700000000, "stats": {"diggCount": 10**6}}) + "\n")
    out = ingest(scrape.write())
    row = out.videos.iloc[0]
    assert row["impressions"] == 1000 + 100 * 13               # plays on day 14
    assert row["followers"] == 61250
    assert row["past_avg_hearts"] == pytest.approx(200.0)      # mean of the three posts made before this one
    assert row["instrument_source"] == "post_list" and row["n_past_posts"] == 3
    assert row["num_hashtags"] == 3 and row["has_fyp"] and row["num_trending"] == 1
    assert row["ranking"] == 12 and row["is_trending"] and row["hashtag_age"] == 0
    assert row["video_age"] == pytest.approx((1601892000 - 1601856000) / 86400)
    assert row["n_stickers"] == 1 and row["sticker_words"] == 3
    assert list(out.daily_plays["day"]) == list(range(1, 15))
    rec_counts = out.summary["records"]
    assert rec_counts == {"read": 14, "accepted": 14, "rejected": 0, "duplicates": 0, "rejected_by_reason": {}}


def test_instrument_fallback_without_post_list(scrape):
    rec = video(2)
    scrape.track(rec)
    scrape.media(rec["id"])
    out = ingest(scrape.write())
    row = out.videos.iloc[0]
    # (heartCount - diggCount) / (videoCount - 1), from the earliest appearance
    assert row["past_avg_hearts"] == pytest.approx((250000 - 80) / 50)
    assert row["instrument_source"] == "author_stats_fallback"


BAD_LINES = {
    "malformed_json": lambda r: json.dumps(r).encode()[:-5],
    "invalid_utf8": lambda r: json.dumps(r).encode().replace(b"rainy", b"rain\xff\xfe"),
    "missing_field": lambda r: json.dumps({k: v for k, v in r.items() if k != "authorStats"}).encode(),
    "wrong_type": lambda r: json.dumps({**r, "stats": {**r["stats"], "playCount": "1.2k"}}).encode(),
    "negative_count": lambda r: json.dumps({**r, "stats": {**r["stats"], "diggCount": -3}}).encode(),
    "impossible_value": lambda r: json.dumps({**r, "video": {"duration": 0}}).encode(),
    "unsafe_id": lambda r: json.dumps({**r, "author": {**r["author"], "uniqueId": "../../etc/passwd"}}).encode(),
    "invalid_hashtag": lambda r: json.dumps({**r, "_hashtag": "Home Cooked\n"}).encode(),
    "not_an_object": lambda r: b"[1, 2, 3]",
}


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_each_bad_record_class_is_refused_with_file_line_and_reason(scrape, kind):
    rec = video(3)
    scrape.track(rec)
    scrape.media(rec["id"])
    bad = day_record(rec, 5, 1234)
    where = scrape.add(BAD_LINES[kind](bad), t=5)
    out = ingest(scrape.write())
    rejected = [r for r in out.rejected if r["file"] == where[0] and r["line"] == where[1]]
    assert len(rejected) == 1, out.rejected
    assert rejected[0]["reason"].split(":")[0] == kind
    assert rejected[0]["record"]  # the raw record is kept for inspection
    counts = out.summary["records"]
    assert counts["read"] == 15 and counts["rejected"] == 1 and counts["accepted"] == 14
    assert counts["read"] == counts["accepted"] + counts["rejected"] + counts["duplicates"]
    assert len(out.videos) == 1  # the rest of the video is untouched


def test_duplicates_and_earliest_appearance(scrape):
    rec = video(4)
    scrape.track(rec)
    scrape.add(day_record(rec, 3, 1200))                          # exact repeat of day 3: scraper retry
    other = copy.deepcopy(rec)
    other["_hashtag"], other["_rank"] = "pasta", 1               # cross-listed under another hashtag, later
    for t in range(2, 6):
        scrape.add(day_record(other, t, 1000 + 100 * (t - 1)))
    same_day = video(5)                                          # same day under two hashtags:
    untrending = copy.deepcopy(same_day)                         # the trending listing wins (footnote 5)
    untrending["_hashtag"], untrending["_hashtag_trending"], untrending["_rank"] = "pasta", False, 1
    scrape.track(same_day)
    scrape.track(untrending)
    for r in (rec, same_day):
        scrape.media(r["id"])
    out = ingest(scrape.write())
    counts = out.summary["records"]
    assert counts["read"] == 14 + 1 + 4 + 28
    assert counts["duplicates"] == 1 + 4 + 14
    assert counts["accepted"] == 28 and counts["rejected"] == 0
    assert set(out.videos["hashtag"]) == {"HomeCooked"}


def test_video_level_refusals_reject_all_its_lines(scrape):
    short = video(6)
    scrape.track(short, days=10)                                   # never reaches day 14
    scrape.media(short["id"])
    nomedia = video(7)
    scrape.track(nomedia)
    broken = video(8)
    scrape.track(broken)
    scrape.media(broken["id"], b"")                                # zero-length file
    noinstrument = video(9, authorStats__videoCount=1, authorStats__heartCount=80)
    scrape.track(noinstrument)
    scrape.media(noinstrument["id"])
    good = video(10)
    scrape.track(good)
    scrape.media(good["id"])
    out = ingest(scrape.write())
    by_video = out.summary["videos"]["rejected_by_reason"]
    assert by_video == {"incomplete_tracking": 1, "media_missing": 1, "media_unreadable": 1, "no_instrument": 1}
    assert list(out.videos["video_id"]) == [good["id"]]
    counts = out.summary["records"]
    assert counts["rejected"] == 10 + 14 * 3 and counts["accepted"] == 14
    assert counts["read"] == counts["accepted"] + counts["rejected"] + counts["duplicates"]
    assert set(out.daily_plays["video_id"]) == {good["id"]}


def test_media_status_classes(tmp_path):
    assert media_status(tmp_path / "none.mp4").startswith("media_missing")
    (tmp_path / "junk.mp4").write_bytes(b"<html>not a video</html>")
    assert media_status(tmp_path / "junk.mp4").startswith("media_unreadable")
    (tmp_path / "ok.mp4").write_bytes(MP4_HEADER)
    assert media_status(tmp_path / "ok.mp4") is None


def test_creator_file_bad_lines_are_rejected_too(scrape):
    rec = video(11)
    scrape.track(rec)
    scrape.media(rec["id"])
    (scrape.root / "creators" / "chef.anna_01.jsonl").write_text(
        json.dumps({"id": "1", "createTime": 1600000000, "stats": {"diggCount": 50}}) + "\n{oops\n"
        + json.dumps({"id": "2", "createTime": 1600000001, "stats": {"diggCount": -1}}) + "\n")
    out = ingest(scrape.write())
    creator_rej = [r for r in out.rejected if r["file"].startswith("creators/")]
    assert [(r["line"], r["reason"].split(":")[0]) for r in creator_rej] == [(2, "malformed_json"), (3, "negative_count")]
    assert out.summary["creator_posts"]["read"] == 3 and out.summary["creator_posts"]["accepted"] == 1
    assert out.videos.iloc[0]["past_avg_hearts"] == 50


def test_unopenable_file_is_a_clear_error(scrape):
    """A path that cannot be opened, even by root (a symlink loop), is an error naming the file; so is a
    creator post list that is a folder."""
    rec = video(12)
    scrape.track(rec)
    scrape.media(rec["id"])
    root = scrape.write()
    path = root / "items" / "2020-10-05.jsonl"
    path.unlink()
    path.symlink_to(path.name)                                # points at itself: ELOOP on open
    with pytest.raises(IngestError, match="2020-10-05.jsonl"):
        ingest(root)
    path.unlink()
    scrape.write()
    (root / "creators" / "chef.anna_01.jsonl").mkdir()
    with pytest.raises(IngestError, match="chef.anna_01.jsonl"):
        ingest(root)


def test_unreadable_or_misnamed_item_file_names_the_file(scrape):
    rec = video(13)
    scrape.track(rec)
    root = scrape.write()
    (root / "items" / "2020-10-06.jsonl").unlink()
    (root / "items" / "2020-10-06.jsonl").mkdir()          # a folder where a file should be: unreadable
    with pytest.raises(IngestError, match="2020-10-06.jsonl"):
        ingest(root)
    (root / "items" / "2020-10-06.jsonl").rmdir()
    (root / "items" / "notes.jsonl").write_text("{}\n")
    with pytest.raises(IngestError, match="notes.jsonl"):
        ingest(root)


def test_bad_engagement_label_names_file_and_row(scrape):
    rec = video(14)
    scrape.track(rec)
    scrape.media(rec["id"])
    (scrape.root / "labels" / "engagement.csv").write_text("hashtag,label\nHomeCooked,informational\npasta,funny\n")
    with pytest.raises(IngestError, match=r"engagement.csv, row 3: label 'funny'"):
        ingest(scrape.write())
    (scrape.root / "labels" / "engagement.csv").write_text("hashtag,label\nHomeCooked,Informational\n")
    out = ingest(scrape.write())
    assert out.videos.iloc[0]["engagement_tactic"] == "informational"


def test_unicode_hashtags_stay_data_and_slugs_are_safe(scrape, tmp_path):
    rec = video(15, _hashtag="CaféMornings")
    rec["challenges"][0]["title"] = "CaféMornings"
    scrape.track(rec)
    scrape.media(rec["id"])
    out = ingest(scrape.write())
    assert out.videos.iloc[0]["hashtag"] == "CaféMornings"
    slugs = {hashtag_slug(h) for h in ("CaféMornings", "CafeMornings", "../../etc", "$(rm -rf ~)", "料理")}
    assert len(slugs) == 5 and all(is_safe_component(s) for s in slugs)
    write_outputs(out, tmp_path / "v.parquet", tmp_path / "d.parquet", tmp_path / "r.jsonl", tmp_path / "s.json")
    assert pd.read_parquet(tmp_path / "v.parquet")["hashtag"].iloc[0] == "CaféMornings"


# ---- real records (tests/fixtures/real/, sources in its README) -----------------------------------------------

REAL = Path(__file__).parent / "fixtures" / "real"


def real(name: str) -> dict:
    return json.loads((REAL / name).read_text(encoding="utf-8"))


def context(t: int, start: dt.datetime, hashtag: str, rank: int | None = 1, trending: bool = True) -> dict:
    ctx = {"_hashtag": hashtag, "_hashtag_trending": trending,
           "_scraped_at": (start + dt.timedelta(days=t - 1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if rank is not None:
        ctx["_rank"] = rank
    return ctx


def track_line(scrape: Scrape, make_line, start: dt.datetime, days: int = 14) -> None:
    """The same response (``make_line(t)``: a dict with the tracker's context) scraped on each of ``days`` days."""
    for t in range(1, days + 1):
        line = make_line(t)
        day = (start + dt.timedelta(days=t - 1)).date().isoformat()
        scrape.lines.setdefault(f"items/{day}.jsonl", []).append(json.dumps(line, ensure_ascii=False).encode())


def sources_of(out, video_id: str) -> dict:
    return out.value_sources.set_index("video_id").loc[video_id].to_dict()


DEC_2024 = dt.datetime(2024, 12, 16, 9, tzinfo=dt.timezone.utc)
FEB_2022 = dt.datetime(2022, 2, 5, 9, tzinfo=dt.timezone.utc)
MAY_2022 = dt.datetime(2022, 5, 13, 9, tzinfo=dt.timezone.utc)


def test_real_itemlist_2024_takes_exact_statsv2_counts(scrape):
    page = real("itemlist_2024.json")
    item = page["itemList"][0]
    track_line(scrape, lambda t: {**page, **context(t, DEC_2024, "4살딸", rank=None)}, DEC_2024)
    scrape.media(item["id"])
    out = ingest(scrape.write())
    row = out.videos.iloc[0]
    # exact statsV2 (1,585,253 plays; 38,884 diggs), not the rounded stats (1,600,000; 38,900)
    assert (row["impressions"], row["diggs"], row["shares"], row["comments"]) == (1585253, 38884, 2124, 504)
    assert row["video_id"] == "7444705554666130708" and row["author_id"] == "7420667015738885137"
    assert row["followers"] == 11900 and row["ranking"] == 1        # ranked by position in the page
    assert row["num_hashtags"] == 2 and row["n_stickers"] == 0 and row["duration_s"] == 61.0
    # no post list: (heartCount - this video's exact diggs) / (videoCount - 1)
    assert row["instrument_source"] == "author_stats_fallback"
    assert row["past_avg_hearts"] == pytest.approx((114100 - 38884) / 31)
    src = sources_of(out, row["video_id"])
    assert src["plays"] == src["diggs"] == src["shares"] == src["comments"] == "statsV2"
    assert src["followers"] == "authorStats" and src["format"] == "itemList"
    assert out.summary["records"] == {"read": 14, "accepted": 14, "rejected": 0, "duplicates": 0,
                                      "rejected_by_reason": {}}


def test_real_sigi_item_2022_with_string_createtime_and_author(scrape):
    item = real("sigi_item_2022.json")
    track_line(scrape, lambda t: {**item, **context(t, FEB_2022, "warzone", rank=3)}, FEB_2022)
    scrape.media(item["id"])
    out = ingest(scrape.write())
    row = out.videos.iloc[0]
    assert row["create_time"] == pd.Timestamp(1640417086, unit="s", tz="UTC")
    assert (row["author_id"], row["unique_id"], row["is_verified"]) == ("7019018029121455109", "tvamii", False)
    assert (row["impressions"], row["diggs"], row["shares"], row["comments"]) == (133000, 56900, 22, 69)
    assert row["followers"] == 4959 and row["num_hashtags"] == 4 and row["has_fyp"]
    assert row["past_avg_hearts"] == pytest.approx((116400 - 56900) / 19)
    src = sources_of(out, row["video_id"])
    assert src["plays"] == "stats" and src["create_time"] == "createTime (numeric string)"
    assert src["author"] == "author string + authorId" and src["verified"] == "absent (taken as false)"
    assert out.summary["records"]["accepted"] == 14


def test_real_sigi_state_page_resolves_the_author_from_usermodule(scrape):
    item = real("sigi_item_2022.json")
    user = {"id": item["authorId"], "uniqueId": "tvamii", "secUid": item["authorSecId"], "nickname": "Ami",
            "verified": False}

    def page(t):
        return {"SIGI_STATE": {"ItemModule": {item["id"]: item}, "UserModule": {"users": {"tvamii": user}}},
                **context(t, FEB_2022, "warzone", rank=7)}
    track_line(scrape, page, FEB_2022)
    scrape.media(item["id"])
    out = ingest(scrape.write())
    row = out.videos.iloc[0]
    assert row["ranking"] == 7 and row["impressions"] == 133000 and row["author_id"] == "7019018029121455109"
    src = sources_of(out, row["video_id"])
    assert src["format"] == "sigi_state" and src["author"] == "UserModule.users" and src["verified"] == "author.verified"


def test_real_mobile_aweme_detail_2022(scrape):
    response = real("aweme_details_2022.json")
    control = video(40)                       # a clean web item, so that the folder has an acceptable video
    scrape.track(control)
    scrape.media(control["id"])
    # as published, the embedded author has zeroed counts: refused, one record per day
    track_line(scrape, lambda t: {**response, **context(t, MAY_2022, "xyzbca")}, MAY_2022)
    out = ingest(scrape.write())
    refused = [r for r in out.rejected if r["file"].startswith("items/2022")]
    assert len(refused) == 14 and {r["reason"].split(":")[0] for r in refused} == {"zeroed_author_stats"}
    assert list(out.videos["video_id"]) == [control["id"]]


def test_real_mobile_aweme_with_tracker_author_stats(scrape):
    response = real("aweme_details_2022.json")
    aweme = response["aweme_details"][0]
    author_stats = {"followerCount": 5000, "heartCount": 20000, "videoCount": 10}  # test values (the tracker's)
    track_line(scrape, lambda t: {"aweme_detail": {**aweme, "authorStats": author_stats},
                                  **context(t, MAY_2022, "xyzbca")}, MAY_2022)
    scrape.media(aweme["aweme_id"])
    out = ingest(scrape.write())
    row = out.videos.iloc[0]
    assert row["video_id"] == "7086595171827322158" and row["author_id"] == "7022407054702806022"
    # exact counts; shares far above plays is data, not an error
    assert (row["impressions"], row["diggs"], row["shares"], row["comments"]) == (4964, 66, 415578, 39)
    assert row["duration_s"] == pytest.approx(39.845)                 # milliseconds on mobile
    assert row["music_id"] == "6968593956024092673" and not row["music_original"]
    assert row["num_hashtags"] == 11 and row["has_fyp"]                # fyp and fypシ are two tags
    src = sources_of(out, row["video_id"])
    assert src["plays"] == "statistics" and src["format"] == "aweme_detail" and src["duration"] == "video.duration (ms)"


def test_real_wrapped_hearts_instrument_from_post_list_or_refused(scrape):
    wrapped = real("user_stats_wrapped_2025.json")
    rounded = {k: wrapped["stats"][k] for k in ("followerCount", "heartCount", "videoCount")}
    exact = {k: wrapped["statsV2"][k] for k in ("followerCount", "heartCount", "videoCount")}
    no_list = video(41, authorStats=rounded, author__uniqueId="charlidamelio")
    with_v2 = video(42, authorStats=rounded, authorStatsV2=exact, author__uniqueId="charli.v2")
    with_list = video(43, authorStats=rounded, author__uniqueId="charli.list")
    for rec in (no_list, with_v2, with_list):
        scrape.track(rec)
        scrape.media(rec["id"])
    (scrape.root / "creators" / "charli.list.jsonl").write_text(
        json.dumps({"id": "1", "createTime": 1600000000, "statsV2": {"diggCount": "4000000"},
                    "stats": {"diggCount": 4000000}}) + "\n")
    out = ingest(scrape.write())
    rows = out.videos.set_index("video_id")
    assert out.summary["videos"]["rejected_by_reason"] == {"wrapped_hearts": 1}
    assert no_list["id"] not in rows.index
    v2 = rows.loc[with_v2["id"]]
    assert v2["followers"] == 156537139 and v2["instrument_source"] == "author_stats_fallback"
    assert v2["past_avg_hearts"] == pytest.approx((11907467940 - 80) / 2862)
    assert sources_of(out, with_v2["id"])["heart_count"] == "authorStatsV2"
    assert rows.loc[with_list["id"], "instrument_source"] == "post_list"
    assert rows.loc[with_list["id"], "past_avg_hearts"] == 4000000
    assert sources_of(out, with_list["id"])["heart_count"].startswith("unusable")


def test_placeholders_and_photo_posts_are_refused_with_their_class(scrape):
    control = video(44)
    scrape.track(control)
    scrape.media(control["id"])
    placeholders, photos = real("placeholders.json"), real("photo_posts.json")
    expected = {}
    for name, page in list(placeholders.items()) + list(photos.items()):
        line = {**page, **context(2, dt.datetime(2020, 10, 5, 10, tzinfo=dt.timezone.utc), "HomeCooked")}
        expected[scrape.add(json.dumps(line).encode(), t=2)] = \
            "photo_post" if name in photos else "empty_listing" if name == "item_list_empty" else "unavailable"
    out = ingest(scrape.write())
    got = {(r["file"], r["line"]): r["reason"].split(":")[0] for r in out.rejected}
    assert {k: got.get(k) for k in expected} == expected
    reasons = [r["reason"] for r in out.rejected]
    assert any("10216 (private post)" in r for r in reasons) and any("10222 (private account)" in r for r in reasons)
    counts = out.summary["records"]
    assert counts["read"] == 14 + len(expected) and counts["rejected"] == len(expected)
    assert counts["read"] == counts["accepted"] + counts["rejected"] + counts["duplicates"]


def test_every_wrapper_gives_the_same_video(scrape, tmp_path):
    """The 2024 item inside each wrapper (and the mobile record inside each mobile one) ingests the same."""
    item = real("itemlist_2024.json")["itemList"][0]
    aweme = {**real("aweme_details_2022.json")["aweme_details"][0],
             "authorStats": {"followerCount": 5000, "heartCount": 20000, "videoCount": 10}}
    wrappers = {
        "items": lambda i: {"statusCode": 0, "items": [i]},
        "itemInfo": lambda i: {"statusCode": 0, "itemInfo": {"itemStruct": i}},
        "next_data": lambda i: {"props": {"pageProps": {"statusCode": 0, "itemInfo": {"itemStruct": i}}}},
        "universal_data": lambda i: {"__DEFAULT_SCOPE__": {"webapp.video-detail": {"statusCode": 0,
                                                                                   "itemInfo": {"itemStruct": i}}}},
    }
    mobile = {"aweme_detail": lambda a: {"status_code": 0, "aweme_detail": a},
              "aweme_list": lambda a: {"status_code": 0, "aweme_list": [a]}}
    for fmt, wrap in list(wrappers.items()) + list(mobile.items()):
        s = Scrape(tmp_path / fmt)
        rec, start = (item, DEC_2024) if fmt in wrappers else (aweme, MAY_2022)
        track_line(s, lambda t: {**wrap(rec), **context(t, start, "xyzbca", rank=2)}, start)
        s.media(rec.get("id") or rec.get("aweme_id"))
        out = ingest(s.write())
        row = out.videos.iloc[0]
        assert row["impressions"] == (1585253 if fmt in wrappers else 4964), fmt
        assert row["ranking"] == 2 and sources_of(out, row["video_id"])["format"] == fmt


def test_list_items_are_ranked_by_position_and_refused_with_their_index(scrape):
    first, second = video(45), video(46)
    for rec in (first, second):
        for key in ("_rank", "_hashtag", "_hashtag_trending", "_scraped_at"):
            rec.pop(key)
    second["stats"] = {**second["stats"], "playCount": "12k"}
    for t in range(1, 15):
        ctx = {"_hashtag": "HomeCooked", "_hashtag_trending": True, "_rank": 5,
               "_scraped_at": f"2020-10-{4 + t:02d}T10:00:00Z"}
        scrape.add(json.dumps({"itemList": [first, second], **ctx}).encode(), t=t)
    scrape.media(first["id"])
    out = ingest(scrape.write())
    assert list(out.videos["ranking"]) == [5]
    bad = [r for r in out.rejected if r["reason"].startswith("wrong_type")]
    assert len(bad) == 14 and {r["item"] for r in bad} == {1}
    assert out.summary["records"] == {"read": 28, "accepted": 14, "rejected": 14, "duplicates": 0,
                                      "rejected_by_reason": {"wrong_type": 14}}


ROUNDED_ID = "7444705554666130000"   # what a float round trip leaves of 7444705554666130708


@pytest.mark.parametrize("kind", ["float_id", "rounded_copy", "rounded_int_author", "count_beyond_rounding",
                                  "private_item", "photo_item"])
def test_garbage_classes_are_refused_with_their_reason(scrape, kind):
    rec = video(47)
    scrape.track(rec)
    scrape.media(rec["id"])
    bad = day_record(rec, 5, 1234)
    if kind == "float_id":
        bad["id"] = 7.444705554666131e18
    elif kind == "rounded_copy":
        bad["id"], bad["video"] = ROUNDED_ID, {**bad["video"], "id": "7444705554666130708"}
    elif kind == "rounded_int_author":
        bad["author"] = {**bad["author"], "id": 7022407054702806000}
    elif kind == "count_beyond_rounding":
        bad["stats"] = {**bad["stats"], "playCount": 10 ** 17}
    elif kind == "private_item":
        bad["privateItem"] = True
    elif kind == "photo_item":
        bad["imagePost"] = {"images": [{"imageURL": {"urlList": ["https://p16.example/a.jpeg"]}}]}
    where = scrape.add(json.dumps(bad).encode(), t=5)
    out = ingest(scrape.write())
    reason = next(r["reason"] for r in out.rejected if (r["file"], r["line"]) == where)
    expected = {"float_id": "id_precision_lost", "rounded_copy": "id_precision_lost",
                "rounded_int_author": "id_precision_lost", "count_beyond_rounding": "impossible_value",
                "private_item": "unavailable", "photo_item": "photo_post"}[kind]
    assert reason.split(":")[0] == expected, reason
    counts = out.summary["records"]
    assert counts["read"] == 15 and counts["rejected"] == 1 and len(out.videos) == 1


def test_rounding_does_not_refuse_plays_below_diggs_or_ids_confirmed_by_a_copy(scrape):
    rec = video(48, stats={"playCount": 1000, "diggCount": 1200, "shareCount": 2000, "commentCount": 1},
                authorStats={"followerCount": 61250, "heartCount": 250000, "videoCount": 51})
    rec["author"]["id"] = 7022407054702806022          # an int above 2**53 that is no float round trip
    scrape.track(rec)
    scrape.media(rec["id"])
    out = ingest(scrape.write())
    assert len(out.videos) == 1 and out.videos.iloc[0]["author_id"] == "7022407054702806022"


def test_instrument_fallback_when_the_post_list_has_no_earlier_post(scrape):
    rec = video(49)
    scrape.track(rec)
    scrape.media(rec["id"])
    (scrape.root / "creators" / "chef.anna_01.jsonl").write_text(
        json.dumps({"id": rec["id"], "createTime": rec["createTime"], "stats": {"diggCount": 80}}) + "\n"
        + json.dumps({"id": "555", "createTime": rec["createTime"] + 60, "stats": {"diggCount": 9000}}) + "\n")
    out = ingest(scrape.write())
    row = out.videos.iloc[0]
    assert row["instrument_source"] == "author_stats_fallback" and row["n_past_posts"] == 50
    assert row["past_avg_hearts"] == pytest.approx((250000 - 80) / 50)


def test_instrument_excludes_the_focal_post_even_when_listed_earlier(scrape):
    rec = video(50)
    scrape.track(rec)
    scrape.media(rec["id"])
    (scrape.root / "creators" / "chef.anna_01.jsonl").write_text(
        json.dumps({"id": "101", "createTime": rec["createTime"] - 100, "stats": {"diggCount": 300}}) + "\n"
        # the focal video itself, with a createTime a second before the item's: still not a past post
        + json.dumps({"id": rec["id"], "createTime": rec["createTime"] - 1, "stats": {"diggCount": 10 ** 6}}) + "\n"
        + json.dumps({"id": "102", "createTime": rec["createTime"] - 50, "statsV2": {"diggCount": "500"},
                      "stats": {"diggCount": 500}}) + "\n")
    out = ingest(scrape.write())
    row = out.videos.iloc[0]
    assert row["instrument_source"] == "post_list" and row["n_past_posts"] == 2
    assert row["past_avg_hearts"] == pytest.approx(400.0)


def test_parallel_parsing_gives_the_same_outputs(scrape):
    for n in range(20, 26):
        rec = video(n, _rank=n)
        scrape.track(rec, start_plays=100 * n)
        scrape.media(rec["id"])
    cross = video(21, _hashtag="pasta", _rank=1)
    for t in range(2, 5):
        scrape.add(day_record(cross, t, 5000))
    scrape.add(b"{broken", t=3)
    root = scrape.write()
    one, two = ingest(root), ingest(root, workers=2)
    pd.testing.assert_frame_equal(one.videos, two.videos)
    pd.testing.assert_frame_equal(one.daily_plays, two.daily_plays)
    pd.testing.assert_frame_equal(one.value_sources, two.value_sources)
    assert one.rejected == two.rejected and one.summary == two.summary


def test_a_folder_whose_every_video_is_refused_is_an_error(scrape):
    rec = video(51)
    scrape.track(rec, days=5)
    scrape.media(rec["id"])
    with pytest.raises(IngestError, match="every video"):
        ingest(scrape.write())


# -- review fixes (2026-12-04): each case reproduces what a real scrape can hold ------------------------------------

def test_hearts_just_below_the_videos_own_diggs_give_no_negative_instrument(scrape):
    # heartCount within the 10% rounding allowance below this video's diggs, one other post: (950 - 1000) / 1 < 0
    rec = video(60, authorStats__heartCount=950, authorStats__videoCount=2, stats__diggCount=1000)
    scrape.track(rec)
    scrape.media(rec["id"])
    with pytest.raises(IngestError, match="every video"):
        ingest(scrape.write())
    keep = video(61)
    scrape.track(keep)
    scrape.media(keep["id"])
    out = ingest(scrape.write())
    assert list(out.videos["video_id"]) == [keep["id"]]
    assert out.summary["videos"]["rejected_by_reason"] == {"wrapped_hearts": 1}
    assert (out.videos["past_avg_hearts"] >= 0).all()


def test_a_post_on_two_overlapping_pages_counts_once_in_the_instrument(scrape):
    rec = video(62)
    scrape.track(rec)
    scrape.media(rec["id"])
    a = {"id": "201", "createTime": rec["createTime"] - 100, "stats": {"diggCount": 100}}
    b_old = {"id": "202", "createTime": rec["createTime"] - 50, "stats": {"diggCount": 290}}
    b_new = {**b_old, "stats": {"diggCount": 300}}
    (scrape.root / "creators" / "chef.anna_01.jsonl").write_text(
        json.dumps({"itemList": [a, b_old]}) + "\n" + json.dumps({"itemList": [b_new]}) + "\n")
    out = ingest(scrape.write())
    row = out.videos.iloc[0]
    assert row["n_past_posts"] == 2 and row["past_avg_hearts"] == pytest.approx(200.0)   # (100 + 300) / 2
    posts = out.summary["creator_posts"]
    assert (posts["read"], posts["accepted"], posts["rejected"], posts["duplicates"]) == (3, 2, 0, 1)


def test_millisecond_create_times_are_refused_with_a_reason_that_says_so(scrape):
    rec = video(63)
    scrape.track(rec)
    scrape.media(rec["id"])
    (scrape.root / "creators" / "chef.anna_01.jsonl").write_text(
        json.dumps({"id": "301", "createTime": (rec["createTime"] - 100) * 1000, "stats": {"diggCount": 5}}) + "\n")
    ms = video(64, createTime=rec["createTime"] * 1000)
    scrape.add(day_record(ms, 1, 100))
    out = ingest(scrape.write())
    reasons = [r["reason"] for r in out.rejected]
    assert sum("looks like milliseconds" in r for r in reasons) == 2, reasons
    assert out.summary["creator_posts"]["rejected_by_reason"] == {"impossible_value": 1}


def test_an_item_file_under_another_extension_stops_the_run(scrape):
    rec = video(65)
    scrape.track(rec)
    scrape.media(rec["id"])
    root = scrape.write()
    (root / "items" / "2020-10-19.json").write_text(json.dumps(day_record(rec, 15, 3000)) + "\n")
    with pytest.raises(IngestError, match="2020-10-19.json"):
        ingest(root)


def test_the_tracking_day_is_the_utc_date_whatever_the_offset(scrape):
    rec = video(66)
    scrape.media(rec["id"])
    for t in range(1, 15):
        r = day_record(rec, t, 1000 + 100 * t)
        if t == 1:   # 2020-10-05T04:30Z written in US Central time: the local date is the 4th
            r["_scraped_at"] = "2020-10-04T23:30:00-05:00"
        scrape.add(r)
    out = ingest(scrape.write())
    assert len(out.videos) == 1
    days = out.daily_plays.loc[out.daily_plays["video_id"] == rec["id"], "day"].tolist()
    assert days == list(range(1, 15))


def test_an_empty_label_file_is_an_error_naming_it(scrape):
    rec = video(67)
    scrape.track(rec)
    scrape.media(rec["id"])
    root = scrape.write()
    (root / "labels" / "engagement.csv").write_text("")
    with pytest.raises(IngestError, match="engagement.csv"):
        ingest(root)


def test_a_stopped_ingestion_hands_over_the_refused_records(scrape):
    rec = video(68, stats__diggCount="1.2K")
    scrape.track(rec)
    with pytest.raises(IngestError) as info:
        ingest(scrape.write())
    assert len(info.value.rejected) == 14
    assert all(r["reason"].startswith("wrong_type:stats.diggCount") and r["line"] == 1 for r in info.value.rejected)


def test_a_users_scrape_file_changed_in_place_reruns_ingestion(scrape, tmp_path):
    """The workflow tracks a user's scrape folder by its files (name, size, time), not the folder's own time."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    rec = video(69)
    scrape.track(rec)
    scrape.media(rec["id"])
    root = scrape.write()
    work = tmp_path / "run"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(work), "--cores", "1",
           "--config", f"scrapes={{dir: {root}}}", "--", "results/ingest/videos.parquet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    again = subprocess.run(cmd[:5] + ["-n"] + cmd[5:], capture_output=True, text=True, timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr
    day = sorted((root / "items").glob("*.jsonl"))[-1]                 # a late line appended to the last day's file
    with open(day, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(day_record(video(70), 14, 10)) + "\n")
    changed = subprocess.run(cmd[:5] + ["-n"] + cmd[5:], capture_output=True, text=True, timeout=300)
    assert "ingest_scrapes" in changed.stdout + changed.stderr and "Nothing to be done" not in changed.stdout


def test_a_cross_listed_video_is_tracked_through_any_listing(scrape):
    """Plays belong to the video: trending once under its home hashtag (day 1), then seen only under another
    listing for the two weeks, it is kept with its day-14 plays from that listing, one observation per day."""
    rec = video(71, _hashtag_trending=True)
    scrape.media(rec["id"])
    scrape.add(day_record(rec, 1, 1000))
    other = copy.deepcopy(rec)
    other["_hashtag"], other["_hashtag_trending"], other["_rank"] = "pasta", False, 3
    for t in range(1, 15):
        scrape.add(day_record(other, t, 1000 + 100 * t if t > 1 else 1000))
    out = ingest(scrape.write())
    row = out.videos.set_index("video_id").loc[rec["id"]]
    assert row["hashtag"] == rec["_hashtag"] and row["impressions"] == 1000 + 100 * 14
    plays = out.daily_plays[out.daily_plays["video_id"] == rec["id"]]
    assert plays["day"].tolist() == list(range(1, 15))
    r = out.summary["records"]
    assert (r["read"], r["accepted"], r["duplicates"]) == (15, 14, 1)   # day 1 under pasta repeats the home day
