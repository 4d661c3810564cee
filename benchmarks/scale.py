r"""Stage-by-stage cost model: measured costs of the workflow's rules, extrapolated to the paper's corpus.

    .venv/bin/python benchmarks/scale.py [--run DIR ...] [--videos 518303] [--nodes 1 8 32]
                                          [--cores-per-node 16] [--gpus-per-node 1] [--videos-per-shard 1500]
                                          [--gpu-benchmarks DIR]

Inputs are the benchmark TSVs Snakemake writes (DIR/results/benchmarks/<rule>[/<job>].tsv: wall seconds `s`,
`cpu_time`, `max_rss`) of one or more finished runs; a run's size is the row count of DIR/results/ingest/
videos.parquet. Default: this checkout (the default world) plus every /tmp/reach-scale-*/ holding a finished run,
e.g. a quarter world (12 hashtags, 1,319 videos, 1 shard) made with

    printf 'world:\n  n_hashtags: 12\n' > /tmp/quarter.yaml
    snakemake --cores 1 -d /tmp/reach-scale-1320 --configfile /tmp/quarter.yaml -- \
        results/features/{image,audio,text,editing,post}.json

Model, per rule and quantity (CPU seconds, wall seconds): cost = a * jobs + b * videos, fitted by non-negative
least squares over the runs (a: per-job start-up such as imports and model loading; b: per-video work). With one
run, a = 0 and b = cost / videos. Rules of paper 2 (promotion, diffusion) do not depend on the video corpus and
are carried over unscaled. At the target size a sharded rule has ceil(videos / videos_per_shard) jobs, others
as many jobs as measured. Wall time on N nodes: jobs of a stage spread over the node slots (cores for CPU rules,
GPUs for GPU rules), ceil(jobs / slots) rounds of the per-job wall time; stages one after another (an upper
bound: Snakemake overlaps independent stages).

GPU rules (image_features, audio_features, train_vsvae, train_deepiv) ran on CPU here: their CPU-fallback costs
are measured and shown as such, and their GPU-hours read "not measured on an H100 here" unless --gpu-benchmarks
names a finished run's directory measured on a GPU (its results/benchmarks and results/ingest/videos.parquet).
Nothing in the table is invented: every number is a measured figure or a linear extrapolation of one.
"""

from __future__ import annotations

import argparse
import glob
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import nnls

REPO = Path(__file__).resolve().parents[1]
PAPER_VIDEOS = 518_303
GPU_RULES = {"image_features", "audio_features", "train_vsvae", "train_deepiv"}
# Paper 2's simulations and calibration read promotion logs, not the video corpus: constant in the corpus size.
CORPUS_INDEPENDENT = {"simulate_promotion", "benchmark_promotion", "simulate_promotion_logs", "prepare_promotion_logs",
                      "calibrate_diffusion", "evaluate_diffusion_recovery", "estimator_study"}
# Only the embedded synthetic world runs these (a user's scrapes replace them).
SYNTHETIC_ONLY = {"simulate_world", "render_media"}
# Pipeline order for the table; rules not listed follow in name order.
ORDER = ["simulate_world", "render_media", "ingest_scrapes", "sample_frames", "extract_audio", "image_features",
         "audio_features", "text_features", "editing_features", "gather_features", "post_statistics",
         "hashtag_topics", "probe_features", "train_vsvae", "train_deepiv"]
NOT_MEASURED = "not measured on an H100 here"


@dataclass
class Measured:
    """One rule in one run: its jobs' benchmark rows summed."""
    jobs: int
    sharded: bool
    cpu_s: float
    wall_s: float
    max_rss_mb: float


@dataclass
class Run:
    root: Path
    videos: int
    rules: dict[str, Measured] = field(default_factory=dict)
    epochs: dict[str, int] = field(default_factory=dict)   # training rules: epochs run (all members together)


# Where the training rules record their epochs (one row per epoch).
EPOCH_TABLES = {"train_vsvae": "results/represent/loss_history.parquet",
                "train_deepiv": "results/causal/deepiv/history-*.parquet"}


