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
"$SSLRUN" export "$WORK/missing.h5" --out "$WORK/x.safetensors" >"$WORK/err.log" 2>&1 && fail "missing checkpoint accepted"
grep -q "missing.h5" "$WORK/err.log" || fail "error does not name the checkpoint"
echo "export: all checks passed"
