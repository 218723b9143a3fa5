#!/usr/bin/python3
"""Fixture for tests/ref/test_ref_bf16.c, made with Debian's torch 1.13.

bf16.bin: x, fp32 values chosen to exercise rounding to bfloat16 (every exponent, subnormals, exact
ties with even and odd kept halves, one ulp either side of a tie, values that round up into the next
binade and to inf, signed zeros, inf and NaN, and uniform random values), and y = x.to(torch.bfloat16)
.to(torch.float32): torch's rounding, exactly representable in fp32.
Run: /usr/bin/python3 tests/ref/make_fixtures_bf16.py (deterministic).
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402
from make_fixtures_models import OUT  # noqa: E402


def bits(u):
    return np.array(u, dtype=np.uint32).view(np.float32)


def main():
    rng = np.random.default_rng(16)
    parts = []
    for e in range(256):                      # every exponent, both signs, random mantissas
        m = rng.integers(0, 1 << 23, 16, dtype=np.uint32)
        parts.append(bits((np.uint32(e) << 23) | m))
        parts.append(bits((np.uint32(0x100 | e) << 23) | m))
    for kept in range(0, 1 << 7):              # ties and their neighbours, kept half even and odd
        for e in (1, 60, 127, 200, 254):
            base = (e << 23) | (kept << 16)
            parts.append(bits([base | 0x8000, base | 0x7FFF, base | 0x8001, base | 0xFFFF, base]))
    parts.append(bits([0x00000000, 0x80000000, 0x00000001, 0x00008000, 0x00018000, 0x007FFFFF,
                       0x7F7FFFFF, 0x7F7F7FFF, 0x7F7F8000, 0xFF7F8000, 0x7F800000, 0xFF800000,
                       0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF]))
    parts.append((rng.standard_normal(4096) * 10.0 ** rng.integers(-30, 30, 4096)).astype(np.float32))
    x = torch.from_numpy(np.concatenate(parts))
    y = x.to(torch.bfloat16).to(torch.float32)
    write_fixture(os.path.join(OUT, "bf16.bin"), [("x", x), ("y", y)])
    nan = torch.isnan(x)
    print("bf16", x.numel(), "values,", int(nan.sum()), "NaN; torch's NaN patterns:",
          sorted({hex(v >> 16) for v in y[nan].view(torch.int32).tolist()}))


if __name__ == "__main__":
    main()
