#!/usr/bin/env bash
# The training loop touches device memory only through ops, upload and download: the real binary
# runs on the devsim backend (the CPU ops behind pointers the host cannot dereference: any host read
# or write of "device" memory faults at its line) and must give the CPU backend's results bit for
# bit. Pretraining with the kNN monitor, checkpoint save and resume (host staging of the arrays),
# `sslrun eval` (features uploaded for kNN and the linear probe) and `sslrun finetune`, for all six
# methods on one rank (multi-rank devsim runs, with device collectives, are planned).
source "$(dirname "$0")/common.sh"
need_fmnist
write_config
export OMP_NUM_THREADS=1

run() { run_epoch "$@" eval.knn_every_epochs=1; }
identical() { # identical A B: every loss and kNN record, and every checkpoint tensor, bit for bit
  local a=$WORK/runs/$1 b=$WORK/runs/$2
  [ "$(losses "$a/metrics.jsonl" | wc -l)" = 8 ] || fail "$1: expected 8 logged steps"
  diff <(losses "$a/metrics.jsonl") <(losses "$b/metrics.jsonl") >/dev/null || fail "$2: losses differ from $1"
  diff <(grep -o '"knn_top1":[^,]*' "$a/metrics.jsonl") <(grep -o '"knn_top1":[^,]*' "$b/metrics.jsonl") >/dev/null ||
    fail "$2: kNN monitor differs from $1"
  grep -q '"knn_top1"' "$a/metrics.jsonl" || fail "$1: no kNN monitor record"
  "$CKPT_COMPARE" "$a/checkpoints/ckpt-0000000008.h5" "$b/checkpoints/ckpt-0000000008.h5" --rtol 0 >/dev/null ||
    fail "$2: checkpoint differs from $1"
  echo "$2: identical to $1"
}

vit=(model.arch=vit_tiny model.patch_size=4 model.vit_dim=16 model.vit_depth=2 model.vit_heads=2 augment.views=1
  mae.decoder_depth=1 mae.decoder_dim=16 mae.decoder_heads=2 optim.name=adamw optim.lr=0.001 optim.lr_scaling=none)
for m in simclr moco_v2 moco_v3 byol dino mae; do
  o=(method.name=$m)
  case $m in
    moco_v2) o+=(moco_v2.mlp_hidden=32 moco_v2.dim=16 moco_v2.queue_size=100 moco_v2.shuffle_bn_groups=4) ;;
    moco_v3) o+=(moco_v3.mlp_dim=32 moco_v3.dim=16) ;;
    byol) o+=(byol.proj_hidden=32 byol.proj_dim=16 byol.pred_hidden=32) ;;
    dino) o+=(dino.out_dim=64 dino.hidden_dim=32 dino.bottleneck_dim=16 optim.clip_grad=3.0 optim.clip_mode=per_tensor) ;;
    mae) o+=("${vit[@]}") ;;
  esac
  run "cpu_$m" "${o[@]}"
  run "dev_$m" "${o[@]}" device.backend=devsim
  identical "cpu_$m" "dev_$m"
done

# the per-layer profile on a device backend reads timestamps queued in the stream once per step,
# without waiting for the device per layer (216 waits a step before): few host waits, and the step
# breakdown still has forward and backward times
SSL_DEVSIM_STATS=1 run_epoch dev_waits device.backend=devsim
waits=$(sed -nE 's/^devsim: ([0-9]+) host waits for the device$/\1/p' "$WORK/dev_waits.log" | head -n1)
[ -n "$waits" ] && [ "$waits" -le 16 ] || fail "dev_waits: ${waits:-no count of} host waits in 8 steps (want <= 16)"
awk '$1 == "0" && NF == 10 { ok = $3 > 0 && $4 > 0 } END { exit !ok }' "$WORK/dev_waits.log" ||
  fail "dev_waits: the step breakdown lacks forward / backward times"
echo "dev_waits: $waits host waits in 8 steps, layer times still measured"

# resume on devsim (arrays uploaded after the load) equals the uninterrupted run
run dev_resume method.name=simclr device.backend=devsim run.max_steps=3
run dev_resume method.name=simclr device.backend=devsim
resumed "$WORK/dev_resume.log" 3
identical dev_simclr dev_resume

# sslrun eval: checkpoint loaded through staging, features uploaded for kNN and the linear probe
for be in cpu devsim; do
  "$SSLRUN" eval "$WORK/tiny.yaml" run.name=cpu_simclr device.backend=$be >"$WORK/eval_$be.log" 2>&1 ||
    { cat "$WORK/eval_$be.log"; fail "eval on $be"; }
done
grep -q "linear probe top-1" "$WORK/eval_cpu.log" || fail "eval: no linear probe line"
diff <(grep -E 'top-1' "$WORK/eval_cpu.log") <(grep -E 'top-1' "$WORK/eval_devsim.log") || fail "eval: devsim differs from cpu"
# sslrun finetune from a pretraining checkpoint (staged load, batches uploaded, test logits downloaded)
for be in cpu devsim; do
  "$SSLRUN" finetune "$WORK/tiny.yaml" run.name=cpu_simclr finetune.name=ft_$be finetune.epochs=1 device.backend=$be \
    >"$WORK/ft_$be.log" 2>&1 || { cat "$WORK/ft_$be.log"; fail "finetune on $be"; }
done
same_finetune "$WORK/runs/cpu_simclr/ft_cpu" "$WORK/runs/cpu_simclr/ft_devsim" "finetune on devsim"
# a run trained on devsim exports like any other (export reads on the host backend)
"$SSLRUN" export "$WORK/runs/dev_simclr/checkpoints/ckpt-0000000008.h5" --out "$WORK/dev.safetensors" >/dev/null 2>&1 ||
  fail "export of a devsim run"
echo "devsim: all checks passed"
