#!/usr/bin/env bash
# JPEG shards end to end, the way a user runs them: an image folder of JPEGs (Fashion-MNIST test
# images at varying sizes, tests/tools/make_jpeg_folder.py) -> `sslrun prep images --format jpeg` ->
# `--verify` -> a few SimCLR steps (reader threads decode at the DCT scale the crops allow and
# augment) -> kNN eval (centre crops) -> eval.json. Then a shard whose image 3 is a truncated JPEG
# (valid checksums and h5py's string attributes: written by h5py) is skipped with a warning naming shard and row under
# data.on_corrupt=skip, and stops the run, naming them, under stop; in pretraining and fine-tuning.
source "$(dirname "$0")/common.sh"
PY=/usr/bin/python3
"$PY" -c "import PIL, h5py" 2>/dev/null || fail "/usr/bin/python3 lacks PIL or h5py (scripts/setup.sh --test installs them)"
[ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] || { echo "no $FMNIST: skipping"; exit 77; }

"$PY" "$SSL_SOURCE/tests/tools/make_jpeg_folder.py" --out "$WORK/src" --per-class 20 >/dev/null || fail "folder"
"$SSLRUN" prep images "$WORK/src" --out "$WORK/jpeg" --format jpeg --shard-size 90 >"$WORK/prep.log" 2>&1 ||
  { cat "$WORK/prep.log"; fail "prep --format jpeg"; }
"$SSLRUN" prep --verify "$WORK/jpeg" >"$WORK/verify.log" 2>&1 || { cat "$WORK/verify.log"; fail "verify"; }

cat > "$WORK/jpeg.yaml" <<YAML
run: {name: jpeg, out_dir: "$WORK/runs", seed: 3, log_every: 1}
model: {arch: resnet18, small_stem: true, width: 4, img_size: 24}
method: {name: simclr}
simclr: {temperature: 0.5, proj_hidden: 32, proj_dim: 16}
data: {train: "$WORK/jpeg/train-*.h5", test: "$WORK/jpeg/train-*.h5", batch_size: 40, workers: 2}
augment: {crop_scale: [0.3, 1.0], brightness: 0.4, contrast: 0.4, saturation: 0.0, hue: 0.0, grayscale_p: 0.0}
optim: {name: adamw, lr: 0.002, weight_decay: 0.000001}
schedule: {epochs: 1, warmup_epochs: 0.2}
checkpoint: {every_steps: 0, keep: 1}
eval: {knn_k: [5], linear_epochs: 1}
YAML
"$SSLRUN" "$WORK/jpeg.yaml" device.threads=1 >"$WORK/train.log" 2>&1 || { cat "$WORK/train.log"; fail "training on JPEG shards"; }
grep -q "200 samples 0x0x3 from 3 shard(s)" "$WORK/train.log" || { cat "$WORK/train.log"; fail "the plan line does not describe the JPEG shards"; }
[ "$(grep -c '"step":' "$WORK/runs/jpeg/metrics.jsonl")" -ge 5 ] || fail "fewer than 5 logged steps"
# augment.on device (auto on the devsim backend): the readers decode and stage the source pixels with
# each view's parameters, the backend's augment op makes the views; the same losses bit for bit
"$SSLRUN" "$WORK/jpeg.yaml" device.threads=1 device.backend=devsim run.name=jpeg_dev >"$WORK/dev.log" 2>&1 ||
  { cat "$WORK/dev.log"; fail "training on JPEG shards, augmentation on the device"; }
grep -q "augmentation: on the device" "$WORK/dev.log" || fail "devsim: augmentation is not on the device"
diff <(losses "$WORK/runs/jpeg/metrics.jsonl") <(losses "$WORK/runs/jpeg_dev/metrics.jsonl") ||
  fail "JPEG shards: augmentation on the device changed the losses"
"$SSLRUN" eval "$WORK/runs/jpeg/config.yaml" device.threads=1 >"$WORK/eval.log" 2>&1 || { cat "$WORK/eval.log"; fail "eval"; }
"$PY" -c "import json, sys; e = json.load(open(sys.argv[1])); assert e['knn_top1']['5'] > 0 and e['test_samples'] == 200, e" \
  "$WORK/runs/jpeg/eval.json" || fail "eval.json"
# 10 classes, 200 images, a few steps: far below trained numbers, but above chance (10%) it must be
grep -E "kNN top-1 \(k=5" "$WORK/eval.log" | awk '{v=$NF; sub(/%/,"",v); if (v+0 < 15) exit 1}' ||
  { cat "$WORK/eval.log"; fail "kNN on the JPEG test shards is at chance"; }

