"""The synthetic world's renderer (reach.synthetic.media): the uint8 frame path and the tiled, cached audio path give
exactly the original's frames and waveforms (the original algorithm kept in the module as the oracle), row by row,
whatever order the rows are rendered in."""

from __future__ import annotations

import av
import numpy as np
import pandas as pd
import pytest

from reach.synthetic import media
from reach.synthetic.world import N_CONTENT

FPS, WIDTH, HEIGHT, SEED = 4, 96, 160, 20201001


def plan_row(video_id: str, *, topic: str = "food", campaign: str = "organic", duration: float = 9.0,
             stickers: str = "", music_id: str = "7000000000000000001", original: bool = False,
             voice: bool = False, text: str = "", content: dict[int, float] | None = None) -> pd.Series:
    rng = np.random.default_rng(int(video_id) % 2**32)
    c = {k: float(rng.normal()) for k in range(N_CONTENT)}
    c.update(content or {})
    return pd.Series({"video_id": video_id, "topic": topic, "campaign_type": campaign, "duration": duration,
                      "music_id": music_id, "music_original": original, "voice_over": voice, "stickers": stickers,
                      "voice_text": text, **{f"content_{k}": v for k, v in c.items()}})


ROWS = [
    # no voice-over, no stickers, slow pacing (one long scene), no sparkle (campaign style below 0.5)
    plan_row("6800000000000000001", topic="life", duration=7.0, content={2: -2.5, 4: -1.0}),
    # concave campaign: the cup in every shot, stickers, strong sparkle, fast pacing (many cuts)
    plan_row("6800000000000000002", topic="gaming", campaign="concave", duration=12.0,
             stickers="try this|so good|link in bio", content={2: 2.5, 4: 4.0}),
    # linear campaign, sparkle at the clip (0.08), a sticker longer than the 18 drawn characters, a big sprite
    plan_row("6800000000000000003", topic="skills", campaign="linear", duration=5.0,
             stickers="a very long sticker that is cut", content={3: 3.0, 4: 9.0}),
    # an odd duration (not a whole number of frames), a small sprite, a topic without its own photo
    plan_row("6800000000000000004", topic="unknown", duration=13.3, stickers="one", content={3: -3.0, 4: 1.2}),
    # original music (tempo moved by content), voice-over text (espeak-ng when installed)
    plan_row("6800000000000000005", topic="holidays", campaign="s_shaped", duration=16.0, original=True,
             music_id="7000000000000000009", voice=True, text="weekend family walk so good", content={5: 1.5}),
]


def test_the_rows_exercise_cuts_stickers_sparkle_and_the_product_shot():
    """Guards the oracle tests below: the rows really draw several scenes, sparkle and sticker text."""
    slow, busy = (media._render_frames_reference(ROWS[i], FPS, WIDTH, HEIGHT, SEED) for i in (0, 1))
    white = [float((f == 255).all(-1).mean()) for f in (slow, busy)]
    assert white[0] < 0.001 < 0.01 < white[1]                       # sparkle only where campaign style is high
    cuts = [int((np.abs(np.diff(f.astype(int), axis=0)).mean((1, 2, 3)) > 20).sum()) for f in (slow, busy)]
    assert cuts[0] == 0 and cuts[1] >= 3
    assert len(media._scene_of_frames(len(busy), FPS, float(np.clip(6.0 * np.exp(-0.45 * 2.5), 1, 15)))) >= 4


@pytest.mark.parametrize("i", range(len(ROWS)))
def test_render_frames_is_the_original_exactly(i):
    new = media.render_frames(ROWS[i], FPS, WIDTH, HEIGHT, SEED)
    old = media._render_frames_reference(ROWS[i], FPS, WIDTH, HEIGHT, SEED)
    assert new.dtype == old.dtype == np.uint8 and new.shape == old.shape
    assert np.array_equal(new, old)


def test_render_frames_is_the_original_at_another_size_fps_and_seed():
    for row in ROWS[:3]:
        new, old = media.render_frames(row, 6, 64, 112, 3), media._render_frames_reference(row, 6, 64, 112, 3)
        assert np.array_equal(new, old)


def test_render_audio_is_the_original_exactly_in_any_order():
    """Shared songs (one music id, several durations) rendered longest first (the backing-track cache serves the
    shorter ones), then shortest first (each longer one recomputed), then one original-music track between them."""
    espeak = media.find_tool("espeak-ng")
    shared = [plan_row(f"69000000000000000{i:02d}", duration=d, music_id="7000000000000000042",
                       content={5: float(i) - 1})
              for i, d in enumerate([30.0, 17.0, 5.0, 11.5])]
    orders = [sorted(shared, key=lambda r: -r["duration"]), sorted(shared, key=lambda r: r["duration"]),
              [shared[1], ROWS[4], shared[0], ROWS[0], shared[2]]]
    media._BACKING.clear()
    for order in orders:
        for row in order:
            new = media.render_audio(row, SEED, espeak)
            old = media._render_audio_reference(row, SEED, espeak)
            assert new.dtype == old.dtype == np.float32 and new.shape == old.shape
            assert np.array_equal(new, old), row["video_id"]
    assert len(media._BACKING) <= media._BACKING_SIZE


def test_the_cached_backing_track_cannot_be_changed_by_a_caller():
    media._BACKING.clear()
    track = media._backing_track("7000000000000000042", 100.0, 16_000)
    with pytest.raises(ValueError):
        track[0] = 1.0
    wave = media.render_audio(plan_row("6900000000000000099", duration=1.0, music_id="7000000000000000042"), SEED,
                              None)
    assert wave.flags.writeable


def test_voice_over_reaches_the_waveform_when_espeak_is_installed():
    espeak = media.find_tool("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng not installed")
    row = ROWS[4]
    with_voice, without = media.render_audio(row, SEED, espeak), media.render_audio(row, SEED, None)
    assert not np.array_equal(with_voice, without)


def test_write_mp4_default_is_todays_encoding_and_the_coder_option_applies(tmp_path):
    frames = media.render_frames(ROWS[1], FPS, WIDTH, HEIGHT, SEED)
    audio = media.render_audio(ROWS[1], SEED, None)
    media.write_mp4(frames, audio, FPS, tmp_path / "a.mp4")
    media.write_mp4(frames, audio, FPS, tmp_path / "b.mp4", aac_coder="twoloop")   # FFmpeg's default, named
    media.write_mp4(frames, audio, FPS, tmp_path / "c.mp4", aac_coder="fast")
    a, b, c = ((tmp_path / f"{x}.mp4").read_bytes() for x in "abc")
    assert a == b != c
    with av.open(str(tmp_path / "a.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == len(frames)
    assert np.abs(decoded[0].astype(int) - frames[0]).mean() < 12       # lossy, but the same picture
    with pytest.raises(RuntimeError, match="encoding"):
        media.write_mp4(frames, audio, FPS, tmp_path / "d.mp4", aac_coder="no-such-coder")
    assert not (tmp_path / "d.mp4").exists() and not (tmp_path / "d.part.mp4").exists()
