"""Control-function IV (series): the shapes it exists to recover, against closed-form truths and a second library."""

import numpy as np
import pytest

from reach.causal.control_function import (ControlFunctionConfig, ControlFunctionModel, _ridge, fit_control_function,
                                           rcs_basis)
from reach.causal.estimator import load_model
from reach.causal.iv_designs import DESIGNS, GROUPS, derivative_errors


@pytest.fixture(scope="module")
def three_group_fit():
    design = DESIGNS["three_group"]()
    data = design.simulate(6000, 1)
    model = fit_control_function(data.t, data.z, data.x, data.y, ControlFunctionConfig(seed=1))
    return design, data, model


def test_three_group_shapes_recovered(three_group_fit):
    """Each group's average dh/dt curve (S-shaped, linear, concave FEI) within 15% of its peak derivative — the
    paper's finding in miniature. Measured 0.05-0.11 (benchmarks/iv_suite.py); a flat or shared curve scores >= 0.25."""
    design, data, model = three_group_fit
    test = design.simulate(2000, 99)
    scores = derivative_errors(model.predict_grid, design, test.x[:600], data.t)
    for g in GROUPS:
        assert scores[f"dh_ratio_{g}"] <= 0.15, (g, scores)
    # the shapes are told apart: S-shaped has an interior peak, concave falls, linear is flat
    lo, hi = np.percentile(data.t, [5, 95])
    grid = np.linspace(lo, hi, 9)
    for k, g in enumerate(GROUPS):
        x = test.x[design.groups(test.x) == k][:200]
        h = model.predict_grid(np.concatenate([grid - 0.05, grid + 0.05]), x).mean(axis=0)
        fei = (h[9:] - h[:9]) / 0.1
        if g == "s_shaped":
            assert 0 < int(np.argmax(fei)) < 8 and fei.max() > 2 * fei[[0, -1]].max()
        elif g == "concave":
            assert fei[0] > 3 * fei[-1]
        else:
            assert fei.std() / fei.mean() < 0.25


def test_shapes_lost_without_the_instrument_correction(three_group_fit):
    """Direct series regression with the same basis (control term dropped) is biased by the confounder: it must do
    clearly worse than CF-IV on the group curves (guards that the control function does the work)."""
    design, data, model = three_group_fit
    test = design.simulate(2000, 99)
    cf = derivative_errors(model.predict_grid, design, test.x[:600], data.t)
    # confounding: the direct slope picks up 0.5 u through t (cov(t, u) = 0.9): about +0.16 on every FEI. With t as
    # its own instrument the first stage is exact, the control v^ ~ 0 carries nothing, and the fit is the direct
    # series regression (a pure-noise instrument instead leaves B(v^) ~ B(t) collinear with h's basis)
    naive = fit_control_function(data.t, data.t, data.x, data.y, ControlFunctionConfig(seed=1))
    assert naive.info["first_stage_r2"] > 0.999
    bad = derivative_errors(naive.predict_grid, design, test.x[:600], data.t)
    assert bad["dh_mae"] > 2 * cf["dh_mae"]


def test_ridge_matches_statsmodels_ols_without_penalty():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4))
    y = x @ [1.0, -2.0, 0.5, 0.0] + rng.normal(size=200)
    design = np.column_stack([np.ones(200), x])
    np.testing.assert_allclose(_ridge(design, y, 1e-12), sm.OLS(y, design).fit().params, rtol=1e-8, atol=1e-10)
    shrunk = _ridge(design, y, 50.0)
    assert np.all(np.abs(shrunk[1:]) < np.abs(sm.OLS(y, design).fit().params[1:]) + 1e-12)


def test_rcs_basis_matches_the_torch_basis():
    import torch

    from reach.causal.response import restricted_cubic_basis

    a = np.linspace(-3, 3, 50)
    knots = np.array([-1.5, -0.5, 0.0, 0.7, 1.6])
    np.testing.assert_allclose(rcs_basis(a, knots), restricted_cubic_basis(torch.as_tensor(a), torch.as_tensor(knots))
                               .numpy(), rtol=1e-12, atol=1e-12)
    # natural spline: linear beyond the outer knots
    far = rcs_basis(np.array([3.0, 4.0, 5.0]), knots)
    np.testing.assert_allclose(far[2] - far[1], far[1] - far[0], atol=1e-9)


def test_save_load_round_trip_and_dispatch(three_group_fit, tmp_path):
    _, data, model = three_group_fit
    path = tmp_path / "member-0.safetensors"
    model.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, ControlFunctionModel)
    grid = np.linspace(8, 14, 7)
    np.testing.assert_array_equal(loaded.predict_grid(grid, data.x[:40]), model.predict_grid(grid, data.x[:40]))
    np.testing.assert_allclose(model.predict_grid(data.t[:40], data.x[:40])[np.arange(40), np.arange(40)],
                               model.predict(data.t[:40], data.x[:40]), rtol=1e-10, atol=1e-10)
    assert loaded.history["chosen"].sum() == 1


