/* NCCL behind framework/comm/device.h (REFERENCE §7: unique id from rank 0 over MPI, one
 * communicator per rank). Every collective of the communicator runs on its own stream, after an event
 * recorded in the CUDA context's stream (so after the work that wrote its buffers): one stream keeps
 * NCCL's kernels in the order the host issued them on every rank, which the sync-BN and loss
 * collectives issued while gradient buckets are in flight need. The four collectives wait for that
 * stream before returning, so callers need no sync and the MPI communicator's watchdog sees a rank
 * stuck in NCCL as a stalled collective (it ends the job). The gradient buckets (allreduce_start)
 * return at once and run beside the rest of backward; wait_all waits for them under the watchdog
 * before the optimizer's work is queued. Compiled (in C: comm.h's atomics are not C++) when CMake
 * finds NCCL next to the CUDA toolkit; empty otherwise. */
#ifdef SSL_HAVE_NCCL

#include "framework/backend/backend.h"
#include "framework/backend/cuda/cuda.h"
#include "framework/comm/device.h"
#include "framework/core/check.h"

#include <nccl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#define SSL_NCCL_CHECK(call)                                                                   \
    do {                                                                                       \
        ncclResult_t r_ = (call);                                                              \
        if (r_ != ncclSuccess) SSL_ABORT("%s: %s", #call, ncclGetErrorString(r_));             \
    } while (0)

/* NCCL 2.14 added non-blocking communicators (ncclInProgress) and ncclGetLastError */
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
#define SSL_NCCL_PENDING(r) ((r) == ncclInProgress)
#define SSL_NCCL_LAST(comm) ncclGetLastError(comm)
#else
#define SSL_NCCL_PENDING(r) 0
#define SSL_NCCL_LAST(comm) ((const char *)NULL)
#endif

static ncclDataType_t nccl_type(ssl_dtype t)
{
    switch (t) {
    case SSL_F32: return ncclFloat32;
    case SSL_F64: return ncclFloat64;
    case SSL_I64: return ncclInt64;
    case SSL_U8: return ncclUint8;
    }
    SSL_ABORT("dtype %d has no NCCL type", (int)t);
}

static ncclRedOp_t nccl_op(ssl_redop op)
{
    switch (op) {
    case SSL_SUM: return ncclSum;
    case SSL_AVG: return ncclAvg;
    case SSL_MAX: return ncclMax;
    case SSL_MIN: return ncclMin;
    }
    SSL_ABORT("reduction %d has no NCCL operation", (int)op);
}

/* The communicator, its stream, and the event that orders it after the compute stream. */
typedef struct {
    ncclComm_t comm;
    cudaStream_t side;
    cudaEvent_t ready;
    size_t pending_bytes;
} nccl_impl;

#define SSL_CUDA_RT_CHECK(call)                                                                \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess) SSL_ABORT("%s: %s", #call, cudaGetErrorString(e_));             \
    } while (0)

static ncclComm_t nccl_of(ssl_dev_comm *d) { return ((nccl_impl *)d->impl)->comm; }
static cudaStream_t stream_of(ssl_ctx *c) { return (cudaStream_t)ssl_cuda_ctx_stream(c); }

/* NCCL's stream after everything queued in c's stream so far; returns that stream. */
static cudaStream_t after_compute(ssl_dev_comm *d, ssl_ctx *c)
{
    nccl_impl *m = d->impl;
    SSL_CUDA_RT_CHECK(cudaEventRecord(m->ready, stream_of(c)));
    SSL_CUDA_RT_CHECK(cudaStreamWaitEvent(m->side, m->ready, 0));
    return m->side;
}

/* Wait for NCCL's stream, reading the communicator's asynchronous error as it goes: a peer that died
 * or a network failure is reported by NCCL (not by the stream, which would wait on), so this rank
 * names it, aborts the communicator (its kernels would spin for ever) and ends the job at once
 * rather than at the watchdog's timeout. */
