"""Editing features (Web Appendix E): video length, stickers, average scene length, spatial and temporal content
complexity (object and sentiment variants, plus the same formulas on the frame embeddings), and aesthetic/filter
proxies (lightness, colourfulness, symmetry, sharpness, ...; Bhattacharya et al. 2013, Datta et al. 2006,
Hasler and Suesstrunk 2003). 157 columns, named and described in EDITING_COLUMNS.
"""

from __future__ import annotations

import cv2
import numpy as np


def spatial_complexity(p: np.ndarray) -> float:
    """Web Appendix E: (1/|T|) sum_t (1/|S|) sum_j (p_jt - mean_j p_jt)^2 for p of shape (frames T, classes S):
    the variance across classes within a frame, averaged over the key frames. NaN without frames."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        return float("nan")
    return float(((p - p.mean(axis=1, keepdims=True)) ** 2).mean(axis=1).mean())


def temporal_complexity(p: np.ndarray) -> float:
    """Web Appendix E: (1/|S|) sum_j (1/|T|) sum_t (p_jt - mean_t p_jt)^2: the variance of each class over the
    key frames, averaged over classes (0 for a single frame). NaN without frames."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        return float("nan")
    return float(((p - p.mean(axis=0, keepdims=True)) ** 2).mean(axis=0).mean())


AESTHETIC = {
    "lightness_mean": "mean CIELAB L* / 100",
    "lightness_sd": "sd of L* / 100 (global contrast)",
    "lightness_p05": "5th percentile of L* / 100",
    "lightness_p95": "95th percentile of L* / 100",
    "saturation_mean": "mean HSV saturation (0-1)",
    "saturation_sd": "sd of HSV saturation",
    "hue_cos": "saturation-weighted circular mean of hue, cosine",
    "hue_sin": "saturation-weighted circular mean of hue, sine",
    "hue_dispersion": "1 - length of the saturation-weighted mean hue vector (0 one hue, 1 all hues)",
    "colourfulness": "Hasler-Suesstrunk colourfulness / 100",
    "warm_share": "share of saturated pixels with a warm hue (red-yellow)",
    "lab_a_mean": "mean CIELAB a* / 128 (green-red)",
    "lab_b_mean": "mean CIELAB b* / 128 (blue-yellow, colour temperature)",
    "red_mean": "mean R / 255",
    "green_mean": "mean G / 255",
    "blue_mean": "mean B / 255",
    "sharpness": "log10(1 + variance of the Laplacian of grey)",
    "edge_density": "share of Canny edge pixels",
    "symmetry_lr": "1 - mean |grey - left-right mirror| / 255",
    "symmetry_tb": "1 - mean |grey - top-bottom mirror| / 255",
    "grey_entropy": "entropy of the 64-bin grey histogram / 6 bits",
    "dark_share": "share of pixels with L* < 15",
    "bright_share": "share of pixels with L* > 90",
    "vignette": "mean L* of the centre third minus the border, / 100",
    "thirds_edges": "share of edge pixels within 1/12 of the rule-of-thirds lines",
    "dominant_hue_share": "share of saturated pixels in the most common of 12 hue bins",
    "noise": "mean |grey - 3x3 median| / 255",
    "gradient": "mean Sobel gradient magnitude / 255 (Tenengrad)",
}
HUE_BINS, LIGHT_BINS, SAT_BINS = 12, 8, 4
STATS = ("mean", "sd", "min", "max")


