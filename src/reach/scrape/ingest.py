"""Ingestion: raw Discover-page scrapes -> one row per video at its earliest appearance, the daily plays panel,
the refused records with their reasons, and counts that add up (read = accepted + rejected + duplicates).

Paper 1: a video is kept at its earliest appearance (footnotes 5 and 21: the earliest day; on the same day the
trending listing, then the best rank); followers are those at the earliest appearance; impressions are plays at day
14, and the daily plays are taken from any listing of the video (the home listing's on a day it has one); the
instrument is the creator's average hearts over posts made before this one.

Memory grows with videos, not records: files are streamed line by line; each accepted record leaves only a
few numbers in typed columns (video and hashtag codes, day, rank, the four counts, where it was read), and the
full observation is kept only for the first appearance of each (video, hashtag) on its earliest day -- the only
records that can become a video's earliest appearance. Everything else is computed on the columns with numpy.
"""

from __future__ import annotations

import json
import logging
import re
from array import array
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path

import numpy as np
import pandas as pd

from reach.scrape.normalise import records as line_records
from reach.scrape.schema import validate_creator_post, validate_item

log = logging.getLogger(__name__)
ITEM_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.jsonl$")
FYP_TAGS = frozenset({"fyp"})
RAW_PREVIEW_CHARS = 2000
# the parts of an observation kept for a video's candidate earliest appearances
HEAVY = ("video_id", "hashtag", "scraped_at", "rank", "hashtag_trending", "followers", "heart_count",
         "video_count", "hearts_ok", "create_time", "author_id", "unique_id", "is_verified", "desc",
         "sticker_texts", "tags", "music_id", "music_title", "music_original", "duration_s", "is_sponsored",
         "hashtag_is_commerce", "hashtag_desc", "diggs")
VALUE_SOURCES = ("format", "plays", "diggs", "shares", "comments", "followers", "heart_count", "video_count",
                 "create_time", "author", "verified", "duration")
SOURCE_DEFAULTS = {"format": "item", "create_time": "createTime", "author": "author object",
                   "verified": "author.verified", "duration": "video.duration (s)"}


class IngestError(RuntimeError):
    """A problem with an input file as a whole (unreadable, misnamed): names the file. When ingestion stops because
    every record or video was refused, `rejected` holds the refused records with their reasons (the rule writes them
    beside its log, since a failed rule's outputs are removed)."""

    def __init__(self, message: str, rejected: list[dict] | None = None) -> None:
        super().__init__(message)
        self.rejected = rejected or []


@dataclass
class IngestResult:
    videos: pd.DataFrame
    daily_plays: pd.DataFrame
    rejected: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    value_sources: pd.DataFrame | None = None


def _preview(raw: bytes) -> str:
    return raw[:RAW_PREVIEW_CHARS].decode("utf-8", errors="replace")


