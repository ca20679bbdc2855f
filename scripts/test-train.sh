#!/usr/bin/env bash
# Training end to end under mpirun: exact resume after kill -9, resume with
# another rank count, SIGTERM checkpointing, corrupt-checkpoint fallback, and a
# checkpoint that timm's layout accepts. A tiny ViT on a few synthetic records.
set -euo pipefail
BIN=$(realpath "${1:-.build/release/cde}")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"

"$BIN" shards synth --out "$T/data" --records 48 --shard-size 16 --seed 5 >/dev/null
TINY=("${TINY_ARGS[@]}" --set "data.train=[$T/data]" --set train.steps=20 --set checkpoint.every_steps=10
      --set checkpoint.keep=3 --set train.log_every=5)
ckpt() { echo "$1/checkpoints/step-$(printf %08d "$2")"; }
# The runs compared bit for bit below must compute alike: oneDNN wherever its rows are stable
# (deterministic on a given machine), instead of `auto`'s timing, which may choose differently per run.
export CDE_GEMM=onednn

# A: 2k = 20 steps without interruption.
CDE_TRACE_RECORDS="$T/traceA" "${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --out "$T/A" >"$T/A.log"
[ -f "$(ckpt "$T/A" 20)/model.safetensors" ] || fail "run A has no step-20 checkpoint"
[ "$(json_get state "$T/A/status.json")" = finished ] || fail "run A not finished"
[ -s "$T/A/metrics.jsonl" ] && ls "$T/A"/events.out.tfevents.* >/dev/null || fail "run A has no metrics or TensorBoard events"
# 2 ranks: the MPI share per rank (min <= rank 0's <= max) and the overlap of the gradient all-reduce, in [0, 1].
python3 - "$T/A/metrics.jsonl" "$(steal_counted && echo 1 || echo 0)" <<'PY' || fail "run A: comm_frac_min/max, allreduce_overlap or host_steal_frac missing or inconsistent"
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])][-1]
assert m["comm_frac_min"] <= m["comm_frac"] + 1e-12 <= m["comm_frac_max"] + 2e-12, m
assert 0 <= m["allreduce_overlap"] <= 1 and m["allreduce_alone_s"] > 0 and m["allreduce_wait_s"] >= 0, m
# The host's share of the machine's CPU time, wherever /proc/stat counts steal (lib.sh steal_counted).
assert sys.argv[2] == "0" or 0 <= m["host_steal_frac"] <= 1, m
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
if CDE_FAULT_KILL_AT_STEP=13 CDE_FAULT_RANK=1 "${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --out "$T/B" >"$T/B1.log" 2>&1; then
  fail "run B should have died"
fi
[ -d "$(ckpt "$T/B" 10)" ] || fail "run B lost its step-10 checkpoint"
"${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --out "$T/B" --resume auto >"$T/B2.log"
grep -q "resuming from .*step-00000010" "$T/B2.log" || { cat "$T/B2.log"; fail "run B did not resume from step 10"; }
cmp "$(ckpt "$T/A" 20)/model.safetensors" "$(ckpt "$T/B" 20)/model.safetensors" \
  || fail "model after kill -9 and resume differs from the uninterrupted run"
cmp "$(ckpt "$T/A" 20)/optimizer.safetensors" "$(ckpt "$T/B" 20)/optimizer.safetensors" \
  || fail "optimizer state after resume differs"
ok "kill -9 of rank 1 at step 13, resume from step 10: model.safetensors bit-identical to the uninterrupted run"

