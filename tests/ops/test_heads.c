/* MLP heads (methods/heads.c): torch Sequential names for each head shape the methods use, and
 * finite-difference checks of every parameter and input gradient, in double-free fp32, for BN-fused
 * ReLU (SimCLR, MoCo v3, BYOL), unfused ReLU without BN (MoCo v2) and GELU (DINO). Loss: sum of
 * y * r for a fixed random r, BN in training mode. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "methods/heads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ssl_ctx *c;
    ssl_mlp *h;
    ssl_weights w;
    float *x, *r;
    int rows;
} harness;

static double loss_fn(void *ud)
{
    harness *u = ud;
    ssl_ctx_step_begin(u->c);
    ssl_weights w = {u->w.p, NULL, u->w.buf};
    ssl_tensor y = ssl_mlp_forward(u->c, u->h, &w, ssl_tensor_2d(u->x, u->rows, u->h->spec.in), 1);
    return ssl_test_dot(y.data, u->r, (size_t)ssl_tensor_numel(y));
}

static void check_head(const char *what, const ssl_mlp_spec *spec, const char *const *names, int nnames)
{
    ssl_ctx c;
    ssl_params p, b;
    ssl_plan pl = ssl_test_bench_init(&c, &p, &b);
    ssl_mlp h;
    char err[256];
    SSL_ASSERTF(ssl_mlp_init(&h, &pl, "head", spec, err, sizeof err) == 0, "%s", err);
    SSL_EXPECT(p.nseg == nnames, "%s: %d parameter tensors, want %d", what, p.nseg, nnames);
    for (int i = 0; i < p.nseg && i < nnames; i++)
        SSL_EXPECT(!strcmp(p.seg[i].name, names[i]), "%s: tensor %d is %s, want %s", what, i, p.seg[i].name, names[i]);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    ssl_params_init_values(&p, 3);
    ssl_params_init_values(&b, 3);
    /* non-trivial BN affine parameters and biases, so their gradients are exercised */
    for (int i = 0; i < p.nseg; i++)
        if (p.seg[i].ndim == 1) ssl_test_uniform(p.data + p.seg[i].off, p.seg[i].n, 10 + (uint64_t)i, 0.5f, 1.5f);
    const int rows = 6;
    float *x = malloc(sizeof(float) * rows * spec->in), *r = malloc(sizeof(float) * rows * spec->out);
    ssl_test_uniform(x, (size_t)rows * spec->in, 1, -1, 1);
    ssl_test_uniform(r, (size_t)rows * spec->out, 2, -1, 1);
    harness u = {&c, &h, {p.data, p.grad, b.data}, x, r, rows};

    ssl_ctx_step_begin(&c);
    ssl_weights w = {p.data, p.grad, b.data};
    ssl_tensor y = ssl_mlp_forward(&c, &h, &w, ssl_tensor_2d(x, rows, spec->in), 1);
    ssl_tensor dy = ssl_tensor_2d(ssl_arena_floats(&c.act, (size_t)rows * spec->out), rows, spec->out);
    memcpy(dy.data, r, sizeof(float) * rows * spec->out);
    SSL_EXPECT(y.shape[0] == rows && y.shape[1] == spec->out, "%s: output shape", what);
    ssl_tensor dx = ssl_mlp_backward(&c, &h, &w, dy);
    float *gx = malloc(sizeof(float) * rows * spec->in);
    memcpy(gx, dx.data, sizeof(float) * rows * spec->in);
    float *g = malloc(sizeof(float) * p.numel);
    memcpy(g, p.grad, sizeof(float) * p.numel);
    char tag[160];
    snprintf(tag, sizeof tag, "%s d(input)", what);
    ssl_test_gradcheck_dir(tag, loss_fn, &u, x, (size_t)rows * spec->in, gx, 5, 1e-3f, 2e-3);
    float gmax = 0;
    for (size_t j = 0; j < p.numel; j++) gmax = fmaxf(gmax, fabsf(g[j]));
    for (int i = 0; i < p.nseg; i++) {
        snprintf(tag, sizeof tag, "%s d(%s)", what, p.seg[i].name);
        /* a bias right before a BatchNorm (BYOL's hidden layer) has gradient 0 in exact arithmetic:
         * BN subtracts any per-channel constant; fp32 leaves noise, so check it is noise */
        int lin = -1;
        for (int l = 0; l < spec->layers; l++)
            if (h.lin[l].bias && h.lin[l].b == p.seg[i].off && h.has_bn[l]) lin = l;
        if (lin >= 0) {
            float mx = 0;
            for (size_t j = 0; j < p.seg[i].n; j++) mx = fmaxf(mx, fabsf(g[p.seg[i].off + j]));
            SSL_EXPECT(mx <= 1e-5f * gmax, "%s: %g, not ~0", tag, mx);
            continue;
        }
        ssl_test_gradcheck_dir(tag, loss_fn, &u, p.data + p.seg[i].off, p.seg[i].n, g + p.seg[i].off, 7 + (uint64_t)i,
                               1e-3f, 2e-3);
    }
    free(g);
    free(gx);
    free(x);
    free(r);
    ssl_test_bench_free(&c, &p, &b);
}