def aesthetic_features(frame: np.ndarray) -> np.ndarray:
    """The AESTHETIC metrics (in that order) of one RGB uint8 frame, then the hue (12, saturated pixels only),
    lightness (8) and saturation (4) histograms as shares."""
    rgb = frame.astype(np.float32)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB).astype(np.float32)
    L = lab[..., 0] * (100.0 / 255.0)
    a, b = lab[..., 1] - 128.0, lab[..., 2] - 128.0
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    hue = hsv[..., 0].astype(np.float32) * 2.0            # degrees
    sat = hsv[..., 1].astype(np.float32) / 255.0
    ang = np.deg2rad(hue)
    wsum = max(float(sat.sum()), 1e-9)
    hc, hs = float((sat * np.cos(ang)).sum() / wsum), float((sat * np.sin(ang)).sum() / wsum)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    saturated = sat > 0.2
    n_sat = max(int(saturated.sum()), 1)
    warm = ((hue < 60) | (hue >= 330)) & saturated
    lap = cv2.Laplacian(grey, cv2.CV_64F)
    edges = cv2.Canny(grey, 100, 200) > 0
    g = grey.astype(np.float32)
    hist64 = np.bincount((grey // 4).ravel(), minlength=64) / grey.size
    nz = hist64[hist64 > 0]
    h_, w_ = grey.shape
    centre = L[h_ // 3: 2 * h_ // 3, w_ // 3: 2 * w_ // 3]
    border = np.ones_like(L, bool)
    border[h_ // 3: 2 * h_ // 3, w_ // 3: 2 * w_ // 3] = False
    yy, xx = np.mgrid[0:h_, 0:w_]
    band_y, band_x = h_ / 12.0, w_ / 12.0
    thirds = (np.minimum(np.abs(yy - h_ / 3), np.abs(yy - 2 * h_ / 3)) < band_y) | \
             (np.minimum(np.abs(xx - w_ / 3), np.abs(xx - 2 * w_ / 3)) < band_x)
    hue_hist = np.bincount((hue[saturated] / 30.0).astype(int).clip(0, HUE_BINS - 1), minlength=HUE_BINS) / n_sat
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    metrics = [
        L.mean() / 100, L.std() / 100, np.percentile(L, 5) / 100, np.percentile(L, 95) / 100,
        sat.mean(), sat.std(), hc, hs, 1 - np.hypot(hc, hs),
        colourful / 100, warm.sum() / n_sat, a.mean() / 128, b.mean() / 128,
        rgb[..., 0].mean() / 255, rgb[..., 1].mean() / 255, rgb[..., 2].mean() / 255,
        np.log10(1 + lap.var()), edges.mean(),
        1 - np.abs(g - g[:, ::-1]).mean() / 255, 1 - np.abs(g - g[::-1, :]).mean() / 255,
        float(-(nz * np.log2(nz)).sum() / 6.0), (L < 15).mean(), (L > 90).mean(),
        (centre.mean() - L[border].mean()) / 100 if border.any() else 0.0,
        edges[thirds].sum() / max(edges.sum(), 1), hue_hist.max() if saturated.any() else 0.0,
        np.abs(g - cv2.medianBlur(grey, 3).astype(np.float32)).mean() / 255,
        np.hypot(gx, gy).mean() / 255,
    ]
    light_hist = np.histogram(L, bins=LIGHT_BINS, range=(0, 100.0001))[0] / L.size
    sat_hist = np.histogram(sat, bins=SAT_BINS, range=(0, 1.0001))[0] / sat.size
    return np.concatenate([np.asarray(metrics, np.float64), hue_hist, light_hist, sat_hist]).astype(np.float64)


STRUCTURAL = {
    "video_length_s": "video length in seconds (post metadata; decoded length when the metadata lacks it)",
    "decoded_length_s": "length of the decoded video stream in seconds",
    "has_stickers": "1 if the post has text stickers",
    "n_stickers": "number of text stickers",
    "sticker_words": "words across all stickers",
    "words_per_sticker": "sticker words / stickers (0 without stickers)",
    "n_scenes": "scenes found by the colour-histogram detector",
    "avg_scene_length_s": "average scene length in seconds (the paper's scene length)",
    "sd_scene_length_s": "sd of scene lengths in seconds",
    "scene_cuts_per_s": "detected cuts per second",
    "hist_change_mean": "mean colour-histogram distance between consecutive frames",
    "hist_change_max": "largest colour-histogram distance between consecutive frames",
    "motion_mean": "mean absolute pixel change between consecutive frames (32x32 thumbnails, 0-1)",
    "motion_sd": "sd of that change",
    "spatial_complexity_object": "Web Appendix E spatial content complexity, object probabilities",
    "temporal_complexity_object": "Web Appendix E temporal content complexity, object probabilities",
    "spatial_complexity_sentiment": "spatial complexity, sentiment probabilities (NaN when no sentiment model ran)",
    "temporal_complexity_sentiment": "temporal complexity, sentiment probabilities (NaN when no sentiment model ran)",
    "spatial_complexity_embedding": "the spatial formula on the frame embeddings (feature variance)",
    "temporal_complexity_embedding": "the temporal formula on the frame embeddings (feature variance over frames)",
    "n_key_frames": "key frames sampled (one per frame interval)",
}


def _columns() -> dict[str, str]:
    cols = dict(STRUCTURAL)
    for name, desc in AESTHETIC.items():
        for stat in STATS:
            cols[f"{name}_{stat}"] = f"{stat} over key frames of: {desc}"
    for i in range(HUE_BINS):
        cols[f"hue_hist_{i:02d}"] = f"share of saturated pixels with hue in [{30 * i}, {30 * (i + 1)}) degrees, mean over key frames"
    for i in range(LIGHT_BINS):
        cols[f"lightness_hist_{i}"] = f"share of pixels with L* in bin {i} of {LIGHT_BINS}, mean over key frames"
    for i in range(SAT_BINS):
        cols[f"saturation_hist_{i}"] = f"share of pixels with saturation in bin {i} of {SAT_BINS}, mean over key frames"
    return cols


EDITING_COLUMNS: dict[str, str] = _columns()
N_EDITING = len(EDITING_COLUMNS)


def frame_aesthetics(key_frames: np.ndarray) -> np.ndarray:
    """Aesthetic stats over key frames: 28 metrics x (mean, sd, min, max), then the mean histograms. NaN without
    frames."""
    n_metrics = len(AESTHETIC)
    width = n_metrics * len(STATS) + HUE_BINS + LIGHT_BINS + SAT_BINS
    if key_frames.shape[0] == 0:
        return np.full(width, np.nan)
    per = np.stack([aesthetic_features(f) for f in key_frames])
    m = per[:, :n_metrics]
    stats = np.stack([m.mean(0), m.std(0), m.min(0), m.max(0)], axis=1).ravel()   # metric-major, as the columns
    return np.concatenate([stats, per[:, n_metrics:].mean(0)])


def editing_vector(*, video_length_s: float, decoded_length_s: float, n_stickers: int, sticker_words: int,
                   scene_lengths: np.ndarray, hist_dist: np.ndarray, motion: np.ndarray, object_probs: np.ndarray,
                   sentiment_probs: np.ndarray | None, embeddings: np.ndarray, key_frames: np.ndarray) -> np.ndarray:
    """One video's 157 editing features in EDITING_COLUMNS order. Quantities that need decoded frames are NaN
    when the video has none (its status says why)."""
    nan = float("nan")
    length = video_length_s if np.isfinite(video_length_s) and video_length_s > 0 else decoded_length_s
    n_scenes = scene_lengths.size
    structural = [
        length, decoded_length_s, float(n_stickers > 0), n_stickers, sticker_words,
        sticker_words / n_stickers if n_stickers else 0.0,
        n_scenes if n_scenes else nan, scene_lengths.mean() if n_scenes else nan,
        scene_lengths.std() if n_scenes else nan,
        (n_scenes - 1) / decoded_length_s if n_scenes and decoded_length_s > 0 else nan,
        hist_dist.mean() if hist_dist.size else (0.0 if key_frames.shape[0] else nan),
        hist_dist.max() if hist_dist.size else (0.0 if key_frames.shape[0] else nan),
        motion.mean() if motion.size else (0.0 if key_frames.shape[0] else nan),
        motion.std() if motion.size else (0.0 if key_frames.shape[0] else nan),
        spatial_complexity(object_probs), temporal_complexity(object_probs),
        spatial_complexity(sentiment_probs) if sentiment_probs is not None else nan,
        temporal_complexity(sentiment_probs) if sentiment_probs is not None else nan,
        spatial_complexity(embeddings), temporal_complexity(embeddings),
        float(key_frames.shape[0]),
    ]
    out = np.concatenate([np.asarray(structural, np.float64), frame_aesthetics(key_frames)])
    assert out.size == N_EDITING, (out.size, N_EDITING)
    return out
