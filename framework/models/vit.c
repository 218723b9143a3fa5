/* Vision Transformer (torchvision vit_b_16 layout and names): patch embedding as a GEMM on
 * patchified pixels (weight stored as conv_proj (D, C, p, p)), CLS token, learned or fixed 2-D
 * sin-cos position embedding, pre-norm blocks (LN -> MHSA -> +, LN -> MLP(GELU) -> +), final LN,
 * CLS output. Sizes: tiny 192/12/3, small 384/12/6, base 768/12/12, MLP ratio 4.
 * Inputs may be any multiple of the patch size (DINO's local crops, fine-tuning at another
 * resolution): the patch positions are resized bicubically from the planned grid per call, as
 * torch's F.interpolate(mode="bicubic") in MAE's / DINO's interpolate_pos_embed; the CLS position
 * is kept. The token path (embedding, optional subset of patches, blocks, LN) is shared by the
 * pooled forward and ssl_vit_forward_tokens (vit.h). */
#include "framework/models/vit.h"

#include "framework/core/check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    int D, depth, heads, p, C, img, T; /* planned: img side, T patches per image */
    int g;                             /* planned patch grid side (img / p) */
    ssl_linear embed;                  /* patches (B, Tc, C p p) -> (B, Tc, D) */
    size_t cls, pos;                   /* class_token (1,1,D), pos_embedding (1,T+1,D) */
    float *pos_data;                   /* host sin-cos table when fixed */
    int owns_pos;                      /* 0 in instances: the source frees pos_data */
    int freeze_embed;                  /* conv_proj frozen: backward skips its gradient */
    int freeze_pos;                    /* sin-cos positions: frozen, no gradient */
    ssl_vit_block *blocks;
    ssl_layernorm ln;
    int has_head;
    ssl_linear head;
    /* per call, forward -> backward (own in every instance) */
    int64_t B;
    int gh, gw, Tc;                    /* this call's patch grid and patches per image */
    int64_t n;                         /* patch tokens the blocks saw per image (Tc, or the kept) */
    const int32_t *rows;               /* device row index of the kept subset; NULL: all tokens */
    ssl_stash stash;                   /* the blocks' saved tensors (core/stash.h) */
} vit;

/* MAE's table (util/pos_embed.py, see vit.h). MoCo v3's vits.py builds the same values with the
 * two halves swapped (its meshgrid makes "w" the row), i.e. its table for the transposed grid. */
float *ssl_vit_sincos_table(int gh, int gw, int D)
{
    float *t = ssl_calloc((size_t)(gh * gw + 1) * D, sizeof(float));
    int q = D / 4;
    for (int y = 0; y < gh; y++)
        for (int x = 0; x < gw; x++) {
            float *row = t + (size_t)(1 + y * gw + x) * D;
            for (int i = 0; i < q; i++) {
                double omega = 1.0 / pow(10000.0, (double)i / q);
                row[i] = (float)sin(x * omega);
                row[q + i] = (float)cos(x * omega);
                row[2 * q + i] = (float)sin(y * omega);
                row[3 * q + i] = (float)cos(y * omega);
            }
        }
    return t;
}

void ssl_vit_block_init(ssl_vit_block *b, ssl_plan *pl, const char *name, int D, int heads)
{
    char n[112];
    b->seg0 = pl->params->nseg;
#define SUB(s) (ssl_layer_name(n, name, s), n)
    ssl_layernorm_init(&b->ln1, pl, SUB("ln_1"), D, 1e-6f);
    ssl_attention_init(&b->attn, pl, SUB("self_attention"), D, heads);
    ssl_layernorm_init(&b->ln2, pl, SUB("ln_2"), D, 1e-6f);
    ssl_linear_init_ex(&b->fc1, pl, SUB("mlp.0"), D, 4 * D, 1, SSL_INIT_TRUNC_NORMAL, 0.02f);
    ssl_linear_init_ex(&b->fc2, pl, SUB("mlp.3"), 4 * D, D, 1, SSL_INIT_TRUNC_NORMAL, 0.02f);
#undef SUB
    b->seg1 = pl->params->nseg;
}

