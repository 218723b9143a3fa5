#!/usr/bin/env bash
# Damaged checkpoints never kill a run or silently restart it. A run with checkpoints at steps 4 and
# 8 gets its newest one damaged three ways (a data byte flipped, truncated, a dataset removed): each
# resume names the file and the reason, falls back to step 4, keeps the damaged file as .damaged,
# and finishes with exactly the losses and final weights of an uninterrupted run. With every
# checkpoint damaged the run stops with an error and touches nothing; a checkpoint of another model
# stops it too (a config mistake, not damage: no fallback). `sslrun eval` falls back the same way
# but moves nothing.
source "$(dirname "$0")/common.sh"
: "${CKPT_DAMAGE:?set CKPT_DAMAGE}" "${CKPT_COMPARE:?set CKPT_COMPARE}"
need_fmnist
write_config
export OMP_NUM_THREADS=1
run() { "$SSLRUN" "$WORK/tiny.yaml" checkpoint.every_steps=4 checkpoint.keep=3 schedule.epochs=1 optim.lr=0.05 "$@"; }
run run.name=full >"$WORK/full.log" 2>&1 || { cat "$WORK/full.log"; fail "uninterrupted run"; }
run run.name=base run.max_steps=8 >"$WORK/base.log" 2>&1 || { cat "$WORK/base.log"; fail "first part"; }
ck() { echo "$WORK/runs/$1/checkpoints/ckpt-$(printf %010d "$2").h5"; }
[ -f "$(ck base 4)" ] && [ -f "$(ck base 8)" ] || fail "expected checkpoints at steps 4 and 8"

# the checkpoint carries its producer and per-tensor shapes (h5dump: HDF5 alone)
h5dump -a sslrun_version "$(ck base 8)" | grep -q '"[0-9]*\.[0-9]*\.[0-9]*"' || fail "no sslrun_version attribute"
h5dump -a git_commit "$(ck base 8)" >/dev/null || fail "no git_commit attribute"
h5dump -d segments "$(ck base 8)" | grep -q 'conv1.weight 0 [0-9]* 4,1,3,3' || fail "segment table lacks shapes"
h5dump -d buffer_segments "$(ck base 8)" | grep -q 'bn1.running_var' || fail "no buffer segment table"

# case NAME DAMAGE... : copy the base run, damage step 8, resume, expect a fallback to step 4
case_fallback() {
  local name=$1 reason=$2; shift 2
  cp -r "$WORK/runs/base" "$WORK/runs/$name"
  "$CKPT_DAMAGE" "$(ck "$name" 8)" "$@" >/dev/null || fail "$name: could not damage"
  run run.name="$name" >"$WORK/$name.log" 2>&1 || { cat "$WORK/$name.log"; fail "$name: the run died"; }
  grep -q "warning: $(ck "$name" 8): .*$reason" "$WORK/$name.log" || { cat "$WORK/$name.log"; fail "$name: no warning naming the file and '$reason'"; }
  grep -q "resumed from $(ck "$name" 4) at step 4$" "$WORK/$name.log" || fail "$name: did not fall back to step 4"
  [ -f "$(ck "$name" 8).damaged" ] || fail "$name: damaged file not kept as .damaged"
  # one history: steps 5..8 were logged before the damage and again after the fallback, once each
  [ "$(grep -c '"step":' "$WORK/runs/$name/metrics.jsonl")" = "$(losses "$WORK/runs/$name/metrics.jsonl" | wc -l)" ] ||
    fail "$name: a step is logged twice in metrics.jsonl"
  diff <(losses "$WORK/runs/full/metrics.jsonl") <(losses "$WORK/runs/$name/metrics.jsonl") || fail "$name: losses differ"
  "$CKPT_COMPARE" "$(ck full 8)" "$(ck "$name" 8)" --rtol 0 >/dev/null || fail "$name: final weights differ"
}
case_fallback flip "Fletcher32 checksum" flip params
case_fallback truncate "cannot open checkpoint: truncated: [0-9]* of [0-9]* bytes" truncate
case_fallback unlink "missing dataset 'optim/m'" unlink optim/m

# sslrun eval of a run whose newest checkpoint is damaged: reports it, evaluates the previous one,
# moves nothing (evaluation only reads)
cp -r "$WORK/runs/base" "$WORK/runs/ev"
"$CKPT_DAMAGE" "$(ck ev 8)" flip params >/dev/null || fail "damage"
"$SSLRUN" eval "$WORK/tiny.yaml" run.name=ev eval.train_limit=1000 eval.linear_epochs=0 >"$WORK/ev.log" 2>&1 ||
  { cat "$WORK/ev.log"; fail "eval with a damaged newest checkpoint"; }
grep -q "warning: $(ck ev 8): .*Fletcher32" "$WORK/ev.log" && grep -q "features ($(ck ev 4))" "$WORK/ev.log" ||
  { cat "$WORK/ev.log"; fail "eval did not fall back to step 4 with a warning"; }
[ -f "$(ck ev 8)" ] || fail "eval moved the damaged file"

# every checkpoint damaged: stop with an error, start nothing over, rename nothing
cp -r "$WORK/runs/base" "$WORK/runs/all"
"$CKPT_DAMAGE" "$(ck all 8)" truncate && "$CKPT_DAMAGE" "$(ck all 4)" flip buffers >/dev/null || fail "damage"
rc=0; run run.name=all >"$WORK/all.log" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$WORK/all.log"; fail "all damaged: exit code $rc, expected 1"; }
grep -q "no usable checkpoint in $WORK/runs/all/checkpoints: all 2 are damaged" "$WORK/all.log" || { cat "$WORK/all.log"; fail "all damaged: message"; }
[ -f "$(ck all 8)" ] && [ -f "$(ck all 4)" ] && ! ls "$WORK/runs/all/checkpoints/"*.damaged 2>/dev/null || fail "all damaged: files were moved"
[ "$(losses "$WORK/runs/all/metrics.jsonl" | tail -1 | cut -d' ' -f1)" = 8 ] || fail "all damaged: training ran anyway"
rc=0; "$SSLRUN" eval "$WORK/tiny.yaml" run.name=all eval.linear_epochs=0 >"$WORK/all-eval.log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "no usable checkpoint" "$WORK/all-eval.log" || fail "eval of all-damaged: exit $rc"

# another model's checkpoint: a config error, reported, no fallback, nothing renamed
cp -r "$WORK/runs/base" "$WORK/runs/other"
rc=0; run run.name=other model.width=8 >"$WORK/other.log" 2>&1 || rc=$?
[ $rc = 2 ] || { cat "$WORK/other.log"; fail "a checkpoint of another model: exit $rc, expected 2 (a config error)"; }
grep -q "different model or config" "$WORK/other.log" || { cat "$WORK/other.log"; fail "other model: message"; }
! ls "$WORK/runs/other/checkpoints/"*.damaged 2>/dev/null || fail "other model: a sound file was renamed"
echo "damaged checkpoints: all checks passed"
