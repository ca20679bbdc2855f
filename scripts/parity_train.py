#!/usr/bin/env python3
"""Trajectory parity: a 20-step `cde train` run against PyTorch + timm fed the same views.

    python3 scripts/parity_train.py                      # live check (needs torch, timm, safetensors)
    python3 scripts/parity_train.py --write-fixtures Tests/Fixtures/Training/trajectory
    python3 scripts/parity_train.py --check-fixtures Tests/Fixtures/Training/trajectory   # stdlib only

Live mode: writes a small synthetic D3 set with `cde shards synth`, trains the small ViT of CONFIG
for 20 steps under `mpirun -np 2` with `--dump-views` (warmup + cosine lr, weight decay), then
replays the run in PyTorch: timm's VisionTransformer of the same shape (num_classes=0,
dynamic_img_size=True, so the local views get timm's bicubic antialiased position-embedding
resampling) loaded from the dumped initial weights, the CoDE loss (the CoDE paper, Baraldi et al., ECCV 2024) over the dumped views
and permutation, torch.optim.AdamW with weight decay on weight matrices only and the per-step lr of
the dump, which must equal the schedule computed here from the config. It compares the loss of every
step (relative error <= 1e-3) and every parameter tensor after step 20 against cde's final checkpoint
(relative Frobenius error <= 1e-2; the attention key biases, whose true gradient is zero, are reported
but not compared: see key_bias_split), checks that the same config on 1 rank follows the same
trajectory, and that the comparison has power: replays with a wrong decay rule, a wrong schedule or
the published code's loss must fall outside the tolerances. Exit status 1 on any failure.

--write-fixtures DIR additionally stores what `make test` needs (config.yaml, reference.json with the
synthetic-data arguments and PyTorch's losses and lrs, params.safetensors with PyTorch's parameters
after the last step). --check-fixtures DIR (used by scripts/test-train.sh, no torch) trains with
cde on 2 ranks and on 1 rank and compares against those fixtures with the same tolerances.

cde is --cde, else $CDE, else .build/release/cde.
"""
import argparse, hashlib, json, math, os, shutil, struct, subprocess, sys, tempfile
from array import array

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOSS_TOL = 1e-3  # relative error of the loss, every step
PARAM_TOL = 1e-2  # relative Frobenius error of every parameter tensor after the last step
RANKS = 2
# The synthetic data: `cde shards synth` is a function of these arguments only.
SYNTH = {"records": 32, "shard_size": 16, "seed": 3, "strength": 1.0}
# The run. data.train is set on the command line. A ViT small enough for committed fixtures
# (32,224 parameters): width 32, 2 blocks, 2 heads, 8-px patches, 32-px global views (4x4 grid)
# and 16-px local views (the grid resampled to 2x2).
CONFIG = {
    "model": {"width": 32, "depth": 2, "heads": 2, "mlp_ratio": 4, "patch": 8, "image_size": 32},
    "data": {"train": [], "local_size": 16, "loader_threads": 1, "prefetch": 2, "sampling": "global"},
    "train": {"global_batch": 8, "steps": 20, "seed": 7, "log_every": 1, "consistency_check_every": 5},
    "optim": {"lr": 0.004, "betas": [0.9, 0.999], "eps": 1.0e-8, "weight_decay": 0.5, "warmup_steps": 5,
              "warmup_lr_init": 1.0e-5, "min_lr": 1.0e-4},
    "checkpoint": {"every_steps": 0, "keep": 1},
    "loss": {"temperature": 0.1},
}
VIEWS = ["real", "fake", "aug_real", "aug_fake", "global_real", "global_fake", "local_real", "local_fake"]


def fail(msg):
    print(f"parity_train: {msg}", file=sys.stderr)
    sys.exit(1)


def yaml_text(cfg):
    """The two-level config as YAML (flow lists, plain scalars)."""
    def scalar(v):
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, str):
            return json.dumps(v)
        return repr(v)
    lines = ["# Trajectory parity run (scripts/parity_train.py); data.train is given with --set."]
    for sec, kv in cfg.items():
        lines.append(f"{sec}:")
        lines += [f"  {k}: {scalar(v)}" for k, v in kv.items()]
    return "\n".join(lines) + "\n"


