#!/usr/bin/env bash
# View-pipeline throughput on one loader thread (decode real + drawn fake, make the
# eight CoDE views), on synthetic D3 at D3's sizes, release build.
#   scripts/bench-views.sh [RECORDS=32] [LOCAL_SIZE=96]
# Prints e.g. "views: 32 records, local 96: N records/s per loader thread (...)".
# Target: >= 4 records/s (3x the 1.2 records/s a training step consumes on one core).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${SCRATCH:-.build}
swift build -c release --build-tests -Xswiftc -enable-testing --scratch-path "$SCRATCH" >/dev/null
CDE_BENCH_RECORDS=${1:-32} CDE_BENCH_LOCAL=${2:-96} \
  swift test -c release -Xswiftc -enable-testing --skip-build --scratch-path "$SCRATCH" \
  --filter ImagingTests.ViewBenchmarkTests 2>&1 | grep '^views:'
