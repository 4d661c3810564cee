"""Compare two working directories of the workflow (a Slurm run and a local run) output by output.

usage: python tests/slurm/compare.py SLURM_DIR LOCAL_DIR

Every file under results/ of either run is compared by content: Parquet tables with pandas (values, dtypes, index,
column order), .npz archives array by array (same keys, dtypes, shapes, values; NaN equals NaN), JSON by parsed
value without timing keys (TIMING_KEYS; also dropped from Parquet columns), .safetensors tensor by tensor with
their JSON metadata compared the same way, everything else byte for byte. The only files left out are those that legitimately differ between two
correct runs, listed in NON_DETERMINISTIC with the reason. Exit status 0 when every other file matches.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

# Path patterns (relative to the working directory) whose content depends on when and where a job ran.
NON_DETERMINISTIC = {
    "results/logs/*": "log lines carry timestamps, durations, process ids and progress bars",
    "results/benchmarks/*": "wall time, memory and I/O of each job (the measurements of benchmarks/scale.py)",
    "results/report/report.html": "the notebook renderer gives every cell a random id (the figures and tables it "
                                  "embeds are compared as files)",
}


# JSON keys (at any depth) that hold a job's own timing, e.g. the feature manifests' "seconds" and "frames_per_s".
TIMING_KEYS = ("seconds", "seconds_*", "*_seconds", "*_per_s", "elapsed*")


def excluded(rel: str) -> str | None:
    for pattern, why in NON_DETERMINISTIC.items():
        if fnmatch.fnmatch(rel, pattern):
            return why
    return None


def same_parquet(a: Path, b: Path) -> str | None:
    x, y = pd.read_parquet(a), pd.read_parquet(b)
    x = x.drop(columns=[c for c in x.columns if timing_key(c)])  # e.g. a training history's per-epoch "seconds"
    y = y.drop(columns=[c for c in y.columns if timing_key(c)])
    try:
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    except AssertionError as err:
        return str(err).splitlines()[0] if str(err) else "tables differ"
    return None


def same_npz(a: Path, b: Path) -> str | None:
    with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
        if sorted(x.files) != sorted(y.files):
            return f"keys differ: {sorted(x.files)} vs {sorted(y.files)}"
        for key in x.files:
            u, v = x[key], y[key]
            if u.dtype != v.dtype or u.shape != v.shape:
                return f"{key}: {u.dtype}{u.shape} vs {v.dtype}{v.shape}"
            nan_ok = u.dtype.kind in "fc"
            if not np.array_equal(u, v, equal_nan=nan_ok):
                return f"{key}: values differ"
    return None


def timing_key(name) -> bool:
    return isinstance(name, str) and any(fnmatch.fnmatch(name, pattern) for pattern in TIMING_KEYS)


def without_timings(value):
    if isinstance(value, dict) and isinstance(value.get("columns"), list) and isinstance(value.get("data"), list):
        # a table stored as {"columns": [...], "data": [[...], ...]} (e.g. a training history in weights metadata)
        keep = [i for i, c in enumerate(value["columns"]) if not timing_key(c)]
        value = {**value, "columns": [value["columns"][i] for i in keep],
                 "data": [[row[i] for i in keep] if isinstance(row, list) else row for row in value["data"]]}
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not timing_key(k)}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def same_json(a: Path, b: Path) -> str | None:
    x, y = without_timings(json.loads(a.read_text())), without_timings(json.loads(b.read_text()))
    if x == y:
        return None
    keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k)) if isinstance(x, dict) and isinstance(y, dict) else []
    return f"JSON values differ{' at ' + ', '.join(keys) if keys else ''}"


def same_safetensors(a: Path, b: Path) -> str | None:
    """Same tensor names, dtypes, shapes and values; metadata equal once timing keys are dropped from its JSON."""
    from safetensors import safe_open

    with safe_open(str(a), "np") as x, safe_open(str(b), "np") as y:
        if sorted(x.keys()) != sorted(y.keys()):
            return "tensor names differ"
        for key in x.keys():
            u, v = x.get_tensor(key), y.get_tensor(key)
            if u.dtype != v.dtype or u.shape != v.shape or not np.array_equal(u, v, equal_nan=u.dtype.kind in "fc"):
                return f"tensor {key} differs"
        mx, my = x.metadata() or {}, y.metadata() or {}

    def parse(text):
        try:
            return without_timings(json.loads(text))
        except ValueError:
            return text

    if {k: parse(v) for k, v in mx.items()} != {k: parse(v) for k, v in my.items()}:
        return "metadata differs"
    return None


def same_bytes(a: Path, b: Path) -> str | None:
    return None if a.read_bytes() == b.read_bytes() else "bytes differ"


def compare_file(a: Path, b: Path) -> str | None:
    if a.suffix == ".parquet":
        return same_parquet(a, b)
    if a.suffix == ".npz":
        return same_npz(a, b)
    if a.suffix == ".json":
        return same_json(a, b)
    if a.suffix == ".safetensors":
        return same_safetensors(a, b)
    return same_bytes(a, b)


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / "results").rglob("*") if p.is_file()}


def compare(slurm: Path, local: Path) -> tuple[dict[str, int], list[str]]:
    """Counts of compared / excluded files and a list of problems (empty when the runs agree)."""
    a, b = files_under(slurm), files_under(local)
    problems = [f"only in the Slurm run: {r}" for r in sorted(a - b) if not excluded(r)]
    problems += [f"only in the local run: {r}" for r in sorted(b - a) if not excluded(r)]
    counts = {"compared": 0, "excluded": 0}
    for rel in sorted(a & b):
        if excluded(rel):
            counts["excluded"] += 1
            continue
        counts["compared"] += 1
        why = compare_file(slurm / rel, local / rel)
        if why:
            problems.append(f"{rel}: {why}")
    return counts, problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    slurm, local = (Path(x) for x in argv)
    for root in (slurm, local):
        if not (root / "results").is_dir():
            print(f"error: {root}/results does not exist", file=sys.stderr)
            return 2
    counts, problems = compare(slurm, local)
    for pattern, why in NON_DETERMINISTIC.items():
        print(f"excluded {pattern}: {why}")
    print(f"excluded JSON keys and table columns {', '.join(TIMING_KEYS)}: a job's own timings (feature manifests, "
          "training histories, weights metadata)")
    print(f"{counts['compared']} files compared, {counts['excluded']} excluded, {len(problems)} differences")
    for p in problems:
        print(f"DIFFERS {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