def test_deterministic_and_bad_input_named():
    design = DESIGNS["deepgmm_sin"]()
    d = design.simulate(400, 2)
    a = fit_control_function(d.t, d.z, d.x, d.y, ControlFunctionConfig(seed=4)).predict(d.t, d.x)
    b = fit_control_function(d.t, d.z, d.x, d.y, ControlFunctionConfig(seed=4)).predict(d.t, d.x)
    np.testing.assert_array_equal(a, b)
    y = d.y.copy()
    y[7] = np.nan
    with pytest.raises(ValueError, match="y is missing or infinite in 1 rows, e.g. row 7"):
        fit_control_function(d.t, d.z, d.x, y)
    with pytest.raises(ValueError, match="component_grid"):
        ControlFunctionConfig(component_grid=(-1,))


def test_fit_selected_keeps_the_candidate_with_the_lowest_held_out_loss(three_group_fit):
    """reach.causal.estimator.fit_selected: one fit per candidate, the lowest held-out second-stage loss kept, and the
    kept model is the very fit of that candidate (predictions equal a direct fit); a one-component basis cannot bend
    the follower curve by group, so the candidate with components must win on the three-group design."""
    from reach.causal.estimator import fit_selected

    design, data, _ = three_group_fit
    held = design.simulate(1500, 5)
    validation = (held.t, held.z, held.x, held.y)
    candidates = [ControlFunctionConfig(seed=1, component_grid=(0,)), ControlFunctionConfig(seed=1)]
    model, rows = fit_selected("cfiv", data.t, data.z, data.x, data.y, candidates, validation)
    assert [r["candidate"] for r in rows] == [0, 1] and [r["selected"] for r in rows] == [False, True]
    assert rows[1]["second_stage_val_loss"] < rows[0]["second_stage_val_loss"]
    direct = fit_control_function(data.t, data.z, data.x, data.y, candidates[1], validation=validation)
    np.testing.assert_allclose(model.predict(held.t, held.x), direct.predict(held.t, held.x))
    assert set(model.history["candidate"]) == {0, 1} and model.info["candidate"] == 1
    with pytest.raises(ValueError, match="held-out"):
        fit_selected("cfiv", data.t, data.z, data.x, data.y, candidates, None)


def test_standardized_ridge_matches_sklearn_ridge_on_unit_variance_columns():
    """standardize_grid True: the ridge is solved on columns of unit standard deviation and the coefficients mapped back;
    scikit-learn's Ridge on the same scaled columns (its intercept unpenalised like our constant) is the oracle, and
    without a penalty the scaling must not matter (OLS is scale-free)."""
    from sklearn.linear_model import Ridge

    from reach.causal.control_function import _column_scale

    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 5)) * np.array([1.0, 0.3, 0.09, 3.0, 1.0])     # spline-like small columns
    y = x @ [1.0, 2.0, -8.0, 0.1, 0.0] + rng.normal(size=300)
    design = np.column_stack([np.ones(300), x])
    scale = _column_scale(design, True)
    assert scale[0] == 1.0
    np.testing.assert_allclose(design[:, 1:].std(axis=0) / scale[1:], 1.0)
    ours = _ridge(design / scale, y, 30.0) / scale
    ref = Ridge(alpha=30.0).fit(x / scale[1:], y)
    np.testing.assert_allclose(ours[1:], ref.coef_ / scale[1:], rtol=1e-8)
    np.testing.assert_allclose(ours[0], ref.intercept_, rtol=1e-8)
    np.testing.assert_allclose(_ridge(design / scale, y, 1e-10) / scale, _ridge(design, y, 1e-10), rtol=1e-6)
    # with a penalty the unscaled ridge shrinks the small column's large coefficient much harder
    assert abs(_ridge(design, y, 30.0)[3]) < 0.8 * abs(ours[3])
    assert np.all(_column_scale(design, False) == 1.0)


