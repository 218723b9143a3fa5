#!/usr/bin/python3
"""The Fashion-MNIST recipes of MoCo v2, MoCo v3 and BYOL (configs/fmnist_{moco_v2,moco_v3,byol}.yaml) in
PyTorch, for side-by-side accuracy and speed with sslrun on the same machine.

Data, encoder, augmentations, optimizer (AdamW 2e-3, wd 1e-6, half a warmup epoch then cosine, per step),
batch 128 x 2 views and evaluation are the SimCLR quickstart's (benchmarks/torch_fmnist_simclr.py, whose
helpers this reuses). The methods, written from their official code (REFERENCE §2, §3):
  moco_v2  projector Linear(128, 512)-ReLU-Linear(512, 128); key encoder EMA 0.99; a queue of 1024 keys;
           keys of the shuffled batch in 4 groups of 32 (shuffle-BN as SplitBatchNorm); InfoNCE
           [q.k, q.queue] / 0.1; enqueue after the loss
  moco_v3  projector and predictor _build_mlp (hidden 512, out 128); momentum 0.99 -> 1 cosine over
           fractional epochs; ctr(q1, k2) + ctr(q2, k1), each CE(q k^T / 0.2) x 2 x 0.2; views separately
  byol     projector / predictor Linear(bias)-BN-ReLU-Linear (512 -> 128); target EMA 0.99 -> 1 cosine over
           steps; (2 - 2cos(q1, z'2)) + (2 - 2cos(q2, z'1)); views separately
  /usr/bin/python3 benchmarks/torch_fmnist_methods.py --method byol --threads 2
"""
import argparse
import copy
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "ref"))
from make_fixtures_models import WidthResNet  # noqa: E402
from torch_fmnist_simclr import augment, features, idx, knn, linear_probe  # noqa: E402


def build_mlp(layers, inp, hidden, out, last_bn=True):
    """moco-v3's _build_mlp: Linear(no bias)-BN-ReLU per hidden layer, BN(affine=False) last if asked."""
    mods = []
    for i in range(layers):
        d1, d2 = inp if i == 0 else hidden, out if i == layers - 1 else hidden
        mods.append(nn.Linear(d1, d2, bias=False))
        if i < layers - 1:
            mods += [nn.BatchNorm1d(d2), nn.ReLU()]
        elif last_bn:
            mods.append(nn.BatchNorm1d(d2, affine=False))
    return nn.Sequential(*mods)


def byol_mlp(inp, hidden, out):
    return nn.Sequential(nn.Linear(inp, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out, bias=False))


