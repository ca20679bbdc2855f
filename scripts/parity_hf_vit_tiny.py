#!/usr/bin/env python3
"""Parity of `cde embed` with transformers' ViTModel on a full-size ViT-Tiny.

A randomly initialised ViT-Tiny (hidden 192, 12 layers, 3 heads, MLP 768, image 224,
patch 16, transformers' default init and layer_norm_eps 1e-12) is written with
save_pretrained; `cde embed --model DIR` (converted on load, eps from config.json) embeds
a few PNG images of different sizes; the same images go through torchvision
(CenterCrop(224) at native resolution, padded when smaller, or Resize(248, bicubic) +
CenterCrop(224) for --preprocess resize-crop; ToTensor; ImageNet Normalize) and ViTModel,
whose last_hidden_state[:, 0] is the reference. Then `cde export --to hf` writes the model
back and ViTModel.from_pretrained of the export must reproduce the original outputs.

Prints the max abs errors; exits 1 if the centre-crop embeddings differ by more than 1e-4.

Run: /tmp/ref/bin/python scripts/parity_hf_vit_tiny.py [path/to/cde]
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from torchvision import transforms as T
from transformers import ViTConfig, ViTModel

CDE = sys.argv[1] if len(sys.argv) > 1 else ".build/release/cde"
TOL = 1e-4


def embed_file(path):
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        return f.get_tensor("embeddings"), json.loads(meta["sources"]), meta


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tmp = tempfile.mkdtemp(prefix="cde-parity-")
    hf_dir = os.path.join(tmp, "hf")
    cfg = ViTConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768,
                    image_size=224, patch_size=16, num_channels=3, qkv_bias=True, hidden_act="gelu")
    model = ViTModel(cfg).eval()
    model.save_pretrained(hf_dir, safe_serialization=True)
    print(f"ViT-Tiny (random init, layer_norm_eps {cfg.layer_norm_eps}): "
          f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,} parameters in {hf_dir}")

    img_dir = os.path.join(tmp, "images")
    os.makedirs(img_dir)
    paths = []
    for i, (w, h) in enumerate([(224, 224), (256, 256), (301, 200), (180, 263), (640, 480), (97, 97)]):
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        a = np.stack([128 + 100 * np.sin(rng.uniform(0.01, 0.1) * x + rng.uniform(0.01, 0.1) * y + c) for c in range(3)], -1)
        a += rng.normal(0, 25, a.shape)
        p = os.path.join(img_dir, f"img{i}_{w}x{h}.png")
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB").save(p)
        paths.append(p)

    norm = [T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    pipelines = {
        "center-crop": T.Compose([T.CenterCrop(224)] + norm),
        "resize-crop": T.Compose([T.Resize(248, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224)] + norm),
    }
    worst = {}
    for pre, tf in pipelines.items():
        out = os.path.join(tmp, f"emb-{pre}.safetensors")
        subprocess.run([CDE, "embed", "--model", hf_dir, "--preprocess", pre, "--quiet", "--out", out] + paths, check=True)
        got, sources, meta = embed_file(out)
        assert sources == paths, sources
        x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])
        with torch.no_grad():
            ref = model(pixel_values=x).last_hidden_state[:, 0]
        err = (got - ref).abs().max().item()
        worst[pre] = err
        print(f"cde embed --preprocess {pre}: {len(paths)} images, class-token max abs error {err:.3e} "
              f"(reference max abs {ref.abs().max().item():.3f}; model_layout {meta.get('model_layout')})")

    # Export back to the transformers layout and reload it with transformers.
    exp_dir = os.path.join(tmp, "exported")
    subprocess.run([CDE, "export", "--model", hf_dir, "--to", "hf", "--out", exp_dir], check=True, stdout=subprocess.DEVNULL)
    again = ViTModel.from_pretrained(exp_dir).eval()
    x = torch.stack([pipelines["center-crop"](Image.open(p).convert("RGB")) for p in paths])
    with torch.no_grad():
        a = model(pixel_values=x).last_hidden_state[:, 0]
        b = again(pixel_values=x).last_hidden_state[:, 0]
    exp_err = (a - b).abs().max().item()
    print(f"cde export --to hf, reloaded by transformers: class-token max abs difference {exp_err:.3e}")

    ok = worst["center-crop"] <= TOL and exp_err <= TOL
    print("PASS" if ok else "FAIL", f"(tolerance {TOL})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
