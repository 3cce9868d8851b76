#!/usr/bin/env bash
# The evidence for the default burn-in: 2 codistilled groups of one rank on Fashion-MNIST
# (disjoint halves, 3 epochs, the default schedule and exchange interval), the burn-in as a share
# of the run, final test accuracy of both groups per seed. Prints a Markdown table.
#   bash experiments/burn-in.sh [MODEL] [SEEDS] [SHARES]
#   e.g. bash experiments/burn-in.sh mlp "1 2 3" "0 0.01 0.05 0.1 0.2 0.35"
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-mlp}
read -r -a SEEDS <<<"${2:-1 2 3}"
read -r -a SHARES <<<"${3:-0 0.01 0.05 0.1 0.2 0.35}"
CODISTILL=${CODISTILL:-$PWD/.build/release/codistill}
OUT=${OUT:-runs/burn-in-$MODEL}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mkdir -p "$OUT"
# Steps of 3 epochs of one group's half (30,000 images) at the default batch of 64.
steps=$(( 3 * 30000 / 64 ))
echo "| burn-in (share of $steps steps) | steps | test accuracy, mean of both groups (%) per seed | mean |"
echo "|---|---:|---|---:|"
for share in "${SHARES[@]}"; do
    burn=$(awk -v s="$share" -v n="$steps" 'BEGIN { printf "%d", s * n + 0.5 }')
    accs=()
    for seed in "${SEEDS[@]}"; do
        log="$OUT/burn$burn-seed$seed.log"
        [ -s "$log" ] || mpirun -np 2 --oversubscribe "$CODISTILL" train --model "$MODEL" --groups 2 --epochs 3 \
            --burn-in "$burn" --seed "$seed" --log-every 100000 --checkpoint-dir "$OUT/burn$burn-seed$seed" > "$log" 2>&1
        accs+=("$(sed -n 's/^group [01] test_acc=\([0-9.]*\).*/\1/p' "$log" | awk '{ s += $1; n++ } END { printf "%.2f", s / n }')")
    done
    mean=$(printf '%s\n' "${accs[@]}" | awk '{ s += $1; n++ } END { printf "%.2f", s / n }')
    echo "| $share | $burn | ${accs[*]} | $mean |"
done
