#!/usr/bin/env bash
# The fuzzing suite with a longer budget than CI's, by hand: scripts/fuzz.sh [ITERATIONS] [SEED]
# (inputs per reader, default 40000, 20 times the CI default; seed, default 1). CI runs the same tests with the default
# budget as part of `swift test`. Prints one "fuzz <reader>: ..." line per reader
# (docs/FUZZING.md records them); CODISTILL_FUZZ_TRACE=1 prints each input before it is read,
# so after a crash the last line names it.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-40000}
seed=${2:-1}
swift build --build-tests
start=$(date +%s)
log=$(mktemp)
status=0
CODISTILL_FUZZ_ITERATIONS=$iterations CODISTILL_FUZZ_SEED=$seed \
    swift test --skip-build --disable-swift-testing --filter FuzzTests >"$log" 2>&1 || status=$?
# HDF5's own error stacks for rejected files are noise here; the full log is kept on failure.
grep -E '^fuzz |^  [0-9]+ x |error:|failed|Executed|Fatal|signal' "$log" | grep -v 'HDF5-DIAG' || true
echo "fuzz.sh: $iterations inputs per reader, seed $seed, $(( $(date +%s) - start )) s, exit status $status"
if [ "$status" -ne 0 ]; then echo "fuzz.sh: full log in $log"; else rm -f "$log"; fi
exit "$status"
