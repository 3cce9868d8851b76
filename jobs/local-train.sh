#!/usr/bin/env bash
# codistill on one machine: NP ranks (default 2) split into GROUPS_PER_JOB groups (default 2: two
# codistilling groups of one rank each; GROUPS_PER_JOB=1 is the sync-SGD baseline).
# Ends by printing each group's test accuracy, the churn between the two groups and, once a
# baseline run exists, its accuracy next to them.
# Usage, from anywhere:  bash jobs/local-train.sh
#   the baseline:        GROUPS_PER_JOB=1 bash jobs/local-train.sh      (checkpoints in runs/local-sync)
# Edit: NP, GROUPS_PER_JOB, MODEL, EPOCHS, BURN_IN, CKPT_DIR, DATA_DIR, TRAIN_ARGS (extra codistill options).
set -euo pipefail
cd "$(dirname "$0")/.."

CODISTILL=${CODISTILL:-$PWD/.build/release/codistill}
NP=${NP:-2}
# Not "GROUPS": bash ignores assignments to its built-in GROUPS variable.
NGROUPS=${GROUPS_PER_JOB:-2}
MODEL=${MODEL:-cnn}
EPOCHS=${EPOCHS:-3}
# 200 of the 1,404 steps of 3 epochs: distilling from peers that have not learnt yet only slows them.
BURN_IN=${BURN_IN:-200}
BASELINE=${BASELINE_DIR:-$PWD/runs/local-sync}
if (( NGROUPS == 1 )); then CKPT=${CKPT_DIR:-$BASELINE}; else CKPT=${CKPT_DIR:-$PWD/runs/local}; fi

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

args=(train --model "$MODEL" --groups "$NGROUPS" --epochs "$EPOCHS" --burn-in "$BURN_IN" --exchange-every 50
      --checkpoint-dir "$CKPT" --resume auto)
# Extra options, e.g. TRAIN_ARGS="--exchange-mode lockstep --lr 0.05"
read -r -a extra <<< "${TRAIN_ARGS:-}"
args+=("${extra[@]}")
# Fashion-MNIST outside /usr/share/datasets/fashion-mnist: DATA_DIR=/path/to/dir bash jobs/local-train.sh
if [ -n "${DATA_DIR:-}" ]; then args+=(--data "$DATA_DIR"); fi

echo "local-train: $NP ranks, $NGROUPS groups, checkpoints in $CKPT"
# --oversubscribe: allow more ranks than cores. --resume auto: after a crash or Ctrl-C, running
# this script again continues from the newest complete checkpoint in $CKPT.
status=0
mpirun -np "$NP" --oversubscribe "$CODISTILL" "${args[@]}" || status=$?
if (( status == 75 )); then
    echo "local-train: stopped by a signal after a checkpoint; run the same command again to continue"
    exit 75
fi
(( status == 0 )) || exit "$status"

newest() { find "$1" -maxdepth 1 -name 'step-*.h5' 2>/dev/null | sort | tail -n 1; }
if (( NGROUPS > 1 )); then
    echo "local-train: the codistilled groups, and the churn between groups 0 and 1:"
    "$CODISTILL" eval "$(newest "$CKPT/group-0")" "$(newest "$CKPT/group-1")" --churn
fi
baseline=$(newest "$BASELINE/group-0")
if [ -n "$baseline" ] && [ "$baseline" != "$(newest "$CKPT/group-0")" ]; then
    echo "local-train: the sync-SGD baseline ($baseline):"
    "$CODISTILL" eval "$baseline"
elif (( NGROUPS > 1 )); then
    echo "local-train: for the sync-SGD baseline to compare with: GROUPS_PER_JOB=1 bash jobs/local-train.sh"
fi
