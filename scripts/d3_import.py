#!/usr/bin/env python3
"""Reader half of `cde shards import`: D3 parquet rows joined with img2dataset images.

`cde shards import` runs this tool and writes the WebDataset shards itself (it decodes
every image with the training decoder, so "unreadable" means what the trainer means).
This tool only reads: pyarrow for the parquet files of the Hugging Face release
(elsaEU/ELSA_D3), the standard library for the img2dataset output.

  d3_import.py plan --parquet GLOB...
      One JSON object on stdout: the parquet files (glob expanded, sorted, de-duplicated),
      their row counts (from the parquet metadata, no data read) and the total.

  d3_import.py stream --parquet GLOB... --real PATH... [--start-row R]
      Indexes the img2dataset output under each PATH (folders of IMAGE + IMAGE_STEM.json,
      or .tar shards holding the same members; the .json sidecar carries `url`, and its
      `status`, when present, must be "success"), then writes one frame per parquet row,
      from global row R on (rows counted over the files in plan order), to stdout:
        a JSON header line (UTF-8, ending in a newline)
          {"row": N, "id": S, "key": S, "caption": S, "url": S,
           "images": [{"ext": E, "size": B} | {"missing": REASON}] x 5 (real, gen_0..gen_3)}
        followed by the bytes of each present image, in that order;
      and a last line {"end": true, "rows": COUNT}.

Errors: one line "error: ..." on stderr naming the file or column, exit status 2.
Needs: pip install pyarrow
"""
import argparse
import glob
import json
import os
import sys
import tarfile

GENERATORS = 4
# Columns read from the parquet files (the release has more: prompts, models, sizes, steps).
COLUMNS = ["id", "original_prompt", "url"] + [f"filepath_gen{k}" for k in range(GENERATORS)] + \
    [f"image_gen{k}" for k in range(GENERATORS)]
IMAGE_EXTS = {"jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp"}
KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class ToolError(Exception):
    pass


def need_pyarrow():
    try:
        import pyarrow.parquet as pq  # noqa: F401
    except ImportError:
        raise ToolError(f"pyarrow is not installed for {sys.executable} (pip install pyarrow; "
                        "or set CDE_PYTHON to a Python that has it)")
    return pq


def expand(patterns):
    files = []
    for p in patterns:
        matches = sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
        if not matches:
            raise ToolError(f"--parquet {p}: no files match")
        for m in matches:
            if os.path.isdir(m):
                inner = sorted(glob.glob(os.path.join(m, "**", "*.parquet"), recursive=True))
                if not inner:
                    raise ToolError(f"--parquet {m}: directory without .parquet files")
                matches_here = inner
            elif not os.path.exists(m):
                raise ToolError(f"--parquet {m}: no such file")
            else:
                matches_here = [m]
            for f in matches_here:
                f = os.path.abspath(f)
                if f not in files:
                    files.append(f)
    return sorted(files)


