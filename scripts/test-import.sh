#!/usr/bin/env bash
# The published D3 and the published CoDE detector, end to end:
# 1. `cde shards import` on parquet files that pyarrow writes in the elsaEU/ELSA_D3 schema
#    (synthetic records, and the genuine D3 record of ../shared/d3-sample when present),
#    over two files, with an img2dataset output in folders and a tar; a real image not
#    downloaded, one that is garbage, a failed download, a truncated generated image.
#    The shards hold the source bytes; `cde shards check` and `cde train` read them; a rerun
#    resumes after the complete shards and rewrites lost ones byte for byte.
# 2. `cde import-classifiers` on scikit-learn 1.3.2 pickles (Tests/Fixtures/Evaluation/published,
#    written by scripts/fixtures/published_detector.py), then `cde detect --model <HF dir>`:
#    the decisions of scikit-learn on transformers' embeddings, scores within 1e-4.
# Test-only PyPI packages (pyarrow, scikit-learn, joblib) come from scripts/test-python.sh.
set -euo pipefail
BIN=$(realpath "${1:-.build/release/cde}")
cd "$(dirname "$0")/.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. scripts/lib.sh  # (the working directory is the repository)
PY=$(bash scripts/test-python.sh pyarrow sklearn joblib numpy) || fail "no Python with pyarrow and scikit-learn (see above)"
export CDE_PYTHON=$PY
D3=../shared/d3-sample/elsa_v2-0000.tar
if [ -f "$D3" ]; then TAR=(--tar "$D3"); else TAR=(); echo "note: $D3 not found: the genuine D3 record is left out"; fi

# ---- 1. shards import ----------------------------------------------------------------
"$BIN" shards synth --layout folders --records 14 --seed 17 --out "$T/synth" >/dev/null
"$PY" scripts/make_d3_parquet.py --folders "$T/synth" "${TAR[@]}" --out "$T/hf" >/dev/null
"$BIN" shards import --parquet "$T/hf/parquet/part-*.parquet" --real "$T/hf/real" --out "$T/out" --shard-size 4 \
  >"$T/import.log" 2>&1 || { cat "$T/import.log"; fail "shards import"; }
"$PY" - "$T/hf" "$T/out" <<'PY' || fail "imported shards differ from the parquet rows"
import json, os, sys, tarfile, glob
import pyarrow.parquet as pq
hf, out = sys.argv[1:]
expect = json.load(open(os.path.join(hf, "expected.json")))
rows = []
for f in sorted(glob.glob(os.path.join(hf, "parquet", "*.parquet"))):
    rows += pq.read_table(f).to_pylist()
assert len(rows) == len(expect)
members = {}
shards = sorted(glob.glob(os.path.join(out, "*.tar")))
for s in shards:
    with tarfile.open(s) as tf:
        names = tf.getnames()
        keys = list(dict.fromkeys(n.split(".")[0] for n in names))
        assert len(keys) <= 4, (s, keys)
        for n in names:
            members[n] = tf.extractfile(n).read()
skipped = {int(l.split("\t")[0]): l.rstrip("\n").split("\t")[3] for l in open(os.path.join(out, "import", "skipped.tsv")).readlines()[1:]}
# img2dataset real images by url
real = {}
for j in glob.glob(os.path.join(hf, "real", "00000", "*.json")):
    m = json.load(open(j))
    for e in ("jpg", "png", "gif", "bmp", "tif", "webp"):
        p = j[:-5] + "." + e
        if os.path.exists(p): real[m["url"]] = open(p, "rb").read()
with tarfile.open(os.path.join(hf, "real", "00001.tar")) as tf:
    by = {}
    for m in tf:
        stem, _, ext = m.name.rpartition(".")
        by.setdefault(stem, {})[ext] = tf.extractfile(m).read()
    for stem, ms in by.items():
        meta = json.loads(ms["json"])
        for e, d in ms.items():
            if e not in ("json", "txt"): real.setdefault(meta["url"], d)
