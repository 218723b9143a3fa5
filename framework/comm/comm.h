/* Communicator: the collectives data-parallel training needs, over flat buffers, behind an op table
 * that MPI fills for host memory now and NCCL will fill for device memory (REFERENCE §7.3: the same
 * semantics, counts per rank, in-place rules). World size 1 is a fast path inside the
 * implementations, never a special case in callers: allreduce/broadcast return at once,
 * allgather/reduce_scatter become a copy.
 *
 * Every call is timed into `stats` (the step breakdown and the collective benchmark read it), and
 * a watchdog thread (comm.timeout_s) reports the collective a rank is stuck in, then ends the job:
 * a hung rank otherwise burns a whole allocation silently. */
#ifndef SSL_COMM_COMM_H
#define SSL_COMM_COMM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { SSL_F32, SSL_F64, SSL_I64, SSL_U8 } ssl_dtype;
typedef enum { SSL_SUM, SSL_AVG, SSL_MAX, SSL_MIN } ssl_redop;
typedef enum {
    SSL_COLL_ALLREDUCE, SSL_COLL_ALLGATHER, SSL_COLL_REDUCE_SCATTER, SSL_COLL_BROADCAST,
    SSL_COLL_BARRIER, SSL_COLL_COUNT
} ssl_coll;

extern const char *const ssl_coll_names[SSL_COLL_COUNT];

typedef struct {
    double seconds[SSL_COLL_COUNT];
    double bytes[SSL_COLL_COUNT];   /* payload per rank (the buffer size the caller passed) */
    int64_t calls[SSL_COLL_COUNT];
} ssl_comm_stats;

typedef struct ssl_comm ssl_comm;
struct ssl_dev_comm; /* device-data collectives (framework/comm/device.h) */

typedef struct {
    const char *name;
    /* In place: buf (n elements) becomes the reduction over ranks on every rank. */
    void (*allreduce)(ssl_comm *c, void *buf, size_t n, ssl_dtype t, ssl_redop op);
    /* recv (world * n) gets rank i's send (n) at recv + i*n. In place iff send == recv + rank*n. */
    void (*allgather)(ssl_comm *c, const void *send, void *recv, size_t n, ssl_dtype t);
    /* send holds world * n elements; rank i receives block i of the reduction into recv (n).
     * In place iff recv == send + rank*n. */
    void (*reduce_scatter)(ssl_comm *c, const void *send, void *recv, size_t n, ssl_dtype t, ssl_redop op);
    void (*broadcast)(ssl_comm *c, void *buf, size_t n, ssl_dtype t, int root);
    /* Nonblocking in-place allreduce: starts the reduction of buf and returns; buf must be neither
     * read nor written until wait_all, which completes every one started (in the order started on
     * every rank), timed and watched as one allreduce of their total size. */
    void (*iallreduce)(ssl_comm *c, void *buf, size_t n, ssl_dtype t, ssl_redop op);
    void (*wait_all)(ssl_comm *c);
    void (*barrier)(ssl_comm *c);
    /* End every rank of the job now (MPI_Abort); never returns. */
    void (*abort)(ssl_comm *c, int code);
    void (*free)(ssl_comm *c);
} ssl_comm_ops;

struct ssl_comm {
    const ssl_comm_ops *ops;
    int rank, world;             /* in this communicator */
    int local_rank, local_world; /* ranks sharing this node (MPI_COMM_TYPE_SHARED) */
    int nodes;
    void *impl;                  /* implementation state (the MPI_Comm) */
    ssl_comm_stats stats;
    /* watchdog: the collective in flight (read by the watchdog thread) */
    _Atomic int inflight;        /* ssl_coll + 1, 0 none */
    _Atomic int64_t inflight_since_us;
    _Atomic int64_t inflight_bytes;
    _Atomic int64_t seq;         /* collectives issued so far */
    double timeout_s;            /* 0: no watchdog */
    void *watchdog;
    /* The device-data communicator over the same ranks (NCCL on a CUDA rank), or NULL: the device
     * collectives then stage through host copies and these MPI ops. Freed with the communicator. */
    struct ssl_dev_comm *dev;
};

/* A single-process communicator (world 1): what tests and non-MPI tools use. */
ssl_comm *ssl_comm_local(void);

/* MPI: initialise MPI if needed (MPI_THREAD_FUNNELED), wrap MPI_COMM_WORLD. Returns NULL when this
 * sslrun was built without MPI. Rank layout (node-local rank) from MPI_Comm_split_type SHARED. */
ssl_comm *ssl_comm_mpi_world(int *argc, char ***argv);
/* 1 when this process was started by an MPI launcher (mpirun/mpiexec, srun with PMI/PMIx): a job
 * that is not gets the world-1 communicator and never initialises MPI. SSLRUN_MPI=1 forces MPI, SSLRUN_MPI=0 keeps it off. */
int ssl_comm_mpi_launched(void);
/* The MPI_Comm behind c (written to *out, which must point at an MPI_Comm); 0, or -1 if c is not an
 * MPI communicator. Lets io/ open files with the MPI-IO driver without the comm API knowing HDF5. */
int ssl_comm_mpi_handle(const ssl_comm *c, void *out);
/* MPI_Finalize if ssl_comm_mpi_world initialised MPI. */
void ssl_comm_mpi_finalize(void);

void ssl_comm_free(ssl_comm *c);

/* Start the watchdog thread: a collective that has not returned after timeout_s seconds is reported
 * ("rank R: allreduce of N bytes (collective #K) stalled for T s") and the job is ended. */
void ssl_comm_watchdog_start(ssl_comm *c, double timeout_s);

size_t ssl_dtype_size(ssl_dtype t);

/* Shorthands. */
static inline void ssl_allreduce(ssl_comm *c, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    c->ops->allreduce(c, buf, n, t, op);
}
static inline void ssl_allgather(ssl_comm *c, const void *send, void *recv, size_t n, ssl_dtype t)
{
    c->ops->allgather(c, send, recv, n, t);
}
static inline void ssl_reduce_scatter(ssl_comm *c, const void *send, void *recv, size_t n, ssl_dtype t,
                                      ssl_redop op)
{
    c->ops->reduce_scatter(c, send, recv, n, t, op);
}
static inline void ssl_broadcast(ssl_comm *c, void *buf, size_t n, ssl_dtype t, int root)
{
    c->ops->broadcast(c, buf, n, t, root);
}
static inline void ssl_iallreduce(ssl_comm *c, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    c->ops->iallreduce(c, buf, n, t, op);
}
static inline void ssl_comm_wait_all(ssl_comm *c) { c->ops->wait_all(c); }
static inline void ssl_barrier(ssl_comm *c) { c->ops->barrier(c); }

/* For implementations: bracket a collective (stats + watchdog). */
double ssl_comm_enter(ssl_comm *c, ssl_coll k, size_t bytes);
void ssl_comm_leave(ssl_comm *c, ssl_coll k, double t0, size_t bytes);

#endif
