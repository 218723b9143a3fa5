#!/usr/bin/python3
"""The quickstart recipe (configs/fmnist_simclr.yaml) in PyTorch, for side-by-side accuracy and speed.

Same data (first 20k Fashion-MNIST training images, the 10k test split), architecture (torchvision
ResNet-18 blocks, width 16, small stem, 128-d pooled features; projector Linear(128, 512)-BN-ReLU-
Linear(512, 128)-BN), loss (NT-Xent, tau 0.1, paper scaling), optimizer (AdamW 2e-3, wd 1e-6, half a
warmup epoch then cosine, per step), batch 128 x 2 views, augmentations (RandomResizedCrop 28 scale
(0.3, 1), flip, ColorJitter brightness/contrast 1.0 with p 0.8, normalise), and evaluation (weighted
kNN k=20/200 T=0.07 on eval-mode features of the whole training split; linear probe on standardised
features, SGD momentum 0.9, cosine lr 0.1, batch 256, 10 epochs). Prints the accuracies and images/s.
  /usr/bin/python3 benchmarks/torch_fmnist_simclr.py --threads 2   # defaults: the quickstart recipe
  /usr/bin/python3 benchmarks/torch_fmnist_simclr.py --threads 2 --limit 60000 --epochs 16  # the long one
  /usr/bin/python3 benchmarks/torch_fmnist_simclr.py --threads 2 --aug batched  # the lean loop
--aug batched is the lean loop a PyTorch user would write for speed: the same augmentation drawn per
sample but applied to the whole batch as tensors (one affine_grid + grid_sample for crop and flip,
jitter as batched arithmetic) instead of torchvision's per-image transforms.
"""
import argparse
import gzip
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "ref"))
from make_fixtures_models import WidthResNet  # noqa: E402

SRC = "/usr/share/datasets/fashion-mnist"


def idx(name, images):
    with gzip.open(os.path.join(SRC, name)) as f:
        data = f.read()
    off = 16 if images else 8
    arr = np.frombuffer(data, dtype=np.uint8, offset=off)
    return torch.from_numpy(arr.reshape(-1, 28, 28).copy() if images else arr.astype(np.int64))


def augment(batch, tf):
    # per-sample torchvision transforms on (1, 28, 28) float tensors in [0, 1]
    return torch.stack([tf(x) for x in batch])


def batched_views(b, scale, jitter, p_jitter=0.8, ratio=(3 / 4, 4 / 3), tries=10):
    """RandomResizedCrop(28, scale, ratio) + flip + ColorJitter(jitter, jitter) with p, then Normalize, on a
    whole (n, 1, H, W) batch in [0, 1]: torchvision's parameter draws, vectorised (first of `tries`
    candidates that fits, else the whole image), bilinear resampling by grid_sample."""
    n, _, H, W = b.shape
    area = H * W * torch.empty(n, tries).uniform_(*scale)
    logr = torch.empty(n, tries).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    w = torch.sqrt(area * logr.exp()).round()
    h = torch.sqrt(area / logr.exp()).round()
    ok = (w > 0) & (w <= W) & (h > 0) & (h <= H)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.zeros(n, dtype=torch.long))
    w = torch.where(ok.any(1), w.gather(1, first[:, None])[:, 0], torch.full((n,), float(W)))
    h = torch.where(ok.any(1), h.gather(1, first[:, None])[:, 0], torch.full((n,), float(H)))
    y0 = torch.floor(torch.rand(n) * (H - h + 1))
    x0 = torch.floor(torch.rand(n) * (W - w + 1))
    flip = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = flip * w / W
    theta[:, 0, 2] = (2 * x0 + w) / W - 1
    theta[:, 1, 1] = h / H
    theta[:, 1, 2] = (2 * y0 + h) / H - 1
    grid = F.affine_grid(theta, (n, 1, 28, 28), align_corners=False)
    v = F.grid_sample(b, grid, mode="bilinear", padding_mode="border", align_corners=False)
    on = (torch.rand(n) < p_jitter)[:, None, None, None]
    bf = torch.empty(n, 1, 1, 1).uniform_(max(0.0, 1 - jitter), 1 + jitter)
    cf = torch.empty(n, 1, 1, 1).uniform_(max(0.0, 1 - jitter), 1 + jitter)
    jit = (v * bf).clamp(0, 1)
    jit = (cf * jit + (1 - cf) * jit.mean((1, 2, 3), keepdim=True)).clamp(0, 1)
    v = torch.where(on, jit, v)
    return (v - 0.2860) / 0.3530


def features(enc, x, bs=512):
    enc.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), bs):
            out.append(enc(((x[i:i + bs].float() / 255 - 0.2860) / 0.3530).unsqueeze(1)))
    enc.train()
    return torch.cat(out)


def knn(tr, ytr, te, yte, k, temp=0.07, classes=10):
    tr, te = F.normalize(tr, dim=1), F.normalize(te, dim=1)
    correct = 0
    for i in range(0, len(te), 256):
        sim = te[i:i + 256] @ tr.t()
        s, j = sim.topk(k, dim=1)
        votes = torch.zeros(len(s), classes).scatter_add_(1, ytr[j], (s / temp).exp())
        correct += (votes.argmax(1) == yte[i:i + 256]).sum().item()
    return 100.0 * correct / len(te)


