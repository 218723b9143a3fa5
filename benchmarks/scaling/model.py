#!/usr/bin/python3
"""Performance model for sslrun data-parallel pretraining: step time = compute + exposed communication.

  /usr/bin/python3 benchmarks/scaling/model.py [--dir benchmarks/scaling/results] [--png benchmarks/scaling]

Reads DIR/sweep.csv (sweep.sh) and DIR/comm_fit.csv (fit_comm.sh); writes DIR/validation.csv (the
measured np=1/2/4 points with the model's prediction beside them), DIR/predictions.csv (8 ... 1,024
GPUs) and the plots PNG/scaling_here.png, PNG/efficiency_gpus.png. Standard library + numpy +
matplotlib (matplotlib is a benchmark-only dependency: apt-get install python3-matplotlib).

(a) VALIDATE on this machine. compute(b) = c0 + c1 b (ms, b = per-rank batch) is fitted by least
    squares to the np=1 points (step time there is all compute: comm 'local'). np=1 runs 2 threads on
    the 2 cores; P ranks share the same cores, so each rank has C/P cores (P > C: oversubscribed) and its
    compute is scaled by P (perfect thread scaling assumed): compute_P(b) = P (c0 + c1 b).
    Communication per step, with this machine's fitted alpha-beta (comm_fit.csv, at that P), is what
    sslrun's SimCLR step issues (framework/train/step.c, layers/batchnorm.c, layers/ntxent.c):
      gradient all-reduce of all parameters (fp32) + one small all-reduce (loss, monitors, stop flag);
      SyncBN: per BN layer one all-reduce of 2C+1 doubles forward, 2C doubles backward;
      NT-Xent: all-gather of the 2b x 128 fp32 embeddings, reduce-scatter of their gradient.
    No overlap (the CPU ranks measured here all-reduce after backward: comm.overlap is off on CPU by
    default). Predicted step = compute_P + comm_P.
(b) PREDICT 8 ... 1,024 GPUs. Every cluster number below is an ASSUMPTION, not a measurement, and the
    GPU compute per image is to be replaced by the GPU benchmark's number once there is one:
"""
import csv
import math
import os
import sys

import numpy as np

# ---------------------------------------------------------------- cluster assumptions (predictions)
A = dict(
    gpus_per_node=8,           # G: GPUs per node
    nvlink_busbw=400e9,        # B/s, intra-node bus bandwidth (NVLink/NVSwitch, H100-class)
    ib_per_gpu=25e9,           # B/s, one 200 Gb/s InfiniBand NIC per GPU (rail-optimised)
    alpha_intra=1e-6,          # s, per NVLink step (ASSUMPTION)
    alpha_inter=5e-6,          # s, per inter-node step (ASSUMPTION, the brief's ~5 us)
    tree_bw_eff=0.75,          # tree all-reduce reaches this fraction of the ring's bandwidth (ASSUMPTION)
    peak_flops=989e12,         # H100 SXM bf16 dense
    mfu=0.15,                  # ASSUMED model-FLOP utilisation, calibrated so that supervised ResNet-50
    #                            training runs ~6,000 img/s per H100 (MLPerf-class pipelines; PyTorch
    #                            eager AMP reaches about half): replace with the GPU benchmark's number
    hbm_eff_bw=2.0e12,         # B/s achieved by the optimizer's streaming (ASSUMPTION; H100 HBM3 3.35 TB/s peak)
    r50_fwd_flops=8.2e9,       # ResNet-50 forward, one 224 px image: 4.1 G multiply-adds = 8.2 GFLOP; fwd+bwd = 3x
    r50_params=25.6e6,         # the brief's gradient size (ResNet-50 incl. projection head, approx.)
    r50_bn_layers=55,          # 53 in ResNet-50 + 2 in the projector; sync BN as in SimCLR
    r50_bn_channels=28736,     # sum of their channels (26,560 + 2,048 + 128)
    opt_bytes_per_param=24,    # LARS: read p, g, m; write p, m (+ per-tensor norms): ~6 x 4 B
)
OVERLAPS = (0.0, 0.8)  # fraction of backward that can hide the gradient all-reduce:
#                        0 = none (all-reduce after backward: comm.overlap off);
#                        0.8 = the bucketed overlap of GPU ranks (comm.overlap auto with NCCL; the last
#                        buckets, i.e. the first layers' ~20% of backward, cannot be hidden) -- ASSUMPTION,
#                        not yet measured on a GPU
GPUS = (8, 16, 32, 64, 128, 256, 512, 1024)
BATCHES = (4096, 8192, 16384, 32768)


