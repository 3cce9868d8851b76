#!/usr/bin/env bash
# A one-node SLURM cluster in a directory of your choosing, for tests and for trying the job
# scripts in jobs/ on one machine. Needs Debian's slurm-wlm and munge (or the same daemons
# elsewhere on PATH) and root (SlurmUser=root, SlurmdUser=root).
#
#   bash scripts/slurm-cluster.sh start DIR   # writes DIR/slurm.conf, starts munged, slurmctld, slurmd
#   export SLURM_CONF=DIR/slurm.conf          # so that sbatch, squeue, scontrol, srun find it
#   bash scripts/slurm-cluster.sh stop DIR    # cancels jobs, stops the daemons by their pid files
#   bash scripts/slurm-cluster.sh status DIR  # sinfo, squeue
#
# Everything lives under DIR: slurm.conf, the munge key and socket, state, spool,
# logs (DIR/log/*.log) and pid files (DIR/run/*.pid). Nothing under /etc, /var or /run is
# touched, so several clusters (e.g. from concurrent test runs) can run on one machine: each gets
# its own free ports. "stop" works whatever state "start" reached and removes nothing, so the
# logs stay for a post-mortem; delete DIR yourself.
#
# Environment: SLURM_CLUSTER_NAME (default codistill), SLURM_CLUSTER_PARTITION (default debug),
# SLURM_CLUSTER_WAIT (seconds to wait for the node to become idle, default 60).
set -euo pipefail

