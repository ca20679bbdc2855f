#!/usr/bin/env bash
# Multi-process tests: every collective against closed-form values under
# mpirun with 1, 2 and 4 ranks, then the failure paths (a wrong value must be
# reported, abort must end the whole job with the code given).
# Usage: scripts/test-mpi.sh [path/to/cde]
set -uo pipefail
BIN=${1:-.build/release/cde}
KEEP_GOING=1  # every check runs; the summary line counts the failures
. "$(dirname "$0")/lib.sh"
# One compute thread per rank: the checks are about communication only.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 CDE_THREADS=1
log=$(mktemp); trap 'rm -f "$log"' EXIT

if "$BIN" selftest collectives >"$log" 2>&1; then ok "single process"; else fail "single process"; cat "$log"; fi

for np in 1 2 4; do
  if timeout 300 "${MPIRUN[@]}" -np "$np" "$BIN" selftest collectives >"$log" 2>&1; then
    ok "mpirun -np $np: $(grep 'collectives selftest' "$log" | tail -1)"
  else
    fail "mpirun -np $np"; cat "$log"
  fi
done

# A corrupted input must be caught (non-zero exit, FAIL lines).
if timeout 300 "${MPIRUN[@]}" -np 2 "$BIN" selftest collectives --corrupt >"$log" 2>&1; then
  fail "mpirun -np 2 --corrupt exited 0"; cat "$log"
elif grep -q "FAIL allReduceSum" "$log"; then ok "mpirun -np 2: corrupted all-reduce detected"
else fail "mpirun -np 2 --corrupt: no FAIL line"; cat "$log"; fi

# abort(3) on rank 1 ends every rank with status 3.
timeout 120 "${MPIRUN[@]}" -np 2 "$BIN" selftest collectives --abort-rank 1 >"$log" 2>&1
rc=$?
if [ "$rc" = 3 ]; then ok "mpirun -np 2: abort(3) on rank 1 ends the job with status 3"
else fail "abort: exit status $rc, expected 3"; cat "$log"; fi

# GEMM library choice: rank 0 decides and broadcasts. Rank 1 runs oneDNN limited to AVX2, where it
# would choose alone otherwise (fewer row-stable classes): both ranks must still install rank 0's plan.
cfg=$(mktemp --suffix .yaml); trap 'rm -f "$log" "$cfg"' EXIT
printf 'model:\n  depth: 1\n  image_size: 32\n' >"$cfg"
GB=(bench --config "$cfg" --records 2 --local-size 16 --steps 1 --warmup 0 --json --gemm onednn)
alone0=$("$BIN" "${GB[@]}" | json_get gemm_plan)
alone1=$(ONEDNN_MAX_CPU_ISA=AVX2 "$BIN" "${GB[@]}" | json_get gemm_plan)
out=$(timeout 300 "${MPIRUN[@]}" -np 1 "$BIN" "${GB[@]}" : -np 1 -x ONEDNN_MAX_CPU_ISA=AVX2 "$BIN" "${GB[@]}" 2>&1)
if [ "$(echo "$out" | json_get gemm_plan_ranks_identical)" = true ] && [ "$(echo "$out" | json_get gemm_plan)" = "$alone0" ] \
   && echo "$alone0" | grep -q onednn; then
  ok "mpirun -np 2: both ranks run rank 0's GEMM plan ($(echo "$alone0" | grep -o onednn | wc -l) classes on oneDNN; rank 1 alone would choose $([ "$alone0" = "$alone1" ] && echo the same || echo differently))"
else
  fail "mpirun -np 2: GEMM plans differ across ranks or from rank 0's own choice"; echo "$out"; echo "alone: $alone0"
fi

# Blocked in MPI per rank: rank 0's figure lies between the least and the most over the ranks, the
# gradient wait (after the forward pass) is part of it, and no rank waits longer than the slowest step.
out=$(timeout 300 "${MPIRUN[@]}" -np 2 "$BIN" bench --config "$cfg" --records 2 --local-size 16 --steps 2 --warmup 0 --json 2>&1)
if echo "$out" | grep '^{' | tail -1 | python3 -c '
import json, sys
j = json.load(sys.stdin)
counted = sys.argv[1] == "1"
lo, r0, hi, g, step = (j[k] for k in ("comm_blocked_s_min_rank", "comm_blocked_s", "comm_blocked_s_max_rank", "gradient_wait_s", "step_s_median_slowest_rank"))
clo, c0, chi = (j[k] for k in ("compute_s_min_rank", "compute_s", "compute_s_max_rank"))
ulo, u0, uhi = (j[k] for k in ("cpu_s_per_step_min_rank", "cpu_s_per_step_rank0", "cpu_s_per_step_max_rank"))
steal_ok = 0 <= j["host_steal_share"] <= 1 if counted else "host_steal_share" not in j
sys.exit(0 if 0 <= lo <= r0 <= hi <= step and 0 <= g <= r0 and 0 < clo <= c0 <= chi and 0 < ulo <= u0 <= uhi
         and steal_ok else 1)' "$(steal_counted && echo 1 || echo 0)"; then
  ok "mpirun -np 2: bench reports blocked-in-MPI per rank ($(printf %.4f "$(echo "$out" | json_get comm_blocked_s_min_rank)")-$(printf %.4f "$(echo "$out" | json_get comm_blocked_s_max_rank)") s) around rank 0's, its gradient wait within it"
else
  fail "mpirun -np 2: blocked-in-MPI, compute or CPU figures out of order (min <= rank 0 <= max; blocked <= slowest step, gradient wait <= rank 0), or a steal share outside [0, 1] (or present without the counter)"; echo "$out"
fi

# An imbalance the per-rank figures must show: rank 1 sleeps 0.3 s at the start of every step
# (CDE_BENCH_EXTRA_S), work rank 0 does not have. Rank 1's compute seconds then exceed rank 0's by
# about that, rank 0 waits about that long blocked in MPI, and the CPU seconds (a sleep uses none)
# stay close.
B=(bench --config "$cfg" --records 2 --local-size 16 --steps 2 --warmup 1 --json)
out=$(timeout 300 "${MPIRUN[@]}" -np 1 "$BIN" "${B[@]}" : -np 1 -x CDE_BENCH_EXTRA_S=0.3 "$BIN" "${B[@]}" 2>&1)
if echo "$out" | grep '^{' | tail -1 | python3 -c '
import json, sys
j = json.load(sys.stdin)
gap = j["compute_s_max_rank"] - j["compute_s_min_rank"]
sys.exit(0 if 0.25 <= gap <= 0.6 and j["compute_s"] == j["compute_s_min_rank"] and j["comm_blocked_s"] >= 0.25
         and j["cpu_s_per_step_max_rank"] - j["cpu_s_per_step_min_rank"] < 0.15 else 1)'; then
  ok "mpirun -np 2, rank 1 given 0.3 s more per step: compute $(printf %.3f "$(echo "$out" | json_get compute_s_min_rank)")-$(printf %.3f "$(echo "$out" | json_get compute_s_max_rank)") s over the ranks, rank 0 blocked $(printf %.3f "$(echo "$out" | json_get comm_blocked_s)") s"
else
  fail "mpirun -np 2 with rank 1 sleeping 0.3 s per step: want compute seconds 0.25-0.6 s apart (rank 0 the least), rank 0 blocked >= 0.25 s, CPU seconds within 0.15 s"; echo "$out"
fi

echo "mpi: $pass passed, $failed failed"
[ "$failed" = 0 ]
