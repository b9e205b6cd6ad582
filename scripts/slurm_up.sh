#!/usr/bin/env bash
# Bring up a private single-node SLURM on this machine (for the tests and for
# trying `vssl sweep --cluster slurm` without a cluster).
#
#   SLURM_BASE=/tmp/vssl-slurm bash scripts/slurm_up.sh      # then: source $SLURM_BASE/env.sh
#   SLURM_BASE=/tmp/vssl-slurm bash scripts/slurm_down.sh    # stops every daemon by PID
#
# Debian/Ubuntu packages (slurmctld, slurmd, munge, slurmdbd, MariaDB), root,
# no systemd needed. Everything (config, state, logs, sockets, pids, database)
# lives under $SLURM_BASE, so several instances can coexist: ports are picked
# free at start unless SLURM_PORT_BASE is set (it uses 4 consecutive ports).
# Accounting (MariaDB + slurmdbd on loopback) is always on: submitit reads job
# states only through `sacct`; without it failed or timed-out jobs hang forever.
#
# Exit status: 0 up (or already up); 3 cannot run here (not root / no apt / not
# Debian): callers treat that as "no SLURM on this machine"; anything else: a
# real failure (the last lines of the daemons' logs are printed).
set -euo pipefail

B=${SLURM_BASE:-/tmp/vssl-slurm}
PKGS="slurmctld slurmd slurm-client munge slurmdbd mariadb-server"
export SLURM_CONF=$B/etc/slurm.conf

