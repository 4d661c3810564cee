"""Editing, audio and post formulas against hand-computed values on tiny arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reach.features.audio import ACOUSTIC, acoustic_features, universality
from reach.features.editing import (AESTHETIC, EDITING_COLUMNS, N_EDITING, aesthetic_features, editing_vector,
                                    spatial_complexity, temporal_complexity)
from reach.features.post import POST_COLUMNS, post_statistics

# two key frames (t) x three classes (j)
P = np.array([[0.2, 0.5, 0.3],
              [0.6, 0.1, 0.3]])


def test_spatial_content_complexity_by_hand():
    # frame means are 1/3 each; frame 1 deviations (-2/15, 1/6, -1/30), frame 2 (4/15, -7/30, -1/30)
    f1 = ((0.2 - 1 / 3) ** 2 + (0.5 - 1 / 3) ** 2 + (0.3 - 1 / 3) ** 2) / 3
    f2 = ((0.6 - 1 / 3) ** 2 + (0.1 - 1 / 3) ** 2 + (0.3 - 1 / 3) ** 2) / 3
    assert spatial_complexity(P) == pytest.approx((f1 + f2) / 2)
    assert spatial_complexity(P) == pytest.approx((0.0155556 + 0.0422222) / 2, abs=1e-6)


def test_temporal_content_complexity_by_hand():
    # class means over frames 0.4, 0.3, 0.3; per-class variances 0.04, 0.04, 0
    assert temporal_complexity(P) == pytest.approx((0.04 + 0.04 + 0.0) / 3)
    assert temporal_complexity(P[:1]) == 0.0                  # one frame: nothing changes over time
    assert np.isnan(temporal_complexity(np.zeros((0, 3)))) and np.isnan(spatial_complexity(np.zeros((0, 3))))


def test_universality_share_of_other_videos_in_the_hashtag_with_the_same_music():
    tags = ["a", "a", "a", "a", "b", "b", "c"]
    music = ["m1", "m1", "m1", "m2", "m1", "m3", "m1"]
    np.testing.assert_allclose(universality(tags, music), [2 / 3, 2 / 3, 2 / 3, 0, 0, 0, 0])


def test_aesthetic_metrics_on_constructed_images():
    white = np.full((40, 30, 3), 255, np.uint8)
    f = dict(zip(AESTHETIC, aesthetic_features(white)))
    assert f["lightness_mean"] == pytest.approx(1.0, abs=0.01) and f["bright_share"] == 1.0
    assert f["symmetry_lr"] == 1.0 and f["symmetry_tb"] == 1.0 and f["edge_density"] == 0.0
    assert f["colourfulness"] == pytest.approx(0.0) and f["saturation_mean"] == 0.0
    half = np.zeros((40, 30, 3), np.uint8)
    half[:, :15] = 255                                         # left white, right black
    g = dict(zip(AESTHETIC, aesthetic_features(half)))
    assert g["symmetry_lr"] == pytest.approx(0.0) and g["symmetry_tb"] == 1.0
    assert g["dark_share"] == pytest.approx(0.5) and g["lightness_sd"] == pytest.approx(0.5, abs=0.01)
    red = np.zeros((40, 30, 3), np.uint8)
    red[..., 0] = 255
    r = dict(zip(AESTHETIC, aesthetic_features(red)))
    assert r["warm_share"] == 1.0 and r["hue_cos"] == pytest.approx(1.0) and r["dominant_hue_share"] == 1.0
    assert r["colourfulness"] == pytest.approx(0.3 * np.hypot(255, 127.5) / 100) and r["lab_a_mean"] > 0.3


def test_editing_vector_has_157_documented_columns_and_nan_without_frames():
    assert N_EDITING == 157 == len(EDITING_COLUMNS) and all(EDITING_COLUMNS.values())
    frames = np.random.default_rng(0).integers(0, 255, (2, 32, 24, 3), dtype=np.uint8)
    v = dict(zip(EDITING_COLUMNS, editing_vector(
        video_length_s=10.0, decoded_length_s=10.0, n_stickers=2, sticker_words=5,
        scene_lengths=np.array([4.0, 6.0]), hist_dist=np.array([0.0, 0.9]), motion=np.array([0.1, 0.3]),
        object_probs=P, sentiment_probs=None, embeddings=P * 2, key_frames=frames)))
    assert v["avg_scene_length_s"] == 5.0 and v["n_scenes"] == 2 and v["scene_cuts_per_s"] == pytest.approx(0.1)
    assert v["words_per_sticker"] == 2.5 and v["has_stickers"] == 1.0
    assert v["temporal_complexity_object"] == pytest.approx(0.08 / 3)
    assert v["temporal_complexity_embedding"] == pytest.approx(4 * 0.08 / 3)
    assert np.isnan(v["spatial_complexity_sentiment"]) and v["n_key_frames"] == 2
    none = dict(zip(EDITING_COLUMNS, editing_vector(
        video_length_s=8.0, decoded_length_s=float("nan"), n_stickers=0, sticker_words=0,
        scene_lengths=np.zeros(0), hist_dist=np.zeros(0), motion=np.zeros(0), object_probs=np.zeros((0, 3)),
        sentiment_probs=None, embeddings=np.zeros((0, 4)), key_frames=np.zeros((0, 32, 24, 3), np.uint8))))
    assert none["video_length_s"] == 8.0 and none["n_stickers"] == 0
    assert np.isnan(none["avg_scene_length_s"]) and np.isnan(none["lightness_mean_mean"])
    assert np.isnan(none["spatial_complexity_object"])


def test_acoustic_features_of_known_signals():
    rate = 16000
    t = np.arange(4 * rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    f = dict(zip(ACOUSTIC, acoustic_features(tone, rate)))
    assert f["rms_mean"] == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    assert f["pitch_median_hz"] == pytest.approx(220, rel=0.02) and f["pitch_sd_semitones"] < 0.1
    assert f["centroid_mean_hz"] == pytest.approx(220, rel=0.1) and f["high_band_share"] < 0.01
    assert f["zcr_mean"] == pytest.approx(2 * 220 / rate, rel=0.05)
    clicks = np.zeros(8 * rate, np.float32)
    clicks[(np.arange(0, 8, 0.5) * rate).astype(int)] = 1.0          # 120 beats per minute
    clicks = np.convolve(clicks, np.exp(-np.arange(400) / 40.0), mode="same").astype(np.float32)
    g = dict(zip(ACOUSTIC, acoustic_features(clicks, rate)))
    assert g["tempo_bpm"] == pytest.approx(120, rel=0.05) and g["onset_rate"] == pytest.approx(2, rel=0.25)
    assert np.isnan(acoustic_features(np.zeros(0, np.float32))).all()


def test_post_statistics_columns():
    df = pd.DataFrame({c: [1, 0] for c in POST_COLUMNS})
    df["has_fyp"] = [True, False]
    out = post_statistics(df)
    assert out.shape == (2, 9) and out[0, 2] == 1.0
    with pytest.raises(KeyError, match="ranking"):
        post_statistics(df.drop(columns="ranking"))


def test_probe_recovers_a_linear_signal_and_not_a_shuffled_one():
    from reach.features.probe import cv_r2, impute_standardise, reduce_width

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 30))
    X[rng.random(X.shape) < 0.05] = np.nan                    # missing values are imputed
    X[:, 5] = np.nan                                          # an all-NaN column is dropped
    Z = impute_standardise(X)
    assert Z.shape == (400, 29) and not np.isnan(Z).any()
    y = Z[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=400)
    Y = np.column_stack([y, rng.normal(size=400)])
    r2 = cv_r2(Z, Y, folds=5, seed=0)
    assert r2[0] > 0.95 and abs(r2[1]) < 0.05
    assert reduce_width(Z, 10).shape == (400, 10) and reduce_width(Z[:8], 10).shape == (8, 8)


def test_onset_picker_finds_known_peaks_and_respects_the_wait():
    from reach.features.audio import pick_onsets
    rate = 31.25                                                    # 16 kHz, hop 512
    env = np.random.default_rng(1).uniform(0, 0.02, 300)
    truth = np.array([10, 40, 41, 90, 150, 151, 152, 260])          # 40/41 adjacent: one local maximum (41)
    env[truth] = [1.0, 0.8, 0.9, 0.7, 0.6, 0.5, 0.9, 0.8]
    assert pick_onsets(env, rate).tolist() == [10, 41, 90, 150, 152, 260]
    assert pick_onsets(env, rate, wait_s=0.1).tolist() == [10, 41, 90, 150, 260]   # 152 within 3 frames of 150
    assert pick_onsets(np.zeros(50), rate).size == 0 and pick_onsets(np.ones(2), rate).size == 0
