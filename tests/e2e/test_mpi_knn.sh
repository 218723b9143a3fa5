#!/usr/bin/env bash
# The kNN monitor in a multi-rank job: every rank extracts its share of the features and votes for
# its share of the test set, so no rank sits in a collective while another computes. At np=2 with
# a watchdog (comm.timeout_s 3) shorter than the whole monitor takes (features of all 60,000
# training images at 32 px: 5.9 s on a 2-core Xeon), the job finishes, and no collective waited as
# long; the monitor's accuracy equals `sslrun eval` of the same checkpoint in one process (within 5 of the
# 10,000 test images: batch boundaries differ, so the last bits of a feature may); so does `sslrun
# eval` under mpirun (and its linear probe, within 0.3).
source "$(dirname "$0")/common.sh"
mpi_env
need_fmnist
write_config
TIMEOUT=3
"$MPIEXEC" --oversubscribe -np 2 "$SSLRUN" "$WORK/tiny.yaml" run.name=knn schedule.epochs=1 eval.knn_every_epochs=1 model.img_size=32 eval.train_limit=60000 \
  comm.timeout_s=$TIMEOUT >"$WORK/knn.log" 2>&1 || { cat "$WORK/knn.log"; fail "np=2 run with the kNN monitor failed"; }
line=$(grep "epoch 1: kNN top-1" "$WORK/knn.log") || { cat "$WORK/knn.log"; fail "no kNN line"; }
echo "$line"
secs=$(sed -nE 's/.*\(([0-9.]+) s on 2 rank\(s\).*/\1/p' <<<"$line")
awk -v s="$secs" -v t=$TIMEOUT 'BEGIN { exit !(s > t) }' ||
  fail "the monitor took $secs s, not longer than the watchdog ($TIMEOUT s): the test would not show anything"
monitor=$(sed -nE 's/.*"knn_top1":([0-9.]+).*/\1/p' "$WORK/runs/knn/metrics.jsonl")
[ -n "$monitor" ] || fail "no knn_top1 record in metrics.jsonl"
grep -q '"step":8,"epoch":1,"knn_top1"' "$WORK/runs/knn/metrics.jsonl" || fail "kNN record: step 8, epoch 1 (1-based) expected"

# the same checkpoint, evaluated by `sslrun eval` in one process, and by `mpirun -np 2 sslrun eval`
# (each rank extracts and votes for its share, rank 0 runs the linear probe and writes eval.json)
ev=(eval "$WORK/tiny.yaml" run.name=knn model.img_size=32 eval.train_limit=60000 eval.linear_epochs=1)
"$SSLRUN" "${ev[@]}" >"$WORK/eval.log" 2>&1 || { cat "$WORK/eval.log"; fail "sslrun eval"; }
rm "$WORK/runs/knn/eval.json" # rank 0 writes it again
"$MPIEXEC" --oversubscribe -np 2 "$SSLRUN" "${ev[@]}" comm.timeout_s=$TIMEOUT >"$WORK/eval2.log" 2>&1 ||
  { cat "$WORK/eval2.log"; fail "sslrun eval at np=2"; }
knn_of() { sed -nE 's/.*kNN top-1 \(k=5, .*\): ([0-9.]+)%.*/\1/p' "$1"; }
lin_of() { sed -nE 's/.*linear probe top-1 .*: ([0-9.]+)%.*/\1/p' "$1"; }
single=$(knn_of "$WORK/eval.log") two=$(knn_of "$WORK/eval2.log")
echo "monitor at np=2: $monitor%, sslrun eval: $single%, sslrun eval at np=2: $two%"
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= t) }'; }
close "$monitor" "$single" 0.05 || fail "the np=2 monitor ($monitor%) and sslrun eval ($single%) disagree"
close "$two" "$single" 0.05 || fail "sslrun eval at np=2 ($two%) and in one process ($single%) disagree"
grep -q "features (.* on 2 rank(s)" "$WORK/eval2.log" || fail "eval at np=2: features not extracted on 2 ranks"
[ "$(grep -c 'kNN top-1' "$WORK/eval2.log")" = 1 ] || fail "eval at np=2: expected one kNN line (rank 0's)"
l1=$(lin_of "$WORK/eval.log") l2=$(lin_of "$WORK/eval2.log")
close "$l1" "$l2" 0.3 || fail "linear probe at np=2 ($l2%) and in one process ($l1%) disagree"
grep -q '"train_samples": 60000, "test_samples": 10000' "$WORK/runs/knn/eval.json" || fail "eval.json at np=2"
grep -q "\"checkpoint\": \"$WORK/runs/knn/checkpoints/ckpt-[0-9]*.h5\"" "$WORK/runs/knn/eval.json" ||
  { cat "$WORK/runs/knn/eval.json"; fail "eval.json does not name its checkpoint"; }
echo "kNN monitor and sslrun eval at np=2: all checks passed"
