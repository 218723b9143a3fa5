/* Model instances (ssl_model_instance): two views through one student with separate BatchNorm
 * batches, both forwards before either backward, plus an EMA-teacher-like forward on other weights in
 * between, must give the gradients, outputs and BN running statistics of running the views one after
 * the other. The same interleaving on ONE model must not (the saved state of view 1 is overwritten),
 * which shows the comparison can fail. Small ResNet-18 (small stem, width 8) and a 2-block ViT-tiny
 * on 16x16 images; the instances are freed before and after their source (ASan build checks that). */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/models/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The re-entrant schedule adds g(view 2) into the gradient buffer before g(view 1). Each dW GEMM
 * runs with beta = 1; one that adds its whole product to C at once makes that order irrelevant
 * (0 + a + b == 0 + b + a in fp32: the CPU backend measures 0 difference), but a GEMM blocked over K
 * (split-K, oneDNN/cuBLAS kernels) adds partial products into C one by one, so the two orders then
 * agree to a few ulps of the largest partial sum, not bit for bit. 1e-5 of a segment's max |g| is
 * ~100 ulps: far above that rounding, far below a gradient from the wrong view's saved state (~1). */
#define GRAD_RTOL 1e-5

enum { NB = 4 }; /* images per view */

typedef struct {
    ssl_ctx c;
    ssl_params p, b;
    ssl_model m;
    float *x[2], *dy[2];   /* views and their output gradients */
    size_t nx, ny;
    float *b0;             /* initial BN buffers */
    float *tp, *tb;        /* "teacher" weights and buffers: same layout, other values */
} fixture;

/* Largest per-segment max|got - want| / max|want| (exact zeros must stay exact); *worst names it. */
static double seg_rel_diff(const ssl_params *p, const float *got, const float *want, const char **worst)
{
    double r = 0.0;
    *worst = "bit-identical";
    for (int i = 0; i < p->nseg; i++) {
        const ssl_segment *s = &p->seg[i];
        double d = 0.0, a = 0.0;
        for (size_t j = 0; j < s->n; j++) {
            d = fmax(d, fabs((double)got[s->off + j] - want[s->off + j]));
            a = fmax(a, fabs((double)want[s->off + j]));
        }
        double q = a > 0.0 ? d / a : (d > 0.0 ? INFINITY : 0.0);
        if (q > r) r = q, *worst = s->name;
    }
    return r;
}

static void setup(fixture *f, const ssl_model_config *cfg)
{
    memset(f, 0, sizeof *f);
    ssl_ctx_init(&f->c, "cpu");
    ssl_params_init(&f->p);
    ssl_params_init(&f->b);
    ssl_plan pl = {&f->p, &f->b};
    char err[256];
    SSL_ASSERTF(ssl_model_build(&f->m, cfg, &pl, "", err) == 0, "%s: %s", cfg->arch, err);
    ssl_params_alloc(&f->p, f->c.be, 1);
    ssl_params_alloc(&f->b, f->c.be, 0);
    ssl_params_init_values(&f->p, 7);
    ssl_params_init_values(&f->b, 7);
    /* zero-initialised biases / tokens / BN betas would make some gradient terms vanish */
    for (size_t i = 0; i < f->p.numel; i++) f->p.data[i] += 0.05f * sinf((float)i);
    f->b0 = malloc(f->b.numel * sizeof(float) + 1);
    memcpy(f->b0, f->b.data, f->b.numel * sizeof(float));
    f->nx = (size_t)NB * cfg->in_chans * cfg->img_size * cfg->img_size;
    f->ny = (size_t)NB * f->m.out_dim;
    for (int v = 0; v < 2; v++) {
        f->x[v] = malloc(f->nx * sizeof(float));
        f->dy[v] = malloc(f->ny * sizeof(float));
        ssl_test_uniform(f->x[v], f->nx, 10 + (uint64_t)v, -1, 1);
        ssl_test_uniform(f->dy[v], f->ny, 20 + (uint64_t)v, -1, 1);
    }
    f->tp = malloc(f->p.numel * sizeof(float));
    f->tb = malloc(f->b.numel * sizeof(float) + 1);
    for (size_t i = 0; i < f->p.numel; i++) f->tp[i] = 0.9f * f->p.data[i] + 0.01f;
    memcpy(f->tb, f->b0, f->b.numel * sizeof(float));
}

static void teardown(fixture *f)
{
    for (int v = 0; v < 2; v++) free(f->x[v]), free(f->dy[v]);
    free(f->b0), free(f->tp), free(f->tb);
    ssl_model_free(&f->m);
    ssl_params_free(&f->p);
    ssl_params_free(&f->b);
    ssl_ctx_free(&f->c);
}

/* Same start for every schedule: zero gradients, initial BN buffers, empty arena. */
static void reset(fixture *f)
{
    ssl_params_zero_grad(&f->c, &f->p);
    memcpy(f->b.data, f->b0, f->b.numel * sizeof(float));
    ssl_ctx_step_begin(&f->c);
}

static ssl_weights student(fixture *f) { return (ssl_weights){f->p.data, f->p.grad, f->b.data}; }

