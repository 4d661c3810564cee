"""Synthetic promotion logs for Part B (DESIGN sections 4 and 6): a platform's hourly click logs with known truth.

61 categories draw (p, q) from a bivariate normal matching the published summary of the paper's 61 category
estimates (p mean 0.156, sd 0.055; q mean 0.0547, sd 0.0225; corr -0.53), kept in p, q > 0, p + q <= 1. Each
category holds 155 to 2,759 videos (log-uniform between the two published extremes, both attained). Each video is
uploaded at a uniform hour of a 20-day window (keeping at least ``min_hours`` of observation) and followed hourly
to the window's end in a market of 518,646 users. Users follow the stochastic P-BDM of Section 5.2 with time decay
q * gamma**age (gamma = 0.983): promoted non-adopters click with probability p_v + q_v gamma^age A/m (direct), the
rest with q_v gamma^age A/m (indirect). Videos differ around their category's (p, q) by a log-normal factor.

The platform's promotion reacts to adoption ("it promotes what is taking off"), which makes the promotion fraction
endogenous as Section 5.1 warns:

    x_{v,t} = on_{v,t} * base_v * exp(-age / tau) * LogNormal(0, noise_sd) + momentum * a_{v,t-1} / m,

with on_{v,t} ~ Bernoulli(promoted_share); ``base_scale`` is set so that x averages about 0.0006 per hour.
Optionally a small share of malformed rows is injected (negative counts, more direct clicks than exposures,
missing category, duplicated rows) so that the validation of the logs is exercised on the default run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from reach.diffusion.dynamics import pbdm_draw

LOG_COLUMNS = ("video_id", "category", "period", "exposed", "direct_clicks", "indirect_clicks")


@dataclass(frozen=True)
class PromotionLogSpec:
    n_categories: int = 61
    videos_min: int = 155
    videos_max: int = 2759
    market: int = 518_646
    hours: int = 480                 # 20 days
    min_hours: int = 48              # every video is observed at least this long
    gamma: float = 0.983
    p_mean: float = 0.156
    p_sd: float = 0.055
    q_mean: float = 0.0547
    q_sd: float = 0.0225
    pq_corr: float = -0.53
    video_heterogeneity: float = 0.25   # sd of log(p_v / p_k) and log(q_v / q_k)
    base_scale: float = 0.0025       # mean of base_v (exponential across videos)
    decay_hours: float = 72.0        # tau: promotion fades with the video's age
    promoted_share: float = 0.6      # share of a video's hours with any promotion
    noise_sd: float = 0.5
    momentum: float = 0.5            # promotion added per new-adopter share of the last hour
    junk_share: float = 0.0          # share of videos with one malformed row injected


def draw_category_pq(spec: PromotionLogSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(p, q) per category from the published summary; redrawn until p, q >= 0.005 and p + q <= 1, then
    standardised and rescaled so that the sample means, sds and correlation equal the targets (the published
    numbers describe the 61 estimates themselves)."""
    cov = np.array([[spec.p_sd**2, spec.pq_corr * spec.p_sd * spec.q_sd],
                    [spec.pq_corr * spec.p_sd * spec.q_sd, spec.q_sd**2]])
    for _ in range(1000):
        z = rng.standard_normal((spec.n_categories, 2))
        z = z - z.mean(axis=0)
        # whiten the sample, then colour it with the target covariance: exact sample moments
        white = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False)).T)
        pq = white @ np.linalg.cholesky(cov).T + np.array([spec.p_mean, spec.q_mean])
        if pq.min() >= 0.005 and (pq.sum(axis=1) <= 1).all():
            return pq[:, 0], pq[:, 1]
    raise RuntimeError("could not draw category (p, q) inside p, q >= 0.005, p + q <= 1")


def videos_per_category(spec: PromotionLogSpec, rng: np.random.Generator) -> np.ndarray:
    """Log-uniform counts in [videos_min, videos_max]; the extremes are attained by two categories."""
    n = np.exp(rng.uniform(np.log(spec.videos_min), np.log(spec.videos_max), spec.n_categories)).round()
    n = n.astype(np.int64)
    if spec.n_categories >= 2:
        order = rng.permutation(spec.n_categories)
        n[order[0]], n[order[1]] = spec.videos_min, spec.videos_max
    return n


