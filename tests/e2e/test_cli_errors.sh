#!/usr/bin/env bash
# What users see for bad input: config errors name file:line:column and the key, exit code 2,
# and nothing starts; a bad dataset path names the path (the kNN monitor's data.test too, before
# training); a corrupt shard names file and dataset.
source "$(dirname "$0")/common.sh"
expect() { # expect CODE PATTERN -- command...
  local code=$1 pat=$2; shift 3
  local rc=0; "$@" >"$WORK/out" 2>&1 || rc=$?
  [ $rc = "$code" ] || { cat "$WORK/out"; fail "exit $rc, expected $code: $*"; }
  grep -q -- "$pat" "$WORK/out" || { cat "$WORK/out"; fail "missing '$pat' in output of: $*"; }
}
printf 'optim:\n  lr: 0.1\n  lerning_rate: 3\n' > "$WORK/unknown.yaml"
expect 2 "unknown.yaml:3:3: unknown key 'optim.lerning_rate'" -- "$SSLRUN" "$WORK/unknown.yaml"
printf 'data:\n  batch_size: lots\n' > "$WORK/type.yaml"
expect 2 "type.yaml:2:15: 'data.batch_size' expects an integer" -- "$SSLRUN" "$WORK/type.yaml"
printf 'simclr:\n  temperature: -1\n' > "$WORK/range.yaml"
expect 2 "'simclr.temperature' must be > 0" -- "$SSLRUN" "$WORK/range.yaml"
# a key renamed in config version 2: an error giving the new name, unless the file says version 1
printf 'method:\n  name: simclr\n  temperature: 0.3\n' > "$WORK/renamed.yaml"
expect 2 "renamed.yaml:3:3: 'method.temperature' is 'simclr.temperature' since config version 2" -- "$SSLRUN" "$WORK/renamed.yaml"
expect 2 "cannot open '$WORK/nope.yaml'" -- "$SSLRUN" "$WORK/nope.yaml"
printf 'run:\n  seed: 1\n' > "$WORK/ok.yaml"
expect 2 "override 'optim.lr=abc'" -- "$SSLRUN" "$WORK/ok.yaml" optim.lr=abc
# the method's own checks are config errors too, before any data is opened
expect 2 "byol takes 2 views per image; augment.views is 3" -- "$SSLRUN" "$WORK/ok.yaml" method.name=byol augment.views=3
expect 2 "augment.view_blur_p has 3 entries, but simclr takes 2 views per image" -- \
  "$SSLRUN" "$WORK/ok.yaml" "augment.view_blur_p=[1.0, 0.1, 0.5]"
expect 2 "moco_v2.shuffle_bn_groups 3 does not divide data.batch_size" -- "$SSLRUN" "$WORK/ok.yaml" \
  method.name=moco_v2 moco_v2.shuffle_bn_groups=3
expect 2 "dino.local_size (40 px) is larger than the global crops' model.img_size (32 px)" -- "$SSLRUN" \
  "$WORK/ok.yaml" method.name=dino dino.local_size=40
expect 2 "dino takes 2 global crops per image" -- "$SSLRUN" "$WORK/ok.yaml" method.name=dino augment.views=4
expect 2 "mae needs a ViT encoder (model.arch: vit_tiny, vit_small or vit_base); model.arch is resnet18" -- "$SSLRUN" \
  "$WORK/ok.yaml" method.name=mae augment.views=1
expect 2 "mae takes 1 view per image (augment.views: 1); augment.views is 2" -- "$SSLRUN" "$WORK/ok.yaml" \
  method.name=mae model.arch=vit_tiny
expect 2 "dino.local_size (40 px) is larger" -- "$SSLRUN" config "$WORK/ok.yaml" method.name=dino dino.local_size=40

printf 'data:\n  train: %s/missing/*.h5\n' "$WORK" > "$WORK/nodata.yaml"
expect 1 "missing" -- "$SSLRUN" "$WORK/nodata.yaml"
printf 'not hdf5' > "$WORK/bad-00000.h5"
printf 'data:\n  train: %s/bad-*.h5\n' "$WORK" > "$WORK/baddata.yaml"
expect 1 "bad-00000.h5" -- "$SSLRUN" "$WORK/baddata.yaml"
# a run directory longer than the trainers' paths allow: a config error, also for `sslrun config`
long=$(printf '/tmp/%0895d' 0)
expect 2 "'finetune.name' make a directory of 1010 bytes; at most 900" -- "$SSLRUN" "$WORK/ok.yaml" \
  run.out_dir="$long" run.name="$(printf 'n%.0s' {1..100})"
expect 2 "make a directory of 1010 bytes" -- "$SSLRUN" config "$WORK/ok.yaml" run.out_dir="$long" \
  run.name="$(printf 'n%.0s' {1..100})"
# help: `sslrun help [COMMAND]` as --help; a file or directory that is no config is named as such
expect 0 "usage: sslrun eval CONFIG.yaml" -- "$SSLRUN" help eval
expect 0 "commands:" -- "$SSLRUN" help
expect 2 "is a directory, not a command: a config file's name ends in .yaml" -- "$SSLRUN" "$WORK"
# eval: the baselines and --ckpt exclude each other; no data to classify is a config error
expect 2 "exclude each other" -- "$SSLRUN" eval "$WORK/ok.yaml" --random-init --raw-pixels
expect 2 "data.test is empty" -- "$SSLRUN" eval "$WORK/ok.yaml" data.train=x.h5
# nothing to train on: a config error, named
expect 2 "data.train is empty" -- "$SSLRUN" "$WORK/ok.yaml" run.out_dir="$WORK/runs"
# the kNN monitor's data.test is checked at the start, not after the first epoch
need_fmnist
printf 'data:\n  train: %s/data/train-*.h5\n  test: %s/nope/test-*.h5\n  limit: 256\neval:\n  knn_every_epochs: 1\n' \
  "$WORK" "$WORK" > "$WORK/notest.yaml"
expect 1 "data.test (the kNN monitor's, eval.knn_every_epochs): .*nope/test-\*.h5" -- "$SSLRUN" "$WORK/notest.yaml" \
  run.out_dir="$WORK/runs"
! grep -q "epoch 1" "$WORK/out" || fail "the kNN monitor's data.test was found missing after training"
# a backend this sslrun cannot give says why (not built / not verified / no device), not "see above"
expect 1 "device.backend 'cuda' is not available: [a-z]" -- "$SSLRUN" "$WORK/notest.yaml" run.out_dir="$WORK/runs" \
  device.backend=cuda
echo "cli errors: all checks passed"
