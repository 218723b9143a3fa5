#!/usr/bin/python3
"""An ImageFolder tree OUT/<class>/<n>.jpg of real photographs at ImageNet-like sizes, for
benchmarks/bench_loader.sh: decode cost depends on image content and size, so synthetic noise or flat
colours would time the wrong thing. Each image is a random crop (from its own size, never upscaled,
to the whole source), rescale and flip of one of the 12 nature photographs (1280-2560 px JPEGs) of
Debian's mate-backgrounds package, saved as ImageNet-like files: JPEG quality 90, 4:2:0, shorter
side 375-500 px, aspect (long / short) 1-1.6, one in four portrait. Deterministic per --seed.
  /usr/bin/python3 benchmarks/make_photo_set.py OUT [--images 2000] [--classes 10] [--seed 0]
"""
import argparse
import glob
import os
import random
import sys

from PIL import Image

SOURCES = "/usr/share/backgrounds/mate/nature/*.jpg"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sources", default=SOURCES, help="glob of source photographs")
    a = ap.parse_args()
    paths = sorted(glob.glob(a.sources))
    if not paths:
        sys.exit(f"make_photo_set: no photographs at {a.sources} (apt-get install mate-backgrounds)")
    srcs = [Image.open(p).convert("RGB") for p in paths]
    print(f"make_photo_set: {len(paths)} source photographs:")
    for p, im in zip(paths, srcs):
        print(f"  {p} ({im.width} x {im.height})")
    rng = random.Random(a.seed)
    for c in range(a.classes):
        os.makedirs(os.path.join(a.out, f"class{c:02d}"), exist_ok=True)
    for n in range(a.images):
        im = srcs[rng.randrange(len(srcs))]
        short = rng.randint(375, 500)
        long_ = min(round(short * rng.uniform(1.0, 1.6)), 800)
        tw, th = (short, long_) if rng.random() < 0.25 else (long_, short)
        # a window of the target's aspect, from target size (no upscaling: that would smooth the
        # photograph and make it cheaper to decode) to the largest the source holds
        top = min(im.width / tw, im.height / th)
        scale = top * rng.uniform(min(1.0, max(0.25, 1.0 / top)), 1.0)
        cw, ch = max(1, round(tw * scale)), max(1, round(th * scale))
        x, y = rng.randint(0, im.width - cw), rng.randint(0, im.height - ch)
        out = im.crop((x, y, x + cw, y + ch)).resize((tw, th), Image.BILINEAR)
        if rng.random() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        out.save(os.path.join(a.out, f"class{n % a.classes:02d}", f"{n:05d}.jpg"), quality=90, subsampling=2)
    print(f"make_photo_set: {a.images} images in {a.classes} classes under {a.out}")


if __name__ == "__main__":
    main()
