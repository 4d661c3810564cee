"""Rule gather_features: concatenate one modality's shard files in videos.parquet order, with its manifest."""

import json
from collections import Counter

import numpy as np
import pandas as pd

from reach.features.store import concat_in_order, load_npz, save_npz, write_manifest
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "gather_features")
log_run_header(log, "cpu", threads=smk.threads)
modality = smk.wildcards.modality
order = pd.read_parquet(smk.input.videos, columns=["video_id"])["video_id"].astype(str).to_numpy()
merged = concat_in_order([load_npz(f) for f in smk.input.shards], order)
save_npz(smk.output.features, **merged)
manifests = [json.loads(open(f).read()) for f in smk.input.manifests]
names = {json.dumps(m["extractor"].get("name")) for m in manifests}
if len(names) != 1:
    raise ValueError(f"{modality}: shards ran different extractors: {names}")
manifest = dict(manifests[0])
for key in ("seconds", "seconds_transcribing", "frames"):
    if key in manifest:
        manifest[key] = sum(m[key] for m in manifests)
if "frames_per_s" in manifest:
    manifest["frames_per_s"] = manifest["frames"] / max(manifest["seconds"], 1e-9)
manifest.pop("tokens", None)
manifest["devices"] = sorted({m["extractor"].get("device", "cpu") for m in manifests})
manifest["n_videos"] = int(order.size)
manifest["aligned_to"] = "results/ingest/videos.parquet (row order)"
manifest["file"] = str(smk.output.features)
if "status" in merged:
    manifest["status_counts"] = dict(Counter(merged["status"].tolist()))
manifest["arrays"] = {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in merged.items()}
table = None
if smk.input.tables:
    table = pd.concat([pd.read_parquet(f) for f in smk.input.tables], ignore_index=True)
    table = table.set_index(table["video_id"].astype(str)).loc[order].reset_index(drop=True)
    table.to_parquet(smk.output.table, index=False)
    if "status" in table:
        manifest["table_status_counts"] = table["status"].value_counts().to_dict()
write_manifest(smk.output.manifest, manifest)
log.info("%s: %d videos, arrays %s", modality, order.size, {k: v.shape for k, v in merged.items()})
