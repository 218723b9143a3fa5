/* Pooling layers (see pool.h). */
#include "framework/layers/pool.h"

#include "framework/core/check.h"

void ssl_maxpool_init(ssl_maxpool *l, int k, int stride, int pad)
{
    *l = (ssl_maxpool){.k = k, .stride = stride, .pad = pad};
}

ssl_tensor ssl_maxpool_forward(ssl_ctx *c, ssl_maxpool *l, ssl_tensor x)
{
    SSL_ASSERT(x.ndim == 4);
    double t0 = ssl_prof_begin(c);
    int N = (int)x.shape[0], C = (int)x.shape[1], H = (int)x.shape[2], W = (int)x.shape[3];
    l->P = (H + 2 * l->pad - l->k) / l->stride + 1;
    l->Q = (W + 2 * l->pad - l->k) / l->stride + 1;
    SSL_ASSERT(l->P > 0 && l->Q > 0);
    ssl_tensor y = ssl_tensor_4d(NULL, N, C, l->P, l->Q);
    size_t n = ssl_tensor_numel(y);
    y.data = ssl_arena_floats(&c->act, n);
    l->idx = ssl_arena_alloc(&c->act, n * sizeof(int32_t));
    c->be->maxpool_fwd(c, N, C, H, W, l->k, l->stride, l->pad, l->P, l->Q, x.data, y.data, l->idx);
    l->x = x;
    ssl_prof_end(c, SSL_PROF_POOL_FWD, t0, 0);
    return y;
}

ssl_tensor ssl_maxpool_backward(ssl_ctx *c, ssl_maxpool *l, ssl_tensor dy)
{
    double t0 = ssl_prof_begin(c);
    ssl_tensor dx = ssl_tensor_like(l->x, ssl_arena_floats(&c->act, ssl_tensor_numel(l->x)));
    c->be->maxpool_bwd(c, (int)dx.shape[0], (int)dx.shape[1], (int)dx.shape[2], (int)dx.shape[3],
                       l->k, l->stride, l->pad, l->P, l->Q, dy.data, l->idx, dx.data);
    ssl_prof_end(c, SSL_PROF_POOL_BWD, t0, 0);
    return dx;
}

ssl_tensor ssl_avgpool_forward(ssl_ctx *c, ssl_avgpool *l, ssl_tensor x)
{
    SSL_ASSERT(x.ndim == 4);
    double t0 = ssl_prof_begin(c);
    ssl_tensor y = ssl_tensor_2d(NULL, x.shape[0], x.shape[1]);
    y.data = ssl_arena_floats(&c->act, ssl_tensor_numel(y));
    c->be->avgpool_fwd(c, x.shape[0] * x.shape[1], x.shape[2] * x.shape[3], x.data, y.data);
    l->x = x;
    ssl_prof_end(c, SSL_PROF_POOL_FWD, t0, 0);
    return y;
}

ssl_tensor ssl_avgpool_backward(ssl_ctx *c, ssl_avgpool *l, ssl_tensor dy)
{
    double t0 = ssl_prof_begin(c);
    ssl_tensor dx = ssl_tensor_like(l->x, ssl_arena_floats(&c->act, ssl_tensor_numel(l->x)));
    c->be->avgpool_bwd(c, dx.shape[0] * dx.shape[1], dx.shape[2] * dx.shape[3], dy.data, dx.data);
    ssl_prof_end(c, SSL_PROF_POOL_BWD, t0, 0);
    return dx;
}
