#!/usr/bin/env bash
# codistill on one machine: NP ranks (default 2) split into GROUPS_PER_JOB groups (default 1: sync SGD).
# Usage, from anywhere:  bash jobs/local-train.sh      (NP=4 GROUPS_PER_JOB=2 bash jobs/local-train.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

CODISTILL=${CODISTILL:-$PWD/.build/release/codistill}
NP=${NP:-2}
# Not "GROUPS": bash ignores assignments to its built-in GROUPS variable.
NGROUPS=${GROUPS_PER_JOB:-1}
CKPT=${CKPT_DIR:-$PWD/runs/local}

if ! [[ "$NP" =~ ^[1-9][0-9]*$ && "$NGROUPS" =~ ^[1-9][0-9]*$ ]] || (( NP % NGROUPS != 0 )); then
    echo "local-train: NP=$NP ranks cannot be split into GROUPS_PER_JOB=$NGROUPS equal groups" >&2
    exit 2
fi
[ -x "$CODISTILL" ] || { echo "local-train: no executable at $CODISTILL (run swift build -c release or set CODISTILL)" >&2; exit 2; }
mkdir -p "$CKPT"

# Open MPI refuses to run as root unless told otherwise (containers, CI).
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# In a container without ptrace rights, also:  export OMPI_MCA_btl_vader_single_copy_mechanism=none

args=(train --model cnn --groups "$NGROUPS" --epochs 3 --checkpoint-dir "$CKPT" --resume auto)
# Fashion-MNIST outside /usr/share/datasets/fashion-mnist: DATA_DIR=/path/to/dir bash jobs/local-train.sh
if [ -n "${DATA_DIR:-}" ]; then args+=(--data "$DATA_DIR"); fi

echo "local-train: $NP ranks, $NGROUPS groups, checkpoints in $CKPT"
# --oversubscribe: allow more ranks than cores. --resume auto: after a crash or Ctrl-C, running
# this script again continues from the newest complete checkpoint in $CKPT.
exec mpirun -np "$NP" --oversubscribe "$CODISTILL" "${args[@]}"
