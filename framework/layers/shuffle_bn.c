/* Shuffle-BN (see shuffle_bn.h). */
#include "framework/comm/device.h"
#include "framework/layers/shuffle_bn.h"

#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/rng.h"

/* n host int32 indices into device memory from the arena (int32 fits in the floats' slots). */
static int32_t *to_device(ssl_ctx *c, const int32_t *h, int64_t n)
{
    int32_t *d = (int32_t *)(void *)ssl_arena_floats(&c->act, (size_t)n);
    c->be->upload(d, h, (size_t)n * sizeof *h);
    return d;
}

/* fn on `groups` equal row blocks of x, one call each, outputs stacked. */
static ssl_tensor grouped(ssl_ctx *c, ssl_tensor x, int groups, ssl_batch_fn fn, void *ud)
{
    if (groups == 1) return fn(c, x, ud);
    const int64_t N = x.shape[0], n = N / groups, img = (int64_t)ssl_tensor_numel(x) / N;
    ssl_tensor y = {0};
    for (int g = 0; g < groups; g++) {
        ssl_tensor xg = x;
        xg.shape[0] = n;
        xg.data = x.data + g * n * img;
        ssl_tensor yg = fn(c, xg, ud);
        SSL_ASSERTF(yg.ndim == 2 && yg.shape[0] == n, "shuffle-BN: the batch function must return (n, D) rows");
        if (g == 0) y = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(N * yg.shape[1])), N, yg.shape[1]);
        c->be->copy(c, y.data + g * n * y.shape[1], yg.data, (size_t)(n * y.shape[1]));
    }
    return y;
}

ssl_tensor ssl_shuffled_forward(ssl_ctx *c, ssl_comm *comm, ssl_tensor x, uint64_t key, int groups, ssl_batch_fn fn,
                                void *ud)
{
    const int W = comm ? comm->world : 1, r = comm ? comm->rank : 0;
    const int64_t N = x.shape[0], B = (int64_t)W * N, img = (int64_t)ssl_tensor_numel(x) / N;
    SSL_ASSERTF(groups >= 1 && N % groups == 0, "shuffle-BN: %lld rows do not split into %d groups", (long long)N,
                groups);
    if (W == 1 && groups == 1) return fn(c, x, ud);
    float *all = x.data;
    if (W > 1) {
        all = ssl_arena_floats(&c->act, (size_t)(B * img));
        ssl_dev_allgather(c, comm, x.data, all, (size_t)(N * img), SSL_F32);
    }
    /* the same permutation on every rank: Fisher-Yates over a Philox stream of `key` */
    int32_t *perm = ssl_malloc((size_t)B * sizeof *perm), *mine = ssl_malloc((size_t)N * sizeof *mine);
    for (int64_t i = 0; i < B; i++) perm[i] = (int32_t)i;
    ssl_rng g;
    ssl_rng_init(&g, key, 0);
    for (int64_t i = B - 1; i > 0; i--) {
        int64_t j = (int64_t)(ssl_rng_u32(&g) % (uint32_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    ssl_tensor xs = x;
    xs.data = ssl_arena_floats(&c->act, (size_t)(N * img));
    c->be->gather_rows(c, N, img, to_device(c, perm + (int64_t)r * N, N), all, xs.data);
    ssl_tensor ys = grouped(c, xs, groups, fn, ud);
    SSL_ASSERTF(ys.ndim == 2 && ys.shape[0] == N, "shuffle-BN: the batch function must return (N, D) rows");
    const int64_t D = ys.shape[1];
    float *yall = ys.data;
    if (W > 1) {
        yall = ssl_arena_floats(&c->act, (size_t)(B * D));
        ssl_dev_allgather(c, comm, ys.data, yall, (size_t)(N * D), SSL_F32);
    }
    /* global sample perm[i] was encoded at position i: this rank's sample s is at i with perm[i] = r N + s */
    for (int64_t i = 0; i < B; i++)
        if (perm[i] / N == r) mine[perm[i] % N] = (int32_t)i;
    ssl_tensor y = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(N * D)), N, D);
    c->be->gather_rows(c, N, D, to_device(c, mine, N), yall, y.data);
    ssl_free(mine);
    ssl_free(perm);
    return y;
}