def iter_jsonl(path: Path, rel: str):
    """Yield (line number, parsed value or None, reason or None, raw bytes) for each non-blank line, streaming."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise IngestError(f"cannot read scrape file {path}: {exc.strerror or exc}") from exc
    with fh:
        try:
            for number, raw in enumerate(fh, start=1):
                if raw.endswith(b"\n"):
                    raw = raw[:-1]
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
                except RecursionError:
                    yield number, None, "malformed_json:nested too deeply", raw
        except OSError as exc:
            raise IngestError(f"cannot read scrape file {path}: {exc.strerror or exc}") from exc


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


def _creator_posts(creators_dir: Path, unique_id: str, rejected: list[dict], counts: Counter) -> dict | None:
    """The creator's post list as arrays (post_id, create_time, diggs), or None without a file. A line may
    hold one post or a page of them (itemList / items / aweme_list)."""
    path = creators_dir / f"{unique_id}.jsonl"
    if not path.exists() and not path.is_symlink():
        return None  # no post list: the instrument falls back to authorStats
    rel = f"creators/{path.name}"
    ids, times, diggs = [], [], []
    for number, value, reason, raw in iter_jsonl(path, rel):
        entries = [(None, value)]
        if reason is None and isinstance(value, dict):
            for key in ("itemList", "items", "aweme_list"):
                if isinstance(value.get(key), list):
                    entries = list(enumerate(value[key]))
                    break
        for index, entry in entries:
            counts["read"] += 1
            post, why = (None, reason) if reason is not None else validate_creator_post(entry)
            if why is not None:
                counts["rejected"] += 1
                counts[f"reason:{why.split(':')[0]}"] += 1
                row = {"file": rel, "line": number, "reason": why, "record": _preview(raw)}
                if index is not None:
                    row["item"] = index
                rejected.append(row)
                continue
            counts["accepted"] += 1
            ids.append(post["post_id"])
            times.append(post["create_time"])
            diggs.append(post["diggs"])
    # overlapping pages repeat posts: each post counts once in the instrument, its copy with the most hearts kept
    # (hearts only grow, so that is the latest); the other copies are counted as duplicates
    best: dict[str, int] = {}
    for j, pid in enumerate(ids):
        if pid not in best or diggs[j] > diggs[best[pid]]:
            best[pid] = j
    keep = sorted(best.values())
    n_dup = len(ids) - len(keep)
    counts["accepted"] -= n_dup
    counts["duplicates"] += n_dup
    return {"post_id": [ids[j] for j in keep], "create_time": np.asarray([times[j] for j in keep], dtype=np.int64),
            "diggs": np.asarray([diggs[j] for j in keep], dtype=np.int64)}


def past_average_hearts(posts: dict, video_ids: list[str], create_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean diggs and count over the creator's posts made strictly before each focal video, the focal post
    itself excluded (Section 3.3). NaN mean and 0 count where there is none."""
    ct, dg, ids = posts["create_time"], posts["diggs"], posts["post_id"]
    order = np.argsort(ct, kind="stable")
    ct_sorted = ct[order]
    cum = np.concatenate([[0], np.cumsum(dg[order])])
    means = np.full(len(video_ids), np.nan)
    counts = np.zeros(len(video_ids), dtype=np.int64)
    own: dict[str, list[int]] = {}
    for j, pid in enumerate(ids):
        own.setdefault(pid, []).append(j)
    for i, (vid, c) in enumerate(zip(video_ids, create_times)):
        k = int(np.searchsorted(ct_sorted, c, side="left"))
        total, n = int(cum[k]), k
        for j in own.get(vid, ()):
            if ct[j] < c:
                total -= int(dg[j])
                n -= 1
        if n > 0:
            means[i] = total / n
            counts[i] = n
    return means, counts


ENGAGEMENT_TACTICS = ("informational", "entertaining", "socializing")


