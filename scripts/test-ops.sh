#!/usr/bin/env bash
# Cluster operations end to end (a tiny ViT on a few synthetic records, 2 ranks):
# restarts of cluster/cde-mpirun.sh --max-restarts after kill -9 of random ranks,
# the stall watchdog (SIGSTOP of a rank), the run-directory lock, refusals at
# start-up (no checkpoint verifies, changed config, read-only or full file
# system), status.json on a disk full during a checkpoint, and Ctrl-C.
# Usage: scripts/test-ops.sh [path/to/cde]   (RANDOM_SEED=N replays a run's random kills)
set -euo pipefail
BIN=$(realpath "${1:-.build/release/cde}")
T=$(mktemp -d)
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
seed=${RANDOM_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$seed
FAIL_NOTE="RANDOM_SEED=$seed"
# The runs compared bit for bit below are separate run directories, each of which would time its
# own plan under `auto` (a restart reuses its run's RUN/gemm.txt, but another run does not), so
# they must compute alike by mode: oneDNN wherever its rows are stable, as in test-train.sh.
export CDE_GEMM=onednn

"$BIN" shards synth --out "$T/data" --records 48 --shard-size 16 --seed 5 >/dev/null
TINY=("${TINY_ARGS[@]}" --set "data.train=[$T/data]" --set train.steps=40 --set checkpoint.every_steps=5
      --set checkpoint.keep=3 --set train.log_every=1)
LONG=("${TINY[@]}" --set train.steps=100000 --set checkpoint.every_steps=0)
LAUNCH=(env CDE="$BIN" CDE_RESTART_BACKOFF=1 bash cluster/cde-mpirun.sh -n 2 --threads 1)
ckpt() { echo "$1/checkpoints/step-$(printf %08d "$2")"; }
same_final() {  # run A, run B, step: model and optimizer state bit-identical
  cmp -s "$(ckpt "$1" "$3")/model.safetensors" "$(ckpt "$2" "$3")/model.safetensors" &&
    cmp -s "$(ckpt "$1" "$3")/optimizer.safetensors" "$(ckpt "$2" "$3")/optimizer.safetensors"
}
wait_for() {  # file, regex, seconds
  local end=$(( SECONDS + $3 ))
  while [ $SECONDS -le $end ]; do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}
end_or_kill() {  # pid, seconds, pids to kill -9 if it still runs then (a hang fails instead of blocking)
  local pid=$1 end=$(( SECONDS + $2 )); shift 2
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
  kill -0 "$pid" 2>/dev/null || return 0
  kill -9 "$@" 2>/dev/null; return 1
}
rank_pid() {  # run directory, rank: pid of that rank's cde process
  local p
  for p in $(pgrep -f "cde train .*--out $1( |$)" || true); do
    grep -qx "OMPI_COMM_WORLD_RANK=$2" <<<"$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null)" && { echo "$p"; return 0; }
  done
  return 1
}

# A: the uninterrupted 40-step run.
"${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --out "$T/A" >"$T/A.log"
[ -f "$(ckpt "$T/A" 40)/model.safetensors" ] || fail "run A has no step-40 checkpoint"

# R: kill -9 of a random rank at 2 or 3 random moments (KILLS=N: N of them), each 2 to 10 steps after
# the launch resumed; --max-restarts finishes the run by itself.
kills=${KILLS:-$(( 2 + RANDOM % 2 ))}
in_launch() {  # log, k, regex: the k-th launch (k-th "training" line) logged a line matching regex
  awk -v k="$2" -v re="$3" '/^training / { n++ } n == k && $0 ~ re { f = 1 } END { exit !f }' "$1"
}
"${LAUNCH[@]}" --max-restarts $(( kills + 1 )) -- train "${TINY[@]}" --out "$T/R" >"$T/R.log" 2>&1 &
pid=$!
done_kills="" n_kills=0
for k in $(seq 1 "$kills"); do
  end=$(( SECONDS + 900 ))
  until in_launch "$T/R.log" "$k" "^training " || [ $SECONDS -gt $end ] || ! kill -0 $pid 2>/dev/null; do sleep 0.05; done
  from=$(in_launch "$T/R.log" "$k" "^training " && awk -v k="$k" '/^training / { n++; if (n == k) { sub(/.*steps /, ""); sub(/\.\..*/, ""); print } }' "$T/R.log")
  [ -n "$from" ] || break
  s=$(( from + 2 + RANDOM % 9 )); [ "$s" -le 39 ] || s=39
  until in_launch "$T/R.log" "$k" "^step $s/" || [ $SECONDS -gt $end ] || ! kill -0 $pid 2>/dev/null; do sleep 0.02; done
  in_launch "$T/R.log" "$k" "^step $s/" || break
  r=$(( RANDOM % 2 ))
  p=$(rank_pid "$T/R" $r) || break
  kill -9 "$p" && done_kills+=" rank $r at step $s," && n_kills=$((n_kills + 1))
done
rc=0; wait $pid || rc=$?
[ "$rc" = 0 ] || { tail -20 "$T/R.log"; fail "R: launcher exit status $rc"; }
n=$(grep -c "cde-mpirun.sh: .* restart [0-9]*/$(( kills + 1 )) " "$T/R.log" || true)
[ "$n_kills" -ge 2 ] && [ "$n" = "$n_kills" ] || { cat "$T/R.log"; fail "R: $n restarts logged for $n_kills kills:$done_kills"; }
[ "$(json_get state "$T/R/status.json")" = finished ] || fail "R: status.json does not say finished"
same_final "$T/A" "$T/R" 40 || fail "R: final model or optimizer differs from the uninterrupted run (kills:$done_kills)"
ok "kill -9 of${done_kills%,}: $n restarts, one line each; final model.safetensors and optimizer.safetensors bit-identical to run A"
[ -z "${KILLS:-}" ] || { echo "ops: KILLS=$KILLS: stopping after the kill test (RANDOM_SEED=$seed)"; exit 0; }

# R2: the Slurm script's restart logic, run by bash outside Slurm (2 tasks): kill -9 of rank 1 once.
SLURM_NTASKS=2 SLURM_NTASKS_PER_NODE=2 SLURM_CPUS_PER_TASK=1 CONFIG=configs/smoke.yaml RUN="$T/SB" CDE="$BIN" \
  CDE_RESTART_BACKOFF=1 bash cluster/slurm/train.sbatch "${TINY[@]:2}" >"$T/SB.log" 2>&1 &
pid=$!
s=$(( 5 + RANDOM % 30 ))
wait_for "$T/SB.log" "^step $s/" 900 && p=$(rank_pid "$T/SB" 1) && kill -9 "$p" || fail "SB: no step $s or no rank 1"
rc=0; wait $pid || rc=$?
[ "$rc" = 0 ] && grep -q "restart 1/4 in 1s after exit status" "$T/SB.log" || { tail -20 "$T/SB.log"; fail "SB: status $rc"; }
same_final "$T/A" "$T/SB" 40 || fail "SB: final model or optimizer differs from run A"
ok "Slurm script: kill -9 of rank 1 at step $s, one restart, final model and optimizer bit-identical to run A"

# S: SIGSTOP of rank 1 with a short train.stall_timeout_s (5 s, or 20 x run A's median step on a busy
# machine): the job ends within the timeout + a few seconds, with one line naming the step and rank 1.
TO=$(python3 - "$T/A/metrics.jsonl" <<'PY'
import json, math, statistics, sys
print(max(5, math.ceil(20 * statistics.median(json.loads(l)["step_s"] for l in open(sys.argv[1])))))
PY
)
"${LAUNCH[@]}" -- train "${LONG[@]}" --set train.stall_timeout_s=$TO --out "$T/S" >"$T/S.log" 2>&1 &
pid=$!
wait_for "$T/S.log" "^step 10/" 600 || fail "S: no step 10"
p=$(rank_pid "$T/S" 1) || fail "S: rank 1 not found"
t0=$(date +%s.%N)
kill -STOP "$p"
# CPU of rank 0 while it waits (after its step finished): clock ticks over 2 s.
p0=$(rank_pid "$T/S" 0)
sleep 1; c0=$(awk '{print $14 + $15}' "/proc/$p0/stat"); sleep 2; c1=$(awk '{print $14 + $15}' "/proc/$p0/stat" 2>/dev/null || echo "$c0")
end_or_kill $pid $(( TO + 30 )) "$p" "$p0" || fail "S: the job still ran $(( TO + 30 )) s after SIGSTOP (rank 0 at $(( (c1 - c0) * 50 / $(getconf CLK_TCK) ))% CPU)"
rc=0; wait $pid || rc=$?
el=$(echo "$(date +%s.%N) - $t0" | bc)
kill -9 "$p" 2>/dev/null || true
line=$(grep "error: stall:" "$T/S.log" || true)
[ "$rc" != 0 ] && [ "$(grep -c "error: stall:" "$T/S.log")" = 1 ] || { cat "$T/S.log"; fail "S: status $rc, expected one stall line"; }
echo "$line" | grep -qE "at step [0-9]+ rank 1 did not arrive" || fail "S: the line does not name rank 1: $line"
python3 -c "import sys; sys.exit(0 if $el < $TO + 3 + 6 else 1)" || fail "S: the job took $el s to end (timeout $TO s)"
cpu=$(python3 -c "print(f'{100 * ($c1 - $c0) / (2 * $(getconf CLK_TCK)):.0f}')")
[ "$cpu" -le 25 ] || fail "S: rank 0 used $cpu% CPU while it waited"
ok "SIGSTOP of rank 1: job ended after $(printf %.1f "$el") s (timeout $TO s), rank 0 waited at $cpu% CPU: $line"

# S2: the same under --max-restarts: the stalled job is restarted and the run completes as run A.
"${LAUNCH[@]}" --max-restarts 2 -- train "${TINY[@]}" --set train.stall_timeout_s=$TO --out "$T/S2" >"$T/S2.log" 2>&1 &
pid=$!
wait_for "$T/S2.log" "^step 12/" 600 || fail "S2: no step 12"
p=$(rank_pid "$T/S2" $(( RANDOM % 2 ))) || fail "S2: rank not found"
kill -STOP "$p"
end_or_kill $pid 900 "$p" "$(rank_pid "$T/S2" 0)" "$(rank_pid "$T/S2" 1)" || fail "S2: the job did not end"
rc=0; wait $pid || rc=$?
kill -9 "$p" 2>/dev/null || true
[ "$rc" = 0 ] && grep -q "error: stall:" "$T/S2.log" && grep -q "restart 1/2" "$T/S2.log" || { cat "$T/S2.log"; fail "S2: status $rc"; }
same_final "$T/A" "$T/S2" 40 || fail "S2: final model or optimizer differs from run A"
ok "SIGSTOP under --max-restarts 2: stall line, one restart, final model and optimizer bit-identical to run A"

# L1: a second job on a running job's directory: one line naming the holder's host and pid, status 78.
"${MPIRUN[@]}" -np 2 "$BIN" train "${LONG[@]}" --out "$T/L" >"$T/L.log" 2>&1 &
pid=$!
wait_for "$T/L.log" "^step 5/" 600 || fail "L1: no step 5"
holder=$(rank_pid "$T/L" 0)
rc=0; "$BIN" train "${LONG[@]}" --out "$T/L" --resume auto >"$T/L2.out" 2>"$T/L2.err" || rc=$?
kill -USR1 $pid; wait $pid || fail "L1: the first job did not stop cleanly"
[ "$rc" = 78 ] && [ "$(wc -l <"$T/L2.err")" = 1 ] || { cat "$T/L2.err"; fail "L1: second job status $rc"; }
grep -q "in use by another job (host $(hostname) pid $holder " "$T/L2.err" || { cat "$T/L2.err"; fail "L1: holder not named (pid $holder)"; }
! grep -q "^step " "$T/L2.out" && python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$T/L/metrics.jsonl" \
  || fail "L1: the second job trained or damaged metrics.jsonl"
ok "second job on a locked run directory: status 78, $(cat "$T/L2.err")"

# L2: a job killed with kill -9 leaves its lock file and a temporary checkpoint directory: the next start
# is not blocked, removes the stale .tmp-step-* before its first step and sets a stale status.json
# ("finished", which would stop a Slurm requeue) to running.
rc=0; CDE_FAULT_KILL_AT_STEP=7 CDE_FAULT_RANK=0 "${MPIRUN[@]}" -np 2 "$BIN" train "${LONG[@]}" --out "$T/K" >"$T/K1.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ -f "$T/K/lock" ] || fail "K: rank 0 was not killed (status $rc)"
mkdir -p "$T/K/checkpoints/.tmp-step-00000009" && echo partial >"$T/K/checkpoints/.tmp-step-00000009/model.safetensors"
echo '{"state":"finished","step":40}' >"$T/K/status.json"
"${MPIRUN[@]}" -np 2 "$BIN" train "${LONG[@]}" --out "$T/K" --resume auto >"$T/K2.log" 2>&1 &
pid=$!
wait_for "$T/K2.log" "^step 7/" 600 || { cat "$T/K2.log"; fail "K: the restart did not train"; }
stale=$(ls -d "$T/K/checkpoints/.tmp-"* 2>/dev/null || true)
[ "$(json_get state "$T/K/status.json")" = running ] || fail "K: status.json does not say running"
kill -USR1 $pid; wait $pid || fail "K: did not stop cleanly"
[ -z "$stale" ] || fail "K: stale $stale left at start-up"
ok "stale lock of a killed job does not block; the stale .tmp-step-* is removed and a stale status.json 'finished' set to running at start-up"

# L3: --resume auto where every checkpoint fails its checksum: one line, status 78, nothing touched;
# --allow-fresh-start trains from step 0.
cp -r "$T/A" "$T/V"
for d in "$T/V/checkpoints/step-"*; do truncate -s 100 "$d/model.safetensors"; done
cp "$T/V/metrics.jsonl" "$T/V.metrics"
rc=0; "${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --out "$T/V" --resume auto >"$T/V.out" 2>"$T/V.err" || rc=$?
n=$(grep -c "error:" "$T/V.err" || true)
[ "$rc" = 78 ] && [ "$n" = 1 ] && grep -q "none verifies" "$T/V.err" || { cat "$T/V.out" "$T/V.err"; fail "V: status $rc, $n error lines"; }
! grep -q "warning\|^step " "$T/V.out" "$T/V.err" && cmp -s "$T/V.metrics" "$T/V/metrics.jsonl" \
  && [ "$(ls -d "$T/V/checkpoints/step-"* | wc -l)" = 3 ] || fail "V: warnings printed, training started or files changed"
"${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --out "$T/V" --resume auto --allow-fresh-start >"$T/V2.log" 2>&1 \
  || { cat "$T/V2.log"; fail "V: --allow-fresh-start failed"; }
grep -q "training from step 0 (--allow-fresh-start)" "$T/V2.log" && same_final "$T/A" "$T/V" 40 || fail "V: fresh start differs from run A"
ok "no checkpoint verifies: status 78, one line ($(grep error: "$T/V.err" | cut -c1-90)...); --allow-fresh-start reproduces run A"

# L4: resume with a changed global batch and seed: refused with the keys listed, unless --allow-config-change;
# an operational key (train.log_every) may change.
mkdir -p "$T/C/checkpoints" && cp -r "$(ckpt "$T/A" 30)" "$T/C/checkpoints/"
rc=0; "${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --set train.global_batch=16 --set train.seed=7 --out "$T/C" --resume auto \
  >"$T/C.out" 2>"$T/C.err" || rc=$?
[ "$rc" = 78 ] && [ "$(grep -c error: "$T/C.err")" = 1 ] && grep -q "train.global_batch 8 -> 16, train.seed [0-9]* -> 7;" "$T/C.err" \
  || { cat "$T/C.err"; fail "C: status $rc"; }
"${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --set train.seed=7 --out "$T/C" --resume auto --allow-config-change \
  --set train.steps=22 >"$T/C2.log" 2>&1 || { cat "$T/C2.log"; fail "C: --allow-config-change failed"; }
grep -q "warning: resuming with a config that differs .* in train.seed" "$T/C2.log" || fail "C: no warning"
rm -rf "$T/C" && mkdir -p "$T/C/checkpoints" && cp -r "$(ckpt "$T/A" 30)" "$T/C/checkpoints/"
"${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --set train.log_every=3 --set checkpoint.keep=2 --out "$T/C" --resume auto >"$T/C3.log" 2>&1 \
  && ! grep -q "differs" "$T/C3.log" && same_final "$T/A" "$T/C" 40 || fail "C: an operational change was refused or changed training"
ok "changed config on resume: status 78 ($(grep -o 'differs .*;' "$T/C.err")), --allow-config-change warns, log_every/keep may change"

# L5: start-up checks: a read-only checkpoint directory and too little free space are found before the first
# step; a stale status.json saying finished is set to running (K above). Disk full during a checkpoint:
# status.json says failed with the reason, no temporary directory stays, the earlier checkpoints verify.
mkdir -p "$T/RO/checkpoints" "$T/FS/checkpoints" "$T/DF/checkpoints"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o ro,size=1m tmpfs "$T/RO/checkpoints" 2>/dev/null; then
  mounts+=("$T/RO/checkpoints")
  mount -t tmpfs -o size=1m tmpfs "$T/FS/checkpoints" && mounts+=("$T/FS/checkpoints")
  # 2.5 checkpoints' worth: start-up passes, the third checkpoint (keep 3) does not fit.
  size=$(( $(du -sb "$(ckpt "$T/A" 40)" | cut -f1) * 5 / 2 ))
  mount -t tmpfs -o size=$size tmpfs "$T/DF/checkpoints" && mounts+=("$T/DF/checkpoints")
  for c in RO:"not writable" FS:"MiB free, a checkpoint takes"; do
    name=${c%%:*} want=${c#*:}
    rc=0; "${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --out "$T/$name" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    [ "$rc" = 78 ] && [ "$(grep -c error: "$T/$name.err")" = 1 ] && grep -q "$want" "$T/$name.err" \
      && ! grep -q "^step " "$T/$name.out" || { cat "$T/$name.out" "$T/$name.err"; fail "$name: status $rc"; }
    ok "start-up check ($name) before the first step: $(grep error: "$T/$name.err")"
  done
  rc=0; "${MPIRUN[@]}" -np 2 "$BIN" train "${TINY[@]}" --out "$T/DF" >"$T/DF.log" 2>&1 || rc=$?
  python3 - "$T/DF/status.json" <<'PY' || { cat "$T/DF.log"; fail "DF: status.json does not say failed with the reason"; }
import json, sys
s = json.load(open(sys.argv[1]))
assert s["state"] == "failed" and "No space left on device" in s["reason"] and s["step"] == 15, s
PY
  [ "$rc" != 0 ] && [ -z "$(ls -A "$T/DF/checkpoints" | grep '^\.')" ] || fail "DF: status $rc or a temporary directory left"
  python3 - "$T/DF" <<'PY' || fail "DF: an earlier checkpoint no longer verifies"
import hashlib, json, os, sys
for s in (5, 10):
    d = os.path.join(sys.argv[1], "checkpoints", f"step-{s:08d}")
    tj = json.load(open(os.path.join(d, "trainer.json")))
    for name, e in tj["files"].items():
        assert hashlib.sha256(open(os.path.join(d, name), "rb").read()).hexdigest() == e["sha256"], (s, name)
PY
  ok "disk full during the step-15 checkpoint: exit $rc, status.json $(cat "$T/DF/status.json"), steps 5 and 10 verify"
else
  echo "skip start-up checks and disk full: mounting a tmpfs needs root"
fi

# L6: Ctrl-C (SIGINT to the launcher's process group): checkpoint of the current step, exit status 0.
set -m   # the launcher in a process group of its own, SIGINT not ignored (as from a terminal)
"${LAUNCH[@]}" -- train "${LONG[@]}" --out "$T/I" >"$T/I.log" 2>&1 &
pid=$!
set +m
wait_for "$T/I.log" "^step 10/" 600 || fail "I: no step 10"
kill -INT -- -"$pid"
rc=0; wait $pid || rc=$?
stopped=$(sed -n 's/.*stopped on SIG[A-Z0-9]* at step \([0-9]*\).*/\1/p' "$T/I.log")
[ "$rc" = 0 ] && [ -n "$stopped" ] && [ -f "$(ckpt "$T/I" "$stopped")/model.safetensors" ] \
  && [ "$(json_get state "$T/I/status.json")" = stopped ] || { cat "$T/I.log"; fail "I: status $rc after Ctrl-C"; }
ok "Ctrl-C to the launcher's process group: checkpoint of step $stopped, exit status 0"

echo "ops: $pass passed (RANDOM_SEED=$seed)"
