#!/bin/bash
# Storage choices for photographs, measured on one folder of JPEGs (benchmarks/make_photo_set.py:
# ImageNet-like sizes): `sslrun prep images` as raw uint8 centre squares (--size S), as the original
# JPEG files stored byte for byte, and as JPEGs re-encoded at shorter side S (--size S --quality 90).
# For each: prep images/s at 1 and P ranks (mpirun), bytes per image on disk, `prep --verify` MB/s
# (reads and Fletcher-32-checks every chunk). Ranks share the work shard by shard, so --shard-size
# must leave several shards per rank. Prints the CPU model with the table.
#   benchmarks/bench_prep.sh PHOTO_DIR OUT_DIR [--size 224] [--ranks 2] [--shard-size 250] [--sslrun BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,8p' "$0"; exit 2; }
src=$1 out=$2 size=224 ranks=2 ss=250 sslrun=build/launch/sslrun
shift 2
while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=$2; shift 2 ;;
        --ranks) ranks=$2; shift 2 ;;
        --shard-size) ss=$2; shift 2 ;;
        --sslrun) sslrun=$2; shift 2 ;;
        *) sed -n '2,8p' "$0" >&2; exit 2 ;;
    esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
n=$(find "$src" -name '*.jpg' -o -name '*.JPEG' -o -name '*.jpeg' | wc -l)
src_bytes=$(find "$src" -type f \( -name '*.jpg' -o -name '*.JPEG' -o -name '*.jpeg' \) -printf '%s\n' | awk '{s+=$1} END {print s}')
now() { date +%s.%N; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $n source images, $(awk -v b="$src_bytes" -v n="$n" 'BEGIN {printf "%.0f", b / n}') bytes/image as files"
printf '%-34s %12s %12s %14s %12s\n' "format" "img/s np=1" "img/s np=$ranks" "bytes/image" "verify MB/s"
row() { # NAME ARGS...
    local name=$1 t0 t1 t2 t3 bytes
    shift
    rm -rf "$out/$name"
    t0=$(now)
    "$sslrun" prep images "$src" --out "$out/$name" --shard-size "$ss" "$@" >/dev/null 2>"$out/$name.log" || { cat "$out/$name.log"; exit 1; }
    t1=$(now)
    rm -rf "$out/$name"
    mpirun --oversubscribe -np "$ranks" "$sslrun" prep images "$src" --out "$out/$name" --shard-size "$ss" "$@" >/dev/null 2>"$out/$name.log" ||
        { cat "$out/$name.log"; exit 1; }
    t2=$(now)
    "$sslrun" prep --verify "$out/$name" >/dev/null 2>&1 || { echo "verify failed: $out/$name" >&2; exit 1; }
    t3=$(now)
    bytes=$(du -cb "$out/$name"/train-*.h5 | tail -1 | cut -f1)
    awk -v name="$name $*" -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v by="$bytes" -v P="$ranks" \
        'BEGIN {printf "%-34s %12.1f %12.1f %14.0f %12.1f\n", name, n / (b - a), n / (c - b), by / n, by / 1e6 / (d - c)}'
}
mkdir -p "$out"
row raw --size "$size"
row jpeg --format jpeg
row jpeg_resized --format jpeg --size "$size" --quality 90