def lr_schedule(cfg, s):
    """Sources/Training/LRSchedule.swift: linear warmup from warmup_lr_init to lr over warmup_steps, then cosine from
    lr to min_lr, reached at the end of the run (train.steps)."""
    o, total = cfg["optim"], cfg["train"]["steps"]
    base, w, lo = o["lr"], o["warmup_steps"], o["min_lr"]
    if s < w:
        return o["warmup_lr_init"] + (base - o["warmup_lr_init"]) * s / w
    return lo + (base - lo) * 0.5 * (1 + math.cos(math.pi * (s - w) / (total - w)))


# ---- stdlib safetensors and comparisons (no torch needed) -------------------------------------
FMT = {"F32": "f", "F64": "d", "I64": "q"}


def read_safetensors(path):
    """{name: (shape, array)} of a safetensors file (F32, F64, I64), little-endian host assumed."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a = array(FMT[t["dtype"]])
        a.frombytes(data[t["data_offsets"][0]:t["data_offsets"][1]])
        out[name] = (t["shape"], a)
    return out


def write_safetensors_f32(path, tensors):
    """tensors: {name: (shape, array('f'))}, written in name order."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        shape, a = tensors[name]
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def rel_frobenius(a, ref):
    num = sum((x - y) * (x - y) for x, y in zip(a, ref))
    den = sum(y * y for y in ref)
    return math.sqrt(num / max(den, 1e-300))


def key_bias_split(name, a):
    """For `attn.qkv.bias` ([3D]: query, key, value biases): (query and value parts, key part); else (a, None).
    The key bias adds q.b_k to every logit of a query's softmax row, which the softmax ignores: its true
    gradient is zero, the computed one is rounding noise, and Adam turns noise of either sign into steps of
    about lr. Its trajectory is therefore the rounding of each implementation (and has no effect on the
    network's output), so it is reported but not compared."""
    if not name.endswith("attn.qkv.bias"):
        return a, None
    d = len(a) // 3
    return a[:d] + a[2 * d:], a[d:2 * d]


def param_errors(params, ref_params):
    """{name: relative Frobenius error} (key biases excluded) and the worst key-bias error."""
    errs, key = {}, 0.0
    for n in ref_params:
        a, ka = key_bias_split(n, params[n][1])
        b, kb = key_bias_split(n, ref_params[n][1])
        errs[n] = rel_frobenius(a, b)
        if ka is not None:
            key = max(key, rel_frobenius(ka, kb))
    return errs, key


def compare(label, losses, ref_losses, params, ref_params):
    """Prints per-step losses and the worst figures; returns (worst loss rel err, worst param rel err, ok)."""
    if len(losses) != len(ref_losses):
        fail(f"{label}: {len(losses)} steps against {len(ref_losses)} reference steps")
    print(f"{label}: step  loss (cde)   loss (reference)  rel err")
    worst_loss = 0.0
    for s, (a, b) in enumerate(zip(losses, ref_losses)):
        e = abs(a - b) / abs(b)
        worst_loss = max(worst_loss, e)
        print(f"  {s:4d}  {a:.7f}  {b:.7f}        {e:.2e}")
    if set(params) != set(ref_params):
        fail(f"{label}: parameter names differ: {sorted(set(params) ^ set(ref_params))}")
    errs, key = param_errors(params, ref_params)
    worst = max(errs, key=errs.get)
    ok = worst_loss <= LOSS_TOL and errs[worst] <= PARAM_TOL
    print(f"{label}: worst loss rel err {worst_loss:.2e} (tolerance {LOSS_TOL:g}); worst parameter rel Frobenius err "
          f"{errs[worst]:.2e} ({worst}; tolerance {PARAM_TOL:g}), median "
          f"{sorted(errs.values())[len(errs) // 2]:.2e} over {len(errs)} tensors (attention key biases, not "
          f"compared: {key:.2e}) -> {'PASS' if ok else 'FAIL'}")
    return worst_loss, errs[worst], ok


# ---- cde ---------------------------------------------------------------------------------------
def find_cde(arg):
    cde = arg or os.environ.get("CDE") or os.path.join(ROOT, ".build", "release", "cde")
    if not os.access(cde, os.X_OK):
        fail(f"cde not found at {cde} (build with `swift build -c release --product cde`, or set $CDE)")
    return os.path.abspath(cde)


def run(cmd, log):
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if r.returncode != 0:
        sys.stdout.write(open(log).read()[-3000:])
        fail(f"command failed with status {r.returncode}: {' '.join(cmd)}")


