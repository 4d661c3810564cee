"""Web Appendix G, Stage 2: growth residuals (Eqs. 24-26) predicted from the VS-VAE representation r.

Sign classifiers and value regressors are dense 128-64-1 networks with ReLU (sigmoid output and binary cross-entropy
for the sign, linear output and mean squared error for the value), trained in torch on the train split with early
stopping on a validation part of it, evaluated on held-out videos against a majority-class / mean baseline."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

log = logging.getLogger(__name__)


def growth_residuals(video_growth: pd.DataFrame) -> pd.DataFrame:
    """Eqs. 24-26: a_ij - (mu_alpha0 + X_ij mu_alpha), b_ij - (mu_beta0 + X_ij mu_beta), from the posterior means
    written by the Stage-1 fit (columns a_mean, a_hat_global, b_mean, b_hat_global)."""
    need = {"video_id", "a_mean", "a_hat_global", "b_mean", "b_hat_global"}
    if not need <= set(video_growth.columns):
        raise ValueError(f"video growth table lacks {sorted(need - set(video_growth.columns))}")
    return pd.DataFrame({"video_id": video_growth["video_id"].astype(str),
                         "resid_a": video_growth["a_mean"] - video_growth["a_hat_global"],
                         "resid_b": video_growth["b_mean"] - video_growth["b_hat_global"]})


def mlp(d_in: int) -> torch.nn.Module:
    """128-64-1 with ReLU; the output is a logit (sign) or the value itself."""
    return torch.nn.Sequential(torch.nn.Linear(d_in, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64),
                               torch.nn.ReLU(), torch.nn.Linear(64, 1))


def train_mlp(x: np.ndarray, y: np.ndarray, task: str, *, seed: int, epochs: int = 200, batch_size: int = 64,
              lr: float = 1e-3, weight_decay: float = 1e-4, patience: int = 20, val_share: float = 0.2,
              device: str = "cpu") -> torch.nn.Module:
    """Fit on (x, y) with a seeded validation share for early stopping; task "sign" (BCE with logits, i.e. a
    sigmoid output) or "value" (MSE)."""
    if task not in ("sign", "value"):
        raise ValueError(f"task must be sign or value, got {task!r}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n = len(x)
    perm = torch.randperm(n, generator=g).numpy()
    n_val = max(1, int(round(val_share * n)))
    val, tr = perm[:n_val], perm[n_val:]
    xt = torch.as_tensor(x, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.float32, device=device).reshape(-1, 1)
    net = mlp(x.shape[1]).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss() if task == "sign" else torch.nn.MSELoss()
    best, best_state, bad = np.inf, None, 0
    for _ in range(epochs):
        net.train()
        order = tr[torch.randperm(tr.size, generator=g).numpy()]
        for i in range(0, order.size, batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            v = float(loss_fn(net(xt[val]), yt[val]))
        if v < best - 1e-6:
            best, bad = v, 0
            best_state = {k: t.detach().clone() for k, t in net.state_dict().items()}
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval()


def _r2(y: np.ndarray, pred: np.ndarray, ref_mean: float) -> float:
    return float(1 - np.sum((y - pred) ** 2) / np.sum((y - ref_mean) ** 2))


def evaluate_residual_prediction(r: np.ndarray, resid: np.ndarray, is_test: np.ndarray, *, seed: int,
                                 device: str = "cpu", **train_kw) -> tuple[pd.DataFrame, dict]:
    """For each residual column (resid: (N, 2) for a and b): a sign classifier and a value regressor trained on the
    non-test rows, scored on the test rows. Baselines: the majority sign of the training rows; the training mean.
    r is standardised with training statistics. Returns (metrics table, test predictions)."""
    r = np.asarray(r, dtype=np.float32)
    resid = np.asarray(resid, dtype=float)
    is_test = np.asarray(is_test, dtype=bool)
    if is_test.all() or not is_test.any():
        raise ValueError("residual prediction needs both training and held-out videos")
    mu, sd = r[~is_test].mean(0), r[~is_test].std(0)
    z = (r - mu) / np.where(sd > 0, sd, 1.0)
    rows, preds = [], {}
    for k, name in enumerate(["a", "b"]):
        y = resid[:, k]
        y_tr, y_te = y[~is_test], y[is_test]
        s_tr, s_te = (y_tr > 0).astype(float), (y_te > 0).astype(float)
        clf = train_mlp(z[~is_test], s_tr, "sign", seed=seed + 10 * k, device=device, **train_kw)
        with torch.no_grad():
            p = torch.sigmoid(clf(torch.as_tensor(z[is_test], device=device))).cpu().numpy().ravel()
        majority = float(s_tr.mean() >= 0.5)
        acc = float(((p >= 0.5) == (s_te == 1)).mean())
        auc = float(roc_auc_score(s_te, p)) if 0 < s_te.mean() < 1 else float("nan")
        rows.append({"residual": name, "task": "sign", "metric": "accuracy", "model": acc,
                     "baseline": float((s_te == majority).mean()), "baseline_kind": "majority class of train"})
        rows.append({"residual": name, "task": "sign", "metric": "auc", "model": auc, "baseline": 0.5,
                     "baseline_kind": "constant score"})
        y_mu, y_sd = float(y_tr.mean()), float(y_tr.std() or 1.0)
        reg = train_mlp(z[~is_test], (y_tr - y_mu) / y_sd, "value", seed=seed + 10 * k + 1, device=device,
                        **train_kw)
        with torch.no_grad():
            v = reg(torch.as_tensor(z[is_test], device=device)).cpu().numpy().ravel() * y_sd + y_mu
        rows.append({"residual": name, "task": "value", "metric": "r2", "model": _r2(y_te, v, float(y_te.mean())),
                     "baseline": _r2(y_te, np.full_like(y_te, y_mu), float(y_te.mean())),
                     "baseline_kind": "train mean"})
        rows.append({"residual": name, "task": "value", "metric": "rmse", "model": float(np.sqrt(np.mean((y_te - v) ** 2))),
                     "baseline": float(np.sqrt(np.mean((y_te - y_mu) ** 2))), "baseline_kind": "train mean"})
        preds[f"p_positive_{name}"], preds[f"pred_{name}"], preds[f"resid_{name}"] = p, v, y_te
    tab = pd.DataFrame(rows)
    tab["n_train"], tab["n_test"] = int((~is_test).sum()), int(is_test.sum())
    return tab, preds
