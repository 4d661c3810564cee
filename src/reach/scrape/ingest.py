"""Ingestion: raw Discover-page scrapes -> one row per video at its earliest appearance, the daily plays panel,
the refused records with their reasons, and counts that add up (read = accepted + rejected + duplicates).

Paper 1: a video is kept at its earliest appearance (footnotes 5 and 21: the earliest day; on the same day the
trending listing, then the best rank); followers are those at posting; impressions are plays at day 14; the
instrument is the creator's average hearts over posts made before this one.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reach.scrape.schema import validate_creator_post, validate_item

log = logging.getLogger(__name__)
ITEM_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.jsonl$")
FYP_TAGS = frozenset({"fyp"})
RAW_PREVIEW_CHARS = 2000


class IngestError(RuntimeError):
    """A problem with an input file as a whole (unreadable, misnamed): names the file."""


@dataclass
class IngestResult:
    videos: pd.DataFrame
    daily_plays: pd.DataFrame
    rejected: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read scrape file {path}: {exc.strerror or exc}") from exc


def _preview(raw: bytes) -> str:
    return raw[:RAW_PREVIEW_CHARS].decode("utf-8", errors="replace")


def iter_jsonl(path: Path, rel: str):
    """Yield (line number, parsed value or None, reason or None, raw bytes) for each non-blank line."""
    data = _read_bytes(path)
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, f"invalid_utf8:byte {exc.start}", raw
            continue
        try:
            yield number, json.loads(text), None, raw
        except json.JSONDecodeError as exc:
            yield number, None, f"malformed_json:{exc.msg} at column {exc.colno}", raw


def media_status(path: Path) -> str | None:
    """None when the file looks like an ISO-BMFF (mp4) file; else a reason. Decoding is checked downstream."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except FileNotFoundError:
        return "media_missing:no file"
    except OSError as exc:
        return f"media_unreadable:{exc.strerror or exc}"
    if len(head) < 12:
        return "media_unreadable:empty or truncated file"
    if head[4:8] != b"ftyp":
        return "media_unreadable:not an mp4 (no ftyp box)"
    return None


def _creator_posts(creators_dir: Path, unique_id: str, rejected: list[dict], counts: Counter) -> pd.DataFrame | None:
    path = creators_dir / f"{unique_id}.jsonl"
    if not path.is_file():
        return None
    rel = f"creators/{path.name}"
    rows = []
    for number, value, reason, raw in iter_jsonl(path, rel):
        counts["read"] += 1
        post = None
        if reason is None:
            post, reason = validate_creator_post(value)
        if reason is not None:
            counts["rejected"] += 1
            counts[f"reason:{reason.split(':')[0]}"] += 1
            rejected.append({"file": rel, "line": number, "reason": reason, "record": _preview(raw)})
            continue
        counts["accepted"] += 1
        rows.append(post)
    return pd.DataFrame(rows, columns=["post_id", "create_time", "diggs"])


ENGAGEMENT_TACTICS = ("informational", "entertaining", "socializing")


