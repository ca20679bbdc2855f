#!/usr/bin/env bash
# Data races, by ThreadSanitizer: cde built with -sanitize=thread (in .build/tsan) trains the
# tiny model with three loader workers and two compute threads, checkpoints, resumes, and embeds
# images with its decoding threads; any report fails. The loader's workers fill slots of one
# batch at once: per-slot stores into Swift arrays of the batch raced on the array property
# (copy-on-write), which this catches.
#
#   scripts/test-races.sh [path/to/cde]   (the release binary makes the data; SWIFT: the swift command)
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${1:-.build/release/cde}")
. "$HERE/scripts/lib.sh"
[ -x "$BIN" ] || fail "$BIN is not an executable (build cde first)"
SWIFT=${SWIFT:-swift}
cd "$HERE"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
$SWIFT build -c release -Xswiftc -sanitize=thread --build-path .build/tsan --product cde >"$T/build.log" 2>&1 \
  || { tail -30 "$T/build.log"; fail "the ThreadSanitizer build failed (swift build -c release -Xswiftc -sanitize=thread --build-path .build/tsan)"; }
TSAN=$HERE/.build/tsan/release/cde
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 history_size=4"
# tsan_run NAME ARGS...: one cde command under ThreadSanitizer; fails on any report.
tsan_run() {
  local name=$1; shift
  local rc=0
  "$TSAN" "$@" >"$T/$name.log" 2>&1 || rc=$?
  if grep -q "WARNING: ThreadSanitizer" "$T/$name.log"; then
    sed -n '/WARNING: ThreadSanitizer/,/^SUMMARY/p' "$T/$name.log" | head -60
    fail "$name: ThreadSanitizer reported a race"
  fi
  [ $rc = 0 ] || { tail -20 "$T/$name.log"; fail "$name: exit status $rc under ThreadSanitizer"; }
  ok "$name: no race reported"
}
"$BIN" shards synth --records 24 --seed 5 --out "$T/data" >/dev/null
"$BIN" shards synth --layout folders --records 4 --seed 6 --out "$T/images" >/dev/null
RUN=("${TINY_ARGS[@]}" --set "data.train=[$T/data]" --set checkpoint.every_steps=6 --set data.loader_threads=3 --threads 2
     --out "$T/run")
tsan_run train train "${RUN[@]}" --set train.steps=12
tsan_run resume train "${RUN[@]}" --set train.steps=18 --resume auto --allow-config-change
tsan_run embed embed --model "$(ls -d "$T"/run/checkpoints/step-* | tail -1)" --config "$T/run/config.yaml" --batch 3 --quiet \
  --out "$T/emb.safetensors" "$T/images"
echo "test-races: $pass passed"
