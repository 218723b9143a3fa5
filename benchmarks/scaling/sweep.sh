#!/usr/bin/env bash
# Scaling sweep: runs `mpirun -np P sslrun pretrain CONFIG run.max_steps=N ...` for each point and
# writes DIR/sweep.csv (images/s, step / compute / communication ms, efficiency against np=1).
#
#   benchmarks/scaling/sweep.sh CONFIG [--ranks "1 2 4"] [--batch-per-rank "32 64"]
#       [--mode strong|weak|both] [--steps N] [--warmup W] [--repeats R] [--out DIR] [--sslrun PATH] [k=v ...]
#
# strong: the global batch is fixed at (first per-rank batch) x (largest rank count) and split over P;
# weak:   each per-rank batch is kept, the global batch is P x per-rank.
# Each point gets fresh run directories DIR/runs/np<P>-gb<G>-r<k>, k = 1..R (a point that strong and
# weak share runs once; with R > 1 the repeat with the lowest median step time is used, which filters
# out other jobs competing for the cores; the repeats of all points are interleaved).
# From each run: images/s = global batch / median step_s over the steps after the first W
# (metrics.jsonl, run.log_every=1), and rank 0's "step breakdown, ms per step" table (all ranks).
# Each run dir keeps stdout.txt, stderr.txt, metrics.jsonl, others.txt and wall.txt (the checkpoint
# that sslrun writes at run.max_steps is deleted). Extra k=v arguments go to sslrun (e.g.
# data.train=... data.test=...). Prints the CPU model. sslrun: $SSLRUN or build/launch/sslrun.
# Example (the committed results, ~10 min on 2 cores):
#   benchmarks/scaling/sweep.sh configs/fmnist_simclr.yaml --steps 30 --repeats 3 \
#       data.train="/tmp/base/data/train-*.h5" data.test="/tmp/base/data/test-*.h5"
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
[ $# -ge 1 ] || { sed -n '2,20p' "$0"; exit 2; }
config="$1"; shift
ranks="1 2 4"; bpr="32 64"; mode="both"; steps=30; warmup=5; repeats=1; out="$here/results"
sslrun="${SSLRUN:-$root/build/launch/sslrun}"
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --ranks) ranks="$2"; shift 2 ;;
        --batch-per-rank) bpr="$2"; shift 2 ;;
        --mode) mode="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --sslrun) sslrun="$2"; shift 2 ;;
        *=*) extra+=("$1"); shift ;;
        *) echo "sweep.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$mode" in strong|weak|both) ;; *) echo "sweep.sh: --mode is strong, weak or both" >&2; exit 2 ;; esac
[ -x "$sslrun" ] || { echo "sweep.sh: no sslrun at $sslrun (build first, or --sslrun PATH)" >&2; exit 2; }
config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
mkdir -p "$out"; out="$(cd "$out" && pwd)"
rm -rf "$out/runs"; mkdir -p "$out/runs"

cpu="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
ncores="$(nproc)"
echo "CPU: $cpu ($ncores cores); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu_model=$cpu" > "$out/machine.txt"
echo "cores=$ncores" >> "$out/machine.txt"
echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')" >> "$out/machine.txt"
echo "nice19_jobs_at_start=$(ps -eo ni= | awk '$1==19' | wc -l)" >> "$out/machine.txt"

mpi=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
maxp=0; for p in $ranks; do [ "$p" -gt "$maxp" ] && maxp=$p; done
first_b="${bpr%% *}"

# points: "mode P per_rank global"
points=()
if [ "$mode" != weak ]; then
    g=$((first_b * maxp))
    for p in $ranks; do
        [ $((g % p)) -eq 0 ] || { echo "sweep.sh: global batch $g does not split over $p ranks" >&2; exit 2; }
        points+=("strong $p $((g / p)) $g")
    done
fi
if [ "$mode" != strong ]; then
    for b in $bpr; do for p in $ranks; do points+=("weak $p $b $((p * b))"); done; done
fi

printf '%s\n' "${points[@]}" > "$out/points.txt"
for k in $(seq 1 "$repeats"); do
for pt in "${points[@]}"; do
    read -r m p b g <<< "$pt"
    name="np$p-gb$g-r$k"
    dir="$out/runs/$name"
    if [ -f "$dir/done" ]; then echo "== $m np=$p batch/rank=$b global=$g: same run as $name"; continue; fi
    echo "   $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
    mkdir -p "$dir"
    echo "== $m np=$p batch/rank=$b global=$g"
    # other normal-priority processes competing for the cores (sampled each second while it runs)
    ( while :; do ps -eo ni=,stat=,args= | awk -v d="$name" '$1 < 19 && $2 ~ /^R/ && $0 !~ d && $0 !~ /ps -eo|awk/' | wc -l; sleep 1; done ) \
        > "$dir/others.txt" 2>/dev/null &
    sampler=$!
    t0=$(date +%s.%N)
    rc=0
    "${mpi[@]}" -np "$p" "$sslrun" pretrain "$config" run.max_steps="$steps" run.log_every=1 \
        run.out_dir="$out/runs" run.name="$name" data.batch_size="$g" checkpoint.every_steps=0 \
        eval.knn_every_epochs=0 "${extra[@]}" > "$dir/stdout.txt" 2> "$dir/stderr.txt" || rc=$?
    t1=$(date +%s.%N)
    kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
    echo "$t0 $t1" > "$dir/wall.txt"
    if [ "$rc" -ne 0 ]; then echo "sweep.sh: run $name failed (rc $rc); see $dir/stderr.txt" >&2; tail -5 "$dir/stderr.txt" >&2; exit 1; fi
    grep -A $((p + 1)) '^step breakdown' "$dir/stdout.txt" | sed 's/^/   /'
    # the final checkpoint (MBs) and config.yaml (stdout.txt lists the config) are not results
    rm -rf "$dir/checkpoints" "$dir/config.yaml"
    touch "$dir/done"
done
done
/usr/bin/python3 "$here/parse.py" sweep "$out" --warmup "$warmup" --cpu "$cpu"
echo "wrote $out/sweep.csv"
