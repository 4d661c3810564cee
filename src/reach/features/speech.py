"""Voice-over detection and transcription (Web Appendix E, text).

The paper asks YAMNet whether a track holds speech-like sound classes and sends those tracks to Google's cloud
speech-to-text. Offline: YAMNet's speech classes when a local YAMNet is configured, else a syllable-rhythm detector
(the share of the speech-band envelope's modulation energy at 3-8 Hz over 1.5-s windows; Houtgast and Steeneken's
modulation spectrum, Scheirer and Slaney's 4 Hz modulation energy); detected segments are transcribed with
pocketsphinx's bundled US-English model, which mis-hears much of what it hears (a stand-in for the cloud API).
Known limit of the rhythm detector: music with a beat faster than about 180 bpm (3 Hz) reads as speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = 16_000
YAMNET_SPEECH = ("Speech", "Child speech, kid speaking", "Conversation", "Narration, monologue", "Babbling",
                 "Speech synthesizer", "Male speech, man speaking", "Female speech, woman speaking")


@dataclass
class SpeechSegment:
    detected: bool
    score: float          # the detector's statistic (modulation share, or YAMNet speech probability)
    start_s: float
    end_s: float


def frame_spectrum(wave: np.ndarray, n_fft: int = 512, hop: int = 256) -> np.ndarray:
    """rfft of the Hann-windowed `n_fft`-sample frames of a float32 waveform every `hop` samples, (frames, bins);
    (0, bins) when the wave is shorter than one frame. Shared by the rhythm detector (hop 256) and
    reach.features.audio.acoustic_features (every other row: hop 512), so the audio rule runs one STFT per track."""
    if wave.size < n_fft:
        return np.zeros((0, n_fft // 2 + 1), np.complex64)
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(wave, np.float32), n_fft)[::hop]
    return np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)


def modulation_profile(wave: np.ndarray, rate: int = RATE, window_s: float = 1.5, n_fft: int = 512,
                       hop: int = 256, spectrum: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Start times (s) of half-overlapping windows and, per window, the share of the 300-4000 Hz envelope's
    modulation energy (above 0.5 Hz) that lies at 3-8 Hz. `spectrum`: `frame_spectrum(wave, n_fft, hop)` when the
    caller has it. All windows go through one rfft; same values as `modulation_profile_reference` (tests)."""
    if wave.size < n_fft:
        return np.zeros(0), np.zeros(0)
    if spectrum is None:
        spectrum = frame_spectrum(wave, n_fft, hop)
    power = np.abs(spectrum) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    envelope = np.sqrt(power[:, (freqs >= 300) & (freqs <= 4000)].sum(1))
    env_rate = rate / hop
    width = int(window_s * env_rate)
    if envelope.size < width:
        width = envelope.size
    step = max(1, width // 2)
    mfreq = np.fft.rfftfreq(width, 1.0 / env_rate)
    windows = np.lib.stride_tricks.sliding_window_view(envelope, width)[::step]
    e = windows - windows.mean(1, keepdims=True)
    m = np.abs(np.fft.rfft(e * np.hanning(width), axis=1)) ** 2
    denom = np.ascontiguousarray(m[:, mfreq > 0.5]).sum(1)
    num = np.ascontiguousarray(m[:, (mfreq >= 3) & (mfreq <= 8)]).sum(1)
    shares = np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 0.0)
    return np.arange(windows.shape[0]) * step / env_rate, shares.astype(np.float64)


