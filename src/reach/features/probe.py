"""A linear probe: how much of a target (the synthetic world's content latent) each modality's features carry,
as cross-validated R^2 of a ridge regression, against the same fit on shuffled targets."""

from __future__ import annotations

import numpy as np


def modality_matrix(modality: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """A fixed-width per-video matrix from a modality's gathered arrays (sequences mean-pooled, presence flags for
    optional sources). NaN marks what a video lacks; `impute_standardise` handles it."""
    if modality == "text":
        parts = []
        for src in ("caption", "sticker", "voice"):
            mean = arrays[f"{src}_mean"]
            off = arrays[f"{src}_vectors__offsets"]
            parts += [mean, (np.diff(off) > 0).astype(float)[:, None]]
        return np.column_stack(parts)
    if modality == "image":
        off = arrays["frame_embed__offsets"]
        emb = arrays["frame_embed"]
        mean = np.full((len(off) - 1, emb.shape[1]), np.nan)
        for i in range(len(off) - 1):
            if off[i + 1] > off[i]:
                mean[i] = emb[off[i]:off[i + 1]].mean(0)
        parts = [arrays["objects"], mean] + ([arrays["sentiment"]] if "sentiment" in arrays else [])
        return np.column_stack(parts)
    if modality == "audio":
        return np.column_stack([arrays["universality"][:, None], arrays["sound_classes"], arrays["acoustic"]])
    return np.asarray(arrays["values"], float)


def impute_standardise(X: np.ndarray) -> np.ndarray:
    """Drop all-NaN and constant columns, fill NaN with the column median, scale to unit variance."""
    X = np.asarray(X, float)
    keep = ~np.isnan(X).all(0)
    X = X[:, keep]
    med = np.nanmedian(X, axis=0)
    X = np.where(np.isnan(X), med, X)
    sd = X.std(0)
    X = X[:, sd > 1e-12]
    return (X - X.mean(0)) / X.std(0)


def reduce_width(X: np.ndarray, max_columns: int = 256, seed: int = 0) -> np.ndarray:
    """Principal components (randomised SVD) when X is wider than `max_columns`: the probe stays a linear map of
    the features and takes seconds instead of minutes. Unsupervised (the target is not used)."""
    k = min(max_columns, X.shape[0])
    if X.shape[1] <= k:
        return X
    from sklearn.decomposition import PCA

    return PCA(k, svd_solver="randomized", random_state=seed).fit_transform(X)


def cv_r2(X: np.ndarray, Y: np.ndarray, folds: int = 5, seed: int = 0,
          alphas=tuple(np.logspace(-1, 5, 13))) -> np.ndarray:
    """Out-of-fold R^2 per column of Y of a ridge regression whose penalty is chosen by generalised CV within
    each training fold."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    Y = np.asarray(Y, float)
    pred = np.zeros_like(Y)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(X):
        model = RidgeCV(alphas=alphas, alpha_per_target=True).fit(X[train], Y[train])
        pred[test] = model.predict(X[test])
    ss_res = ((Y - pred) ** 2).sum(0)
    ss_tot = ((Y - Y.mean(0)) ** 2).sum(0)
    return 1 - ss_res / ss_tot