ssl_tensor ssl_vit_block_forward(ssl_ctx *c, ssl_vit_block *b, const ssl_weights *w, ssl_tensor x)
{
    size_t n = ssl_tensor_numel(x);
    ssl_tensor h = ssl_layernorm_forward(c, &b->ln1, w, x);
    h = ssl_attention_forward(c, &b->attn, w, h);
    c->be->axpby(c, n, 1.0f, x.data, 1.0f, h.data); /* x1 = x + attn(ln1(x)), in h */
    ssl_tensor x1 = h;
    h = ssl_layernorm_forward(c, &b->ln2, w, x1);
    b->h1 = ssl_linear_forward_pre(c, &b->fc1, w, h, b->pre16 ? &b->h1pre : NULL);
    ssl_tensor g = b->h1;
    double t0 = ssl_prof_begin(c);
    g.data = ssl_arena_floats(&c->act, ssl_tensor_numel(g));
    c->be->gelu_fwd(c, ssl_tensor_numel(g), b->h1.data, g.data);
    ssl_prof_end(c, SSL_PROF_ACT_FWD, t0, 0);
    h = ssl_linear_forward(c, &b->fc2, w, g);
    c->be->axpby(c, n, 1.0f, x1.data, 1.0f, h.data);
    return h;
}

/* What block b's backward reads, for its pack. In bf16: the inputs of its products, which read them
 * rounded to bfloat16 anyway (the LN outputs, q/k/v, the attention context, the GELU output), and
 * instead of the GELU input, fc1's product before its bias (rounded to bf16 by the product: the
 * backward adds the bias again, the same fp32 bits; b->pre16). As they are: the residual stream (the
 * LN inputs) and the LN statistics, which the backward reads in fp32. Not the softmax output (heads x
 * tokens^2 per image, more than all the rest): the backward computes it again from q and k, the same
 * bits. The block's input only when it lies above the pack's mark (the previous block's output; not
 * the first block's). */
static void block_stash(ssl_stash *st, ssl_vit_block *b, int with_input)
{
    ssl_attention *a = &b->attn;
    const size_t rows = (size_t)(a->B * a->T), D = (size_t)a->D;
    if (with_input) ssl_stash_f32(st, &b->ln1.x.data, rows * D);
    ssl_stash_f32(st, &b->ln1.mean, rows);
    ssl_stash_f32(st, &b->ln1.rstd, rows);
    ssl_stash_view(st, &a->qkv.x);
    ssl_stash_view(st, &a->qkv_out);
    ssl_stash_view(st, &a->proj.x); /* the context */
    ssl_stash_f32(st, &b->ln2.x.data, rows * D);
    ssl_stash_f32(st, &b->ln2.mean, rows);
    ssl_stash_f32(st, &b->ln2.rstd, rows);
    ssl_stash_view(st, &b->fc1.x);
    if (b->pre16) ssl_stash_view(st, &b->h1pre); /* half of h1's bytes; backward adds the bias again */
    else ssl_stash_f32(st, &b->h1.data, rows * 4 * D);
    ssl_stash_view(st, &b->fc2.x);
}

/* Layer by layer: each product reads its input as the pack left it (a bf16 view under bf16 storage,
 * taken by the backend's _bf16 ops), and with bf16 storage everything but the running gradient is
 * given back after it. */
