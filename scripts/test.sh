#!/usr/bin/env bash
# The whole test suite: unit tests (gradient checks, kernels against naive loops, golden values)
# and, as they land, integration tests that run the release binary under mpirun.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product codistill
swift test --disable-swift-testing "$@"
