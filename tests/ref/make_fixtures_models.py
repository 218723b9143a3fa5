#!/usr/bin/python3
"""Fixtures for tests/ref/test_ref_models.c, made with Debian's torch 1.13 + torchvision 0.14.

Models are torchvision's own classes (ResNet blocks via ResNet._make_layer with a configurable
width, VisionTransformer with small dims), so parameter names and semantics are torchvision's.
For each model: parameters and BN buffers, an input batch, the train-mode output, the gradient of
sum(output * r) for every parameter, the BN running stats after that forward, and the eval-mode
output afterwards. Run: /usr/bin/python3 tests/ref/make_fixtures_models.py (deterministic).
"""
import os
import sys

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "fixtures")


class WidthResNet(ResNet):
    """torchvision's ResNet with the first-stage width and stem as parameters."""

    def __init__(self, block, layers, width, in_ch, num_classes, small_stem):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        if small_stem:
            self.conv1 = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_ch, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)


def randomise(model, gen):
    # Non-default values everywhere (BN affine, biases, tokens) so every gradient path is exercised.
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
            if "bn" in name or "downsample.1" in name:
                p.add_(1.0)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.rand(b.shape, generator=gen) - 0.5)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5)


def make(name, model, x):
    gen = torch.Generator().manual_seed(1234)
    randomise(model, gen)
    recs = [("param/" + k, v) for k, v in model.named_parameters()]
    recs += [("buffer/" + k, v.clone()) for k, v in model.named_buffers()
             if not k.endswith("num_batches_tracked")]
    model.train()
    y = model(x)
    r = torch.rand(y.shape, generator=gen) * 2 - 1
    (y * r).sum().backward()
    recs += [("x", x), ("r", r), ("y", y)]
    recs += [("grad/" + k, v.grad) for k, v in model.named_parameters()]
    recs += [("buffer_after/" + k, v) for k, v in model.named_buffers()
             if not k.endswith("num_batches_tracked")]
    model.eval()
    with torch.no_grad():
        recs.append(("y_eval", model(x)))
    write_fixture(os.path.join(OUT, name + ".bin"), recs)
    print(name, sum(p.numel() for p in model.parameters()), "parameters")


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(99)
    # ResNet-18 layout, width 4, small stem, 2-channel 8x8 images, batch 4
    make("resnet18_small", WidthResNet(BasicBlock, [2, 2, 2, 2], 4, 2, 3, True),
         torch.rand(4, 2, 8, 8, generator=g) * 2 - 1)
    # ResNet-50 layout (bottlenecks), width 4, ImageNet stem with max-pool, 64x64 (2x2 at layer4:
    # smaller inputs leave BN 1-3 values per channel, too ill-conditioned to compare), batch 4
    make("resnet50_imagenet", WidthResNet(Bottleneck, [3, 4, 6, 3], 4, 2, 3, False),
         torch.rand(4, 2, 64, 64, generator=g) * 2 - 1)
    # ViT: 8x8 images, patch 4, 2 layers, dim 16, 2 heads, MLP 64, 3 classes, batch 3
    vit = VisionTransformer(image_size=8, patch_size=4, num_layers=2, num_heads=2, hidden_dim=16,
                            mlp_dim=64, num_classes=3)
    vit.conv_proj = nn.Conv2d(2, 16, 4, 4)  # 2-channel input
    make("vit_tiny", vit, torch.rand(3, 2, 8, 8, generator=g) * 2 - 1)


if __name__ == "__main__":
    main()
