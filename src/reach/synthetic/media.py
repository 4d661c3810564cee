"""Render the synthetic world's videos as small real mp4 files (vertical video, audio track, scene cuts,
sticker text, optional espeak-ng voice-over), so that every content feature must be extracted from media.

What the media show is driven by the true content latent c (world.py):
dims 0-1 (topic) -> palette hue and the photo sprite; dim 2 (pacing) -> scene length and motion speed;
dim 3 (quality) -> brightness, contrast, sprite size; dim 4 (campaign style) -> sparkle effect overlay;
dim 5 -> music tempo and loudness. Sprites are scikit-image's sample photographs (real images).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd

from reach.shards import shard_of
from reach.synthetic.world import N_CONTENT, TOPICS, World, stable_int

AUDIO_RATE = 16_000
TOPIC_SPRITES = {"life": "chelsea", "holidays": "hubble_deep_field", "skills": "astronaut", "food": "coffee",
                 "gaming": "rocket"}


def media_plan(world: World, n_shards: int) -> pd.DataFrame:
    """One row per video: everything the renderer needs (content, stickers, music, voice text, shard)."""
    v = world.videos
    plan = pd.DataFrame({
        "video_id": v["video_id"], "topic": v["topic"], "campaign_type": v["campaign_type"],
        "duration": v["duration"].astype(float), "music_id": v["music_id"], "music_original": v["music_original"],
        "voice_over": v["voice_over"], "stickers": ["|".join(s) for s in v["stickers"]],
        "voice_text": [" ".join(w for w in d.split() if not w.startswith("#")) for d in v["desc"]],
    })
    for k in range(N_CONTENT):
        plan[f"content_{k}"] = v[f"content_{k}"]
    plan["shard"] = [shard_of(x, n_shards) for x in plan["video_id"]]
    return plan


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    """scikit-image's sample photograph `name` as RGB uint8, cropped to its central square (decoded once)."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3]
    h, w = img.shape[:2]
    s = min(h, w)
    return img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]


@lru_cache(maxsize=512)  # 5 photos x the few dozen sizes a world uses (a smaller cache re-decoded the PNG per video)
def _sprite(name: str, size: int) -> np.ndarray:
    return cv2.resize(_photo(name), (size, size), interpolation=cv2.INTER_AREA).astype(np.uint8)


