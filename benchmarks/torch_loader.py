#!/usr/bin/python3
"""PyTorch's side of benchmarks/bench_loader.sh: DataLoader over torchvision's ImageFolder (PIL
decode of the whole JPEG) with SimCLR's ImageNet augmentation applied twice per image, batches taken
on the main thread as fast as they come, timed as bench_loader times ours (the same batches after the
same warm-up). Persistent workers, DataLoader's default prefetch_factor 2 and one torch thread per
worker (DataLoader's default). torchvision's GaussianBlur is a dense k x k convolution and the
largest cost; --blur pil swaps in PIL's ImageFilter.GaussianBlur(radius=sigma), as MoCo v2's code
does, for a second, cheaper PyTorch baseline.
  /usr/bin/python3 benchmarks/torch_loader.py DIR [--workers "1 2 4"] [--batch 64] [--img 224]
      [--batches 30] [--warmup 3] [--blur torchvision|pil]
"""
import argparse
import random
import time

import torch
import torchvision
from PIL import ImageFilter
from torchvision import datasets, transforms as T


class TwoViews:
    def __init__(self, t):
        self.t = t

    def __call__(self, x):
        return [self.t(x), self.t(x)]


class PilBlur:
    def __call__(self, x):
        return x.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


def simclr_transform(size, blur):
    # SimCLR's ImageNet recipe (colour strength 1), as io/augment.h's ssl_augment_config_default
    blur = PilBlur() if blur == "pil" else T.GaussianBlur(2 * ((size // 10) // 2) + 1, sigma=(0.1, 2.0))
    return T.Compose([
        T.RandomResizedCrop(size),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([blur], p=0.5),
        T.ToTensor(),
        T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])


def measure(ds, workers, a):
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=workers,
                                         persistent_workers=True, drop_last=True)
    it, t0, sink, k = None, 0.0, 0.0, 0
    while k < a.warmup + a.batches:
        if it is None:
            it = iter(loader)  # persistent workers: a new epoch reuses them
        try:
            views = next(it)[0]
        except StopIteration:
            it = None
            continue
        if k == a.warmup:
            t0 = time.perf_counter()
        sink += float(views[0].view(-1)[k * 7919 % views[0].numel()])  # read the batch, as a step would
        k += 1
    dt = time.perf_counter() - t0
    del it, loader
    return a.batches * a.batch / dt


def main():
    ap = argparse.ArgumentParser(description="PyTorch DataLoader speed with SimCLR augmentation")
    ap.add_argument("root", help="ImageFolder tree root/<class>/<image>")
    ap.add_argument("--workers", default="1 2 4")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--img", type=int, default=224)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--blur", choices=("torchvision", "pil"), default="torchvision")
    a = ap.parse_args()
    ds = datasets.ImageFolder(a.root, transform=TwoViews(simclr_transform(a.img, a.blur)))
    if len(ds) < a.batch:
        raise SystemExit(f"torch_loader: {len(ds)} images, fewer than one batch of {a.batch}")
    print(f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}")
    print(f"data: {a.root}: {len(ds)} images; batch {a.batch}, 2 views of {a.img} x {a.img}, "
          f"{a.batches} batches timed after {a.warmup} warm-up, {a.blur} blur")
    for w in map(int, a.workers.split()):
        r = measure(ds, w, a)
        print(f"torch workers {w}: {r:.1f} img/s, {r / w:.1f} img/s per worker", flush=True)


if __name__ == "__main__":
    main()
