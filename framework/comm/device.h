/* Collectives on device memory (the backend's: ssl_ctx.be). On a host-memory backend (CPU) they are
 * the MPI collectives of comm.h on the buffers in place. On a device backend they stage through host
 * copies (download, the MPI collective, upload): correct everywhere, and the devsim backend proves
 * with them that no collective reads device memory from the host. The CUDA backend's NCCL path
 * (device buffers straight to NCCL on a communication stream) is planned behind these same calls.
 * World size 1: allreduce / broadcast return at once, allgather / reduce_scatter are a device copy.
 * Semantics as comm.h's (counts per rank, in-place rules). Host control traffic (losses, flags,
 * monitors) keeps using comm.h directly. */
#ifndef SSL_COMM_DEVICE_H
#define SSL_COMM_DEVICE_H

#include "framework/comm/comm.h"
#include "framework/core/ctx.h"

void ssl_dev_allreduce(ssl_ctx *c, ssl_comm *comm, void *buf, size_t n, ssl_dtype t, ssl_redop op);
void ssl_dev_allgather(ssl_ctx *c, ssl_comm *comm, const void *send, void *recv, size_t n, ssl_dtype t);
void ssl_dev_reduce_scatter(ssl_ctx *c, ssl_comm *comm, const void *send, void *recv, size_t n, ssl_dtype t,
                            ssl_redop op);
void ssl_dev_broadcast(ssl_ctx *c, ssl_comm *comm, void *buf, size_t n, ssl_dtype t, int root);

#endif
