#!/usr/bin/env bash
# Bad data is never silent (issue 16), end to end: damaged shards in `cde shards check` and
# `cde train`, overflowing safetensors headers, size options against memory.
set -euo pipefail
BIN=${1:-.build/release/cde}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"
DMG=Tests/Fixtures/Imaging/damaged

# Synthetic D3 decodes whole under the strict policy (no well-formed image refused).
"$BIN" shards synth --out "$T/s" --records 60 --shard-size 20 --seed 3 --strength 4 >/dev/null
"$BIN" shards check "$T/s" --quiet >"$T/s.txt" || { cat "$T/s.txt"; fail "check refuses well-formed synthetic shards"; }
grep -q "total: 3 sources, 60 records, 60 readable, 0 skipped, 0 lost to damage, 0 damaged" "$T/s.txt" || { cat "$T/s.txt"; fail "synthetic totals"; }
ok "shards check: 60 synthetic records all readable, exit 0"

# A set: shard 0 with one flipped byte in the header of the member in its middle, shard 1
# whole, shard 2 with a truncated JPEG and a broken-IDAT PNG member, a non-tar .tar, and a stray file.
mkdir -p "$T/set"
python3 - "$T/s" "$T/set" "$DMG" <<'PY'
import sys, tarfile, io, os
src, dst, dmg = sys.argv[1:]
names = sorted(os.listdir(src))
b = bytearray(open(os.path.join(src, names[0]), "rb").read())
ms = tarfile.open(os.path.join(src, names[0])).getmembers()
b[ms[len(ms) // 2].offset + 130] ^= 1
open(os.path.join(dst, "a.tar"), "wb").write(b)
open(os.path.join(dst, "b.tar"), "wb").write(open(os.path.join(src, names[1]), "rb").read())
with tarfile.open(os.path.join(src, names[2])) as t, tarfile.open(os.path.join(dst, "c.tar"), "w", format=tarfile.USTAR_FORMAT) as o:
    swapped = {0: ("real", "d3-jpeg-3000.jpg"), 1: ("gen_0", "d3-png-idat.png")}
    keys = sorted({m.name.split(".")[0] for m in t.getmembers()})
    for m in t.getmembers():
        key, role = m.name.split(".")[0], m.name.split(".")[1]
        data = t.extractfile(m).read()
        k = keys.index(key)
        if k in swapped and role == swapped[k][0]:
            data = open(os.path.join(dmg, swapped[k][1]), "rb").read()
            m = tarfile.TarInfo(key + "." + role + "." + swapped[k][1].rsplit(".", 1)[1])
        m.size = len(data)
        o.addfile(m, io.BytesIO(data))
open(os.path.join(dst, "d.tar"), "wb").write(bytes((i * 7919 >> 3) & 255 for i in range(5000)))
open(os.path.join(dst, "notes.json"), "w").write("{}")
PY
if "$BIN" shards check "$T/set" >"$T/set.txt" 2>"$T/set.err"; then cat "$T/set.txt"; fail "check exits 0 on a damaged set"; fi
grep -q "a.tar: 20 records, 19 readable, 1 skipped, 1 lost to damage (damaged)" "$T/set.txt" || { cat "$T/set.txt"; fail "a.tar loss not reported"; }
grep -q "header checksum mismatch; .* bytes skipped to the next valid header" "$T/set.txt" || fail "no resynchronisation issue"
grep -q "c.tar: 20 records, 18 readable, 2 skipped, 0 lost to damage$" "$T/set.txt" || { cat "$T/set.txt"; fail "c.tar damaged images not counted"; }
grep -q "d.tar: 0 records.*(damaged)" "$T/set.txt" && grep -q "not a tar archive" "$T/set.txt" || fail "d.tar not reported"
grep -q "ignored: .*notes.json" "$T/set.txt" || fail "stray file not named"
grep -q "total: 4 sources, 60 records, 57 readable, 3 skipped, 1 lost to damage, 2 damaged source(s)" "$T/set.txt" || { cat "$T/set.txt"; fail "set totals"; }
ok "shards check on a damaged set: $(tail -1 "$T/set.txt"), exit 1"

# Training on it: start-up totals per source and warnings match the check.
"$BIN" train --config configs/smoke.yaml --set "data.train=[$T/set]" "${TINY_MODEL[@]}" --set eval.every_steps=0 --set train.global_batch=8 \
  --set train.steps=8 --set checkpoint.every_steps=100 --set data.loader_threads=1 --threads 1 --out "$T/run" >"$T/train.log" 2>&1 \
  || { tail "$T/train.log"; fail "train on the damaged set"; }
for s in a b c d; do
  n=$(grep -o "^$T/set/$s.tar: [0-9]* records" "$T/set.txt" | grep -o "[0-9]* records")
  grep -q "data: $T/set/$s.tar: $n" "$T/train.log" || { cat "$T/train.log"; fail "train start-up line for $s.tar ($n)"; }
done
grep -q "data: 60 records in 4 source(s)" "$T/train.log" || fail "train total"
grep -q "warning: $T/set/a.tar: records lost to damage: badHeader" "$T/train.log" || fail "no warning for a.tar"
grep -q "warning: $T/set/d.tar: no records, skipped: notTar" "$T/train.log" || fail "no warning for d.tar"
grep -q "warning: .*notes.json" "$T/train.log" || fail "no warning for notes.json"
ok "train start-up: per-source counts and total equal the check's, damaged and stray sources warned about"

# A safetensors header whose shape overflows: one error line, no trap.
python3 - "$T/ovf.safetensors" <<'PY'
import json, struct, sys
h = json.dumps({"w": {"dtype": "F32", "shape": [2**31, 2**31, 2**31], "data_offsets": [0, 4]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"\0" * 4)
PY
for cmd in "embed --model $T/ovf.safetensors --out $T/e.safetensors $DMG/png-good.png" "compare $T/ovf.safetensors $T/ovf.safetensors"; do
  set +e; "$BIN" $cmd >"$T/o.txt" 2>"$T/o.err"; rc=$?; set -e
  [ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "$cmd: exit $rc"
  [ "$(wc -l <"$T/o.err")" -le 1 ] && grep -q "overflows" "$T/o.err" || { cat "$T/o.err"; fail "$cmd: not one error line"; }
done
ok "overflowing safetensors shape: one error line in embed and compare"

# Sizes validated against memory before allocating, the error naming the option.
for cmd in "embed --init-seed 1 --batch 1000000000 --out $T/e.safetensors $DMG/png-good.png:--batch" \
           "bench --records 100000:--records" "shards bench $T/s --batch 100000000:--batch"; do
  set +e; "$BIN" ${cmd%:*} >"$T/o.txt" 2>"$T/o.err"; rc=$?; set -e
  [ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "${cmd%:*}: exit $rc"
  grep -q "Error: ${cmd##*:} [0-9]*: .*memory available" "$T/o.err" || { cat "$T/o.err"; fail "${cmd%:*}: no error naming ${cmd##*:}"; }
done
ok "embed --batch, bench --records, shards bench --batch: validation errors naming the option"

# The pixel limit on the command line.
set +e; "$BIN" embed --init-seed 1 --out "$T/e.safetensors" --max-image-pixels 6000 $DMG/png-good.png 2>"$T/o.err"; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "6144 pixels exceeds the limit of 6000" "$T/o.err" || { cat "$T/o.err"; fail "embed --max-image-pixels"; }
ok "embed --max-image-pixels refuses a larger image by name"
echo "test-baddata: $pass passed"
