"""Rule render_report: report/report.qmd -> results/report/report.html (self-contained), by quarto when a binary is
on PATH, else jupytext + nbconvert; the report reads the results under the working directory."""

import time
from pathlib import Path

from reach.logs import log_run_header, setup_logging
from reach.report.render import external_images, find_quarto, html_errors, render_report

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "render_report")
p = smk.params
planned = "quarto" if p.renderer == "quarto" or (p.renderer == "auto" and find_quarto()) else "jupytext + nbconvert"
log_run_header(log, "cpu", f"report renderer {planned}", "paper" if planned == "quarto" else "substitute")
start = time.perf_counter()
used = render_report(Path(smk.input.qmd), Path(smk.output.html), Path.cwd(), renderer=p.renderer,
                     timeout=int(p.timeout_s),
                     env={"REACH_SYNTHETIC": "1" if p.synthetic else "0", "REACH_PUBLISHED": str(p.published)})
text = Path(smk.output.html).read_text()
if html_errors(text):
    raise RuntimeError(f"{smk.output.html}: a report cell raised ({html_errors(text)})")
if external_images(text):
    raise RuntimeError(f"{smk.output.html}: images not embedded: {external_images(text)[:5]}")
log.info("rendered %s with %s in %.1f s (%.1f MB, %d images)", smk.output.html, used, time.perf_counter() - start,
         len(text) / 1e6, text.count("<img"))
