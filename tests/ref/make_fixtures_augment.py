#!/usr/bin/python3
"""Fixtures for tests/ref/test_ref_augment.c, made with Debian's torch 1.13 + torchvision 0.14.

Each case is a random uint8 image, a set of explicit augmentation parameters (what
RandomResizedCrop / RandomHorizontalFlip / ColorJitter / RandomGrayscale / GaussianBlur /
RandomSolarize get_params would return) and torchvision's functional tensor ops applied to
ToTensor()'s float image in io/augment.h's order. The random draws themselves cannot be compared
(our draws come from Philox), so the C test replays these parameters through ssl_augment_apply.
Run: /usr/bin/python3 tests/ref/make_fixtures_augment.py (deterministic).
"""
import os
import sys

import torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "fixtures")
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
FMNIST = ([0.2860], [0.3530])


def blur_kernel(S):
    # SimCLR: kernel_size = S // 10, radius = kernel_size // 2, taps = 2 * radius + 1.
    return 2 * ((S // 10) // 2) + 1


def apply(img_u8, p, S, mean, std):
    x = torch.from_numpy(img_u8.numpy()).permute(2, 0, 1).float().div(255)  # ToTensor
    C = x.shape[0]
    x = F.resized_crop(x, p["i"], p["j"], p["h"], p["w"], [S, S],
                       interpolation=InterpolationMode.BILINEAR, antialias=False)
    if p["flip"]:
        x = F.hflip(x)
    if p["jitter"]:
        for fn in p["order"]:
            if fn == 0 and p["b"] != 1.0:
                x = F.adjust_brightness(x, p["b"])
            elif fn == 1 and p["c"] != 1.0:
                x = F.adjust_contrast(x, p["c"])
            elif fn == 2 and p["s"] != 1.0:
                x = F.adjust_saturation(x, p["s"])
            elif fn == 3 and p["hue"] != 0.0:
                x = F.adjust_hue(x, p["hue"])
    if p["gray"]:
        x = F.rgb_to_grayscale(x, num_output_channels=C)
    if p["blur"]:
        k = blur_kernel(S)
        x = F.gaussian_blur(x, [k, k], [p["sigma"], p["sigma"]])
    if p["solarize"]:
        x = F.solarize(x, 128.0 / 255.0)
    return F.normalize(x, mean, std)


def f32(v):
    return float(torch.tensor(v, dtype=torch.float32))


def main():
    gen = torch.Generator().manual_seed(1234)

    def rand():
        return float(torch.rand(1, generator=gen))

    # (H, W, C, S): up- and down-sampling, gray and RGB, blur radius 1 (S 28/32) and 3 (S 64).
    shapes = [(28, 28, 1, 28), (28, 28, 1, 28), (32, 32, 3, 32), (32, 32, 3, 32), (20, 24, 3, 16),
              (24, 20, 1, 40), (48, 64, 3, 64), (64, 64, 3, 64), (32, 32, 3, 32), (28, 28, 1, 28),
              (40, 40, 3, 24), (32, 48, 3, 32)]
    tensors = [("ncases", [len(shapes)])]
    for k, (H, W, C, S) in enumerate(shapes):
        img = torch.randint(0, 256, (H, W, C), generator=gen, dtype=torch.uint8)
        if k % 3 == 0:
            # Smooth content as well as noise: gradients make the hue and contrast paths matter.
            yy = torch.arange(H).view(H, 1, 1).float()
            xx = torch.arange(W).view(1, W, 1).float()
            cc = torch.arange(C).view(1, 1, C).float()
            img = ((yy * 7 + xx * 5 + cc * 60) % 256).to(torch.uint8)
        h = int(torch.randint(max(1, H // 4), H + 1, (1,), generator=gen))
        w = int(torch.randint(max(1, W // 4), W + 1, (1,), generator=gen))
        if k < 2:
            h, w = H, W  # whole image: no resampling on the first cases
        i = int(torch.randint(0, H - h + 1, (1,), generator=gen))
        j = int(torch.randint(0, W - w + 1, (1,), generator=gen))
        p = {
            "i": i, "j": j, "h": h, "w": w,
            "flip": int(rand() < 0.5),
            "jitter": int(k != 0),
            "order": torch.randperm(4, generator=gen).tolist(),
            "b": f32(0.2 + 1.6 * rand()),
            "c": f32(0.2 + 1.6 * rand()),
            "s": f32(0.2 + 1.6 * rand()) if C == 3 else 1.0,
            "hue": f32(-0.5 + rand()) if C == 3 else 0.0,
            "gray": int(C == 3 and k % 4 == 2),
            "blur": int(k % 2 == 1),
            "sigma": f32(0.1 + 1.9 * rand()),
            "solarize": int(k % 3 == 2),
        }
        mean, std = IMAGENET if C == 3 else FMNIST
        out = apply(img, p, S, mean, std)
        params = [p["i"], p["j"], p["h"], p["w"], p["flip"], p["jitter"], *p["order"], p["b"], p["c"],
                  p["s"], p["hue"], p["gray"], p["blur"], p["sigma"], p["solarize"], S]
        tensors += [(f"case{k}/shape", [H, W, C]), (f"case{k}/image", img.float()), (f"case{k}/params", params),
                    (f"case{k}/mean", mean), (f"case{k}/std", std), (f"case{k}/out", out)]
    write_fixture(os.path.join(OUT, "augment.bin"), tensors)


if __name__ == "__main__":
    main()
