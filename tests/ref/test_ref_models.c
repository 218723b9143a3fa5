/* Whole tiny models against torchvision (fixtures from make_fixtures_models.py): our builders load
 * torchvision's parameters by state_dict name (so the names must match), then the train-mode
 * output, every parameter gradient, the BN running-stat update and the eval-mode output must agree. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/models/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check(const char *file, ssl_model_config *cfg, int N)
{
    ssl_fixture *f = ssl_fixture_load(file);
    if (!f) {
        ssl_test_failures++;
        return;
    }
    ssl_ctx c;
    ssl_params p, b;
    ssl_plan pl = ssl_test_bench_init(&c, &p, &b);
    ssl_model m;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&m, cfg, &pl, "", err) == 0, "%s", err);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    ssl_fixture_load_segments(f, &p, "param");
    ssl_fixture_load_segments(f, &b, "buffer");
    /* every torchvision parameter must exist on our side too */
    size_t torch_count = 0;
    for (int i = 0; i < p.nseg; i++) torch_count += p.seg[i].n;
    SSL_EXPECT(torch_count == p.count, "%s: count mismatch", file);

    size_t nx, ny, nr;
    const float *x = ssl_fixture_get(f, "x", &nx);
    const float *want_y = ssl_fixture_get(f, "y", &ny);
    const float *r = ssl_fixture_get(f, "r", &nr);
    float *xin = malloc(nx * sizeof(float)), *dy = malloc(nr * sizeof(float));
    memcpy(xin, x, nx * sizeof(float));
    memcpy(dy, r, nr * sizeof(float));
    int S = cfg->img_size;
    ssl_weights w = {p.data, p.grad, b.data};
    ssl_ctx_step_begin(&c);
    ssl_tensor y = m.forward(&c, &m, &w, ssl_tensor_4d(xin, N, cfg->in_chans, S, S), 1);
    char what[200];
    snprintf(what, sizeof what, "%s train output", file);
    /* fp32 with different summation orders (oneDNN vs torch): ~1e-5 relative per layer */
    float ys = ssl_test_max_abs(want_y, ny);
    ssl_test_close(what, y.data, want_y, ny, 2e-4 * ys, 1e-3);
    m.backward(&c, &m, &w, ssl_tensor_2d(dy, y.shape[0], y.shape[1]));
    for (int i = 0; i < p.nseg; i++) {
        char key[160];
        snprintf(key, sizeof key, "grad/%s", p.seg[i].name);
        const float *g = ssl_fixture_get(f, key, NULL);
        snprintf(what, sizeof what, "%s %s", file, key);
        /* BN renormalises each layer, so gradients through a deep stack carry more rounding than
         * outputs; tolerance relative to the tensor's largest gradient. */
        ssl_test_close(what, p.grad + p.seg[i].off, g, p.seg[i].n, 2e-3 * ssl_test_max_abs(g, p.seg[i].n), 2e-3);
    }
    for (int i = 0; i < b.nseg; i++) {
        char key[160];
        snprintf(key, sizeof key, "buffer_after/%s", b.seg[i].name);
        snprintf(what, sizeof what, "%s %s", file, key);
        ssl_test_close(what, b.data + b.seg[i].off, ssl_fixture_get(f, key, NULL), b.seg[i].n, 1e-5, 1e-4);
    }
    ssl_ctx_step_begin(&c);
    w.g = NULL;
    y = m.forward(&c, &m, &w, ssl_tensor_4d(xin, N, cfg->in_chans, S, S), 0);
    const float *want_eval = ssl_fixture_get(f, "y_eval", &ny);
    snprintf(what, sizeof what, "%s eval output", file);
    ssl_test_close(what, y.data, want_eval, ny, 2e-4 * ssl_test_max_abs(want_eval, ny), 1e-3);
    printf("%s: %d parameter tensors and %d buffers compared\n", file, p.nseg, b.nseg);
    free(xin);
    free(dy);
    ssl_model_free(&m);
    ssl_test_bench_free(&c, &p, &b);
    ssl_fixture_free(f);
}

int main(void)
{
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, "resnet18");
    cfg.width = 4, cfg.in_chans = 2, cfg.num_classes = 3, cfg.small_stem = 1, cfg.img_size = 8;
    check("resnet18_small.bin", &cfg, 4);
    ssl_model_config_default(&cfg, "resnet50");
    cfg.width = 4, cfg.in_chans = 2, cfg.num_classes = 3, cfg.img_size = 64;
    check("resnet50_imagenet.bin", &cfg, 4);
    ssl_model_config_default(&cfg, "vit_tiny");
    cfg.in_chans = 2, cfg.num_classes = 3, cfg.img_size = 8, cfg.patch_size = 4;
    cfg.vit_dim = 16, cfg.vit_depth = 2, cfg.vit_heads = 2;
    check("vit_tiny.bin", &cfg, 3);
    return ssl_test_exit();
}