def read_engagement_labels(path: Path) -> dict[str, str]:
    """``labels/engagement.csv`` (hashtag,label) -> {hashtag: tactic}; a bad row is an error naming file and row."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
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


class RecordColumns:
    """Accepted records as typed columns, plus the candidate earliest appearances (see the module docstring)."""

    def __init__(self) -> None:
        self.vid_code: dict[str, int] = {}
        self.tag_code: dict[str, int] = {}
        self.src_code: dict[tuple, int] = {}
        self.sources: list[dict] = []
        self.files: list[str] = []
        self.cols = {name: array(kind) for name, kind in (
            ("vid", "i"), ("tag", "i"), ("date", "i"), ("trending", "b"), ("rank", "q"), ("plays", "q"),
            ("diggs", "q"), ("shares", "q"), ("comments", "q"), ("file", "i"), ("line", "i"), ("item", "i"),
            ("src", "i"))}
        self.candidates: dict[tuple[int, int], tuple] = {}  # (video, hashtag) -> (date, order, heavy, file, line, item, src)
        self.n = 0

    def add(self, obs: dict, file_no: int, line: int, item: int | None) -> None:
        vid = self.vid_code.setdefault(obs["video_id"], len(self.vid_code))
        tag = self.tag_code.setdefault(obs["hashtag"], len(self.tag_code))
        key = tuple(sorted(obs["sources"].items()))
        src = self.src_code.get(key)
        if src is None:
            src = self.src_code[key] = len(self.src_code)
            self.sources.append(dict(key))
        day = obs["scraped_at"].astimezone(timezone.utc).date().toordinal()   # days in UTC, as first_seen
        c = self.cols
        c["vid"].append(vid)
        c["tag"].append(tag)
        c["date"].append(day)
        c["trending"].append(bool(obs["hashtag_trending"]))
        c["rank"].append(obs["rank"])
        c["plays"].append(obs["plays"])
        c["diggs"].append(obs["diggs"])
        c["shares"].append(obs["shares"])
        c["comments"].append(obs["comments"])
        c["file"].append(file_no)
        c["line"].append(line)
        c["item"].append(-1 if item is None else item)
        c["src"].append(src)
        held = self.candidates.get((vid, tag))
        if held is None or day < held[0]:  # first record of this (video, hashtag) on its earliest day so far
            self.candidates[(vid, tag)] = (day, self.n, tuple(obs[k] for k in HEAVY), file_no, line, item, src)
        self.n += 1

    def arrays(self) -> dict[str, np.ndarray]:
        out = {name: np.frombuffer(col, dtype=col.typecode) if len(col) else np.zeros(0, dtype=np.int64)
               for name, col in self.cols.items()}
        out["trending"] = out["trending"].astype(bool)
        for name in ("rank", "plays", "diggs", "shares", "comments"):
            out[name] = out[name].astype(np.int64, copy=False)
        return out


    def merge(self, chunk: "RecordColumns") -> None:
        """Append a later file's columns (read order kept; the earlier record wins ties of candidates)."""
        map_v = np.array([self.vid_code.setdefault(k, len(self.vid_code)) for k in chunk.vid_code], dtype=np.int32)
        map_t = np.array([self.tag_code.setdefault(k, len(self.tag_code)) for k in chunk.tag_code], dtype=np.int32)
        map_s = []
        for src in chunk.sources:
            key = tuple(sorted(src.items()))
            if key not in self.src_code:
                self.src_code[key] = len(self.src_code)
                self.sources.append(src)
            map_s.append(self.src_code[key])
        map_s = np.array(map_s, dtype=np.int32)
        for name, col in chunk.cols.items():
            if not len(col):
                continue
            if name in ("vid", "tag", "src"):
                mapping = {"vid": map_v, "tag": map_t, "src": map_s}[name]
                col = array("i", mapping[np.frombuffer(col, dtype=np.int32)].tobytes())
            elif name == "file":
                col = array("i", [len(self.files) - 1]) * len(col)
            self.cols[name].extend(col)
        for (lv, lt), cand in chunk.candidates.items():
            key = (int(map_v[lv]), int(map_t[lt]))
            held = self.candidates.get(key)
            if held is None or cand[0] < held[0]:
                self.candidates[key] = (cand[0], cand[1] + self.n, cand[2], len(self.files) - 1, cand[4], cand[5],
                                        int(map_s[cand[6]]))
        self.n += chunk.n


def read_item_file(path: Path) -> tuple[RecordColumns, list[dict], int]:
    """One items/<day>.jsonl -> its accepted records as columns, its refused records, the records read."""
    rel = f"items/{path.name}"
    columns = RecordColumns()
    rejected: list[dict] = []
    n_read = 0
    for number, value, reason, raw in iter_jsonl(path, rel):
        if reason is not None:
            n_read += 1
            rejected.append({"file": rel, "line": number, "reason": reason, "record": _preview(raw)})
            continue
        for index, item, preset, why in line_records(value):
            n_read += 1
            obs = None
            if why is None:
                users = preset.pop("_users", None)
                user_stats = preset.pop("_user_stats", None)
                obs, why = validate_item(item, users, user_stats, preset)
            if why is not None:
                row = {"file": rel, "line": number, "reason": why, "record": _preview(raw)}
                if index is not None:
                    row["item"] = index
                rejected.append(row)
                continue
            columns.add(obs, 0, number, index)
    return columns, rejected, n_read


def _read_items(files: list[Path], rejected: list[dict], workers: int = 1) -> tuple[RecordColumns, int]:
    """All item files, in name order; with ``workers`` > 1 files are parsed in parallel processes and merged
    in the same order, so the result does not depend on the number of workers."""
    columns = RecordColumns()
    n_read = 0
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 and len(files) > 1 else None
    try:
        chunks = pool.map(read_item_file, files) if pool else map(read_item_file, files)
        for path, (chunk, refused, read) in zip(files, chunks):
            columns.files.append(f"items/{path.name}")
            columns.merge(chunk)
            rejected.extend(refused)
            n_read += read
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    return columns, n_read


