#!/usr/bin/env bash
# The GPU rules measured on one GPU (issue 20), as ONE prepared script for the lent H200 (at most 8 minutes).
#
#   bash benchmarks/gpu.sh --prepare          # here, once: build the missing wheel into .whl/ (git-ignored)
#   bash benchmarks/gpu.sh --dry-run          # here: every step on the CPU at tiny sizes (a rehearsal, not a measurement)
#   bash benchmarks/gpu.sh --out "$OUT"       # there: the measurement; writes gpu-bench.json and gpu-bench.log
#   bash benchmarks/gpu.sh --out "$OUT" --only vsvae,cuda_tests   # a rerun of some steps (the others: "missing")
#
# On the GPU machine (device tool `run`, carry [".whl"], timeout_s 500):
#   bash benchmarks/gpu.sh --out "$OUT"
# It uses that machine's own python3 (PyTorch + CUDA, pandas, pyarrow, scipy, safetensors, pytest there) with
# PYTHONPATH=src; the only package it lacks that the benchmarked code imports is efficientnet_pytorch (the
# EfficientNet-Lite0 blocks of reach.features.image), carried as a wheel in .whl/ and installed to /tmp/site.
# Snakemake, PyAV and the packaged model weights are not needed: the models get random weights.
#
# Steps, each a separate process under a hard `timeout` (budget + start-up grace), so one failure or overrun costs
# only its own figures: env (GPU description, measured ceilings) 25 s, image 70 s, vsvae 130 s, deepiv 100 s,
# cuda_tests 60 s; worst case with the grace ~7.4 min. Figures: benchmarks/gpu_bench.py's docstring.
set -u
cd "$(dirname "$0")/.."
DRY=0
OUT_DIR=""
PREPARE=0
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT_DIR="$2"; shift ;;
    --prepare) PREPARE=1 ;;
    --only) ONLY=",$2,"; shift ;;
    -h|--help) sed -n 2,18p "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)"; exit 2 ;;
  esac
  shift
done

WHEELS=(efficientnet_pytorch==0.7.1)   # requirements.txt's pin; pure Python (py3-none-any)
if [ "$PREPARE" = 1 ]; then
  mkdir -p .git/info .whl
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  PIP=python3; [ -x .venv/bin/python ] && PIP=.venv/bin/python
  $PIP -m pip wheel -q --no-deps -w .whl "${WHEELS[@]}" || exit 1
  ls -l .whl
  exit 0
fi

if [ -z "$OUT_DIR" ]; then
  if [ "$DRY" = 1 ]; then OUT_DIR=benchmarks/results/dry-run; else OUT_DIR="${OUT:-benchmarks/results/run}"; fi
fi
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
LOG="$OUT_DIR/gpu-bench.log"
PARTS=$(mktemp -d /tmp/gpu-bench-parts.XXXXXX)   # step JSONs stay out of $OUT (at most 8 files come back)

if [ "$DRY" = 1 ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
PY=${GPU_BENCH_PYTHON:-$PY}   # e.g. a python that sees only the GPU machine's packages, to rehearse with those
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
if [ "$DRY" = 0 ] && ls .whl/*.whl >/dev/null 2>&1; then
  if ! "$PY" -c "import efficientnet_pytorch" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || echo "warning: could not install the carried wheels"
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
  fi
fi
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE

{
  echo "== benchmarks/gpu.sh $( [ "$DRY" = 1 ] && echo '--dry-run (CPU, tiny sizes: NOT a measurement)' ) $(date -u +%FT%TZ)"
  echo "python: $("$PY" -c 'import sys, torch; print(sys.executable, sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' 2>&1)"
  command -v nvidia-smi >/dev/null && nvidia-smi -L
  git log -1 --format='commit %H %cI' 2>/dev/null || true
} 2>&1 | tee "$LOG"

run_step() {   # name budget grace
  local name=$1 budget=$2 grace=$3 dry_budget=$4 args=()
  if [ -n "$ONLY" ] && [[ "$ONLY" != *",$name,"* ]]; then return; fi
  # dry run: small loop budgets, generous hard limits (the CPUs here are shared and often loaded)
  if [ "$DRY" = 1 ]; then args=(--dry-run); budget=$dry_budget; grace=150; fi
  echo "-- step $name (budget ${budget} s, hard limit $((budget + grace)) s)" | tee -a "$LOG"
  timeout -k 5 $((budget + grace)) "$PY" benchmarks/gpu_bench.py "$name" --out "$PARTS/$name.json" \
    --budget "$budget" "${args[@]}" >>"$LOG" 2>&1
  local rc=$?
  echo "$rc" > "$PARTS/$name.rc"
  echo "   $(tail -n 1 "$LOG") (rc=$rc)" | tee -a "$LOG"
}

SECONDS=0
run_step env 25 10 10
run_step image 70 15 20
run_step vsvae 130 15 40
run_step deepiv 100 15 40
run_step cuda_tests 60 10 60
"$PY" benchmarks/gpu_bench.py merge --parts "$PARTS" --out "$OUT_DIR/gpu-bench.json" 2>&1 | tee -a "$LOG"
echo "total ${SECONDS} s; wrote $OUT_DIR/gpu-bench.json and $LOG" | tee -a "$LOG"
rm -rf "$PARTS"
# exit status: 0 when every step finished ok
"$PY" -c "import json, sys; d = json.load(open(sys.argv[1])); bad = [k for k, v in d['steps'].items() if v.get('status') not in ('ok', 'not run')]; print('steps not ok:', bad) if bad else None; sys.exit(1 if bad else 0)" "$OUT_DIR/gpu-bench.json"
