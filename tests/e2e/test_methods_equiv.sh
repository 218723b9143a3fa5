#!/usr/bin/env bash
# Every method beyond SimCLR through the real `sslrun`, as test_mpi_equiv.sh does for SimCLR: np=2 and
# np=4 log the losses of np=1 on the same global batch, and their final checkpoints hold the same
# parameters, BN buffers, optimizer state and method state (the teacher: parameters and its own BN
# statistics); a run resumed np=4 -> np=2 -> np=1 mid-epoch continues with the losses and ends with
# the tensors of the uninterrupted np=1 run (teacher and schedules restored, not re-initialised).
# Tolerances as test_mpi_equiv.sh derives them (fp32 reordering, 8 steps, no ReLU kink met on the
# way). Optimizer moments are not compared across rank counts: they hold the last step's raw gradient,
# undamped by the learning rate, where a ReLU input within fp32 noise of zero switching sides in the
# last backward moves a 4-channel BN weight's momentum by 5% (MoCo v3, measured) while every loss and
# weight agrees to 1e-6; instead a resume at the same rank count must reproduce the uninterrupted
# run bit for bit, optimizer moments included. The method's monitors must appear in metrics.jsonl.
source "$(dirname "$0")/common.sh"
mpi_env
need_fmnist
write_config
equiv_setup

check_method() { # check_method METHOD[:VARIANT] MONITORS DATASETS -- overrides... (runs are named METHOD[_VARIANT]N)
  local m=${1/:/_} method=${1%%:*} monitors=$2 datasets=$3; shift 4
  local o=(method.name="$method" "$@")
  go 1 "${m}1" "${o[@]}"
  for k in $monitors; do grep -q "\"$k\":" "$WORK/runs/${m}1/metrics.jsonl" || fail "$m: no '$k' in metrics.jsonl"; done
  grep -q "\"method\":\"$method\"" "$WORK/runs/${m}1/metrics.jsonl" || fail "$m: the metrics header does not name the method"
  go 2 "${m}2" "${o[@]}"
  go 4 "${m}4" "${o[@]}"
  # shellcheck disable=SC2086
  same "${m}1" "${m}2" $datasets
  # shellcheck disable=SC2086
  same "${m}1" "${m}4" $datasets
  # resumed on the same rank count: bit for bit the uninterrupted run (every piece of state restored)
  go 2 "${m}r" "${o[@]}" run.max_steps=5
  go 2 "${m}r" "${o[@]}"
  resumed "$WORK/${m}r.log" 5
  cmp <(losses "$WORK/runs/${m}2/metrics.jsonl") <(losses "$WORK/runs/${m}r/metrics.jsonl") ||
    fail "${m}r: losses after a resume at np=2 differ from the uninterrupted np=2 run"
  # shellcheck disable=SC2086
  "$CKPT_COMPARE" "$(final "${m}2")" "$(final "${m}r")" --rtol 0 $(printf -- '--dataset %s ' $datasets optim/m) |
    sed "s/^/${m}r: /" || fail "${m}r: resumed at np=2, the final state is not bit-identical"
  go 4 "${m}c" "${o[@]}" run.max_steps=3
  go 2 "${m}c" "${o[@]}" run.max_steps=3
  resumed "$WORK/${m}c.log" 3
  go 1 "${m}c" "${o[@]}"
  resumed "$WORK/${m}c.log" 6
  once "$WORK/runs/${m}c/metrics.jsonl"
  # shellcheck disable=SC2086
  same "${m}1" "${m}c" $datasets
}

# BYOL's small heads amplify a ReLU input within fp32 noise of zero taking the other side at one rank
# count: on an AVX2 EPYC lr 0.1 meets one at step 6 (np=1 and np=2 then differ by 2e-3 two steps later),
# on an AVX-512 Xeon lr 0.05 does; at lr 0.02 np=1/2/4 agree to 1e-7 on the EPYC. A dropped collective
# or teacher update moves values by > 1e-2.
check_method byol "emb_std online_target_cos" "params buffers teacher/params teacher/buffers" -- \
  optim.lr=0.02 byol.proj_hidden=32 byol.proj_dim=16 byol.pred_hidden=32 byol.momentum=0.99
# MoCo v3: the keys of every rank are gathered (the loss at np=2 and 4 needs them all). At lr 0.1 np=2
# meets a kink at step 5 (the case above); at 0.02 np=1/2/4 agree to 2e-6 over the 8 steps.
check_method moco_v3 "emb_std pos_cos neg_cos" "params buffers teacher/params teacher/buffers" -- \
  optim.lr=0.02 moco_v3.mlp_dim=32 moco_v3.dim=16 moco_v3.temperature=0.2 moco_v3.momentum=0.99
# MoCo v2: the queue of 100 keys is sharded over ranks (25 per rank at np=4), 64 keys are enqueued a
# step, so it wraps around; with synchronised BN for the keys (no shuffle) np=1/2/4 are one
# computation, and the queue's contents are compared like the weights (uneven shards, P=3: the MPI
# test mpi/test_dp_moco_queue).
check_method moco_v2 "emb_std pos_cos neg_cos" "params buffers teacher/params teacher/buffers queue/keys" -- \
  optim.lr=0.02 moco_v2.mlp_hidden=32 moco_v2.dim=16 moco_v2.queue_size=100 moco_v2.shuffle_bn=false \
  moco_v2.momentum=0.99
