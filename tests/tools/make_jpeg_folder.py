#!/usr/bin/python3
"""An ImageFolder tree of JPEGs (and a few PNGs) from the Fashion-MNIST test split, for the JPEG-shard
tests: OUT/<class>/img_NNNNN.{jpg,png}, N per class, each upscaled to its own random size (28..72 px a
side, so the aspect ratio varies too). Within a class, image k is
  k % 10 == 3: PNG (RGB)             k % 10 == 5: grayscale JPEG      k % 10 == 7: progressive JPEG
  k % 20 == 9: CMYK JPEG (Adobe)     k % 10 == 1: shorter side exactly 40 (stored as is by --size 40)
  k % 20 == 19: 3 junk bytes before the second marker (libjpeg warns, decodes; PIL ignores them)
  otherwise a baseline RGB JPEG; colour JPEGs are tinted so that chroma is not constant.
Needs PIL; reads the idx files with gzip + struct (no numpy)."""
import argparse
import gzip
import io
import os
import random
import struct

from PIL import Image

CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle_boot"]


def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    (m,) = struct.unpack(">I", data[:4])
    if m != magic:
        raise SystemExit(f"{path}: idx magic {m:#010x}, expected {magic:#010x}")
    ndim = m & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--src", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    (n, rows, cols), pixels = read_idx(os.path.join(a.src, "t10k-images-idx3-ubyte.gz"), 0x803)
    (nl,), labels = read_idx(os.path.join(a.src, "t10k-labels-idx1-ubyte.gz"), 0x801)
    if nl != n:
        raise SystemExit(f"{n} images but {nl} labels")
    rng = random.Random(a.seed)
    count = [0] * len(CLASSES)
    for c in CLASSES:
        os.makedirs(os.path.join(a.out, c), exist_ok=True)
    for i in range(n):
        c = labels[i]
        k = count[c]
        if k >= a.per_class:
            if min(count) >= a.per_class:
                break
            continue
        count[c] += 1
        gray = Image.frombytes("L", (cols, rows), pixels[i * rows * cols:(i + 1) * rows * cols])
        w, h = rng.randint(28, 72), rng.randint(28, 72)
        if k % 10 == 1:
            w, h = (40, max(h, 40)) if rng.random() < 0.5 else (max(w, 40), 40)
        img = gray.resize((w, h), Image.BILINEAR)
        tint = tuple(rng.randint(100, 255) for _ in range(3))
        rgb = Image.merge("RGB", [img.point(lambda v, t=t: v * t // 255) for t in tint])
        base = os.path.join(a.out, CLASSES[c], f"img_{i:05d}")
        if k % 10 == 3:
            rgb.save(base + ".png")
        elif k % 10 == 5:
            img.save(base + ".jpg", quality=90)
        elif k % 10 == 7:
            rgb.save(base + ".jpg", quality=90, progressive=True)
        elif k % 20 == 9:
            rgb.convert("CMYK").save(base + ".jpg", quality=90)
        elif k % 20 == 19:
            buf = io.BytesIO()
            rgb.save(buf, "JPEG", quality=90)
            b = buf.getvalue()
            at = 4 + struct.unpack(">H", b[4:6])[0]  # end of the first segment (APP0)
            with open(base + ".jpg", "wb") as f:
                f.write(b[:at] + b"\x12\x34\x56" + b[at:])
        else:
            rgb.save(base + ".jpg", quality=90)
    print(f"{sum(count)} images in {len(CLASSES)} classes under {a.out}")


if __name__ == "__main__":
    main()
