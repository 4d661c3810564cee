"""The feature stage as a user runs it, on the tiny world: shard outputs concatenate exactly to the ingested video
order, a rerun shard gives identical arrays, every modality has its manifest, and the probe and topics exist."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
TARGETS = ["results/features/text.json", "results/features/image.json", "results/features/audio.json",
           "results/features/editing.json", "results/features/post.json", "results/features/probe.csv",
           "results/topics/topics.json"]


def snakemake(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # CPU only: the rerun below must give identical arrays, which GPU kernels (torch or TensorFlow) do not promise;
    # the image and audio extractors pick CUDA when they see it and the config has no device key for them
    # (tests/test_cuda.py checks the CUDA image features against the CPU ones within a tolerance)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
                           "--configfile", str(REPO / "tests" / "tiny_config.yaml"), "-d", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=900, env=env)


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


@pytest.mark.workflow
def test_feature_stage_on_the_tiny_world(tmp_path):
    out = snakemake(tmp_path, *TARGETS)
    assert out.returncode == 0, out.stderr[-4000:]
    res = tmp_path / "results"
    order = pd.read_parquet(res / "ingest" / "videos.parquet")["video_id"].astype(str).to_numpy()
    for modality in ("text", "image", "audio", "editing", "post"):
        arrays = load(res / "features" / f"{modality}.npz")
        assert arrays["video_id"].tolist() == order.tolist(), modality
        manifest = json.loads((res / "features" / f"{modality}.json").read_text())
        assert manifest["extractor"]["name"] and manifest["dims"], modality
    image = load(res / "features" / "image.npz")
    frames_manifest = json.loads((res / "features" / "image.json").read_text())
    assert frames_manifest["extractor"]["source"] == "substitute" and frames_manifest["dims"]["objects"] == 1000
    assert frames_manifest["sentiment"]["dim"] == 0 and "sentiment" not in image
    assert image["objects"].shape == (order.size, 1000) and not np.isnan(image["objects"]).any()
    off = image["frame_embed__offsets"]
    assert off[-1] == image["frame_embed"].shape[0] and (np.diff(off) >= 1).all()
    editing = load(res / "features" / "editing.npz")
    assert editing["values"].shape == (order.size, 157) and editing["meta_columns"].size == 157
    audio = load(res / "features" / "audio.npz")
    assert audio["sound_classes"].shape == (order.size, 50) and ((audio["universality"] >= 0) &
                                                                  (audio["universality"] <= 1)).all()
    text = load(res / "features" / "text.npz")
    assert text["caption_mean"].shape == (order.size, 50)
    voice = pd.read_parquet(res / "features" / "text_status.parquet")
    assert voice["video_id"].astype(str).tolist() == order.tolist()
    assert set(voice["status"]) <= {"no_speech", "transcribed", "no_words"}
    probe_beats_shuffled_rows(pd.read_csv(res / "features" / "probe.csv"))
    topics = pd.read_parquet(res / "topics" / "hashtags.parquet")
    assert topics["topic"].notna().all() and topics["topic"].nunique() == 3

    # the same shard computed again gives identical arrays
    before = {k: load(res / "features" / "shards" / f"{k}-0.npz") for k in ("image", "audio", "text", "editing")}
    again = snakemake(tmp_path, "results/features/shards/editing-0.npz", "results/features/shards/text-0.npz",
                      "--forcerun", "image_features", "audio_features")
    assert again.returncode == 0, again.stderr[-4000:]
    for k, arrays in before.items():
        after = load(res / "features" / "shards" / f"{k}-0.npz")
        assert arrays.keys() == after.keys()
        for name in arrays:
            np.testing.assert_array_equal(arrays[name], after[name], err_msg=f"{k}:{name}")


def probe_beats_shuffled_rows(probe: pd.DataFrame) -> None:
    """The linear probe of the world's true content latent from each modality's features beats the same probe on
    shuffled rows of the latent (its baseline, written beside it). Tiny world of 2026-12-01 (35 videos, 6 content
    dimensions), mean R^2 over the dimensions against shuffled: image 0.33 / -0.13, editing 0.43 / -0.15, all
    0.38 / -0.12, text -0.004 / -0.11, audio 0.04 / -0.17."""
    assert {"text", "image", "audio", "editing", "all"} <= set(probe["modality"])
    assert set(probe.columns) >= {"modality", "target", "r2", "r2_shuffled"}
    assert probe[["r2", "r2_shuffled"]].notna().all().all()
    mean = probe[probe["target"] == "mean"].set_index("modality")
    for dims in probe[probe["target"] != "mean"].groupby("modality"):
        assert mean.loc[dims[0], "r2"] == pytest.approx(dims[1]["r2"].mean())
    assert (mean["r2"] > mean["r2_shuffled"]).all(), mean
    for modality in ("image", "editing", "all"):                   # the content shows in the frames and the cuts
        assert mean.loc[modality, "r2"] > 0.2 and mean.loc[modality, "r2"] > mean.loc[modality, "r2_shuffled"] + 0.3, \
            mean
    assert (mean["r2_shuffled"] < 0.05).all(), mean                  # the baseline itself carries nothing
