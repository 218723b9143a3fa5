#!/usr/bin/python3
"""Fixture for tests/ref/test_ref_mae.c: one MAE training step in PyTorch, written from the paper and
the semantics of the official models_mae.py / util/pos_embed.py (REFERENCE §5.1-5.4), independently of
sslrun.

A tiny MAE: 3 images of 3 x 16 x 16, patch 4 (L = 16 patches of 48 values), encoder 32 wide, 2 blocks,
2 heads; decoder 24 wide, 1 block, 2 heads; mask ratio 0.75 (4 patches kept). Steps:
  random_masking with the stored noise (argsort, argsort, keep the first len_keep, mask gathered back);
  encoder: conv patch embedding, + fixed sin-cos positions (without the CLS row), keep the visible
  tokens, prepend CLS + its position, pre-norm blocks, LN;
  decoder: embed, append mask tokens, unshuffle with ids_restore, + fixed sin-cos positions, blocks, LN,
  predict, drop CLS;
  loss: patchify (nchpwq -> nhwpqc), norm_pix target ((x - mean) / (var + 1e-6)^0.5, unbiased var),
  mean over the patch of the squared error, averaged over the masked patches.
Parameters are drawn at random (non-zero biases, tokens and LN affine, so every gradient path counts),
stored in fp32, and the step runs in float64 from those values, so the fixture is the exact answer
for the test's inputs. Names are sslrun's plan names: the encoder's follow torchvision's ViT
(conv_proj, class_token, encoder.pos_embedding, encoder.layers.encoder_layer_<i>.{ln_1, self_attention,
ln_2, mlp.0, mlp.3}, encoder.ln), the decoder's MAE's (decoder_embed, mask_token, decoder_pos_embed,
decoder_blocks.<i>.<same block names>, decoder_norm, decoder_pred). A timm block's norm1 / attn.qkv /
attn.proj / norm2 / mlp.fc1 / mlp.fc2 is ln_1 / self_attention.in_proj / self_attention.out_proj / ln_2 /
mlp.0 / mlp.3 there: the same packed [q; k; v] rows, heads side by side.
Records: param/<name> (frozen positions included), grad/<name> (trainable only), imgs, noise,
ids_restore, mask, latent (encoder tokens), pred, target (raw patchify), loss and dpred with and
without norm_pix (the gradients are those of the norm_pix loss, MAE's recipe), and the sizes.
Run: /usr/bin/python3 tests/ref/make_fixtures_mae.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402

N, C, IMG, P = 3, 3, 16, 4
ENC_D, ENC_DEPTH, ENC_HEADS = 32, 2, 2
DEC_D, DEC_DEPTH, DEC_HEADS = 24, 1, 2
MASK_RATIO = 0.75
G = IMG // P
L = G * G
EPS = 1e-6
DT = torch.float64


def sincos_pos_embed(dim, grid):
    """(1, 1 + grid^2, dim): a zero CLS row, then per patch (row-major) the 1-D embedding [sin | cos] of
    its column on the first half of the dims and of its row on the second (MAE's meshgrid(w, h) puts
    the column first); frequencies 1 / 10000^(k / (dim/4)), k < dim/4."""
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=DT), torch.arange(grid, dtype=DT), indexing="ij")

    def axis(pos):
        omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=DT) / (dim / 4))
        out = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    emb = torch.cat([axis(cols), axis(rows)], dim=1)
    return torch.cat([torch.zeros(1, dim, dtype=DT), emb], dim=0).unsqueeze(0)


def block_params(prefix, dim, gen):
    def w(out, inp):
        return (torch.rand(out, inp, generator=gen) * 2 - 1) * (3.0 / inp) ** 0.5

    def small(*shape):
        return 0.1 * torch.randn(*shape, generator=gen)

    return {
        prefix + ".ln_1.weight": 1 + small(dim), prefix + ".ln_1.bias": small(dim),
        prefix + ".self_attention.in_proj_weight": w(3 * dim, dim),
        prefix + ".self_attention.in_proj_bias": small(3 * dim),
        prefix + ".self_attention.out_proj.weight": w(dim, dim),
        prefix + ".self_attention.out_proj.bias": small(dim),
        prefix + ".ln_2.weight": 1 + small(dim), prefix + ".ln_2.bias": small(dim),
        prefix + ".mlp.0.weight": w(4 * dim, dim), prefix + ".mlp.0.bias": small(4 * dim),
        prefix + ".mlp.3.weight": w(dim, 4 * dim), prefix + ".mlp.3.bias": small(dim),
    }


def make_params(gen):
    """fp32 values of every tensor, the frozen positions included."""
    fp = P * P * C
    prm = {
        "conv_proj.weight": (torch.rand(ENC_D, C, P, P, generator=gen) * 2 - 1) * (3.0 / fp) ** 0.5,
        "conv_proj.bias": 0.1 * torch.randn(ENC_D, generator=gen),
        "class_token": 0.1 * torch.randn(1, 1, ENC_D, generator=gen),
        "encoder.pos_embedding": sincos_pos_embed(ENC_D, G).float(),
        "encoder.ln.weight": 1 + 0.1 * torch.randn(ENC_D, generator=gen),
        "encoder.ln.bias": 0.1 * torch.randn(ENC_D, generator=gen),
        "decoder_embed.weight": (torch.rand(DEC_D, ENC_D, generator=gen) * 2 - 1) * (3.0 / ENC_D) ** 0.5,
        "decoder_embed.bias": 0.1 * torch.randn(DEC_D, generator=gen),
        "mask_token": 0.1 * torch.randn(1, 1, DEC_D, generator=gen),
        "decoder_pos_embed": sincos_pos_embed(DEC_D, G).float(),
        "decoder_norm.weight": 1 + 0.1 * torch.randn(DEC_D, generator=gen),
        "decoder_norm.bias": 0.1 * torch.randn(DEC_D, generator=gen),
        "decoder_pred.weight": (torch.rand(fp, DEC_D, generator=gen) * 2 - 1) * (3.0 / DEC_D) ** 0.5,
        "decoder_pred.bias": 0.1 * torch.randn(fp, generator=gen),
    }
    for i in range(ENC_DEPTH):
        prm.update(block_params(f"encoder.layers.encoder_layer_{i}", ENC_D, gen))
    for i in range(DEC_DEPTH):
        prm.update(block_params(f"decoder_blocks.{i}", DEC_D, gen))
    return {k: v.float() for k, v in prm.items()}


FROZEN = ("encoder.pos_embedding", "decoder_pos_embed")


def attention(x, prm, pre, heads):
    b, t, d = x.shape
    qkv = F.linear(x, prm[pre + ".in_proj_weight"], prm[pre + ".in_proj_bias"])
    q, k, v = qkv.reshape(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    a = torch.softmax(q @ k.transpose(-2, -1) * (d // heads) ** -0.5, dim=-1)
    o = (a @ v).transpose(1, 2).reshape(b, t, d)
    return F.linear(o, prm[pre + ".out_proj.weight"], prm[pre + ".out_proj.bias"])


def layer_norm(x, prm, pre):
    return F.layer_norm(x, x.shape[-1:], prm[pre + ".weight"], prm[pre + ".bias"], eps=1e-6)


def block(x, prm, pre, heads):
    x = x + attention(layer_norm(x, prm, pre + ".ln_1"), prm, pre + ".self_attention", heads)
    h = F.gelu(F.linear(layer_norm(x, prm, pre + ".ln_2"), prm[pre + ".mlp.0.weight"], prm[pre + ".mlp.0.bias"]))
    return x + F.linear(h, prm[pre + ".mlp.3.weight"], prm[pre + ".mlp.3.bias"])


def random_masking(x, noise, keep):
    n, l, d = x.shape
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :keep]
    visible = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(n, keep, d))
    mask = torch.ones(n, l, dtype=x.dtype)
    mask[:, :keep] = 0
    return visible, torch.gather(mask, 1, ids_restore), ids_restore


def encoder(imgs, noise, keep, prm):
    x = F.conv2d(imgs, prm["conv_proj.weight"], prm["conv_proj.bias"], stride=P).flatten(2).transpose(1, 2)
    pos = prm["encoder.pos_embedding"]
    x = x + pos[:, 1:]
    x, mask, ids_restore = random_masking(x, noise, keep)
    cls = (prm["class_token"] + pos[:, :1]).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1)
    for i in range(ENC_DEPTH):
        x = block(x, prm, f"encoder.layers.encoder_layer_{i}", ENC_HEADS)
    return layer_norm(x, prm, "encoder.ln"), mask, ids_restore


def decoder(x, ids_restore, prm):
    x = F.linear(x, prm["decoder_embed.weight"], prm["decoder_embed.bias"])
    n, d = x.shape[0], x.shape[2]
    masked = prm["mask_token"].expand(n, L + 1 - x.shape[1], d)
    rest = torch.cat([x[:, 1:], masked], dim=1)
    rest = torch.gather(rest, 1, ids_restore.unsqueeze(-1).expand(n, L, d))
    x = torch.cat([x[:, :1], rest], dim=1) + prm["decoder_pos_embed"]
    for i in range(DEC_DEPTH):
        x = block(x, prm, f"decoder_blocks.{i}", DEC_HEADS)
    x = layer_norm(x, prm, "decoder_norm")
    return F.linear(x, prm["decoder_pred.weight"], prm["decoder_pred.bias"])[:, 1:]


def patchify(imgs):
    n, c, h, w = imgs.shape[0], imgs.shape[1], imgs.shape[2] // P, imgs.shape[3] // P
    x = imgs.reshape(n, c, h, P, w, P)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(n, h * w, P * P * c)


def mae_loss(imgs, pred, mask, norm_pix):
    target = patchify(imgs)
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + EPS) ** 0.5
    loss = ((pred - target) ** 2).mean(dim=-1)
    return (loss * mask).sum() / mask.sum()


def main():
    gen = torch.Generator().manual_seed(31)
    prm32 = make_params(gen)
    imgs = torch.randn(N, C, IMG, IMG, generator=gen)
    noise = torch.rand(N, L, generator=gen)
    keep = int(L * (1 - MASK_RATIO))
    prm = {k: v.to(DT).requires_grad_(k not in FROZEN) for k, v in prm32.items()}

    latent, mask, ids_restore = encoder(imgs.to(DT), noise, keep, prm)
    pred = decoder(latent, ids_restore, prm)
    recs = [("imgs", imgs), ("noise", noise), ("ids_restore", ids_restore.float()), ("mask", mask),
            ("latent", latent), ("pred", pred), ("target", patchify(imgs)), ("keep", [keep]),
            ("sizes", [N, C, IMG, P, ENC_D, ENC_DEPTH, ENC_HEADS, DEC_D, DEC_DEPTH, DEC_HEADS]),
            ("mask_ratio", [MASK_RATIO])]
    for tag, norm_pix in (("raw", False), ("norm", True)):
        p = pred.detach().requires_grad_()
        loss = mae_loss(imgs.to(DT), p, mask, norm_pix)
        loss.backward()
        recs += [(tag + "/loss", [loss.item()]), (tag + "/dpred", p.grad)]
        print(f"mae {tag}: loss {loss.item():.6f}")
    mae_loss(imgs.to(DT), pred, mask, True).backward()
    recs += [("param/" + k, v) for k, v in prm32.items()]
    recs += [("grad/" + k, v.grad) for k, v in prm.items() if k not in FROZEN]
    write_fixture(os.path.join(os.path.dirname(__file__), "fixtures", "mae_step.bin"), recs)


if __name__ == "__main__":
    main()