# optim.precision bf16 where the CPU has bf16 instructions (elsewhere test-portable checks the refusal):
# the same kill -9 and resume, bit-identical again; and a resume of an fp32 checkpoint under bf16 is a config change.
if bf16_cpu; then
  BF=("${TINY[@]}" --set optim.precision=bf16)
  "${MPIRUN[@]}" -np 2 "$BIN" train "${BF[@]}" --out "$T/E" >"$T/E.log" 2>&1 || { cat "$T/E.log"; fail "bf16 run E failed"; }
  if CDE_FAULT_KILL_AT_STEP=13 CDE_FAULT_RANK=1 "${MPIRUN[@]}" -np 2 "$BIN" train "${BF[@]}" --out "$T/EB" >"$T/EB1.log" 2>&1; then
    fail "bf16 run EB should have died"
  fi
  "${MPIRUN[@]}" -np 2 "$BIN" train "${BF[@]}" --out "$T/EB" --resume auto >"$T/EB2.log" 2>&1 || { cat "$T/EB2.log"; fail "bf16 resume failed"; }
  for f in model optimizer; do
    cmp "$(ckpt "$T/E" 20)/$f.safetensors" "$(ckpt "$T/EB" 20)/$f.safetensors" || fail "bf16: $f after kill -9 and resume differs"
  done
  cmp -s "$(ckpt "$T/A" 20)/model.safetensors" "$(ckpt "$T/E" 20)/model.safetensors" && fail "bf16 run E equals fp32 run A: bf16 not used"
  rc=0; "${MPIRUN[@]}" -np 2 "$BIN" train "${BF[@]}" --out "$T/Ebad" --resume "$(ckpt "$T/A" 10)" >"$T/Ebad.log" 2>&1 || rc=$?
  [ "$rc" != 0 ] && grep -q 'optim.precision "fp32" -> "bf16"' "$T/Ebad.log" || { cat "$T/Ebad.log"; fail "fp32 checkpoint resumed under bf16 without --allow-config-change"; }
  ok "optim.precision bf16: kill -9 at step 13 and resume bit-identical to the uninterrupted bf16 run; an fp32 checkpoint under bf16 is refused as a config change"
else
  echo "note: this CPU has neither avx512_bf16 nor amx_bf16: the bf16 resume check is left out (test-portable checks the refusal)"
fi

# The GEMM plan is part of the run: it is in the checkpoint, and a resume under `auto` reuses it.
grep -q '"gemm" *: *"[^"]*onednn' "$(ckpt "$T/A" 10)/trainer.json" || fail "run A's step-10 checkpoint names no oneDNN GEMM plan"
CDE_GEMM=auto "${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --set train.steps=11 --out "$T/Aauto" --resume "$(ckpt "$T/A" 10)" --allow-config-change \
  --set checkpoint.every_steps=100 >"$T/Aauto.log" 2>&1 || { cat "$T/Aauto.log"; fail "resume under CDE_GEMM=auto failed"; }
grep -q "from its checkpoint" "$T/Aauto.log" || { cat "$T/Aauto.log"; fail "resume under auto did not reuse the checkpoint's GEMM plan"; }
ok "GEMM plan stored in the checkpoint and reused by a resume under auto"
# ... and in RUN/gemm.txt at start-up, which a restart before the first checkpoint reuses.
[ -s "$T/A/gemm.txt" ] && python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["gemm"] != open(sys.argv[2]).read().strip())' \
  "$(ckpt "$T/A" 10)/trainer.json" "$T/A/gemm.txt" \
  || fail "run A's gemm.txt is missing or differs from its checkpoint's plan"
mkdir -p "$T/Arestart" && cp "$T/A/gemm.txt" "$T/Arestart/"
CDE_GEMM=auto "${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --set train.steps=1 --out "$T/Arestart" --resume auto \
  >"$T/Arestart.log" 2>&1 || { cat "$T/Arestart.log"; fail "a start under auto with RUN/gemm.txt and no checkpoint failed"; }
grep -q "from RUN/gemm.txt" "$T/Arestart.log" && cmp -s "$T/A/gemm.txt" "$T/Arestart/gemm.txt" \
  || { cat "$T/Arestart.log"; fail "a restart before the first checkpoint did not reuse RUN/gemm.txt"; }
ok "GEMM plan in RUN/gemm.txt reused by a restart before the first checkpoint"

