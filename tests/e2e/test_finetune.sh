#!/usr/bin/env bash
# `sslrun finetune` through the binary, on the tiny SimCLR run's checkpoint (common.sh): one epoch of
# fine-tuning (512 labelled images, global batch 64: 8 steps).
#  1. from the run's newest checkpoint (the default source): finetune.json with a top-1 and that source;
#  2. np=2 and np=4 equal np=1 with the same global batch (every step's loss, every final tensor,
#     within test_mpi_equiv.sh's tolerances, derived there for this model and batch);
#  3. stopped by run.max_steps and resumed: at the same rank count bit for bit, and np=1 -> np=2 -> np=1
#     within the tolerances;
#  4. --scratch runs, and starts elsewhere than the checkpoint (a different first loss: the negative
#     control of 1, 2 and 5, which would all pass if no weights were loaded);
#  5. --weights on `sslrun export`'s file equals --from the checkpoint (losses, weights and BN statistics,
#     exactly);
#  6. label_fraction 0.5 trains on half of each class; a tiny ViT with layer decay fine-tunes at
#     another input size than it was built for;
#  7. a fine-tuning directory holds one run: another label fraction or source refuses to resume it.
source "$(dirname "$0")/common.sh"
mpi_env
need_fmnist
write_config
equiv_setup
"$SSLRUN" "$WORK/tiny.yaml" schedule.epochs=1 >"$WORK/pre.log" 2>&1 || { cat "$WORK/pre.log"; fail "pretraining"; }
CKPT=$WORK/runs/tiny/checkpoints/ckpt-0000000008.h5
[ -f "$CKPT" ] || fail "no pretraining checkpoint"
FT=(finetune.epochs=1 finetune.lr=0.002 finetune.warmup_epochs=0.25)

ft() { # ft NP NAME args...: fine-tune as run NAME (its own RUN_DIR/finetune)
  local np=$1 name=$2; shift 2
  local cmd=("$SSLRUN" finetune "$WORK/tiny.yaml" run.name="$name" "${FT[@]}" "$@")
  if [ "$np" = 1 ]; then "${cmd[@]}"; else "$MPIEXEC" --oversubscribe -np "$np" "${cmd[@]}"; fi >>"$WORK/$name.log" 2>&1 ||
    { cat "$WORK/$name.log"; fail "$name: fine-tuning failed"; }
}
fdir() { echo "$WORK/runs/$1/finetune"; }
fsame() { # fsame REF RUN: losses of every step and final tensors within tolerance
  local ref=$1 run=$2
  [ "$(losses "$(fdir "$run")/metrics.jsonl" | wc -l)" = 8 ] || fail "$run: expected 8 logged steps"
  paste <(losses "$(fdir "$ref")/metrics.jsonl") <(losses "$(fdir "$run")/metrics.jsonl") |
    awk -v tol="$TOL_LOSS" -v run="$run" '{ if ($1 != $3) exit 2; d = $2 - $4; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2);
      if (r > m) m = r } END { printf "%s: loss max rel diff %.2e\n", run, m; exit m <= tol ? 0 : 1 }' ||
    fail "$run: losses differ from $ref beyond $TOL_LOSS"
  "$CKPT_COMPARE" "$(fdir "$ref")/checkpoints/ckpt-0000000008.h5" "$(fdir "$run")/checkpoints/ckpt-0000000008.h5" \
    --rtol "$TOL_W" --dataset params --dataset buffers | sed "s/^/$run: /" || fail "$run: final tensors differ from $ref"
}
first_loss() { losses "$(fdir "$1")/metrics.jsonl" | awk 'NR == 1 { print $2 }'; }

# 1. the default source: the run's newest pretraining checkpoint
ft 1 tiny
J=$(fdir tiny)/finetune.json
[ -f "$J" ] || fail "no finetune.json"
grep -qE '"top1": [0-9]+\.[0-9]+' "$J" || { cat "$J"; fail "finetune.json has no top-1"; }
grep -q '"label_fraction": 1,' "$J" && grep -q '"epochs": 1,' "$J" && grep -qE '"images_per_s": [0-9.]+' "$J" ||
  { cat "$J"; fail "finetune.json lacks label_fraction / epochs / images_per_s"; }
grep -q "\"source\": \"checkpoint $CKPT (simclr, step 8)\"" "$J" || { cat "$J"; fail "finetune.json does not name the checkpoint"; }
[ "$(losses "$(fdir tiny)/metrics.jsonl" | wc -l)" = 8 ] || fail "tiny: expected 8 logged steps"

# 2. data parallel: np=2 and np=4 equal np=1
ft 1 ft1 --from "$CKPT"
ft 2 ft2 --from "$CKPT"
ft 4 ft4 --from "$CKPT"
grep -q "global batch 64 (4 ranks x 16)" "$WORK/ft4.log" || fail "np=4 layout line"
diff <(losses "$(fdir tiny)/metrics.jsonl") <(losses "$(fdir ft1)/metrics.jsonl") >/dev/null || fail "--from the newest checkpoint differs from the default"
fsame ft1 ft2
fsame ft1 ft4

# 3. run.max_steps and resume: same rank count bit for bit; np=1 -> np=2 -> np=1 within tolerance
ft 1 budget --from "$CKPT" run.max_steps=5
grep -q "run.max_steps reached: checkpoint written at step 5" "$WORK/budget.log" || fail "budget: no stop message"
[ ! -f "$(fdir budget)/finetune.json" ] || fail "budget: finetune.json before the end"
: >"$WORK/budget.log"
ft 1 budget
resumed "$WORK/budget.log" 5
once "$(fdir budget)/metrics.jsonl"
diff <(losses "$(fdir ft1)/metrics.jsonl") <(losses "$(fdir budget)/metrics.jsonl") || fail "losses after max_steps+resume differ"
"$CKPT_COMPARE" "$(fdir ft1)/checkpoints/ckpt-0000000008.h5" "$(fdir budget)/checkpoints/ckpt-0000000008.h5" --rtol 0 \
  --dataset params --dataset buffers --dataset optim/m --dataset optim/v >/dev/null || fail "final weights after resume differ"
