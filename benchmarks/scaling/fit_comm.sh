#!/usr/bin/env bash
# Fits the alpha-beta (latency-bandwidth) model to this machine's collectives: runs
# build/benchmarks/bench_comm at each rank count and fits, per collective and P, by least squares
#   allreduce:                 t = 2(P-1) alpha + 2(P-1)/P n beta
#   allgather, reduce-scatter: t =  (P-1) alpha +  (P-1)/P n beta
# (n: the bytes of the full vector: the allreduce buffer, the gathered output, the scattered input).
# Writes DIR/comm_fit.csv (collective, P, alpha_us, beta_us_per_byte, GB_s, r2) and the raw tables
# DIR/bench_comm_np<P>-<k>.txt. With --repeats R (default 3) bench_comm runs R times at each P and the
# fit takes the fastest time per size (on a shared machine other jobs only ever add time).
#
#   benchmarks/scaling/fit_comm.sh [--ranks "2 4"] [--max 16777216] [--iters 10] [--repeats 3] [--out DIR] [--bench PATH]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
ranks="2 4"; max=16777216; iters=10; repeats=3; out="$here/results"
bench="${BENCH_COMM:-$root/build/benchmarks/bench_comm}"
while [ $# -gt 0 ]; do
    case "$1" in
        --ranks) ranks="$2"; shift 2 ;;
        --max) max="$2"; shift 2 ;;
        --iters) iters="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --bench) bench="$2"; shift 2 ;;
        *) echo "fit_comm.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$bench" ] || { echo "fit_comm.sh: no bench_comm at $bench (build first, or --bench PATH)" >&2; exit 2; }
mkdir -p "$out"
echo "CPU: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1) ($(nproc) cores); $(date -u '+%Y-%m-%d %H:%M UTC')"
mpi=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
logs=()
rm -f "$out"/bench_comm_np*.txt
for k in $(seq 1 "$repeats"); do
    for p in $ranks; do
        "${mpi[@]}" -np "$p" "$bench" --max "$max" --iters "$iters" | tee "$out/bench_comm_np$p-$k.txt"
        logs+=("$out/bench_comm_np$p-$k.txt")
    done
done
/usr/bin/python3 "$here/parse.py" comm "${logs[@]}" --out "$out/comm_fit.csv"
echo "wrote $out/comm_fit.csv"
