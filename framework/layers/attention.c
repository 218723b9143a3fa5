/* Multi-head self-attention (see attention.h). Heads are never transposed into their own buffers:
 * a head is a column block of the packed qkv rows, addressed by leading dimension 3D and a
 * per-head offset, so each batch element is one strided-batched GEMM over heads. */
#include "framework/layers/attention.h"

#include "framework/core/check.h"

#include <math.h>
#include <stdio.h>

void ssl_attention_init(ssl_attention *l, ssl_plan *pl, const char *name, int D, int heads)
{
    char n[112], sub[112];
    SSL_ASSERTF(D % heads == 0, "attention: dim %d not divisible by %d heads", D, heads);
    *l = (ssl_attention){.D = D, .heads = heads};
    /* torch MHA: xavier_uniform in_proj, zero biases */
    int64_t ws[2] = {3 * D, D}, bs[1] = {3 * D};
    l->qkv = (ssl_linear){.in = D, .out = 3 * D, .bias = 1};
    ssl_layer_name(n, name, "in_proj_weight");
    l->qkv.w = ssl_params_add(pl->params, n, 2, ws, 0, SSL_INIT_UNIFORM, sqrtf(6.0f / (4.0f * D)));
    ssl_layer_name(n, name, "in_proj_bias");
    l->qkv.b = ssl_params_add(pl->params, n, 1, bs, SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT, SSL_INIT_ZERO, 0);
    ssl_layer_name(sub, name, "out_proj");
    ssl_linear_init(&l->proj, pl, sub, D, D, 1);
}

ssl_tensor ssl_attention_forward(ssl_ctx *c, ssl_attention *l, const ssl_weights *w, ssl_tensor x)
{
    SSL_ASSERT(x.ndim == 3 && x.shape[2] == l->D);
    const int64_t B = x.shape[0], T = x.shape[1];
    const int D = l->D, H = l->heads, dh = D / H;
    l->B = B;
    l->T = T;
    ssl_tensor qkv = ssl_linear_forward(c, &l->qkv, w, x);
    double t0 = ssl_prof_begin(c);
    l->qkv_out = qkv.data;
    l->probs = ssl_arena_floats(&c->act, (size_t)(B * H * T * T));
    l->ctx = ssl_arena_floats(&c->act, (size_t)(B * T * D));
    const float scale = 1.0f / sqrtf((float)dh);
    for (int64_t b = 0; b < B; b++) {
        const float *q = qkv.data + b * T * 3 * D, *k = q + D;
        float *s = l->probs + b * H * T * T;
        /* S_h = Q_h K_h^T (T x T) for every head h */
        c->be->gemm_batched(c, 0, 1, (int)T, (int)T, dh, 1.0f, q, 3 * D, dh, k, 3 * D, dh, 0.0f, s,
                            (int)T, T * T, H);
    }
    c->be->softmax_fwd(c, B * H * T, T, scale, l->probs, l->probs);
    for (int64_t b = 0; b < B; b++) {
        const float *v = qkv.data + b * T * 3 * D + 2 * D;
        /* O_h = P_h V_h, written into columns [h dh, (h+1) dh) of the (T, D) context */
        c->be->gemm_batched(c, 0, 0, (int)T, dh, (int)T, 1.0f, l->probs + b * H * T * T, (int)T,
                            T * T, v, 3 * D, dh, 0.0f, l->ctx + b * T * D, D, dh, H);
    }
    ssl_prof_end(c, SSL_PROF_ATTN_FWD, t0, 4.0 * B * T * T * D);
    return ssl_linear_forward(c, &l->proj, w, ssl_tensor_3d(l->ctx, B, T, D));
}

ssl_tensor ssl_attention_backward(ssl_ctx *c, ssl_attention *l, const ssl_weights *w, ssl_tensor dy)
{
    const int64_t B = l->B, T = l->T;
    const int D = l->D, H = l->heads, dh = D / H;
    ssl_tensor dctx = ssl_linear_backward(c, &l->proj, w, dy);
    double t0 = ssl_prof_begin(c);
    float *dqkv = ssl_arena_floats(&c->act, (size_t)(B * T * 3 * D));
    float *dp = ssl_arena_floats(&c->act, (size_t)(B * H * T * T));
    const float scale = 1.0f / sqrtf((float)dh);
    for (int64_t b = 0; b < B; b++) {
        const float *v = l->qkv_out + b * T * 3 * D + 2 * D;
        const float *p = l->probs + b * H * T * T;
        const float *dO = dctx.data + b * T * D;
        /* dP_h = dO_h V_h^T ; dV_h = P_h^T dO_h */
        c->be->gemm_batched(c, 0, 1, (int)T, (int)T, dh, 1.0f, dO, D, dh, v, 3 * D, dh, 0.0f,
                            dp + b * H * T * T, (int)T, T * T, H);
        c->be->gemm_batched(c, 1, 0, (int)T, dh, (int)T, 1.0f, p, (int)T, T * T, dO, D, dh, 0.0f,
                            dqkv + b * T * 3 * D + 2 * D, 3 * D, dh, H);
    }
    /* dS = scale * P * (dP - rowsum(dP * P)) : gradient w.r.t. the unscaled scores */
    c->be->softmax_bwd(c, B * H * T, T, scale, l->probs, dp, dp);
    for (int64_t b = 0; b < B; b++) {
        const float *q = l->qkv_out + b * T * 3 * D, *k = q + D;
        const float *ds = dp + b * H * T * T;
        float *dq = dqkv + b * T * 3 * D, *dk = dq + D;
        /* dQ_h = dS_h K_h ; dK_h = dS_h^T Q_h */
        c->be->gemm_batched(c, 0, 0, (int)T, dh, (int)T, 1.0f, ds, (int)T, T * T, k, 3 * D, dh,
                            0.0f, dq, 3 * D, dh, H);
        c->be->gemm_batched(c, 1, 0, (int)T, dh, (int)T, 1.0f, ds, (int)T, T * T, q, 3 * D, dh,
                            0.0f, dk, 3 * D, dh, H);
    }
    ssl_prof_end(c, SSL_PROF_ATTN_BWD, t0, 8.0 * B * T * T * D);
    return ssl_linear_backward(c, &l->qkv, w, ssl_tensor_3d(dqkv, B, T, 3 * D));
}
