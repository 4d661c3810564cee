"""Rule calibrate_diffusion: Section 6.2 - category estimates for every model x method (gamma on a grid by
validation WMAPE), the p-q correlation test (Figure 3), the out-of-sample WMAPE table with the paired tests, and
fitted curves of example videos (Figure 4)."""

import json

import numpy as np
import pandas as pd
from tqdm import tqdm

from reach.diffusion.calibrate import calibrate, example_videos, fit_single_video, panel_from_logs
from reach.diffusion.figures import fitted_curves_figure, pq_scatter_figure
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "calibrate_diffusion")
log_run_header(log, "cpu", threads=smk.threads)
P = smk.params
with open(smk.input.summary) as fh:
    market = json.load(fh)["market"]
clean = pd.read_parquet(smk.input.panel)
panel = panel_from_logs(clean, market)
log.info("%d videos, %d categories, up to %d periods, market %d", panel.length.size, panel.categories.size,
         panel.direct.shape[1], market)
g = P.gamma_grid
grid = np.round(np.arange(g["start"], g["stop"] + g["step"] / 2, g["step"]), 6)
cal = calibrate(panel, grid, fit_share=float(P.fit_share), validation_share=float(P.validation_share),
                progress=lambda it: tqdm(it, desc="model x method"))
cal.estimates.to_parquet(smk.output.estimates, index=False)
cal.gamma_search.to_parquet(smk.output.gamma_search, index=False)
cal.per_video.to_parquet(smk.output.wmape_videos, index=False)
cal.wmape.to_parquet(smk.output.wmape, index=False)
with open(smk.output.wmape_md, "w") as fh:
    fh.write("Out-of-sample WMAPE (each video's last 40% of periods; rollout from its fitted 60%)\n\n")
    fh.write(cal.wmape.to_markdown(index=False, floatfmt=".4f") + "\n\n")
    fh.write("Paper 2, Section 6.2.2 (real data): P-BDM D-OLS 0.3896, P-BDM OLS 0.3966, BDM 0.8125\n")
with open(smk.output.tests, "w") as fh:
    json.dump(cal.tests, fh, indent=2)
log.info("WMAPE:\n%s", cal.wmape.to_string(index=False))
log.info("tests: %s", json.dumps(cal.tests))

main = cal.estimates.query("model == 'P-BDM' and method == 'D-OLS'")
fig = pq_scatter_figure(main, cal.tests.get("pq_correlation"))
fig.savefig(smk.output.pq_scatter, dpi=120)
gamma = float(main["gamma"].iloc[0])
curves = [fit_single_video(panel, i, gamma, float(P.fit_share)) for i in example_videos(panel, int(P.examples), fit_share=float(P.fit_share))]
fitted_curves_figure(curves).savefig(smk.output.fitted_curves, dpi=120)
pd.concat([c.assign(**{k: v for k, v in c.attrs.items()}) for c in curves], ignore_index=True).to_parquet(
    smk.output.fitted_curves_table, index=False)
