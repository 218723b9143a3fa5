#!/usr/bin/python3
"""Load an sslrun safetensors export into torchvision (run by tests/unit/test_export_torch.c).

Pure-Python reader (struct + json; the `safetensors` package is not a dependency), then
load_state_dict(strict=False) into the matching torchvision model: the only missing keys may be the
classification head (fc.* / heads.*), no key may be unexpected, every shape must match and values
must arrive bit-exactly. With IO_FILE (an export holding "input" images and the C model's eval-mode
"features"), torchvision's features with the head removed must equal sslrun's.

usage: check_export.py FILE ARCH [IO_FILE] [-- FILE ARCH [IO_FILE] ...]
  ARCH: resnet18 | resnet18_small (suffix _c1 for 1-channel input) | vit:IMG:PATCH:LAYERS:HEADS:DIM
Several exports per run share one (slow) torch import.
"""
import json
import math
import struct
import sys

import torch
import torchvision


def load_safetensors(path):
    assert sys.byteorder == "little", "frombuffer reads host order; the file is little-endian"
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0, f"header length {n} is not a multiple of 8"
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    assert meta == {"format": "pt"}, f"metadata {meta}"
    data = blob[8 + n :]
    sd, at = {}, 0
    for name, info in header.items():  # json keeps file order: it must be data order
        assert set(info) == {"dtype", "shape", "data_offsets"}, f"{name}: fields {sorted(info)}"
        assert info["dtype"] == "F32", f"{name}: dtype {info['dtype']}"
        b, e = info["data_offsets"]
        assert b == at and e - b == 4 * math.prod(info["shape"]), f"{name}: offsets {b}, {e}"
        at = e
        sd[name] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(info["shape"])
    assert at == len(data), f"data section {len(data)} bytes, tensors cover {at}"
    return sd


def build(arch):
    if arch.startswith("resnet18"):
        # resnet18 | resnet18_small, optionally _c<N> for N input channels (1 for Fashion-MNIST)
        base, _, ch = arch.partition("_c")
        chans = int(ch) if ch else 3
        m = torchvision.models.resnet18()
        if base == "resnet18_small":
            # the CIFAR-style stem of SimCLR/MoCo small-image variants
            m.conv1 = torch.nn.Conv2d(chans, 64, 3, 1, 1, bias=False)
            m.maxpool = torch.nn.Identity()
        elif chans != 3:
            m.conv1 = torch.nn.Conv2d(chans, 64, 7, 2, 3, bias=False)
        return m, "fc."
    if arch.startswith("vit:"):
        img, patch, layers, heads, dim = (int(v) for v in arch.split(":")[1:])
        m = torchvision.models.vision_transformer.VisionTransformer(
            image_size=img, patch_size=patch, num_layers=layers, num_heads=heads,
            hidden_dim=dim, mlp_dim=4 * dim)
        return m, "heads."
    raise SystemExit(f"unknown arch {arch}")


def check(path, arch, io_path=None):
    sd = load_safetensors(path)
    model, head = build(arch)
    own = model.state_dict()
    for k, v in sd.items():
        if k in own:
            assert own[k].shape == v.shape, f"{k}: file {tuple(v.shape)}, torchvision {tuple(own[k].shape)}"
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, f"unexpected keys: {unexpected}"
    extra = [k for k in missing if not k.startswith(head)]
    assert not extra, f"missing non-head keys: {extra}"
    own = model.state_dict()
    for k, v in sd.items():
        assert torch.equal(own[k], v), f"{k}: values changed on load"
    msg = f"{arch}: {len(sd)} tensors loaded, missing only {sorted(missing)}"
    if io_path:
        io = load_safetensors(io_path)
        if head == "fc.":
            model.fc = torch.nn.Identity()
        else:
            model.heads = torch.nn.Identity()
        model.eval()
        with torch.no_grad():
            y = model(io["input"])
        want = io["features"]
        err = (y - want).abs().max().item()
        scale = want.abs().max().item()
        assert y.shape == want.shape, f"features {tuple(y.shape)} vs {tuple(want.shape)}"
        assert err <= 1e-4 * max(scale, 1.0), f"features differ: max |diff| {err:.3g} (scale {scale:.3g})"
        msg += f"; eval features match (max |diff| {err:.2g}, scale {scale:.2g})"
    print(msg)


def main():
    groups, cur = [], []
    for a in sys.argv[1:] + ["--"]:
        if a == "--":
            if not 2 <= len(cur) <= 3:
                raise SystemExit(__doc__)
            groups.append(cur)
            cur = []
        else:
            cur.append(a)
    for g in groups:
        check(*g)


if __name__ == "__main__":
    main()