static void side_wait(nccl_impl *m)
{
    for (unsigned spin = 0;; spin++) {
        const cudaError_t e = cudaStreamQuery(m->side);
        if (e == cudaSuccess) return;
        if (e != cudaErrorNotReady) SSL_ABORT("NCCL's stream: %s", cudaGetErrorString(e));
        if (spin % 64 == 63) sched_yield(); /* the reader threads share this rank's cores */
        if (spin % 1024 != 1023) continue;
        ncclResult_t ae = ncclSuccess;
        SSL_NCCL_CHECK(ncclCommGetAsyncError(m->comm, &ae));
        if (ae != ncclSuccess && !SSL_NCCL_PENDING(ae)) {
            const char *last = SSL_NCCL_LAST(m->comm);
            fprintf(stderr, "sslrun: NCCL: %s%s%s; aborting the communicator\n", ncclGetErrorString(ae),
                    last && *last ? ": " : "", last ? last : "");
            ncclCommAbort(m->comm);
            SSL_ABORT("NCCL collective failed (%s)", ncclGetErrorString(ae));
        }
    }
}

/* The collective's result in place before the call returns: stats and watchdog bracket the wait. */
static void finish(ssl_dev_comm *d, ssl_ctx *c, ssl_coll k, double t0, size_t bytes)
{
    (void)c;
    side_wait(d->impl);
    ssl_comm_leave(d->host, k, t0, bytes);
}

static void nccl_allreduce(ssl_dev_comm *d, ssl_ctx *c, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    const size_t bytes = n * ssl_dtype_size(t);
    const double t0 = ssl_comm_enter(d->host, SSL_COLL_ALLREDUCE, bytes);
    SSL_NCCL_CHECK(ncclAllReduce(buf, buf, n, nccl_type(t), nccl_op(op), nccl_of(d), after_compute(d, c)));
    finish(d, c, SSL_COLL_ALLREDUCE, t0, bytes);
}

/* comm.h's in-place rule (send == recv + rank * n) is NCCL's own. */
static void nccl_allgather(ssl_dev_comm *d, ssl_ctx *c, const void *send, void *recv, size_t n, ssl_dtype t)
{
    const size_t bytes = n * ssl_dtype_size(t);
    const double t0 = ssl_comm_enter(d->host, SSL_COLL_ALLGATHER, bytes);
    if (n) SSL_NCCL_CHECK(ncclAllGather(send, recv, n, nccl_type(t), nccl_of(d), after_compute(d, c)));
    finish(d, c, SSL_COLL_ALLGATHER, t0, bytes);
}

/* In place iff recv == send + rank * n, as comm.h (and NCCL). */
static void nccl_reduce_scatter(ssl_dev_comm *d, ssl_ctx *c, const void *send, void *recv, size_t n, ssl_dtype t,
                                ssl_redop op)
{
    const size_t bytes = n * ssl_dtype_size(t);
    const double t0 = ssl_comm_enter(d->host, SSL_COLL_REDUCE_SCATTER, bytes);
    if (n)
        SSL_NCCL_CHECK(ncclReduceScatter(send, recv, n, nccl_type(t), nccl_op(op), nccl_of(d), after_compute(d, c)));
    finish(d, c, SSL_COLL_REDUCE_SCATTER, t0, bytes);
}

static void nccl_broadcast(ssl_dev_comm *d, ssl_ctx *c, void *buf, size_t n, ssl_dtype t, int root)
{
    const size_t bytes = n * ssl_dtype_size(t);
    const double t0 = ssl_comm_enter(d->host, SSL_COLL_BROADCAST, bytes);
    SSL_NCCL_CHECK(ncclBroadcast(buf, buf, n, nccl_type(t), root, nccl_of(d), after_compute(d, c)));
    finish(d, c, SSL_COLL_BROADCAST, t0, bytes);
}

static void nccl_allreduce_start(ssl_dev_comm *d, ssl_ctx *c, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    nccl_impl *m = d->impl;
    /* after everything the compute stream has queued so far: the bucket's gradients are final */
    SSL_NCCL_CHECK(ncclAllReduce(buf, buf, n, nccl_type(t), nccl_op(op), m->comm, after_compute(d, c)));
    m->pending_bytes += n * ssl_dtype_size(t);
}

