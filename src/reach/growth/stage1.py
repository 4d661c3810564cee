"""Web Appendix G, Stage 1: the panel, the Stan fit (cmdstanpy when CmdStan exists, else pystan 3 / httpstan on
the same .stan file) and what comes out of it (summaries, per-video a and b, hashtag means, Bayesian R^2)."""

from __future__ import annotations

import logging
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reach.growth.diagnostics import bayes_r2, summarise

STAN_FILE = Path(__file__).with_name("log_growth.stan")

# Non-content covariates x^u_ij (Web Appendix A post statistics and the creator's size); transformed as named.
COVARIATES = {
    "log_followers": lambda v: v["log_followers"],
    "log_past_avg_hearts": lambda v: v["log_past_avg_hearts"],
    "log_ranking": lambda v: np.log(v["ranking"].clip(lower=1)),
    "is_trending": lambda v: v["is_trending"].astype(float),
    "has_fyp": lambda v: v["has_fyp"].astype(float),
    "num_trending": lambda v: v["num_trending"].astype(float),
    "num_hashtags": lambda v: v["num_hashtags"].astype(float),
    "log1p_hashtag_age": lambda v: np.log1p(v["hashtag_age"].clip(lower=0)),
    "log_video_age": lambda v: np.log(v["video_age"].clip(lower=1e-3)),
    "is_sponsored": lambda v: v["is_sponsored"].astype(float),
    "is_verified": lambda v: v["is_verified"].astype(float),
}
MIN_DAYS = 3

log = logging.getLogger(__name__)


@dataclass
class Panel:
    """Model data: videos in their earliest hashtag, standardised covariates, daily plays in long form."""

    videos: pd.DataFrame            # video_id, hashtag, h (0-based), n_days, y1, y_last, scale
    hashtags: list[str]
    covariates: list[str]
    X: np.ndarray                   # (N, K) standardised x^u
    y1: np.ndarray                  # (N,) standardised log y_ij1
    video: np.ndarray               # (M,) 0-based video of each observation
    t: np.ndarray                   # (M,) day since first appearance, 1-based
    plays: np.ndarray               # (M,) y_ijt
    noise_scale: str
    dropped: dict = field(default_factory=dict)

    @property
    def Xa(self) -> np.ndarray:
        return np.column_stack([self.X, self.y1])


def build_panel(videos: pd.DataFrame, daily: pd.DataFrame, noise_scale: str = "per_video",
                max_videos_per_hashtag: int | None = None, seed: int = 0) -> Panel:
    """Join ingest videos and daily plays. Videos with fewer than MIN_DAYS days or no plays on day 1 are dropped
    (counted in ``dropped``); with ``max_videos_per_hashtag`` a seeded subsample per hashtag is kept."""
    need = {"video_id", "hashtag", *["log_followers", "log_past_avg_hearts", "ranking", "is_trending", "has_fyp",
                                     "num_trending", "num_hashtags", "hashtag_age", "video_age", "is_sponsored",
                                     "is_verified"]}
    missing = need - set(videos.columns)
    if missing:
        raise ValueError(f"videos table lacks columns {sorted(missing)}")
    if not {"video_id", "day", "plays"} <= set(daily.columns):
        raise ValueError(f"daily plays table needs video_id, day, plays; has {list(daily.columns)}")
    if noise_scale not in ("per_video", "common"):
        raise ValueError(f"noise_scale must be per_video or common, got {noise_scale!r}")
    d = daily[daily["video_id"].isin(videos["video_id"])].sort_values(["video_id", "day"])
    if (d["day"] < 1).any():
        raise ValueError(f"daily plays: day must start at 1 (video {d.loc[d['day'] < 1, 'video_id'].iloc[0]})")
    per = d.groupby("video_id").agg(n_days=("day", "size"), first_day=("day", "min"))
    y1 = d[d["day"] == 1].set_index("video_id")["plays"]
    y_last = d.groupby("video_id")["plays"].last()
    v = videos.set_index("video_id").join(per, how="left").join(y1.rename("y1_raw")).join(y_last.rename("y_last"))
    ok = (v["n_days"].fillna(0) >= MIN_DAYS) & (v["y1_raw"].fillna(0) > 0) & (v["y_last"].fillna(0) > 0)
    dropped = {"fewer_than_min_days_or_no_day1_plays": int((~ok).sum())}
    v = v[ok].reset_index()
    hashtags = sorted(v["hashtag"].unique())
    v["h"] = v["hashtag"].map({h: i for i, h in enumerate(hashtags)}).astype(int)
    v = v.sort_values(["h", "video_id"], kind="stable").reset_index(drop=True)  # the .stan file wants blocks
    cols, xs = [], []
    for name, f in COVARIATES.items():
        x = np.asarray(f(v), dtype=float)
        sd = x.std()
        if not np.isfinite(sd) or sd == 0:
            dropped[f"constant_covariate:{name}"] = 1
            continue
        cols.append(name)
        xs.append((x - x.mean()) / sd)
    X = np.column_stack(xs) if xs else np.zeros((len(v), 0))
    ly1 = np.log(v["y1_raw"].to_numpy(float))
    y1s = (ly1 - ly1.mean()) / (ly1.std() or 1.0)
    pos = pd.Series(np.arange(len(v)), index=v["video_id"])
    d = d[d["video_id"].isin(pos.index)]
    if noise_scale == "per_video":
        scale = v["y_last"].to_numpy(float)
    else:
        scale = np.full(len(v), float(np.median(v["y_last"])))
    v["scale"] = scale
    out = v[["video_id", "hashtag", "h", "n_days", "y1_raw", "y_last", "scale"]].rename(columns={"y1_raw": "y1"})
    panel = Panel(videos=out, hashtags=hashtags, covariates=cols, X=X, y1=y1s,
                  video=pos.loc[d["video_id"]].to_numpy(), t=d["day"].to_numpy(int), plays=d["plays"].to_numpy(float),
                  noise_scale=noise_scale, dropped=dropped)
    if max_videos_per_hashtag is not None:
        panel = subsample(panel, max_videos_per_hashtag, seed)[0]
    return panel


