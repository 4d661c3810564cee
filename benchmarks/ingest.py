"""Ingestion throughput and memory against the world's size (no media), old code beside new, and the fitted
growth of peak memory with the number of records. Prints figures and ratios; asserts nothing.

    .venv/bin/python benchmarks/ingest.py [--scales 1,10,30] [--compare HEAD~2] [--work DIR] [--seed S]

For each scale (multiple of the default world's videos per hashtag) the scrapes are written once without media
(the 30x point is the 10x world written three times with disjoint video, creator and post ids, which keeps
the world generator's own memory out of reach), then each code version ingests them in a fresh process: its
peak RSS is that process's, its baseline the RSS after imports. ``--compare REF`` runs ``src/reach/scrape`` as
it was at REF beside the working tree's and checks that the four outputs are byte-identical (sha256). The
paper's scale (518,303 videos x 14 days, about 7.6M records) is extrapolated from the measured points with
the fitted exponent -- labelled as extrapolated, never measured here.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PAPER_VIDEOS = 518_303  # the paper's videos; records = this x the measured records per accepted video
OUTPUTS = ("videos.parquet", "daily_plays.parquet", "rejected.jsonl", "summary.json")


def make_world(out: Path, scale: int, seed: int | None) -> None:
    """Write the default world's scrapes (no media) at ``scale`` x videos per hashtag."""
    import yaml

    from reach.synthetic.scrapes import write_scrapes
    from reach.synthetic.world import WorldSpec, simulate
    config = yaml.safe_load((REPO / "workflow_config.yaml").read_text())
    fields = {f.name for f in dataclasses.fields(WorldSpec)}
    spec = WorldSpec(seed=config["seed"] if seed is None else seed,
                     **{k: v for k, v in config["world"].items() if k in fields})
    spec = dataclasses.replace(spec, videos_per_hashtag=spec.videos_per_hashtag * scale,
                               videos_per_campaign=None if spec.videos_per_campaign is None
                               else spec.videos_per_campaign * scale)
    write_scrapes(simulate(spec), spec, out)


def _shift(text: str, copy: int) -> str:
    return str(int(text) + copy * 10**17)


def replicate(src: Path, out: Path, copies: int) -> None:
    """``copies`` x the world in ``src``: copy k > 0 gets ids shifted by k x 10^17 and uniqueIds suffixed _rk.
    Lines that are not JSON objects (scraper junk) are copied unchanged."""
    for sub in ("items", "creators", "labels", "media"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "labels" / "engagement.csv", out / "labels" / "engagement.csv")
    for path in sorted((src / "items").iterdir()):
        with open(path, "rb") as fh, open(out / "items" / path.name, "wb") as dst:
            lines = fh.read().split(b"\n")
            for k in range(copies):
                for raw in lines:
                    if not raw.strip():
                        continue
                    if k == 0:
                        dst.write(raw + b"\n")
                        continue
                    try:
                        rec = json.loads(raw)
                    except ValueError:
                        dst.write(raw + b"\n")
                        continue
                    if isinstance(rec, dict) and isinstance(rec.get("author"), dict):
                        rec["id"] = _shift(str(rec.get("id", "0")), k)
                        rec["author"] = {**rec["author"], "id": _shift(str(rec["author"].get("id", "0")), k),
                                         "uniqueId": f"{rec['author'].get('uniqueId', 'x')}_r{k}"}
                    dst.write(json.dumps(rec, ensure_ascii=False).encode() + b"\n")
    for path in sorted((src / "creators").iterdir()):
        shutil.copy(path, out / "creators" / path.name)
        for k in range(1, copies):
            with open(path, encoding="utf-8") as fh, \
                    open(out / "creators" / f"{path.stem}_r{k}.jsonl", "w", encoding="utf-8") as dst:
                for line in fh:
                    post = json.loads(line)
                    post["id"] = _shift(str(post["id"]), k)
                    dst.write(json.dumps(post) + "\n")


def ingest_child(scrapes: Path, out: Path, workers: int) -> None:
    """Run in a fresh process: ingest, write the outputs, print one JSON line of figures."""
    import inspect

    from reach.scrape.ingest import ingest, write_outputs
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0 = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    start = time.perf_counter()
    if "workers" in inspect.signature(ingest).parameters:
        result = ingest(scrapes, require_media=False, workers=workers)
    else:
        workers = 1
        result = ingest(scrapes, require_media=False)
    seconds = time.perf_counter() - start
    cpu1 = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime for a, b in zip(cpu0, cpu1))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if workers > 1 else 0.0
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(result, *(out / name for name in OUTPUTS))
    digests = {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in OUTPUTS}
    print(json.dumps({"records": result.summary["records"]["read"], "videos": len(result.videos),
                      "seconds": seconds, "cpu_seconds": cpu, "baseline_mb": baseline, "peak_mb": peak, "worker_peak_mb": worker_peak,
                      "workers": workers, "sha256": digests}))


def code_at(ref: str, into: Path) -> Path:
    """``src/reach/__init__.py`` and ``src/reach/scrape`` as they were at ``ref`` (git archive)."""
    tar = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src/reach/__init__.py", "src/reach/scrape"],
                         check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return into / "src"


