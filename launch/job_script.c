/* `sslrun job --scheduler slurm|pbs --nodes N [...] CONFIG.yaml [k=v ...] > job.sh`: a batch script
 * for the run. The config is resolved and checked now (a mistake fails here, not after the queue
 * wait) and frozen into the script, so every start of the job, requeues included, runs exactly what
 * was submitted. The script carries the requeue contract (launch/cli.h): the scheduler's warning
 * signal reaches sslrun, which checkpoints and exits SSL_EXIT_PREEMPTED; the script then requeues the
 * job, which resumes from that checkpoint. Done, failed and usage exits end the job; a cap on
 * requeues per run stops a job that is preempted without ever finishing from cycling forever. */
#include "launch/cli.h"
#include "launch/job_shell.h"

#include "framework/core/version.h"
#include "methods/method.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: sslrun job --scheduler slurm|pbs --nodes N [--gpus-per-node G | --tasks-per-node T]\n"
    "                  [--cpus-per-task C] [--time [D-]H:MM:SS] [--partition P] [--account A]\n"
    "                  [--warn-seconds S] [--max-requeues R] [--launcher srun|mpirun] [--command pretrain|finetune]\n"
    "                  [--sslrun PATH] [--out job.sh] CONFIG.yaml [section.key=value ...]\n";

/* A time limit as Slurm and PBS both read it: M (minutes), H:MM:SS or D-H:MM:SS. Seconds, or -1. */
static long parse_time(const char *s)
{
    int d = 0, h = 0, m = 0, sec = 0, n = 0;
    size_t len = strlen(s);
    if (strchr(s, '-')) {
        if (sscanf(s, "%d-%d:%d:%d%n", &d, &h, &m, &sec, &n) != 4 || (size_t)n != len) return -1;
    } else if (strchr(s, ':')) {
        if (sscanf(s, "%d:%d:%d%n", &h, &m, &sec, &n) != 3 || (size_t)n != len) return -1;
    } else if (ssl_cli_parse_int(s, 1, 1000000, &m)) {
        return -1;
    }
    if (d < 0 || h < 0 || m < 0 || sec < 0 || (strchr(s, ':') && (m > 59 || sec > 59))) return -1;
    return (((long)d * 24 + h) * 60 + m) * 60 + sec;
}

/* Remove every "--name VALUE" option this command knows; an unknown "--x" is a usage error (it
 * would otherwise be read as the config path). */
