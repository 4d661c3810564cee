"""Model loaders, each on a small model the test builds (VGG-19-style Keras .h5, YAMNet-signature SavedModel,
word2vec file, ONNX head), and the packaged substitutes against real photographs nobody here drew."""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import skimage.data  # noqa: E402

from reach.features.image import (load_efficientnet_lite0, load_image_model, load_sentiment_onnx,  # noqa: E402
                                  load_vgg19_h5, max_pool)

CAT_CLASSES = {281, 282, 283, 284, 285}          # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}                  # espresso, cup, coffee mug


def photo(name: str, short_side: int = 128) -> np.ndarray:
    img = getattr(skimage.data, name)()[..., :3]
    h, w = img.shape[:2]
    s = short_side / min(h, w)
    return cv2.resize(img, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def lite0():
    return load_efficientnet_lite0(device="cpu", threads=1)


def test_packaged_lite0_recognises_scikit_image_photographs(lite0):
    for name, classes in (("chelsea", CAT_CLASSES), ("coffee", COFFEE_CLASSES)):
        for short in (96, 128, 224):
            emb, probs = lite0.run(photo(name, short)[None])
            assert emb.shape == (1, 1280) and probs.shape == (1, 1000)
            assert np.isclose(probs.sum(), 1, atol=1e-4)
            assert int(probs.argmax()) in classes, (name, short, int(probs.argmax()))


def test_lite0_batches_and_frame_sizes_agree(lite0):
    frames = np.stack([cv2.resize(photo("chelsea"), (96, 160)), cv2.resize(photo("coffee"), (96, 160))])
    e1, p1 = lite0.run(frames, batch_size=1)
    e2, p2 = lite0.run(frames, batch_size=2)
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    assert lite0.run(frames[:0])[0].shape == (0, 1280)


def test_missing_vgg_file_falls_back_to_the_substitute(tmp_path):
    model = load_image_model(str(tmp_path / "vgg19.h5"), device="cpu", threads=1)
    assert model.source == "substitute" and model.n_classes == 1000


def tiny_vgg():
    import tf_keras as k

    inp = k.Input((32, 32, 3))
    x = k.layers.Conv2D(4, 3, activation="relu", name="block1_conv1")(inp)
    x = k.layers.MaxPooling2D(name="block1_pool")(x)
    x = k.layers.Flatten(name="flatten")(x)
    x = k.layers.Dense(16, activation="relu", name="fc1")(x)
    x = k.layers.Dense(8, activation="relu", name="fc2")(x)
    out = k.layers.Dense(5, activation="softmax", name="predictions")(x)
    return k.Model(inp, out, name="vgg19")


def test_vgg19_h5_loader_whole_model_and_weights_only(tmp_path):
    import tf_keras as k

    k.utils.set_random_seed(0)   # the same tiny weights every run
    model = tiny_vgg()
    whole, weights = tmp_path / "vgg19.h5", tmp_path / "vgg19_weights.h5"
    model.save(whole)
    model.save_weights(weights)
    frames = np.random.default_rng(0).integers(0, 255, (3, 40, 24, 3), dtype=np.uint8)
    x = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in frames]).astype(np.float32)
    x = x[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    expect_probs = model.predict(x, verbose=0)
    expect_emb = k.Model(model.inputs, model.get_layer("fc2").output).predict(x, verbose=0)
    for path, arch in ((whole, None), (weights, tiny_vgg)):
        vgg = load_vgg19_h5(path, architecture=arch)
        assert vgg.source == "paper" and vgg.embed_dim == 8 and vgg.n_classes == 5 and vgg.input_size == (32, 32)
        emb, probs = vgg.run(frames, batch_size=2)
        np.testing.assert_allclose(probs, expect_probs, rtol=1e-4, atol=1e-6)
        # float32 sums differ in the last bits with the batch shape (2 rows here, 3 in predict): the absolute
        # tolerance scales with the largest activation (~15), not with each element
        np.testing.assert_allclose(emb, expect_emb, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(expect_emb).max())))
    assert load_image_model(str(whole)).source == "paper"


