"""Media decoding: key-frame times, statuses for bad media (never a crash, never a silent zero vector),
rotation and odd sizes, scene detection on hand-made series, and the shard store's exact reordering."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from reach.features.store import concat_in_order, load_npz, offsets_from_lengths, save_npz, shard_rows
from reach.media.audio import decode_audio
from reach.media.frames import detect_scenes, key_times, letterbox, sample_video, upright


def write_video(path: Path, frames: np.ndarray, fps: int = 4, audio: np.ndarray | None = None,
                rate: int = 16_000) -> Path:
    with av.open(str(path), "w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if audio is not None:
            a = c.add_stream("aac", rate=rate, layout="mono")
        for f in frames:
            c.mux(vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(vs.encode())
        if audio is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            for i in range(0, pcm.size, 1024):
                fr = av.AudioFrame.from_ndarray(pcm[None, i:i + 1024], format="s16", layout="mono")
                fr.sample_rate, fr.pts = rate, i
                c.mux(a.encode(fr))
            c.mux(a.encode())
    return path


def coloured_frames(n: int, h: int = 64, w: int = 48, cut_every: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 255, size=(n // cut_every + 1, 3))
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i] = colours[i // cut_every]
    return frames


def test_key_times_one_every_interval_before_the_end():
    assert key_times(10.0, 5).tolist() == [0.0, 5.0]
    assert key_times(10.5, 5).tolist() == [0.0, 5.0, 10.0]
    assert key_times(4.0, 5).tolist() == [0.0]
    assert key_times(float("nan"), 5).tolist() == [0.0]


def test_bad_media_get_statuses_not_crashes(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(1).bytes(5000))
    silent = write_video(tmp_path / "silent.mp4", coloured_frames(8))          # video, no audio track
    cases = {"missing": tmp_path / "nope.mp4", "empty": empty, "unreadable": garbage}
    for status, path in cases.items():
        s = sample_video(path, 5, 64, 48)
        assert s.status == status and not s.ok and s.key_frames.shape[0] == 0 and s.detail
        t = decode_audio(path)
        assert t.status == status and not t.ok and t.wave.size == 0
    t = decode_audio(silent)
    assert t.status == "no_audio" and t.wave.size == 0
    s = sample_video(silent, 5, 64, 48)
    assert s.ok and s.key_frames.shape == (1, 64, 48, 3)


def test_audio_only_file_has_no_video_status(tmp_path):
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w", format="mp4") as c:
        a = c.add_stream("aac", rate=16000, layout="mono")
        pcm = (0.3 * np.sin(np.arange(16000) / 10) * 32767).astype(np.int16)
        for i in range(0, pcm.size, 1024):
            fr = av.AudioFrame.from_ndarray(pcm[None, i:i + 1024], format="s16", layout="mono")
            fr.sample_rate, fr.pts = 16000, i
            c.mux(a.encode(fr))
        c.mux(a.encode())
    assert sample_video(path, 5, 64, 48).status == "no_video"
    t = decode_audio(path)
    assert t.ok and abs(t.wave.size - 16000) < 2048


def test_key_frames_sizes_series_and_audio(tmp_path):
    frames = coloured_frames(48)                                      # 12 s at 4 fps, a cut every 2 s
    audio = 0.5 * np.sin(2 * np.pi * 440 * np.arange(12 * 16000) / 16000)
    path = write_video(tmp_path / "v.mp4", frames, audio=audio)
    s = sample_video(path, 5, 64, 48)
    assert s.status == "ok" and s.key_times.tolist() == [0.0, 5.0, 10.0]
    assert s.key_frames.shape == (3, 64, 48, 3) and s.n_decoded == 48 and s.duration_s == pytest.approx(12.0)
    np.testing.assert_allclose(s.key_frames[1].reshape(-1, 3).mean(0), frames[20, 0, 0], atol=6)
    assert s.hist_dist.size == 47 and s.motion.size == 47
    scenes = detect_scenes(s.hist_dist, s.frame_times, s.duration_s, 0.3, 0.5)
    assert scenes.size == 6 and np.allclose(scenes, 2.0)
    t = decode_audio(path)
    assert t.status == "ok" and abs(t.wave.size / 16000 - 12) < 0.2
    assert 0.3 < np.sqrt(np.mean(t.wave[4000:-4000] ** 2)) < 0.4            # 0.5 / sqrt(2)


def test_odd_sizes_are_letterboxed_and_rotation_applied(tmp_path):
    frames = coloured_frames(4, h=50, w=90)            # landscape, odd aspect
    frames[:, :10, :10] = 255                          # a white top-left corner
    path = write_video(tmp_path / "wide.mp4", frames)
    s = sample_video(path, 5, 64, 48)
    assert s.status == "resized" and "letterboxed" in s.detail and s.key_frames.shape == (1, 64, 48, 3)
    assert s.key_frames[0, :5].max() == 0              # black bars above the picture
    rotated = tmp_path / "rot.mp4"
    out = subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(path), "-c", "copy",
                          "-metadata:s:v:0", "rotate=90", str(rotated)], capture_output=True)
    if out.returncode != 0:
        pytest.skip("ffmpeg cannot write rotation metadata here")
    r = sample_video(rotated, 5, 64, 48)
    if r.rotation == 0:
        pytest.skip("this FFmpeg build does not expose the display matrix")
    assert r.status == "rotated" and (r.height, r.width) == (90, 50)
    # the pure function: 90 degrees counter-clockwise moves the top-left corner to the bottom-left
    img = np.zeros((4, 6, 3), np.uint8)
    img[0, 0] = 255
    assert upright(img, 90)[-1, 0, 0] == 255 and upright(img, 90).shape == (6, 4, 3)


def test_letterbox_keeps_aspect():
    img = np.full((10, 40, 3), 200, np.uint8)
    out = letterbox(img, 40, 40)
    assert out.shape == (40, 40, 3) and out[20, 20, 0] == 200 and out[0, 20, 0] == 0


def test_detect_scenes_on_a_hand_made_series():
    times = np.arange(10) * 0.5                         # 10 frames at 2 fps, 5 s
    dist = np.zeros(9)
    dist[[1, 3, 6]] = [0.9, 0.8, 0.05]                  # cuts before frames 2 and 4; 0.05 is not a cut
    assert detect_scenes(dist, times, 5.0, 0.3, 0.5).tolist() == [1.0, 1.0, 3.0]
    # a minimum scene length of 1.5 s swallows the second cut
    assert detect_scenes(dist, times, 5.0, 0.3, 1.5).tolist() == [2.0, 3.0]


def test_store_concatenates_exactly_to_the_given_order(tmp_path):
    ids = [f"v{i}" for i in range(9)]
    shards = [shard_rows(ids, s, 3) for s in range(3)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(9))
    lengths = {v: i % 3 for i, v in enumerate(ids)}            # ragged: 0, 1 or 2 rows per video
    files = []
    for s, rows in enumerate(shards):
        vids = [ids[r] for r in rows]
        seq = [np.full((lengths[v], 2), int(v[1:]), np.float32) for v in vids]
        path = tmp_path / f"s{s}.npz"
        save_npz(path, video_id=np.array(vids), value=np.array([int(v[1:]) for v in vids], float),
                 seq=np.concatenate(seq) if seq else np.zeros((0, 2), np.float32),
                 seq__offsets=offsets_from_lengths([len(x) for x in seq]), meta_names=np.array(["a", "b"]))
        files.append(load_npz(path))
    merged = concat_in_order(files, ids)
    assert merged["video_id"].tolist() == ids and merged["value"].tolist() == list(range(9))
    off = merged["seq__offsets"]
    for i in range(9):
        block = merged["seq"][off[i]:off[i + 1]]
        assert block.shape == (i % 3, 2) and (block == i).all()
    assert merged["meta_names"].tolist() == ["a", "b"]
    with pytest.raises(ValueError, match="cover"):
        concat_in_order(files, ids + ["extra"])
    with pytest.raises(ValueError, match="more than one shard"):
        concat_in_order(files + files[:1], ids)


# ---- issue 19: the reduced-resolution series, threads, VFR, rotation and bad media against independent decodes ----

SERIES_TOLERANCE = {"hist_dist_abs": 0.05, "motion_abs": 0.005, "editing_rel": 0.02}   # docs/features.md


def world_clip(path: Path, width: int, height: int, fps: int, duration: float, seed: int = 0) -> Path:
    """A clip drawn by the synthetic world's renderer (scene cuts, a moving photo sprite, sticker text)."""
    import pandas as pd

    from reach.synthetic.media import render_audio, render_frames, write_mp4
    from reach.synthetic.world import N_CONTENT

    rng = np.random.default_rng(seed)
    row = pd.Series({"video_id": f"clip{seed}", "topic": "food", "campaign_type": "none", "duration": duration,
                     "stickers": "try this|so good", "music_id": "m1", "music_original": True, "voice_over": False,
                     "voice_text": "", **{f"content_{k}": float(rng.normal()) for k in range(N_CONTENT)}})
    row["content_2"] = 2.0                                   # fast pacing: several cuts in a few seconds
    write_mp4(render_frames(row, fps, width, height, seed=1), render_audio(row, 1, None), fps, path)
    return path


