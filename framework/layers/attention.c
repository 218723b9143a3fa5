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

/* Element `off` of t, fp32 or bf16 (the saved qkv under bf16 storage). */
static const void *at(ssl_tensor t, size_t off)
{
    return t.dtype == SSL_T_BF16 ? (const void *)(t.bf16 + off) : (const void *)(t.data + off);
}

/* gemm_batched2 where A or B may be a bf16 view (its _bf16 op), else the fp32 op */
static void g2(ssl_ctx *c, int ta, int tb, int M, int N, int K, const void *A, int ah, int lda, const int64_t sa[2],
               const void *B, int bh, int ldb, const int64_t sb[2], float *C, int ldc, const int64_t sc[2], int outer,
               int inner)
{
    if (ah || bh)
        c->be->gemm_batched2_bf16(c, ta, tb, M, N, K, 1.0f, A, ah, lda, sa, B, bh, ldb, sb, 0.0f, C, ldc, sc, outer,
                                  inner);
    else
        c->be->gemm_batched2(c, ta, tb, M, N, K, 1.0f, A, lda, sa, B, ldb, sb, 0.0f, C, ldc, sc, outer, inner);
}

/* P = softmax(scale Q K^T) into l->probs, for every image and head in one product (inside the
 * caller's autocast region). */
static void probs(ssl_ctx *c, ssl_attention *l)
{
    const int64_t B = l->B, T = l->T;
    const int D = l->D, H = l->heads, dh = D / H;
    const int64_t sq[2] = {T * 3 * D, dh}, sp[2] = {H * T * T, T * T};
    const int h = l->qkv_out.dtype == SSL_T_BF16;
    g2(c, 0, 1, (int)T, (int)T, dh, at(l->qkv_out, 0), h, 3 * D, sq, at(l->qkv_out, (size_t)D), h, 3 * D, sq, l->probs,
       (int)T, sp, (int)B, H);
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
    l->qkv_out = qkv;
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
    const int h = l->qkv_out.dtype == SSL_T_BF16; /* q, k, v as the forward's pack left them */
    const void *q = at(l->qkv_out, 0), *k = at(l->qkv_out, (size_t)D), *v = at(l->qkv_out, 2 * (size_t)D);
    float *dq = dqkv, *dk = dqkv + D, *dv = dqkv + 2 * D;
    /* dP = dO V^T ; dV = P^T dO (every image and head per call) */
    g2(c, 0, 1, (int)T, (int)T, dh, dctx.data, 0, D, so, v, h, 3 * D, sq, dp, (int)T, sp, (int)B, H);
    c->be->gemm_batched2(c, 1, 0, (int)T, dh, (int)T, 1.0f, l->probs, (int)T, sp, dctx.data, D, so, 0.0f, dv, 3 * D,
                         sq, (int)B, H);
    /* dS = scale * P * (dP - rowsum(dP * P)) : gradient w.r.t. the unscaled scores */
    c->be->softmax_bwd(c, B * H * T, T, scale, l->probs, dp, dp);
    /* dQ = dS K ; dK = dS^T Q */
    g2(c, 0, 0, (int)T, dh, (int)T, dp, 0, (int)T, sp, k, h, 3 * D, sq, dq, 3 * D, sq, (int)B, H);
    g2(c, 1, 0, (int)T, dh, (int)T, dp, 0, (int)T, sp, q, h, 3 * D, sq, dk, 3 * D, sq, (int)B, H);
    ssl_ctx_autocast(c, 0);
    ssl_prof_end(c, SSL_PROF_ATTN_BWD, t0, 8.0 * B * T * T * D);
    return ssl_linear_backward(c, &l->qkv, w, ssl_tensor_3d(dqkv, B, T, 3 * D));
}
