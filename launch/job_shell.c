/* The batch script of `sslrun job` (see job_shell.h). */
#include "launch/job_shell.h"

#include <stdio.h>
#include <string.h>

#define FROZEN_EOF "SSLRUN_FROZEN_CONFIG"

/* s in single quotes for bash ('\'' for each quote inside). */
static void put_quoted(FILE *fp, const char *s)
{
    fputc('\'', fp);
    for (; *s; s++)
        if (*s == '\'') fputs("'\\''", fp);
        else fputc(*s, fp);
    fputc('\'', fp);
}

/* A value a directive line takes as one word (#SBATCH and #PBS lines are not shell-quoted). */
static int directive_word(const char *s)
{
    if (!s[0]) return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s == '#' || *s == '\'' || *s == '"' || *s == '\\' || *s == 127) return 0;
    return 1;
}

static void slurm_header(FILE *fp, const ssl_job_opts *o, const char *name)
{
    fprintf(fp, "#SBATCH --job-name=%s\n#SBATCH --nodes=%d\n#SBATCH --ntasks-per-node=%d\n", name, o->nodes,
            o->tasks_per_node);
    if (o->gpus_per_node) fputs("#SBATCH --gpus-per-task=1\n", fp);
    if (o->cpus_per_task) fprintf(fp, "#SBATCH --cpus-per-task=%d\n", o->cpus_per_task);
    if (o->time) fprintf(fp, "#SBATCH --time=%s\n", o->time);
    if (o->partition) fprintf(fp, "#SBATCH --partition=%s\n", o->partition);
    if (o->account) fprintf(fp, "#SBATCH --account=%s\n", o->account);
    fprintf(fp, "#SBATCH --signal=B:USR1@%d\n#SBATCH --requeue\n#SBATCH --open-mode=append\n", o->warn_s);
}

static void pbs_header(FILE *fp, const ssl_job_opts *o, const char *name)
{
    int cpus = o->cpus_per_task ? o->cpus_per_task : 1;
    fprintf(fp, "#PBS -N %s\n#PBS -l select=%d:ncpus=%d:mpiprocs=%d", name, o->nodes, o->tasks_per_node * cpus,
            o->tasks_per_node);
    if (o->cpus_per_task) fprintf(fp, ":ompthreads=%d", o->cpus_per_task);
    if (o->gpus_per_node) fprintf(fp, ":ngpus=%d", o->gpus_per_node);
    fputc('\n', fp);
    if (o->time_s >= 0) /* PBS reads H:MM:SS, not Slurm's D-H:MM:SS */
        fprintf(fp, "#PBS -l walltime=%ld:%02ld:%02ld\n", o->time_s / 3600, o->time_s / 60 % 60, o->time_s % 60);
    if (o->partition) fprintf(fp, "#PBS -q %s\n", o->partition);
    if (o->account) fprintf(fp, "#PBS -A %s\n", o->account);
    fputs("#PBS -r y\n#PBS -j oe\n", fp);
}

/* How ranks start, how the job knows itself and how it requeues, per scheduler. */
static void launch_lines(FILE *fp, const ssl_job_opts *o)
{
    const int slurm = !strcmp(o->scheduler, "slurm");
    if (!strcmp(o->launcher, "srun")) {
        /* PMIx: Debian's and most sites' Open MPI start under srun through it (pmi2 does not) */
        fputs("LAUNCH=(srun --mpi=pmix --cpu-bind=cores)\n", fp);
    } else if (slurm) {
        fputs("LAUNCH=(mpirun --bind-to core)   # reads the Slurm allocation\n", fp);
    } else {
        /* Open MPI's mpiexec; PBS_NODEFILE lists each node once per mpiproc */
        fputs("LAUNCH=(mpiexec --hostfile \"$PBS_NODEFILE\" -np \"$(wc -l < \"$PBS_NODEFILE\")\" --bind-to core)\n", fp);
        if (o->cpus_per_task > 1) fprintf(fp, "LAUNCH+=(--map-by slot:PE=%d)\n", o->cpus_per_task);
    }
    if (slurm) {
        fputs("JOB_ID=${SLURM_JOB_ID:-none}\n"
              "requeue() { scontrol requeue \"$JOB_ID\"; }\n",
              fp);
    } else {
        /* qrerun needs operator rights on many PBS sites: then the job submits itself again, to start
         * when this one has ended ($0 is PBS's copy of this script, present while the job runs) */
        fputs("JOB_ID=${PBS_JOBID:-none}\n"
              "requeue() { qrerun \"$JOB_ID\" 2>/dev/null || qsub -W depend=afterany:\"$JOB_ID\" \"$0\"; }\n",
              fp);
    }
}

