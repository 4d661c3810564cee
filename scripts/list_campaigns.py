"""Checkpoint list_campaigns: the sponsored campaigns (commerce hashtags) of the corpus and their file-safe slugs."""

import pandas as pd

from reach.logs import setup_logging
from reach.scrape.safety import hashtag_slug

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "list_campaigns")
videos = pd.read_parquet(smk.input.videos, columns=["hashtag", "hashtag_is_commerce"])
tags = sorted(videos.loc[videos["hashtag_is_commerce"].astype(bool), "hashtag"].unique())
table = pd.DataFrame({"hashtag": tags, "slug": [hashtag_slug(t) for t in tags]})
table.to_csv(smk.output[0], sep="\t", index=False)
log.info("%d sponsored campaigns: %s", len(table), ", ".join(tags))
