#!/usr/bin/env bash
# Accuracy of the asynchronous and the lock-step exchange side by side: 2 codistilled groups of
# one rank on Fashion-MNIST (disjoint halves, 3 epochs, burn-in 200, exchanges every 50 steps),
# final test accuracy of both groups and the churn between them, per seed. Prints a Markdown table.
#   bash experiments/exchange-modes.sh [MODEL] [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-cnn}
read -r -a SEEDS <<<"${2:-1 2}"
CODISTILL=${CODISTILL:-$PWD/.build/release/codistill}
OUT=${OUT:-runs/exchange-modes-$MODEL}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mkdir -p "$OUT"
echo "| mode | seed | group 0 (%) | group 1 (%) | churn (%) | seconds |"
echo "|---|---:|---:|---:|---:|---:|"
for seed in "${SEEDS[@]}"; do
    for mode in async lockstep; do
        run="$OUT/$mode-seed$seed"
        if [ ! -s "$run.log" ]; then
            start=$(date +%s)
            mpirun -np 2 --oversubscribe "$CODISTILL" train --model "$MODEL" --groups 2 --epochs 3 --burn-in 200 \
                --exchange-every 50 --exchange-mode "$mode" --seed "$seed" --log-every 100000 --checkpoint-dir "$run" > "$run.log" 2>&1
            echo $(( $(date +%s) - start )) > "$run.seconds"
        fi
        a=$(sed -n 's/^group 0 test_acc=\([0-9.]*\).*/\1/p' "$run.log")
        b=$(sed -n 's/^group 1 test_acc=\([0-9.]*\).*/\1/p' "$run.log")
        last() { find "$1" -name 'step-*.h5' | sort | tail -n 1; }
        churn=$("$CODISTILL" eval "$(last "$run/group-0")" "$(last "$run/group-1")" --churn --json |
                python3 -c 'import json,sys; print("%.2f" % (100 * json.load(sys.stdin)["churn"]["disagreement"]))')
        echo "| $mode | $seed | $a | $b | $churn | $(cat "$run.seconds") |"
    done
done
