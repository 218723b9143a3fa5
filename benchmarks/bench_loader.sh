#!/bin/bash
# Data path speed, sslrun against PyTorch, on the same JPEG files: benchmarks/make_photo_set.py
# makes N photographs at ImageNet-like sizes (once), `sslrun prep images --format jpeg` stores them
# byte for byte in JPEG shards, then for each worker count bench_loader (ssl_loader + the trainer's
# SimCLR transform) and benchmarks/torch_loader.py (DataLoader + ImageFolder + torchvision's SimCLR
# transforms) run alternately, so drift in the machine's load hits both. Batch 64, 2 views of 224 px.
#   benchmarks/bench_loader.sh [--images 2000] [--workers "1 2 4"] [--batches 30] [--out data/bench_loader]
#                              [--sslrun build/launch/sslrun] [--bench BIN (default: next to sslrun)]
set -euo pipefail
cd "$(dirname "$0")/.."
images=2000 workers="1 2 4" batches=30 warmup=3 out=data/bench_loader sslrun=build/launch/sslrun bench=
while [ $# -gt 0 ]; do
    case "$1" in
        --images) images=$2; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        --batches) batches=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --sslrun) sslrun=$2; shift 2 ;;
        --bench) bench=$2; shift 2 ;;
        *) echo "usage: $0 [--images N] [--workers '1 2'] [--batches N] [--out DIR] [--sslrun BIN] [--bench BIN]" >&2
           exit 2 ;;
    esac
done
bench=${bench:-$(dirname "$sslrun")/../benchmarks/bench_loader}
py=/usr/bin/python3
for b in "$sslrun" "$bench"; do [ -x "$b" ] || { echo "$0: $b not built" >&2; exit 1; }; done

# The photo set and its shards are made once per --out; a set of another size is not overwritten.
have=0
[ ! -d "$out/images" ] || have=$(find "$out/images" -name '*.jpg' | wc -l)
if [ "$have" -eq 0 ]; then
    "$py" benchmarks/make_photo_set.py "$out/images" --images "$images"
    rm -rf "$out/jpeg"
elif [ "$have" -ne "$images" ]; then
    echo "$0: $out/images holds $have images, not $images: remove it or pass another --out" >&2
    exit 1
fi
if ! compgen -G "$out/jpeg/train-*.h5" >/dev/null; then
    "$sslrun" prep images "$out/images" --out "$out/jpeg" --format jpeg
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rows=()
for w in $workers; do
    "$bench" --data "$out/jpeg/train-*.h5" --workers "$w" --batches "$batches" --warmup "$warmup" > "$tmp/ours" 2>&1 ||
        { cat "$tmp/ours"; exit 1; }
    "$py" benchmarks/torch_loader.py "$out/images" --workers "$w" --batches "$batches" --warmup "$warmup" \
        > "$tmp/theirs" 2>&1 || { cat "$tmp/theirs"; exit 1; }
    [ ${#rows[@]} -gt 0 ] || { grep -E '^(CPU|jpeg data|batch)' "$tmp/ours"; grep '^PyTorch' "$tmp/theirs"; }
    ours=$(sed -n "s/^jpeg workers $w depth [0-9]*: \([0-9.]*\) img.*/\1/p" "$tmp/ours")
    theirs=$(sed -n "s/^torch workers $w: \([0-9.]*\) img.*/\1/p" "$tmp/theirs")
    rows+=("| $w | $ours | $theirs | $(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2fx", a / b }') |")
    echo "workers $w: sslrun $ours img/s, PyTorch $theirs img/s" >&2
done
echo
echo "| workers | sslrun img/s | PyTorch img/s | ratio |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
