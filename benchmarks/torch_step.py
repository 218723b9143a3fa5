#!/usr/bin/python3
"""The same training step as bench_step, in PyTorch, measured side by side with sslrun.

Runs build/benchmarks/bench_step for a model, then the identical step in PyTorch (torchvision's
ResNet with the small-image stem / VisionTransformer, loss sum(features * r), SGD momentum or
AdamW), on the same threads, and prints images/s for both and the ratio.
  /usr/bin/python3 benchmarks/torch_step.py --model resnet18 --small-stem --img 32 --batch 128
  /usr/bin/python3 benchmarks/torch_step.py --model vit_tiny --img 32 --patch 4 --batch 64
PyTorch's CPU convolutions run on oneDNN (mkldnn); its GEMMs on the BLAS it was built with, so
OPENBLAS_CORETYPE is left as the caller sets it (the script prints which kernels OpenBLAS uses).
"""
import argparse
import os
import re
import subprocess
import sys
import time

import torch
import torch.nn as nn


def build(args):
    from torchvision.models import resnet18, resnet50
    from torchvision.models.vision_transformer import VisionTransformer
    if args.model.startswith("resnet"):
        m = {"resnet18": resnet18, "resnet50": resnet50}[args.model](num_classes=1000)
        m.fc = nn.Identity()
        if args.small_stem:
            m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            m.maxpool = nn.Identity()
        return m
    dims = {"vit_tiny": (192, 3), "vit_small": (384, 6), "vit_base": (768, 12)}[args.model]
    m = VisionTransformer(image_size=args.img, patch_size=args.patch, num_layers=12,
                          num_heads=dims[1], hidden_dim=dims[0], mlp_dim=4 * dims[0])
    m.heads = nn.Identity()
    return m


def torch_images_per_s(args):
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    model = build(args).train().to(dev)
    opt = (torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
           if args.optim in ("adamw", "lamb") else
           torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4))
    if args.device == "cuda":  # the same exact-fp32 math as sslrun's default (no TF32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        # timed algorithm choice, as the official DINO / MAE / MoCo training scripts set it
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    x = (torch.rand(args.batch, 3, args.img, args.img) * 2 - 1).to(dev)
    if args.bf16:  # the usual mixed-precision recipe: bf16 autocast, channels-last activations
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    for it in range(args.warmup + args.iters):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16):
            y = model(x)
        r = torch.full_like(y, 1e-3)
        (y * r).sum().backward()
        opt.step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        if it >= args.warmup:
            times.append(dt)
    if args.device == "cuda":  # beside bench_step's "memory held" line
        print(f"PyTorch peak CUDA memory allocated {torch.cuda.max_memory_allocated() / 1e6:.1f} MB "
              "(parameters, gradients, optimizer state, activations)")
    return args.batch / (sum(times) / len(times))


def sslrun_images_per_s(args):
    exe = os.path.join(args.build, "benchmarks", "bench_step")
    cmd = [exe, "--model", args.model, "--img", str(args.img), "--patch", str(args.patch),
           "--batch", str(args.batch), "--iters", str(args.iters), "--optim", args.optim,
           "--backend", "cuda" if args.device == "cuda" else "cpu", "--precision", "bf16" if args.bf16 else "fp32"]
    if args.small_stem:
        cmd.append("--small-stem")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    print(r.stdout, end="")
    m = re.search(r"RESULT images/s ([0-9.]+)", r.stdout)
    if r.returncode != 0 or not m:  # say why, and still measure PyTorch's side
        print(f"bench_step failed (exit {r.returncode}):\n" + "\n".join(r.stderr.splitlines()[-15:]))
        return None
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--small-stem", action="store_true")
    ap.add_argument("--img", type=int, default=32)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--optim", default="sgd")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--bf16", action="store_true",
                    help="mixed precision on both sides: torch.autocast(bfloat16) + channels-last vs "
                         "bench_step --precision bf16")
    ap.add_argument("--no-cudnn-benchmark", action="store_true",
                    help="PyTorch's default cuDNN algorithm choice (heuristics, as sslrun) instead of timed")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--torch-only", action="store_true",
                    help="only PyTorch's step (benchmarks/mem_step.sh measures each side's peak memory alone)")
    args = ap.parse_args()
    if args.torch_only:
        print(f"PyTorch {torch.__version__}: {torch_images_per_s(args):.1f} images/s")
        return 0
    ours = sslrun_images_per_s(args)
    theirs = torch_images_per_s(args)
    where = (torch.cuda.get_device_name(0) if args.device == "cuda"
             else f"{args.threads} threads, mkldnn {torch.backends.mkldnn.is_available()}")
    print(f"PyTorch {torch.__version__} ({where}): {theirs:.1f} images/s")
    if ours is None:
        return 1
    print(f"sslrun: {ours:.1f} images/s   ratio sslrun/PyTorch = {ours / theirs:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