cannot() { echo "slurm_up: $*" >&2; exit 3; }
fail() {
  echo "slurm_up: $*" >&2
  for f in "$B"/log/*.log "$B"/log/*.err "$B"/munge/munged.log; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 5 "$f" >&2; }
  done
  exit 1
}
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() {  # wait_for TRIES CMD...: retry every 0.2 s
  local tries=$1; shift
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Unix sockets live under $B: their paths must stay under ~100 characters.
[ ${#B} -le 80 ] || cannot "SLURM_BASE path is too long for unix sockets (${#B} > 80 characters): $B"

if alive "$B/run/slurmctld.pid" && alive "$B/run/slurmd.pid"; then
  echo "slurm_up: already up under $B"
  echo "export SLURM_CONF=$SLURM_CONF"
  exit 0
fi

# ---------------------------------------------------------------- 0. packages
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || cannot "SLURM is not installed and there is no apt-get to install it (needs: $PKGS)"
  [ "$(id -u)" = 0 ] || cannot "SLURM is not installed; installing it needs root (apt-get install $PKGS)"
  echo "slurm_up: installing $PKGS" >&2
  apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PKGS >/dev/null || fail "apt-get install failed"
fi
[ "$(id -u)" = 0 ] || cannot "the daemons run as root here (SlurmUser=root); run as root"

# A previous instance under $B that died half-way leaves sockets and pids behind.
bash "$(dirname "$0")/slurm_down.sh" >/dev/null 2>&1 || true
rm -f "$B"/munge/munge.socket* "$B"/mysql/mysqld.sock "$B"/run/*.pid

mkdir -p "$B"/etc "$B"/state "$B"/spool "$B"/log "$B"/run "$B"/munge "$B"/mysql
chmod 755 "$B" "$B/munge"   # munged wants its socket folder o+x and its key folder not o+w

# ---------------------------------------------------------------- ports
if [ -n "${SLURM_PORT_BASE:-}" ]; then
  P=$SLURM_PORT_BASE
else
  P=""
  for _ in $(seq 50); do
    c=$(( 20000 + (RANDOM % 2000) * 4 ))
    if port_free $c && port_free $((c + 1)) && port_free $((c + 2)) && port_free $((c + 3)); then P=$c; break; fi
  done
  [ -n "$P" ] || fail "no 4 free consecutive ports found in 20000-28000"
fi
CTLD_PORT=$P; SLURMD_PORT=$((P + 1)); DBD_PORT=$((P + 2)); DB_PORT=$((P + 3))

# ---------------------------------------------------------------- 1. munge
[ -f "$B/munge/munge.key" ] || mungekey -c -k "$B/munge/munge.key"
chmod 600 "$B/munge/munge.key"
munged --key-file="$B/munge/munge.key" --socket="$B/munge/munge.socket" \
       --pid-file="$B/munge/munged.pid" --log-file="$B/munge/munged.log" \
       --seed-file="$B/munge/munged.seed" || fail "munged did not start"

# ---------------------------------------------------------------- 2. MariaDB + slurmdbd
if [ ! -d "$B/mysql/data/mysql" ]; then
  mariadb-install-db --user=root --datadir="$B/mysql/data" --auth-root-authentication-method=socket \
      --skip-test-db >"$B/log/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed"
fi
setsid mariadbd --no-defaults --user=root --datadir="$B/mysql/data" \
    --socket="$B/mysql/mysqld.sock" --bind-address=127.0.0.1 --port=$DB_PORT \
    --pid-file="$B/mysql/mariadbd.pid" --log-error="$B/log/mariadbd.err" \
    --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
wait_for 150 mariadb-admin --no-defaults -S "$B/mysql/mysqld.sock" -u root ping || fail "MariaDB did not start"
mariadb --no-defaults -S "$B/mysql/mysqld.sock" -u root -e "
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
  CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || fail "could not create the accounting database user"

cat >"$B/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$B/munge/munge.socket
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$B/run/slurmdbd.pid
LogFile=$B/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
chmod 600 "$B/etc/slurmdbd.conf"   # slurmdbd refuses a readable one; it is found beside $SLURM_CONF
slurmdbd || fail "slurmdbd did not start"
wait_for 150 bash -c "exec 3<>/dev/tcp/127.0.0.1/$DBD_PORT" || fail "slurmdbd is not listening on $DBD_PORT"

# ---------------------------------------------------------------- 3. slurm.conf
HOST=$(hostname -s)
MEM=$(( $(free -m | awk '/^Mem:/{print $2}') - 1024 ))
# The node line as slurmd sees the hardware, with 1 GiB left to the system. SLURM_CPUS=N declares N
# cores instead (oversubscribing on purpose: the tests' jobs mostly wait, and should run side by side).
NODE=$(slurmd -C | head -1 | sed -E "s/RealMemory=[0-9]+/RealMemory=$MEM/")
OVERRIDES=""
if [ -n "${SLURM_CPUS:-}" ]; then
  NODE="NodeName=$(hostname -s) CPUs=$SLURM_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$SLURM_CPUS ThreadsPerCore=1 RealMemory=$MEM"
  OVERRIDES="SlurmdParameters=config_overrides"
fi
cat >"$SLURM_CONF" <<EOF
ClusterName=vssl
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire=10: a requeued job restarts after ~10 s rather than ~2 min
AuthInfo=socket=$B/munge/munge.socket,cred_expire=10
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
StateSaveLocation=$B/state
SlurmdSpoolDir=$B/spool
SlurmctldPidFile=$B/run/slurmctld.pid
SlurmdPidFile=$B/run/slurmd.pid
SlurmctldLogFile=$B/log/slurmctld.log
SlurmdLogFile=$B/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# slurmctld -> slurmdbd ignores AuthInfo's socket; this is where it finds munge
AccountingStoragePass=$B/munge/munge.socket
JobCompType=jobcomp/none
MailProg=/bin/true
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without it a job with no --mem takes the whole node
DefMemPerCPU=512
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
$OVERRIDES
$NODE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# ---------------------------------------------------------------- 4. controller + node daemon
slurmctld || fail "slurmctld did not start"
wait_for 150 bash -c "scontrol ping | grep -q UP" || fail "slurmctld does not answer"
slurmd || fail "slurmd did not start"
wait_for 200 bash -c '[ "$(sinfo -h -N -o %T)" = idle ]' || fail "the node did not become idle: $(sinfo -h -N -o '%T %E' 2>&1)"

echo "export SLURM_CONF=$SLURM_CONF" >"$B/env.sh"
sinfo
echo "slurm_up: up under $B (ports $CTLD_PORT-$DB_PORT); use it with:"
echo "export SLURM_CONF=$SLURM_CONF"
