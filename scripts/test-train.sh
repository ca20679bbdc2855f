#!/usr/bin/env bash
# Training end to end under mpirun: exact resume after kill -9, resume with
# another rank count, SIGTERM checkpointing, corrupt-checkpoint fallback, and a
# checkpoint that timm's layout accepts. A tiny ViT on a few synthetic records.
set -euo pipefail
BIN=$(realpath "${1:-.build/release/cde}")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN="mpirun --oversubscribe --bind-to none"
pass=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
fail() { echo "FAIL $*"; exit 1; }

"$BIN" shards synth --out "$T/data" --records 48 --shard-size 16 --seed 5 >/dev/null
TINY=(--config configs/smoke.yaml --set "data.train=[$T/data]" --set model.width=32 --set model.depth=2
      --set model.heads=2 --set model.patch=16 --set model.image_size=32 --set data.local_size=16 --set train.global_batch=8
      --set train.steps=20 --set checkpoint.every_steps=10 --set checkpoint.keep=3 --set train.log_every=5
      --set optim.warmup_steps=5 --set data.loader_threads=1 --set train.consistency_check_every=5 --threads 1)
ckpt() { echo "$1/checkpoints/step-$(printf %08d "$2")"; }

# A: 2k = 20 steps without interruption.
CDE_TRACE_RECORDS="$T/traceA" $MPIRUN -np 2 "$BIN" train "${TINY[@]}" --out "$T/A" >"$T/A.log"
[ -f "$(ckpt "$T/A" 20)/model.safetensors" ] || fail "run A has no step-20 checkpoint"
grep -q '"state":"finished"' "$T/A/status.json" || fail "run A not finished"
[ -s "$T/A/metrics.jsonl" ] && ls "$T/A"/events.out.tfevents.* >/dev/null || fail "run A has no metrics or TensorBoard events"
# 2 ranks: the MPI share per rank (min <= rank 0's <= max) and the overlap of the gradient all-reduce, in [0, 1].
python3 - "$T/A/metrics.jsonl" <<'PY' || fail "run A: comm_frac_min/max or allreduce_overlap missing or inconsistent"
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])][-1]
assert m["comm_frac_min"] <= m["comm_frac"] + 1e-12 <= m["comm_frac_max"] + 2e-12, m
assert 0 <= m["allreduce_overlap"] <= 1 and m["allreduce_alone_s"] > 0 and m["allreduce_wait_s"] >= 0, m
PY
ok "run of 20 steps under mpirun -np 2 (metrics.jsonl, TensorBoard events, checkpoints)"

# Health figures in every log line: the four terms average to loss_real / loss_fake, loss_collapse = ln(1 + G),
# the ratio is loss / (2 ln(1 + G)); the plateau warnings of the log are those the documented rule
# (docs/training-health.md) gives on the logged figures, at most one per episode.
python3 - "$T/A/metrics.jsonl" "$T/A.log" <<'PY' || fail "run A: health figures missing or inconsistent"
import json, math, re, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
keys = ["loss_global_real", "loss_global_fake", "loss_multiscale_real", "loss_multiscale_fake", "loss_collapse",
        "loss_collapse_ratio", "emb_mean_cos", "emb_centroid_cos", "emb_dim_std", "final_ln_weight_norm",
        "grad_norm_patch_embed", "grad_norm_block_0", "grad_norm_block_1", "grad_norm_final_norm", "grad_norm"]
want, inside, run, first = [], False, 0, 0
for m in lines:
    assert all(k in m for k in keys), [k for k in keys if k not in m]
    assert abs((m["loss_global_real"] + m["loss_multiscale_real"]) / 2 - m["loss_real"]) < 1e-6 * m["loss_real"], m
    assert abs((m["loss_global_fake"] + m["loss_multiscale_fake"]) / 2 - m["loss_fake"]) < 1e-6 * m["loss_fake"], m
    assert abs(m["loss_collapse"] - math.log(1 + 8)) < 1e-12 and abs(m["loss_collapse_ratio"] - m["loss"] / (2 * math.log(9))) < 1e-12
    assert -1 <= m["emb_centroid_cos"] <= 1 and -1 <= m["emb_mean_cos"] <= 1 and m["emb_dim_std"] >= 0
    parts = sum(m[k] ** 2 for k in keys[10:14])
    assert abs(math.sqrt(parts) - m["grad_norm"]) < 1e-9 * m["grad_norm"], m
    r, c = m["loss_collapse_ratio"], m["emb_mean_cos"]
    if inside:
        inside = not (r < 0.95 or c < 0.90)
    elif r > 0.97 and c > 0.95:
        run += 1
        if run == 3:
            want.append(m["step"]); inside = True; run = 0
    else:
        run = 0
