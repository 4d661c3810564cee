"""Audio features (Web Appendix E): universality of the track within its hashtag, sound-class probabilities
averaged over the track, and standard acoustic features (intensity, pitch, spectral shape, tempo, ...).

Paper model: YAMNet (521 AudioSet classes) from a local TF-Hub SavedModel directory. Offline substitute: the
packaged musicnn MTT model (50 MagnaTagATune tags), its graph built once and run on 3-s patches in batches.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from reach.logs import import_tensorflow

log = logging.getLogger(__name__)
RATE = 16_000


def universality(hashtags, music_ids) -> np.ndarray:
    """Share of the other videos in the same hashtag that use the same music id (0 when alone in the hashtag)."""
    hashtags, music_ids = list(map(str, hashtags)), list(map(str, music_ids))
    per_tag = Counter(hashtags)
    per_pair = Counter(zip(hashtags, music_ids))
    return np.array([(per_pair[(h, m)] - 1) / (per_tag[h] - 1) if per_tag[h] > 1 else 0.0
                     for h, m in zip(hashtags, music_ids)], dtype=np.float64)


@dataclass
class SoundModel:
    """Sound-class probabilities over a track: ``frame_scores(wave)`` -> (frames, classes), averaged by callers."""

    name: str
    source: str
    labels: list[str]
    device: str
    frame_scores: Callable[[np.ndarray], np.ndarray]
    batch_scores: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None
    patch_scores: Callable[[np.ndarray], np.ndarray] | None = None   # musicnn: the network on ready patches

    def track_means(self, waves: list[np.ndarray]) -> np.ndarray:
        """Mean class probabilities per track; NaN rows for empty tracks."""
        out = np.full((len(waves), len(self.labels)), np.nan, np.float32)
        idx = [i for i, w in enumerate(waves) if w.size]
        if not idx:
            return out
        if self.batch_scores is not None:
            scores = self.batch_scores([waves[i] for i in idx])
        else:
            scores = [self.frame_scores(waves[i]) for i in idx]
        for i, s in zip(idx, scores):
            out[i] = np.asarray(s, np.float64).mean(axis=0)
        return out


def _tf_device() -> str:
    tf = import_tensorflow()

    return "cuda" if tf.config.list_physical_devices("GPU") else "cpu"


def load_yamnet(model_dir: str | Path) -> SoundModel:
    """YAMNet from a local SavedModel directory: ``model(waveform float32 [n]) -> (scores [frames, classes],
    embeddings, log-mel spectrogram)``; class names from ``model.class_map_path()`` (CSV with display_name) when the
    model has it."""
    import csv

    tf = import_tensorflow()

    model_dir = Path(model_dir)
    if not (model_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(f"no SavedModel (saved_model.pb) in {model_dir}")
    model = tf.saved_model.load(str(model_dir))
    labels: list[str] | None = None
    if hasattr(model, "class_map_path"):
        path = model.class_map_path().numpy().decode()
        with tf.io.gfile.GFile(path) as f:
            labels = [row["display_name"] for row in csv.DictReader(f)]

    def frame_scores(wave: np.ndarray) -> np.ndarray:
        scores, _emb, _spec = model(tf.constant(np.asarray(wave, np.float32)))
        return scores.numpy()

    if labels is None:
        n = frame_scores(np.zeros(RATE, np.float32)).shape[1]
        labels = [f"class_{i}" for i in range(n)]
    return SoundModel(f"YAMNet ({model_dir.name})", "paper", labels, _tf_device(), frame_scores)


def _patch_starts(n_rep: int, n_frames: int, max_patches: int | None) -> list[int]:
    starts = list(range(0, n_rep - n_frames + 1, n_frames))
    if max_patches and len(starts) > max_patches:
        starts = [starts[i] for i in np.round(np.linspace(0, len(starts) - 1, max_patches)).astype(int)]
    return starts


def musicnn_patches(wave: np.ndarray, rate: int = RATE, max_patches: int | None = None) -> np.ndarray:
    """musicnn's input: log-compressed 96-band mel spectrogram (512-point FFT, hop 256) cut into non-overlapping
    3-s patches (187 frames); a track shorter than one patch is zero-padded to one. With `max_patches`, that many
    patches evenly spaced over the track (first and last included).

    Same values as `musicnn_patches_reference` (bit for bit; tests), but only the kept patches' frames are computed:
    their samples (librosa's centred, zero-padded framing) are laid end to end and go through one
    ``melspectrogram(center=False)`` call; the frames that straddle two pieces are dropped."""
    import librosa
    from musicnn import configuration as C

    n_frames = librosa.time_to_frames(3, sr=C.SR, n_fft=C.FFT_SIZE, hop_length=C.FFT_HOP) + 1
    if rate != C.SR:
        wave = librosa.resample(wave, orig_sr=rate, target_sr=C.SR)
    wave = np.asarray(wave, np.float32)
    n_rep = 1 + wave.size // C.FFT_HOP                 # frames of the centred STFT of the whole track
    span = (n_frames - 1) * C.FFT_HOP + C.FFT_SIZE     # samples under one patch
    if n_rep < n_frames or span % C.FFT_HOP:
        return musicnn_patches_reference(wave, C.SR, max_patches)
    starts = _patch_starts(n_rep, n_frames, max_patches)
    padded = np.pad(wave, (C.FFT_SIZE // 2, C.FFT_SIZE // 2))
    pieces = np.concatenate([padded[s * C.FFT_HOP:s * C.FFT_HOP + span] for s in starts])
    mel = librosa.feature.melspectrogram(y=pieces, sr=C.SR, hop_length=C.FFT_HOP, n_fft=C.FFT_SIZE,
                                         n_mels=C.N_MELS, center=False).T
    rep = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
    per = span // C.FFT_HOP                             # frames per piece, the last straddling the next piece
    return np.stack([rep[j * per:j * per + n_frames] for j in range(len(starts))]).astype(np.float32)


def musicnn_patches_reference(wave: np.ndarray, rate: int = RATE, max_patches: int | None = None) -> np.ndarray:
    """musicnn's input: log-compressed 96-band mel spectrogram (512-point FFT, hop 256) cut into non-overlapping
    3-s patches (187 frames); a track shorter than one patch is zero-padded to one. With `max_patches`, that many
    patches evenly spaced over the track (first and last included). The original implementation (mel spectrogram of
    the whole track, then cut): the test oracle of `musicnn_patches`, which computes only the frames it keeps."""
    import librosa
    from musicnn import configuration as C

    n_frames = librosa.time_to_frames(3, sr=C.SR, n_fft=C.FFT_SIZE, hop_length=C.FFT_HOP) + 1
    if rate != C.SR:
        wave = librosa.resample(wave, orig_sr=rate, target_sr=C.SR)
    mel = librosa.feature.melspectrogram(y=np.asarray(wave, np.float32), sr=C.SR, hop_length=C.FFT_HOP,
                                         n_fft=C.FFT_SIZE, n_mels=C.N_MELS).T
    rep = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
    if rep.shape[0] < n_frames:
        rep = np.concatenate([rep, np.zeros((n_frames - rep.shape[0], rep.shape[1]), rep.dtype)])
    starts = _patch_starts(rep.shape[0], n_frames, max_patches)
    return np.stack([rep[s:s + n_frames] for s in starts]).astype(np.float32)


def load_musicnn(model: str = "MTT_musicnn", threads: int | None = None, batch: int = 64,
                 max_patches: int | None = None, reference: bool = False) -> SoundModel:
    """The packaged musicnn tagger (a TF checkpoint restored into its own graph; TF_USE_LEGACY_KERAS=1), averaged
    over all 3-s patches of a track or over `max_patches` evenly spaced ones.

    The graph is built for inference (``is_training=False`` as a Python constant, so no batch-norm/dropout
    ``tf.cond``) and patches come from `musicnn_patches`; ``reference=True`` keeps the original build (a boolean
    placeholder fed False, `musicnn_patches_reference`), the oracle of tests and benchmarks/features_cpu.py. Both
    give the same probabilities bit for bit."""
    tf = import_tensorflow()  # before musicnn, which imports TensorFlow itself
    import librosa
    import musicnn
    from musicnn import configuration as C
    from musicnn import models

    labels = list(C.MTT_LABELS if model.startswith("MTT") else C.MSD_LABELS)
    n_frames = librosa.time_to_frames(3, sr=C.SR, n_fft=C.FFT_SIZE, hop_length=C.FFT_HOP) + 1
    graph = tf.Graph()
    with graph.as_default():
        with tf.compat.v1.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, C.N_MELS])
            is_training = tf.compat.v1.placeholder(tf.bool) if reference else False
            y = models.define_model(x, is_training, model, len(labels))[0]
            probs = tf.nn.sigmoid(y)
        cfg = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads or 0,
                                       inter_op_parallelism_threads=threads or 0)
        session = tf.compat.v1.Session(graph=graph, config=cfg)
        tf.compat.v1.train.Saver().restore(session, str(Path(musicnn.__file__).parent / model) + "/")

    cut = musicnn_patches_reference if reference else musicnn_patches
    feed = (lambda p: {x: p, is_training: False}) if reference else (lambda p: {x: p})

    def run(p: np.ndarray) -> np.ndarray:
        return session.run(probs, feed(p))

    def patch_scores(allp: np.ndarray) -> np.ndarray:
        return np.concatenate([run(allp[i:i + batch]) for i in range(0, allp.shape[0], batch)])

    def batch_scores(waves: list[np.ndarray]) -> list[np.ndarray]:
        patches = [cut(w, max_patches=max_patches) for w in waves]
        out = patch_scores(np.concatenate(patches))
        bounds = np.cumsum([0] + [p.shape[0] for p in patches])
        return [out[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def frame_scores(wave: np.ndarray) -> np.ndarray:
        return batch_scores([wave])[0]

    span = "all 3-s patches" if not max_patches else f"up to {max_patches} evenly spaced 3-s patches"
    return SoundModel(f"musicnn {model} (packaged, 50 tags; {span})", "substitute", labels, _tf_device(),
                      frame_scores, batch_scores, patch_scores)


def load_sound_model(yamnet_dir: str | Path | None, threads: int | None = None,
                     max_patches: int | None = None, reference: bool = False) -> SoundModel:
    """YAMNet from the local SavedModel directory when given and present; else the packaged musicnn tagger."""
    if yamnet_dir and (Path(yamnet_dir) / "saved_model.pb").is_file():
        return load_yamnet(yamnet_dir)
    if yamnet_dir:
        log.warning("models.yamnet_dir %s holds no SavedModel: running the packaged musicnn instead", yamnet_dir)
    return load_musicnn(threads=threads, max_patches=max_patches, reference=reference)


ACOUSTIC = {
    "rms_mean": "mean frame RMS (intensity)",
    "rms_sd": "sd of frame RMS",
    "loudness_db_mean": "mean frame level in dB (20 log10 RMS)",
    "loudness_db_range": "95th minus 5th percentile of frame level in dB",
    "low_energy_share": "share of frames below half the mean RMS (Scheirer-Slaney)",
    "zcr_mean": "mean zero-crossing rate",
    "zcr_sd": "sd of the zero-crossing rate",
    "centroid_mean_hz": "mean spectral centroid (Hz)",
    "centroid_sd_hz": "sd of the spectral centroid (Hz)",
    "bandwidth_mean_hz": "mean spectral bandwidth (Hz)",
    "rolloff_mean_hz": "mean 85% spectral roll-off (Hz)",
    "flatness_mean": "mean spectral flatness",
    "flux_mean": "mean spectral flux (normalised spectra)",
    "pitch_median_hz": "median YIN f0 over voiced 64-ms frames (Hz)",
    "pitch_sd_semitones": "sd of YIN f0 over voiced frames (semitones)",
    "voiced_share": "share of 64-ms frames whose YIN f0 is within a semitone of the previous frame's",
    "tempo_bpm": "tempo: the onset envelope's strongest autocorrelation lag (30-240 bpm, 120-bpm prior)",
    "onset_rate": "onsets per second",
    "pulse_clarity": "peak of the onset envelope's normalised autocorrelation at lags 0.25-2 s",
    "high_band_share": "share of spectral energy above 2 kHz",
    "modulation_4hz": "share of the speech-band envelope's modulation energy at 2-8 Hz (syllable rate)",
}


def _frames(wave: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    if wave.size < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.size))
    return np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::hop]


def pick_onsets(envelope: np.ndarray, frame_rate: float, delta: float = 0.07, avg_s: float = 0.1,
                wait_s: float = 0.03) -> np.ndarray:
    """Onset frames of an onset-strength envelope with librosa.onset.onset_detect's default rule (envelope scaled to
    [0, 1]; a local maximum at least `delta` above the mean over +-`avg_s`; `wait_s` between onsets), written with
    scipy because librosa's numba peak picker segfaults in a process that has loaded TensorFlow (both bundle LLVM)."""
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import find_peaks

    x = np.asarray(envelope, np.float64)
    if x.size < 3:
        return np.zeros(0, int)
    x = x - x.min()
    if x.max() > 0:
        x = x / x.max()
    avg = max(int(avg_s * frame_rate), 1)
    local_mean = uniform_filter1d(x, size=2 * avg + 1, mode="constant")
    peaks, _ = find_peaks(x)
    peaks = peaks[x[peaks] >= local_mean[peaks] + delta]
    wait = int(wait_s * frame_rate)
    kept: list[int] = []
    for n in peaks:                                   # greedy, in time order, as librosa's peak_pick
        if not kept or n - kept[-1] > wait:
            kept.append(int(n))
    return np.asarray(kept, int)


