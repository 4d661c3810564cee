"""Rule use_estimator: the estimator whose FEI feeds Table 4, the figures, the selection, the validity test and the
report. causal.estimator names it, or `auto` chooses by the causal validation loss over the members (held-out
(y - E_F[h | z, x])^2, observables only, paired by member: the same out-of-bag rows for every estimator; the lowest
mean unless a simpler estimator is within one standard error: reach.causal.estimator.choose_estimator). Every fitted
estimator's loss is written to results/causal/estimator.json either way, with the model files of its point estimate
(`point_models`: CF-IV's fit on all videos under causal.point_estimate all_rows, else the members, whose average h is
the point estimate)."""

import json
import shutil

import numpy as np

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
if p.estimator == "auto" or all(v and np.isfinite(v).all() for v in losses.values()):
    best, rows = choose_estimator(losses)
    for r in rows:
        log.info("%s: causal validation loss %.4f (sd %.4f over %d members; %+.4f +- %.4f against the lowest)%s",
                 r["estimator"], r["causal_validation_loss"], r["causal_validation_loss_sd"], r["replicates"],
                 r["difference_to_lowest"], r["difference_se"], " <- chosen by the rule" if r["chosen"] else "")
else:
    # a named estimator without out-of-bag rows (causal.bootstrap_members: false): no causal validation loss to
    # compare, so none is written (null) and the named one is used
    best = None
    rows = [{"estimator": name, "causal_validation_loss": None, "replicates": len(v), "chosen": name == p.estimator}
            for name, v in losses.items()]
    log.info("no causal validation loss for %s (members fitted without out-of-bag rows): none compared",
             [name for name, v in losses.items() if not (v and np.isfinite(v).all())])
chosen = best if p.estimator == "auto" else str(p.estimator)
log.info("causal estimator: %s (%s; causal.estimator: %s)", chosen, LABELS[chosen], p.estimator)
k = fitted.index(chosen)
shutil.copyfile(smk.input.grids[k], smk.output.grid)
shutil.copyfile(smk.input.members[k], smk.output.members)
shutil.copyfile(smk.input.residuals[k], smk.output.residuals)
with np.load(smk.input.members[k], allow_pickle=False) as d:
    point_is_the_fit = "point_h" in d.files   # rule estimate_fei: causal.point_estimate all_rows with band sets
if point_is_the_fit:
    point_models = [str(f) for f in smk.input.fits]
    if chosen != "cfiv" or len(point_models) != 1:
        raise ValueError(f"{smk.input.members[k]} carries the fit on all videos, but the fits given are {point_models}")
else:
    point_models = [m.removesuffix(".json") + ".safetensors" for m in smk.input.metas if f"/{chosen}/" in m]
log.info("point estimate: %s", point_models)
with open(smk.output.choice, "w") as f:
    json.dump({"estimator": chosen, "label": LABELS[chosen], "configured": str(p.estimator),
               "point_models": point_models,
               "rule": ("causal validation loss over the members (held-out (y - E_F[h | z, x])^2, standardised y): the "
                        "lowest mean unless a simpler estimator is within one standard error of the paired difference")
               if p.estimator == "auto" else "causal.estimator",
               "chosen_by_the_rule": best, "estimators": rows}, f, indent=2)