def linear_probe(tr, ytr, te, yte, epochs=10, lr=0.1, bs=256, classes=10):
    mu, sd = tr.mean(0), tr.std(0).clamp_min(1e-6)
    tr, te = (tr - mu) / sd, (te - mu) / sd
    clf = nn.Linear(tr.shape[1], classes)
    nn.init.zeros_(clf.weight)
    nn.init.zeros_(clf.bias)
    opt = torch.optim.SGD(clf.parameters(), lr=lr, momentum=0.9)
    steps = epochs * math.ceil(len(tr) / bs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(tr), generator=g)
        for i in range(0, len(tr), bs):
            b = perm[i:i + bs]
            loss = F.cross_entropy(clf(tr[b]), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        return 100.0 * (clf(te).argmax(1) == yte).float().mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--limit", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--max-steps", type=int, default=0,
                    help="speed runs: stop after this many steps, print the steady img/s, skip evaluation")
    ap.add_argument("--random-init", action="store_true", help="evaluate the untrained encoder")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--tau", type=float, default=0.1)
    ap.add_argument("--warmup", type=float, default=0.5, help="warmup epochs")
    ap.add_argument("--lr", type=float, default=2e-3, help="AdamW peak lr")
    ap.add_argument("--seed", type=int, default=0, help="torch.manual_seed (sslrun: run.seed)")
    ap.add_argument("--jitter", type=float, default=1.0, help="ColorJitter brightness = contrast")
    ap.add_argument("--aug", choices=("torchvision", "batched"), default="torchvision",
                    help="torchvision: per-image transforms (the twin); batched: the lean loop's tensor ops")
    ap.add_argument("--proj-hidden", type=int, default=512)
    ap.add_argument("--proj-dim", type=int, default=128)
    ap.add_argument("--torch-default-init", action="store_true",
                    help="leave torch's default conv init (sslrun and torchvision use kaiming-normal fan-out)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xall, yall = idx("train-images-idx3-ubyte.gz", True), idx("train-labels-idx1-ubyte.gz", False)
    xtr, ytr = xall[:args.limit], yall[:args.limit]
    xte, yte = idx("t10k-images-idx3-ubyte.gz", True), idx("t10k-labels-idx1-ubyte.gz", False)
    enc = WidthResNet(BasicBlock, [2, 2, 2, 2], 16, 1, 10, True)
    enc.fc = nn.Identity()
    if not args.torch_default_init:  # torchvision ResNet's init, as sslrun
        for mod in enc.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
    ph, pd = args.proj_hidden, args.proj_dim
    proj = nn.Sequential(nn.Linear(128, ph, bias=False), nn.BatchNorm1d(ph), nn.ReLU(),
                         nn.Linear(ph, pd, bias=False), nn.BatchNorm1d(pd, affine=False))
    tf = T.Compose([T.RandomResizedCrop(28, scale=(0.3, 1.0), antialias=False), T.RandomHorizontalFlip(),
                    T.RandomApply([T.ColorJitter(args.jitter, args.jitter, 0.0, 0.0)], p=0.8),
                    T.Normalize((0.2860,), (0.3530,))])
    params = list(enc.parameters()) + list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-6)
    bs, tau = args.batch, args.tau
    spe = len(xtr) // bs
    total, warm = args.epochs * spe, max(1, int(args.warmup * spe))
    step, t0, aug_s, t10 = 0, time.perf_counter(), 0.0, None
    for ep in range(0 if args.random_init else args.epochs):
        perm = torch.randperm(len(xtr))
        for it in range(spe):
            if step == args.max_steps > 0:
                break
            cos = 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))
            lr = args.lr * step / warm if step < warm else args.lr * cos
            for g in opt.param_groups:
                g["lr"] = lr
            b = xtr[perm[it * bs:(it + 1) * bs]].float().unsqueeze(1) / 255
            ta = time.perf_counter()
            if args.aug == "batched":
                v = torch.cat([batched_views(b, (0.3, 1.0), args.jitter), batched_views(b, (0.3, 1.0), args.jitter)])
            else:
                v = torch.cat([augment(b, tf), augment(b, tf)])
            aug_s += time.perf_counter() - ta
            z = F.normalize(proj(enc(v)), dim=1)
            logits = (z @ z.t() / tau).masked_fill(torch.eye(2 * bs, dtype=torch.bool), float("-inf"))
            target = torch.cat([torch.arange(bs, 2 * bs), torch.arange(0, bs)])
            loss = F.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step == 10:  # steady state: the first steps warm up allocators and kernel choices
                t10 = time.perf_counter()
            if step % 20 == 0:
                el = time.perf_counter() - t0
                print(f"epoch {ep + 1} step {step}/{total} loss {loss.item():.4f} lr {lr:.2e} "
                      f"{step * bs / el:.1f} img/s (augmentation {100 * aug_s / el:.0f}% of time)", flush=True)
    train_s = time.perf_counter() - t0
    if args.max_steps:
        print(f"steady {(step - 10) * bs / (time.perf_counter() - t10):.1f} img/s over steps 10-{step} "
              f"({torch.get_num_threads()} threads)")
        return
    # the kNN bank and probe set: the whole training split (sslrun eval.train_limit 0, DINO's eval_knn)
    tr, te = features(enc, xall), features(enc, xte)
    k20, k200 = knn(tr, yall, te, yte, 20), knn(tr, yall, te, yte, 200)
    lin = linear_probe(tr, yall, te, yte)
    what = "random init" if args.random_init else f"{args.epochs} epochs"
    print(f"PyTorch {torch.__version__} SimCLR fmnist ({what}): kNN k=20 {k20:.2f}% k=200 {k200:.2f}% "
          f"linear {lin:.2f}%")
    if step:
        print(f"train {train_s:.0f} s, {step * bs / train_s:.1f} img/s "
              f"({step * bs / (train_s - aug_s):.1f} img/s excluding augmentation)")


if __name__ == "__main__":
    main()
