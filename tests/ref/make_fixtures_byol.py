#!/usr/bin/python3
"""Fixture for tests/ref/test_ref_byol.c: one BYOL step in PyTorch, written from the paper and the
official JAX code (REFERENCE §3), independently of sslrun.

Online: torchvision ResNet-18 layout (width 4, small stem, no fc) -> projector Sequential(Linear(bias),
BN, ReLU, Linear(no bias)) -> predictor (same shape). Target: a deep copy of encoder + projector.
Each view goes through the networks in its own call (BN statistics per view), the target in train
mode without gradient. Loss: mean over the batch of (2 - 2 cos(q1, z'2)) + (2 - 2 cos(q2, z'1)).
Then one plain SGD step (lr 0.1) on the online network and the EMA of the target with
tau = tau_base (the cosine schedule at step 0): target <- tau * target + (1 - tau) * online.
Run: /usr/bin/python3 tests/ref/make_fixtures_byol.py
"""
import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402
from make_fixtures_models import WidthResNet, randomise  # noqa: E402


def mlp(inp, hidden, out):
    return nn.Sequential(nn.Linear(inp, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out, bias=False))


def regression(q, t):
    return 2 - 2 * (F.normalize(q, dim=1) * F.normalize(t, dim=1)).sum(dim=1)


def strip(k):
    return k[len("enc."):] if k.startswith("enc.") else k


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(11)
    enc = WidthResNet(BasicBlock, [2, 2, 2, 2], 4, 1, 3, True)
    enc.fc = nn.Identity()
    feat, hidden, out, pred_hidden = 32, 16, 8, 12
    online = nn.Module()
    online.add_module("enc", enc)
    online.add_module("projector", mlp(feat, hidden, out))
    online.add_module("predictor", mlp(out, pred_hidden, out))
    randomise(online, g)
    target = nn.Module()
    target.add_module("enc", copy.deepcopy(online.enc))
    target.add_module("projector", copy.deepcopy(online.projector))
    n = 6
    x = torch.rand(2 * n, 1, 12, 12, generator=g) * 2 - 1
    x1, x2 = x[:n], x[n:]
    recs = [("x", x)]
    recs += [("param/" + strip(k), v.detach().clone()) for k, v in online.named_parameters()]
    recs += [("buffer/" + strip(k), v.clone()) for k, v in online.named_buffers() if "num_batches" not in k]
    online.train()
    target.train()
    q1 = online.predictor(online.projector(online.enc(x1)))
    q2 = online.predictor(online.projector(online.enc(x2)))
    with torch.no_grad():
        t1 = target.projector(target.enc(x1))
        t2 = target.projector(target.enc(x2))
    loss = (regression(q1, t2) + regression(q2, t1)).mean()
    loss.backward()
    lr, tau = 0.1, 0.99
    with torch.no_grad():
        for p in online.parameters():
            p -= lr * p.grad
        tparams = dict(target.named_parameters())
        for k, p in online.named_parameters():
            if k in tparams:
                tparams[k].mul_(tau).add_((1 - tau) * p)
    recs += [("loss", loss.detach().reshape(1)), ("lr", torch.tensor([lr])), ("tau", torch.tensor([tau]))]
    recs += [("grad/" + strip(k), v.grad) for k, v in online.named_parameters()]
    recs += [("buffer_after/" + strip(k), v) for k, v in online.named_buffers() if "num_batches" not in k]
    recs += [("target_after/" + strip(k), v) for k, v in target.named_parameters()]
    recs += [("target_buffer_after/" + strip(k), v) for k, v in target.named_buffers() if "num_batches" not in k]
    write_fixture(os.path.join(os.path.dirname(__file__), "fixtures", "byol_step.bin"), recs)
    print("byol loss", loss.item())


if __name__ == "__main__":
    main()
