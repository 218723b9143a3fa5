#!/usr/bin/python3
"""h5_same.py DIR_A DIR_B PREFIX: the shards DIR/PREFIX-*.h5 of two preps hold the same samples: the
same shard names, and in each the same file attributes and datasets (names, dtypes, shapes, values).
Prints one line; exits 1 naming the first difference."""
import glob
import os
import sys

import h5py
import numpy as np


def main():
    a, b, prefix = sys.argv[1:4]
    names = lambda d: sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, prefix + "-*.h5")))
    na, nb = names(a), names(b)
    if not na or na != nb:
        sys.exit(f"shard names differ: {na} vs {nb}")
    samples = 0
    for n in na:
        with h5py.File(os.path.join(a, n), "r") as fa, h5py.File(os.path.join(b, n), "r") as fb:
            if dict(fa.attrs) != dict(fb.attrs):
                sys.exit(f"{n}: attributes differ: {dict(fa.attrs)} vs {dict(fb.attrs)}")
            if sorted(fa.keys()) != sorted(fb.keys()):
                sys.exit(f"{n}: datasets differ: {sorted(fa.keys())} vs {sorted(fb.keys())}")
            for k in fa.keys():
                x, y = fa[k][()], fb[k][()]
                if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
                    sys.exit(f"{n}: dataset '{k}' differs ({x.dtype}{x.shape} vs {y.dtype}{y.shape})")
            samples += len(fa["labels"])
    print(f"{a} = {b}: {len(na)} shards, {samples} samples")


if __name__ == "__main__":
    main()