static ssl_tensor block_backward(ssl_ctx *c, ssl_vit_block *b, const ssl_weights *w, ssl_tensor dy, ssl_stash *st)
{
    size_t n = ssl_tensor_numel(dy), mark = ssl_arena_mark(&c->act);
    ssl_attention *a = &b->attn;
    ssl_tensor d = ssl_stash_keep(c, st, mark, ssl_linear_backward(c, &b->fc2, w, dy));
    double t0 = ssl_prof_begin(c);
    const size_t n4 = ssl_tensor_numel(d);
    const float *h1 = b->h1.data;
    if (b->pre16) { /* the GELU input again, the forward's bits: product (bf16) + bias */
        float *h = ssl_arena_floats(&c->act, n4);
        c->be->cast_bf16_f32(c, h, b->h1pre.bf16, n4);
        c->be->bias_add(c, (int64_t)(n4 / (size_t)b->fc1.out), b->fc1.out, 1, w->p + b->fc1.b, h);
        h1 = h;
    }
    c->be->gelu_bwd(c, n4, h1, d.data, d.data);
    ssl_prof_end(c, SSL_PROF_ACT_BWD, t0, 0);
    d = ssl_stash_keep(c, st, mark, ssl_linear_backward(c, &b->fc1, w, d));
    d = ssl_stash_keep(c, st, mark, ssl_layernorm_backward(c, &b->ln2, w, d));
    c->be->axpby(c, n, 1.0f, dy.data, 1.0f, d.data); /* d(x1) */
    ssl_tensor dx1 = d;
    mark = ssl_arena_mark(&c->act);
    if (st->on) ssl_attention_recompute_probs(c, a);
    d = ssl_stash_keep(c, st, mark, ssl_attention_backward(c, a, w, dx1));
    d = ssl_stash_keep(c, st, mark, ssl_layernorm_backward(c, &b->ln1, w, d));
    c->be->axpby(c, n, 1.0f, dx1.data, 1.0f, d.data);
    ssl_ctx_grads_done(c, w->g, b->seg0, b->seg1); /* its all-reduce may start */
    return d;
}

ssl_tensor ssl_vit_blocks_forward(ssl_ctx *c, ssl_vit_block *blocks, int depth, const ssl_weights *w, ssl_tensor x,
                                  ssl_stash *st)
{
    size_t mark = ssl_arena_mark(&c->act);
    for (int i = 0; i < depth; i++) {
        blocks[i].pre16 = st->on && blocks[i].fc1.bias;
        x = ssl_vit_block_forward(c, &blocks[i], w, x);
        block_stash(st, &blocks[i], i > 0);
        blocks[i].unit = ssl_stash_units(st);
        x.data = ssl_stash_pack(c, st, &mark, x.data, ssl_tensor_numel(x));
    }
    return x;
}

/* Memory by liveness, as resnet_backward: after a block only its input gradient lives on. */
ssl_tensor ssl_vit_blocks_backward(ssl_ctx *c, ssl_vit_block *blocks, int depth, const ssl_weights *w, ssl_tensor dy,
                                   ssl_stash *st, size_t mark)
{
    for (int i = depth - 1; i >= 0; i--) {
        dy = block_backward(c, &blocks[i], w, dy, st);
        ssl_stash_drop(c, st, blocks[i].unit);
        dy.data = ssl_ctx_release_keep(c, mark, dy.data, ssl_tensor_numel(dy));
    }
    return dy;
}

/* This call's grid from the images (N, C, H, W); H and W must be multiples of the patch size. */
static void set_call_grid(vit *v, ssl_tensor x)
{
    SSL_ASSERTF(x.ndim == 4 && x.shape[1] == v->C && x.shape[2] >= v->p && x.shape[3] >= v->p &&
                    x.shape[2] % v->p == 0 && x.shape[3] % v->p == 0,
                "vit: expected (N, %d, H, W) images with H, W multiples of the patch size %d", v->C, v->p);
    v->B = x.shape[0];
    v->gh = (int)(x.shape[2] / v->p), v->gw = (int)(x.shape[3] / v->p);
    v->Tc = v->gh * v->gw;
}

static int grid_is_planned(const vit *v) { return v->gh == v->g && v->gw == v->g; }

/* Position embedding (Tc+1, D) of this call's grid: the planned parameter as it is, or the CLS
 * position followed by the patch positions resized from the planned grid (arena). */
