"""Rule sample_frames: one shard's key frames (one every frame_interval_s) and the per-frame colour-histogram and
motion series the editing features need, with a per-video status."""

import numpy as np
import pandas as pd
from tqdm import tqdm

from reach.features.store import offsets_from_lengths, save_npz, shard_rows
from reach.logs import setup_logging
from reach.media.frames import sample_video

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "sample_frames")
p = smk.params
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "media_path"])
rows = shard_rows(videos["video_id"], int(smk.wildcards.shard), int(p.n_shards))
sub = videos.iloc[rows]
log.info("shard %s: %d of %d videos; a key frame every %.1f s, stored at %dx%d", smk.wildcards.shard, len(sub),
         len(videos), p.interval_s, p.width, p.height)
bins = tuple(int(b) for b in p.hist_bins)
keys, key_t, dist, motion, times, status = [], [], [], [], [], []
for vid, path in tqdm(zip(sub["video_id"], sub["media_path"]), total=len(sub), desc="frames", mininterval=5):
    s = sample_video(path, float(p.interval_s), int(p.height), int(p.width), bins)
    if not s.ok:
        log.warning("video %s: %s (%s)", vid, s.status, s.detail)
    keys.append(s.key_frames.reshape(-1, int(p.height), int(p.width), 3))
    key_t.append(s.key_times)
    dist.append(s.hist_dist)
    motion.append(s.motion)
    times.append(s.frame_times)
    status.append({"video_id": vid, "status": s.status, "detail": s.detail, "n_key_frames": len(s.key_times),
                   "n_decoded": s.n_decoded, "fps": s.fps, "width": s.width, "height": s.height,
                   "rotation": s.rotation, "decoded_length_s": s.duration_s})
table = pd.DataFrame(status, columns=["video_id", "status", "detail", "n_key_frames", "n_decoded", "fps", "width",
                                      "height", "rotation", "decoded_length_s"])


def ragged(name, parts, dtype, shape):
    arr = np.concatenate(parts).astype(dtype) if parts else np.zeros((0, *shape), dtype)
    return {name: arr, name + "__offsets": offsets_from_lengths([len(x) for x in parts])}


save_npz(smk.output.frames, video_id=sub["video_id"].to_numpy().astype(str),
         **ragged("frames", keys, np.uint8, (int(p.height), int(p.width), 3)),
         **ragged("key_times", key_t, np.float32, ()), **ragged("hist_dist", dist, np.float32, ()),
         **ragged("motion", motion, np.float32, ()), **ragged("frame_times", times, np.float32, ()))
table.to_parquet(smk.output.status, index=False)
log.info("key frames %d; statuses %s", sum(len(k) for k in keys), table["status"].value_counts().to_dict())
