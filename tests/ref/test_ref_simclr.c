/* One SimCLR step (tiny ResNet-18 + projector + NT-Xent) against PyTorch
 * (make_fixtures_simclr.py): loss and every parameter gradient, parameters loaded by name. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "methods/method.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    ssl_fixture *f = ssl_fixture_load("simclr_step.bin");
    if (!f) return 1;
    ssl_ctx c;
    ssl_params p, b;
    ssl_plan pl = ssl_test_bench_init(&c, &p, &b);
    ssl_model_config mc;
    ssl_model_config_default(&mc, "resnet18");
    mc.width = 4, mc.in_chans = 1, mc.small_stem = 1, mc.img_size = 12;
    ssl_model enc;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&enc, &mc, &pl, "", err) == 0, "%s", err);
    static ssl_config cfg; /* outlives the method */
    ssl_config_defaults(&cfg);
    cfg.simclr.temperature = ssl_fixture_get(f, "tau", NULL)[0];
    cfg.simclr.proj_hidden = 16, cfg.simclr.proj_dim = 8, cfg.simclr.proj_layers = 2;
    cfg.model.img_size = 12;
    ssl_method m;
    SSL_ASSERTF(ssl_method_init(&m, &cfg, &enc, &pl, err, sizeof err) == 0, "%s", err);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    ssl_params_init_values(&b, 0);
    for (int i = 0; i < p.nseg; i++) {
        char key[160];
        snprintf(key, sizeof key, "param/%s", p.seg[i].name);
        SSL_EXPECT(ssl_fixture_has(f, key), "PyTorch model has no %s", key);
        if (!ssl_fixture_has(f, key)) continue;
        size_t n;
        const float *v = ssl_fixture_get(f, key, &n);
        SSL_ASSERT(n == p.seg[i].n);
        memcpy(p.data + p.seg[i].off, v, n * sizeof(float));
    }
    size_t nx;
    const float *x = ssl_fixture_get(f, "x", &nx);
    float *views = malloc(nx * sizeof(float));
    memcpy(views, x, nx * sizeof(float));
    ssl_weights w = {p.data, p.grad, b.data};
    ssl_ctx_step_begin(&c);
    ssl_views v = {.n = 6, .ngroups = 1, .group = {ssl_tensor_4d(views, 12, 1, 12, 12)}};
    ssl_progress pr = {.total_steps = 1, .steps_per_epoch = 1, .accum = 1};
    ssl_scalars mon = {0};
    double loss = m.vt->step(&m, &c, &w, &v, &pr, &mon);
    SSL_EXPECT(mon.n == 1 && !strcmp(mon.name[0], "emb_std") && mon.v[0] > 0 && mon.v[0] < 1, "monitor emb_std");
    double want = ssl_fixture_get(f, "loss", NULL)[0];
    SSL_EXPECT(fabs(loss - want) <= 1e-5 * fabs(want), "loss %.7f, PyTorch %.7f", loss, want);
    for (int i = 0; i < p.nseg; i++) {
        char key[160];
        snprintf(key, sizeof key, "grad/%s", p.seg[i].name);
        const float *g = ssl_fixture_get(f, key, NULL);
        float mx = 0;
        for (size_t j = 0; j < p.seg[i].n; j++) mx = fmaxf(mx, fabsf(g[j]));
        /* fp32, different reduction orders: relative to the tensor's largest gradient */
        ssl_test_close(key, p.grad + p.seg[i].off, g, p.seg[i].n, 1e-3 * mx + 1e-7, 1e-3);
    }
    printf("simclr step: loss %.6f (PyTorch %.6f), %d gradients compared\n", loss, want, p.nseg);
    free(views);
    ssl_method_free(&m);
    ssl_model_free(&enc);
    ssl_test_bench_free(&c, &p, &b);
    ssl_fixture_free(f);
    return ssl_test_exit();
}
