#!/usr/bin/env bash
# The GPU checks of the CUDA backend in one run, for a machine with a GPU, CUDA and PyTorch but none of
# sslrun's other libraries (the device tool's): unpack build/gpu-bundle.tar.xz (scripts/gpu_bundle.sh),
# find the CUDA libraries (the toolkit's, else PyTorch's nvidia-* wheels), then
#  1. test_backend_ops cpu cuda: every op of the table against the CPU backend, one process per group
#     of ops; test_dev_comm cuda: NCCL's four collectives on device buffers; test_ref_mixed: bf16
#     GEMMs / convolutions against torch;
#  2. training parity: 16 steps of SimCLR (ResNet, one rank), device.backend cpu vs cuda from the same
#     init (cuda augments on the GPU: augment.on auto), the loss of every step side by side within a
#     tolerance;
#  3. the method steps, sslrun vs PyTorch on the same GPU (bench_step --method against
#     benchmarks/torch_step.py --method, the same step): SimCLR ResNet-50 and MAE ViT-B/16 at 224 px,
#     exact fp32 on both sides at batch 128, then bf16 at batch 256 (model.precision bf16 vs
#     torch.autocast + channels-last): images/s, achieved TFLOP/s and MFU of each side, each side's
#     memory (bench_step's "memory held", torch.cuda.max_memory_allocated); sslrun alone with TF32,
#     and in bf16 with fp32 saved activations (what bf16 storage saves);
#  2b. parity of SimCLR in bf16 (close, not equal), MAE (ViT), DINO, MoCo v2, MoCo v3 and BYOL, and
#     `sslrun eval` (kNN on device features) of both backends' SimCLR;
#  4. augmentation on the GPU: bench_loader --device-aug --backend cuda on 256 photographs (JPEG
#     shard), SimCLR's 224 px views: the readers' staging rate and the augment op's.
# The benchmarks come before the longer parity runs, so a slow first run cuts parity, not them. The
# exit status is 0 only when every op group, test and parity run passed ("== N checks failed").
# Everything goes to stdout and to $OUT/gpu_check.txt. The whole run keeps to GPU_CHECK_SECONDS (540:
# the device tool allows a command 600 s): each stage's timeout is cut to the time left, a stage that
# no longer fits says so and is skipped, and a process that ignores SIGTERM (sslrun finishes its step
# first) is killed 10 s later. Only sslrun's binaries see the bundled libraries (wrappers in
# $B/run): PyTorch keeps its own.
#   bash benchmarks/gpu_check.sh            (from the repository root)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
END=$((SECONDS + ${GPU_CHECK_SECONDS:-540}))

# t LIMIT CMD...: CMD under timeout, LIMIT seconds or what is left of the budget if less; a command
# that no longer fits is not started (status 125, counted as skipped, not as failed)
t() {
  local want=$1 left=$((END - SECONDS - 10))
  shift
  if [ "$left" -lt 15 ]; then echo "skipped, out of time: ${*:1:3}"; skipped=$((skipped + 1)); return 125; fi
  timeout -k 10 $((want < left ? want : left)) "$@"
}

main() {
B=/tmp/sslrun-gpu W=/tmp/sslrun-gpu-work
rm -rf "$B" "$W" && mkdir -p "$B" "$W"
tar -xJf build/gpu-bundle.tar.xz -C "$B" || { echo "no build/gpu-bundle.tar.xz (scripts/gpu_bundle.sh, carried)"; return 1; }
# the bundle's libraries, then the CUDA libraries: the toolkit's, else PyTorch's nvidia-* wheels
# (CUDA 13 wheels keep cudart and cuBLAS in nvidia/cu13/lib)
libs=$B/lib
for p in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
  $(python3 -c "import nvidia, os; r = list(nvidia.__path__)[0]; print(os.path.join(r, 'cu13', 'lib'),
    *(os.path.join(r, m, 'lib') for m in ('cudnn', 'cublas', 'cuda_runtime', 'nccl')))" 2>/dev/null); do
  [ -d "$p" ] && libs=$libs:$p
done
mkdir -p "$B/run"
for b in "$B"/bin/*; do
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s "$@"\n' "$libs" "$b" >"$B/run/${b##*/}"
  chmod +x "$B/run/${b##*/}"
done
rm -f "$B/benchmarks/bench_step" && cp "$B/run/bench_step" "$B/benchmarks/bench_step" # for torch_step.py --build
echo "== machine: $(nvidia-smi -L 2>/dev/null | head -1); CPU $(lscpu | sed -n 's/^Model name: *//p' | head -1); $(date -u)"
missing=$(for b in "$B"/bin/*; do LD_LIBRARY_PATH=$libs ldd "$b" | grep "not found" | sed "s|^|${b##*/}: |"; done)
[ -z "$missing" ] || { echo "missing libraries:"; echo "$missing"; return 1; }
echo "CUDA libraries sslrun loads ($(ldd --version | head -1)):"
LD_LIBRARY_PATH=$libs ldd "$B/bin/sslrun" | grep -E 'cudart|cublas|cudnn|nccl' | sed 's/ (0x.*//'
# their versions at run time (built against the toolkit's headers: cuDNN 9.19, NCCL 2.28 on the build machine)
LD_LIBRARY_PATH=$libs ldd "$B/bin/sslrun" | awk '/libcudnn.so|libnccl.so|libcudart.so|libcublas.so/ {print $3}' |
  python3 -c "
