/* ResNet-18/34/50 (torchvision v1.5 layout: stride on the 3x3 conv of bottlenecks) with the
 * ImageNet stem (7x7/2 conv + 3x3/2 max-pool) or the small-image stem (3x3/1 conv, no pool), and
 * a configurable first-stage width so CI can train a tiny one. Conv-BN-ReLU runs as conv + BN with
 * the ReLU fused in place; the residual add and final ReLU also run in place on the BN output. */
#include "framework/core/check.h"
#include "framework/core/stash.h"
#include "framework/layers/batchnorm.h"
#include "framework/layers/conv2d.h"
#include "framework/layers/linear.h"
#include "framework/layers/pool.h"
#include "framework/models/model.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    int bottleneck, has_down;
    int seg0, seg1; /* its parameter segments (gradient readiness: ssl_ctx_grads_done) */
    ssl_conv2d conv1, conv2, conv3, down;
    ssl_batchnorm bn1, bn2, bn3, down_bn;
    ssl_tensor out; /* block output after the final ReLU */
    int unit;       /* its stash unit (its saved tensors and its input's copy) */
} rn_block;

typedef struct {
    ssl_conv2d conv1;
    ssl_batchnorm bn1;
    int use_pool;
    ssl_maxpool pool;
    int nblocks;
    rn_block *blocks;
    ssl_avgpool gap;
    int has_fc;
    ssl_linear fc;
    ssl_stash stash; /* bf16 storage of what backward reads (core/stash.h); each instance its own */
} resnet;

static void block_init(rn_block *b, ssl_plan *pl, const char *name, int inplanes, int planes,
                       int stride, int bottleneck)
{
    char n[112];
    memset(b, 0, sizeof *b);
    b->bottleneck = bottleneck;
    int outc = bottleneck ? planes * 4 : planes;
#define SUB(s) (ssl_layer_name(n, name, s), n)
    if (bottleneck) {
        ssl_conv2d_init(&b->conv1, pl, SUB("conv1"), inplanes, planes, 1, 1, 0, 0);
        ssl_batchnorm_init(&b->bn1, pl, SUB("bn1"), planes, 1, 1);
        ssl_conv2d_init(&b->conv2, pl, SUB("conv2"), planes, planes, 3, stride, 1, 0);
        ssl_batchnorm_init(&b->bn2, pl, SUB("bn2"), planes, 1, 1);
        ssl_conv2d_init(&b->conv3, pl, SUB("conv3"), planes, outc, 1, 1, 0, 0);
        ssl_batchnorm_init(&b->bn3, pl, SUB("bn3"), outc, 1, 0);
    } else {
        ssl_conv2d_init(&b->conv1, pl, SUB("conv1"), inplanes, planes, 3, stride, 1, 0);
        ssl_batchnorm_init(&b->bn1, pl, SUB("bn1"), planes, 1, 1);
        ssl_conv2d_init(&b->conv2, pl, SUB("conv2"), planes, planes, 3, 1, 1, 0);
        ssl_batchnorm_init(&b->bn2, pl, SUB("bn2"), planes, 1, 0);
    }
    if (stride != 1 || inplanes != outc) {
        b->has_down = 1;
        ssl_conv2d_init(&b->down, pl, SUB("downsample.0"), inplanes, outc, 1, stride, 0, 0);
        ssl_batchnorm_init(&b->down_bn, pl, SUB("downsample.1"), outc, 1, 0);
    }
#undef SUB
}

static ssl_tensor block_forward(ssl_ctx *c, rn_block *b, const ssl_weights *w, ssl_tensor x, int train)
{
    ssl_tensor h = ssl_conv2d_forward(c, &b->conv1, w, x);
    h = ssl_batchnorm_forward(c, &b->bn1, w, h, train);
    h = ssl_conv2d_forward(c, &b->conv2, w, h);
    if (b->bottleneck) {
        h = ssl_batchnorm_forward(c, &b->bn2, w, h, train);
        h = ssl_conv2d_forward(c, &b->conv3, w, h);
        h = ssl_batchnorm_forward(c, &b->bn3, w, h, train);
    } else {
        h = ssl_batchnorm_forward(c, &b->bn2, w, h, train);
    }
    ssl_tensor sc = x;
    if (b->has_down) {
        sc = ssl_conv2d_forward(c, &b->down, w, x);
        sc = ssl_batchnorm_forward(c, &b->down_bn, w, sc, train);
    }
    double t0 = ssl_prof_begin(c);
    size_t n = ssl_tensor_numel(h);
    c->be->axpby(c, n, 1.0f, sc.data, 1.0f, h.data);
    c->be->relu_fwd(c, n, h.data, h.data);
    ssl_prof_end(c, SSL_PROF_ACT_FWD, t0, 0);
    b->out = h;
    return h;
}

