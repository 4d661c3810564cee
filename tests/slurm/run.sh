#!/usr/bin/env bash
# The tiny end-to-end workflow on a real one-node Slurm cluster on localhost, checked against a local run.
#
#   tests/slurm/run.sh [WORKDIR]        (make test-slurm; needs root to install slurm-wlm/munge when missing)
#   REACH_SLURM_REV=HEAD tests/slurm/run.sh   (the committed workflow rather than the working tree)
#
# 1. Installs Debian's slurm-wlm and munge with apt-get when they are missing (root only).
# 2. Starts a private munged (own key and socket), slurmctld and slurmd for a one-node cluster on localhost
#    (CPUs=2, RealMemory from /proc/meminfo), all with state, logs and sockets under WORKDIR.
# 3. Runs tests/tiny_config.yaml (of a snapshot of the workflow and library) through `--executor slurm` with profiles/slurm (made runnable on a node without
#    a GPU, see make_profile below) in WORKDIR/slurm, and locally (profiles/default) in WORKDIR/local.
# 4. Compares the outputs (tests/slurm/compare.py) and stops exactly the daemons it started, by process id.
# Exit status 0 when both runs succeed and their outputs are equal.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PY:-$REPO/.venv/bin/python}"
WORK="${1:-$(mktemp -d /tmp/reach-slurm.XXXXXX)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
CPUS="${SLURM_TEST_CPUS:-2}"
log() { echo "[test-slurm $(date +%H:%M:%S)] $*"; }

# --- 1. tools ---------------------------------------------------------------------------------------------------
missing=""
for t in slurmctld slurmd sbatch squeue munged; do command -v "$t" >/dev/null || missing=1; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing slurm-wlm and munge with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  else
    echo "error: slurm-wlm and munge are missing; as root: apt-get install slurm-wlm munge" >&2
    exit 2
  fi
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: slurmd must run as root to start jobs for this user; run tests/slurm/run.sh as root" >&2
  exit 2
fi

# --- a snapshot of the workflow, so that edits to the checkout during the runs cannot make them differ --------------
# The working tree by default; REACH_SLURM_REV=HEAD (any commit) takes the committed files instead, leaving out
# uncommitted work in a shared checkout.
SNAP="$WORK/workflow"
rm -rf "$SNAP"
mkdir -p "$SNAP/tests"
if [ -n "${REACH_SLURM_REV:-}" ]; then
  git -C "$REPO" archive "$REACH_SLURM_REV" | tar -x -C "$SNAP"
else  # tracked and untracked-but-not-ignored files; files over 5 MB (build debris) are left out
  (cd "$REPO" && git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
    if [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 5000000 ]; then printf '%s\0' "$f"; fi
  done | tar -c --null -T - -f -) | tar -x -C "$SNAP"
fi
find "$SNAP" -name __pycache__ -prune -exec rm -rf {} +
export PYTHONPATH="$SNAP/src${PYTHONPATH:+:$PYTHONPATH}"   # the snapshot's library, ahead of the editable install

# --- 2. a one-node cluster ----------------------------------------------------------------------------------------
PIDS=()
RUN_PID=""
stop_daemons() {
  # Only the processes this script started: a workflow run still going (Snakemake cancels its Slurm jobs on
  # SIGTERM), then the daemons newest first (slurmd, slurmctld, munged).
  local i
  if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null; then
    kill "$RUN_PID" 2>/dev/null || true
    # the private cluster's jobs (SLURM_CONF points at it): all of them are this script's
    if [ -n "${SLURM_CONF:-}" ]; then squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true; fi
    for _ in $(seq 60); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 1; done
    kill -9 "$RUN_PID" 2>/dev/null || true
  fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    if kill -0 "${PIDS[$i]}" 2>/dev/null; then
      kill "${PIDS[$i]}" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.2; done
      kill -0 "${PIDS[$i]}" 2>/dev/null && kill -9 "${PIDS[$i]}" 2>/dev/null || true
    fi
  done
  [ ${#PIDS[@]} -gt 0 ] && log "stopped daemons ${PIDS[*]}"
  PIDS=()
}
trap stop_daemons EXIT
trap 'exit 130' INT TERM

run_workflow() {  # run_workflow DIR LOG ARGS...: one Snakemake run in the background (its pid known to the trap)
  local dir="$1" logfile="$2"
  shift 2
  (cd "$dir" && exec "$@" -d "$dir") >"$logfile" 2>&1 &
  RUN_PID=$!
  local rc=0
  wait "$RUN_PID" || rc=$?
  RUN_PID=""
  return "$rc"
}

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

C="$WORK/cluster"
mkdir -p "$C/munge" "$C/state" "$C/spool"
chmod 700 "$C/munge"
HOST="$(hostname -s)"
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))   # 90%: slurmd drains a node whose
                                                                               # configured memory exceeds what it finds
# A private munge key and socket: nothing of a system munged (if any) is read or changed.
dd if=/dev/urandom of="$C/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$C/munge/munge.key"
munged --foreground --force --key-file="$C/munge/munge.key" --socket="$C/munge/munge.socket" \
  --pid-file="$C/munge/munged.pid" --log-file="$C/munge/munged.log" --seed-file="$C/munge/munged.seed" \
  >"$C/munged.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$C/munge/munge.socket" ] && break; sleep 0.2; done
munge --socket="$C/munge/munge.socket" -n | unmunge --socket="$C/munge/munge.socket" >/dev/null

