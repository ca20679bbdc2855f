#!/usr/bin/env bash
# cde under the sanitizers, each a second build of cde in .build/<name>; any report fails.
# - ThreadSanitizer (data races): training of the tiny model with three loader workers and two
#   compute threads, with checkpoints, a resume, and `cde embed` with its decoding threads.
#   The loader's workers fill slots of one batch at once: per-slot stores into Swift arrays of
#   the batch raced on the array property (copy-on-write), which this catches.
# - AddressSanitizer (out-of-bounds and use-after-free accesses, in the Swift code and the C
#   shims; the C libraries are not instrumented): the whole XCTest suite (every kernel on its
#   test shapes), the same runs, then ViT-Tiny steps at 32 px local views on the tiled
#   attention path, fp32 and (on bf16 CPUs) bf16.
#
# - XCTEST_SANITIZERS (default "address"): the sanitizers that also run the whole XCTest suite.
#   "thread address" adds it under ThreadSanitizer (about 7 more minutes on 2 cores, so CI
#   leaves it out): every kernel's thread splits and the tests that run 2 threads.
#
#   scripts/test-sanitizers.sh [path/to/cde]   (the release binary makes the data)
# Environment: SWIFT (the swift command), SANITIZERS (default "thread address"), XCTEST_SANITIZERS.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${1:-.build/release/cde}")
. "$HERE/scripts/lib.sh"
[ -x "$BIN" ] || fail "$BIN is not an executable (build cde first)"
SWIFT=${SWIFT:-swift}
cd "$HERE"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 history_size=4"
export ASAN_OPTIONS="halt_on_error=1 exitcode=66 detect_leaks=0"
"$BIN" shards synth --records 24 --seed 5 --out "$T/data" >/dev/null
"$BIN" shards synth --layout folders --records 4 --seed 6 --out "$T/images" >/dev/null

# check NAME LOG STATUS: fails on a report of the current sanitizer in LOG, then on a non-zero
# STATUS; else one ok line (NAME, and DETAIL when given).
check() {
  local name="$dir $1" log=$2 rc=$3 detail=${4:-}
  if grep -q "$report" "$log"; then
    sed -n "/$report/,/^SUMMARY/p" "$log" | head -60
    fail "$name: the $san sanitizer reported an error"
  fi
  [ "$rc" = 0 ] || { tail -20 "$log"; fail "$name: exit status $rc under the $san sanitizer"; }
  ok "$name: ${detail}nothing reported"
}
# san_run NAME ARGS...: one cde command under the current sanitizer, checked.
runs=0
san_run() {
  local name=$1; shift
  local rc=0 log="$T/$dir-$((runs += 1)).log"
  "$SAN" "$@" >"$log" 2>&1 || rc=$?
  check "$name" "$log" $rc
}

for san in ${SANITIZERS:-thread address}; do
  case $san in
    thread) dir=tsan; report="WARNING: ThreadSanitizer" ;;
    address) dir=asan; report="ERROR: AddressSanitizer" ;;
    *) fail "SANITIZERS: unknown sanitizer $san (thread, address)" ;;
  esac
  # A sanitizer in XCTEST_SANITIZERS also builds the tests (and cde with them).
  xctest=""
  case " ${XCTEST_SANITIZERS:-address} " in *" $san "*) xctest=1 ;; esac
  what=(--product cde)
  [ -n "$xctest" ] && what=(--build-tests -Xswiftc -enable-testing)
  $SWIFT build -c release -Xswiftc -sanitize=$san --build-path .build/$dir "${what[@]}" >"$T/build-$dir.log" 2>&1 \
    || { tail -30 "$T/build-$dir.log"; fail "the $san sanitizer build failed (swift build -c release -Xswiftc -sanitize=$san --build-path .build/$dir)"; }
  SAN=$HERE/.build/$dir/release/cde
  if [ -n "$xctest" ]; then
    rc=0
    $SWIFT test -c release -Xswiftc -enable-testing -Xswiftc -sanitize=$san --build-path .build/$dir --skip-build \
      >"$T/xctest-$dir.log" 2>&1 || rc=$?
    check XCTest "$T/xctest-$dir.log" $rc "$(grep -oE 'Executed [0-9]+ tests' "$T/xctest-$dir.log" | tail -1), "
  fi
  rm -rf "$T/run"
  RUN=("${TINY_ARGS[@]}" --set "data.train=[$T/data]" --set checkpoint.every_steps=6 --set data.loader_threads=3 --threads 2
       --out "$T/run")
  san_run train train "${RUN[@]}" --set train.steps=12
  san_run resume train "${RUN[@]}" --set train.steps=18 --resume auto --allow-config-change
  san_run embed embed --model "$(ls -d "$T"/run/checkpoints/step-* | tail -1)" --config "$T/run/config.yaml" --batch 3 \
    --quiet --out "$T/emb-$dir.safetensors" "$T/images"
  if [ $san = address ]; then
    # ViT-Tiny (head width 64: the tiled attention kernels, the oneDNN per-image GEMMs).
    san_run "ViT-Tiny step" bench --threads 2 --records 2 --steps 1 --local-size 32
    if bf16_cpu; then san_run "ViT-Tiny bf16 step" bench --threads 2 --records 2 --steps 1 --local-size 32 --precision bf16; fi
  fi
done
echo "test-sanitizers: $pass passed"