def read_engagement_labels(path: Path) -> dict[str, str]:
    """``labels/engagement.csv`` (hashtag,label) -> {hashtag: tactic}; a bad row is an error naming file and row."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise IngestError(f"cannot read engagement labels {path}: {exc}") from exc
    if list(table.columns) != ["hashtag", "label"]:
        raise IngestError(f"{path}: header must be 'hashtag,label', got {','.join(table.columns)}")
    labels: dict[str, str] = {}
    for row_no, (tag, label) in enumerate(zip(table["hashtag"], table["label"]), start=2):
        label = label.strip().lower()
        if label not in ENGAGEMENT_TACTICS:
            raise IngestError(f"{path}, row {row_no}: label {label!r} for {tag!r} is not one of {ENGAGEMENT_TACTICS}")
        if tag in labels and labels[tag] != label:
            raise IngestError(f"{path}, row {row_no}: {tag!r} labelled twice ({labels[tag]} and {label})")
        labels[tag] = label
    return labels


def ingest(scrapes_dir: Path, impressions_day: int = 14, require_media: bool = True) -> IngestResult:
    """Ingest a scrape directory (items/, creators/, media/, labels/) -- see the module docstring."""
    scrapes_dir = Path(scrapes_dir)
    labels_path = scrapes_dir / "labels" / "engagement.csv"
    labels = read_engagement_labels(labels_path) if labels_path.is_file() else {}
    items_dir = scrapes_dir / "items"
    if not items_dir.is_dir():
        raise IngestError(f"no items/ directory in {scrapes_dir}")
    files = sorted(p for p in items_dir.iterdir() if p.suffix == ".jsonl" or p.is_dir())
    for p in files:
        if not ITEM_FILE.match(p.name):
            raise IngestError(f"unexpected item file name {p} (want items/YYYY-MM-DD.jsonl)")
    if not files:
        raise IngestError(f"no items/*.jsonl files in {scrapes_dir}")

    rejected: list[dict] = []
    observations: list[dict] = []
    n_read = 0
    for path in files:
        rel = f"items/{path.name}"
        for number, value, reason, raw in iter_jsonl(path, rel):
            n_read += 1
            obs = None
            if reason is None:
                obs, reason = validate_item(value)
            if reason is not None:
                rejected.append({"file": rel, "line": number, "reason": reason, "record": _preview(raw)})
                continue
            obs["file"], obs["line"] = rel, number
            observations.append(obs)
    log.info("read %d item records from %d files; %d refused at parse/validation", n_read, len(files), len(rejected))

    obs = pd.DataFrame(observations)
    if obs.empty:
        raise IngestError(f"no valid item records in {items_dir} ({len(rejected)} refused; see rejected.jsonl)")
    obs["date"] = obs["scraped_at"].map(lambda t: t.date())
    obs["order"] = np.arange(len(obs))
    obs["status"] = "accepted"

    # Exact repeats of (video, hashtag, day): scraper retries.
    dup = obs.duplicated(["video_id", "hashtag", "date"], keep="first")
    obs.loc[dup, "status"] = "duplicate"

    # Earliest appearance: earliest day, then trending listing, then best rank (footnote 5).
    live = obs[obs["status"] == "accepted"]
    first = live.sort_values(["video_id", "date", "hashtag_trending", "rank", "order"],
                             ascending=[True, True, False, True, True]).drop_duplicates("video_id")
    earliest = first.set_index("video_id")[["hashtag", "date"]]
    home = obs["hashtag"].to_numpy() == obs["video_id"].map(earliest["hashtag"]).to_numpy()
    obs.loc[(obs["status"] == "accepted") & ~home, "status"] = "duplicate"  # cross-listings
    first_date = obs["video_id"].map(earliest["date"])
    obs["t"] = [(d - f).days + 1 for d, f in zip(obs["date"], first_date)]

    hashtag_first = obs.groupby("hashtag")["date"].min()
    trending_by_day = obs[obs["hashtag_trending"]].groupby("date")["hashtag"].agg(lambda s: {h.lower() for h in s})

    # ---- video-level checks, vectorised over videos (one row of `first` per video) ----------------------------
    home_obs = obs[obs["status"] == "accepted"]
    video_reason: dict[str, str] = {}
    t_range = home_obs.groupby("video_id")["t"].agg(["min", "max", "nunique"])
    last = home_obs[home_obs["t"] == impressions_day].drop_duplicates("video_id").set_index("video_id")
    first = first.set_index("video_id", drop=False)
    for vid in first.index[~first.index.isin(last.index)]:
        lo, hi = t_range.loc[vid, "min"], t_range.loc[vid, "max"]
        video_reason[vid] = f"incomplete_tracking:no day-{impressions_day} observation (tracked days {lo}-{hi})"
    media_dir = scrapes_dir / "media"
    if require_media:
        for vid in first.index:
            if vid not in video_reason:
                reason = media_status(media_dir / f"{vid}.mp4")
                if reason is not None:
                    video_reason[vid] = reason

    # Instrument (Section 3.3): mean hearts over the creator's posts made before this one.
    creator_counts: Counter = Counter()
    creators_dir = scrapes_dir / "creators"
    post_tables = []
    for uid in sorted(set(first["unique_id"])):
        posts = _creator_posts(creators_dir, uid, rejected, creator_counts)
        if posts is not None and len(posts):
            post_tables.append(posts.assign(unique_id=uid))
    focal = first[["video_id", "unique_id", "create_time"]].reset_index(drop=True)
    past = pd.DataFrame(columns=["mean", "count"], dtype=float)
    if post_tables:
        pairs = focal.merge(pd.concat(post_tables, ignore_index=True), on="unique_id", suffixes=("", "_post"))
        pairs = pairs[(pairs["create_time_post"] < pairs["create_time"]) & (pairs["post_id"] != pairs["video_id"])]
        past = pairs.groupby("video_id")["diggs"].agg(["mean", "count"])
    past_mean = first["video_id"].map(past["mean"])
    n_past = first["video_id"].map(past["count"])
    fallback = past_mean.isna()
    can_fallback = first["video_count"] > 1
    past_mean = past_mean.where(~fallback, (first["heart_count"] - first["diggs"]) / (first["video_count"] - 1).clip(lower=1))
    n_past = n_past.where(~fallback, first["video_count"] - 1)
    for vid in first.index[fallback & ~can_fallback]:
        video_reason.setdefault(vid, "no_instrument:creator has no earlier post (post list and authorStats)")

    keep_ids = first.index[~first.index.isin(list(video_reason))]
    f = first.loc[keep_ids]
    end = last.loc[keep_ids]
    trending_today = [trending_by_day.get(d, set()) for d in f["date"]]
    stickers = f["sticker_texts"]
    videos = pd.DataFrame({
        "video_id": f["video_id"].to_numpy(), "author_id": f["author_id"].to_numpy(),
        "unique_id": f["unique_id"].to_numpy(), "hashtag": f["hashtag"].to_numpy(),
        "hashtag_is_commerce": f["hashtag_is_commerce"].astype(bool).to_numpy(),
        "hashtag_desc": f["hashtag_desc"].to_numpy(),
        "engagement_tactic": [labels.get(h) for h in f["hashtag"]],
        "create_time": pd.to_datetime(f["create_time"].to_numpy(), unit="s", utc=True),
        "first_seen": pd.to_datetime(list(f["scraped_at"]), utc=True),
        "followers": f["followers"].astype(np.int64).to_numpy(),
        "log_followers": np.log(np.maximum(f["followers"].to_numpy(dtype=float), 1.0)),
        "past_avg_hearts": past_mean.loc[keep_ids].astype(float).to_numpy(),
        "log_past_avg_hearts": np.log1p(past_mean.loc[keep_ids].astype(float).to_numpy()),
        "instrument_source": np.where(fallback.loc[keep_ids], "author_stats_fallback", "post_list"),
        "n_past_posts": n_past.loc[keep_ids].astype(np.int64).to_numpy(),
        "impressions": end["plays"].astype(np.int64).to_numpy(),
        "log_impressions": np.log(np.maximum(end["plays"].to_numpy(dtype=float), 1.0)),
        "diggs": end["diggs"].astype(np.int64).to_numpy(), "shares": end["shares"].astype(np.int64).to_numpy(),
        "comments": end["comments"].astype(np.int64).to_numpy(),
        "days_tracked": t_range.loc[keep_ids, "nunique"].astype(np.int64).to_numpy(),
        # Web Appendix A post statistics, at the earliest appearance
        "num_hashtags": [len(t) for t in f["tags"]],
        "num_trending": [sum(t in today for t in tags) for tags, today in zip(f["tags"], trending_today)],
        "has_fyp": [any(t in FYP_TAGS for t in tags) for tags in f["tags"]],
        "hashtag_age": [(d - hashtag_first[h]).days for d, h in zip(f["date"], f["hashtag"])],
        "is_trending": f["hashtag_trending"].astype(bool).to_numpy(), "ranking": f["rank"].astype(np.int64).to_numpy(),
        "video_age": np.array([s.timestamp() for s in f["scraped_at"]]) / 86400.0 - f["create_time"].to_numpy() / 86400.0,
        "is_sponsored": f["is_sponsored"].astype(bool).to_numpy(), "is_verified": f["is_verified"].astype(bool).to_numpy(),
        # texts and media
        "desc": f["desc"].to_numpy(), "sticker_text": [" | ".join(s) for s in stickers],
        "n_stickers": [len(s) for s in stickers], "sticker_words": [sum(len(x.split()) for x in s) for s in stickers],
        "music_id": f["music_id"].to_numpy(), "music_title": f["music_title"].to_numpy(),
        "music_original": f["music_original"].astype(bool).to_numpy(), "duration_s": f["duration_s"].astype(float).to_numpy(),
        "media_path": [str(media_dir / f"{v}.mp4") for v in f["video_id"]],
        "source_file": f["file"].to_numpy(), "source_line": f["line"].astype(np.int64).to_numpy(),
    })

    # Lines of refused videos under their earliest listing are rejected with the video's reason.
    refused = obs["video_id"].map(video_reason)
    mask = (obs["status"] == "accepted") & refused.notna()
    for rel, number, reason in zip(obs.loc[mask, "file"], obs.loc[mask, "line"], refused[mask]):
        rejected.append({"file": rel, "line": int(number), "reason": reason, "record": None})
    obs.loc[mask, "status"] = "rejected"

    if videos.empty:
        raise IngestError(f"every video in {scrapes_dir} was refused; see rejected.jsonl")
    videos = videos.sort_values(["first_seen", "hashtag", "ranking", "video_id"], kind="stable").reset_index(drop=True)
    keep = obs[(obs["status"] == "accepted")]
    daily = keep[["video_id", "t", "plays"]].rename(columns={"t": "day"}).sort_values(["video_id", "day"])
    daily = daily[daily["video_id"].isin(set(videos["video_id"]))].reset_index(drop=True)

    item_rejected = [r for r in rejected if r["file"].startswith("items/")]
    n_dup = int((obs["status"] == "duplicate").sum())
    n_acc = int((obs["status"] == "accepted").sum())
    reasons = Counter(r["reason"].split(":")[0] for r in item_rejected)
    summary = {
        "scrapes_dir": str(scrapes_dir),
        "item_files": len(files),
        "records": {"read": n_read, "accepted": n_acc, "rejected": len(item_rejected), "duplicates": n_dup,
                    "rejected_by_reason": dict(sorted(reasons.items()))},
        "videos": {"accepted": int(len(videos)),
                   "rejected": len(video_reason),
                   "rejected_by_reason": dict(sorted(Counter(r.split(":")[0] for r in video_reason.values()).items())),
                   "instrument_source": {k: int(v) for k, v in videos["instrument_source"].value_counts().items()}},
        "creator_posts": {"read": creator_counts["read"], "accepted": creator_counts["accepted"],
                          "rejected": creator_counts["rejected"],
                          "rejected_by_reason": {k.split(":", 1)[1]: v for k, v in creator_counts.items()
                                                 if k.startswith("reason:")}},
        "engagement_labels": {"file": str(labels_path) if labels else None,
                              "videos_unlabelled": int(videos["engagement_tactic"].isna().sum())},
        "impressions_day": impressions_day,
        "require_media": require_media,
    }
    rec = summary["records"]
    if rec["read"] != rec["accepted"] + rec["rejected"] + rec["duplicates"]:  # pragma: no cover - invariant
        raise AssertionError(f"ingest counts do not add up: {rec}")
    return IngestResult(videos=videos, daily_plays=daily, rejected=rejected, summary=summary)


def write_outputs(result: IngestResult, videos_path: Path, daily_path: Path, rejected_path: Path,
                  summary_path: Path) -> None:
    """Write the four ingestion outputs (Parquet, JSON lines, JSON)."""
    result.videos.to_parquet(videos_path, index=False)
    result.daily_plays.to_parquet(daily_path, index=False)
    with open(rejected_path, "w", encoding="utf-8") as fh:
        for r in result.rejected:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    Path(summary_path).write_text(json.dumps(result.summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
