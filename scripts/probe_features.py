"""Rule probe_features: evaluation only. Cross-validated R^2 of a linear probe from each modality's features to
the synthetic world's true content latent, against the same probe on shuffled rows of the latent. Modalities wider
than `max_columns` enter through their leading principal components."""

import numpy as np
import pandas as pd

from reach.features.probe import cv_r2, impute_standardise, modality_matrix, reduce_width
from reach.features.store import load_npz
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "probe_features")
log_run_header(log, "cpu", threads=smk.threads)
p = smk.params
order = pd.read_parquet(smk.input.videos, columns=["video_id"])["video_id"].astype(str)
truth = pd.read_parquet(smk.input.truth).drop_duplicates("video_id").set_index("video_id")
targets = [c for c in truth.columns if c.startswith("content_")]
Y = truth.loc[order, targets].to_numpy(float)
rng = np.random.default_rng(int(p.seed))
Y_shuffled = Y[rng.permutation(len(Y))]
rows = []
for modality, path in zip(p.modalities, smk.input.features):
    arrays = load_npz(path)
    if not np.array_equal(arrays["video_id"].astype(str), order.to_numpy()):
        raise ValueError(f"{path} is not in videos.parquet order")
    X = impute_standardise(modality_matrix(modality, arrays))
    width = X.shape[1]
    X = reduce_width(X, int(p.max_columns), int(p.seed))
    r2 = cv_r2(X, Y, int(p.folds), int(p.seed))
    r2_null = cv_r2(X, Y_shuffled, int(p.folds), int(p.seed))
    for name, a, b in zip(targets + ["mean"], list(r2) + [r2.mean()], list(r2_null) + [r2_null.mean()]):
        rows.append({"modality": modality, "target": name, "r2": a, "r2_shuffled": b, "n_videos": len(Y),
                     "n_features": width, "n_inputs": X.shape[1]})
    log.info("%s (%d features, %d probe inputs): R2 %s; shuffled %s", modality, width, X.shape[1], np.round(r2, 3),
             np.round(r2_null, 3))
if len(p.modalities) > 1:
    X = np.column_stack([reduce_width(impute_standardise(modality_matrix(m, load_npz(f))), int(p.max_columns),
                                      int(p.seed)) for m, f in zip(p.modalities, smk.input.features)])
    r2, r2_null = cv_r2(X, Y, int(p.folds), int(p.seed)), cv_r2(X, Y_shuffled, int(p.folds), int(p.seed))
    for name, a, b in zip(targets + ["mean"], list(r2) + [r2.mean()], list(r2_null) + [r2_null.mean()]):
        rows.append({"modality": "all", "target": name, "r2": a, "r2_shuffled": b, "n_videos": len(Y),
                     "n_features": X.shape[1], "n_inputs": X.shape[1]})
pd.DataFrame(rows).to_csv(smk.output.probe, index=False)
