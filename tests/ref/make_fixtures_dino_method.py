#!/usr/bin/python3
"""Fixture for tests/ref/test_ref_dino_method.c: two DINO training iterations in PyTorch, written from
the paper and the official main_dino.py (REFERENCE §4), independently of sslrun.

Student: torchvision ResNet-18 layout (width 4, small stem, no fc) -> DINOHead: Sequential(Linear, GELU,
Linear, GELU, Linear) to the bottleneck, F.normalize, weight_norm(Linear(bottleneck, K, bias=False)) with
weight_g fixed to 1. Multi-crop as MultiCropWrapper: one backbone call per resolution (2 global crops at
12 px, then 2 local crops at 8 px, each call's BN over its crops), the head once over all. Teacher: a
copy of the student (train mode, no gradient), global crops only. Loss: DINOLoss with the centre and the teacher
temperature of the epoch (linspace warm-up 0.04 -> 0.07 over 3 epochs), student 0.1.
Each iteration as train_one_epoch: loss, backward, per-tensor clip_gradients(0.5),
cancel_gradients_last_layer (frozen in epoch 0), AdamW (parameter groups: biases and 1-D tensors
without weight decay), teacher EMA at the cosine momentum of the iteration, centre update.
Iteration 0 is epoch 0 (last layer frozen), iteration 1 is epoch 1 (thawed: its AdamW state starts there).
Run: /usr/bin/python3 tests/ref/make_fixtures_dino_method.py
"""
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

FEAT, HIDDEN, BOTTLENECK, K = 32, 16, 8, 20
N, GLOBAL, LOCAL = 3, 12, 8
STUDENT_TEMP, CENTER_M = 0.1, 0.9
WARM_T, FINAL_T, WARM_EPOCHS = 0.04, 0.07, 3
M_BASE, TOTAL_ITERS = 0.9, 4
LR, WD, CLIP = 0.01, 0.1, 0.5


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(FEAT, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, HIDDEN), nn.GELU(),
                                 nn.Linear(HIDDEN, BOTTLENECK))
        self.last_layer = nn.utils.weight_norm(nn.Linear(BOTTLENECK, K, bias=False))

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


class MultiCrop(nn.Module):
    def __init__(self, enc, head):
        super().__init__()
        self.enc, self.head = enc, head

    def forward(self, crops):  # crops: list of tensors, grouped by resolution
        feats, start = [], 0
        while start < len(crops):
            end = start
            while end < len(crops) and crops[end].shape[-1] == crops[start].shape[-1]:
                end += 1
            feats.append(self.enc(torch.cat(crops[start:end])))
            start = end
        return self.head(torch.cat(feats))


def teacher_temp(epoch):
    sched = [WARM_T + (FINAL_T - WARM_T) * e / (WARM_EPOCHS - 1) for e in range(WARM_EPOCHS)]
    return sched[epoch] if epoch < WARM_EPOCHS else FINAL_T


def dino_loss(s_out, t_out, center, epoch, ncrops):
    s = (s_out / STUDENT_TEMP).chunk(ncrops)
    t = F.softmax((t_out - center) / teacher_temp(epoch), dim=-1).detach().chunk(2)
    total, terms = 0, 0
    for iq, q in enumerate(t):
        for v in range(len(s)):
            if v == iq:
                continue
            total += torch.sum(-q * F.log_softmax(s[v], dim=-1), dim=-1).mean()
            terms += 1
    return total / terms, torch.cat(t)


