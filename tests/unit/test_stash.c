/* bf16 storage of saved activations (core/stash.h) under bf16 precision: the same training
 * schedule with fp32 storage (c->acts_fp32) and with bf16 storage must give the same outputs,
 * parameter gradients and BN running statistics bit for bit (the backward reads every stored tensor
 * through bfloat16 anyway), summed over a sizing step and two sized ones, while the activation arena's
 * peak falls. The schedule is the methods' hardest: two instances forward, a teacher's forward-only
 * pass in between, then both backwards in reverse order. The teacher's forward keeps nothing but
 * its output (its packs give back the rest, in either storage): its output equals that of the same
 * forward with gradients on, for less memory. The third step allocates nothing. Models: ResNet-18
 * with the small stem (basic blocks), ResNet-50 with the ImageNet stem (bottlenecks, downsampling,
 * max-pool), ResNet-18 with a classification head, and a ViT (its products' inputs in bf16; the
 * residual stream and GELU input stay fp32; the softmax output is computed again in backward). */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/models/model.h"

#include <stdlib.h>
#include <string.h>

enum { NB = 4 };

typedef struct {
    float *y[3], *g, *buf; /* outputs of A, B, the teacher */
    size_t peak;
} result;

/* teacher_g: the teacher's forward runs with a gradient buffer, as if a backward followed */
static result run(const ssl_model_config *cfg, int acts_fp32, int teacher_g)
{
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    c.precision_bf16 = 1;
    c.acts_fp32 = acts_fp32;
    c.act.poison = 1; /* a copy given back too early reads NaN */
    ssl_params p, b;
    ssl_params_init(&p);
    ssl_params_init(&b);
    ssl_plan pl = {&p, &b};
    ssl_model m, A, B, T;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&m, cfg, &pl, "", err) == 0, "%s: %s", cfg->arch, err);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    ssl_params_init_values(&p, 7);
    ssl_params_init_values(&b, 7);
    for (size_t i = 0; i < p.numel; i++) p.data[i] += 0.05f * (float)((i * 2654435761u) % 1000) / 1000.0f;
    ssl_model_instance(&A, &m);
    ssl_model_instance(&B, &m);
    ssl_model_instance(&T, &m);
    const size_t nx = (size_t)NB * cfg->in_chans * cfg->img_size * cfg->img_size, ny = (size_t)NB * m.out_dim;
    float *x = malloc(2 * nx * sizeof(float)), *dy = malloc(2 * ny * sizeof(float));
    float *tp = malloc(p.numel * sizeof(float)), *tg = calloc(p.numel, sizeof(float));
    ssl_test_uniform(x, 2 * nx, 11, -1, 1);
    ssl_test_uniform(dy, 2 * ny, 12, -1, 1);
    for (size_t i = 0; i < p.numel; i++) tp[i] = 0.9f * p.data[i] + 0.01f;
    result r = {{malloc(ny * sizeof(float)), malloc(ny * sizeof(float)), malloc(ny * sizeof(float))}, NULL, NULL, 0};
    size_t allocs = 0;
    ssl_params_zero_grad(&c, &p); /* the gradients add up over the steps: the sizing one counts too */
    for (int step = 0; step < 3; step++) {
        if (step == 2) allocs = ssl_alloc_count();
        ssl_ctx_step_begin(&c);
        ssl_weights w = {p.data, p.grad, b.data}, wt = {tp, teacher_g ? tg : NULL, b.data};
        ssl_tensor in0 = ssl_tensor_4d(x, NB, cfg->in_chans, cfg->img_size, cfg->img_size), in1 = in0;
        in1.data = x + nx;
        ssl_tensor ya = A.forward(&c, &A, &w, in0, 1);
        ssl_tensor yt = T.forward(&c, &T, &wt, in1, 1);
        memcpy(r.y[2], yt.data, ny * sizeof(float));
        ssl_tensor yb = B.forward(&c, &B, &w, in1, 1);
        memcpy(r.y[0], ya.data, ny * sizeof(float));
        memcpy(r.y[1], yb.data, ny * sizeof(float));
        for (int v = 1; v >= 0; v--) { /* backward overwrites its dy: an arena copy */
            float *d = ssl_arena_floats(&c.act, ny);
            memcpy(d, dy + (size_t)v * ny, ny * sizeof(float));
            ssl_model *mv = v ? &B : &A;
            mv->backward(&c, mv, &w, ssl_tensor_2d(d, NB, m.out_dim));
        }
    }
    SSL_EXPECT(ssl_alloc_count() == allocs, "%s: a sized step allocated %zu times", cfg->arch,
               ssl_alloc_count() - allocs);
    r.g = malloc(p.numel * sizeof(float));
    memcpy(r.g, p.grad, p.numel * sizeof(float));
    r.buf = malloc(b.numel * sizeof(float) + 1);
    memcpy(r.buf, b.data, b.numel * sizeof(float));
    r.peak = c.act.peak;
    free(x), free(dy), free(tp), free(tg);
    ssl_model_free(&A), ssl_model_free(&B), ssl_model_free(&T), ssl_model_free(&m);
    ssl_params_free(&p), ssl_params_free(&b);
    ssl_ctx_free(&c);
    return r;
}