/* A BN's saved tensors: its input (a convolution's bf16 output), its output where the fused ReLU's
 * mask needs it (also the next convolution's input), and its statistics as they are. */
static void stash_bn(ssl_stash *st, ssl_batchnorm *bn)
{
    ssl_stash_view(st, &bn->x);
    if (bn->relu) ssl_stash_view(st, &bn->y);
    ssl_stash_f32(st, &bn->mean, (size_t)bn->C);
    ssl_stash_f32(st, &bn->invstd, (size_t)bn->C);
    ssl_stash_f64(st, &bn->stats, 2 * (size_t)bn->C + 1);
}

/* Everything block b's backward reads, but its input (queued with the input's other readers by
 * stash_input) and its output (queued by the next unit, which reads it as input). */
static void stash_block(ssl_stash *st, rn_block *b)
{
    stash_bn(st, &b->bn1);
    ssl_stash_view(st, &b->conv2.x);
    stash_bn(st, &b->bn2);
    if (b->bottleneck) {
        ssl_stash_view(st, &b->conv3.x);
        stash_bn(st, &b->bn3);
    }
    if (b->has_down) stash_bn(st, &b->down_bn);
}

/* Block i's input: the convolutions that read it, and the unit before, whose ReLU mask it is. */
static void stash_input(ssl_stash *st, resnet *r, int i)
{
    rn_block *b = &r->blocks[i];
    ssl_stash_view(st, &b->conv1.x);
    if (b->has_down) ssl_stash_view(st, &b->down.x);
    if (i > 0) ssl_stash_view(st, &r->blocks[i - 1].out);
    else if (!r->use_pool) ssl_stash_view(st, &r->bn1.y);
}

/* With bf16 storage the backward runs layer by layer by liveness: a layer reads its saved tensors
 * as the bf16 views the forward's packs left (the BN's input and ReLU output, the convolution's
 * input, the block's output), and after it everything above `mark` but its input gradient is given
 * back (ssl_stash_keep), so a block holds its shortcut's gradient plus one layer's gradients at a
 * time. With fp32 storage a block's temporaries go at its end (resnet_backward). */
static ssl_tensor bn_back(ssl_ctx *c, ssl_stash *st, ssl_batchnorm *bn, const ssl_weights *w, ssl_tensor d,
                          size_t mark)
{
    return ssl_stash_keep(c, st, mark, ssl_batchnorm_backward(c, bn, w, d));
}

static ssl_tensor conv_back(ssl_ctx *c, ssl_stash *st, ssl_conv2d *l, const ssl_weights *w, ssl_tensor d,
                            size_t mark)
{
    return ssl_stash_keep(c, st, mark, ssl_conv2d_backward(c, l, w, d));
}

static ssl_tensor block_backward(ssl_ctx *c, ssl_stash *st, rn_block *b, const ssl_weights *w, ssl_tensor dy)
{
    size_t mark = ssl_arena_mark(&c->act);
    double t0 = ssl_prof_begin(c);
    ssl_relu_backward(c, b->out, dy, dy); /* dy now d(residual sum) */
    ssl_prof_end(c, SSL_PROF_ACT_BWD, t0, 0);
    ssl_stash_drop(c, st, b->unit + 1); /* the later units' copies: the mask just read was the last */
    ssl_tensor dsc = dy; /* the shortcut's first: its gradient is then the only one kept aside */
    if (b->has_down) {
        dsc = bn_back(c, st, &b->down_bn, w, dy, mark); /* no fused ReLU: dy left intact */
        dsc = conv_back(c, st, &b->down, w, dsc, mark);
        mark = ssl_arena_mark(&c->act);
    }
    ssl_tensor d = dy;
    if (b->bottleneck) {
        d = bn_back(c, st, &b->bn3, w, d, mark);
        d = conv_back(c, st, &b->conv3, w, d, mark);
    }
    d = bn_back(c, st, &b->bn2, w, d, mark);
    d = conv_back(c, st, &b->conv2, w, d, mark);
    d = bn_back(c, st, &b->bn1, w, d, mark);
    d = conv_back(c, st, &b->conv1, w, d, mark);
    c->be->axpby(c, ssl_tensor_numel(d), 1.0f, dsc.data, 1.0f, d.data);
    return d;
}

