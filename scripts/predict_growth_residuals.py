"""Rule predict_growth_residuals: Web Appendix G Stage 2, growth residuals (Eqs. 24-26) from the global Stage-1
parameters, their signs and values predicted from r by 128-64-1 ReLU networks (torch) on held-out videos."""

import json

import numpy as np
import pandas as pd
import torch

from reach.growth.figures import stage2_figure
from reach.growth.stage2 import evaluate_residual_prediction, growth_residuals
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "predict_growth_residuals")
p = smk.params
torch.set_num_threads(int(smk.threads))
device = "cuda" if (p.device == "auto" and torch.cuda.is_available()) or p.device == "cuda" else "cpu"
log_run_header(log, device, threads=smk.threads)
res = growth_residuals(pd.read_parquet(smk.input.videos))
r = pd.read_parquet(smk.input.r).astype({"video_id": str})
rcols = [c for c in r.columns if c.startswith("r_")]
if not rcols or "split" not in r.columns:
    raise ValueError(f"{smk.input.r}: needs columns video_id, split, r_0..r_(d-1); has {list(r.columns)[:8]}")
m = res.merge(r, on="video_id", how="inner")
log.info("%d of %d fitted videos have a representation; splits %s", len(m), len(res), m["split"].value_counts().to_dict())
is_test = (m["split"] == p.test_split).to_numpy()
tab, preds = evaluate_residual_prediction(
    m[rcols].to_numpy(np.float32), m[["resid_a", "resid_b"]].to_numpy(), is_test, seed=int(p.seed), device=device,
    epochs=int(p.epochs), batch_size=int(p.batch_size), lr=float(p.lr), weight_decay=float(p.weight_decay),
    patience=int(p.patience))
tab["test_split"] = p.test_split
tab.to_csv(smk.output.table, index=False)
m[["video_id", "split", "resid_a", "resid_b"]].to_parquet(smk.output.residuals, index=False)
stage2_figure(smk.output.figure, preds)
log.info("held-out residual prediction:\n%s", tab.to_string())
acc = tab[(tab["metric"] == "accuracy")]
with open(smk.output.manifest, "w") as fh:
    json.dump({"device": device, "representation_dim": len(rcols), "videos": int(len(m)),
               "test_split": p.test_split, "n_test": int(is_test.sum()),
               "sign_accuracy": dict(zip(acc["residual"], acc["model"])),
               "majority_baseline": dict(zip(acc["residual"], acc["baseline"])),
               "beats_majority": dict(zip(acc["residual"], (acc["model"] > acc["baseline"]).tolist())),
               "metrics": tab.to_dict(orient="records")}, fh, indent=2, default=float)
