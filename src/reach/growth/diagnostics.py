"""Posterior diagnostics: rank-normalised split R-hat, bulk/tail ESS (Vehtari et al. 2021), Bayesian R^2
(Gelman, Goodrich, Gabry and Vehtari 2019). Draws are arrays shaped (chains, draws, ...)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def _split(x: np.ndarray) -> np.ndarray:
    """(chains, draws, ...) -> (2 chains, draws // 2, ...): each chain cut in halves."""
    n = x.shape[1] // 2
    return np.concatenate([x[:, :n], x[:, x.shape[1] - n:]], axis=0)


def _rank_normal(x: np.ndarray) -> np.ndarray:
    """Rank-normalise over all chains and draws jointly (per trailing index)."""
    c, d = x.shape[:2]
    flat = x.reshape(c * d, -1)
    r = stats.rankdata(flat, axis=0, method="average")
    z = stats.norm.ppf((r - 3 / 8) / (c * d + 1 / 4))
    return z.reshape(x.shape)


def _rhat_basic(x: np.ndarray) -> np.ndarray:
    m, n = x.shape[:2]
    chain_mean = x.mean(axis=1)
    chain_var = x.var(axis=1, ddof=1)
    w = chain_var.mean(axis=0)
    b = n * chain_mean.var(axis=0, ddof=1)
    var_plus = (n - 1) / n * w + b / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(var_plus / w)


def rhat(x: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat: max of the bulk and the folded (tail) versions. NaN with a single chain of
    fewer than 4 draws; constant quantities give NaN."""
    x = np.asarray(x, dtype=float)
    if x.shape[1] < 4:
        return np.full(x.shape[2:], np.nan)
    s = _split(x)
    bulk = _rhat_basic(_rank_normal(s))
    folded = np.abs(s - np.median(s.reshape(-1, *s.shape[2:]), axis=0))
    tail = _rhat_basic(_rank_normal(folded))
    return np.maximum(bulk, tail)


def _ess_basic(x: np.ndarray) -> np.ndarray:
    """ESS by Geyer's initial monotone sequence over the split chains (Stan's estimator), vectorised."""
    m, n = x.shape[:2]
    xc = x - x.mean(axis=1, keepdims=True)
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(xc, n=nfft, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=nfft, axis=1)[:, :n] / n  # (m, n, ...)
    chain_var = acov[:, 0] * n / (n - 1)
    w = chain_var.mean(axis=0)
    var_plus = w * (n - 1) / n
    if m > 1:
        var_plus = var_plus + x.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1 - (w - acov.mean(axis=0)) / var_plus  # (n, ...)
    rho[0] = 1.0
    # pairs Gamma_k = rho_2k + rho_2k+1, truncated at the first negative pair, made monotone
    n_pairs = n // 2
    gam = rho[0:2 * n_pairs:2] + rho[1:2 * n_pairs:2]
    positive = np.cumprod(gam > 0, axis=0).astype(bool)
    gam = np.where(positive, gam, 0.0)
    gam = np.minimum.accumulate(np.where(positive, gam, np.inf), axis=0)
    gam = np.where(positive, gam, 0.0)
    tau = -1 + 2 * gam.sum(axis=0)
    tau = np.maximum(tau, 1 / np.log10(m * n))
    return m * n / tau


def ess_bulk(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.shape[1] < 4:
        return np.full(x.shape[2:], np.nan)
    return _ess_basic(_rank_normal(_split(x)))


def ess_tail(x: np.ndarray) -> np.ndarray:
    """Minimum of the ESS of the 5% and 95% quantile indicators."""
    x = np.asarray(x, dtype=float)
    if x.shape[1] < 4:
        return np.full(x.shape[2:], np.nan)
    s = _split(x)
    flat = s.reshape(-1, *s.shape[2:])
    out = []
    for q in (0.05, 0.95):
        ind = (s <= np.quantile(flat, q, axis=0)).astype(float)
        out.append(_ess_basic(ind))  # indicator chains, no rank normalisation (posterior::ess_quantile)
    return np.minimum(*out)


def summarise(name: str, x: np.ndarray, labels: list[str] | None = None) -> list[dict]:
    """Rows (parameter, mean, sd, q05, q50, q95, rhat, ess_bulk, ess_tail) for draws shaped (chains, draws, ...)
    with the trailing dimensions flattened; ``labels`` names the flattened entries (default 1-based Stan-style)."""
    x = np.asarray(x, dtype=float)
    c, d = x.shape[:2]
    flat = x.reshape(c, d, -1)
    k = flat.shape[2]
    if labels is None:
        shape = x.shape[2:]
        labels = [name] if not shape else [f"{name}[{','.join(str(i + 1) for i in idx)}]"
                                            for idx in np.ndindex(*shape)]
    pooled = flat.reshape(c * d, k)
    q = np.quantile(pooled, [0.05, 0.5, 0.95], axis=0)
    rh, eb, et = rhat(flat), ess_bulk(flat), ess_tail(flat)
    return [{"parameter": labels[i], "mean": float(pooled[:, i].mean()), "sd": float(pooled[:, i].std(ddof=1)),
             "q05": float(q[0, i]), "q50": float(q[1, i]), "q95": float(q[2, i]), "rhat": float(rh[i]),
             "ess_bulk": float(eb[i]), "ess_tail": float(et[i])} for i in range(k)]


def bayes_r2(y: np.ndarray, y_fit: np.ndarray) -> np.ndarray:
    """Bayesian R^2 of Gelman et al. (2019), residual form, one value per posterior draw:
    R^2_s = V(y_fit_s) / (V(y_fit_s) + V(y_s - y_fit_s)), V the sample variance over units (videos).
    ``y`` and ``y_fit`` are (draws, units); here y is the draw of a_ij (or b_ij), y_fit its covariate part."""
    y = np.asarray(y, dtype=float)
    y_fit = np.asarray(y_fit, dtype=float)
    if y.shape != y_fit.shape or y.ndim != 2:
        raise ValueError(f"bayes_r2 needs two (draws, units) arrays of one shape, got {y.shape} and {y_fit.shape}")
    v_fit = y_fit.var(axis=1, ddof=1)
    v_res = (y - y_fit).var(axis=1, ddof=1)
    return v_fit / (v_fit + v_res)