def subset(panel: Panel, keep: np.ndarray) -> Panel:
    """The rows ``keep`` (boolean over videos) of a panel; covariates keep the full panel's standardisation."""
    keep = np.asarray(keep, dtype=bool)
    new = np.cumsum(keep) - 1
    obs = keep[panel.video]
    return Panel(videos=panel.videos[keep].reset_index(drop=True), hashtags=panel.hashtags,
                 covariates=panel.covariates, X=panel.X[keep], y1=panel.y1[keep], video=new[panel.video[obs]],
                 t=panel.t[obs], plays=panel.plays[obs], noise_scale=panel.noise_scale, dropped=dict(panel.dropped))


def subsample(panel: Panel, max_videos_per_hashtag: int, seed: int) -> tuple[Panel, Panel]:
    """Scale switch for NUTS: a seeded subsample of at most ``max_videos_per_hashtag`` videos per hashtag (every
    hashtag keeps at least one); returns (subsample, the rest)."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(panel.videos), dtype=bool)
    for _, idx in panel.videos.groupby("h").indices.items():
        keep[rng.choice(idx, size=min(idx.size, max_videos_per_hashtag), replace=False)] = True
    fit, rest = subset(panel, keep), subset(panel, ~keep)
    fit.dropped["subsampled_out"] = int((~keep).sum())
    return fit, rest


def stan_data(panel: Panel, prior_sd: float = 10.0, ig_shape: float = 1.0, ig_scale: float = 1e-4) -> dict:
    v = panel.videos
    a0, b0 = _ols_start(panel)
    h = v["h"].to_numpy()
    if np.any(np.diff(h) < 0):
        raise ValueError("panel videos must be sorted by hashtag")
    H = len(panel.hashtags)
    size = np.bincount(h, minlength=H)
    if (size == 0).any():
        raise ValueError(f"hashtag {panel.hashtags[int(np.argmin(size))]} has no videos")
    start = np.concatenate([[0], np.cumsum(size)[:-1]]) + 1
    return {"start": start.tolist(), "size": size.tolist(),
        "N": len(v), "H": len(panel.hashtags), "K": panel.X.shape[1], "M": panel.plays.size,
        "hashtag": (v["h"].to_numpy() + 1).tolist(), "X": panel.X, "y1": panel.y1,
        "video": (panel.video + 1).tolist(), "log_t": np.log(panel.t.astype(float)),
        "y": panel.plays / v["scale"].to_numpy()[panel.video], "log_s": np.log(v["scale"].to_numpy()),
        "a_loc": float(np.median(a0)), "b_loc": float(np.median(b0)), "prior_sd": float(prior_sd),
        "ig_shape": float(ig_shape), "ig_scale": float(ig_scale),
    }


def _ols_start(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """Per-video least squares of plays on [log t, 1] (Eq. 17 without the hierarchy): starting values only."""
    n = len(panel.videos)
    lt = np.log(panel.t.astype(float))
    s0 = np.bincount(panel.video, minlength=n).astype(float)
    s1 = np.bincount(panel.video, lt, n)
    s2 = np.bincount(panel.video, lt * lt, n)
    sy = np.bincount(panel.video, panel.plays, n)
    sty = np.bincount(panel.video, lt * panel.plays, n)
    det = s0 * s2 - s1 * s1
    A = (s0 * sty - s1 * sy) / np.where(det > 0, det, np.nan)
    B = (sy - A * s1) / s0
    y_last = panel.videos["y_last"].to_numpy(float)
    A = np.where(np.isfinite(A) & (A > 1e-3 * y_last), A, 1e-3 * y_last + 1.0)
    B = np.where(np.isfinite(B) & (B > 1e-3 * y_last), B, panel.videos["y1"].to_numpy(float))
    return np.log(A), np.log(B)


def initial_values(panel: Panel, data: dict, chains: int, seed: int) -> list[dict]:
    """Starting points near the per-video least squares fit (jittered per chain), so warm-up does not spend its
    time walking a_ij from Stan's default uniform(-2, 2) to ~10."""
    a0, b0 = _ols_start(panel)
    rng = np.random.default_rng(seed)
    H, K = data["H"], data["K"]
    h = panel.videos["h"].to_numpy()
    inits = []
    for _ in range(chains):
        a = a0 + 0.01 * rng.normal(size=a0.size)
        b = b0 + 0.01 * rng.normal(size=b0.size)
        ah = np.array([a[h == i].mean() for i in range(H)])
        bh = np.array([b[h == i].mean() for i in range(H)])
        sa = np.array([max(a[h == i].std(), 0.05) for i in range(H)])
        sb = np.array([max(b[h == i].std(), 0.05) for i in range(H)])
        inits.append({
            "a": a.tolist(), "b": b.tolist(), "tau": 0.05,
            "mu_alpha0": float(ah.mean()), "mu_beta0": float(bh.mean()),
            "sigma_alpha0": float(max(ah.std(), 0.05)), "sigma_beta0": float(max(bh.std(), 0.05)),
            "z_alpha0": ((ah - ah.mean()) / max(ah.std(), 0.05)).tolist(),
            "z_beta0": ((bh - bh.mean()) / max(bh.std(), 0.05)).tolist(),
            "mu_alpha": (0.01 * rng.normal(size=K + 1)).tolist(), "mu_beta": (0.01 * rng.normal(size=K)).tolist(),
            "sigma_alpha": 0.1, "sigma_beta": 0.1,
            "z_alpha": (0.1 * rng.normal(size=(H, K + 1))).tolist(), "z_beta": (0.1 * rng.normal(size=(H, K))).tolist(),
            "sigma_a": sa.tolist(), "sigma_b": sb.tolist(),
        })
    return inits


