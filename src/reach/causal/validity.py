"""Instrument checks of paper 1, Section 3.3: relevance (first-stage strength) and the validity test of Eq. 7
(Li et al. 2022).

Relevance: the correlation of t and z, the R^2 of the OLS regression of t on z, and, with
controls x, the partial R^2 of z and the F statistic of the excluded instrument(s) (statsmodels OLS; F > 10 is the
usual weak-instrument rule of thumb). These are on the scale the estimators use, log followers on log past average
hearts; the paper's figures (correlation 0.736, coefficient 0.001, R^2 0.542) regress Follower on Past, and a
coefficient of 0.001 reads as raw counts, so the two are not directly comparable.

Validity (Eq. 7): gamma = 1 - l / l_0, where l is the held-out mean squared error of a flexible model predicting the
structural residual e^ = y - h^(t, x) from (x, z) and l_0 that of the zero predictor (the paper: gamma = 0.00023).
The model is scikit-learn's HistGradientBoostingRegressor (interactions and nonlinearity in x and z; histogram trees;
early stopping on an internal validation split, so it predicts ~0 when there is nothing to learn), fitted on a
random `1 - test_share` of the rows and scored on the rest. gamma's interval is a percentile bootstrap over the
held-out rows (the fitted model fixed). gamma_x_only is the same model on x alone and gamma_beyond_x =
(l_x - l) / l_0 what z adds to x, with its interval from the same (paired) bootstrap draws.

The null hypothesis the p-value tests is H0: E[e^ | x, z] = E[e^ | x] -- z adds nothing to predicting the residual
beyond x. A valid instrument (exclusion and exogeneity: E[e | x, z] = E[e | x] for the true e = y - h(t, x)) implies
H0 when h^ errs only in x (e^ - e a function of x) or satisfies the IV moment condition, as an IV fit does by
construction; an h^ whose error varies with t breaks H0 even for a valid z, because t moves with z -- the test then
flags h^'s misfit, which it cannot tell from an invalid instrument (benchmarks/iv_validity.py measures both).

p-value: a conditional permutation test (Berrett et al. 2020, JRSS-B 82(1)) of z given x with a distilled statistic
(Liu et al. 2022, "Fast and powerful conditional randomization testing via distillation", Biometrika 109(2)). z is
split into its cross-fitted regression on x, E^[z | x] (OLS plus boosting on the OLS residual), and the residual
z - E^[z | x]; the residuals are permuted within `n_strata` quantile strata of E^[z | x] (a spread that changes
with E^[z | x] is kept), and z* = E^[z | x] + permuted residual keeps z's relation to x while breaking any link with
e^ beyond x. The statistic is the held-out R^2 (Eq. 7's form) of the same flexible model predicting the distilled
residual e~ = e^ - E^[e^ | x] (cross-fitted) from (x, z - E^[z | x]) (the same information as (x, z), but a linear
effect of z's own part is then one axis for the trees rather than an oblique direction): without the distillation, z helps the trees fit e^'s
x-part (z is a proxy of a direction of x) a little more than z* does wherever E^[z | x] errs, and the test rejected
14% of valid instruments (benchmarks/iv_validity.py); distilled, that advantage is a product of two regression
errors. The model is refitted on (x, z*) `n_permutations` times; p = (1 + #{stat* >= stat}) / (1 + n_permutations).
null="marginal" gives the earlier test: gamma on e^ against z permuted across rows. z* is then independent of x, so
for a z correlated with x it is not a null of H0 and its false-rejection rate is off (22-25% in the benchmark's
design where e^'s x-part runs along the direction z tracks). compare_marginal=True adds its p-value
(p_value_marginal) on the same split. p_value_paired is the one-sided paired t-test of the held-out per-row losses
of the x-only and (x, z) models (informational; anti-conservative for the same reason as the marginal null).
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


def _hgb(seed: int, model_kwargs: dict | None = None):
    from sklearn.ensemble import HistGradientBoostingRegressor

    params = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 40,
              "l2_regularization": 1.0, "early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 5,
              "random_state": seed} | dict(model_kwargs or {})
    return HistGradientBoostingRegressor(**params)


def _held_out_loss(e_tr, f_tr, e_te, f_te, seed, model_kwargs) -> np.ndarray:
    """Per-row held-out squared error of the flexible model of e^ fitted on the training rows."""
    model = _hgb(seed, model_kwargs).fit(f_tr, e_tr)
    return (e_te - model.predict(f_te)) ** 2


def instrument_given_covariates(x: np.ndarray, z: np.ndarray, seed: int = 0, n_folds: int = 5,
                                model_kwargs: dict | None = None, n_threads: int = 1) -> np.ndarray:
    """Cross-fitted E^[z | x], shape (n, k): per fold, OLS of z on x plus boosting (the validity model's settings)
    on the OLS residual for nonlinearity and interactions; each row is predicted by models that did not see it."""
    import sklearn.ensemble  # noqa: F401 (loaded before the limit: threadpoolctl only caps libraries already loaded)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(n_threads)):
        return _instrument_given_covariates(x, z, seed, n_folds, model_kwargs)


def _instrument_given_covariates(x, z, seed, n_folds, model_kwargs) -> np.ndarray:
    x = np.asarray(x, float)
    z = np.asarray(z, float)
    z = z[:, None] if z.ndim == 1 else z
    n, k = z.shape
    if x.shape[1] == 0:
        return np.broadcast_to(z.mean(axis=0), z.shape).copy()
    out = np.empty((n, k))
    folds = np.random.default_rng([int(seed), 11]).permutation(n) % int(n_folds)
    for f in range(int(n_folds)):
        tr, te = folds != f, folds == f
        design_tr = np.column_stack([np.ones(tr.sum()), x[tr]])
        design_te = np.column_stack([np.ones(te.sum()), x[te]])
        beta = np.linalg.lstsq(design_tr, z[tr], rcond=None)[0]
        for j in range(k):
            boost = _hgb(int(seed), model_kwargs).fit(x[tr], z[tr, j] - design_tr @ beta[:, j])
            out[te, j] = design_te @ beta[:, j] + boost.predict(x[te])
    return out


def _strata(values: np.ndarray, n_strata: int) -> np.ndarray:
    """Quantile strata (0..n_strata-1) of values; ties share a stratum."""
    edges = np.quantile(values, np.linspace(0, 1, int(n_strata) + 1)[1:-1])
    return np.searchsorted(edges, values, side="right")


def _permute_within(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A row index that permutes rows within each group."""
    index = np.arange(groups.size)
    out = index.copy()
    for g in np.unique(groups):
        rows = index[groups == g]
        out[rows] = rows[rng.permutation(rows.size)]
    return out


def iv_validity(residual: np.ndarray, x: np.ndarray, z: np.ndarray, seed: int = 0, n_permutations: int = 99,
                test_share: float = 0.3, model_kwargs: dict | None = None, n_threads: int = 1,
                null: str = "conditional", n_strata: int = 10, n_folds: int = 5, n_boot: int = 1000,
                ci_level: float = 0.95, compare_marginal: bool = False) -> dict:
    """Eq. 7's gamma on held-out rows, its bootstrap interval, and a permutation p-value for H0: E[e^|x,z] =
    E[e^|x] (see the module docstring).

    residual: e^ = y - h^(t, x) per row; x (n, d) covariates; z (n,) or (n, k) instrument(s). null: "conditional"
    (z permuted given x, calibrated) or "marginal" (z permuted across rows, the earlier test). n_strata, n_folds:
    the conditional null's strata of E^[z|x] and cross-fitting folds. n_boot, ci_level: gamma's interval.
    compare_marginal: also the marginal null's p-value (p_value_marginal; same split and model). n_threads
    caps the OpenMP threads of the boosting fits (one thread is ~15x faster than two on a busy two-core machine)."""
    import sklearn.ensemble  # noqa: F401 (loaded before the limit: threadpoolctl only caps libraries already loaded)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(n_threads)):
        return _iv_validity(residual, x, z, int(seed), int(n_permutations), float(test_share), model_kwargs,
                            str(null), int(n_strata), int(n_folds), int(n_boot), float(ci_level),
                            bool(compare_marginal))


def _iv_validity(residual, x, z, seed, n_permutations, test_share, model_kwargs, null, n_strata, n_folds, n_boot,
                 ci_level, compare_marginal=False) -> dict:
    from scipy import stats

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
    if null not in ("conditional", "marginal"):
        raise ValueError(f"null must be 'conditional' or 'marginal', not {null!r}")
    if n_strata < 1 or n_folds < 2 or n_boot < 0 or not 0.0 < ci_level < 1.0:
        raise ValueError(f"need n_strata >= 1, n_folds >= 2, n_boot >= 0 and 0 < ci_level < 1; got {n_strata}, "
                         f"{n_folds}, {n_boot}, {ci_level}")
    rng = np.random.default_rng([seed, 7])
    perm = rng.permutation(n)
    n_te = max(2, int(round(test_share * n)))
    te, tr = perm[:n_te], perm[n_te:]

    def loss_for(zz: np.ndarray | None) -> np.ndarray:
        f = x if zz is None else np.column_stack([x, zz])
        return _held_out_loss(e[tr], f[tr], e[te], f[te], seed, model_kwargs)

    loss_zero_rows = e[te] ** 2
    loss0 = loss_zero_rows.mean()
    loss_xz = loss_for(z)
    loss_x = loss_for(None) if x.shape[1] else loss_zero_rows
    gamma = float(1.0 - loss_xz.mean() / loss0)                                   # Eq. 7
    gamma_x = float(1.0 - loss_x.mean() / loss0)

    if null == "conditional":
        z_hat = _instrument_given_covariates(x, z, seed, n_folds, model_kwargs)
        z_resid = z - z_hat
        groups = _strata(z_hat[:, 0], n_strata)
        z_given_x_r2 = float(1.0 - np.sum(z_resid[:, 0] ** 2) / np.sum((z[:, 0] - z[:, 0].mean()) ** 2))
        # distillation (Liu et al. 2022): the statistic is the held-out R^2 of the model of e~ = e^ - E^[e^|x]
        # (cross-fitted) from (x, z), so that z's use as a proxy of x -- which the permuted z* lacks as far as
        # E^[z|x] errs -- is left with little to explain; it is 0 in expectation under H0 up to products of errors
        e_dist = e - _instrument_given_covariates(x, e[:, None], seed, n_folds, model_kwargs)[:, 0]

        def statistic(zz: np.ndarray) -> float:
            f = np.column_stack([x, zz - z_hat])        # z's residual on x: axis-aligned for the trees
            return float(1.0 - _held_out_loss(e_dist[tr], f[tr], e_dist[te], f[te], seed, model_kwargs).mean()
                         / np.mean(e_dist[te] ** 2))

        def draw() -> np.ndarray:
            return z_hat + z_resid[_permute_within(groups, rng)]
        observed = statistic(z)
    else:
        z_given_x_r2 = float("nan")

        def statistic(zz: np.ndarray) -> float:
            return float(1.0 - loss_for(zz).mean() / loss0)

        def draw() -> np.ndarray:
            return z[rng.permutation(n)]
        observed = gamma

    def permutation_p(stat: float, null_stat: np.ndarray) -> float:
        return float((1 + np.sum(null_stat >= stat)) / (1 + null_stat.size)) if null_stat.size else float("nan")

    null_gamma = np.array([statistic(draw()) for _ in range(n_permutations)])
    p_value = permutation_p(observed, null_gamma)
    extra = {}
    if compare_marginal and null != "marginal":
        marginal = np.array([1.0 - loss_for(z[rng.permutation(n)]).mean() / loss0 for _ in range(n_permutations)])
        extra = {"p_value_marginal": permutation_p(gamma, marginal),
                 "gamma_permutation_mean_marginal": float(marginal.mean()) if marginal.size else float("nan")}

    diff = loss_x - loss_xz                                                       # > 0 where z helps beyond x
    p_paired = float(stats.ttest_1samp(diff, 0.0, alternative="greater").pvalue) if diff.std() > 0 else 1.0
    boot = np.random.default_rng([seed, 13]).integers(0, n_te, size=(n_boot, n_te)) if n_boot else None
    lo_q, hi_q = (1.0 - ci_level) / 2.0, 1.0 - (1.0 - ci_level) / 2.0
    if boot is not None:
        l0_b = loss_zero_rows[boot].mean(axis=1)
        gamma_b = 1.0 - loss_xz[boot].mean(axis=1) / l0_b
        beyond_b = diff[boot].mean(axis=1) / l0_b
        ci = [float(v) for v in np.quantile(gamma_b, [lo_q, hi_q])]
        ci_beyond = [float(v) for v in np.quantile(beyond_b, [lo_q, hi_q])]
    else:
        ci = ci_beyond = [float("nan"), float("nan")]
    return {"gamma": gamma, "gamma_ci_low": ci[0], "gamma_ci_high": ci[1], "ci_level": ci_level,
            "p_value": p_value, "null": null, "statistic": observed,
            "statistic_name": ("held-out R^2 of e^ - E^[e^|x] from (x, z - E^[z|x])" if null == "conditional"
                               else "gamma (Eq. 7)"),
            "method": ("conditional permutation of z given x (residual of cross-fitted E^[z|x] permuted within "
                       f"{n_strata} strata), distilled statistic" if null == "conditional"
                       else "marginal permutation of z"),
            "gamma_x_only": gamma_x, "gamma_beyond_x": float(diff.mean() / loss0),
            "gamma_beyond_x_ci_low": ci_beyond[0], "gamma_beyond_x_ci_high": ci_beyond[1],
            "p_value_paired": p_paired, "z_given_x_r2": z_given_x_r2,
            "gamma_permutation_mean": float(null_gamma.mean()) if null_gamma.size else float("nan"),
            "gamma_permutation_q95": float(np.quantile(null_gamma, 0.95)) if null_gamma.size else float("nan"),
            "n_permutations": int(null_gamma.size), "n_train": int(tr.size), "n_test": int(te.size),
            "loss_zero": float(loss0),
            "model": "sklearn HistGradientBoostingRegressor on (x, z), early stopping; held-out MSE"} | extra