got = [int(x) for x in re.findall(r"warning: collapse plateau: \d+ consecutive logs \(steps \d+-(\d+)\)", open(sys.argv[2]).read())]
assert got == want, (got, want)
print(f"plateau warnings at steps {got}")
PY
ok "run A: health figures in every log line, consistent with the loss; plateau warnings as the rule says"

# B: killed with SIGKILL on rank 1 after its step-10 checkpoint, then resumed: bit-identical to A.
if CDE_FAULT_KILL_AT_STEP=13 CDE_FAULT_RANK=1 $MPIRUN -np 2 "$BIN" train "${TINY[@]}" --out "$T/B" >"$T/B1.log" 2>&1; then
  fail "run B should have died"
fi
[ -d "$(ckpt "$T/B" 10)" ] || fail "run B lost its step-10 checkpoint"
$MPIRUN -np 2 "$BIN" train "${TINY[@]}" --out "$T/B" --resume auto >"$T/B2.log"
grep -q "resuming from .*step-00000010" "$T/B2.log" || { cat "$T/B2.log"; fail "run B did not resume from step 10"; }
cmp "$(ckpt "$T/A" 20)/model.safetensors" "$(ckpt "$T/B" 20)/model.safetensors" \
  || fail "model after kill -9 and resume differs from the uninterrupted run"
cmp "$(ckpt "$T/A" 20)/optimizer.safetensors" "$(ckpt "$T/B" 20)/optimizer.safetensors" \
  || fail "optimizer state after resume differs"
ok "kill -9 of rank 1 at step 13, resume from step 10: model.safetensors bit-identical to the uninterrupted run"

# C: the step-10 checkpoint resumed with 1 rank and with 4 ranks reads the same global record order.
for np in 1 4; do
  mkdir -p "$T/C$np/checkpoints" && cp -r "$(ckpt "$T/A" 10)" "$T/C$np/checkpoints/"
  CDE_TRACE_RECORDS="$T/traceC$np" $MPIRUN -np $np "$BIN" train "${TINY[@]}" --out "$T/C$np" --resume auto >"$T/C$np.log"
  # Per step, the sorted multiset of records over all ranks must equal run A's.
  for f in "$T/traceA" "$T/traceC$np"; do
    cat "$f".rank* | awk '$1 >= 10 { for (i = 3; i <= NF; i++) print $1, $i }' | sort -n -k1 -k2 >"$f.steps"
  done
  cmp "$T/traceA.steps" "$T/traceC$np.steps" || fail "resume with $np rank(s) reads another record order"
  ok "resume of the step-10 checkpoint with $np rank(s): same global order of records as the 2-rank run"
  # Same steps from the same parameters: the health figures of steps 15 and 20 equal the 2-rank run's
  # (computed on gathered / all-reduced data; only the summation order differs).
  worst=$(python3 - "$T/A/metrics.jsonl" "$T/C$np/metrics.jsonl" <<'PY'
import json, sys
a, c = ({m["step"]: m for m in map(json.loads, open(p))} for p in sys.argv[1:])
keys = [k for k in a[20] if k.startswith(("loss", "emb_", "grad_norm", "final_ln"))]
worst = 0.0
for s in (15, 20):
    for k in keys:
        worst = max(worst, abs(a[s][k] - c[s][k]) / max(abs(a[s][k]), 1e-3))
print(f"{worst:.1e}")
PY
) || fail "resume with $np rank(s): metrics missing"
  python3 -c "import sys; sys.exit(0 if float('$worst') < 1e-4 else 1)" || fail "health figures with $np rank(s) differ from 2 ranks by $worst"
  ok "health figures of steps 15 and 20 with $np rank(s) equal the 2-rank run's (worst relative difference $worst)"
done

# D: a truncated newest checkpoint is detected and the previous one is used, with a warning.
cp -r "$T/A" "$T/D"
truncate -s 1000 "$(ckpt "$T/D" 20)/model.safetensors"
$MPIRUN -np 2 "$BIN" train "${TINY[@]}" --out "$T/D" --resume auto >"$T/D.log" 2>"$T/D.err"
grep -q "warning:.*step-00000020" "$T/D.log" "$T/D.err" || { cat "$T/D.log" "$T/D.err"; fail "no warning for the corrupt checkpoint"; }
grep -q "resuming from .*step-00000010" "$T/D.log" || fail "did not fall back to step 10"
cmp "$(ckpt "$T/A" 20)/model.safetensors" "$(ckpt "$T/D" 20)/model.safetensors" || fail "fallback run differs from A"
ok "truncated newest checkpoint: warning, previous checkpoint used, same final model"

