#!/usr/bin/env bash
# Stop the private SLURM started by scripts/slurm_up.sh under $SLURM_BASE:
# cancel its jobs, then stop each daemon by the PID it recorded (reverse start
# order). `--purge` also deletes $SLURM_BASE (config, state, database, logs).
set -uo pipefail
B=${SLURM_BASE:-/tmp/vssl-slurm}
export SLURM_CONF=$B/etc/slurm.conf

# Jobs first, so that no job step outlives its slurmd.
if [ -s "$B/run/slurmctld.pid" ] && kill -0 "$(cat "$B/run/slurmctld.pid")" 2>/dev/null; then
  scancel --user="$(id -un)" >/dev/null 2>&1
  for _ in $(seq 50); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
fi

# TERM to every daemon at once (slurmd first), then wait for each; KILL what outlives 10 s.
pids=()
for f in "$B/run/slurmd.pid" "$B/run/slurmctld.pid" "$B/run/slurmdbd.pid" "$B/mysql/mariadbd.pid" "$B/munge/munged.pid"; do
  [ -s "$f" ] || continue
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    pids+=("$pid")
    echo "stopping $(basename "$f" .pid) ($pid)"
  fi
  rm -f "$f"
done
for pid in "${pids[@]}"; do
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
done
rm -f "$B/munge/munge.socket" "$B/munge/munge.socket.lock"

if [ "${1:-}" = "--purge" ]; then
  rm -rf "$B"
  echo "removed $B"
fi
exit 0
