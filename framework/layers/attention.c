/* Multi-head self-attention (see attention.h). Heads are never transposed into their own buffers:
 * a head is a column block of the packed qkv rows, addressed by leading dimension 3D and a
 * per-head offset, so each product (Q K^T, P V and their gradients) is one two-level batched GEMM
 * over every image and head (gemm_batched2): 6 GEMM calls per layer and step, not 6 per image. */
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

/* P = softmax(scale Q K^T) into l->probs, for every image and head in one product (inside the
 * caller's autocast region). */
static void probs(ssl_ctx *c, ssl_attention *l)
{
    const int64_t B = l->B, T = l->T;
    const int D = l->D, H = l->heads, dh = D / H;
    const int64_t sq[2] = {T * 3 * D, dh}, sp[2] = {H * T * T, T * T};
    const float *q = l->qkv_out, *k = q + D;
    c->be->gemm_batched2(c, 0, 1, (int)T, (int)T, dh, 1.0f, q, 3 * D, sq, k, 3 * D, sq, 0.0f, l->probs, (int)T, sp,
                         (int)B, H);
    c->be->softmax_fwd(c, B * H * T, T, 1.0f / sqrtf((float)dh), l->probs, l->probs);
}

void ssl_attention_recompute_probs(ssl_ctx *c, ssl_attention *l)
{
    double t0 = ssl_prof_begin(c);
    l->probs = ssl_arena_floats(&c->act, (size_t)(l->B * l->heads * l->T * l->T));
    ssl_ctx_autocast(c, 1);
    probs(c, l);
    ssl_ctx_autocast(c, 0);
    ssl_prof_end(c, SSL_PROF_ATTN_BWD, t0, 2.0 * l->B * l->T * l->T * l->D);
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
    ssl_ctx_autocast(c, 1); /* the four products; softmax stays fp32 (it ignores the flag) */
    l->probs = ssl_arena_floats(&c->act, (size_t)(B * H * T * T));
    l->ctx = ssl_arena_floats(&c->act, (size_t)(B * T * D));
    /* matrix (image b, head h): Q_h, K_h, V_h are column blocks of width dh of image b's (T, 3D) rows */
    const int64_t sq[2] = {T * 3 * D, dh}, sp[2] = {H * T * T, T * T}, so[2] = {T * D, dh};
    const float *v = qkv.data + 2 * D;
    probs(c, l);
    /* O = P V, written into columns [h dh, (h+1) dh) of each image's (T, D) context */
    c->be->gemm_batched2(c, 0, 0, (int)T, dh, (int)T, 1.0f, l->probs, (int)T, sp, v, 3 * D, sq, 0.0f, l->ctx, D, so,
                         (int)B, H);
    ssl_ctx_autocast(c, 0);
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
    ssl_ctx_autocast(c, 1);
    const float scale = 1.0f / sqrtf((float)dh);
    const int64_t sq[2] = {T * 3 * D, dh}, sp[2] = {H * T * T, T * T}, so[2] = {T * D, dh};
    const float *q = l->qkv_out, *k = q + D, *v = q + 2 * D;
    float *dq = dqkv, *dk = dqkv + D, *dv = dqkv + 2 * D;
    /* dP = dO V^T ; dV = P^T dO (every image and head per call) */
    c->be->gemm_batched2(c, 0, 1, (int)T, (int)T, dh, 1.0f, dctx.data, D, so, v, 3 * D, sq, 0.0f, dp, (int)T, sp,
                         (int)B, H);
    c->be->gemm_batched2(c, 1, 0, (int)T, dh, (int)T, 1.0f, l->probs, (int)T, sp, dctx.data, D, so, 0.0f, dv, 3 * D,
                         sq, (int)B, H);
    /* dS = scale * P * (dP - rowsum(dP * P)) : gradient w.r.t. the unscaled scores */
    c->be->softmax_bwd(c, B * H * T, T, scale, l->probs, dp, dp);
    /* dQ = dS K ; dK = dS^T Q */
    c->be->gemm_batched2(c, 0, 0, (int)T, dh, (int)T, 1.0f, dp, (int)T, sp, k, 3 * D, sq, 0.0f, dq, 3 * D, sq, (int)B,
                         H);
    c->be->gemm_batched2(c, 1, 0, (int)T, dh, (int)T, 1.0f, dp, (int)T, sp, q, 3 * D, sq, 0.0f, dk, 3 * D, sq, (int)B,
                         H);
    ssl_ctx_autocast(c, 0);
    ssl_prof_end(c, SSL_PROF_ATTN_BWD, t0, 8.0 * B * T * T * D);
    return ssl_linear_backward(c, &l->qkv, w, ssl_tensor_3d(dqkv, B, T, 3 * D));
}