def acoustic_features(wave: np.ndarray, rate: int = RATE, n_fft: int = 512, hop: int = 512,
                      spectrum: np.ndarray | None = None) -> np.ndarray:
    """The ACOUSTIC features (in that order) of a mono waveform (32-ms frames, hop `hop`); NaN for an empty one.
    `spectrum`: the frames' rfft when the caller has it (``reach.features.speech.frame_spectrum(wave, n_fft,
    hop // 2)[::2]``, the rhythm detector's STFT); computed here otherwise, with the same values."""
    import librosa

    if wave.size == 0:
        return np.full(len(ACOUSTIC), np.nan)
    wave = np.asarray(wave, np.float32)
    frames = _frames(wave, n_fft, hop)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(1))
    db = 20 * np.log10(np.maximum(rms, 1e-6))
    zcr = (np.abs(np.diff(np.signbit(frames).astype(np.int8), axis=1)).sum(1)) / n_fft
    if spectrum is None or spectrum.shape[0] != frames.shape[0]:
        spectrum = np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)
    spec = np.abs(spectrum).astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    power = spec ** 2
    total = power.sum(1) + 1e-12
    mag = spec.sum(1) + 1e-12
    centroid = (spec * freqs).sum(1) / mag
    bandwidth = np.sqrt((spec * (freqs - centroid[:, None]) ** 2).sum(1) / mag)
    cum = np.cumsum(power, axis=1)
    rolloff = freqs[np.minimum((cum < 0.85 * cum[:, -1:]).sum(1), freqs.size - 1)]
    flatness = np.exp(np.log(power + 1e-12).mean(1)) / (power.mean(1) + 1e-12)
    norm = spec / mag[:, None]
    flux = np.sqrt((np.diff(norm, axis=0) ** 2).sum(1)) if norm.shape[0] > 1 else np.zeros(1)
    high = power[:, freqs >= 2000].sum(1).sum() / total.sum()
    # pitch (YIN) on 64 ms windows
    f0_win = 1024
    if wave.size >= f0_win:
        f0 = librosa.yin(wave, fmin=65, fmax=1000, sr=rate, frame_length=f0_win, hop_length=f0_win,
                         trough_threshold=0.2)
        # voiced: the YIN estimate is stable between neighbouring frames (aperiodic frames jump about)
        stable = np.r_[False, np.abs(np.diff(np.log2(f0))) < 1 / 12]
        loud = rms[:: f0_win // hop][: f0.size]
        voiced = f0[stable & (loud > 1e-3)] if loud.size == f0.size else f0[stable]
    else:
        f0, voiced = np.zeros(0), np.zeros(0)
    # onset envelope; tempo and pulse clarity from its autocorrelation (lags 0.25-2 s = 30-240 bpm)
    mel = librosa.feature.melspectrogram(S=power.T, sr=rate, n_mels=40)
    onset = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=rate, hop_length=hop)
    env_rate = rate / hop
    onsets = pick_onsets(onset, env_rate)
    duration = wave.size / rate
    o = onset - onset.mean()
    ac = np.fft.irfft(np.abs(np.fft.rfft(o, 2 * o.size)) ** 2)[:o.size]
    lo, hi = int(np.ceil(0.25 * env_rate)), min(int(2.0 * env_rate), ac.size - 1)
    if ac[0] > 0 and hi > lo:
        # weight lags by a log-normal prior around 120 bpm (as librosa's tempo estimator does)
        lags = np.arange(lo, hi + 1)
        bpm = 60.0 * env_rate / lags
        prior = np.exp(-0.5 * (np.log2(bpm / 120.0)) ** 2)
        tempo = float(bpm[int(np.argmax(ac[lags] * prior))])
        pulse = float(ac[lags].max() / ac[0])
    else:
        tempo, pulse = float("nan"), 0.0
    # 2-8 Hz modulation of the 300-4000 Hz band envelope
    band = power[:, (freqs >= 300) & (freqs <= 4000)].sum(1)
    env = np.sqrt(band) - np.sqrt(band).mean()
    mod = np.abs(np.fft.rfft(env)) ** 2
    mfreq = np.fft.rfftfreq(env.size, 1.0 / env_rate)
    mod4 = float(mod[(mfreq >= 2) & (mfreq <= 8)].sum() / max(mod[mfreq > 0.5].sum(), 1e-12)) if env.size > 4 else 0.0
    out = [
        rms.mean(), rms.std(), db.mean(), np.percentile(db, 95) - np.percentile(db, 5),
        (rms < 0.5 * rms.mean()).mean(), zcr.mean(), zcr.std(), centroid.mean(), centroid.std(),
        bandwidth.mean(), rolloff.mean(), flatness.mean(), flux.mean(),
        np.median(voiced) if voiced.size else np.nan,
        np.std(12 * np.log2(voiced)) if voiced.size > 1 else np.nan,
        voiced.size / max(f0.size, 1), tempo, len(onsets) / duration, pulse, high, mod4,
    ]
    return np.asarray(out, np.float64)
