#!/usr/bin/env bash
# Two independent mpirun jobs that codistill with each other through files: each job is one group
# (sync SGD among its own ranks), and the two meet only in a shared --peer-dir. Either can die
# and be restarted on its own with --resume auto. On a cluster they would be two separate batch
# jobs, perhaps on different machines, with PEER_DIR on a shared file system. Here both run in
# the background on this machine.
#
# Each job publishes into PEER_DIR/<its checkpoint dir's name>/ and reads every other folder there.
# Give the jobs different seeds: the seed sets the initial weights and the data order.
#
# Usage:  bash jobs/file-exchange-two-jobs.sh        (NP=2 ranks per job by default)
set -euo pipefail
cd "$(dirname "$0")/.."

CODISTILL=${CODISTILL:-$PWD/.build/release/codistill}
NP=${NP:-2}
RUN_DIR=${RUN_DIR:-$PWD/runs/file-exchange}
PEER_DIR=${PEER_DIR:-$RUN_DIR/peers}

[ -x "$CODISTILL" ] || { echo "file-exchange: no executable at $CODISTILL (run swift build -c release or set CODISTILL)" >&2; exit 2; }
mkdir -p "$PEER_DIR" "$RUN_DIR/group0" "$RUN_DIR/group1"

if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

args=(train --model cnn --groups 1 --epochs 3 --exchange files --peer-dir "$PEER_DIR" --resume auto)
if [ -n "${DATA_DIR:-}" ]; then args+=(--data "$DATA_DIR"); fi

# --bind-to none: two mpiruns on one machine would otherwise both pin their ranks to cores 0..NP-1.
# Each job has its own checkpoint dir; only the peer dir is shared.
# Group 0:
mpirun -np "$NP" --oversubscribe --bind-to none "$CODISTILL" "${args[@]}" \
    --checkpoint-dir "$RUN_DIR/group0" --seed 1 > "$RUN_DIR/group0.log" 2>&1 &
pid0=$!
# Group 1:
mpirun -np "$NP" --oversubscribe --bind-to none "$CODISTILL" "${args[@]}" \
    --checkpoint-dir "$RUN_DIR/group1" --seed 2 > "$RUN_DIR/group1.log" 2>&1 &
pid1=$!
echo "file-exchange: group 0 (pid $pid0) and group 1 (pid $pid1) running;" \
     "logs in $RUN_DIR/group{0,1}.log, peer files in $PEER_DIR"

# If one job dies (kill it, or lose its node), restart just that one with the same command; with
# --resume auto it continues from the newest complete checkpoint in its own dir, e.g.:
#   mpirun -np 2 --oversubscribe --bind-to none .build/release/codistill train --model cnn --groups 1 \
#       --epochs 3 --exchange files --peer-dir runs/file-exchange/peers \
#       --checkpoint-dir runs/file-exchange/group1 --seed 2 --resume auto
# The other job does not need to be stopped for this.

status=0
wait "$pid0" || { echo "file-exchange: group 0 exited with status $?" >&2; status=1; }
wait "$pid1" || { echo "file-exchange: group 1 exited with status $?" >&2; status=1; }
exit "$status"
