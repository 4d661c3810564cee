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
