/* Convolution layer: geometry checks and bookkeeping around the backend's conv ops. */
#include "framework/layers/conv2d.h"

#include "framework/core/check.h"

#include <math.h>

void ssl_conv2d_init(ssl_conv2d *l, ssl_plan *pl, const char *name, int cin, int cout, int k,
                     int stride, int pad, int bias)
{
    char n[112];
    SSL_ASSERT(cin > 0 && cout > 0 && k > 0 && stride > 0 && pad >= 0);
    *l = (ssl_conv2d){.cin = cin, .cout = cout, .k = k, .stride = stride, .pad = pad, .bias = bias};
    int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    ssl_layer_name(n, name, "weight");
    l->w = ssl_params_add(pl->params, n, 4, ws, 0, SSL_INIT_NORMAL, sqrtf(2.0f / (float)(cout * k * k)));
    if (bias) {
        ssl_layer_name(n, name, "bias");
        l->b = ssl_params_add(pl->params, n, 1, bs, SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT, SSL_INIT_ZERO, 0);
    }
}

ssl_tensor ssl_conv2d_forward(ssl_ctx *c, ssl_conv2d *l, const ssl_weights *w, ssl_tensor x)
{
    SSL_ASSERTF(x.dtype == SSL_T_F32, "conv2d: bf16 input (only its output may be bf16)");
    SSL_ASSERTF(x.ndim == 4 && x.shape[1] == l->cin, "conv2d: input has %lld channels, expected %d",
                (long long)x.shape[1], l->cin);
    double t0 = ssl_prof_begin(c);
    l->s = ssl_conv_shape_make((int)x.shape[0], l->cin, (int)x.shape[2], (int)x.shape[3], l->cout,
                               l->k, l->stride, l->pad);
    SSL_ASSERTF(l->s.P > 0 && l->s.Q > 0, "conv2d: %dx%d input too small for kernel %d",
                l->s.H, l->s.W, l->k);
    ssl_tensor y = ssl_tensor_4d(NULL, l->s.N, l->cout, l->s.P, l->s.Q);
    const size_t ny = ssl_tensor_numel(y);
    ssl_ctx_autocast(c, 1);
    if (l->bf16_out && !l->bias && c->precision_bf16 && !c->acts_fp32) {
        y.bf16 = ssl_arena_alloc(&c->act, (ny + 1) / 2 * sizeof(float)); /* whole floats: copies move floats */
        y.dtype = SSL_T_BF16;
        c->be->conv2d_fwd_bf16(c, &l->s, x.data, w->p + l->w, y.bf16);
    } else {
        y.data = ssl_arena_floats(&c->act, ny);
        c->be->conv2d_fwd(c, &l->s, x.data, w->p + l->w, y.data);
    }
    ssl_ctx_autocast(c, 0);
    if (l->bias) c->be->bias_add(c, l->s.N, l->cout, (int64_t)l->s.P * l->s.Q, w->p + l->b, y.data);
    l->x = x;
    ssl_prof_end(c, SSL_PROF_CONV_FWD, t0,
                 2.0 * l->s.N * l->s.P * l->s.Q * (double)l->cout * l->cin * l->k * l->k);
    return y;
}

ssl_tensor ssl_conv2d_backward(ssl_ctx *c, ssl_conv2d *l, const ssl_weights *w, ssl_tensor dy)
{
    SSL_ASSERT(dy.ndim == 4 && dy.shape[0] == l->s.N && dy.shape[1] == l->cout &&
               dy.shape[2] == l->s.P && dy.shape[3] == l->s.Q);
    double t0 = ssl_prof_begin(c);
    ssl_tensor dx = ssl_tensor_like(l->x, NULL);
    if (!l->skip_dx) {
        dx.data = ssl_arena_floats(&c->act, ssl_tensor_numel(dx));
        ssl_ctx_autocast(c, 1);
        c->be->conv2d_bwd_data(c, &l->s, dy.data, w->p + l->w, dx.data);
        ssl_ctx_autocast(c, 0);
    }
    if (w->g) {
        ssl_ctx_autocast(c, 1);
        if (l->x.dtype == SSL_T_BF16) /* a saved bf16 view (core/stash.h): read as it lies */
            c->be->conv2d_bwd_filter_bf16(c, &l->s, dy.data, l->x.bf16, w->g + l->w);
        else c->be->conv2d_bwd_filter(c, &l->s, dy.data, l->x.data, w->g + l->w);
        ssl_ctx_autocast(c, 0);
        if (l->bias)
            c->be->bias_grad(c, l->s.N, l->cout, (int64_t)l->s.P * l->s.Q, dy.data, w->g + l->b);
    }
    double f = 2.0 * l->s.N * l->s.P * l->s.Q * (double)l->cout * l->cin * l->k * l->k;
    ssl_prof_end(c, SSL_PROF_CONV_BWD, t0, l->skip_dx ? f : 2 * f);
    return dx;
}
