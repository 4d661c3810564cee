"""The Deep IV design of paper 1, Eq. 6: t = log followers, z = log past average hearts, x = [r, post statistics],
y = log impressions, aligned row by row on video_id (any misalignment or missing value is an error).

Optionally x ends with one indicator per hashtag the videos were scraped under (`hashtag_indicators`): the paper
counts on r to carry the hashtag (it is part of the caption, Section 3.2), but the scrape records it exactly, and
Table 4's campaign curves differ by hashtag; the indicators are the trailing `n_hashtag_columns` columns of x, so the
control-function IV can let the follower curve bend per hashtag (ControlFunctionConfig.direct_columns)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Design:
    video_id: np.ndarray
    t: np.ndarray            # log followers at posting (treatment)
    z: np.ndarray            # log past average hearts (instrument)
    x: np.ndarray            # [r, post statistics]
    y: np.ndarray            # log impressions at day 14
    x_columns: list[str]
    n_hashtag_columns: int = 0   # trailing columns of x that are hashtag indicators


def build_design(videos: pd.DataFrame, representation: pd.DataFrame, post_values: np.ndarray,
                 post_video_id: np.ndarray, post_columns: list[str], source: str = "videos.parquet",
                 hashtag_indicators: bool = False) -> Design:
    """Eq. 6's arrays in videos order. `representation` has video_id and r_0..r_{d-1}; the post statistics come
    from the feature stage (an array aligned to its own video_id list); with `hashtag_indicators`, one 0/1 column
    per hashtag of videos.hashtag (sorted; `hashtag=<tag>`) ends x."""
    ids = videos["video_id"].astype(str).to_numpy()
    r_cols = sorted((c for c in representation.columns if c.startswith("r_")), key=lambda c: int(c[2:]))
    if not r_cols:
        raise ValueError("the representation table has no r_<k> columns")
    rep = representation.assign(video_id=representation["video_id"].astype(str)).set_index("video_id")
    missing = [v for v in ids if v not in rep.index]
    if missing:
        raise ValueError(f"{len(missing)} videos of {source} have no representation r, e.g. {missing[:3]}")
    post_ids = np.asarray(post_video_id).astype(str)
    if post_ids.tolist() != ids.tolist():
        raise ValueError(f"post statistics are not aligned to {source} (first differing row: "
                         f"{int(np.argmax(post_ids != ids)) if post_ids.size == ids.size else 'length differs'})")
    x = np.column_stack([rep.loc[ids, r_cols].to_numpy(float), np.asarray(post_values, float)])
    tag_columns: list[str] = []
    if hashtag_indicators:
        if "hashtag" not in videos.columns or videos["hashtag"].isna().any():
            raise ValueError(f"hashtag indicators need a hashtag for every video of {source}")
        tags = videos["hashtag"].astype(str).to_numpy()
        levels = sorted(set(tags))
        x = np.column_stack([x, (tags[:, None] == np.array(levels)[None, :]).astype(float)])
        tag_columns = [f"hashtag={tag}" for tag in levels]
    arrays = {"t": videos["log_followers"].to_numpy(float), "z": videos["log_past_avg_hearts"].to_numpy(float),
              "y": videos["log_impressions"].to_numpy(float)}
    for name, values in {**arrays, "x": x}.items():
        bad = ~np.isfinite(values) if values.ndim == 1 else ~np.isfinite(values).all(axis=1)
        if bad.any():
            raise ValueError(f"{name} is missing or infinite for {int(bad.sum())} videos of {source}, "
                             f"e.g. video {ids[np.argmax(bad)]}")
    return Design(ids, arrays["t"], arrays["z"], x, arrays["y"], [*r_cols, *post_columns, *tag_columns],
                  len(tag_columns))


def load_design(videos_path: str, representation_path: str, post_path: str,
                hashtag_indicators: bool = False) -> tuple[pd.DataFrame, Design]:
    """The videos table and Eq. 6's design from the workflow's files: results/ingest/videos.parquet, the
    representation r (results/represent/r.parquet) and the post statistics (results/features/post.npz)."""
    videos = pd.read_parquet(videos_path)
    with np.load(post_path, allow_pickle=False) as d:
        post = {k: d[k] for k in d.files}
    return videos, build_design(videos, pd.read_parquet(representation_path), post["values"], post["video_id"],
                                [str(c) for c in post["meta_columns"]], source=str(videos_path),
                                hashtag_indicators=hashtag_indicators)
