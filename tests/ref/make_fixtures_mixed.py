#!/usr/bin/python3
"""Fixture for tests/ref/test_ref_mixed.c (model.precision bf16), made with Debian's torch 1.13.

mixed.bin: for GEMMs (every transpose pair, padded leading dimensions, alpha, beta) and convolutions
(forward, backward data, backward filter; a strided 3x3 with padding and a 1x1), the inputs in fp32
and the results torch.autocast's rule gives: both inputs rounded to bfloat16 (.to(torch.bfloat16)),
the product in float64 (exact products, a sum more precise than any fp32 accumulation), alpha
applied, the result rounded to bfloat16; then beta * C added in fp32, or added to the fp32 weight
gradient for the backward filter (torch adds a bf16 weight gradient to the fp32 master's .grad).
Run: /usr/bin/python3 tests/ref/make_fixtures_mixed.py (deterministic).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402
from make_fixtures_models import OUT  # noqa: E402


def bf(t):
    """t rounded to bfloat16, as float64."""
    return t.to(torch.bfloat16).to(torch.float64)


def rnd(t):
    """a float64 result rounded to bfloat16 (through fp32, as a fp32 accumulator would hold it)."""
    return t.to(torch.float32).to(torch.bfloat16).to(torch.float32)


def main():
    g = torch.Generator().manual_seed(17)
    recs = []
    M, N, K = 37, 29, 53
    for ta in (0, 1):
        for tb in (0, 1):
            ar, ac = (K, M) if ta else (M, K)
            br, bc = (N, K) if tb else (K, N)
            lda, ldb, ldc = ac + 3, bc + 1, N + 2
            a = torch.randn(ar, lda, generator=g)
            b = torch.randn(br, ldb, generator=g) * 3.0
            c0 = torch.randn(M, ldc, generator=g)
            alpha, beta = (0.7, 0.0) if (ta + tb) % 2 == 0 else (1.0, 0.5)
            A = bf(a[:, :ac]).T if ta else bf(a[:, :ac])
            B = bf(b[:, :bc]).T if tb else bf(b[:, :bc])
            r = rnd(alpha * (A @ B))
            out = c0.clone()
            out[:, :N] = r + beta * c0[:, :N] if beta != 0 else r
            p = "gemm%d%d_" % (ta, tb)
            recs += [(p + "a", a), (p + "b", b), (p + "c0", c0), (p + "out", out),
                     (p + "dims", [M, N, K, lda, ldb, ldc, alpha, beta])]
    for i, (n, c, h, k, r, stride, pad) in enumerate([(2, 5, 9, 7, 3, 2, 1), (3, 8, 6, 4, 1, 1, 0)]):
        x = torch.randn(n, c, h, h, generator=g)
        w = torch.randn(k, c, r, r, generator=g) * 0.5
        xd, wd = bf(x).requires_grad_(), bf(w).requires_grad_()
        y = F.conv2d(xd, wd, stride=stride, padding=pad)
        dy = torch.randn(y.shape, generator=g)
        y.backward(bf(dy))
        dw0 = torch.randn(w.shape, generator=g)
        p = "conv%d_" % i
        recs += [(p + "x", x), (p + "w", w), (p + "dy", dy), (p + "dw0", dw0),
                 (p + "y", rnd(y.detach())), (p + "dx", rnd(xd.grad)), (p + "dw", dw0 + rnd(wd.grad)),
                 (p + "dims", [n, c, h, h, k, r, stride, pad])]
    write_fixture(os.path.join(OUT, "mixed.bin"), recs)
    print("mixed.bin:", len(recs), "tensors")


if __name__ == "__main__":
    main()
