#!/usr/bin/python3
"""The same training step as bench_step, in PyTorch, measured side by side with sslrun.

Runs build/benchmarks/bench_step for a model, then the identical step in PyTorch (torchvision's
ResNet with the small-image stem / VisionTransformer, loss sum(features * r), SGD momentum or
AdamW), on the same threads, and prints images/s for both and the ratio.
  /usr/bin/python3 benchmarks/torch_step.py --model resnet18 --small-stem --img 32 --batch 128
  /usr/bin/python3 benchmarks/torch_step.py --model vit_tiny --img 32 --patch 4 --batch 64
With --method the timed step is a method's whole training step instead of the encoder alone
(bench_step gets the same --method):
  /usr/bin/python3 benchmarks/torch_step.py --method simclr --model resnet50 --img 224 --batch 64 --optim lars
  /usr/bin/python3 benchmarks/torch_step.py --method mae --model vit_base --img 224 --patch 16 --batch 64 --optim adamw
The SimCLR step runs both views of every image through the ResNet as one batch of 2N, then the
projector (Linear 2048 - BN - ReLU - Linear 128 - BN), L2 normalisation and the NT-Xent loss
(temperature 0.2); images/s counts N images (2N views) per step.
The MAE step is the official models_mae.py: a ViT encoder on the 25% of patches kept by a random
per-image mask (fresh noise each step), an 8-block 512-wide decoder over all patches with mask
tokens, and the norm-pix loss on the removed patches.
Where bench_step prints its step's GFLOP, both sides' achieved FLOP/s are printed, and on a GPU
of known peak (H100/H200, A100) the MFU against the fp32 (and tf32) or bf16 dense peak.
PyTorch's CPU convolutions run on oneDNN (mkldnn); its GEMMs on the BLAS it was built with, so
OPENBLAS_CORETYPE is left as the caller sets it (the script prints which kernels OpenBLAS uses).
"""
import argparse
import os
import re
import subprocess
import sys
import time
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

VIT_DIMS = {"vit_tiny": (192, 3), "vit_small": (384, 6), "vit_base": (768, 12)}  # width, heads

# dense peak TFLOP/s (no sparsity) by a substring of torch.cuda.get_device_name
GPU_PEAK_TFLOPS = (("H100 PCIe", {"fp32": 51.0, "tf32": 378.0, "bf16": 756.0}),  # first: "H100" matches it too
                   ("H100", {"fp32": 67.0, "tf32": 495.0, "bf16": 989.0}),
                   ("H200", {"fp32": 67.0, "tf32": 495.0, "bf16": 989.0}),
                   ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}))


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
    dims = VIT_DIMS[args.model]
    m = VisionTransformer(image_size=args.img, patch_size=args.patch, num_layers=12,
                          num_heads=dims[1], hidden_dim=dims[0], mlp_dim=4 * dims[0])
    m.heads = nn.Identity()
    return m


class SimCLR(nn.Module):
    """SimCLR's step: encoder on both views as one batch, projector, NT-Xent (temperature 0.2)."""

    def __init__(self, encoder, feat, temperature=0.2):
        super().__init__()
        self.encoder = encoder
        self.projector = nn.Sequential(
            nn.Linear(feat, 2048, bias=False), nn.BatchNorm1d(2048), nn.ReLU(inplace=True),
            nn.Linear(2048, 128, bias=False), nn.BatchNorm1d(128, affine=False))
        self.temperature = temperature

    def forward(self, v1, v2, memory_format=torch.contiguous_format):
        n = v1.shape[0]
        x = torch.cat([v1, v2]).contiguous(memory_format=memory_format)  # no copy when already so
        z = F.normalize(self.projector(self.encoder(x)), dim=1)
        logits = z @ z.t() / self.temperature
        eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(eye, float("-inf"))
        idx = torch.arange(2 * n, device=z.device)
        target = torch.where(idx < n, idx + n, idx - n)
        return F.cross_entropy(logits, target)


