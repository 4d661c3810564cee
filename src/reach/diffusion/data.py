"""Promotion logs (DESIGN section 4): validation with reasons, and the per-period panel the estimators read.

Contract: one row per (video_id, period) with category, exposed (users shown the promotion), direct_clicks
(exposed and clicked) and indirect_clicks (clicked without exposure); ``period`` counts hours since the video's
upload (0 = its first hour). Hours absent from a video's log are hours with no promotion and no clicks (filled
with zeros). The market size m comes with the logs (metadata.json).

A malformed row is rejected with a reason; because cumulative adopters A_{t-1} cannot be rebuilt around a
missing row, the rest of that video is dropped too (reason ``video_has_rejected_rows``). Exact duplicate rows are
dropped and counted, not rejected.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reach.diffusion.estimators import Observations

REQUIRED = ("video_id", "category", "period", "exposed", "direct_clicks", "indirect_clicks")
COUNTS = ("exposed", "direct_clicks", "indirect_clicks")


def validate_promotion_logs(logs: pd.DataFrame, market: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Returns (clean logs, rejected rows with a ``reason`` column, summary). The clean logs hold integer
    columns, one row per (video, period) from 0 to the video's last period, sorted by video and period."""
    missing = [c for c in REQUIRED if c not in logs.columns]
    if missing:
        raise ValueError(f"promotion logs lack required column(s) {missing}; expected {list(REQUIRED)}")
    if not (isinstance(market, (int, np.integer)) and market > 0):
        raise ValueError(f"market size must be a positive integer, not {market!r}")
    df = logs.loc[:, list(REQUIRED)].reset_index(drop=True)
    n_read = len(df)
    reason = pd.Series(pd.NA, index=df.index, dtype="object")

    def flag(mask, why):
        mask = pd.Series(np.asarray(mask, dtype=bool), index=df.index) & reason.isna()
        reason[mask] = why

    flag(df.isna().any(axis=1), "missing_value")
    num = {c: pd.to_numeric(df[c], errors="coerce") for c in ("period", *COUNTS)}
    flag(pd.concat([num[c].isna() for c in num], axis=1).any(axis=1), "not_a_number")
    flag((num["period"] % 1 != 0) | (num["period"] < 0), "bad_period")
    counts = pd.concat([num[c] for c in COUNTS], axis=1)
    flag((counts % 1 != 0).any(axis=1), "non_integer_count")
    flag((counts < 0).any(axis=1), "negative_count")
    flag(num["direct_clicks"] > num["exposed"], "direct_clicks_exceed_exposed")
    flag(num["exposed"] + num["indirect_clicks"] > market, "exceeds_market")

    # duplicates: exact copies are dropped (counted); conflicting rows for one (video, period) are rejected
    key = pd.DataFrame({"video_id": df["video_id"], "period": num["period"]})
    exact = df.assign(period=num["period"]).duplicated(keep="first") & reason.isna()
    n_dup = int(exact.sum())
    live = ~exact & reason.isna()
    flag(key[live].duplicated(keep=False).reindex(df.index, fill_value=False), "conflicting_duplicate")
    cat_n = df.loc[reason.isna() & ~exact].groupby("video_id")["category"].nunique()
    flag(df["video_id"].isin(cat_n.index[cat_n > 1]), "inconsistent_category")

    bad_videos = set(df.loc[reason.notna(), "video_id"])
    flag(df["video_id"].isin(bad_videos) & ~exact, "video_has_rejected_rows")

    def logged_rows() -> pd.DataFrame:
        keep = reason.isna() & ~exact
        return pd.DataFrame({"video_id": df.loc[keep, "video_id"].to_numpy(),
                             "category": df.loc[keep, "category"].astype(str).to_numpy(),
                             "period": num["period"][keep].astype(np.int64).to_numpy(),
                             **{c: num[c][keep].astype(np.int64).to_numpy() for c in COUNTS}})

    # cumulative adopters must stay within the market, and exposure within the non-adopters; checked on the logged
    # rows (an empty hour adds nothing), and a video that breaks it is refused with all its logged rows
    logged = add_cumulative(logged_rows().sort_values(["video_id", "period"], kind="stable"))
    over = (logged["A_prev"] + logged["direct_clicks"] + logged["indirect_clicks"] > market) | (
        logged["exposed"] > market - logged["A_prev"])
    over_videos = set(logged.loc[over, "video_id"])
    flag(df["video_id"].isin(over_videos) & ~exact, "cumulative_exceeds_market")
    keep = reason.isna() & ~exact
    clean = logged_rows()
    n_logged = len(clean)
    clean = add_cumulative(fill_missing_hours(clean))
    n_filled = len(clean) - n_logged
    rejected = df.loc[reason.notna()].assign(reason=reason[reason.notna()])
    summary = {
        "market": int(market),
        "rows": {"read": n_read, "accepted": int(keep.sum()), "rejected": int(reason.notna().sum()),
                 "duplicates": n_dup, "filled_empty_hours": int(n_filled)},
        "rejected_by_reason": {str(k): int(v) for k, v in rejected["reason"].value_counts().items()},
        "videos": {"read": int(df["video_id"].nunique()), "accepted": int(clean["video_id"].nunique()),
                   "dropped": int(len(bad_videos | over_videos))},
        "categories": int(clean["category"].nunique()),
        "mean_promotion_fraction": float((clean["exposed"] / market).mean()) if len(clean) else float("nan"),
    }
    return clean, rejected.reset_index(drop=True), summary


def fill_missing_hours(clean: pd.DataFrame) -> pd.DataFrame:
    """One row per (video, period) from 0 to the video's last logged period; absent hours get zero counts."""
    if clean.empty:
        return clean.assign(period=clean["period"].astype(np.int64))
    last = clean.groupby("video_id", sort=False).agg(category=("category", "first"), last=("period", "max"))
    lengths = last["last"].to_numpy() + 1
    full = pd.DataFrame({"video_id": np.repeat(last.index.to_numpy(), lengths),
                         "category": np.repeat(last["category"].to_numpy(), lengths),
                         "period": np.concatenate([np.arange(n) for n in lengths]).astype(np.int64)})
    if len(full) == len(clean):
        return clean.sort_values(["video_id", "period"], kind="stable").reset_index(drop=True)
    out = full.merge(clean.drop(columns="category"), on=["video_id", "period"], how="left")
    for c in COUNTS:
        out[c] = out[c].fillna(0).astype(np.int64)
    return out.sort_values(["video_id", "period"], kind="stable").reset_index(drop=True)


def add_cumulative(clean: pd.DataFrame) -> pd.DataFrame:
    """A_prev: cumulative clicks of the video before each period (A_0 = 0 at upload)."""
    new = clean["direct_clicks"] + clean["indirect_clicks"]
    cum = new.groupby(clean["video_id"], sort=False).cumsum()
    return clean.assign(A_prev=(cum - new).astype(np.int64))


def observations(panel: pd.DataFrame, market: float, gamma: float = 1.0) -> Observations:
    """Estimation rows of a panel (validated logs with A_prev), with decay = gamma**period."""
    return Observations.build(panel["direct_clicks"].to_numpy(float), panel["indirect_clicks"].to_numpy(float),
                              panel["exposed"].to_numpy(float) / market, panel["A_prev"].to_numpy(float),
                              float(market), np.power(gamma, panel["period"].to_numpy(float)))