static int take_options(int *argc, char **argv, ssl_job_opts *o, char *err, size_t errlen)
{
    const char *v;
    struct {
        const char *name;
        int *dst, lo, hi;
    } ints[] = {{"--nodes", &o->nodes, 1, 1000000},        {"--gpus-per-node", &o->gpus_per_node, 0, 64},
                {"--tasks-per-node", &o->tasks_per_node, 1, 4096}, {"--cpus-per-task", &o->cpus_per_task, 1, 4096},
                {"--warn-seconds", &o->warn_s, 10, 86400},      {"--max-requeues", &o->max_requeues, 0, 100000}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if ((v = ssl_cli_take_value(argc, argv, ints[i].name)) && ssl_cli_parse_int(v, ints[i].lo, ints[i].hi, ints[i].dst)) {
            snprintf(err, errlen, "%s %s: expected a whole number in [%d, %d]", ints[i].name, v, ints[i].lo, ints[i].hi);
            return -1;
        }
    struct {
        const char *name, **dst;
    } strs[] = {{"--scheduler", &o->scheduler}, {"--time", &o->time},       {"--partition", &o->partition},
                {"--account", &o->account},     {"--launcher", &o->launcher}, {"--command", &o->command},
                {"--sslrun", &o->sslrun},       {"--out", &o->out}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if ((v = ssl_cli_take_value(argc, argv, strs[i].name))) *strs[i].dst = v;
    for (int i = 0; i < *argc; i++)
        if (!strncmp(argv[i], "--", 2)) {
            snprintf(err, errlen, "unknown option '%s' (or it lacks its value)", argv[i]);
            return -1;
        }
    if (!o->scheduler || (strcmp(o->scheduler, "slurm") && strcmp(o->scheduler, "pbs"))) {
        snprintf(err, errlen, "--scheduler slurm or --scheduler pbs is required");
        return -1;
    }
    if (!o->nodes) {
        snprintf(err, errlen, "--nodes N is required");
        return -1;
    }
    if (o->gpus_per_node && o->tasks_per_node && o->tasks_per_node != o->gpus_per_node) {
        snprintf(err, errlen, "--tasks-per-node %d with --gpus-per-node %d: one rank drives one GPU",
                 o->tasks_per_node, o->gpus_per_node);
        return -1;
    }
    if (!o->tasks_per_node) o->tasks_per_node = o->gpus_per_node ? o->gpus_per_node : 1;
    if (strcmp(o->launcher, "srun") && strcmp(o->launcher, "mpirun")) {
        snprintf(err, errlen, "--launcher %s: srun or mpirun", o->launcher);
        return -1;
    }
    if (!strcmp(o->scheduler, "pbs") && !strcmp(o->launcher, "srun")) o->launcher = "mpirun"; /* PBS has no srun */
    if (strcmp(o->command, "pretrain") && strcmp(o->command, "finetune")) {
        snprintf(err, errlen, "--command %s: pretrain or finetune", o->command);
        return -1;
    }
    o->time_s = -1;
    if (o->time && (o->time_s = parse_time(o->time)) < 0) {
        snprintf(err, errlen, "--time %s: expected minutes, H:MM:SS or D-H:MM:SS", o->time);
        return -1;
    }
    if (o->time_s >= 0 && o->warn_s + 60 > o->time_s) {
        snprintf(err, errlen, "--time %s leaves no room for the %d s preemption warning (--warn-seconds) plus a minute of training",
                 o->time, o->warn_s);
        return -1;
    }
    return 0;
}

/* The absolute path of this sslrun (the job runs the binary that wrote it unless --sslrun). */
static int self_path(char *out, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    if (n <= 0 || (size_t)n >= size - 1) return -1;
    out[n] = '\0';
    return 0;
}

int ssl_cmd_job(int argc, char **argv)
{
    ssl_job_opts o = {.warn_s = 120, .max_requeues = 20, .launcher = "srun", .command = "pretrain"};
    char err[2048];
    if (take_options(&argc, argv, &o, err, sizeof err) || argc < 1) {
        if (argc >= 1 || o.scheduler) fprintf(stderr, "sslrun job: %s\n", argc < 1 ? "CONFIG.yaml is required" : err);
        fputs(usage_text, stderr);
        return SSL_EXIT_USAGE;
    }
    ssl_config cfg;
    ssl_view_plan views;
    if (ssl_config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err) ||
        ssl_method_configure(&cfg, &views, err, sizeof err)) {
        fprintf(stderr, "sslrun: %s\n", err);
        return SSL_EXIT_USAGE;
    }
    if (o.gpus_per_node && !strcmp(cfg.device.backend, "cpu"))
        fprintf(stderr, "sslrun job: note: --gpus-per-node %d with device.backend cpu: the ranks will not use the GPUs\n",
                o.gpus_per_node);
    char self[PATH_MAX], cwd[PATH_MAX];
    if (!o.sslrun) {
        if (self_path(self, sizeof self)) {
            fprintf(stderr, "sslrun job: cannot find this sslrun's path (/proc/self/exe); give --sslrun PATH\n");
            return SSL_EXIT_FAILURE;
        }
        o.sslrun = self;
    }
    if (!getcwd(cwd, sizeof cwd)) {
        fprintf(stderr, "sslrun job: getcwd: %s\n", strerror(errno));
        return SSL_EXIT_FAILURE;
    }
    char *yaml = ssl_config_to_yaml(&cfg);
    FILE *fp = o.out ? fopen(o.out, "w") : stdout;
    if (!yaml || !fp) {
        fprintf(stderr, "sslrun job: %s: %s\n", o.out ? o.out : "config", strerror(errno));
        free(yaml);
        return SSL_EXIT_FAILURE;
    }
    ssl_job_context jc = {.opts = &o, .cfg = &cfg, .yaml = yaml, .cwd = cwd, .version = ssl_version, .commit = ssl_git_commit};
    int rc = ssl_job_write(fp, &jc, err, sizeof err);
    free(yaml);
    if (o.out && (fclose(fp) || chmod(o.out, 0755))) rc = -1, snprintf(err, sizeof err, "%s: %s", o.out, strerror(errno));
    if (rc) {
        fprintf(stderr, "sslrun job: %s\n", err);
        if (o.out) remove(o.out);
        return SSL_EXIT_FAILURE;
    }
    if (o.out) fprintf(stderr, "sslrun job: wrote %s (submit with %s %s)\n", o.out, !strcmp(o.scheduler, "slurm") ? "sbatch" : "qsub", o.out);
    return SSL_EXIT_DONE;
}
