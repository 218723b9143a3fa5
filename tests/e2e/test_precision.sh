#!/usr/bin/env bash
# model.precision bf16 through the real binary: the plan line says so; a ResNet (convolutions,
# linears) and a ViT (attention, the DINO head's weight-normalised layer) train in bf16 with first
# losses beside the fp32 run's but not equal to them (the layers really ran their products in bf16);
# devsim's bf16 run equals the CPU's bit for bit (the flag reaches the ops behind device pointers);
# a bf16 run resumes to the uninterrupted run's losses; fine-tuning takes the setting too.
# The ops' arithmetic against torch: tests/ref/test_ref_mixed.c.
source "$(dirname "$0")/common.sh"
need_fmnist
write_config
export OMP_NUM_THREADS=1

run() { run_epoch "$@" checkpoint.every_steps=4; }
first_loss() { losses "$WORK/runs/$1/metrics.jsonl" | awk 'NR == 1 { print $2 }'; }
# near_not_equal A B: first losses differ, by less than 2%, and every bf16 loss is finite
near_not_equal() {
  local a b
  a=$(first_loss "$1") b=$(first_loss "$2")
  [ -n "$a" ] && [ -n "$b" ] || fail "$2: no losses"
  [ "$a" != "$b" ] || fail "$2: first loss $b equals the fp32 run's: the products did not run in bf16"
  awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 0.02 * (a < 0 ? -a : a)) }' ||
    fail "$2: first loss $b, fp32 $a: too far apart"
  [ "$(losses "$WORK/runs/$2/metrics.jsonl" | awk '$2 == $2 + 0 && $2 < 1e30' | wc -l)" = 8 ] ||
    fail "$2: expected 8 finite losses"
  echo "$2: first loss $b (fp32 $a)"
}

run f32 
run b16 model.precision=bf16
grep -q "precision fp32$" "$WORK/f32.log" || fail "f32: plan line lacks 'precision fp32'"
grep -q "precision bf16 (GEMM / convolution" "$WORK/b16.log" || fail "b16: plan line lacks the bf16 precision"
near_not_equal f32 b16

vit=(method.name=dino model.arch=vit_tiny model.patch_size=4 model.vit_dim=16 model.vit_depth=2 model.vit_heads=2
  dino.out_dim=64 dino.hidden_dim=32 dino.bottleneck_dim=16 optim.name=adamw optim.lr=0.001 optim.lr_scaling=none)
run vit_f32 "${vit[@]}"
run vit_b16 "${vit[@]}" model.precision=bf16
near_not_equal vit_f32 vit_b16

# devsim: the same bits as the CPU's bf16 run
run dev_b16 model.precision=bf16 device.backend=devsim
diff <(losses "$WORK/runs/b16/metrics.jsonl") <(losses "$WORK/runs/dev_b16/metrics.jsonl") >/dev/null ||
  fail "dev_b16: losses differ from the CPU's bf16 run"
"$CKPT_COMPARE" "$WORK/runs/b16/checkpoints/ckpt-0000000008.h5" "$WORK/runs/dev_b16/checkpoints/ckpt-0000000008.h5" \
  --rtol 0 >/dev/null || fail "dev_b16: checkpoint differs from the CPU's bf16 run"

# resume: 4 steps, then the rest from the checkpoint, equals the uninterrupted bf16 run
run res_b16 model.precision=bf16 run.max_steps=4
run res_b16 model.precision=bf16
diff <(losses "$WORK/runs/b16/metrics.jsonl") <(losses "$WORK/runs/res_b16/metrics.jsonl") >/dev/null ||
  fail "res_b16: resumed bf16 run differs from the uninterrupted one"

# fine-tuning in bf16
"$SSLRUN" finetune "$WORK/tiny.yaml" run.name=b16 finetune.name=ft model.precision=bf16 finetune.epochs=1 \
  >"$WORK/ft.log" 2>&1 || { tail -5 "$WORK/ft.log"; fail "finetune in bf16"; }
grep -q "precision bf16" "$WORK/ft.log" || fail "finetune: plan line lacks the bf16 precision"
grep -q '"top1"' "$WORK/runs/b16/ft/finetune.json" || fail "finetune: no finetune.json"
echo "precision: all checks passed"
