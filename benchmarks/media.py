"""Real-size media (issue 19, item 4): decode cost of sample_frames on clips like TikTok's, today's path
(the pre-issue-19 sample_video, kept verbatim here: one thread, every frame converted to RGB at full resolution,
histograms and motion on the full frames) beside the new one (FFmpeg
threads, histogram/motion series on a copy with short side --series, full-resolution RGB only for key frames),
and how far the editing features move. Prints figures and ratios; asserts nothing.

    nice -n 10 .venv/bin/python benchmarks/media.py [--full] [--clips DIR] [--threads 1,2] [--series 180]
        [--key-size 398x224] [--world-clips 4]

Clips are made with the ffmpeg CLI into a temporary folder (or --clips DIR, kept and reused): 30 fps, AAC 44.1 kHz
stereo, ffmpeg's testsrc2 pattern with a hue jump every few seconds (scene cuts) and temporal noise (so the
encoder spends bits as on camera footage; about 2 Mbit/s at 720p). Default: 720x1280 60 s H.264 and HEVC, 1080x1920
30 s H.264, a variable-frame-rate 720p clip (frames dropped in a pattern for 20 s, then 30 fps) and a 720p clip
stored landscape with a 90-degree display matrix. --full: 15, 60 and 180 s at both sizes in both codecs as well.

Per clip: wall seconds and CPU seconds (user + system of this process, decoder threads included) for each path,
frames per CPU second ("per core"), the ratios, the load average around each run (the machine is shared), and
the editing features' largest differences (new vs today's path). --world-clips N also renders N clips with the
synthetic world's media code at the default world's size (96x160, 4 fps) and checks the two paths agree there.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from reach.features.editing import EDITING_COLUMNS, editing_vector
from reach.media.audio import decode_audio
import av
import cv2

from reach.media.frames import (FrameSample, detect_scenes, histogram_distance, hsv_histogram, key_times,
                               letterbox, sample_video, upright)

SCENE_THRESHOLD, MIN_SCENE_S = 0.3, 0.5          # workflow_config.yaml features.scene_threshold / min_scene_s
SERIES_COLUMNS = ["n_scenes", "avg_scene_length_s", "sd_scene_length_s", "scene_cuts_per_s", "hist_change_mean",
                  "hist_change_max", "motion_mean", "motion_sd"]


def today_sample_video(path: str | Path, interval_s: float, height: int, width: int,
                 bins: tuple[int, int, int] = (16, 4, 4)) -> FrameSample:
    """Today's path, verbatim from reach.media.frames before issue 19 (commit 1d91cc7): every frame converted to
    RGB at full size on one thread (a new swscale context per frame), histograms and thumbnails of full frames."""
    path = Path(path)
    if not path.exists():
        return FrameSample("missing", f"no file {path}")
    if path.stat().st_size == 0:
        return FrameSample("empty", "zero-length file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        return FrameSample("unreadable", f"{type(exc).__name__}: {exc}"[:300])
    with container:
        if not container.streams.video:
            return FrameSample("no_video", "container has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else float("nan")
        stream_duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        if stream_duration is None and container.duration:
            stream_duration = container.duration / 1e6
        times: list[float] = []
        hists: list[np.ndarray] = []
        motion: list[float] = []
        keys: list[np.ndarray] = []
        key_t: list[float] = []
        planned = key_times(stream_duration or 1e9, interval_s)
        prev_small = None
        rotation = 0
        native = (0, 0)
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else len(times) / (fps if fps == fps else 1.0)
                rotation = int(getattr(frame, "rotation", 0) or 0)
                img = upright(frame.to_ndarray(format="rgb24"), rotation)
                native = img.shape[:2]
                times.append(t)
                hists.append(hsv_histogram(img, bins))
                small = cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA).astype(np.int16)
                if prev_small is not None:
                    motion.append(float(np.abs(small - prev_small).mean() / 255.0))
                prev_small = small
                if len(key_t) < planned.size and t + 1e-6 >= planned[len(key_t)]:
                    keys.append(letterbox(img, height, width))
                    key_t.append(t)
        except (av.FFmpegError, ValueError) as exc:
            if not times:
                return FrameSample("unreadable", f"decoding failed: {type(exc).__name__}: {exc}"[:300])
            detail = f"decoding stopped after {len(times)} frames: {exc}"[:300]
        else:
            detail = ""
    if not times:
        return FrameSample("no_frames", "video stream decodes to no frames")
    step = 1.0 / fps if fps == fps and fps > 0 else (np.median(np.diff(times)) if len(times) > 1 else 0.0)
    dist = [histogram_distance(a, b) for a, b in zip(hists[:-1], hists[1:])]
    status = "ok"
    notes = [detail] if detail else []
    if rotation % 360:
        status = "rotated"
        notes.append(f"rotation {rotation} degrees applied")
    if native != (height, width):
        status = "resized" if status == "ok" else status
        notes.append(f"{native[1]}x{native[0]} letterboxed to {width}x{height}")
    return FrameSample(
        status=status, detail="; ".join(notes), key_frames=np.stack(keys), key_times=np.array(key_t, np.float32),
        n_decoded=len(times), fps=fps, width=int(native[1]), height=int(native[0]), rotation=rotation,
        duration_s=float(times[-1] + step), hist_dist=np.array(dist, np.float32),
        motion=np.array(motion, np.float32), frame_times=np.array(times, np.float32))


def today(path: Path, height: int, width: int) -> FrameSample:
    return today_sample_video(path, 5, height, width)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load() -> float:
    return os.getloadavg()[0]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_clip(out: Path, width: int, height: int, seconds: int, codec: str, vfr: bool = False,
              rotate: bool = False) -> Path:
    """A TikTok-like clip: 30 fps, cuts every few seconds, noise, AAC 44.1 kHz stereo."""
    if out.exists():
        return out
    w, h = (height, width) if rotate else (width, height)          # rotated clips are stored landscape
    pattern = (f"testsrc2=s={w}x{h}:r=30:d={seconds},hue=h='97*floor(t/3)+41*floor(t/7)',"
               f"noise=alls=10:allf=t")
    if vfr:   # 0-20 s: 7 of every 10 frames kept (21 fps), then 30 fps
        pattern += r",select='lt(mod(n\,10)\,7)+gt(t\,20)'"
    kbit = int(2000 * (width * height) / (720 * 1280) ** 1.0 * (0.6 if codec == "hevc" else 1.0))
    enc = (["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high"] if codec == "h264" else
           ["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-x265-params", "log-level=error"])
    tmp = out.with_suffix(".tmp.mp4")
    sine = f"sine=frequency=440:sample_rate=44100:duration={seconds}"
    ffmpeg("-f", "lavfi", "-i", pattern, "-f", "lavfi", "-i", sine,
           *enc, "-pix_fmt", "yuv420p", "-b:v", f"{kbit}k", "-maxrate", f"{int(kbit * 1.3)}k",
           "-bufsize", f"{2 * kbit}k", *(["-fps_mode", "vfr"] if vfr else []),
           "-c:a", "aac", "-ac", "2", "-ar", "44100", "-b:a", "128k", "-movflags", "+faststart", str(tmp))
    if rotate:
        rot = out.with_suffix(".rot.mp4")
        try:
            ffmpeg("-i", str(tmp), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rot))      # FFmpeg <= 5
        except subprocess.CalledProcessError:
            ffmpeg("-display_rotation:v:0", "90", "-i", str(tmp), "-c", "copy", str(rot))     # FFmpeg >= 6
        rot.replace(tmp)
    tmp.replace(out)
    return out


def clip_plan(full: bool) -> list[dict]:
    plan = [dict(name="h264_720p_60s", width=720, height=1280, seconds=60, codec="h264"),
            dict(name="hevc_720p_60s", width=720, height=1280, seconds=60, codec="hevc"),
            dict(name="h264_1080p_30s", width=1080, height=1920, seconds=30, codec="h264"),
            dict(name="h264_720p_30s_vfr", width=720, height=1280, seconds=30, codec="h264", vfr=True),
            dict(name="h264_720p_30s_rot90", width=720, height=1280, seconds=30, codec="h264", rotate=True)]
    if full:
        for seconds in (15, 60, 180):
            for width, height in ((720, 1280), (1080, 1920)):
                for codec in ("h264", "hevc"):
                    spec = dict(width=width, height=height, seconds=seconds, codec=codec)
                    if not any({k: p[k] for k in spec} == spec and not p.get("vfr") and not p.get("rotate")
                               for p in plan):
                        plan.append(dict(name=f"{codec}_{width}x{height}_{seconds}s", **spec))
    return plan


def editing(s: FrameSample) -> np.ndarray:
    """The 157 editing features from a sample (object/embedding inputs held fixed: they come from the key frames,
    which both paths give identically, so only the series-driven columns can move)."""
    k = s.key_frames.shape[0]
    fixed = np.zeros((k, 1))
    scenes = detect_scenes(s.hist_dist, s.frame_times, s.duration_s, SCENE_THRESHOLD, MIN_SCENE_S)
    return editing_vector(video_length_s=s.duration_s, decoded_length_s=s.duration_s, n_stickers=0, sticker_words=0,
                          scene_lengths=scenes, hist_dist=s.hist_dist, motion=s.motion, object_probs=fixed,
                          sentiment_probs=None, embeddings=fixed, key_frames=s.key_frames)


def compare(ref: FrameSample, new: FrameSample) -> dict:
    """Largest differences between the two paths' outputs and editing features."""
    same_keys = ref.key_frames.shape == new.key_frames.shape and np.array_equal(ref.key_frames, new.key_frames)
    out = {"same_status": ref.status == new.status, "same_key_frames": bool(same_keys),
           "same_frame_times": bool(np.array_equal(ref.frame_times, new.frame_times)),
           "hist_dist_max_abs": float(np.abs(ref.hist_dist - new.hist_dist).max()) if ref.hist_dist.size else 0.0,
           "motion_max_abs": float(np.abs(ref.motion - new.motion).max()) if ref.motion.size else 0.0}
    a, b = editing(ref), editing(new)
    names = list(EDITING_COLUMNS)
    for col in SERIES_COLUMNS:
        i = names.index(col)
        out[col] = (float(a[i]), float(b[i]))
    diff = np.abs(a - b)
    rel = diff / np.maximum(np.abs(a), 1e-12)
    out["editing_max_abs"] = float(np.nanmax(diff))
    out["editing_max_rel"] = float(np.nanmax(np.where(diff > 0, rel, 0.0)))
    out["editing_worst_column"] = names[int(np.nanargmax(np.where(diff > 0, rel, 0.0)))] if np.nanmax(diff) > 0 else "-"
    return out