static const float *call_positions(ssl_ctx *c, const vit *v, const ssl_weights *w)
{
    const float *pos = w->p + v->pos;
    if (grid_is_planned(v)) return pos;
    const int64_t D = v->D;
    float *q = ssl_arena_floats(&c->act, (size_t)((v->Tc + 1) * D));
    c->be->copy(c, q, pos, (size_t)D);
    c->be->resize_bicubic_fwd(c, v->g, v->g, v->gh, v->gw, D, pos + D, q + D);
    return q;
}

/* d(position) of this call, summed over the batch, into the planned parameter's gradient: through
 * the resize's adjoint when the grid differs. dh is d(tokens) (B, Tc+1, D). */
static void positions_backward(ssl_ctx *c, const vit *v, const ssl_weights *w, const float *dh)
{
    if (v->freeze_pos) return;
    const int64_t B = v->B, T = v->Tc, D = v->D;
    float *g = w->g + v->pos;
    if (grid_is_planned(v)) {
        c->be->bias_grad(c, B, (T + 1) * D, 1, dh, g);
        return;
    }
    float *dq = ssl_arena_floats(&c->act, (size_t)((T + 1) * D));
    c->be->fill(c, dq, (size_t)((T + 1) * D), 0.0f);
    c->be->bias_grad(c, B, (T + 1) * D, 1, dh, dq);
    c->be->axpby(c, (size_t)D, 1.0f, dq, 1.0f, g);                            /* CLS position */
    c->be->resize_bicubic_bwd(c, v->g, v->g, v->gh, v->gw, D, dq + D, g + D); /* accumulates */
}

ssl_tensor ssl_vit_select_tokens(ssl_ctx *c, ssl_tensor x, int64_t n, const int32_t *ids, const int32_t **rows)
{
    SSL_ASSERT(x.ndim == 3 && x.shape[1] >= 1 && n >= 0);
    const int64_t B = x.shape[0], T = x.shape[1] - 1, D = x.shape[2];
    int32_t *h = ssl_malloc((size_t)(B * (n + 1)) * sizeof *h);
    for (int64_t b = 0; b < B; b++) {
        int32_t *r = h + b * (n + 1);
        r[0] = (int32_t)(b * (T + 1));
        for (int64_t j = 0; j < n; j++) {
            const int32_t t = ids[b * n + j];
            SSL_ASSERTF(t >= 0 && t < T, "select_tokens: index %d outside [0, %lld)", t, (long long)T);
            r[1 + j] = (int32_t)(b * (T + 1) + 1 + t);
        }
    }
    /* int32 fits the arena's float slots */
    int32_t *d = (int32_t *)(void *)ssl_arena_floats(&c->act, (size_t)(B * (n + 1)));
    c->be->upload(d, h, (size_t)(B * (n + 1)) * sizeof *h);
    ssl_free(h);
    ssl_tensor y = ssl_tensor_3d(ssl_arena_floats(&c->act, (size_t)(B * (n + 1) * D)), B, n + 1, D);
    c->be->gather_rows(c, B * (n + 1), D, d, x.data, y.data);
    *rows = d;
    return y;
}

ssl_tensor ssl_vit_select_tokens_backward(ssl_ctx *c, ssl_tensor dy, int64_t T, const int32_t *rows)
{
    const int64_t B = dy.shape[0], D = dy.shape[2];
    ssl_tensor dx = ssl_tensor_3d(ssl_arena_floats(&c->act, (size_t)(B * (T + 1) * D)), B, T + 1, D);
    c->be->fill(c, dx.data, ssl_tensor_numel(dx), 0.0f);
    c->be->scatter_add_rows(c, B * dy.shape[1], D, rows, dy.data, dx.data); /* rows are distinct */
    return dx;
}

/* The token path: tokens (B, 1 + n, D) after the final LN, n = keep for a subset ids (B, keep) of
 * the patches, else all Tc. The subset is taken after adding the positions, so each kept token
 * carries its own patch's position (MAE's forward_encoder). */
