#!/usr/bin/python3
"""The Fashion-MNIST recipes of MoCo v2, MoCo v3, BYOL, DINO and MAE (configs/fmnist_<method>.yaml) in
PyTorch, for side-by-side accuracy and speed with sslrun on the same machine.

Data (first 20k Fashion-MNIST training images), batch 128, the per-step schedule (linear warmup then cosine
to 0) and evaluation (kNN k=20/200 and the linear probe on eval-mode features of the whole training split)
are the SimCLR quickstart's (benchmarks/torch_fmnist_simclr.py, whose helpers this reuses). The methods,
written from their official code (REFERENCE §2-§5):
  moco_v2  (ResNet-18 w16, AdamW 2e-3, wd 1e-6, half a warmup epoch; SimCLR's augmentation, 2 views)
           projector Linear(128, 512)-ReLU-Linear(512, 128); key encoder EMA 0.99; a queue of 1024 keys;
           keys of the shuffled batch in 4 groups of 32 (shuffle-BN as SplitBatchNorm); InfoNCE
           [q.k, q.queue] / 0.1; enqueue after the loss
  moco_v3  (as moco_v2) projector and predictor _build_mlp (hidden 512, out 128); momentum 0.99 -> 1
           cosine over fractional epochs; ctr(q1, k2) + ctr(q2, k1), each CE(q k^T / 0.2) x 2 x 0.2
  byol     (as moco_v2) projector / predictor Linear(bias)-BN-ReLU-Linear (512 -> 128); target EMA
           0.99 -> 1 cosine over steps; (2 - 2cos(q1, z'2)) + (2 - 2cos(q2, z'1)); views separately
  dino     ResNet-18 w16; DINOHead 128 -> 512 -> 512 -> 128 (GELU, trunc_normal 0.02, zero biases), L2,
           weight_norm(Linear(128, 256, no bias)) with weight_g 1 and frozen, the last layer's gradient
           cancelled in epoch 0; 2 global crops (28 px, scale (0.4, 1)) (+ --local-crops N of 12 px, scale
           (0.1, 0.4): the recipe's first version had 4),
           flip, ColorJitter(0.4, 0.4) p 0.8, one encoder pass per resolution, the head once over all
           crops; teacher = the whole student, EMA 0.99 -> 1 cosine per step after the optimizer step,
           global crops only; loss over the 2 x 6 - 2 (teacher, other student crop) pairs, student temp
           0.1, teacher temp 0.04 -> 0.07 (linspace over 3 epochs, per epoch), centre momentum 0.9;
           AdamW 2.5e-4, 1 warmup epoch, wd 0.04 -> 0.4 cosine per step on weights only (no wd on biases
           and 1-D tensors), per-tensor gradient clipping 3.0
  mae      ViT-Tiny (192 wide, 12 pre-norm blocks, 3 heads, MLP 4x GELU, LN eps 1e-6) at 28 px in 4 px
           patches, CLS token, fixed 2-D sin-cos positions; random masking 0.75 (12 of 49 patches seen);
           decoder Linear(192, 128), mask token, sin-cos positions, 2 blocks x 128 x 4 heads, LN,
           Linear(128, 16); norm-pix MSE on the removed patches; AdamW betas (0.9, 0.95) wd 0.05 (none
           on biases, 1-D tensors and the CLS token, as sslrun), blr 2e-3 x 128/256 = 1e-3, 1 warmup
           epoch; RandomResizedCrop(28, scale (0.2, 1)) + flip, one view
  /usr/bin/python3 benchmarks/torch_fmnist_methods.py --method byol --threads 2
"""
import argparse
import copy
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "ref"))
from make_fixtures_models import WidthResNet  # noqa: E402
from torch_fmnist_simclr import augment, features, idx, knn, linear_probe  # noqa: E402

NORM = T.Normalize((0.2860,), (0.3530,))  # the dataset's mean / std, sslrun's default for fmnist


def resnet18_w16():
    enc = WidthResNet(BasicBlock, [2, 2, 2, 2], 16, 1, 10, True)
    enc.fc = nn.Identity()
    for mod in enc.modules():  # torchvision ResNet's init, as sslrun
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
    return enc


def build_mlp(layers, inp, hidden, out, last_bn=True):
    """moco-v3's _build_mlp: Linear(no bias)-BN-ReLU per hidden layer, BN(affine=False) last if asked."""
    mods = []
    for i in range(layers):
        d1, d2 = inp if i == 0 else hidden, out if i == layers - 1 else hidden
        mods.append(nn.Linear(d1, d2, bias=False))
        if i < layers - 1:
            mods += [nn.BatchNorm1d(d2), nn.ReLU()]
        elif last_bn:
            mods.append(nn.BatchNorm1d(d2, affine=False))
    return nn.Sequential(*mods)