def stan_backend() -> str:
    """cmdstanpy if a CmdStan installation is found, else pystan (httpstan)."""
    try:
        import cmdstanpy

        cmdstanpy.cmdstan_path()
        return "cmdstanpy"
    except Exception:  # no cmdstanpy, or no CmdStan installation
        return "pystan"


def _import_pystan():
    """pystan 3.10 imports pkg_resources only to list plugin entry points; setuptools >= 81 no longer ships it.
    A stand-in backed by importlib.metadata keeps that one call working."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import importlib.metadata as md

        shim = types.ModuleType("pkg_resources")
        shim.EntryPoint = md.EntryPoint
        shim.iter_entry_points = lambda group, name=None: iter(
            ep for ep in md.entry_points(group=group) if name is None or ep.name == name)
        sys.modules["pkg_resources"] = shim
    import stan

    return stan


PARAMS = ["a", "b", "tau", "mu_alpha0", "mu_beta0", "sigma_alpha0", "sigma_beta0", "alpha0", "beta0", "mu_alpha",
          "mu_beta", "sigma_alpha", "sigma_beta", "alpha", "beta", "sigma_a", "sigma_b"]


@dataclass
class Fit:
    draws: dict[str, np.ndarray]    # name -> (chains, draws, *dims)
    backend: str
    method: str
    seconds: float
    divergences: int
    max_treedepth_hits: int
    settings: dict
    mean_leapfrog: float = float("nan")
    mean_stepsize: float = float("nan")


def fit_stan(data: dict, inits: list[dict], *, backend: str, method: str = "nuts", chains: int = 4,
             warmup: int = 500, samples: int = 500, adapt_delta: float = 0.8, max_treedepth: int = 10,
             seed: int = 0, parallel_chains: int = 2, output_dir: str | None = None) -> Fit:
    """Run log_growth.stan. method: nuts (both backends); pathfinder or variational (cmdstanpy only: pystan 3
    exposes NUTS alone)."""
    settings = dict(method=method, chains=chains, warmup=warmup, samples=samples, adapt_delta=adapt_delta,
                    max_treedepth=max_treedepth, seed=seed)
    code = STAN_FILE.read_text()
    t0 = time.perf_counter()
    if backend == "pystan":
        if method != "nuts":
            raise ValueError(f"growth.method {method!r} needs cmdstanpy (CmdStan); pystan 3 runs NUTS only")
        stan = _import_pystan()
        post = stan.build(code, data=_jsonable(data), random_seed=int(seed))
        t0 = time.perf_counter()  # compile time is not fit time (cached after the first build)
        fit = post.sample(num_chains=chains, num_warmup=warmup, num_samples=samples, delta=adapt_delta,
                          max_depth=max_treedepth, init=[_jsonable(i) for i in inits])
        secs = time.perf_counter() - t0

        def get(name):
            x = np.asarray(fit[name])
            dims = tuple(fit.dims[fit.param_names.index(name)])
            x = x.reshape(*dims, samples, chains)
            return np.moveaxis(np.moveaxis(x, -1, 0), -1, 1)  # (chains, draws, *dims)

        draws = {n: get(n) for n in PARAMS}
        div = int(np.asarray(fit["divergent__"]).sum())
        depth = int((np.asarray(fit["treedepth__"]) >= max_treedepth).sum())
        leapfrog = float(np.asarray(fit["n_leapfrog__"]).mean())
        step = float(np.asarray(fit["stepsize__"]).mean())
    elif backend == "cmdstanpy":
        import cmdstanpy

        model = cmdstanpy.CmdStanModel(stan_file=str(STAN_FILE))
        t0 = time.perf_counter()
        if method == "nuts":
            fit = model.sample(data=data, chains=chains, parallel_chains=parallel_chains, iter_warmup=warmup,
                               iter_sampling=samples, adapt_delta=adapt_delta, max_treedepth=max_treedepth,
                               seed=seed, inits=inits, output_dir=output_dir, show_progress=False)
            n_ch = chains
            mv = fit.method_variables()
            div = int(mv["divergent__"].sum())
            depth = int((mv["treedepth__"] >= max_treedepth).sum())
            leapfrog, step = float(mv["n_leapfrog__"].mean()), float(mv["stepsize__"].mean())
        elif method == "pathfinder":
            fit = model.pathfinder(data=data, seed=seed, draws=samples * chains, inits=inits[0],
                                   output_dir=output_dir, show_console=False)
            n_ch, div, depth, leapfrog, step = 1, 0, 0, float('nan'), float('nan')
        elif method == "variational":
            fit = model.variational(data=data, seed=seed, draws=samples * chains, inits=inits[0],
                                    output_dir=output_dir, require_converged=False)
            n_ch, div, depth, leapfrog, step = 1, 0, 0, float('nan'), float('nan')
        else:
            raise ValueError(f"growth.method must be nuts, pathfinder or variational, got {method!r}")
        secs = time.perf_counter() - t0
        draws = {}
        for n in PARAMS:
            x = np.asarray(fit.stan_variable(n))
            draws[n] = x.reshape(n_ch, -1, *x.shape[1:])
    else:
        raise ValueError(f"unknown Stan backend {backend!r}")
    return Fit(draws=draws, backend=backend, method=method, seconds=secs, divergences=div,
               max_treedepth_hits=depth, settings=settings, mean_leapfrog=leapfrog, mean_stepsize=step)


def _jsonable(d: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def covariate_parts(panel: Panel, fit: Fit) -> dict[str, np.ndarray]:
    """Per-draw covariate parts (draws, N): hashtag-level alpha_0i + [x, y1]'alpha_i (Eq. 20) and the global
    mu_alpha0 + [x, y1]'mu_alpha (Eq. 25); the same for b (Eqs. 21, 26)."""
    d = fit.draws
    h = panel.videos["h"].to_numpy()
    Xa, X = panel.Xa, panel.X
    alpha0, alpha = _flat(d["alpha0"]), _flat(d["alpha"])  # (S, H), (S, H, K+1)
    beta0, beta = _flat(d["beta0"]), _flat(d["beta"])
    return {
        "a_hat_hashtag": alpha0[:, h] + np.einsum("nk,snk->sn", Xa, alpha[:, h, :]),
        "b_hat_hashtag": beta0[:, h] + np.einsum("nk,snk->sn", X, beta[:, h, :]),
        "a_hat_global": _flat(d["mu_alpha0"])[:, None] + _flat(d["mu_alpha"]) @ Xa.T,
        "b_hat_global": _flat(d["mu_beta0"])[:, None] + _flat(d["mu_beta"]) @ X.T,
    }


