#!/usr/bin/env bash
# CoDE training-step throughput, side by side in one run: cde (1 rank x 2 threads,
# 2 ranks x 1 thread under mpirun, 1 rank x 1 thread), the PyTorch/timm anchors
# when a Python with torch + timm is available, and the OpenBLAS sgemm rate; then
# inference (cde bench --inference against transformers' ViTModel).
# Builds nothing.
#
#   scripts/bench.sh [path/to/cde]
#
# Environment: CONFIG (YAML whose model: section shapes the ViT; default ViT-Tiny), RECORDS (records per rank per step, default 8), STEPS (timed
# steps, default 3), SIZES (local view sizes, default "96 224"), TORCH_PYTHON
# (python with torch + timm; default /tmp/ref/bin/python when present; set to
# "none" to skip the anchors), ANCHORS (folder of pytorch_code_step.py and
# pytorch_code_ddp.py, default ../shared/anchors), TORCH_COMPILE (1: also the torch.compile
# anchor, the default; 0 skips it), ANCHOR_ROUNDS (runs of each PyTorch anchor, the best counts;
# default 1), PAIRED_ROUNDS (default 3, 0 skips them: rounds of the best cde two-core layout and
# the best two-core anchor run one after the other, the order swapped every round; the median of
# the rounds' ratios and their range), PROFILE=1 (kernel breakdown
# of the 2-rank run), IMAGES (images per inference pass, default 32; the inference
# comparison with transformers' ViTModel needs transformers in TORCH_PYTHON). On a CPU with
# avx512_bf16 or amx_bf16, each size adds cde --precision bf16 (2x1) and the anchors under
# CPU autocast to bf16 (scripts/torch_autocast_bf16.py).
#
# GEMMS (default "openblas auto"): the --gemm modes compared side by side; the 2-rank step runs
# once per mode, alternating, AB_ROUNDS times (default 3), and the median of each is reported.
# Each FMA-peak reading also gives the rate of cde's AVX2 GEMM micro-kernel alone, operands in L1:
# the ceiling of its GEMMs on this core. The FMA peak (`cde bench --fma-peak`: an FMA-throughput loop, per core on CPU time) scales
# with the cores a layout uses; every figure is also given as % of that peak in model FLOPs,
# and the bf16 rows as % of the bf16 dot-product loop's peak (AVX512_BF16). The peak is read
# at the start and again before each view size, and each share uses the highest reading so
# far: on a shared host one reading can come out low (another guest on the core), which
# would inflate every share after it. The last lines list the readings.
#
# BENCH_ISA=avx2: both sides held to AVX2 + FMA on a CPU that has more, to follow the AVX2 tier
# from an AVX-512 machine. cde runs its own AVX2 kernels (CDE_KERNELS=build; the portable
# x86-64-v3 build is required), OpenBLAS's Haswell kernel (CDE_BLAS_CORE=keep) and oneDNN up
# to AVX2; the anchors run ATen's AVX2 kernels (ATEN_CPU_CAPABILITY), MKL's AVX2 path and
# oneDNN up to AVX2; shares are of the AVX2 loop's peak, and there are no bf16 rows. This is the
# same code an AVX2 CPU runs, not that CPU's speed: cores differ in more than their vectors.
#
# Model GFLOP/s count all eight views of a record (ViTConfig.forwardFLOPs: 2·m·n·k per GEMM, x3 for forward + backward); "executed"
# leaves out the augmented views that equal their base view and are run once (as in
# training, about 1 in 12 views), and is the figure compared with sgemm.
set -euo pipefail
BIN=${1:-.build/release/cde}
RECORDS=${RECORDS:-8}
STEPS=${STEPS:-3}
SIZES=${SIZES:-96 224}
HERE=$(cd "$(dirname "$0")/.." && pwd)
ANCHORS=${ANCHORS:-$HERE/../shared/anchors}
if [ -z "${TORCH_PYTHON:-}" ] && [ -x /tmp/ref/bin/python ]; then TORCH_PYTHON=/tmp/ref/bin/python; fi
TORCH_PYTHON=${TORCH_PYTHON:-none}
[ -x "$BIN" ] || { echo "bench.sh: $BIN is not an executable (build cde first: swift build -c release)" >&2; exit 1; }
BOUND_RANKS=1 . "$HERE/scripts/lib.sh"
MPIRUN+=(-np 2)  # Open MPI binds each of the 2 ranks to a core by default

