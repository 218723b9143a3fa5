/* MLP heads (see heads.h). ReLU after a BatchNorm runs fused inside it, as in the encoders; without
 * a BatchNorm (MoCo v2's projector) or with GELU (DINO) the activation is a separate op. */
#include "methods/heads.h"

#include "framework/core/check.h"

#include <stdio.h>

int ssl_mlp_init(ssl_mlp *h, ssl_plan *pl, const char *name, const ssl_mlp_spec *spec, char *err, size_t errlen)
{
    const ssl_mlp_spec *s = spec;
    if (s->layers < 1 || s->layers > SSL_MLP_MAX || s->in < 1 || s->out < 1 || (s->layers > 1 && s->hidden < 1)) {
        snprintf(err, errlen, "%s: need 1..%d layers and positive widths (got %d layers, %d -> %d -> %d)", name,
                 SSL_MLP_MAX, s->layers, s->in, s->hidden, s->out);
        return -1;
    }
    *h = (ssl_mlp){.spec = *s, .seg0 = pl->params->nseg};
    char n[112];
    int in = s->in, module = 0;
    for (int i = 0; i < s->layers; i++) {
        int last = i == s->layers - 1;
        int out = last ? s->out : s->hidden;
        snprintf(n, sizeof n, "%s.%d", name, module++);
        const int bias = last ? s->last_bias : s->bias;
        if (s->trunc_std > 0) {
            ssl_linear_init_ex(&h->lin[i], pl, n, in, out, bias, SSL_INIT_TRUNC_NORMAL, s->trunc_std);
            if (bias) pl->params->seg[pl->params->nseg - 1].init = SSL_INIT_ZERO;
        } else {
            ssl_linear_init(&h->lin[i], pl, n, in, out, bias);
        }
        h->has_bn[i] = last ? s->last_bn != SSL_LAST_BN_NONE : s->bn;
        if (h->has_bn[i]) {
            snprintf(n, sizeof n, "%s.%d", name, module++);
            int affine = !last || s->last_bn == SSL_LAST_BN_AFFINE;
            ssl_batchnorm_init(&h->bn[i], pl, n, out, affine, !last && s->act == SSL_ACT_RELU);
        }
        if (!last) module++; /* the activation module has no parameters but takes an index */
        in = out;
    }
    h->seg1 = pl->params->nseg;
    return 0;
}

/* The activation of hidden layer i when it is not fused into a BatchNorm. */
static int separate_act(const ssl_mlp *h, int i)
{
    return i < h->spec.layers - 1 && !(h->has_bn[i] && h->spec.act == SSL_ACT_RELU);
}

ssl_tensor ssl_mlp_forward(ssl_ctx *c, ssl_mlp *h, const ssl_weights *w, ssl_tensor x, int train)
{
    for (int i = 0; i < h->spec.layers; i++) {
        x = ssl_linear_forward(c, &h->lin[i], w, x);
        if (h->has_bn[i]) x = ssl_batchnorm_forward(c, &h->bn[i], w, x, train);
        if (separate_act(h, i)) {
            size_t n = (size_t)ssl_tensor_numel(x);
            ssl_tensor y = x;
            y.data = ssl_arena_floats(&c->act, n);
            if (h->spec.act == SSL_ACT_RELU) c->be->relu_fwd(c, n, x.data, y.data);
            else c->be->gelu_fwd(c, n, x.data, y.data);
            h->act_in[i] = x;
            h->act_out[i] = y;
            x = y;
        }
    }
    return x;
}

ssl_tensor ssl_mlp_backward(ssl_ctx *c, ssl_mlp *h, const ssl_weights *w, ssl_tensor dy)
{
    for (int i = h->spec.layers - 1; i >= 0; i--) {
        if (separate_act(h, i)) {
            size_t n = (size_t)ssl_tensor_numel(dy);
            ssl_tensor dx = dy;
            dx.data = ssl_arena_floats(&c->act, n);
            if (h->spec.act == SSL_ACT_RELU) c->be->relu_bwd(c, n, h->act_out[i].data, dy.data, dx.data);
            else c->be->gelu_bwd(c, n, h->act_in[i].data, dy.data, dx.data);
            dy = dx;
        }
        if (h->has_bn[i]) dy = ssl_batchnorm_backward(c, &h->bn[i], w, dy);
        dy = ssl_linear_backward(c, &h->lin[i], w, dy);
    }
    ssl_ctx_grads_done(c, w->g, h->seg0, h->seg1); /* its all-reduce may start */
    return dy;
}

ssl_tensor ssl_normalized(ssl_ctx *c, ssl_tensor x, float **norm)
{
    const int64_t N = x.shape[0], D = x.shape[1];
    ssl_tensor y = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(N * D)), N, D);
    float *nrm = ssl_arena_floats(&c->act, (size_t)N);
    c->be->l2norm_fwd(c, N, D, 1e-12f, x.data, y.data, nrm);
    if (norm) *norm = nrm;
    return y;
}