def count_epochs(root: Path, pattern: str) -> int:
    total = 0
    for path in glob.glob(str(root / pattern)):
        t = pd.read_parquet(path)
        total += int(t["epoch"].nunique()) if "epoch" in t.columns else len(t)
    return total


def read_run(root: Path) -> Run:
    videos_table = root / "results" / "ingest" / "videos.parquet"
    bench = root / "results" / "benchmarks"
    if not videos_table.exists() or not bench.is_dir():
        raise SystemExit(f"error: {root} has no finished run ({videos_table} or {bench} missing)")
    run = Run(root, len(pd.read_parquet(videos_table, columns=["video_id"])))
    paths = {}
    for tsv in sorted(bench.rglob("*.tsv")):
        rel = tsv.relative_to(bench)
        rule = rel.parts[0] if len(rel.parts) > 1 else tsv.stem
        paths.setdefault(rule, []).append(tsv)
    for rule, files in paths.items():
        rows = []
        for f in files:
            t = pd.read_csv(f, sep="\t")
            if t.empty or "cpu_time" not in t.columns:
                raise SystemExit(f"error: {f} is not a Snakemake benchmark table (no cpu_time column)")
            rows.append(t.iloc[-1])  # the last repeat, as Snakemake appends one row per --benchmark-repeats
        tab = pd.DataFrame(rows)
        run.rules[rule] = Measured(
            jobs=len(files),
            sharded=all(f.name.startswith("shard-") for f in files) and len(files[0].relative_to(bench).parts) > 1,
            cpu_s=float(pd.to_numeric(tab["cpu_time"], errors="coerce").fillna(0).sum()),
            wall_s=float(pd.to_numeric(tab["s"], errors="coerce").fillna(0).sum()),
            max_rss_mb=float(pd.to_numeric(tab["max_rss"], errors="coerce").fillna(0).max()),
        )
    for rule, pattern in EPOCH_TABLES.items():
        if rule in run.rules and count_epochs(root, pattern):
            run.epochs[rule] = count_epochs(root, pattern)
    return run


def fit(points: list[tuple[int, int, float]]) -> tuple[float, float]:
    """(per-job a, per-video b) from (jobs, videos, cost) points; non-negative least squares, b only for one size."""
    jobs = np.array([p[0] for p in points], float)
    videos = np.array([p[1] for p in points], float)
    cost = np.array([p[2] for p in points], float)
    if len({p[1] for p in points}) < 2:
        return 0.0, float(cost.sum() / videos.sum())
    (a, b), _ = nnls(np.column_stack([jobs, videos]), cost)
    return float(a), float(b)


@dataclass
class Stage:
    rule: str
    device: str
    sizes: str               # the run sizes the fit used
    jobs: int                # at the target size
    cpu_h: float             # CPU-hours at the target size (the CPU fallback for GPU rules)
    wall_job_s: float        # wall seconds per job at the target size, on the device measured
    gpu_h: float | None      # GPU-hours from --gpu-benchmarks, else None
    gpu_wall_job_s: float | None
    rss_gb: float            # peak memory of one job, largest measured (per-shard rules: at the measured shard size)
    per_video_ms: float      # measured per-video CPU milliseconds (b)
    scaled: bool