static ssl_tensor encode(ssl_ctx *c, vit *v, const ssl_weights *w, ssl_tensor x, const int32_t *ids, int keep)
{
    set_call_grid(v, x);
    const int64_t B = v->B, T = v->Tc, D = v->D, F = (int64_t)v->C * v->p * v->p;
    const int H = v->gh * v->p, W = v->gw * v->p;
    double t0 = ssl_prof_begin(c);
    float *patches = ssl_arena_floats(&c->act, (size_t)(B * T * F));
    c->be->patchify(c, (int)B, v->C, H, W, v->p, x.data, patches);
    ssl_prof_end(c, SSL_PROF_TOKENS_FWD, t0, 0);
    ssl_tensor e = ssl_linear_forward(c, &v->embed, w, ssl_tensor_3d(patches, B, T, F));
    t0 = ssl_prof_begin(c);
    ssl_tensor h = ssl_tensor_3d(ssl_arena_floats(&c->act, (size_t)(B * (T + 1) * D)), B, T + 1, D);
    c->be->copy2d(c, B, D, w->p + v->cls, 0, h.data, (T + 1) * D);            /* CLS per image */
    c->be->copy2d(c, B, T * D, e.data, T * D, h.data + D, (T + 1) * D);       /* patch tokens */
    c->be->bias_add(c, B, (T + 1) * D, 1, call_positions(c, v, w), h.data);  /* + position */
    v->rows = NULL;
    v->n = T;
    if (ids) {
        SSL_ASSERTF(keep >= 0 && keep <= T, "vit: keep %d of %lld patches", keep, (long long)T);
        h = ssl_vit_select_tokens(c, h, keep, ids, &v->rows);
        v->n = keep;
    }
    ssl_prof_end(c, SSL_PROF_TOKENS_FWD, t0, 0);
    ssl_stash_begin(&v->stash, c, w->g != NULL);
    h = ssl_vit_blocks_forward(c, v->blocks, v->depth, w, h, &v->stash);
    return ssl_layernorm_forward(c, &v->ln, w, h);
}

/* d(tokens) (B, 1 + n, D) of encode's output back to the parameters. */
static void encode_backward(ssl_ctx *c, vit *v, const ssl_weights *w, ssl_tensor dh)
{
    SSL_ASSERTF(dh.ndim == 3 && dh.shape[0] == v->B && dh.shape[1] == v->n + 1 && dh.shape[2] == v->D,
                "vit: token gradient must be (%lld, %lld, %d)", (long long)v->B, (long long)v->n + 1, v->D);
    const int64_t B = v->B, T = v->Tc, D = v->D;
    const size_t mark = ssl_arena_mark(&c->act); /* memory by liveness, as resnet_backward */
    dh = ssl_layernorm_backward(c, &v->ln, w, dh);
    dh = ssl_vit_blocks_backward(c, v->blocks, v->depth, w, dh, &v->stash, mark);
    if (!w->g) return;
    double t0 = ssl_prof_begin(c);
    if (v->rows) dh = ssl_vit_select_tokens_backward(c, dh, T, v->rows); /* dropped patches: zero */
    positions_backward(c, v, w, dh.data);
    float *dcls = ssl_arena_floats(&c->act, (size_t)(B * D));
    c->be->copy2d(c, B, D, dh.data, (T + 1) * D, dcls, D);
    c->be->bias_grad(c, B, D, 1, dcls, w->g + v->cls);
    if (v->freeze_embed) { /* stop-grad: no dW GEMM, the frozen gradients stay zero */
        ssl_prof_end(c, SSL_PROF_TOKENS_BWD, t0, 0);
        return;
    }
    float *de = ssl_arena_floats(&c->act, (size_t)(B * T * D));
    c->be->copy2d(c, B, T * D, dh.data + D, (T + 1) * D, de, T * D);
    ssl_prof_end(c, SSL_PROF_TOKENS_BWD, t0, 0);
    ssl_linear_backward(c, &v->embed, w, ssl_tensor_3d(de, B, T, D)); /* skip_dx */
}

