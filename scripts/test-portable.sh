#!/usr/bin/env bash
# One binary for every node: the release binary (portable build, x86-64-v3) runs a
# training-step benchmark of a tiny model on an emulated Haswell (qemu-user, AVX2 + FMA,
# no AVX-512), with the OpenBLAS kernel chosen from what the emulated CPU reports; on an
# emulated Sandy Bridge (AVX, no AVX2) it prints one line naming the missing features and
# exits 1 (no SIGILL, which would be status 132).
#
#   scripts/test-portable.sh [path/to/cde]
set -euo pipefail
BIN=${1:-.build/release/cde}
KEEP_GOING=1  # both CPUs are tried; the exit status says whether either failed
. "$(dirname "$0")/lib.sh"
[ -x "$BIN" ] || { echo "test-portable: $BIN is not an executable (build cde first)" >&2; exit 1; }
if [ "$(uname -m)" != x86_64 ]; then echo "test-portable: SKIP: the x86-64-v3 baseline applies to x86-64 only"; exit 0; fi
if ! command -v qemu-x86_64 >/dev/null; then
  echo "test-portable: FAIL: qemu-x86_64 not found (make deps installs Debian's qemu-user)" >&2; exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/tiny.yaml" <<'YAML'
model: {width: 32, depth: 1, heads: 2, mlp_ratio: 2, patch: 16, image_size: 32}
YAML
# run CPU: runs the benchmark under qemu-x86_64 -cpu CPU; sets rc, out (stdout) and err
# (stderr without qemu's notes on features its TCG does not emulate, e.g. TSX).
# --gemm kernel: every GEMM class on cde's AVX2 kernel, so that its code runs on the emulated
# CPU too; --gemm auto would time every library on every class at start-up (about 2e8 FLOPs
# each), which took 14 minutes under emulation on a Zen 3 host (about 30 s this way).
run() {
  rc=0
  nice -n 10 qemu-x86_64 -cpu "$1" "$BIN" bench --config "$work/tiny.yaml" --records 2 --local-size 16 \
    --steps 1 --warmup 0 --threads 1 --gemm kernel --json >"$work/out" 2>"$work/err" || rc=$?
  out=$(cat "$work/out"); err=$(grep -v "^qemu-x86_64: warning: TCG doesn't support" "$work/err" || true)
}

# The emulated Haswell has AVX2 and FMA and no AVX-512 (checked with cpuid by the binary itself).
run Haswell
if [ "$rc" != 0 ]; then
  fail "test-portable: cde bench under qemu -cpu Haswell exited $rc: $err"
elif ! echo "$out" | grep -q '"records_per_s":[0-9.]*[1-9]'; then
  fail "test-portable: no records/s in the Haswell run's output: $out"
elif ! echo "$out" | grep -q '"gemm":"gemm kernel: cde_avx2 for '; then
  fail "test-portable: the Haswell run did not put its GEMMs on cde's AVX2 kernel: $out"
else
  core=$(echo "$out" | grep -o '"blas_core":"[A-Za-z0-9]*"' | cut -d'"' -f4)
  # OpenBLAS's AVX2 kernels, not the host's AVX-512 ones (/proc/cpuinfo lists the host's flags).
  kernels=$(echo "$out" | grep -o '"kernels":"[a-z0-9]*"' | cut -d'"' -f4)
  case "$core/$kernels" in
    Haswell/build|Zen/build) ok "test-portable: qemu -cpu Haswell runs cde bench (OpenBLAS kernel $core, cde's AVX2 GEMM kernel, the build's own hand-written kernels)" ;;
    */build) fail "test-portable: under qemu -cpu Haswell OpenBLAS runs '$core', expected Haswell" ;;
    *) fail "test-portable: under qemu -cpu Haswell the hand-written kernels are '$kernels', expected build (no AVX-512 here)" ;;
  esac
fi

# The AVX-512 copy of the hand-written kernels is refused on the emulated Haswell, by option and
# by environment: one line naming what the CPU lacks, non-zero exit.
for how in "--kernels avx512" "CDE_KERNELS=avx512"; do
  rck=0
  if [ "$how" = "--kernels avx512" ]; then
    qemu-x86_64 -cpu Haswell "$BIN" bench --kernels avx512 --steps 1 >"$work/kout" 2>"$work/kerr" || rck=$?
  else
    CDE_KERNELS=avx512 qemu-x86_64 -cpu Haswell "$BIN" bench --steps 1 >"$work/kout" 2>"$work/kerr" || rck=$?
  fi
  kerr=$(grep -v "TCG doesn't support" "$work/kerr" | grep -v "^Usage:\|^  See 'cde" | grep . || true)
  if [ "$rck" = 0 ] || [ "$(printf '%s\n' "$kerr" | grep -c .)" != 1 ] || ! echo "$kerr" | grep -qF -- "$how: this CPU lacks avx512f"; then
    fail "test-portable: Haswell, $how: exit $rck: $kerr"
  else
    ok "test-portable: qemu -cpu Haswell refuses $how: $kerr"
  fi
done

# bf16 is refused where the CPU has no bf16 instructions (the emulated Haswell): one line naming
# the option (bench) or the key (train), non-zero exit, no run directory.
"$BIN" shards synth --out "$work/data" --records 8 --shard-size 8 --seed 5 >/dev/null
rcb=0; qemu-x86_64 -cpu Haswell "$BIN" bench --precision bf16 --steps 1 >"$work/bout" 2>"$work/berr" || rcb=$?
rct=0; qemu-x86_64 -cpu Haswell "$BIN" train "${TINY_ARGS[@]}" --set "data.train=[$work/data]" --set train.steps=2 \
  --set optim.precision=bf16 --out "$work/run" >"$work/tout" 2>"$work/terr" || rct=$?
berr=$(grep -v "TCG doesn't support" "$work/berr" | head -1); terr=$(grep -v "TCG doesn't support" "$work/terr" || true)
if [ "$rcb" = 0 ] || ! echo "$berr" | grep -q -- "--precision bf16 needs a CPU with avx512_bf16 or amx_bf16"; then
  fail "test-portable: Haswell, bench --precision bf16: exit $rcb: $berr"
elif [ "$rct" = 0 ] || [ "$(printf '%s' "$terr" | grep -c .)" != 1 ] || ! echo "$terr" | grep -q "key 'optim.precision': bf16 needs" \
  || [ -e "$work/run" ]; then
  fail "test-portable: Haswell, train with optim.precision=bf16: exit $rct: $terr"
else
  ok "test-portable: qemu -cpu Haswell refuses bf16: $terr"
fi

run SandyBridge
lines=$(printf '%s' "$err" | grep -c . || true)
if [ "$rc" = 132 ] || [ "$rc" = 0 ]; then
  fail "test-portable: under qemu -cpu SandyBridge cde exited $rc (expected 1 and one line)"
elif [ "$rc" != 1 ] || [ "$lines" != 1 ] || [ -n "$out" ]; then
  fail "test-portable: SandyBridge: exit $rc, $lines stderr line(s), stdout '$out': $err"
elif ! echo "$err" | grep -q "lacks avx2, fma" || ! echo "$err" | grep -q "x86-64-v3"; then
  fail "test-portable: SandyBridge: the line does not name avx2 and fma and the baseline: $err"
else
  ok "test-portable: qemu -cpu SandyBridge: exit 1, one line: $err"
fi
echo "test-portable: $pass passed, $failed failed"
[ "$failed" = 0 ]
