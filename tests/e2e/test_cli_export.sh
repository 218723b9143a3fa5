#!/usr/bin/env bash
# `sslrun export` on a real checkpoint: the encoder (no projector) loads into torchvision's
# resnet18 (small stem) with only fc.* missing and identical values; the checkpoint itself, read
# with h5py alone, rebuilds the same state_dict and names the sslrun that wrote it.
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
"$SSLRUN" export "$WORK/missing.h5" --out "$WORK/x.safetensors" >"$WORK/err.log" 2>&1 && fail "missing checkpoint accepted"
grep -q "missing.h5" "$WORK/err.log" || fail "error does not name the checkpoint"
echo "export: all checks passed"
