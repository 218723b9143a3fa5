#!/usr/bin/python3
"""Fixtures for tests/ref/test_ref_resize.c, made with Debian's torch 1.13 + torchvision 0.14.

resize.bin: F.interpolate(mode="bicubic", align_corners=False) of a (1, D, hi, wi) grid to
(ho, wo), stored channels last as sslrun lays out tokens: per case "<hi>x<wi>_<ho>x<wo>/" the input
x (hi, wi, D), the output y (ho, wo, D), a random r like y and dx = d sum(y * r) / dx (torch's own
backward, the adjoint).
vit_resized.bin: torchvision's VisionTransformer planned for 12 px images (3x3 patch grid), run at
16x24 px (4x6 grid) with the patch part of the learned position embedding resized bicubically and
the class position kept, as MAE's / DINO's interpolate_pos_embed: parameters, x, r, the train-mode
output y and the gradient of sum(y * r) for every parameter (pos_embedding's through the resize).
Run: /usr/bin/python3 tests/ref/make_fixtures_resize.py (deterministic).
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402
from make_fixtures_models import OUT, randomise  # noqa: E402

# (hi, wi, ho, wo, D): down, up, non-square output, non-square input, and ViT-sized channels
CASES = [(7, 7, 4, 4, 8), (4, 4, 7, 7, 8), (7, 7, 3, 5, 8), (3, 5, 8, 6, 4), (14, 14, 6, 6, 32)]


def bicubic(grid, size):
    """grid (hi, wi, D) channels last -> (ho, wo, D), through torch's (1, D, hi, wi) layout."""
    y = F.interpolate(grid.permute(2, 0, 1).unsqueeze(0), size=size, mode="bicubic",
                      align_corners=False)
    return y[0].permute(1, 2, 0)


def make_resize(gen):
    recs = []
    for hi, wi, ho, wo, d in CASES:
        key = f"{hi}x{wi}_{ho}x{wo}/"
        x = (torch.rand(hi, wi, d, generator=gen) * 2 - 1).requires_grad_()
        y = bicubic(x, (ho, wo))
        r = torch.rand(y.shape, generator=gen) * 2 - 1
        (y * r).sum().backward()
        recs += [(key + "x", x), (key + "y", y), (key + "r", r), (key + "dx", x.grad)]
    write_fixture(os.path.join(OUT, "resize.bin"), recs)
    print("resize", len(CASES), "cases")


class ResizedViT(VisionTransformer):
    """torchvision's ViT that takes any multiple of the patch size: the patch positions are resized
    from the planned grid (the class position kept); otherwise torchvision's forward."""

    def forward(self, x):
        n, _, h, w = x.shape
        p, g, d = self.patch_size, self.image_size // self.patch_size, self.hidden_dim
        gh, gw = h // p, w // p
        x = self.conv_proj(x).reshape(n, d, gh * gw).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        pos = self.encoder.pos_embedding
        grid = bicubic(pos[0, 1:].reshape(g, g, d), (gh, gw)).reshape(1, gh * gw, d)
        x = x + torch.cat([pos[:, :1], grid], dim=1)
        x = self.encoder.ln(self.encoder.layers(self.encoder.dropout(x)))
        return self.heads(x[:, 0])


def make_vit(gen):
    vit = ResizedViT(image_size=12, patch_size=4, num_layers=2, num_heads=2, hidden_dim=16,
                     mlp_dim=64, num_classes=3)
    vit.conv_proj = nn.Conv2d(2, 16, 4, 4)  # 2-channel input
    randomise(vit, torch.Generator().manual_seed(1234))
    x = torch.rand(3, 2, 16, 24, generator=gen) * 2 - 1
    recs = [("param/" + k, v) for k, v in vit.named_parameters()]
    vit.train()
    y = vit(x)
    r = torch.rand(y.shape, generator=gen) * 2 - 1
    (y * r).sum().backward()
    recs += [("x", x), ("r", r), ("y", y)]
    recs += [("grad/" + k, v.grad) for k, v in vit.named_parameters()]
    write_fixture(os.path.join(OUT, "vit_resized.bin"), recs)
    print("vit_resized", sum(p.numel() for p in vit.parameters()), "parameters")


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(77)
    make_resize(gen)
    make_vit(gen)


if __name__ == "__main__":
    main()