static ssl_tensor fwd(fixture *f, ssl_model *m, int v)
{
    ssl_weights w = student(f);
    const ssl_model_config *k = &f->m.cfg;
    return m->forward(&f->c, m, &w, ssl_tensor_4d(f->x[v], NB, k->in_chans, k->img_size, k->img_size), 1);
}

/* dy goes through an arena copy: backward may overwrite it in place. */
static void bwd(fixture *f, ssl_model *m, ssl_tensor y, int v)
{
    float *d = ssl_arena_floats(&f->c.act, f->ny);
    memcpy(d, f->dy[v], f->ny * sizeof(float));
    ssl_weights w = student(f);
    m->backward(&f->c, m, &w, ssl_tensor_2d(d, y.shape[0], y.shape[1]));
}

/* The teacher's use: forward only, other weights and buffers, gradients off. */
static void teacher_fwd(fixture *f, ssl_model *t, int v)
{
    ssl_weights w = {f->tp, NULL, f->tb};
    const ssl_model_config *k = &f->m.cfg;
    t->forward(&f->c, t, &w, ssl_tensor_4d(f->x[v], NB, k->in_chans, k->img_size, k->img_size), 1);
}

static void check_arch(const ssl_model_config *cfg)
{
    const char *arch = cfg->arch;
    fixture f;
    setup(&f, cfg);
    const size_t gbytes = f.p.numel * sizeof(float), bbytes = f.b.numel * sizeof(float) + 1;
    float *gref = malloc(gbytes), *bref = malloc(bbytes), *yref[2];
    for (int v = 0; v < 2; v++) yref[v] = malloc(f.ny * sizeof(float));

    /* Reference: view 1 forward + backward, then view 2, on the source model itself. */
    reset(&f);
    for (int v = 0; v < 2; v++) {
        ssl_tensor y = fwd(&f, &f.m, v);
        memcpy(yref[v], y.data, f.ny * sizeof(float));
        bwd(&f, &f.m, y, v);
    }
    memcpy(gref, f.p.grad, gbytes);
    memcpy(bref, f.b.data, f.b.numel * sizeof(float));

    /* Re-entrant: A(x1), teacher(x1), B(x2) forward; then B, A backward (reverse order). */
    ssl_model A, B, T;
    ssl_model_instance(&A, &f.m);
    ssl_model_instance(&B, &f.m);
    ssl_model_instance(&T, &A); /* an instance of an instance is one of the source */
    reset(&f);
    ssl_tensor ya = fwd(&f, &A, 0);
    teacher_fwd(&f, &T, 0);
    ssl_tensor yb = fwd(&f, &B, 1);
    SSL_EXPECT(!memcmp(ya.data, yref[0], f.ny * sizeof(float)), "%s: instance A's output differs", arch);
    SSL_EXPECT(!memcmp(yb.data, yref[1], f.ny * sizeof(float)), "%s: instance B's output differs", arch);
    bwd(&f, &B, yb, 1);
    bwd(&f, &A, ya, 0);
    const char *worst;
    double dg = seg_rel_diff(&f.p, f.p.grad, gref, &worst);
    printf("%s instances: grads max rel diff %.3g (%s)\n", arch, dg, worst);
    SSL_EXPECT(dg <= GRAD_RTOL, "%s: instance grads differ from sequential ones by %.3g of max|g| (%s)", arch,
               dg, worst);
    if (f.b.nseg) {
        double db = seg_rel_diff(&f.b, f.b.data, bref, &worst);
        printf("%s instances: BN running buffers max rel diff %.3g (%s)\n", arch, db, worst);
        SSL_EXPECT(db <= GRAD_RTOL, "%s: BN running buffers differ by %.3g (%s)", arch, db, worst);
    }
    ssl_model_free(&A); /* before the source; B and T after it */

    /* Without instances the same schedule computes view 1's gradient from view 2's saved state. */
    reset(&f);
    ssl_tensor y1 = fwd(&f, &f.m, 0);
    ssl_tensor y2 = fwd(&f, &f.m, 1);
    bwd(&f, &f.m, y2, 1);
    bwd(&f, &f.m, y1, 0);
    double dn = seg_rel_diff(&f.p, f.p.grad, gref, &worst);
    printf("%s one model, interleaved: grads max rel diff %.3g (%s)\n", arch, dn, worst);
    SSL_EXPECT(dn > GRAD_RTOL, "%s: interleaving on one model went unnoticed (diff %.3g)", arch, dn);

    free(gref), free(bref), free(yref[0]), free(yref[1]);
    teardown(&f);
    ssl_model_free(&B);
    ssl_model_free(&T);
}

int main(void)
{
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, "resnet18");
    cfg.small_stem = 1, cfg.width = 8, cfg.img_size = 16;
    check_arch(&cfg);

    ssl_model_config_default(&cfg, "vit_tiny");
    cfg.img_size = 16, cfg.patch_size = 4, cfg.vit_dim = 48, cfg.vit_depth = 2, cfg.vit_heads = 3;
    check_arch(&cfg);
    cfg.sincos_pos = 1; /* the instance shares the source's sin-cos table: freed once */
    check_arch(&cfg);
    return ssl_test_exit();
}
