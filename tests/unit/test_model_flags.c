/* The optimizer flags of real models, tensor by tensor: ResNet-50, ViT-B/16 with learned and with
 * sin-cos positions, each with SimCLR's projector. Every 1-D tensor (biases, BN / LayerNorm affine)
 * and the ViT tokens (class_token, pos_embedding) are excluded from weight decay and from LARS/LAMB
 * adaptation; every conv / linear weight gets both; sin-cos positions are frozen, learned ones are
 * not. Then the behaviour through the real optimizer on a small ResNet and ViT: one LARS/AdamW step
 * with zero gradients and weight decay moves exactly the decayed tensors and nothing frozen. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/models/model.h"
#include "framework/optim/optim.h"
#include "methods/method.h"

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
    ssl_method_config mc = {"simclr", 0.2f, 64, 32, 2, 1};
    SSL_ASSERTF(ssl_method_init(meth, &mc, m, &pl, err) == 0, "%s", err);
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
    ssl_params_free(&p);
    ssl_params_free(&b);
    ssl_ctx_free(&c);
}

int main(void)
{
    check_rules("resnet50", 0);
    check_rules("vit_base", 0);
    check_rules("vit_base", 1);
    check_step("resnet18", 0, SSL_OPTIM_LARS);
    check_step("vit_tiny", 1, SSL_OPTIM_LARS);
    check_step("vit_tiny", 0, SSL_OPTIM_ADAMW);
    return ssl_test_exit();
}
