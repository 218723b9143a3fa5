#!/usr/bin/env bash
# Resume equals uninterrupted: a run killed (SIGKILL) after a checkpoint and restarted, runs
# preempted by SIGTERM and SIGUSR1 (checkpoint, exit 3) and restarted, and a run stopped by
# run.max_steps and continued, each say they resumed and from which step, log every step once, and
# end with exactly the losses (and, for the preempted ones, the final weights bit for bit) of an
# uninterrupted run with the same seed and step count.
source "$(dirname "$0")/common.sh"
: "${CKPT_COMPARE:?set CKPT_COMPARE}"
need_fmnist
write_config
"$SSLRUN" "$WORK/tiny.yaml" run.name=full >"$WORK/full.log" 2>&1 || { cat "$WORK/full.log"; fail "uninterrupted run"; }
[ "$(losses "$WORK/runs/full/metrics.jsonl" | wc -l)" = 16 ] || fail "expected 16 logged steps"

# 1. SIGKILL after the step-6 checkpoint (wherever the kill lands, resume restarts from a checkpoint)
"$SSLRUN" "$WORK/tiny.yaml" run.name=killed checkpoint.every_steps=3 >"$WORK/k1.log" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -f "$WORK/runs/killed/checkpoints/ckpt-0000000006.h5" ] && break; sleep 0.1; done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
[ -f "$WORK/runs/killed/checkpoints/ckpt-0000000006.h5" ] || fail "no checkpoint before the kill"
# the newest complete checkpoint at the time of the kill (6, or a later one if the kill came late)
kstep=$(ls "$WORK/runs/killed/checkpoints/" | sed -nE 's/^ckpt-0*([0-9]+)\.h5$/\1/p' | sort -n | tail -1)
"$SSLRUN" "$WORK/tiny.yaml" run.name=killed checkpoint.every_steps=3 >"$WORK/k2.log" 2>&1 || { cat "$WORK/k2.log"; fail "resume after kill"; }
resumed "$WORK/k2.log" "$kstep"
once "$WORK/runs/killed/metrics.jsonl"
diff <(losses "$WORK/runs/full/metrics.jsonl") <(losses "$WORK/runs/killed/metrics.jsonl") || fail "losses after kill+resume differ"

# 2. SIGTERM and SIGUSR1 (what Slurm's --signal sends): checkpoint at the next step boundary,
#    exit 3 (SSL_EXIT_PREEMPTED: requeue me), then resume to the end
preempt() {
  local sig=$1 name=$2
  "$SSLRUN" "$WORK/tiny.yaml" run.name="$name" >"$WORK/$name-1.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do grep -q '"step":3' "$WORK/runs/$name/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
  kill -"$sig" $pid
  rc=0; wait $pid || rc=$?
  [ $rc = 3 ] || { cat "$WORK/$name-1.log"; fail "SIG$sig exit code $rc (want 3: preempted)"; }
  grep -q "signal received: checkpoint written" "$WORK/$name-1.log" || fail "no checkpoint message on SIG$sig"
  local step
  step=$(sed -nE 's/.*checkpoint written at step ([0-9]+).*/\1/p' "$WORK/$name-1.log")
  [ -f "$WORK/runs/$name/checkpoints/ckpt-$(printf %010d "$step").h5" ] || fail "no checkpoint after SIG$sig"
  "$SSLRUN" "$WORK/tiny.yaml" run.name="$name" >"$WORK/$name-2.log" 2>&1 || { cat "$WORK/$name-2.log"; fail "resume after SIG$sig"; }
  resumed "$WORK/$name-2.log" "$step"
  once "$WORK/runs/$name/metrics.jsonl"
  diff <(losses "$WORK/runs/full/metrics.jsonl") <(losses "$WORK/runs/$name/metrics.jsonl") || fail "losses after SIG$sig+resume differ"
  "$CKPT_COMPARE" "$WORK/runs/full/checkpoints/ckpt-0000000016.h5" "$WORK/runs/$name/checkpoints/ckpt-0000000016.h5" \
    --rtol 0 --dataset params --dataset buffers --dataset optim/m >/dev/null || fail "final weights after SIG$sig+resume differ"
}
preempt TERM term
preempt USR1 usr1

# 3. run.max_steps stops with a checkpoint; the next invocation continues identically
"$SSLRUN" "$WORK/tiny.yaml" run.name=budget run.max_steps=5 >"$WORK/b1.log" 2>&1 || fail "max_steps run"
"$SSLRUN" "$WORK/tiny.yaml" run.name=budget >"$WORK/b2.log" 2>&1 || fail "continue after max_steps"
resumed "$WORK/b2.log" 5
once "$WORK/runs/budget/metrics.jsonl"
diff <(losses "$WORK/runs/full/metrics.jsonl") <(losses "$WORK/runs/budget/metrics.jsonl") || fail "losses after max_steps+resume differ"
echo "resume: all checks passed"
