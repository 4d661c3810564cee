"""Rule sample_frames: one shard's key frames (one every frame_interval_s) and the per-frame colour-histogram and
motion series the editing features need, with a per-video status."""

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from reach.features.store import offsets_from_lengths, save_npz, shard_rows
from reach.logs import log_run_header, setup_logging
from reach.media.frames import sample_video

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "sample_frames")
log_run_header(log, "cpu", threads=smk.threads)
p = smk.params
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "media_path"])
rows = shard_rows(videos["video_id"], int(smk.wildcards.shard), int(p.n_shards))
sub = videos.iloc[rows]
log.info("shard %s: %d of %d videos; a key frame every %.1f s, stored at %dx%d", smk.wildcards.shard, len(sub),
         len(videos), p.interval_s, p.width, p.height)
bins = tuple(int(b) for b in p.hist_bins)
threads = int(smk.threads)
cv2.setNumThreads(threads)            # OpenCV's pool no wider than the rule's threads (results do not depend on it)
series = None if p.series_short_side is None else int(p.series_short_side)
log.info("FFmpeg decoder threads %d; histogram/motion series at short side %s (frames no larger are used as decoded)",
         threads, series)
small_canvas = min(int(p.height), int(p.width)) < 224
warned = False
keys, key_t, dist, motion, times, status = [], [], [], [], [], []
for vid, path in tqdm(zip(sub["video_id"], sub["media_path"]), total=len(sub), desc="frames", mininterval=5):
    s = sample_video(path, float(p.interval_s), int(p.height), int(p.width), bins, series_short_side=series,
                     threads=threads)
    if not s.ok:
        log.warning("video %s: %s (%s)", vid, s.status, s.detail)
    elif small_canvas and not warned and min(s.width, s.height) > min(int(p.height), int(p.width)):
        warned = True
        log.warning("video %s is %dx%d but key frames are stored at %dx%d, below the image model's 224-pixel input: "
                    "for real-size media set media.frame_width/frame_height (e.g. 224 x 398)", vid, s.width,
                    s.height, int(p.width), int(p.height))
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
