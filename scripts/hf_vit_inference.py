#!/usr/bin/env python3
"""Inference throughput of Hugging Face transformers' ViTModel with ViT-Tiny's shape
(hidden 192, 12 layers, 3 heads, MLP 768, patch 16, 224 px; random weights), the
comparison for `cde bench --inference` (scripts/bench.sh).

    python3 scripts/hf_vit_inference.py --images 32 --threads 2 --steps 5

Prints one line: "<images>/s images/s ...". Needs torch and transformers.
"""
import argparse
import time

import torch
from transformers import ViTConfig, ViTModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32, help="images per forward pass")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--steps", type=int, default=5, help="timed passes (after one warm-up)")
    ap.add_argument("--size", type=int, default=224, help="image side in pixels")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ViTConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768,
                    image_size=args.size, patch_size=16, layer_norm_eps=1e-6)
    model = ViTModel(cfg, add_pooling_layer=False).eval()
    x = torch.randn(args.images, 3, args.size, args.size)
    times = []
    with torch.inference_mode():
        for i in range(args.steps + 1):
            t0 = time.perf_counter()
            model(pixel_values=x)
            if i > 0:
                times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    print(f"{args.images / median:.2f} images/s (transformers ViTModel, {args.images} images at {args.size} px, "
          f"{args.threads} thread(s), attention {model.config._attn_implementation}, median pass {median:.3f} s)")


if __name__ == "__main__":
    main()
