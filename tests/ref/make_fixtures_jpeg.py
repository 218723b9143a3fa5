"""JPEG decoding fixtures for test_ref_jpeg: a few small JPEGs (4:2:0, 4:4:4, progressive, grayscale;
odd sizes) and PIL's decodes of each at full size and at the DCT scales 1/2, 1/4 and 1/8 (PIL's
draft(), which asks libjpeg for the same scaled IDCT the loader uses). PIL decodes with libjpeg's
default accurate integer IDCT and fancy upsampling, as PIL's Image.open + convert does for every
torchvision pipeline. Run with /usr/bin/python3 (PIL, torch)."""
import io
import math
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402


def picture(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 7.0 + seed) * np.cos(y / 5.0)
    g = 255 * (x + y) / (h + w)
    b = 128 + 90 * np.sin((x - y) / 4.0)
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def main():
    out = []
    cases = [("c420", 45, 61, dict(quality=85, subsampling=2)),
             ("c444", 64, 40, dict(quality=92, subsampling=0)),
             ("prog", 37, 50, dict(quality=80, subsampling=2, progressive=True)),
             ("gray", 41, 33, dict(quality=90))]
    for k, (name, h, w, opts) in enumerate(cases):
        img = Image.fromarray(picture(h, w, k))
        if name == "gray":
            img = img.convert("L")
        buf = io.BytesIO()
        img.save(buf, format="JPEG", **opts)
        data = buf.getvalue()
        out.append((f"{name}/jpeg", list(data)))
        out.append((f"{name}/hw", [h, w]))
        for den in (1, 2, 4, 8):
            # the source's own mode at every scale, the other one (PIL's convert) at full size
            own = "L" if name == "gray" else "RGB"
            for mode in (own,) if den > 1 else ("RGB", "L"):
                im = Image.open(io.BytesIO(data))
                if den > 1:
                    im.draft(im.mode, (w // den, h // den))  # PIL picks the scale w // size
                assert im.size == (math.ceil(w / den), math.ceil(h / den)), (name, den, im.size)
                px = np.asarray(im.convert(mode), dtype=np.float32)
                out.append((f"{name}/{mode}_{8 // den}", px))
    path = os.path.join(os.path.dirname(__file__), "fixtures", "jpeg_decode.bin")
    write_fixture(path, out)
    print("wrote", path)


if __name__ == "__main__":
    main()
