"""The audio track as a 16 kHz mono float32 waveform, with a per-video status.

Statuses: ``ok``; ``resampled`` (the track was not 16 kHz mono); failures give an empty waveform: ``missing``,
``empty`` (zero bytes), ``unreadable``, ``no_audio`` (no audio stream), ``no_samples`` (a stream with nothing in it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

FAILED = ("missing", "empty", "unreadable", "no_audio", "no_samples")


@dataclass
class Track:
    status: str
    detail: str
    wave: np.ndarray          # float32 in [-1, 1]
    rate: int

    @property
    def ok(self) -> bool:
        return self.status not in FAILED


def decode_audio(path: str | Path, rate: int = 16_000) -> Track:
    """Decode the first audio stream and resample it to `rate` Hz mono."""
    path = Path(path)
    empty = np.zeros(0, np.float32)
    if not path.exists():
        return Track("missing", f"no file {path}", empty, rate)
    if path.stat().st_size == 0:
        return Track("empty", "zero-length file", empty, rate)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        return Track("unreadable", f"{type(exc).__name__}: {exc}"[:300], empty, rate)
    chunks: list[np.ndarray] = []
    with container:
        if not container.streams.audio:
            return Track("no_audio", "container has no audio stream", empty, rate)
        stream = container.streams.audio[0]
        native = (stream.rate, stream.layout.name if stream.layout else "?")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        detail = ""
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except (av.FFmpegError, ValueError) as exc:
            if not chunks:
                return Track("unreadable", f"decoding failed: {type(exc).__name__}: {exc}"[:300], empty, rate)
            detail = f"decoding stopped early: {exc}"[:300]
    wave = np.concatenate(chunks).astype(np.float32) if chunks else empty
    if wave.size == 0:
        return Track("no_samples", "audio stream decodes to no samples", empty, rate)
    status = "ok" if native == (rate, "mono") else "resampled"
    if status == "resampled":
        detail = "; ".join(x for x in (detail, f"{native[0]} Hz {native[1]} -> {rate} Hz mono") if x)
    return Track(status, detail, np.clip(wave, -1.0, 1.0), rate)