static ssl_tensor vit_forward(ssl_ctx *c, ssl_model *m, const ssl_weights *w, ssl_tensor x, int train)
{
    (void)train;
    vit *v = m->impl;
    ssl_tensor h = encode(c, v, w, x, NULL, 0);
    const int64_t B = v->B, D = v->D;
    ssl_tensor out = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(B * D)), B, D);
    c->be->copy2d(c, B, D, h.data, (v->n + 1) * D, out.data, D);
    if (v->has_head) out = ssl_linear_forward(c, &v->head, w, out);
    return out;
}

static void vit_backward(ssl_ctx *c, ssl_model *m, const ssl_weights *w, ssl_tensor dy)
{
    vit *v = m->impl;
    const int64_t B = v->B, n = v->n, D = v->D;
    ssl_tensor d = dy;
    if (v->has_head) d = ssl_linear_backward(c, &v->head, w, d);
    double t0 = ssl_prof_begin(c);
    ssl_tensor dh = ssl_tensor_3d(ssl_arena_floats(&c->act, (size_t)(B * (n + 1) * D)), B, n + 1, D);
    c->be->fill(c, dh.data, ssl_tensor_numel(dh), 0.0f);
    c->be->copy2d(c, B, D, d.data, D, dh.data, (n + 1) * D);
    ssl_prof_end(c, SSL_PROF_TOKENS_BWD, t0, 0);
    encode_backward(c, v, w, dh);
}

/* The impl of a model built by ssl_vit_build (its forward is this file's). */
static vit *vit_of(ssl_model *m)
{
    SSL_ASSERTF(m->forward == vit_forward, "vit tokens: '%s' is not a ViT", m->cfg.arch);
    return m->impl;
}

ssl_tensor ssl_vit_forward_tokens(ssl_ctx *c, ssl_model *m, const ssl_weights *w, ssl_tensor x,
                                  const int32_t *ids_keep, int keep, int train)
{
    (void)train;
    return encode(c, vit_of(m), w, x, ids_keep, keep);
}

void ssl_vit_backward_tokens(ssl_ctx *c, ssl_model *m, const ssl_weights *w, ssl_tensor dy)
{
    encode_backward(c, vit_of(m), w, dy);
}

static void vit_free(ssl_model *m)
{
    vit *v = m->impl;
    ssl_stash_free(&v->stash);
    ssl_free(v->blocks);
    if (v->owns_pos) ssl_free(v->pos_data);
    ssl_free(v);
}

/* Layers hold only offsets and activation-arena pointers (no heap scratch): copy the impl and the
 * blocks; the sin-cos table (the plan's init data) stays the source's. */
static void vit_clone(ssl_model *dst, const ssl_model *src)
{
    const vit *s = src->impl;
    vit *v = ssl_malloc(sizeof *v);
    *v = *s;
    v->owns_pos = 0;
    memset(&v->stash, 0, sizeof v->stash);
    v->blocks = ssl_malloc((size_t)s->depth * sizeof *v->blocks);
    memcpy(v->blocks, s->blocks, (size_t)s->depth * sizeof *v->blocks);
    dst->impl = v;
}

