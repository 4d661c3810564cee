"""Rule train_vsvae: fit the VS-VAE (Section 3.1, Web Appendices B and F) on the training split with early stopping
on the validation split; write the best weights (safetensors), the loss history and a manifest."""

import os

# OpenMP threads sleep instead of spinning while they wait: on a shared 2-core machine spinning threads made
# each training step about 20x slower (measured); must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json
import time
from pathlib import Path

import pandas as pd
import torch

from reach.logs import log_run_header, setup_logging
from reach.represent.data import load_feature_arrays, prepare
from reach.represent.model import n_parameters
from reach.represent.train import VSVAEConfig, choose_device, fit, save_weights

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "train_vsvae")
p = smk.params
torch.set_num_threads(max(1, int(smk.threads)))
log_run_header(log, str(choose_device(p.device)), threads=smk.threads)
cfg = VSVAEConfig.from_dict({**dict(p.settings), "seed": int(p.seed)})
t0 = time.perf_counter()
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "hashtag"])
paths = dict(zip(p.modalities, smk.input.features))
data = prepare(load_feature_arrays(paths), videos, seed=cfg.seed, max_words=cfg.max_words, max_frames=cfg.max_frames,
               vocab_min_count=cfg.vocab_min_count, vocab_size=cfg.vocab_size, sources=paths)
log.info("inputs %s; split %s; vocabulary %d words", data.dims,
         {s: int((data.split == s).sum()) for s in ("train", "val", "test")}, len(data.vocab))
if any(data.truncated.values()):   # the model sees the first max_frames frames and max_words words of each video
    log.warning("videos cut to max_frames = %d / max_words = %d: %s", cfg.max_frames, cfg.max_words, data.truncated)
res = fit(data, cfg, device=p.device, checkpoint=p.checkpoint, progress=True)
extra = {"device": res.device, "mixed_precision": res.amp, "best_epoch": res.best_epoch,
         "epochs_run": int(len(res.history)), "stopped_early": res.stopped_early,
         "train_seconds": res.seconds, "threads": int(smk.threads)}
save_weights(smk.output.weights, res.model, data, cfg, extra)
res.history.to_parquet(smk.output.history, index=False)
best = res.history.loc[res.history["epoch"] == res.best_epoch].iloc[0].to_dict()
manifest = {
    "model": "VS-VAE (Section 3.1, Web Appendices B and F)", "config": cfg.__dict__, "inputs": data.dims,
    "widths": res.model.widths.to_dict(), "parameters": n_parameters(res.model), **extra,
    "seconds_total": time.perf_counter() - t0, "best": best,
    "split_counts": {s: int((data.split == s).sum()) for s in ("train", "val", "test")},
    "videos_truncated": data.truncated,   # per text source and frames: sequences longer than max_words / max_frames
    "extractors": {m: json.loads(Path(f).with_suffix(".json").read_text()).get("extractor", {}).get("name")
                   if Path(f).with_suffix(".json").exists() else None for m, f in paths.items()},
}
with open(smk.output.manifest, "w") as fh:
    json.dump(manifest, fh, indent=2, default=str)
    fh.write("\n")
# the run is complete: its scratch checkpoint is no longer needed
Path(p.checkpoint).unlink(missing_ok=True)
try:
    Path(p.checkpoint).parent.rmdir()
except OSError:
    pass
log.info("best epoch %d of %d (%s), %.0f s on %s", res.best_epoch, len(res.history),
         "early stop" if res.stopped_early else "epoch limit", res.seconds, res.device)
