/* The job a training command runs in (see cli.h): communicator, message prefix, abort hook, stop
 * signals. */
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "launch/cli.h"

#include <signal.h>
#include <stdio.h>

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

/* The job communicator for the abort hook (SSL_ASSERT failures anywhere end every rank). */
static ssl_comm *job_comm;
static char prefix[32];
static void abort_job(void)
{
    if (job_comm && job_comm->world > 1) job_comm->ops->abort(job_comm, 1);
}

ssl_comm *ssl_cli_job_begin(void)
{
    /* one process started by hand needs no MPI (and pays no MPI_Init) */
    ssl_comm *comm = ssl_comm_mpi_launched() ? ssl_comm_mpi_world(NULL, NULL) : ssl_comm_local();
    job_comm = comm;
    prefix[0] = '\0';
    if (comm->world > 1) {
        snprintf(prefix, sizeof prefix, "rank %d: ", comm->rank);
        ssl_set_message_prefix(prefix);
        ssl_set_abort_hook(abort_job);
    }
    return comm;
}

const char *ssl_cli_job_prefix(void) { return prefix; }

void ssl_cli_job_end(ssl_comm *comm)
{
    job_comm = NULL;
    ssl_comm_free(comm);
    ssl_comm_mpi_finalize();
}

void ssl_cli_catch_stop_signals(void)
{
    signal(SIGTERM, on_signal);
    signal(SIGUSR1, on_signal);
}

int ssl_cli_stop_requested(void) { return stop_signal > 0; }