cat >"$C/slurm.conf" <<EOF
# One node on localhost for tests/slurm/run.sh (written by it).
ClusterName=reachtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$C/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$C/state
SlurmdSpoolDir=$C/spool
SlurmctldPidFile=$C/slurmctld.pid
SlurmdPidFile=$C/slurmd.pid
SlurmctldLogFile=$C/slurmctld.log
SlurmdLogFile=$C/slurmd.log
# No cgroups (containers rarely allow them): processes tracked by parent id, no task binding, no accounting.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
# CPUs are the consumable resource; memory requests are checked against RealMemory but not reserved, so that two
# one-core jobs share the node as they do in the local run.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# Finished jobs stay visible to squeue (the executor's status command here, as there is no slurmdbd for sacct).
MinJobAge=3600
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
# The partition names profiles/slurm asks for; both are this node (it has no GPU: see make_profile).
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$C/slurm.conf"
# The jobstep executor inside each job calls srun with every SLURM_* variable removed (SLURM_CONF included); a real
# cluster's nodes find /etc/slurm/slurm.conf, this private one is found through a srun first on PATH that sets it.
mkdir -p "$C/bin"
printf '#!/bin/sh\nSLURM_CONF="%s" exec "%s" "$@"\n' "$SLURM_CONF" "$(command -v srun)" >"$C/bin/srun"
chmod +x "$C/bin/srun"
export PATH="$C/bin:$PATH"

slurmctld -D -i -f "$SLURM_CONF" >"$C/slurmctld.out" 2>&1 &
PIDS+=($!)
sleep 2
slurmd -D -f "$SLURM_CONF" >"$C/slurmd.out" 2>&1 &
PIDS+=($!)
state=""
for _ in $(seq 60); do
  state="$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1 || true)"
  [ "$state" = idle ] && break
  case "$state" in down*|drain*) scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true ;; esac
  sleep 1
done
if [ "$state" != idle ]; then
  echo "error: node $HOST did not come up (state '$state'); see $C/slurmctld.log and $C/slurmd.log" >&2
  exit 1
fi
log "cluster up: node $HOST, $CPUS CPUs, $MEM_MB MB; daemons ${PIDS[*]}; SLURM_CONF=$SLURM_CONF"

# --- 3. the runs ---------------------------------------------------------------------------------------------------
# profiles/slurm as it is, except what this GPU-less test node cannot give: gpu=0 and no cpus_per_gpu (a GPU
# request is refused here), memory requests capped at the node's RealMemory, squeue for status (no
# slurmdbd), no account, and short polling intervals.
"$PY" - "$SNAP/profiles/slurm/profile.yaml" "$WORK/profile/profile.yaml" "$MEM_MB" <<'EOF'
import re
import sys
from pathlib import Path

import yaml

src, dst, mem = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
profile = yaml.safe_load(open(src))
# Rules that declare `gpu=` themselves but are not (yet) in the profile get gpu=0 too.
rule = None
for smk in sorted(Path(src).parents[2].glob("rules/*.smk")):
    for line in smk.read_text().splitlines():
        if line.startswith("rule ") or line.startswith("checkpoint "):
            rule = line.split()[1].rstrip(":")
        elif rule and re.match(r"\s+gpu\s*=", line):
            profile["set-resources"].setdefault(rule, {})["gpu"] = 1
for res in [profile["default-resources"], *profile["set-resources"].values()]:
    if "gpu" in res:  # gpu=0 (not just absent) also overrides the rules' own `resources: gpu=1`
        res["gpu"] = 0
    res.pop("cpus_per_gpu", None)
    if "mem_mb" in res:
        res["mem_mb"] = f"min({res['mem_mb']}, {mem})"
profile.update({"slurm-status-command": "squeue", "slurm-no-account": True,
                "slurm-init-seconds-before-status-checks": 5, "slurm-keep-successful-logs": True})
dst.parent.mkdir(parents=True, exist_ok=True)
dst.write_text(yaml.safe_dump(profile, sort_keys=False))
EOF

SMK=("$PY" -m snakemake -s "$SNAP/Snakefile" --configfile "$SNAP/tests/tiny_config.yaml")
mkdir -p "$WORK/slurm" "$WORK/local"
t0=$(date +%s)
log "Slurm run in $WORK/slurm (log: $WORK/slurm.log)"
if ! run_workflow "$WORK/slurm" "$WORK/slurm.log" "${SMK[@]}" --workflow-profile "$WORK/profile"; then
  tail -40 "$WORK/slurm.log" >&2
  echo "error: the Slurm run failed; see $WORK/slurm.log and $WORK/slurm/.snakemake/slurm_logs" >&2
  exit 1
fi
t1=$(date +%s)
n_jobs=$(grep -c "Job .* has been submitted with SLURM jobid" "$WORK/slurm.log" || true)
log "Slurm run done in $((t1 - t0)) s ($n_jobs sbatch jobs)"
log "local run in $WORK/local (log: $WORK/local.log)"
if ! run_workflow "$WORK/local" "$WORK/local.log" "${SMK[@]}" --cores "$CPUS"; then
  tail -40 "$WORK/local.log" >&2
  echo "error: the local run failed; see $WORK/local.log" >&2
  exit 1
fi
t2=$(date +%s)
log "local run done in $((t2 - t1)) s"
job_states=$(squeue -h --states=all -o "%T" | sort | uniq -c | tr -s ' \n' ' ')
log "Slurm jobs by final state:$job_states"

# --- 4. compare, then the daemons stop (trap) ------------------------------------------------------------------
"$PY" "$REPO/tests/slurm/compare.py" "$WORK/slurm" "$WORK/local" | tee "$WORK/compare.txt"
log "PASS: the Slurm run's outputs equal the local run's (slurm $((t1 - t0)) s, local $((t2 - t1)) s)"
