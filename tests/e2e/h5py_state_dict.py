#!/usr/bin/python3
"""Rebuild a PyTorch state_dict from an sslrun checkpoint with h5py alone (no sslrun), as a user
would, and check it against torchvision and against `sslrun export`.

The checkpoint holds flat float32 arrays ("params", "buffers") and, for each, a segment table
("segments", "buffer_segments"): one line per tensor, "name offset count d0,d1,...". Loaded into
torchvision's resnet18 (small stem, 1 channel), the encoder tensors must leave only fc.* missing and
only the method's heads (projector.*) unexpected, and equal the export's tensors bit for bit.

With --teacher, the state_dict is the EMA teacher's ("teacher/params", "teacher/buffers": prefixes of
the student's layout, indexed by the same tables; heads beyond the prefix are absent) and the export
is `sslrun export --teacher`'s.

usage: h5py_state_dict.py CHECKPOINT.h5 EXPORT.safetensors VERSION COMMIT [--teacher]
"""
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, sys.path[0] + "/../unit")
from check_export import build, load_safetensors  # noqa: E402


def state_dict(path, prefix=""):
    sd = {}
    with h5py.File(path, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
        for flat, table in ((prefix + "params", "segments"), (prefix + "buffers", "buffer_segments")):
            data = f[flat][:]
            assert data.dtype == np.float32, f"{flat}: {data.dtype}"
            for line in f[table][0].decode().splitlines():
                name, off, n, shape = line.split()
                off, n = int(off), int(n)
                if off + n > len(data):  # a teacher's prefix ends before the student's heads
                    continue
                dims = [int(d) for d in shape.split(",")]
                assert int(np.prod(dims)) == n, f"{name}: shape {dims} vs {n} values"
                sd[name] = torch.from_numpy(data[off : off + n].copy()).reshape(dims)
    return sd, attrs


def main():
    ckpt, export, version, commit = sys.argv[1:5]
    teacher = "--teacher" in sys.argv[5:]
    sd, attrs = state_dict(ckpt, "teacher/" if teacher else "")
    if teacher:  # the teacher is not the student: it must differ somewhere
        student, _ = state_dict(ckpt)
        assert any(not torch.equal(student[k], v) for k, v in sd.items()), "teacher equals the student"
    got = (attrs["sslrun_version"].decode(), attrs["git_commit"].decode())
    assert got == (version, commit), f"producer attributes {got}, sslrun --version says {(version, commit)}"
    model, head = build("resnet18_small_c1")
    ref = model.state_dict()
    enc = {k: v for k, v in sd.items() if k in ref}
    for k, v in enc.items():
        if ref[k].dtype != torch.float32:  # BN's num_batches_tracked is int64 in torch
            enc[k] = v.to(ref[k].dtype)
    res = model.load_state_dict(enc, strict=False)
    assert all(k.startswith(head) for k in res.missing_keys), f"missing: {res.missing_keys}"
    extra = sorted(k for k in sd if k not in ref)
    assert all(k.startswith(("projector.", "predictor.")) for k in extra), f"not in torchvision and not a head: {extra}"
    exported = load_safetensors(export)
    assert set(exported) <= set(sd), f"exported but not in the checkpoint: {set(exported) - set(sd)}"
    for k, v in exported.items():
        assert torch.equal(sd[k].to(v.dtype), v), f"{k}: checkpoint and export differ"
    print(f"h5py{' (teacher)' if teacher else ''}: {len(sd)} tensors rebuilt ({len(enc)} load into torchvision, heads {len(extra)}), "
          f"{len(exported)} equal to the export; written by sslrun {version} ({commit})")


if __name__ == "__main__":
    main()