def strip(k):
    return k[len("enc."):] if k.startswith("enc.") else k


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(23)
    enc = WidthResNet(BasicBlock, [2, 2, 2, 2], 4, 1, 3, True)
    enc.fc = nn.Identity()
    student = MultiCrop(enc, Head())
    randomise(student, g)
    with torch.no_grad():
        student.head.last_layer.weight_g.fill_(1)
    student.head.last_layer.weight_g.requires_grad = False
    tenc = WidthResNet(BasicBlock, [2, 2, 2, 2], 4, 1, 3, True)
    tenc.fc = nn.Identity()
    teacher = MultiCrop(tenc, Head())  # as the official code: built apart, loaded from the student
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    recs = [("param/" + strip(k), v.detach().clone()) for k, v in student.named_parameters()]
    recs += [("buffer/" + strip(k), v.clone()) for k, v in student.named_buffers() if "num_batches" not in k]
    decay = [p for k, p in student.named_parameters() if p.requires_grad and not (k.endswith(".bias") or p.ndim == 1)]
    no_decay = [p for k, p in student.named_parameters() if p.requires_grad and (k.endswith(".bias") or p.ndim == 1)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}], lr=LR)
    center = torch.zeros(1, K)
    student.train()
    teacher.train()
    for it in range(2):
        epoch = it  # one iteration per epoch
        x_global = torch.rand(2 * N, 1, GLOBAL, GLOBAL, generator=g) * 2 - 1
        x_local = torch.rand(2 * N, 1, LOCAL, LOCAL, generator=g) * 2 - 1
        crops = list(x_global.chunk(2)) + list(x_local.chunk(2))
        recs += [(f"it{it}/x_global", x_global), (f"it{it}/x_local", x_local)]
        t_out = teacher(crops[:2])
        s_out = student(crops)
        loss, probs = dino_loss(s_out, t_out, center, epoch, len(crops))
        opt.zero_grad()
        loss.backward()
        recs += [(f"it{it}/loss", loss.detach().reshape(1))]
        recs += [(f"it{it}/grad/" + strip(k), v.grad.clone()) for k, v in student.named_parameters() if v.requires_grad]
        ent = -(probs * torch.log(probs)).sum(dim=1).mean()
        pbar = probs.mean(dim=0)
        recs += [(f"it{it}/teacher_entropy", ent.reshape(1)),
                 (f"it{it}/kl_uniform", (pbar * torch.log(K * pbar)).sum().reshape(1)),
                 (f"it{it}/center_norm", center.norm().reshape(1))]
        for p in student.parameters():  # clip_gradients
            if p.grad is not None:
                coef = CLIP / (p.grad.norm(2) + 1e-6)
                if coef < 1:
                    p.grad.mul_(coef)
        if epoch < 1:  # cancel_gradients_last_layer
            for k, p in student.named_parameters():
                if "last_layer" in k:
                    p.grad = None
        opt.step()
        m = 1 + (M_BASE - 1) * (math.cos(math.pi * it / TOTAL_ITERS) + 1) / 2
        with torch.no_grad():
            for ps, pt in zip(student.parameters(), teacher.parameters()):
                pt.mul_(m).add_((1 - m) * ps.detach())
            center = center * CENTER_M + t_out.sum(dim=0, keepdim=True) / len(t_out) * (1 - CENTER_M)
    recs += [("param_after/" + strip(k), v.detach()) for k, v in student.named_parameters()]
    recs += [("buffer_after/" + strip(k), v) for k, v in student.named_buffers() if "num_batches" not in k]
    recs += [("teacher_after/" + strip(k), v) for k, v in teacher.named_parameters()]
    recs += [("teacher_buffer_after/" + strip(k), v) for k, v in teacher.named_buffers() if "num_batches" not in k]
    recs += [("center_after", center.reshape(-1))]
    recs += [("hyper", torch.tensor([N, GLOBAL, LOCAL, FEAT, HIDDEN, BOTTLENECK, K, STUDENT_TEMP, CENTER_M, WARM_T,
                                     FINAL_T, WARM_EPOCHS, M_BASE, TOTAL_ITERS, LR, WD, CLIP], dtype=torch.float32))]
    write_fixture(os.path.join(os.path.dirname(__file__), "fixtures", "dino_method.bin"), recs)
    print("dino losses", [r[1].item() for r in recs if r[0].endswith("/loss")])


if __name__ == "__main__":
    main()
