#!/usr/bin/env bash
# model.precision bf16 through the real binary: the plan line says so; a ResNet (convolutions,
# linears) and a ViT (attention, the DINO head's weight-normalised layer) train in bf16 with first
# losses beside the fp32 run's but not equal to them (the layers really ran their products in bf16);
# devsim's bf16 runs (a ResNet, MAE's ViT) equal the CPU's bit for bit (the flag and the bf16 views reach
# the ops behind device pointers);
# a bf16 run resumes to the uninterrupted run's losses; fine-tuning takes the setting too.
# model.saved_activations: fp32 storage trains to the bf16 storage's losses and checkpoint bit for
# bit, with a larger activation high-water mark (act_mb in metrics.jsonl).
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

# saved activations: the same bits either way, less memory in bf16 (MoCo v2 and DINO: teacher
# forwards too; DINO's ViT with multi-crop; MAE's encoder on its kept patches and its decoder)
act_mb() { sed -nE 's/.*"act_mb":([0-9.]+).*/\1/p' "$WORK/runs/$1/metrics.jsonl" | tail -1; }
grep -q "saved activations bf16)$" "$WORK/b16.log" || fail "b16: plan line lacks 'saved activations bf16'"
small=(moco_v2.queue_size=512 moco_v2.mlp_hidden=32 moco_v2.dim=16) # the encoder's memory, not the queue's
mae=(method.name=mae model.arch=vit_tiny model.patch_size=4 model.sincos_pos=true model.vit_dim=32 model.vit_depth=2
  model.vit_heads=2 augment.views=1 mae.decoder_depth=2 mae.decoder_dim=32 mae.decoder_heads=2 optim.name=adamw
  optim.lr=0.001 optim.lr_scaling=none)
# a ViT keeps its residual stream and GELU input in fp32, and DINO's head weighs in at this width
declare -A factor=([simclr]=0.8 [moco_v2]=0.8 [dino]=0.85 [mae]=0.85)
declare -A args=([simclr]="" [moco_v2]="${small[*]}" [dino]="${vit[*]}" [mae]="${mae[*]}")
for m in simclr moco_v2 dino mae; do
  read -ra extra <<<"${args[$m]}"
  run "${m}_acts16" model.precision=bf16 method.name=$m "${extra[@]}"
  run "${m}_acts32" model.precision=bf16 method.name=$m model.saved_activations=fp32 "${extra[@]}"
  grep -q "saved activations fp32)$" "$WORK/${m}_acts32.log" || fail "${m}_acts32: plan line lacks 'saved activations fp32'"
  diff <(losses "$WORK/runs/${m}_acts16/metrics.jsonl") <(losses "$WORK/runs/${m}_acts32/metrics.jsonl") >/dev/null ||
    fail "$m: losses with bf16 storage differ from fp32 storage"
  "$CKPT_COMPARE" "$WORK/runs/${m}_acts16/checkpoints/ckpt-0000000008.h5" \
    "$WORK/runs/${m}_acts32/checkpoints/ckpt-0000000008.h5" --rtol 0 >/dev/null ||
    fail "$m: checkpoint with bf16 storage differs from fp32 storage"
  a=$(act_mb "${m}_acts16") b=$(act_mb "${m}_acts32")
  awk -v a="$a" -v b="$b" -v f="${factor[$m]}" 'BEGIN { exit !(a > 0 && a < f * b) }' ||
    fail "$m: activation high-water $a MB with bf16 storage, $b MB with fp32: want under ${factor[$m]}x"
  echo "$m bf16 saved activations: same losses and checkpoint, act_mb $a vs $b"
done

# devsim: the same bits as the CPU's bf16 run
run dev_b16 model.precision=bf16 device.backend=devsim
diff <(losses "$WORK/runs/b16/metrics.jsonl") <(losses "$WORK/runs/dev_b16/metrics.jsonl") >/dev/null ||
  fail "dev_b16: losses differ from the CPU's bf16 run"
"$CKPT_COMPARE" "$WORK/runs/b16/checkpoints/ckpt-0000000008.h5" "$WORK/runs/dev_b16/checkpoints/ckpt-0000000008.h5" \
  --rtol 0 >/dev/null || fail "dev_b16: checkpoint differs from the CPU's bf16 run"
# and MAE's ViT, whose backward reads its bf16 views (linears, attention) behind device pointers
run dev_mae_b16 model.precision=bf16 "${mae[@]}" device.backend=devsim
diff <(losses "$WORK/runs/mae_acts16/metrics.jsonl") <(losses "$WORK/runs/dev_mae_b16/metrics.jsonl") >/dev/null ||
  fail "dev_mae_b16: losses differ from the CPU's bf16 run"
"$CKPT_COMPARE" "$WORK/runs/mae_acts16/checkpoints/ckpt-0000000008.h5" \
  "$WORK/runs/dev_mae_b16/checkpoints/ckpt-0000000008.h5" --rtol 0 >/dev/null ||
  fail "dev_mae_b16: checkpoint differs from the CPU's bf16 run"

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