def ema(target, online, m):
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters()):
            t.mul_(m).add_((1 - m) * o)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", choices=["moco_v2", "moco_v3", "byol"], required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--limit", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--max-steps", type=int, default=0,
                    help="speed runs: stop after this many steps, print the steady img/s, skip evaluation")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--random-init", action="store_true")
    ap.add_argument("--no-eval", action="store_true", help="train only (speed runs)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xall, yall = idx("train-images-idx3-ubyte.gz", True), idx("train-labels-idx1-ubyte.gz", False)
    xtr = xall[:args.limit]
    xte, yte = idx("t10k-images-idx3-ubyte.gz", True), idx("t10k-labels-idx1-ubyte.gz", False)
    enc = WidthResNet(BasicBlock, [2, 2, 2, 2], 16, 1, 10, True)
    enc.fc = nn.Identity()
    for mod in enc.modules():  # torchvision ResNet's init, as sslrun
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
    m = args.method
    if m == "moco_v2":
        proj = nn.Sequential(nn.Linear(128, 512), nn.ReLU(), nn.Linear(512, 128))
        pred = nn.Identity()
        queue = F.normalize(torch.randn(1024, 128), dim=1)
        ptr = 0
    elif m == "moco_v3":
        proj, pred = build_mlp(2, 128, 512, 128), build_mlp(2, 128, 512, 128, last_bn=False)
    else:
        proj, pred = byol_mlp(128, 512, 128), byol_mlp(128, 512, 128)
    online = nn.Sequential(enc, proj)
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    tf = T.Compose([T.RandomResizedCrop(28, scale=(0.3, 1.0), antialias=False), T.RandomHorizontalFlip(),
                    T.RandomApply([T.ColorJitter(1.0, 1.0, 0.0, 0.0)], p=0.8), T.Normalize((0.2860,), (0.3530,))])
    opt = torch.optim.AdamW(list(online.parameters()) + list(pred.parameters()), lr=args.lr, weight_decay=1e-6)
    bs = args.batch
    spe = len(xtr) // bs
    total, warm = args.epochs * spe, max(1, int(0.5 * spe))
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
            x1, x2 = augment(b, tf), augment(b, tf)
            aug_s += time.perf_counter() - ta
            if m == "moco_v2":
                q = F.normalize(online(x1), dim=1)
                with torch.no_grad():  # shuffle-BN in 4 groups (moco_v2.shuffle_bn_groups, SplitBatchNorm)
                    shuf = torch.randperm(bs)
                    k = torch.cat([target(g) for g in x2[shuf].chunk(4)])[torch.argsort(shuf)]
                    k = F.normalize(k, dim=1)
                logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.clone().t()], dim=1) / 0.1
                loss = F.cross_entropy(logits, torch.zeros(bs, dtype=torch.long))
                for i in range(bs):
                    queue[(ptr + i) % len(queue)] = k[i]
                ptr = (ptr + bs) % len(queue)
            else:
                q1, q2 = pred(online(x1)), pred(online(x2))
                with torch.no_grad():
                    t1, t2 = target(x1), target(x2)
                if m == "moco_v3":
                    def ctr(a, c):
                        a, c = F.normalize(a, dim=1), F.normalize(c, dim=1)
                        return F.cross_entropy(a @ c.t() / 0.2, torch.arange(bs)) * 2 * 0.2
                    loss = ctr(q1, t2) + ctr(q2, t1)
                else:
                    def reg(a, c):
                        return 2 - 2 * (F.normalize(a, dim=1) * F.normalize(c, dim=1)).sum(1)
                    loss = (reg(q1, t2) + reg(q2, t1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if m == "moco_v2":
                ema(target, online, 0.99)
            elif m == "moco_v3":  # the next step's fractional epoch
                ema(target, online, 1 - 0.5 * (1 + math.cos(math.pi * (step + 1) / spe / args.epochs)) * 0.01)
            else:
                ema(target, online, 1 - 0.5 * (1 + math.cos(math.pi * step / total)) * 0.01)
            step += 1
            if step == 10:  # steady state: the first steps warm up allocators and kernel choices
                t10 = time.perf_counter()
            if step % 20 == 0:
                el = time.perf_counter() - t0
                print(f"epoch {ep + 1} step {step}/{total} loss {loss.item():.4f} lr {lr:.2e} "
                      f"{step * bs / el:.1f} img/s", flush=True)
    train_s = time.perf_counter() - t0
    if args.max_steps:
        print(f"steady {(step - 10) * bs / (time.perf_counter() - t10):.1f} img/s over steps 10-{step} "
              f"({torch.get_num_threads()} threads)")
        return
    if step:
        print(f"train {train_s:.0f} s, {step * bs / train_s:.1f} img/s")
    if args.no_eval:
        return
    tr, te = features(enc, xall), features(enc, xte)
    k20, k200 = knn(tr, yall, te, yte, 20), knn(tr, yall, te, yte, 200)
    lin = linear_probe(tr, yall, te, yte)
    what = "random init" if args.random_init else f"{args.epochs} epochs"
    print(f"PyTorch {torch.__version__} {m} fmnist ({what}): kNN k=20 {k20:.2f}% k=200 {k200:.2f}% linear {lin:.2f}%")


if __name__ == "__main__":
    main()