def _group_last(design, data, n_noise=30, seed=0):
    """three_group's x reordered to [covariates, strong noise factors, group one-hot]: the principal components of the
    leading columns carry no group, so only direct columns can bend the curve per group."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(data.x.shape[0], 5)) * 3.0
    noise = factors @ rng.normal(size=(5, n_noise)) + rng.normal(size=(data.x.shape[0], n_noise))
    return np.column_stack([data.x[:, 3:], noise, data.x[:, :3]])


def test_direct_columns_bend_the_curve_per_group(three_group_fit):
    """direct_columns: the trailing columns (the workflow's hashtag indicators) enter w(x) as they are. With the
    group one-hot hidden behind strong noise factors, the principal components miss it and the three group curves
    merge; handed the one-hot as direct columns, each group's dh/dt is back within 15% of its peak."""
    design, data, _ = three_group_fit
    test = design.simulate(2000, 99)
    x_train, x_test = _group_last(design, data), _group_last(design, test, seed=1)
    scores = {}
    for direct in (0, 3):
        model = fit_control_function(data.t, data.z, x_train, data.y,
                                     ControlFunctionConfig(seed=1, component_grid=(0, 5), direct_columns=direct))
        assert model.info["direct_columns"] == direct

        def predict_grid(grid, x, model=model):     # x: test.x[:600] in three_group's order; the model sees x_test's
            return model.predict_grid(grid, x_test[:600])
        scores[direct] = derivative_errors(predict_grid, design, test.x[:600], data.t)
    for g in GROUPS:
        assert scores[3][f"dh_ratio_{g}"] <= 0.15, (g, scores[3])
    assert scores[0]["dh_ratio_s_shaped"] > 2 * scores[3]["dh_ratio_s_shaped"], {k: v["dh_ratio_s_shaped"] for k, v in scores.items()}
    with pytest.raises(ValueError, match="direct_columns"):
        fit_control_function(data.t[:100], data.z[:100], data.x[:100, :2], data.y[:100],
                             ControlFunctionConfig(direct_columns=3))


def test_choose_estimator_one_standard_error_rule():
    """The lowest mean paired loss wins, unless the simpler estimator (CF-IV) is within one standard error of the
    mean paired difference; the order of the dict does not matter; unpaired or missing values are errors."""
    from reach.causal.estimator import choose_estimator

    # Deep IV lower on every replicate: clearly better
    name, rows = choose_estimator({"deepiv": [0.40, 0.42, 0.38, 0.41], "cfiv": [0.50, 0.52, 0.47, 0.52]})
    assert name == "deepiv" and [r["estimator"] for r in rows] == ["cfiv", "deepiv"]
    assert rows[0]["difference_to_lowest"] == pytest.approx(0.10) and rows[0]["difference_se"] > 0
    # Deep IV lower on average, but the paired differences straddle zero: CF-IV within one standard error is kept
    name, rows = choose_estimator({"cfiv": [0.50, 0.40, 0.55, 0.45], "deepiv": [0.42, 0.47, 0.44, 0.49]})
    assert name == "cfiv" and rows[1]["lowest"] and not rows[1]["chosen"]
    # CF-IV lowest: chosen whatever the spread
    assert choose_estimator({"cfiv": [0.3, 0.5], "deepiv": [0.6, 0.4]})[0] == "cfiv"
    with pytest.raises(ValueError, match="'cfiv' has replicates without a finite"):
        choose_estimator({"cfiv": [0.5, float("nan")], "deepiv": [0.4, 0.4]})
    with pytest.raises(ValueError, match="paired replicates differ"):
        choose_estimator({"cfiv": [0.5, 0.4], "deepiv": [0.4]})


def test_causal_validation_loss_integrates_h_over_the_first_stage(three_group_fit):
    """CF-IV's causal validation loss is held-out (y - E_F[h(t, x) | z, x])^2. On DeepGMM's |t| design the first
    stage is t ~ N(z_0, 1.01) and E_F|t| has a closed form (the folded normal's mean), so the true h integrated over
    the true F gives the loss CF-IV should reach; h at the first stage's mean instead (no integration) is 0.04 worse.
    It cannot beat the control-function loss, which also sees t. Without held-out rows there is none."""
    from scipy.stats import norm

    design = DESIGNS["deepgmm_abs"]()
    data, held = design.simulate(4000, 3), design.simulate(2000, 4)
    fit = fit_control_function(data.t, data.z, data.x, data.y, ControlFunctionConfig(seed=1),
                               validation=(held.t, held.z, held.x, held.y))
    loss = fit.info["causal_validation_loss"]
    assert loss > fit.info["second_stage_val_loss"]
    mu, sd = held.z[:, 0], np.sqrt(1.01)
    folded_mean = sd * np.sqrt(2 / np.pi) * np.exp(-mu ** 2 / (2 * sd ** 2)) + mu * (1 - 2 * norm.cdf(-mu / sd))
    var_y = float(np.var(data.y))
    truth_loss = float(np.mean((held.y - folded_mean) ** 2)) / var_y
    plug_in_loss = float(np.mean((held.y - np.abs(mu)) ** 2)) / var_y
    assert abs(loss - truth_loss) < 0.015, (loss, truth_loss)      # measured 0.006; without integrating 0.046
    assert plug_in_loss > truth_loss + 0.03
    _, _, model = three_group_fit
    assert "causal_validation_loss" not in model.info


def test_knot_quantiles_harrell_and_equally_spaced():
    """Harrell's knot quantiles are themselves equally spaced between their outer ones (Harrell 2015, Table 2.3), so an
    outer quantile q generalises them: q, .., 1 - q in equal steps; None keeps Harrell's."""
    from reach.causal.control_function import knot_quantiles, quantile_knots
    from reach.causal.response import RCS_KNOT_QUANTILES

    for k, harrell in RCS_KNOT_QUANTILES.items():
        assert knot_quantiles(k) == harrell
        np.testing.assert_allclose(knot_quantiles(k, harrell[0]), harrell, atol=1e-4)
    np.testing.assert_allclose(knot_quantiles(5, 0.01), [0.01, 0.255, 0.5, 0.745, 0.99])
    a = np.arange(1, 1002, dtype=float)             # 1..1001: the q quantile is 1 + 1000 q
    np.testing.assert_allclose(quantile_knots(a, 5, 0.01), [11, 256, 501, 746, 991])
    with pytest.raises(ValueError, match="response_outer_grid"):
        ControlFunctionConfig(response_outer_grid=(0.6,))


def test_per_column_penalty_equals_the_ridge_on_rescaled_columns():
    """A penalty f_j lam on column j is the ridge with one penalty lam on the column scaled by 1 / sqrt(f_j), with the
    coefficient scaled back (the identity the per-hashtag bend factor rests on); checked against scikit-learn."""
    from sklearn.linear_model import Ridge

    from reach.causal.control_function import _ridge_solve

    rng = np.random.default_rng(4)
    d = rng.normal(size=(300, 6))
    design = np.column_stack([np.ones(300), d])
    y = d @ rng.normal(size=6) + rng.normal(size=300)
    factors = np.array([1.0, 1.0, 0.01, 1.0, 0.1, 1.0, 10.0])
    ours = _ridge_solve(design.T @ design, design.T @ y, 5.0 * factors)
    s = 1.0 / np.sqrt(factors[1:])
    ref = Ridge(alpha=5.0).fit(d * s, y)           # sklearn centres and leaves the intercept unpenalised
    centred = design - np.r_[0.0, d.mean(axis=0)]   # same model after centring the columns
    ours_c = _ridge_solve(centred.T @ centred, centred.T @ y, 5.0 * factors)
    np.testing.assert_allclose(ours_c[1:], ref.coef_ * s, rtol=1e-8)
    np.testing.assert_allclose(ours[1:], ours_c[1:], rtol=1e-8)  # slopes do not depend on centring (free constant)


def _toy_stage2_design():
    """A small stage-2 design [1, B(t), B(t) (x) w(x), x, w(x), B(v)] of random columns (n_b 3, n_w 5, 2 direct)."""
    from reach.causal.control_function import _h_design

    rng = np.random.default_rng(0)
    n, n_b, n_w, n_direct = 50, 3, 5, 2
    b, w, xs = rng.normal(size=(n, n_b)), rng.normal(size=(n, n_w)), rng.normal(size=(n, 4))
    design = np.column_stack([_h_design(b, w, xs), rng.normal(size=(n, 4))])
    return n_b, n_w, n_direct, b, w, design


def test_direct_bends_mask_picks_the_t_spline_times_direct_columns():
    """_direct_bends marks exactly the columns B_k(t) * (direct column j) of stage 2's design (checked by value)."""
    from reach.causal.control_function import _direct_bends

    n_b, n_w, n_direct, b, w, design = _toy_stage2_design()
    mask = _direct_bends(n_b, n_w, n_direct, design.shape[1])
    bends = [b[:, i] * w[:, j] for i in range(n_b) for j in range(n_w - n_direct, n_w)]
    marked = [design[:, c] for c in np.flatnonzero(mask)]
    assert len(marked) == len(bends) == n_b * n_direct
    for col in bends:
        assert any(np.allclose(col, m) for m in marked)
    for c in np.flatnonzero(~mask):
        assert not any(np.allclose(design[:, c], col) for col in bends)
    assert not _direct_bends(n_b, n_w, 0, design.shape[1]).any()


def test_wide_outer_knots_follow_the_curve_into_the_tails():
    """A restricted cubic spline is linear beyond its outer knots, so with Harrell's (5% and 95%) the FEI is constant
    over the outer 5% on each side of the data; where the true FEI keeps falling there (h concave in t), knots at the
    1% / 99% quantiles follow it, and the held-out selection of response_outer_grid picks them."""
    rng = np.random.default_rng(3)
    n = 8000
    u, z = rng.normal(size=n), rng.normal(size=n)
    t = 1.2 * z + 0.8 * u + 0.4 * rng.normal(size=n)
    x = rng.normal(size=(n, 3))

    def dh(t):                                       # h(t) = sin(t / 1.5) * 1.5: FEI cos(t / 1.5), falling to -1
        return np.cos(t / 1.5)

    y = 1.5 * np.sin(t / 1.5) + 0.6 * u + 0.3 * x[:, 0] + 0.3 * rng.normal(size=n)
    lo99, hi99 = np.percentile(t, [1, 99])
    lo95, hi95 = np.percentile(t, [5, 95])
    tails = np.concatenate([np.linspace(lo99, lo95, 5), np.linspace(hi95, hi99, 5)])
    va = np.arange(n) >= 7000
    errors = {}
    for grid in ((None,), (None, 0.01)):
        model = fit_control_function(t[~va], z[~va], x[~va], y[~va], ControlFunctionConfig(
            seed=1, component_grid=(0,), response_outer_grid=grid), validation=(t[va], z[va], x[va], y[va]))
        h = model.predict_grid(np.concatenate([tails - 0.05, tails + 0.05]), x[:300]).mean(axis=0)
        errors[grid] = float(np.abs((h[10:] - h[:10]) / 0.1 - dh(tails)).mean())
        if grid == (None, 0.01):
            assert model.info["response_outer"] == 0.01
    assert errors[(None, 0.01)] < 0.7 * errors[(None,)], errors   # measured 0.20 vs 0.42


def test_direct_bend_owner_names_each_bend_columns_hashtag():
    """_direct_bend_owner gives each column B_k(t) * (direct column j) the index j (checked by value), -1 elsewhere."""
    from reach.causal.control_function import _direct_bend_owner, _direct_bends

    n_b, n_w, n_direct, b, w, design = _toy_stage2_design()
    owner = _direct_bend_owner(n_b, n_w, n_direct, design.shape[1])
    np.testing.assert_array_equal(owner >= 0, _direct_bends(n_b, n_w, n_direct, design.shape[1]))
    for j in range(n_direct):
        cols = [b[:, i] * w[:, n_w - n_direct + j] for i in range(n_b)]
        assert sorted(np.flatnonzero(owner == j)) == sorted(
            c for c in range(design.shape[1]) if any(np.allclose(design[:, c], col) for col in cols))


def test_per_column_factors_find_the_brute_force_optimum_of_a_separable_loss():
    """On a loss that is a sum over columns, coordinate descent from any start reaches the exhaustive minimum over all
    3^4 factor combinations in one sweep; a second sweep changes nothing."""
    from itertools import product

    from reach.causal.control_function import _per_column_factors

    factors = (1.0, 0.1, 0.01)
    target = np.log10(np.array([0.02, 0.9, 0.1, 0.005]))
    def loss(per_column):
        return float(np.sum((np.log10(per_column) - target) ** 2))
    best = min(product(factors, repeat=4), key=lambda c: loss(np.array(c)))
    found, value, trials = _per_column_factors(loss, 4, 1.0, factors, sweeps=3)
    np.testing.assert_array_equal(found, best)
    assert value == pytest.approx(loss(np.array(best)))
    assert max(r["sweep"] for r in trials) == 1          # the second sweep moved nothing, so no third
    unchanged, _, _ = _per_column_factors(lambda c: 0.0, 4, 0.1, factors, sweeps=2)
    np.testing.assert_array_equal(unchanged, 0.1)         # ties keep the common start


def test_per_column_bend_factors_are_chosen_on_held_out_rows(three_group_fit):
    """With the group one-hot as direct columns and per-column factors, each group's bends get a factor from the grid,
    the held-out loss is no worse than the common factor's (the common choice is the start), and the history has one
    row per trial."""
    design, data, _ = three_group_fit
    x = _group_last(design, data)
    va = np.arange(data.t.size) >= 5000
    fits = {}
    for per_column in (False, True):
        fits[per_column] = fit_control_function(
            data.t[~va], data.z[~va], x[~va], data.y[~va],
            ControlFunctionConfig(seed=1, component_grid=(0, 5), direct_columns=3, direct_penalty_grid=(1.0, 0.1, 0.01),
                                  direct_penalty_per_column=per_column),
            validation=(data.t[va], data.z[va], x[va], data.y[va]))
    common, per = fits[False].info, fits[True].info
    assert common["direct_penalty_factors"] is None
    assert len(per["direct_penalty_factors"]) == 3 and set(per["direct_penalty_factors"]) <= {1.0, 0.1, 0.01}
    assert per["second_stage_val_loss"] <= common["second_stage_val_loss"] + 1e-12
    trials = fits[True].history[fits[True].history["stage"] == "second, per direct column"]
    assert len(trials) >= 3 * 2 and trials["direct_column"].between(0, 2).all()
    assert fits[True].history["chosen"].sum() == 1


def test_per_column_factors_move_where_the_groups_bend_differently():
    """Three groups (one-hot as direct columns) whose follower curves bend differently (S-shaped, linear, concave in
    t): the per-column descent moves some group's factor away from the common choice, the held-out loss falls, and the
    fitted curves differ from the common factor's (the choice reaches the coefficients)."""
    rng = np.random.default_rng(1)
    n = 4000
    g = rng.integers(0, 3, n)
    u, z = rng.normal(size=n), rng.normal(size=n)
    t = z + 0.8 * u + 0.5 * rng.normal(size=n)
    noise = rng.normal(size=(n, 6))
    x = np.column_stack([noise, np.eye(3)[g]])
    s = 1.0 / (1.0 + np.exp(-2.5 * t))
    h = np.where(g == 0, 0.2 * t + 1.6 * s, np.where(g == 1, 0.5 * t, -0.3 * np.exp(-t) + 0.1 * t))
    y = h + 0.3 * noise[:, 0] + 0.7 * u + 0.5 * rng.normal(size=n)
    va = np.arange(n) >= 3000
    fits = {per_column: fit_control_function(
        t[~va], z[~va], x[~va], y[~va],
        ControlFunctionConfig(seed=1, component_grid=(0, 5), direct_columns=3,
                              direct_penalty_grid=(1.0, 0.1, 0.01, 0.001), direct_penalty_per_column=per_column),
        validation=(t[va], z[va], x[va], y[va])) for per_column in (False, True)}
    common, per = fits[False].info, fits[True].info
    assert len(set(per["direct_penalty_factors"])) > 1, per["direct_penalty_factors"]
    assert per["second_stage_val_loss"] < common["second_stage_val_loss"] - 1e-4   # measured 0.1361 vs 0.1371
    grid = np.linspace(-1.5, 1.5, 7)
    assert np.abs(fits[True].predict_grid(grid, x[:200]) - fits[False].predict_grid(grid, x[:200])).max() > 0.01


def test_smoothing_bias_cov_is_the_ridge_bias_under_its_prior_by_monte_carlo():
    """sigma^2 A P A against brute force with a second library: coefficients b drawn from the ridge's prior
    N(0, sigma^2 / penalty), scikit-learn's Ridge fitted on the noiseless mean (a linear smoother's expected fit), so
    b^ - b is its bias; the covariance of that over the draws is the formula's."""
    from sklearn.linear_model import Ridge

    from reach.causal.control_function import smoothing_bias_cov

    rng = np.random.default_rng(7)
    n, p, penalty, sigma = 60, 3, 8.0, 0.7
    x = rng.normal(size=(n, p)) * np.array([1.0, 0.5, 0.2])     # weak columns: their shrinkage bias dominates
    design = np.column_stack([np.ones(n), x])
    draws = rng.normal(size=(4000, p)) * sigma / np.sqrt(penalty)
    bias = np.stack([Ridge(alpha=penalty).fit(x, 0.3 + x @ b).coef_ - b for b in draws])
    monte_carlo = bias.T @ bias / len(draws)
    y = 0.3 + x @ draws[0] + sigma * rng.normal(size=n)
    cov, sigma2 = smoothing_bias_cov(design, y, penalty)
    formula = cov[1:, 1:] / sigma2 * sigma ** 2                  # the formula at the true sigma^2
    np.testing.assert_allclose(formula, monte_carlo, rtol=0.08, atol=0.08 * np.diag(formula).min())
    assert 0.5 < sigma2 / sigma ** 2 < 1.6                        # RSS / (n - edf)


def test_smoothing_bias_draws_are_the_fei_of_perturbed_coefficients(three_group_fit, tmp_path):
    """rows @ deltas[s] equals the FEI change (central differences of predict_grid) when the coefficients of B(t)
    and B(t) (x) w(x) move by draw s of N(0, F F'); the factor survives save / load."""
    import copy

    from reach.causal.fei import fei_central_difference

    _, data, model = three_group_fit
    factor = model.fei_bias_factor
    assert factor is not None and factor.shape[1] > 0
    grid, x, eps = np.linspace(8.0, 14.0, 13), data.x[:50], 0.1
    rows, deltas = model.smoothing_bias_draws(grid, x, eps, 3, seed=11)
    z = np.random.default_rng(11).standard_normal((factor.shape[1], 3))
    _, base = fei_central_difference(lambda lv: model.predict_grid(lv, x), grid, eps)
    for s in range(3):
        moved = copy.deepcopy(model)
        moved.h_coef = model.h_coef.copy()
        moved.h_coef[1:1 + factor.shape[0]] += factor @ z[:, s]
        _, fei = fei_central_difference(lambda lv: moved.predict_grid(lv, x), grid, eps)
        np.testing.assert_allclose(rows @ deltas[s], fei - base, rtol=1e-8, atol=1e-10)
    assert np.abs(deltas).max() > 0
    model.save(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(load_model(tmp_path / "m.safetensors").fei_bias_factor, factor)


def test_copies_of_a_row_share_a_cross_fitting_fold():
    """A bootstrap resample holds copies of rows; cross-fitting must keep every copy of an observation in one fold,
    or a row's control v^ = t - m^(z, x) comes from a first stage that saw its copy (v^ shrinks, the first stage looks
    stronger than it is). Every row doubled: the cross-fitted first-stage R^2 with `groups` is the single copy's
    (same folds over the observations), without it the leak inflates it; groups = arange(n) is the default."""
    from reach.causal.control_function import _group_folds
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, 400)
    folds = _group_folds(ids, 5, np.random.default_rng(1))
    for i in np.unique(ids):
        assert np.unique(folds[ids == i]).size == 1
    assert np.bincount(folds, minlength=5).min() > 0
    design = DESIGNS["three_group"]()
    data = design.simulate(800, 3)
    x = np.column_stack([data.x, np.random.default_rng(5).normal(size=(data.t.size, 60))])  # columns it can overfit
    cfg = ControlFunctionConfig(seed=2, component_grid=(0,), penalty_grid=(1e-3,), first_stage_components=40)
    single = fit_control_function(data.t, data.z, x, data.y, cfg).info["first_stage_r2"]
    twice = np.tile(np.arange(data.t.size), 2)
    leaky = fit_control_function(data.t[twice], data.z[twice], x[twice], data.y[twice], cfg).info["first_stage_r2"]
    grouped = fit_control_function(data.t[twice], data.z[twice], x[twice], data.y[twice], cfg,
                                   groups=twice).info["first_stage_r2"]
    assert leaky > single + 0.2, (single, leaky)          # measured 0.16 vs 0.51
    assert abs(grouped - single) < 0.05, (single, grouped)  # measured 0.146
    plain = fit_control_function(data.t, data.z, x, data.y, cfg)
    same = fit_control_function(data.t, data.z, x, data.y, cfg, groups=np.arange(data.t.size))
    np.testing.assert_array_equal(plain.h_coef, same.h_coef)
    with pytest.raises(ValueError, match="groups has 3 entries"):
        fit_control_function(data.t, data.z, x, data.y, cfg, groups=np.arange(3))


def test_simulate_from_fit_permutes_the_residual_pairs_of_the_triangular_model(three_group_fit):
    """The simulated data set keeps the fit's first stage and structural function: t* - m^ is a permutation of the
    controls v^, and y* - h^(t*) - rho^(v*) the same permutation of the structural residuals e^, so the pairs
    survive while each pair moves to another row and the confounding (y - h^ correlated with v, through rho) is that
    of the data; the same generator state gives the same data set; a model without its rows' first stage is
    refused."""
    from reach.causal.control_function import simulate_from_fit

    design, data, model = three_group_fit
    m_hat = model.first_stage_rows
    v = data.t - m_hat
    e = data.y - model.predict(data.t, data.x) - model.control_curve(v)
    confounding = np.corrcoef(v, data.y - model.predict(data.t, data.x))[0, 1]
    assert confounding > 0.2                                   # the design's confounder u enters t and y
    t_star, y_star = simulate_from_fit(model, data.t, data.x, data.y, np.random.default_rng(8))
    v_star = t_star - m_hat
    e_star = y_star - model.predict(t_star, data.x) - model.control_curve(v_star)
    order = np.argsort(v)
    sorted_v = v[order]                                        # which row's control each row received (nearest)
    right = np.clip(np.searchsorted(sorted_v, v_star), 1, v.size - 1)
    nearest = np.where(np.abs(sorted_v[right] - v_star) < np.abs(sorted_v[right - 1] - v_star), right, right - 1)
    position = order[nearest]
    np.testing.assert_allclose(v[position], v_star, atol=1e-9)
    np.testing.assert_allclose(e[position], e_star, atol=1e-8)
    assert np.mean(position == np.arange(v.size)) < 0.01
    assert np.corrcoef(v_star, y_star - model.predict(t_star, data.x))[0, 1] == pytest.approx(confounding, abs=0.03)
    again = simulate_from_fit(model, data.t, data.x, data.y, np.random.default_rng(8))
    np.testing.assert_array_equal(again[0], t_star)
    np.testing.assert_array_equal(again[1], y_star)
    with pytest.raises(ValueError, match="training rows"):
        simulate_from_fit(model, data.t[:10], data.x[:10], data.y[:10], np.random.default_rng(0))
    bare = ControlFunctionModel.__new__(ControlFunctionModel)
    bare.first_stage_rows = None
    with pytest.raises(ValueError, match="first-stage fit per row"):
        simulate_from_fit(bare, data.t, data.x, data.y, np.random.default_rng(0))


def test_band_from_simulated_data_sets_matches_the_spread_over_data_sets():
    """What the width calibration exists for, against the truth of the three-group design: over independent data
    sets, the ensemble's average-curve error has a spread that the members' band understates, and the band widened by
    the simulated data sets' spread (simulate_from_fit, band_width_factor) carries it (implied sd within 0.8-1.25 of
    the spread over 30 data sets) and covers more of the true average FEI than the members' band."""
    from reach.causal.control_function import simulate_from_fit
    from reach.causal.fei import band_width_factor, bootstrap_mean_curve, fei_central_difference

    design = DESIGNS["three_group"]()
    n, members, sets = 2000, 5, 6
    errors, plain_sd, wide_sd, covered, plain_covered = [], [], [], [], []
    for seed in range(30):
        data = design.simulate(n, 40 + seed)
        grid = np.linspace(*np.quantile(data.t, [0.01, 0.99]), 21)
        truth = np.mean([design.truth_derivative(np.full(n, g), data.x) for g in grid], axis=1)
        rng = np.random.default_rng([seed, 3])

        def member(t, y, k):
            rows = rng.integers(0, n, n)
            oob = np.setdiff1d(np.arange(n), rows)
            fit = fit_control_function(t[rows], data.z[rows], data.x[rows], y[rows], ControlFunctionConfig(seed=k),
                                       validation=(t[oob], data.z[oob], data.x[oob], y[oob]), groups=rows)
            return fei_central_difference(lambda lv: fit.predict_grid(lv, data.x), grid, 0.05)[1]

        curves = np.stack([member(data.t, data.y, k) for k in range(members)])
        base = fit_control_function(data.t, data.z, data.x, data.y, ControlFunctionConfig(seed=99))
        simulated = np.stack([member(*simulate_from_fit(base, data.t, data.x, data.y, rng), 100 + k)
                              for k in range(sets)])
        factor = band_width_factor(curves, simulated)
        plain = bootstrap_mean_curve(curves, 300, seed)
        wide = bootstrap_mean_curve(curves, 300, seed, width_factor=factor)
        errors.append(plain["estimate"].to_numpy() - truth)
        plain_sd.append(((plain["upper"] - plain["lower"]) / 3.92).mean())
        wide_sd.append(((wide["upper"] - wide["lower"]) / 3.92).mean())
        covered.append(float(((wide["lower"] <= truth) & (truth <= wide["upper"])).mean()))
        plain_covered.append(float(((plain["lower"] <= truth) & (truth <= plain["upper"])).mean()))
    spread = float(np.std(np.stack(errors), axis=0, ddof=1).mean())
    print(f"spread over data sets {spread:.4f}; members' band sd {np.mean(plain_sd):.4f}; widened {np.mean(wide_sd):.4f}; "
          f"coverage {np.mean(covered):.3f} (members' band {np.mean(plain_covered):.3f})")
    # measured: spread 0.0243, members' band sd 0.0171, widened 0.0233; coverage 0.84 against the members' 0.72 (the
    # rest is the curve's bias at n = 2,000, which the workflow's smoothing-bias term adds to the band)
    assert np.mean(plain_sd) < 0.85 * spread
    assert 0.8 * spread <= np.mean(wide_sd) <= 1.25 * spread
    assert np.mean(covered) >= max(0.8, np.mean(plain_covered) + 0.08)



def test_curve_penalty_factors_are_chosen_on_held_out_rows_and_recorded():
    """curve_penalty_grid: one factor on the follower curve's columns beside the content block, chosen with the
    penalty on the held-out rows: the chosen loss is no worse than the grid without it (which it contains), every
    factor appears in the selection table, exactly one row is chosen, and the info names the chosen factor."""
    rng = np.random.default_rng(3)
    n, d = 3000, 60
    u, z = rng.normal(size=n), rng.normal(size=n)
    t = z + 0.8 * u + 0.5 * rng.normal(size=n)
    x = rng.normal(size=(n, d))
    y = 0.1 * t + 1.2 / (1.0 + np.exp(-2.5 * t)) + x[:, :20] @ np.full(20, 0.08) + 0.7 * u + 0.8 * rng.normal(size=n)
    va = np.arange(n) >= 2200
    fits = {grid: fit_control_function(
        t[~va], z[~va], x[~va], y[~va], ControlFunctionConfig(seed=1, component_grid=(0,), curve_penalty_grid=grid),
        validation=(t[va], z[va], x[va], y[va])) for grid in ((1.0,), (1.0, 0.1, 0.01, 0.001))}
    one, many = fits[(1.0,)], fits[(1.0, 0.1, 0.01, 0.001)]
    assert many.info["second_stage_val_loss"] <= one.info["second_stage_val_loss"] + 1e-12
    assert set(many.history["curve_penalty_factor"]) == {1.0, 0.1, 0.01, 0.001}
    assert many.history["chosen"].sum() == 1
    chosen = many.history[many.history["chosen"]].iloc[0]
    assert chosen["curve_penalty_factor"] == many.info["curve_penalty_factor"]
    assert chosen["val_loss"] == pytest.approx(many.history.loc[many.history["stage"] == "second", "val_loss"].min())


def test_reml_criterion_is_the_restricted_likelihood_of_a_second_library():
    """reml_criterion at a given sigma^2 against scipy's multivariate normal density of the error contrasts Q'y
    (Q orthonormal, orthogonal to the constant) under y ~ N(1 mu, sigma^2 (I + D_p P^-1 D_p')): differences between
    two penalty vectors agree (the criterion is -2 log likelihood up to a constant)."""
    from scipy.linalg import null_space
    from scipy.stats import multivariate_normal

    from reach.causal.control_function import reml_criterion
    rng = np.random.default_rng(2)
    n, p = 40, 5
    d = np.column_stack([np.ones(n), rng.normal(size=(n, p))])
    y = d @ rng.normal(size=p + 1) + rng.normal(size=n)
    q = null_space(np.ones((1, n)))
    sigma2 = 0.8

    def brute(pen: np.ndarray) -> float:
        dp = d[:, 1:]
        cov = sigma2 * (np.eye(n) + dp @ np.diag(1.0 / pen[1:]) @ dp.T)
        return -2.0 * multivariate_normal(np.zeros(n - 1), q.T @ cov @ q).logpdf(q.T @ y)

    pens = [np.array([0.0, 1, 1, 1, 1, 1]), np.array([0.0, 0.1, 10, 3, 1, 50])]
    ours = [reml_criterion(d.T @ d, d.T @ y, float(y @ y), n, pen, sigma2) for pen in pens]
    theirs = [brute(pen) for pen in pens]
    assert ours[1] - ours[0] == pytest.approx(theirs[1] - theirs[0], rel=1e-8, abs=1e-8)


def test_reml_block_penalties_find_each_blocks_prior_precision():
    """Coefficients drawn from a two-block prior (sd 1 and sd 0.1, i.e. penalties sigma^2 / 1 and sigma^2 / 0.01 with
    noise sd 1): the REML penalties fall within a factor of 2.5 of those precisions and keep their 100x order."""
    from reach.causal.control_function import reml_block_penalties
    rng = np.random.default_rng(4)
    n, k = 4000, 60
    d = np.column_stack([np.ones(n), rng.normal(size=(n, 2 * k))])
    beta = np.concatenate([[2.0], rng.normal(0, 1.0, k), rng.normal(0, 0.1, k)])
    y = d @ beta + rng.normal(size=n)
    blocks = np.concatenate([[-1], np.zeros(k, int), np.ones(k, int)])
    lam = reml_block_penalties(d, y, blocks)
    assert 1.0 / 2.5 < lam[0] < 2.5 and 100.0 / 2.5 < lam[1] < 250.0, lam


def test_reml_penalty_selection_fits_and_records_one_penalty_per_block(three_group_fit):
    """penalty_selection reml: one row per (knots, scaling, components) candidate, the block penalties as the penalty
    and its factors, the held-out loss choosing among candidates, and h's slopes still near the three-group truth's
    (per-group dh/dt error below 0.25 of the peak derivative: a sanity bound, the default path is held to 0.10)."""
    design, data, _ = three_group_fit
    test = design.simulate(2000, 99)
    x_train, x_test = _group_last(design, data), _group_last(design, test, seed=1)
    va = np.arange(data.t.size) >= 5000
    model = fit_control_function(data.t[~va], data.z[~va], x_train[~va], data.y[~va],
                                 ControlFunctionConfig(seed=1, component_grid=(0, 5), direct_columns=3,
                                                       penalty_selection="reml"),
                                 validation=(data.t[va], data.z[va], x_train[va], data.y[va]))
    h = model.history
    assert len(h) == 4 and h["chosen"].sum() == 1 and (h["penalty"] > 0).all()   # 2 scalings x 2 component counts
    assert {"curve_penalty_factor", "direct_penalty_factor", "control_penalty_factor"} <= set(h.columns)
    assert h["validation"].str.contains("REML").all()
    scores = derivative_errors(lambda grid, x: model.predict_grid(grid, x_test[:600]), design, test.x[:600], data.t)
    assert all(scores[f"dh_ratio_{g}"] < 0.25 for g in GROUPS), scores
