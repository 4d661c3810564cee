"""Deep IV (reach.causal.deepiv) against simulators with a known truth: a linear IV design with confounding (the
true slope is known; direct regression is biased), the demand simulation of Hartford et al. (2017), a Gaussian
first stage; plus persistence, determinism and API checks."""

import numpy as np
import pytest
import torch

from reach.causal.deepiv import DeepIVConfig, DeepIVModel, bootstrap_split, fit_deepiv, fit_direct, fit_ensemble
from reach.causal.demand import demand_mse, psi, simulate_demand, structural_g

# device="cpu": these tests compare reruns and save/load bit for bit, which CUDA kernels do not promise (the CUDA
# fits are checked against these within stated tolerances in tests/test_cuda.py)
FAST = dict(max_epochs=40, patience=8, batch_size=128, threads=1, device="cpu")


def linear_iv(n=2000, seed=0, slope=2.0):
    """y = slope * t + x1 + 1.5u + noise, t = z + x0 + u + noise: u confounds t and y; OLS of y on t is biased up."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    z = rng.normal(size=n)
    u = rng.normal(size=n)
    t = z + 0.5 * x[:, 0] + u + 0.3 * rng.normal(size=n)
    y = slope * t + x[:, 1] + 1.5 * u + 0.3 * rng.normal(size=n)
    return t, z, x, y


def slope_of(model, t, x):
    lo, hi = np.quantile(t, [0.2, 0.8])
    h = model.predict_grid(np.array([lo, hi]), x)
    return float(np.mean(h[:, 1] - h[:, 0]) / (hi - lo))


@pytest.fixture(scope="module")
def linear_fit():
    t, z, x, y = linear_iv()
    return (t, z, x, y), fit_deepiv(t, z, x, y, DeepIVConfig(seed=1, **FAST))


def test_linear_iv_recovers_the_causal_slope_where_direct_regression_is_biased(linear_fit):
    (t, z, x, y), model = linear_fit
    ols = np.linalg.lstsq(np.column_stack([np.ones_like(t), t, x]), y, rcond=None)[0][1]
    assert ols > 2.6                       # confounded: about 2 + 1.5 cov(t, u) / var(t | x)
    assert abs(slope_of(model, t, x) - 2.0) < 0.4
    assert abs(slope_of(model, t, x) - 2.0) < abs(ols - 2.0) / 2


def test_direct_regression_with_the_same_network_is_confounded(linear_fit, tmp_path):
    (t, z, x, y), model = linear_fit
    direct = fit_direct(t, x, y, DeepIVConfig(seed=1, **FAST))
    ols = np.linalg.lstsq(np.column_stack([np.ones_like(t), t, x]), y, rcond=None)[0][1]
    assert abs(slope_of(direct, t, x) - ols) < 0.25          # it learns E[y | t, x], not h
    assert abs(slope_of(model, t, x) - 2.0) < slope_of(direct, t, x) - 2.0 - 0.1   # Deep IV is closer to h
    direct.save(tmp_path / "direct.safetensors")
    loaded = DeepIVModel.load(tmp_path / "direct.safetensors", device="cpu")
    np.testing.assert_array_equal(loaded.predict(t[:50], x[:50]), direct.predict(t[:50], x[:50]))
    with pytest.raises(ValueError, match="no first stage"):
        loaded.first_stage_sample(x[:5], z[:5], 2)


def test_callback_sees_every_second_stage_epoch():
    t, z, x, y = linear_iv(n=500, seed=9)
    seen = []
    model = fit_deepiv(t, z, x, y, DeepIVConfig(seed=0, **{**FAST, "max_epochs": 4}),
                       callback=lambda m: seen.append(1) or {"probe": float(m.predict(t[:1], x[:1])[0])})
    second = model.history[model.history["stage"] == "second"]
    assert len(seen) == len(second) and np.isfinite(second["probe"]).all()


def test_first_stage_matches_the_gaussian_treatment_model(linear_fit):
    (t, z, x, y), model = linear_fit
    draws = model.first_stage_sample(x[:300], z[:300], 400, seed=3)
    assert draws.shape == (300, 400)
    mean_true = z[:300] + 0.5 * x[:300, 0]              # E[t | x, z]; sd(t | x, z) = sqrt(1 + 0.09)
    assert np.corrcoef(draws.mean(axis=1), mean_true)[0, 1] > 0.97
    assert abs(np.mean(draws.mean(axis=1) - mean_true)) < 0.15
    assert abs(np.median(draws.std(axis=1)) - np.sqrt(1.09)) < 0.2
    params = model.first_stage_params(x[:5], z[:5])
    np.testing.assert_allclose(params["weights"].sum(axis=1), 1.0, rtol=1e-5)
    assert params["means"].shape == (5, 10) and (params["sds"] > 0).all()


def test_history_logs_both_stages_and_mixture_diagnostics(linear_fit):
    _, model = linear_fit
    h = model.history
    assert set(h["stage"]) == {"first", "second"}
    first = h[h["stage"] == "first"]
    for col in ("train_loss", "val_loss", "min_sigma", "max_weight", "min_log_weight", "effective_components"):
        assert np.isfinite(first[col]).all()
    assert (first["min_sigma"] >= np.exp(-5.0) - 1e-9).all()
    assert np.isfinite(h[h["stage"] == "second"]["val_loss"]).all()
    assert model.info["first_stage_best_epoch"] >= 1 and model.info["second_stage_best_epoch"] >= 1


def test_predict_grid_matches_predict_row_by_row(linear_fit):
    (t, z, x, y), model = linear_fit
    grid = np.linspace(-2, 2, 7)
    g = model.predict_grid(grid, x[:50])
    assert g.shape == (50, 7)
    for j, tj in enumerate(grid):
        np.testing.assert_allclose(g[:, j], model.predict(np.full(50, tj), x[:50]), rtol=1e-5, atol=1e-5)
    # float32 matrix products differ in the last bits with the batch shape (BLAS kernels), hence atol
    np.testing.assert_allclose(model.predict_grid(grid, x[:50], batch_cells=20), g, rtol=1e-5, atol=1e-5)


def test_save_load_round_trip(linear_fit, tmp_path):
    (t, z, x, y), model = linear_fit
    path = tmp_path / "member-0.safetensors"
    model.save(path)
    loaded = DeepIVModel.load(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict(t[:100], x[:100]), model.predict(t[:100], x[:100]))
    np.testing.assert_array_equal(loaded.first_stage_sample(x[:20], z[:20], 5, seed=1),
                                  model.first_stage_sample(x[:20], z[:20], 5, seed=1))
    assert loaded.config == model.config
    assert loaded.history.shape == model.history.shape
    np.testing.assert_allclose(loaded.history["val_loss"], model.history["val_loss"])
    assert path.read_bytes()[:8] != b"\x80\x04\x95" and not (tmp_path / "member-0.json").exists()  # no pickle


def test_load_rejects_foreign_files(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="not a reach Deep IV model"):
        DeepIVModel.load(path)
    with pytest.raises(FileNotFoundError):
        DeepIVModel.load(tmp_path / "missing.safetensors")


def test_fit_is_deterministic_for_a_seed_and_leaves_global_rng_alone():
    t, z, x, y = linear_iv(n=600, seed=5)
    cfg = DeepIVConfig(seed=4, **{**FAST, "max_epochs": 5})
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = fit_deepiv(t, z, x, y, cfg)
    assert torch.rand(1) == before
    b = fit_deepiv(t, z, x, y, cfg)
    c = fit_deepiv(t, z, x, y, DeepIVConfig(seed=5, **{**FAST, "max_epochs": 5}))
    np.testing.assert_array_equal(a.predict(t, x), b.predict(t, x))
    assert not np.allclose(a.predict(t, x), c.predict(t, x))


@pytest.mark.parametrize("loss,n_samples", [("unbiased", 1), ("biased", 1), ("biased", 4), ("unbiased", 3)])
def test_both_losses_train(loss, n_samples):
    t, z, x, y = linear_iv(n=800, seed=6)
    model = fit_deepiv(t, z, x, y, DeepIVConfig(loss=loss, n_samples=n_samples, seed=2,
                                                **{**FAST, "max_epochs": 15}))
    second = model.history[model.history["stage"] == "second"]
    assert np.isfinite(second["train_loss"]).all()
    assert second["val_loss"].min() < second["val_loss"].iloc[0]   # it learns something
    assert np.isfinite(model.predict(t, x)).all()


def test_bad_inputs_are_named():
    t, z, x, y = linear_iv(n=200, seed=7)
    t[5] = np.nan
    with pytest.raises(ValueError, match="t is missing or infinite in 1 rows, e.g. row 5"):
        fit_deepiv(t, z, x, y, DeepIVConfig(**FAST))
    with pytest.raises(ValueError, match="x must be 2-D"):
        fit_deepiv(z, z, x[:, 0], y, DeepIVConfig(**FAST))
    with pytest.raises(ValueError, match="loss must be"):
        DeepIVConfig(loss="mse")


def test_ensemble_members_use_their_own_seed_and_bootstrap():
    t, z, x, y = linear_iv(n=500, seed=8)
    members = fit_ensemble(t, z, x, y, DeepIVConfig(seed=10, **{**FAST, "max_epochs": 3}), n_members=2)
    assert [m.config.seed for m in members] == [10, 11]
    assert [m.info["member"] for m in members] == [0, 1] and all(m.info["bootstrap"] for m in members)
    assert not np.allclose(members[0].predict(t, x), members[1].predict(t, x))
    tr, va = bootstrap_split(500, 0.1, np.random.default_rng(0))
    assert tr.size == 450 and va.size == 50 and not np.isin(tr, va).any() and np.unique(tr).size < 450


def test_demand_simulation_follows_its_equations():
    d = simulate_demand(20000, 0.5, seed=1)
    np.testing.assert_allclose(psi(np.array([5.0])), [-1.0])                    # 2(0 + 1 + 0.5 - 2)
    price = d.t * 3.7 + 17.779
    g_raw = (10 + price) * d.s * psi(d.time) - 2 * price
    np.testing.assert_allclose(d.g, (g_raw + 292.1) / 158)
    np.testing.assert_allclose(structural_g(d.t, d.time, d.s), d.g)
    assert set(np.unique(d.s)) == set(range(1, 8)) and d.x.shape == (20000, 8)
    e = d.y - d.g
    v = price - (25 + (d.z + 3) * psi(d.time))
    assert abs(np.corrcoef(e, v)[0, 1] - 0.5) < 0.03 and abs(e.std() - 1) < 0.03
    assert abs(demand_mse(lambda t, x: np.full(t.size, d.y.mean())) - 1.24) < 0.05   # published constant


def test_demand_smoke_deep_iv_beats_the_constant():
    d = simulate_demand(1500, 0.5, seed=2)
    model = fit_deepiv(d.t, d.z, d.x, d.y, DeepIVConfig(seed=0, **{**FAST, "max_epochs": 30}))
    mse = demand_mse(model.predict, n=2000, seed=9)
    assert mse < 0.6 * demand_mse(lambda t, x: np.full(t.size, d.y.mean()), n=2000, seed=9)


# ----------------------------------------------------------------------------------------- spline response
def test_restricted_cubic_basis_spans_patsys_natural_cubic_splines():
    """Oracle: patsy's cr() (natural cubic regression splines) with the same knots spans the same function space as
    [1, t, B_1..B_{K-2}], so least squares on either basis gives the same fit; beyond the outer knots it is linear."""
    from patsy import dmatrix

    from reach.causal.deepiv import restricted_cubic_basis

    rng = np.random.default_rng(3)
    knots = np.array([-1.6, -0.6, 0.0, 0.7, 1.5])
    t = np.sort(rng.uniform(knots[0], knots[-1], 400))
    y = np.sin(2 * t) + 0.3 * t ** 3 + 0.1 * rng.normal(size=t.size)
    ours = restricted_cubic_basis(torch.as_tensor(t), torch.as_tensor(knots)).numpy()
    ours = np.column_stack([np.ones_like(t), ours])
    assert ours.shape == (t.size, knots.size)
    theirs = np.asarray(dmatrix(f"cr(t, knots={list(knots[1:-1])}, lower_bound={knots[0]}, upper_bound={knots[-1]}) - 1",
                                {"t": t}))
    fit = lambda X: X @ np.linalg.lstsq(X, y, rcond=None)[0]  # noqa: E731
    np.testing.assert_allclose(fit(ours), fit(theirs), atol=1e-8)
    outside = torch.as_tensor(np.r_[np.linspace(-4, -1.6, 7), np.linspace(1.5, 4, 7)])
    basis = restricted_cubic_basis(outside, torch.as_tensor(knots)).numpy()
    np.testing.assert_allclose(np.diff(basis[:7], 2, axis=0), 0, atol=1e-9)   # linear below k_1
    np.testing.assert_allclose(np.diff(basis[7:], 2, axis=0), 0, atol=1e-9)   # and above k_K


def test_spline_response_learns_an_x_dependent_curvature():
    """No confounding (direct regression), h(t, x) = s(x) tanh(t) with s = +1 or -1 by a binary x: the FEI
    dh/dt = s sech^2(t) has opposite signs and a peak at t = 0 in the two groups."""
    rng = np.random.default_rng(8)
    n = 3000
    group = rng.integers(0, 2, n)
    x = np.column_stack([group, rng.normal(size=n)])
    t = 1.2 * rng.normal(size=n)
    sign = 2 * group - 1
    y = sign * np.tanh(t) + 0.2 * x[:, 1] + 0.2 * rng.normal(size=n)
    model = fit_direct(t, x, y, DeepIVConfig(seed=2, response="spline", **FAST))
    grid = np.array([-1.5, -0.05, 0.05, 1.5])
    for g in (0, 1):
        xg = np.column_stack([np.full(200, g), np.zeros(200)])
        h = model.predict_grid(grid, xg).mean(axis=0)
        slope_mid = (h[2] - h[1]) / 0.1                 # truth: (2g - 1) * 1
        assert abs(slope_mid - (2 * g - 1)) < 0.3
        assert abs(h[3] - h[0] - (2 * g - 1) * 2 * np.tanh(1.5)) < 0.4


def test_spline_response_recovers_the_linear_iv_slope_and_round_trips(tmp_path):
    t, z, x, y = linear_iv()
    model = fit_deepiv(t, z, x, y, DeepIVConfig(seed=1, response="spline", response_knots=4, **FAST))
    assert abs(slope_of(model, t, x) - 2.0) < 0.4
    assert np.all(np.diff(model.response.knots.numpy()) > 0)
    model.save(tmp_path / "spline.safetensors")
    loaded = DeepIVModel.load(tmp_path / "spline.safetensors", device="cpu")
    np.testing.assert_array_equal(loaded.response.knots.numpy(), model.response.knots.numpy())
    np.testing.assert_array_equal(loaded.predict(t[:100], x[:100]), model.predict(t[:100], x[:100]))
    with pytest.raises(ValueError, match="response must be"):
        DeepIVConfig(response="cubic")
    with pytest.raises(ValueError, match="response_knots"):
        DeepIVConfig(response="spline", response_knots=9)
    with pytest.raises(ValueError, match="too few distinct values"):
        fit_direct(np.repeat([0.0, 1.0], 50), x[:100], y[:100], DeepIVConfig(response="spline", **FAST))


def test_causal_validation_rows_are_the_kept_weights_held_out_loss(linear_fit):
    """The per-row causal validation loss (paired comparisons between estimators) is the kept weights' held-out
    loss: its mean is the best epoch's second-stage validation loss, and it is what info reports."""
    _, model = linear_fit
    rows = model.causal_validation_rows
    assert rows is not None and rows.ndim == 1 and (rows >= 0).all()
    assert rows.mean() == pytest.approx(model.info["second_stage_val_loss"], rel=1e-5)
    assert model.info["causal_validation_loss"] == model.info["second_stage_val_loss"]