static size_t count_diff(const float *a, const float *b, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(a + i, b + i, sizeof(float)) != 0;
    return d;
}

static void check(const ssl_model_config *cfg, double max_peak_ratio)
{
    result f = run(cfg, 1, 0), h = run(cfg, 0, 0), k = run(cfg, 1, 1);
    ssl_params p, b;
    ssl_params_init(&p), ssl_params_init(&b);
    ssl_plan pl = {&p, &b};
    ssl_model m;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&m, cfg, &pl, "", err) == 0, "%s", err);
    const size_t ny = (size_t)NB * m.out_dim;
    size_t dy0 = count_diff(h.y[0], f.y[0], ny), dy1 = count_diff(h.y[1], f.y[1], ny);
    size_t dg = count_diff(h.g, f.g, p.numel), db = count_diff(h.buf, f.buf, b.numel);
    const double ratio = (double)h.peak / (double)f.peak;
    printf("%s%s: arena peak %.2f MB (bf16 storage) vs %.2f MB (fp32), ratio %.2f; differing values: "
           "outputs %zu + %zu, gradients %zu of %zu, BN buffers %zu\n", cfg->arch,
           cfg->small_stem ? " small stem" : "", h.peak / 1e6, f.peak / 1e6, ratio, dy0, dy1, dg, p.numel, db);
    SSL_EXPECT(dy0 == 0 && dy1 == 0 && dg == 0 && db == 0, "%s: bf16 storage changed the step", cfg->arch);
    SSL_EXPECT(ratio <= max_peak_ratio, "%s: arena peak ratio %.2f, want <= %.2f", cfg->arch, ratio, max_peak_ratio);
    const size_t dt = count_diff(f.y[2], k.y[2], ny);
    printf("  teacher forward keeping nothing: arena peak %.2f MB vs %.2f MB keeping all; differing outputs %zu\n",
           f.peak / 1e6, k.peak / 1e6, dt);
    SSL_EXPECT(dt == 0 && f.peak < k.peak, "%s: the forward-only teacher's output or memory is wrong", cfg->arch);
    ssl_model_free(&m);
    ssl_params_free(&p), ssl_params_free(&b);
    for (int i = 0; i < 3; i++) free(f.y[i]), free(h.y[i]), free(k.y[i]);
    free(f.g), free(h.g), free(k.g), free(f.buf), free(h.buf), free(k.buf);
}

int main(void)
{
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, "resnet18");
    cfg.small_stem = 1, cfg.width = 8, cfg.img_size = 16;
    check(&cfg, 0.47);
    ssl_model_config_default(&cfg, "resnet50");
    cfg.width = 4, cfg.img_size = 32;
    check(&cfg, 0.5);
    ssl_model_config_default(&cfg, "resnet18");
    cfg.width = 8, cfg.img_size = 32, cfg.num_classes = 10;
    check(&cfg, 0.5);
    ssl_model_config_default(&cfg, "vit_tiny");
    cfg.img_size = 16, cfg.patch_size = 4, cfg.vit_dim = 48, cfg.vit_depth = 3, cfg.vit_heads = 3;
    check(&cfg, 0.68);
    return ssl_test_exit();
}