def synth(cde, out):
    """Writes the synthetic shards; returns {file name: sha256}."""
    if os.path.exists(out):
        shutil.rmtree(out)
    run([cde, "shards", "synth", "--out", out, "--records", str(SYNTH["records"]), "--shard-size",
         str(SYNTH["shard_size"]), "--seed", str(SYNTH["seed"]), "--strength", str(SYNTH["strength"])], out + ".log")
    return {f: hashlib.sha256(open(os.path.join(out, f), "rb").read()).hexdigest()
            for f in sorted(os.listdir(out)) if f.endswith(".tar")}


def train(cde, config, data, out, ranks, dump=None):
    """`cde train` on `ranks` ranks (mpirun for more than one); returns (losses, lrs, final params)."""
    for d in (out, dump):
        if d and os.path.exists(d):
            shutil.rmtree(d)  # a kept work directory from an earlier run
    cmd = [cde, "train", "--config", config, "--set", f"data.train=[{data}]", "--out", out, "--threads", "1"]
    if dump:
        cmd += ["--dump-views", dump]
    if ranks > 1:
        env = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
        os.environ.update(env)
        cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(ranks)] + cmd
    run(cmd, out + ".log")
    metrics = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    steps = [m["step"] for m in metrics]
    if steps != list(range(1, len(steps) + 1)):
        fail(f"{out}/metrics.jsonl: expected one record per step (train.log_every: 1), got steps {steps}")
    ckpts = sorted(os.listdir(os.path.join(out, "checkpoints")))
    params = read_safetensors(os.path.join(out, "checkpoints", ckpts[-1], "model.safetensors"))
    return [m["loss"] for m in metrics], [m["lr"] for m in metrics], params


# ---- modes -------------------------------------------------------------------------------------
def check_fixtures(cde, fix, tmp):
    ref = json.load(open(os.path.join(fix, "reference.json")))
    global SYNTH
    SYNTH = ref["synth"]
    shas = synth(cde, os.path.join(tmp, "data"))
    if shas != ref["shards_sha256"]:
        fail(f"`cde shards synth {SYNTH}` no longer writes the shards the fixtures in {fix} were made from "
             f"(sha256 differ): regenerate them with python3 scripts/parity_train.py --write-fixtures {fix}")
    ref_params = read_safetensors(os.path.join(fix, "params.safetensors"))
    ok = True
    for ranks in (RANKS, 1):
        losses, lrs, params = train(cde, os.path.join(fix, "config.yaml"), os.path.join(tmp, "data"),
                                    os.path.join(tmp, f"run{ranks}"), ranks)
        bad = [s for s, (a, b) in enumerate(zip(lrs, ref["lr"])) if abs(a - b) > 1e-6 * b]
        if bad or len(lrs) != len(ref["lr"]):
            print(f"FAIL lr of steps {bad} differs from the schedule: cde {lrs}, documented {ref['lr']}")
            ok = False
        *_, good = compare(f"cde train ({ranks} rank{'s' * (ranks > 1)}) vs PyTorch fixtures", losses, ref["loss"],
                           params, ref_params)
        ok &= good
    return ok


