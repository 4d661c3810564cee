"""CUDA against CPU (issue 20). Marked `cuda` and skipped without a CUDA device; on a GPU machine run
`pytest -m cuda tests/test_cuda.py` (benchmarks/gpu.sh does). The other tests pin device="cpu" where they assert
bit-identity; these state their tolerances instead:

* the same weights, forward passes (Deep IV h and F, the VS-VAE encoder/decoder and Eq. 16 terms, EfficientNet-Lite0
  features), TF32 off (`strict_fp32`): float32 on both sides, results differ only by summation order, so relative
  error (||cuda - cpu|| / ||cpu||) < 1e-5 (Deep IV's small dense nets), < 1e-4 (LSTMs over 8 steps and 16 conv
  blocks);
* the same as the library runs by default on CUDA: cuDNN convolutions in TF32 for the image features (inputs and
  weights rounded to a 10-bit mantissa): embeddings < 8e-2, probabilities < 2e-2 (on the CPU, emulating TF32's
  rounding in every convolution and linear layer of the same random-weight network gave 1.8e-2 and 4.1e-3: random
  weights amplify rounding more than trained ones); the VS-VAE under bfloat16 autocast: mu < 3e-2 and the Eq. 16
  loss < 5e-3 (CPU bfloat16 autocast of the same model: 3.1e-3 and 3.5e-5);
* a short fit (Deep IV, 8 epochs per stage, dropout 0 so that no CUDA random stream enters; VS-VAE 2 epochs in
  float32): the same seed gives the same shuffles and Monte Carlo draws (CPU generators), so only rounding differs.
  Held-out losses per epoch within 1e-3 relative and h on a grid within 1e-2 sd(y). On the CPU, perturbing the
  inputs by 1e-6 (relative) moved this fit's h by 2e-6 sd(y), while another seed moves it by 0.76 sd(y): the
  tolerance sits 5,000x above the first and 76x below the second.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

# "cpu" rehearses these code paths CPU against CPU (benchmarks/gpu.sh --dry-run does, to catch mistakes before GPU
# minutes are spent): nothing is compared with CUDA then, and only the bfloat16 tolerance is exercised.
DEVICE = os.environ.get("REACH_CUDA_TEST_DEVICE", "cuda")

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                 reason="needs a CUDA device (torch.cuda.is_available() is False here); these "
                                        "CUDA-vs-CPU checks run on a GPU machine, e.g. through benchmarks/gpu.sh")]


def rel_err(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


@pytest.fixture
def strict_fp32():
    """TF32 off: cuBLAS and cuDNN (convolutions and RNNs) compute in full float32 for the test's duration."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


# ----------------------------------------------------------------------------------------------- Deep IV
def linear_iv(n=1000, seed=3, slope=2.0):
    """tests/test_deepiv.py's design (u confounds t and y), smaller."""
    from test_deepiv import linear_iv as design

    return design(n=n, seed=seed, slope=slope)


DEEPIV_SHORT = dict(seed=1, max_epochs=8, first_stage_max_epochs=8, patience=8, min_epochs=0, batch_size=128,
                    threads=1, dropout=0.0)


@pytest.fixture(scope="module")
def deepiv_pair():
    from reach.causal.deepiv import DeepIVConfig, fit_deepiv

    t, z, x, y = linear_iv()
    cpu = fit_deepiv(t, z, x, y, DeepIVConfig(device="cpu", **DEEPIV_SHORT))
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        gpu = fit_deepiv(t, z, x, y, DeepIVConfig(device=DEVICE, **DEEPIV_SHORT))
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
    return (t, z, x, y), cpu, gpu


