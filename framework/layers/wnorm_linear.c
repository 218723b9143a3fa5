/* Weight-normalised linear layer with g = 1 (see wnorm_linear.h): W = l2norm_rows(V) each forward
 * (the teacher's V changes with every EMA step, so W is never cached across steps), one GEMM forward,
 * two backward, and l2norm_bwd for the normalisation's Jacobian. */
#include "framework/layers/wnorm_linear.h"

#include "framework/core/check.h"

#include <math.h>

/* Rows whose norm is below this are not normalised up (torch divides by the norm unclamped, NaN on a
 * zero row; V's rows never get near it). */
#define WNORM_EPS 1e-12f

void ssl_wnorm_linear_init(ssl_wnorm_linear *l, ssl_plan *pl, const char *name, int in, int64_t K,
                           int64_t off, int64_t k)
{
    char n[112];
    SSL_ASSERTF(in > 0 && k > 0 && off >= 0 && off + k <= K, "wnorm linear: rows [%lld, +%lld) of %lld, in %d",
                (long long)off, (long long)k, (long long)K, in);
    *l = (ssl_wnorm_linear){.in = in, .K = K, .off = off, .k = k};
    int64_t shape[2] = {k, in};
    ssl_layer_name(n, name, "weight_v");
    l->v = ssl_params_add(pl->params, n, 2, shape, 0, SSL_INIT_UNIFORM, 1.0f / sqrtf((float)in));
}

static int64_t rows_of(ssl_tensor x, int64_t last)
{
    SSL_ASSERTF(x.shape[x.ndim - 1] == last, "wnorm linear: input last dim %lld, expected %lld",
                (long long)x.shape[x.ndim - 1], (long long)last);
    int64_t r = 1;
    for (int i = 0; i < x.ndim - 1; i++) r *= x.shape[i];
    return r;
}

ssl_tensor ssl_wnorm_linear_forward(ssl_ctx *c, ssl_wnorm_linear *l, const ssl_weights *w, ssl_tensor x)
{
    double t0 = ssl_prof_begin(c);
    const int64_t rows = rows_of(x, l->in);
    l->w = ssl_arena_floats(&c->act, (size_t)(l->k * l->in));
    l->norm = ssl_arena_floats(&c->act, (size_t)l->k);
    c->be->l2norm_fwd(c, l->k, l->in, WNORM_EPS, w->p + l->v, l->w, l->norm);
    ssl_tensor y = x;
    y.shape[y.ndim - 1] = l->k;
    y.data = ssl_arena_floats(&c->act, (size_t)(rows * l->k));
    ssl_ctx_autocast(c, 1); /* the product; the weight normalisation stays fp32 */
    c->be->gemm(c, 0, 1, (int)rows, (int)l->k, l->in, 1.0f, x.data, l->in, l->w, l->in, 0.0f, y.data, (int)l->k);
    ssl_ctx_autocast(c, 0);
    l->x = x;
    ssl_prof_end(c, SSL_PROF_LINEAR_FWD, t0, 2.0 * (double)rows * l->in * (double)l->k);
    return y;
}

/* dV += (dW - W (W . dW)) / ||V||, dW = dy^T x: through a scratch gradient, since l2norm_bwd assigns. */
static void accumulate_dv(ssl_ctx *c, ssl_wnorm_linear *l, int64_t rows, const float *dy, float *dv)
{
    const size_t n = (size_t)(l->k * l->in);
    float *dw = ssl_arena_floats(&c->act, n);
    ssl_ctx_autocast(c, 1);
    c->be->gemm(c, 1, 0, (int)l->k, l->in, (int)rows, 1.0f, dy, (int)l->k, l->x.data, l->in, 0.0f, dw, l->in);
    ssl_ctx_autocast(c, 0);
    c->be->l2norm_bwd(c, l->k, l->in, l->w, l->norm, dw, dw);
    c->be->axpby(c, n, 1.0f, dw, 1.0f, dv);
}

ssl_tensor ssl_wnorm_linear_backward(ssl_ctx *c, ssl_wnorm_linear *l, const ssl_weights *w, ssl_tensor dy)
{
    double t0 = ssl_prof_begin(c);
    const int64_t rows = rows_of(dy, l->k);
    SSL_ASSERT(rows == rows_of(l->x, l->in));
    ssl_tensor dx = l->x;
    dx.data = NULL;
    if (!l->skip_dx) {
        dx.data = ssl_arena_floats(&c->act, (size_t)(rows * l->in));
        ssl_ctx_autocast(c, 1);
        c->be->gemm(c, 0, 0, (int)rows, l->in, (int)l->k, 1.0f, dy.data, (int)l->k, l->w, l->in, 0.0f, dx.data,
                    l->in);
        ssl_ctx_autocast(c, 0);
    }
    const int dv = w->g && !l->freeze;
    if (dv) accumulate_dv(c, l, rows, dy.data, w->g + l->v);
    ssl_prof_end(c, SSL_PROF_LINEAR_BWD, t0, (l->skip_dx ? 0.0 : 2.0) * (double)rows * l->in * (double)l->k +
                                                  (dv ? 2.0 : 0.0) * (double)rows * l->in * (double)l->k);
    return dx;
}
