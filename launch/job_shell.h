/* The batch script `sslrun job` writes (launch/job_script.c parses, this writes): a scheduler header
 * (#SBATCH or #PBS directives), then one body for both schedulers that freezes the config, forwards
 * the warning signal to sslrun and turns its exit code into a requeue or an end. */
#ifndef SSL_LAUNCH_JOB_SHELL_H
#define SSL_LAUNCH_JOB_SHELL_H

#include "io/config.h"

#include <stdio.h>

typedef struct {
    const char *scheduler;             /* "slurm" | "pbs" */
    int nodes, gpus_per_node, tasks_per_node, cpus_per_task; /* cpus_per_task 0: the site's default */
    const char *time;                  /* as given, NULL: the queue's default limit */
    long time_s;                       /* time in seconds, -1 without --time */
    const char *partition, *account;   /* NULL: none */
    int warn_s;                        /* warning signal this many seconds before the limit */
    int max_requeues;                  /* per run, until it finishes */
    const char *launcher;              /* "srun" | "mpirun" */
    const char *command;               /* "pretrain" | "finetune" */
    const char *sslrun, *out;          /* the binary the job runs; the script's path (NULL: stdout) */
} ssl_job_opts;

typedef struct {
    const ssl_job_opts *opts;
    const ssl_config *cfg;
    const char *yaml;                  /* the resolved config (ssl_config_to_yaml) */
    const char *cwd;                   /* the job runs here, so relative paths mean what they meant */
    const char *version, *commit;
} ssl_job_context;

/* Write the script; 0, or -1 with err (a path that cannot be quoted, a write error). */
int ssl_job_write(FILE *fp, const ssl_job_context *jc, char *err, size_t errlen);

#endif