static void nccl_wait_all(ssl_dev_comm *d, ssl_ctx *c)
{
    (void)c;
    nccl_impl *m = d->impl;
    if (!m->pending_bytes) return;
    const size_t bytes = m->pending_bytes;
    const double t0 = ssl_comm_enter(d->host, SSL_COLL_ALLREDUCE, bytes);
    side_wait(m); /* the host queues the optimizer only after this */
    m->pending_bytes = 0;
    ssl_comm_leave(d->host, SSL_COLL_ALLREDUCE, t0, bytes);
}

static void nccl_free(ssl_dev_comm *d)
{
    nccl_impl *m = d->impl;
    cudaStreamSynchronize(m->side);
    cudaEventDestroy(m->ready);
    cudaStreamDestroy(m->side);
    ncclCommDestroy(m->comm);
    ssl_free(m);
    ssl_free(d);
}

/* Collective over host: rank 0's unique id (or its failure) goes to every rank over MPI, each joins;
 * then every rank learns whether all joined, so none is left with a communicator the others lack. */
ssl_dev_comm *ssl_nccl_create(ssl_comm *host, char *err, size_t errlen)
{
    struct {
        unsigned char ok;
        ncclUniqueId id;
    } msg;
    memset(&msg, 0, sizeof msg);
    char why[256] = "";
    if (host->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&msg.id);
        msg.ok = r == ncclSuccess;
        if (!msg.ok) snprintf(why, sizeof why, "ncclGetUniqueId: %s", ncclGetErrorString(r));
    }
    ssl_broadcast(host, &msg, sizeof msg, SSL_U8, 0);
    ncclComm_t nc = NULL;
    double bad = 0.0;
    if (msg.ok) {
        /* under the watchdog: a rank that fails before joining leaves the others waiting in here */
        const double t0 = ssl_comm_enter(host, SSL_COLL_BARRIER, 0);
        ncclResult_t r = ncclCommInitRank(&nc, host->world, msg.id, host->rank);
        ssl_comm_leave(host, SSL_COLL_BARRIER, t0, 0);
        if (r != ncclSuccess) {
            int dev = -1;
            if (cudaGetDevice(&dev) != cudaSuccess) dev = -1;
            snprintf(why, sizeof why, "ncclCommInitRank on rank %d (GPU %d): %s%s", host->rank, dev,
                     ncclGetErrorString(r),
                     r == ncclInvalidUsage ? " (NCCL needs a GPU of its own for every rank of a node)" : "");
            nc = NULL;
            bad = 1.0;
        }
    } else {
        bad = 1.0;
    }
    double any = bad;
    ssl_allreduce(host, &any, 1, SSL_F64, SSL_MAX);
    if (any > 0) {
        if (nc) ncclCommDestroy(nc);
        snprintf(err, errlen, "%s", why[0] ? why : "another rank could not join the NCCL communicator");
        return NULL;
    }
    ssl_dev_comm *d = ssl_calloc(1, sizeof *d);
    d->name = "nccl";
    d->host = host;
    nccl_impl *m = ssl_calloc(1, sizeof *m);
    m->comm = nc;
    SSL_CUDA_RT_CHECK(cudaStreamCreateWithFlags(&m->side, cudaStreamNonBlocking));
    SSL_CUDA_RT_CHECK(cudaEventCreateWithFlags(&m->ready, cudaEventDisableTiming));
    d->impl = m;
    d->allreduce = nccl_allreduce;
    d->allgather = nccl_allgather;
    d->reduce_scatter = nccl_reduce_scatter;
    d->broadcast = nccl_broadcast;
    d->allreduce_start = nccl_allreduce_start;
    d->wait_all = nccl_wait_all;
    d->free = nccl_free;
    return d;
}

#else
typedef int ssl_nccl_not_built; /* ISO C: no empty translation unit */
#endif
