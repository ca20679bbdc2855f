#!/usr/bin/env bash
# Data-loader benchmark: records per second turned into the eight CoDE views by the
# loader (default one thread), on synthetic D3 at D3's image sizes.
# Usage: scripts/bench-loader.sh [THREADS] [RECORDS]
#   Builds `cde` (release), writes RECORDS (default 256) synthetic records to
#   .build-bench-loader/d3 once, then runs `cde shards bench` with global views of
#   224 px and local views of 96 px (then 224 px, as the official code).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-1}
RECORDS=${2:-256}
SCRATCH=${SCRATCH:-.build}
DATA=.build-bench-loader/d3-$RECORDS
swift build -c release --product cde --scratch-path "$SCRATCH" >/dev/null
BIN="$SCRATCH/release/cde"
if [ ! -d "$DATA" ]; then
  "$BIN" shards synth --out "$DATA" --records "$RECORDS" --shard-size 128 --seed 1
fi
"$BIN" shards check "$DATA" --quiet | tail -1
for L in 96 224; do
  "$BIN" shards bench "$DATA" --threads "$THREADS" --batch 16 --steps $(( RECORDS / 16 - 1 )) --local-size "$L"
done