# a truncated JPEG inside a shard, with valid checksums
"$PY" - "$WORK/jpeg/train-00000.h5" "$WORK/bad/train-00000.h5" <<'PY' || fail "making the damaged shard"
import os, sys, h5py, numpy as np
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(dst), exist_ok=True)
with h5py.File(src, "r") as f, h5py.File(dst, "w", libver=("v110", "latest")) as g:
    off, jpg = f["offsets"][:], f["jpeg"][:]
    parts = [jpg[off[i]:off[i + 1]] for i in range(len(off) - 1)]
    parts[3] = parts[3][: len(parts[3]) * 2 // 3]
    new = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    g.create_dataset("jpeg", data=np.concatenate(parts), chunks=True, fletcher32=True)
    g.create_dataset("offsets", data=new, chunks=True, fletcher32=True)
    for k in ("sizes", "labels"):
        g.create_dataset(k, data=f[k][:], chunks=True, fletcher32=True)
    for k, v in f.attrs.items():  # as h5py copies them: fixed-length, null-padded strings ...
        g.attrs[k] = v
    g.attrs["format"] = "sslrun-shard"  # ... and a Python str (variable-length UTF-8)
PY
"$SSLRUN" "$WORK/jpeg.yaml" device.threads=1 "data.train=$WORK/bad/train-*.h5" data.test= run.name=skip \
  >"$WORK/skip.log" 2>&1 || { cat "$WORK/skip.log"; fail "on_corrupt=skip stopped the run"; }
grep -q "warning: rank 0: $WORK/bad/train-00000.h5: dataset 'jpeg' row 3 (sample 3): corrupt JPEG data" "$WORK/skip.log" ||
  { cat "$WORK/skip.log"; fail "the skipped image is not named"; }
# the stand-in image's sources and jobs staged in the skipped one's place: the same losses on the device
"$SSLRUN" "$WORK/jpeg.yaml" device.threads=1 "data.train=$WORK/bad/train-*.h5" data.test= run.name=skip_dev \
  augment.on=device >"$WORK/skip_dev.log" 2>&1 || { cat "$WORK/skip_dev.log"; fail "on_corrupt=skip, device"; }
diff <(losses "$WORK/runs/skip/metrics.jsonl") <(losses "$WORK/runs/skip_dev/metrics.jsonl") ||
  fail "on_corrupt=skip: augmentation on the device changed the losses"
set +e
"$SSLRUN" "$WORK/jpeg.yaml" device.threads=1 "data.train=$WORK/bad/train-*.h5" data.test= data.on_corrupt=stop \
  run.name=stop >"$WORK/stop.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || { cat "$WORK/stop.log"; fail "on_corrupt=stop trained on"; }
grep -q "$WORK/bad/train-00000.h5: dataset 'jpeg' row 3 (sample 3): corrupt JPEG data.*data.on_corrupt: stop" "$WORK/stop.log" ||
  { cat "$WORK/stop.log"; fail "the stop does not name the image"; }
# on a device backend the next batch is read one ahead (framework/train/feed.c): the error waits for
# the step that needs the batch, so the same steps are done and logged before the stop
set +e
"$SSLRUN" "$WORK/jpeg.yaml" device.threads=1 "data.train=$WORK/bad/train-*.h5" data.test= data.on_corrupt=stop \
  device.backend=devsim run.name=stop_dev >"$WORK/stop_dev.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || { cat "$WORK/stop_dev.log"; fail "devsim: on_corrupt=stop trained on"; }
grep -q "row 3 (sample 3): corrupt JPEG data.*data.on_corrupt: stop" "$WORK/stop_dev.log" ||
  { cat "$WORK/stop_dev.log"; fail "devsim: the stop does not name the image"; }
diff <(losses "$WORK/runs/stop/metrics.jsonl") <(losses "$WORK/runs/stop_dev/metrics.jsonl") ||
  fail "devsim: the steps before the stop differ from the CPU's"
[ "$(losses "$WORK/runs/stop/metrics.jsonl" | wc -l)" -ge 1 ] || fail "no step before the stop: nothing compared"
# fine-tuning reads through the same transform: the image is skipped and named, or stops the run
"$SSLRUN" finetune "$WORK/jpeg.yaml" device.threads=1 "data.train=$WORK/bad/train-*.h5" run.name=ftskip \
  finetune.epochs=1 --scratch >"$WORK/ftskip.log" 2>&1 || { cat "$WORK/ftskip.log"; fail "finetune: on_corrupt=skip stopped the run"; }
grep -q "warning: rank 0: $WORK/bad/train-00000.h5: dataset 'jpeg' row 3 (sample 3): corrupt JPEG data" "$WORK/ftskip.log" ||
  { cat "$WORK/ftskip.log"; fail "finetune: the skipped image is not named"; }
set +e
"$SSLRUN" finetune "$WORK/jpeg.yaml" device.threads=1 "data.train=$WORK/bad/train-*.h5" data.on_corrupt=stop \
  run.name=ftstop finetune.epochs=1 --scratch >"$WORK/ftstop.log" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || { cat "$WORK/ftstop.log"; fail "finetune: on_corrupt=stop exited $rc, not 1"; }
grep -q "$WORK/bad/train-00000.h5: dataset 'jpeg' row 3 (sample 3): corrupt JPEG data.*data.on_corrupt: stop" "$WORK/ftstop.log" ||
  { cat "$WORK/ftstop.log"; fail "finetune: the stop does not name the image"; }
echo "PASS: JPEG shards: prep, verify, train, kNN eval; a corrupt image skipped or stopping, named (pretrain and finetune)"