def hashtag_means(panel: Panel, fit: Fit) -> dict[str, np.ndarray]:
    """Hashtag-level means of a and b, draws shaped (chains, draws, H):
    model_*: alpha_0i + mean_j([x, y1]_ij)'alpha_i, the hierarchical mean of a_ij in hashtag i (Eq. 20);
    sample_*: mean over the hashtag's videos of a_ij (the finite-sample hashtag mean)."""
    d = fit.draws
    h = panel.videos["h"].to_numpy()
    H = len(panel.hashtags)
    counts = np.bincount(h, minlength=H).astype(float)
    onehot = np.zeros((panel.X.shape[0], H))
    onehot[np.arange(h.size), h] = 1.0 / counts[h]
    xa_bar = onehot.T @ panel.Xa  # (H, K+1)
    x_bar = onehot.T @ panel.X
    return {
        "model_a": d["alpha0"] + np.einsum("hk,cshk->csh", xa_bar, d["alpha"]),
        "model_b": d["beta0"] + np.einsum("hk,cshk->csh", x_bar, d["beta"]),
        "sample_a": d["a"] @ onehot,
        "sample_b": d["b"] @ onehot,
    }


def summaries(panel: Panel, fit: Fit) -> pd.DataFrame:
    """Posterior summaries of the reported parameters (global, hashtag-level, hashtag means) and of a, b."""
    d = fit.draws
    K = panel.covariates
    rows = []
    for n in ["tau", "mu_alpha0", "mu_beta0", "sigma_alpha0", "sigma_beta0", "sigma_alpha", "sigma_beta"]:
        rows += [dict(r, group="global") for r in summarise(n, d[n])]
    rows += [dict(r, group="global") for r in summarise("mu_alpha", d["mu_alpha"],
                                                      [f"mu_alpha[{c}]" for c in K + ["log_y1"]])]
    rows += [dict(r, group="global") for r in summarise("mu_beta", d["mu_beta"], [f"mu_beta[{c}]" for c in K])]
    tags = panel.hashtags
    for n in ["alpha0", "beta0", "sigma_a", "sigma_b"]:
        rows += [dict(r, group="hashtag") for r in summarise(n, d[n], [f"{n}[{t}]" for t in tags])]
    rows += [dict(r, group="hashtag") for r in summarise(
        "alpha", d["alpha"], [f"alpha[{t},{c}]" for t in tags for c in K + ["log_y1"]])]
    rows += [dict(r, group="hashtag") for r in summarise(
        "beta", d["beta"], [f"beta[{t},{c}]" for t in tags for c in K])]
    for n, x in hashtag_means(panel, fit).items():
        rows += [dict(r, group="hashtag_mean") for r in summarise(n, x, [f"{n}[{t}]" for t in tags])]
    vids = panel.videos["video_id"].tolist()
    for n in ["a", "b"]:
        rows += [dict(r, group="video") for r in summarise(n, d[n], [f"{n}[{v}]" for v in vids])]
    return pd.DataFrame(rows)