def full_decode(path: Path, interval_s: float, height: int, width: int) -> dict:
    """The straightforward decode, written out independently of reach.media.frames: every frame to RGB at full
    size, HSV histograms (OpenCV, 16x4x4 bins), 32x32 thumbnails, first frame at or after each key time."""
    import cv2

    times, hists, thumbs, keys = [], [], [], []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        dur = float(stream.duration * stream.time_base)
        planned = list(np.arange(0.0, dur - 1e-9, interval_s))
        for f in c.decode(stream):
            img = f.to_ndarray(format="rgb24")
            times.append(float(f.time))
            h = cv2.calcHist([cv2.cvtColor(img, cv2.COLOR_RGB2HSV)], [0, 1, 2], None, [16, 4, 4],
                             [0, 180, 0, 256, 0, 256]).ravel()
            hists.append((h / h.sum()).astype(np.float32))
            thumbs.append(cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA).astype(np.int16))
            if planned and times[-1] + 1e-6 >= planned[0]:
                keys.append(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
                            if img.shape[:2] != (height, width) else img)
                planned.pop(0)
    dist = np.array([1 - cv2.compareHist(a, b, cv2.HISTCMP_CORREL) for a, b in zip(hists[:-1], hists[1:])])
    motion = np.array([np.abs(b - a).mean() / 255 for a, b in zip(thumbs[:-1], thumbs[1:])])
    return {"times": np.array(times), "hist_dist": dist, "motion": motion, "keys": np.stack(keys)}


