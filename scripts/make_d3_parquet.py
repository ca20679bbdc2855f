#!/usr/bin/env python3
"""A small D3 release as Hugging Face publishes it, for testing `cde shards import`.

  make_d3_parquet.py --folders DIR [--tar D3.tar] --out OUT [--parquet-files 2]

From records in the test layout (DIR/real/STEM.EXT, DIR/gen_k/STEM.EXT, e.g. `cde shards
synth --layout folders`) and, optionally, the records of a WebDataset shard (e.g. the
genuine D3 record), writes:
  OUT/parquet/part-0000K.parquet   the elsaEU/ELSA_D3 schema (pyarrow), rows spread over
                                   --parquet-files files; generated images as
                                   image_genK = {bytes, path}, filepath_genK with their extension
  OUT/real/                        the real images as img2dataset stores them: the first half
                                   in folder mode (00000/000000123.EXT + .json with url,
                                   status, ...), the rest in a tar (00001.tar), with
                                   img2dataset's own 0000N.parquet and _stats.json beside
  OUT/expected.json                per row: id, url, and what the importer must do with it
And damages on purpose (when there are at least 6 rows): row 1's real image is not
downloaded, row 2's gen_2 is truncated, row 3's real image is garbage, row 4's download
failed (status "failed_to_download", no image), row 5 repeats row 0's url (a valid join).
"""
import argparse
import io
import json
import os
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq

G = 4
MODELS = ["stabilityai/stable-diffusion-2-1-base", "stabilityai/stable-diffusion-xl-base-1.0",
          "DeepFloyd/IF-II-M-v1.0", "CompVis/stable-diffusion-v1-4"]


def schema():
    img = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = [(n, pa.string()) for n in ["id", "original_prompt", "positive_prompt", "negative_prompt", "url"]]
    fields += [(f"model_gen{k}", pa.string()) for k in range(G)]
    for what in ["width", "height", "num_inference_steps"]:
        fields += [(f"{what}_gen{k}", pa.int64()) for k in range(G)]
    fields += [(f"filepath_gen{k}", pa.string()) for k in range(G)]
    fields += [(f"image_gen{k}", img) for k in range(G)]
    return pa.schema(fields)