# C: the step-10 checkpoint resumed with 1 rank and with 4 ranks reads the same global record order.
for np in 1 4; do
  mkdir -p "$T/C$np/checkpoints" && cp -r "$(ckpt "$T/A" 10)" "$T/C$np/checkpoints/"
  CDE_TRACE_RECORDS="$T/traceC$np" "${MPIRUN[@]}" -np $np "$BIN" train "${TINY[@]}" --out "$T/C$np" --resume auto >"$T/C$np.log"
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
"${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --out "$T/D" --resume auto >"$T/D.log" 2>"$T/D.err"
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
  local reached=0
  for _ in $(seq 1 300); do grep -q "^step 10/" "$T/$name.log" 2>/dev/null && { reached=1; break; }; sleep 0.1; done
  if [ $reached = 0 ]; then
    kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
    cat "$T/$name.log"; fail "$name: no \"step 10/\" line within 30 s; SIG$sig not sent"
  fi
  kill -"$sig" $pid
  local rc=0; wait $pid || rc=$?
  [ -z "$want" ] || [ $rc = "$want" ] || { cat "$T/$name.log"; fail "$name: status $rc after SIG$sig"; }
  [ "$(json_get state "$T/$name/status.json")" = stopped ] || { cat "$T/$name.log"; fail "$name: status.json does not say stopped"; }
  local stopped
  stopped=$(sed -n 's/.*stopped on SIG[A-Z0-9]* at step \([0-9]*\).*/\1/p' "$T/$name.log")
  [ -n "$stopped" ] && [ -f "$(ckpt "$T/$name" "$stopped")/model.safetensors" ] || { cat "$T/$name.log"; fail "$name: no checkpoint of the current step"; }
  ok "$name: SIG$sig -> checkpoint of step $stopped, exit status $rc"
}
stop_test E1 TERM 0 env CDE="$BIN" bash cluster/cde-mpirun.sh -n 2 --threads 1 --
stop_test E2 USR1 0 "${MPIRUN[@]}" -np 2 "$BIN"
stop_test E3 TERM "" "${MPIRUN[@]}" -np 2 "$BIN"

# G: a probe evaluation during training gives what `cde embed` + `cde eval` give for the same checkpoint
# and images, alone and under mpirun -np 2 (the ranks embed contiguous shares of the batches).
"$BIN" shards synth --layout folders --records 12 --seed 1001 --out "$T/probe" >/dev/null
"$BIN" shards synth --layout folders --records 8 --seed 1002 --out "$T/test" >/dev/null
EVAL=(--set "eval.probe=[$T/probe]" --set "eval.test=[$T/test]" --set eval.classifiers=linear,knn,svm
      --set eval.max_probe_images=40 --set eval.max_test_images=30)