# json KEY: the value stored under "KEY" in the JSON object on stdin.
json() { json_get "$1"; }
# torch_rate: records (pairs) per second from an anchor's output line on stdin.
torch_rate() { grep -o '[0-9.]* pairs/s' | tail -1 | cut -d' ' -f1; }
# anchor COMMAND...: the best records/s of ANCHOR_ROUNDS runs of a PyTorch anchor (nothing when
# no run printed a rate). The anchors vary more from run to run than cde does; their best
# keeps the ratios conservative.
# When no run printed a rate, the last line of the last run's stderr goes to
# $BENCH_TMP/failed-<label>, and `shown` prints it in place of the rate.
ANCHOR_ROUNDS=${ANCHOR_ROUNDS:-1}
BENCH_TMP=$(mktemp -d)
trap 'rm -rf "$BENCH_TMP"' EXIT
# torch.compile's inductor caches the C++ it generates under /tmp/torchinductor_<user> by
# default, keyed without the CPU: a cache written on another CPU generation (a VM that moved host)
# aborted the compiled anchor inside that code. Each run gets an empty cache of its own.
export TORCHINDUCTOR_CACHE_DIR="$BENCH_TMP/inductor"
anchor() {  # anchor LABEL COMMAND...
  local label=$1 r out
  shift
  rm -f "$BENCH_TMP/failed-$label"
  out=$(for ((r = 0; r < ANCHOR_ROUNDS; r++)); do "$@" 2>"$BENCH_TMP/stderr" | torch_rate || true; done | grep . | sort -g | tail -1 || true)
  if [ -z "$out" ]; then
    { grep . "$BENCH_TMP/stderr" || echo "no rate printed"; } | tail -1 | cut -c1-120 >"$BENCH_TMP/failed-$label"
  fi
  echo "$out"
}
# shown LABEL VALUE: VALUE, or "failed (<last stderr line>)" when anchor LABEL failed, or n/a.
shown() {
  if [ -n "$2" ]; then echo "$2"
  elif [ -s "$BENCH_TMP/failed-$1" ]; then echo "failed ($(cat "$BENCH_TMP/failed-$1"))"
  else echo "n/a"; fi
}
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then printf "%.2f" "$(echo "scale=4; $1 / $2" | bc)"; else echo "n/a"; fi; }
# median: the median of the numbers on stdin (space or newline separated; the lower middle of an even count).
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# paired CDE_LAYOUT ANCHOR_LABEL: PAIRED_ROUNDS rounds of cde's layout (the command in array
# C_<layout>, JSON out) and the anchor (array A_<label>), one after the other, the anchor first in
# odd rounds; prints each round's ratio, then their median and range. On a shared host a slow
# phase then falls on both sides of a round, where separate best-of runs can each catch a
# different phase.
PAIRED_ROUNDS=${PAIRED_ROUNDS:-3}
paired() {
  local -n cmd_c=C_$1 cmd_a=A_$2
  local round rc ra ratios=""
  for ((round = 0; round < PAIRED_ROUNDS; round++)); do
    if ((round % 2 == 0)); then
      rc=$("${cmd_c[@]}" | json records_per_s); ra=$(ANCHOR_ROUNDS=1 anchor "paired-$2" "${cmd_a[@]}")
    else
      ra=$(ANCHOR_ROUNDS=1 anchor "paired-$2" "${cmd_a[@]}"); rc=$("${cmd_c[@]}" | json records_per_s)
    fi
    [ -n "$ra" ] && ratios+="$(ratio "$rc" "$ra") "
  done
  if [ -z "$ratios" ]; then echo "no anchor round printed a rate"; return; fi
  local lo hi
  lo=$(echo $ratios | tr ' ' '\n' | sort -g | head -1); hi=$(echo $ratios | tr ' ' '\n' | sort -g | tail -1)
  ratios=${ratios% }
  echo "ratios $ratios; median $(echo $ratios | median) (range $lo-$hi)"
}

