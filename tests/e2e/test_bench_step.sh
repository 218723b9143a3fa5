#!/bin/bash
# bench_step --method runs the method's whole training step (what gpu_check.sh benchmarks against
# PyTorch): tiny SimCLR and MAE steps on cpu and devsim (views on the device). SimCLR's counted FLOPs
# are two views through the encoder (bench_step's analytic encoder step, twice) plus the heads and
# the loss; devsim counts what cpu counts. Speed is not asserted.
set -euo pipefail
: "${SSL_BUILD:?set SSL_BUILD to the build directory}"
B=$SSL_BUILD/benchmarks/bench_step
fail() { echo "FAIL: $*" >&2; exit 1; }
gflop() { sed -nE "s/.*$1 ([0-9.]+) GFLOP.*/\1/p" <<<"$2" | head -n1; }

enc=$("$B" --model resnet18 --small-stem --width 8 --img 16 --batch 16 --iters 1) || fail "encoder step"
per_step=$(gflop "step" "$enc")
for be in cpu devsim; do
  out=$("$B" --backend $be --method simclr --model resnet18 --small-stem --width 8 --img 16 --batch 16 --iters 1 \
    --set simclr.proj_hidden=64 --set simclr.proj_dim=32) || fail "simclr on $be: $out"
  grep -q "^RESULT images/s" <<<"$out" || fail "simclr on $be: no RESULT line"
  grep -q "SimCLR" <<<"$out" || fail "simclr on $be: the method is not named"
  counted=$(gflop "counted" "$out")
  eval "simclr_$be=$counted"
  awk -v c="$counted" -v e="$per_step" 'BEGIN { r = c / (2 * e); exit !(r > 0.95 && r < 1.1) }' ||
    fail "simclr on $be: $counted GFLOP counted, not two views of the $per_step GFLOP encoder step"
  out=$("$B" --backend $be --method mae --model vit_tiny --img 16 --patch 4 --batch 8 --iters 1 --optim adamw \
    --set mae.decoder_depth=1 --set mae.decoder_dim=32 --set mae.decoder_heads=2) || fail "mae on $be: $out"
  grep -q "^RESULT images/s" <<<"$out" || fail "mae on $be: no RESULT line"
  eval "mae_$be=$(gflop counted "$out")"
done
[ "$simclr_cpu" = "$simclr_devsim" ] && [ "$mae_cpu" = "$mae_devsim" ] ||
  fail "devsim counts other FLOPs than cpu: simclr $simclr_cpu / $simclr_devsim, mae $mae_cpu / $mae_devsim"
# bad input is a usage error
"$B" --method simclr --set nonsense >/dev/null 2>&1 && fail "--set without '=' accepted"
rc=0; "$B" --method nosuch >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "an unknown method: exit $rc, not 2"
echo "bench_step --method: simclr $simclr_cpu GFLOP per step (encoder step $per_step), mae $mae_cpu; cpu = devsim"
