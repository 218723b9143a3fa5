/* The job a training command runs in (see cli.h): communicator, message prefix, abort hook, stop
 * signals. */
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "launch/cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>

static _Atomic int stop_signal;

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

static sigset_t stop_set;

/* Takes every SIGTERM / SIGUSR1 sent to the process, for as long as it lives. */
static void *wait_for_stop(void *arg)
{
    (void)arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&stop_set, &sig) == 0) atomic_store(&stop_signal, sig);
    }
    return NULL;
}

void ssl_cli_catch_stop_signals(void)
{
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGUSR1);
    SSL_ASSERT(pthread_sigmask(SIG_BLOCK, &stop_set, NULL) == 0); /* inherited by every later thread */
    pthread_t t;
    pthread_attr_t a;
    SSL_ASSERT(pthread_attr_init(&a) == 0);
    SSL_ASSERT(pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED) == 0);
    SSL_ASSERT(pthread_create(&t, &a, wait_for_stop, NULL) == 0);
    pthread_attr_destroy(&a);
}

int ssl_cli_stop_requested(void) { return atomic_load(&stop_signal) > 0; }