static ssl_tensor resnet_forward(ssl_ctx *c, ssl_model *m, const ssl_weights *w, ssl_tensor x, int train)
{
    resnet *r = m->impl;
    ssl_stash *st = &r->stash;
    /* Each unit (stem, block, head) packs what its backward reads once it is done: bf16 storage, or
     * nothing but its output when no backward follows (core/stash.h) */
    ssl_stash_begin(st, c, w->g != NULL);
    size_t mark = ssl_arena_mark(&c->act);
    ssl_tensor h = ssl_conv2d_forward(c, &r->conv1, w, x);
    h = ssl_batchnorm_forward(c, &r->bn1, w, h, train);
    if (r->use_pool) {
        h = ssl_maxpool_forward(c, &r->pool, h);
        stash_bn(st, &r->bn1);
        ssl_stash_view(st, &r->pool.x); /* bn1.y's copy: for its shape only */
        ssl_stash_i32(st, &r->pool.idx, ssl_tensor_numel(h));
        h.data = ssl_stash_pack(c, st, &mark, h.data, ssl_tensor_numel(h));
    } else {
        /* the stem's output is block 0's input: its ReLU mask is queued with it */
        ssl_stash_view(st, &r->bn1.x);
        ssl_stash_f32(st, &r->bn1.mean, (size_t)r->bn1.C);
        ssl_stash_f32(st, &r->bn1.invstd, (size_t)r->bn1.C);
        ssl_stash_f64(st, &r->bn1.stats, 2 * (size_t)r->bn1.C + 1);
    }
    for (int i = 0; i < r->nblocks; i++) {
        rn_block *b = &r->blocks[i];
        h = block_forward(c, b, w, h, train);
        stash_input(st, r, i);
        stash_block(st, b);
        b->unit = ssl_stash_units(st);
        b->out.data = h.data = ssl_stash_pack(c, st, &mark, h.data, ssl_tensor_numel(h));
    }
    h = ssl_avgpool_forward(c, &r->gap, h);
    if (r->has_fc) h = ssl_linear_forward(c, &r->fc, w, h);
    rn_block *last = &r->blocks[r->nblocks - 1];
    ssl_stash_view(st, &last->out);
    ssl_stash_view(st, &r->gap.x); /* last->out's copy: for its shape only */
    if (r->has_fc) ssl_stash_f32(st, &r->fc.x.data, ssl_tensor_numel(r->fc.x));
    h.data = ssl_stash_pack(c, st, &mark, h.data, ssl_tensor_numel(h));
    return h;
}

static void resnet_backward(ssl_ctx *c, ssl_model *m, const ssl_weights *w, ssl_tensor dy)
{
    resnet *r = m->impl;
    ssl_tensor d = dy;
    if (r->has_fc) d = ssl_linear_backward(c, &r->fc, w, d);
    /* Memory by liveness: after a block's backward its output gradient and every intermediate of
     * it are dead; only its input gradient lives on, moved down to the mark. The backward pass then
     * holds one block's gradients at a time, not the whole network's (ResNet-50 at 224 px: the
     * activation arena's peak falls by half). */
    const size_t mark = ssl_arena_mark(&c->act);
    d = ssl_avgpool_backward(c, &r->gap, d);
    ssl_stash *st = &r->stash;
    for (int i = r->nblocks - 1; i >= 0; i--) {
        d = block_backward(c, st, &r->blocks[i], w, d);
        ssl_ctx_grads_done(c, w->g, r->blocks[i].seg0, r->blocks[i].seg1); /* its all-reduce may start */
        d.data = ssl_ctx_release_keep(c, mark, d.data, ssl_tensor_numel(d));
    }
    if (r->use_pool) d = ssl_stash_keep(c, st, mark, ssl_maxpool_backward(c, &r->pool, d));
    d = bn_back(c, st, &r->bn1, w, d, mark);
    ssl_conv2d_backward(c, &r->conv1, w, d); /* skip_dx: no image gradient */
}

static void resnet_free(ssl_model *m)
{
    resnet *r = m->impl;
    ssl_stash_free(&r->stash);
    ssl_free(r->blocks);
    ssl_free(r);
}

/* Every layer keeps its saved state in its own struct (activation-arena pointers, no heap scratch),
 * so a shallow copy of the impl plus a copy of the blocks array is a full independent instance. */
static void resnet_clone(ssl_model *dst, const ssl_model *src)
{
    const resnet *s = src->impl;
    resnet *r = ssl_malloc(sizeof *r);
    *r = *s;
    memset(&r->stash, 0, sizeof r->stash);
    r->blocks = ssl_malloc((size_t)s->nblocks * sizeof *r->blocks);
    memcpy(r->blocks, s->blocks, (size_t)s->nblocks * sizeof *r->blocks);
    dst->impl = r;
}

/* Forward FLOPs of one image: conv / linear multiply-adds, x2. */
static double conv_flops(const ssl_conv2d *l, int *hw)
{
    int out = (*hw + 2 * l->pad - l->k) / l->stride + 1;
    double f = 2.0 * out * out * (double)l->cout * l->cin * l->k * l->k;
    *hw = out;
    return f;
}

