"""How much of the true content can r carry? The probe criterion of the VS-VAE issue, for training variants.

validate_representations scores r by a cross-validated ridge probe of the synthetic world's true content latent,
from r and from the raw concatenated features (reach.represent.evaluate.probe_table). This benchmark trains the
VS-VAE on the default world's features under the workflow's settings and under variants of them (any keys of
`represent`, e.g. a longer training budget or another editing width), and prints for each: the probe per content
dimension from r, its mean, the ratio to the raw features' probe, training seconds and the epochs run. It shows
whether a shortfall of r is a matter of the training budget (the 10-minute CPU target) or of the model. Asserts
nothing.

    .venv/bin/python benchmarks/vsvae_probe.py [--variant NAME='{"patience": 10}' ...] [--threads 1] [--seed S] [--save-r DIR]

--save-r writes each variant's r as DIR/NAME.parquet (the r.parquet contract), for
benchmarks/fei_ensemble_draws.py --representation.

Inputs are the workflow's outputs for the default world (run `snakemake --cores all validate_representations`
first): results/ingest/videos.parquet, results/features/{text,image,audio,editing}.npz and the truth
results/synthetic/truth/videos.parquet. Every variant trains with the config's seed (or --seed; the probe's folds
keep the config's); each takes 5-11 minutes on one CPU thread.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see scripts/train_vsvae.py

import numpy as np
import pandas as pd
import torch
import yaml
from _variants import named_json

from reach.represent.data import load_feature_arrays, prepare
from reach.represent.evaluate import probe_table, raw_feature_matrix
from reach.represent.train import VSVAEConfig, fit, posterior, r_table

ROOT = Path(__file__).resolve().parents[1]
MODALITIES = ("text", "image", "audio", "editing")
DEFAULT_VARIANTS = {"workflow": {}, "longer training": {"patience": 10, "max_epochs": 120}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", default=[], type=named_json,
                    help="NAME=JSON of `represent` settings to override (repeatable); default: "
                         + "; ".join(f"{k}={json.dumps(v)}" for k, v in DEFAULT_VARIANTS.items()))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (train_vsvae uses 1)")
    ap.add_argument("--results", default=str(ROOT / "results"))
    ap.add_argument("--seed", type=int, default=None, help="training seed (default: the config's; the probe keeps it)")
    ap.add_argument("--save-r", default=None, help="folder for each variant's r as NAME.parquet")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = dict(args.variant) or dict(DEFAULT_VARIANTS)
    config = yaml.safe_load((ROOT / "workflow_config.yaml").read_text())
    rep, seed = config["represent"], int(config["seed"])
    settings = {k: v for k, v in rep.items() if k in VSVAEConfig.__dataclass_fields__}
    res_dir = Path(args.results)
    videos = pd.read_parquet(res_dir / "ingest" / "videos.parquet", columns=["video_id", "hashtag"])
    paths = {m: str(res_dir / "features" / f"{m}.npz") for m in MODALITIES}
    arrays = load_feature_arrays(paths)
    truth = pd.read_parquet(res_dir / "synthetic" / "truth" / "videos.parquet").drop_duplicates("video_id")
    truth = truth.set_index(truth["video_id"].astype(str))
    targets = [c for c in truth.columns if c.startswith("content_")]
    ev = rep["eval"]
    raw = raw_feature_matrix(arrays, int(ev["probe_max_columns"]), seed)
    rows = []
    for name, over in variants.items():
        cfg = VSVAEConfig.from_dict({**settings, **over, "seed": seed if args.seed is None else args.seed})
        data = prepare(arrays, videos, seed=cfg.seed, max_words=cfg.max_words, max_frames=cfg.max_frames,
                       vocab_min_count=cfg.vocab_min_count, vocab_size=cfg.vocab_size, sources=paths)
        content = truth.loc[data.video_id, targets].to_numpy(float)
        tic = time.perf_counter()
        result = fit(data, cfg, device="cpu")
        seconds = time.perf_counter() - tic
        r, _ = posterior(result.model, data, device="cpu")
        if args.save_r:
            Path(args.save_r).mkdir(parents=True, exist_ok=True)
            r_table(data.video_id, data.split, r).to_parquet(Path(args.save_r) / f"{name}.parquet", index=False)
        probe = probe_table(r, raw, content, targets, int(ev["probe_folds"]), seed).set_index("target")
        row = {"variant": name, "settings": json.dumps(over), **probe["r2_from_r"].rename(lambda t: f"r2 {t}"),
               "raw mean": probe.loc["mean", "r2_from_raw_features"],
               "ratio r/raw": probe.loc["mean", "r2_from_r"] / probe.loc["mean", "r2_from_raw_features"],
               "best epoch": result.best_epoch, "epochs": len(result.history), "seconds": seconds}
        rows.append(row)
        print(f"{name} {json.dumps(over)}: probe from r " + " ".join(f"{v:.3f}" for v in probe["r2_from_r"][:-1])
              + f" mean {row['r2 mean']:.5f} vs raw {row['raw mean']:.5f} (ratio {row['ratio r/raw']:.4f}); "
              f"best epoch {result.best_epoch}/{len(result.history)}; {seconds:.0f} s", flush=True)
    print("\nraw features' probe per dimension: "
          + " ".join(f"{t} {v:.3f}" for t, v in zip(targets, probe["r2_from_raw_features"][:-1])))
    print(pd.DataFrame(rows).drop(columns="settings").to_string(index=False, float_format=lambda f: f"{f:.3f}"))


if __name__ == "__main__":
    main()
