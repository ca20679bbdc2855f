# Shared by scripts/test-*.sh and scripts/bench.sh: `. "$(dirname "$0")/lib.sh"`.
#
# Open MPI: allowed to run as root (containers, CI). Tests run more ranks than the
# machine has cores, so by default ranks are oversubscribed and not bound; a script
# that measures (bench.sh) sets BOUND_RANKS=1 before sourcing and keeps Open MPI's
# default binding of one rank per core.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ "${BOUND_RANKS:-0}" = 1 ]; then
  MPIRUN=(mpirun)
else
  export OMPI_MCA_rmaps_base_oversubscribe=1
  MPIRUN=(mpirun --oversubscribe --bind-to none)
fi

# The tiny ViT of the end-to-end tests as `cde train` options: two blocks of width 32 on
# 32 px images with 16 px local views (TINY_MODEL); TINY_ARGS adds the smoke config and
# what scripts/test-train.sh and scripts/test-ops.sh train it with (a global batch of 8,
# one loader and one compute thread, no evaluation). Each script adds its data, steps
# and checkpoints (a later --set of the same key wins). Paths are relative to the repo.
TINY_MODEL=(--set model.width=32 --set model.depth=2 --set model.heads=2 --set model.patch=16
            --set model.image_size=32 --set data.local_size=16)
TINY_ARGS=(--config configs/smoke.yaml "${TINY_MODEL[@]}" --set train.global_batch=8 --set optim.warmup_steps=5
           --set data.loader_threads=1 --set train.consistency_check_every=5 --set eval.every_steps=0 --threads 1)

# ok MESSAGE: one "ok" line, counted in $pass.
# fail MESSAGE: one "FAIL" line (with $FAIL_NOTE in parentheses when set), then exit 1;
# with KEEP_GOING=1 the failure is counted in $failed and the script goes on.
pass=0
failed=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
fail() {
  echo "FAIL $*${FAIL_NOTE:+ ($FAIL_NOTE)}"
  if [ "${KEEP_GOING:-0}" = 1 ]; then failed=$((failed + 1)); return 0; fi
  exit 1
}

# json_get KEY [FILE]: the value under KEY (a dotted path: a.b.c) of the JSON object in
# FILE or on stdin; when the input is not one JSON document, its last line that starts
# with "{" (a command's --json line after its log lines). Strings are printed bare,
# true/false/null as such, objects and arrays as JSON; nothing when the key is absent.
json_get() {
  python3 -c '
import json, sys
text = open(sys.argv[2]).read() if len(sys.argv) > 2 else sys.stdin.read()
try:
    v = json.loads(text)
except ValueError:
    lines = [l for l in text.splitlines() if l.startswith("{")]
    v = json.loads(lines[-1]) if lines else None
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
if v is None:
    sys.exit(0)
if isinstance(v, bool):
    print("true" if v else "false")
elif isinstance(v, (dict, list)):
    print(json.dumps(v, sort_keys=True))
else:
    print(v)
' "$@"
}

# bf16_cpu: succeeds when this machine's CPU has bf16 instructions (avx512_bf16 or amx_bf16),
# which optim.precision bf16 / --precision bf16 need.
bf16_cpu() { grep -m1 '^flags' /proc/cpuinfo | grep -qwE 'avx512_bf16|amx_bf16'; }
# avx2_fma_cpu: succeeds when this machine's CPU has AVX2 and FMA (what cde's AVX2 GEMM kernel needs).
# steal_counted: succeeds where /proc/stat counts steal time (its `cpu` line has the column; Linux).
steal_counted() { [ -r /proc/stat ] && awk '/^cpu / { exit !(NF >= 9) }' /proc/stat; }
avx2_fma_cpu() { local f; f=$(grep -m1 '^flags' /proc/cpuinfo); grep -qw avx2 <<<"$f" && grep -qw fma <<<"$f"; }
