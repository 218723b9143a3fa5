#!/usr/bin/python3
"""Fixture for tests/ref/test_ref_ema_methods.c: one MoCo v2 step in PyTorch, written from the paper and
the official moco code (moco/builder.py with --mlp; REFERENCE §2.1-2.2), independently of sslrun.

encoder_q: torchvision ResNet-18 layout (width 4, small stem, no fc) -> Sequential(Linear(32, hidden),
ReLU, Linear(hidden, dim)); encoder_k: a deep copy. One rank (shuffle-BN is a permutation of one batch,
which BN cannot see). q = normalize(encoder_q(x1)), k = normalize(encoder_k(x2)) in train mode without
gradient; logits [q.k, q.queue^T] / T, cross-entropy against index 0; then the keys are enqueued at
ptr (the queue here has K = 20 rows and ptr = 16, so the 6 keys wrap around: the official code asserts
K % batch == 0 and never wraps, sslrun's sharded queue does), one plain SGD step (lr 0.1) and the
momentum update key <- m key + (1 - m) query with m = 0.99.
Run: /usr/bin/python3 tests/ref/make_fixtures_moco_v2.py
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


def strip(k):
    return k[len("enc."):] if k.startswith("enc.") else k


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(17)
    enc = WidthResNet(BasicBlock, [2, 2, 2, 2], 4, 1, 3, True)
    enc.fc = nn.Identity()
    feat, hidden, dim, T, K, ptr = 32, 16, 8, 0.2, 20, 16
    q_enc = nn.Module()
    q_enc.add_module("enc", enc)
    q_enc.add_module("projector", nn.Sequential(nn.Linear(feat, hidden), nn.ReLU(), nn.Linear(hidden, dim)))
    randomise(q_enc, g)
    k_enc = copy.deepcopy(q_enc)
    queue = F.normalize(torch.randn(K, dim, generator=g), dim=1)
    n = 6
    x = torch.rand(2 * n, 1, 12, 12, generator=g) * 2 - 1
    x1, x2 = x[:n], x[n:]
    recs = [("x", x), ("T", torch.tensor([T])), ("queue", queue), ("ptr", torch.tensor([float(ptr)]))]
    recs += [("param/" + strip(k), v.detach().clone()) for k, v in q_enc.named_parameters()]
    recs += [("buffer/" + strip(k), v.clone()) for k, v in q_enc.named_buffers() if "num_batches" not in k]
    q_enc.train()
    k_enc.train()
    q = F.normalize(q_enc.projector(q_enc.enc(x1)), dim=1)
    with torch.no_grad():
        k = F.normalize(k_enc.projector(k_enc.enc(x2)), dim=1)
    l_pos = (q * k).sum(dim=1, keepdim=True)
    l_neg = q @ queue.t()
    logits = torch.cat([l_pos, l_neg], dim=1) / T
    loss = F.cross_entropy(logits, torch.zeros(n, dtype=torch.long))
    loss.backward()
    after = queue.clone()
    for i in range(n):
        after[(ptr + i) % K] = k[i]
    lr, m = 0.1, 0.99
    with torch.no_grad():
        for p in q_enc.parameters():
            p -= lr * p.grad
        kp = dict(k_enc.named_parameters())
        for name, p in q_enc.named_parameters():
            kp[name].mul_(m).add_((1 - m) * p)
    recs += [("loss", loss.detach().reshape(1)), ("lr", torch.tensor([lr])), ("m", torch.tensor([m])),
             ("queue_after", after), ("ptr_after", torch.tensor([float((ptr + n) % K)]))]
    recs += [("grad/" + strip(k), v.grad) for k, v in q_enc.named_parameters()]
    recs += [("buffer_after/" + strip(k), v) for k, v in q_enc.named_buffers() if "num_batches" not in k]
    recs += [("target_after/" + strip(k), v) for k, v in k_enc.named_parameters()]
    recs += [("target_buffer_after/" + strip(k), v) for k, v in k_enc.named_buffers() if "num_batches" not in k]
    write_fixture(os.path.join(os.path.dirname(__file__), "fixtures", "moco_v2_step.bin"), recs)
    print("moco v2 loss", loss.item())


if __name__ == "__main__":
    main()