static double resnet_flops(const resnet *r, int img)
{
    int hw = img;
    double f = conv_flops(&r->conv1, &hw);
    if (r->use_pool) hw = (hw + 2 - 3) / 2 + 1;
    for (int i = 0; i < r->nblocks; i++) {
        const rn_block *b = &r->blocks[i];
        int in_hw = hw, t = hw;
        f += conv_flops(&b->conv1, &t);
        f += conv_flops(&b->conv2, &t);
        if (b->bottleneck) f += conv_flops(&b->conv3, &t);
        if (b->has_down) f += conv_flops(&b->down, &in_hw);
        hw = t;
    }
    if (r->has_fc) f += 2.0 * r->fc.in * r->fc.out;
    return f;
}

int ssl_resnet_build(ssl_model *m, ssl_plan *pl, const char *prefix, char *err)
{
    const ssl_model_config *cfg = &m->cfg;
    static const int d18[4] = {2, 2, 2, 2}, d34[4] = {3, 4, 6, 3};
    const int *depth;
    int bottleneck = 0;
    if (strcmp(cfg->arch, "resnet18") == 0) depth = d18;
    else if (strcmp(cfg->arch, "resnet34") == 0) depth = d34;
    else if (strcmp(cfg->arch, "resnet50") == 0) depth = d34, bottleneck = 1;
    else {
        snprintf(err, 256, "unknown ResNet '%s' (resnet18, resnet34, resnet50)", cfg->arch);
        return -1;
    }
    if (cfg->freeze_patch_embed) {
        snprintf(err, 256, "resnet: freeze_patch_embed is a ViT option (%s has no patch projection)", cfg->arch);
        return -1;
    }
    if (cfg->width < 1 || cfg->in_chans < 1 || cfg->num_classes < 0) {
        snprintf(err, 256, "resnet: width %d, in_chans %d and num_classes %d must be positive",
                 cfg->width, cfg->in_chans, cfg->num_classes);
        return -1;
    }
    resnet *r = ssl_calloc(1, sizeof *r);
    m->impl = r;
    char n[112], sub[112];
    const int wdt = cfg->width;
    ssl_layer_name(n, prefix, "conv1");
    if (cfg->small_stem) ssl_conv2d_init(&r->conv1, pl, n, cfg->in_chans, wdt, 3, 1, 1, 0);
    else ssl_conv2d_init(&r->conv1, pl, n, cfg->in_chans, wdt, 7, 2, 3, 0);
    r->conv1.skip_dx = 1;
    ssl_layer_name(n, prefix, "bn1");
    ssl_batchnorm_init(&r->bn1, pl, n, wdt, 1, 1);
    r->use_pool = !cfg->small_stem;
    ssl_maxpool_init(&r->pool, 3, 2, 1);
    for (int s = 0; s < 4; s++) r->nblocks += depth[s];
    r->blocks = ssl_calloc((size_t)r->nblocks, sizeof *r->blocks);
    int inplanes = wdt, bi = 0;
    for (int s = 0; s < 4; s++) {
        int planes = wdt << s;
        for (int j = 0; j < depth[s]; j++) {
            snprintf(sub, sizeof sub, "layer%d.%d", s + 1, j);
            ssl_layer_name(n, prefix, sub);
            const int seg0 = pl->params->nseg;
            block_init(&r->blocks[bi], pl, n, inplanes, planes, (j == 0 && s > 0) ? 2 : 1, bottleneck);
            r->blocks[bi].seg0 = seg0, r->blocks[bi].seg1 = pl->params->nseg;
            bi++;
            inplanes = bottleneck ? planes * 4 : planes;
        }
    }
    /* every convolution feeds a BN, which reads bf16 input: under bf16 storage their outputs are bf16 */
    r->conv1.bf16_out = 1;
    for (int i = 0; i < r->nblocks; i++) {
        rn_block *b = &r->blocks[i];
        b->conv1.bf16_out = b->conv2.bf16_out = b->conv3.bf16_out = b->down.bf16_out = 1;
    }
    m->feat_dim = inplanes;
    m->out_dim = inplanes;
    if (cfg->num_classes > 0) {
        r->has_fc = 1;
        ssl_layer_name(n, prefix, "fc");
        ssl_linear_init(&r->fc, pl, n, inplanes, cfg->num_classes, 1);
        m->out_dim = cfg->num_classes;
    }
    m->forward = resnet_forward;
    m->backward = resnet_backward;
    m->free = resnet_free;
    m->clone = resnet_clone;
    m->flops_per_image = resnet_flops(r, cfg->img_size);
    return 0;
}
