#!/usr/bin/env bash
# Fuzz the tar/record parser with libFuzzer (Swift's -sanitize=fuzzer, plus AddressSanitizer).
# Usage: scripts/fuzz-tar.sh [SECONDS] [extra libFuzzer flags...]
#   SECONDS defaults to 600. Crashing inputs are written to .build-fuzz/crash-*.
#   Re-run one input: .build-fuzz/fuzz-tar .build-fuzz/crash-XXXX
# The seed corpus is the tar fixtures of the tests (Tests/Fixtures/Dataset/*.tar).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}; shift || true
OUT=.build-fuzz
mkdir -p "$OUT/corpus"
SRC=(Sources/Dataset/DatasetError.swift Sources/Dataset/ByteSource.swift
     Sources/Dataset/TarScanner.swift Sources/Dataset/ShardIndex.swift
     Sources/Dataset/ShardIndex+Cache.swift Fuzz/FuzzTar.swift)
if [ ! -x "$OUT/fuzz-tar" ] || [ -n "$(find "${SRC[@]}" -newer "$OUT/fuzz-tar")" ]; then
  echo "building $OUT/fuzz-tar"
  swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name DatasetFuzz \
    "${SRC[@]}" -o "$OUT/fuzz-tar" 2> >(grep -v "Cannot export local symbol" >&2)
fi
for f in Tests/Fixtures/Dataset/*.tar; do [ -e "$f" ] && cp -n "$f" "$OUT/corpus/" || true; done
exec "$OUT/fuzz-tar" "$OUT/corpus" -max_total_time="$SECS" -max_len=65536 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix="$OUT/" -print_final_stats=1 "$@"