GEMMS=${GEMMS:-openblas auto}
# bf16 rows (cde --precision bf16, the anchors under CPU autocast) where the CPU has bf16 instructions.
BF16=$(bf16_cpu && echo 1 || true)
AB_ROUNDS=${AB_ROUNDS:-3}
ISA_NOTE=""
case "${BENCH_ISA:-}" in
  "") ;;
  avx2)
    export CDE_KERNELS=build CDE_BLAS_CORE=keep OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2
    export ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
    BF16=""
    built=$("$BIN" bench --inference --records 2 --steps 1 --warmup 0 --threads 1 --gemm openblas --json | json build_cpu)
    [ "$built" = x86-64-v3 ] || { echo "bench.sh: BENCH_ISA=avx2 needs the portable build (x86-64-v3); $BIN was built for '$built'" >&2; exit 64; }
    ISA_NOTE=" (BENCH_ISA=avx2: cde and the anchors held to AVX2 + FMA)"
    ;;
  *) echo "bench.sh: BENCH_ISA=$BENCH_ISA: the only value is avx2" >&2; exit 64 ;;
esac
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg); cde: $BIN$ISA_NOTE"
# fma_reading WHEN [SUFFIX]: reads the FMA peak (and the bf16 dot peak where the CPU has it)
# and prints it, then SUFFIX (by default, which peaks the shares below use). PEAK1 and PEAKB
# keep the highest readings so far; READINGS and READINGSB list them all.
PEAK1="" PEAKB="" READINGS="" READINGSB="" PEAK_ISA=""
# higher A B: the larger of two numbers (A may be empty).
higher() { if [ -z "$1" ] || [ "$(echo "$2 > $1" | bc)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
fma_reading() {
  local j p a b m
  j=$("$BIN" bench --fma-peak --json --steps 3)
  m=$(echo "$j" | json cde_avx2_microkernel_gflop_per_s)
  if [ "${BENCH_ISA:-}" = avx2 ]; then
    PEAK_ISA=avx2; p=$(echo "$j" | json avx2_per_core_gflop_per_s); a=$(echo "$j" | json avx2_all_cores_gflop_per_s)
  else
    PEAK_ISA=$(echo "$j" | json isa); p=$(echo "$j" | json per_core_gflop_per_s); a=$(echo "$j" | json all_cores_gflop_per_s)
  fi
  READINGS+="$(printf %.1f "$p") "
  PEAK1=$(higher "$PEAK1" "$p")
  b=""
  [ -n "$BF16" ] && b=$(echo "$j" | json avx512_bf16_per_core_gflop_per_s)
  if [ -n "$b" ]; then
    READINGSB+="$(printf %.1f "$b") "
    PEAKB=$(higher "$PEAKB" "$b")
  fi
  echo "== FMA peak ($PEAK_ISA loop), $1: $(printf %.1f "$p") GFLOP/s per core (CPU time; $(printf %.1f "$a") measured on all \
$(nproc) cores at once, wall time)${b:+; bf16 dot peak (avx512_bf16 loop): $(printf %.1f "$b")}\
${m:+; cde_avx2 micro-kernel, operands in L1: $(printf %.1f "$m")}\
${2-; shares below use $(printf %.1f "$PEAK1")${PEAKB:+ and $(printf %.1f "$PEAKB")}}"
}
fma_reading "at the start"
# pct GFLOPS CORES [PEAK]: GFLOPS as % of CORES cores of PEAK (default the FMA peak).
pct() { if [ -n "$1" ]; then printf "%.0f%%" "$(echo "scale=4; 100 * $1 / (${3:-$PEAK1} * $2)" | bc)"; else echo "n/a"; fi; }
echo "== GEMM classes of the step (one thread; what --gemm auto chooses):"
"$BIN" bench --gemm-shapes --threads 1 --steps 3 ${CONFIG:+--config "$CONFIG"} | sed 's/^/   /'
SG="bench --sgemm --steps 10 --json"
echo "== OpenBLAS kernel: $("$BIN" bench --sgemm --sgemm-size 64 --steps 1 --json | json blas_core) (cde picks the CPU's best; see README). Each layout's sgemm rate (2048^3 per rank,
   single-threaded OpenBLAS, rows split over the rank's threads) is measured just before its step: the speed drifts."

for L in $SIZES; do
  fma_reading "before local $L px"
  echo "== CoDE step, $RECORDS records per rank, local views $L px, $STEPS timed steps"
  # The layouts' commands (the two-core ones are also run by the paired rounds below; the bf16
  # row and the A/B rounds add their option to C_2x1).
  STEP_ARGS=(bench --records "$RECORDS" --local-size "$L" --steps "$STEPS" --json ${CONFIG:+--config "$CONFIG"})
  C_1x1=("$BIN" "${STEP_ARGS[@]}" --threads 1)
  C_1x2=("$BIN" "${STEP_ARGS[@]}" --threads 2)
  C_2x1=("${MPIRUN[@]}" "$BIN" "${STEP_ARGS[@]}" --threads 1)
  S12=$("$BIN" $SG --threads 2 | json sgemm_gflop_per_s)
  J12=$("${C_1x2[@]}")
  PROF=""
  [ "${PROFILE:-0}" = 1 ] && PROF="--profile"
  S21=$("${MPIRUN[@]}" "$BIN" $SG --threads 1 | json sgemm_gflop_per_s)
  J21=$("${C_2x1[@]}" $PROF)
  S11=$("$BIN" $SG --threads 1 | json sgemm_gflop_per_s)
  J11=$("${C_1x1[@]}")
  show() {  # show LABEL JSON SGEMM_RATE CORES: prints one line, sets R<LABEL>
    local r g x m
    r=$(echo "$2" | json records_per_s); g=$(echo "$2" | json gflop_per_s); m=$(echo "$2" | json peak_rss_mib)
    x=$(echo "$2" | json gflop_per_s_executed)
    # With more than one rank: seconds per step blocked in MPI and not blocked (compute), least and
    # most over the ranks; on every row, the share of the machine's CPU time the host took (steal).
    local w="" lo hi clo chi st
    lo=$(echo "$2" | json comm_blocked_s_min_rank); hi=$(echo "$2" | json comm_blocked_s_max_rank)
    clo=$(echo "$2" | json compute_s_min_rank); chi=$(echo "$2" | json compute_s_max_rank)
    [ "$(echo "$2" | json ranks)" -gt 1 ] && [ -n "$lo" ] && w=$(printf "; blocked in MPI %.2f-%.2f s/step, compute %.2f-%.2f, over the ranks" "$lo" "$hi" "$clo" "$chi")
    st=$(echo "$2" | json host_steal_share)
    [ -n "$st" ] && w+=$(awk -v s="$st" 'BEGIN { printf "; host steal %.1f%%", 100 * s }')
    printf "   cde   %s (ranks x threads): %6.3f records/s  %6.1f model GFLOP/s = %s of FMA peak, %6.1f executed = %s of sgemm %.0f  (peak RSS %.0f MiB/rank; gemm %s%s)\n" \
      "$1" "$r" "$g" "$(pct "$g" "$4")" "$x" "$(ratio "$x" "$3")" "$3" "$m" "$(echo "$2" | json gemm_plan | grep -o 'onednn' | wc -l) classes on oneDNN, $(echo "$2" | json gemm_plan | grep -o 'cde_avx2' | wc -l) on cde_avx2" "$w"
    eval "R$1=$r"
    GPR=$(echo "scale=6; $g / $r" | bc)  # model GFLOP per record
  }
  show 1x2 "$J12" "$S12" 2
  show 2x1 "$J21" "$S21" 2
  show 1x1 "$J11" "$S11" 1
  # Mixed precision where the CPU has bf16 instructions: --precision bf16 (optim.precision in training).
  RB=""
  if [ -n "$BF16" ]; then
    JB=$("${C_2x1[@]}" --precision bf16)
    RB=$(echo "$JB" | json records_per_s); GB=$(echo "$JB" | json gflop_per_s)
    if [ -n "$PEAKB" ]; then share="$(pct "$GB" 2 "$PEAKB") of the bf16 dot peak"; else share="$(pct "$GB" 2) of the fp32 FMA peak"; fi
    printf "   cde   2x1 bf16 (--precision bf16): %6.3f records/s  %6.1f model GFLOP/s = %s; %s x the fp32 2x1\n" \
      "$RB" "$GB" "$share" "$(ratio "$RB" "$R2x1")"
  fi
  # Old vs new GEMM routing, alternating, 2 ranks x 1 thread: median records/s per mode.
  declare -A AB=() ABC=()
  for ((round = 0; round < AB_ROUNDS; round++)); do
    for g in $GEMMS; do
      j=$("${C_2x1[@]}" --gemm "$g")
      AB[$g]+="$(echo "$j" | json records_per_s) "
      # Records per CPU-second of one rank (one thread): insensitive to other load on a shared machine.
      ABC[$g]+="$(echo "scale=4; $RECORDS / $(echo "$j" | json cpu_s_per_step_rank0)" | bc) "
    done
  done
  line="   A/B 2x1, $AB_ROUNDS alternating rounds, medians:"
  first="" firstc=""
  for g in $GEMMS; do
    med=$(echo ${AB[$g]} | median); medc=$(echo ${ABC[$g]} | median)
    [ -z "$first" ] && first=$med && firstc=$medc
    line+=" --gemm $g $(printf %.3f "$med") records/s ($(ratio "$med" "$first")), $medc records per CPU-second of a rank ($(ratio "$medc" "$firstc"));"
  done
  echo "$line"
  [ -n "$PROF" ] && echo "$J21" | python3 -c 'import json,sys; [print("     %-26s %7.3f s  %5.1f%%" % (p["kernel"], p["s_per_step"], 100*p["share"])) for p in json.load(sys.stdin).get("profile", [])]' 2>/dev/null || true
  best=""
  if [ "$TORCH_PYTHON" != none ] && [ -f "$ANCHORS/pytorch_code_step.py" ]; then
    # The anchors' commands (A_<label>; the paired rounds below rerun the best two-core one).
    A_t2=("$TORCH_PYTHON" "$ANCHORS/pytorch_code_step.py" --pairs "$RECORDS" --local "$L" --threads 2 --steps "$STEPS")
    A_t1=("$TORCH_PYTHON" "$ANCHORS/pytorch_code_step.py" --pairs "$RECORDS" --local "$L" --threads 1 --steps "$STEPS")
    # torch.compile (inductor) compiles during the anchor's warm-up steps, outside its timing.
    A_compile=("${A_t2[@]}" --compile)
    TORCHRUN=$(dirname "$TORCH_PYTHON")/torchrun
    A_ddp=(env OMP_NUM_THREADS=1 "$TORCHRUN" --nproc_per_node=2 "$ANCHORS/pytorch_code_ddp.py" --pairs "$RECORDS" --local-size "$L"
           --steps "$STEPS")
    T2=$(anchor t2 "${A_t2[@]}")
    TD=""
    [ -x "$TORCHRUN" ] && TD=$(anchor ddp "${A_ddp[@]}")
    TC=""
    [ "${TORCH_COMPILE:-1}" = 1 ] && TC=$(anchor compile "${A_compile[@]}")
    T1=$(anchor t1 "${A_t1[@]}")
    tp() { [ -n "$1" ] && pct "$(echo "$1 * $GPR" | bc)" "$2" || echo "n/a"; }
    printf "   torch 1 process x 2 threads: %s records/s (%s of FMA peak)   compiled, 2 threads: %s (%s)   DDP 2 ranks x 1 thread: %s records/s (%s)   1 x 1: %s records/s (%s)\n" \
      "$(shown t2 "$T2")" "$(tp "$T2" 2)" "$(shown compile "$TC")" "$(tp "$TC" 2)" "$(shown ddp "$TD")" "$(tp "$TD" 2)" \
      "$(shown t1 "$T1")" "$(tp "$T1" 1)"
    best=$(printf "%s\n%s\n%s\n" "$T2" "$TC" "$TD" | grep . | sort -g | tail -1)
    ourbest=$(printf "%s\n%s\n" "$R1x2" "$R2x1" | sort -g | tail -1)
    echo "   ratio cde best two-core / torch best two-core: $(ratio "$ourbest" "$best")  (2x1: $(ratio "$R2x1" "$best"), 1x2: $(ratio "$R1x2" "$best")); one core: $(ratio "$R1x1" "$T1")"
    if [ "$PAIRED_ROUNDS" -gt 0 ] && [ -n "$best" ]; then
      ours=2x1
      [ "$(echo "$R1x2 > $R2x1" | bc)" = 1 ] && ours=1x2
      # The best anchor's label (ties: DDP, then compile, then 2 threads).
      theirs=t2 name="torch 2 threads"
      [ "$TC" = "$best" ] && theirs=compile name="torch.compile, 2 threads"
      [ "$TD" = "$best" ] && theirs=ddp name="torch DDP 2x1"
      echo "   paired, cde $ours against $name (the best two-core layouts above), $PAIRED_ROUNDS rounds, order swapped each round: $(paired "$ours" "$theirs")"
    fi
    if [ -n "$RB" ]; then  # PyTorch's own mixed precision: the anchors under CPU autocast to bf16
      TB2=$(anchor bf16 "$TORCH_PYTHON" "$HERE/scripts/torch_autocast_bf16.py" "$ANCHORS/pytorch_code_step.py" --pairs "$RECORDS" --local "$L" \
        --threads 2 --steps "$STEPS")
      TBD=""
      [ -x "$TORCHRUN" ] && TBD=$(anchor bf16ddp env OMP_NUM_THREADS=1 "$TORCHRUN" --nproc_per_node=2 "$HERE/scripts/torch_autocast_bf16.py" \
        "$ANCHORS/pytorch_code_ddp.py" --pairs "$RECORDS" --local-size "$L" --steps "$STEPS")
      bestb=$(printf "%s\n%s\n" "$TB2" "$TBD" | grep . | sort -g | tail -1)
      echo "   torch autocast bf16, 2 threads: $(shown bf16 "$TB2") records/s   DDP 2x1: $(shown bf16ddp "$TBD"); ratio cde 2x1 bf16 / torch best bf16: $(ratio "$RB" "$bestb"), / torch best fp32: $(ratio "$RB" "$best")"
    fi
  else
    echo "   (PyTorch anchors skipped: set TORCH_PYTHON to a python with torch and timm)"
  fi
done

# Inference: forward passes only (cde embed's path) against transformers' ViTModel with ViT-Tiny's
# shape on the same cores, when the torch python also has transformers. IMAGES images per pass.
IMAGES=${IMAGES:-32}
echo "== Inference, $IMAGES images per pass per rank at the model's resolution, $STEPS timed passes"
I12=$("$BIN" bench --inference --records "$IMAGES" --steps "$STEPS" --threads 2 --json ${CONFIG:+--config "$CONFIG"} | json images_per_s)
I21=$("${MPIRUN[@]}" "$BIN" bench --inference --records "$IMAGES" --steps "$STEPS" --threads 1 --json ${CONFIG:+--config "$CONFIG"} | json images_per_s)
I11=$("$BIN" bench --inference --records "$IMAGES" --steps "$STEPS" --threads 1 --json ${CONFIG:+--config "$CONFIG"} | json images_per_s)
printf "   cde   1x2: %.1f images/s   2x1: %.1f images/s   1x1: %.1f images/s\n" "$I12" "$I21" "$I11"
if [ "$TORCH_PYTHON" != none ] && "$TORCH_PYTHON" -c 'import transformers' 2>/dev/null; then
  rate() { grep -o '^[0-9.]* images/s' | cut -d' ' -f1; }
  H2=$("$TORCH_PYTHON" "$HERE/scripts/hf_vit_inference.py" --images "$IMAGES" --threads 2 --steps "$STEPS" | rate)
  H1=$("$TORCH_PYTHON" "$HERE/scripts/hf_vit_inference.py" --images "$IMAGES" --threads 1 --steps "$STEPS" | rate)
  printf "   transformers ViTModel, 2 threads: %s images/s   1 thread: %s images/s\n" "$H2" "$H1"
  ourbest=$(printf "%s\n%s\n" "$I12" "$I21" | sort -g | tail -1)
  echo "   ratio cde best two-core / transformers two threads: $(ratio "$ourbest" "$H2"); one core: $(ratio "$I11" "$H1")"
else
  echo "   (transformers skipped: set TORCH_PYTHON to a python with torch and transformers)"
fi

# The peak readings of the run: a spread over 10 % means the host was contended while some were
# taken, and the shares are approximate (the ratios, measured side by side, are not affected).
fma_reading "at the end" ""
spread() { tr ' ' '\n' | { grep . || true; } | sort -g | awk '{a[NR]=$1} END {if (NR) printf "%.0f", 100 * (a[NR] - a[1]) / a[NR]}'; }
echo "== FMA peak readings ($PEAK_ISA loop, GFLOP/s per core): $READINGS(spread $(echo "$READINGS" | spread)%)${READINGSB:+; bf16 dot: $READINGSB(spread $(echo "$READINGSB" | spread)%)}"
SP=$(echo "$READINGS" | spread) SPB=$(echo "$READINGSB" | spread)
if [ "${SP:-0}" -gt 10 ] || [ "${SPB:-0}" -gt 10 ]; then
  echo "   the readings differ by over 10%: the host was contended during part of the run; shares of the peak are approximate, ratios stand"
fi
