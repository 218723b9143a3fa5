/* Finite-difference gradient checks of whole tiny models, parameter by parameter: ResNet-18 with
 * the small stem (conv, BN+ReLU, residual, downsample, avg-pool, linear) and a ViT (patch embedding,
 * CLS, position, LN, MHSA, GELU MLP). ResNet-50's 16 bottlenecks of 4-channel BN are too
 * ill-conditioned in fp32 for finite differences at a testable size (noise of the forward exceeds
 * a few percent of g.v); its gradients are compared with torchvision's in test_ref_models. Every layer's backward feeds the parameter gradients of all layers below it, so a wrong
 * input gradient anywhere shows up in the segments underneath. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/models/model.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    ssl_ctx *c;
    ssl_model *m;
    ssl_params *p, *b;
    float *x;
    int N, C, S;
    float *r;
} harness;

static ssl_tensor run_forward(harness *h, float *g)
{
    ssl_ctx_step_begin(h->c);
    ssl_weights w = {h->p->data, g, h->b->data};
    return h->m->forward(h->c, h->m, &w, ssl_tensor_4d(h->x, h->N, h->C, h->S, h->S), 1);
}

static double loss_fn(void *ud)
{
    harness *h = ud;
    ssl_tensor y = run_forward(h, NULL);
    return ssl_test_dot(y.data, h->r, ssl_tensor_numel(y));
}

static void check_model(const char *arch, int small_stem, int S, int checks_per_seg, int smooth)
{
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    ssl_params p, b;
    ssl_params_init(&p);
    ssl_params_init(&b);
    ssl_plan pl = {&p, &b};
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, arch);
    cfg.small_stem = small_stem;
    cfg.width = 4;
    cfg.in_chans = 2;
    cfg.img_size = S;
    cfg.patch_size = 4;
    cfg.vit_dim = 12, cfg.vit_depth = 2, cfg.vit_heads = 3;
    cfg.num_classes = 3;
    ssl_model m;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&m, &cfg, &pl, "", err) == 0, "%s", err);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    ssl_params_init_values(&p, 7);
    ssl_params_init_values(&b, 7);
    /* zero-initialised tokens/biases would hide their gradients' dependence: randomise all */
    ssl_test_uniform(p.data, p.numel, 11, -0.5f, 0.5f);
    for (int i = 0; i < p.nseg; i++)
        if (strstr(p.seg[i].name, "bn") || strstr(p.seg[i].name, "downsample.1"))
            for (size_t j = 0; j < p.seg[i].n; j++) p.data[p.seg[i].off + j] += 1.0f;

    harness h = {&c, &m, &p, &b, NULL, 8, cfg.in_chans, S, NULL};
    size_t nx = (size_t)h.N * h.C * S * S;
    h.x = malloc(nx * sizeof(float));
    ssl_test_uniform(h.x, nx, 5, -1, 1);
    size_t nout = (size_t)h.N * m.out_dim;
    h.r = malloc(nout * sizeof(float));
    ssl_test_uniform(h.r, nout, 6, -1, 1);

    ssl_params_zero_grad(&c, &p);
    ssl_tensor y = run_forward(&h, p.grad);
    float *dy = ssl_arena_floats(&c.act, nout);
    memcpy(dy, h.r, nout * sizeof(float));
    ssl_weights w = {p.data, p.grad, b.data};
    m.backward(&c, &m, &w, ssl_tensor_2d(dy, y.shape[0], y.shape[1]));
    float *grad = malloc(p.numel * sizeof(float));
    memcpy(grad, p.grad, p.numel * sizeof(float));

    char what[200];
    int checked = 0;
    for (int i = 0; i < p.nseg; i++) {
        snprintf(what, sizeof what, "%s %s", arch, p.seg[i].name);
        /* Directional check per tensor (fp32 forward, deep ReLU nets: per-element differences
         * cross kinks); 1e-2 of |g||v| still flags a gradient that is wrong in a few percent of
         * its mass. Tiny tensors (BN affine, biases) are also checked element by element. */
        ssl_test_gradcheck_dir(what, loss_fn, &h, p.data + p.seg[i].off, p.seg[i].n,
                               grad + p.seg[i].off, 100 + (uint64_t)i, 1e-3f, 1e-2);
        if (p.seg[i].n <= 64 && smooth)
            ssl_test_gradcheck(what, loss_fn, &h, p.data + p.seg[i].off, p.seg[i].n,
                               grad + p.seg[i].off, checks_per_seg, 3e-3f, 2e-3, 2e-2);
        checked++;
    }
    printf("%s: checked %d parameter tensors\n", arch, checked);
    free(grad);
    free(h.x);
    free(h.r);
    ssl_model_free(&m);
    ssl_params_free(&p);
    ssl_params_free(&b);
    ssl_ctx_free(&c);
}

int main(void)
{
    check_model("resnet18", 1, 16, 6, 0);
    check_model("vit_tiny", 0, 8, 6, 1);
    return ssl_test_exit();
}
