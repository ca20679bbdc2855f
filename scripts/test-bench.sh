#!/usr/bin/env bash
# `make bench` end to end on a tiny model, so that the benchmark script cannot rot unseen: every
# cde layout (1x2, 2x1, 1x1; bf16 on CPUs with bf16), the GEMM A/B, the FMA peak (and the AVX2 micro-kernel), the GEMM
# classes and inference print their lines with numbers. CI has no torch: the anchors are stand-ins
# that print fixed rates (DDP the highest), so that the anchor rows, the ratios and the paired rounds
# (which must pick DDP) run too, and a second run without them (TORCH_PYTHON=none) says they were
# skipped. cde's figures are not checked, only that they are there.
#
#   scripts/test-bench.sh [path/to/cde]
set -euo pipefail
BIN=$(realpath "${1:-.build/release/cde}")
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/scripts/lib.sh"
[ -x "$BIN" ] || fail "$BIN is not an executable (build cde first)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
printf 'model: {width: 32, depth: 1, heads: 2, mlp_ratio: 2, patch: 16, image_size: 32}\n' >"$T/tiny.yaml"
# Stand-ins for a python with torch, timm and transformers, and its torchrun.
mkdir -p "$T/torch" "$T/anchors"
touch "$T/anchors/pytorch_code_step.py" "$T/anchors/pytorch_code_ddp.py"
cat >"$T/torch/python" <<'EOF'
#!/usr/bin/env bash
case "$*" in
  *"import transformers"*) exit 0 ;;
  *hf_vit_inference.py*) echo "5.0 images/s" ;;
  *--compile*) echo "step 0.150 pairs/s" ;;
  *) echo "step 0.100 pairs/s" ;;
esac
EOF
printf '#!/usr/bin/env bash\necho "step 0.200 pairs/s"\n' >"$T/torch/torchrun"
chmod +x "$T/torch/python" "$T/torch/torchrun"
CONFIG="$T/tiny.yaml" SIZES=16 STEPS=1 RECORDS=2 AB_ROUNDS=1 IMAGES=2 TORCH_PYTHON="$T/torch/python" ANCHORS="$T/anchors" PAIRED_ROUNDS=2 \
  bash "$HERE/scripts/bench.sh" "$BIN" >"$T/out" 2>"$T/err" || { rc=$?; cat "$T/out" "$T/err"; fail "bench.sh exited with status $rc"; }
# expect WHAT REGEX: one line of the output matches.
expect() { grep -qE -- "$2" "$T/out" || { cat "$T/out"; fail "bench.sh printed no $1 line (/$2/)"; }; }
NUM='[0-9]+\.[0-9]+'
expect "FMA peak" "^== FMA peak \([a-z0-9]+ loop\), at the start: $NUM GFLOP/s per core"
expect "FMA peak before a size" "^== FMA peak \([a-z0-9]+ loop\), before local 16 px: $NUM GFLOP/s per core"
expect "FMA peak readings" "^== FMA peak readings \([a-z0-9]+ loop, GFLOP/s per core\): ($NUM ){3}\(spread [0-9]+%\)"
# The shares before the step use the highest of the two readings taken so far.
r1=$(sed -nE 's/^== FMA peak \([a-z0-9]+ loop\), at the start: ([0-9.]+) .*/\1/p' "$T/out")
r2=$(sed -nE 's/^== FMA peak \([a-z0-9]+ loop\), before local 16 px: ([0-9.]+) .*/\1/p' "$T/out")
used=$(sed -nE 's/^== FMA peak .*before local 16 px: .*shares below use ([0-9.]+).*/\1/p' "$T/out")
want=$(printf "%s\n%s\n" "$r1" "$r2" | sort -g | tail -1)
[ -n "$used" ] && [ "$used" = "$want" ] || { cat "$T/out"; fail "the shares use $used, not the highest reading so far ($r1, $r2)"; }
if avx2_fma_cpu; then
  expect "micro-kernel reading" "^== FMA peak \([a-z0-9]+ loop\), at the start: .*; cde_avx2 micro-kernel, operands in L1: $NUM"
fi
expect "GEMM class" "^   .*(openblas|onednn)"
for l in 1x2 2x1 1x1; do
  expect "cde $l" "^   cde   $l \(ranks x threads\): +$NUM records/s +$NUM model GFLOP/s = [0-9]+% of FMA peak"
done
expect "2x1 blocked in MPI" "^   cde   2x1 .*; blocked in MPI $NUM-$NUM s/step, compute $NUM-$NUM, over the ranks(; host steal $NUM%)?\)$"
# Where /proc/stat counts steal time, every layout's row gives the host's share.
if steal_counted; then
  for l in 1x2 2x1 1x1; do expect "cde $l host steal" "^   cde   $l \(ranks x threads\): .*; host steal $NUM%\)$"; done