n_ok = 0
for i, (r, e) in enumerate(zip(rows, expect)):
    key = r["id"]
    if e["skip"]:
        assert i in skipped and skipped[i].startswith(e["skip"]), (i, skipped.get(i), e["skip"])
        assert not any(n.startswith(key + ".") for n in members), key
        continue
    assert i not in skipped, (i, skipped[i])
    n_ok += 1
    for k in range(4):
        ext = r[f"filepath_gen{k}"].rsplit(".", 1)[1]
        assert members[f"{key}.gen_{k}.{ext}"] == r[f"image_gen{k}"]["bytes"], (key, k)
    rn = [n for n in members if n.startswith(key + ".real.")]
    assert len(rn) == 1 and members[rn[0]] == real[r["url"]], key
    assert members[f"{key}.caption.txt"].decode() == r["original_prompt"]
    assert members[f"{key}.url.txt"].decode() == r["url"]
assert len(skipped) == sum(1 for e in expect if e["skip"])
s = json.load(open(os.path.join(out, "import", "summary.json")))
assert s["records"] == n_ok and s["skipped"] == len(skipped) and s["shards"] == len(shards) == -(-n_ok // 4), s
print(f"{n_ok} records in {len(shards)} shards, {len(skipped)} skipped")
PY
ok "shards import: every record holds its row's bytes (generators' own extensions, img2dataset real image), $(grep -c . "$T/out/import/skipped.tsv" | awk '{print $1-1}') damaged rows listed and left out"
# (the listing is read whole: with pipefail, grep -q leaving early would fail on tar's SIGPIPE)
[ -f "$D3" ] && { grep -qx '1275001022128.real.jpg' <<<"$(tar tf "$T/out/d3-000000.tar")" || fail "the genuine D3 record is not in the first shard"; ok "the genuine D3 record is imported"; }

"$BIN" shards check "$T/out" >"$T/check.log" || { cat "$T/check.log"; fail "shards check of the imported shards"; }
n=$(python3 -c "import json; print(json.load(open('$T/out/import/summary.json'))['records'])")
grep -q "total: .* $n records, $n readable, 0 skipped, 0 lost to damage, 0 damaged" "$T/check.log" || { cat "$T/check.log"; fail "shards check counts"; }
ok "shards check: $n records, all readable"

# Resume: a rerun reads nothing; a lost shard (and the ones after it) are rewritten byte for byte.
sha() { sha256sum "$T"/out/*.tar | awk '{print $1}'; }
before=$(sha)
"$BIN" shards import --parquet "$T/hf/parquet/part-*.parquet" --real "$T/hf/real" --out "$T/out" --shard-size 4 >"$T/re.log" 2>&1
grep -q "resuming at row $(python3 -c "import json; print(json.load(open('$T/out/import/summary.json'))['rows'])")" "$T/re.log" \
  && grep -q "this run read 0 rows" "$T/re.log" || { cat "$T/re.log"; fail "rerun did not skip the complete shards"; }
rm "$T/out/d3-000001.tar"
"$BIN" shards import --parquet "$T/hf/parquet/part-*.parquet" --real "$T/hf/real" --out "$T/out" --shard-size 4 >"$T/re2.log" 2>&1
grep -q "after 1 complete shard" "$T/re2.log" || { cat "$T/re2.log"; fail "resume after a lost shard"; }
[ "$(sha)" = "$before" ] || fail "resumed import differs from the first"
[ "$(grep -c . "$T/out/import/skipped.tsv")" -gt 1 ] || fail "skipped.tsv lost the rows of earlier runs"
ok "resume: complete shards skipped, a lost shard rewritten identically, report kept"

# Bad input: one line naming the problem.
if "$BIN" shards import --parquet "$T/hf/parquet/part-*.parquet" --real "$T/hf/real" --out "$T/out" --shard-size 5 2>"$T/e1" >/dev/null; then fail "other --shard-size accepted on the same --out"; fi
grep -q "shard-size 4" "$T/e1" || { cat "$T/e1"; fail "shard-size mismatch message"; }
"$PY" -c "import pyarrow as pa, pyarrow.parquet as pq; pq.write_table(pa.table({'id': ['a'], 'url': ['u']}), '$T/bad.parquet')"
if "$BIN" shards import --parquet "$T/bad.parquet" --real "$T/hf/real" --out "$T/o2" 2>"$T/e2" >/dev/null; then fail "parquet without the D3 columns accepted"; fi
grep -q "bad.parquet: column original_prompt missing" "$T/e2" || { cat "$T/e2"; fail "missing-column message"; }
nopa=""
if ! python3 -c "import pyarrow" 2>/dev/null; then  # a Python without pyarrow: one line saying so
  if CDE_PYTHON=$(command -v python3) "$BIN" shards import --parquet "$T/bad.parquet" --real "$T/hf/real" --out "$T/o3" 2>"$T/e3" >/dev/null; then
    fail "import without pyarrow succeeded"; fi
  [ "$(wc -l <"$T/e3")" = 1 ] && grep -q "pyarrow is not installed" "$T/e3" || { cat "$T/e3"; fail "no-pyarrow message"; }
  nopa=", no pyarrow"
fi
ok "bad input: other shard size, missing column$nopa: one line each"

# cde train reads the imported shards (tiny model, few steps).
"$BIN" train --config configs/smoke.yaml --set "data.train=[$T/out]" "${TINY_MODEL[@]}" --set train.global_batch=4 \
  --set train.steps=3 --set checkpoint.every_steps=3 --set train.log_every=1 --set optim.warmup_steps=1 \
  --set data.loader_threads=1 --set eval.every_steps=0 --threads 1 --out "$T/run" >"$T/train.log" 2>&1 \
  || { tail -20 "$T/train.log"; fail "cde train on the imported shards"; }
[ "$(json_get state "$T/run/status.json")" = finished ] || fail "training on imported shards did not finish"
grep -q "$n records" "$T/train.log" || { grep -i record "$T/train.log" | head; fail "training did not see the $n records"; }
! grep -qi "warning.*skip\|damaged" "$T/train.log" || { grep -i "warning" "$T/train.log"; fail "training warned about the imported shards"; }
ok "cde train: 3 steps on the imported shards ($n records)"

# ---- 2. the published detector -----------------------------------------------------
FIX=Tests/Fixtures/Evaluation/published
cp -r "$FIX/model" "$T/model"
"$BIN" import-classifiers --model "$T/model" "$FIX"/sklearn/* >"$T/ic.log" 2>&1 || { cat "$T/ic.log"; fail "import-classifiers"; }
ls "$T/model/classifiers/"{linear,knn,svm}.safetensors >/dev/null || fail "classifier files missing"
imgs=("$FIX"/images/*)
if [ -f "$D3" ]; then mkdir "$T/d3"; tar xf "$D3" -C "$T/d3"; imgs+=("$T"/d3/*.jpg); fi
"$BIN" detect --model "$T/model" --classifier linear,knn,svm --json --threads 1 "${imgs[@]}" >"$T/detect.jsonl" \
  || fail "cde detect with the imported classifiers"
"$PY" - "$FIX/expected.json" "$T/detect.jsonl" <<'PY' || fail "cde detect differs from scikit-learn on transformers' embeddings"
import json, os, sys
exp = json.load(open(sys.argv[1]))
worst, n, dec = 0.0, 0, 0
for line in open(sys.argv[2]):
    g = json.loads(line)
    name = os.path.basename(g["image"])
    ref = exp["images"].get(name) or exp["d3"].get(name)
    assert ref is not None, name
    for k in ("linear", "knn", "svm"):
        assert g[k]["label"] == ref[k]["label"], (name, k, g[k], ref[k])
        worst = max(worst, abs(g[k]["score"] - ref[k]["score"]))
        dec += 1
    n += 1
expected_n = len(exp["images"]) + (len(exp["d3"]) if any("1275001022128" in l for l in open(sys.argv[2])) else 0)
assert n == expected_n, (n, expected_n)
assert worst < 1e-4, worst
print(f"{n} images, {dec} decisions equal, worst score difference {worst:.2e}")
PY
ok "detect --model <HF dir> + imported classifiers = scikit-learn on transformers: $("$PY" -c "
import json,sys; e=json.load(open('$FIX/expected.json')); print(len(e['images']), 'synthetic +', len(e['d3']) if '${TAR[*]}' else 0, 'D3 images')")"
for bad in rbf_ocsvm.joblib knn5.sav scaler.joblib; do
  if "$BIN" import-classifiers --out "$T/bad" "$FIX/bad/$bad" 2>"$T/eb" >/dev/null; then fail "$bad accepted"; fi
  [ "$(wc -l <"$T/eb")" -le 2 ] && grep -q "$bad" "$T/eb" || { cat "$T/eb"; fail "$bad: message"; }
done
ok "import-classifiers refuses an rbf one-class SVM, 5-NN and a StandardScaler, one line each"
echo "test-import: $pass checks passed"