# ---------------------------------------------------------------- collectives on the assumed cluster
def _split(N):
    G = min(A["gpus_per_node"], N)
    return G, max(1, N // G)


def t_allreduce(nbytes, N):
    """Hierarchical: reduce-scatter + all-gather inside the node over NVLink, and across the M nodes
    each GPU all-reduces its 1/G slice over its own NIC: ring (2(M-1) steps) or, when cheaper (small
    messages), a double binary tree (2 log2 M steps at tree_bw_eff of the bandwidth)."""
    if N <= 1 or nbytes <= 0:
        return 0.0
    G, M = _split(N)
    t = 2 * (G - 1) / G * nbytes / A["nvlink_busbw"] + 2 * (G - 1) * A["alpha_intra"]
    if M > 1:
        s = nbytes / G
        ring = 2 * (M - 1) * A["alpha_inter"] + 2 * (M - 1) / M * s / A["ib_per_gpu"]
        tree = 2 * math.ceil(math.log2(M)) * A["alpha_inter"] + 2 * s / (A["tree_bw_eff"] * A["ib_per_gpu"])
        t += min(ring, tree)
    return t


def t_gather(nbytes, N):
    """All-gather or reduce-scatter of a vector of nbytes in all (ring only, as NCCL): intra-node
    (G-1)/G n over NVLink, inter-node (M-1)/M n/G over each GPU's NIC."""
    if N <= 1 or nbytes <= 0:
        return 0.0
    G, M = _split(N)
    t = (G - 1) / G * nbytes / A["nvlink_busbw"] + (G - 1) * A["alpha_intra"]
    if M > 1:
        t += (M - 1) * A["alpha_inter"] + (M - 1) / M * nbytes / G / A["ib_per_gpu"]
    return t


def gpu_time(flops):
    return flops / (A["mfu"] * A["peak_flops"])


# ---------------------------------------------------------------- the three methods on the cluster
def case_terms(case, B, N, sync_bn=1):
    """Per-step seconds on each GPU: fwd, bwd (compute that scales with the per-GPU batch), opt
    (fixed), grad (gradient all-reduce, overlappable), instep (collectives inside forward / loss /
    backward, not overlappable), memory note."""
    b = B / N
    F = A["r50_fwd_flops"]
    bn_bytes = A["r50_bn_channels"] * 2 * 4  # fp32 sum and sum of squares (GPU SyncBN)
    bn = 2 * A["r50_bn_layers"] * t_allreduce(bn_bytes, N) if sync_bn else 0.0  # fwd stats + bwd sums
    params = A["r50_params"]
    mem = 0.0
    if case.startswith("simclr"):
        # 2 views, encoder fwd+bwd on both; NT-Xent logits 2b x 2B x 128 (fwd 2 flops/MAC, bwd 2x)
        fwd = gpu_time(b * 2 * F + 2 * (2 * b) * (2 * B) * 128)
        bwd = 2 * fwd
        gbytes = params * (2 if case.endswith("bf16") else 4)
        emb = 2 * B * 128 * 4  # the gathered 2B x 128 fp32 embeddings
        instep = bn + t_gather(emb, N) + t_gather(emb, N)  # all-gather fwd + reduce-scatter bwd
    elif case.startswith("moco"):
        # MoCo v2: query encoder fwd+bwd on one view, key encoder fwd on the other; queue K = 65,536
        # keys x 128; logits b x K per GPU either way (sharded: all B queries x K/N keys)
        K, D = 65536, 128
        fwd = gpu_time(b * F + b * F + 2 * b * K * D)
        bwd = gpu_time(2 * b * F + 2 * 2 * b * K * D)
        gbytes = params * 4
        q = B * D * 4  # one 128-d fp32 vector per image, gathered over all GPUs
        if case.endswith("sharded"):
            # all-gather the queries, logits against the K/N local keys, distributed log-sum-exp:
            # all-reduce MAX (B doubles) and SUM (B+2 doubles), reduce-scatter dQ backward; keys
            # enqueue into the local shard (no traffic); queue memory K D 4 / N
            instep = t_gather(q, N) + t_allreduce(B * 8, N) + t_allreduce((B + 2) * 8, N) + t_gather(q, N)
            mem = K * D * 4 / N
        else:
            # replicated: every GPU all-gathers the new keys and holds the whole queue
            instep = t_gather(q, N)
            mem = K * D * 4
        instep += bn
    else:
        # DINO, ResNet-50 backbone, 2 global 224 px + 8 local 96 px crops; student fwd+bwd on all 10,
        # teacher fwd on the 2 globals; head 2048-2048-2048-256 MLP, last layer 256 x 65,536
        K, Dh, crops = 65536, 256, 10
        local = F * (96 / 224) ** 2
        head_mlp = 2048 * 2048 * 2 + 2048 * 256  # ~8.9 M
        last = Dh * K
        sfwd = b * (2 * F + 8 * local + crops * 2 * (head_mlp + last))
        tfwd = b * 2 * (F + 2 * (head_mlp + last))
        fwd = gpu_time(sfwd + tfwd)
        bwd = gpu_time(2 * sfwd)
        center = t_allreduce(K * 4, N)  # the teacher-output centre (fp32 sum over the batch)
        if case.endswith("sharded"):
            # the last layer's K rows split over the GPUs: all-gather the 256-d bottleneck features of
            # all crops (10 student + 2 teacher), all-reduce per-row max and sum of exp (student and
            # teacher rows), reduce-scatter the student features' gradient; no gradient all-reduce for
            # the sharded layer (each GPU owns its rows, computed over the global batch)
            feats = B * (crops + 2) * Dh * 4
            rows = B * (crops + 2)
            instep = t_gather(feats, N) + 2 * t_allreduce(rows * 4, N) + t_gather(B * crops * Dh * 4, N)
            gbytes = (params + head_mlp) * 4
            mem = last * 4 * 4 / N  # weights, grads, 2 optimizer moments of the sharded layer
        else:
            instep = 0.0
            gbytes = (params + head_mlp + last) * 4
            mem = last * 4 * 4
        instep += bn + center
        params = params + head_mlp + last
    opt = params * A["opt_bytes_per_param"] / A["hbm_eff_bw"]
    return dict(fwd=fwd, bwd=bwd, opt=opt, grad=t_allreduce(gbytes, N), instep=instep, mem=mem,
                grad_bytes=gbytes, bn=bn)


def predict_rows():
    rows = []
    cases = ("simclr_fp32", "simclr_bf16", "moco_sharded", "moco_replicated", "dino_sharded", "dino_replicated")
    for case in cases:
      for sbn in (1, 0):
        for B in BATCHES:
            one = case_terms(case, B, 1)  # one GPU, the whole global batch (accumulated): no comm
            t1 = one["fwd"] + one["bwd"] + one["opt"]
            for N in GPUS:
                for f in OVERLAPS:
                    t = case_terms(case, B, N, sbn)
                    exposed = max(0.0, t["grad"] - f * t["bwd"])
                    compute = t["fwd"] + t["bwd"] + t["opt"]
                    step = compute + t["instep"] + exposed
                    terms = {"compute": compute, "grad all-reduce": exposed, "in-step comm": t["instep"]}
                    comm_terms = {"grad all-reduce": exposed, "in-step comm": t["instep"]}
                    rows.append(dict(case=case, sync_bn=sbn, syncbn_ms=1e3 * t["bn"], global_batch=B, gpus=N, per_gpu_batch=B / N, overlap=f,
                                     compute_ms=1e3 * compute, fwd_bwd_ms=1e3 * (t["fwd"] + t["bwd"]),
                                     optimizer_ms=1e3 * t["opt"], grad_allreduce_ms=1e3 * t["grad"],
                                     grad_exposed_ms=1e3 * exposed, instep_comm_ms=1e3 * t["instep"],
                                     step_ms=1e3 * step, img_s=B / step, efficiency=t1 / (N * step),
                                     dominant_comm=max(comm_terms, key=comm_terms.get),
                                     largest_term=max(terms, key=terms.get),
                                     grad_MB=t["grad_bytes"] / 1e6, state_MB=t["mem"] / 1e6))
    return rows


# ---------------------------------------------------------------- validation on this machine
def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def alpha_beta(fit, coll, P):
    for r in fit:
        if r["collective"] == coll and int(r["P"]) == P:
            return float(r["alpha_us"]) * 1e-6, float(r["beta_us_per_byte"]) * 1e-6
    raise SystemExit("comm_fit.csv has no %s at P=%d" % (coll, P))


def t_here(fit, coll, P, nbytes):
    if P <= 1:
        return 0.0
    a, b = alpha_beta(fit, coll, P)
    if coll == "allreduce":
        return 2 * (P - 1) * a + 2 * (P - 1) / P * nbytes * b
    return (P - 1) * a + (P - 1) / P * nbytes * b


# the fmnist SimCLR recipe (configs/fmnist_simclr.yaml): small-stem ResNet-18 width 16 + projector
HERE = dict(params=831984,       # printed by sslrun ("831984 parameters")
            bn_layers=22,        # 20 in the ResNet-18 (stem, 2 per block, 3 downsample) + 2 in the projector
            bn_channels=1840,    # 16 + 4x16 + 5x32 + 5x64 + 5x128 + 512 + 128
            proj_dim=128, monitors=1, cores=os.cpu_count() or 2)


def validate(d):
    sw = read_csv(os.path.join(d, "sweep.csv"))
    fit = read_csv(os.path.join(d, "comm_fit.csv"))
    one = [r for r in sw if int(r["ranks"]) == 1]
    seen = {}
    for r in one:
        seen[int(r["batch_per_rank"])] = float(r["compute_ms"])
    bs = np.array(sorted(seen), float)
    cs = np.array([seen[int(b)] for b in bs])
    c1, c0 = np.polyfit(bs, cs, 1) if len(bs) > 1 else (cs[0] / bs[0], 0.0)
    if c0 < 0:  # noise can make the intercept negative: then proportional (c0 = 0)
        c1, c0 = float(np.dot(bs, cs) / np.dot(bs, bs)), 0.0
    # per-image split, np=1 (informative): forward, backward, optimizer (fixed)
    per = {}
    for key in ("forward_ms", "backward_ms", "optimizer_ms", "data_ms"):
        ys = {}
        for r in one:
            ys[int(r["batch_per_rank"])] = float(r[key])
        y = np.array([ys[int(b)] for b in bs])
        per[key] = np.polyfit(bs, y, 1) if len(bs) > 1 else (y[0] / bs[0], 0.0)
    out = []
    for r in sw:
        P, b, G = int(r["ranks"]), int(r["batch_per_rank"]), int(r["global_batch"])
        # P ranks on C cores: C/P cores each (np=1 used all C), so compute scales by P
        comp = P * (c0 + c1 * b)
        # SyncBN: per layer an all-reduce of 2C+1 doubles forward and 2C backward (latency per call,
        # bandwidth on the summed bytes)
        nb, ch = HERE["bn_layers"], HERE["bn_channels"]
        bn = 0.0
        if P > 1:
            a, be = alpha_beta(fit, "allreduce", P)
            bn = 2 * nb * 2 * (P - 1) * a + 2 * (P - 1) / P * be * ((2 * ch + nb) * 8 + 2 * ch * 8)
        emb = 2 * G * HERE["proj_dim"] * 4
        instep = bn + t_here(fit, "allgather", P, emb) + t_here(fit, "reduce_scatter", P, emb)
        grad = t_here(fit, "allreduce", P, HERE["params"] * 4) + t_here(fit, "allreduce", P, (2 + HERE["monitors"]) * 8)
        comm = 1e3 * (instep + grad)
        step = comp + comm
        m_step = float(r["step_ms"])
        out.append(dict(mode=r["mode"], ranks=P, batch_per_rank=b, global_batch=G,
                        meas_img_s=float(r["img_s"]), pred_img_s=G / step * 1e3,
                        meas_step_ms=m_step, pred_step_ms=step, err_step_pct=100 * (step - m_step) / m_step,
                        meas_compute_ms=float(r["compute_ms"]), pred_compute_ms=comp,
                        meas_comm_ms=float(r["comm_ms"]), pred_comm_ms=comm,
                        meas_eff=float(r["efficiency"]), others=r.get("others", "")))
    for o in out:
        key = "batch_per_rank" if o["mode"] == "weak" else "global_batch"
        base = [q for q in out if q["ranks"] == 1 and q[key] == o[key]]
        o["pred_eff"] = o["pred_img_s"] / (o["ranks"] * base[0]["pred_img_s"]) if base else float("nan")
    info = dict(c0=c0, c1=c1, per=per)
    return out, info


def write_csv(path, rows, cols):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([("%.4g" % r[c]) if isinstance(r[c], float) else r[c] for c in cols])


def plots(val, pred, pngdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6), dpi=80)
    for mode, b, mk in (("strong", None, "o"), ("weak", 32, "s"), ("weak", 64, "^")):
        pts = sorted([v for v in val if v["mode"] == mode and (b is None or v["batch_per_rank"] == b)],
                     key=lambda v: v["ranks"])
        if not pts:
            continue
        lab = "strong, global %d" % pts[0]["global_batch"] if mode == "strong" else "weak, %d/rank" % b
        x = [p["ranks"] for p in pts]
        l, = ax[0].plot(x, [p["meas_img_s"] for p in pts], mk + "-", label=lab + " measured")
        ax[0].plot(x, [p["pred_img_s"] for p in pts], mk + "--", color=l.get_color(), mfc="none",
                   label=lab + " model")
        ax[1].plot(x, [p["meas_eff"] for p in pts], mk + "-", color=l.get_color())
        ax[1].plot(x, [p["pred_eff"] for p in pts], mk + "--", color=l.get_color(), mfc="none")
    ax[1].plot([1, 2, 4], [1, 0.5, 0.25], ":", color="grey", label="same cores shared: 1/P")
    ax[1].legend(fontsize=7)
    ax[0].set(xlabel="MPI ranks (2 cores)", ylabel="images/s", xticks=[1, 2, 4], title="throughput")
    ax[1].set(xlabel="MPI ranks (2 cores)", ylabel="efficiency vs np=1", xticks=[1, 2, 4], ylim=(0, 1.1),
              title="efficiency (solid measured, dashed model)")
    ax[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(pngdir, "scaling_here.png"))
    plt.close(fig)

    fig, ax = plt.subplots(1, 3, figsize=(11, 3.6), dpi=80, sharey=True)
    groups = (("SimCLR R50", ("simclr_fp32", "simclr_bf16")), ("MoCo v2, 65,536 queue", ("moco_sharded", "moco_replicated")),
              ("DINO, 65,536 head", ("dino_sharded", "dino_replicated")))
    for a, (title, cases) in zip(ax, groups):
        for case, ls in zip(cases, ("-", "--")):
            for i, B in enumerate(BATCHES):
                pts = [p for p in pred if p["case"] == case and p["global_batch"] == B and p["overlap"] == 0.0
                       and p["sync_bn"] == 0]
                a.plot([p["gpus"] for p in pts], [p["efficiency"] for p in pts], ls, marker=".", color="C%d" % i,
                       label="%s B=%d" % (case.split("_")[1], B))
        a.axhline(0.9, color="grey", lw=0.8)
        a.set(xscale="log", xlabel="GPUs (assumed H100 cluster)", title=title + "\nper-GPU BN, no overlap", ylim=(0, 1.02))
        a.set_xticks(GPUS)
        a.set_xticklabels([str(g) for g in GPUS], fontsize=7)
        a.legend(fontsize=5.5)
    ax[0].set_ylabel("predicted efficiency")
    fig.tight_layout()
    fig.savefig(os.path.join(pngdir, "efficiency_gpus.png"))
    plt.close(fig)