class MAE(nn.Module):
    """facebookresearch/mae models_mae.py: masked ViT encoder, 8-block 512-wide decoder, norm-pix loss."""

    def __init__(self, img, patch, dim, heads, depth=12, dec_dim=512, dec_depth=8, dec_heads=16,
                 mask_ratio=0.75):
        super().__init__()
        from torchvision.models.vision_transformer import EncoderBlock
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.patch = patch
        self.L = (img // patch) ** 2
        self.mask_ratio = mask_ratio
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", torch.randn(1, 1 + self.L, dim) * 0.02)  # fixed, not trained
        self.blocks = nn.ModuleList([EncoderBlock(heads, dim, 4 * dim, dropout=0.0, attention_dropout=0.0,
                                                  norm_layer=norm) for _ in range(depth)])
        self.norm = norm(dim)
        self.decoder_embed = nn.Linear(dim, dec_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim))
        self.register_buffer("decoder_pos_embed", torch.randn(1, 1 + self.L, dec_dim) * 0.02)
        self.decoder_blocks = nn.ModuleList([EncoderBlock(dec_heads, dec_dim, 4 * dec_dim, dropout=0.0,
                                                          attention_dropout=0.0, norm_layer=norm)
                                             for _ in range(dec_depth)])
        self.decoder_norm = norm(dec_dim)
        self.decoder_pred = nn.Linear(dec_dim, patch * patch * 3)

    def patchify(self, imgs):
        p = self.patch
        n, h = imgs.shape[0], imgs.shape[2] // p
        x = imgs.reshape(n, 3, h, p, h, p)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(n, h * h, p * p * 3)

    def random_masking(self, x):
        n, L, d = x.shape
        len_keep = int(L * (1 - self.mask_ratio))
        noise = torch.rand(n, L, device=x.device)  # fresh every step
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, 1, ids_keep.unsqueeze(-1).repeat(1, 1, d))
        mask = torch.ones(n, L, device=x.device)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, 1, ids_restore)  # 1 on removed patches
        return x_masked, mask, ids_restore

    def forward_encoder(self, imgs):
        x = self.patch_embed(imgs).flatten(2).transpose(1, 2)
        x = x + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), mask, ids_restore

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)  # autocast promotes, as in models_mae.py
        x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1)
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_pred(self.decoder_norm(x))
        return x[:, 1:, :]

    def forward_loss(self, imgs, pred, mask):
        target = self.patchify(imgs)
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.e-6) ** .5
        loss = ((pred - target) ** 2).mean(dim=-1)
        return (loss * mask).sum() / mask.sum()

    def forward(self, imgs):
        latent, mask, ids_restore = self.forward_encoder(imgs)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask)


def make_step(args, dev):
    """The model (all trained parameters) and a closure computing the step's loss, under autocast."""
    rand_images = lambda: (torch.rand(args.batch, 3, args.img, args.img) * 2 - 1).to(dev)
    autocast = lambda: torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16)
    cl = torch.channels_last if args.bf16 else torch.contiguous_format
    if args.method == "simclr":  # two views, made once; the ResNet and its input channels-last in bf16
        feat = {"resnet18": 512, "resnet50": 2048}[args.model]
        model = SimCLR(build(args), feat).train().to(dev)
        if args.bf16:
            model.encoder = model.encoder.to(memory_format=torch.channels_last)
        v1, v2 = rand_images().contiguous(memory_format=cl), rand_images().contiguous(memory_format=cl)

        def loss_fn():
            with autocast():
                return model(v1, v2, memory_format=cl)
        return model, loss_fn
    if args.method == "mae":
        dim, heads = VIT_DIMS[args.model]
        model = MAE(args.img, args.patch, dim, heads).train().to(dev)
        x = rand_images()

        def loss_fn():
            with autocast():
                return model(x)
        return model, loss_fn
    model = build(args).train().to(dev)  # the encoder alone, loss sum(y * r)
    x = rand_images()
    if args.bf16:  # the usual mixed-precision recipe: bf16 autocast, channels-last activations
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def loss_fn():
        with autocast():
            y = model(x)
        r = torch.full_like(y, 1e-3)
        return (y * r).sum()
    return model, loss_fn