def run_ingest(src: Path, scrapes: Path, out: Path, workers: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run([sys.executable, __file__, "--child", str(scrapes), str(out), str(workers)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ingest of {scrapes} with {src} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fit_power(records: list[float], values: list[float]) -> tuple[float, float]:
    """value = a * records^b by least squares on logs -> (a, b)."""
    b, log_a = np.polyfit(np.log(records), np.log(values), 1)
    return float(np.exp(log_a)), float(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,10,30", help="comma-separated multiples of the default world")
    parser.add_argument("--compare", default=None, help="git ref whose src/reach/scrape runs beside the new code")
    parser.add_argument("--compare-max-scale", type=int, default=10, help="largest scale the old code runs at")
    parser.add_argument("--work", default=None, help="folder for the worlds (kept, reused); default: a temp dir")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2, help="parsing processes for the new code (2 cores)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--make", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return ingest_child(Path(args.child[0]), Path(args.child[1]), int(args.child[2]))
    if args.make:
        return make_world(Path(args.make[0]), int(args.make[1]), args.seed)

    scales = [int(s) for s in args.scales.split(",")]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="ingest_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    versions = {"new": REPO / "src"}
    if args.compare:
        versions["old"] = code_at(args.compare, work / "old_code")
    print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.1f}  worlds in {work}")
    rows = []
    for scale in scales:
        world = work / f"world_{scale}x"
        if not (world / "items").is_dir():
            start = time.perf_counter()
            if scale > 10 and scale % 10 == 0:
                base = work / "world_10x"
                if not (base / "items").is_dir():
                    subprocess.run([sys.executable, __file__, "--make", str(base), "10"], check=True,
                                   env={**os.environ, "PYTHONPATH": str(REPO / "src")})
                replicate(base, world, scale // 10)
            else:
                subprocess.run([sys.executable, __file__, "--make", str(world), str(scale)], check=True,
                               env={**os.environ, "PYTHONPATH": str(REPO / "src")})
            print(f"world {scale}x written in {time.perf_counter() - start:.0f} s")
        for name, src in versions.items():
            if name == "old" and scale > args.compare_max_scale:
                continue
            figures = run_ingest(src, world, work / f"out_{name}_{scale}x", args.workers)
            figures.update(version=name, scale=scale)
            rows.append(figures)
            print(f"{name:>3} {scale:>3}x {figures['records']:>10,d} records {figures['videos']:>8,d} videos "
                  f"{figures['seconds']:8.1f} s {figures['records'] / figures['seconds']:9,.0f} records/s "
                  f"(CPU {figures['cpu_seconds']:7.1f} s: {figures['records'] / figures['cpu_seconds']:7,.0f} records per CPU-s) "
                  f"peak RSS {figures['peak_mb']:8,.0f} MB (after imports {figures['baseline_mb']:,.0f} MB; "
                  f"{figures['workers']} worker(s), each at most {figures['worker_peak_mb']:,.0f} MB)",
                  flush=True)
    by = {(r["version"], r["scale"]): r for r in rows}
    for scale in scales:
        if ("old", scale) in by:
            old, new = by[("old", scale)], by[("new", scale)]
            same = all(old["sha256"][k] == new["sha256"][k] for k in OUTPUTS)
            print(f"{scale}x new/old: speed x{old['seconds'] / new['seconds']:.2f} (CPU x{old['cpu_seconds'] / new['cpu_seconds']:.2f}), peak RSS x{new['peak_mb'] / old['peak_mb']:.2f}; "
                  f"outputs byte-identical: {same}" + ("" if same else f" {new['sha256']} vs {old['sha256']}"))
    summary = {}
    for name in versions:
        pts = [r for r in rows if r["version"] == name]
        if len(pts) < 2:
            continue
        n = [r["records"] for r in pts]
        grow = [max(r["peak_mb"] - r["baseline_mb"], 1.0) for r in pts]
        _, b_total = fit_power(n, [r["peak_mb"] for r in pts])
        a_inc, b_inc = fit_power(n, grow)
        rate = pts[-1]["records"] / pts[-1]["seconds"]
        cpu_rate = pts[-1]["records"] / pts[-1]["cpu_seconds"]
        cores = f"{pts[-1]['workers']} parsing process(es)"
        paper_records = PAPER_VIDEOS * pts[-1]["records"] / pts[-1]["videos"]
        rss_paper = pts[-1]["baseline_mb"] + a_inc * paper_records ** b_inc
        minutes = paper_records / rate / 60
        cpu_minutes = paper_records / cpu_rate / 60
        summary[name] = {"paper_records": paper_records, "exponent_peak": b_total, "exponent_above_baseline": b_inc,
                         "extrapolated_paper_peak_gb": rss_paper / 1024, "extrapolated_paper_minutes": minutes,
                         "extrapolated_paper_cpu_minutes": cpu_minutes}
        print(f"{name}: peak RSS ~ records^{b_total:.2f} (above the import baseline: ^{b_inc:.2f}); "
              f"EXTRAPOLATED to {paper_records / 1e6:.1f}M records: peak RSS {rss_paper / 1024:.1f} GB "
              f"(target <= 8 GB; parsing workers add their own, each at most the largest worker peak above), "
              f"{minutes:.0f} min wall with {cores} at this run's {rate:,.0f} records/s; {cpu_minutes:.0f} CPU-minutes "
              f"({cpu_minutes / 2:.0f} min on 2 free cores) at {cpu_rate:,.0f} records per CPU-s (target <= 20 min on 2 cores)")
    print(json.dumps({"points": [{k: r[k] for k in ("version", "scale", "records", "videos", "seconds", "cpu_seconds",
                                                     "peak_mb", "baseline_mb", "worker_peak_mb", "workers")} for r in rows], "fit": summary}))


if __name__ == "__main__":
    main()
