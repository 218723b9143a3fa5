#!/usr/bin/python3
"""Fixture for tests/ref/test_ref_moco_v3.c: one MoCo v3 step (ResNet variant) in PyTorch, written from the
paper and the official moco-v3 code (moco/builder.py; REFERENCE §2.4-2.6), independently of sslrun.

base encoder: torchvision ResNet-18 layout (width 4, small stem, no fc); projector _build_mlp(2, 32, mlp, dim)
(Linear(no bias) BN ReLU Linear(no bias) BN(affine=False)); predictor _build_mlp(2, dim, mlp, dim,
last_bn=False). Momentum encoder: a deep copy of encoder + projector. Each view in its own call; keys in
train mode without gradient. Loss: ctr(q1, k2) + ctr(q2, k1), ctr = CE(q k^T / T, arange) * 2T (one rank).
Then one plain SGD step (lr 0.1) and the momentum update with m(t) = 1 - (1 - m0)(cos(pi t / E) + 1) / 2
at t = 1 / steps_per_epoch (the next step's fractional epoch).
Run: /usr/bin/python3 tests/ref/make_fixtures_moco_v3.py
"""
import copy
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402
from make_fixtures_models import WidthResNet, randomise  # noqa: E402


def build_mlp(num_layers, input_dim, mlp_dim, output_dim, last_bn=True):
    mlp = []
    for layer in range(num_layers):
        dim1 = input_dim if layer == 0 else mlp_dim
        dim2 = output_dim if layer == num_layers - 1 else mlp_dim
        mlp.append(nn.Linear(dim1, dim2, bias=False))
        if layer < num_layers - 1:
            mlp.append(nn.BatchNorm1d(dim2))
            mlp.append(nn.ReLU(inplace=True))
        elif last_bn:
            mlp.append(nn.BatchNorm1d(dim2, affine=False))
    return nn.Sequential(*mlp)


def ctr(q, k, T):
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1)
    logits = q @ k.t() / T
    return F.cross_entropy(logits, torch.arange(q.shape[0])) * (2 * T)


def strip(k):
    return k[len("enc."):] if k.startswith("enc.") else k


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(13)
    enc = WidthResNet(BasicBlock, [2, 2, 2, 2], 4, 1, 3, True)
    enc.fc = nn.Identity()
    feat, mlp_dim, dim, T = 32, 16, 8, 0.2  # 2T != 1, so the scaling is tested
    base = nn.Module()
    base.add_module("enc", enc)
    base.add_module("projector", build_mlp(2, feat, mlp_dim, dim))
    base.add_module("predictor", build_mlp(2, dim, mlp_dim, dim, last_bn=False))
    randomise(base, g)
    mom = nn.Module()
    mom.add_module("enc", copy.deepcopy(base.enc))
    mom.add_module("projector", copy.deepcopy(base.projector))
    n = 6
    x = torch.rand(2 * n, 1, 12, 12, generator=g) * 2 - 1
    x1, x2 = x[:n], x[n:]
    recs = [("x", x), ("T", torch.tensor([T]))]
    recs += [("param/" + strip(k), v.detach().clone()) for k, v in base.named_parameters()]
    recs += [("buffer/" + strip(k), v.clone()) for k, v in base.named_buffers() if "num_batches" not in k]
    base.train()
    mom.train()
    q1 = base.predictor(base.projector(base.enc(x1)))
    q2 = base.predictor(base.projector(base.enc(x2)))
    with torch.no_grad():
        k1 = mom.projector(mom.enc(x1))
        k2 = mom.projector(mom.enc(x2))
    loss = ctr(q1, k2, T) + ctr(q2, k1, T)
    loss.backward()
    lr, m0, epochs, spe = 0.1, 0.9, 2, 5
    t = 1 / spe
    m = 1 - 0.5 * (1 + math.cos(math.pi * t / epochs)) * (1 - m0)
    with torch.no_grad():
        for p in base.parameters():
            p -= lr * p.grad
        mp = dict(mom.named_parameters())
        for k, p in base.named_parameters():
            if k in mp:
                mp[k].mul_(m).add_((1 - m) * p)
    recs += [("loss", loss.detach().reshape(1)), ("lr", torch.tensor([lr])), ("m0", torch.tensor([m0])),
             ("epochs", torch.tensor([float(epochs)])), ("steps_per_epoch", torch.tensor([float(spe)]))]
    recs += [("grad/" + strip(k), v.grad) for k, v in base.named_parameters()]
    recs += [("buffer_after/" + strip(k), v) for k, v in base.named_buffers() if "num_batches" not in k]
    recs += [("target_after/" + strip(k), v) for k, v in mom.named_parameters()]
    recs += [("target_buffer_after/" + strip(k), v) for k, v in mom.named_buffers() if "num_batches" not in k]
    write_fixture(os.path.join(os.path.dirname(__file__), "fixtures", "moco_v3_step.bin"), recs)
    print("moco v3 loss", loss.item(), "momentum", m)


if __name__ == "__main__":
    main()
