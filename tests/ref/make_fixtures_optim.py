#!/usr/bin/python3
"""Optimizer fixture for tests/ref/test_ref_optim.c: 5 steps of SGD (plain, momentum, Nesterov),
AdamW, LARS and LAMB on a few small tensors with per-segment flags, fixed gradients and a per-step
lr / wd schedule. torch.optim.SGD and AdamW are used as they are; LARS (MoCo v3's moco/optimizer.py
logic) and LAMB (TF-Addons' formula) are written out below. Everything runs in float64 from
float32-representable inputs and hyper-parameters, so the fixture is the exact answer our float32
code approximates. Deterministic; rerun with /usr/bin/python3 (Debian's torch) from anywhere:
    /usr/bin/python3 tests/ref/make_fixtures_optim.py
Writes tests/ref/fixtures/optim.bin. Records (P = packed size of all segments, in SEGMENTS order):
    init (P), grad (STEPS, P), sched.lr (STEPS), sched.wd (STEPS),
    <opt>.lr (STEPS), <opt>.wd (STEPS), <opt>.param (STEPS, P) after each step,
    <opt>.m (P), <opt>.v (P): final optimizer state (zero at frozen positions).
"""
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixture_io import write_fixture  # noqa: E402

NO_WD, NO_ADAPT, FROZEN = 1, 2, 4  # SSL_SEG_* in framework/tensor/params.h

# (name, shape, flags, init) -- test_ref_optim.c declares the same table.
SEGMENTS = [
    ("w", (3, 5), 0, "uniform"),               # a weight: decayed and adapted
    ("b", (3,), NO_WD | NO_ADAPT, "uniform"),  # a bias: neither
    ("tok", (1, 4), NO_WD, "uniform"),         # a token: adapted, not decayed
    ("ln", (4,), NO_ADAPT, "uniform"),         # decayed, not adapted (LARS: neither; optim.h)
    ("zero", (2, 3), 0, "zero"),               # zero weight: the trust ratio falls back to 1
    ("frz", (3,), FROZEN, "uniform"),          # frozen: never touched (it still gets a gradient)
]
STEPS = 5

# Unit schedules (schedule.h): lr warmup 2 steps from 0 then cosine 1 -> 0.1 at step 5
# (0-based step, no +1); wd cosine 1 -> 0.5 over 5 steps. Each optimizer scales them.
LR_WARMUP, LR_TOTAL, LR_FINAL = 2, 5, 0.1
WD_START, WD_END = 1.0, 0.5


def f32(x):
    """Round a Python float to the nearest float32, so C and the reference use identical values."""
    return float(torch.tensor(x, dtype=torch.float32))


def sched_lr(step):
    if step < LR_WARMUP:
        return step / LR_WARMUP
    t = (step - LR_WARMUP) / (LR_TOTAL - LR_WARMUP)
    return LR_FINAL + 0.5 * (1.0 - LR_FINAL) * (1.0 + math.cos(math.pi * t))


def sched_wd(step):
    return WD_END + 0.5 * (WD_START - WD_END) * (1.0 + math.cos(math.pi * step / STEPS))


def make_data():
    gen = torch.Generator().manual_seed(20240611)
    init, grads = [], []
    for name, shape, flags, kind in SEGMENTS:
        if kind == "zero":
            init.append(torch.zeros(shape, dtype=torch.float32))
        else:
            init.append(torch.rand(shape, generator=gen, dtype=torch.float32) * 2 - 1)
        grads.append(torch.rand((STEPS,) + shape, generator=gen, dtype=torch.float32) * 2 - 1)
    return init, grads