# DINO: 2 global crops at 16 px + 2 local crops at 8 px; the centre is all-reduced over ranks and
# checkpointed. Two epochs of 4 steps with the last layer frozen in the first, so the resumes at steps
# 3, 5 and 6 each restore a frozen or a thawed last layer and its own AdamW step count.
check_method dino "teacher_entropy kl_uniform center_norm" "params buffers teacher/params teacher/buffers dino/center" -- \
  schedule.epochs=2 data.limit=256 optim.name=adamw optim.lr=0.002 optim.lr_scaling=none optim.weight_decay=0.04 \
  schedule.wd_end=0.4 optim.clip_grad=3.0 optim.clip_mode=per_tensor dino.out_dim=64 dino.hidden_dim=32 \
  dino.bottleneck_dim=16 dino.local_crops=2 dino.local_size=8 dino.momentum=0.99 dino.warmup_teacher_temp_epochs=2 \
  dino.teacher_temp=0.07
dino_o=(schedule.epochs=2 data.limit=256 optim.name=adamw optim.lr=0.002 optim.lr_scaling=none optim.weight_decay=0.04
  schedule.wd_end=0.4 optim.clip_grad=3.0 optim.clip_mode=per_tensor dino.out_dim=64 dino.hidden_dim=32
  dino.bottleneck_dim=16 dino.local_crops=2 dino.local_size=8 dino.momentum=0.99 dino.warmup_teacher_temp_epochs=2
  dino.teacher_temp=0.07)
# The sharded head: the 64 prototypes, their teacher rows, AdamW moments and centre entries split over the
# ranks (21/21/22 would be P=3; here 32 and 16 per rank), the same checks as above, resumed 4 -> 2 -> 1
# re-sharding every array; and the same losses and centre as the replicated head.
check_method dino:sharded "teacher_entropy kl_uniform center_norm" \
  "params buffers teacher/params teacher/buffers dino/center dino/prototypes teacher/prototypes" -- \
  "${dino_o[@]}" dino.shard_head=true
same dino1 dino_sharded2 buffers teacher/buffers dino/center
same dino1 dino_sharded4 buffers teacher/buffers dino/center
# P = 3: 64 prototypes split 22/21/21 (a global batch of 48, 8 steps in one epoch) = the replicated head
go 1 dino_b48 "${dino_o[@]}" method.name=dino schedule.epochs=1 data.batch_size=48 data.limit=384
go 3 dino_sharded3 "${dino_o[@]}" method.name=dino schedule.epochs=1 data.batch_size=48 data.limit=384 dino.shard_head=true
same dino_b48 dino_sharded3 buffers teacher/buffers dino/center
# MAE: a 2-block ViT (16 wide) over 16 patches of 4 px, 4 kept, a 1-block decoder. The masks are keyed by
# (seed, step, global sample index), so np=1/2/4 remove the same patches of the same images; each rank's
# loss is the mean over its own removed patches (the same count per sample), so the ranks' mean is the
# batch's. No state beyond the parameters: the resumes check the step-keyed masks and the schedules.
check_method mae "visible_loss pred_std" "params" -- \
  model.arch=vit_tiny model.patch_size=4 model.sincos_pos=true model.vit_dim=16 model.vit_depth=2 model.vit_heads=2 \
  augment.views=1 augment.crop_scale=[0.2,1.0] mae.decoder_depth=1 mae.decoder_dim=16 mae.decoder_heads=2 \
  optim.name=adamw optim.lr=0.001 optim.lr_scaling=none optim.weight_decay=0.05 optim.beta2=0.95
# shuffle-BN (the paper's) through the binary: the keys of the shuffled global batch of 64 are encoded
# in 4 groups of 16 with BN over each alone (one rank: 4 groups; np=2: 2 per rank; np=4: 1), so np=1/2/4
# are one computation. Each rank's key encoder keeps BN running statistics of its own groups, which the
# method averages before every checkpoint (or the replica check before the save stops the run); those
# statistics are an average of 4 EMAs at np=4 and one EMA stepped 4 times at np=1, so they are left out
# of the comparison (the keys use batch statistics). mpi/test_dp_shuffle_bn tests the data movement.
shuf=(method.name=moco_v2 optim.lr=0.02 moco_v2.mlp_hidden=32 moco_v2.dim=16 moco_v2.queue_size=100
  moco_v2.momentum=0.99 moco_v2.shuffle_bn_groups=4)
for np in 1 2 4; do go $np "mocoshuf$np" "${shuf[@]}"; done
same mocoshuf1 mocoshuf2 params buffers teacher/params queue/keys
same mocoshuf1 mocoshuf4 params buffers teacher/params queue/keys
# the same groups without the shuffle would pair a query with its key's statistics: it must matter
go 1 mocoshuf0 "${shuf[@]}" moco_v2.shuffle_bn=false
(same mocoshuf1 mocoshuf0 params) >/dev/null 2>&1 && fail "shuffle-BN groups: the loss does not depend on them"
echo "method equivalence: all checks passed"
