"""Category calibration and out-of-sample evaluation (paper 2, Section 6.2).

Videos are held as a padded panel (video x period). Each video's first ``fit_share`` (60%) of periods are for
fitting and the rest for testing. Group estimation: one (p, q) per category, pooling the fitting rows of its
videos (Section 6.2, item ii). The time-decay factor gamma is chosen on a grid by validation error (item i): the
last ``validation_share`` of each video's fitting periods is held out, the category estimates are refitted on
the rest for every gamma, and the gamma with the lowest mean validation WMAPE wins; then the estimates are
refitted on the whole fitting window with it.

Forecasts for WMAPE are rollouts: from the realised cumulative adopters at the start of a window, the
deterministic dynamics (Eq. 2 with the observed promotion fractions; Eq. 1 for the BDM) run to the window's end.
WMAPE_v = sum_t |a_hat - a| / sum_t a over the window (Section 6.2.2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from reach.diffusion.dynamics import bass_adopters, simulate_pbdm
from reach.diffusion.estimators import METHODS, Observations

P_BDM, BDM = "P-BDM", "BDM"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Panel:
    video_id: np.ndarray        # (V,)
    category: np.ndarray        # (V,) integer codes into ``categories``
    categories: np.ndarray      # (K,) names
    length: np.ndarray          # (V,) observed periods
    direct: np.ndarray          # (V, T) padded with 0
    indirect: np.ndarray
    exposed: np.ndarray
    A_prev: np.ndarray          # cumulative adopters before each period
    market: float

    @property
    def new(self) -> np.ndarray:
        return self.direct + self.indirect


def panel_from_logs(clean: pd.DataFrame, market: float) -> Panel:
    """The validated logs (contiguous periods 0..n-1 per video, sorted, with A_prev) as a padded panel."""
    vid, first = np.unique(clean["video_id"].to_numpy(), return_index=True)
    order = np.argsort(first)
    vid, first = vid[order], first[order]
    row_video = np.repeat(np.arange(vid.size), np.diff(np.append(first, len(clean))))
    length = np.bincount(row_video, minlength=vid.size)
    period = clean["period"].to_numpy()
    T = int(length.max()) if vid.size else 0
    cats, codes = np.unique(clean["category"].to_numpy()[first].astype(str), return_inverse=True)

    def pad(col):
        out = np.zeros((vid.size, T))
        out[row_video, period] = clean[col].to_numpy(float)
        return out

    return Panel(vid, codes, cats, length, pad("direct_clicks"), pad("indirect_clicks"), pad("exposed"),
                 pad("A_prev"), float(market))


def fit_end(panel: Panel, share: float) -> np.ndarray:
    """First period after the fitting window per video: floor(share * length), at least 1."""
    return np.maximum(1, np.floor(share * panel.length).astype(np.int64))


def window_mask(panel: Panel, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    t = np.arange(panel.direct.shape[1])[None, :]
    return (t >= np.asarray(start)[:, None]) & (t < np.asarray(end)[:, None])


def window_rows(panel: Panel, start, end, gamma: float, model: str) -> tuple[Observations, np.ndarray]:
    """Estimation rows of the periods [start_v, end_v) of every video and each row's category code."""
    obs, cat, age = _rows(panel, start, end, model)
    return _with_decay(obs, age, gamma), cat


def _rows(panel: Panel, start, end, model: str) -> tuple[Observations, np.ndarray, np.ndarray]:
    """Rows of [start_v, end_v) without decay (decay = 1), their category codes and ages."""
    mask = window_mask(panel, np.broadcast_to(start, panel.length.shape), end)
    age = np.broadcast_to(np.arange(panel.direct.shape[1]), mask.shape)[mask].astype(float)
    obs = Observations.build(panel.direct[mask], panel.indirect[mask], panel.exposed[mask] / panel.market,
                             panel.A_prev[mask], panel.market, 1.0)
    if model == BDM:
        obs = obs.as_bass()
    elif model != P_BDM:
        raise ValueError(f"model must be {P_BDM!r} or {BDM!r}")
    cat = np.broadcast_to(panel.category[:, None], mask.shape)[mask]
    return obs, cat, age


def _with_decay(obs: Observations, age: np.ndarray, gamma: float) -> Observations:
    return Observations(obs.direct, obs.indirect, obs.x, obs.A_prev, obs.m, np.power(gamma, age))


