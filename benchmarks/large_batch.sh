#!/usr/bin/env bash
# The large-batch study, the small-scale twin of SimCLR's batch-size figure: SimCLR on Fashion-MNIST
# (configs/fmnist_simclr.yaml) at several global batches, each with LARS (linear and square-root lr
# scaling), LAMB and AdamW, for the same number of epochs; kNN (k = 20) and linear-probe top-1 of
# each, as a CSV, a Markdown table and (with python3-matplotlib) a PNG.
#   benchmarks/large_batch.sh [--batches "256 1024 4096"] [--optims "lars_linear lars_sqrt lamb adamw"]
#       [--epochs 10] [--limit 20000] [--ranks 1] [--micro 256] [--threads T] [--data DIR]
#       [--out DIR] [--sslrun BIN] [--record DIR] [--table-only]
# --record DIR keeps each finished run's small files (eval.json, metrics.jsonl, train_seconds, log)
# there and takes finished runs from there, so the study continues on another machine or day from a
# committed record (benchmarks/large_batch_runs/); --table-only runs nothing and tables what is done.
# A global batch B runs as --ranks ranks x accumulation steps x micro-batches of at most --micro
# images per rank (optim.accum_steps = B / (ranks x micro)); ranks > 1 go through mpirun. Every run
# resumes where it stopped and a finished one (eval.json present) is skipped, so the study can be
# spread over several sittings. Learning rates (chosen once, not tuned per batch):
#   lars_linear: 0.3 x B/256 (SimCLR's LARS rule)   lars_sqrt: 0.075 x sqrt(B) (SimCLR's square-root rule)
#   lamb, adamw: 2e-3 x sqrt(B/128) (the recipe's AdamW lr at its batch 128, scaled by the square root)
# Warm-up: a tenth of the epochs (SimCLR: 10 of 100). Weight decay 1e-6 as the recipe (LARS: 1e-6 as SimCLR).
set -euo pipefail
batches="256 1024 4096" optims="lars_linear lars_sqrt lamb adamw" epochs=10 limit=20000 ranks=1 micro=256
threads=$(nproc) data=data/fmnist out=runs/large_batch sslrun=build/launch/sslrun record="" table_only=0
while [ $# -gt 0 ]; do
    case $1 in
        --batches) batches=$2; shift 2 ;;
        --optims) optims=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        --limit) limit=$2; shift 2 ;;
        --ranks) ranks=$2; shift 2 ;;
        --micro) micro=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --sslrun) sslrun=$2; shift 2 ;;
        --record) record=$2; shift 2 ;;
        --table-only) table_only=1; shift ;;
        *) sed -n '2,19p' "$0" >&2; exit 2 ;;
    esac
done
cfg=$(dirname "$0")/../configs/fmnist_simclr.yaml
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n1)
launch=("$sslrun")
if [ "$ranks" -gt 1 ]; then
    launch=(mpirun --oversubscribe -np "$ranks" "$sslrun")
    [ "$(id -u)" != 0 ] || launch=(mpirun --allow-run-as-root --oversubscribe -np "$ranks" "$sslrun")