@lru_cache(maxsize=8)
def _sprite_reference(name: str, size: int) -> np.ndarray:
    """The original sprite loader of `_render_frames_reference` (8 entries: most videos re-decoded the photo)."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3]
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.uint8)


def _hue_rgb(hue: float, value: float) -> np.ndarray:
    hsv = np.uint8([[[int(hue * 179) % 180, 200, int(np.clip(value, 40, 255))]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(float)


def _scene_of_frames(n_frames: int, fps: int, scene_len_s: float) -> list[tuple[int, int]]:
    """[start, stop) frame ranges of the scenes, cut where int((f / fps) // scene_len_s) changes."""
    ids = [int((f / fps) // scene_len_s) for f in range(n_frames)]
    starts = [f for f in range(n_frames) if f == 0 or ids[f] != ids[f - 1]]
    return list(zip(starts, starts[1:] + [n_frames]))


def render_frames(row: pd.Series, fps: int, width: int, height: int, seed: int) -> np.ndarray:
    """The video's frames (n x height x width x 3, uint8).

    Per scene: a vertical two-colour gradient, the topic's photo sprite moving in a straight line, sticker text, and
    (for campaign-style content) a white sparkle on a random share of the pixels of every frame. Works in uint8
    throughout: the gradient is rounded to uint8 once per scene (one row per pixel row, broadcast across), the
    sparkle masks of a scene are drawn in one call. Bit-identical to `_render_frames_reference` (the per-frame
    float64 original, kept as the test oracle): the same random draws in the same order, and every step it
    reorders maps integers in 0-255 to themselves."""
    rng = np.random.default_rng([seed, stable_int(row["video_id"])])
    c = np.array([row[f"content_{k}"] for k in range(N_CONTENT)], dtype=float)
    n_frames = max(1, int(round(row["duration"] * fps)))
    scene_len_s = float(np.clip(6.0 * np.exp(-0.45 * c[2]), 1.0, 15.0))
    base_hue = (np.arctan2(c[1], c[0]) / (2 * np.pi)) % 1.0
    brightness = 150 + 35 * np.tanh(c[3])
    sprite_size = int(np.clip(width * (0.45 + 0.12 * np.tanh(c[3])), 16, width))
    sprite = _sprite(TOPIC_SPRITES.get(row["topic"], "chelsea"), sprite_size)
    if row["campaign_type"] == "concave":  # product demonstration: the product (a cup) is in every shot
        sprite = _sprite("coffee", sprite_size)
    speed = 1.5 + 1.2 * np.tanh(c[2])
    sparkle = float(np.clip(0.02 * (c[4] - 0.5), 0.0, 0.08))
    stickers = [s for s in str(row["stickers"]).split("|") if s]
    sticker_every = max(1.0, row["duration"] / len(stickers)) if stickers else 1.0
    grad = (np.arange(height) / max(1, height - 1))[:, None, None]          # one value per pixel row
    x_hi, y_hi = width - sprite_size, height - sprite_size
    frames = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    for start, stop in _scene_of_frames(n_frames, fps, scene_len_s):
        hue = (base_hue + 0.08 * rng.normal()) % 1.0
        top, bottom = _hue_rgb(hue, brightness + 30), _hue_rgb((hue + 0.1) % 1.0, brightness - 40)
        column = np.clip((1 - grad) * top + grad * bottom, 0, 255).astype(np.uint8)   # (height, 1, 3)
        background = np.ascontiguousarray(np.broadcast_to(column, (height, width, 3)))
        x0, y0 = rng.uniform(0, x_hi), rng.uniform(0, y_hi)
        vx, vy = speed * rng.normal(size=2)
        scene = frames[start:stop]
        scene[...] = background
        for f in range(start, stop):
            x = int(min(max(x0 + vx * f, 0), x_hi))
            y = int(min(max(y0 + vy * f, 0), y_hi))
            frames[f, y:y + sprite_size, x:x + sprite_size] = sprite
        if sparkle > 0:
            hits = np.flatnonzero(rng.random((stop - start, height, width)) < sparkle)
            scene.reshape(-1, 3)[hits] = 255
        if stickers:
            for f in range(start, stop):
                text = stickers[int((f / fps) // sticker_every) % len(stickers)]
                cv2.putText(frames[f], text[:18], (2, height - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255),
                            1, cv2.LINE_AA)
    return frames


def _render_frames_reference(row: pd.Series, fps: int, width: int, height: int, seed: int) -> np.ndarray:
    """The original renderer (per-frame float64 copies of the background), kept verbatim as the oracle of
    `render_frames` (tests/test_render.py) and the baseline of benchmarks/render.py."""
    rng = np.random.default_rng([seed, stable_int(row["video_id"])])
    c = np.array([row[f"content_{k}"] for k in range(N_CONTENT)], dtype=float)
    n_frames = max(1, int(round(row["duration"] * fps)))
    scene_len_s = float(np.clip(6.0 * np.exp(-0.45 * c[2]), 1.0, 15.0))
    base_hue = (np.arctan2(c[1], c[0]) / (2 * np.pi)) % 1.0
    brightness = 150 + 35 * np.tanh(c[3])
    sprite_size = int(np.clip(width * (0.45 + 0.12 * np.tanh(c[3])), 16, width))
    sprite = _sprite_reference(TOPIC_SPRITES.get(row["topic"], "chelsea"), sprite_size)
    if row["campaign_type"] == "concave":  # product demonstration: the product (a cup) is in every shot
        sprite = _sprite_reference("coffee", sprite_size)
    speed = 1.5 + 1.2 * np.tanh(c[2])
    sparkle = float(np.clip(0.02 * (c[4] - 0.5), 0.0, 0.08))
    stickers = [s for s in str(row["stickers"]).split("|") if s]
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    scene = -1
    for f in range(n_frames):
        t = f / fps
        s = int(t // scene_len_s)
        if s != scene:
            scene = s
            hue = (base_hue + 0.08 * rng.normal()) % 1.0
            top, bottom = _hue_rgb(hue, brightness + 30), _hue_rgb((hue + 0.1) % 1.0, brightness - 40)
            grad = (yy / max(1, height - 1))[..., None]
            background = (1 - grad) * top + grad * bottom
            x0, y0 = rng.uniform(0, width - sprite_size), rng.uniform(0, height - sprite_size)
            vx, vy = speed * rng.normal(size=2)
        img = background.copy()
        x = int(np.clip(x0 + vx * f, 0, width - sprite_size))
        y = int(np.clip(y0 + vy * f, 0, height - sprite_size))
        img[y:y + sprite_size, x:x + sprite_size] = sprite
        if sparkle > 0:
            mask = rng.random((height, width)) < sparkle
            img[mask] = 255.0
        img = np.clip(img, 0, 255).astype(np.uint8)
        if stickers:
            text = stickers[int(t // max(1.0, row["duration"] / len(stickers))) % len(stickers)]
            cv2.putText(img, text[:18], (2, height - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1,
                        cv2.LINE_AA)
        frames[f] = img
    del xx
    return frames


_BACKING: OrderedDict[tuple[str, float], np.ndarray] = OrderedDict()   # (music id, tempo) -> backing track
_BACKING_SIZE = 4


def _backing_track(music_id: str, tempo: float, n: int) -> np.ndarray:
    """The first n samples of the song's backing track before loudness (melody + 0.3 x kick), read-only.

    Every operation is elementwise or a running sum, so a longer track's first n samples are this track exactly; the
    few most recent tracks are kept, and a shared song rendered longest-first (scripts/render_media.py orders each
    shard so) is synthesised once. The note envelope and the kick's decay repeat every beat: computed over one beat
    and tiled."""
    cached = _BACKING.get((music_id, tempo))
    if cached is not None and cached.size >= n:
        _BACKING.move_to_end((music_id, tempo))
        return cached[:n]
    song = np.random.default_rng(stable_int(music_id))
    song.uniform(80, 150)                                         # the tempo draw (tempo is given)
    beat = int(AUDIO_RATE * 60 / tempo)
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    notes = song.integers(0, len(scale), size=64)
    n_beats = -(-n // beat)
    in_beat = np.arange(beat)
    phase = np.cumsum(np.repeat(scale[notes[np.arange(n_beats) % notes.size]], beat)[:n])
    phase *= 2 * np.pi
    phase /= AUDIO_RATE
    env = np.tile(np.exp(-3.0 * (in_beat / beat)), n_beats)[:n]
    track = np.sin(phase)
    track *= 0.25
    track *= env
    phase *= 2
    upper = np.sin(phase, out=phase)
    upper *= 0.08
    upper *= env
    track += upper
    kick = np.arange(n) / AUDIO_RATE
    kick *= 2 * np.pi * 55
    np.sin(kick, out=kick)
    kick *= np.tile(np.exp(-40 * (in_beat / AUDIO_RATE)), n_beats)[:n]
    kick *= 0.3
    track += kick
    track.setflags(write=False)
    _BACKING[(music_id, tempo)] = track
    _BACKING.move_to_end((music_id, tempo))
    while len(_BACKING) > _BACKING_SIZE:
        _BACKING.popitem(last=False)
    return track


def render_audio(row: pd.Series, seed: int, espeak: str | None) -> np.ndarray:
    """Mono float32 waveform at AUDIO_RATE: a melody from the music id (shared songs sound the same),
    loudness and tempo from content, plus an espeak-ng voice-over when the video has one.

    Bit-identical to `_render_audio_reference` (the original, kept as the test oracle); the backing track of a
    shared song comes from `_backing_track`'s small cache."""
    n = int(round(row["duration"] * AUDIO_RATE))
    song = np.random.default_rng(stable_int(str(row["music_id"])))
    c5 = float(row["content_5"])
    tempo = float(np.clip(song.uniform(80, 150) + (12 * c5 if row["music_original"] else 0), 60, 190))
    wave_ = _backing_track(str(row["music_id"]), tempo, n) * (0.6 + 0.3 * np.tanh(c5))
    rng = np.random.default_rng([seed, stable_int(row["video_id"]), 7])
    noise = rng.normal(size=n)
    noise *= 0.01
    wave_ += noise
    if row["voice_over"] and espeak and row["voice_text"]:
        voice = _espeak(espeak, str(row["voice_text"]))
        if voice.size:
            voice = voice[:n]
            wave_[: voice.size] = 0.35 * wave_[: voice.size] + 0.9 * voice
    return np.clip(wave_, -1, 1).astype(np.float32)


def _render_audio_reference(row: pd.Series, seed: int, espeak: str | None) -> np.ndarray:
    """The original waveform synthesis, kept verbatim as the oracle of `render_audio` (tests/test_render.py)
    and the baseline of benchmarks/render.py."""
    n = int(round(row["duration"] * AUDIO_RATE))
    song = np.random.default_rng(stable_int(str(row["music_id"])))
    c5 = float(row["content_5"])
    tempo = float(np.clip(song.uniform(80, 150) + (12 * c5 if row["music_original"] else 0), 60, 190))
    beat = int(AUDIO_RATE * 60 / tempo)
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    notes = song.integers(0, len(scale), size=64)
    t = np.arange(n) / AUDIO_RATE
    idx = (np.arange(n) // beat) % notes.size
    freq = scale[notes[idx]]
    phase = 2 * np.pi * np.cumsum(freq) / AUDIO_RATE
    env = np.exp(-3.0 * ((np.arange(n) % beat) / beat))
    music = 0.25 * np.sin(phase) * env + 0.08 * np.sin(2 * phase) * env
    kick = np.exp(-40 * ((np.arange(n) % beat) / AUDIO_RATE)) * np.sin(2 * np.pi * 55 * t)
    loud = 0.6 + 0.3 * np.tanh(c5)
    wave_ = loud * (music + 0.3 * kick)
    rng = np.random.default_rng([seed, stable_int(row["video_id"]), 7])
    wave_ += 0.01 * rng.normal(size=n)
    if row["voice_over"] and espeak and row["voice_text"]:
        voice = _espeak(espeak, str(row["voice_text"]))
        if voice.size:
            voice = voice[:n]
            wave_[: voice.size] = 0.35 * wave_[: voice.size] + 0.9 * voice
    return np.clip(wave_, -1, 1).astype(np.float32)


def _espeak(espeak: str, text: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run([espeak, "-s", "150", "-w", tmp.name, "--", text], check=True, capture_output=True)
        with wave.open(tmp.name) as w:
            rate, raw = w.getframerate(), w.readframes(w.getnframes())
    voice = np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0
    if rate != AUDIO_RATE:
        idx = np.arange(0, voice.size, rate / AUDIO_RATE).astype(int)
        voice = voice[idx[idx < voice.size]]
    return voice


def write_mp4(frames: np.ndarray, audio: np.ndarray, fps: int, out_path: Path, aac_coder: str | None = None,
              audio_bit_rate: int = 24_000) -> None:
    """Encode frames (H.264) and a mono track (AAC, AUDIO_RATE) into an mp4 through FFmpeg's libraries (PyAV).

    In-process encoding is about twice as fast as spawning the ffmpeg CLI per video (benchmarks/ingest.py
    reports the rendering rate). Written to a temporary name first, so a killed job leaves no half file.
    `aac_coder`: FFmpeg's AAC quantiser search; None keeps FFmpeg's default ("twoloop"), whose search is most of
    the rendering cost. "fast" about halves the AAC encoder's CPU; at 24 kbit/s it also drops much of the high band
    (spectral bandwidth off by many SDs), at 48 kbit/s both coders stay close to the rendered waveform. Any change
    of either argument changes the decoded audio, hence the audio features (benchmarks/render.py --aac)."""
    out_path = Path(out_path)
    tmp_out = out_path.with_suffix(".part.mp4")
    try:
        with av.open(str(tmp_out), "w", format="mp4") as container:
            video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "28"})
            video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            video.thread_count = 1
            sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono",
                                         options={"aac_coder": aac_coder} if aac_coder else None)
            sound.bit_rate = audio_bit_rate
            for frame in frames:
                container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(video.encode())
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            for i in range(0, pcm.size, 1024):
                chunk = av.AudioFrame.from_ndarray(pcm[None, i:i + 1024], format="s16", layout="mono")
                chunk.sample_rate, chunk.pts = AUDIO_RATE, i
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())
    except (av.FFmpegError, ValueError) as exc:
        tmp_out.unlink(missing_ok=True)
        raise RuntimeError(f"encoding {out_path} failed: {exc}") from exc
    tmp_out.replace(out_path)


def find_tool(name: str) -> str | None:
    """Path of a command-line tool, or None."""
    return shutil.which(name)


__all__ = ["media_plan", "render_frames", "render_audio", "write_mp4", "find_tool", "TOPICS"]
