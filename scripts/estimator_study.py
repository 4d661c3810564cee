"""Rule estimator_study: paper 2, Section 5.3 / Figure 2 - OLS, D-OLS, MLE and D-MLE errors against market size
under the Const and Linear promotion schemes, over replications."""

from tqdm import tqdm

from reach.diffusion.figures import estimator_study_figure
from reach.diffusion.study import StudySpec, run_study, summarise_study
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "estimator_study")
log_run_header(log, "cpu", threads=smk.threads)
cfg = dict(smk.params.spec)
cfg["markets"] = tuple(int(m) for m in cfg["markets"])
spec = StudySpec(**cfg)
log.info("%s, seed %d", spec, smk.params.seed)
runs = run_study(spec, int(smk.params.seed), progress=lambda it: tqdm(it, desc="cells", mininterval=10))
summary = summarise_study(runs)
runs.to_parquet(smk.output.runs, index=False)
summary.to_parquet(smk.output.summary, index=False)
estimator_study_figure(summary).savefig(smk.output.figure, dpi=120)
log.info("mean errors:\n%s", summary.pivot_table(index=["scheme", "market"], columns="method", values="mean"))
