"""How long each job of a finished Snakemake run waited for cores after its inputs were ready.

Reads the run's console log (what `snakemake --cores 2 ... > run.log 2>&1` printed): every job's start, finish,
inputs and outputs. A job is ready when the last job making one of its inputs finished; its wait is start - ready.
Prints the wait of the named rules (default: the critical path and the rules the report waits on) and how many
simulation jobs started during each wait, then the run's job counts and wall time.

    python benchmarks/schedule_waits.py run.log [--rules encode_representations,train_causal,...]

docs/scale.md (scheduling) has the figures and the run that produced them.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from pathlib import Path

DEFAULT_RULES = ("train_vsvae", "encode_representations", "post_statistics", "train_deepiv", "train_causal",
                 "estimate_fei", "iv_validity", "validate_representations", "fit_growth_model",
                 "predict_growth_residuals", "render_report")
SIMULATION_RULES = ("simulate_promotion", "simulate_promotion_policies")


def parse_log(text: str) -> dict[int, dict]:
    """jobid -> {rule, start, finish, input, output} from Snakemake's console output."""
    stamp, jobs, cur = None, {}, None
    for line in text.splitlines():
        if m := re.match(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", line.strip()):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line.strip()):
            cur = {"rule": m.group(1), "start": stamp, "input": [], "output": []}
        elif (m := re.match(r"^(input|output): (.*)$", line.strip())) and cur is not None:
            cur[m.group(1)] = [s.strip() for s in m.group(2).split(",")]
        elif (m := re.match(r"^jobid: (\d+)$", line.strip())) and cur is not None:
            jobs[int(m.group(1))], cur = cur, None
        elif m := re.match(r"^Finished jobid: (\d+) ", line.strip()):
            if int(m.group(1)) in jobs:
                jobs[int(m.group(1))]["finish"] = stamp
    if not jobs:
        raise SystemExit("error: no jobs found (is this the console output of a Snakemake run?)")
    return jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", type=Path)
    ap.add_argument("--rules", default=",".join(DEFAULT_RULES))
    args = ap.parse_args()
    jobs = parse_log(args.log.read_text(errors="replace"))
    producer = {o: j for j, d in jobs.items() for o in d["output"]}
    t0 = min(d["start"] for d in jobs.values())
    end = max(d.get("finish") or d["start"] for d in jobs.values())
    sims = sorted(d["start"] for d in jobs.values() if d["rule"] in SIMULATION_RULES)
    wanted = set(args.rules.split(","))
    rows = []
    for d in jobs.values():
        if d["rule"] not in wanted:
            continue
        deps = [jobs[producer[i]].get("finish") for i in d["input"] if i in producer]
        ready = max((t for t in deps if t is not None), default=t0)
        rows.append((d["start"], d["rule"], ready, sum(ready <= s < d["start"] for s in sims), d.get("finish")))
    print(f"{'rule':26s} {'ready s':>8s} {'start s':>8s} {'wait s':>7s} {'end s':>7s}  simulation jobs started meanwhile")
    for start, rule, ready, n, finish in sorted(rows):
        rel = lambda t: (t - t0).total_seconds()  # noqa: E731
        print(f"{rule:26s} {rel(ready):8.0f} {rel(start):8.0f} {rel(start) - rel(ready):7.0f} "
              f"{rel(finish) if finish else float('nan'):7.0f}  {n}")
    print(f"jobs {len(jobs)} (simulation jobs {len(sims)}); wall {(end - t0).total_seconds() / 60:.1f} min")


if __name__ == "__main__":
    main()
