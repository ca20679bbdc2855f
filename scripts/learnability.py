#!/usr/bin/env python3
"""How fast can a small ViT pick up the synthetic real-vs-generated cues?

An independent (PyTorch + timm) probe of the question behind issue 5's smoke target,
run on the same shards as `make run`, with the same base view (shorter side to 248,
bicubic, centre crop 224, ImageNet normalisation). Each experiment trains from
scratch and prints its loss every 50 steps and, at the end, what it learned:

  ce      timm ViT (smoke shape) + linear head, cross-entropy real vs generated
  code    the same ViT, CoDE's global term only:
          InfoNCE(r, r'[pi], f') + InfoNCE(f, f'[pi], r'), t = 0.1, second view = h-flip
          (chance level is 2 log(1 + B); a collapsed embedding sits exactly there)
  cnn     a two-layer CNN (3x3 convs, global average pool) with cross-entropy: the control
  noise   ViT, cross-entropy "clean generated image" vs "same + white noise of sigma
          NOISE_SIGMA" (normalised units): can the architecture see pixel noise at all?
  pixel   one-pixel baseline, no network: per generator and per pixel position of a 7x7
          grid of the base view, L2 logistic regression on that pixel's 3 normalised values
          ("linear") and on their 9 degree-2 monomials ("quadratic", which can express
          saturation- and brightness-band cues), fitted on the training records (real vs
          gen_k) and scored on the test folders; prints the best and the mean position

--pattern tile32|iid adds a fixed pattern of +-PATTERN_AMP (normalised units) to every
generated image's base view, training and test alike: `tile32` repeats one random 32x32
tile, aligned with the 32-px patch grid (every token moves by the same vector: the easiest
cue a ViT can have); `iid` is one random sign per pixel of the 224x224 view (a different
offset for every token). It measures how strong a cue must be for each objective to find it.

Usage:
  python3 scripts/learnability.py --train 'runs/synth-d3/train/*.tar' \
      --test runs/synth-d3/test [--experiments ce,code,cnn,noise,pixel] [--steps 300]
Needs torch, torchvision, timm, Pillow, numpy, scikit-learn (pip). Figures: docs/learnability.md.
"""
import argparse, glob, io, os, tarfile, time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image

