/* Finite-difference gradient checks of whole tiny models, parameter by parameter: ResNet-18 with
 * the small stem (conv, BN+ReLU, residual, downsample, avg-pool, linear) and a ViT (patch embedding,
 * CLS, position, LN, MHSA, GELU MLP). ResNet-50's 16 bottlenecks of 4-channel BN are too
 * ill-conditioned in fp32 for finite differences at a testable size (noise of the forward exceeds
 * a few percent of g.v); its gradients are compared with torchvision's in test_ref_models. Every layer's backward feeds the parameter gradients of all layers below it, so a wrong
 * input gradient anywhere shows up in the segments underneath.
 * ViTs also run at images of other sizes than planned (positions resized bicubically): learned
 * positions, whose gradient flows back through the resize (checked element by element), on a
 * non-square grid; two instances at two sizes, both forwards before both backwards (DINO's
 * multi-crop: per-call state must stay in each instance); and frozen sin-cos positions, whose
 * gradient must stay exactly zero. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/models/model.h"

#include <stdlib.h>
#include <string.h>

/* One forward of the loss: model (or an instance of it) on images (N, C, H, W), scored by r. */
typedef struct {
    ssl_model *m;
    int H, W;
    float *x, *r; /* (N, C, H, W), (N, out_dim) */
    ssl_tensor y;
} call;

typedef struct {
    ssl_ctx *c;
    ssl_params *p, *b;
    int N, C, ncalls;
    call calls[2];
} harness;

static void run_forward(harness *h, float *g)
{
    ssl_ctx_step_begin(h->c);
    ssl_weights w = {h->p->data, g, h->b->data};
    for (int i = 0; i < h->ncalls; i++) {
        call *k = &h->calls[i];
        k->y = k->m->forward(h->c, k->m, &w, ssl_tensor_4d(k->x, h->N, h->C, k->H, k->W), 1);
    }
}

/* sum over calls of r . y */
static double loss_fn(void *ud)
{
    harness *h = ud;
    run_forward(h, NULL);
    double l = 0;
    for (int i = 0; i < h->ncalls; i++)
        l += ssl_test_dot(h->calls[i].y.data, h->calls[i].r, ssl_tensor_numel(h->calls[i].y));
    return l;
}

/* Every forward first, then every backward in reverse, as a method runs its views. */
static void run_backward(harness *h)
{
    ssl_params_zero_grad(h->c, h->p);
    run_forward(h, h->p->grad);
    ssl_weights w = {h->p->data, h->p->grad, h->b->data};
    for (int i = h->ncalls - 1; i >= 0; i--) {
        call *k = &h->calls[i];
        size_t n = ssl_tensor_numel(k->y);
        float *dy = ssl_arena_floats(&h->c->act, n);
        memcpy(dy, k->r, n * sizeof(float));
        k->m->backward(h->c, k->m, &w, ssl_tensor_2d(dy, k->y.shape[0], k->y.shape[1]));
    }
}

typedef struct {
    const char *name, *arch;
    int small_stem, img, sincos; /* img: the planned image size */
    int ncalls, H[2], W[2];      /* input sizes; a second call runs on a second instance */
    int checks_per_seg, smooth;
} model_case;