def pack(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


# ---- reference optimizers (float64) --------------------------------------------------------------

def run_torch(opt_cls, kw, init, grads, lrs, wds, state_keys):
    """torch.optim.SGD / AdamW with a decayed group and a wd-0 group; frozen tensors not passed."""
    params = [t.double().clone().requires_grad_(not (fl & FROZEN))
              for t, (_, _, fl, _) in zip(init, SEGMENTS)]
    decay = [p for p, s in zip(params, SEGMENTS) if not s[2] & (FROZEN | NO_WD)]
    no_decay = [p for p, s in zip(params, SEGMENTS) if s[2] & NO_WD and not s[2] & FROZEN]
    opt = opt_cls([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=0.0, **kw)
    traj = []
    for k in range(STEPS):
        opt.param_groups[0]["lr"] = opt.param_groups[1]["lr"] = lrs[k]
        opt.param_groups[0]["weight_decay"] = wds[k]
        for p, g in zip(params, grads):
            p.grad = None if not p.requires_grad else g[k].double().clone()
        opt.step()
        traj.append(pack([p.detach() for p in params]))
    states = []
    for key in state_keys:
        states.append(pack([opt.state[p][key] if p in opt.state else torch.zeros_like(p)
                            for p in params]))
    return torch.stack(traj), states


def run_lars(init, grads, lrs, wds, momentum, eta):
    """MoCo v3 moco/optimizer.py LARS; its `p.ndim > 1` test becomes our flags."""
    params = [t.double().clone() for t in init]
    mus = [torch.zeros_like(p) for p in params]
    traj = []
    for k in range(STEPS):
        for p, g, mu, (_, _, fl, _) in zip(params, grads, mus, SEGMENTS):
            if fl & FROZEN:
                continue
            dp = g[k].double()
            if not fl & NO_ADAPT:
                if not fl & NO_WD:
                    dp = dp.add(p, alpha=wds[k])
                param_norm = torch.norm(p)
                update_norm = torch.norm(dp)
                one = torch.ones_like(param_norm)
                q = torch.where(param_norm > 0.,
                                torch.where(update_norm > 0, eta * param_norm / update_norm, one),
                                one)
                dp = dp.mul(q)
            mu.mul_(momentum).add_(dp)
            p.add_(mu, alpha=-lrs[k])
        traj.append(pack(params))
    return torch.stack(traj), [pack(mus)]


def run_lamb(init, grads, lrs, wds, b1, b2, eps):
    """TF-Addons LAMB (tensorflow_addons/optimizers/lamb.py), REFERENCE §6.1."""
    params = [t.double().clone() for t in init]
    ms = [torch.zeros_like(p) for p in params]
    vs = [torch.zeros_like(p) for p in params]
    traj = []
    for k in range(STEPS):
        t = k + 1
        for p, g, m, v, (_, _, fl, _) in zip(params, grads, ms, vs, SEGMENTS):
            if fl & FROZEN:
                continue
            gk = g[k].double()
            m.mul_(b1).add_(gk, alpha=1 - b1)
            v.mul_(b2).addcmul_(gk, gk, value=1 - b2)
            mhat = m / (1 - b1 ** t)
            vhat = v / (1 - b2 ** t)
            u = mhat / (vhat.sqrt() + eps)
            if not fl & NO_WD:
                u = u + wds[k] * p
            ratio = torch.ones((), dtype=torch.float64)
            if not fl & NO_ADAPT:
                w_norm, u_norm = torch.norm(p), torch.norm(u)
                ratio = torch.where(w_norm > 0, torch.where(u_norm > 0, w_norm / u_norm, ratio),
                                    ratio)
            p.sub_(lrs[k] * ratio * u)
        traj.append(pack(params))
    return torch.stack(traj), [pack(ms), pack(vs)]


def main():
    torch.set_default_dtype(torch.float64)
    init, grads = make_data()
    unit_lr = [sched_lr(k) for k in range(STEPS)]
    unit_wd = [sched_wd(k) for k in range(STEPS)]
    b1, b2 = f32(0.9), f32(0.999)
    records = [("init", pack(init)),
               ("grad", torch.stack([pack([g[k] for g in grads]) for k in range(STEPS)])),
               ("sched.lr", unit_lr), ("sched.wd", unit_wd)]

    # name: (base lr, base wd, runner(lrs, wds) -> (trajectory, [states]), state names)
    cases = {
        "sgd": (0.1, 0.05, lambda lr, wd: run_torch(
            torch.optim.SGD, dict(momentum=f32(0.9)), init, grads, lr, wd, ["momentum_buffer"]),
            ["m"]),
        "sgd_nesterov": (0.1, 0.05, lambda lr, wd: run_torch(
            torch.optim.SGD, dict(momentum=f32(0.9), nesterov=True), init, grads, lr, wd,
            ["momentum_buffer"]), ["m"]),
        "sgd_plain": (0.1, 0.05, lambda lr, wd: run_torch(
            torch.optim.SGD, dict(momentum=0.0), init, grads, lr, wd, []), []),
        "adamw": (0.05, 0.1, lambda lr, wd: run_torch(
            torch.optim.AdamW, dict(betas=(b1, b2), eps=f32(1e-8)), init, grads, lr, wd,
            ["exp_avg", "exp_avg_sq"]), ["m", "v"]),
        "lars": (1.0, 0.1, lambda lr, wd: run_lars(init, grads, lr, wd, f32(0.9), f32(0.02)),
                 ["m"]),
        "lamb": (0.05, 0.1, lambda lr, wd: run_lamb(init, grads, lr, wd, b1, b2, f32(1e-6)),
                 ["m", "v"]),
    }
    for name, (base_lr, base_wd, run, state_names) in cases.items():
        lrs = [f32(base_lr * x) for x in unit_lr]
        wds = [f32(base_wd * x) for x in unit_wd]
        traj, states = run(lrs, wds)
        records += [(name + ".lr", lrs), (name + ".wd", wds), (name + ".param", traj)]
        records += [(name + "." + s, t) for s, t in zip(state_names, states)]

    out = os.path.join(HERE, "fixtures", "optim.bin")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    write_fixture(out, records)
    print("wrote %s (%d bytes)" % (out, os.path.getsize(out)))


if __name__ == "__main__":
    main()
