"""Rule encode_representations: r = the posterior mean of q(r | x) for every video, in videos.parquet order
(columns video_id, split, r_0..r_{d-1})."""

import os

# OpenMP threads sleep instead of spinning while they wait: on a shared 2-core machine spinning threads made
# each training step about 20x slower (measured); must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd
import torch

from reach.logs import log_run_header, setup_logging
from reach.represent.data import load_feature_arrays, prepare
from reach.represent.train import check_videos, choose_device, load_weights, posterior, r_table

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "encode_representations")
p = smk.params
torch.set_num_threads(max(1, int(smk.threads)))
log_run_header(log, str(choose_device(p.device)), threads=smk.threads)
saved = load_weights(smk.input.weights)
videos = pd.read_parquet(smk.input.videos, columns=["video_id", "hashtag"])
check_videos(saved, videos["video_id"], smk.input.weights)
paths = dict(zip(p.modalities, smk.input.features))
cfg = saved.cfg
data = prepare(load_feature_arrays(paths), videos, seed=cfg.seed, max_words=cfg.max_words, max_frames=cfg.max_frames,
               split=saved.split, vocab=saved.vocab, scalers=saved.scalers, sources=paths)
mu, log_sigma = posterior(saved.model, data, device=p.device)
table = r_table(data.video_id, data.split, mu)
table.to_parquet(smk.output.r, index=False)
sd = mu.std(0)
log.info("r: %d videos x %d dims; %d dims with posterior-mean sd > 0.1 (active); mean posterior sigma %.3f",
         mu.shape[0], mu.shape[1], int((sd > 0.1).sum()), float(torch.tensor(log_sigma).exp().mean()))
