#!/usr/bin/env bash
# Device collectives (framework/comm/device.h) through the binary at np=2, both ways a device rank
# runs them on the devsim backend (which faults on any host access to device memory): through its
# device communicator (comm.device auto: devsim's stand-in for NCCL, MPI straight on the device
# buffers) and staged through host copies (comm.device=staged). Both equal the CPU backend bit for bit: the gradient all-reduce and the rank-0
# broadcast (all), sync-BN statistics (SimCLR), the negatives' all-gather and reduce-scatter (SimCLR),
# the keys' all-gather (MoCo v3), the sharded queue and shuffle-BN (MoCo v2), the sharded prototype
# head's gather / scatter and distributed softmax (DINO), the teachers' BN averaging before a save;
# and each rank's device chosen by node-local rank (SSL_DEVSIM_DEVICES simulated devices), before any
# context exists (devsim aborts otherwise), in pretraining and fine-tuning.
# The gradient all-reduce overlapped with backward (comm.overlap, auto: on with the device
# communicator) in small buckets, started as the ResNet's / ViT's blocks finish (MoCo v3 and DINO run
# the encoder backward more than once a step, so a bucket waits for the last), equals the CPU's
# single all-reduce after backward; so does the CPU's own overlap (comm.overlap=on: MPI's nonblocking
# allreduce), for SimCLR and for MAE (the ViT encoder's and decoder's blocks). devsim's buckets sum
# the moment they start (a bucket started early would sum a partial gradient): DINO's replicated
# prototype layer, reported as soon as its backward has run, through it.
source "$(dirname "$0")/common.sh"
need_fmnist
write_config
mpi_env

run() { # run NAME overrides...: one epoch of 8 steps on 2 ranks
  local name=$1 rc=0; shift
  "$MPIEXEC" --oversubscribe -np 2 "$SSLRUN" "$WORK/tiny.yaml" run.name="$name" schedule.epochs=1 "$@" \
    >"$WORK/$name.log" 2>&1 || rc=$?
  [ $rc = 0 ] || { tail -5 "$WORK/$name.log"; fail "$name: exit $rc"; }
}
for m in simclr moco_v3 moco_v2 dino; do
  o=(method.name=$m model.sync_bn=true)
  case $m in
    moco_v3) o+=(moco_v3.mlp_dim=32 moco_v3.dim=16 model.sync_bn=false) ;;
    moco_v2) o+=(moco_v2.mlp_hidden=32 moco_v2.dim=16 moco_v2.queue_size=100 moco_v2.shuffle_bn_groups=4) ;;
    dino) o+=(dino.out_dim=64 dino.hidden_dim=32 dino.bottleneck_dim=16 dino.shard_head=true optim.name=adamw
      optim.lr=0.002 optim.lr_scaling=none) ;;
  esac
  run "cpu_$m" "${o[@]}"
  run "dev_$m" "${o[@]}" device.backend=devsim comm.bucket_mb=0.01
  run "stg_$m" "${o[@]}" device.backend=devsim comm.device=staged
  grep -q "device collectives devsim-direct" "$WORK/dev_$m.log" || fail "dev_$m: not through the device communicator"
  grep -Eq "gradient buckets: [1-9][0-9]* of [0-9]+ started during backward" "$WORK/dev_$m.log" ||
    fail "dev_$m: no gradient bucket started during backward"
  grep -q "device collectives staged through host memory" "$WORK/stg_$m.log" || fail "stg_$m: not staged"
  a=$WORK/runs/cpu_$m
  [ "$(losses "$a/metrics.jsonl" | wc -l)" = 8 ] || fail "cpu_$m: expected 8 logged steps"
  for d in dev stg; do
    b=$WORK/runs/${d}_$m
    diff <(losses "$a/metrics.jsonl") <(losses "$b/metrics.jsonl") >/dev/null || fail "${d}_$m: losses differ from cpu_$m"
    "$CKPT_COMPARE" "$a/checkpoints/ckpt-0000000008.h5" "$b/checkpoints/ckpt-0000000008.h5" --rtol 0 >/dev/null ||
      fail "${d}_$m: checkpoint differs from cpu_$m"
  done
  echo "dev_$m, stg_$m (np=2): identical to cpu_$m"
done

