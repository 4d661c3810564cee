"""Rule validate_representations: Table 2 (test-split reconstruction, VS-VAE vs the no-information rate), nearest
neighbours in r (Figure 5: a table of ids and contact sheets of frames), neighbour rates against random pairs, and
(evaluation only: the synthetic world's truth) the probe of the true content latent from r vs from the raw features."""

import os

# OpenMP threads sleep instead of spinning while they wait: on a shared 2-core machine spinning threads made
# each training step about 20x slower (measured); must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from reach.logs import log_run_header, setup_logging
from reach.represent.data import load_feature_arrays, prepare
from reach.represent.evaluate import (contact_sheet, focal_neighbours, load_frames, neighbour_rates, probe_table,
                                      raw_feature_matrix, table2)
from reach.represent.train import check_videos, choose_device, load_weights, reconstruct

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "validate_representations")
p = smk.params
seed = int(p.seed)
torch.set_num_threads(max(1, int(smk.threads)))
log_run_header(log, str(choose_device(p.device)), threads=smk.threads)
saved = load_weights(smk.input.weights)
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "hashtag"])
check_videos(saved, videos["video_id"], smk.input.weights)
paths = dict(zip(p.modalities, smk.input.features))
arrays = load_feature_arrays(paths)
cfg = saved.cfg
data = prepare(arrays, videos, seed=cfg.seed, max_words=cfg.max_words, max_frames=cfg.max_frames,
               split=saved.split, vocab=saved.vocab, scalers=saved.scalers, sources=paths)
r_df = pd.read_parquet(smk.input.r)
if not np.array_equal(r_df["video_id"].astype(str).to_numpy(), data.video_id):
    raise ValueError(f"{smk.input.r} is not in videos.parquet order")
r = r_df[[c for c in r_df.columns if c.startswith("r_")]].to_numpy(float)

test, train = data.rows("test"), data.rows("train")
recon = reconstruct(saved.model, data, test, device=p.device)
t2 = table2(data, recon, test, train)
t2.to_csv(smk.output.table2, index=False)
log.info("Table 2 (test split, %d videos):\n%s", len(test), t2.to_string())

# probe and content-based neighbour rates need the synthetic truth (evaluation only)
content = None
if smk.input.get("truth"):
    truth = pd.read_parquet(smk.input.truth).drop_duplicates("video_id").set_index("video_id")
    targets = [c for c in truth.columns if c.startswith("content_")]
    missing = set(data.video_id) - set(truth.index.astype(str))
    if missing:
        raise ValueError(f"{smk.input.truth}: {len(missing)} videos of videos.parquet have no truth row")
    truth.index = truth.index.astype(str)
    content = truth.loc[data.video_id, targets].to_numpy(float)
    raw = raw_feature_matrix(arrays, int(p.probe_max_columns), seed)
    probe = probe_table(r, raw, content, targets, int(p.probe_folds), seed)
    log.info("probe of the true content latent (R^2, %d-fold CV):\n%s", int(p.probe_folds), probe.to_string())
else:
    raw = raw_feature_matrix(arrays, int(p.probe_max_columns), seed)
    probe = pd.DataFrame({"target": [], "note": []})
    log.info("no synthetic truth (user scrapes): probe skipped")
probe.to_csv(smk.output.probe, index=False)

k = int(p.neighbours_k)
queries = test if len(test) else np.arange(data.n)
rates = neighbour_rates({"r": r, "raw features": raw}, data.hashtag,
                        content if content is not None else np.zeros((data.n, 1)), queries, k, seed)
if content is None:
    rates[["content_near_rate", "mean_content_distance", "near_threshold"]] = np.nan
rates.to_csv(smk.output.rates, index=False)
log.info("neighbour rates (k=%d, %d test videos as queries):\n%s", k, len(queries), rates.to_string())

focal = focal_neighbours(r, data.video_id, data.hashtag, data.split, int(p.focal_hashtags),
                         int(p.focal_per_hashtag), k, seed)
focal.to_csv(smk.output.neighbours, index=False)
sheets = Path(smk.output.sheets)
sheets.mkdir(parents=True, exist_ok=True)
frames = load_frames(list(smk.input.frames), set(focal["video_id"].astype(str)))
for i, (fid, tab) in enumerate(focal.groupby("focal_video_id", sort=False)):
    contact_sheet(str(sheets / f"focal-{i}-{fid}.png"), tab.sort_values("rank"), frames, int(p.sheet_frames))
(sheets / "index.json").write_text(json.dumps({
    "figure": "Figure 5: nearest neighbours in r for focal test videos", "k": k,
    "sheets": sorted(x.name for x in sheets.glob("*.png")),
    "videos_without_frames": sorted(set(focal["video_id"].astype(str)) - set(frames))}, indent=2) + "\n")
