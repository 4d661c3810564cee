"""Rule render_media: render one shard of the synthetic world's videos to mp4 (ffmpeg) and list them."""

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from reach.logs import setup_logging
from reach.synthetic.media import find_tool, render_audio, render_frames, write_mp4

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "render_media")
shard = int(smk.wildcards.shard)
plan = pd.read_parquet(smk.input.plan)
plan = plan[plan["shard"] == shard] if len(plan) else plan
espeak = find_tool("espeak-ng")
if espeak is None:
    log.warning("espeak-ng not found: voice-overs are rendered without speech")
media_dir = Path(smk.params.media_dir)
media_dir.mkdir(parents=True, exist_ok=True)
rows = {}
# longest first within each song, so a shared song's backing track is synthesised once (render_audio's cache);
# the output does not depend on the order, the manifest keeps the plan's
by_song = plan.sort_values(["music_id", "duration"], ascending=[True, False], kind="stable") if len(plan) else plan
for _, row in tqdm(by_song.iterrows(), total=len(by_song), desc=f"render shard {shard}", mininterval=5):
    path = media_dir / f"{row['video_id']}.mp4"
    if not row["render"]:
        path.unlink(missing_ok=True)  # the world says this video's media went missing
        rows[row["video_id"]] = (row["video_id"], str(path), "withheld", 0)
        continue
    frames = render_frames(row, smk.params.fps, smk.params.width, smk.params.height, smk.params.seed)
    audio = render_audio(row, smk.params.seed, espeak)
    write_mp4(frames, audio, smk.params.fps, path, aac_coder=smk.params.aac_coder,
              audio_bit_rate=1000 * int(smk.params.audio_kbps))
    rows[row["video_id"]] = (row["video_id"], str(path), "rendered", path.stat().st_size)
manifest = pd.DataFrame([rows[v] for v in plan.get("video_id", [])], columns=["video_id", "path", "status", "bytes"])
manifest.to_parquet(smk.output.manifest, index=False)
log.info("shard %d: %d rendered, %d withheld, %.1f MB", shard, int((manifest["status"] == "rendered").sum()),
         int((manifest["status"] == "withheld").sum()), manifest["bytes"].sum() / 1e6)
