"""The same ViT encoder exported twice, with torchvision's and with timm's names, is the same network.

usage: check_timm_export.py TV.safetensors TIMM.safetensors IMG PATCH LAYERS HEADS DIM CHANS

The torchvision file loads into torchvision's VisionTransformer (1-channel conv_proj), the timm file
with strict=True into a ViT written here after timm's VisionTransformer (module names and the qkv
reshape of timm/models/vision_transformer.py), and the two give the same CLS features on random
images. timm itself is not installed here, so the expected key set is spelled out from its naming.
"""
import sys

import torch
import torchvision

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/unit")
from check_export import load_safetensors  # noqa: E402


class Attention(torch.nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        a = (q @ k.transpose(-2, -1) * (C // self.heads) ** -0.5).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1 = torch.nn.Linear(dim, 4 * dim)
        self.fc2 = torch.nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(torch.nn.functional.gelu(self.fc1(x)))


class Block(torch.nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = torch.nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(torch.nn.Module):
    def __init__(self, chans, dim, patch):
        super().__init__()
        self.proj = torch.nn.Conv2d(chans, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimmViT(torch.nn.Module):
    def __init__(self, img, patch, layers, heads, dim, chans):
        super().__init__()
        self.patch_embed = PatchEmbed(chans, dim, patch)
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, (img // patch) ** 2 + 1, dim))
        self.blocks = torch.nn.Sequential(*[Block(dim, heads) for _ in range(layers)])
        self.norm = torch.nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        return self.norm(self.blocks(x))[:, 0]


def main():
    tv_path, timm_path = sys.argv[1:3]
    img, patch, layers, heads, dim, chans = (int(v) for v in sys.argv[3:9])
    tv, tm = load_safetensors(tv_path), load_safetensors(timm_path)
    want = {"patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed", "norm.weight", "norm.bias"}
    for i in range(layers):
        for m in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            want |= {f"blocks.{i}.{m}.weight", f"blocks.{i}.{m}.bias"}
    assert set(tm) == want, f"timm keys: missing {sorted(want - set(tm))}, extra {sorted(set(tm) - want)}"
    assert len(tv) == len(tm), f"{len(tv)} torchvision tensors, {len(tm)} timm"
    assert sorted(v.sum().item() for v in tv.values()) == sorted(v.sum().item() for v in tm.values()), \
        "the two files do not hold the same tensors"

    ref = torchvision.models.vision_transformer.VisionTransformer(
        image_size=img, patch_size=patch, num_layers=layers, num_heads=heads, hidden_dim=dim, mlp_dim=4 * dim)
    ref.conv_proj = torch.nn.Conv2d(chans, dim, patch, patch)
    missing, unexpected = ref.load_state_dict(tv, strict=False)
    assert not unexpected and all(k.startswith("heads.") for k in missing), (missing, unexpected)
    ref.heads = torch.nn.Identity()
    ours = TimmViT(img, patch, layers, heads, dim, chans)
    ours.load_state_dict(tm, strict=True)
    x = torch.randn(4, chans, img, img, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ref.eval()(x), ours.eval()(x)
    err = (a - b).abs().max().item()
    assert err <= 1e-4 * max(a.abs().max().item(), 1.0), f"CLS features differ by {err:.3g}"
    print(f"timm export: {len(tm)} tensors with timm's names, strict load, CLS features = torchvision's "
          f"(max |diff| {err:.2g})")


if __name__ == "__main__":
    main()
