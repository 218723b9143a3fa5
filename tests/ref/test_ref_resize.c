/* Bicubic position-embedding resize against PyTorch (fixtures from make_fixtures_resize.py):
 * the op against F.interpolate(mode="bicubic", align_corners=False) and its backward against
 * torch's, for down-, up- and non-square resizes; then a tiny torchvision ViT planned for 12 px
 * images run at 16x24 px with its learned positions resized: the output and every parameter
 * gradient, pos_embedding's through the resize's adjoint. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/models/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

/* One case of resize.bin: ours against torch's forward and backward. torch computes coordinates
 * and weights in float (the polynomials cancel; its weights at t = 0.5 are not even symmetric, a
 * sign of an FMA-contracted coordinate), so they are off by up to ~5e-7 and its outputs by ~1e-6
 * from the exact values, which ours match to a few ulps (test_ops_resize). 5e-6 of the largest
 * value leaves margin for that, while a wrong A (-0.5) or a half-pixel shift is >= 1e-3 off. */
static void check_op(ssl_ctx *c, const ssl_fixture *f, int hi, int wi, int ho, int wo, int D)
{
    char key[64], what[96];
    const size_t ni = (size_t)hi * wi * D, no = (size_t)ho * wo * D;
#define GET(name)                                                                          \
    (snprintf(key, sizeof key, "%dx%d_%dx%d/" name, hi, wi, ho, wo), ssl_fixture_get(f, key, NULL))
    const float *x = GET("x"), *want_y = GET("y"), *r = GET("r"), *want_dx = GET("dx");
#undef GET
    float *y = malloc(no * sizeof(float)), *dx = calloc(ni, sizeof(float));
    c->be->resize_bicubic_fwd(c, hi, wi, ho, wo, D, x, y);
    c->be->resize_bicubic_bwd(c, hi, wi, ho, wo, D, r, dx);
    snprintf(what, sizeof what, "bicubic %dx%d -> %dx%d (D=%d) forward", hi, wi, ho, wo, D);
    ssl_test_close(what, y, want_y, no, 5e-6 * fmax(1.0, ssl_test_max_abs(want_y, no)), 0);
    printf("%s: max |ours - torch| %.3g\n", what, max_diff(y, want_y, no));
    snprintf(what, sizeof what, "bicubic %dx%d -> %dx%d (D=%d) backward", hi, wi, ho, wo, D);
    ssl_test_close(what, dx, want_dx, ni, 5e-6 * fmax(1.0, ssl_test_max_abs(want_dx, ni)), 0);
    printf("%s: max |ours - torch| %.3g\n", what, max_diff(dx, want_dx, ni));
    free(y), free(dx);
}

static void check_ops(void)
{
    ssl_fixture *f = ssl_fixture_load("resize.bin");
    if (!f) {
        ssl_test_failures++;
        return;
    }
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    check_op(&c, f, 7, 7, 4, 4, 8);
    check_op(&c, f, 4, 4, 7, 7, 8);
    check_op(&c, f, 7, 7, 3, 5, 8);
    check_op(&c, f, 3, 5, 8, 6, 4);
    check_op(&c, f, 14, 14, 6, 6, 32);
    ssl_ctx_free(&c);
    ssl_fixture_free(f);
}

static void check_vit(void)
{
    ssl_fixture *f = ssl_fixture_load("vit_resized.bin");
    if (!f) {
        ssl_test_failures++;
        return;
    }
    ssl_ctx c;
    ssl_params p, b;
    ssl_plan pl = ssl_test_bench_init(&c, &p, &b);
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, "vit_tiny");
    cfg.in_chans = 2, cfg.num_classes = 3, cfg.img_size = 12, cfg.patch_size = 4;
    cfg.vit_dim = 16, cfg.vit_depth = 2, cfg.vit_heads = 2;
    ssl_model m;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&m, &cfg, &pl, "", err) == 0, "%s", err);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    ssl_fixture_load_segments(f, &p, "param");

    const int N = 3, H = 16, W = 24;
    size_t nx, ny, nr;
    const float *x = ssl_fixture_get(f, "x", &nx), *want_y = ssl_fixture_get(f, "y", &ny);
    const float *r = ssl_fixture_get(f, "r", &nr);
    SSL_ASSERT(nx == (size_t)N * cfg.in_chans * H * W && nr == ny);
    float *xin = malloc(nx * sizeof(float)), *dy = malloc(nr * sizeof(float));
    memcpy(xin, x, nx * sizeof(float));
    memcpy(dy, r, nr * sizeof(float));
    ssl_weights w = {p.data, p.grad, b.data};
    ssl_params_zero_grad(&c, &p);
    ssl_ctx_step_begin(&c);
    ssl_tensor y = m.forward(&c, &m, &w, ssl_tensor_4d(xin, N, cfg.in_chans, H, W), 1);
    SSL_EXPECT(y.shape[0] == N && (size_t)y.shape[1] * N == ny, "vit_resized: output shape");
    /* fp32 with other summation orders (GEMMs) than torch: as test_ref_models' ViT */
    ssl_test_close("vit_resized output", y.data, want_y, ny, 2e-4 * ssl_test_max_abs(want_y, ny), 1e-3);
    printf("vit_resized output: max |ours - torch| %.3g\n", max_diff(y.data, want_y, ny));
    m.backward(&c, &m, &w, ssl_tensor_2d(dy, y.shape[0], y.shape[1]));
    for (int i = 0; i < p.nseg; i++) {
        char key[160], what[200];
        snprintf(key, sizeof key, "grad/%s", p.seg[i].name);
        const float *g = ssl_fixture_get(f, key, NULL);
        snprintf(what, sizeof what, "vit_resized %s", key);
        ssl_test_close(what, p.grad + p.seg[i].off, g, p.seg[i].n, 2e-3 * ssl_test_max_abs(g, p.seg[i].n), 2e-3);
        if (strstr(p.seg[i].name, "pos_embedding"))
            printf("%s: max |ours - torch| %.3g (max |g| %.3g)\n", what,
                   max_diff(p.grad + p.seg[i].off, g, p.seg[i].n), (double)ssl_test_max_abs(g, p.seg[i].n));
    }
    free(xin);
    free(dy);
    ssl_model_free(&m);
    ssl_test_bench_free(&c, &p, &b);
    ssl_fixture_free(f);
}

int main(void)
{
    check_ops();
    check_vit();
    return ssl_test_exit();
}
