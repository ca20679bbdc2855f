#!/usr/bin/env bash
# optim.precision bf16 against fp32 on the full model: ViT-Tiny/16 (configs/synth-vit-tiny.yaml)
# on synthetic D3, STEPS steps (default 200) at global batch BATCH (default 16) under mpirun -np 2,
# once per precision from the same seed; prints the logged losses side by side, their relative
# differences, the mean loss over the last half, and the records/s of each run. Needs a CPU with
# avx512_bf16 or amx_bf16. About 25 minutes on 2 cores of a Zen 4.
#
#   scripts/compare-precision.sh [path/to/cde] [work directory]
set -euo pipefail
BIN=$(realpath "${1:-.build/release/cde}")
W=${2:-runs/compare-precision}
STEPS=${STEPS:-200}
BATCH=${BATCH:-16}
cd "$(dirname "$0")/.."
. scripts/lib.sh
mkdir -p "$W"
[ -d "$W/train" ] || "$BIN" shards synth --out "$W/train" --records 1024 --shard-size 128 --strength 7 --scene layout --seed 1 >/dev/null
for p in fp32 bf16; do
  rm -rf "${W:?}/$p"
  "${MPIRUN[@]}" -np 2 "$BIN" train --config configs/synth-vit-tiny.yaml --out "$W/$p" --set "data.train=[$W/train]" \
    --set train.steps="$STEPS" --set train.global_batch="$BATCH" --set eval.every_steps=0 --set 'eval.probe=[]' \
    --set 'eval.test=[]' --set checkpoint.every_steps=0 --set optim.precision=$p >"$W/$p.log" 2>&1 \
    || { tail -5 "$W/$p.log"; fail "the $p run failed"; }
done
python3 - "$W/fp32/metrics.jsonl" "$W/bf16/metrics.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
print(" step  loss fp32  loss bf16  bf16/fp32 - 1   records/s fp32  bf16")
for x, y in zip(a, b):
    print(f"{x['step']:5d}  {x['loss']:9.4f}  {y['loss']:9.4f}  {y['loss'] / x['loss'] - 1:+12.4f}   {x['records_per_s']:14.2f}  {y['records_per_s']:.2f}")
h = len(a) // 2
ma, mb = (sum(m["loss"] for m in r[h:]) / len(r[h:]) for r in (a, b))
ra, rb = (sum(m["records_per_s"] for m in r) / len(r) for r in (a, b))
print(f"mean loss over the last {len(a) - h} logs: fp32 {ma:.4f}, bf16 {mb:.4f} ({mb / ma - 1:+.4f}); "
      f"mean records/s: fp32 {ra:.2f}, bf16 {rb:.2f} ({rb / ra:.2f}x)")
PY
