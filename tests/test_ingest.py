"""Ingestion against a hand-written itemStruct fixture: one case per bad-input class, plus the rules of
earliest appearance, the instrument and its fallback, and counts that add up."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
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


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_file_is_a_clear_error(scrape):
    rec = video(12)
    scrape.track(rec)
    root = scrape.write()
    path = root / "items" / "2020-10-05.jsonl"
    path.chmod(0)
    with pytest.raises(IngestError, match="2020-10-05.jsonl"):
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