def test_optimiser_step_is_adams_clipped_step_and_refuses_a_non_finite_loss():
    from reach.causal.training import optimiser_step
    from reach.ema import ParameterEMA

    def setup():
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 1)
        return net, torch.optim.Adam(net.parameters(), lr=0.1)

    xb, yb = torch.randn(8, 3), torch.randn(8, 1) * 50          # large targets: the gradient norm exceeds the clip
    net, opt = setup()
    ema = ParameterEMA(net, 0.5)
    got = optimiser_step(((net(xb) - yb) ** 2).mean(), opt, net, 1.0, ema, "test loss")
    ref, ref_opt = setup()                                         # the same step written out by hand
    loss = ((ref(xb) - yb) ** 2).mean()
    loss.backward()
    assert torch.nn.utils.clip_grad_norm_(ref.parameters(), 1.0) > 1.0
    ref_opt.step()
    assert got == pytest.approx(float(loss))
    for a, b in zip(net.parameters(), ref.parameters()):
        assert torch.equal(a, b)
    with ema.applied():                                            # the average moved halfway from the start
        assert not torch.equal(next(net.parameters()), next(ref.parameters()))
    with pytest.raises(FloatingPointError, match="non-finite test loss"):
        optimiser_step(torch.tensor(float("nan"), requires_grad=True), opt, net, 1.0, None, "test loss")
