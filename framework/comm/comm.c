/* Device-neutral parts of the communicator: the world-1 implementation, call statistics and the
 * stall watchdog (see comm.h). */
#include "framework/comm/comm.h"
#include "framework/comm/device.h"

#include "framework/core/check.h"
#include "framework/core/timer.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *const ssl_coll_names[SSL_COLL_COUNT] = {"allreduce", "allgather", "reduce_scatter", "broadcast",
                                                    "barrier"};

size_t ssl_dtype_size(ssl_dtype t)
{
    switch (t) {
    case SSL_F32: return 4;
    case SSL_F64: return 8;
    case SSL_I64: return 8;
    case SSL_U8: return 1;
    }
    return 1;
}

double ssl_comm_enter(ssl_comm *c, ssl_coll k, size_t bytes)
{
    double t0 = ssl_now();
    atomic_store(&c->inflight_since_us, (int64_t)(t0 * 1e6));
    atomic_store(&c->inflight_bytes, (int64_t)bytes);
    atomic_fetch_add(&c->seq, 1);
    atomic_store(&c->inflight, (int)k + 1);
    return t0;
}

void ssl_comm_leave(ssl_comm *c, ssl_coll k, double t0, size_t bytes)
{
    atomic_store(&c->inflight, 0);
    c->stats.seconds[k] += ssl_now() - t0;
    c->stats.bytes[k] += (double)bytes;
    c->stats.calls[k]++;
}

/* ---- world 1 ---------------------------------------------------------------------------------- */

static void local_allreduce(ssl_comm *c, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    (void)c, (void)buf, (void)n, (void)t, (void)op;
}

static void local_allgather(ssl_comm *c, const void *send, void *recv, size_t n, ssl_dtype t)
{
    (void)c;
    if (send != recv) memmove(recv, send, n * ssl_dtype_size(t));
}

static void local_reduce_scatter(ssl_comm *c, const void *send, void *recv, size_t n, ssl_dtype t,
                                 ssl_redop op)
{
    (void)c, (void)op;
    if (send != recv) memmove(recv, send, n * ssl_dtype_size(t));
}

static void local_broadcast(ssl_comm *c, void *buf, size_t n, ssl_dtype t, int root)
{
    (void)c, (void)buf, (void)n, (void)t;
    SSL_ASSERT(root == 0);
}

static void local_iallreduce(ssl_comm *c, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    (void)c, (void)buf, (void)n, (void)t, (void)op;
}
static void local_wait_all(ssl_comm *c) { (void)c; }
static void local_barrier(ssl_comm *c) { (void)c; }

static void local_abort(ssl_comm *c, int code)
{
    (void)c;
    fflush(stdout);
    fflush(stderr);
    _exit(code);
}

static void local_free(ssl_comm *c) { (void)c; }

static const ssl_comm_ops local_ops = {
    .name = "local",
    .allreduce = local_allreduce,
    .allgather = local_allgather,
    .reduce_scatter = local_reduce_scatter,
    .broadcast = local_broadcast,
    .iallreduce = local_iallreduce,
    .wait_all = local_wait_all,
    .barrier = local_barrier,
    .abort = local_abort,
    .free = local_free,
};

ssl_comm *ssl_comm_local(void)
{
    ssl_comm *c = ssl_calloc(1, sizeof *c);
    c->ops = &local_ops;
    c->world = c->local_world = c->nodes = 1;
    return c;
}

/* ---- watchdog --------------------------------------------------------------------------------- */

typedef struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
} watchdog;

static void *watchdog_main(void *arg)
{
    ssl_comm *c = arg;
    watchdog *w = c->watchdog;
    double poll = c->timeout_s / 10 < 1.0 ? c->timeout_s / 10 : 1.0;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double until = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec + poll;
        ts.tv_sec = (time_t)until;
        ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        int k = atomic_load(&c->inflight);
        if (w->stop || !k) continue;
        double since = (double)atomic_load(&c->inflight_since_us) * 1e-6;
        double stalled = ssl_now() - since;
        if (stalled > c->timeout_s) {
            fprintf(stderr, "sslrun: rank %d: %s of %lld bytes (collective #%lld) stalled for %.0f s "
                    "(comm.timeout_s %.0f): another rank has died or is stuck; ending the job\n",
                    c->rank, ssl_coll_names[k - 1], (long long)atomic_load(&c->inflight_bytes),
                    (long long)atomic_load(&c->seq), stalled, c->timeout_s);
            fflush(stderr);
            /* MPI_Abort from a second thread needs MPI_THREAD_MULTIPLE; a non-zero exit makes the
             * launcher (mpirun, srun) end the whole job instead. 1: a failure (launch/cli.h's codes;
             * 3 would tell a job script "checkpoint written, requeue me", and none was written). */
            _exit(1);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void ssl_comm_watchdog_start(ssl_comm *c, double timeout_s)
{
    if (timeout_s <= 0 || c->watchdog) return;
    c->timeout_s = timeout_s;
    watchdog *w = ssl_calloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    c->watchdog = w;
    SSL_ASSERT(pthread_create(&w->thread, NULL, watchdog_main, c) == 0);
}

void ssl_comm_free(ssl_comm *c)
{
    if (!c) return;
    if (c->dev) c->dev->free(c->dev); /* before the MPI communicator its setup used */
    c->dev = NULL;
    watchdog *w = c->watchdog;
    if (w) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        ssl_free(w);
    }
    c->ops->free(c);
    ssl_free(c);
}