import ctypes, sys
for p in sys.stdin.read().split():
    lib, v = ctypes.CDLL(p), ctypes.c_int(0)
    if 'cudnn' in p: print('  cuDNN', lib.cudnnGetVersion())
    elif 'nccl' in p: lib.ncclGetVersion(ctypes.byref(v)); print('  NCCL', v.value)
    elif 'cudart' in p: lib.cudaRuntimeGetVersion(ctypes.byref(v)); print('  CUDA runtime', v.value)
    elif 'cublas' in p: print('  cuBLAS', '.'.join(str(lib.cublasGetProperty(k, ctypes.byref(v)) or v.value) for k in range(3)))
" || echo "  (versions not read)"
S=$B/run/sslrun
export SSL_CUDA_UNVERIFIED=1 OMP_NUM_THREADS=8 NCCL_DEBUG=WARN

fails=0 skipped=0 # checks that failed (op groups, the NCCL and mixed-precision tests, parity runs); not run
echo "== 1. test_backend_ops cpu cuda, a process per group of ops (an op that stops one hides no other)"
groups=$("$B/run/test_backend_ops" --list) || { echo "test_backend_ops --list failed: no op groups to run"; fails=$((fails + 1)); }
for g in $groups; do
  t 60 "$B/run/test_backend_ops" cpu cuda --group "$g" >"$W/ops_$g.log" 2>&1
  rc=$?
  echo "group $g: exit $rc, $(grep -c '^FAIL' "$W/ops_$g.log") failed checks, $(sed -n 's/ comparisons.*//p' "$W/ops_$g.log") comparisons"
  [ $rc = 125 ] || [ $rc = 0 ] || { fails=$((fails + 1)); grep -v '^group ' "$W/ops_$g.log" | tail -n 12; }
done
echo "== 1b. test_dev_comm cuda: NCCL's collectives on one GPU"
t 60 "$B/run/test_dev_comm" cuda 2>&1 | tail -n 20
rc=${PIPESTATUS[0]}
echo "test_dev_comm exit $rc"
[ "$rc" = 125 ] && skipped=$((skipped + 1)) # t ran in the pipeline's subshell
[ "$rc" = 0 ] || [ "$rc" = 125 ] || fails=$((fails + 1))
echo "== 1c. test_ref_mixed: bf16 GEMMs and convolutions (cpu, devsim, cuda) against torch's rule"
SSL_FIXTURES=$B/fixtures t 60 "$B/run/test_ref_mixed" 2>&1 | tail -n 20
rc=${PIPESTATUS[0]}
echo "test_ref_mixed exit $rc"
[ "$rc" = 125 ] && skipped=$((skipped + 1))
[ "$rc" = 0 ] || [ "$rc" = 125 ] || fails=$((fails + 1))

cat >"$W/p.yaml" <<YAML
run: {name: p, out_dir: "$W/runs", seed: 3, log_every: 1}
model: {arch: resnet18, small_stem: true, width: 8, img_size: 16}
method: {name: simclr}
simclr: {temperature: 0.5, proj_hidden: 32, proj_dim: 16}
data: {train: "$B/data/shard.h5", test: "$B/data/shard.h5", batch_size: 64, limit: 1024, workers: 2}
optim: {name: lars, lr: 0.5}
schedule: {epochs: 1, warmup_epochs: 0.5}
checkpoint: {every_steps: 0}
eval: {knn_k: [5], linear_epochs: 1, train_limit: 2000}
YAML
parity() { # parity NAME TOLERANCE STEPS overrides...: both runs whole, the largest relative loss difference
  local n=$1 tol=$2 steps=$3 rc bad=0; shift 3
  for be in cpu cuda; do
    t 120 "$S" "$W/p.yaml" run.name="${n}_$be" device.backend=$be "$@" >"$W/${n}_$be.log" 2>&1
    rc=$?
    [ $rc = 125 ] && return 0 # out of time: skipped, said so
    [ $rc = 0 ] || { bad=1; echo "$n $be: exit $rc"; tail -n 5 "$W/${n}_$be.log"; }
  done
  [ $bad = 0 ] || { fails=$((fails + 1)); echo "$n: FAILED (a run did not finish)"; return 0; }
  python3 - "$W/runs/${n}_cpu/metrics.jsonl" "$W/runs/${n}_cuda/metrics.jsonl" "$n" "$tol" "$steps" <<'PY' || fails=$((fails + 1))
import json, sys
def losses(p):
    try:
        return {r["step"]: r["loss"] for r in map(json.loads, open(p)) if "loss" in r}
    except OSError:
        return {}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
steps = sorted(set(a) & set(b))
rel = max((abs(a[s] - b[s]) / max(abs(a[s]), 1e-12) for s in steps), default=float("nan"))
ok = len(steps) == len(a) == len(b) == int(sys.argv[5]) and rel <= float(sys.argv[4])
print(f"{sys.argv[3]}: {len(steps)} steps compared, max relative loss difference {rel:.3e} "
      f"(tolerance {sys.argv[4]}): {'ok' if ok else 'FAILED'}")
for s in steps[:3] + steps[-2:]:
    print(f"  step {s}: cpu {a[s]:.7f}  cuda {b[s]:.7f}")
sys.exit(0 if ok else 1)
PY
}
# fp32: summation order alone, grown over the steps; bf16: both sides round the same products, in
# another order, so further apart
echo "== 2. training parity, cpu vs cuda: SimCLR (the rest of the methods after the benchmarks)"
parity simclr 1e-3 16

