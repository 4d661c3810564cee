"""Rule use_estimator: the estimator whose FEI feeds Table 4, the figures, the selection, the validity test and the
report. causal.estimator names it, or `auto` chooses by the causal validation loss over the members (held-out
(y - E_F[h | z, x])^2, observables only, paired by member: the same out-of-bag rows for every estimator; the lowest
mean unless a simpler estimator is within one standard error: reach.causal.estimator.choose_estimator). Every fitted
estimator's loss is written to results/causal/estimator.json either way."""

import json
import shutil

from reach.causal.estimator import LABELS, choose_estimator
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(smk.log[0], "use_estimator")
log_run_header(log, "cpu", threads=smk.threads)
p = smk.params
fitted = list(p.fitted)
losses = {name: [] for name in fitted}
for path in smk.input.metas:
    with open(path) as f:
        meta = json.load(f)
    if meta["estimator"] not in losses:
        raise ValueError(f"{path}: estimator {meta['estimator']!r} is not one of {fitted}")
    losses[meta["estimator"]].append(meta.get("info", {}).get("causal_validation_loss", float("nan")))
best, rows = choose_estimator(losses)
chosen = best if p.estimator == "auto" else str(p.estimator)
for r in rows:
    log.info("%s: causal validation loss %.4f (sd %.4f over %d members; %+.4f +- %.4f against the lowest)%s",
             r["estimator"], r["causal_validation_loss"], r["causal_validation_loss_sd"], r["replicates"],
             r["difference_to_lowest"], r["difference_se"], " <- chosen by the rule" if r["chosen"] else "")
log.info("causal estimator: %s (%s; causal.estimator: %s)", chosen, LABELS[chosen], p.estimator)
k = fitted.index(chosen)
shutil.copyfile(smk.input.grids[k], smk.output.grid)
shutil.copyfile(smk.input.members[k], smk.output.members)
shutil.copyfile(smk.input.residuals[k], smk.output.residuals)
with open(smk.output.choice, "w") as f:
    json.dump({"estimator": chosen, "label": LABELS[chosen], "configured": str(p.estimator),
               "rule": ("causal validation loss over the members (held-out (y - E_F[h | z, x])^2, standardised y): the "
                        "lowest mean unless a simpler estimator is within one standard error of the paired difference")
               if p.estimator == "auto" else "causal.estimator",
               "chosen_by_the_rule": best, "estimators": rows}, f, indent=2)
