/* MPI implementation of the communicator over host buffers (see comm.h). Reductions map to MPI ops;
 * AVG is SUM followed by a scale, as MPI has no average. ReduceScatter is MPI_Reduce_scatter_block
 * (the NCCL equivalent, REFERENCE §7.3). MPI is initialised with MPI_THREAD_FUNNELED: only the main
 * thread calls MPI (loader threads never do). */
#include "framework/comm/comm.h"

#include "framework/core/check.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A nonblocking allreduce in flight (iallreduce): its request and what wait_all does after it. */
typedef struct {
    MPI_Request req;
    void *buf;
    size_t n;
    ssl_dtype t;
    int avg;
} mpi_pending;

typedef struct {
    MPI_Comm comm;
    int owned; /* comm was created by us (freed on close) */
    mpi_pending *pend;
    int npend, cappend;
    size_t pend_bytes;
} mpi_impl;

static int we_initialised;

static MPI_Comm handle(ssl_comm *c) { return ((mpi_impl *)c->impl)->comm; }

static MPI_Datatype mpi_type(ssl_dtype t)
{
    switch (t) {
    case SSL_F32: return MPI_FLOAT;
    case SSL_F64: return MPI_DOUBLE;
    case SSL_I64: return MPI_INT64_T;
    case SSL_U8: return MPI_BYTE;
    }
    return MPI_BYTE;
}

static MPI_Op mpi_op(ssl_redop op)
{
    switch (op) {
    case SSL_SUM:
    case SSL_AVG: return MPI_SUM;
    case SSL_MAX: return MPI_MAX;
    case SSL_MIN: return MPI_MIN;
    }
    return MPI_SUM;
}

static void check(ssl_comm *c, int rc, const char *what)
{
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    SSL_ABORT("rank %d: %s failed: %s", c->rank, what, msg);
}

static void scale(void *buf, size_t n, ssl_dtype t, double s)
{
    if (t == SSL_F32) {
        float *x = buf, f = (float)s;
        for (size_t i = 0; i < n; i++) x[i] *= f;
    } else if (t == SSL_F64) {
        double *x = buf;
        for (size_t i = 0; i < n; i++) x[i] *= s;
    } else {
        SSL_ABORT("comm: average of an integer type");
    }
}

/* MPI counts are int: large buffers go in pieces of at most 1 Gi elements. */
#define CHUNK ((size_t)1 << 30)

static void mpi_allreduce(ssl_comm *c, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    if (c->world == 1 || n == 0) return;
    size_t es = ssl_dtype_size(t);
    double t0 = ssl_comm_enter(c, SSL_COLL_ALLREDUCE, n * es);
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t m = n - off < CHUNK ? n - off : CHUNK;
        check(c, MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * es, (int)m, mpi_type(t), mpi_op(op), handle(c)),
              "MPI_Allreduce");
    }
    if (op == SSL_AVG) scale(buf, n, t, 1.0 / c->world);
    ssl_comm_leave(c, SSL_COLL_ALLREDUCE, t0, n * es);
}

/* MPI_Iallreduce in pieces of at most CHUNK; AVG's scale waits for the result (wait_all). */
static void mpi_iallreduce(ssl_comm *c, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    if (c->world == 1 || n == 0) return;
    mpi_impl *m = c->impl;
    const size_t es = ssl_dtype_size(t);
    for (size_t off = 0; off < n; off += CHUNK) {
        const size_t k = n - off < CHUNK ? n - off : CHUNK;
        if (m->npend == m->cappend) {
            const int cap = m->cappend ? 2 * m->cappend : 64; /* grows on the first steps only */
            mpi_pending *grown = ssl_malloc((size_t)cap * sizeof *grown);
            if (m->npend) memcpy(grown, m->pend, (size_t)m->npend * sizeof *grown);
            ssl_free(m->pend);
            m->pend = grown, m->cappend = cap;
        }
        mpi_pending *p = &m->pend[m->npend++];
        p->buf = (char *)buf + off * es, p->n = k, p->t = t, p->avg = op == SSL_AVG;
        check(c, MPI_Iallreduce(MPI_IN_PLACE, p->buf, (int)k, mpi_type(t), mpi_op(op), handle(c), &p->req),
              "MPI_Iallreduce");
        m->pend_bytes += k * es;
    }
}

static void mpi_wait_all(ssl_comm *c)
{
    mpi_impl *m = c->impl;
    if (!m->npend) return;
    const size_t bytes = m->pend_bytes;
    double t0 = ssl_comm_enter(c, SSL_COLL_ALLREDUCE, bytes);
    for (int i = 0; i < m->npend; i++) {
        check(c, MPI_Wait(&m->pend[i].req, MPI_STATUS_IGNORE), "MPI_Wait (allreduce)");
        if (m->pend[i].avg) scale(m->pend[i].buf, m->pend[i].n, m->pend[i].t, 1.0 / c->world);
    }
    m->npend = 0, m->pend_bytes = 0;
    ssl_comm_leave(c, SSL_COLL_ALLREDUCE, t0, bytes);
}

static void mpi_allgather(ssl_comm *c, const void *send, void *recv, size_t n, ssl_dtype t)
{
    size_t es = ssl_dtype_size(t);
    if (c->world == 1) {
        if (send != recv) memmove(recv, send, n * es);
        return;
    }
    SSL_ASSERTF(n < CHUNK, "allgather of %zu elements per rank: too large for one MPI call", n);
    double t0 = ssl_comm_enter(c, SSL_COLL_ALLGATHER, n * es);
    const void *s = send == (const char *)recv + (size_t)c->rank * n * es ? MPI_IN_PLACE : send;
    check(c, MPI_Allgather(s, (int)n, mpi_type(t), recv, (int)n, mpi_type(t), handle(c)), "MPI_Allgather");
    ssl_comm_leave(c, SSL_COLL_ALLGATHER, t0, n * es);
}

