#!/usr/bin/python3
"""Seeds of fuzz_pickle: tiny CIFAR batches in the two pickle forms sslrun reads, made the way
tests/tools/make_cifar_release.py makes them (its Py2Pickler for Python 2's cPickle; pickle.dumps
protocol 2 for Python 3). Writes tests/fuzz/corpus/pickle/seed-* (overwriting those only):
  seed-cifar10-py2, seed-cifar10-py3     CIFAR-10 dicts (b'labels'), 2 and 3 images
  seed-cifar100-py2, seed-cifar100-py3   CIFAR-100 dicts (b'fine_labels', b'coarse_labels'), 4 and 2
Usage: tests/fuzz/gen_pickle_seeds.py   (needs numpy; deterministic)"""
import os
import pickle
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tools"))
from make_cifar_release import Py2Pickler  # noqa: E402


def batch(rng, cifar, n, name):
    data = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
    fine = [int(v) for v in rng.randint(0, cifar, size=n)]
    files = [f"img_{i:05d}.png".encode() for i in range(n)]
    if cifar == 10:
        return {b"batch_label": name.encode(), b"labels": fine, b"data": data, b"filenames": files}
    return {b"filenames": files, b"batch_label": name.encode(), b"fine_labels": fine,
            b"coarse_labels": [v // 5 for v in fine], b"data": data}


def main():
    out = os.path.join(here, "corpus", "pickle")
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(0)
    for cifar, form, n in ((10, "py2", 2), (10, "py3", 3), (100, "py2", 4), (100, "py3", 2)):
        d = batch(rng, cifar, n, "training batch 1 of 5" if cifar == 10 else "train")
        blob = Py2Pickler().dump(d) if form == "py2" else pickle.dumps(d, protocol=2)
        back = pickle.loads(blob, encoding="bytes")
        assert back.keys() == d.keys() and np.array_equal(back[b"data"], d[b"data"]), (cifar, form)
        with open(os.path.join(out, f"seed-cifar{cifar}-{form}"), "wb") as f:
            f.write(blob)
    print(f"seeds written to {out}")


if __name__ == "__main__":
    main()
