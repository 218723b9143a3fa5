/* Collectives on device memory (the backend's: ssl_ctx.be). On a host-memory backend (CPU) they are
 * the MPI collectives of comm.h on the buffers in place. On a device backend they go to the
 * communicator's device communicator where it has one (comm->dev: NCCL on a CUDA rank, device buffers
 * straight to NCCL in the context's stream order), and otherwise stage through host copies (download,
 * the MPI collective, upload): correct everywhere, and the devsim backend proves with them that no
 * collective reads device memory from the host.
 * World size 1: allreduce / broadcast return at once, allgather / reduce_scatter are a device copy.
 * Semantics as comm.h's (counts per rank, in-place rules). Host control traffic (losses, flags,
 * monitors) keeps using comm.h directly. */
#ifndef SSL_COMM_DEVICE_H
#define SSL_COMM_DEVICE_H

#include "framework/comm/comm.h"
#include "framework/core/ctx.h"

/* A device communicator: the four collectives on device memory of one backend, in the order of the
 * context's queued work (the call returns when the result is in place, so callers need no sync).
 * Each call is bracketed by ssl_comm_enter/leave on `host` (stats, watchdog). Made by the backend's
 * dev_comm_create (backend.h), attached as host->dev, freed by ssl_comm_free. */
typedef struct ssl_dev_comm {
    const char *name; /* "nccl" */
    ssl_comm *host;   /* the MPI communicator over the same ranks, in the same order */
    void *impl;
    void (*allreduce)(struct ssl_dev_comm *d, ssl_ctx *c, void *buf, size_t n, ssl_dtype t, ssl_redop op);
    void (*allgather)(struct ssl_dev_comm *d, ssl_ctx *c, const void *send, void *recv, size_t n, ssl_dtype t);
    void (*reduce_scatter)(struct ssl_dev_comm *d, ssl_ctx *c, const void *send, void *recv, size_t n,
                           ssl_dtype t, ssl_redop op);
    void (*broadcast)(struct ssl_dev_comm *d, ssl_ctx *c, void *buf, size_t n, ssl_dtype t, int root);
    /* Overlap (ssl_dev_allreduce_start): an in-place allreduce queued on the communicator's own stream
     * after the context's work so far, returning at once; wait_all completes every one started. */
    void (*allreduce_start)(struct ssl_dev_comm *d, ssl_ctx *c, void *buf, size_t n, ssl_dtype t, ssl_redop op);
    void (*wait_all)(struct ssl_dev_comm *d, ssl_ctx *c);
    void (*free)(struct ssl_dev_comm *d);
} ssl_dev_comm;

/* Give comm a device communicator for backend be, by `mode` (comm.device): "staged" none; "auto" the
 * backend's where it has one (a failure to make it is a warning on rank 0, and the run stages);
 * "nccl" the backend's, or an error. Collective over comm; every rank gets the same outcome. A comm of
 * one rank, or one that has a device communicator already, is left as it is. 0, or -1 with err. */
struct ssl_backend;
int ssl_dev_comm_attach(ssl_comm *comm, const struct ssl_backend *be, const char *mode, char *err, size_t errlen);

/* How device collectives run on comm for backend be, for the run's plan line: "none (1 rank)", "in
 * place (host memory)", the device communicator's name ("nccl"), or "staged through host memory". */
const char *ssl_dev_comm_name(const ssl_comm *comm, const struct ssl_backend *be);

void ssl_dev_allreduce(ssl_ctx *c, ssl_comm *comm, void *buf, size_t n, ssl_dtype t, ssl_redop op);
void ssl_dev_allgather(ssl_ctx *c, ssl_comm *comm, const void *send, void *recv, size_t n, ssl_dtype t);
void ssl_dev_reduce_scatter(ssl_ctx *c, ssl_comm *comm, const void *send, void *recv, size_t n, ssl_dtype t,
                            ssl_redop op);
void ssl_dev_broadcast(ssl_ctx *c, ssl_comm *comm, void *buf, size_t n, ssl_dtype t, int root);

/* An allreduce that may overlap the work queued after it (the gradient buckets of backward): it
 * starts now, reading buf as the context's work so far left it; buf must not be touched until
 * ssl_dev_wait_all, which completes every one started. Every rank starts the same ones in the same
 * order. On host memory it is MPI's nonblocking allreduce; with a device communicator its own stream
 * (NCCL's beside the compute stream); staged, it runs to completion at once (correct, no overlap). */
void ssl_dev_allreduce_start(ssl_ctx *c, ssl_comm *comm, void *buf, size_t n, ssl_dtype t, ssl_redop op);
void ssl_dev_wait_all(ssl_ctx *c, ssl_comm *comm);

#endif
