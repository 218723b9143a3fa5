#!/usr/bin/env bash
# `sslrun export` on a real checkpoint: the encoder (no projector) loads into torchvision's
# resnet18 (small stem) with only fc.* missing and identical values; the checkpoint itself, read
# with h5py alone, rebuilds the same state_dict and names the sslrun that wrote it; a ViT exported with
# timm's names is the same network (and fine-tunes the same) as with torchvision's.
source "$(dirname "$0")/common.sh"
/usr/bin/python3 -c 'import torch, torchvision, h5py' 2>/dev/null || { echo "no torch/torchvision/h5py (scripts/setup.sh --test): skipping"; exit 77; }
need_fmnist
write_config
"$SSLRUN" "$WORK/tiny.yaml" run.name=exp model.width=64 run.max_steps=1 >"$WORK/train.log" 2>&1 || { cat "$WORK/train.log"; fail "training step"; }
ckpt=$(ls "$WORK/runs/exp/checkpoints/"ckpt-*.h5 | tail -1)
"$SSLRUN" export "$ckpt" --out "$WORK/enc.safetensors" >"$WORK/export.log" 2>&1 || { cat "$WORK/export.log"; fail "export"; }
grep -q "resnet18 encoder" "$WORK/export.log" || fail "export summary"
if grep -q projector "$WORK/enc.safetensors"; then fail "projector exported with the encoder"; fi
/usr/bin/python3 "$SSL_SOURCE/tests/unit/check_export.py" "$WORK/enc.safetensors" resnet18_small_c1 || fail "torchvision load"
read -r _ version commit < <("$SSLRUN" --version | sed -E 's/^sslrun ([^ ]+) \(git ([^)]+)\)$/x \1 \2/')
/usr/bin/python3 "$SSL_SOURCE/tests/e2e/h5py_state_dict.py" "$ckpt" "$WORK/enc.safetensors" "$version" "$commit" ||
  fail "state_dict from the checkpoint with h5py"
"$SSLRUN" export "$ckpt" --out "$WORK/t.safetensors" --teacher >"$WORK/err.log" 2>&1 && fail "SimCLR has no teacher"
grep -q "method simclr has no teacher" "$WORK/err.log" || { cat "$WORK/err.log"; fail "--teacher on SimCLR: no clear error"; }
# an EMA teacher (BYOL's target, after 2 steps it differs from the online network) exports the same way
"$SSLRUN" "$WORK/tiny.yaml" run.name=byol model.width=64 method.name=byol byol.proj_hidden=32 byol.proj_dim=16 byol.pred_hidden=32 \
  byol.momentum=0.5 schedule.warmup_epochs=0 run.max_steps=2 >"$WORK/byol.log" 2>&1 || { cat "$WORK/byol.log"; fail "byol steps"; }
bckpt=$(ls "$WORK/runs/byol/checkpoints/"ckpt-*.h5 | tail -1)
"$SSLRUN" export "$bckpt" --out "$WORK/teacher.safetensors" --teacher >"$WORK/export.log" 2>&1 || { cat "$WORK/export.log"; fail "export --teacher"; }
grep -q "resnet18 teacher encoder" "$WORK/export.log" || fail "export --teacher summary"
/usr/bin/python3 "$SSL_SOURCE/tests/unit/check_export.py" "$WORK/teacher.safetensors" resnet18_small_c1 || fail "teacher: torchvision load"
/usr/bin/python3 "$SSL_SOURCE/tests/e2e/h5py_state_dict.py" "$bckpt" "$WORK/teacher.safetensors" "$version" "$commit" --teacher ||
  fail "teacher state_dict from the checkpoint with h5py"
# a ViT exported with timm's names (--names timm) is the network of the torchvision-named export, and
# fine-tuning from either file starts from the same weights
vit="model.arch=vit_tiny model.img_size=16 model.patch_size=4 model.vit_depth=2 model.vit_dim=48 model.vit_heads=3 optim.name=adamw optim.lr=0.02 schedule.warmup_epochs=0"
"$SSLRUN" "$WORK/tiny.yaml" run.name=vit $vit run.max_steps=3 >"$WORK/vit.log" 2>&1 || { cat "$WORK/vit.log"; fail "vit step"; }
vckpt=$(ls "$WORK/runs/vit/checkpoints/"ckpt-*.h5 | tail -1)
"$SSLRUN" export "$vckpt" --out "$WORK/vit_tv.safetensors" >"$WORK/export.log" 2>&1 || { cat "$WORK/export.log"; fail "vit export"; }
"$SSLRUN" export "$vckpt" --out "$WORK/vit_timm.safetensors" --names timm >"$WORK/export.log" 2>&1 || { cat "$WORK/export.log"; fail "vit export --names timm"; }
grep -q "vit_tiny encoder, .* timm names" "$WORK/export.log" || { cat "$WORK/export.log"; fail "--names timm summary"; }
/usr/bin/python3 "$SSL_SOURCE/tests/e2e/check_timm_export.py" "$WORK/vit_tv.safetensors" "$WORK/vit_timm.safetensors" 16 4 2 3 48 1 ||
  fail "timm-named export is not the torchvision-named network"
for n in tv timm; do
  "$SSLRUN" finetune "$WORK/tiny.yaml" run.name=ft_$n $vit finetune.epochs=1 data.limit=128 --weights "$WORK/vit_$n.safetensors" \
    >"$WORK/ft_$n.log" 2>&1 || { cat "$WORK/ft_$n.log"; fail "finetune --weights vit_$n"; }
done
grep -q "timm names" "$WORK/runs/ft_timm/finetune/finetune.json" || fail "finetune.json does not say the weights had timm names"
diff <(losses "$WORK/runs/ft_tv/finetune/metrics.jsonl") <(losses "$WORK/runs/ft_timm/finetune/metrics.jsonl") ||
  fail "fine-tuning from the timm-named file differs from the torchvision-named one"
"$SSLRUN" export "$vckpt" --out "$WORK/x.safetensors" --names keras >"$WORK/err.log" 2>&1 && fail "--names keras accepted"
grep -q "expects torchvision or timm" "$WORK/err.log" || fail "--names: no clear error"
"$SSLRUN" export "$WORK/missing.h5" --out "$WORK/x.safetensors" >"$WORK/err.log" 2>&1 && fail "missing checkpoint accepted"
grep -q "missing.h5" "$WORK/err.log" || fail "error does not name the checkpoint"
echo "export: all checks passed"
