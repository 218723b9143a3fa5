#!/usr/bin/env bash
# The kNN monitor in a multi-rank job: every rank extracts its share of the features and votes for
# its share of the test set, so no rank sits in a collective while another computes. At np=2 with
# a watchdog (comm.timeout_s 3) shorter than the whole monitor takes (views of 24 px make it long
# enough on any machine), the job finishes, and no collective waited as long; the
# monitor's accuracy equals `sslrun eval` of the same checkpoint in one process (within 5 of the
# 10,000 test images: batch boundaries differ, so the last bits of a feature may).
source "$(dirname "$0")/common.sh"
mpi_env
need_fmnist
write_config
TIMEOUT=3
"$MPIEXEC" --oversubscribe -np 2 "$SSLRUN" "$WORK/tiny.yaml" run.name=knn schedule.epochs=1 eval.knn_every_epochs=1 model.img_size=24 eval.train_limit=30000 \
  comm.timeout_s=$TIMEOUT >"$WORK/knn.log" 2>&1 || { cat "$WORK/knn.log"; fail "np=2 run with the kNN monitor failed"; }
line=$(grep "epoch 1: kNN top-1" "$WORK/knn.log") || { cat "$WORK/knn.log"; fail "no kNN line"; }
echo "$line"
secs=$(sed -nE 's/.*\(([0-9.]+) s on 2 rank\(s\).*/\1/p' <<<"$line")
awk -v s="$secs" -v t=$TIMEOUT 'BEGIN { exit !(s > t) }' ||
  fail "the monitor took $secs s, not longer than the watchdog ($TIMEOUT s): the test would not show anything"
monitor=$(sed -nE 's/.*"knn_top1":([0-9.]+).*/\1/p' "$WORK/runs/knn/metrics.jsonl")
[ -n "$monitor" ] || fail "no knn_top1 record in metrics.jsonl"
grep -q '"step":8,"epoch":1,"knn_top1"' "$WORK/runs/knn/metrics.jsonl" || fail "kNN record: step 8, epoch 1 (1-based) expected"

# the same checkpoint, evaluated by `sslrun eval` in one process
"$SSLRUN" eval "$WORK/tiny.yaml" run.name=knn model.img_size=24 eval.train_limit=30000 eval.linear_epochs=0 >"$WORK/eval.log" 2>&1 || { cat "$WORK/eval.log"; fail "sslrun eval"; }
single=$(sed -nE 's/.*kNN top-1 \(k=5, .*\): ([0-9.]+)%.*/\1/p' "$WORK/eval.log")
echo "monitor at np=2: $monitor%, sslrun eval: $single%"
awk -v a="$monitor" -v b="$single" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.05) }' ||
  fail "the np=2 monitor ($monitor%) and sslrun eval ($single%) disagree"
echo "kNN monitor at np=2: all checks passed"
