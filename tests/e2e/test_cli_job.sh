#!/usr/bin/env bash
# `sslrun job`: the command line (usage and config errors exit 2 before any script is written),
# the directives of the Slurm and PBS scripts (bash -n, #SBATCH / #PBS lines, the PBS warning timer),
# and the PBS script run for real without PBS: a faked PBS environment (PBS_JOBID, a PBS_NODEFILE
# naming localhost twice, qrerun and qsub stubs that record their calls) and Open MPI's mpiexec.
# SIGTERM to the job shell (what PBS sends on preemption) reaches both ranks through mpiexec, they
# checkpoint and exit 3, the script requeues with qrerun (and, where qrerun is refused, submits
# itself after the job with qsub); the rerun script resumes and ends with the losses and final
# weights of an uninterrupted mpirun run. (A real Slurm runs the same contract: tests/slurm/.)
source "$(dirname "$0")/common.sh"
need_fmnist
mpi_env
write_config
cd "$WORK"

# 1. the command line
expect2() { # expect2 WHAT PATTERN ARGS...: exit 2, the message matches, no script written
  local what=$1 pat=$2 rc=0
  shift 2
  "$SSLRUN" job "$@" --out "$WORK/never.sh" >"$WORK/err.log" 2>&1 || rc=$?
  [ $rc = 2 ] || { cat "$WORK/err.log"; fail "$what: exit $rc, want 2"; }
  grep -q -- "$pat" "$WORK/err.log" || { cat "$WORK/err.log"; fail "$what: no '$pat' in the message"; }
  [ ! -e "$WORK/never.sh" ] || fail "$what: a script was written"
}
expect2 "no scheduler" "scheduler slurm or --scheduler pbs is required" --nodes 1 tiny.yaml
expect2 "no nodes" "nodes N is required" --scheduler slurm tiny.yaml
expect2 "bad time" "time 1:5: expected" --scheduler slurm --nodes 1 --time 1:5 tiny.yaml
expect2 "time under the warning" "leaves no room" --scheduler pbs --nodes 1 --time 2 tiny.yaml
expect2 "unknown option" "unknown option '--gpus'" --scheduler slurm --nodes 1 --gpus 4 tiny.yaml
expect2 "tasks vs gpus" "one rank drives one GPU" --scheduler slurm --nodes 1 --gpus-per-node 4 --tasks-per-node 2 tiny.yaml
expect2 "bad override" "override 'optim.lerning_rate=1': unknown key" --scheduler slurm --nodes 1 tiny.yaml optim.lerning_rate=1
printf 'run: {name: x}\noptim: {lr: abc}\n' > bad.yaml
expect2 "bad config value" "bad.yaml:2:" --scheduler slurm --nodes 1 bad.yaml

# 2. the directives
"$SSLRUN" job --scheduler slurm --nodes 2 --gpus-per-node 4 --cpus-per-task 8 --time 1-00:00:00 --partition gpu \
  --account proj tiny.yaml model.width=8 >slurm.sh 2>/dev/null || fail "slurm script"
bash -n slurm.sh || fail "slurm script: bash -n"
for d in "--job-name=tiny" "--nodes=2" "--ntasks-per-node=4" "--gpus-per-task=1" "--cpus-per-task=8" \
  "--time=1-00:00:00" "--partition=gpu" "--account=proj" "--signal=B:USR1@120" "--requeue" "--open-mode=append"; do
  grep -qx -- "#SBATCH $d" slurm.sh || fail "slurm script lacks #SBATCH $d"
done
grep -q '^LAUNCH=(srun --mpi=pmix --cpu-bind=cores)$' slurm.sh || fail "slurm script: not srun --mpi=pmix"
grep -q '^  width: 8 ' slurm.sh || fail "slurm script: the override is not frozen in"
"$SSLRUN" job --scheduler pbs --nodes 2 --gpus-per-node 4 --cpus-per-task 4 --time 1-00:00:00 --partition gpuq \
  --account proj tiny.yaml >pbs4.sh 2>/dev/null || fail "pbs script"
