# A real single-node Slurm on localhost for the tests (label slurm): slurmctld + slurmd from Debian's
# slurm-wlm, auth/none, no cgroups, no systemd (the configuration in ../shared/SLURM-CI.md).
# Source it, then: slurm_start DIR (exits 77, saying why, where Slurm cannot run here) and
# slurm_stop (also from the caller's EXIT trap). cred_expire=10 and `scontrol update StartTime=now`
# keep a requeued job from waiting the default two minutes.
SLURM_DIR=
slurm_start() {
  SLURM_DIR=$1
  local p
  for p in slurmctld slurmd sbatch scontrol squeue; do
    command -v "$p" >/dev/null || { echo "SKIP: no $p (Debian package slurm-wlm): Slurm tests need it"; exit 77; }
  done
  [ "$(id -u)" = 0 ] || { echo "SKIP: the localhost Slurm runs its daemons as root"; exit 77; }
  if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
    echo "SKIP: a slurmctld or slurmd already runs on this machine (ports 16817/16818 may be taken)"
    exit 77
  fi
  mkdir -p "$SLURM_DIR"/{state,spool,log,pmix}
  # PMIx's per-step client dirs inside the fixture, not /tmp/spmix_appdir_<uid>_<job>.<step>: job ids
  # restart at 1 with every fresh state dir, so a dir left by a killed run would fail the next launch
  echo "PMIxCliTmpDirBase=$SLURM_DIR/pmix" >"$SLURM_DIR/mpi.conf" # read from slurm.conf's directory
  export SLURM_CONF=$SLURM_DIR/slurm.conf
  cat > "$SLURM_CONF" <<CONF
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
AuthInfo=cred_expire=10
CredType=cred/none
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  (setsid slurmctld -D -c -f "$SLURM_CONF" >"$SLURM_DIR/log/slurmctld.out" 2>&1 & echo $! >"$SLURM_DIR/slurmctld.bgpid")
  (setsid slurmd -D -N localhost -f "$SLURM_CONF" >"$SLURM_DIR/log/slurmd.out" 2>&1 & echo $! >"$SLURM_DIR/slurmd.bgpid")
  local i
  for i in $(seq 120); do
    [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && { echo "slurm: localhost idle after $((i / 4)) s"; return 0; }
    sleep 0.25
  done
  echo "SKIP: slurmctld/slurmd did not bring the node up in 30 s; their logs:"
  tail -n 20 "$SLURM_DIR"/log/*.out "$SLURM_DIR"/log/*.log 2>/dev/null
  slurm_stop
  exit 77
}

slurm_stop() { # safe under set -e (it runs from EXIT traps)
  [ -n "$SLURM_DIR" ] || return 0
  local f jobs
  # jobs first, while slurmctld can still end them: a job step outlives its slurmd otherwise
  jobs=$(squeue -h -o %i 2>/dev/null || true)
  if [ -n "$jobs" ]; then scancel --full $jobs 2>/dev/null || true; fi
  for _ in $(seq 40); do [ -z "$(squeue -h 2>/dev/null || true)" ] && break; sleep 0.25; done
  for f in "$SLURM_DIR/slurmd.bgpid" "$SLURM_DIR/slurmctld.bgpid"; do
    if [ -f "$f" ]; then kill -TERM "$(cat "$f")" 2>/dev/null || true; fi
  done
  for _ in $(seq 40); do
    pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || pgrep -x slurmstepd >/dev/null || break
    sleep 0.25
  done
  SLURM_DIR=
  return 0
}

# job_field JOBID FIELD: one field of `scontrol show job` (JobState, ExitCode, Restarts, ...).
job_field() {
  scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# wait_state JOBID STATE... : until the job is in one of the states (60 s at most); prints the state.
wait_state() {
  local j=$1 s
  shift
  for _ in $(seq 240); do
    s=$(job_field "$j" JobState)
    for want in "$@"; do [ "$s" = "$want" ] && { echo "$s"; return 0; }; done
    sleep 0.25
  done
  echo "timeout:${s:-unknown}"
  return 1
}