def video_table(panel: Panel, fit: Fit, parts: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per-video posterior means (and sds) of a, b and of their covariate parts (hashtag-level and global)."""
    a, b = _flat(fit.draws["a"]), _flat(fit.draws["b"])
    out = panel.videos[["video_id", "hashtag", "n_days"]].copy()
    out["a_mean"], out["a_sd"] = a.mean(0), a.std(0, ddof=1)
    out["b_mean"], out["b_sd"] = b.mean(0), b.std(0, ddof=1)
    for k, x in parts.items():
        out[k] = x.mean(0)
    return out


def r2_table(fit: Fit, parts: dict[str, np.ndarray]) -> pd.DataFrame:
    """Bayesian R^2 (Gelman et al. 2019) of a and b explained by the non-content covariates: with the hashtag
    coefficients (Eqs. 20-21, the paper's ~33%) and with the global means alone (Eqs. 25-26)."""
    rows = []
    for target in ("a", "b"):
        y = _flat(fit.draws[target])
        for level in ("hashtag", "global"):
            r2 = bayes_r2(y, parts[f"{target}_hat_{level}"])
            q = np.quantile(r2, [0.05, 0.5, 0.95])
            rows.append({"target": target, "covariate_part": level, "mean": float(r2.mean()), "q05": float(q[0]),
                         "q50": float(q[1]), "q95": float(q[2]), "draws": int(r2.size)})
    return pd.DataFrame(rows)


def conditional_map(full: Panel, fit: Fit, iters: int = 40) -> pd.DataFrame:
    """For videos left out of a subsampled NUTS fit: the mode of (a_ij, b_ij) given the posterior means of the
    hashtag-level and noise parameters (Eqs. 17-21 with those plugged in), by batched Gauss-Newton (Levenberg
    damping) from the per-video least squares start. Videos must be in hashtags of the fit; returns the same
    columns as video_table (sds NaN: no posterior), covariate parts computed with the posterior means. ``full``
    is a panel from subsample(): same hashtags and standardisation as the fitted one."""
    d = fit.draws
    mean = {k: _flat(v).mean(0) for k, v in d.items() if k not in ("a", "b")}
    h = full.videos["h"].to_numpy()
    Xa, X = full.Xa, full.X
    mu_a = mean["alpha0"][h] + np.einsum("nk,nk->n", Xa, mean["alpha"][h])
    mu_b = mean["beta0"][h] + np.einsum("nk,nk->n", X, mean["beta"][h])
    sa, sb, tau = mean["sigma_a"][h], mean["sigma_b"][h], float(mean["tau"])
    a, b = _ols_start(full)
    ls = np.log(full.videos["scale"].to_numpy(float))
    lt = np.log(full.t.astype(float))
    y = full.plays / np.exp(ls)[full.video]
    n = len(full.videos)
    lam = np.full(n, 1e-3)

    def objective(a, b):
        r = y - np.exp(a - ls)[full.video] * lt - np.exp(b - ls)[full.video]
        return (0.5 * np.bincount(full.video, r * r, n) / tau**2 + 0.5 * ((a - mu_a) / sa) ** 2
                + 0.5 * ((b - mu_b) / sb) ** 2)

    f = objective(a, b)
    for _ in range(iters):
        A, B = np.exp(a - ls), np.exp(b - ls)
        r = y - A[full.video] * lt - B[full.video]
        ja, jb = A[full.video] * lt, B[full.video]  # d(fit)/da, d(fit)/db
        g_a = -np.bincount(full.video, r * ja, n) / tau**2 + (a - mu_a) / sa**2
        g_b = -np.bincount(full.video, r * jb, n) / tau**2 + (b - mu_b) / sb**2
        h_aa = np.bincount(full.video, ja * ja, n) / tau**2 + 1 / sa**2
        h_bb = np.bincount(full.video, jb * jb, n) / tau**2 + 1 / sb**2
        h_ab = np.bincount(full.video, ja * jb, n) / tau**2
        h_aa, h_bb = h_aa * (1 + lam), h_bb * (1 + lam)
        det = h_aa * h_bb - h_ab**2
        da = -(h_bb * g_a - h_ab * g_b) / det
        db = -(h_aa * g_b - h_ab * g_a) / det
        a_new, b_new = a + np.clip(da, -2, 2), b + np.clip(db, -2, 2)
        f_new = objective(a_new, b_new)
        better = f_new < f
        a, b, f = np.where(better, a_new, a), np.where(better, b_new, b), np.where(better, f_new, f)
        lam = np.where(better, lam / 3, lam * 10)
    out = full.videos[["video_id", "hashtag", "n_days"]].copy()
    out["a_mean"], out["a_sd"], out["b_mean"], out["b_sd"] = a, np.nan, b, np.nan
    out["a_hat_hashtag"], out["b_hat_hashtag"] = mu_a, mu_b
    out["a_hat_global"] = mean["mu_alpha0"] + Xa @ mean["mu_alpha"]
    out["b_hat_global"] = mean["mu_beta0"] + X @ mean["mu_beta"]
    return out