usage() { echo "usage: $0 start DIR | stop DIR | status DIR" >&2; exit 64; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF
# Marks every process this cluster's daemons start (slurmstepd and, through it, batch scripts), so
# that stop can find the ones slurmd leaves behind (slurmstepd detaches from slurmd).
MARK="CODISTILL_SLURM_CLUSTER=$DIR"

log() { echo "slurm-cluster: $*" >&2; }

# A TCP port nobody listens on (ss lists the listening ones).
free_port() {
    local used port
    used=$(ss -Htanl 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
    for _ in $(seq 200); do
        port=$(( 20000 + RANDOM % 30000 ))
        if ! grep -qx "$port" <<<"$used" && ! grep -q "=$port\$" "$DIR/ports" 2>/dev/null; then
            echo "$port"; return 0
        fi
    done
    log "no free port found"; return 1
}

# Whether a process runs. A zombie does not count: where pid 1 does not reap orphans (some
# containers), a killed daemon stays a zombie and kill -0 still succeeds.
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

pid_of() {  # the pid in DIR/run/$1.pid if that process is alive
    local f=$DIR/run/$1.pid pid
    [ -s "$f" ] || return 1
    pid=$(tr -dc '0-9' < "$f")
    [ -n "$pid" ] && alive "$pid" && echo "$pid"
}

# Processes whose environment carries this cluster's mark (not this script itself), and every
# descendant of those (the batch script and job steps do not inherit slurmstepd's environment).
marked_pids() {
    local p marked=()
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = $$ ] && continue
        if grep -qzxF "$MARK" "/proc/$p/environ" 2>/dev/null; then marked+=("$p"); fi
    done
    [ ${#marked[@]} -gt 0 ] || return 0
    ps -e -o pid=,ppid= | awk -v roots="${marked[*]}" '
        { parent[$1] = $2 }
        END {
            n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1
            changed = 1
            while (changed) { changed = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
            for (p in keep) if (p in parent) print p
        }'
}

stop_pid() {  # stop_pid NAME PID: TERM, up to 10 s, then KILL
    local name=$1 pid=$2
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do alive "$pid" || { log "stopped $name (pid $pid)"; return 0; }; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    log "killed $name (pid $pid): it ignored SIGTERM for 10 s"
}

write_conf() {
    local host node cpus mem ctld_port slurmd_port
    host=$(hostname -s)
    # slurmd -C prints this machine as slurmd sees it, e.g.
    # NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
    node=$(slurmd -C | head -n 1)
    cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node")
    mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    if [ -z "$cpus" ] || [ -z "$mem" ]; then log "cannot read CPUs/RealMemory from slurmd -C: $node"; exit 1; fi
    # The whole topology (Boards, SocketsPerBoard, CoresPerSocket, ThreadsPerCore): with CPUs alone
    # slurmd logs "Node reconfigured socket/core boundaries SocketsPerBoard=2:1(hw)".
    node="NodeName=$host ${node#NodeName=* }"
    : > "$DIR/ports"
    ctld_port=$(free_port); echo "ctld=$ctld_port" >> "$DIR/ports"
    slurmd_port=$(free_port); echo "slurmd=$slurmd_port" >> "$DIR/ports"
    cat > "$CONF" <<EOF
# Written by scripts/slurm-cluster.sh: a one-node cluster whose files all live in $DIR.
ClusterName=${SLURM_CLUSTER_NAME:-codistill}
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=5
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: the processes of a job are found through their parent pids.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
# Schedule often: a requeued or newly eligible job starts within a second or two.
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# A node that was down comes back by itself when its slurmd registers again.
ReturnToService=2
# Seconds between SIGTERM and SIGKILL when a job is cancelled or reaches its time limit.
KillWait=10
MinJobAge=600
MailProg=/bin/true
$node State=UNKNOWN
PartitionName=${SLURM_CLUSTER_PARTITION:-debug} Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    if pid_of slurmctld >/dev/null || pid_of slurmd >/dev/null || pid_of munged >/dev/null; then
        log "a cluster is already running in $DIR (stop it first)"; exit 1
    fi
    for tool in munged slurmctld slurmd sinfo; do
        command -v "$tool" >/dev/null || { log "$tool not found (Debian: apt-get install slurm-wlm munge)"; exit 1; }
    done
    mkdir -p "$DIR"/{state,spool,log,run,munge}
    chmod 0700 "$DIR/munge"
    write_conf

    # munge: its own key, socket, pid, log and seed files, so the system munged (if any) is not involved.
    if [ ! -s "$DIR/munge/munge.key" ]; then
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 0400 "$DIR/munge/munge.key"
    env "$MARK" munged --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed" --force </dev/null >>"$DIR/log/daemons.out" 2>&1 ||
        { log "munged failed to start; $DIR/log/munged.log:"; cat "$DIR/log/munged.log" >&2 || true; exit 1; }

    # -i: ignore (there is no) saved state. Both daemonise and write their pid files. The
    # daemons' standard streams go to a file: a daemon holding this script's stdout open would
    # make whoever reads it (e.g. out=$(slurm-cluster.sh start DIR), a test) wait forever.
    env "$MARK" slurmctld -f "$CONF" -i </dev/null >>"$DIR/log/daemons.out" 2>&1 ||
        { log "slurmctld failed to start; $DIR/log/slurmctld.log:"; tail -n 30 "$DIR/log/slurmctld.log" >&2 || true; exit 1; }
    env "$MARK" slurmd -f "$CONF" </dev/null >>"$DIR/log/daemons.out" 2>&1 ||
        { log "slurmd failed to start; $DIR/log/slurmd.log:"; tail -n 30 "$DIR/log/slurmd.log" >&2 || true; exit 1; }

    local wait=${SLURM_CLUSTER_WAIT:-60} state=""
    for _ in $(seq $(( wait * 5 ))); do
        state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)
        [ "$state" = idle ] && break
        sleep 0.2
    done
    if [ "$state" != idle ]; then
        log "the node is not idle after ${wait} s (state: '${state:-no answer}'); logs in $DIR/log"
        tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
        exit 1
    fi
    log "cluster up in $DIR: munged $(pid_of munged), slurmctld $(pid_of slurmctld), slurmd $(pid_of slurmd);" \
        "export SLURM_CONF=$CONF"
}

stop() {
    local pid
    # Cancel what is still queued or running while slurmctld and slurmd can still clean up.
    if pid_of slurmctld >/dev/null && [ -f "$CONF" ]; then
        local jobs
        jobs=$(timeout 10 squeue -h -o '%i' 2>/dev/null || true)
        if [ -n "$jobs" ]; then
            log "cancelling jobs: $(echo "$jobs" | tr '\n' ' ')"
            # shellcheck disable=SC2086  # one job id per word
            timeout 10 scancel $jobs 2>/dev/null || true
            for _ in $(seq 100); do
                [ -z "$(timeout 5 squeue -h -o '%i' 2>/dev/null || true)" ] && break
                sleep 0.2
            done
        fi
    fi
    for name in slurmd slurmctld munged; do
        if pid=$(pid_of "$name"); then stop_pid "$name" "$pid"; fi
    done
    # slurmstepd and the job processes under it outlive slurmd; they carry the mark in their
    # environment. Stop them too (they are ours: started by this cluster's slurmd).
    local left
    left=$(marked_pids)
    if [ -n "$left" ]; then
        log "stopping leftover processes of this cluster: $(echo "$left" | tr '\n' ' ')"
        # shellcheck disable=SC2086
        kill -TERM $left 2>/dev/null || true
        sleep 2
        left=$(marked_pids)
        # shellcheck disable=SC2086
        [ -z "$left" ] || kill -KILL $left 2>/dev/null || true
    fi
    rm -f "$DIR/munge/munge.socket" "$DIR/munge/munge.socket.lock"
    log "stopped (files kept in $DIR)"
}

status() {
    sinfo || true
    squeue || true
}

case $cmd in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) usage ;;
esac