def _group_ols(obs: Observations, cat: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """OLS per category from the 2x2 normal equations (identical to lstsq per group; see the tests)."""
    x1 = obs.m * obs.x
    x2 = obs.decay * obs.A_prev * (1.0 - obs.A_prev / obs.m)
    y = obs.new
    s11, s12, s22 = (np.bincount(cat, w, K) for w in (x1 * x1, x1 * x2, x2 * x2))
    b1, b2 = np.bincount(cat, x1 * y, K), np.bincount(cat, x2 * y, K)
    det = s11 * s22 - s12 * s12
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(det > 0, (s22 * b1 - s12 * b2) / det, np.nan)
        q = np.where(det > 0, (s11 * b2 - s12 * b1) / det, np.nan)
    return p, q


def _group_d_ols(obs: Observations, cat: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """D-OLS per category: the two closed forms of Section 5.1 summed within each category."""
    z = obs.decay * obs.A_prev * (1.0 - obs.x - obs.A_prev / obs.m)
    zz = np.bincount(cat, z * z, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(zz > 0, np.bincount(cat, z * obs.indirect, K) / zz, np.nan)
        mx = obs.m * obs.x
        xx = np.bincount(cat, mx * mx, K)
        p = np.where(xx > 0, np.bincount(cat, mx * (obs.direct - q[cat] * obs.decay * obs.A_prev * obs.x), K) / xx,
                     np.nan)
    return p, q


def estimate_categories(panel: Panel, start, end, gamma: float, model: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(p, q) per category from the rows [start_v, end_v) of its videos."""
    obs, cat = window_rows(panel, start, end, gamma, model)
    return _estimate(obs, cat, panel.categories, model, method)


def _estimate(obs: Observations, cat: np.ndarray, categories: np.ndarray, model: str,
              method: str) -> tuple[np.ndarray, np.ndarray]:
    K = categories.size
    if method == "OLS":
        return _group_ols(obs, cat, K)
    if method == "D-OLS":
        return _group_d_ols(obs, cat, K)
    if method in ("MLE", "D-MLE"):
        p, q = np.full(K, np.nan), np.full(K, np.nan)
        order = np.argsort(cat, kind="stable")
        bounds = np.searchsorted(cat[order], np.arange(K + 1))
        for k in range(K):
            rows = order[bounds[k]:bounds[k + 1]]
            if rows.size:
                est = METHODS[method](obs.subset(rows))
                p[k], q[k] = est.p, est.q
                if not est.converged:
                    log.warning("%s %s, category %s: optimiser did not report convergence (p=%.4g, q=%.4g)",
                                model, method, categories[k], est.p, est.q)
        return p, q
    raise ValueError(f"unknown method {method!r}")


def _window_forecast(panel: Panel, p_v, q_v, gamma: float, model: str, start,
                     end) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rollouts over [start_v, end_v) as compact (V, span) arrays: (forecast, actual, valid, period index)."""
    T = panel.direct.shape[1]
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    span = max(int((end - start).max()) if start.size else 0, 0)
    idx = start[:, None] + np.arange(span)[None, :]
    valid = idx < end[:, None]
    idx_c = np.minimum(idx, T - 1)
    actual = np.where(valid, np.take_along_axis(panel.direct, idx_c, axis=1)
                      + np.take_along_axis(panel.indirect, idx_c, axis=1), 0.0)
    if span == 0:
        return np.zeros_like(actual), actual, valid, idx
    A0 = panel.A_prev[np.arange(idx.shape[0]), np.minimum(start, T - 1)]
    if model == P_BDM:
        x = np.where(valid, np.take_along_axis(panel.exposed, idx_c, axis=1) / panel.market, 0.0)
        path = simulate_pbdm(p_v, q_v, panel.market, x, gamma=gamma, age0=start, A0=A0)
    else:
        path = bass_adopters(p_v, q_v, panel.market, span, gamma=gamma, age0=start, A0=A0)
    return np.where(valid, path.new, 0.0), actual, valid, idx


def forecast(panel: Panel, p_v: np.ndarray, q_v: np.ndarray, gamma: float, model: str, start: np.ndarray,
             end: np.ndarray) -> np.ndarray:
    """Rollout forecasts of new adopters over [start_v, end_v) per video (padded to the panel; 0 elsewhere),
    starting from the realised A at start_v and using the observed promotion fractions (P-BDM)."""
    a_hat, _, valid, idx = _window_forecast(panel, p_v, q_v, gamma, model, start, end)
    out = np.zeros_like(panel.direct)
    rows = np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape)
    out[rows[valid], idx[valid]] = a_hat[valid]
    return out


def _wmape(a_hat: np.ndarray, actual: np.ndarray) -> np.ndarray:
    tot = actual.sum(axis=1)
    err = np.abs(a_hat - actual).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tot > 0, err / tot, np.nan)


def wmape(panel: Panel, a_hat: np.ndarray, start, end) -> np.ndarray:
    """WMAPE per video over [start_v, end_v): sum |a_hat - a| / sum a (NaN where no adopters)."""
    mask = window_mask(panel, np.broadcast_to(start, panel.length.shape), end)
    return _wmape(np.where(mask, a_hat, 0.0), np.where(mask, panel.new, 0.0))


def evaluate(panel: Panel, p_k, q_k, gamma, model, fit_start, fit_stop, test_stop) -> np.ndarray:
    """Per-video WMAPE over [fit_stop, test_stop) of category estimates (p_k, q_k)."""
    p_v, q_v = np.asarray(p_k)[panel.category], np.asarray(q_k)[panel.category]
    a_hat, actual, _, _ = _window_forecast(panel, p_v, q_v, gamma, model, fit_stop, test_stop)
    return _wmape(a_hat, actual)


def select_gamma(panel: Panel, grid, model: str, method: str, fit_share: float,
                 validation_share: float) -> tuple[float, pd.DataFrame]:
    """gamma with the lowest mean validation WMAPE (validation = last ``validation_share`` of each video's
    fitting window)."""
    stop = fit_end(panel, fit_share)
    inner = np.maximum(1, np.floor((1.0 - validation_share) * stop).astype(np.int64))
    zero = np.zeros_like(stop)
    base, cat, age = _rows(panel, zero, inner, model)
    rows = []
    for g in grid:
        p_k, q_k = _estimate(_with_decay(base, age, float(g)), cat, panel.categories, model, method)
        w = evaluate(panel, p_k, q_k, float(g), model, zero, inner, stop)
        rows.append((model, method, float(g), float(np.nanmean(w)), float(np.nanmedian(w))))
    table = pd.DataFrame(rows, columns=["model", "method", "gamma", "validation_wmape_mean", "validation_wmape_median"])
    best = float(table.loc[table["validation_wmape_mean"].idxmin(), "gamma"])
    return best, table


def pq_correlation_test(p: np.ndarray, q: np.ndarray) -> dict:
    """Pearson correlation of category estimates and the one-tailed t-test of H0: rho >= 0 (Section 6.2.1):
    t = r sqrt(n - 2) / sqrt(1 - r^2), critical value t_{0.05, n-2}."""
    ok = np.isfinite(p) & np.isfinite(q)
    n = int(ok.sum())
    r, _ = stats.pearsonr(p[ok], q[ok])
    t = float(r * np.sqrt(n - 2) / np.sqrt(1 - r * r))
    return {"n": n, "pearson_r": float(r), "t_statistic": t, "p_value_one_tailed": float(stats.t.cdf(t, n - 2)),
            "critical_t_0.05": float(stats.t.ppf(0.05, n - 2))}


def paired_wmape_tests(per_video: pd.DataFrame, better: str, worse: str, alpha: float = 0.05) -> dict:
    """Paired t-test of per-video WMAPE (``better`` minus ``worse``; negative t: ``better`` is more accurate),
    overall and per category (Section 6.2.2), with the count of categories improved / worse / unchanged."""
    wide = per_video.pivot_table(index=["video_id", "category"], columns="label", values="wmape").dropna()
    diff = wide[better] - wide[worse]
    t, pval = stats.ttest_rel(wide[better], wide[worse])
    per_cat = []
    for cat, d in diff.groupby(level="category"):
        if d.size >= 3 and d.std() > 0:
            tc, pc = stats.ttest_1samp(d, 0.0)
        else:
            tc, pc = np.nan, np.nan
        per_cat.append((cat, d.size, float(d.mean()), float(tc), float(pc)))
    per_cat = pd.DataFrame(per_cat, columns=["category", "videos", "mean_difference", "t_statistic", "p_value"])
    sig = per_cat["p_value"] < alpha
    return {
        "better": better, "worse": worse, "videos": int(diff.size), "mean_difference": float(diff.mean()),
        "t_statistic": float(t), "p_value_two_sided": float(pval),
        "critical_t_0.05_one_tailed": float(stats.t.ppf(alpha, diff.size - 1)),
        "categories_improved": int((sig & (per_cat["t_statistic"] < 0)).sum()),
        "categories_worse": int((sig & (per_cat["t_statistic"] > 0)).sum()),
        "categories_unchanged": int((~sig).sum()),
        "per_category": per_cat,
    }


# (model, method) pairs estimated per category; the label names each in the WMAPE tables
MODEL_METHODS = ((P_BDM, "D-OLS"), (P_BDM, "OLS"), (P_BDM, "D-MLE"), (P_BDM, "MLE"), (BDM, "OLS"), (BDM, "MLE"))
GRID_SELECTED = {"OLS", "D-OLS"}  # closed forms: cheap enough to refit on every grid point


@dataclass
class Calibration:
    estimates: pd.DataFrame      # category, model, method, gamma, p, q, videos, rows
    gamma_search: pd.DataFrame   # model, method, gamma, validation WMAPE
    per_video: pd.DataFrame      # video_id, category, label, wmape (test window)
    wmape: pd.DataFrame          # label, model, method, gamma, mean / median / pooled test WMAPE, videos
    tests: dict                  # paired tests, p-q correlation test


def label(model: str, method: str) -> str:
    return f"{model} {method}"


def calibrate(panel: Panel, grid, fit_share: float = 0.6, validation_share: float = 0.25,
              model_methods=MODEL_METHODS, progress=None) -> Calibration:
    """Section 6.2 end to end: gamma per (model, method) on the grid for the closed-form methods (the MLEs use
    the gamma chosen for the same model's D-OLS, or OLS for the BDM), category estimates on each video's fitting
    window, test-window WMAPE per video, and the paired tests."""
    stop = fit_end(panel, fit_share)
    zero = np.zeros_like(stop)
    chosen, searches, est_rows, wm_rows = {}, [], [], []
    videos_k = np.bincount(panel.category, minlength=panel.categories.size)
    rows_k = np.bincount(panel.category, weights=stop, minlength=panel.categories.size).astype(np.int64)
    pairs = list(model_methods) if progress is None else progress(list(model_methods))
    for model, method in pairs:
        if method in GRID_SELECTED:
            g, table = select_gamma(panel, grid, model, method, fit_share, validation_share)
            searches.append(table)
        else:
            g = chosen.get((model, "D-OLS"), chosen.get((model, "OLS"), 1.0))
        chosen[(model, method)] = g
        p_k, q_k = estimate_categories(panel, zero, stop, g, model, method)
        est_rows.append(pd.DataFrame({"category": panel.categories, "model": model, "method": method, "gamma": g,
                                      "p": p_k, "q": q_k, "videos": videos_k, "rows": rows_k}))
        w = evaluate(panel, p_k, q_k, g, model, zero, stop, panel.length)
        wm_rows.append(pd.DataFrame({"video_id": panel.video_id, "category": panel.categories[panel.category],
                                     "label": label(model, method), "wmape": w}))
    per_video = pd.concat(wm_rows, ignore_index=True)
    estimates = pd.concat(est_rows, ignore_index=True)
    summary = []
    for (model, method), g in chosen.items():
        w = per_video.loc[per_video["label"] == label(model, method), "wmape"]
        summary.append((label(model, method), model, method, g, float(w.mean()), float(w.median()),
                        int(w.notna().sum())))
    table = pd.DataFrame(summary, columns=["label", "model", "method", "gamma", "wmape_mean", "wmape_median", "videos"])
    pooled = _pooled_wmape(panel, estimates, chosen, stop)
    table["wmape_pooled"] = table["label"].map(pooled)
    tests = {}
    labels = set(table["label"])
    for better, worse in ((label(P_BDM, "D-OLS"), label(P_BDM, "OLS")), (label(P_BDM, "D-OLS"), label(BDM, "OLS")),
                          (label(P_BDM, "D-MLE"), label(P_BDM, "MLE"))):
        if better in labels and worse in labels:
            res = paired_wmape_tests(per_video, better, worse)
            res.pop("per_category")
            tests[f"{better} vs {worse}"] = res
    main = estimates.loc[(estimates["model"] == P_BDM) & (estimates["method"] == "D-OLS")]
    if len(main) >= 3:
        tests["pq_correlation"] = pq_correlation_test(main["p"].to_numpy(), main["q"].to_numpy())
    return Calibration(estimates, pd.concat(searches, ignore_index=True) if searches else pd.DataFrame(), per_video,
                       table, tests)


def _pooled_wmape(panel: Panel, estimates: pd.DataFrame, chosen: dict, stop: np.ndarray) -> dict:
    """Test-window WMAPE pooled over all videos: sum |a_hat - a| / sum a."""
    out = {}
    for (model, method), g in chosen.items():
        e = estimates.loc[(estimates["model"] == model) & (estimates["method"] == method)]
        a_hat, actual, _, _ = _window_forecast(panel, e["p"].to_numpy()[panel.category],
                                               e["q"].to_numpy()[panel.category], g, model, stop, panel.length)
        out[label(model, method)] = float(np.abs(a_hat - actual).sum() / actual.sum())
    return out


def fit_single_video(panel: Panel, i: int, gamma: float, fit_share: float = 0.6) -> pd.DataFrame:
    """Figure 4: one video's coefficients from its own first ``fit_share`` of periods, and the fitted curves over
    its whole horizon from A_0. P-BDM by D-OLS (with gamma and the observed promotion); BDM by the Bass (1969)
    regression (m, p, q estimated), or, where that regression has no positive market root, by OLS with the known
    market. Columns: period, actual, pbdm, bdm (cumulative adopters), plus the coefficients as attrs."""
    from reach.diffusion.estimators import bass_ols, d_ols, ols

    n = int(panel.length[i])
    stop = max(2, int(np.floor(fit_share * n)))
    age = np.arange(n, dtype=float)
    new = panel.new[i, :n]
    obs = Observations.build(panel.direct[i, :stop], panel.indirect[i, :stop], panel.exposed[i, :stop] / panel.market,
                             panel.A_prev[i, :stop], panel.market, gamma ** age[:stop])
    pb = d_ols(obs)
    pb_path = simulate_pbdm(pb.p, pb.q, panel.market, panel.exposed[i, :n] / panel.market, gamma=gamma)
    bd = bass_ols(new[:stop])
    bdm_label = "BDM-OLS (m estimated)"
    if not (bd.converged and np.isfinite(bd.m) and bd.m > 0):
        b = obs.as_bass()
        bd0 = ols(Observations(b.direct, b.indirect, b.x, b.A_prev, b.m, np.ones(stop)))  # classic BDM: no decay
        bd = type(bd)(bd0.p, bd0.q, panel.market)
        bdm_label = "BDM OLS (known market)"
    bd_path = bass_adopters(bd.p, bd.q, bd.m, n)
    out = pd.DataFrame({"period": np.arange(n + 1), "actual": np.concatenate([[0.0], np.cumsum(new)]),
                        "pbdm": pb_path.A, "bdm": bd_path.A})
    out.attrs = {"video_id": str(panel.video_id[i]), "category": str(panel.categories[panel.category[i]]),
                 "fit_periods": stop, "pbdm_p": pb.p, "pbdm_q": pb.q, "gamma": gamma, "bdm_p": bd.p, "bdm_q": bd.q,
                 "bdm_m": bd.m, "bdm_label": bdm_label}
    return out


def example_videos(panel: Panel, n_examples: int = 2, target_length: int = 102, fit_share: float = 0.6) -> list[int]:
    """Deterministic picks for Figure 4 among videos observed about ``target_length`` periods (the paper's
    example has 102): the one with the median total adopters (a typical video), then videos whose own BDM-OLS
    diffusion coefficient, fitted on the first ``fit_share`` of their periods as Figure 4 fits them, is negative
    (Figure 4(b)), else typical ones next in line."""
    from reach.diffusion.estimators import bass_ols

    total = panel.new.sum(axis=1)
    near = np.flatnonzero((np.abs(panel.length - target_length) <= max(10, target_length // 10)) & (total > 0))
    pool = near if near.size else np.flatnonzero(total > 0)
    ranked = pool[np.argsort(total[pool], kind="stable")]
    mid = ranked.size // 2
    ranked = ranked[np.argsort(np.abs(np.arange(ranked.size) - mid), kind="stable")]  # outward from the median
    picks = [int(ranked[0])] if ranked.size else []
    for i in ranked[1:400]:
        if len(picks) >= n_examples:
            break
        stop = max(2, int(np.floor(fit_share * panel.length[i])))
        if bass_ols(panel.new[i, :stop]).q < 0:
            picks.append(int(i))
    for i in ranked[1:]:
        if len(picks) >= n_examples:
            break
        if int(i) not in picks:
            picks.append(int(i))
    return picks