static void check_model(const model_case *mc)
{
    ssl_ctx c;
    ssl_params p, b;
    ssl_plan pl = ssl_test_bench_init(&c, &p, &b);
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, mc->arch);
    cfg.small_stem = mc->small_stem;
    cfg.width = 4;
    cfg.in_chans = 2;
    cfg.img_size = mc->img;
    cfg.patch_size = 4;
    cfg.sincos_pos = mc->sincos;
    cfg.vit_dim = 12, cfg.vit_depth = 2, cfg.vit_heads = 3;
    cfg.num_classes = 3;
    ssl_model m, inst;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&m, &cfg, &pl, "", err) == 0, "%s", err);
    ssl_model_instance(&inst, &m);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    ssl_params_init_values(&p, 7);
    ssl_params_init_values(&b, 7);
    /* zero-initialised tokens/biases would hide their gradients' dependence: randomise all but
     * frozen tensors (sin-cos positions keep their table) */
    float *planned = malloc(p.numel * sizeof(float));
    memcpy(planned, p.data, p.numel * sizeof(float));
    ssl_test_uniform(p.data, p.numel, 11, -0.5f, 0.5f);
    for (int i = 0; i < p.nseg; i++)
        if (p.seg[i].flags & SSL_SEG_FROZEN)
            memcpy(p.data + p.seg[i].off, planned + p.seg[i].off, p.seg[i].n * sizeof(float));
    free(planned);
    for (int i = 0; i < p.nseg; i++)
        if (strstr(p.seg[i].name, "bn") || strstr(p.seg[i].name, "downsample.1"))
            for (size_t j = 0; j < p.seg[i].n; j++) p.data[p.seg[i].off + j] += 1.0f;

    harness h = {&c, &p, &b, 8, cfg.in_chans, mc->ncalls, {{0}}};
    for (int i = 0; i < mc->ncalls; i++) {
        call *k = &h.calls[i];
        k->m = i ? &inst : &m;
        k->H = mc->H[i], k->W = mc->W[i];
        size_t nx = (size_t)h.N * h.C * k->H * k->W, nout = (size_t)h.N * m.out_dim;
        k->x = malloc(nx * sizeof(float));
        ssl_test_uniform(k->x, nx, 5 + 10 * (uint64_t)i, -1, 1);
        k->r = malloc(nout * sizeof(float));
        ssl_test_uniform(k->r, nout, 6 + 10 * (uint64_t)i, -1, 1);
    }
    run_backward(&h);
    float *grad = malloc(p.numel * sizeof(float));
    memcpy(grad, p.grad, p.numel * sizeof(float));

    char what[200];
    int checked = 0;
    for (int i = 0; i < p.nseg; i++) {
        const ssl_segment *s = &p.seg[i];
        snprintf(what, sizeof what, "%s %s", mc->name, s->name);
        if (s->flags & SSL_SEG_FROZEN) { /* sin-cos positions: no gradient, resized or not */
            size_t nz = 0;
            for (size_t j = 0; j < s->n; j++) nz += grad[s->off + j] != 0.0f;
            SSL_EXPECT(nz == 0, "%s: frozen, but %zu non-zero gradients", what, nz);
            continue;
        }
        /* Directional check per tensor (fp32 forward, deep ReLU nets: per-element differences
         * cross kinks); 1e-2 of |g||v| still flags a gradient that is wrong in a few percent of
         * its mass. Tiny tensors (BN affine, biases) are also checked element by element, and so
         * are the positions, whose gradient at another grid is the resize's adjoint. */
        ssl_test_gradcheck_dir(what, loss_fn, &h, p.data + s->off, s->n, grad + s->off,
                               100 + (uint64_t)i, 1e-3f, 1e-2);
        int pos = strstr(s->name, "pos_embedding") != NULL;
        if ((s->n <= 64 || pos) && mc->smooth)
            ssl_test_gradcheck(what, loss_fn, &h, p.data + s->off, s->n, grad + s->off,
                               pos ? 40 : mc->checks_per_seg, 3e-3f, 2e-3, 2e-2);
        checked++;
    }
    printf("%s: checked %d parameter tensors\n", mc->name, checked);
    free(grad);
    for (int i = 0; i < mc->ncalls; i++) free(h.calls[i].x), free(h.calls[i].r);
    ssl_model_free(&inst);
    ssl_model_free(&m);
    ssl_test_bench_free(&c, &p, &b);
}

int main(void)
{
    static const model_case cases[] = {
        {"resnet18", "resnet18", 1, 16, 0, 1, {16}, {16}, 6, 0},
        {"vit_tiny", "vit_tiny", 0, 8, 0, 1, {8}, {8}, 6, 1},
        /* planned 3x3 grid, run at 2x5: positions resized down in one axis, up in the other */
        {"vit_tiny 12px at 8x20", "vit_tiny", 0, 12, 0, 1, {8}, {20}, 6, 1},
        /* multi-crop: the planned size on the model, 2x2 crops on an instance */
        {"vit_tiny 12px + 8px instance", "vit_tiny", 0, 12, 0, 2, {12, 8}, {12, 8}, 6, 1},
        {"vit_tiny sincos 12px at 16x8", "vit_tiny", 0, 12, 1, 1, {16}, {8}, 6, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_model(&cases[i]);
    return ssl_test_exit();
}