def open_parquet(pq, path):
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError with its own text
        raise ToolError(f"{path}: not a readable parquet file ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    names = set(pf.schema_arrow.names)
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ToolError(f"{path}: column {missing[0]} missing (expected the elsaEU/ELSA_D3 schema: "
                        + ", ".join(COLUMNS) + ")")
    for k in range(GENERATORS):
        t = pf.schema_arrow.field(f"image_gen{k}").type
        if not (hasattr(t, "get_field_index") and t.get_field_index("bytes") >= 0):
            raise ToolError(f"{path}: column image_gen{k} is {t}, expected a struct with a `bytes` field")
    return pf


def plan(args):
    pq = need_pyarrow()
    files = expand(args.parquet)
    rows = [open_parquet(pq, f).metadata.num_rows for f in files]
    json.dump({"files": files, "rows": rows, "total": sum(rows)}, sys.stdout)
    sys.stdout.write("\n")


# ---- img2dataset index -------------------------------------------------------------

def sidecar_url(raw, where):
    try:
        meta = json.loads(raw)
    except ValueError:
        return None, f"{where}: sidecar is not JSON"
    if not isinstance(meta, dict) or not isinstance(meta.get("url"), str):
        return None, f"{where}: sidecar has no url"
    status = meta.get("status")
    if status is not None and status != "success":
        return None, None  # img2dataset keeps failed downloads' metadata only
    return meta["url"], None


def index_real(paths, log):
    """url -> (ext, loader): loader() returns the image bytes (raises OSError when unreadable)."""
    index = {}
    tars = 0
    folders_images = 0

    def add(url, ext, loader):
        if url not in index:  # the first copy wins; img2dataset downloads each url once
            index[url] = (ext, loader)

    for root in paths:
        if not os.path.exists(root):
            raise ToolError(f"--real {root}: no such file or directory")
        walk = [(os.path.dirname(root) or ".", [], [os.path.basename(root)])] if os.path.isfile(root) else os.walk(root)
        for d, subdirs, names in walk:
            subdirs.sort()
            stems = {}
            for n in sorted(names):
                full = os.path.join(d, n)
                stem, dot, ext = n.rpartition(".")
                if not dot:
                    continue
                ext = ext.lower()
                if ext == "tar":
                    tars += 1
                    index_tar(full, add, log)
                elif ext in IMAGE_EXTS or ext == "json":
                    stems.setdefault(stem, {})[ext] = full
            for stem, members in stems.items():
                if "json" not in members:
                    continue
                images = [e for e in members if e != "json"]
                if not images:
                    continue
                try:
                    with open(members["json"], "rb") as f:
                        url, problem = sidecar_url(f.read(), members["json"])
                except OSError as e:
                    log(f"warning: {members['json']}: cannot read ({e.strerror})")
                    continue
                if problem:
                    log(f"warning: {problem}")
                if url is None:
                    continue
                ext = sorted(images)[0]
                path = members[ext]
                folders_images += 1
                add(url, ext, lambda p=path: read_file(p))
    log(f"d3_import: {len(index)} real images indexed by url ({tars} tar file(s), {folders_images} in folders)")
    return index


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


class TarReader:
    """Reads members of tar files by offset, keeping a few files open."""
    open_files = {}

    @classmethod
    def read(cls, path, offset, size):
        f = cls.open_files.get(path)
        if f is None:
            if len(cls.open_files) >= 32:
                cls.open_files.pop(next(iter(cls.open_files))).close()
            f = open(path, "rb")
            cls.open_files[path] = f
        f.seek(offset)
        data = f.read(size)
        if len(data) != size:
            raise OSError(0, f"truncated member in {path}")
        return data


def index_tar(path, add, log):
    try:
        tf = tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as e:
        log(f"warning: --real {path}: not a readable tar file ({e}); its images are missing")
        return
    members = {}
    try:
        with tf:
            for m in tf:
                if not m.isfile():
                    continue
                stem, dot, ext = m.name.rpartition(".")
                if not dot:
                    continue
                ext = ext.lower()
                if ext == "json":
                    try:
                        raw = tf.extractfile(m).read()
                    except (tarfile.TarError, OSError):
                        continue
                    members.setdefault(stem, {})["json"] = raw
                elif ext in IMAGE_EXTS:
                    members.setdefault(stem, {})[ext] = (m.offset_data, m.size)
    except (tarfile.TarError, OSError) as e:
        log(f"warning: --real {path}: damaged after {len(members)} members ({e}); the rest are missing")
    for stem, ms in members.items():
        if "json" not in ms:
            continue
        images = sorted(e for e in ms if e != "json")
        if not images:
            continue
        url, problem = sidecar_url(ms["json"], f"{path}:{stem}.json")
        if problem:
            log(f"warning: {problem}")
        if url is None:
            continue
        off, size = ms[images[0]]
        add(url, images[0], lambda p=path, o=off, s=size: TarReader.read(p, o, s))


# ---- stream ---------------------------------------------------------------------

def sniff(data):
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def make_key(ident, row):
    s = "" if ident is None else str(ident)
    s = "".join(c if c in KEY_CHARS else "_" for c in s)
    return s if s else f"row{row:09d}"


def stream(args):
    pq = need_pyarrow()
    files = expand(args.parquet)
    log = lambda s: print(s, file=sys.stderr, flush=True)
    index = index_real(args.real, log)
    out = sys.stdout.buffer
    seen = set()
    row0 = 0  # global index of the current file's first row
    emitted = 0
    for path in files:
        pf = open_parquet(pq, path)
        n = pf.metadata.num_rows
        if row0 + n <= args.start_row:
            row0 += n
            continue
        # Skip whole row groups before the start row (no data read for them).
        groups, row, g_first = [], None, row0
        for g in range(pf.metadata.num_row_groups):
            gn = pf.metadata.row_group(g).num_rows
            if g_first + gn > args.start_row:
                groups.append(g)
                row = g_first if row is None else row
            g_first += gn
        if not groups:
            row0 += n
            continue
        try:
            batches = pf.iter_batches(batch_size=args.batch_rows, row_groups=groups, columns=COLUMNS)
            for batch in batches:
                cols = {c: batch.column(c) for c in COLUMNS}
                for i in range(batch.num_rows):
                    if row >= args.start_row:
                        emit(out, row, i, cols, index, seen, path)
                        emitted += 1
                    row += 1
        except ToolError:
            raise
        except Exception as e:
            raise ToolError(f"{path}: cannot read row {row - row0} ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
        row0 += n
    out.write(json.dumps({"end": True, "rows": emitted}).encode() + b"\n")
    out.flush()


def emit(out, row, i, cols, index, seen, path):
    ident = cols["id"][i].as_py()
    url = cols["url"][i].as_py()
    caption = cols["original_prompt"][i].as_py()
    key = make_key(ident, row)
    images, blobs = [], []

    def missing(reason):
        images.append({"missing": reason})

    if key in seen:
        missing(f"duplicate id {ident!r} (an earlier row has the same key)")
    seen.add(key)
    if images:
        pass  # duplicate: nothing else read
    elif not url:
        missing("no url in the parquet row")
    elif url not in index:
        missing("real image not found (url not in the --real img2dataset output)")
    else:
        ext, loader = index[url]
        try:
            data = loader()
            images.append({"ext": "jpg" if ext == "jpeg" else ext, "size": len(data)})
            blobs.append(data)
        except OSError as e:
            missing(f"real image unreadable ({e.strerror or e})")
    for k in range(GENERATORS):
        cell = cols[f"image_gen{k}"][i].as_py()
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if not data:
            missing(f"gen_{k}: no image bytes in column image_gen{k}")
            continue
        fp = cols[f"filepath_gen{k}"][i].as_py() or ""
        ext = fp.rpartition(".")[2].lower() if "." in os.path.basename(fp) else ""
        if ext == "jpeg":
            ext = "jpg"
        if ext not in IMAGE_EXTS:
            ext = sniff(data) or "bin"
        images.append({"ext": ext, "size": len(data)})
        blobs.append(data)
    header = {"row": row, "id": "" if ident is None else str(ident), "key": key,
              "caption": caption or "", "url": url or "", "images": images}
    out.write(json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n")
    for b in blobs:
        out.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--parquet", nargs="+", required=True)
    s = sub.add_parser("stream")
    s.add_argument("--parquet", nargs="+", required=True)
    s.add_argument("--real", nargs="+", required=True)
    s.add_argument("--start-row", type=int, default=0)
    s.add_argument("--batch-rows", type=int, default=64)
    args = ap.parse_args()
    try:
        plan(args) if args.cmd == "plan" else stream(args)
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(1)  # the reader (cde) stopped


if __name__ == "__main__":
    main()
