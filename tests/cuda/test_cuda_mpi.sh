#!/usr/bin/env bash
# np=2 on two GPUs (label cuda: skips where the CUDA backend is not built or fewer than two GPUs are
# visible). Through the binary, one epoch of the tiny SimCLR run (sync-BN, the negatives gathered
# across ranks) and of MoCo v2 (the sharded queue, shuffle-BN) at np=2 on device.backend cuda, through
# NCCL (the plan line says so, and gradient buckets start during backward), against the same run on
# the CPU backend at np=2 and on one GPU: the loss of every step within 1e-3 relative (fp32 in
# another summation order, grown over 8 steps). Then NCCL's four collectives at np=2, their ops called
# directly (test_dev_comm cuda).
#   SSL_TEST_GPU_BACKEND=devsim runs the same script where there is no GPU (two simulated devices,
#   devsim's stand-in device communicator), to check the script itself.
source "$(dirname "$0")/../e2e/common.sh"
be=${SSL_TEST_GPU_BACKEND:-cuda}
if [ "$be" = cuda ]; then
  [ "${SSL_CUDA_BUILT:-OFF}" = ON ] || { echo "the CUDA backend is not built: skipping"; exit 77; }
  n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  [ "${n:-0}" -ge 2 ] || { echo "${n:-0} GPU(s) visible, 2 needed: skipping"; exit 77; }
  export SSL_CUDA_UNVERIFIED=1 # the op test's verdict is this test's premise
  comm_name=nccl
else
  export SSL_DEVSIM_DEVICES=2
  comm_name=devsim-direct
fi
need_fmnist
write_config
mpi_env

go() { # go NAME NP overrides...: one epoch (8 steps) of the tiny config
  local name=$1 np=$2 rc=0; shift 2
  "$MPIEXEC" --oversubscribe -np "$np" "$SSLRUN" "$WORK/tiny.yaml" run.name="$name" schedule.epochs=1 "$@" \
    >"$WORK/$name.log" 2>&1 || rc=$?
  [ $rc = 0 ] || { tail -5 "$WORK/$name.log"; fail "$name: exit $rc"; }
}
close() { # close A B: every step's loss of run B within 1e-3 relative of run A's
  local worst
  worst=$(join <(losses "$WORK/runs/$1/metrics.jsonl") <(losses "$WORK/runs/$2/metrics.jsonl") |
    awk 'BEGIN { w = -1 } { d = $2 - $3; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2); if (r > w) w = r; n++ }
         END { if (n != 8) print "steps:" n; else printf "%.3e", w }')
  awk -v w="$worst" 'BEGIN { exit !(w ~ /^[0-9.e+-]+$/ && w + 0 <= 1e-3) }' ||
    fail "$2 against $1: max relative loss difference $worst (8 steps needed, tolerance 1e-3)"
  echo "$2 against $1: max relative loss difference $worst"
}

for m in simclr moco_v2; do
  o=(method.name=$m model.sync_bn=true optim.lr=0.05) # a gentle lr: rounding grows less over the steps
  [ $m = moco_v2 ] && o+=(moco_v2.mlp_hidden=32 moco_v2.dim=16 moco_v2.queue_size=100 moco_v2.shuffle_bn_groups=4)
  go "cpu2_$m" 2 "${o[@]}"
  go "gpu1_$m" 1 "${o[@]}" device.backend=$be
  go "gpu2_$m" 2 "${o[@]}" device.backend=$be comm.bucket_mb=0.01
  grep -q "device collectives $comm_name" "$WORK/gpu2_$m.log" ||
    { grep "device collectives" "$WORK/gpu2_$m.log"; fail "gpu2_$m: not through the $comm_name communicator"; }
  grep -Eq "gradient buckets: [1-9][0-9]* of [0-9]+ started during backward" "$WORK/gpu2_$m.log" ||
    fail "gpu2_$m: no gradient bucket started during backward"
  close "cpu2_$m" "gpu2_$m"
  close "gpu1_$m" "gpu2_$m"
done
if [ "$be" = cuda ]; then
  "$MPIEXEC" --oversubscribe -np 2 "$SSL_BUILD/tests/test_dev_comm" cuda >"$WORK/dev_comm.log" 2>&1 ||
    { tail -20 "$WORK/dev_comm.log"; fail "test_dev_comm cuda at np=2"; }
fi
echo "np=2 on two devices ($be): all checks passed"