def test_deepiv_same_weights_predict_alike_on_cuda(deepiv_pair, tmp_path, strict_fp32):
    from reach.causal.deepiv import DeepIVModel

    (t, z, x, y), cpu, _ = deepiv_pair
    cpu.save(tmp_path / "m.safetensors")
    gpu = DeepIVModel.load(tmp_path / "m.safetensors", device=DEVICE)
    assert gpu.device.type == DEVICE and next(gpu.response.parameters()).device.type == DEVICE
    assert rel_err(gpu.predict(t, x), cpu.predict(t, x)) < 1e-5
    grid = np.linspace(-2, 2, 9)
    assert rel_err(gpu.predict_grid(grid, x[:300]), cpu.predict_grid(grid, x[:300])) < 1e-5
    pg, pc = gpu.first_stage_params(x[:300], z[:300]), cpu.first_stage_params(x[:300], z[:300])
    for k in ("weights", "means", "sds"):
        assert rel_err(pg[k], pc[k]) < 1e-5, k
    assert abs(gpu.first_stage_nll(t, x, z) - cpu.first_stage_nll(t, x, z)) < 1e-5


def test_deepiv_short_fit_on_cuda_matches_the_cpu_fit(deepiv_pair):
    (t, z, x, y), cpu, gpu = deepiv_pair
    assert gpu.info["device"].startswith(DEVICE) and cpu.info["device"] == "cpu"
    for stage in ("first", "second"):
        hc = cpu.history[cpu.history["stage"] == stage]["val_loss"].to_numpy()
        hg = gpu.history[gpu.history["stage"] == stage]["val_loss"].to_numpy()
        assert hc.shape == hg.shape
        np.testing.assert_allclose(hg, hc, rtol=1e-3, err_msg=f"{stage}-stage held-out loss per epoch")
    assert gpu.info["first_stage_best_epoch"] == cpu.info["first_stage_best_epoch"]
    assert gpu.info["second_stage_best_epoch"] == cpu.info["second_stage_best_epoch"]
    grid = np.quantile(t, [0.1, 0.3, 0.5, 0.7, 0.9])
    diff = np.abs(gpu.predict_grid(grid, x[:200]) - cpu.predict_grid(grid, x[:200]))
    assert diff.max() < 1e-2 * y.std()


# ----------------------------------------------------------------------------------------------- VS-VAE
@pytest.fixture(scope="module")
def vsvae_world():
    from represent_fixtures import make_features

    from reach.represent.data import prepare

    arrays, videos, _ = make_features()
    return prepare(arrays, videos, seed=3, max_words=8, max_frames=4, vocab_min_count=1)


VSVAE_SMALL = dict(latent_size=4, width_scale=0.5, min_width=4, lr=3e-3, weight_decay=0.0, batch_size=16, max_words=8,
                   max_frames=4, vocab_min_count=1, learn_noise=True)