def live(cde, tmp, fixtures):
    try:
        import torch
        import torch.nn.functional as F
        import timm
        from safetensors.torch import load_file
    except ImportError as e:
        fail(f"the live check needs torch, timm and safetensors ({e}); --check-fixtures DIR needs none")

    cfg_path = os.path.join(tmp, "config.yaml")
    with open(cfg_path, "w") as f:
        f.write(yaml_text(CONFIG))
    data, dump = os.path.join(tmp, "data"), os.path.join(tmp, "dump")
    shas = synth(cde, data)
    shas2 = synth(cde, os.path.join(tmp, "data-again"))
    if shas != shas2:
        fail("cde shards synth is not deterministic: two runs with the same arguments wrote different shards")
    cde_losses, cde_lrs, cde_params = train(cde, cfg_path, data, os.path.join(tmp, "run2"), RANKS, dump)
    one_losses, _, one_params = train(cde, cfg_path, data, os.path.join(tmp, "run1"), 1, os.path.join(tmp, "dump1"))

    m, o, t = CONFIG["model"], CONFIG["optim"], CONFIG["train"]
    steps, G = t["steps"], t["global_batch"]
    torch.set_num_threads(2)

    def read_step(d, s, ranks):
        files = [load_file(os.path.join(d, f"step-{s:08d}.rank{r}.safetensors")) for r in range(ranks)]
        for r, x in enumerate(files):
            if x["offset"].item() != r * G // ranks or not torch.equal(x["perm"], files[0]["perm"]) \
                    or not torch.equal(x["lr"], files[0]["lr"]):
                fail(f"{d}: step {s}: rank {r}'s offset, perm or lr disagree with rank 0's")
        views = {n: torch.cat([x[n] for x in files]) for n in VIEWS}
        return views, files[0]["perm"], files[0]["lr"].item(), files[0]["weight_decay"].item(), \
            torch.cat([x["record_ids"] for x in files]), files[0]["loss"].item()

    # The dumped views of the 1-rank run are the 2-rank views, bit for bit (global sampling, Sources/Dataset/Sampling.swift).
    for s in range(steps):
        v2, p2, *_ = read_step(dump, s, RANKS)
        v1, p1, *_ = read_step(os.path.join(tmp, "dump1"), s, 1)
        if not (torch.equal(p1, p2) and all(torch.equal(v1[n], v2[n]) for n in VIEWS)):
            fail(f"step {s}: the 1-rank run trained on other views or another permutation than the 2-rank run")

    def model_from_init():
        net = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, dynamic_img_size=True,
                                img_size=m["image_size"], patch_size=m["patch"], embed_dim=m["width"],
                                depth=m["depth"], num_heads=m["heads"], mlp_ratio=m["mlp_ratio"])
        net.load_state_dict(load_file(os.path.join(dump, "init.safetensors")), strict=True)
        return net

    def info_nce(q, p, n, temp):
        """InfoNCE (the CoDE paper): mean over queries of -log(e^{q.p/t} / (e^{q.p/t} + sum_j e^{q.n_j/t})), rows L2-normalised."""
        q, p, n = F.normalize(q, dim=-1), F.normalize(p, dim=-1), F.normalize(n, dim=-1)
        logits = torch.cat([(q * p).sum(-1, keepdim=True), q @ n.T], 1) / temp
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long))

    def code_loss(e, perm, temp, published=False):
        """L = L_real + L_fake (the CoDE paper); published=True: the public code's L_real counted twice."""
        l_real = (info_nce(e["real"], e["aug_real"][perm], e["aug_fake"], temp)
                  + info_nce(e["local_real"], e["global_real"], e["global_fake"], temp)) / 2
        l_fake = (info_nce(e["fake"], e["aug_fake"][perm], e["aug_real"], temp)
                  + info_nce(e["local_fake"], e["global_fake"], e["global_real"], temp)) / 2
        return l_real + (l_real if published else l_fake)

    def replay(decay_rule="matrices", schedule="documented", published_loss=False, check=True):
        """The run in PyTorch; returns (losses, final state dict)."""
        torch.manual_seed(0)
        net = model_from_init()
        named = list(net.named_parameters())
        if decay_rule == "matrices":  # Sources/Training/AdamW.swift: weight matrices only (not biases, norms, pos_embed, cls_token)
            dec = [p for n, p in named if n.endswith(".weight") and p.ndim >= 2]
            nodec = [p for n, p in named if not (n.endswith(".weight") and p.ndim >= 2)]
        elif decay_rule == "all":  # every tensor decayed
            dec, nodec = [p for _, p in named], []
        else:  # "none"
            dec, nodec = [], [p for _, p in named]
        opt = torch.optim.AdamW([{"params": dec, "weight_decay": o["weight_decay"]},
                                 {"params": nodec, "weight_decay": 0.0}],
                                lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"])
        losses = []
        for s in range(steps):
            views, perm, lr, wd, ids, _ = read_step(dump, s, RANKS)
            if check:
                want = lr_schedule(CONFIG, s)
                if abs(lr - want) > 1e-6 * want:
                    fail(f"step {s}: cde used lr {lr!r}, the documented schedule gives {want!r}")
                if abs(wd - o["weight_decay"]) > 1e-7:
                    fail(f"step {s}: cde used weight decay {wd!r}, the config says {o['weight_decay']!r}")
                if len(set(ids.tolist())) != G:
                    fail(f"step {s}: the global batch holds a record twice: {ids.tolist()}")
                pl = perm.tolist()
                if sorted(pl) != list(range(G)) or any(i == j for i, j in enumerate(pl)):
                    fail(f"step {s}: perm {pl} is not a derangement of 0..{G - 1}")
            if schedule == "timm-cosine":  # timm CosineLRScheduler, warmup_prefix=False: cosine from step 0
                if s >= o["warmup_steps"]:
                    lr = o["min_lr"] + (o["lr"] - o["min_lr"]) * 0.5 * (1 + math.cos(math.pi * s / steps))
            for g in opt.param_groups:
                g["lr"] = lr
            eg = net(torch.cat([views[n] for n in VIEWS[:6]]))
            el = net(torch.cat([views[n] for n in VIEWS[6:]]))
            e = dict(zip(VIEWS[:6], eg.split(G)))
            e["local_real"], e["local_fake"] = el.split(G)
            loss = code_loss(e, perm, CONFIG["loss"]["temperature"], published_loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, {n: p.detach().clone() for n, p in net.named_parameters()}

    def as_arrays(sd):
        return {n: (list(p.shape), array("f", p.flatten().tolist())) for n, p in sd.items()}

    ref_losses, ref_sd = replay()
    ref_params = as_arrays(ref_sd)
    dumped = [read_step(dump, s, RANKS)[5] for s in range(steps)]
    if any(abs(a - b) > 1e-6 * abs(b) for a, b in zip(cde_losses, dumped)):
        fail("the losses in the dump differ from those of metrics.jsonl")
    print(f"lr of every step equals the documented schedule: {' '.join(f'{x:.3e}' for x in cde_lrs)}")
    print("1-rank and 2-rank runs trained on bit-identical views and permutations")
    w_loss, w_param, ok = compare(f"cde train ({RANKS} ranks) vs PyTorch", cde_losses, ref_losses, cde_params, ref_params)
    w1_loss, w1_param, ok1 = compare("cde train (1 rank) vs PyTorch", one_losses, ref_losses, one_params, ref_params)
    e12_loss = max(abs(a - b) / abs(b) for a, b in zip(one_losses, cde_losses))
    e12, e12_key = param_errors(one_params, cde_params)
    print(f"cde 1 rank vs 2 ranks: worst loss rel err {e12_loss:.2e}, worst parameter rel Frobenius err "
          f"{max(e12.values()):.2e} ({max(e12, key=e12.get)}; key biases {e12_key:.2e})")

    # Power: replays that get one rule wrong must fall outside the tolerances.
    power_ok = True
    for what, kw in [("weight decay on every tensor", {"decay_rule": "all"}),
                     ("no weight decay", {"decay_rule": "none"}),
                     ("timm cosine without warmup prefix", {"schedule": "timm-cosine"}),
                     ("published code's loss (L_real twice)", {"published_loss": True})]:
        wl, wsd = replay(check=False, **kw)
        lerr = max(abs(a - b) / abs(b) for a, b in zip(cde_losses, wl))
        perrs, _ = param_errors(cde_params, as_arrays(wsd))
        perr = max(perrs.values())
        caught = lerr > LOSS_TOL or perr > PARAM_TOL
        power_ok &= caught
        print(f"power: PyTorch with {what}: worst loss rel err {lerr:.2e}, worst parameter rel Frobenius err "
              f"{perr:.2e} -> {'detected' if caught else 'NOT DETECTED'}")

    if fixtures:
        os.makedirs(fixtures, exist_ok=True)
        with open(os.path.join(fixtures, "config.yaml"), "w") as f:
            f.write(yaml_text(CONFIG))
        ref = {"about": "PyTorch + timm replay of the cde train run of config.yaml on `cde shards synth` data "
                        "(scripts/parity_train.py --write-fixtures)",
               "torch": torch.__version__, "timm": timm.__version__, "synth": SYNTH, "shards_sha256": shas,
               "loss": ref_losses, "lr": [lr_schedule(CONFIG, s) for s in range(steps)]}
        with open(os.path.join(fixtures, "reference.json"), "w") as f:
            json.dump(ref, f, indent=1)
            f.write("\n")
        write_safetensors_f32(os.path.join(fixtures, "params.safetensors"), ref_params)
        print(f"wrote {fixtures}")
    print(f"worst: loss rel err {w_loss:.2e} (1 rank {w1_loss:.2e}), parameter rel Frobenius err {w_param:.2e} "
          f"(1 rank {w1_param:.2e})")
    return ok and ok1 and power_ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cde", help="cde executable (default: $CDE or .build/release/cde)")
    ap.add_argument("--write-fixtures", metavar="DIR", help="also write the fixtures of the make-test check to DIR")
    ap.add_argument("--check-fixtures", metavar="DIR", help="compare cde against the fixtures in DIR (no torch)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary directory)")
    a = ap.parse_args()
    cde = find_cde(a.cde)
    with tempfile.TemporaryDirectory() as t:
        tmp = a.keep or t
        os.makedirs(tmp, exist_ok=True)
        ok = check_fixtures(cde, a.check_fixtures, tmp) if a.check_fixtures else live(cde, tmp, a.write_fixtures)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
