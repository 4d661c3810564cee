"""VS-VAE (reach.represent): inputs, the Eq. 16 loss against a hand computation, the 8:1:1 split, determinism and
resuming, safetensors round trip, and a small fit that beats the no-information rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from reach.represent.data import PAD, TEXT_SOURCES, UNK, prepare, stratified_split
from reach.represent.evaluate import focal_neighbours, nearest, neighbour_rates, table2, text_nir_ids
from reach.represent.model import VSVAE, layer_widths, loss_terms
from reach.represent.train import (VSVAEConfig, build_model, check_videos, fit, load_weights, posterior, r_table,
                                   reconstruct, save_weights, to_tensors)
from represent_fixtures import make_features

SMALL = dict(latent_size=4, width_scale=0.5, min_width=4, lr=3e-3, weight_decay=0.0, batch_size=16, max_words=8,
             max_frames=4, vocab_min_count=1)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """CI runs two test workers on two cores: more torch threads only contend (and fits are deterministic for a
    given thread count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world():
    arrays, videos, z = make_features()
    data = prepare(arrays, videos, seed=3, max_words=8, max_frames=4, vocab_min_count=1)
    return arrays, videos, z, data


def test_inputs_have_the_feature_widths_and_padding(world):
    arrays, videos, _, data = world
    n = len(videos)
    assert data.dims["word_dim"] == 8 and data.dims["frame_dim"] == 12 and data.dims["image_vector_dim"] == 6
    assert data.dims["audio_dim"] == 1 + 5 + 3 and data.dims["editing_dim"] == 7
    assert data.frames.shape == (n, 4, 12) and data.text_ids["caption"].shape == (n, 8)
    lens = np.diff(arrays["image"]["frame_embed__offsets"])
    np.testing.assert_array_equal(data.n_frames, lens)
    assert (data.frames[np.arange(4)[None, :] >= lens[:, None]] == 0).all()
    # ids follow the tokens; padding beyond the length; stickers missing for odd videos, voice for all
    assert (data.text_ids["caption"][:, :6] >= 2).all() and (data.text_ids["caption"][:, 6:] == PAD).all()
    assert (data.text_lengths["sticker"][1::2] == 0).all() and (data.text_lengths["voice"] == 0).all()
    word = data.vocab[data.text_ids["caption"][0, 0]]
    assert word == str(arrays["text"]["caption_tokens"][0])
    # training-split standardisation; the NaN is masked, not imputed into the loss
    train = data.split == "train"
    np.testing.assert_allclose(data.audio[train].mean(0), 0, atol=1e-5)
    assert data.editing_mask[3, 2] == 0 and data.editing[3, 2] == 0 and data.editing_mask.sum() == n * 7 - 1


def test_rows_out_of_order_are_refused(world):
    arrays, videos, _, _ = world
    swapped = {**arrays, "audio": {**arrays["audio"], "video_id": arrays["audio"]["video_id"][::-1]}}
    with pytest.raises(ValueError, match="audio.npz: video_id is not in videos.parquet order.*row 0"):
        prepare(swapped, videos, seed=0, sources={"text": "t", "image": "i", "audio": "audio.npz", "editing": "e"})


def test_unknown_words_map_to_unk():
    arrays, videos, _ = make_features(n=40)
    data = prepare(arrays, videos, seed=0, vocab=["<pad>", "<unk>", "w0"], max_words=8)
    ids = data.text_ids["caption"][data.text_lengths["caption"][:, None] > np.arange(8)[None, :]]
    assert set(np.unique(ids)) <= {UNK, 2} and (ids == UNK).any()


@pytest.mark.parametrize("sizes", [[10, 20, 37, 3, 110], [6] * 6])
def test_split_is_8_1_1_within_every_hashtag(sizes):
    groups = np.concatenate([[f"h{k}"] * m for k, m in enumerate(sizes)])
    split = stratified_split(groups, seed=5)
    for k, m in enumerate(sizes):
        s = split[groups == f"h{k}"]
        counts = np.array([(s == x).sum() for x in ("train", "val", "test")])
        assert counts.sum() == m
        if m >= 10:  # largest-remainder rounding of 8:1:1
            assert np.all(np.abs(counts - m * np.array([0.8, 0.1, 0.1])) < 1.0), (m, counts)
        assert counts[1] >= 1 and counts[2] >= 1  # m >= 3: every split gets a video of every hashtag
    # random within hashtag, reproducible for a seed
    assert np.array_equal(split, stratified_split(groups, seed=5))
    assert not np.array_equal(split, stratified_split(groups, seed=6))


def test_widths_scale_with_input_widths():
    dims = {"word_dim": 300, "frame_dim": 4096, "image_vector_dim": 3089, "audio_dim": 543, "editing_dim": 157}
    w = layer_widths(dims, latent=256, width_scale=1.0)
    assert (w.text_lstm, w.text_dense, w.image_lstm, w.image_dense, w.audio_dense, w.editing_dense) == \
        (64, 64, 4096, (4096, 1024, 512), 64, 16)
    assert w.joint == 656  # Web Appendix B: "the encoded features of size 656"
    half = layer_widths({**dims, "frame_dim": 2048, "image_vector_dim": 3089 - 2048 + 0}, width_scale=1.0)
    assert half.image_lstm == 2048
    wide = layer_widths(dims, latent=256, width_scale=1.0, editing_width=128)
    assert wide.editing_dense == 128 and wide.joint == 656 - 16 + 128 and wide.text_dense == 64
    loud = layer_widths(dims, latent=256, width_scale=1.0, audio_width=100)
    assert loud.audio_dense == 100 and loud.joint == 656 - 64 + 100 and loud.editing_dense == 16


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_embedding_activation_makes_mu_affine_in_audio_and_editing(world, activation):
    """With embedding_activation "linear" the joint encoder sees an unrectified projection of the audio and editing
    features, so mu is exactly affine in each of them (other inputs fixed), also when extrapolating; with the
    paper's ReLU it is not."""
    _, _, _, data = world
    model = build_model(data.dims, VSVAEConfig(**SMALL, embedding_activation=activation))
    b = to_tensors(data, np.arange(3), torch.device("cpu"))
    rng = np.random.default_rng(4)
    gaps = []
    for key in ("audio", "editing"):
        one = dict(b)
        two = dict(b, **{key: b[key] + torch.as_tensor(rng.normal(0, 2, b[key].shape), dtype=torch.float32)})
        mix = dict(b, **{key: -1.5 * one[key] + 2.5 * two[key]})  # weights sum to 1, outside [0, 1]
        with torch.no_grad():
            mu1, mu2, mu_mix = (model.encode(x)[0].double() for x in (one, two, mix))
        gaps.append(float((mu_mix - (-1.5 * mu1 + 2.5 * mu2)).abs().max()))
    if activation == "linear":
        assert max(gaps) < 1e-4, gaps
    else:
        assert min(gaps) > 1e-3, gaps
    with pytest.raises(ValueError, match="embedding_activation"):
        build_model(data.dims, VSVAEConfig(**SMALL, embedding_activation="tanh"))


def test_forward_shapes(world):
    _, _, _, data = world
    cfg = VSVAEConfig(**SMALL)
    model = build_model(data.dims, cfg)
    b = to_tensors(data, np.arange(5), torch.device("cpu"))
    out, mu, ls = model(b, generator=torch.Generator().manual_seed(0))
    V = len(data.vocab)
    assert mu.shape == ls.shape == (5, 4)
    for s in TEXT_SOURCES:
        assert out[f"{s}_logits"].shape == (5, 8, V)
    assert out["frames"].shape == (5, 4, 12) and out["image_vector"].shape == (5, 6)
    assert out["audio"].shape == (5, 9) and out["editing"].shape == (5, 7)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_loss_is_reconstruction_plus_kl_by_hand(world):
    """Eq. 16 on a batch of three videos, recomputed in numpy from the decoder outputs."""
    _, _, _, data = world
    model = build_model(data.dims, VSVAEConfig(**SMALL))
    rows = np.array([0, 1, 3])  # video 3 has the NaN editing value; video 1 no sticker
    b = to_tensors(data, rows, torch.device("cpu"))
    with torch.no_grad():
        out, mu, ls = model(b, generator=torch.Generator().manual_seed(1))
        terms = loss_terms(out, b, mu, ls)
    o = {k: v.numpy().astype(np.float64) for k, v in out.items()}
    mu, ls = mu.numpy().astype(np.float64), ls.numpy().astype(np.float64)
    n = len(rows)
    text = 0.0
    for s in TEXT_SOURCES:
        lp = _log_softmax(o[f"{s}_logits"])
        for i, row in enumerate(rows):
            for pos in range(data.text_lengths[s][row]):
                text -= lp[i, pos, data.text_ids[s][row, pos]]
    frames = sum(((o["frames"][i, :data.n_frames[r]] - data.frames[r, :data.n_frames[r]]) ** 2).sum()
                 for i, r in enumerate(rows))
    vec = (((o["image_vector"] - data.image_vector[rows]) ** 2)).sum()
    audio = ((o["audio"] - data.audio[rows]) ** 2).sum()
    ed_err = (o["editing"] - data.editing[rows]) ** 2
    ed_err[2, 2] = 0.0  # the missing value of video 3 enters no loss
    kl = 0.5 * (mu ** 2 + np.exp(2 * ls) - 1 - 2 * ls).sum()
    expected = {"text": text / n, "image": 0.5 * (frames + vec) / n, "audio": 0.5 * audio / n,
                "editing": 0.5 * ed_err.sum() / n, "kl": kl / n}
    for k, v in expected.items():
        assert float(terms[k]) == pytest.approx(v, rel=1e-5), k
    assert float(terms["loss"]) == pytest.approx(sum(expected.values()), rel=1e-5)


def test_learned_noise_loss_by_hand_and_unit_noise_is_eq16(world):
    """Learned per-column noise: at log sd 0 the terms equal Eq. 16's; at other values they follow
    0.5 * e^2 / s^2 + log s per observed entry (checked on audio and the editing column with a missing value)."""
    _, _, _, data = world
    model = build_model(data.dims, VSVAEConfig(**SMALL, learn_noise=True))
    rows = np.array([0, 1, 3])
    b = to_tensors(data, rows, torch.device("cpu"))
    with torch.no_grad():
        out, mu, ls = model(b, generator=torch.Generator().manual_seed(1))
        plain = loss_terms(out, b, mu, ls)
        unit = loss_terms(out, b, mu, ls, model.log_noise)
        for k in ("image", "audio", "editing", "loss"):
            assert float(unit[k]) == pytest.approx(float(plain[k]), rel=1e-6), k
        rng = np.random.default_rng(0)
        for m in model.log_noise:
            model.log_noise[m].copy_(torch.as_tensor(rng.uniform(-1, 1, model.log_noise[m].shape), dtype=torch.float32))
        terms = loss_terms(out, b, mu, ls, model.log_noise)
    o = {k: v.numpy().astype(np.float64) for k, v in out.items()}
    n = len(rows)
    ln_a = model.log_noise["audio"].detach().numpy().astype(np.float64)
    audio = (0.5 * (o["audio"] - data.audio[rows]) ** 2 * np.exp(-2 * ln_a) + ln_a).sum() / n
    ln_e = model.log_noise["editing"].detach().numpy().astype(np.float64)
    per = 0.5 * (o["editing"] - data.editing[rows]) ** 2 * np.exp(-2 * ln_e) + ln_e
    per[2, 2] = 0.0  # the missing value of video 3 enters no loss
    assert float(terms["audio"]) == pytest.approx(audio, rel=1e-5)
    assert float(terms["editing"]) == pytest.approx(per.sum() / n, rel=1e-5)
    assert float(terms["text"]) == pytest.approx(float(plain["text"]), rel=1e-6)


@pytest.mark.parametrize("noise_lr", [None, 0.05])
def test_noise_lr_sets_the_step_of_the_learned_noise(world, noise_lr):
    """Adam's first step moves every parameter with a non-zero gradient by its rate times g / (|g| + eps), so by
    almost exactly the rate: the log noise sds by noise_lr (lr when None), every other parameter by lr."""
    from reach.represent.train import _optimizer

    _, _, _, data = world
    cfg = VSVAEConfig(**SMALL, learn_noise=True, noise_lr=noise_lr)
    model = build_model(data.dims, cfg)
    opt = _optimizer(model, cfg)
    b = to_tensors(data, np.arange(8), torch.device("cpu"))
    out, mu, ls = model(b, generator=torch.Generator().manual_seed(1))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt.zero_grad()
    loss_terms(out, b, mu, ls, model.log_noise)["loss"].backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    opt.step()
    expected_noise = cfg.lr if noise_lr is None else noise_lr
    seen = set()
    for n, p in model.named_parameters():
        g = grads.get(n)
        if g is None:
            continue
        moved = g.abs() > 1e-4  # well above Adam's eps, so the step is the rate to 1e-4 relative
        step = (p.detach() - before[n]).abs()[moved]
        rate = expected_noise if n.startswith("log_noise.") else cfg.lr
        np.testing.assert_allclose(step.numpy(), rate, rtol=1e-3, err_msg=n)
        seen.add(n.split(".")[0])
    assert "log_noise" in seen and len(seen) > 5


def test_kl_vanishes_at_the_prior(world):
    _, _, _, data = world
    model = build_model(data.dims, VSVAEConfig(**SMALL))
    b = to_tensors(data, np.arange(4), torch.device("cpu"))
    with torch.no_grad():
        out, _, _ = model(b, sample=False)
        terms = loss_terms(out, b, torch.zeros(4, 4), torch.zeros(4, 4))
    assert float(terms["kl"]) == 0.0


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_fit_is_deterministic_and_resumes_exactly(world, tmp_path, ema):
    _, _, _, data = world
    cfg = VSVAEConfig(**SMALL, max_epochs=4, patience=10, seed=11, ema=ema)
    a = fit(data, cfg, device="cpu")
    b = fit(data, cfg, device="cpu")
    pd.testing.assert_frame_equal(a.history.drop(columns="seconds"), b.history.drop(columns="seconds"))
    for (k, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), k
    ckpt = tmp_path / "scratch" / "vsvae.ckpt"
    part = fit(data, cfg, device="cpu", checkpoint=ckpt, stop_after=2)
    assert not part.finished and len(part.history) == 2 and ckpt.exists()
    rest = fit(data, cfg, device="cpu", checkpoint=ckpt)
    assert rest.finished
    pd.testing.assert_frame_equal(a.history.drop(columns="seconds"), rest.history.drop(columns="seconds"))
    for (k, x), (_, y) in zip(a.model.state_dict().items(), rest.model.state_dict().items()):
        assert torch.equal(x, y), k
    other = fit(data, VSVAEConfig(**SMALL, max_epochs=1, seed=12), device="cpu")
    assert other.history["train_loss"].iloc[0] != a.history["train_loss"].iloc[0]


def test_validation_and_kept_weights_are_the_weight_average(world):
    """With ema the validation loss of an epoch is that of the averaged weights, and those are what the fit keeps:
    re-evaluating the returned model reproduces the best epoch's logged validation loss (and without averaging
    the two fits differ)."""
    from reach.represent.train import evaluate_loss

    _, _, _, data = world
    cfg = VSVAEConfig(**SMALL, max_epochs=3, patience=10, seed=5, ema=0.95, learn_noise=True)
    res = fit(data, cfg, device="cpu")
    t_val = to_tensors(data, data.rows("val"), torch.device("cpu"))
    again = evaluate_loss(res.model, t_val, 256, torch.device("cpu"), False, cfg.seed + 3)
    best = res.history.loc[res.history["epoch"] == res.best_epoch].iloc[0]
    assert again["loss"] == pytest.approx(float(best["val_loss"]), rel=1e-6)
    plain = fit(data, VSVAEConfig(**{**cfg.__dict__, "ema": 0.0}), device="cpu")
    assert plain.history["val_loss"].iloc[-1] != pytest.approx(res.history["val_loss"].iloc[-1], rel=1e-6)


def test_checkpoint_of_other_settings_is_ignored(world, tmp_path):
    _, _, _, data = world
    ckpt = tmp_path / "vsvae.ckpt"
    fit(data, VSVAEConfig(**SMALL, max_epochs=2, seed=1), device="cpu", checkpoint=ckpt, stop_after=1)
    res = fit(data, VSVAEConfig(**SMALL, max_epochs=2, seed=2), device="cpu", checkpoint=ckpt)
    assert list(res.history["epoch"]) == [1, 2]


def test_cut_sequences_are_counted(world):
    arrays, videos, _, _ = world
    short = prepare(arrays, videos, seed=3, max_words=2, max_frames=1, vocab_min_count=1)
    frames = np.diff(arrays["image"]["frame_embed__offsets"])
    assert short.truncated["frames"] == int((frames > 1).sum()) > 0
    for s in TEXT_SOURCES:
        assert short.truncated[s] == int((np.diff(arrays["text"][f"{s}_tokens__offsets"]) > 2).sum())
    assert short.truncated["caption"] > 0
    wide = prepare(arrays, videos, seed=3, max_words=64, max_frames=64, vocab_min_count=1)
    assert not any(wide.truncated.values())


def test_a_checkpoint_is_tied_to_every_input_value_not_the_first_rows_only(world):
    import dataclasses

    from reach.represent.train import fingerprint

    _, _, _, data = world
    cfg = VSVAEConfig(**SMALL)
    base = fingerprint(data, cfg)
    assert fingerprint(data, cfg) == base
    s = TEXT_SOURCES[0]
    ids = {k: v.copy() for k, v in data.text_ids.items()}
    ids[s][-1, 0] = (ids[s][-1, 0] + 1) % max(int(ids[s].max()), 2)      # one word of the last video
    assert fingerprint(dataclasses.replace(data, text_ids=ids), cfg) != base
    editing = data.editing.copy()
    editing[-1] += 1.0                                                    # a row far below the first 64
    assert fingerprint(dataclasses.replace(data, editing=editing), cfg) != base


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_weights_round_trip_through_safetensors(world, tmp_path, activation):
    _, videos, _, data = world
    cfg = VSVAEConfig(**SMALL, max_epochs=1, embedding_activation=activation, audio_width=6)
    res = fit(data, cfg, device="cpu")
    path = tmp_path / "vsvae.safetensors"
    save_weights(path, res.model, data, cfg, {"best_epoch": res.best_epoch})
    saved = load_weights(path)
    assert saved.cfg == cfg and saved.vocab == data.vocab and saved.extra == {"best_epoch": 1}
    np.testing.assert_array_equal(saved.split, data.split)
    for name, sc in data.scalers.items():
        np.testing.assert_array_equal(saved.scalers[name].mean, sc.mean)
    for (k, x), (k2, y) in zip(res.model.state_dict().items(), saved.model.state_dict().items()):
        assert k == k2 and torch.equal(x, y)
    check_videos(saved, videos["video_id"])
    with pytest.raises(ValueError, match="another list of videos"):
        check_videos(saved, videos["video_id"].iloc[1:])
    # the reloaded model encodes the same r from inputs rebuilt with the saved vocabulary, scalers and split
    arrays, _, _ = make_features()
    again = prepare(arrays, videos, seed=99, max_words=8, max_frames=4, split=saved.split, vocab=saved.vocab,
                    scalers=saved.scalers)
    np.testing.assert_array_equal(posterior(res.model, data, device="cpu")[0],
                                  posterior(saved.model, again, device="cpu")[0])
    bad = tmp_path / "other.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(bad), metadata={"format": "something"})
    with pytest.raises(ValueError, match="not a VS-VAE weights file"):
        load_weights(bad)


def test_r_table_contract(world):
    _, _, _, data = world
    mu = np.arange(data.n * 3, dtype=np.float32).reshape(data.n, 3)
    t = r_table(data.video_id, data.split, mu)
    assert list(t.columns) == ["video_id", "split", "r_0", "r_1", "r_2"]
    assert (t["video_id"] == data.video_id).all() and t["r_2"].dtype == np.float64


def test_text_nir_is_the_most_frequent_word_per_position(world):
    _, _, _, data = world
    train = data.rows("train")
    modes = text_nir_ids(data, train)
    ids, lens = data.text_ids["caption"][train], data.text_lengths["caption"][train]
    for pos in range(6):
        col = ids[lens > pos, pos]
        assert modes["caption"][pos] == pd.Series(col).value_counts().sort_index().idxmax() or \
            (col == modes["caption"][pos]).sum() == pd.Series(col).value_counts().max()


def test_small_fit_beats_the_no_information_rate(world):
    """An easy world (every modality a noisy function of a 2-d latent): the test-split reconstruction from r beats
    predicting the training mean (and the most frequent word) on every modality, and r recovers the latent."""
    _, _, z, data = world
    cfg = VSVAEConfig(**{**SMALL, "latent_size": 4}, max_epochs=60, patience=8, seed=2)
    res = fit(data, cfg, device="cpu")
    test = data.rows("test")
    t2 = table2(data, reconstruct(res.model, data, test, device="cpu"), test, data.rows("train"))
    main = t2[t2["modality"].isin(["text", "image", "image_objects", "audio", "editing"])]
    assert main["beats_nir"].all(), t2.to_string()
    assert t2.loc[t2["modality"] == "text_voice", "vsvae"].isna().all()  # no voice-over words anywhere
    mu, _ = posterior(res.model, data, device="cpu")
    X = np.column_stack([mu, np.ones(len(mu))])
    coef, *_ = np.linalg.lstsq(X, z, rcond=None)
    r2 = 1 - ((z - X @ coef) ** 2).sum(0) / ((z - z.mean(0)) ** 2).sum(0)
    assert (r2 > 0.8).all(), r2


def test_nearest_matches_brute_force_and_excludes_the_query():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    q = np.array([0, 7, 49])
    idx, dist = nearest(X, q, 4)
    for row, i in enumerate(q):
        d = np.linalg.norm(X - X[i], axis=1)
        d[i] = np.inf
        np.testing.assert_array_equal(idx[row], np.argsort(d)[:4])
        np.testing.assert_allclose(dist[row], np.sort(d)[:4])


def test_neighbour_rates_against_random_pairs():
    rng = np.random.default_rng(1)
    n = 400
    tags = np.array([f"h{k}" for k in rng.integers(0, 8, n)])
    centre = rng.normal(size=(8, 3)) * 3
    content = centre[[int(t[1:]) for t in tags]] + 0.3 * rng.normal(size=(n, 3))
    rates = neighbour_rates({"content itself": content, "noise": rng.normal(size=(n, 3))}, tags, content,
                            np.arange(100), 3, seed=0).set_index("neighbours_in")
    assert rates.loc["content itself", "same_hashtag_rate"] > 0.9
    assert rates.loc["random pairs", "same_hashtag_rate"] == pytest.approx(1 / 8, abs=0.06)
    assert rates.loc["random pairs", "content_near_rate"] == pytest.approx(0.1, abs=0.02)
    assert rates.loc["content itself", "content_near_rate"] > 0.9
    assert rates.loc["noise", "same_hashtag_rate"] < 0.3


def test_focal_neighbours_table(world):
    _, _, _, data = world
    r = np.random.default_rng(0).normal(size=(data.n, 2))
    t = focal_neighbours(r, data.video_id, data.hashtag, data.split, 2, 2, 3, seed=0)
    assert len(t) == 2 * 2 * 4 and set(t["rank"]) == {0, 1, 2, 3}
    focal = t[t["rank"] == 0]
    assert (focal["split"] == "test").all() and (focal["hashtag"] == focal["focal_hashtag"]).all()
    assert focal["focal_hashtag"].nunique() == 2


@pytest.mark.workflow
def test_rules_train_encode_and_validate_from_feature_files(tmp_path):
    """The three rules through Snakemake on feature files of the gathered layout (no media or feature extraction):
    r.parquet keeps the contract (videos.parquet order, split, r_0..r_{d-1}); Table 2, the probe, the neighbour
    rates and the contact sheets are written; a second run has nothing to do."""
    import subprocess
    import sys
    from pathlib import Path

    from reach.features.store import offsets_from_lengths, save_npz

    repo = Path(__file__).resolve().parents[1]
    arrays, videos, z = make_features(n=120)
    res = tmp_path / "results"
    (res / "ingest").mkdir(parents=True)
    videos.to_parquet(res / "ingest" / "videos.parquet", index=False)
    for m, a in arrays.items():
        save_npz(res / "features" / f"{m}.npz", **a)
    truth = videos.assign(**{f"content_{k}": z[:, k] for k in range(2)})
    (res / "synthetic" / "truth").mkdir(parents=True)
    truth.to_parquet(res / "synthetic" / "truth" / "videos.parquet", index=False)
    rng = np.random.default_rng(0)
    for shard, rows in enumerate(np.array_split(np.arange(len(videos)), 2)):
        n_fr = rng.integers(1, 4, len(rows))
        save_npz(res / "media" / "frames" / f"shard-{shard}.npz", video_id=videos["video_id"].to_numpy()[rows],
                 frames=rng.integers(0, 255, (int(n_fr.sum()), 16, 10, 3), dtype=np.uint8),
                 frames__offsets=offsets_from_lengths(n_fr))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--cores", "2", "--configfile",
           str(repo / "tests" / "tiny_config.yaml"), "-d", str(tmp_path), "--allowed-rules", "train_vsvae",
           "encode_representations", "validate_representations", "--", "results/represent/table2.csv"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = pd.read_parquet(res / "represent" / "r.parquet")
    assert list(r.columns[:2]) == ["video_id", "split"] and r.columns[2] == "r_0"
    assert (r["video_id"] == videos["video_id"]).all() and r.filter(like="r_").notna().all().all()
    counts = r["split"].value_counts()
    assert counts["train"] > counts["val"] > 0 and counts["test"] > 0
    t2 = pd.read_csv(res / "represent" / "table2.csv")
    assert {"text", "image", "image_objects", "audio", "editing"} <= set(t2["modality"])
    assert set(pd.read_csv(res / "represent" / "probe.csv")["target"]) == {"content_0", "content_1", "mean"}
    rates = pd.read_csv(res / "represent" / "neighbour_rates.csv")
    assert set(rates["neighbours_in"]) == {"random pairs", "r", "raw features"}
    assert len(list((res / "represent" / "contact_sheets").glob("focal-*.png"))) == 2
    hist = pd.read_parquet(res / "represent" / "loss_history.parquet")
    assert list(hist["epoch"]) == [1, 2] and not (res / "represent" / "scratch").exists()
    again = subprocess.run(cmd[:5] + ["-n"] + cmd[5:], capture_output=True, text=True, timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_word_accuracy_counts_an_unknown_word_as_a_miss_even_when_unk_is_predicted(world):
    """Table 2's word accuracy is the share of the original words reconstructed: a word outside the training
    vocabulary (<unk>) cannot be, so a perfect reconstruction scores the known share, not 1."""
    import dataclasses

    _, _, _, data = world
    test = data.rows("test")
    ids = {s: a.copy() for s, a in data.text_ids.items()}
    caption = ids[TEXT_SOURCES[0]]
    caption[test[:3], 0] = UNK                                      # three test captions open with an unknown word
    data = dataclasses.replace(data, text_ids=ids)
    recon = reconstruct(build_model(data.dims, VSVAEConfig(**SMALL)), data, test, device="cpu")
    for s in TEXT_SOURCES:
        recon[f"{s}_ids"] = data.text_ids[s][test].copy()          # every word echoed back, <unk> for <unk>
    t2 = table2(data, recon, test, data.rows("train")).set_index("modality")
    words = known = 0
    for s in TEXT_SOURCES:
        ids, lens = data.text_ids[s][test], data.text_lengths[s][test]
        mask = np.arange(ids.shape[1])[None, :] < lens[:, None]
        words += int(mask.sum())
        known += int((mask & (ids != UNK)).sum())
    assert known < words                                            # the fixture has unknown test words
    assert t2.loc["text", "vsvae"] == pytest.approx(known / words)
    assert t2.loc["text", "unknown_share"] == pytest.approx(1 - known / words)
