"""Voice-over detection and transcription on espeak-ng speech (a real synthesiser) against tone music."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave

import numpy as np
import pytest

from reach.features.speech import Transcriber, detect_speech_rhythm, modulation_profile

RATE = 16000
pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def espeak(text: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-s", "150", "-w", tmp.name, "--", text], check=True, capture_output=True)
        with wave.open(tmp.name) as w:
            rate, raw = w.getframerate(), w.readframes(w.getnframes())
    v = np.frombuffer(raw, np.int16).astype(np.float32) / 32768
    idx = np.arange(0, v.size, rate / RATE).astype(int)
    return v[idx[idx < v.size]]


def music(seconds: float, bpm: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    beat = int(RATE * 60 / bpm)
    notes = 220 * 2 ** (rng.integers(0, 12, 64) / 12)
    freq = notes[(np.arange(n) // beat) % 64]
    env = np.exp(-3 * (np.arange(n) % beat) / beat)
    return (0.3 * np.sin(2 * np.pi * np.cumsum(freq) / RATE) * env + 0.01 * rng.normal(size=n)).astype(np.float32)


def test_rhythm_detector_separates_speech_from_music():
    # a known limit: beats above ~180 bpm (3 Hz) put their energy in the syllable band and read as speech
    for seed, bpm in enumerate((80, 110, 150, 170)):
        m = music(12, bpm, seed)
        assert not detect_speech_rhythm(m).detected, bpm
        voice = espeak("the quick brown fox jumps over the lazy dog near the river bank")
        mixed = m.copy()
        mixed[:voice.size] = 0.35 * mixed[:voice.size] + 0.9 * voice
        seg = detect_speech_rhythm(mixed)
        assert seg.detected and seg.start_s < 1.0 and seg.end_s > 1.5, bpm
    assert modulation_profile(np.zeros(100, np.float32))[1].size == 0


def test_pocketsphinx_transcribes_synthetic_speech():
    text, conf = Transcriber().transcribe(espeak("hello world this is a test of the speech recogniser"))
    assert len(text.split()) >= 3 and 0 < conf <= 1


def oracle_waves() -> list[np.ndarray]:
    """Music with and without an espeak voice-over, noise, silence and lengths around the frame/window edges."""
    rng = np.random.default_rng(3)
    voice = espeak("speech detection on the old and the new code must agree")
    mixed = music(9, 120, 5)
    mixed[:voice.size] = 0.35 * mixed[:voice.size] + 0.9 * voice
    return [mixed, music(12, 150, 1), music(1.2, 90, 2), (0.1 * rng.normal(size=RATE * 3)).astype(np.float32),
            np.zeros(RATE * 2, np.float32), rng.normal(size=700).astype(np.float32), np.zeros(300, np.float32)]


def test_vectorised_modulation_profile_and_shared_stft_match_the_reference():
    from reach.features.audio import acoustic_features
    from reach.features.speech import frame_spectrum, modulation_profile_reference

    for w in oracle_waves():
        stft = frame_spectrum(w)
        s0, p0 = modulation_profile_reference(w)
        for s1, p1 in (modulation_profile(w), modulation_profile(w, spectrum=stft)):
            assert np.array_equal(s0, s1) and np.array_equal(p0, p1), w.size       # bit for bit
        a, b = detect_speech_rhythm(w, max_s=6.0), detect_speech_rhythm(w, max_s=6.0, spectrum=stft)
        assert a.detected == b.detected and np.array_equal([a.score, a.start_s, a.end_s],
                                                           [b.score, b.start_s, b.end_s], equal_nan=True)
        np.testing.assert_array_equal(acoustic_features(w, RATE), acoustic_features(w, RATE, spectrum=stft[::2]))
