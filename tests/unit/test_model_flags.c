/* The optimizer flags of real models, tensor by tensor: ResNet-50, ViT-B/16 with learned and with
 * sin-cos positions, each with SimCLR's projector. Every 1-D tensor (biases, BN / LayerNorm affine)
 * and the ViT tokens (class_token, pos_embedding) are excluded from weight decay and from LARS/LAMB
 * adaptation; every conv / linear weight gets both; sin-cos positions are frozen, learned ones are
 * not. Then the behaviour through the real optimizer on a small ResNet and ViT: one LARS/AdamW step
 * with zero gradients and weight decay moves exactly the decayed tensors and nothing frozen.
 * freeze_patch_embed (MoCo v3's stop-grad conv1): conv_proj weight and bias are frozen, the weight
 * xavier-uniform; after a real backward their gradients are exactly zero, and SGD / AdamW steps
 * leave them bit-identical while every other tensor moves. Without the flag they train. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/models/model.h"
#include "framework/optim/optim.h"
#include "methods/method.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

/* Plan arch (+ SimCLR projector) into p; returns the model (caller frees). */
static void plan(const char *arch, int sincos, int img, int patch, ssl_params *p, ssl_params *b, ssl_model *m,
                 ssl_method *meth)
{
    ssl_params_init(p);
    ssl_params_init(b);
    ssl_plan pl = {p, b};
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, arch);
    cfg.sincos_pos = sincos;
    if (img) cfg.img_size = img, cfg.patch_size = patch, cfg.width = 8, cfg.small_stem = 1;
    char err[256];
    SSL_ASSERTF(ssl_model_build(m, &cfg, &pl, "", err) == 0, "%s: %s", arch, err);
    static ssl_config mc; /* outlives the method */
    ssl_config_defaults(&mc);
    mc.simclr.proj_hidden = 64, mc.simclr.proj_dim = 32;
    SSL_ASSERTF(ssl_method_init(meth, &mc, m, &pl, err, sizeof err) == 0, "%s", err);
}

static void check_rules(const char *arch, int sincos)
{
    ssl_params p, b;
    ssl_model m;
    ssl_method meth;
    plan(arch, sincos, 0, 0, &p, &b, &m, &meth);
    const unsigned skip = SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT;
    int tokens = 0, frozen = 0;
    for (int i = 0; i < p.nseg; i++) {
        const ssl_segment *s = &p.seg[i];
        int token = !strcmp(s->name, "class_token") || ends_with(s->name, "pos_embedding");
        unsigned want = s->ndim == 1 || token ? skip : 0;
        if (token && ends_with(s->name, "pos_embedding") && sincos) want |= SSL_SEG_FROZEN;
        tokens += token;
        frozen += !!(s->flags & SSL_SEG_FROZEN);
        SSL_EXPECT(s->flags == want, "%s%s: %s (%dD) has flags %#x, expected %#x", arch, sincos ? " sincos" : "",
                   s->name, s->ndim, s->flags, want);
    }
    if (!strncmp(arch, "vit", 3)) SSL_EXPECT(tokens == 2, "%s: %d token tensors, expected 2", arch, tokens);
    SSL_EXPECT(frozen == (sincos ? 1 : 0), "%s: %d frozen tensors", arch, frozen);
    meth.vt->free(&meth);
    ssl_model_free(&m);
    ssl_params_free(&p);
    ssl_params_free(&b);
}

/* Zero gradients, weight decay 0.1: exactly the tensors without NO_WD move, frozen ones never. */
static void check_step(const char *arch, int sincos, ssl_optim_kind kind)
{
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    ssl_params p, b;
    ssl_model m;
    ssl_method meth;
    plan(arch, sincos, 16, 4, &p, &b, &m, &meth);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_init_values(&p, 7);
    for (size_t i = 0; i < p.numel; i++) p.data[i] += 0.25f; /* zero-initialised biases get a value to decay */
    float *before = malloc(p.numel * sizeof(float));
    memcpy(before, p.data, p.numel * sizeof(float));
    ssl_optim_config oc = ssl_optim_config_default(kind);
    ssl_optim o;
    ssl_optim_init(&o, &c, &p, &oc);
    ssl_optim_step(&o, &c, 0.1f, 0.1f);
    for (int i = 0; i < p.nseg; i++) {
        const ssl_segment *s = &p.seg[i];
        int moved = memcmp(p.data + s->off, before + s->off, s->n * sizeof(float)) != 0;
        SSL_EXPECT(moved == !(s->flags & (SSL_SEG_NO_WD | SSL_SEG_FROZEN)), "%s %s: %s %s under weight decay alone",
                   arch, kind == SSL_OPTIM_LARS ? "lars" : "adamw", s->name, moved ? "moved" : "did not move");
    }
    free(before);
    ssl_optim_free(&o);
    meth.vt->free(&meth);
    ssl_model_free(&m);
    ssl_test_bench_free(&c, &p, &b);
}

