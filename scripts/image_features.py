"""Rule image_features: per key frame the penultimate-layer vector and the 1,000 object-class probabilities of
VGG-19 (local .h5) or the packaged EfficientNet-Lite0, max pooled over frames; visual sentiment when an ONNX
model is configured. Uses CUDA when present."""

import json
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from reach.features.image import load_image_model, load_sentiment_onnx, max_pool
from reach.features.store import load_npz, save_npz
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "image_features")
p = smk.params
frames = load_npz(smk.input.frames)
status = pd.read_parquet(smk.input.status)
model = load_image_model(p.vgg19_h5, threads=smk.threads)
log_run_header(log, model.device, model.name, model.source, threads=smk.threads)
log.info("image model: %s (%s) on %s; embedding %d, classes %d", model.name, model.source, model.device,
         model.embed_dim, model.n_classes)
sentiment = load_sentiment_onnx(p.sentiment_onnx) if p.sentiment_onnx else None
if sentiment:
    log.info("sentiment model: %s (%d classes) on %s", sentiment.path, sentiment.n_classes, sentiment.device)
else:
    log.info("no sentiment model configured (models.sentiment_onnx): the sentiment slot stays empty")
x, off = frames["frames"], frames["frames__offsets"]
batch = int(p.batch_size)
start = time.perf_counter()
embs, probs, sents = [], [], []
for i in tqdm(range(0, x.shape[0], batch), desc="frame batches", mininterval=5):
    e, pr = model.run(x[i:i + batch], batch)
    embs.append(e)
    probs.append(pr)
    if sentiment:
        sents.append(sentiment.run(x[i:i + batch], batch))
seconds = time.perf_counter() - start
emb = np.concatenate(embs) if embs else np.zeros((0, model.embed_dim), np.float32)
prob = np.concatenate(probs) if probs else np.zeros((0, model.n_classes), np.float32)
log.info("%d frames in %.1f s (%.1f frames/s on %s)", x.shape[0], seconds, x.shape[0] / max(seconds, 1e-9),
         model.device)
arrays = dict(video_id=frames["video_id"], frame_embed=emb, frame_embed__offsets=off, frame_probs=prob,
              frame_probs__offsets=off, objects=max_pool(prob, off), status=status["status"].to_numpy().astype(str))
if sentiment:
    sent = np.concatenate(sents) if sents else np.zeros((0, sentiment.n_classes), np.float32)
    arrays.update(frame_sentiment=sent, frame_sentiment__offsets=off, sentiment=max_pool(sent, off),
                  meta_sentiment_labels=np.array(sentiment.labels))
save_npz(smk.output.features, **arrays)
status.to_parquet(smk.output.status, index=False)
manifest = {
    "modality": "image",
    "extractor": {"name": model.name, "source": model.source, "device": model.device, **model.extra},
    "paper_extractor": "VGG-19 (4,096-d fc2, 1,000 ImageNet classes)",
    "sentiment": ({"name": sentiment.path, "source": "paper-slot (ONNX)", "dim": sentiment.n_classes}
                  if sentiment else {"name": None, "source": "empty: no models.sentiment_onnx configured",
                                     "dim": 0}),
    "dims": {"frame_embed": model.embed_dim, "objects": model.n_classes,
             "sentiment": sentiment.n_classes if sentiment else 0},
    "frames": int(x.shape[0]), "seconds": seconds, "frames_per_s": x.shape[0] / max(seconds, 1e-9),
    "frame_size": list(x.shape[1:3]), "batch_size": batch,
}
with open(smk.output.manifest, "w") as f:
    json.dump(manifest, f, indent=2)
