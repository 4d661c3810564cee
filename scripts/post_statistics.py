"""Rule post_statistics: the post statistics of Web Appendix A as model covariates, in videos.parquet order."""

import numpy as np
import pandas as pd

from reach.features.post import POST_COLUMNS, post_statistics
from reach.features.store import save_npz, write_manifest
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "post_statistics")
log_run_header(log, "cpu", threads=smk.threads)
videos = pd.read_parquet(smk.input.videos)
values = post_statistics(videos)
save_npz(smk.output.features, video_id=videos["video_id"].to_numpy().astype(str), values=values,
         meta_columns=np.array(list(POST_COLUMNS)))
write_manifest(smk.output.manifest, {"modality": "post", "extractor": {"name": "reach.features.post",
                                                                        "source": "Web Appendix A"},
                                     "dims": {"values": len(POST_COLUMNS)}, "columns": POST_COLUMNS,
                                     "n_videos": len(videos), "aligned_to": "results/ingest/videos.parquet"})
log.info("%d videos x %d post statistics", *values.shape)
