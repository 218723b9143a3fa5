#!/usr/bin/env bash
# The label-efficiency protocol on Fashion-MNIST: fine-tune a pretraining run's encoder end to end at
# 1%, 10% and 100% of the training labels (class-balanced, seeded subsets of all 60k images) and report
# top-1 on the 10k test images; --scratch gives the supervised baseline with the same labels and recipe.
# One recipe for every encoder: AdamW peak lr 2e-3 (finetune.lr 4e-3 x 128/256), weight decay 0.05,
# label smoothing 0.1, crops of scale 0.3-1 + flips, batch 128; epochs per fraction so that each sees
# a comparable number of steps (1%: 50 epochs = 200 steps, 10%: 10 = 460, 100%: 2 = 936).
#   benchmarks/fmnist_finetune.sh CONFIG OUT_DIR [--scratch] [--fractions "0.01 0.1 1"] [--data DIR]
#       [--threads T] [--sslrun BIN] [k=v ...]
# OUT_DIR is the pretraining's run.out_dir (the run is OUT_DIR/<run.name>); results go to
# OUT_DIR/<run.name>/ft<percent>[_scratch]/finetune.json, and one line per fraction to stdout.
set -euo pipefail
cfg=$1 out=$2; shift 2
scratch=() tag="" fractions="0.01 0.1 1" data=data/fmnist threads=1 sslrun=build/launch/sslrun extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --scratch) scratch=(--scratch); tag=_scratch; shift ;;
        --fractions) fractions=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --sslrun) sslrun=$2; shift 2 ;;
        *=*) extra+=("$1"); shift ;;
        *) echo "usage: $0 CONFIG OUT_DIR [--scratch] [--fractions '0.01 0.1 1'] [--data DIR] [--threads T] [k=v ...]" >&2
           exit 2 ;;
    esac
done
run=$(sed -nE 's/^  name: *"?([^"# ]+).*/\1/p' "$cfg" | head -n1) # run.name: the first section's (a run's config.yaml quotes it)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $threads threads; $(basename "$cfg")${tag:+ from scratch}"
for f in $fractions; do
    pct=$(awk -v f="$f" 'BEGIN { printf "%g", f * 100 }')
    epochs=$(awk -v f="$f" 'BEGIN { print (f <= 0.01 ? 50 : f <= 0.1 ? 10 : 2) }')
    name="ft${pct}${tag}"
    "$sslrun" finetune "$cfg" "${scratch[@]}" run.out_dir="$out" device.threads="$threads" data.limit=0 \
        data.train="$data/train-*.h5" data.test="$data/test-*.h5" finetune.name="$name" finetune.label_fraction="$f" \
        finetune.epochs="$epochs" finetune.lr=0.004 finetune.crop_scale='[0.3, 1.0]' "${extra[@]}" >&2
    json="$out/$run/$name/finetune.json"
    printf '%s%s %s%% labels: top-1 %s, %s s\n' "$(basename "$cfg")" "$tag" "$pct" \
        "$(sed -nE 's/.*"top1": ([0-9.]+).*/\1/p' "$json")" "$(sed -nE 's/.*"seconds": ([0-9.]+).*/\1/p' "$json")"
done
