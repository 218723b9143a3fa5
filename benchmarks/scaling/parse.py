#!/usr/bin/python3
"""Parsers for the scaling benchmarks (standard library + numpy).

  parse.py sweep DIR [--warmup W] [--cpu MODEL]   DIR/runs/* (sweep.sh) -> DIR/sweep.csv
  parse.py comm LOG [LOG ...] --out comm_fit.csv  bench_comm tables -> alpha-beta fit per collective
                                                  (several tables at one P: per-size minimum time)

sweep.csv columns: mode, ranks, batch_per_rank, global_batch, img_s, step_ms, compute_ms, comm_ms,
efficiency, plus the breakdown (max over ranks: data_ms, forward_ms, backward_ms, method_ms,
instep_comm_ms, grad_allreduce_ms, optimizer_ms, breakdown_total_ms), steps_used, repeats, spread ((slowest - fastest) / fastest
median step over the repeats; the fastest repeat is the one reported), others (the most
other normal-priority running processes seen in a one-second sample while the run ran) and cpu.
img_s = global batch / median step_s of the steps after the first W (metrics.jsonl).
step_ms = that median; comm_ms = in-step comm + grad allreduce (rank max, from the breakdown, ms per
step); compute_ms = step_ms - comm_ms. efficiency = img_s(P) / (P * img_s(1)) with img_s(1) from the
np=1 point of the same per-rank batch (weak) or the same global batch (strong).

comm fit: bench_comm prints per-rank buffer bytes S (allgather: the send block; reduce-scatter: the
full input) and the time in us. With n the bytes each collective moves in total per rank's view
(allreduce and reduce-scatter: n = S; allgather: n = P*S), the ring model is
  allreduce:                 t = 2(P-1) alpha + 2(P-1)/P n beta
  allgather, reduce-scatter: t =  (P-1) alpha +  (P-1)/P n beta
fitted by least squares of t against [k_a, k_b n]; GB/s = 1 / beta (the bus bandwidth the fit sees).
"""
import csv
import glob
import json
import os
import re
import sys

import numpy as np


