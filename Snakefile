# reach: who should post a short video (paper 1) and how a platform should promote it (paper 2).
# `snakemake --cores all` reproduces everything the rules below declare; see README.md.
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# The defaults live beside this Snakefile, so that `-d OTHER_DIR` and `--configfile MINE.yaml` (merged on top)
# work from any working directory.
configfile: str(Path(workflow.basedir) / "workflow_config.yaml")


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/ingest.smk"
include: "rules/promotion.smk"
include: "rules/diffusion.smk"
include: "rules/media.smk"
include: "rules/features.smk"
include: "rules/topics.smk"
include: "rules/represent.smk"
include: "rules/growth.smk"
include: "rules/causal.smk"
include: "rules/report.smk"  # last: the report loads what the stages above declare


rule all:
    default_target: True
    input:
        rules.ingest_scrapes.output,
        rules.benchmark_promotion.output,
        DIFFUSION_TARGETS,
        FEATURE_TARGETS,
        REPRESENT_TARGETS,
        GROWTH_TARGETS,
        CAUSAL_TARGETS,
        REPORT_TARGETS,  # last: `make` ends with the rendered report
