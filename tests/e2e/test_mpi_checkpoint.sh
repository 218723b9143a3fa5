#!/usr/bin/env bash
# Collective checkpoints and preemption across ranks (mpirun, oversubscribed on this 2-core box):
#  1. written at np=4 and resumed at np=4: exactly the losses of an uninterrupted np=4 run;
#  (a resume on another rank count is judged by numbers in test_mpi_equiv.sh: np=4 -> 2 -> 1);
#  3. a rank killed while writing a checkpoint: the job ends, no file appears under the final name,
#     the previous checkpoint is intact (h5dump reads it) and the run resumes from it;
#  4. SIGTERM to ONE rank: all ranks agree at the next step boundary, checkpoint, exit 3; the
#     restart continues from that step.
source "$(dirname "$0")/common.sh"
mpi_env
need_fmnist
write_config
mpi() { local np=$1; shift; "$MPIEXEC" --oversubscribe -np "$np" -x SSL_FAULT_CKPT_KILL_RANK "$SSLRUN" "$WORK/tiny.yaml" "$@"; }
export SSL_FAULT_CKPT_KILL_RANK=

mpi 4 run.name=full4 >"$WORK/full4.log" 2>&1 || { cat "$WORK/full4.log"; fail "uninterrupted np=4 run"; }
[ "$(losses "$WORK/runs/full4/metrics.jsonl" | wc -l)" = 16 ] || fail "expected 16 logged steps at np=4"
grep -q "global batch 64 (4 ranks x 16 per rank" "$WORK/full4.log" || fail "np=4 layout line missing"

# 1. np=4 -> np=4
mpi 4 run.name=r44 run.max_steps=6 >"$WORK/r44a.log" 2>&1 || { cat "$WORK/r44a.log"; fail "np=4 first part"; }
[ -f "$WORK/runs/r44/checkpoints/ckpt-0000000006.h5" ] || fail "no step-6 checkpoint at np=4"
mpi 4 run.name=r44 >"$WORK/r44b.log" 2>&1 || { cat "$WORK/r44b.log"; fail "np=4 resume"; }
resumed "$WORK/r44b.log" 6
once "$WORK/runs/r44/metrics.jsonl"
diff <(losses "$WORK/runs/full4/metrics.jsonl") <(losses "$WORK/runs/r44/metrics.jsonl") || fail "np=4 resume losses differ"

# 3. kill rank 1 in the middle of the step-8 checkpoint
mpi 2 run.name=crash checkpoint.every_steps=4 run.max_steps=4 >"$WORK/c1.log" 2>&1 || fail "crash: first part"
rc=0; SSL_FAULT_CKPT_KILL_RANK=1 mpi 2 run.name=crash checkpoint.every_steps=4 >"$WORK/c2.log" 2>&1 || rc=$?
[ $rc != 0 ] || fail "the job survived a rank killed mid-checkpoint"
grep -q "killing this rank mid-checkpoint" "$WORK/c2.log" || { cat "$WORK/c2.log"; fail "fault was not injected"; }
[ ! -f "$WORK/runs/crash/checkpoints/ckpt-0000000008.h5" ] || fail "a half-written checkpoint got the final name"
h5dump -H "$WORK/runs/crash/checkpoints/ckpt-0000000004.h5" >/dev/null || fail "previous checkpoint unreadable"
mpi 2 run.name=crash checkpoint.every_steps=4 >"$WORK/c3.log" 2>&1 || { cat "$WORK/c3.log"; fail "resume after the crash"; }
resumed "$WORK/c3.log" 4
once "$WORK/runs/crash/metrics.jsonl"
ls "$WORK/runs/crash/checkpoints/"*.tmp 2>/dev/null && fail "stale .tmp left behind"

# 4. SIGTERM to one rank only
mpi 2 run.name=term schedule.epochs=200 >"$WORK/t1.log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '"step":3' "$WORK/runs/term/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
victim=$(pgrep -f "$WORK/tiny.yaml run.name=term" | while read -r p; do [ "$p" != "$pid" ] && [ "$(ps -o comm= -p "$p")" = sslrun ] && echo "$p"; done | tail -1)
[ -n "$victim" ] || fail "no rank process found"
kill -TERM "$victim"
rc=0; wait $pid || rc=$?
[ $rc = 3 ] || { cat "$WORK/t1.log"; fail "SIGTERM to one rank: exit code $rc (want 3: preempted)"; }
grep -q "signal received: checkpoint written at step" "$WORK/t1.log" || fail "no checkpoint message"
step=$(sed -nE 's/.*checkpoint written at step ([0-9]+).*/\1/p' "$WORK/t1.log")
mpi 2 run.name=term schedule.epochs=200 run.max_steps=2 >"$WORK/t2.log" 2>&1 || { cat "$WORK/t2.log"; fail "restart after SIGTERM"; }
resumed "$WORK/t2.log" "$step"
once "$WORK/runs/term/metrics.jsonl"
echo "mpi checkpoint: all checks passed"