def _group_min_max_count(codes: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(lo, codes, values)
    np.maximum.at(hi, codes, values)
    return lo, hi, np.bincount(codes, minlength=n)


def ingest(scrapes_dir: Path, impressions_day: int = 14, require_media: bool = True, workers: int = 1) -> IngestResult:
    """Ingest a scrape directory (items/, creators/, media/, labels/) -- see the module docstring. ``workers``:
    processes parsing item files in parallel (the output is the same for any number)."""
    scrapes_dir = Path(scrapes_dir)
    labels_path = scrapes_dir / "labels" / "engagement.csv"
    labels = read_engagement_labels(labels_path) if labels_path.is_file() else {}
    items_dir = scrapes_dir / "items"
    if not items_dir.is_dir():
        raise IngestError(f"no items/ directory in {scrapes_dir}")
    files = sorted(p for p in items_dir.iterdir() if not p.name.startswith("."))
    for p in files:   # a day's file under another name (.json, .jsonl.gz, .JSONL) would otherwise go unread
        if not ITEM_FILE.match(p.name):
            raise IngestError(f"unexpected item file name {p} (want items/YYYY-MM-DD.jsonl)")
    if not files:
        raise IngestError(f"no items/*.jsonl files in {scrapes_dir}")

    rejected: list[dict] = []
    columns, n_read = _read_items(files, rejected, workers)
    log.info("read %d item records from %d files; %d refused at parse/validation", n_read, len(files), len(rejected))
    if columns.n == 0:
        raise IngestError(f"no valid item records in {items_dir} ({len(rejected)} refused)", rejected)
    a = columns.arrays()
    vid_names = np.array(list(columns.vid_code), dtype=object)
    tag_names = list(columns.tag_code)
    n_vid, n_tag, n = len(vid_names), len(tag_names), columns.n
    vid, tag, date = a["vid"], a["tag"], a["date"]
    order = np.arange(n)
    status = np.zeros(n, dtype=np.int8)  # 0 accepted, 1 duplicate, 2 rejected

    # Exact repeats of (video, hashtag, day): scraper retries (the first one read is kept).
    by_key = np.lexsort((order, date, tag, vid))
    same = (np.diff(vid[by_key]) == 0) & (np.diff(tag[by_key]) == 0) & (np.diff(date[by_key]) == 0)
    status[by_key[1:][same]] = 1

    # Earliest appearance: earliest day, then trending listing, then best rank, then read order (footnote 5).
    best: dict[int, tuple] = {}
    for (v, _), cand in columns.candidates.items():
        day, pos, heavy = cand[0], cand[1], cand[2]
        key = (day, not heavy[4], heavy[3], pos)
        if v not in best or key < best[v][0]:
            best[v] = (key, cand)
    first_tag = np.empty(n_vid, dtype=np.int64)
    first_date = np.empty(n_vid, dtype=np.int64)
    for v, (_, cand) in best.items():
        first_tag[v] = columns.tag_code[cand[2][1]]
        first_date[v] = cand[0]
    home = tag == first_tag[vid]
    # Plays belong to the video, not the listing: one observation per (video, day), the home listing's where it has
    # one that day, else the first-read other listing's; every other listing of that day is a duplicate.
    cand = np.flatnonzero(status == 0)
    by_day = cand[np.lexsort((order[cand], ~home[cand], date[cand], vid[cand]))]
    first_of_day = np.ones(by_day.size, dtype=bool)
    first_of_day[1:] = (np.diff(vid[by_day]) != 0) | (np.diff(date[by_day]) != 0)
    status[by_day[~first_of_day]] = 1
    t = date - first_date[vid] + 1

    hashtag_first = np.full(n_tag, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(hashtag_first, tag, date)
    trend_pairs = np.unique(np.stack([date[a["trending"]], tag[a["trending"]]]), axis=1) if a["trending"].any() \
        else np.zeros((2, 0), dtype=np.int64)
    trending_by_day: dict[int, set[str]] = {}
    for d, h in zip(trend_pairs[0].tolist(), trend_pairs[1].tolist()):
        trending_by_day.setdefault(d, set()).add(tag_names[h].lower())

    # ---- video-level checks (one earliest appearance per video) ------------------------------------------------
    live = status == 0
    t_lo, t_hi, t_n = _group_min_max_count(vid[live], t[live], n_vid)
    last_row = np.full(n_vid, -1, dtype=np.int64)
    at_day = np.flatnonzero(live & (t == impressions_day))
    last_row[vid[at_day]] = at_day  # one per video: repeats of (video, hashtag, day) are duplicates
    first_ids = sorted(vid_names[v] for v in best)
    code_of = columns.vid_code
    video_reason: dict[str, str] = {}
    for vid_id in first_ids:
        v = code_of[vid_id]
        if last_row[v] < 0:
            video_reason[vid_id] = (f"incomplete_tracking:no day-{impressions_day} observation "
                                    f"(tracked days {t_lo[v]}-{t_hi[v]})")
    media_dir = scrapes_dir / "media"
    if require_media:
        for vid_id in first_ids:
            if vid_id not in video_reason:
                reason = media_status(media_dir / f"{vid_id}.mp4")
                if reason is not None:
                    video_reason[vid_id] = reason

    first = pd.DataFrame([dict(zip(HEAVY, best[code_of[vid_id]][1][2])) for vid_id in first_ids])
    first["file"] = [columns.files[best[code_of[v]][1][3]] for v in first_ids]
    first["line"] = [best[code_of[v]][1][4] for v in first_ids]
    first["date_ord"] = [best[code_of[v]][1][0] for v in first_ids]
    first = first.set_index("video_id", drop=False)

    # Instrument (Section 3.3): mean hearts over the creator's posts made before this one.
    creator_counts: Counter = Counter()
    creators_dir = scrapes_dir / "creators"
    past_mean = np.full(len(first), np.nan)
    n_past = np.zeros(len(first), dtype=np.int64)
    positions: dict[str, list[int]] = {}
    for i, uid in enumerate(first["unique_id"]):
        positions.setdefault(uid, []).append(i)
    focal_ids, focal_times = first["video_id"].tolist(), first["create_time"].to_numpy(dtype=np.int64)
    for uid in sorted(positions):
        posts = _creator_posts(creators_dir, uid, rejected, creator_counts)
        if posts is None or not len(posts["post_id"]):
            continue
        idx = positions[uid]
        means, counts = past_average_hearts(posts, [focal_ids[i] for i in idx], focal_times[idx])
        past_mean[idx], n_past[idx] = means, counts
    fallback = np.isnan(past_mean)
    video_count = first["video_count"].to_numpy(dtype=np.int64)
    hearts_ok = first["hearts_ok"].to_numpy(dtype=bool)
    fallback_mean = (first["heart_count"].to_numpy(dtype=np.int64) - first["diggs"].to_numpy(dtype=np.int64)) \
        / np.maximum(video_count - 1, 1)
    past_mean = np.where(fallback, fallback_mean, past_mean)
    n_past = np.where(fallback, video_count - 1, n_past)
    # heartCount may sit up to 10% below this video's diggs (rounding, see schema): then the other posts' mean is
    # negative and cannot be the instrument
    for i in np.flatnonzero(fallback & ((video_count <= 1) | ~hearts_ok | (fallback_mean < 0))):
        vid_id = first_ids[i]
        if video_count[i] <= 1:
            video_reason.setdefault(vid_id, "no_instrument:creator has no earlier post (post list and authorStats)")
        else:
            video_reason.setdefault(vid_id, f"wrapped_hearts:authorStats.heartCount={first['heart_count'].iloc[i]} "
                                            "is int32-wrapped, zeroed or below this video's diggs, and the post "
                                            "list has no earlier post to take the instrument from")
    past_mean = pd.Series(past_mean, index=first.index)
    n_past = pd.Series(n_past, index=first.index)
    fallback = pd.Series(fallback, index=first.index)

    keep_ids = first.index[~first.index.isin(list(video_reason))]
    f = first.loc[keep_ids]
    end_rows = last_row[[code_of[v] for v in keep_ids]]
    end = pd.DataFrame({k: a[k][end_rows] for k in ("plays", "diggs", "shares", "comments")}, index=keep_ids)
    keep_codes = np.array([code_of[v] for v in keep_ids], dtype=np.int64)
    stickers = f["sticker_texts"]
    trending_today = [trending_by_day.get(d, set()) for d in f["date_ord"]]
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
        "days_tracked": t_n[keep_codes].astype(np.int64),
        # Web Appendix A post statistics, at the earliest appearance
        "num_hashtags": [len(t) for t in f["tags"]],
        "num_trending": [sum(t in today for t in tags) for tags, today in zip(f["tags"], trending_today)],
        "has_fyp": [any(t in FYP_TAGS for t in tags) for tags in f["tags"]],
        "hashtag_age": [d - int(hashtag_first[columns.tag_code[h]]) for d, h in zip(f["date_ord"], f["hashtag"])],
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

    # Where each value came from: counts from the day-14 record, the rest from the earliest appearance.
    src_rows = []
    for v, end_row in zip(keep_ids, end_rows):
        at_first, at_end = columns.sources[best[code_of[v]][1][6]], columns.sources[int(a["src"][end_row])]
        row = {"video_id": v}
        for name in VALUE_SOURCES:
            held = at_end if name in ("plays", "diggs", "shares", "comments") else at_first
            row[name] = held.get(name, SOURCE_DEFAULTS.get(name, ""))
        src_rows.append(row)
    value_sources = pd.DataFrame(src_rows, columns=["video_id", *VALUE_SOURCES])
    value_sources.insert(1, "instrument", videos["instrument_source"].to_numpy())

    # Lines of refused videos under their earliest listing are rejected with the video's reason.
    refused_code = {code_of[v]: r for v, r in video_reason.items()}
    if refused_code:
        refused_mask = np.zeros(n_vid, dtype=bool)
        refused_mask[list(refused_code)] = True
        rows = np.flatnonzero((status == 0) & refused_mask[vid])
        for r in rows.tolist():
            row = {"file": columns.files[a["file"][r]], "line": int(a["line"][r]),
                   "reason": refused_code[int(vid[r])], "record": None}
            if a["item"][r] >= 0:
                row["item"] = int(a["item"][r])
            rejected.append(row)
        status[rows] = 2

    if videos.empty:
        raise IngestError(f"every video in {scrapes_dir} was refused ({len(rejected)} records)", rejected)
    videos = videos.sort_values(["first_seen", "hashtag", "ranking", "video_id"], kind="stable").reset_index(drop=True)
    value_sources = value_sources.set_index("video_id").loc[videos["video_id"]].reset_index()
    keep = np.flatnonzero(status == 0)
    name_rank = np.empty(n_vid, dtype=np.int64)
    name_rank[sorted(range(n_vid), key=vid_names.__getitem__)] = np.arange(n_vid)
    keep = keep[np.lexsort((t[keep], name_rank[vid[keep]]))]
    daily = pd.DataFrame({"video_id": vid_names[vid[keep]], "day": t[keep].astype(np.int64),
                          "plays": a["plays"][keep]})

    item_rejected = [r for r in rejected if r["file"].startswith("items/")]
    n_dup = int((status == 1).sum())
    n_acc = int((status == 0).sum())
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
                          "rejected": creator_counts["rejected"], "duplicates": creator_counts["duplicates"],
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
    return IngestResult(videos=videos, daily_plays=daily, rejected=rejected, summary=summary,
                        value_sources=value_sources)


def write_outputs(result: IngestResult, videos_path: Path, daily_path: Path, rejected_path: Path,
                  summary_path: Path, sources_path: Path | None = None) -> None:
    """Write the ingestion outputs (Parquet, JSON lines, JSON); ``sources_path``: the per-video value sources."""
    result.videos.to_parquet(videos_path, index=False)
    result.daily_plays.to_parquet(daily_path, index=False)
    with open(rejected_path, "w", encoding="utf-8") as fh:
        for r in result.rejected:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    Path(summary_path).write_text(json.dumps(result.summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if sources_path is not None and result.value_sources is not None:
        result.value_sources.to_parquet(sources_path, index=False)
