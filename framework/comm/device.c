/* Device-memory collectives (see device.h): in place on host memory, staged through host copies
 * otherwise. The staging buffers are allocated per call: this path is for correctness (devsim, a
 * CUDA rank without NCCL), not speed. */
#include "framework/comm/device.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"

#include <string.h>

static int in_place_ok(const ssl_ctx *c) { return c->be->host_memory; }

/* World size 1's allgather / reduce_scatter: a copy of `bytes`, any element type (a round trip
 * through the host on a device backend: the op table's copy is fp32-only). */
static void world1_copy(ssl_ctx *c, void *dst, const void *src, size_t bytes)
{
    if (dst == src || !bytes) return;
    if (in_place_ok(c)) {
        memcpy(dst, src, bytes);
        return;
    }
    void *h = ssl_malloc(bytes);
    c->be->download(h, src, bytes);
    c->be->upload(dst, h, bytes);
    ssl_free(h);
}

void ssl_dev_allreduce(ssl_ctx *c, ssl_comm *comm, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    if (!comm || comm->world == 1 || !n) return;
    if (in_place_ok(c)) {
        ssl_allreduce(comm, buf, n, t, op);
        return;
    }
    const size_t bytes = n * ssl_dtype_size(t);
    void *h = ssl_malloc(bytes);
    c->be->sync(c);
    c->be->download(h, buf, bytes);
    ssl_allreduce(comm, h, n, t, op);
    c->be->upload(buf, h, bytes);
    ssl_free(h);
}

void ssl_dev_allgather(ssl_ctx *c, ssl_comm *comm, const void *send, void *recv, size_t n, ssl_dtype t)
{
    const size_t bytes = n * ssl_dtype_size(t);
    if (comm && in_place_ok(c)) {
        ssl_allgather(comm, send, recv, n, t);
        return;
    }
    if (!comm || comm->world == 1) {
        world1_copy(c, recv, send, bytes);
        return;
    }
    const size_t W = (size_t)comm->world;
    unsigned char *hs = ssl_malloc(bytes + 1), *hr = ssl_malloc(W * bytes + 1);
    c->be->sync(c);
    c->be->download(hs, send, bytes);
    ssl_allgather(comm, hs, hr, n, t);
    c->be->upload(recv, hr, W * bytes);
    ssl_free(hs);
    ssl_free(hr);
}

void ssl_dev_reduce_scatter(ssl_ctx *c, ssl_comm *comm, const void *send, void *recv, size_t n, ssl_dtype t,
                            ssl_redop op)
{
    const size_t bytes = n * ssl_dtype_size(t);
    if (comm && in_place_ok(c)) {
        ssl_reduce_scatter(comm, send, recv, n, t, op);
        return;
    }
    if (!comm || comm->world == 1) {
        world1_copy(c, recv, send, bytes);
        return;
    }
    const size_t W = (size_t)comm->world;
    unsigned char *hs = ssl_malloc(W * bytes + 1), *hr = ssl_malloc(bytes + 1);
    c->be->sync(c);
    c->be->download(hs, send, W * bytes);
    ssl_reduce_scatter(comm, hs, hr, n, t, op);
    c->be->upload(recv, hr, bytes);
    ssl_free(hs);
    ssl_free(hr);
}

void ssl_dev_broadcast(ssl_ctx *c, ssl_comm *comm, void *buf, size_t n, ssl_dtype t, int root)
{
    if (!comm || comm->world == 1 || !n) return;
    if (in_place_ok(c)) {
        ssl_broadcast(comm, buf, n, t, root);
        return;
    }
    const size_t bytes = n * ssl_dtype_size(t);
    void *h = ssl_malloc(bytes);
    c->be->sync(c);
    c->be->download(h, buf, bytes);
    ssl_broadcast(comm, h, n, t, root);
    c->be->upload(buf, h, bytes);
    ssl_free(h);
}