/* A small ViT with or without freeze_patch_embed: flags, init, backward, optimizer step. */
static void check_freeze(int freeze, ssl_optim_kind kind)
{
    const char *what = freeze ? "freeze_patch_embed" : "trainable patch embed";
    ssl_ctx c;
    ssl_params p, b;
    ssl_plan pl = ssl_test_bench_init(&c, &p, &b);
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, "vit_tiny");
    cfg.img_size = 16, cfg.patch_size = 4, cfg.vit_dim = 24, cfg.vit_depth = 2, cfg.vit_heads = 3;
    cfg.freeze_patch_embed = freeze;
    ssl_model m;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&m, &cfg, &pl, "", err) == 0, "%s", err);
    int iw = ssl_params_find(&p, "conv_proj.weight"), ib = ssl_params_find(&p, "conv_proj.bias");
    SSL_ASSERT(iw >= 0 && ib >= 0);
    const unsigned tok = SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT, frz = freeze ? SSL_SEG_FROZEN : 0;
    SSL_EXPECT(p.seg[iw].flags == frz, "%s: conv_proj.weight flags %#x", what, p.seg[iw].flags);
    SSL_EXPECT(p.seg[ib].flags == (tok | frz), "%s: conv_proj.bias flags %#x", what, p.seg[ib].flags);
    for (int i = 0; i < p.nseg; i++)
        if (i != iw && i != ib) SSL_EXPECT(!(p.seg[i].flags & SSL_SEG_FROZEN), "%s: %s frozen", what, p.seg[i].name);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    ssl_params_init_values(&p, 7);
    if (freeze) { /* MoCo v3 vits.py: U(-a, a), a = sqrt(6 / (3 p p + D)) */
        const ssl_segment *s = &p.seg[iw];
        float a = sqrtf(6.0f / (float)(3 * 4 * 4 + 24)), mx = 0.0f;
        for (size_t j = 0; j < s->n; j++) mx = fmaxf(mx, fabsf(p.data[s->off + j]));
        SSL_EXPECT(s->init == SSL_INIT_UNIFORM && s->init_a == a && mx <= a && mx > 0.9f * a,
                   "%s: conv_proj.weight init %d a %g (want uniform %g), max |w| %g", what, (int)s->init,
                   (double)s->init_a, (double)a, (double)mx);
    }
    /* zero-initialised biases / tokens get values, so every trainable tensor has a gradient */
    for (size_t i = 0; i < p.numel; i++) p.data[i] += 0.05f * sinf((float)i);

    /* forward + backward of a random d(out) on 4 images */
    const int N = 4;
    size_t nx = (size_t)N * 3 * 16 * 16, ny = (size_t)N * m.out_dim;
    float *x = malloc(nx * sizeof(float));
    ssl_test_uniform(x, nx, 5, -1, 1);
    ssl_params_zero_grad(&c, &p);
    ssl_ctx_step_begin(&c);
    ssl_weights w = {p.data, p.grad, b.data};
    ssl_tensor y = m.forward(&c, &m, &w, ssl_tensor_4d(x, N, 3, 16, 16), 1);
    float *dy = ssl_arena_floats(&c.act, ny);
    ssl_test_uniform(dy, ny, 6, -1, 1);
    m.backward(&c, &m, &w, ssl_tensor_2d(dy, y.shape[0], y.shape[1]));
    for (int i = 0; i < p.nseg; i++) {
        const ssl_segment *s = &p.seg[i];
        size_t nz = 0;
        for (size_t j = 0; j < s->n; j++) nz += p.grad[s->off + j] != 0.0f;
        int frozen = freeze && (i == iw || i == ib);
        if (frozen) SSL_EXPECT(nz == 0, "%s: %s has %zu non-zero gradients", what, s->name, nz);
        else SSL_EXPECT(nz > 0, "%s: %s has no gradient", what, s->name);
    }

    float *before = malloc(p.numel * sizeof(float));
    memcpy(before, p.data, p.numel * sizeof(float));
    ssl_optim_config oc = ssl_optim_config_default(kind);
    ssl_optim o;
    ssl_optim_init(&o, &c, &p, &oc);
    ssl_optim_step(&o, &c, 0.1f, 0.1f);
    for (int i = 0; i < p.nseg; i++) {
        const ssl_segment *s = &p.seg[i];
        int moved = memcmp(p.data + s->off, before + s->off, s->n * sizeof(float)) != 0;
        int frozen = freeze && (i == iw || i == ib);
        SSL_EXPECT(moved == !frozen, "%s %s: %s %s", what, kind == SSL_OPTIM_SGD ? "sgd" : "adamw", s->name,
                   moved ? "moved" : "did not move");
    }
    free(before);
    free(x);
    ssl_optim_free(&o);
    ssl_model_free(&m);
    ssl_test_bench_free(&c, &p, &b);
}

int main(void)
{
    check_rules("resnet50", 0);
    check_rules("vit_base", 0);
    check_rules("vit_base", 1);
    check_step("resnet18", 0, SSL_OPTIM_LARS);
    check_step("vit_tiny", 1, SSL_OPTIM_LARS);
    check_step("vit_tiny", 0, SSL_OPTIM_ADAMW);
    { /* a ResNet has no patch projection: the flag is an error, not silently ignored */
        ssl_params p, b;
        ssl_params_init(&p);
        ssl_params_init(&b);
        ssl_plan pl = {&p, &b};
        ssl_model_config cfg;
        ssl_model_config_default(&cfg, "resnet18");
        cfg.freeze_patch_embed = 1;
        ssl_model m;
        char err[256] = "";
        SSL_EXPECT(ssl_model_build(&m, &cfg, &pl, "", err) == -1 && strstr(err, "freeze_patch_embed"),
                   "resnet18 with freeze_patch_embed: '%s'", err);
        ssl_model_free(&m);
        ssl_params_free(&p);
        ssl_params_free(&b);
    }
    for (int freeze = 0; freeze < 2; freeze++) {
        check_freeze(freeze, SSL_OPTIM_SGD);
        check_freeze(freeze, SSL_OPTIM_ADAMW);
    }
    return ssl_test_exit();
}
