#!/usr/bin/env bash
# Faults across ranks: a rank that stops responding (SIGSTOP) makes the others' watchdog report the
# stalled collective by name and end the job (non-zero exit) instead of hanging the allocation;
# a config error is reported once (rank 0) and every rank exits 2 (also one found in a checkpoint); ranks
# whose weights drifted apart stop the job before a checkpoint of mixed models is written.
source "$(dirname "$0")/common.sh"
mpi_env
need_fmnist
write_config

# 1. a hung rank
"$MPIEXEC" --oversubscribe -np 2 "$SSLRUN" "$WORK/tiny.yaml" run.name=hang schedule.epochs=200 comm.timeout_s=2 \
  >"$WORK/h.log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '"step":3' "$WORK/runs/hang/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
victim=$(pgrep -f "$WORK/tiny.yaml run.name=hang" | while read -r p; do [ "$p" != "$pid" ] && [ "$(ps -o comm= -p "$p")" = sslrun ] && echo "$p"; done | tail -1)
[ -n "$victim" ] || fail "no rank process found"
kill -STOP "$victim"
rc=0
for _ in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then kill -CONT "$victim"; kill -9 $pid; fail "the job still hangs 30 s after a rank stopped"; fi
wait $pid || rc=$?
[ $rc != 0 ] || fail "a hung rank ended the job with exit 0"
[ $rc != 3 ] || fail "a stalled collective ended the job with exit 3 (preempted, checkpoint written: requeue me)"
grep -qE "rank [01]: (allreduce|allgather|reduce_scatter|broadcast|barrier) of [0-9]+ bytes \(collective #[0-9]+\) stalled" "$WORK/h.log" \
  || { cat "$WORK/h.log"; fail "no watchdog report naming the collective"; }

# 2. a config error: one message, exit 2, nothing hangs
rc=0; "$MPIEXEC" --oversubscribe -np 2 "$SSLRUN" "$WORK/tiny.yaml" optim.lerning_rate=1 >"$WORK/c.log" 2>&1 || rc=$?
[ $rc != 0 ] || fail "bad config accepted"
[ "$(grep -c "did you mean 'optim.lr'" "$WORK/c.log")" = 1 ] || { cat "$WORK/c.log"; fail "expected the config error exactly once"; }
# 2b. a config error found after the config loads (a checkpoint of another model): the same, and
#     the run's config.yaml is left as it was
run_epoch other >/dev/null
cp "$WORK/runs/other/config.yaml" "$WORK/other.yaml.before"
rc=0; "$MPIEXEC" --oversubscribe -np 2 "$SSLRUN" "$WORK/tiny.yaml" run.name=other schedule.epochs=1 model.width=8 \
  >"$WORK/o.log" 2>&1 || rc=$?
[ $rc = 2 ] || { cat "$WORK/o.log"; fail "another model's checkpoint at np=2: exit $rc, expected 2"; }
[ "$(grep -c "different model or config" "$WORK/o.log")" = 1 ] || { cat "$WORK/o.log"; fail "expected the error exactly once"; }
cmp -s "$WORK/runs/other/config.yaml" "$WORK/other.yaml.before" || fail "a refused config overwrote the run's config.yaml"
# 3. diverged replicas: rank 1's weights differ at the first checkpoint (step 4)
rc=0; SSL_FAULT_DIVERGE_RANK=1 "$MPIEXEC" --oversubscribe -np 2 -x SSL_FAULT_DIVERGE_RANK "$SSLRUN" "$WORK/tiny.yaml" \
  run.name=drift checkpoint.every_steps=4 >"$WORK/d.log" 2>&1 || rc=$?
[ $rc != 0 ] || fail "diverged replicas: exit 0"
grep -q "step 4: the ranks hold different weights" "$WORK/d.log" || { cat "$WORK/d.log"; fail "diverged replicas: no report"; }
! ls "$WORK/runs/drift/checkpoints/"ckpt-*.h5 2>/dev/null || fail "diverged replicas: a checkpoint was written"
echo "mpi faults: all checks passed"