def series_editing(hist_dist, motion, times, duration) -> dict:
    from reach.features.editing import EDITING_COLUMNS, editing_vector

    scenes = detect_scenes(np.asarray(hist_dist), np.asarray(times), duration, 0.3, 0.5)
    v = editing_vector(video_length_s=duration, decoded_length_s=duration, n_stickers=0, sticker_words=0,
                       scene_lengths=scenes, hist_dist=np.asarray(hist_dist), motion=np.asarray(motion),
                       object_probs=np.zeros((1, 1)), sentiment_probs=None, embeddings=np.zeros((1, 1)),
                       key_frames=np.zeros((1, 8, 8, 3), np.uint8))
    return dict(zip(EDITING_COLUMNS, v))


def test_reduced_series_stays_within_tolerance_of_the_full_decode(tmp_path):
    path = world_clip(tmp_path / "big.mp4", 360, 640, 10, 8.0, seed=1)    # 360x640: reduced to 180x320; 3 cuts
    ref = full_decode(path, 5, 640, 360)
    s = sample_video(path, 5, 640, 360, series_short_side=180)
    assert s.status == "ok" and s.n_decoded == ref["times"].size == 80
    np.testing.assert_allclose(s.frame_times, ref["times"], atol=1e-6)
    assert np.array_equal(s.key_frames, ref["keys"])                      # key frames: from the full frame, exact
    assert not np.array_equal(s.hist_dist, ref["hist_dist"].astype(np.float32))   # the reduced copy was used
    assert np.abs(s.hist_dist - ref["hist_dist"]).max() <= SERIES_TOLERANCE["hist_dist_abs"]
    assert np.abs(s.motion - ref["motion"]).max() <= SERIES_TOLERANCE["motion_abs"]
    a = series_editing(ref["hist_dist"], ref["motion"], ref["times"], s.duration_s)
    b = series_editing(s.hist_dist, s.motion, s.frame_times, s.duration_s)
    assert a["n_scenes"] >= 3 and a["n_scenes"] == b["n_scenes"]
    for col in ("avg_scene_length_s", "hist_change_mean", "hist_change_max", "motion_mean", "motion_sd"):
        assert b[col] == pytest.approx(a[col], rel=SERIES_TOLERANCE["editing_rel"]), col


def test_small_media_and_threads_give_the_full_decode_exactly(tmp_path):
    small = world_clip(tmp_path / "small.mp4", 96, 160, 4, 12.0, seed=3)   # the default world's size and rate
    ref = full_decode(small, 5, 160, 96)
    s = sample_video(small, 5, 160, 96)
    assert s.status == "ok" and np.array_equal(s.key_frames, ref["keys"])
    assert np.array_equal(s.hist_dist, ref["hist_dist"].astype(np.float32))
    assert np.array_equal(s.motion, ref["motion"].astype(np.float32))
    big = world_clip(tmp_path / "big.mp4", 360, 640, 10, 6.0, seed=4)
    one = sample_video(big, 5, 640, 360, threads=1)
    for threads in (2, 0):                                                # FFmpeg's decoders are bit-exact
        other = sample_video(big, 5, 640, 360, threads=threads)
        for name in ("key_frames", "frame_times", "hist_dist", "motion"):
            assert np.array_equal(getattr(one, name), getattr(other, name)), (threads, name)


