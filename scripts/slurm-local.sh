#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for the Slurm executor's tests (and for trying
# `lesionseg experiment --executor slurm` on one machine).
#
#   bash scripts/slurm-local.sh start   # install slurm-wlm if missing (root), write slurm.conf, start
#                                       # slurmctld and slurmd, wait until the node is idle; prints
#                                       # the line to export (SLURM_CONF=...) on stdout
#   bash scripts/slurm-local.sh stop    # stop both daemons (by the pids they wrote) and remove the state
#   bash scripts/slurm-local.sh status  # exit 0 when the cluster answers
#
# Everything lives in one state folder (LESIONSEG_SLURM_DIR, default /tmp/lesionseg-slurm): the
# config, the daemons' state, pid and log files, and the job-completion file that `sacct -c`
# reads (no slurmdbd). Authentication is off (auth/none, cred/none), processes are tracked by
# parent pid (no cgroups), and the daemons run as root without systemd, at nice 19 (so do the
# jobs they start). Ports: LESIONSEG_SLURM_PORT (slurmctld, default 6817) and the next one (slurmd).
set -euo pipefail

STATE=${LESIONSEG_SLURM_DIR:-/tmp/lesionseg-slurm}
PORT=${LESIONSEG_SLURM_PORT:-6817}
CONF=$STATE/slurm.conf
export SLURM_CONF=$CONF

log() { echo "slurm-local: $*" >&2; }

install_slurm() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null; then return; fi
  if [ "$(id -u)" != 0 ]; then log "slurm-wlm is not installed and this is not root: cannot install it"; exit 3; fi
  log "installing slurm-wlm (apt-get)"
  DEBIAN_FRONTEND=noninteractive nice -n 19 apt-get install -y -q slurm-wlm >"$STATE/apt.log" 2>&1 || {
    DEBIAN_FRONTEND=noninteractive nice -n 19 apt-get update -q >>"$STATE/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive nice -n 19 apt-get install -y -q slurm-wlm >>"$STATE/apt.log" 2>&1
  } || { log "apt-get install slurm-wlm failed (see $STATE/apt.log)"; exit 3; }
}

write_conf() {
  local host cpus mem_mb
  host=$(hostname -s)
  cpus=$(nproc)
  # RealMemory a bit under MemTotal (slurmd drains a node that reports less than configured).
  mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
  mkdir -p "$STATE/ctld" "$STATE/d" "$STATE/log"
  cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: a one-node cluster on localhost for tests.
ClusterName=lesionseg-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.txt
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ReturnToService=2
KillWait=10
MinJobAge=600
SchedulerType=sched/backfill
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

running() { sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; }

start() {
  mkdir -p "$STATE"
  install_slurm
  if [ -f "$STATE/slurmctld.pid" ] && kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null && running; then
    log "already running ($CONF)"
    echo "export SLURM_CONF=$CONF"
    return
  fi
  if [ "$(id -u)" != 0 ]; then log "the daemons run as root here, and this is not root"; exit 3; fi
  stop_daemons
  rm -rf "$STATE/ctld" "$STATE/d" "$STATE/jobcomp.txt"
  write_conf
  # -c: a clean start (no saved jobs); -i: ignore state files from an earlier cluster.
  nice -n 19 slurmctld -c -f "$CONF"
  nice -n 19 slurmd -c -f "$CONF"
  for _ in $(seq 1 60); do
    if running; then
      log "node $(hostname -s) idle ($CONF)"
      echo "export SLURM_CONF=$CONF"
      return
    fi
    sleep 0.5
  done
  log "the node did not become idle within 30 s; sinfo says: $(sinfo -h 2>&1 | head -3)"
  tail -5 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
  stop_daemons
  exit 4
}

# Stop the daemons this script started, by the pids they wrote, and wait until they are gone.
stop_daemons() {
  local name pid
  for name in slurmd slurmctld; do
    [ -f "$STATE/$name.pid" ] || continue
    pid=$(cat "$STATE/$name.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/$name.pid"
  done
}

stop() {
  # Cancel what is still queued or running first, so no job outlives the cluster.
  if [ -f "$CONF" ] && running; then scancel --full --quiet -u "$(id -un)" 2>/dev/null || true; sleep 1; fi
  stop_daemons
  case "$STATE" in /tmp/*|*/lesionseg-slurm*) rm -rf "$STATE" ;; *) log "state folder $STATE left in place (not under /tmp)";; esac
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) running ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
