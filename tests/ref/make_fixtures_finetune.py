#!/usr/bin/python3
"""Fixture for tests/ref/test_ref_finetune.c: the first two fine-tuning steps of a tiny ViT in PyTorch,
written from the MAE paper's fine-tuning recipe and the semantics of its main_finetune.py and
util/lr_decay.py (REFERENCE §5.6), independently of sslrun.

Model: torchvision VisionTransformer (8x8 images, patch 4, 2 blocks, dim 16, 2 heads, MLP 64, 5
classes, the CLS token's output to the head), 1-channel input, every parameter randomised.
Loss: label-smoothed cross-entropy, (1 - s) * nll + s * mean_k(-log p_k) (timm's
LabelSmoothingCrossEntropy, the loss MAE uses without mixup), s = 0.1, mean over the batch.
Optimizer: AdamW (betas 0.9/0.999, eps 1e-8) with layer-wise lr decay as param groups: layer 0 =
conv_proj, class_token, encoder.pos_embedding; layer k+1 = encoder_layer_k; layer L+1 = everything
after the blocks (final LN, head); lr_scale = decay^(L+1 - layer); every step each group's lr is the
scheduled lr x its lr_scale (decoupled weight decay uses that lr too). No weight decay for 1-D tensors,
class_token and pos_embedding. Two steps at lr 0.01 and 0.004, decay 0.6, wd 0.05.
Run: /usr/bin/python3 tests/ref/make_fixtures_finetune.py
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402

N, IMG, PATCH, DEPTH, DIM, HEADS, MLP, K = 6, 8, 4, 2, 16, 2, 64, 5
SMOOTH, DECAY, WD, LRS = 0.1, 0.6, 0.05, [0.01, 0.004]
NO_WD = {"class_token", "encoder.pos_embedding"}


def layer_of(name):
    if name.startswith("conv_proj.") or name in NO_WD:
        return 0
    if name.startswith("encoder.layers.encoder_layer_"):
        return int(name.split(".")[2].rsplit("_", 1)[1]) + 1
    return DEPTH + 1


def smoothed_ce(logits, y):
    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(1, y[:, None]).squeeze(1)
    return ((1 - SMOOTH) * nll + SMOOTH * (-logp.mean(dim=-1))).mean()


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(77)
    vit = VisionTransformer(image_size=IMG, patch_size=PATCH, num_layers=DEPTH, num_heads=HEADS, hidden_dim=DIM,
                            mlp_dim=MLP, num_classes=K)
    vit.conv_proj = nn.Conv2d(1, DIM, PATCH, PATCH)
    with torch.no_grad():
        for name, p in vit.named_parameters():
            p.copy_((torch.rand(p.shape, generator=g) - 0.5) * (0.5 if p.ndim > 1 else 0.2))
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "encoder.ln.weight":
                p.add_(1.0)
    recs = [("param/" + k, v.detach().clone()) for k, v in vit.named_parameters()]
    groups = {}
    for k, p in vit.named_parameters():
        scale = DECAY ** (DEPTH + 1 - layer_of(k))
        wd = 0.0 if p.ndim == 1 or k in NO_WD else WD
        groups.setdefault((scale, wd), []).append(p)
        recs.append(("scale/" + k, torch.tensor([scale])))
    opt = torch.optim.AdamW([{"params": ps, "lr_scale": s, "weight_decay": wd} for (s, wd), ps in groups.items()],
                            lr=LRS[0], betas=(0.9, 0.999), eps=1e-8)
    vit.train()
    for it, lr in enumerate(LRS):
        x = torch.rand(N, 1, IMG, IMG, generator=g) * 2 - 1
        y = torch.randint(0, K, (N,), generator=g)
        for group in opt.param_groups:
            group["lr"] = lr * group["lr_scale"]
        loss = smoothed_ce(vit(x), y)
        opt.zero_grad()
        loss.backward()
        recs += [(f"it{it}/x", x), (f"it{it}/y", y.float()), (f"it{it}/loss", loss.detach().reshape(1))]
        recs += [(f"it{it}/grad/" + k, v.grad.clone()) for k, v in vit.named_parameters()]
        opt.step()
        recs += [(f"it{it}/param_after/" + k, v.detach().clone()) for k, v in vit.named_parameters()]
    recs.append(("hyper", torch.tensor([N, IMG, PATCH, DEPTH, DIM, HEADS, K, SMOOTH, DECAY, WD] + LRS)))
    write_fixture(os.path.join(os.path.dirname(__file__), "fixtures", "finetune.bin"), recs)
    print("finetune losses", [r[1].item() for r in recs if r[0].endswith("/loss")])


if __name__ == "__main__":
    main()
