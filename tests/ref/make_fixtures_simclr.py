#!/usr/bin/python3
"""Fixture for tests/ref/test_ref_simclr.c: one SimCLR step in PyTorch.

torchvision ResNet-18 layout (width 4, small stem, no fc) -> projector Sequential(Linear(no bias),
BN, ReLU, Linear(no bias), BN(affine=False)) -> F.normalize -> NT-Xent (paper scaling: mean over
the 2N views of cross-entropy against the positive, self-similarity excluded), written the way
solo-learn / the official code compute it, independently of sslrun's fused kernel.
Run: /usr/bin/python3 tests/ref/make_fixtures_simclr.py
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402
from make_fixtures_models import WidthResNet, randomise  # noqa: E402


def nt_xent(z, tau):
    z = F.normalize(z, dim=1)
    m = z.shape[0]
    n = m // 2
    logits = z @ z.t() / tau
    logits = logits.masked_fill(torch.eye(m, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, m), torch.arange(0, n)])
    return F.cross_entropy(logits, target)


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)
    enc = WidthResNet(BasicBlock, [2, 2, 2, 2], 4, 1, 3, True)
    enc.fc = nn.Identity()
    feat, hidden, out = 32, 16, 8
    proj = nn.Sequential(nn.Linear(feat, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, out, bias=False), nn.BatchNorm1d(out, affine=False))
    model = nn.Module()
    model.add_module("enc", enc)
    model.add_module("projector", proj)
    randomise(model, g)
    n = 6
    x = torch.rand(2 * n, 1, 12, 12, generator=g) * 2 - 1
    model.train()
    tau = 0.2
    loss = nt_xent(proj(enc(x)), tau)
    loss.backward()
    recs = [("x", x), ("loss", loss.detach().reshape(1)), ("tau", torch.tensor([tau]))]
    for k, v in model.named_parameters():
        k = k[len("enc."):] if k.startswith("enc.") else k
        recs += [("param/" + k, v), ("grad/" + k, v.grad)]
    write_fixture(os.path.join(os.path.dirname(__file__), "fixtures", "simclr_step.bin"), recs)
    print("simclr loss", loss.item())


if __name__ == "__main__":
    main()
