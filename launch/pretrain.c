/* `sslrun CONFIG.yaml [section.key=value ...]`: pretraining with any method. This file parses the
 * command line, sets up MPI, signals and threads, and calls the trainer (framework/train/trainer.h)
 * step by step: a live progress line (plain lines when not on a terminal), metrics.jsonl, NaN/inf
 * detection that stops with the step number, checkpoints every N steps and at the end, and
 * SIGTERM/SIGUSR1 handled at a step boundary by checkpointing and exiting SSL_EXIT_PREEMPTED (3), which
 * a job script turns into a requeue (`sslrun job`). An error on any rank ends the whole job (MPI_Abort) with "rank R: message";
 * only rank 0 prints progress and writes metrics. */
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/train/trainer.h"
#include "methods/method.h"
#include "launch/cli.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* CPU ranks share the node's cores: unless the user chose (device.threads, OMP_NUM_THREADS), a rank
 * bound by the launcher uses the cores it was given, an unbound one its share of the node. */
int ssl_cli_rank_threads(const ssl_config *cfg, const ssl_comm *comm)
{
    if (cfg->device.threads > 0) return cfg->device.threads;
    if (getenv("OMP_NUM_THREADS")) return omp_get_max_threads();
    int avail = omp_get_num_procs(), online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int n = avail < online ? avail : online / comm->local_world;
    return n < 1 ? 1 : n;
}

int ssl_cmd_pretrain(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: sslrun CONFIG.yaml [section.key=value ...]\n");
        return 2;
    }
    ssl_cli_catch_stop_signals(); /* first: every thread MPI and the rest start inherits the block */
    ssl_comm *comm = ssl_cli_job_begin();
    const char *prefix = ssl_cli_job_prefix();
    const int rank0 = comm->rank == 0;
    char err[2048];
    ssl_config cfg;
    ssl_view_plan views;
    if (ssl_config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err) ||
        ssl_method_configure(&cfg, &views, err, sizeof err)) {
        /* every rank reads the same file and fails the same way: one message, a clean exit; the
         * method's checks (views, its section against the rest) are config errors too */
        if (rank0) fprintf(stderr, "sslrun: %s\n", err);
        ssl_cli_job_end(comm);
        return SSL_EXIT_USAGE;
    }
    omp_set_num_threads(ssl_cli_rank_threads(&cfg, comm));
    ssl_comm_watchdog_start(comm, cfg.comm.timeout_s);
    ssl_trainer *t = ssl_calloc(1, sizeof *t); /* the session must not move: the method points into it */
    int rc = SSL_EXIT_FAILURE, nan = 0, preempted = 0;
    if (ssl_train_setup(t, &cfg, comm, err, sizeof err) || ssl_train_resume(t, err, sizeof err)) goto out;
    while (t->step < t->total_steps) {
        ssl_step_record r;
        if (ssl_train_step(t, ssl_cli_stop_requested(), &r, &nan, err, sizeof err)) goto out;
        ssl_train_log(t, &r);
        if (ssl_train_epoch_end(t, err, sizeof err)) goto out;
        if (ssl_train_save_due(t, &r) && ssl_train_save(t, err, sizeof err)) goto out;
        if (r.stop && t->step < t->total_steps) {
            if (rank0)
                fprintf(stderr, r.stop > 0 ? "%ssslrun: signal received: checkpoint written at step %lld; exiting to be resumed\n"
                                           : "%ssslrun: run.max_steps reached: checkpoint written at step %lld\n",
                        t->tty ? "\n" : "", (long long)t->step);
            preempted = r.stop > 0;
            break;
        }
    }
    if (rank0 && t->step == t->total_steps)
        printf("%sdone: %lld steps in %.1f s, run directory %s\n", t->tty ? "\n" : "",
               (long long)(t->total_steps - t->first_step), ssl_now() - t->t_start, t->s.run_dir);
    ssl_train_report(t);
    rc = preempted ? SSL_EXIT_PREEMPTED : SSL_EXIT_DONE;
out:
    if (rc == SSL_EXIT_FAILURE && nan) {
        /* every rank saw the same global loss: stop together, rank 0 reports */
        if (rank0) fprintf(stderr, "%ssslrun: %s\n", t->tty ? "\n" : "", err);
    } else if (rc == SSL_EXIT_FAILURE && t->config_error) {
        /* a config error: every rank read the same config and files and stops here alike */
        rc = SSL_EXIT_USAGE;
        if (rank0) fprintf(stderr, "sslrun: %s\n", err);
    } else if (rc == SSL_EXIT_FAILURE) {
        fprintf(stderr, "%ssslrun: %s%s\n", rank0 && isatty(2) ? "\n" : "", prefix, err);
        /* this rank failed alone: the others may be inside a collective, so end them all */
        if (comm->world > 1) comm->ops->abort(comm, 1);
    }
    ssl_train_free(t);
    ssl_free(t);
    ssl_cli_job_end(comm);
    return rc;
}