def timed(fn):
    load0, c0, t0 = load(), cpu_s(), time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0, cpu_s() - c0, (load0 + load()) / 2


def decode_only(path: Path) -> int:
    """Every frame decoded on one thread and dropped: the floor under any path that needs every frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        return sum(1 for _ in container.decode(stream))


def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,width,height,avg_frame_rate,r_frame_rate,nb_frames,bit_rate",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["streams"][0]


def world_clips(n: int, folder: Path, series: int) -> None:
    """Clips rendered by the synthetic world's media code at the default world's size: both paths must agree
    exactly there (frames no larger than the series size are used as decoded)."""
    import pandas as pd

    from reach.synthetic.media import render_audio, render_frames, write_mp4
    from reach.synthetic.world import N_CONTENT, TOPICS

    rng = np.random.default_rng(0)
    worst = 0.0
    for i in range(n):
        row = pd.Series({"video_id": f"w{i}", "topic": TOPICS[i % len(TOPICS)], "campaign_type": "none",
                         "duration": float(rng.uniform(5, 30)), "stickers": "hello there|buy now",
                         "music_id": f"m{i}", "music_original": bool(i % 2), "voice_over": False, "voice_text": "",
                         **{f"content_{k}": float(rng.normal()) for k in range(N_CONTENT)}})
        path = folder / f"world_{i}.mp4"
        write_mp4(render_frames(row, 4, 96, 160, seed=1), render_audio(row, 1, None), 4, path)
        ref, new = today(path, 160, 96), sample_video(path, 5, 160, 96, series_short_side=series)
        c = compare(ref, new)
        worst = max(worst, c["editing_max_abs"], c["hist_dist_max_abs"], c["motion_max_abs"])
        print(f"  world clip {i}: {ref.n_decoded} frames {row['duration']:.1f} s, same key frames "
              f"{c['same_key_frames']}, hist max|d| {c['hist_dist_max_abs']:.2g}, motion max|d| "
              f"{c['motion_max_abs']:.2g}, editing max|d| {c['editing_max_abs']:.2g}")
    print(f"world clips (96x160, 4 fps): largest difference of any series value or editing feature {worst:.3g}")


TABLE_HEADER = ("| clip | frames | decode only, CPU s | today's path, CPU s (frames/s per core) | new, 1 thread, CPU s "
                "(frames/s per core) | CPU ratio | wall ratio, 2 threads | decode share of today's CPU | single-core "
                "bound | editing, largest relative move | load |\n|---|---|---|---|---|---|---|---|---|---|---|")


def table_row(spec: dict, r: dict, threads: list[int]) -> str:
    """One clip as a markdown row (docs/features.md): CPU figures of the new path on its first thread count, wall
    ratio on its last; the single-core bound is today's CPU over decode-only CPU."""
    t1, t2 = threads[0], threads[-1]
    kind = (" VFR" if spec.get("vfr") else "") + (", stored landscape + rotate 90" if spec.get("rotate") else "")
    new_cpu = r[f"new{t1}_cpu"]
    return (f"| {spec['codec'].upper().replace('H264', 'H.264')} {spec['width']}x{spec['height']} "
            f"{spec['seconds']} s{kind} | {r['frames']} | {r['decode_cpu']:.1f} | "
            f"{r['ref_cpu']:.1f} ({r['frames'] / r['ref_cpu']:.0f}) | {new_cpu:.1f} ({r['frames'] / new_cpu:.0f}) | "
            f"{r['ref_cpu'] / new_cpu:.1f}x | {r['ref_wall'] / r[f'new{t2}_wall']:.1f}x | "
            f"{100 * r['decode_cpu'] / r['ref_cpu']:.0f}% | {r['ref_cpu'] / r['decode_cpu']:.1f}x | "
            f"{100 * r['edit_rel']:.2f}% ({r['edit_col']}) | {r['load']:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="also 15/60/180 s at 720p and 1080p in H.264 and HEVC")
    ap.add_argument("--clips", type=Path, default=None, help="keep (and reuse) the clips in this folder")
    ap.add_argument("--threads", default="1,2", help="FFmpeg decoder threads for the new path (0: FFmpeg picks)")
    ap.add_argument("--series", type=int, default=180, help="series_short_side of the new path")
    ap.add_argument("--key-size", default="398x224", help="key-frame canvas HxW (224 short side: the CNN input)")
    ap.add_argument("--world-clips", type=int, default=4)
    ap.add_argument("--only", default=None, help="comma-separated clip names")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)     # every line out as it is measured: a killed run loses nothing
    if not shutil.which("ffmpeg"):
        raise SystemExit("benchmarks/media.py needs the ffmpeg CLI to make its clips")
    kh, kw = (int(x) for x in args.key_size.split("x"))
    threads = [int(t) for t in args.threads.split(",")]
    cv2.setNumThreads(1)     # OpenCV's pool off in both paths (sample_frames does the same with threads: 1)
    folder = args.clips or Path(tempfile.mkdtemp(prefix="reach_media_"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()}; clips in {folder}; key frames {kh}x{kw}; "
          f"series short side {args.series}; new-path threads {threads}")
    if args.world_clips:
        world_clips(args.world_clips, folder, args.series)
    plan = clip_plan(args.full)
    if args.only:           # in the order given, so that the clips still missing can go first
        names = {p["name"]: p for p in plan}
        unknown = [n for n in args.only.split(",") if n not in names]
        if unknown:
            raise SystemExit(f"--only: no clip {unknown} in the plan (--full for the 15/60/180-s clips): "
                             f"{sorted(names)}")
        plan = [names[n] for n in args.only.split(",")]
    rows = []
    for spec in plan:
        spec = dict(spec)
        name = spec.pop("name")
        t0 = time.perf_counter()
        path = make_clip(folder / f"{name}.mp4", **spec)
        info = probe(path)
        print(f"\n{name}: {info['codec_name']} {info['width']}x{info['height']} avg {info['avg_frame_rate']} "
              f"({info.get('nb_frames', '?')} frames, {int(info.get('bit_rate', 0)) / 1e6:.2f} Mbit/s; made in "
              f"{time.perf_counter() - t0:.0f} s)")
        ref, ref_wall, ref_cpu, ref_load = timed(lambda: today(path, kh, kw))
        n = ref.n_decoded
        print(f"  today's path   : {ref.status:8s} {n} frames {ref.width}x{ref.height} rot {ref.rotation}: wall "
              f"{ref_wall:6.1f} s, CPU {ref_cpu:6.1f} s, {n / ref_cpu:6.1f} frames/s per core (load {ref_load:.1f})")
        _, d_wall, d_cpu, d_load = timed(lambda: decode_only(path))
        print(f"  decode only    : one thread, no conversion: wall {d_wall:6.1f} s, CPU {d_cpu:6.1f} s, "
              f"{n / d_cpu:6.1f} frames/s per core (load {d_load:.1f}): today's path spends "
              f"{100 * d_cpu / ref_cpu:.0f}% of its CPU decoding")
        row = {"clip": name, "frames": n, "ref_wall": ref_wall, "ref_cpu": ref_cpu, "decode_cpu": d_cpu}
        for th in threads:
            new, wall, cpu, ld = timed(lambda: sample_video(path, 5, kh, kw, series_short_side=args.series,
                                                            threads=th))
            c = compare(ref, new)
            print(f"  new, threads {th}: {new.status:8s} {new.n_decoded} frames: wall {wall:6.1f} s, CPU {cpu:6.1f} s, "
                  f"{new.n_decoded / cpu:6.1f} frames/s per core (load {ld:.1f}); "
                  f"speed-up wall x{ref_wall / wall:.1f}, "
                  f"CPU x{ref_cpu / cpu:.1f}")
            row[f"new{th}_wall"], row[f"new{th}_cpu"] = wall, cpu
        print(f"  same status {c['same_status']}, key frames {c['same_key_frames']}, frame times "
              f"{c['same_frame_times']}; hist_dist max|d| {c['hist_dist_max_abs']:.4f}, motion max|d| "
              f"{c['motion_max_abs']:.5f}; key times {ref.key_times.round(2).tolist()}")
        print("  editing (today -> new): " + ", ".join(f"{k} {c[k][0]:.4g}->{c[k][1]:.4g}" for k in SERIES_COLUMNS))
        print(f"  editing features: max|d| {c['editing_max_abs']:.3g}, max relative {c['editing_max_rel']:.3g} "
              f"({c['editing_worst_column']})")
        track, a_wall, a_cpu, _ = timed(lambda: decode_audio(path))
        print(f"  audio: {track.status} ({track.detail}), {track.wave.size / track.rate:.1f} s decoded in "
              f"{a_wall:.2f} s wall")
        row["edit_rel"], row["edit_col"] = c["editing_max_rel"], c["editing_worst_column"]
        row["load"] = (ref_load + d_load + ld) / 3
        rows.append(row)
        print("  row: " + table_row(spec, row, threads))
    print("\nclip                     frames  decode-only CPU s  today wall/CPU s  " +
          "  ".join(f"new t{t} wall/CPU s  x wall/CPU" for t in threads))
    for r in rows:
        cells = [f"{r[f'new{t}_wall']:6.1f}/{r[f'new{t}_cpu']:5.1f}   x{r['ref_wall'] / r[f'new{t}_wall']:4.1f}/"
                 f"{r['ref_cpu'] / r[f'new{t}_cpu']:4.1f}" for t in threads]
        print(f"{r['clip']:24s} {r['frames']:6d}  {r['decode_cpu']:9.1f}          "
              f"{r['ref_wall']:7.1f}/{r['ref_cpu']:6.1f}"
              f"    " + "   ".join(cells))
    print("\n" + TABLE_HEADER)
    for spec, r in zip(plan, rows):
        print(table_row(spec, r, threads))
    print(f"load average at the end {os.getloadavg()}")
    if args.clips is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
