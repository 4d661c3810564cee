"""Rendering the synthetic world's media (rule render_media): CPU seconds per video, today's renderer beside the
original one, split into frame synthesis, audio synthesis (the espeak-ng voice-over subprocess counted apart) and
encoding (libx264 + AAC), on real rows of the media plan. Prints figures and ratios; asserts nothing.

    .venv/bin/python benchmarks/render.py [--rows N] [--plan PATH] [--aac fast:24,fast:48,twoloop:48]

old: `_render_frames_reference` (per-frame float64 background copies; its own 8-entry sprite cache, as before,
which re-decoded the sample photograph for most videos) + `_render_audio_reference` + `write_mp4`.
new: `render_frames` + `render_audio` (rows in scripts/render_media.py's order: by song, longest first) +
`write_mp4`. The two are run row by row in turn (the machine is shared, the load drifts), and their frames,
waveforms and mp4 bytes are compared. CPU = user + system of this process (resource.getrusage), espeak-ng's from
RUSAGE_CHILDREN.

--aac CODER:KBPS,... also times `write_mp4(..., aac_coder=CODER, audio_bit_rate=KBPS * 1000)` on the new path's
frames and audio (today: twoloop, FFmpeg's default, at 24) and reports how the decoded audio moves: SNR of each
decode against the rendered waveform, and for the acoustic features (reach.features.audio.acoustic_features) and
the speech-rhythm score (reach.features.speech), the median and largest difference from today's decode and from the
rendered waveform itself, in units of the feature's spread (sd) across the rows in today's decode.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from reach.synthetic import media

ROOT = Path(__file__).resolve().parents[1]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def default_seed() -> int:
    import yaml

    with open(ROOT / "workflow_config.yaml") as f:
        return int(yaml.safe_load(f)["seed"])


def render_one(row, frames_fn, audio_fn, out: Path, fps: int, width: int, height: int, seed: int,
               espeak: str | None) -> tuple[dict, np.ndarray, np.ndarray]:
    t0, k0 = cpu(), child_cpu()
    frames = frames_fn(row, fps, width, height, seed)
    t1 = cpu()
    audio = audio_fn(row, seed, espeak)
    t2, k2 = cpu(), child_cpu()
    media.write_mp4(frames, audio, fps, out)
    t3 = cpu()
    cost = {"frames": t1 - t0, "audio": t2 - t1, "espeak": k2 - k0, "encode": t3 - t2}
    return cost, frames, audio


def audio_features(wave: np.ndarray) -> np.ndarray:
    from reach.features.audio import acoustic_features
    from reach.features.speech import detect_speech_rhythm

    return np.r_[acoustic_features(wave), detect_speech_rhythm(wave).score]


def snr_db(ref: np.ndarray, dec: np.ndarray) -> float:
    n = min(ref.size, dec.size)
    ref, dec = ref[:n].astype(np.float64), dec[:n].astype(np.float64)
    return float(10 * np.log10((ref ** 2).sum() / max(((ref - dec) ** 2).sum(), 1e-20)))


def song_reuse(rows: pd.DataFrame) -> float:
    """Share of rows whose backing track a longest-first pass finds cached: shared songs after their first video."""
    shared = rows[~rows["music_original"].astype(bool)]
    return (len(shared) - shared["music_id"].nunique()) / max(1, len(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=60, help="plan rows, evenly spaced through the plan")
    ap.add_argument("--plan", default=str(ROOT / "results/synthetic/media_plan.parquet"))
    ap.add_argument("--fps", type=int, default=4)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("--seed", type=int, default=None, help="default: workflow_config.yaml's seed")
    ap.add_argument("--aac", default="", help="AAC variants CODER:KBPS,... to time and compare (e.g. fast:48)")
    args = ap.parse_args()
    variants = [(v.split(":")[0], int(v.split(":")[1])) for v in args.aac.split(",") if v]
    seed = default_seed() if args.seed is None else args.seed
    plan = pd.read_parquet(args.plan)
    plan = plan[plan["render"]] if "render" in plan else plan
    rows = plan.iloc[np.linspace(0, len(plan) - 1, min(args.rows, len(plan))).astype(int)]
    rows = rows.sort_values(["music_id", "duration"], ascending=[True, False], kind="stable")
    espeak = media.find_tool("espeak-ng")
    size = (args.fps, args.width, args.height, seed, espeak)
    print(f"{len(rows)} plan rows of {args.plan}: {rows['duration'].sum():.0f} s of video, "
          f"{int(rows['voice_over'].sum())} with a voice-over (espeak-ng: {espeak or 'absent'}), "
          f"{args.width}x{args.height} at {args.fps} fps, seed {seed}; load average {os.getloadavg()[0]:.2f}")
    media._sprite.cache_clear()
    media._sprite_reference.cache_clear()
    media._BACKING.clear()
    hit = [False]
    backing = media._backing_track

    def watched_backing_track(music_id: str, tempo: float, n: int) -> np.ndarray:
        cached = media._BACKING.get((music_id, tempo))
        hit[0] = cached is not None and cached.size >= n
        return backing(music_id, tempo, n)

    media._backing_track = watched_backing_track
    hits: list[bool] = []
    costs: dict[str, list[dict]] = {"old": [], "new": []}
    same = {"frames": 0, "audio": 0, "mp4": 0}
    var_cost = {v: [] for v in [("today", 24), *variants]}
    var_feats = {v: [] for v in [("today", 24), *variants, ("rendered", 0)]}
    var_snr = {v: [] for v in [("today", 24), *variants]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for _, row in rows.iterrows():
            c_old, f_old, a_old = render_one(row, media._render_frames_reference, media._render_audio_reference,
                                             tmp / "old.mp4", *size)
            c_new, f_new, a_new = render_one(row, media.render_frames, media.render_audio, tmp / "new.mp4", *size)
            hits.append(hit[0])
            costs["old"].append(c_old)
            costs["new"].append(c_new)
            same["frames"] += int(np.array_equal(f_old, f_new))
            same["audio"] += int(a_old.dtype == a_new.dtype and np.array_equal(a_old, a_new))
            same["mp4"] += int((tmp / "old.mp4").read_bytes() == (tmp / "new.mp4").read_bytes())
        # a second pass, so that decoding and feature work do not sit between the old and new renders above
        # (the variants' order turns row by row: the first encode after the feature work runs on cold caches)
        every = [("today", 24), *variants]
        for i, (_, row) in enumerate(rows.iterrows() if variants else ()):
            from reach.media.audio import decode_audio

            f_new, a_new = media.render_frames(row, *size[:4]), media.render_audio(row, seed, espeak)
            decoded = {}
            for v in every[i % len(every):] + every[:i % len(every)]:
                t0 = cpu()
                media.write_mp4(f_new, a_new, args.fps, tmp / "var.mp4", aac_coder=None if v[0] == "today" else v[0],
                                audio_bit_rate=v[1] * 1000)
                var_cost[v].append(cpu() - t0)
                decoded[v] = decode_audio(tmp / "var.mp4").wave
            for v, wave in sorted(decoded.items()):
                var_feats[v].append(audio_features(wave))
                var_snr[v].append(snr_db(a_new, wave))
            var_feats[("rendered", 0)].append(audio_features(a_new))
    n = len(rows)
    print(f"identical to the original: frames {same['frames']}/{n}, waveforms {same['audio']}/{n}, "
          f"mp4 bytes {same['mp4']}/{n}; load average {os.getloadavg()[0]:.2f}")
    print(f"\nCPU s/video          {'old':>8} {'new':>8} {'old/new':>8}")
    total = {}
    for part in ("frames", "audio", "espeak", "encode", "total"):
        per = {}
        for k, cs in costs.items():
            per[k] = sum(sum(c.values()) if part == "total" else c[part] for c in cs) / n
        total[part] = per
        ratio = per["old"] / per["new"] if per["new"] > 0 else float("nan")
        print(f"{part:20s} {per['old']:8.4f} {per['new']:8.4f} {ratio:8.2f}")
    shard_reuse = np.mean([song_reuse(g) for _, g in plan.groupby("shard")]) if "shard" in plan else float("nan")
    audio_new = np.array([c["audio"] for c in costs["new"]])
    hits_ = np.array(hits)
    if hits_.any() and (~hits_).any() and np.isfinite(shard_reuse):
        at_shard = shard_reuse * audio_new[hits_].mean() + (1 - shard_reuse) * audio_new[~hits_].mean()
        tot = total["total"]["new"] - total["audio"]["new"] + at_shard
        print(f"new audio: {audio_new[hits_].mean():.4f} s/video with the song's backing track cached "
              f"({hits_.mean():.0%} of these rows), {audio_new[~hits_].mean():.4f} without; a render_media shard of "
              f"this plan finds it cached for {shard_reuse:.0%} of its rows: audio {at_shard:.4f}, total {tot:.4f} "
              f"s/video, old/new {total['total']['old'] / tot:.2f} (extrapolated)")
    if variants:
        from reach.features.audio import ACOUSTIC

        names = [*ACOUSTIC, "speech_rhythm_score"]
        feats = {v: np.array(x) for v, x in var_feats.items()}
        sd = np.nanstd(feats[("today", 24)], axis=0)
        sd = np.where(sd > 0, sd, np.nan)
        print("\nAAC variants on the new frames and audio (today = twoloop, FFmpeg's default, 24 kbit/s), encoded in a"
              "\nsecond pass; CPU s/video, total = the new frames, audio and espeak above + this encode;"
              "\nfeatures moved from today's decode and from the rendered waveform, |x - y| / sd across rows in today's"
              "\ndecode, median over rows, then the median and the worst feature")
        print(f"{'coder:kbps':12s} {'encode':>7s} {'total':>7s} {'old/new':>7s} {'SNR dB':>6s} "
              f"{'vs today med/max':>15s} {'vs rendered med/max':>15s}  worst vs today")
        rendered = feats[("rendered", 0)]
        for v in [("today", 24), *variants]:
            enc = float(np.mean(var_cost[v]))
            tot = total["total"]["new"] - total["encode"]["new"] + enc
            to_today = np.nanmedian(np.abs(feats[v] - feats[("today", 24)]) / sd, axis=0)
            to_rendered = np.nanmedian(np.abs(feats[v] - rendered) / sd, axis=0)
            worst = names[int(np.nanargmax(to_today))] if np.nanmax(to_today) > 0 else "-"
            print(f"{v[0] + ':' + str(v[1]):12s} {enc:7.4f} {tot:7.4f} {total['total']['old'] / tot:7.2f} "
                  f"{np.median(var_snr[v]):6.1f} {np.nanmedian(to_today):7.2f} {np.nanmax(to_today):7.2f} "
                  f"{np.nanmedian(to_rendered):7.2f} {np.nanmax(to_rendered):7.2f}  {worst} {np.nanmax(to_today):.2f}")


if __name__ == "__main__":
    main()
