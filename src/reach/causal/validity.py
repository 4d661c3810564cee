"""Instrument checks of paper 1, Section 3.3: relevance (first-stage strength) and the validity test of Eq. 7
(Li et al. 2022).

Relevance: the correlation of t and z, the R^2 of the OLS regression of t on z (the paper's 0.542), and, with
controls x, the partial R^2 of z and the F statistic of the excluded instrument(s) (statsmodels OLS; F > 10 is the
usual weak-instrument rule of thumb).

Validity (Eq. 7): gamma = 1 - l / l_0, where l is the held-out mean squared error of a flexible model predicting the
structural residual e^ = y - h^(t, x) from (x, z) and l_0 that of the zero predictor. A valid instrument (exclusion
and exogeneity) cannot predict e^, so gamma is near 0 (the paper: 0.00023). The model is scikit-learn's
HistGradientBoostingRegressor (flexible: interactions and nonlinearity in x and z; fast: histogram trees; early
stopping on an internal validation split, so it predicts ~0 when there is nothing to learn), fitted on a random
`1 - test_share` of the rows and scored on the rest. Yardstick: a permutation p-value — z is permuted across
rows (breaking any link between z and e^ while keeping x's), the model refitted and gamma recomputed
`n_permutations` times; p = (1 + #{gamma_perm >= gamma}) / (1 + n_permutations). It asks whether z adds
predictive power for e^ beyond x. gamma_x_only (the same model on x alone) is reported too.
"""

from __future__ import annotations

import numpy as np


def first_stage_strength(t: np.ndarray, z: np.ndarray, x: np.ndarray | None = None) -> dict:
    """Relevance of the instrument z for the treatment t (optionally given controls x)."""
    import statsmodels.api as sm

    t = np.asarray(t, float).reshape(-1)
    z = np.asarray(z, float)
    z = z[:, None] if z.ndim == 1 else z
    if z.shape[0] != t.size:
        raise ValueError(f"z has {z.shape[0]} rows but t has {t.size}")
    simple = sm.OLS(t, sm.add_constant(z, has_constant="add")).fit()
    out = {"n": int(t.size), "correlation": float(np.corrcoef(t, z[:, 0])[0, 1]), "r2": float(simple.rsquared),
           "coef": [float(c) for c in simple.params[1:]], "coef_p_value": [float(p) for p in simple.pvalues[1:]],
           "f_statistic": float(simple.fvalue), "f_p_value": float(simple.f_pvalue)}
    if x is not None:
        x = np.asarray(x, float)
        if x.ndim != 2 or x.shape[0] != t.size:
            raise ValueError(f"x must be 2-D with {t.size} rows; got shape {x.shape}")
        restricted = sm.OLS(t, sm.add_constant(x, has_constant="add")).fit()
        full = sm.OLS(t, sm.add_constant(np.column_stack([x, z]), has_constant="add")).fit()
        k = z.shape[1]
        f = ((restricted.ssr - full.ssr) / k) / (full.ssr / full.df_resid)
        from scipy import stats

        out |= {"r2_with_controls": float(full.rsquared), "r2_controls_only": float(restricted.rsquared),
                "partial_r2": float(1.0 - full.ssr / restricted.ssr), "partial_f_statistic": float(f),
                "partial_f_p_value": float(stats.f.sf(f, k, full.df_resid)), "n_controls": int(x.shape[1])}
    return out


def _gamma(e_tr, f_tr, e_te, f_te, seed, model_kwargs) -> float:
    from sklearn.ensemble import HistGradientBoostingRegressor

    params = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 40,
              "l2_regularization": 1.0, "early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 5,
              "random_state": seed} | dict(model_kwargs or {})
    model = HistGradientBoostingRegressor(**params).fit(f_tr, e_tr)
    loss = np.mean((e_te - model.predict(f_te)) ** 2)
    loss0 = np.mean(e_te ** 2)
    return float(1.0 - loss / loss0)


def iv_validity(residual: np.ndarray, x: np.ndarray, z: np.ndarray, seed: int = 0, n_permutations: int = 99,
                test_share: float = 0.3, model_kwargs: dict | None = None, n_threads: int = 1) -> dict:
    """Eq. 7's gamma on held-out rows with a permutation p-value (see the module docstring).

    residual: e^ = y - h^(t, x) per row; x (n, d) covariates; z (n,) or (n, k) instrument(s). n_threads caps the
    OpenMP threads of the boosting fits (one thread is ~15x faster than two on a busy two-core machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(n_threads)):
        return _iv_validity(residual, x, z, seed, n_permutations, test_share, model_kwargs)


def _iv_validity(residual, x, z, seed, n_permutations, test_share, model_kwargs) -> dict:
    e = np.asarray(residual, float).reshape(-1)
    x = np.asarray(x, float)
    z = np.asarray(z, float)
    z = z[:, None] if z.ndim == 1 else z
    n = e.size
    if x.ndim != 2 or x.shape[0] != n or z.shape[0] != n:
        raise ValueError(f"residual has {n} rows; x {x.shape} and z {z.shape} must match")
    for name, a in {"residual": e, "x": x, "z": z}.items():
        if not np.isfinite(a).all():
            raise ValueError(f"{name} has missing or infinite values")
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"test_share must lie in (0, 1), not {test_share}")
    rng = np.random.default_rng([int(seed), 7])
    perm = rng.permutation(n)
    n_te = max(2, int(round(test_share * n)))
    te, tr = perm[:n_te], perm[n_te:]

    def gamma_for(zz: np.ndarray, use_z: bool = True) -> float:
        f = np.column_stack([x, zz]) if use_z else x
        return _gamma(e[tr], f[tr], e[te], f[te], int(seed), model_kwargs)

    gamma = gamma_for(z)
    gamma_x = gamma_for(z, use_z=False) if x.shape[1] else 0.0
    null = np.array([gamma_for(z[rng.permutation(n)]) for _ in range(int(n_permutations))])
    p_value = float((1 + np.sum(null >= gamma)) / (1 + null.size)) if null.size else float("nan")
    return {"gamma": gamma, "p_value": p_value, "gamma_x_only": float(gamma_x),
            "gamma_permutation_mean": float(null.mean()) if null.size else float("nan"),
            "gamma_permutation_q95": float(np.quantile(null, 0.95)) if null.size else float("nan"),
            "n_permutations": int(null.size), "n_train": int(tr.size), "n_test": int(te.size),
            "loss_zero": float(np.mean(e[te] ** 2)),
            "model": "sklearn HistGradientBoostingRegressor on (x, z), early stopping; held-out MSE"}
