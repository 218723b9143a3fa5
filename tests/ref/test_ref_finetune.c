/* Fine-tuning against PyTorch (tests/ref/make_fixtures_finetune.py, written from MAE's fine-tuning
 * recipe): the first two steps of a tiny ViT with a linear head, label-smoothed cross-entropy and
 * AdamW with layer-wise lr decay, driven through the pieces the fine-tuning trainer uses
 * (ssl_finetune_layer_scales -> the optimizer's seg_lr_scale, ssl_finetune_loss, the model's
 * forward/backward, ssl_optim_step). Checked: every tensor's lr scale; each step's loss, every
 * gradient, and every parameter after each step. */
#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/optim/optim.h"
#include "framework/train/finetune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { H_N, H_IMG, H_PATCH, H_DEPTH, H_DIM, H_HEADS, H_K, H_SMOOTH, H_DECAY, H_WD, H_LR0, H_LR1 };

/* Parameters after a step against PyTorch's. AdamW's first steps move each weight by about
 * lr x scale x sign(g), so a gradient within fp32 noise of 0 can flip that sign: 1e-3 of each tensor's
 * largest value (the lr is 1e-2). The key third of in_proj_bias has an exactly-zero gradient (softmax
 * is shift-invariant per query), i.e. fp32 noise on both sides that Adam turns into +-lr steps: there
 * only a bound holds: apart by at most 1.5 x scale x the lrs so far (an Adam step of a
 * noise gradient is about lr x scale). */
static void compare_after(const ssl_fixture *f, const char *prefix, const ssl_params *p, const float *scale, float lr_sum)
{
    for (int i = 0; i < p->nseg; i++) {
        const ssl_segment *g = &p->seg[i];
        char key[200];
        snprintf(key, sizeof key, "%s%s", prefix, g->name);
        size_t n;
        const float *want = ssl_fixture_get(f, key, &n), *got = p->data + g->off;
        SSL_ASSERT(n == g->n);
        const size_t l = strlen(g->name), k = n / 3;
        if (l > 12 && !strcmp(g->name + l - 12, "in_proj_bias")) {
            ssl_test_close(key, got, want, k, 1e-3 * ssl_test_max_abs(want, k) + 1e-6, 0); /* query */
            ssl_test_close(key, got + 2 * k, want + 2 * k, k, 1e-3 * ssl_test_max_abs(want + 2 * k, k) + 1e-6, 0);
            for (size_t j = k; j < 2 * k; j++) /* key: noise */
                SSL_EXPECT(fabsf(got[j] - want[j]) <= 1.5f * lr_sum * scale[i], "%s[%zu]: %g vs %g beyond the Adam steps' bound",
                           key, j, got[j], want[j]);
        } else {
            ssl_test_close(key, got, want, n, 1e-3 * ssl_test_max_abs(want, n) + 1e-6, 0);
        }
    }
}

int main(void)
{
    ssl_fixture *f = ssl_fixture_load("finetune.bin");
    if (!f) return 1;
    const float *h = ssl_fixture_get(f, "hyper", NULL);
    const int N = (int)h[H_N], S = (int)h[H_IMG], K = (int)h[H_K];
    ssl_ctx c;
    ssl_params p, b;
    ssl_plan pl = ssl_test_bench_init(&c, &p, &b);
    ssl_model_config mc;
    ssl_model_config_default(&mc, "vit_tiny");
    mc.in_chans = 1, mc.img_size = S, mc.patch_size = (int)h[H_PATCH], mc.num_classes = K;
    mc.vit_dim = (int)h[H_DIM], mc.vit_depth = (int)h[H_DEPTH], mc.vit_heads = (int)h[H_HEADS];
    ssl_model m;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&m, &mc, &pl, "", err) == 0, "%s", err);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    SSL_ASSERT(ssl_fixture_load_segments(f, &p, "param"));

    float *scale = malloc((size_t)p.nseg * sizeof *scale);
    ssl_finetune_layer_scales(&p, h[H_DECAY], scale);
    for (int i = 0; i < p.nseg; i++) {
        char key[160];
        snprintf(key, sizeof key, "scale/%s", p.seg[i].name);
        const double want = ssl_fixture_get(f, key, NULL)[0];
        SSL_EXPECT(fabs(scale[i] - want) <= 1e-6 * want, "%s: lr scale %.6f, MAE's %.6f", p.seg[i].name, scale[i],
                   want);
    }
    ssl_optim opt;
    ssl_optim_config oc = ssl_optim_config_default(SSL_OPTIM_ADAMW);
    ssl_optim_init(&opt, &c, &p, &oc);
    opt.seg_lr_scale = scale;
    ssl_weights w = {p.data, p.grad, b.data};
    int32_t *y = malloc((size_t)N * sizeof *y);
    float lr_sum = 0;
    for (int it = 0; it < 2; it++) {
        char key[64];
        size_t nx, ny;
        snprintf(key, sizeof key, "it%d/x", it);
        float *x = malloc(((void)ssl_fixture_get(f, key, &nx), nx) * sizeof(float));
        memcpy(x, ssl_fixture_get(f, key, NULL), nx * sizeof(float));
        snprintf(key, sizeof key, "it%d/y", it);
        const float *yf = ssl_fixture_get(f, key, &ny);
        SSL_ASSERT(ny == (size_t)N && nx == (size_t)(N * S * S));
        for (int i = 0; i < N; i++) y[i] = (int32_t)yf[i];
        ssl_params_zero_grad(&c, &p);
        ssl_ctx_step_begin(&c);
        ssl_tensor logits = m.forward(&c, &m, &w, ssl_tensor_4d(x, N, 1, S, S), 1);
        SSL_ASSERT(logits.ndim == 2 && logits.shape[0] == N && logits.shape[1] == K);
        ssl_tensor dl = ssl_tensor_2d(ssl_arena_floats(&c.act, (size_t)(N * K)), N, K);
        double loss = ssl_finetune_loss(&c, logits, y, (float)h[H_SMOOTH], dl.data);
        m.backward(&c, &m, &w, dl);
        snprintf(key, sizeof key, "it%d/loss", it);
        const double want = ssl_fixture_get(f, key, NULL)[0];
        SSL_EXPECT(fabs(loss - want) <= 1e-5 * fabs(want), "step %d: loss %.7f, PyTorch %.7f", it, loss, want);
        snprintf(key, sizeof key, "it%d/grad/", it);
        ssl_fixture_compare_segments(f, key, &p, p.grad, p.nseg, 1e-4);
        ssl_optim_step(&opt, &c, (float)h[H_LR0 + it], (float)h[H_WD]);
        snprintf(key, sizeof key, "it%d/param_after/", it);
        lr_sum += (float)h[H_LR0 + it];
        compare_after(f, key, &p, scale, lr_sum);
        printf("step %d: loss %.6f (PyTorch %.6f)\n", it, loss, want);
        free(x);
    }
    free(y);
    free(scale);
    ssl_optim_free(&opt);
    ssl_model_free(&m);
    ssl_test_bench_free(&c, &p, &b);
    ssl_fixture_free(f);
    return ssl_test_exit();
}