def torch_images_per_s(args):
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if args.device == "cuda":  # the same exact-fp32 math as sslrun's default (no TF32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        # timed algorithm choice, as the official DINO / MAE / MoCo training scripts set it
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    model, loss_fn = make_step(args, dev)
    opt = (torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
           if args.optim in ("adamw", "lamb") else
           torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4))
    times = []
    for it in range(args.warmup + args.iters):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
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
    """bench_step's images/s (None when it failed) and its GFLOP per step (None when not printed)."""
    exe = os.path.join(args.build, "benchmarks", "bench_step")
    cmd = [exe, "--model", args.model, "--img", str(args.img), "--patch", str(args.patch),
           "--batch", str(args.batch), "--iters", str(args.iters), "--optim", args.optim,
           "--backend", "cuda" if args.device == "cuda" else "cpu", "--precision", "bf16" if args.bf16 else "fp32"]
    if args.small_stem:
        cmd.append("--small-stem")
    if args.method != "none":
        cmd += ["--method", args.method]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    print(r.stdout, end="")
    m = re.search(r"counted ([0-9.]+) GFLOP per step", r.stdout)
    if not m and args.method == "none":  # the encoder step's count, "..., step X GFLOP"
        m = re.search(r"step ([0-9.]+) GFLOP", r.stdout)
    gflop = float(m.group(1)) if m else None
    m = re.search(r"RESULT images/s ([0-9.]+)", r.stdout)
    if r.returncode != 0 or not m:  # say why, and still measure PyTorch's side
        print(f"bench_step failed (exit {r.returncode}):\n" + "\n".join(r.stderr.splitlines()[-15:]))
        return None, gflop
    return float(m.group(1)), gflop


def print_flops(args, gflop, sides):
    """Achieved FLOP/s of each side for bench_step's GFLOP per step, and the MFU on a GPU of known peak."""
    if gflop is None:
        print("  (no GFLOP per step from bench_step: achieved FLOP/s and MFU not computed)")
        return
    if args.device != "cuda":
        print(f"  {gflop:.2f} GFLOP per step (bench_step's count, both sides)")
        for name, ips in sides:
            print(f"  {name}: achieved {gflop * ips / args.batch:.1f} GFLOP/s")
        return
    dev_name = torch.cuda.get_device_name(0)
    peaks = next((p for key, p in GPU_PEAK_TFLOPS if key in dev_name), None)
    prec = "bf16" if args.bf16 else "fp32"
    if peaks is None:
        print(f"  {gflop:.2f} GFLOP per step (bench_step's count, both sides); "
              f"peak of {dev_name} unknown, MFU not computed")
    else:
        print(f"  {gflop:.2f} GFLOP per step (bench_step's count, both sides); {dev_name} dense peak "
              f"{prec} {peaks[prec]:g} TFLOP/s" + (f", tf32 {peaks['tf32']:g}" if not args.bf16 else ""))
    for name, ips in sides:
        tflops = gflop * 1e9 * (ips / args.batch) / 1e12
        line = f"  {name}: achieved {tflops:.2f} TFLOP/s"
        if peaks is not None:
            line += f"  MFU {100 * tflops / peaks[prec]:.1f}% of the {prec} peak"
            if not args.bf16:
                line += f" ({100 * tflops / peaks['tf32']:.1f}% of the tf32 peak)"
        print(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--method", default="none", choices=("none", "simclr", "mae"),
                    help="time the method's whole step (simclr: ResNet + projector + NT-Xent on two views; "
                         "mae: masked ViT encoder + decoder + norm-pix loss) instead of the encoder alone")
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
    if args.method == "simclr" and args.model not in ("resnet18", "resnet50"):
        ap.error("--method simclr takes --model resnet18 or resnet50")
    if args.method == "mae" and args.model not in VIT_DIMS:
        ap.error("--method mae takes --model " + ", ".join(VIT_DIMS))
    if args.method == "mae" and args.img % args.patch:
        ap.error("--method mae needs --img divisible by --patch")
    if args.torch_only:
        print(f"PyTorch {torch.__version__}: {torch_images_per_s(args):.1f} images/s")
        return 0
    ours, gflop = sslrun_images_per_s(args)
    theirs = torch_images_per_s(args)
    where = (torch.cuda.get_device_name(0) if args.device == "cuda"
             else f"{args.threads} threads, mkldnn {torch.backends.mkldnn.is_available()}")
    step = "" if args.method == "none" else f", {args.method} step"
    print(f"PyTorch {torch.__version__} ({where}{step}): {theirs:.1f} images/s")
    if ours is None:
        return 1
    print(f"sslrun: {ours:.1f} images/s   ratio sslrun/PyTorch = {ours / theirs:.2f}x")
    print_flops(args, gflop, (("sslrun", ours), ("PyTorch", theirs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
