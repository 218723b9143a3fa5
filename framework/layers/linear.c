/* Fully connected layer: one GEMM forward, two backward (dX = dY W, dW += dY^T X). */
#include "framework/layers/linear.h"

#include "framework/core/check.h"

#include <math.h>

void ssl_linear_init_ex(ssl_linear *l, ssl_plan *pl, const char *name, int in, int out, int bias,
                        ssl_init_kind w_init, float w_a)
{
    char n[112];
    SSL_ASSERT(in > 0 && out > 0);
    *l = (ssl_linear){.in = in, .out = out, .bias = bias};
    int64_t ws[2] = {out, in}, bs[1] = {out};
    ssl_layer_name(n, name, "weight");
    l->w = ssl_params_add(pl->params, n, 2, ws, 0, w_init, w_a);
    if (bias) {
        ssl_layer_name(n, name, "bias");
        l->b = ssl_params_add(pl->params, n, 1, bs, SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT,
                              SSL_INIT_UNIFORM, 1.0f / sqrtf((float)in));
    }
}

void ssl_linear_init(ssl_linear *l, ssl_plan *pl, const char *name, int in, int out, int bias)
{
    ssl_linear_init_ex(l, pl, name, in, out, bias, SSL_INIT_UNIFORM, 1.0f / sqrtf((float)in));
}

static int64_t rows_of(ssl_tensor x, int last)
{
    SSL_ASSERTF(x.shape[x.ndim - 1] == last, "linear: input last dim %lld, expected %d",
                (long long)x.shape[x.ndim - 1], last);
    int64_t r = 1;
    for (int i = 0; i < x.ndim - 1; i++) r *= x.shape[i];
    return r;
}

ssl_tensor ssl_linear_forward(ssl_ctx *c, ssl_linear *l, const ssl_weights *w, ssl_tensor x)
{
    return ssl_linear_forward_pre(c, l, w, x, NULL);
}

ssl_tensor ssl_linear_forward_pre(ssl_ctx *c, ssl_linear *l, const ssl_weights *w, ssl_tensor x, ssl_tensor *pre)
{
    double t0 = ssl_prof_begin(c);
    int64_t rows = rows_of(x, l->in);
    ssl_tensor y = x;
    y.shape[y.ndim - 1] = l->out;
    y.data = ssl_arena_floats(&c->act, (size_t)rows * l->out);
    ssl_ctx_autocast(c, 1);
    c->be->gemm(c, 0, 1, (int)rows, l->out, l->in, 1.0f, x.data, l->in, w->p + l->w, l->in, 0.0f,
                y.data, l->out);
    ssl_ctx_autocast(c, 0);
    if (pre) {
        const size_t n = (size_t)rows * l->out;
        *pre = y;
        pre->dtype = SSL_T_BF16;
        pre->bf16 = (uint16_t *)ssl_arena_floats(&c->act, (n + 1) / 2); /* whole floats (core/stash.c) */
        c->be->cast_f32_bf16(c, pre->bf16, y.data, n);
    }
    if (l->bias) c->be->bias_add(c, rows, l->out, 1, w->p + l->b, y.data);
    l->x = x;
    ssl_prof_end(c, SSL_PROF_LINEAR_FWD, t0, 2.0 * rows * l->in * l->out);
    return y;
}

ssl_tensor ssl_linear_backward(ssl_ctx *c, ssl_linear *l, const ssl_weights *w, ssl_tensor dy)
{
    double t0 = ssl_prof_begin(c);
    int64_t rows = rows_of(dy, l->out);
    SSL_ASSERT(rows == rows_of(l->x, l->in));
    ssl_tensor dx = ssl_tensor_like(l->x, NULL);
    ssl_ctx_autocast(c, 1);
    if (!l->skip_dx) {
        dx.data = ssl_arena_floats(&c->act, (size_t)rows * l->in);
        c->be->gemm(c, 0, 0, (int)rows, l->in, l->out, 1.0f, dy.data, l->out, w->p + l->w, l->in,
                    0.0f, dx.data, l->in);
    }
    if (w->g) {
        if (l->x.dtype == SSL_T_BF16) { /* a saved bf16 view (core/stash.h), read as it lies */
            const int64_t z[2] = {0, 0};
            c->be->gemm_batched2_bf16(c, 1, 0, l->out, l->in, (int)rows, 1.0f, dy.data, 0, l->out, z, l->x.bf16, 1,
                                      l->in, z, 1.0f, w->g + l->w, l->in, z, 1, 1);
        } else {
            c->be->gemm(c, 1, 0, l->out, l->in, (int)rows, 1.0f, dy.data, l->out, l->x.data, l->in, 1.0f,
                        w->g + l->w, l->in);
        }
        ssl_ctx_autocast(c, 0);
        if (l->bias) c->be->bias_grad(c, rows, l->out, 1, dy.data, w->g + l->b);
    }
    ssl_ctx_autocast(c, 0);
    ssl_prof_end(c, SSL_PROF_LINEAR_BWD, t0, (l->skip_dx ? 2.0 : 4.0) * rows * l->in * l->out);
    return dx;
}
