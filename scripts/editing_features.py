"""Rule editing_features: the 157 editing features of Web Appendix E for one shard (length, stickers, scene
length from colour-histogram cuts, spatial/temporal content complexity, aesthetic/filter proxies)."""

import json

import numpy as np
import pandas as pd
from tqdm import tqdm

from reach.features.editing import EDITING_COLUMNS, editing_vector
from reach.features.store import load_npz, save_npz, shard_rows
from reach.logs import log_run_header, setup_logging
from reach.media.frames import detect_scenes

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "editing_features")
log_run_header(log, "cpu", threads=smk.threads)
p = smk.params
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "duration_s", "n_stickers", "sticker_words"])
sub = videos.iloc[shard_rows(videos["video_id"], int(smk.wildcards.shard), int(p.n_shards))]
frames = load_npz(smk.input.frames)
image = load_npz(smk.input.image)
status = pd.read_parquet(smk.input.status)
ids = sub["video_id"].to_numpy().astype(str)
if not (np.array_equal(frames["video_id"], ids) and np.array_equal(image["video_id"], ids)):
    raise ValueError("frame and image shard files do not list this shard's videos in videos.parquet order")
has_sent = "frame_sentiment" in image


def seq(arrays, name, i):
    o = arrays[name + "__offsets"]
    return arrays[name][o[i]:o[i + 1]]


values = np.zeros((len(ids), len(EDITING_COLUMNS)))
for i in tqdm(range(len(ids)), desc="editing", mininterval=5):
    row = sub.iloc[i]
    decoded = float(status["decoded_length_s"].iloc[i])
    times = seq(frames, "frame_times", i)
    scenes = detect_scenes(seq(frames, "hist_dist", i), times, decoded, float(p.scene_threshold),
                           float(p.min_scene_s)) if times.size else np.zeros(0)
    values[i] = editing_vector(
        video_length_s=float(row["duration_s"]), decoded_length_s=decoded, n_stickers=int(row["n_stickers"]),
        sticker_words=int(row["sticker_words"]), scene_lengths=scenes, hist_dist=seq(frames, "hist_dist", i),
        motion=seq(frames, "motion", i), object_probs=seq(image, "frame_probs", i),
        sentiment_probs=seq(image, "frame_sentiment", i) if has_sent else None,
        embeddings=seq(image, "frame_embed", i), key_frames=seq(frames, "frames", i))
save_npz(smk.output.features, video_id=ids, values=values, status=status["status"].to_numpy().astype(str),
         meta_columns=np.array(list(EDITING_COLUMNS)))
status.to_parquet(smk.output.status, index=False)
empty = [c for c, col in zip(EDITING_COLUMNS, values.T) if np.isnan(col).all()]
log.info("%d videos x %d editing features; all-NaN columns: %s", len(ids), values.shape[1], empty)
with open(smk.output.manifest, "w") as f:
    json.dump({"modality": "editing", "extractor": {"name": "reach.features.editing", "source": "paper formulas",
                                                    "scene_detector": f"HSV histogram correlation distance > "
                                                                      f"{p.scene_threshold}, scenes >= {p.min_scene_s} s",
                                                    "sentiment_variant": "ran" if has_sent else "empty (no model)"},
               "dims": {"values": len(EDITING_COLUMNS)}, "columns": EDITING_COLUMNS}, f, indent=2)
