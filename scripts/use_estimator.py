"""Rule use_estimator: the estimator whose FEI feeds Table 4, the figures, the selection, the validity test and the
report. causal.estimator names it, or `auto` takes the one with the lowest causal validation loss over its members
(held-out (y - E_F[h | z, x])^2, observables only; reach.causal.estimator.choose_estimator). Every fitted
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
    log.info("%s: causal validation loss %.4f (sd %.4f over %d members)%s", r["estimator"], r["causal_validation_loss"],
             r["causal_validation_loss_sd"], r["members"], " <- lowest" if r["chosen"] else "")
log.info("causal estimator: %s (%s; causal.estimator: %s)", chosen, LABELS[chosen], p.estimator)
k = fitted.index(chosen)
shutil.copyfile(smk.input.grids[k], smk.output.grid)
shutil.copyfile(smk.input.members[k], smk.output.members)
shutil.copyfile(smk.input.residuals[k], smk.output.residuals)
with open(smk.output.choice, "w") as f:
    json.dump({"estimator": chosen, "label": LABELS[chosen], "configured": str(p.estimator),
               "rule": ("lowest mean causal validation loss over the members (held-out (y - E_F[h | z, x])^2, "
                        "standardised y)") if p.estimator == "auto" else "causal.estimator",
               "lowest_causal_validation_loss": best, "estimators": rows}, f, indent=2)