grep -q "\"source\": \"checkpoint $CKPT" "$(fdir budget)/finetune.json" || fail "budget: the resumed run forgot its source"
ft 1 chain --from "$CKPT" run.max_steps=3
: >"$WORK/chain.log"
ft 2 chain run.max_steps=3
resumed "$WORK/chain.log" 3
grep -q "written by 1 rank(s), this job has 2" "$WORK/chain.log" || fail "chain: no note about the rank count"
: >"$WORK/chain.log"
ft 1 chain
resumed "$WORK/chain.log" 6
once "$(fdir chain)/metrics.jsonl"
fsame ft1 chain

# 4. --scratch: the supervised baseline runs, from other weights than the checkpoint's
ft 1 scratch --scratch
grep -q '"source": "scratch' "$(fdir scratch)/finetune.json" || fail "scratch: finetune.json"
[ "$(first_loss scratch)" != "$(first_loss ft1)" ] || fail "--from the checkpoint starts where --scratch does: weights not loaded"

# 5. --weights on the exported encoder = --from the checkpoint
"$SSLRUN" export "$CKPT" --out "$WORK/enc.safetensors" >"$WORK/export.log" 2>&1 || { cat "$WORK/export.log"; fail "export"; }
ft 1 fromw --weights "$WORK/enc.safetensors"
grep -q '"source": "weights .*enc.safetensors' "$(fdir fromw)/finetune.json" || fail "fromw: finetune.json source"
diff <(losses "$(fdir ft1)/metrics.jsonl") <(losses "$(fdir fromw)/metrics.jsonl") || fail "--weights differs from --from"
"$CKPT_COMPARE" "$(fdir ft1)/checkpoints/ckpt-0000000008.h5" "$(fdir fromw)/checkpoints/ckpt-0000000008.h5" --rtol 0 \
  --dataset params --dataset buffers >/dev/null || fail "--weights: final weights or BN statistics differ from --from"

# 6. label fraction (half of each class); a tiny ViT (2 blocks) with layer decay at 8 px instead of its 16
ft 1 half --scratch finetune.label_fraction=0.5 finetune.batch_size=32 finetune.name=ft50
# finetune.name: each protocol in its own directory of the run
grep -q '"label_fraction": 0.5,' "$WORK/runs/half/ft50/finetune.json" && [ ! -e "$(fdir half)" ] ||
  fail "finetune.name=ft50: no RUN_DIR/ft50/finetune.json, or RUN_DIR/finetune written too"
# half of each class, rounded per class: 256 +- 5 of the 512 (10 classes)
sed -nE 's/.* on ([0-9]+) of 512 labelled samples.*/\1/p' "$WORK/half.log" | awk '{ exit !($1 >= 251 && $1 <= 261) }' ||
  { cat "$WORK/half.log"; fail "label_fraction 0.5: not half of 512"; }
ft 1 vit --scratch model.arch=vit_tiny model.vit_dim=32 model.vit_depth=2 model.vit_heads=2 model.patch_size=4 \
  finetune.img_size=8 finetune.layer_decay=0.65
grep -qE '"top1": [0-9]+\.[0-9]+.*"img_size": 8' "$(fdir vit)/finetune.json" || fail "vit: finetune.json"
"$SSLRUN" finetune "$WORK/tiny.yaml" run.name=nothing "${FT[@]}" >"$WORK/none.log" 2>&1 && fail "no checkpoint accepted"
grep -q "no pretraining checkpoint in" "$WORK/none.log" || { cat "$WORK/none.log"; fail "no clear error without a checkpoint"; }

# 7. one run per fine-tuning directory: another label subset or starting point is a config error (exit 2)
#    that leaves the directory's config.yaml as it was; a fresh start from a file that does not exist is
#    one too; the same source resumes
expect_ft() { # expect_ft CODE PATTERN args...
  local code=$1 pat=$2 rc=0
  shift 2
  "$SSLRUN" finetune "$WORK/tiny.yaml" "${FT[@]}" "$@" >"$WORK/x.log" 2>&1 || rc=$?
  [ $rc = "$code" ] && grep -q -- "$pat" "$WORK/x.log" || { cat "$WORK/x.log"; fail "finetune $*: exit $rc, expected $code and '$pat'"; }
}
cp "$(fdir budget)/config.yaml" "$WORK/budget.yaml.before"
expect_ft 2 "holds a fine-tuning run with finetune.label_fraction 1, not 0.5" run.name=budget finetune.label_fraction=0.5
cmp -s "$(fdir budget)/config.yaml" "$WORK/budget.yaml.before" || fail "a refused rerun overwrote the run's config.yaml"
expect_ft 2 "started from checkpoint $CKPT (simclr, step 8); this command asks for --scratch" run.name=budget --scratch
expect_ft 2 "started from scratch .*; this command asks for $CKPT" run.name=scratch --from "$CKPT"
expect_ft 2 "this command asks for $WORK/nope.h5" run.name=budget --from "$WORK/nope.h5"
expect_ft 2 "from $WORK/nope.h5: No such file" run.name=fresh --from "$WORK/nope.h5"
expect_ft 0 "resumed from .*ckpt-0000000008.h5 at step 8" run.name=budget --from "$CKPT"
echo "finetune: all checks passed"
