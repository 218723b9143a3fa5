#!/usr/bin/env bash
# Resume equals uninterrupted: a run killed (SIGKILL) after a checkpoint and restarted, and a run
# preempted by SIGTERM (checkpoint, exit 0) and restarted, log exactly the losses of an
# uninterrupted run with the same seed and step count.
source "$(dirname "$0")/common.sh"
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
"$SSLRUN" "$WORK/tiny.yaml" run.name=killed checkpoint.every_steps=3 >"$WORK/k2.log" 2>&1 || { cat "$WORK/k2.log"; fail "resume after kill"; }
grep -q "resumed from" "$WORK/k2.log" || fail "second run did not resume"
diff <(losses "$WORK/runs/full/metrics.jsonl") <(losses "$WORK/runs/killed/metrics.jsonl") || fail "losses after kill+resume differ"

# 2. SIGTERM: checkpoint at the next step boundary, exit 0, then resume to the end
"$SSLRUN" "$WORK/tiny.yaml" run.name=term >"$WORK/t1.log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '"step":3' "$WORK/runs/term/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ $rc = 0 ] || { cat "$WORK/t1.log"; fail "SIGTERM exit code $rc"; }
grep -q "checkpoint written" "$WORK/t1.log" || fail "no checkpoint message on SIGTERM"
ls "$WORK/runs/term/checkpoints/"ckpt-*.h5 >/dev/null || fail "no checkpoint after SIGTERM"
"$SSLRUN" "$WORK/tiny.yaml" run.name=term >"$WORK/t2.log" 2>&1 || { cat "$WORK/t2.log"; fail "resume after SIGTERM"; }
diff <(losses "$WORK/runs/full/metrics.jsonl") <(losses "$WORK/runs/term/metrics.jsonl") || fail "losses after SIGTERM+resume differ"

# 3. run.max_steps stops with a checkpoint; the next invocation continues identically
"$SSLRUN" "$WORK/tiny.yaml" run.name=budget run.max_steps=5 >"$WORK/b1.log" 2>&1 || fail "max_steps run"
"$SSLRUN" "$WORK/tiny.yaml" run.name=budget >"$WORK/b2.log" 2>&1 || fail "continue after max_steps"
diff <(losses "$WORK/runs/full/metrics.jsonl") <(losses "$WORK/runs/budget/metrics.jsonl") || fail "losses after max_steps+resume differ"
echo "resume: all checks passed"
