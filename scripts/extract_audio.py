"""Rule extract_audio: one shard's audio tracks as 16 kHz mono waveforms (16-bit PCM in a ragged array), with a
per-video status."""

import numpy as np
import pandas as pd
from tqdm import tqdm

from reach.features.store import offsets_from_lengths, save_npz, shard_rows
from reach.logs import log_run_header, setup_logging
from reach.media.audio import decode_audio

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "extract_audio")
log_run_header(log, "cpu", threads=smk.threads)
rate = int(smk.params.rate)
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "media_path"])
rows = shard_rows(videos["video_id"], int(smk.wildcards.shard), int(smk.params.n_shards))
sub = videos.iloc[rows]
log.info("shard %s: %d videos at %d Hz mono", smk.wildcards.shard, len(sub), rate)
waves, status = [], []
for vid, path in tqdm(zip(sub["video_id"], sub["media_path"]), total=len(sub), desc="audio", mininterval=5):
    t = decode_audio(path, rate)
    if not t.ok:
        log.warning("video %s: %s (%s)", vid, t.status, t.detail)
    waves.append(np.round(t.wave * 32767).astype(np.int16))
    status.append({"video_id": vid, "status": t.status, "detail": t.detail, "n_samples": int(t.wave.size),
                   "length_s": t.wave.size / rate,
                   "rms": float(np.sqrt(np.mean(t.wave.astype(np.float64) ** 2))) if t.wave.size else float("nan")})
save_npz(smk.output.audio, video_id=sub["video_id"].to_numpy().astype(str),
         wave=np.concatenate(waves) if waves else np.zeros(0, np.int16),
         wave__offsets=offsets_from_lengths([w.size for w in waves]), meta_rate=np.array([rate]))
pd.DataFrame(status, columns=["video_id", "status", "detail", "n_samples", "length_s", "rms"]).to_parquet(
    smk.output.status, index=False)
log.info("statuses %s", pd.DataFrame(status)["status"].value_counts().to_dict() if status else {})