# The training base view, as torchvision defines it (the reference the Swift views are tested against):
# shorter side to floor(224 / 0.9) = 248 (bicubic), centre crop 224, ImageNet normalisation; [3, 224, 224].
BASE_VIEW = T.Compose([T.Resize(248, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
                       T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
KINDS = ["real", "gen_0", "gen_1", "gen_2", "gen_3"]


def base_view(img):
    return BASE_VIEW(img.convert("RGB")).numpy()


def load_shards(pattern):
    """Records of WebDataset shards -> reals [N, 3, 224, 224], generated [N, 4, 3, 224, 224] (float16)."""
    recs = {}
    for path in sorted(glob.glob(pattern)):
        with tarfile.open(path) as tf:
            for m in tf.getmembers():
                if not m.isfile() or "." not in m.name:
                    continue
                key, rest = m.name.split(".", 1)
                kind = rest.split(".")[0]
                if kind in KINDS:
                    recs.setdefault(key, {})[kind] = base_view(Image.open(io.BytesIO(tf.extractfile(m).read())))
    keys = sorted(k for k, v in recs.items() if all(x in v for x in KINDS))
    if not keys:
        raise SystemExit(f"learnability: no complete D3 records in {pattern}")
    reals = np.stack([recs[k]["real"] for k in keys]).astype(np.float16)
    gens = np.stack([[recs[k][f"gen_{i}"] for i in range(4)] for k in keys]).astype(np.float16)
    return torch.from_numpy(reals), torch.from_numpy(gens)


def load_folders(root):
    out = {}
    for kind in KINDS:
        files = sorted(glob.glob(os.path.join(root, kind, "*")))
        if not files:
            raise SystemExit(f"learnability: {root}/{kind}: no images")
        out[kind] = torch.from_numpy(np.stack([base_view(Image.open(f)) for f in files]))
    return out


def fixed_pattern(kind, amp, seed=5):
    """A fixed [3, 224, 224] pattern of +-amp (see --pattern), or None."""
    if kind == "none":
        return None
    g = torch.Generator().manual_seed(seed)
    if kind == "tile32":
        return amp * torch.sign(torch.randn(3, 32, 32, generator=g)).repeat(1, 7, 7)
    if kind == "iid":
        return amp * torch.sign(torch.randn(3, 224, 224, generator=g))
    raise SystemExit(f"learnability: unknown --pattern {kind!r} (none, tile32, iid)")


def vit(args, num_classes):
    import timm
    return timm.create_model("vit_tiny_patch16_224", num_classes=num_classes, patch_size=args.patch,
                             embed_dim=args.width, depth=args.depth, num_heads=args.heads)


def info_nce(q, p, n, t=0.1):
    q, p, n = F.normalize(q, dim=1), F.normalize(p, dim=1), F.normalize(n, dim=1)
    pos = (q * p).sum(1, keepdim=True) / t
    return (torch.logsumexp(torch.cat([pos, q @ n.t() / t], 1), 1, keepdim=True) - pos).mean()


def train(model, params, loss_fn, args, tag):
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=2e-5)
    t0, first, last = time.time(), None, []
    for s in range(args.steps):
        lr = args.lr * min(1.0, (s + 1) / args.warmup) * 0.5 * (1 + np.cos(np.pi * s / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = loss_fn(s)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = (last + [loss.item()])[-25:]
        if s % 50 == 0 or s == args.steps - 1:
            print(f"  {tag} step {s:4d}  loss {loss.item():.4f}  ({time.time() - t0:.0f} s)", flush=True)
    return first, float(np.mean(last))


def batch(R, G, B):
    idx = torch.randint(0, R.shape[0], (B,))
    k = torch.randint(0, 4, (B,))
    return R[idx].float(), G[idx, k].float()


def embed(model, x):
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[i:i + 50]) for i in range(0, len(x), 50)]).numpy()
    model.train()
    return out


def probe(model, test, label):
    """Per generator: 5-fold cross-validated L2 logistic regression (C = 0.316, balanced) on embeddings."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    E = {k: embed(model, v) for k, v in test.items()}
    accs = []
    for i in range(4):
        X = np.concatenate([E["real"], E[f"gen_{i}"]])
        y = np.r_[np.zeros(len(E["real"])), np.ones(len(E[f"gen_{i}"]))]
        clf = LogisticRegression(C=0.316, class_weight="balanced", max_iter=5000)
        accs.append(cross_val_score(clf, X, y, cv=5).mean())
    print(f"  {label}: linear probe accuracy per generator " + "  ".join(f"gen_{i} {a:.3f}" for i, a in enumerate(accs)),
          flush=True)


def pixel_baseline(R, G, test, grid=7):
    """Per generator: held-out accuracy of a one-pixel classifier, best and mean over a grid of positions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler
    pos = np.linspace(16, 207, grid).round().astype(int)
    models = {"linear": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
              "quadratic": lambda: make_pipeline(PolynomialFeatures(2, include_bias=False), StandardScaler(),
                                                 LogisticRegression(max_iter=2000))}
    for name, make in models.items():
        best, mean = [], []
        for i in range(4):
            accs = []
            for y in pos:
                for x in pos:
                    Xtr = np.concatenate([R[:, :, y, x].float().numpy(), G[:, i, :, y, x].float().numpy()])
                    ytr = np.r_[np.zeros(R.shape[0]), np.ones(G.shape[0])]
                    Xte = np.concatenate([test["real"][:, :, y, x].numpy(), test[f"gen_{i}"][:, :, y, x].numpy()])
                    yte = np.r_[np.zeros(len(test["real"])), np.ones(len(test[f"gen_{i}"]))]
                    accs.append(make().fit(Xtr, ytr).score(Xte, yte))
            best.append(max(accs))
            mean.append(float(np.mean(accs)))
        print(f"  one pixel, {name}: test accuracy per generator (best / mean of {grid}x{grid} positions) "
              + "  ".join(f"gen_{i} {b:.3f}/{m:.3f}" for i, (b, m) in enumerate(zip(best, mean))), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True, help="glob of WebDataset shards")
    ap.add_argument("--test", required=True, help="test-layout folder (real/, gen_0/ ... gen_3/)")
    ap.add_argument("--experiments", default="ce,code,cnn,noise")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16, help="records per step (B reals + B generated)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--patch", type=int, default=32)
    ap.add_argument("--noise-sigma", type=float, default=0.3)
    ap.add_argument("--pattern", default="none", help="none, tile32 or iid: a fixed pattern added to generated images")
    ap.add_argument("--pattern-amp", type=float, default=0.03, help="amplitude of --pattern, normalised units")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    R, G = load_shards(args.train)
    test = load_folders(args.test)
    pattern = fixed_pattern(args.pattern, args.pattern_amp)
    if pattern is not None:
        G = (G.float() + pattern).half()
        test = {k: v if k == "real" else v + pattern for k, v in test.items()}
    B = args.batch
    print(f"{R.shape[0]} training records, test {', '.join(f'{k} {len(v)}' for k, v in test.items())}; "
          f"ViT width {args.width} depth {args.depth} heads {args.heads} patch {args.patch}, "
          f"{args.steps} steps of {B}+{B} images, lr {args.lr}"
          + (f"; generated images + {args.pattern} pattern of +-{args.pattern_amp}" if pattern is not None else ""),
          flush=True)
    for exp in args.experiments.split(","):
        torch.manual_seed(args.seed)
        print(f"== {exp}", flush=True)
        if exp == "pixel":
            pixel_baseline(R, G, test)
        elif exp == "ce":
            m = vit(args, 0)
            head = torch.nn.Linear(args.width, 2)
            y = torch.cat([torch.zeros(B), torch.ones(B)]).long()

            def loss(s):
                r, f = batch(R, G, B)
                return F.cross_entropy(head(m(torch.cat([r, f]))), y)
            probe(m, test, "random init")
            first, last = train(m, list(m.parameters()) + list(head.parameters()), loss, args, "ce")
            print(f"  loss {first:.3f} -> {last:.3f} (chance {np.log(2):.3f})")
            probe(m, test, "trained")
            with torch.no_grad():
                m.eval()
                acc = {k: (head(m(v)).argmax(1) == (0 if k == "real" else 1)).float().mean().item()
                       for k, v in test.items()}
            print("  trained head: test accuracy per class " + "  ".join(f"{k} {a:.3f}" for k, a in acc.items())
                  + "; balanced real vs gen_k " + "  ".join(f"gen_{i} {(acc['real'] + acc[f'gen_{i}']) / 2:.3f}"
                                                           for i in range(4)), flush=True)
        elif exp == "code":
            m = vit(args, 0)
            pi = torch.roll(torch.arange(B), 1)

            def loss(s):
                r, f = batch(R, G, B)
                e1, e2 = m(torch.cat([r, f])), m(torch.cat([r, f]).flip(3))
                return info_nce(e1[:B], e2[:B][pi], e2[B:]) + info_nce(e1[B:], e2[B:][pi], e2[:B])
            probe(m, test, "random init")
            first, last = train(m, m.parameters(), loss, args, "code")
            print(f"  loss {first:.3f} -> {last:.3f} (chance, i.e. a collapsed embedding: {2 * np.log(1 + B):.3f})")
            probe(m, test, "trained")
        elif exp == "cnn":
            m = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                                    torch.nn.Conv2d(16, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
                                    torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 2))
            y = torch.cat([torch.zeros(B), torch.ones(B)]).long()

            def loss(s):
                r, f = batch(R, G, B)
                return F.cross_entropy(m(torch.cat([r, f])), y)
            first, last = train(m, m.parameters(), loss, args, "cnn")
            with torch.no_grad():
                m.eval()
                acc = {k: (m(v).argmax(1) == (0 if k == "real" else 1)).float().mean().item() for k, v in test.items()}
            print(f"  loss {first:.3f} -> {last:.3f}; test accuracy " + "  ".join(f"{k} {a:.3f}" for k, a in acc.items()))
        elif exp == "noise":
            m = vit(args, 2)
            y = torch.cat([torch.ones(B), torch.zeros(B)]).long()

            def loss(s):
                _, f1 = batch(R, G, B)
                _, f2 = batch(R, G, B)
                return F.cross_entropy(m(torch.cat([f1 + args.noise_sigma * torch.randn_like(f1), f2])), y)
            first, last = train(m, m.parameters(), loss, args, "noise")
            print(f"  loss {first:.3f} -> {last:.3f} (chance {np.log(2):.3f}); white noise sigma {args.noise_sigma}")
        else:
            raise SystemExit(f"learnability: unknown experiment {exp!r} (ce, code, cnn, noise, pixel)")


if __name__ == "__main__":
    main()