def test_vgg19_loader_refuses_lambda_layers(tmp_path):
    import tf_keras as k

    inp = k.Input((8, 8, 3))
    x = k.layers.Lambda(lambda t: t * 2.0)(inp)
    x = k.layers.Flatten()(x)
    model = k.Model(inp, k.layers.Dense(3, activation="softmax")(x))
    model.save(tmp_path / "lam.h5")
    with pytest.raises(ValueError, match="Lambda"):
        load_vgg19_h5(tmp_path / "lam.h5")


def test_sentiment_onnx_head(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 4)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
         helper.make_node("Gemm", ["f", "w", "b"], ["logits"]), helper.make_node("Softmax", ["logits"], ["p"])],
        "senti", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
         helper.make_tensor("b", TensorProto.FLOAT, b.shape, b)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    helper.set_model_props(model, {"labels": "happy dog,creepy house,cute cat,sad face"})
    path = tmp_path / "senti.onnx"
    onnx.save(model, path)
    head = load_sentiment_onnx(path)
    assert head.n_classes == 4 and head.labels[1] == "creepy house" and head.size == (16, 16)
    frames = rng.integers(0, 255, (5, 20, 12, 3), dtype=np.uint8)
    probs = head.run(frames, batch_size=2)
    x = np.stack([cv2.resize(f, (16, 16), interpolation=cv2.INTER_AREA) for f in frames]).astype(np.float32)
    x = (x / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    logits = x.mean((1, 2)) @ w + b
    expect = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probs, expect / expect.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)


def test_max_pool_over_ragged_frames():
    values = np.array([[1, 5], [3, 2], [7, 0]], np.float32)
    out = max_pool(values, np.array([0, 2, 2, 3]))
    assert out[0].tolist() == [3, 5] and np.isnan(out[1]).all() and out[2].tolist() == [7, 0]


def test_yamnet_savedmodel_loader(tmp_path):
    import tensorflow as tf

    from reach.features.audio import load_sound_model, load_yamnet
    from reach.features.speech import speech_from_class_scores

    csv = tmp_path / "classes.csv"
    csv.write_text("index,mid,display_name\n0,/m/09x0r,Speech\n1,/m/04rlf,Music\n2,/m/0jbk,Animal\n")

    class TinyYamnet(tf.Module):
        def __init__(self):
            super().__init__()
            self.class_map = tf.saved_model.Asset(str(csv))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, waveform):
            frames = tf.signal.frame(waveform, 15360, 7680, pad_end=True)      # 0.96 s windows, 0.48 s hop
            energy = tf.reduce_mean(tf.square(frames), axis=1, keepdims=True)
            scores = tf.nn.softmax(tf.concat([energy * 100.0, tf.zeros_like(energy), -energy], axis=1))
            embeddings = tf.tile(energy, [1, 1024])
            spectrogram = tf.zeros([tf.shape(frames)[0] * 2, 64])
            return scores, embeddings, spectrogram

        @tf.function(input_signature=[])
        def class_map_path(self):
            return self.class_map.asset_path

    tf.saved_model.save(TinyYamnet(), str(tmp_path / "yamnet"))
    model = load_yamnet(tmp_path / "yamnet")
    assert model.source == "paper" and model.labels == ["Speech", "Music", "Animal"]
    loud = 0.5 * np.sin(np.arange(32000) / 3.0).astype(np.float32)
    scores = model.frame_scores(loud)
    assert scores.shape[1] == 3 and np.allclose(scores.sum(1), 1, atol=1e-5)
    means = model.track_means([loud, np.zeros(0, np.float32)])
    assert np.isnan(means[1]).all() and means[0, 0] > means[0, 1]
    seg = speech_from_class_scores(scores, model.labels)
    assert seg.detected and seg.start_s == 0.0
    # YAMNet pads the wave: a speech frame near the end must not carry the segment past the track
    tail = np.zeros((3, 3))
    tail[1, 0] = 1.0                                           # the second frame (0.48-1.44 s) is speech
    short = speech_from_class_scores(tail, model.labels, duration_s=1.0)
    assert short.detected and short.start_s == 0.48 and short.end_s == 1.0
    assert speech_from_class_scores(tail, model.labels).end_s == pytest.approx(1.44)
    assert load_sound_model(str(tmp_path / "yamnet")).source == "paper"