fi
per_rank_threads=$(( threads / ranks > 0 ? threads / ranks : 1 ))
mkdir -p "$out"
csv=$out/large_batch.csv
echo "batch,optimizer,lr_scaling,lr_peak,accum_steps,steps,knn20_top1,linear_top1,train_seconds" >"$csv"
echo "CPU: $cpu; $ranks rank(s) x $per_rank_threads thread(s); $epochs epochs of $limit images" >&2
for B in $batches; do
    accum=$(( B / (ranks * micro) )); [ "$accum" -ge 1 ] || accum=1
    [ $(( B % (ranks * accum) )) = 0 ] || { echo "batch $B does not split over $ranks ranks x $accum" >&2; exit 2; }
    for o in $optims; do
        case $o in
            lars_linear) opt=(optim.name=lars optim.lr=0.3 optim.lr_scaling=linear) ;;
            lars_sqrt) opt=(optim.name=lars optim.lr=0.075 optim.lr_scaling=sqrt) ;;
            lamb) opt=(optim.name=lamb optim.lr=0.000176777 optim.lr_scaling=sqrt) ;;     # 2e-3 / sqrt(128)
            adamw) opt=(optim.name=adamw optim.lr=0.000176777 optim.lr_scaling=sqrt) ;;
            *) echo "unknown optimizer setting '$o'" >&2; exit 2 ;;
        esac
        name="b${B}_$o" run=$out/b${B}_$o
        common=(run.out_dir="$out" run.name="$name" data.train="$data/train-*.h5" data.test="$data/test-*.h5"
            data.limit="$limit" data.batch_size="$B" optim.accum_steps="$accum" "${opt[@]}"
            schedule.epochs="$epochs" schedule.warmup_epochs="$(awk -v e="$epochs" 'BEGIN { print e / 10 }')"
            device.threads="$per_rank_threads" checkpoint.every_steps=50)
        if [ ! -f "$run/eval.json" ] && [ -n "$record" ] && [ -f "$record/$name/eval.json" ]; then
            mkdir -p "$run" && cp "$record/$name"/{eval.json,metrics.jsonl,train_seconds} "$run/" &&
                cp "$record/$name.log" "$out/"
        fi
        if [ ! -f "$run/eval.json" ] && [ "$table_only" = 1 ]; then
            echo "$B,${opt[0]#optim.name=},${opt[2]#optim.lr_scaling=},,$accum,,,," >>"$csv"
            continue
        fi
        if [ ! -f "$run/eval.json" ]; then
            t0=$(date +%s)
            OMP_NUM_THREADS=$per_rank_threads "${launch[@]}" pretrain "$cfg" "${common[@]}" >"$out/$name.log" 2>&1 ||
                { tail -n 5 "$out/$name.log" >&2; echo "$name: pretraining failed (log $out/$name.log)" >&2; exit 1; }
            echo $(( $(date +%s) - t0 )) >"$run/train_seconds"
            "$sslrun" eval "$cfg" "${common[@]}" device.threads="$threads" >>"$out/$name.log" 2>&1 ||
                { echo "$name: eval failed (log $out/$name.log)" >&2; exit 1; }
            if [ -n "$record" ]; then
                mkdir -p "$record/$name" && cp "$run"/{eval.json,metrics.jsonl,train_seconds} "$record/$name/" &&
                    cp "$out/$name.log" "$record/"
            fi
        fi
        lr=$(sed -nE 's/.*peak lr ([0-9.e+-]+).*/\1/p' "$out/$name.log" | tail -n1)
        steps=$(sed -nE 's/.*"step":([0-9]+).*/\1/p' "$run/metrics.jsonl" | tail -n1)
        knn=$(sed -nE 's/.*"knn_top1": \{"20": ([0-9.]+).*/\1/p' "$run/eval.json")
        lin=$(sed -nE 's/.*"linear_top1": ([0-9.]+).*/\1/p' "$run/eval.json" | awk '{ printf "%.2f", $1 }')
        echo "$B,${opt[0]#optim.name=},${opt[2]#optim.lr_scaling=},$lr,$accum,$steps,$knn,$lin,$(cat "$run/train_seconds" 2>/dev/null || echo)" >>"$csv"
        echo "batch $B $o: kNN $knn, linear $lin ($steps steps, peak lr $lr)" >&2
    done
done
echo
echo "| batch | $(echo $optims | sed 's/ / | /g') |"
echo "|---|$(for _ in $optims; do printf -- '---|'; done)"
for B in $batches; do
    row="| $B |"
    for o in $optims; do
        e=$out/b${B}_$o/eval.json
        [ -f "$e" ] || { row="$row (not yet) |"; continue; }
        row="$row $(sed -nE 's/.*"knn_top1": \{"20": ([0-9.]+).*/\1/p' "$e" | awk '{ printf "%.2f", $1 }') / $(sed -nE 's/.*"linear_top1": ([0-9.]+).*/\1/p' "$e" | awk '{ printf "%.2f", $1 }') |"
    done
    echo "$row"
done
echo
echo "(kNN k=20 / linear top-1 on the 10k test images; CPU: $cpu; CSV: $csv)"
[ -z "$record" ] || cp "$csv" "$record/"
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    /usr/bin/python3 - "$csv" "${record:-$out}/large_batch.png" <<'PY'
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open(sys.argv[1])))
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for ax, key, title in zip(axes, ("knn20_top1", "linear_top1"), ("kNN (k=20) top-1", "linear probe top-1")):
    for name in dict.fromkeys((r["optimizer"], r["lr_scaling"]) for r in rows):
        pts = [(int(r["batch"]), float(r[key])) for r in rows if (r["optimizer"], r["lr_scaling"]) == name and r[key]]
        if pts:
            ax.plot(*zip(*sorted(pts)), marker="o", label=f"{name[0]} ({name[1]})")
    ax.set_xscale("log", base=2); ax.set_xlabel("global batch"); ax.set_title(title); ax.grid(alpha=0.3)
axes[0].set_ylabel("top-1 (%)"); axes[1].legend(fontsize=8)
fig.tight_layout(); fig.savefig(sys.argv[2], dpi=100)
print("plot:", sys.argv[2])
PY
else
    echo "(no PNG: apt-get install python3-matplotlib)"
fi