int main(void)
{
    /* SimCLR / MoCo v3 projector: Linear(no bias) BN ReLU Linear(no bias) BN(no affine) */
    ssl_mlp_spec simclr = {.layers = 2, .in = 5, .hidden = 7, .out = 4, .bn = 1, .last_bn = SSL_LAST_BN_PLAIN,
                           .act = SSL_ACT_RELU};
    const char *simclr_names[] = {"head.0.weight", "head.1.weight", "head.1.bias", "head.3.weight"};
    check_head("simclr projector", &simclr, simclr_names, 4);
    /* MoCo v2: Linear ReLU Linear, with biases, no BN */
    ssl_mlp_spec moco2 = {.layers = 2, .in = 5, .hidden = 7, .out = 4, .bias = 1, .last_bias = 1, .act = SSL_ACT_RELU};
    const char *moco2_names[] = {"head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"};
    check_head("moco v2 projector", &moco2, moco2_names, 4);
    /* BYOL: Linear(bias) BN ReLU Linear(no bias) */
    ssl_mlp_spec byol = {.layers = 2, .in = 5, .hidden = 7, .out = 4, .bias = 1, .bn = 1, .act = SSL_ACT_RELU};
    const char *byol_names[] = {"head.0.weight", "head.0.bias", "head.1.weight", "head.1.bias", "head.3.weight"};
    check_head("byol projector", &byol, byol_names, 5);
    /* DINO trunk: Linear GELU Linear GELU Linear, biases; and a 3-layer BN head with an affine last BN */
    ssl_mlp_spec dino = {.layers = 3, .in = 5, .hidden = 7, .out = 4, .bias = 1, .last_bias = 1, .act = SSL_ACT_GELU};
    const char *dino_names[] = {"head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias", "head.4.weight",
                                "head.4.bias"};
    check_head("dino trunk", &dino, dino_names, 6);
    ssl_mlp_spec affine = {.layers = 3, .in = 5, .hidden = 7, .out = 4, .bn = 1, .last_bn = SSL_LAST_BN_AFFINE,
                           .act = SSL_ACT_RELU};
    const char *affine_names[] = {"head.0.weight", "head.1.weight", "head.1.bias", "head.3.weight",
                                  "head.4.weight", "head.4.bias", "head.6.weight", "head.7.weight", "head.7.bias"};
    check_head("affine last BN", &affine, affine_names, 9);
    ssl_mlp h;
    ssl_params p, b;
    ssl_params_init(&p);
    ssl_params_init(&b);
    ssl_plan pl = {&p, &b};
    char err[256];
    ssl_mlp_spec bad = {.layers = SSL_MLP_MAX + 1, .in = 3, .hidden = 3, .out = 3};
    SSL_EXPECT(ssl_mlp_init(&h, &pl, "projector", &bad, err, sizeof err) == -1 && strstr(err, "projector"),
               "too many layers refused: %s", err);
    ssl_params_free(&p);
    ssl_params_free(&b);
    return ssl_test_exit();
}
