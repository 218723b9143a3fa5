"""Writes sslrun fixture files: records of [u32 name_len][name][u32 ndim][i64 shape][f32 data]."""
import struct


def write_fixture(path, tensors):
    """tensors: iterable of (name, torch.Tensor or list of floats)."""
    import torch
    with open(path, "wb") as f:
        for name, t in tensors:
            t = torch.as_tensor(t, dtype=torch.float32).detach().contiguous().cpu()
            b = name.encode()
            f.write(struct.pack("<I", len(b)))
            f.write(b)
            f.write(struct.pack("<I", t.dim()))
            for s in t.shape:
                f.write(struct.pack("<q", s))
            f.write(t.numpy().astype("<f4").tobytes())