fi
if bf16_cpu; then
  expect "cde bf16" "^   cde   2x1 bf16 \(--precision bf16\): +$NUM records/s +$NUM model GFLOP/s = [0-9]+% of the bf16 dot peak"
  expect "bf16 dot peak" "; bf16 dot peak \(avx512_bf16 loop\): $NUM"
fi
expect "GEMM A/B" "^   A/B 2x1, 1 alternating rounds, medians: --gemm openblas $NUM records/s \(1\.00\).* --gemm auto $NUM records/s"
expect "anchors" "^   torch 1 process x 2 threads: 0\.100 records/s \([0-9]+% of FMA peak\)   compiled, 2 threads: 0\.150 \([0-9]+%\)   DDP 2 ranks x 1 thread: 0\.200 records/s \([0-9]+%\)   1 x 1: 0\.100 records/s"
expect "ratio" "^   ratio cde best two-core / torch best two-core: $NUM  \(2x1: $NUM, 1x2: $NUM\); one core: $NUM"
expect "paired rounds" "^   paired, cde (2x1|1x2) against torch DDP 2x1 \(the best two-core layouts above\), 2 rounds, order swapped each round: ratios $NUM $NUM; median $NUM \(range $NUM-$NUM\)"
# The median of two rounds is the lower one.
p=$(grep -E "^   paired," "$T/out")
lo=$(sed -nE 's/.*\(range ([0-9.]+)-.*/\1/p' <<<"$p"); med=$(sed -nE 's/.*median ([0-9.]+) .*/\1/p' <<<"$p")
[ -n "$lo" ] && [ "$lo" = "$med" ] || { cat "$T/out"; fail "paired rounds: the median of two ratios ($med) is not the lower ($lo)"; }
expect "transformers" "^   transformers ViTModel, 2 threads: 5\.0 images/s   1 thread: 5\.0 images/s"
expect "inference" "^   cde   1x2: $NUM images/s   2x1: $NUM images/s   1x1: $NUM images/s"
if grep -q "n/a" "$T/out"; then cat "$T/out"; fail "bench.sh printed n/a where a cde figure belongs"; fi
# BENCH_ISA=avx2: both sides held to AVX2 (cde's AVX2 kernels, OpenBLAS Haswell, oneDNN up to
# AVX2), shares of the AVX2 loop's peak, no bf16 rows; another value is refused in one line.
CONFIG="$T/tiny.yaml" SIZES=16 STEPS=1 RECORDS=2 AB_ROUNDS=1 IMAGES=2 TORCH_PYTHON=none BENCH_ISA=avx2 \
  bash "$HERE/scripts/bench.sh" "$BIN" >"$T/avx2" 2>"$T/err" || { rc=$?; cat "$T/avx2" "$T/err"; fail "BENCH_ISA=avx2 bench.sh exited with status $rc"; }
grep -q "held to AVX2" "$T/avx2" && grep -q "PyTorch anchors skipped" "$T/avx2" && grep -qE "^== FMA peak \(avx2 loop\), at the start: $NUM" "$T/avx2" \
  && grep -qE "^== OpenBLAS kernel: Haswell" "$T/avx2" && grep -qE "^   cde   2x1 \(ranks x threads\): +$NUM records/s" "$T/avx2" \
  && ! grep -q "bf16" "$T/avx2" || { cat "$T/avx2"; fail "BENCH_ISA=avx2: no AVX2 header, anchors-skipped line, AVX2 peak, Haswell kernel or 2x1 line, or a bf16 row"; }
if rc=0 && BENCH_ISA=sse bash "$HERE/scripts/bench.sh" "$BIN" >"$T/out2" 2>"$T/err2" || rc=$?; [ "$rc" = 64 ] \
  && [ "$(wc -l <"$T/err2")" = 1 ] && grep -q "BENCH_ISA=sse" "$T/err2"; then :; else
  cat "$T/out2" "$T/err2"; fail "BENCH_ISA=sse: want one line naming it and exit 64, got status $rc"
fi
ok "BENCH_ISA=avx2 holds cde to its AVX2 kernels, OpenBLAS Haswell and the AVX2 peak; BENCH_ISA=sse is refused"
ok "make bench runs end to end on a tiny model: $(grep -c . "$T/out") lines, every cde layout$(bf16_cpu && echo ', bf16'), the anchor rows (stand-ins), the paired rounds and inference measured"
echo "bench: all passed"