bash -n pbs4.sh || fail "pbs script: bash -n"
for d in "-N tiny" "-l select=2:ncpus=16:mpiprocs=4:ompthreads=4:ngpus=4" "-l walltime=24:00:00" "-q gpuq" "-A proj" \
  "-r y" "-j oe"; do
  grep -qx -- "#PBS $d" pbs4.sh || fail "pbs script lacks #PBS $d"
done
grep -qx 'WARN_AFTER=86280' pbs4.sh || fail "pbs script: the warning timer is not walltime - 120 s"
grep -q 'LAUNCH+=(--map-by slot:PE=4)' pbs4.sh || fail "pbs script: ranks not given 4 cores each"

# 3. the PBS script run under a faked PBS
ARGS=(model.width=8 schedule.epochs=6 checkpoint.every_steps=0)
"$MPIEXEC" -np 2 --oversubscribe "$SSLRUN" tiny.yaml run.name=ref "${ARGS[@]}" >ref.log 2>&1 || { cat ref.log; fail "reference run"; }
"$SSLRUN" job --scheduler pbs --nodes 1 --tasks-per-node 2 --out pbs.sh tiny.yaml run.name=pbs "${ARGS[@]}" 2>/dev/null ||
  fail "pbs script for the run"
mkdir -p stub
printf '#!/bin/sh\necho "qrerun $*" >> %s/calls\nexit "${QRERUN_RC:-0}"\n' "$WORK" >stub/qrerun
printf '#!/bin/sh\necho "qsub $*" >> %s/calls\n' "$WORK" >stub/qsub
chmod +x stub/*
printf 'localhost\nlocalhost\n' >nodefile
export PBS_JOBID=77.fake PBS_NODEFILE=$WORK/nodefile PATH=$WORK/stub:$PATH OMPI_MCA_rmaps_base_oversubscribe=1
preempt() { # preempt N: run the script, SIGTERM its shell once the run is past step N, expect exit 0
  local n=$1 pid rc=0
  bash pbs.sh >>pbs.out 2>&1 &
  pid=$!
  for _ in $(seq 600); do grep -q "\"step\":$n," runs/pbs/metrics.jsonl 2>/dev/null && break; sleep 0.1; done
  kill -TERM $pid
  wait $pid || rc=$?
  [ $rc = 0 ] || { cat pbs.out; fail "preempted PBS job: exit $rc, want 0 (requeued)"; }
}
preempt 3
grep -qx "qrerun 77.fake" calls || { cat pbs.out; fail "no qrerun 77.fake"; }
[ "$(cat runs/pbs/job.requeues)" = 1 ] || fail "requeue count not 1"
QRERUN_RC=1 preempt 20
grep -qx "qsub -W depend=afterany:77.fake pbs.sh" calls || { cat pbs.out calls; fail "qrerun refused: no qsub of the script after the job"; }
[ "$(cat runs/pbs/job.requeues)" = 2 ] || fail "requeue count not 2"
bash pbs.sh >>pbs.out 2>&1 || { cat pbs.out; fail "the rerun PBS job"; }
grep -c "SIGTERM received" pbs.out | grep -qx 2 || { cat pbs.out; fail "the shell did not see two SIGTERMs"; }
[ "$(grep -c 'signal received: checkpoint written' pbs.out)" = 2 ] || { cat pbs.out; fail "sslrun did not checkpoint twice"; }
grep -q "sslrun job: finished" pbs.out || { cat pbs.out; fail "not finished"; }
[ ! -e runs/pbs/job.requeues ] || fail "the requeue count outlived the finished run"
once runs/pbs/metrics.jsonl
diff <(losses runs/ref/metrics.jsonl) <(losses runs/pbs/metrics.jsonl) || fail "losses after two PBS requeues differ"
"$CKPT_COMPARE" runs/ref/checkpoints/ckpt-0000000048.h5 runs/pbs/checkpoints/ckpt-0000000048.h5 \
  --rtol 0 --dataset params --dataset buffers --dataset optim/m >/dev/null || fail "final weights after PBS requeues differ"
echo "cli job: all checks passed"