def test_word2vec_loader_binary_and_text(tmp_path):
    from gensim.models import KeyedVectors

    from reach.features.text import embed, load_word2vec, load_word_vectors, tokenize

    kv = KeyedVectors(vector_size=4)
    words = ["Cat", "cat", "coffee", "home", "office"]
    vecs = np.arange(20, dtype=np.float32).reshape(5, 4)
    kv.add_vectors(words, vecs)
    kv.save_word2vec_format(str(tmp_path / "w2v.bin"), binary=True)
    kv.save_word2vec_format(str(tmp_path / "w2v.txt"), binary=False)
    for name in ("w2v.bin", "w2v.txt"):
        wv = load_word2vec(tmp_path / name)
        assert wv.source == "paper" and wv.dim == 4
        kept, v, oov = embed(tokenize("Cat coffee dog #HomeOffice"), wv)
        assert kept == ["Cat", "coffee", "home", "office"] and oov == 1
        np.testing.assert_allclose(v, vecs[[0, 2, 3, 4]])
    assert load_word_vectors(str(tmp_path / "w2v.bin")).source == "paper"
    assert load_word_vectors(None).source == "substitute"


def test_packaged_glove_vectors():
    from reach.features.text import embed, load_glove_package, tokenize

    wv = load_glove_package()
    assert wv.dim == 50 and len(wv.index) == 400_000
    kept, v, oov = embed(tokenize("Coffee with my cat #GoodMorning"), wv)
    assert kept == ["Coffee", "with", "my", "cat", "good", "morning"] and oov == 0
    cos = v[0] @ wv.vectors[wv.lookup("espresso")] / np.linalg.norm(v[0]) / np.linalg.norm(
        wv.vectors[wv.lookup("espresso")])
    assert cos > 0.5                                     # coffee is near espresso


def test_packaged_musicnn_tags_a_track():
    from reach.features.audio import load_musicnn, musicnn_patches

    model = load_musicnn(threads=1)
    assert model.source == "substitute" and len(model.labels) == 50 and "guitar" in model.labels
    t = np.arange(7 * 16000) / 16000
    wave = (0.4 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    assert musicnn_patches(wave).shape == (2, 187, 96)
    assert musicnn_patches(wave[:8000]).shape == (1, 187, 96)      # shorter than a patch: padded
    means = model.track_means([wave, np.zeros(0, np.float32), wave[:8000]])
    assert means.shape == (3, 50) and np.isnan(means[1]).all()
    assert ((means[0] >= 0) & (means[0] <= 1)).all()
    np.testing.assert_allclose(model.track_means([wave])[0], means[0], atol=1e-5)


def test_musicnn_fast_path_matches_the_reference_implementation():
    # oracle: the original code path (mel of the whole track, then cut; batch-norm behind a placeholder fed False)
    from reach.features.audio import load_musicnn, musicnn_patches, musicnn_patches_reference

    rng = np.random.default_rng(11)
    t = np.arange(40 * 16000) / 16000
    song = (0.3 * np.sin(2 * np.pi * 330 * t) * np.exp(-3 * ((2 * t) % 1)) + 0.02 * rng.normal(size=t.size))
    song = song.astype(np.float32)
    lengths = (1_000, 47_000, 48_000, 48_128, 48_200, 96_100, 7 * 16_000 + 333, 19 * 16_000, 40 * 16_000)
    for n in lengths:
        for k in (None, 1, 2, 3):
            a, b = musicnn_patches_reference(song[:n], max_patches=k), musicnn_patches(song[:n], max_patches=k)
            assert a.shape == b.shape and np.array_equal(a, b), (n, k)          # bit for bit
    waves = [song[:n] for n in lengths] + [np.zeros(0, np.float32)]
    new = load_musicnn(threads=1, max_patches=3).track_means(waves)
    old = load_musicnn(threads=1, max_patches=3, reference=True).track_means(waves)
    np.testing.assert_array_equal(new, old)
