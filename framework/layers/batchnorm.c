/* Batch normalisation layer (see batchnorm.h). */
#include "framework/comm/device.h"
#include "framework/layers/batchnorm.h"

#include "framework/comm/comm.h"
#include "framework/core/check.h"

void ssl_batchnorm_init(ssl_batchnorm *l, ssl_plan *pl, const char *name, int C, int affine, int relu)
{
    char n[112];
    *l = (ssl_batchnorm){.C = C, .affine = affine, .relu = relu, .eps = 1e-5f, .momentum = 0.1f};
    int64_t s[1] = {C};
    const unsigned fl = SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT;
    if (affine) {
        ssl_layer_name(n, name, "weight");
        l->gamma = ssl_params_add(pl->params, n, 1, s, fl, SSL_INIT_ONE, 0);
        ssl_layer_name(n, name, "bias");
        l->beta = ssl_params_add(pl->params, n, 1, s, fl, SSL_INIT_ZERO, 0);
    }
    ssl_layer_name(n, name, "running_mean");
    l->rmean = ssl_params_add(pl->buffers, n, 1, s, 0, SSL_INIT_ZERO, 0);
    ssl_layer_name(n, name, "running_var");
    l->rvar = ssl_params_add(pl->buffers, n, 1, s, 0, SSL_INIT_ONE, 0);
}

static void dims(ssl_batchnorm *l, ssl_tensor x)
{
    SSL_ASSERTF(x.ndim >= 2 && x.shape[1] == l->C, "batchnorm: input has %lld channels, expected %d",
                (long long)x.shape[1], l->C);
    l->N = x.shape[0];
    l->S = 1;
    for (int i = 2; i < x.ndim; i++) l->S *= x.shape[i];
}

ssl_tensor ssl_batchnorm_forward(ssl_ctx *c, ssl_batchnorm *l, const ssl_weights *w, ssl_tensor x,
                                 int train)
{
    double t0 = ssl_prof_begin(c);
    dims(l, x);
    l->train = train;
    l->x = x;
    l->mean = ssl_arena_floats(&c->act, (size_t)l->C);
    l->invstd = ssl_arena_floats(&c->act, (size_t)l->C);
    l->stats = ssl_arena_alloc(&c->act, (2 * (size_t)l->C + 1) * sizeof(double));
    l->comm = train ? c->bn_comm : NULL;
    float *rm = w->buf + l->rmean, *rv = w->buf + l->rvar;
    if (train) {
        if (x.dtype == SSL_T_BF16) c->be->bn_stats_bf16(c, l->N, l->C, l->S, x.bf16, l->stats, l->stats + l->C);
        else c->be->bn_stats(c, l->N, l->C, l->S, x.data, l->stats, l->stats + l->C);
        l->count = (double)l->N * (double)l->S;
        if (l->comm && l->comm->world > 1) {
            /* one all-reduce: the per-rank count rides along as element 2C (ranks may differ) */
            c->be->sync(c);
            if (c->be->host_memory) {
                l->stats[2 * l->C] = l->count;
                ssl_allreduce(l->comm, l->stats, 2 * (size_t)l->C + 1, SSL_F64, SSL_SUM);
                l->count = l->stats[2 * l->C];
            } else { /* device sums, host count: two collectives */
                ssl_dev_allreduce(c, l->comm, l->stats, 2 * (size_t)l->C, SSL_F64, SSL_SUM);
                ssl_allreduce(l->comm, &l->count, 1, SSL_F64, SSL_SUM);
            }
        }
        SSL_ASSERTF(l->count > 1, "batchnorm: training needs more than one value per channel");
    }
    c->be->bn_finalize(c, l->C, train, l->stats, l->stats + l->C, l->count, l->eps, l->momentum,
                       rm, rv, l->mean, l->invstd);
    ssl_tensor y = ssl_tensor_like(x, ssl_arena_floats(&c->act, ssl_tensor_numel(x)));
    const float *gamma = l->affine ? w->p + l->gamma : NULL, *beta = l->affine ? w->p + l->beta : NULL;
    if (x.dtype == SSL_T_BF16) /* a convolution's bf16 output */
        c->be->bn_apply_bf16(c, l->N, l->C, l->S, x.bf16, l->mean, l->invstd, gamma, beta, l->relu, y.data);
    else c->be->bn_apply(c, l->N, l->C, l->S, x.data, l->mean, l->invstd, gamma, beta, l->relu, y.data);
    l->y = y;
    ssl_prof_end(c, SSL_PROF_BN_FWD, t0, 0);
    return y;
}

ssl_tensor ssl_batchnorm_backward(ssl_ctx *c, ssl_batchnorm *l, const ssl_weights *w, ssl_tensor dy)
{
    SSL_ASSERTF(l->train, "batchnorm: backward through eval-mode statistics is not supported");
    SSL_ASSERT(ssl_tensor_numel(dy) == ssl_tensor_numel(l->x));
    double t0 = ssl_prof_begin(c);
    if (l->relu) ssl_relu_backward(c, l->y, dy, dy);
    double *sdy = l->stats, *sdyx = l->stats + l->C; /* forward sums no longer needed */
    const int xh = l->x.dtype == SSL_T_BF16; /* a saved bf16 view (core/stash.h) */
    if (xh) c->be->bn_bwd_stats_bf16(c, l->N, l->C, l->S, dy.data, l->x.bf16, l->mean, l->invstd, sdy, sdyx);
    else c->be->bn_bwd_stats(c, l->N, l->C, l->S, dy.data, l->x.data, l->mean, l->invstd, sdy, sdyx);
    ssl_tensor dx = ssl_tensor_like(l->x, ssl_arena_floats(&c->act, ssl_tensor_numel(l->x)));
    /* parameter grads from the local sums: the gradient all-reduce averages them later */
    if (w->g && l->affine) c->be->bn_param_grads(c, l->C, sdy, sdyx, w->g + l->gamma, w->g + l->beta);
    if (l->comm && l->comm->world > 1) {
        c->be->sync(c);
        ssl_dev_allreduce(c, l->comm, l->stats, 2 * (size_t)l->C, SSL_F64, SSL_SUM);
    }
    const float *gamma = l->affine ? w->p + l->gamma : NULL;
    if (xh) c->be->bn_bwd_data_bf16(c, l->N, l->C, l->S, dy.data, l->x.bf16, l->mean, l->invstd, gamma, sdy, sdyx,
                                    l->count, dx.data);
    else c->be->bn_bwd_data(c, l->N, l->C, l->S, dy.data, l->x.data, l->mean, l->invstd, gamma, sdy, sdyx,
                            l->count, dx.data);
    ssl_prof_end(c, SSL_PROF_BN_BWD, t0, 0);
    return dx;
}
