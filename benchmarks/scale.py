r"""Stage-by-stage cost model: measured costs of the workflow's rules, extrapolated to the paper's corpus.

    .venv/bin/python benchmarks/scale.py [--run DIR ...] [--videos 518303] [--nodes 1 8 32]
                                          [--cores-per-node 16] [--gpus-per-node 1] [--videos-per-shard 1500]
                                          [--gpu-benchmarks benchmarks/results/gpu-bench-*.json | DIR]

Inputs are the benchmark TSVs Snakemake writes (DIR/results/benchmarks/<rule>[/<job>].tsv: wall seconds `s`,
`cpu_time`, `max_rss`) of one or more finished runs; a run's size is the row count of DIR/results/ingest/
videos.parquet. Default: this checkout (the default world) plus every /tmp/reach-scale-*/ holding a finished run,
e.g. a quarter world (12 hashtags, 1,319 videos, 1 shard) made with

    printf 'world:\n  n_hashtags: 12\n  videos_per_campaign: null\n' > /tmp/quarter.yaml
    snakemake --cores 1 -d /tmp/reach-scale-1320 --configfile /tmp/quarter.yaml -- \
        results/features/{image,audio,text,editing,post}.json

Model, per rule and quantity (CPU seconds, wall seconds): cost = a * jobs + b * videos, fitted by non-negative
least squares over the runs (a: per-job start-up such as imports and model loading; b: per-video work). With one
run, a = 0 and b = cost / videos. Rules of paper 2 (promotion, diffusion) do not depend on the video corpus and
are carried over unscaled. At the target size a sharded rule has ceil(videos / videos_per_shard) jobs, others
as many jobs as measured. Wall time on N nodes: jobs of a stage spread over the node slots (cores for CPU rules,
GPUs for GPU rules), ceil(jobs / slots) rounds of the per-job wall time; stages one after another (an upper
bound: Snakemake overlaps independent stages).

GPU rules (image_features, audio_features, train_vsvae, train_causal) ran on CPU here: their CPU-fallback costs
are measured and shown as such, and their GPU-hours read "not measured on a GPU here" unless --gpu-benchmarks
names either
  * the JSON that benchmarks/gpu.sh writes (benchmarks/results/*.json): image_features from the library's
    EfficientNet-Lite0 path (frames/s) x videos x key frames per video (counted in the runs' image features, else
    --frames-per-video, "assumed"); train_vsvae from seconds per epoch at the paper's widths (bfloat16 autocast, as
    represent.amp) x --vsvae-epochs ("assumed"); train_causal (Deep IV) from seconds per epoch of both stages x
    --deepiv-epochs per stage x --members ("assumed"); audio_features has no GPU figure (its models are TensorFlow,
    absent on the GPU machine) and keeps its CPU-fallback cost, marked "assumed: CPU fallback". A JSON from
    `gpu.sh --dry-run` is labelled DRY RUN on every line it feeds: a rehearsal on the CPU at tiny sizes, not a
    measurement. Every GPU figure is also shown as a share of the H200's limits (bf16 dense 790 TFLOP/s, device
    copy 4.3 TB/s; FLOPs and floor bytes as gpu_bench.py counts them). Without any finished run only that GPU
    section is printed;
  * or a finished run's directory measured on a GPU (its results/benchmarks and results/ingest/videos.parquet).
Nothing in the table is invented: every number is a measured figure, a linear extrapolation of one, or an assumption
named as such.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import nnls

REPO = Path(__file__).resolve().parents[1]
PAPER_VIDEOS = 518_303
GPU_RULES = {"image_features", "audio_features", "train_vsvae", "train_causal",
             "train_deepiv"}  # train_deepiv: the Deep IV rule's name in runs made before it became train_causal
# Paper 2's simulations and calibration read promotion logs, not the video corpus: constant in the corpus size.
CORPUS_INDEPENDENT = {"simulate_promotion", "benchmark_promotion", "simulate_promotion_logs", "prepare_promotion_logs",
                      "calibrate_diffusion", "evaluate_diffusion_recovery", "estimator_study"}
# Only the embedded synthetic world runs these (a user's scrapes replace them).
SYNTHETIC_ONLY = {"simulate_world", "render_media"}
# Pipeline order for the table; rules not listed follow in name order.
ORDER = ["simulate_world", "render_media", "ingest_scrapes", "sample_frames", "extract_audio", "image_features",
         "audio_features", "text_features", "editing_features", "gather_features", "post_statistics",
         "hashtag_topics", "probe_features", "train_vsvae", "train_causal"]
NOT_MEASURED = "not measured on a GPU here"
DEEPIV_RULE = "train_causal"   # Deep IV members (one job each)
H200_LIMITS = {"bf16_dense_flop_s": 790e12, "copy_byte_s": 4.3e12}   # as measured on this workplace's H200s


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
                "train_causal": "results/causal/deepiv/history-*.parquet"}


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
class GpuFigure:
    """A GPU rule's cost at the target size, from gpu.sh's JSON."""
    seconds: float           # GPU seconds for the whole rule at the target size
    source: str              # "measured" or "DRY RUN ...", then the assumptions it rests on
    detail: str              # how it was computed


class GpuBench:
    """benchmarks/gpu.sh's JSON (format reach.gpu_bench/1)."""

    def __init__(self, path: Path):
        self.path = path
        self.doc = json.loads(path.read_text())
        if self.doc.get("format") != "reach.gpu_bench/1":
            raise SystemExit(f"error: {path} is not a benchmarks/gpu.sh JSON (format {self.doc.get('format')!r})")
        self.dry = bool(self.doc.get("dry_run"))
        self.tag = "DRY RUN (CPU, tiny sizes): not a measurement" if self.dry else "measured"
        self.steps = self.doc["steps"]

    def ok(self, step: str) -> dict | None:
        st = self.steps.get(step, {})
        return st if st.get("status") in ("ok", "partial") else None   # partial: killed at its limit, figures kept

    @property
    def gpu_name(self) -> str:
        return self.doc.get("gpu", {}).get("name") or ("none (CPU dry run)" if self.dry else "unknown")

    def figures(self, videos: int, frames_per_video: tuple[float, str], vsvae_epochs: int, deepiv_epochs: int,
                members: int) -> dict[str, GpuFigure]:
        out: dict[str, GpuFigure] = {}
        img = self.ok("image")
        lib = [r for r in (img or {}).get("runs", []) if r["path"].startswith("library")]
        if lib:
            fpv, fpv_src = frames_per_video
            fps = lib[0]["frames_per_s"]
            out["image_features"] = GpuFigure(
                videos * fpv / fps, f"{self.tag}; {fpv_src}",
                f"{videos:,} videos x {fpv:.2f} frames / {fps:,.1f} frames/s (the library's EfficientNet-Lite0 path, "
                f"fp32, {img['px']} px)")
        v = self.ok("vsvae")
        if v and "bf16" in v.get("modes", {}):
            e = v["modes"]["bf16"]["epoch_s"] * videos / v["rows"]
            out["train_vsvae"] = GpuFigure(
                e * vsvae_epochs, f"{self.tag}; assumed: {vsvae_epochs} epochs (--vsvae-epochs)",
                f"{e:,.1f} s/epoch at {videos:,} videos (frame width {v['dims']['frame_dim']}, batch {v['batch']}, "
                f"bf16 autocast; timed on {v['rows']:,} rows) x {vsvae_epochs} epochs")
        d = self.ok("deepiv")
        f = (d or {}).get("fits", {}).get("unbiased", {})
        if f.get("status") == "ok":
            per_epoch = (f["first"]["s_per_epoch"] + f["second"]["s_per_epoch"]) * videos / d["rows"]
            out[DEEPIV_RULE] = GpuFigure(
                per_epoch * deepiv_epochs * members,
                f"{self.tag}; assumed: {deepiv_epochs} epochs per stage (--deepiv-epochs), {members} members",
                f"({f['first']['s_per_epoch']:.3g} + {f['second']['s_per_epoch']:.3g}) s/epoch on {d['rows']:,} rows, "
                f"scaled to {videos:,}, x {deepiv_epochs} epochs per stage x {members} members (unbiased loss)")
            out["train_deepiv"] = out[DEEPIV_RULE]      # the same rule in runs made before the rename
        return out

    def ratio_lines(self) -> list[str]:
        """Every throughput figure beside the H200's limits (achieved FLOP/s, floor bytes/s)."""
        lines = [f"  {'figure':<56}{'value':>20}   {'FLOP/s : share of 790 T':<30}{'floor B/s : share of 4.3 T'}"]

        def row(name, value, flop_s, byte_s):
            fl = "-" if flop_s is None else f"{flop_s / 1e12:,.3g} T : {flop_s / H200_LIMITS['bf16_dense_flop_s']:.2e}"
            by = "-" if byte_s is None else f"{byte_s / 1e9:,.3g} G : {byte_s / H200_LIMITS['copy_byte_s']:.2e}"
            lines.append(f"  {name:<56}{value:>20}   {fl:<30}{by}")

        env = self.ok("env")
        if env:
            mm, cp = env["measured_bf16_matmul"], env["measured_copy"]
            row(f"ceiling: bf16 {mm['n']}^3 matrix product", f"{mm['seconds_median'] * 1e3:,.3g} ms", mm["flop_s"],
                None)
            row(f"ceiling: device copy of {cp['bytes'] / 2**20:,.0f} MiB", f"{cp['seconds_median'] * 1e3:,.3g} ms",
                None, cp["byte_s_read_plus_written"])
        img = self.ok("image")
        for r in (img or {}).get("runs", []):
            where = "library run()" if r["path"].startswith("library") else "forward"
            row(f"image {r['model']} {r['dtype']} {img['px']} px, {where}", f"{r['frames_per_s']:,.1f} frames/s",
                r["achieved_flop_s"], r["floor_byte_s"])
        v = self.ok("vsvae")
        for mode, r in (v or {}).get("modes", {}).items():
            row(f"VS-VAE {mode} step (batch {v['batch']}, {v['rows']:,} rows)",
                f"{r['step_s_median'] * 1e3:,.2f} ms/step", r["achieved_flop_s"], r["floor_byte_s"])
        d = self.ok("deepiv")
        for loss, f in (d or {}).get("fits", {}).items():
            if f.get("status") != "ok":
                continue
            for stage in ("first", "second"):
                row(f"Deep IV {loss} loss, {stage} stage ({d['rows']:,} rows)",
                    f"{f[stage]['s_per_epoch']:,.3g} s/epoch",
                    f[stage]["achieved_flop_s"], f[stage]["floor_byte_s"])
        return lines

    def print_section(self, figures: dict[str, GpuFigure], videos: int) -> None:
        print(f"GPU benchmarks: {self.path} ({self.doc.get('date_utc')}; GPU: {self.gpu_name}) - {self.tag}")
        smi = (self.doc.get("gpu") or {}).get("nvidia_smi_L")
        if smi:
            print(f"  nvidia-smi: {smi}")
        print(f"GPU rules at {videos:,} videos on one GPU:")
        for rule in ORDER + sorted(GPU_RULES - set(ORDER)):
            if rule not in GPU_RULES or rule == "train_deepiv":
                continue
            fig = figures.get(rule)
            if fig is None:
                print(f"  {rule:<16} -          assumed: CPU fallback (no GPU figure in the benchmark JSON)")
            else:
                print(f"  {rule:<16} {fig.seconds / 3600:>9,.3g} GPU-h  [{fig.source}]\n  {'':<16} {fig.detail}")
        print("each figure beside the H200's limits (bf16 dense 790 TFLOP/s, device copy 4.3 TB/s; FLOPs by "
              "FlopCounterMode, bytes a floor - see benchmarks/gpu_bench.py):")
        for line in self.ratio_lines():
            print(line)
        v = self.ok("vsvae")
        if v:
            bf, fp = v["modes"].get("bf16", {}), v["modes"].get("fp32", {})
            gib = 2 ** 30
            data_gib = v["data_bytes_on_device"] / gib
            mem = ", ".join(f"{m} peak {r['peak_mem_bytes'] / gib:,.1f} GiB (data {data_gib:,.1f})"
                            for m, r in (("bf16", bf), ("fp32", fp)) if r.get("peak_mem_bytes"))
            nan = float("nan")
            rel = v.get("loss_bf16_vs_fp32", {}).get("relative_difference", {}).get("loss", nan)
            print(f"  VS-VAE: epoch {bf.get('epoch_s', nan):,.1f} s bf16 / {fp.get('epoch_s', nan):,.1f}"
                  f" s fp32 on {v['rows']:,} rows; {mem or 'peak memory not measured (CPU)'}; Eq. 16 loss bf16 vs fp32 "
                  f"relative difference {rel:.2e}; fit() in float32 would hold "
                  f"{v['fit_fp32_bytes_needed'] / 1e9:,.1f} GB of features on the device")
        print()