# the CPU's overlap: MPI_Iallreduce per bucket, for a ResNet (SimCLR) and the ViT blocks of MAE
mae=(method.name=mae model.arch=vit_tiny model.patch_size=4 model.vit_dim=16 model.vit_depth=2 model.vit_heads=2
  augment.views=1 mae.decoder_depth=2 mae.decoder_dim=16 mae.decoder_heads=2 optim.name=adamw optim.lr=0.001
  optim.lr_scaling=none)
run cpu_mae "${mae[@]}" comm.overlap=off
run ovl_mae "${mae[@]}" comm.overlap=on comm.bucket_mb=0.002
run ovl_simclr method.name=simclr model.sync_bn=true comm.overlap=on comm.bucket_mb=0.01
# DINO with its replicated prototype layer, reported done as soon as its backward has run
dino=(method.name=dino dino.out_dim=64 dino.hidden_dim=32 dino.bottleneck_dim=16 dino.freeze_last_layer=0 optim.name=adamw optim.lr=0.002
  optim.lr_scaling=none)
run cpu_dino_rep "${dino[@]}" comm.overlap=off
run ovl_dino_rep "${dino[@]}" device.backend=devsim comm.bucket_mb=0.002
for m in mae simclr dino_rep; do
  a=$WORK/runs/cpu_$m b=$WORK/runs/ovl_$m
  grep -Eq "gradient buckets: [1-9][0-9]* of [0-9]+ started during backward" "$WORK/ovl_$m.log" ||
    fail "ovl_$m: no gradient bucket started during backward"
  diff <(losses "$a/metrics.jsonl") <(losses "$b/metrics.jsonl") >/dev/null || fail "ovl_$m: losses differ from cpu_$m"
  "$CKPT_COMPARE" "$a/checkpoints/ckpt-0000000008.h5" "$b/checkpoints/ckpt-0000000008.h5" --rtol 0 >/dev/null ||
    fail "ovl_$m: checkpoint differs from cpu_$m"
  echo "ovl_$m (np=2, overlapped buckets): identical to cpu_$m"
done

# sslrun finetune at np=2 from cpu_simclr's checkpoint: the rank-0 broadcast of the loaded weights and
# the gradient all-reduce through devsim's device communicator, equal to the CPU backend
for be in cpu devsim; do
  "$MPIEXEC" --oversubscribe -np 2 "$SSLRUN" finetune "$WORK/tiny.yaml" run.name=cpu_simclr finetune.name=ft_$be \
    finetune.epochs=1 device.backend=$be comm.bucket_mb=0.01 >"$WORK/ft_$be.log" 2>&1 ||
    { tail -5 "$WORK/ft_$be.log"; fail "finetune np=2 on $be"; }
done
same_finetune "$WORK/runs/cpu_simclr/ft_cpu" "$WORK/runs/cpu_simclr/ft_devsim" "finetune np=2 on devsim"
echo "finetune (np=2): devsim identical to cpu"

# Rank -> device by node-local rank: with 3 simulated devices per node, 2 ranks take devices 0 and 1
# (local_rank % devices, selected through the backend before any context exists), and say so.
SSL_DEVSIM_DEVICES=3 SSLRUN_REPORT_BINDING=1 run dev_bind device.backend=devsim run.max_steps=1
for r in 0 1; do
  grep -Eq "binding: rank $r .*local $r/2 .*gpu $r of 3 visible" "$WORK/dev_bind.log" ||
    { cat "$WORK/dev_bind.log"; fail "rank $r: no 'gpu $r of 3 visible' binding line"; }
done
# unanchored: mpirun may splice one rank's line into the middle of another's
[ "$(grep -o 'binding: rank [0-9]* host' "$WORK/dev_bind.log" | wc -l)" = 2 ] || { cat "$WORK/dev_bind.log"; fail "binding lines not one per rank"; }
# devsim refuses a context made before the rank's device is selected (on a GPU it would land on
# device 0): fine-tuning binds first too
SSL_DEVSIM_DEVICES=3 "$MPIEXEC" --oversubscribe -np 2 "$SSLRUN" finetune "$WORK/tiny.yaml" run.name=cpu_simclr \
  finetune.name=ft_bind finetune.epochs=1 device.backend=devsim run.max_steps=1 >"$WORK/ft_bind.log" 2>&1 ||
  { tail -5 "$WORK/ft_bind.log"; fail "finetune with simulated devices"; }
echo "devsim mpi: rank r takes device r"
echo "devsim mpi: all checks passed"