static void mpi_reduce_scatter(ssl_comm *c, const void *send, void *recv, size_t n, ssl_dtype t, ssl_redop op)
{
    size_t es = ssl_dtype_size(t);
    if (c->world == 1) {
        if (send != recv) memmove(recv, send, n * es);
        return;
    }
    SSL_ASSERTF(n < CHUNK, "reduce_scatter of %zu elements per rank: too large for one MPI call", n);
    double t0 = ssl_comm_enter(c, SSL_COLL_REDUCE_SCATTER, n * es * (size_t)c->world);
    /* MPI's in-place form takes the whole input in recvbuf; keep the NCCL contract (recv is a block
     * of send) by using a separate result when they alias. */
    if (recv == (const char *)send + (size_t)c->rank * n * es) {
        check(c, MPI_Reduce_scatter_block(MPI_IN_PLACE, (void *)send, (int)n, mpi_type(t), mpi_op(op), handle(c)),
              "MPI_Reduce_scatter_block");
        memmove(recv, send, n * es);
    } else {
        check(c, MPI_Reduce_scatter_block(send, recv, (int)n, mpi_type(t), mpi_op(op), handle(c)),
              "MPI_Reduce_scatter_block");
    }
    if (op == SSL_AVG) scale(recv, n, t, 1.0 / c->world);
    ssl_comm_leave(c, SSL_COLL_REDUCE_SCATTER, t0, n * es * (size_t)c->world);
}

static void mpi_broadcast(ssl_comm *c, void *buf, size_t n, ssl_dtype t, int root)
{
    if (c->world == 1 || n == 0) return;
    size_t es = ssl_dtype_size(t);
    double t0 = ssl_comm_enter(c, SSL_COLL_BROADCAST, n * es);
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t m = n - off < CHUNK ? n - off : CHUNK;
        check(c, MPI_Bcast((char *)buf + off * es, (int)m, mpi_type(t), root, handle(c)), "MPI_Bcast");
    }
    ssl_comm_leave(c, SSL_COLL_BROADCAST, t0, n * es);
}

static void mpi_barrier(ssl_comm *c)
{
    if (c->world == 1) return;
    double t0 = ssl_comm_enter(c, SSL_COLL_BARRIER, 0);
    check(c, MPI_Barrier(handle(c)), "MPI_Barrier");
    ssl_comm_leave(c, SSL_COLL_BARRIER, t0, 0);
}

static void mpi_abort(ssl_comm *c, int code)
{
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(handle(c), code);
    _Exit(code);
}

static void mpi_free(ssl_comm *c)
{
    mpi_impl *m = c->impl;
    SSL_ASSERTF(!m->npend, "communicator freed with %d nonblocking allreduces in flight", m->npend);
    if (m->owned) MPI_Comm_free(&m->comm);
    ssl_free(m->pend);
    ssl_free(m);
}

static const ssl_comm_ops mpi_ops = {
    .name = "mpi",
    .allreduce = mpi_allreduce,
    .allgather = mpi_allgather,
    .reduce_scatter = mpi_reduce_scatter,
    .broadcast = mpi_broadcast,
    .iallreduce = mpi_iallreduce,
    .wait_all = mpi_wait_all,
    .barrier = mpi_barrier,
    .abort = mpi_abort,
    .free = mpi_free,
};

static ssl_comm *wrap(MPI_Comm comm, int owned)
{
    ssl_comm *c = ssl_calloc(1, sizeof *c);
    mpi_impl *m = ssl_calloc(1, sizeof *m);
    m->comm = comm;
    m->owned = owned;
    c->ops = &mpi_ops;
    c->impl = m;
    MPI_Comm_rank(comm, &c->rank);
    MPI_Comm_size(comm, &c->world);
    /* node-local layout: one shared-memory communicator per node (REFERENCE §7.2) */
    MPI_Comm node;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &c->local_rank);
    MPI_Comm_size(node, &c->local_world);
    int leader = c->local_rank == 0;
    MPI_Allreduce(&leader, &c->nodes, 1, MPI_INT, MPI_SUM, comm);
    MPI_Comm_free(&node);
    return c;
}

ssl_comm *ssl_comm_mpi_world(int *argc, char ***argv)
{
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
        int provided;
        MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        we_initialised = 1;
    }
    /* errors come back as codes so they are reported with the rank, not by MPI's default handler */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return wrap(MPI_COMM_WORLD, 0);
}

int ssl_comm_mpi_launched(void)
{
    /* a rank's number is 0 on rank 0: presence is what counts (srun --mpi=pmix sets PMIX_RANK=0 there
     * and nothing Open-MPI-specific), and only SSLRUN_MPI=0 says no */
    const char *force = getenv("SSLRUN_MPI");
    if (force && *force) return strcmp(force, "0") != 0;
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return 1;
    }
    return 0;
}

int ssl_comm_mpi_handle(const ssl_comm *c, void *out)
{
    if (!c || c->ops != &mpi_ops) return -1;
    *(MPI_Comm *)out = ((const mpi_impl *)c->impl)->comm;
    return 0;
}

void ssl_comm_mpi_finalize(void)
{
    int fin = 0;
    MPI_Finalized(&fin);
    if (we_initialised && !fin) MPI_Finalize();
}