def read_records(args):
    recs = []
    if args.tar:
        with tarfile.open(args.tar) as tf:
            by_key = {}
            for m in tf:
                if not m.isfile():
                    continue
                base = os.path.basename(m.name)
                key, _, suffix = base.partition(".")
                by_key.setdefault(key, {})[suffix] = tf.extractfile(m).read()
        for key, ms in sorted(by_key.items()):
            r = {"id": key.rsplit("__", 1)[-1], "caption": ms.get("caption.txt", b"").decode(),
                 "url": ms.get("url.txt", b"").decode()}
            for s, data in ms.items():
                role, _, ext = s.partition(".")
                if role in ("real",) or role.startswith("gen_"):
                    r[role] = (ext, data)
            recs.append(r)
    real_dir = os.path.join(args.folders, "real")
    for name in sorted(os.listdir(real_dir)):
        stem, _, ext = name.rpartition(".")
        r = {"id": f"synth{stem.rsplit('__', 1)[-1]}", "caption": f"a synthetic scene number {stem[-4:]}",
             "url": f"https://example.org/laion/{stem}.{ext}?size=large&id={len(recs)}"}
        r["real"] = (ext, open(os.path.join(real_dir, name), "rb").read())
        for k in range(G):
            d = os.path.join(args.folders, f"gen_{k}")
            match = [n for n in os.listdir(d) if n.rpartition(".")[0] == stem]
            e = match[0].rpartition(".")[2]
            r[f"gen_{k}"] = (e, open(os.path.join(d, match[0]), "rb").read())
        recs.append(r)
    return recs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folders", required=True)
    ap.add_argument("--tar")
    ap.add_argument("--out", required=True)
    ap.add_argument("--parquet-files", type=int, default=2)
    args = ap.parse_args()
    recs = read_records(args)
    n = len(recs)
    expect = [{"id": r["id"], "url": r["url"], "skip": None} for r in recs]
    damage = n >= 6
    if damage:
        # Put the damage on synthetic rows (after the genuine ones).
        base = 1 if args.tar else 0
        d = {name: base + i for i, name in enumerate(["missing", "truncated_gen2", "garbage_real", "failed", "dup_url"], start=1)}
        if d["dup_url"] >= n:
            raise SystemExit("make_d3_parquet: need more records for the damage rows")
        ext, data = recs[d["truncated_gen2"]]["gen_2"]
        recs[d["truncated_gen2"]]["gen_2"] = (ext, data[: len(data) // 2])
        recs[d["dup_url"]]["url"] = recs[base]["url"]
        expect[d["dup_url"]]["url"] = recs[base]["url"]
        expect[d["missing"]]["skip"] = "real image not found"
        expect[d["truncated_gen2"]]["skip"] = "gen_2 image unreadable"
        expect[d["garbage_real"]]["skip"] = "real image unreadable"
        expect[d["failed"]]["skip"] = "real image not found"
        expect[d["dup_url"]]["real_from_row"] = base

    # Parquet rows.
    cols = {f.name: [] for f in schema()}
    for i, r in enumerate(recs):
        cols["id"].append(r["id"])
        cols["original_prompt"].append(r["caption"])
        cols["positive_prompt"].append(r["caption"] + ", high quality")
        cols["negative_prompt"].append("blurry")
        cols["url"].append(r["url"])
        for k in range(G):
            ext, data = r[f"gen_{k}"]
            cols[f"model_gen{k}"].append(MODELS[k])
            cols[f"width_gen{k}"].append(512)
            cols[f"height_gen{k}"].append(512)
            cols[f"num_inference_steps_gen{k}"].append(50)
            cols[f"filepath_gen{k}"].append(f"gen{k}/{r['id']}.{ext}")
            cols[f"image_gen{k}"].append({"bytes": data, "path": None})
    table = pa.Table.from_pydict(cols, schema=schema())
    os.makedirs(os.path.join(args.out, "parquet"), exist_ok=True)
    per = -(-n // args.parquet_files)
    for p in range(args.parquet_files):
        part = table.slice(p * per, per)
        # Small row groups, so that a resumed import skips some of them unread.
        pq.write_table(part, os.path.join(args.out, "parquet", f"part-{p:05d}.parquet"), row_group_size=3)

    # img2dataset output: folder mode for the first half, a tar for the rest.
    real = os.path.join(args.out, "real")
    os.makedirs(os.path.join(real, "00000"), exist_ok=True)
    tar_members = []
    for i, r in enumerate(recs):
        if damage and i in (d["missing"], d["dup_url"]):
            continue  # not downloaded (dup_url: img2dataset fetched that url once, for row `base`)
        key = f"{i:09d}"
        ext, data = r["real"]
        meta = {"url": r["url"], "key": key, "status": "success", "caption": r["caption"], "width": 0, "height": 0}
        if damage and i == d["garbage_real"]:
            data = b"\x00garbage, not an image" * 40
        if damage and i == d["failed"]:
            meta.update(status="failed_to_download", error_message="HTTP 404")
            data = None
        if i < n // 2:
            folder = os.path.join(real, "00000")
            with open(os.path.join(folder, key + ".json"), "w") as f:
                json.dump(meta, f)
            with open(os.path.join(folder, key + ".txt"), "w") as f:
                f.write(r["caption"])
            if data is not None:
                with open(os.path.join(folder, f"{key}.{ext}"), "wb") as f:
                    f.write(data)
        else:
            tar_members.append((key + ".json", json.dumps(meta).encode()))
            tar_members.append((key + ".txt", r["caption"].encode()))
            if data is not None:
                tar_members.append((f"{key}.{ext}", data))
    with tarfile.open(os.path.join(real, "00001.tar"), "w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in tar_members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    for s in ("00000", "00001"):
        pq.write_table(pa.table({"url": pa.array([], pa.string())}), os.path.join(real, s + ".parquet"))
        with open(os.path.join(real, s + "_stats.json"), "w") as f:
            json.dump({"count": n, "successes": n - 2}, f)
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expect, f, indent=1)
    print(f"make_d3_parquet: {n} rows in {args.parquet_files} parquet files, real images in {real}")


if __name__ == "__main__":
    main()