def median_step(metrics, warmup):
    st = []
    for line in open(metrics):
        d = json.loads(line)
        if "step" in d and "step_s" in d:
            st.append(d["step_s"])
    use = st[warmup:] if len(st) > warmup + 2 else st[len(st) // 2:]
    return float(np.median(use)), len(use)


def breakdown(stdout):
    rows, on = [], False
    for line in open(stdout):
        if line.startswith("step breakdown"):
            on = True
            continue
        if on:
            f = line.split()
            if f and f[0] == "rank":
                continue
            if len(f) == 10 and re.fullmatch(r"\d+", f[0]):
                rows.append([float(x) for x in f[1:]])
            else:
                break
    if not rows:
        raise SystemExit("no step breakdown in %s" % stdout)
    return np.array(rows)  # data fwd bwd method instep grad optim total comm%


def sweep(out, warmup, cpu):
    points = [l.split() for l in open(os.path.join(out, "points.txt")) if l.strip()]
    res = []
    for m, p, b, g in points:
        p, b, g = int(p), int(b), int(g)
        cand = []
        for d in sorted(glob.glob(os.path.join(out, "runs", "np%d-gb%d-r*" % (p, g)))):
            if os.path.exists(os.path.join(d, "done")):
                cand.append((median_step(os.path.join(d, "metrics.jsonl"), warmup), d))
        if not cand:
            raise SystemExit("no finished run for np=%d global batch %d in %s/runs" % (p, g, out))
        (med, n), d = min(cand)
        reps = [c[0][0] for c in cand]
        bd = breakdown(os.path.join(d, "stdout.txt"))
        mx = bd.max(axis=0)
        comm = 1.0 * (bd[:, 4] + bd[:, 5]).max()
        oth = 0
        if os.path.exists(os.path.join(d, "others.txt")):
            v = [int(x) for x in open(os.path.join(d, "others.txt")).read().split() if x.isdigit()]
            oth = max(v) if v else 0
        step_ms = 1e3 * med
        res.append(dict(mode=m, ranks=p, batch_per_rank=b, global_batch=g, img_s=g / med, step_ms=step_ms,
                        compute_ms=step_ms - comm, comm_ms=comm, data_ms=mx[0], forward_ms=mx[1],
                        backward_ms=mx[2], method_ms=mx[3], instep_comm_ms=mx[4], grad_allreduce_ms=mx[5],
                        optimizer_ms=mx[6], breakdown_total_ms=mx[7], steps_used=n, others=oth, repeats=len(cand),
                        spread=(max(reps) - min(reps)) / min(reps), cpu=cpu))
    for r in res:
        key = "batch_per_rank" if r["mode"] == "weak" else "global_batch"
        base = [q for q in res if q["ranks"] == 1 and q[key] == r[key]]
        r["efficiency"] = r["img_s"] / (r["ranks"] * base[0]["img_s"]) if base else float("nan")
    cols = ["mode", "ranks", "batch_per_rank", "global_batch", "img_s", "step_ms", "compute_ms", "comm_ms",
            "efficiency", "data_ms", "forward_ms", "backward_ms", "method_ms", "instep_comm_ms",
            "grad_allreduce_ms", "optimizer_ms", "breakdown_total_ms", "steps_used", "others", "repeats", "spread", "cpu"]
    with open(os.path.join(out, "sweep.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in res:
            w.writerow([("%.4g" % r[c]) if isinstance(r[c], float) else r[c] for c in cols])
    print("%-6s %5s %6s %6s %9s %9s %9s %9s %6s %6s" % ("mode", "ranks", "b/rank", "global", "img/s", "step ms",
                                                    "compute", "comm", "eff", "others"))
    for r in res:
        print("%-6s %5d %6d %6d %9.1f %9.1f %9.1f %9.1f %6.2f %6d" % (r["mode"], r["ranks"], r["batch_per_rank"],
              r["global_batch"], r["img_s"], r["step_ms"], r["compute_ms"], r["comm_ms"], r["efficiency"], r["others"]))


def read_bench(path):
    P, rows = None, []
    for line in open(path):
        m = re.match(r"collectives over (\d+) ranks", line)
        if m:
            P = int(m.group(1))
        f = [x for x in line.replace("|", " ").split()]
        if len(f) == 10 and re.fullmatch(r"\d+", f[0]):
            rows.append([float(x) for x in f])
    if P is None or not rows:
        raise SystemExit("no bench_comm table in %s" % path)
    return P, np.array(rows)


def comm(logs, out):
    res = []
    byP = {}
    for path in logs:
        P, t = read_bench(path)
        byP.setdefault(P, []).append(t)
    for P in sorted(byP):
        ts = byP[P]
        # several runs at one P: the fastest time per size and collective (other jobs on the cores only
        # ever add time), the bandwidth columns recomputed from it are not used
        t = np.minimum.reduce([x[:min(len(y) for y in ts)] for x in ts]) if len(ts) > 1 else ts[0]
        S = t[:, 0]
        for name, col, ka, kb, nmul in (("allreduce", 1, 2.0 * (P - 1), 2.0 * (P - 1) / P, 1),
                                        ("allgather", 4, 1.0 * (P - 1), 1.0 * (P - 1) / P, P),
                                        ("reduce_scatter", 7, 1.0 * (P - 1), 1.0 * (P - 1) / P, 1)):
            us = t[:, col]
            n = S * nmul
            A = np.stack([np.full_like(n, ka), kb * n], axis=1)
            # relative least squares (weights 1/t): small and large messages count alike
            wgt = 1.0 / us
            coef, *_ = np.linalg.lstsq(A * wgt[:, None], us * wgt, rcond=None)
            alpha, beta = coef
            pred = A @ coef
            r2 = 1 - np.sum((us - pred) ** 2) / np.sum((us - us.mean()) ** 2)
            res.append(dict(collective=name, P=P, alpha_us=alpha, beta_us_per_byte=beta,
                            GB_s=1e-3 / beta if beta > 0 else float("inf"), r2=r2,
                            sizes=len(S), max_bytes=int(S.max()), runs=len(ts)))
    cols = ["collective", "P", "alpha_us", "beta_us_per_byte", "GB_s", "r2", "sizes", "max_bytes", "runs"]
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in res:
            w.writerow([("%.6g" % r[c]) if isinstance(r[c], float) else r[c] for c in cols])
    print("%-15s %3s %10s %14s %8s %7s" % tuple(cols[:6]))
    for r in res:
        print("%-15s %3d %10.2f %14.4g %8.3f %7.4f" % (r["collective"], r["P"], r["alpha_us"], r["beta_us_per_byte"],
                                                     r["GB_s"], r["r2"]))


def main(argv):
    if len(argv) >= 2 and argv[0] == "sweep":
        warm, cpu = 5, ""
        if "--warmup" in argv:
            warm = int(argv[argv.index("--warmup") + 1])
        if "--cpu" in argv:
            cpu = argv[argv.index("--cpu") + 1]
        sweep(argv[1], warm, cpu)
    elif len(argv) >= 2 and argv[0] == "comm":
        out = "comm_fit.csv"
        args = list(argv[1:])
        if "--out" in args:
            i = args.index("--out")
            out = args[i + 1]
            del args[i:i + 2]
        comm(args, out)
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