def simulate_category(p_v: np.ndarray, q_v: np.ndarray, upload: np.ndarray, base_v: np.ndarray,
                      spec: PromotionLogSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Hourly logs of one category's videos (vectorised over videos, looped over the window's hours)."""
    m = spec.market
    n = p_v.size
    A = np.zeros(n, dtype=np.int64)
    last_new = np.zeros(n, dtype=np.int64)
    out = {k: [] for k in ("idx", "period", "exposed", "direct", "indirect")}
    for h in range(spec.hours):
        live = np.flatnonzero(upload <= h)
        if live.size == 0:
            continue
        age = h - upload[live]
        on = rng.random(live.size) < spec.promoted_share
        x = (on * base_v[live] * np.exp(-age / spec.decay_hours)
             * rng.lognormal(-0.5 * spec.noise_sd**2, spec.noise_sd, live.size)
             + spec.momentum * last_new[live] / m)
        A_l = A[live]
        shown = np.minimum(np.round(x * m).astype(np.int64), m - A_l)
        q_eff = q_v[live] * spec.gamma ** age
        direct, indirect = pbdm_draw(rng, A_l, shown, p_v[live], q_eff, m)
        new = direct + indirect
        A[live] = A_l + new
        last_new[live] = new
        out["idx"].append(live)
        out["period"].append(age)
        out["exposed"].append(shown)
        out["direct"].append(direct)
        out["indirect"].append(indirect)
    return {k: np.concatenate(v) for k, v in out.items()}


def simulate_promotion_logs(spec: PromotionLogSpec, seed: int,
                            progress=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Returns (logs, category truth, video truth, metadata). ``logs`` follows the contract of DESIGN section 4
    (period = hours since the video's upload); each category draws from np.random.default_rng([seed, 1, k])."""
    top = np.random.default_rng([seed, 0])
    p_k, q_k = draw_category_pq(spec, top)
    n_k = videos_per_category(spec, top)
    names = [f"cat{k:02d}" for k in range(spec.n_categories)]
    logs, videos = [], []
    next_id = 0
    cats = range(spec.n_categories) if progress is None else progress(range(spec.n_categories))
    for k in cats:
        rng = np.random.default_rng([seed, 1, k])
        n = int(n_k[k])
        s = spec.video_heterogeneity
        p_v = p_k[k] * rng.lognormal(-0.5 * s * s, s, n)
        q_v = q_k[k] * rng.lognormal(-0.5 * s * s, s, n)
        p_v = np.clip(p_v, 1e-4, 0.95)
        q_v = np.clip(np.minimum(q_v, 1.0 - p_v), 1e-5, None)
        upload = rng.integers(0, spec.hours - spec.min_hours + 1, n)
        base_v = rng.exponential(spec.base_scale, n)
        sim = simulate_category(p_v, q_v, upload, base_v, spec, rng)
        ids = next_id + np.arange(n)
        next_id += n
        logs.append(pd.DataFrame({
            "video_id": ids[sim["idx"]], "category": names[k], "period": sim["period"],
            "exposed": sim["exposed"], "direct_clicks": sim["direct"], "indirect_clicks": sim["indirect"]}))
        videos.append(pd.DataFrame({"video_id": ids, "category": names[k], "p": p_v, "q": q_v,
                                    "upload_hour": upload, "periods": spec.hours - upload}))
    log_df = pd.concat(logs, ignore_index=True).sort_values(["video_id", "period"], kind="stable")
    log_df = log_df.reset_index(drop=True)
    video_df = pd.concat(videos, ignore_index=True)
    video_df["junk"] = False
    if spec.junk_share > 0:
        log_df, junk_ids = inject_malformed_rows(log_df, spec.junk_share, np.random.default_rng([seed, 2]))
        video_df["junk"] = video_df["video_id"].isin(junk_ids)
    cat_df = pd.DataFrame({"category": names, "p": p_k, "q": q_k, "n_videos": n_k})
    x_mean = float((log_df["exposed"].clip(lower=0) / spec.market).mean())
    meta = {"market": spec.market, "period": "hour", "hours": spec.hours, "gamma": spec.gamma,
            "mean_promotion_fraction": x_mean, "spec": asdict(spec), "seed": seed}
    return log_df, cat_df, video_df, meta


def inject_malformed_rows(logs: pd.DataFrame, share: float, rng: np.random.Generator) -> tuple[pd.DataFrame, list]:
    """Corrupt one row in a random ``share`` of videos: a negative count, more direct clicks than exposures, a
    missing category, or an exact duplicate. Returns the corrupted logs and the ids touched."""
    ids = logs["video_id"].unique()
    n_bad = int(round(share * ids.size))
    if n_bad == 0:
        return logs, []
    bad_ids = rng.choice(ids, n_bad, replace=False)
    logs = logs.copy()
    logs["category"] = logs["category"].astype(object)
    first_row = logs.reset_index().groupby("video_id")["index"].first()
    extra = []
    for j, vid in enumerate(bad_ids):
        row = int(first_row[vid]) + int(rng.integers(0, 5))
        if logs.at[row, "video_id"] != vid:
            row = int(first_row[vid])
        kind = j % 4
        if kind == 0:
            logs.at[row, "indirect_clicks"] = -1 - int(rng.integers(0, 5))
        elif kind == 1:
            logs.at[row, "direct_clicks"] = int(logs.at[row, "exposed"]) + 1 + int(rng.integers(0, 5))
        elif kind == 2:
            logs.at[row, "category"] = None
        else:
            extra.append(logs.loc[[row]])
    if extra:
        logs = pd.concat([logs, *extra]).sort_values(["video_id", "period"], kind="stable").reset_index(drop=True)
    return logs, list(bad_ids)
