#!/usr/bin/env bash
# End-to-end checks of the cde command line, single rank and under mpirun.
set -euo pipefail
BIN=${1:-.build/release/cde}
FIX=Tests/Fixtures/Engine
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN="mpirun --oversubscribe --bind-to none"
pass=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }

"$BIN" --help >/dev/null

# cde step against the PyTorch/timm reference (small ViT, B=3).
"$BIN" step --model $FIX/model_small.safetensors --views $FIX/views_small.safetensors --config $FIX/small.yaml \
  --lr 1e-3 --weight-decay 0.05 --out "$T/step.safetensors" >/dev/null
"$BIN" compare "$T/step.safetensors" $FIX/step_small.safetensors --rtol 1e-4 --atol-prefix param.=2e-5 >"$T/cmp.txt" \
  || { cat "$T/cmp.txt"; exit 1; }
ok "cde step matches PyTorch: $(tail -1 "$T/cmp.txt")"

# cde step under mpirun -np 2 and -np 4 equals one rank (B=4 records split over the ranks).
"$BIN" random-views --records 4 --size 48 --local-size 32 --seed 3 --out "$T/views4.safetensors"
"$BIN" step --model $FIX/model_small.safetensors --views "$T/views4.safetensors" --config $FIX/small.yaml \
  --out "$T/one.safetensors" --threads 1 >/dev/null
for np in 2 4; do
  $MPIRUN -np $np "$BIN" step --model $FIX/model_small.safetensors --views "$T/views4.safetensors" \
    --config $FIX/small.yaml --out "$T/np$np.safetensors" --threads 1 >/dev/null
  "$BIN" compare "$T/np$np.safetensors" "$T/one.safetensors" --rtol 1e-5 --atol-prefix param.=2e-5 >"$T/cmp$np.txt" \
    || { cat "$T/cmp$np.txt"; exit 1; }
  ok "mpirun -np $np cde step equals one rank: $(tail -1 "$T/cmp$np.txt")"
done

# Gradient caching (chunks of 1 record, under mpirun -np 2) gives the direct step's results.
$MPIRUN -np 2 "$BIN" step --model $FIX/model_small.safetensors --views "$T/views4.safetensors" \
  --config $FIX/small.yaml --out "$T/gc.safetensors" --threads 1 --grad-cache-chunk 1 >/dev/null
"$BIN" compare "$T/gc.safetensors" "$T/one.safetensors" --rtol 1e-5 --atol-prefix param.=2e-5 >"$T/cmpgc.txt" \
  || { cat "$T/cmpgc.txt"; exit 1; }
ok "gradient caching (chunks of 1 record, 2 ranks) equals the direct step: $(tail -1 "$T/cmpgc.txt")"

# Bad input: one clear line, non-zero exit.
if "$BIN" step --init-seed 1 --views /nonexistent.safetensors --out "$T/x" 2>"$T/err.txt"; then exit 1; fi
grep -q "/nonexistent.safetensors" "$T/err.txt" && [ "$(wc -l <"$T/err.txt")" -le 2 ] || { cat "$T/err.txt"; exit 1; }
ok "missing views file is one clear error: $(head -1 "$T/err.txt")"
head -c 100 $FIX/model_small.safetensors >"$T/trunc.safetensors"
if "$BIN" step --model "$T/trunc.safetensors" --views $FIX/views_small.safetensors --config $FIX/small.yaml --out "$T/x" 2>"$T/err.txt"; then exit 1; fi
grep -q "truncated" "$T/err.txt" || { cat "$T/err.txt"; exit 1; }
ok "truncated model file is one clear error: $(head -1 "$T/err.txt")"

echo "cli: $pass passed"
