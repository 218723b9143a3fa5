/* sslrun subcommands: each is `int cmd(int argc, char **argv)` with argv after the subcommand name,
 * returning the process exit code (below). */
#ifndef SSL_LAUNCH_CLI_H
#define SSL_LAUNCH_CLI_H

#include "io/config.h"

/* Exit codes. SSL_EXIT_PREEMPTED is the requeue contract with a batch system: a job script that sees
 * it resubmits the job (`scontrol requeue`, `qrerun`), which resumes from the checkpoint just written;
 * every other code ends the job (done, a failure that would only fail again, a bad command line). */
enum {
    SSL_EXIT_DONE = 0,      /* finished, or stopped at run.max_steps with a checkpoint written */
    SSL_EXIT_FAILURE = 1,   /* message on stderr */
    SSL_EXIT_USAGE = 2,     /* usage or config error */
    SSL_EXIT_PREEMPTED = 3, /* stopped by SIGTERM / SIGUSR1: checkpoint written, resume me */
};

int ssl_cmd_pretrain(int argc, char **argv);
int ssl_cmd_prep(int argc, char **argv);
int ssl_cmd_augment_preview(int argc, char **argv);
int ssl_cmd_mae_preview(int argc, char **argv);
int ssl_cmd_config(int argc, char **argv);
int ssl_cmd_eval(int argc, char **argv);
int ssl_cmd_export(int argc, char **argv);
int ssl_cmd_plot(int argc, char **argv);
int ssl_cmd_finetune(int argc, char **argv);
int ssl_cmd_job(int argc, char **argv);

struct ssl_comm;
/* A training command's job (launch/job.c): the MPI communicator under mpirun (a local one otherwise), and
 * with several ranks every message prefixed "rank R: " and any SSL_ASSERT failure ending all ranks. */
struct ssl_comm *ssl_cli_job_begin(void);
const char *ssl_cli_job_prefix(void); /* "rank R: " or "" */
void ssl_cli_job_end(struct ssl_comm *comm); /* frees it and finalises MPI */
/* SIGTERM / SIGUSR1 (a scheduler's preemption warning) set a flag the loop checks at a step boundary.
 * They are blocked in the calling thread and taken by one thread waiting for them (sigwait), so no
 * thread made afterwards (MPI's, HDF5's, OpenMP's, the loader's) is ever interrupted by one: an
 * interrupted call deep in a library is not ours to restart. Training commands call it first, before
 * ssl_cli_job_begin starts MPI, so a warning that arrives during setup still ends in a checkpoint
 * (after the first step) instead of the default action's silent death. */
void ssl_cli_catch_stop_signals(void);
int ssl_cli_stop_requested(void);

/* Remove "--name VALUE" from argv (compacting it) and return VALUE, or NULL when absent. */
const char *ssl_cli_take_value(int *argc, char **argv, const char *name);
/* Remove the flag "--name" from argv; returns 1 when it was there. */
int ssl_cli_take_flag(int *argc, char **argv, const char *name);
/* A whole decimal int in [lo, hi] into *out: 0, or -1 (atoi would take "1e4" as 1 and "abc" as 0). */
int ssl_cli_parse_int(const char *s, int lo, int hi, int *out);

struct ssl_comm;
/* OpenMP threads for one rank (pretrain.c): device.threads, else OMP_NUM_THREADS, else the cores the
 * launcher bound it to, else its share of the node. */
int ssl_cli_rank_threads(const ssl_config *cfg, const struct ssl_comm *comm);

#endif
