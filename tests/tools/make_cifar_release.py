#!/usr/bin/python3
"""Small CIFAR-10 / CIFAR-100 releases from the same random pixels, in the three forms sslrun prep
reads: OUT/bin (the binary release: records of label byte(s) + 3072 bytes CHW), OUT/py2 (the
Python release as Python 2's cPickle wrote it: protocol 2, byte strings as SHORT_BINSTRING /
BINSTRING, written opcode by opcode here) and OUT/py3 (pickle.dump(protocol=2) of Python 3: bytes
as _codecs.encode). Each pickle is checked to load back with pickle.load(encoding="bytes").
  --cifar 10: data_batch_{1..5}[.bin], test_batch[.bin];  --cifar 100: train[.bin], test[.bin]"""
import argparse
import os
import pickle
import struct

import numpy as np


class Py2Pickler:
    """The opcodes cPickle (Python 2, protocol 2) emits for a CIFAR batch dict."""

    def __init__(self):
        self.out, self.memo = bytearray(b"\x80\x02"), 0

    def put(self):
        self.memo += 1
        self.out += b"q" + bytes([self.memo]) if self.memo < 256 else b"r" + struct.pack("<I", self.memo)

    def int(self, v):
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.out += b"M" + struct.pack("<H", v)
        else:
            self.out += b"J" + struct.pack("<i", v)

    def str(self, b):
        self.out += (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b
        self.put()

    def list(self, items, save):
        self.out += b"]"
        self.put()
        for i in range(0, len(items), 1000):  # cPickle's batches
            self.out += b"("
            for v in items[i:i + 1000]:
                save(v)
            self.out += b"e"

    def array(self, a):
        self.out += b"cnumpy.core.multiarray\n_reconstruct\n"
        self.put()
        self.out += b"cnumpy\nndarray\n"
        self.put()
        self.int(0)
        self.out += b"\x85"
        self.put()
        self.str(b"b")
        self.out += b"\x87"
        self.put()
        self.out += b"R"
        self.put()
        self.out += b"("
        self.int(1)
        self.int(a.shape[0])
        self.int(a.shape[1])
        self.out += b"\x86"
        self.put()
        self.out += b"cnumpy\ndtype\n"
        self.put()
        self.str(b"u1")
        self.int(0)
        self.int(1)
        self.out += b"\x87"
        self.put()
        self.out += b"R"
        self.put()
        self.out += b"("
        self.int(3)
        self.str(b"|")
        self.out += b"NNN" + b"J\xff\xff\xff\xff" * 2 + b"K\x00t"
        self.put()
        self.out += b"b\x89"
        self.str(a.tobytes())
        self.out += b"t"
        self.put()
        self.out += b"b"

    def dump(self, d):
        self.out += b"}"
        self.put()
        self.out += b"("
        for k, v in d.items():
            self.str(k)
            if isinstance(v, bytes):
                self.str(v)
            elif isinstance(v, np.ndarray):
                self.array(v)
            elif v and isinstance(v[0], bytes):
                self.list(v, self.str)
            else:
                self.list(v, self.int)
        self.out += b"u."
        return bytes(self.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cifar", type=int, choices=(10, 100), default=10)
    ap.add_argument("--per-batch", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.RandomState(a.seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"] if a.cifar == 10 else ["train", "test"]
    for form in ("bin", "py2", "py3"):
        os.makedirs(os.path.join(a.out, form), exist_ok=True)
    for name in names:
        n = a.per_batch
        data = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
        fine = [int(v) for v in rng.randint(0, a.cifar, size=n)]
        files = [f"img_{i:05d}.png".encode() for i in range(n)]
        if a.cifar == 10:
            d = {b"batch_label": name.encode(), b"labels": fine, b"data": data, b"filenames": files}
            rec = [bytes([fine[i]]) + data[i].tobytes() for i in range(n)]
        else:
            coarse = [v // 5 for v in fine]
            d = {b"filenames": files, b"batch_label": name.encode(), b"fine_labels": fine,
                 b"coarse_labels": coarse, b"data": data}
            rec = [bytes([coarse[i], fine[i]]) + data[i].tobytes() for i in range(n)]
        with open(os.path.join(a.out, "bin", name + ".bin"), "wb") as f:
            f.write(b"".join(rec))
        blobs = {"py2": Py2Pickler().dump(d), "py3": pickle.dumps(d, protocol=2)}
        for form, blob in blobs.items():
            back = pickle.loads(blob, encoding="bytes")
            assert back.keys() == d.keys() and np.array_equal(back[b"data"], data), (form, name)
            assert all(back[k] == d[k] for k in d if k != b"data"), (form, name)
            with open(os.path.join(a.out, form, name), "wb") as f:
                f.write(blob)
    print(f"CIFAR-{a.cifar}: {len(names)} batches of {a.per_batch} in bin/, py2/, py3/ under {a.out}")


if __name__ == "__main__":
    main()
