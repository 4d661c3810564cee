"""Rule benchmark_promotion: Table 1, the L sweep (Figures 5-6) and the allocation by (p, q) (Figure 7)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from reach.logs import log_run_header, setup_logging  # noqa: E402
from reach.promotion.tables import allocation_by_pq, l_sweep, table1, table1_markdown  # noqa: E402

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "benchmark_promotion")
log_run_header(log, "cpu", threads=smk.threads)
read = lambda files: pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)  # noqa: E731
published = pd.read_csv(Path(smk.scriptdir).parent / "resources" / "published" / "promotion_table1.csv")

tab = table1(read(smk.input.table_periods), read(smk.input.table_videos), published)
tab.to_parquet(smk.output.table1, index=False)
Path(smk.output.table1_md).write_text(table1_markdown(tab))
log.info("Table 1:\n%s", table1_markdown(tab))

sweep_periods, sweep_videos = read(smk.input.sweep_periods), read(smk.input.sweep_videos)
sweep = l_sweep(sweep_periods, sweep_videos)
sweep.to_parquet(smk.output.sweep, index=False)
fig, axes = plt.subplots(2, 4, figsize=(16, 7.2))
panels = [(sweep[sweep["c_bar"] == smk.params.fig5_c_bar], "K", "Figure 5 (C-bar = {})".format(smk.params.fig5_c_bar)),
          (sweep[sweep["K"] == smk.params.fig6_K], "c_bar", "Figure 6 (K = {})".format(smk.params.fig6_K))]
for row, (data, by, title) in zip(axes, panels):
    for key, g in data.groupby(by):
        for ax, col in zip(row, ["promoted_videos", "total", "direct", "indirect"]):
            ax.plot(g["L"], g[col], marker="o", label=f"{by} = {key:g}")
            ax.set_xlabel("planning interval L")
            ax.set_title(f"{title}: {col.replace('_', ' ')}", fontsize=9)
    row[0].legend(fontsize=8)
fig.tight_layout()
fig.savefig(smk.output.sweep_png, dpi=120)

alloc = allocation_by_pq(pd.concat([read(smk.input.table_videos), sweep_videos], ignore_index=True))
alloc.to_parquet(smk.output.allocation, index=False)
# Figure 7: AGA at the paper's K = 50 (l_sweep.budget_K) and the sweep's budget (l_sweep.c_bar)
aga = alloc[(alloc["policy"] == "AGA") & (alloc["K"] == smk.params.fig6_K) & (alloc["c_bar"] == smk.params.fig5_c_bar)]
log.info("Figure 7: AGA at K = %s, c_bar = %s, L in %s", smk.params.fig6_K, smk.params.fig5_c_bar, sorted(aga["L"].unique()))
Ls = sorted(aga["L"].unique())
fig, axes = plt.subplots(1, len(Ls), figsize=(4 * len(Ls), 3.6), squeeze=False)
for ax, L in zip(axes[0], Ls):
    g = aga[aga["L"] == L]
    ax.scatter(g["p"], g["q"], s=20 + 30 * g["promoted_periods"], alpha=0.6)
    ax.set_title(f"AGA, L = {L} (K = {smk.params.fig6_K}, c_bar = {smk.params.fig5_c_bar}): promotion periods by "
                 "(p, q)", fontsize=9)
    ax.set_xlabel("p")
    ax.set_ylabel("q")
fig.tight_layout()
fig.savefig(smk.output.allocation_png, dpi=120)
log.info("wrote %s", ", ".join(map(str, smk.output)))