# The capped sets: 40 / 5 classes = the first 8 probe images of each class folder, 30 / 5 = the first 6 test images.
for split in probe:8 test:6; do
  name=${split%:*} n=${split#*:}
  for c in real gen_0 gen_1 gen_2 gen_3; do
    mkdir -p "$T/$name-cap/$c"
    (cd "$T/$name/$c" && ls | LC_ALL=C sort | head -"$n" | xargs -I{} cp {} "$T/$name-cap/$c/")
  done
done
for np in 1 2; do
  "${MPIRUN[@]}" -np $np "$BIN" train "${TINY[@]}" "${EVAL[@]}" --set train.steps=6 --set eval.every_steps=6 --out "$T/G$np" >"$T/G$np.log"
  grep -q "^eval step 6: .*40 probe + 30 test images" "$T/G$np.log" || { cat "$T/G$np.log"; fail "G$np: no evaluation line at step 6"; }
  for split in probe test; do
    "$BIN" embed --model "$(ckpt "$T/G$np" 6)" --config "$T/G$np/config.yaml" --preprocess resize-crop --quiet \
      --out "$T/G$np-$split.safetensors" "$T/$split-cap"
  done
  "$BIN" eval --probe "$T/G$np-probe.safetensors" --test "$T/G$np-test.safetensors" --classifiers linear,knn,svm --json \
    --no-save >"$T/G$np-eval.json"
  python3 - "$T/G$np/metrics.jsonl" "$T/G$np-eval.json" <<'PY' || fail "G$np: evaluation during training differs from cde eval"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"eval"' in l]
assert len(rows) == 1 and rows[0]["step"] == 6, rows
got, want = rows[0]["eval"], json.load(open(sys.argv[2]))
assert sorted(got) == sorted(want) == ["knn", "linear", "svm"], (sorted(got), sorted(want))
n = 0
for c in want:
    assert sorted(got[c]) == sorted(want[c]), (c, sorted(got[c]), sorted(want[c]))
    for s in want[c]:
        for k, v in want[c][s].items():
            assert got[c][s][k] == v, (c, s, k, got[c][s][k], v)
            n += 1
assert rows[0]["eval_s"] > 0 and rows[0]["eval_best_step"] == 6 and rows[0]["eval_failed"] == 0, rows[0]
print(f"{n} values equal")
PY
  ok "mpirun -np $np: evaluation at the last step equals cde embed + cde eval of its checkpoint (linear, kNN, SVM; accuracies and AUC)"
done
cmp "$(ckpt "$T/G1" 6)/model.safetensors" "$T/G1/checkpoints/best/model.safetensors" || fail "best checkpoint is not the evaluated model"
ok "RUN/checkpoints/best holds the evaluated model"
# Without --config, cde embed takes the shape from the checkpoint's trainer.json (which stores the config
# under the Swift property names, imageSize, lnEps): the same embeddings as with the run's config.yaml.
"$BIN" embed --model "$(ckpt "$T/G1" 6)" --preprocess resize-crop --quiet --out "$T/G1-probe-nocfg.safetensors" "$T/probe-cap" \
  || fail "cde embed of a checkpoint without --config failed"
cmp "$T/G1-probe.safetensors" "$T/G1-probe-nocfg.safetensors" || fail "cde embed without --config differs from --config config.yaml"
ok "cde embed of a checkpoint reads its shape from trainer.json: the embeddings of --config config.yaml"

# H: early stopping (patience 3, an evaluation every 2 steps) killed with SIGKILL after an evaluation that
# did not improve, and resumed: the best metric and the patience count continue, the run stops at the
# same step, with the same final and best models as the uninterrupted run.
H=("${TINY[@]}" "${EVAL[@]}" --set eval.classifiers=linear --set eval.max_probe_images=0 --set eval.max_test_images=0
   --set eval.every_steps=2 --set checkpoint.every_steps=2 --set train.early_stop_patience=3 --set train.steps=200)
"${MPIRUN[@]}" -np 2 "$BIN" train "${H[@]}" --out "$T/HA" >"$T/HA.log"
[ "$(json_get state "$T/HA/status.json")" = early-stopped ] || { cat "$T/HA.log"; fail "run HA did not stop early"; }
S=$(json_get step "$T/HA/status.json")
E=$((S - 2))
python3 - "$T/HA/metrics.jsonl" "$S" <<'PY' >"$T/HA.evals" || fail "run HA: evaluation rows inconsistent with patience 3"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"eval"' in l]
s = int(sys.argv[2])
assert rows[-1]["step"] == s and rows[-1]["eval_stale"] == 3 and rows[-2]["eval_stale"] == 2, rows[-2:]
assert rows[-1]["eval_best"] == max(r["eval_metric"] for r in rows), rows
print(" ".join(f'{r["step"]}:{r["eval_metric"]:.4f}' for r in rows))
PY
if CDE_FAULT_KILL_AT_STEP=$((E + 1)) CDE_FAULT_RANK=1 "${MPIRUN[@]}" -np 2 "$BIN" train "${H[@]}" --out "$T/HB" >"$T/HB1.log" 2>&1; then
  fail "run HB should have died"
fi
"${MPIRUN[@]}" -np 2 "$BIN" train "${H[@]}" --out "$T/HB" --resume auto >"$T/HB2.log"
grep -q "resuming from .*step-$(printf %08d $E)" "$T/HB2.log" || { cat "$T/HB2.log"; fail "run HB did not resume from step $E"; }
[ "$(json_get state "$T/HB/status.json") $(json_get step "$T/HB/status.json")" = "early-stopped $S" ] || { cat "$T/HB2.log"; fail "run HB did not stop early at step $S"; }
for f in model optimizer; do
  cmp "$(ckpt "$T/HA" "$S")/$f.safetensors" "$(ckpt "$T/HB" "$S")/$f.safetensors" || fail "HB: final $f differs from HA"
done
cmp "$T/HA/checkpoints/best/model.safetensors" "$T/HB/checkpoints/best/model.safetensors" || fail "HB: best model differs from HA"
python3 - "$T/HA/metrics.jsonl" "$T/HB/metrics.jsonl" "$(ckpt "$T/HB" "$E")/trainer.json" <<'PY' || fail "HB: evaluation rows or saved state differ from HA"
import json, sys
def rows(p): return [{k: v for k, v in json.loads(l).items() if k not in ("time", "eval_s")} for l in open(p) if '"eval"' in l]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert a == b, (a, b)
st = json.load(open(sys.argv[3]))["earlyStopping"]
assert st["stale"] == 2 and st["best"] == a[-2]["eval_best"] and st["bestStep"] == a[-2]["eval_best_step"], st
PY
"${MPIRUN[@]}" -np 2 "$BIN" train "${H[@]}" --out "$T/HB" --resume auto >"$T/HB3.log"
grep -q "^early stop at step $S" "$T/HB3.log" && ! grep -q "^step " "$T/HB3.log" || { cat "$T/HB3.log"; fail "HB: resuming an early-stopped run trained again"; }
ok "early stop at step $S (patience 3; step:metric $(cat "$T/HA.evals")); kill -9 at step $((E + 1)), resume from step $E (2 evaluations without improvement): same stop, final and best models bit-identical"

# I: evaluation paths that do not exist or hold no labelled images: one line before the first step.
mkdir -p "$T/empty" "$T/unlabelled" "$T/onlyreal/real"
cp "$(ls "$T/probe/real/"* | head -1)" "$T/unlabelled/x.png"
cp "$(ls "$T/probe/real/"* | head -1)" "$T/onlyreal/real/"
bad_eval() {  # name, expected message, --set overrides...
  local name=$1 want=$2; shift 2
  if "$BIN" train "${TINY[@]}" "${EVAL[@]}" --set eval.every_steps=5 "$@" --out "$T/I$name" >"$T/I$name.out" 2>"$T/I$name.err"; then
    fail "I$name: accepted"
  fi
  [ "$(wc -l <"$T/I$name.err")" = 1 ] && grep -q -- "$want" "$T/I$name.err" || { cat "$T/I$name.err"; fail "I$name: expected one line with '$want'"; }
  ! grep -q "^step \|^training " "$T/I$name.out" && [ ! -d "$T/I$name/checkpoints" ] || fail "I$name: training started"
  ok "bad evaluation input ($name) before the first step: $(cat "$T/I$name.err")"
}
bad_eval missing "eval.probe: $T/nope: no such file or directory" --set "eval.probe=[$T/nope]"
bad_eval empty "eval.test: .*$T/empty" --set "eval.test=[$T/empty]"
bad_eval unlabelled "eval.probe: $T/unlabelled: no labelled images" --set "eval.probe=[$T/unlabelled]"
bad_eval onlyreal "eval.test: $T/onlyreal: needs real and generated" --set "eval.test=[$T/onlyreal]"

# F: bad config keys are one clear error.
if "$BIN" train --config configs/smoke.yaml --set model.widht=3 --out "$T/F" 2>"$T/F.err"; then fail "bad key accepted"; fi
grep -q "model.widht" "$T/F.err" || { cat "$T/F.err"; fail "error does not name the key"; }
ok "unknown config key is one clear error: $(head -1 "$T/F.err")"

# J: --dump-views writes the initial weights and, per step and rank, what was trained on, without
# changing training: the final model is bit-identical to run A's.
"${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --out "$T/G" --dump-views "$T/G/views" >"$T/G.log"
cmp "$(ckpt "$T/A" 20)/model.safetensors" "$(ckpt "$T/G" 20)/model.safetensors" || fail "--dump-views changed training"
n=$(ls "$T/G/views"/step-*.rank[01].safetensors | wc -l)
[ "$n" = 40 ] && [ -f "$T/G/views/init.safetensors" ] || fail "--dump-views wrote $n step files (expected 40) or no init.safetensors"
if "$BIN" train "${TINY[@]}" --out "$T/G2" --dump-views /proc/cde-no-such-dir 2>"$T/G2.err"; then fail "unwritable --dump-views accepted"; fi
grep -q -- "--dump-views /proc/cde-no-such-dir" "$T/G2.err" || { cat "$T/G2.err"; fail "error does not name --dump-views"; }
ok "--dump-views: init weights and 2 x 20 step files, final model bit-identical to the run without it"

# K: trajectory parity: 20 steps of warmup + cosine with weight decay on 2 ranks and on 1 rank against the
# PyTorch + timm replay committed by scripts/parity_train.py (losses 1e-3 relative, parameters 1e-2).
python3 scripts/parity_train.py --cde "$BIN" --check-fixtures Tests/Fixtures/Training/trajectory >"$T/H.log" 2>&1 \
  || { cat "$T/H.log"; fail "trajectory differs from the PyTorch fixtures"; }
ok "trajectory parity with PyTorch + timm: $(grep -c -- '-> PASS' "$T/H.log") runs (2 ranks, 1 rank) within tolerance; $(grep '(2 ranks) vs' "$T/H.log" | tail -1 | sed 's/.*: worst/worst/; s/ (blocks.*//')"

echo "train: $pass passed"