def modulation_profile_reference(wave: np.ndarray, rate: int = RATE, window_s: float = 1.5, n_fft: int = 512,
                       hop: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Start times (s) of half-overlapping windows and, per window, the share of the 300-4000 Hz envelope's
    modulation energy (above 0.5 Hz) that lies at 3-8 Hz. The original implementation (one window at a time): the
    test oracle of `modulation_profile`."""
    if wave.size < n_fft:
        return np.zeros(0), np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(wave, np.float32), n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    envelope = np.sqrt(power[:, (freqs >= 300) & (freqs <= 4000)].sum(1))
    env_rate = rate / hop
    width = int(window_s * env_rate)
    if envelope.size < width:
        width = envelope.size
    step = max(1, width // 2)
    mfreq = np.fft.rfftfreq(width, 1.0 / env_rate)
    taper = np.hanning(width)
    starts, shares = [], []
    for s in range(0, envelope.size - width + 1, step):
        e = envelope[s:s + width] - envelope[s:s + width].mean()
        m = np.abs(np.fft.rfft(e * taper)) ** 2
        denom = m[mfreq > 0.5].sum()
        starts.append(s / env_rate)
        shares.append(float(m[(mfreq >= 3) & (mfreq <= 8)].sum() / denom) if denom > 0 else 0.0)
    return np.array(starts), np.array(shares)


def detect_speech_rhythm(wave: np.ndarray, rate: int = RATE, threshold: float = 0.4, window_s: float = 1.5,
                         max_s: float = 10.0, spectrum: np.ndarray | None = None) -> SpeechSegment:
    """Speech where a window's 3-8 Hz modulation share exceeds `threshold`; the segment runs from the first to the
    last such window (at most `max_s` long). `spectrum`: `frame_spectrum(wave)` when the caller has it."""
    starts, shares = modulation_profile(wave, rate, window_s, spectrum=spectrum)
    if shares.size == 0:
        return SpeechSegment(False, float("nan"), 0.0, 0.0)
    hit = shares > threshold
    if not hit.any():
        return SpeechSegment(False, float(shares.max()), 0.0, 0.0)
    first, last = starts[hit][0], starts[hit][-1] + window_s
    end = min(last, first + max_s, wave.size / rate)
    return SpeechSegment(True, float(shares.max()), float(first), float(end))


def speech_from_class_scores(scores: np.ndarray, labels: list[str], hop_s: float = 0.48, window_s: float = 0.96,
                             threshold: float = 0.5, max_s: float = 10.0,
                             duration_s: float = float("inf")) -> SpeechSegment:
    """Speech from per-frame class probabilities (YAMNet): frames whose speech classes sum above `threshold`. The
    segment ends within the track (`duration_s`: YAMNet pads the waveform, so its last window can end past it)."""
    idx = [i for i, name in enumerate(labels) if name in YAMNET_SPEECH]
    if not idx or scores.size == 0:
        return SpeechSegment(False, float("nan"), 0.0, 0.0)
    speech = scores[:, idx].sum(1)
    hit = speech > threshold
    if not hit.any():
        return SpeechSegment(False, float(speech.max()), 0.0, 0.0)
    first = float(np.flatnonzero(hit)[0] * hop_s)
    last = float(np.flatnonzero(hit)[-1] * hop_s + window_s)
    return SpeechSegment(True, float(speech.max()), first, min(last, first + max_s, duration_s))


POCKETSPHINX_OPTIONS = {"maxhmmpf": 3000, "maxwpf": 10, "topn": 2}   # about 1.5x faster, same words on espeak


class Transcriber:
    """pocketsphinx (bundled US-English acoustic model, language model and dictionary)."""

    def __init__(self, rate: int = RATE, **options):
        from pocketsphinx import Decoder

        self.rate = rate
        self.options = {**POCKETSPHINX_OPTIONS, **options}
        self.decoder = Decoder(samprate=rate, loglevel="FATAL", **self.options)

    def transcribe(self, wave: np.ndarray) -> tuple[str, float]:
        """(transcript, confidence): confidence is the mean posterior of the recognised words (0 for none)."""
        pcm = (np.clip(wave, -1, 1) * 32767).astype(np.int16).tobytes()
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        if hyp is None:
            return "", 0.0
        words = [(s.word, s.prob) for s in d.seg() if not s.word.startswith(("<", "[")) and s.word != "<sil>"]
        conf = float(np.mean([p for _, p in words])) if words else 0.0
        return hyp.hypstr.strip(), float(np.clip(conf, 0.0, 1.0))
