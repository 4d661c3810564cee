"""Rule audio_features: universality of the track within its hashtag, sound-class probabilities averaged over the
track (YAMNet from a local SavedModel, else the packaged musicnn), acoustic features, and the speech segment that
the voice-over transcription uses."""

import json
import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm import tqdm  # noqa: E402

from reach.features.audio import ACOUSTIC, acoustic_features, load_sound_model, universality  # noqa: E402
from reach.features.speech import detect_speech_rhythm, frame_spectrum, speech_from_class_scores  # noqa: E402
from reach.features.store import load_npz, save_npz  # noqa: E402
from reach.logs import log_run_header, setup_logging  # noqa: E402

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "audio_features")
p = smk.params
audio = load_npz(smk.input.audio)
status = pd.read_parquet(smk.input.status)
rate = int(audio["meta_rate"][0])
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "hashtag", "music_id"])
uni = pd.Series(universality(videos["hashtag"], videos["music_id"]), index=videos["video_id"].astype(str))
ids = audio["video_id"].astype(str)
off = audio["wave__offsets"]
model = load_sound_model(p.yamnet_dir, threads=smk.threads, max_patches=p.sound_max_patches)
log_run_header(log, model.device, model.name, model.source, threads=smk.threads)
log.info("sound classes: %s (%s, %d classes) on %s", model.name, model.source, len(model.labels), model.device)
use_yamnet = model.source == "paper"
start = time.perf_counter()
classes = np.full((len(ids), len(model.labels)), np.nan, np.float32)
acoustic = np.full((len(ids), len(ACOUSTIC)), np.nan)
speech = np.zeros((len(ids), 3))          # score, start_s, end_s
detected = np.zeros(len(ids), bool)
chunk = 32
for c0 in tqdm(range(0, len(ids), chunk), desc="tracks (x32)", mininterval=5):
    idx = range(c0, min(c0 + chunk, len(ids)))
    waves = [audio["wave"][off[i]:off[i + 1]].astype(np.float32) / 32767.0 for i in idx]
    if use_yamnet:
        scores = [model.frame_scores(w) if w.size else np.zeros((0, len(model.labels))) for w in waves]
        means = np.array([s.mean(0) if len(s) else np.full(len(model.labels), np.nan) for s in scores])
    else:
        means = model.track_means(waves)
    for j, i in enumerate(idx):
        w = waves[j]
        classes[i] = means[j]
        if not w.size:
            speech[i] = np.nan
            continue
        stft = None if use_yamnet else frame_spectrum(w)      # hop 256: the detector's; every other row: acoustic
        acoustic[i] = acoustic_features(w, rate, spectrum=None if stft is None else stft[::2])
        seg = (speech_from_class_scores(scores[j], model.labels, max_s=float(p.max_transcribe_s),
                                        duration_s=w.size / rate) if use_yamnet
               else detect_speech_rhythm(w, rate, float(p.speech_threshold), float(p.speech_window_s),
                                         float(p.max_transcribe_s), spectrum=stft))
        detected[i] = seg.detected
        speech[i] = (seg.score, seg.start_s, seg.end_s)
seconds = time.perf_counter() - start
log.info("%d tracks in %.1f s; speech detected in %d", len(ids), seconds, int(detected.sum()))
save_npz(smk.output.features, video_id=ids, universality=uni.loc[ids].to_numpy(), sound_classes=classes,
         acoustic=acoustic, speech_detected=detected, speech_score=speech[:, 0], speech_start_s=speech[:, 1],
         speech_end_s=speech[:, 2], status=status["status"].to_numpy().astype(str),
         meta_sound_labels=np.array(model.labels), meta_acoustic_names=np.array(list(ACOUSTIC)))
status.to_parquet(smk.output.status, index=False)
manifest = {
    "modality": "audio",
    "extractor": {"name": model.name, "source": model.source, "device": model.device},
    "paper_extractor": "YAMNet (521 AudioSet classes)",
    "speech_detector": ("YAMNet speech classes" if use_yamnet else
                        f"3-8 Hz envelope modulation share > {p.speech_threshold} over {p.speech_window_s}-s windows"),
    "dims": {"universality": 1, "sound_classes": len(model.labels), "acoustic": len(ACOUSTIC)},
    "acoustic_columns": ACOUSTIC, "seconds": seconds,
}
with open(smk.output.manifest, "w") as f:
    json.dump(manifest, f, indent=2)
