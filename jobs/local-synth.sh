#!/usr/bin/env bash
# Data-free distillation on one machine: a student from the newest teacher checkpoint of
# jobs/local-train.sh, without the training data (FastDFKD; METHOD=deepinversion for the baseline).
# Usage, from anywhere:  bash jobs/local-synth.sh      (ROUNDS=60 STUDENT=mlp bash jobs/local-synth.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

CODISTILL=${CODISTILL:-$PWD/.build/release/codistill}
TEACHER_DIR=${TEACHER_DIR:-$PWD/runs/local/group-0}
OUT=${OUT_DIR:-$PWD/runs/synth}
[ -x "$CODISTILL" ] || { echo "local-synth: no executable at $CODISTILL (run swift build -c release or set CODISTILL)" >&2; exit 2; }
# The newest checkpoint: step numbers are zero-padded, so the names sort by step.
TEACHER=${TEACHER:-$(find "$TEACHER_DIR" -maxdepth 1 -name 'step-*.h5' 2>/dev/null | sort | tail -n 1 || true)}
if [ -z "$TEACHER" ] || [ ! -f "$TEACHER" ]; then
    echo "local-synth: no teacher checkpoint in $TEACHER_DIR: run bash jobs/local-train.sh first, or set TEACHER=file.h5" >&2; exit 2
fi
mkdir -p "$OUT"

echo "local-synth: teacher $TEACHER, output in $OUT"
exec "$CODISTILL" synth --teacher "$TEACHER" --method "${METHOD:-fastdfkd}" --student "${STUDENT:-cnn}" \
    --rounds "${ROUNDS:-30}" --out "$OUT/student.h5" --metrics "$OUT/metrics.jsonl"