def model_stage(rule: str, runs: list[Run], gpu_run: Run | None, videos: int, per_shard: int) -> Stage:
    have = [r for r in runs if rule in r.rules]
    first = have[0].rules[rule]
    scaled = rule not in CORPUS_INDEPENDENT
    if first.sharded:
        jobs = max(1, math.ceil(videos / per_shard))
    else:
        jobs = first.jobs
    sizes = ", ".join(f"{r.videos}" for r in have)
    if scaled:
        a_cpu, b_cpu = fit([(r.rules[rule].jobs, r.videos, r.rules[rule].cpu_s) for r in have])
        a_wall, b_wall = fit([(r.rules[rule].jobs, r.videos, r.rules[rule].wall_s) for r in have])
        cpu_s = a_cpu * jobs + b_cpu * videos
        wall_s = a_wall * jobs + b_wall * videos
    else:  # the largest run's figures as they are
        big = max(have, key=lambda r: r.videos).rules[rule]
        b_cpu, cpu_s, wall_s = 0.0, big.cpu_s, big.wall_s
    gpu_h = gpu_wall_job = None
    if rule in GPU_RULES and gpu_run is not None and rule in gpu_run.rules:
        g = gpu_run.rules[rule]
        gpu_wall = g.wall_s / gpu_run.videos * videos if scaled else g.wall_s
        gpu_h, gpu_wall_job = gpu_wall / 3600, gpu_wall / jobs
    return Stage(rule, "gpu" if rule in GPU_RULES else "cpu", sizes, jobs, cpu_s / 3600, wall_s / jobs, gpu_h,
                 gpu_wall_job, max(r.rules[rule].max_rss_mb for r in have) / 1024, b_cpu * 1000, scaled)


def stage_wall(jobs: int, wall_job_s: float, slots: int) -> float:
    return math.ceil(jobs / slots) * wall_job_s


