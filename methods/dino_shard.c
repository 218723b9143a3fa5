/* DINO's sharded prototype layer (see dino_shard.h). */
#include "methods/dino_shard.h"

#include "framework/comm/device.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/rng.h"
#include "framework/layers/dino_loss.h"

#include <math.h>

#define CLIP_EPS 1e-6 /* clip_gradients' */

void ssl_dino_prototypes_init(float *rows, int64_t off, int64_t k, int B, uint64_t seed)
{
    const uint64_t key = ssl_rng_hash(seed, 0x70726f746full /* "proto" */);
    const float a = 1.0f / sqrtf((float)B);
    for (int64_t i = 0; i < k; i++) {
        ssl_rng r;
        ssl_rng_init(&r, key, (uint64_t)(off + i));
        ssl_rng_fill_uniform(&r, rows + i * B, (size_t)B, -a, a);
    }
}

void ssl_dino_shard_head_init(ssl_dino_shard_head *h, ssl_ctx *c, ssl_comm *comm, int64_t K, int B, uint64_t seed,
                              const ssl_optim_config *oc, float clip)
{
    *h = (ssl_dino_shard_head){.comm = comm, .K = K, .B = B, .clip = clip};
    SSL_ASSERTF(K >= comm->world, "dino: %lld prototypes over %d ranks (every rank needs one)", (long long)K,
                comm->world);
    ssl_dino_shard(K, comm->rank, comm->world, &h->off, &h->k);
    ssl_params_init(&h->p);
    ssl_params_init(&h->nobuf);
    ssl_plan pl = {&h->p, &h->nobuf};
    ssl_wnorm_linear_init(&h->lin, &pl, "head.last_layer", B, K, h->off, h->k);
    h->tlin = h->lin;
    h->tlin.skip_dx = 1;
    ssl_params_alloc(&h->p, c->be, 1);
    const size_t n = (size_t)(h->k * B);
    float *host = ssl_malloc(n * sizeof(float));
    ssl_dino_prototypes_init(host, h->off, h->k, B, seed);
    c->be->upload(h->p.data, host, n * sizeof(float));
    ssl_free(host);
    h->teacher = c->be->alloc(n * sizeof(float));
    c->be->copy(c, h->teacher, h->p.data, n);
    ssl_optim_init(&h->opt, c, &h->p, oc);
}

void ssl_dino_shard_head_free(ssl_dino_shard_head *h)
{
    ssl_optim_free(&h->opt);
    if (h->teacher) h->p.be->free(h->teacher);
    ssl_params_free(&h->p);
    ssl_params_free(&h->nobuf);
    h->teacher = NULL;
}

void ssl_dino_shard_head_state(ssl_dino_shard_head *h, ssl_ckpt *ck)
{
    const size_t n = (size_t)(h->k * h->B), off = (size_t)(h->off * h->B), total = (size_t)(h->K * h->B);
    ssl_ckpt_add_sharded(ck, "dino/prototypes", h->p.data, n, off, total);
    if (h->opt.m) ssl_ckpt_add_sharded(ck, "dino/prototypes_m", h->opt.m, n, off, total);
    if (h->opt.v) ssl_ckpt_add_sharded(ck, "dino/prototypes_v", h->opt.v, n, off, total);
    ssl_ckpt_add_i64(ck, "dino/prototypes_step", h->opt.seg_step, 1);
    ssl_ckpt_add_sharded(ck, "teacher/prototypes", h->teacher, n, off, total);
}

void ssl_dino_shard_head_start(ssl_dino_shard_head *h, ssl_ctx *c, int resumed)
{
    if (!resumed) c->be->copy(c, h->teacher, h->p.data, (size_t)(h->k * h->B));
}

void ssl_dino_shard_head_freeze(ssl_dino_shard_head *h, int frozen)
{
    h->lin.freeze = frozen;
    unsigned *f = &h->p.seg[0].flags;
    *f = frozen ? *f | SSL_SEG_FROZEN : *f & ~(unsigned)SSL_SEG_FROZEN;
}

ssl_tensor ssl_dino_rows_gather(ssl_ctx *c, ssl_comm *comm, ssl_tensor x, int views)
{
    const int W = comm->world;
    const int64_t B = x.shape[1], n = x.shape[0] / views, blk = n * B;
    float *all = ssl_arena_floats(&c->act, (size_t)(W * views * blk));
    c->be->sync(c);
    ssl_dev_allgather(c, comm, x.data, all, (size_t)(views * blk), SSL_F32); /* [rank][view][image] */
    ssl_tensor y = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(W * views * blk)), (int64_t)W * views * n, B);
    for (int v = 0; v < views; v++)
        for (int r = 0; r < W; r++)
            c->be->copy(c, y.data + ((int64_t)v * W + r) * blk, all + ((int64_t)r * views + v) * blk, (size_t)blk);
    return y;
}

ssl_tensor ssl_dino_rows_scatter(ssl_ctx *c, ssl_comm *comm, ssl_tensor dx, int views, float scale)
{
    const int W = comm->world;
    const int64_t B = dx.shape[1], n = dx.shape[0] / ((int64_t)views * W), blk = n * B;
    float *byrank = ssl_arena_floats(&c->act, (size_t)(W * views * blk));
    for (int v = 0; v < views; v++)
        for (int r = 0; r < W; r++)
            c->be->copy(c, byrank + ((int64_t)r * views + v) * blk, dx.data + ((int64_t)v * W + r) * blk, (size_t)blk);
    ssl_tensor y = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(views * blk)), (int64_t)views * n, B);
    c->be->sync(c);
    ssl_dev_reduce_scatter(c, comm, byrank, y.data, (size_t)(views * blk), SSL_F32, SSL_SUM);
    if (scale != 1.0f) c->be->scale(c, y.data, (size_t)(views * blk), scale);
    return y;
}

ssl_tensor ssl_dino_shard_head_forward(ssl_ctx *c, ssl_dino_shard_head *h, ssl_tensor x, int teacher)
{
    ssl_weights w = {teacher ? h->teacher : h->p.data, teacher ? NULL : h->p.grad, NULL};
    return ssl_wnorm_linear_forward(c, teacher ? &h->tlin : &h->lin, &w, x);
}

ssl_tensor ssl_dino_shard_head_backward(ssl_ctx *c, ssl_dino_shard_head *h, ssl_tensor ds)
{
    ssl_weights w = {h->p.data, h->p.grad, NULL};
    return ssl_wnorm_linear_backward(c, &h->lin, &w, ds);
}

void ssl_dino_shard_head_update(ssl_dino_shard_head *h, ssl_ctx *c, double lr, double wd, double m)
{
    const size_t n = (size_t)(h->k * h->B);
    if (!(h->p.seg[0].flags & SSL_SEG_FROZEN)) {
        if (h->clip > 0) { /* the norm of the whole tensor, as clip_gradients sees it */
            double ss = c->be->sumsq(c, n, h->p.grad);
            ssl_allreduce(h->comm, &ss, 1, SSL_F64, SSL_SUM);
            const double norm = h->opt.cfg.grad_scale * sqrt(ss), coef = h->clip / (norm + CLIP_EPS);
            if (coef < 1.0) c->be->scale(c, h->p.grad, n, (float)coef);
        }
        ssl_optim_step(&h->opt, c, (float)lr, (float)wd);
    }
    ssl_params_zero_grad(c, &h->p);
    c->be->axpby(c, n, (float)(1.0 - m), h->p.data, (float)m, h->teacher);
}
