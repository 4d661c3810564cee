"""Rule train_causal: one ensemble member of the causal estimator {estimator} (deepiv: Deep IV, Eqs. 1-6, Web Appendix
C; cfiv: the series control-function IV) on a bootstrap resample of the videos: t = log followers, z = log past
average hearts, x = [r, post statistics], y = log impressions. Early stopping (Deep IV), the choice of penalty and
components (CF-IV) and the choice among causal.candidates (lowest held-out second-stage loss) use the member's
out-of-bag rows."""

import json
import time

import numpy as np

from reach.causal.design import load_design
from reach.causal.estimator import LABELS, fit_selected, make_config
from reach.causal.training import bootstrap_split, resolve_device
from reach.logs import log_run_header, setup_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
member = int(smk.wildcards.member)
estimator = str(smk.wildcards.estimator)
log = setup_logging(smk.log[0], f"train_causal[{estimator}, {member}]")
p = smk.params
device = str(resolve_device(p.config.get("device", "auto"))) if estimator == "deepiv" else "cpu (numpy)"
log_run_header(log, device, threads=smk.threads)
log.info("estimator: %s", LABELS[estimator])
_, design = load_design(smk.input.videos, smk.input.representation, smk.input.post,
                        hashtag_indicators=bool(smk.params.hashtag_indicators))
n = design.t.size
# CF-IV lets the follower curve bend per hashtag: the hashtag indicators ending x enter its w(x) directly
base = {**p.config, **({"direct_columns": design.n_hashtag_columns} if estimator == "cfiv" else {})}
candidates = [make_config(estimator, {**base, **overrides}, int(p.seed) + 1000 * member, threads=smk.threads)
              for overrides in (list(p.candidates) or [{}])]
config = candidates[0]
val_share = float(getattr(config, "val_share", p.val_share))
if p.bootstrap:
    # early stopping / model choice on held-out rows that are not in the bootstrap resample (duplicates would leak)
    rows, val = bootstrap_split(n, val_share, np.random.default_rng([int(p.seed), 7, member]))
    validation = (design.t[val], design.z[val], design.x[val], design.y[val])
else:
    rows, validation = np.arange(n), None
log.info("%s, member %d: %d rows (%s), x has %d columns; %s", LABELS[estimator], member, n,
         "bootstrap resample" if p.bootstrap else "all", design.x.shape[1], config)
start = time.perf_counter()
if len(candidates) > 1 and validation is None:
    raise ValueError(f"causal.candidates.{estimator} has {len(candidates)} entries, which are chosen on out-of-bag rows: "
                     "set causal.bootstrap_members: true or leave one candidate")
# groups: a resample's copies of one video stay in one cross-fitting fold (CF-IV's controls v^ come from first-stage
# fits that saw neither the video nor its copies)
model, selection = fit_selected(estimator, design.t[rows], design.z[rows], design.x[rows], design.y[rows], candidates,
                                validation, groups=rows)
config = candidates[next(r["candidate"] for r in selection if r["selected"])]
for r in selection:
    log.info("candidate %d%s: held-out second-stage loss %.4f%s", r["candidate"],
             f" {p.candidates[r['candidate']]}" if p.candidates else "", r["second_stage_val_loss"],
             " <- kept" if r["selected"] else "")
seconds = time.perf_counter() - start
model.save(smk.output.weights)
history = model.history.copy()
history.insert(0, "member", member)
history.insert(0, "estimator", estimator)
history.to_parquet(smk.output.history, index=False)
meta = {"estimator": estimator, "member": member, "bootstrap": bool(p.bootstrap), "n_rows": int(n),
        "unique_rows": int(np.unique(rows).size), "x_columns": design.x_columns, "seconds": seconds,
        "device": str(getattr(model, "device", "cpu")), "epochs": int(len(history)), "config": config.to_json(),
        "info": model.info, "selection": selection}
with open(smk.output.meta, "w") as f:
    json.dump(meta, f, indent=2, default=str)
log.info("trained in %.1f s (%d history rows) on %s", seconds, len(history), meta["device"])