def hours(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", type=Path, help="a finished run's working directory (repeatable)")
    ap.add_argument("--videos", type=int, default=PAPER_VIDEOS, help="target corpus size (paper: 518,303)")
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--cores-per-node", type=int, default=16, help="CPU cores per GPU node (default: an H100 box here)")
    ap.add_argument("--gpus-per-node", type=int, default=1)
    ap.add_argument("--videos-per-shard", type=int, default=1500, help="config videos_per_shard (shards: auto)")
    ap.add_argument("--gpu-benchmarks", type=Path, help="a finished run's directory measured on a GPU (H100)")
    ap.add_argument("--min-videos", type=int, default=500,
                    help="a corpus-scaled rule measured only below this size is not extrapolated (job start-up would "
                         "count as per-video work)")
    args = ap.parse_args()

    roots = args.run or [REPO] + [Path(p) for p in sorted(glob.glob("/tmp/reach-scale-*"))
                                  if (Path(p) / "results/ingest/videos.parquet").exists()]
    runs = sorted((read_run(r) for r in roots), key=lambda r: r.videos)
    gpu_run = read_run(args.gpu_benchmarks) if args.gpu_benchmarks else None
    rules = sorted({k for r in runs for k in r.rules}, key=lambda k: (ORDER.index(k) if k in ORDER else len(ORDER), k))

    print("runs measured (benchmark TSVs):")
    for r in runs:
        print(f"  {r.root}: {r.videos:,} videos, {len(r.rules)} rules")
    print(f"GPU rules on a GPU: {'from ' + str(args.gpu_benchmarks) if gpu_run else NOT_MEASURED + ' (no GPU lent; '}"
          f"{'' if gpu_run else 'their CPU-fallback costs, measured here, are shown instead)'}")
    print(f"target: {args.videos:,} videos, shards of {args.videos_per_shard:,} videos "
          f"({math.ceil(args.videos / args.videos_per_shard)} shards), nodes of {args.cores_per_node} cores + "
          f"{args.gpus_per_node} GPU\n")

    too_small = [k for k in rules if k not in CORPUS_INDEPENDENT
                 and max(r.videos for r in runs if k in r.rules) < args.min_videos]
    rules = [k for k in rules if k not in too_small]
    stages = [model_stage(k, runs, gpu_run, args.videos, args.videos_per_shard) for k in rules]
    head = (f"{'stage':<36}{'dev':<5}{'sizes (videos)':<18}{'jobs':>6}{'ms/video':>10}{'CPU-h':>10}"
            f"{'GPU-h':>10}{'GB/job':>8}" + "".join(f"{'wall N=' + str(n):>14}" for n in args.nodes))
    print(head)
    print("-" * len(head))
    totals = {"cpu": 0.0, "gpu": 0.0, "gpu_missing": False}
    wall_cpu_fallback = {n: 0.0 for n in args.nodes}
    wall_with_gpu = {n: 0.0 for n in args.nodes}
    for s in stages:
        totals["cpu"] += s.cpu_h
        walls = []
        for n in args.nodes:
            fallback = stage_wall(s.jobs, s.wall_job_s, n * args.cores_per_node)
            wall_cpu_fallback[n] += fallback
            if s.device == "gpu":
                if s.gpu_wall_job_s is None:
                    walls.append("GPU: n/m")
                    continue
                w = stage_wall(s.jobs, s.gpu_wall_job_s, n * args.gpus_per_node)
                wall_with_gpu[n] += w
                walls.append(f"{w / 3600:,.2f} h")
            else:
                wall_with_gpu[n] += fallback
                walls.append(f"{fallback / 3600:,.2f} h")
        if s.device == "gpu":
            if s.gpu_h is None:
                totals["gpu_missing"] = True
            else:
                totals["gpu"] += s.gpu_h
        name = s.rule + ("" if s.scaled else " (fixed)") + (" [synth]" if s.rule in SYNTHETIC_ONLY else "")
        cpu_note = hours(s.cpu_h) + ("*" if s.device == "gpu" else "")
        print(f"{name:<36}{s.device:<5}{s.sizes:<18}{s.jobs:>6}{s.per_video_ms:>10.1f}{cpu_note:>10}"
              f"{(hours(s.gpu_h) if s.device == 'gpu' else '-'):>10}{s.rss_gb:>8.1f}"
              + "".join(f"{w:>14}" for w in walls))
    print("-" * len(head))
    gpu_total = "n/m" if totals["gpu_missing"] else hours(totals["gpu"])
    print(f"{'total':<59}{hours(totals['cpu']):>10}{gpu_total:>10}")
    print()
    print("wall time (stages in sequence; excludes queueing):")
    for n in args.nodes:
        if totals["gpu_missing"]:
            cpu_only = wall_with_gpu[n]
            print(f"  N={n:>3}: CPU stages {cpu_only / 3600:,.1f} h + GPU stages ({NOT_MEASURED}); "
                  f"with the GPU rules on the nodes' CPUs (the code's fallback, measured): "
                  f"{wall_cpu_fallback[n] / 3600:,.1f} h")
        else:
            print(f"  N={n:>3}: {wall_with_gpu[n] / 3600:,.1f} h")
    print()
    print("* CPU-fallback cost of a GPU rule (it ran without CUDA here); on a GPU node it costs GPU-hours instead.")
    print("ms/video: fitted per-video CPU time (cost = a x jobs + b x videos over the measured sizes). (fixed): paper 2")
    print("rules, independent of the video corpus, shown as measured. [synth]: only the embedded synthetic world runs")
    print("it. GB/job: largest measured peak RSS of one job (sharded rules stay near it when shards: auto keeps shard")
    print("sizes; whole-corpus rules grow with the corpus: see profiles/slurm/profile.yaml).")
    print("GPU-h: 'n/m' = " + NOT_MEASURED + "; plug measured figures in with --gpu-benchmarks RUN_DIR.")

    if too_small:
        print(f"not extrapolated (measured only below {args.min_videos} videos, where job start-up dominates): "
              + ", ".join(too_small))
    print("\ntraining per epoch (CPU fallback, measured here; the table above assumes as many epochs at 518K):")
    for r in runs:
        for rule, epochs in r.epochs.items():
            m = r.rules[rule]
            print(f"  {rule}: {r.videos:,} videos, {epochs} epochs (all members), {m.cpu_s / epochs:,.2f} CPU s and "
                  f"{m.wall_s / epochs:,.2f} wall s per epoch = {m.cpu_s / epochs / r.videos * 1000:,.2f} CPU ms per "
                  f"video-epoch; GPU: {NOT_MEASURED if gpu_run is None else 'see --gpu-benchmarks'}")


if __name__ == "__main__":
    main()
