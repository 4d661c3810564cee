"""Rule gather_selection: every campaign's optimal influencer size in one table."""

import pandas as pd

from reach.logs import setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "gather_selection")
parts = [pd.read_csv(path) for path in smk.input]
table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
table.to_parquet(smk.output[0], index=False)
log.info("%d campaigns", len(table))