def _forward(model, data, dev, amp: bool):
    from reach.represent.model import loss_terms
    from reach.represent.train import to_tensors

    model = copy.deepcopy(model).to(dev).eval()
    b = to_tensors(data, np.arange(64), torch.device(dev))
    ctx = torch.autocast(DEVICE, dtype=torch.bfloat16) if amp else torch.autocast("cpu", enabled=False)
    with torch.no_grad(), ctx:
        mu, ls = model.encode(b)
        out, mu_s, ls_s = model(b, sample=True, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        terms = loss_terms(out, b, mu_s, ls_s, model.log_noise)
    res = {"mu": mu, "log_sigma": ls, **{k: v for k, v in out.items()}}
    return ({k: v.float().cpu().numpy() for k, v in res.items()}, {k: float(v) for k, v in terms.items()})


def test_vsvae_same_weights_forward_alike_on_cuda(vsvae_world, strict_fp32):
    from reach.represent.train import VSVAEConfig, build_model, posterior

    data = vsvae_world
    model = build_model(data.dims, VSVAEConfig(**VSVAE_SMALL))
    out_c, terms_c = _forward(model, data, "cpu", False)
    out_g, terms_g = _forward(model, data, DEVICE, False)
    for k in out_c:
        assert rel_err(out_g[k], out_c[k]) < 1e-4, k
    for k in terms_c:                      # the noise is drawn on the CPU generator: the same draws on both
        assert abs(terms_g[k] - terms_c[k]) <= 1e-4 * max(1.0, abs(terms_c[k])), k
    mu_g, _ = posterior(model, data, device=DEVICE)
    mu_c, _ = posterior(model, data, device="cpu")
    assert rel_err(mu_g, mu_c) < 1e-4 and np.std(mu_c) > 0


def test_vsvae_bf16_autocast_forward_stays_near_float32(vsvae_world):
    from reach.represent.train import VSVAEConfig, build_model

    data = vsvae_world
    model = build_model(data.dims, VSVAEConfig(**VSVAE_SMALL))
    out_c, terms_c = _forward(model, data, "cpu", False)
    out_b, terms_b = _forward(model, data, DEVICE, True)
    assert rel_err(out_b["mu"], out_c["mu"]) < 3e-2
    assert abs(terms_b["loss"] - terms_c["loss"]) < 5e-3 * abs(terms_c["loss"])


def test_vsvae_short_fit_on_cuda_matches_the_cpu_fit(vsvae_world, strict_fp32):
    from reach.represent.train import VSVAEConfig, fit, posterior

    data = vsvae_world
    cfg = VSVAEConfig(**VSVAE_SMALL, max_epochs=2, amp=False, seed=5)
    cpu, gpu = fit(data, cfg, device="cpu"), fit(data, cfg, device=DEVICE)
    assert gpu.device.startswith(DEVICE) and not gpu.amp
    np.testing.assert_allclose(gpu.history["val_loss"], cpu.history["val_loss"], rtol=1e-3)
    mu_g, _ = posterior(gpu.model, data, device="cpu")
    mu_c, _ = posterior(cpu.model, data, device="cpu")
    assert np.abs(mu_g - mu_c).max() < 1e-2 * max(np.std(mu_c), 1e-6)


# ----------------------------------------------------------------------------------------------- image features
def calibrate_batchnorm(model, size, batches=2, seed=7):
    """Batch-norm running statistics from forward passes over random frames (as a trained network's would be set
    from its data): with the initial statistics (mean 0, variance 1) a random-weight EfficientNet's features fade
    to ~1e-8 and any comparison of them would pass."""
    from torch import nn

    from reach.features.image import LITE0_MEAN, LITE0_STD

    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.momentum = None          # cumulative average over the calibration batches
            mod.reset_running_stats()
    model.train()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(batches):
            frames = torch.randint(0, 256, (16, 3, *size), generator=g).float()
            model.extract_features((frames - LITE0_MEAN) / LITE0_STD)
    return model.eval()


@pytest.fixture(scope="module")
def lite0_weights(tmp_path_factory):
    pytest.importorskip("efficientnet_pytorch", reason="efficientnet_pytorch missing (benchmarks/gpu.sh carries it)")
    from reach.features.image import build_efficientnet_lite0

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = calibrate_batchnorm(build_efficientnet_lite0(), (96, 64))
    path = tmp_path_factory.mktemp("lite0") / "lite0-random.pt"
    torch.save(model.state_dict(), path)
    return path


def _frames(n=6, h=96, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_image_features_same_weights_alike_on_cuda(lite0_weights, strict_fp32):
    from reach.features.image import load_efficientnet_lite0

    frames = _frames()
    e_c, p_c = load_efficientnet_lite0(lite0_weights, device="cpu").run(frames, batch_size=4)
    e_g, p_g = load_efficientnet_lite0(lite0_weights, device=DEVICE).run(frames, batch_size=4)
    assert e_c.shape == e_g.shape == (6, 1280) and np.std(e_c) > 0.01 and np.ptp(p_c, axis=1).max() > 1e-4
    assert rel_err(e_g, e_c) < 1e-4
    assert rel_err(p_g, p_c) < 1e-4


def test_image_features_with_cuda_defaults_stay_within_tf32_rounding(lite0_weights):
    from reach.features.image import load_efficientnet_lite0

    frames = _frames(seed=1)
    e_c, p_c = load_efficientnet_lite0(lite0_weights, device="cpu").run(frames, batch_size=4)
    e_g, p_g = load_efficientnet_lite0(lite0_weights, device=DEVICE).run(frames, batch_size=4)
    assert rel_err(e_g, e_c) < 8e-2
    assert rel_err(p_g, p_c) < 2e-2