echo "== 3. the method steps, sslrun vs PyTorch on this GPU: images/s, achieved TFLOP/s and MFU"
echo "   (bench_step --method: the trainer's step on random views; torch_step.py: the same step in PyTorch)"
echo "-- SimCLR ResNet-50 224 px (2 views, projector, NT-Xent), exact fp32 on both sides"
t 150 python3 benchmarks/torch_step.py --device cuda --build "$B" --method simclr --model resnet50 --img 224 \
  --batch 128 --iters 10 --optim lars
echo "-- MAE ViT-B/16 224 px (75% masked, 8-block decoder), exact fp32 on both sides"
t 150 python3 benchmarks/torch_step.py --device cuda --build "$B" --method mae --model vit_base --img 224 --patch 16 \
  --batch 128 --iters 10 --optim adamw
echo "-- bf16: model.precision bf16 vs torch.autocast(bfloat16) + channels-last"
t 150 python3 benchmarks/torch_step.py --device cuda --build "$B" --method simclr --model resnet50 --img 224 \
  --batch 256 --iters 10 --optim lars --bf16
t 150 python3 benchmarks/torch_step.py --device cuda --build "$B" --method mae --model vit_base --img 224 --patch 16 \
  --batch 256 --iters 10 --optim adamw --bf16
echo "-- sslrun alone: SimCLR with TF32 (SSL_CUDA_TF32=1); bf16 with fp32 saved activations"
SSL_CUDA_TF32=1 t 100 "$B/run/bench_step" --backend cuda --method simclr --model resnet50 --img 224 --batch 128 \
  --iters 10 --optim lars >"$W/tf32.log" 2>&1
grep -E "RESULT|counted|bench_step:" "$W/tf32.log"
t 100 "$B/run/bench_step" --backend cuda --method simclr --model resnet50 --img 224 --batch 256 --iters 10 --optim lars \
  --precision bf16 --saved-activations fp32 >"$W/acts32.log" 2>&1
grep -E "RESULT|memory held|bench_step:" "$W/acts32.log"

echo "== 2b. training parity, cpu vs cuda: the other methods, SimCLR in bf16, and sslrun eval of both"
parity simclr_bf16 5e-2 16 model.precision=bf16
parity mae 1e-3 8 method.name=mae augment.views=1 model.arch=vit_tiny model.patch_size=4 mae.decoder_depth=2 \
  mae.decoder_dim=64 mae.decoder_heads=4 optim.name=adamw optim.lr=0.001 run.max_steps=8
parity dino 1e-3 8 method.name=dino model.arch=vit_tiny model.patch_size=4 dino.out_dim=256 dino.hidden_dim=64 \
  dino.bottleneck_dim=32 dino.local_crops=2 optim.name=adamw optim.lr=0.001 run.max_steps=8
parity moco_v2 1e-3 8 method.name=moco_v2 moco_v2.mlp_hidden=32 moco_v2.dim=16 moco_v2.queue_size=256 run.max_steps=8
parity moco_v3 1e-3 8 method.name=moco_v3 moco_v3.mlp_dim=32 moco_v3.dim=16 run.max_steps=8
parity byol 1e-3 8 method.name=byol byol.proj_hidden=32 byol.proj_dim=16 byol.pred_hidden=32 run.max_steps=8
for be in cpu cuda; do
  t 120 "$S" eval "$W/p.yaml" run.name="simclr_$be" device.backend=$be >"$W/eval_$be.log" 2>&1
  echo "eval simclr_$be: $(cat "$W/runs/simclr_$be/eval.json" 2>/dev/null || tail -n 2 "$W/eval_$be.log")"
done

echo "== 4. augmentation on the GPU (readers stage sources + jobs; the augment op makes 2 x 224 px views)"
t 120 "$B/run/bench_loader" --data "$B/data/photos.h5" --workers "4 8" --batch 64 --batches 3 --warmup 1 \
  --device-aug --backend cuda
echo "== $fails checks failed, $skipped not run for want of time"
echo "== done $(date -u) ($SECONDS s)"
[ "$fails" = 0 ]
}

main 2>&1 | tee "$OUT/gpu_check.txt"
