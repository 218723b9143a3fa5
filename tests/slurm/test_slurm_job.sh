#!/usr/bin/env bash
# `sslrun job` under a real Slurm (slurmctld + slurmd on localhost, tests/slurm/slurm_fixture.sh):
#  1. the generated script, submitted with sbatch, runs 2 ranks (srun --mpi=pmix) of a small
#     pretraining to the end: COMPLETED, exit 0, final checkpoint, the ranks' binding lines from
#     Slurm's variables, the frozen config in the run directory;
#  2. the requeue contract: SIGUSR1 to the batch shell (what --signal=B:USR1@T delivers) reaches
#     both ranks, they checkpoint and exit 3, the script requeues the job, and the job's second
#     start resumes from that checkpoint and finishes with the losses and final weights of (1);
#  3. no loop: with --max-requeues 0 the same signal ends the job (exit 3, not requeued), and a job
#     whose sslrun fails (exit 1) is not requeued either.
source "$(dirname "$0")/../e2e/common.sh"
source "$(dirname "$0")/slurm_fixture.sh"
need_fmnist
trap 'slurm_stop; rm -rf "$WORK"' EXIT
slurm_start "$WORK/slurm"
mpi_env
write_config
cd "$WORK"
# 48 steps of about 0.1 s at 2 ranks: long enough to signal mid-run, short for CI
ARGS=(model.width=8 schedule.epochs=6 checkpoint.every_steps=0)
job() { # job NAME [sslrun job options...] -> job script $WORK/NAME.sh
  local name=$1
  shift
  "$SSLRUN" job --scheduler slurm --nodes 1 --tasks-per-node 2 --cpus-per-task 1 "$@" --out "$WORK/$name.sh" \
    "$WORK/tiny.yaml" run.name="$name" "${ARGS[@]}" 2>/dev/null || fail "sslrun job for $name"
}
submit() { # submit NAME -> job id
  sbatch --parsable -o "$WORK/$1.out" "$WORK/$1.sh" || fail "sbatch $1"
}
show() {
  echo "--- $1.out"; cat "$WORK/$1.out"; scontrol show job "$2" | head -20
  echo "--- slurmctld / slurmd on job $2"; grep -h -i "JobId=$2\b\|job $2\b\|StepId=$2\." "$SLURM_DIR"/log/*.log | tail -n 30 || true
}

# 1. a whole run
job full
J=$(submit full)
s=$(wait_state "$J" COMPLETED FAILED CANCELLED TIMEOUT) || { show full "$J"; fail "job $J: $s"; }
[ "$s" = COMPLETED ] && [ "$(job_field "$J" ExitCode)" = 0:0 ] || { show full "$J"; fail "job $J ended $s $(job_field "$J" ExitCode)"; }
grep -q "sslrun job: finished" "$WORK/full.out" || { show full "$J"; fail "no 'finished' line"; }
[ -f runs/full/checkpoints/ckpt-0000000048.h5 ] || { show full "$J"; fail "no final checkpoint"; }
grep -q "ranks: 2 on 1 node" "$WORK/full.out" || { show full "$J"; fail "not 2 ranks"; }
for r in 0 1; do
  grep -Eq "binding: rank $r .*local $r/2 \((OMPI_COMM_WORLD_LOCAL_RANK|SLURM_LOCALID)\).*slurm job $J" "$WORK/full.out" ||
    { show full "$J"; fail "no binding line for rank $r from the launcher's variables"; }
done
"$SSLRUN" config runs/full/job.yaml >/dev/null || fail "the frozen config does not load"
grep -q 'width: 8 ' runs/full/job.yaml || fail "the frozen config lacks the override"

# 2. preempted (SIGUSR1 to the batch shell at step 3), requeued, resumed, finished
job pre
J=$(submit pre)
for _ in $(seq 600); do grep -q '"step":3,' runs/pre/metrics.jsonl 2>/dev/null && break; sleep 0.1; done
grep -q '"step":3,' runs/pre/metrics.jsonl || { show pre "$J"; fail "job $J did not reach step 3"; }
scancel -b --signal=USR1 "$J"
# the job requeues itself: PENDING (BeginTime) with one restart; start it now, not after the delay
for _ in $(seq 240); do [ "$(job_field "$J" Restarts)" = 1 ] && break; sleep 0.25; done
[ "$(job_field "$J" Restarts)" = 1 ] || { show pre "$J"; fail "job $J was not requeued"; }
wait_state "$J" PENDING RUNNING COMPLETED >/dev/null
# not within the requeue's second: slurmd refuses a launch whose credential is no newer than the
# revocation of the last run's (seen as a requeued job FAILED 1:0 with no second start)
sleep 2
[ "$(job_field "$J" JobState)" = PENDING ] && scontrol update JobId="$J" StartTime=now
s=$(wait_state "$J" COMPLETED FAILED CANCELLED TIMEOUT) || { show pre "$J"; fail "requeued job $J: $s"; }
[ "$s" = COMPLETED ] && [ "$(job_field "$J" ExitCode)" = 0:0 ] || { show pre "$J"; fail "requeued job $J ended $s"; }
grep -q "SIGUSR1 received" "$WORK/pre.out" || { show pre "$J"; fail "the batch shell did not see the signal"; }
grep -q "signal received: checkpoint written at step" "$WORK/pre.out" || { show pre "$J"; fail "sslrun did not checkpoint"; }
grep -q "requeueing (requeue 1 of at most 20)" "$WORK/pre.out" || { show pre "$J"; fail "no requeue line"; }
step=$(sed -nE 's/.*checkpoint written at step ([0-9]+).*/\1/p' "$WORK/pre.out" | head -1)
resumed "$WORK/pre.out" "$step"
[ "$(grep -c 'starts on' "$WORK/pre.out")" = 2 ] || { show pre "$J"; fail "not two starts in one log"; }
[ ! -f runs/pre/job.requeues ] || fail "the requeue count outlived the finished run"
once runs/pre/metrics.jsonl
diff <(losses runs/full/metrics.jsonl) <(losses runs/pre/metrics.jsonl) || fail "losses after requeue differ from the whole run"
"$CKPT_COMPARE" runs/full/checkpoints/ckpt-0000000048.h5 runs/pre/checkpoints/ckpt-0000000048.h5 \
  --rtol 0 --dataset params --dataset buffers --dataset optim/m >/dev/null || fail "final weights after requeue differ"

# 3a. the requeue cap: preempted, checkpoint written, not requeued (exit 3: FAILED with 3:0)
job cap --max-requeues 0
J=$(submit cap)
for _ in $(seq 600); do grep -q '"step":3,' runs/cap/metrics.jsonl 2>/dev/null && break; sleep 0.1; done
scancel -b --signal=USR1 "$J"
s=$(wait_state "$J" COMPLETED FAILED CANCELLED TIMEOUT) || { show cap "$J"; fail "job $J: $s"; }
[ "$s" = FAILED ] && [ "$(job_field "$J" ExitCode)" = 3:0 ] && [ "$(job_field "$J" Restarts)" = 0 ] ||
  { show cap "$J"; fail "capped job $J: $s $(job_field "$J" ExitCode), restarts $(job_field "$J" Restarts)"; }
grep -q "not requeued: 0 requeues of this run already" "$WORK/cap.out" || { show cap "$J"; fail "no cap message"; }
ls runs/cap/checkpoints/ckpt-*.h5 >/dev/null 2>&1 || fail "capped job left no checkpoint"

# 3b. a failing run (its data vanished after submission) ends the job: exit 1, no requeue
ARGS+=(data.train="$WORK/gone/train-*.h5")
mkdir -p gone && cp data/train-*.h5 gone/
job bad
rm -rf gone
J=$(submit bad)
s=$(wait_state "$J" COMPLETED FAILED CANCELLED TIMEOUT) || { show bad "$J"; fail "job $J: $s"; }
[ "$s" = FAILED ] && [ "$(job_field "$J" ExitCode)" = 1:0 ] && [ "$(job_field "$J" Restarts)" = 0 ] ||
  { show bad "$J"; fail "failing job $J: $s $(job_field "$J" ExitCode), restarts $(job_field "$J" Restarts)"; }
grep -q "sslrun exited with 1 .*not requeued" "$WORK/bad.out" || { show bad "$J"; fail "no 'not requeued' line"; }
echo "slurm job: all checks passed"