def byol_mlp(inp, hidden, out):
    return nn.Sequential(nn.Linear(inp, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out, bias=False))


def ema(target, online, m):
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters()):
            t.mul_(m).add_((1 - m) * o)


def ema_momentum(m0, step, total):
    """1 - (1 - m0) (cos(pi t / T) + 1) / 2: BYOL's and DINO's cosine from m0 to 1."""
    return 1 - (1 - m0) * (math.cos(math.pi * step / total) + 1) / 2


def decay_groups(named, no_wd=lambda name, p: False):
    """AdamW groups [decayed, not]: biases and 1-D tensors (BN / LN affine) get no weight decay (DINO's
    get_params_groups, timm's add_weight_decay); frozen tensors are left out."""
    yes, no = [], []
    for name, p in named:
        if p.requires_grad:
            (no if name.endswith(".bias") or p.ndim <= 1 or no_wd(name, p) else yes).append(p)
    return [{"params": yes}, {"params": no, "weight_decay": 0.0}]


class Recipe:
    """One method: its models, AdamW, loss of a batch, and the hooks around the optimizer step; the
    training loop, schedule and evaluation in main() are shared. enc: the encoder that is evaluated."""
    lr = 2e-3         # AdamW peak lr (at batch 128)
    warmup = 0.5      # warmup epochs
    wd = (1e-6, None)  # weight decay: start, cosine end (None: constant)

    def __init__(self, args):
        self.args, self.aug_s = args, 0.0

    def views(self, b, tf):
        ta = time.perf_counter()
        v = augment(b, tf)
        self.aug_s += time.perf_counter() - ta
        return v

    def on_epoch(self, ep):
        pass

    def before_step(self, ep):
        pass

    def after_step(self, step, total, spe):
        pass


class Siamese(Recipe):
    """MoCo v2, MoCo v3 and BYOL: two views, an EMA copy of encoder + projector (SimCLR's augmentation)."""

    def __init__(self, args):
        super().__init__(args)
        m = self.m = args.method
        self.enc = resnet18_w16()
        if m == "moco_v2":
            proj = nn.Sequential(nn.Linear(128, 512), nn.ReLU(), nn.Linear(512, 128))
            self.pred = nn.Identity()
            self.queue = F.normalize(torch.randn(1024, 128), dim=1)
            self.ptr = 0
        elif m == "moco_v3":
            proj, self.pred = build_mlp(2, 128, 512, 128), build_mlp(2, 128, 512, 128, last_bn=False)
        else:
            proj, self.pred = byol_mlp(128, 512, 128), byol_mlp(128, 512, 128)
        self.online = nn.Sequential(self.enc, proj)
        self.target = copy.deepcopy(self.online)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.tf = T.Compose([T.RandomResizedCrop(28, scale=(0.3, 1.0), antialias=False), T.RandomHorizontalFlip(),
                             T.RandomApply([T.ColorJitter(1.0, 1.0, 0.0, 0.0)], p=0.8), NORM])
        self.opt = torch.optim.AdamW(list(self.online.parameters()) + list(self.pred.parameters()), lr=args.lr,
                                     weight_decay=self.wd[0])

    def loss(self, b, step, ep):
        m, online, target, pred, bs = self.m, self.online, self.target, self.pred, len(b)
        x1, x2 = self.views(b, self.tf), self.views(b, self.tf)
        if m == "moco_v2":
            q = F.normalize(online(x1), dim=1)
            with torch.no_grad():  # shuffle-BN in 4 groups (moco_v2.shuffle_bn_groups, SplitBatchNorm)
                shuf = torch.randperm(bs)
                k = torch.cat([target(g) for g in x2[shuf].chunk(4)])[torch.argsort(shuf)]
                k = F.normalize(k, dim=1)
            logits = torch.cat([(q * k).sum(1, keepdim=True), q @ self.queue.clone().t()], dim=1) / 0.1
            loss = F.cross_entropy(logits, torch.zeros(bs, dtype=torch.long))
            for i in range(bs):
                self.queue[(self.ptr + i) % len(self.queue)] = k[i]
            self.ptr = (self.ptr + bs) % len(self.queue)
            return loss
        q1, q2 = pred(online(x1)), pred(online(x2))
        with torch.no_grad():
            t1, t2 = target(x1), target(x2)
        if m == "moco_v3":
            def ctr(a, c):
                a, c = F.normalize(a, dim=1), F.normalize(c, dim=1)
                return F.cross_entropy(a @ c.t() / 0.2, torch.arange(bs)) * 2 * 0.2
            return ctr(q1, t2) + ctr(q2, t1)

        def reg(a, c):
            return 2 - 2 * (F.normalize(a, dim=1) * F.normalize(c, dim=1)).sum(1)
        return (reg(q1, t2) + reg(q2, t1)).mean()

    def after_step(self, step, total, spe):
        if self.m == "moco_v2":
            ema(self.target, self.online, 0.99)
        elif self.m == "moco_v3":  # the next step's fractional epoch
            ema(self.target, self.online,
                1 - 0.5 * (1 + math.cos(math.pi * (step + 1) / spe / self.args.epochs)) * 0.01)
        else:
            ema(self.target, self.online, ema_momentum(0.99, step, total))