def test_variable_frame_rate_key_frames_follow_timestamps(tmp_path):
    from fractions import Fraction

    # 20 fps for 6 s, then 2 fps to 12 s: frame indices / average rate would put the 5-s and 10-s key frames wrong
    written = np.concatenate([np.arange(0, 6, 0.05), np.arange(6, 12, 0.5)])
    frames = coloured_frames(written.size, h=64, w=48, cut_every=10)
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=20, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = 48, 64, "yuv420p"
        vs.time_base = Fraction(1, 1000)
        for t, f in zip(written, frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
            c.mux(vs.encode(frame))
        c.mux(vs.encode())
    s = sample_video(path, 5, 64, 48)
    np.testing.assert_allclose(s.frame_times, written, atol=2e-3)
    assert s.key_times.tolist() == pytest.approx([0.0, 5.0, 10.0], abs=2e-3)
    idx = [int(np.argmin(np.abs(written - k))) for k in (0.0, 5.0, 10.0)]
    np.testing.assert_allclose(s.key_frames.reshape(3, -1, 3).mean(1), frames[idx, 0, 0], atol=6)
    assert abs(s.fps - written.size / 12.0) < 2                           # the average rate is far from both


def test_rotation_matches_ffmpeg_autorotate(tmp_path):
    import shutil

    if not shutil.which("ffmpeg"):
        pytest.skip("no ffmpeg CLI")
    wide = world_clip(tmp_path / "wide.mp4", 640, 360, 4, 6.0, seed=5)     # stored landscape
    rotated = tmp_path / "rot.mp4"
    out = subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(wide), "-c", "copy",
                          "-metadata:s:v:0", "rotate=90", str(rotated)], capture_output=True)
    if out.returncode != 0 or sample_video(rotated, 5, 640, 360).rotation == 0:
        out = subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-display_rotation:v:0", "90", "-i", str(wide),
                              "-c", "copy", str(rotated)], capture_output=True)
    s = sample_video(rotated, 5, 640, 360)                                # displayed 360 wide, 640 tall
    if s.rotation == 0:
        pytest.skip("this FFmpeg cannot write a display matrix")
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(rotated), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    cli = np.frombuffer(raw, np.uint8)
    assert cli.size == 640 * 360 * 3                                      # the CLI rotates too
    assert s.status == "rotated" and (s.height, s.width) == (640, 360) and s.key_frames.shape == (2, 640, 360, 3)
    assert np.abs(s.key_frames[0].astype(int) - cli.reshape(640, 360, 3)).mean() < 2    # same orientation
    full = sample_video(rotated, 5, 640, 360, series_short_side=None)
    assert np.abs(s.motion - full.motion).max() <= SERIES_TOLERANCE["motion_abs"]
    assert np.abs(s.hist_dist - full.hist_dist).max() <= SERIES_TOLERANCE["hist_dist_abs"]


def test_corrupt_truncated_and_frameless_media_keep_a_status(tmp_path):
    good = world_clip(tmp_path / "good.mp4", 360, 640, 10, 6.0, seed=6)
    data = good.read_bytes()
    whole = sample_video(good, 5, 640, 360)
    assert whole.status == "ok" and whole.n_decoded == 60
    cut = tmp_path / "cut.mp4"                                            # moov at the end: cut, no index
    cut.write_bytes(data[: len(data) // 2])
    s = sample_video(cut, 5, 640, 360)
    assert s.status == "unreadable" and s.key_frames.shape[0] == 0 and s.detail
    scrambled = bytearray(data)                                           # damaged frame data, index intact
    rng = np.random.default_rng(2)
    mdat = data.index(b"mdat")
    for pos in rng.integers(mdat + 2000, mdat + (len(data) - mdat) // 2, size=40):
        scrambled[pos:pos + 64] = rng.bytes(64)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(scrambled))
    s = sample_video(bad, 5, 640, 360)          # FFmpeg conceals the damage: frames come out, flagged corrupt
    assert s.status == "damaged" and "flagged corrupt" in s.detail and s.ok
    assert s.key_frames.shape == (2, 640, 360, 3) and s.hist_dist.size == s.n_decoded - 1
    frameless = tmp_path / "frameless.mkv"             # a video track with no frames (mp4 drops empty tracks)
    with av.open(str(frameless), "w", format="matroska") as c:
        vs = c.add_stream("libx264", rate=4)
        vs.width, vs.height, vs.pix_fmt = 48, 64, "yuv420p"
        a = c.add_stream("aac", rate=16000, layout="mono")
        pcm = (0.3 * np.sin(np.arange(16000) / 10) * 32767).astype(np.int16)
        for i in range(0, pcm.size, 1024):
            fr = av.AudioFrame.from_ndarray(pcm[None, i:i + 1024], format="s16", layout="mono")
            fr.sample_rate, fr.pts = 16000, i
            c.mux(a.encode(fr))
        c.mux(a.encode())
        c.mux(vs.encode())
    assert len(av.open(str(frameless)).streams.video) == 1
    s = sample_video(frameless, 5, 64, 48)
    assert s.status == "no_frames" and not s.ok and s.key_frames.shape[0] == 0 and s.detail
