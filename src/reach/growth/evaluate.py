"""Compare the Stage-1 posterior with the synthetic world's truth (evaluation only; estimation never reads it).

The world writes growth_a, growth_b per video (truth/videos.parquet); it has no hashtag-level growth parameters,
so the true hashtag-level mean of a (b) is the mean of growth_a (growth_b) over the hashtag's videos in the fit.
Two posterior quantities are checked against it:
  sample_*: the posterior of the same finite-sample mean, mean_j a_ij (its interval should cover at the nominal
            rate when the measurement model, Eqs. 17-19, is right);
  model_*:  the hierarchical mean alpha_0i + mean_j([x, y1]_ij)'alpha_i of Eq. 20 (a super-population quantity,
            whose interval also carries the spread of a_ij around it, so it covers a finite-sample mean at or
            above the nominal rate)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def hashtag_truth(truth_videos: pd.DataFrame, fitted: pd.DataFrame) -> pd.DataFrame:
    """Per hashtag: mean of the true growth_a and growth_b over the videos that entered the fit (with the scale
    switch, those sampled by NUTS: ``source`` starting with "posterior")."""
    need = {"video_id", "growth_a", "growth_b"}
    if not need <= set(truth_videos.columns):
        raise ValueError(f"truth videos table lacks {sorted(need - set(truth_videos.columns))}")
    t = truth_videos[["video_id", "growth_a", "growth_b"]].astype({"video_id": str})
    if "source" in fitted.columns:
        fitted = fitted[fitted["source"].str.startswith("posterior")]
    m = fitted[["video_id", "hashtag"]].astype({"video_id": str}).merge(t, on="video_id", how="left")
    missing = m["growth_a"].isna().sum()
    if missing:
        raise ValueError(f"{missing} fitted videos have no truth row (e.g. {m.loc[m['growth_a'].isna(), 'video_id'].iloc[0]})")
    return m.groupby("hashtag").agg(true_a=("growth_a", "mean"), true_b=("growth_b", "mean"),
                                    n_videos=("video_id", "size")).reset_index()


def coverage_table(summary: pd.DataFrame, truth: pd.DataFrame, levels=(0.5, 0.9)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-hashtag rows (quantity, hashtag, posterior mean, q05, q95, truth, covered_90) and the coverage over
    hashtags per quantity at each level (normal approximation from the posterior mean and sd for levels other
    than 0.9, whose interval is the stored 5-95% quantiles)."""
    from scipy import stats

    rows = []
    for kind in ("sample", "model"):
        for par in ("a", "b"):
            q = f"{kind}_{par}"
            s = summary[summary["parameter"].str.startswith(q + "[")].copy()
            s["hashtag"] = s["parameter"].str.slice(len(q) + 1, -1)
            s = s.merge(truth[["hashtag", f"true_{par}"]], on="hashtag", how="inner")
            for _, r in s.iterrows():
                row = {"quantity": q, "hashtag": r["hashtag"], "mean": r["mean"], "sd": r["sd"], "q05": r["q05"],
                       "q95": r["q95"], "truth": r[f"true_{par}"], "rhat": r["rhat"]}
                for lv in levels:
                    if lv == 0.9:
                        row["covered_90"] = bool(r["q05"] <= row["truth"] <= r["q95"])
                    else:
                        half = stats.norm.ppf(0.5 + lv / 2) * r["sd"]
                        row[f"covered_{int(round(lv * 100))}"] = bool(abs(row["truth"] - r["mean"]) <= half)
                rows.append(row)
    per = pd.DataFrame(rows)
    cov_cols = [c for c in per.columns if c.startswith("covered_")]
    agg = per.groupby("quantity").agg(hashtags=("hashtag", "size"), **{c: (c, "mean") for c in cov_cols},
                                      mean_abs_error=("truth", lambda x: np.nan)).reset_index()
    agg["mean_abs_error"] = [float(np.mean(np.abs(g["mean"] - g["truth"]))) for _, g in per.groupby("quantity")]
    agg["mean_posterior_sd"] = [float(g["sd"].mean()) for _, g in per.groupby("quantity")]
    return per, agg
