"""Write a simulated world exactly as the Discover-page tracker leaves its scrapes (DESIGN section 3)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from reach.synthetic.world import World, WorldSpec, stable_int

JUNK_KINDS = ("malformed_json", "invalid_utf8", "missing_field", "wrong_type", "negative_count",
              "impossible_value", "duplicate_line", "media_missing")


def _challenge(tag: str, hashtags: pd.DataFrame) -> dict:
    row = hashtags[hashtags["hashtag"] == tag]
    if len(row):
        r = row.iloc[0]
        return {"id": r["challenge_id"], "title": tag, "desc": r["description"], "isCommerce": bool(r["is_commerce"])}
    return {"id": str(10**15 + stable_int("challenge/" + tag) % 10**15), "title": tag, "desc": "", "isCommerce": False}


def item_records(world: World, spec: WorldSpec, rng: np.random.Generator) -> pd.DataFrame:
    """One itemStruct dict per listing row, with its scrape date, in (day, hashtag, rank) order."""
    start = dt.datetime.fromisoformat(spec.start_date).replace(tzinfo=dt.timezone.utc)
    v, lst, posts, tab = world.videos, world.listings, world.creator_posts, world.hashtags
    challenge_cache = {t: _challenge(t, tab) for t in {t for tags in v["tags"] for t in tags}}
    create_time = dict(zip(posts.loc[posts["video"] >= 0, "video"], posts.loc[posts["video"] >= 0, "create_time"]))
    final_diggs = lst[lst["t"] == spec.days_tracked].drop_duplicates("video").set_index("video")["diggs"]
    posts = posts.copy()
    is_video = posts["video"] >= 0
    posts.loc[is_video, "diggs"] = posts.loc[is_video, "video"].map(final_diggs).fillna(0).astype(np.int64)
    posts_by_creator = {}
    for c, g in posts.sort_values("create_time", kind="stable").groupby("creator"):
        ct, dg, vid = g["create_time"].to_numpy(), g["diggs"].to_numpy(), g["video"].to_numpy()
        posts_by_creator[c] = (ct, np.concatenate([[0], np.cumsum(dg)]), vid, dg)
    hours = rng.uniform(6, 22, size=len(lst))
    static = []  # the parts of a record that do not change from day to day, built once per video
    for j, r in enumerate(v.itertuples(index=False)):
        static.append({
            "id": r.video_id, "desc": r.desc, "createTime": int(create_time[j]),
            "author": {"id": r.author_id, "uniqueId": r.unique_id, "verified": bool(r.is_verified)},
            "followerCount": int(r.followers),
            "challenges": [challenge_cache[t] for t in r.tags],
            "textExtra": [{"hashtagName": t, "type": 1} for t in r.tags],
            "stickersOnItem": [{"stickerType": 4, "stickerText": [s]} for s in r.stickers],
            "music": {"id": r.music_id, "title": r.music_title, "original": bool(r.music_original)},
            "video": {"duration": int(round(float(r.duration)))},
            "isAd": bool(r.is_sponsored),
        })
    creator_of = v["creator"].to_numpy()
    records = []
    for row, hour in zip(lst.itertuples(index=False), hours):
        j = row.video
        scraped = start + dt.timedelta(days=int(row.day), hours=float(hour))
        ts = int(scraped.timestamp())
        ct, cum, vid, dg = posts_by_creator[creator_of[j]]
        k = int(np.searchsorted(ct, ts, side="right"))
        others_sum, others_n = int(cum[k]), k
        own = np.flatnonzero(vid[:k] == j)
        if own.size:  # the focal video is counted with its diggs of the scrape day, not its final ones
            others_sum -= int(dg[own[0]])
            others_n -= 1
        st = static[j]
        rec = {
            "id": st["id"], "desc": st["desc"], "createTime": st["createTime"], "author": st["author"],
            "authorStats": {"followerCount": st["followerCount"], "heartCount": others_sum + int(row.diggs),
                            "videoCount": others_n + 1},
            "stats": {"playCount": int(row.plays), "diggCount": int(row.diggs), "shareCount": int(row.shares),
                      "commentCount": int(row.comments)},
            "challenges": st["challenges"], "textExtra": st["textExtra"], "stickersOnItem": st["stickersOnItem"],
            "music": st["music"], "video": st["video"], "isAd": st["isAd"],
            "_hashtag": row.listed_hashtag,
            "_rank": int(row.listing_rank),
            "_hashtag_trending": bool(row.hashtag_trending),
            "_scraped_at": scraped.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        records.append((scraped.date().isoformat(), row.listed_hashtag, int(row.listing_rank), j, int(row.t),
                        int(row.cross_listed), rec))
    out = pd.DataFrame(records, columns=["date", "hashtag", "rank", "video", "t", "cross_listed", "record"])
    return out.sort_values(["date", "hashtag", "rank", "video"], kind="stable").reset_index(drop=True)


def _corrupt(rec: dict, kind: str) -> bytes:
    rec = json.loads(json.dumps(rec))
    if kind == "malformed_json":
        return json.dumps(rec, ensure_ascii=False).encode()[:-7]
    if kind == "invalid_utf8":
        raw = json.dumps(rec, ensure_ascii=False).encode()
        cut = raw.index(b'"desc": "') + 9
        return raw[:cut] + b"\xff\xfe" + raw[cut:]
    if kind == "missing_field":
        del rec["stats"]
    elif kind == "wrong_type":
        rec["stats"]["playCount"] = "12k"
    elif kind == "negative_count":
        rec["stats"]["playCount"] = -int(rec["stats"]["playCount"]) - 1
    elif kind == "impossible_value":
        rec["authorStats"]["videoCount"] = 0
    return json.dumps(rec, ensure_ascii=False).encode()


def write_scrapes(world: World, spec: WorldSpec, out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, set[int]]:
    """Write items/, creators/ and labels/. Returns (junk truth, line index of every record, videos without media)."""
    rng = np.random.default_rng([spec.seed, 1])
    out_dir = Path(out_dir)
    for sub in ("items", "creators", "labels", "media"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    items = item_records(world, spec, rng)

    # Scraper junk, on lines that are neither a video's first nor its last day of its earliest listing, so
    # the truth stays exactly recoverable from the clean lines.
    eligible = np.flatnonzero((items["cross_listed"] == 0) & (items["t"] > 1) & (items["t"] < spec.days_tracked))
    n_junk = int(round(spec.junk_share * len(items)))
    junk_rows = rng.choice(eligible, size=min(n_junk, eligible.size), replace=False) if n_junk else np.array([], int)
    line_kinds = JUNK_KINDS[:-1]
    junk_kind = {int(r): line_kinds[k % len(line_kinds)] for k, r in enumerate(np.sort(junk_rows))}
    missing_media_videos = set()
    n_missing = max(1, n_junk // 10) if n_junk else 0
    if n_missing:
        junk_videos = {int(items.at[r, "video"]) for r in junk_rows}
        candidates = sorted(set(range(len(world.videos))) - junk_videos)
        missing_media_videos = {int(x) for x in rng.choice(candidates, size=min(n_missing, len(candidates)), replace=False)}

    junk, index = [], []
    for date, group in items.groupby("date", sort=True):
        path = out_dir / "items" / f"{date}.jsonl"
        line_no = 0
        with open(path, "wb") as fh:
            for r, record, video, t, cross in zip(group.index, group["record"], group["video"], group["t"],
                                                  group["cross_listed"]):
                kind = junk_kind.get(int(r))
                payload = _corrupt(record, kind) if kind and kind != "duplicate_line" else \
                    json.dumps(record, ensure_ascii=False).encode()
                line_no += 1
                fh.write(payload + b"\n")
                index.append((f"items/{date}.jsonl", line_no, int(video), int(t), int(cross)))
                if kind:
                    junk.append((f"items/{date}.jsonl", line_no, kind, world.videos.at[int(video), "video_id"]))
                if kind == "duplicate_line":
                    line_no += 1
                    fh.write(payload + b"\n")
                    index.append((f"items/{date}.jsonl", line_no, int(video), int(t), 2))
    for j in sorted(missing_media_videos):
        junk.append(("media", 0, "media_missing", world.videos.at[j, "video_id"]))

    posts = world.creator_posts
    final_diggs = world.listings[world.listings["t"] == spec.days_tracked].drop_duplicates("video") \
        .set_index("video")["diggs"]
    for i, group in posts.groupby("creator"):
        if not world.creators.at[i, "has_post_list"]:
            continue
        with open(out_dir / "creators" / f"{world.creators.at[i, 'unique_id']}.jsonl", "w", encoding="utf-8") as fh:
            for row in group.sort_values("create_time", ascending=False).itertuples(index=False):
                diggs = int(final_diggs.get(row.video, 0)) if row.video >= 0 else int(row.diggs)
                fh.write(json.dumps({"id": row.post_id, "createTime": int(row.create_time),
                                     "stats": {"diggCount": diggs}}) + "\n")
    with open(out_dir / "labels" / "engagement.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["hashtag", "label"])
        for row in world.hashtags.itertuples(index=False):
            w.writerow([row.hashtag, row.tactic])
    junk_tab = pd.DataFrame(junk, columns=["file", "line", "kind", "video_id"])
    index_tab = pd.DataFrame(index, columns=["file", "line", "video", "t", "kind"])
    return junk_tab, index_tab, missing_media_videos
