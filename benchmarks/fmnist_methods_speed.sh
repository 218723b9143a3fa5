#!/bin/bash
# Training speed of every Fashion-MNIST recipe next to its PyTorch twin, measured side by side in one
# run on this machine: the real `sslrun` binary on configs/fmnist_<method>.yaml and
# benchmarks/torch_fmnist_{simclr,methods}.py, the same steps (batch 128 of each method's views: 2 views,
# DINO 2 x 28 px + 4 x 12 px crops, MAE 1 view; augmentation included), the same thread count,
# alternating sslrun / PyTorch per method so drift hits both. SimCLR also against the lean PyTorch loop
# (torch_fmnist_simclr.py --aug batched: augmentation as whole-batch tensor ops, no per-image transforms).
# Steady-state images/s over steps 10..STEPS (sslrun: the `time` of those metrics.jsonl records).
#   benchmarks/fmnist_methods_speed.sh [--threads 2] [--steps 60] [--data DIR] [--sslrun build/launch/sslrun]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=$(nproc) steps=60 data=data/fmnist sslrun=build/launch/sslrun methods="simclr moco_v2 moco_v3 byol dino mae"
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --sslrun) sslrun=$2; shift 2 ;;
        --methods) methods=$2; shift 2 ;;
        *) echo "usage: $0 [--threads T] [--steps N] [--data DIR] [--sslrun BIN] [--methods 'simclr byol']" >&2; exit 2 ;;
    esac
done
[ $((steps % 10)) -eq 0 ] && [ "$steps" -ge 20 ] || { echo "--steps: a multiple of 10, at least 20" >&2; exit 2; }
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $threads threads; $steps steps of batch 128"
echo "sslrun $("$sslrun" --version | cut -d' ' -f2-); PyTorch $("$py" -c 'import torch; print(torch.__version__)')"
printf '%-8s %12s %12s %8s\n' method "sslrun img/s" "torch img/s" ratio
for m in $methods; do
    "$sslrun" "configs/fmnist_$m.yaml" run.out_dir="$tmp" run.max_steps="$steps" run.log_every=10 \
        device.threads="$threads" data.train="$data/train-*.h5" data.test="$data/test-*.h5" \
        checkpoint.every_steps=100000 > "$tmp/$m.log" 2>&1 || { cat "$tmp/$m.log"; exit 1; }
    ours=$("$py" - "$tmp/fmnist_$m/metrics.jsonl" "$steps" <<'EOF'
import json, sys
rec = {r["step"]: r for r in map(json.loads, open(sys.argv[1])) if "img_per_s" in r}
n = int(sys.argv[2])
print(f"{(n - 10) * 128 / (rec[n]['time'] - rec[10]['time']):.1f}")
EOF
)
    if [ "$m" = simclr ]; then twin=(benchmarks/torch_fmnist_simclr.py); else twin=(benchmarks/torch_fmnist_methods.py --method "$m"); fi
    theirs=$("$py" "${twin[@]}" --threads "$threads" --max-steps "$steps" | sed -n 's/^steady \([0-9.]*\) img.*/\1/p')
    printf '%-8s %12s %12s %7.2fx\n' "$m" "$ours" "$theirs" "$(awk -v a="$ours" -v b="$theirs" 'BEGIN { print a / b }')"
    if [ "$m" = simclr ]; then # the lean loop: the same augmentation as whole-batch tensor ops
        lean=$("$py" "${twin[@]}" --aug batched --threads "$threads" --max-steps "$steps" |
            sed -n 's/^steady \([0-9.]*\) img.*/\1/p')
        printf '%-8s %12s %12s %7.2fx\n' "(lean)" "$ours" "$lean" "$(awk -v a="$ours" -v b="$lean" 'BEGIN { print a / b }')"
    fi
done