int ssl_vit_build(ssl_model *m, ssl_plan *pl, const char *prefix, char *err)
{
    const ssl_model_config *cfg = &m->cfg;
    int D, depth = 12, heads;
    if (strcmp(cfg->arch, "vit_tiny") == 0) D = 192, heads = 3;
    else if (strcmp(cfg->arch, "vit_small") == 0) D = 384, heads = 6;
    else if (strcmp(cfg->arch, "vit_base") == 0) D = 768, heads = 12;
    else {
        snprintf(err, 256, "unknown ViT '%s' (vit_tiny, vit_small, vit_base)", cfg->arch);
        return -1;
    }
    if (cfg->vit_dim) D = cfg->vit_dim;
    if (cfg->vit_depth) depth = cfg->vit_depth;
    if (cfg->vit_heads) heads = cfg->vit_heads;
    if (cfg->patch_size < 1 || cfg->img_size < cfg->patch_size || cfg->img_size % cfg->patch_size) {
        snprintf(err, 256, "vit: image size %d must be a positive multiple of patch size %d",
                 cfg->img_size, cfg->patch_size);
        return -1;
    }
    if (D % heads || (cfg->sincos_pos && D % 4)) {
        snprintf(err, 256, "vit: dim %d must divide by heads %d (and by 4 for sin-cos)", D, heads);
        return -1;
    }
    vit *v = ssl_calloc(1, sizeof *v);
    m->impl = v;
    v->D = D, v->depth = depth, v->heads = heads, v->p = cfg->patch_size, v->C = cfg->in_chans;
    v->img = cfg->img_size;
    const int g = v->img / v->p;
    v->g = g;
    v->T = g * g;
    char n[112], sub[112];
    const int F = v->C * v->p * v->p;
    const unsigned tok = SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT;
    int64_t ws[4] = {D, v->C, v->p, v->p}, bs[1] = {D}, cs[3] = {1, 1, D}, ps[3] = {1, v->T + 1, D};
    v->embed = (ssl_linear){.in = F, .out = D, .bias = 1, .skip_dx = 1};
    v->freeze_embed = cfg->freeze_patch_embed;
    const unsigned frz = v->freeze_embed ? SSL_SEG_FROZEN : 0;
    ssl_layer_name(n, prefix, "conv_proj.weight");
    if (v->freeze_embed) /* never trained, so MoCo v3's init (vits.py) is what it keeps: xavier-uniform,
                          * fan_in + fan_out = C p p + D */
        v->embed.w = ssl_params_add(pl->params, n, 4, ws, frz, SSL_INIT_UNIFORM, sqrtf(6.0f / (float)(F + D)));
    else
        v->embed.w = ssl_params_add(pl->params, n, 4, ws, 0, SSL_INIT_TRUNC_NORMAL, sqrtf(1.0f / F));
    ssl_layer_name(n, prefix, "conv_proj.bias");
    v->embed.b = ssl_params_add(pl->params, n, 1, bs, tok | frz, SSL_INIT_ZERO, 0);
    ssl_layer_name(n, prefix, "class_token");
    v->cls = ssl_params_add(pl->params, n, 3, cs, tok, SSL_INIT_ZERO, 0);
    ssl_layer_name(n, prefix, "encoder.pos_embedding");
    if (cfg->sincos_pos) {
        v->pos_data = ssl_vit_sincos_table(g, g, D);
        v->owns_pos = 1;
        v->freeze_pos = 1;
        v->pos = ssl_params_add(pl->params, n, 3, ps, tok | SSL_SEG_FROZEN, SSL_INIT_CONST_DATA, 0);
        pl->params->seg[pl->params->nseg - 1].init_data = v->pos_data;
    } else {
        v->pos = ssl_params_add(pl->params, n, 3, ps, tok, SSL_INIT_NORMAL, 0.02f);
    }
    v->blocks = ssl_calloc((size_t)depth, sizeof *v->blocks);
    for (int i = 0; i < depth; i++) {
        char base[112];
        snprintf(sub, sizeof sub, "encoder.layers.encoder_layer_%d", i);
        ssl_layer_name(base, prefix, sub);
        ssl_vit_block_init(&v->blocks[i], pl, base, D, heads);
    }
    ssl_layer_name(n, prefix, "encoder.ln");
    ssl_layernorm_init(&v->ln, pl, n, D, 1e-6f);
    m->feat_dim = m->out_dim = D;
    if (cfg->num_classes > 0) {
        v->has_head = 1;
        ssl_layer_name(n, prefix, "heads.head");
        ssl_linear_init(&v->head, pl, n, D, cfg->num_classes, 1);
        m->out_dim = cfg->num_classes;
    }
    m->forward = vit_forward;
    m->backward = vit_backward;
    m->free = vit_free;
    m->clone = vit_clone;
    const double Tt = v->T + 1;
    m->flops_per_image = 2.0 * v->T * F * D +
                         depth * (2.0 * Tt * 12.0 * D * D + 4.0 * Tt * Tt * D) +
                         (v->has_head ? 2.0 * D * cfg->num_classes : 0);
    return 0;
}