/* The body both schedulers share. */
static const char body[] =
    "echo \"sslrun job: job $JOB_ID starts on $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ): $COMMAND $CONFIG\"\n"
    "# the scheduler's warning (SIGUSR1) or a preemption (SIGTERM) reaches this shell: pass it on as\n"
    "# SIGUSR1 (srun and mpirun forward it to every rank), and sslrun checkpoints at the next step\n"
    "child=\n"
    "forward() {\n"
    "  echo \"sslrun job: SIG$1 received: sslrun checkpoints at the next step and stops\"\n"
    "  if [ -n \"$child\" ]; then kill -USR1 \"$child\" 2>/dev/null; fi\n"
    "}\n"
    "trap 'forward USR1' USR1\n"
    "trap 'forward TERM' TERM\n"
    "\"${LAUNCH[@]}\" \"$SSLRUN\" \"$COMMAND\" \"$CONFIG\" &\n"
    "child=$!\n"
    "timer=\n"
    "if [ \"$WARN_AFTER\" -gt 0 ]; then (sleep \"$WARN_AFTER\" && kill -USR1 $$) & timer=$!; fi\n"
    "# wait returns early for each trapped signal; bash keeps the child's status for the last wait\n"
    "while kill -0 \"$child\" 2>/dev/null; do wait \"$child\"; done\n"
    "wait \"$child\"\n"
    "rc=$?\n"
    "if [ -n \"$timer\" ]; then kill \"$timer\" 2>/dev/null; fi\n"
    "COUNT=\"$RUN_DIR/job.requeues\"\n"
    "case $rc in\n"
    "0)\n"
    "  rm -f \"$COUNT\"\n"
    "  echo \"sslrun job: finished\"\n"
    "  exit 0 ;;\n"
    "3)\n"
    "  n=$(cat \"$COUNT\" 2>/dev/null || echo 0)\n"
    "  if [ \"$n\" -ge \"$MAX_REQUEUES\" ]; then\n"
    "    echo \"sslrun job: preempted with a checkpoint written, not requeued: $n requeues of this run already\"\n"
    "    echo \"  (the limit, sslrun job --max-requeues; remove $COUNT and submit again to continue)\"\n"
    "    exit 3\n"
    "  fi\n"
    "  echo $((n + 1)) > \"$COUNT\"\n"
    "  echo \"sslrun job: preempted with a checkpoint written: requeueing (requeue $((n + 1)) of at most $MAX_REQUEUES)\"\n"
    "  requeue && exit 0\n"
    "  echo \"sslrun job: the requeue failed: submit this script again to resume\"\n"
    "  exit 3 ;;\n"
    "*)\n"
    "  echo \"sslrun job: sslrun exited with $rc (1 failure, 2 usage or config error): not requeued\"\n"
    "  exit \"$rc\" ;;\n"
    "esac\n";

int ssl_job_write(FILE *fp, const ssl_job_context *jc, char *err, size_t errlen)
{
    const ssl_job_opts *o = jc->opts;
    const ssl_config *c = jc->cfg;
    if (strstr(jc->yaml, "\n" FROZEN_EOF "\n")) { /* cannot happen with quoted strings; refuse if it does */
        snprintf(err, errlen, "the config contains the line %s", FROZEN_EOF);
        return -1;
    }
    const char *opt_words[] = {o->partition, o->account};
    for (int i = 0; i < 2; i++)
        if (opt_words[i] && !directive_word(opt_words[i])) {
            snprintf(err, errlen, "'%s': a partition or account is one word without quotes", opt_words[i]);
            return -1;
        }
    const char *name = directive_word(c->run.name) ? c->run.name : "sslrun";
    char run_dir[2 * SSL_CONFIG_PATH_MAX];
    snprintf(run_dir, sizeof run_dir, "%s/%s", c->run.out_dir, c->run.name); /* as the trainer builds it */
    const int slurm = !strcmp(o->scheduler, "slurm");
    fprintf(fp, "#!/bin/bash\n# sslrun job script (%s) for run %s, written by sslrun %s (git %s).\n", o->command, run_dir,
            jc->version, jc->commit);
    fprintf(fp, "# Submit with `%s THIS_FILE`. Requeue contract: SIGUSR1 %d s before the time limit makes sslrun\n"
                "# checkpoint and exit 3; this script then requeues the job, which resumes from that checkpoint.\n",
            slurm ? "sbatch" : "qsub", o->warn_s);
    if (slurm) slurm_header(fp, o, name);
    else pbs_header(fp, o, name);
    fputs("set -u\n", fp);
    fputs("cd ", fp), put_quoted(fp, jc->cwd), fputs(" || exit 1\n", fp);
    fputs("SSLRUN=", fp), put_quoted(fp, o->sslrun), fputc('\n', fp);
    fprintf(fp, "COMMAND=%s\n", o->command);
    fputs("RUN_DIR=", fp), put_quoted(fp, run_dir), fputc('\n', fp);
    fprintf(fp, "MAX_REQUEUES=%d\n", o->max_requeues);
    /* PBS has no warning signal: the script sends its own when the limit nears */
    fprintf(fp, "WARN_AFTER=%ld\n", !slurm && o->time_s > 0 ? o->time_s - o->warn_s : 0L);
    if (o->cpus_per_task) fprintf(fp, "export OMP_NUM_THREADS=%d\n", o->cpus_per_task);
    fputs("export SSLRUN_REPORT_BINDING=1   # each rank prints its node, local rank, CPUs and GPU at start\n", fp);
    launch_lines(fp, o);
    fputs("# The resolved config as submitted: every start of this job (requeues too) runs exactly this.\n"
          "mkdir -p \"$RUN_DIR\" || exit 1\n"
          "CONFIG=\"$RUN_DIR/job.yaml\"\n"
          "cat > \"$CONFIG.tmp\" <<'" FROZEN_EOF "'\n",
          fp);
    fputs(jc->yaml, fp);
    if (jc->yaml[0] && jc->yaml[strlen(jc->yaml) - 1] != '\n') fputc('\n', fp);
    fputs(FROZEN_EOF "\nmv -f \"$CONFIG.tmp\" \"$CONFIG\" || exit 1\n", fp);
    fputs(body, fp);
    if (ferror(fp)) {
        snprintf(err, errlen, "write error");
        return -1;
    }
    return 0;
}
