# reach: who should post a short video (paper 1) and how a platform should promote it (paper 2).
# `snakemake --cores all` reproduces everything the rules below declare; see README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "workflow_config.yaml"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/ingest.smk"


rule all:
    default_target: True
    input:
        rules.ingest_scrapes.output,