class DINOHead(nn.Module):
    """DINOHead(nlayers 3, use_bn False, norm_last_layer True): MLP with GELU -> L2 -> weight_norm(Linear)."""

    def __init__(self, inp, out, hidden, bottleneck):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(inp, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        for mod in self.mlp:
            if isinstance(mod, nn.Linear):
                nn.init.trunc_normal_(mod.weight, std=0.02)
                nn.init.zeros_(mod.bias)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, out, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))


class DINONet(nn.Module):
    """MultiCropWrapper: one backbone pass per resolution (BN statistics per group), the head once."""

    def __init__(self):
        super().__init__()
        self.backbone, self.head = resnet18_w16(), DINOHead(128, DINO.prototypes, 512, 128)

    def forward(self, groups):
        return self.head(torch.cat([self.backbone(g) for g in groups]))


class DINO(Recipe):
    lr, warmup, wd = 2.5e-4, 1.0, (0.04, 0.4)
    prototypes, freeze_last_layer = 256, 1
    temps = (0.04, 0.07, 3)  # warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs

    def __init__(self, args):
        super().__init__(args)
        self.student, self.teacher = DINONet(), DINONet()
        self.teacher.load_state_dict(self.student.state_dict())  # main_dino.py: teacher := student
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.enc = self.student.backbone
        self.local_crops = args.local_crops
        self.center = torch.zeros(1, self.prototypes)
        jitter = T.RandomApply([T.ColorJitter(0.4, 0.4, 0.0, 0.0)], p=0.8)
        # local crops' GaussianBlur (p 0.5) is left out: SimCLR's kernel 2 * ((12 // 10) // 2) + 1 = 1 tap
        # at 12 px is the identity, in sslrun too; the global crops have none (augment.blur_p 0)
        self.tf_g = T.Compose([T.RandomResizedCrop(28, scale=(0.4, 1.0), antialias=False),
                               T.RandomHorizontalFlip(), jitter, NORM])
        self.tf_l = T.Compose([T.RandomResizedCrop(12, scale=(0.1, 0.4), antialias=False),
                               T.RandomHorizontalFlip(), jitter, NORM])
        self.opt = torch.optim.AdamW(decay_groups(self.student.named_parameters()), lr=args.lr,
                                     weight_decay=self.wd[0])

    def loss(self, b, step, ep):
        g = torch.cat([self.views(b, self.tf_g) for _ in range(2)])
        loc = [torch.cat([self.views(b, self.tf_l) for _ in range(self.local_crops)])] if self.local_crops else []
        s = self.student([g] + loc) / 0.1
        with torch.no_grad():
            t = self.teacher([g])
        w, f, E = self.temps
        temp = w + (f - w) * ep / (E - 1) if ep < E else f  # np.linspace(w, f, E)[ep], then f
        q = F.softmax((t - self.center) / temp, dim=-1).chunk(2)
        terms = []
        for iq, qq in enumerate(q):
            for v, sv in enumerate(s.chunk(2 + self.local_crops)):
                if v != iq:
                    terms.append(torch.sum(-qq * F.log_softmax(sv, dim=-1), dim=-1).mean())
        self.t = t
        return sum(terms) / len(terms)

    def before_step(self, ep):
        for p in self.student.parameters():  # utils.clip_gradients: per tensor
            if p.grad is not None:
                coef = 3.0 / (p.grad.norm() + 1e-6)
                if coef < 1:
                    p.grad.mul_(coef)
        if ep < self.freeze_last_layer:  # cancel_gradients_last_layer: AdamW skips it, wd included
            for p in self.student.head.last_layer.parameters():
                p.grad = None

    def after_step(self, step, total, spe):
        with torch.no_grad():
            self.center.mul_(0.9).add_(0.1 * self.t.mean(0, keepdim=True))
        ema(self.teacher, self.student, ema_momentum(0.99, step, total))


