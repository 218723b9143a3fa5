#!/usr/bin/python3
"""Fixture for tests/ref/test_ref_dino.c: DINO's loss, centre update and weight-normalised last layer in
PyTorch, written from the paper and the official code (main_dino.py DINOLoss, vision_transformer.py
DINOHead with norm_last_layer=True; REFERENCE §4.1-4.3), independently of sslrun.

One rank, n = 4 images, 2 global + 2 local views, bottleneck 16, K = 64 prototypes. The head's last
layer is weight_norm(Linear(16, 64, bias=False)) with weight_g filled with 1 and frozen; its inputs
are unit rows (DINOHead L2-normalises the bottleneck). The student's logits are that layer on x_s
(4 views x 4 images, view-major), the teacher's on x_t (the 2 global views) with a slightly different
weight_v (an EMA copy). The loss is computed for teacher temperatures 0.04 and 0.07 (student 0.1) on
the fp32 logits, with a non-zero centre; d(loss)/d(student logits), then the chain into weight_v and
into x_s. update_center (momentum 0.9, world 1) gives the centre after the step. Monitors: the teacher's
mean row entropy and KL(mean teacher distribution || uniform). Everything runs in float64 from the
fp32 values that are stored, so the fixture is the exact answer for the test's inputs.
Run: /usr/bin/python3 tests/ref/make_fixtures_dino.py
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402


class DINOLoss(nn.Module):
    """The official loss's arithmetic, the teacher temperature passed in (the schedule is the caller's)."""

    def __init__(self, out_dim, ncrops, student_temp=0.1, center_momentum=0.9):
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.ncrops = ncrops
        self.register_buffer("center", torch.zeros(1, out_dim, dtype=torch.float64))

    def forward(self, student_output, teacher_output, temp):
        student_out = (student_output / self.student_temp).chunk(self.ncrops)
        teacher_out = F.softmax((teacher_output - self.center) / temp, dim=-1).detach().chunk(2)
        total, terms = 0, 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq:
                    continue
                total = total + torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1).mean()
                terms += 1
        return total / terms

    @torch.no_grad()
    def update_center(self, teacher_output, world=1):
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True) / (len(teacher_output) * world)
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)


def last_layer(v):
    """DINOHead's last layer, norm_last_layer=True: g = 1 and frozen, v the parameter."""
    layer = weight_norm_linear(v.shape[1], v.shape[0])
    with torch.no_grad():
        layer.weight_v.copy_(v)
    return layer


def weight_norm_linear(inp, out):
    layer = nn.utils.weight_norm(nn.Linear(inp, out, bias=False)).double()
    layer.weight_g.data.fill_(1)
    layer.weight_g.requires_grad = False
    return layer


def monitors(teacher_output, center, temp):
    p = F.softmax((teacher_output - center) / temp, dim=-1)
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(dim=1).mean()
    pbar = p.mean(dim=0)
    kl = (pbar * torch.log(pbar * p.shape[1])).sum()
    return entropy, kl


def unit_rows(x):
    return F.normalize(x.double(), dim=1).float()


def main():
    g = torch.Generator().manual_seed(23)
    n, ncrops, bott, K = 4, 4, 16, 64
    temp_s, m = 0.1, 0.9
    bound = 1 / math.sqrt(bott)
    v_s = (torch.rand(K, bott, generator=g) * 2 - 1) * bound
    v_t = v_s + 0.05 * torch.randn(K, bott, generator=g)
    x_s = unit_rows(torch.randn(ncrops * n, bott, generator=g))
    x_t = unit_rows(x_s[:2 * n].double() + 0.3 * torch.randn(2 * n, bott, generator=g, dtype=torch.float64))
    center = (0.2 * torch.randn(K, generator=g)).float()

    student, teacher = last_layer(v_s.double()), last_layer(v_t.double())
    xs = x_s.double().requires_grad_()
    s64 = student(xs)
    with torch.no_grad():
        t64 = teacher(x_t.double())
    s32, t32 = s64.detach().float(), t64.float()
    recs = [("x_s", x_s), ("x_t", x_t), ("v_s", v_s), ("v_t", v_t), ("s", s32), ("t", t32),
            ("center", center), ("n", [n]), ("ncrops", [ncrops]), ("temp_s", [temp_s]), ("momentum", [m])]

    for name, temp in (("t004", 0.04), ("t007", 0.07)):
        loss_fn = DINOLoss(K, ncrops, temp_s, m)
        loss_fn.center = center.double().reshape(1, K)
        s_in = s32.double().requires_grad_()
        loss = loss_fn(s_in, t32.double(), temp)
        loss.backward()
        student.zero_grad()
        if xs.grad is not None:
            xs.grad = None
        s64.backward(s_in.grad, retain_graph=True)
        ent, kl = monitors(t32.double(), center.double(), temp)
        recs += [(name + "/temp_t", [temp]), (name + "/loss", [loss.item()]), (name + "/ds", s_in.grad),
                 (name + "/dv", student.weight_v.grad.clone()), (name + "/dx", xs.grad.clone()),
                 (name + "/entropy", [ent.item()]), (name + "/kl_uniform", [kl.item()])]
        print(f"dino {name}: loss {loss.item():.6f} entropy {ent.item():.4f} kl {kl.item():.4f}")

    loss_fn = DINOLoss(K, ncrops, temp_s, m)
    loss_fn.center = center.double().reshape(1, K)
    loss_fn.update_center(t32.double())
    recs += [("center_after", loss_fn.center.reshape(K)), ("center_norm", [center.double().norm().item()])]
    write_fixture(os.path.join(os.path.dirname(__file__), "fixtures", "dino_step.bin"), recs)


if __name__ == "__main__":
    main()
