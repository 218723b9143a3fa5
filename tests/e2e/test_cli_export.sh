#!/usr/bin/env bash
# `sslrun export` on a real checkpoint: the encoder (no projector) loads into torchvision's
# resnet18 (small stem) with only fc.* missing and identical values. Skips without torch.
source "$(dirname "$0")/common.sh"
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null || { echo "no torch/torchvision: skipping"; exit 77; }
need_fmnist
write_config
"$SSLRUN" "$WORK/tiny.yaml" run.name=exp model.width=64 run.max_steps=1 >"$WORK/train.log" 2>&1 || { cat "$WORK/train.log"; fail "training step"; }
ckpt=$(ls "$WORK/runs/exp/checkpoints/"ckpt-*.h5 | tail -1)
"$SSLRUN" export "$ckpt" --out "$WORK/enc.safetensors" >"$WORK/export.log" 2>&1 || { cat "$WORK/export.log"; fail "export"; }
grep -q "resnet18 encoder" "$WORK/export.log" || fail "export summary"
if grep -q projector "$WORK/enc.safetensors"; then fail "projector exported with the encoder"; fi
/usr/bin/python3 "$SSL_SOURCE/tests/unit/check_export.py" "$WORK/enc.safetensors" resnet18_small_c1 || fail "torchvision load"
"$SSLRUN" export "$WORK/missing.h5" --out "$WORK/x.safetensors" >"$WORK/err.log" 2>&1 && fail "missing checkpoint accepted"
grep -q "missing.h5" "$WORK/err.log" || fail "error does not name the checkpoint"
echo "export: all checks passed"