# E: a stop signal during training: checkpoint of the current step, exit status 0.
#  - SIGTERM to the launcher (cluster/cde-mpirun.sh, what `make run` and the Slurm script use);
#  - SIGUSR1 to a bare mpirun (Slurm's warning signal);
#  - SIGTERM to a bare mpirun: Open MPI 4 kills the ranks a few seconds later and exits 1
#    whatever they do, so only the checkpoint is checked there.
LONG=("${TINY[@]}" --set train.steps=100000 --set checkpoint.every_steps=0)
stop_test() {  # name, signal, expected status ("" = any), launcher...
  local name=$1 sig=$2 want=$3; shift 3
  "$@" train "${LONG[@]}" --out "$T/$name" >"$T/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do grep -q "^step 10/" "$T/$name.log" 2>/dev/null && break; sleep 0.1; done
  kill -"$sig" $pid
  local rc=0; wait $pid || rc=$?
  [ -z "$want" ] || [ $rc = "$want" ] || { cat "$T/$name.log"; fail "$name: status $rc after SIG$sig"; }
  grep -q '"state":"stopped"' "$T/$name/status.json" || { cat "$T/$name.log"; fail "$name: status.json does not say stopped"; }
  local stopped
  stopped=$(sed -n 's/.*stopped on SIG[A-Z0-9]* at step \([0-9]*\).*/\1/p' "$T/$name.log")
  [ -n "$stopped" ] && [ -f "$(ckpt "$T/$name" "$stopped")/model.safetensors" ] || { cat "$T/$name.log"; fail "$name: no checkpoint of the current step"; }
  ok "$name: SIG$sig -> checkpoint of step $stopped, exit status $rc"
}
stop_test E1 TERM 0 env CDE="$BIN" bash cluster/cde-mpirun.sh -n 2 --threads 1 --
stop_test E2 USR1 0 $MPIRUN -np 2 "$BIN"
stop_test E3 TERM "" $MPIRUN -np 2 "$BIN"

# F: bad config keys are one clear error.
if "$BIN" train --config configs/smoke.yaml --set model.widht=3 --out "$T/F" 2>"$T/F.err"; then fail "bad key accepted"; fi
grep -q "model.widht" "$T/F.err" || { cat "$T/F.err"; fail "error does not name the key"; }
ok "unknown config key is one clear error: $(head -1 "$T/F.err")"

# G: --dump-views writes the initial weights and, per step and rank, what was trained on, without
# changing training: the final model is bit-identical to run A's.
$MPIRUN -np 2 "$BIN" train "${TINY[@]}" --out "$T/G" --dump-views "$T/G/views" >"$T/G.log"
cmp "$(ckpt "$T/A" 20)/model.safetensors" "$(ckpt "$T/G" 20)/model.safetensors" || fail "--dump-views changed training"
n=$(ls "$T/G/views"/step-*.rank[01].safetensors | wc -l)
[ "$n" = 40 ] && [ -f "$T/G/views/init.safetensors" ] || fail "--dump-views wrote $n step files (expected 40) or no init.safetensors"
if "$BIN" train "${TINY[@]}" --out "$T/G2" --dump-views /proc/cde-no-such-dir 2>"$T/G2.err"; then fail "unwritable --dump-views accepted"; fi
grep -q -- "--dump-views /proc/cde-no-such-dir" "$T/G2.err" || { cat "$T/G2.err"; fail "error does not name --dump-views"; }
ok "--dump-views: init weights and 2 x 20 step files, final model bit-identical to the run without it"

# H: trajectory parity: 20 steps of warmup + cosine with weight decay on 2 ranks and on 1 rank against the
# PyTorch + timm replay committed by scripts/parity_train.py (losses 1e-3 relative, parameters 1e-2).
python3 scripts/parity_train.py --cde "$BIN" --check-fixtures Tests/Fixtures/Training/trajectory >"$T/H.log" 2>&1 \
  || { cat "$T/H.log"; fail "trajectory differs from the PyTorch fixtures"; }
ok "trajectory parity with PyTorch + timm: $(grep -c -- '-> PASS' "$T/H.log") runs (2 ranks, 1 rank) within tolerance; $(grep '(2 ranks) vs' "$T/H.log" | tail -1 | sed 's/.*: worst/worst/; s/ (blocks.*//')"

echo "train: $pass passed"
