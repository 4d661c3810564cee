# The rendered report (issue 9): report/report.qmd loads the tables and figures the rules above wrote (no
# computation beyond formatting) into one self-contained HTML file. `quarto render` when a quarto binary is on PATH,
# else jupytext + nbconvert (DESIGN §5); the HTML says which ran. Include this file last: its inputs are the
# outputs of every stage included before it (report_inputs in common.smk).
REPORT_TARGETS = ["results/report/report.html"]


rule render_report:
    input:
        unpack(report_inputs),
        fig12=report_campaign_figures,
        qmd=str(Path(workflow.basedir) / "report" / "report.qmd"),
        quarto_yml=str(Path(workflow.basedir) / "report" / "_quarto.yml"),
    output:
        html="results/report/report.html",
    params:
        synthetic=use_synthetic_world(),
        published=str(Path(workflow.basedir) / "resources" / "published"),
        renderer="auto",
        timeout_s=1200,
        code=package_digest("report"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../environment.yml"
    log:
        "results/logs/render_report.log",
    benchmark:
        "results/benchmarks/render_report.tsv"
    script:
        "../scripts/render_report.py"
