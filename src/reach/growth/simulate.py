"""A panel drawn from the Stage-1 model itself (Eqs. 17-23), in the ingest tables' layout: for recovery tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_growth_panel(n_hashtags: int = 4, videos_per_hashtag: int = 25, days: int = 10, seed: int = 0,
                          mu_alpha0: float = 9.0, mu_beta0: float = 10.0, rel_noise: float = 0.02):
    """Returns (videos, daily, truth). Covariates follow the ingest columns; a_ij, b_ij are drawn from Eqs. 20-23
    with per-hashtag intercepts and slopes; plays from Eq. 17 with relative noise (sd rel_noise * y_ijT), which is
    the "per_video" noise scale of log_growth.stan. truth holds the generating global means."""
    rng = np.random.default_rng(seed)
    n = n_hashtags * videos_per_hashtag
    h = np.repeat(np.arange(n_hashtags), videos_per_hashtag)
    v = pd.DataFrame({
        "video_id": [f"v{j:05d}" for j in range(n)], "hashtag": [f"tag{i}" for i in h],
        "log_followers": rng.normal(11, 2, n), "log_past_avg_hearts": rng.normal(7, 1, n),
        "ranking": rng.integers(1, 100, n), "is_trending": rng.random(n) < 0.5, "has_fyp": rng.random(n) < 0.6,
        "num_trending": rng.poisson(1, n), "num_hashtags": rng.poisson(5, n) + 1, "hashtag_age": rng.poisson(3, n),
        "video_age": rng.lognormal(0.3, 0.6, n), "is_sponsored": rng.random(n) < 0.1,
        "is_verified": rng.random(n) < 0.2,
    })
    # b first (Eq. 21, covariates only), then y_ij1 = B_ij exactly (log 1 = 0), then a (Eq. 20 with y_ij1)
    lf = v["log_followers"].to_numpy(float)
    zf = (lf - lf.mean()) / lf.std()
    zr = np.log(v["ranking"].to_numpy(float))
    zr = (zr - zr.mean()) / zr.std()
    beta0 = mu_beta0 + 0.3 * rng.normal(size=n_hashtags)
    beta_f = 0.5 + 0.05 * rng.normal(size=n_hashtags)
    b = beta0[h] + beta_f[h] * zf - 0.2 * zr + 0.3 * rng.normal(size=n)
    alpha0 = mu_alpha0 + 0.3 * rng.normal(size=n_hashtags)
    alpha_f = 0.4 + 0.05 * rng.normal(size=n_hashtags)
    a = alpha0[h] + alpha_f[h] * zf + 0.3 * rng.normal(size=n)
    t = np.arange(1, days + 1)
    mean = np.exp(a)[:, None] * np.log(t)[None, :] + np.exp(b)[:, None]
    plays = mean + rel_noise * mean[:, -1:] * rng.normal(size=mean.shape)
    plays = np.maximum(1.0, np.round(plays))
    daily = pd.DataFrame({"video_id": np.repeat(v["video_id"].to_numpy(), days), "day": np.tile(t, n),
                          "plays": plays.ravel().astype(np.int64)})
    truth = {"a": a, "b": b, "alpha0": alpha0, "beta0": beta0, "mu_alpha0": mu_alpha0, "mu_beta0": mu_beta0,
             "hashtag_mean_a": np.array([a[h == i].mean() for i in range(n_hashtags)]),
             "hashtag_mean_b": np.array([b[h == i].mean() for i in range(n_hashtags)]),
             "rel_noise": rel_noise}
    return v, daily, truth
