"""Runs a PyTorch anchor script under CPU autocast to bfloat16: PyTorch's own mixed precision
(matmuls and linear layers on bf16 operands, fp32 master weights and optimizer), the
counterpart of `optim.precision: bf16`, for scripts/bench.sh.

  python torch_autocast_bf16.py ANCHOR.py [the anchor's arguments]
"""
import runpy
import sys

import torch

script = sys.argv[1]
sys.argv = sys.argv[1:]
with torch.autocast("cpu", dtype=torch.bfloat16):
    runpy.run_path(script, run_name="__main__")
