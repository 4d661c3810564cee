"""Key frames every `interval_s` seconds, plus what the editing features need from every decoded frame
(colour-histogram distances for scene detection, pixel motion), with a per-video status.

Statuses: ``ok``; ``rotated`` (display-matrix rotation applied), ``resized`` (frame size differs from the canvas,
letterboxed); failures leave no key frames: ``missing`` (no file), ``empty`` (zero bytes), ``unreadable``
(not a container FFmpeg opens, or decoding fails), ``no_video`` (no video stream), ``no_frames`` (a video
stream that decodes to nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

FAILED = ("missing", "empty", "unreadable", "no_video", "no_frames")


@dataclass
class FrameSample:
    """What sample_frames keeps of one video."""

    status: str
    detail: str = ""
    key_frames: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 3), np.uint8))  # k x H x W x 3
    key_times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    n_decoded: int = 0
    fps: float = float("nan")
    width: int = 0           # as displayed (after rotation)
    height: int = 0
    rotation: int = 0
    duration_s: float = float("nan")   # time of the last decoded frame plus one frame interval
    hist_dist: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))   # consecutive frames, n-1
    motion: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))      # mean |diff| / 255, n-1
    frame_times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def ok(self) -> bool:
        return self.status not in FAILED


def key_times(duration_s: float, interval_s: float) -> np.ndarray:
    """Sampling instants 0, interval, 2*interval, ... strictly before the end of the video (at least one)."""
    if not np.isfinite(duration_s) or duration_s <= 0:
        return np.zeros(1, np.float64)
    n = int(np.floor((duration_s - 1e-9) / interval_s)) + 1
    return np.arange(n, dtype=np.float64) * interval_s


def hsv_histogram(frame: np.ndarray, bins: tuple[int, int, int] = (16, 4, 4)) -> np.ndarray:
    """Normalised 3-D HSV colour histogram of an RGB frame (sums to one)."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256]).ravel()
    return (hist / max(hist.sum(), 1.0)).astype(np.float32)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - correlation of two histograms (OpenCV HISTCMP_CORREL): 0 same colours, up to 2 opposite."""
    return float(1.0 - cv2.compareHist(a, b, cv2.HISTCMP_CORREL))


def letterbox(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize keeping the aspect ratio to fit height x width, centred on black."""
    h, w = frame.shape[:2]
    if (h, w) == (height, width):
        return frame
    scale = min(height / h, width / w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(frame, (nw, nh), interpolation=interp)
    out = np.zeros((height, width, 3), np.uint8)
    y0, x0 = (height - nh) // 2, (width - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = small
    return out


def upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display-matrix rotation (PyAV's VideoFrame.rotation: degrees counter-clockwise) as players do."""
    k = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(frame, k)) if k else frame


def sample_video(path: str | Path, interval_s: float, height: int, width: int,
                 bins: tuple[int, int, int] = (16, 4, 4)) -> FrameSample:
    """Decode every frame once: keep the first frame at or after each key time (letterboxed to height x width),
    and the colour-histogram distance and mean absolute difference between consecutive frames."""
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


def detect_scenes(hist_dist: np.ndarray, frame_times: np.ndarray, duration_s: float, threshold: float,
                  min_scene_s: float) -> np.ndarray:
    """Scene lengths (s) from the colour-histogram distances between consecutive frames: a cut where the distance
    exceeds `threshold` and the current scene is at least `min_scene_s` long (the intensity/histogram detectors of
    PySceneDetect work the same way). Frame i+1 starts the new scene for distance i."""
    if frame_times.size == 0 or not np.isfinite(duration_s):
        return np.zeros(0)
    cuts = [0.0]
    for i, d in enumerate(hist_dist):
        t = float(frame_times[i + 1])
        if d > threshold and t - cuts[-1] >= min_scene_s:
            cuts.append(t)
    bounds = np.array(cuts + [max(duration_s, cuts[-1])])
    return np.diff(bounds)
