/* Device-memory collectives (see device.h): in place on host memory, the device communicator where
 * there is one, staged through host copies otherwise. The staging buffers are allocated per call:
 * that path is for correctness (devsim, a CUDA rank without NCCL), not speed. */
#include "framework/comm/device.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"

#include <stdio.h>
#include <string.h>

int ssl_dev_comm_attach(ssl_comm *comm, const ssl_backend *be, const char *mode, char *err, size_t errlen)
{
    if (!comm || comm->world == 1 || comm->dev || !strcmp(mode, "staged")) return 0;
    const int must = !strcmp(mode, "nccl");
    if (!be->dev_comm_create) {
        if (!must) return 0;
        snprintf(err, errlen, "comm.device: nccl, but backend '%s' has no NCCL (%s)", be->name,
                 be->host_memory ? "its memory is the host's: MPI works on it in place" : "built without NCCL");
        return -1;
    }
    char why[512] = "";
    comm->dev = be->dev_comm_create(comm, why, sizeof why); /* collective: every rank agrees inside */
    if (comm->dev) return 0;
    if (must) {
        snprintf(err, errlen, "comm.device: nccl: %s", why);
        return -1;
    }
    if (comm->rank == 0)
        fprintf(stderr, "warning: no NCCL communicator (%s); device collectives stage through host memory and MPI "
                        "(comm.device: staged says so quietly)\n", why);
    return 0;
}

static int in_place_ok(const ssl_ctx *c) { return c->be->host_memory; }

/* A host copy of `bytes` of device memory, after the work that writes it (freed by stage_up). */
static void *stage_down(ssl_ctx *c, const void *src, size_t bytes)
{
    void *h = ssl_malloc(bytes + 1);
    c->be->sync(c);
    c->be->download(h, src, bytes);
    return h;
}

/* The host copy h back into device memory, then freed. */
static void stage_up(ssl_ctx *c, void *dst, void *h, size_t bytes)
{
    c->be->upload(dst, h, bytes);
    ssl_free(h);
}

/* World size 1's allgather / reduce_scatter: a copy of `bytes`, any element type (a round trip
 * through the host on a device backend: the op table's copy is fp32-only). */
static void world1_copy(ssl_ctx *c, void *dst, const void *src, size_t bytes)
{
    if (dst == src || !bytes) return;
    if (in_place_ok(c)) {
        memcpy(dst, src, bytes);
        return;
    }
    stage_up(c, dst, stage_down(c, src, bytes), bytes);
}

const char *ssl_dev_comm_name(const ssl_comm *comm, const ssl_backend *be)
{
    if (!comm || comm->world == 1) return "none (1 rank)";
    if (comm->dev) return comm->dev->name;
    return be->host_memory ? "in place (host memory)" : "staged through host memory";
}

void ssl_dev_allreduce(ssl_ctx *c, ssl_comm *comm, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    if (!comm || comm->world == 1 || !n) return;
    if (comm->dev) {
        comm->dev->allreduce(comm->dev, c, buf, n, t, op);
        return;
    }
    if (in_place_ok(c)) {
        ssl_allreduce(comm, buf, n, t, op);
        return;
    }
    const size_t bytes = n * ssl_dtype_size(t);
    void *h = stage_down(c, buf, bytes);
    ssl_allreduce(comm, h, n, t, op);
    stage_up(c, buf, h, bytes);
}

void ssl_dev_allgather(ssl_ctx *c, ssl_comm *comm, const void *send, void *recv, size_t n, ssl_dtype t)
{
    const size_t bytes = n * ssl_dtype_size(t);
    if (comm && comm->dev) {
        comm->dev->allgather(comm->dev, c, send, recv, n, t);
        return;
    }
    if (comm && in_place_ok(c)) {
        ssl_allgather(comm, send, recv, n, t);
        return;
    }
    if (!comm || comm->world == 1) {
        world1_copy(c, recv, send, bytes);
        return;
    }
    const size_t W = (size_t)comm->world;
    void *hs = stage_down(c, send, bytes), *hr = ssl_malloc(W * bytes + 1);
    ssl_allgather(comm, hs, hr, n, t);
    ssl_free(hs);
    stage_up(c, recv, hr, W * bytes);
}

void ssl_dev_reduce_scatter(ssl_ctx *c, ssl_comm *comm, const void *send, void *recv, size_t n, ssl_dtype t,
                            ssl_redop op)
{
    const size_t bytes = n * ssl_dtype_size(t);
    if (comm && comm->dev) {
        comm->dev->reduce_scatter(comm->dev, c, send, recv, n, t, op);
        return;
    }
    if (comm && in_place_ok(c)) {
        ssl_reduce_scatter(comm, send, recv, n, t, op);
        return;
    }
    if (!comm || comm->world == 1) {
        world1_copy(c, recv, send, bytes);
        return;
    }
    const size_t W = (size_t)comm->world;
    void *hs = stage_down(c, send, W * bytes), *hr = ssl_malloc(bytes + 1);
    ssl_reduce_scatter(comm, hs, hr, n, t, op);
    ssl_free(hs);
    stage_up(c, recv, hr, bytes);
}

void ssl_dev_broadcast(ssl_ctx *c, ssl_comm *comm, void *buf, size_t n, ssl_dtype t, int root)
{
    if (!comm || comm->world == 1 || !n) return;
    if (comm->dev) {
        comm->dev->broadcast(comm->dev, c, buf, n, t, root);
        return;
    }
    if (in_place_ok(c)) {
        ssl_broadcast(comm, buf, n, t, root);
        return;
    }
    const size_t bytes = n * ssl_dtype_size(t);
    void *h = stage_down(c, buf, bytes);
    ssl_broadcast(comm, h, n, t, root);
    stage_up(c, buf, h, bytes);
}

void ssl_dev_allreduce_start(ssl_ctx *c, ssl_comm *comm, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    if (!comm || comm->world == 1 || !n) return;
    if (comm->dev) comm->dev->allreduce_start(comm->dev, c, buf, n, t, op);
    else if (in_place_ok(c)) ssl_iallreduce(comm, buf, n, t, op);
    else ssl_dev_allreduce(c, comm, buf, n, t, op); /* staged: no second stream to overlap on */
}

void ssl_dev_wait_all(ssl_ctx *c, ssl_comm *comm)
{
    if (!comm || comm->world == 1) return;
    if (comm->dev) comm->dev->wait_all(comm->dev, c);
    else if (in_place_ok(c)) ssl_comm_wait_all(comm);
}