def sincos_2d(grid, dim):
    """MAE's get_2d_sincos_pos_embed(dim, grid, cls_token=True): (1, 1 + grid^2, dim), [sin x, cos x,
    sin y, cos y] with omega_k = 1 / 10000^(k / (dim / 4)), x the column; the CLS row zeros."""
    q = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(q, dtype=torch.float64) / q)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    x, y = xs.reshape(-1, 1) * omega, ys.reshape(-1, 1) * omega
    emb = torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], dim=1).float()
    return torch.cat([torch.zeros(1, dim), emb]).unsqueeze(0)


def vit_block(dim, heads):
    """Pre-norm ViT block: x + MHSA(LN(x)), x + MLP(LN(x)) with GELU, MLP ratio 4, no dropout."""
    blk = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", layer_norm_eps=1e-6,
                                     batch_first=True, norm_first=True)
    for lin in (blk.linear1, blk.linear2):  # sslrun's (torchvision ViT MLPBlock's family) init
        nn.init.trunc_normal_(lin.weight, std=0.02)
        nn.init.zeros_(lin.bias)
    return blk


class ViT(nn.Module):
    """ViT with a CLS token and fixed sin-cos positions; forward: the CLS output after the final LN."""

    def __init__(self, img=28, patch=4, dim=192, depth=12, heads=3, chans=1):
        super().__init__()
        self.conv_proj = nn.Conv2d(chans, dim, patch, patch)
        nn.init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1 / (chans * patch * patch)))
        nn.init.zeros_(self.conv_proj.bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_2d(img // patch, dim))  # fixed (requires_grad False)
        self.blocks = nn.Sequential(*[vit_block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def tokens(self, x, keep=None):
        """(N, 1 + k, dim): positions added before masking, then the kept patches, CLS prepended."""
        t = self.conv_proj(x).flatten(2).transpose(1, 2) + self.pos_embed[:, 1:]
        if keep is not None:
            t = torch.gather(t, 1, keep.unsqueeze(-1).expand(-1, -1, t.shape[2]))
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(len(t), -1, -1)
        return self.norm(self.blocks(torch.cat([cls, t], dim=1)))

    def forward(self, x):
        return self.tokens(x)[:, 0]


class MAEDecoder(nn.Module):
    def __init__(self, enc_dim, dim, depth, heads, grid, patch, chans=1):
        super().__init__()
        self.decoder_embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.register_buffer("decoder_pos_embed", sincos_2d(grid, dim))
        self.decoder_blocks = nn.Sequential(*[vit_block(dim, heads) for _ in range(depth)])
        self.decoder_norm = nn.LayerNorm(dim, eps=1e-6)
        self.decoder_pred = nn.Linear(dim, patch * patch * chans)
        for lin in (self.decoder_embed, self.decoder_pred):  # MAE's _init_weights
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, lat, ids_restore):
        x = self.decoder_embed(lat)
        n, L = ids_restore.shape
        body = torch.cat([x[:, 1:], self.mask_token.expand(n, L + 1 - x.shape[1], -1)], dim=1)
        body = torch.gather(body, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # unshuffle
        x = torch.cat([x[:, :1], body], dim=1) + self.decoder_pos_embed
        return self.decoder_pred(self.decoder_norm(self.decoder_blocks(x)))[:, 1:]


def patchify(imgs, p):
    """(N, C, H, W) -> (N, L, p*p*C) in MAE's (i, j, c) order."""
    n, c, h, w = imgs.shape
    x = imgs.reshape(n, c, h // p, p, w // p, p)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(n, (h // p) * (w // p), p * p * c)


class MAE(Recipe):
    lr, warmup, wd = 2e-3 * 128 / 256, 1.0, (0.05, None)  # optim.lr 2e-3, lr_scaling linear
    patch, mask_ratio = 4, 0.75

    def __init__(self, args):
        super().__init__(args)
        self.enc = ViT(28, self.patch, 192, 12, 3)
        self.dec = MAEDecoder(192, 128, 2, 4, 28 // self.patch, self.patch)
        self.tf = T.Compose([T.RandomResizedCrop(28, scale=(0.2, 1.0), antialias=False),
                             T.RandomHorizontalFlip(), NORM])
        named = list(self.enc.named_parameters()) + list(self.dec.named_parameters())
        self.opt = torch.optim.AdamW(decay_groups(named, lambda name, p: name == "cls_token"), lr=args.lr,
                                     betas=(0.9, 0.95), weight_decay=self.wd[0])

    def loss(self, b, step, ep):
        x = self.views(b, self.tf)
        n, L = len(x), (28 // self.patch) ** 2
        keep = int(L * (1 - self.mask_ratio))
        shuffle = torch.rand(n, L).argsort(dim=1)  # ascending noise: small is kept
        restore = shuffle.argsort(dim=1)
        mask = torch.ones(n, L)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, restore)  # 1 = removed
        pred = self.dec(self.enc.tokens(x, shuffle[:, :keep]), restore)
        target = patchify(x, self.patch)
        mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)  # norm_pix_loss
        target = (target - mean) / (var + 1e-6) ** 0.5
        return (((pred - target) ** 2).mean(dim=-1) * mask).sum() / mask.sum()


RECIPES = {"moco_v2": Siamese, "moco_v3": Siamese, "byol": Siamese, "dino": DINO, "mae": MAE}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", choices=list(RECIPES), required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--limit", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--max-steps", type=int, default=0,
                    help="speed runs: stop after this many steps, print the steady img/s, skip evaluation")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=None, help="AdamW peak lr (default: the recipe's at batch 128)")
    ap.add_argument("--local-crops", type=int, default=0, help="DINO: local crops of 12 px (dino.local_crops)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--random-init", action="store_true")
    ap.add_argument("--no-eval", action="store_true", help="train only (speed runs)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cls = RECIPES[args.method]
    if args.lr is None:
        args.lr = cls.lr
    xall, yall = idx("train-images-idx3-ubyte.gz", True), idx("train-labels-idx1-ubyte.gz", False)
    xtr = xall[:args.limit]
    xte, yte = idx("t10k-images-idx3-ubyte.gz", True), idx("t10k-labels-idx1-ubyte.gz", False)
    r = cls(args)
    m, opt = args.method, r.opt
    bs = args.batch
    spe = len(xtr) // bs
    total, warm = args.epochs * spe, max(1, int(r.warmup * spe))
    wd0, wd1 = r.wd
    step, t0, t10 = 0, time.perf_counter(), None
    for ep in range(0 if args.random_init else args.epochs):
        perm = torch.randperm(len(xtr))
        for it in range(spe):
            if step == args.max_steps > 0:
                break
            cos = 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))
            lr = args.lr * step / warm if step < warm else args.lr * cos
            for g in opt.param_groups:
                g["lr"] = lr
            if wd1 is not None:  # cosine over the steps, the decayed group only
                opt.param_groups[0]["weight_decay"] = wd1 + 0.5 * (wd0 - wd1) * (1 + math.cos(math.pi * step / total))
            b = xtr[perm[it * bs:(it + 1) * bs]].float().unsqueeze(1) / 255
            loss = r.loss(b, step, ep)
            opt.zero_grad()
            loss.backward()
            r.before_step(ep)
            opt.step()
            r.after_step(step, total, spe)
            step += 1
            if step == 10:  # steady state: the first steps warm up allocators and kernel choices
                t10 = time.perf_counter()
            if step % 20 == 0:
                el = time.perf_counter() - t0
                print(f"epoch {ep + 1} step {step}/{total} loss {loss.item():.4f} lr {lr:.2e} "
                      f"{step * bs / el:.1f} img/s (augmentation {100 * r.aug_s / el:.0f}% of time)", flush=True)
    train_s = time.perf_counter() - t0
    if args.max_steps:
        print(f"steady {(step - 10) * bs / (time.perf_counter() - t10):.1f} img/s over steps 10-{step} "
              f"({torch.get_num_threads()} threads)")
        return
    if step:
        print(f"train {train_s:.0f} s, {step * bs / train_s:.1f} img/s")
    if args.no_eval:
        return
    enc = r.enc
    tr, te = features(enc, xall), features(enc, xte)
    k20, k200 = knn(tr, yall, te, yte, 20), knn(tr, yall, te, yte, 200)
    lin = linear_probe(tr, yall, te, yte)
    what = "random init" if args.random_init else f"{args.epochs} epochs"
    print(f"PyTorch {torch.__version__} {m} fmnist ({what}): kNN k=20 {k20:.2f}% k=200 {k200:.2f}% linear {lin:.2f}%")


if __name__ == "__main__":
    main()