def summary_md(d, val, pred):
    """DIR/summary.md: the validation and prediction tables in Markdown (for the README)."""
    L = ["| mode | ranks | batch/rank | global | img/s measured | img/s model | step ms measured | model | error | "
         "comm ms measured | model | efficiency measured | model |", "|" + "---|" * 13]
    for v in val:
        L.append("| %s | %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %+.1f%% | %.1f | %.2f | %.2f | %.2f |" % (
            v["mode"], v["ranks"], v["batch_per_rank"], v["global_batch"], v["meas_img_s"], v["pred_img_s"],
            v["meas_step_ms"], v["pred_step_ms"], v["err_step_pct"], v["meas_comm_ms"], v["pred_comm_ms"],
            v["meas_eff"], v["pred_eff"]))
    for sbn in (1, 0):
        L += ["", "%s BN: efficiency at 1,024 GPUs, overlap 0 / 0.8; first GPU count below 90%% (overlap 0) and "
              "the largest communication term there" % ("Synchronised" if sbn else "Per-GPU"), "",
              "| case | " + " | ".join("B=%d" % B for B in BATCHES) + " |", "|---|" + "---|" * len(BATCHES)]
        cases = []
        for p in pred:
            if p["case"] not in cases:
                cases.append(p["case"])
        for case in cases:
            cells = []
            for B in BATCHES:
                pts = {(p["gpus"], p["overlap"]): p for p in pred
                       if p["case"] == case and p["global_batch"] == B and p["sync_bn"] == sbn}
                below = [pts[(N, 0.0)] for N in GPUS if pts[(N, 0.0)]["efficiency"] < 0.9]
                first = ("<90%% from %d (%s)" % (below[0]["gpus"], below[0]["dominant_comm"])) if below else ">=90%"
                cells.append("%.2f / %.2f; %s" % (pts[(1024, 0.0)]["efficiency"], pts[(1024, 0.8)]["efficiency"], first))
            L.append("| %s | %s |" % (case, " | ".join(cells)))
    open(os.path.join(d, "summary.md"), "w").write("\n".join(L) + "\n")


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    d = os.path.join(here, "results")
    png = here
    if "--dir" in argv:
        d = argv[argv.index("--dir") + 1]
    if "--png" in argv:
        png = argv[argv.index("--png") + 1]
    val, info = validate(d)
    vcols = ["mode", "ranks", "batch_per_rank", "global_batch", "meas_img_s", "pred_img_s", "meas_step_ms",
             "pred_step_ms", "err_step_pct", "meas_compute_ms", "pred_compute_ms", "meas_comm_ms", "pred_comm_ms",
             "meas_eff", "pred_eff", "others"]
    write_csv(os.path.join(d, "validation.csv"), val, vcols)
    print("compute at np=1 (%d cores): %.2f ms + %.3f ms/image  (forward %.3f, backward %.3f ms/image; optimizer %.1f ms/step)"
          % (HERE["cores"], info["c0"], info["c1"], info["per"]["forward_ms"][0], info["per"]["backward_ms"][0],
             info["per"]["optimizer_ms"][1]))
    print("%-6s %3s %4s %5s | %8s %8s | %8s %8s %7s | %8s %8s | %5s %5s" % ("mode", "P", "b", "B", "img/s", "model",
          "step ms", "model", "err %", "comm ms", "model", "eff", "model"))
    for v in val:
        print("%-6s %3d %4d %5d | %8.1f %8.1f | %8.1f %8.1f %+7.1f | %8.1f %8.2f | %5.2f %5.2f" % (
            v["mode"], v["ranks"], v["batch_per_rank"], v["global_batch"], v["meas_img_s"], v["pred_img_s"],
            v["meas_step_ms"], v["pred_step_ms"], v["err_step_pct"], v["meas_comm_ms"], v["pred_comm_ms"],
            v["meas_eff"], v["pred_eff"]))
    pred = predict_rows()
    pcols = ["case", "sync_bn", "global_batch", "gpus", "per_gpu_batch", "overlap", "compute_ms", "fwd_bwd_ms", "optimizer_ms",
             "grad_allreduce_ms", "grad_exposed_ms", "instep_comm_ms", "syncbn_ms", "step_ms", "img_s", "efficiency",
             "dominant_comm", "largest_term", "grad_MB", "state_MB"]
    write_csv(os.path.join(d, "predictions.csv"), pred, pcols)
    for sbn in (1, 0):
      print("\npredicted efficiency, %s BN (overlap 0 | 0.8): at 1,024 GPUs; first GPU count below 90%%, dominant comm there"
            % ("synchronised" if sbn else "per-GPU"))
      for case in sorted(set(p["case"] for p in pred), key=lambda c: [p["case"] for p in pred].index(c)):
        for B in BATCHES:
            line = []
            for f in OVERLAPS:
                pts = [p for p in pred if p["case"] == case and p["global_batch"] == B and p["overlap"] == f
                       and p["sync_bn"] == sbn]
                e1024 = [p for p in pts if p["gpus"] == 1024][0]
                below = [p for p in pts if p["efficiency"] < 0.9]
                first = ("<90%% at %d (%s)" % (below[0]["gpus"], below[0]["dominant_comm"])) if below else ">=90% to 1024"
                line.append("%.2f %s" % (e1024["efficiency"], first))
            print("  %-16s B=%-6d 1024 GPUs: %s | %s" % (case, B, line[0], line[1]))
    summary_md(d, val, pred)
    try:
        plots(val, pred, png)
        print("wrote %s/scaling_here.png, efficiency_gpus.png" % png)
    except ImportError:
        print("matplotlib missing (apt-get install python3-matplotlib): no plots")


if __name__ == "__main__":
    main(sys.argv[1:])