def frames_per_video(runs: list[Run], fallback: float) -> tuple[float, str]:
    """Key frames per video in the runs' image features (frame_embed offsets), else the fallback (assumed)."""
    frames = videos = 0
    for r in runs:
        files = [r.root / "results/features/image.npz"]
        if not files[0].exists():
            files = sorted((r.root / "results/features/shards").glob("image-*.npz"))
        for f in files:
            with np.load(f, allow_pickle=False) as z:
                if "frame_embed__offsets" in z.files:
                    off = z["frame_embed__offsets"]
                    frames += int(off[-1])
                    videos += len(off) - 1
    if videos:
        return frames / videos, f"{frames / videos:.2f} frames/video counted in the runs' image features"
    return fallback, f"assumed: {fallback:g} frames/video (--frames-per-video)"


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
    gpu_source: str = ""     # where the GPU figure comes from ("" for CPU rules)


def model_stage(rule: str, runs: list[Run], gpu_run: Run | None, videos: int, per_shard: int,
                gpu_figures: dict[str, GpuFigure] | None = None) -> Stage:
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
    source = "" if rule not in GPU_RULES else NOT_MEASURED
    if rule in GPU_RULES and gpu_run is not None and rule in gpu_run.rules:
        g = gpu_run.rules[rule]
        gpu_wall = g.wall_s / gpu_run.videos * videos if scaled else g.wall_s
        gpu_h, gpu_wall_job = gpu_wall / 3600, gpu_wall / jobs
        source = f"measured in {gpu_run.root}"
    elif rule in GPU_RULES and gpu_figures is not None:
        if rule in gpu_figures:
            fig = gpu_figures[rule]
            gpu_h, gpu_wall_job, source = fig.seconds / 3600, fig.seconds / jobs, fig.source
        else:
            source = "assumed: CPU fallback (no GPU figure in the benchmark JSON)"
    return Stage(rule, "gpu" if rule in GPU_RULES else "cpu", sizes, jobs, cpu_s / 3600, wall_s / jobs, gpu_h,
                 gpu_wall_job, max(r.rules[rule].max_rss_mb for r in have) / 1024, b_cpu * 1000, scaled, source)


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
    ap.add_argument("--gpu-benchmarks", type=Path,
                    help="benchmarks/gpu.sh's JSON (benchmarks/results/*.json), or a finished run's directory "
                         "measured on a GPU")
    ap.add_argument("--frames-per-video", type=float, default=8.0,
                    help="key frames per video when no run's image features can be counted (assumed; default: "
                         "represent.max_frames)")
    ap.add_argument("--vsvae-epochs", type=int, default=300,
                    help="VS-VAE epochs at the target size (assumed; default: Web Appendix B's 300, an upper bound "
                         "under early stopping)")
    ap.add_argument("--deepiv-epochs", type=int, default=100,
                    help="Deep IV epochs per stage (assumed; default: Web Appendix C's 100, an upper bound)")
    ap.add_argument("--members", type=int, default=10, help="Deep IV ensemble members (config causal.members)")
    ap.add_argument("--min-videos", type=int, default=500,
                    help="a corpus-scaled rule measured only below this size is not extrapolated (job start-up would "
                         "count as per-video work)")
    args = ap.parse_args()

    roots = args.run or [p for p in [REPO, *map(Path, sorted(glob.glob("/tmp/reach-scale-*")))]
                         if (p / "results/ingest/videos.parquet").exists() and (p / "results/benchmarks").is_dir()]
    runs = sorted((read_run(r) for r in roots), key=lambda r: r.videos)
    bench = gpu_run = None
    if args.gpu_benchmarks and args.gpu_benchmarks.is_file():
        bench = GpuBench(args.gpu_benchmarks)
    elif args.gpu_benchmarks:
        gpu_run = read_run(args.gpu_benchmarks)
    figures = None
    if bench is not None:
        figures = bench.figures(args.videos, frames_per_video(runs, args.frames_per_video), args.vsvae_epochs,
                                args.deepiv_epochs, args.members)
        bench.print_section(figures, args.videos)
    if not runs:
        if bench is not None:
            print("no finished run found (this checkout's results/ or /tmp/reach-scale-*; or --run DIR): the CPU "
                  "stages' table needs one, so only the GPU section is shown.")
            return
        raise SystemExit("error: no finished run found (this checkout's results/ or /tmp/reach-scale-*); "
                         "give --run DIR")
    rules = sorted({k for r in runs for k in r.rules}, key=lambda k: (ORDER.index(k) if k in ORDER else len(ORDER), k))

    print("runs measured (benchmark TSVs):")
    for r in runs:
        print(f"  {r.root}: {r.videos:,} videos, {len(r.rules)} rules")
    if bench is not None:
        print(f"GPU rules on a GPU: from {args.gpu_benchmarks} ({bench.tag}); sources per rule below the table")
    else:
        where = f"from {args.gpu_benchmarks}" if gpu_run else (
            NOT_MEASURED + " (no GPU lent; their CPU-fallback costs, measured here, are shown instead)")
        print(f"GPU rules on a GPU: {where}")
    print(f"target: {args.videos:,} videos, shards of {args.videos_per_shard:,} videos "
          f"({math.ceil(args.videos / args.videos_per_shard)} shards), nodes of {args.cores_per_node} cores + "
          f"{args.gpus_per_node} GPU\n")

    too_small = [k for k in rules if k not in CORPUS_INDEPENDENT
                 and max(r.videos for r in runs if k in r.rules) < args.min_videos]
    rules = [k for k in rules if k not in too_small]
    stages = [model_stage(k, runs, gpu_run, args.videos, args.videos_per_shard, figures) for k in rules]
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
                if s.gpu_wall_job_s is None and s.gpu_source.startswith("assumed: CPU fallback"):
                    wall_with_gpu[n] += fallback           # no GPU figure: it runs on the nodes' CPUs
                    walls.append(f"{fallback / 3600:,.2f} h")
                    continue
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
            if s.gpu_h is None and s.gpu_source.startswith("assumed: CPU fallback"):
                pass
            elif s.gpu_h is None:
                totals["gpu_missing"] = True
            else:
                totals["gpu"] += s.gpu_h
        name = s.rule + ("" if s.scaled else " (fixed)") + (" [synth]" if s.rule in SYNTHETIC_ONLY else "")
        cpu_note = hours(s.cpu_h) + ("*" if s.device == "gpu" else "")
        gpu_note = "-" if s.device != "gpu" else ("CPU(a)" if s.gpu_h is None and s.gpu_source.startswith(
            "assumed: CPU") else hours(s.gpu_h) + ("(d)" if bench is not None and bench.dry and s.gpu_h is not None
                                                  else ""))
        print(f"{name:<36}{s.device:<5}{s.sizes:<18}{s.jobs:>6}{s.per_video_ms:>10.1f}{cpu_note:>10}"
              f"{gpu_note:>10}{s.rss_gb:>8.1f}"
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
    print("GPU-h: 'n/m' = " + NOT_MEASURED + "; plug measured figures in with --gpu-benchmarks (gpu.sh's JSON or a "
          "run directory measured on a GPU). CPU(a): assumed to run on the nodes' CPUs (no GPU figure). (d): from a "
          "DRY RUN JSON (CPU, tiny sizes): not a measurement.")
    gpu_stages = [s for s in stages if s.device == "gpu"]
    if gpu_stages and (bench is not None or gpu_run is not None):
        print("GPU-h sources:")
        for s in gpu_stages:
            print(f"  {s.rule}: {s.gpu_source}")

    if too_small:
        print(f"not extrapolated (measured only below {args.min_videos} videos, where job start-up dominates): "
              + ", ".join(too_small))
    print("\ntraining per epoch (CPU fallback, measured here; the table above assumes as many epochs at 518K):")
    for r in runs:
        for rule, epochs in r.epochs.items():
            m = r.rules[rule]
            print(f"  {rule}: {r.videos:,} videos, {epochs} epochs (all members), {m.cpu_s / epochs:,.2f} CPU s and "
                  f"{m.wall_s / epochs:,.2f} wall s per epoch = {m.cpu_s / epochs / r.videos * 1000:,.2f} CPU ms per "
                  f"video-epoch; GPU: {NOT_MEASURED if gpu_run is None and bench is None else 'see --gpu-benchmarks'}")


if __name__ == "__main__":
    main()
