/* Model builders: parameter counts equal torchvision's exactly (with a 1000-class head), names follow
 * its state_dict keys, bad geometry is rejected with a message, and after the first step a
 * training step allocates nothing (the activation arena is planned by the first step). */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/models/model.h"

#include <string.h>

static size_t count_params(const char *arch, int small_stem, char *err, int *ok)
{
    ssl_params p, b;
    ssl_params_init(&p);
    ssl_params_init(&b);
    ssl_plan pl = {&p, &b};
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, arch);
    cfg.num_classes = 1000;
    cfg.small_stem = small_stem;
    ssl_model m;
    *ok = ssl_model_build(&m, &cfg, &pl, "", err) == 0;
    size_t n = p.count;
    if (*ok) ssl_model_free(&m);
    ssl_params_free(&p);
    ssl_params_free(&b);
    return n;
}

static void test_counts(void)
{
    static const struct { const char *arch; size_t want; } cases[] = {
        {"resnet18", 11689512}, {"resnet34", 21797672}, {"resnet50", 25557032},
        {"vit_base", 86567656},
    };
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int ok;
        size_t n = count_params(cases[i].arch, 0, err, &ok);
        SSL_EXPECT(ok, "%s: build failed: %s", cases[i].arch, err);
        SSL_EXPECT(n == cases[i].want, "%s: %zu parameters, torchvision has %zu", cases[i].arch, n,
                   cases[i].want);
    }
    /* small stem: 3x3x3x64 conv instead of 7x7x3x64 */
    int ok;
    size_t n = count_params("resnet18", 1, err, &ok);
    SSL_EXPECT(n == 11689512 - 64 * 3 * (49 - 9), "resnet18 small stem: %zu", n);
}

static void test_names_and_errors(void)
{
    ssl_params p, b;
    ssl_params_init(&p);
    ssl_params_init(&b);
    ssl_plan pl = {&p, &b};
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, "resnet50");
    ssl_model m;
    char err[256];
    SSL_EXPECT(ssl_model_build(&m, &cfg, &pl, "", err) == 0, "%s", err);
    const char *want[] = {"conv1.weight", "bn1.weight", "layer1.0.conv3.weight",
                          "layer1.0.downsample.0.weight", "layer4.2.bn3.bias"};
    for (size_t i = 0; i < 5; i++)
        SSL_EXPECT(ssl_params_find(&p, want[i]) >= 0, "resnet50 lacks %s", want[i]);
    SSL_EXPECT(ssl_params_find(&b, "layer2.0.downsample.1.running_var") >= 0, "missing BN buffer");
    int bn = ssl_params_find(&p, "layer1.0.bn1.bias"), cw = ssl_params_find(&p, "layer1.0.conv1.weight");
    SSL_EXPECT(p.seg[bn].flags & SSL_SEG_NO_WD, "BN bias must be excluded from weight decay");
    SSL_EXPECT(!(p.seg[cw].flags & SSL_SEG_NO_WD), "conv weight must get weight decay");
    ssl_model_free(&m);
    ssl_params_free(&p);
    ssl_params_free(&b);

    ssl_params_init(&p);
    ssl_params_init(&b);
    ssl_model_config_default(&cfg, "vit_base");
    SSL_EXPECT(ssl_model_build(&m, &cfg, &pl, "", err) == 0, "%s", err);
    const char *vwant[] = {"conv_proj.weight", "class_token", "encoder.pos_embedding",
                           "encoder.layers.encoder_layer_0.self_attention.in_proj_weight",
                           "encoder.layers.encoder_layer_11.mlp.3.bias", "encoder.ln.weight"};
    for (size_t i = 0; i < 6; i++)
        SSL_EXPECT(ssl_params_find(&p, vwant[i]) >= 0, "vit_base lacks %s", vwant[i]);
    ssl_model_free(&m);
    ssl_params_free(&p);
    ssl_params_free(&b);

    ssl_params_init(&p);
    ssl_params_init(&b);
    ssl_model_config_default(&cfg, "vit_tiny");
    cfg.img_size = 30;
    cfg.patch_size = 4;
    SSL_EXPECT(ssl_model_build(&m, &cfg, &pl, "", err) != 0 && strstr(err, "multiple"),
               "patch size not dividing the image must be rejected, got '%s'", err);
    ssl_model_free(&m);
    ssl_model_config_default(&cfg, "resnet101");
    SSL_EXPECT(ssl_model_build(&m, &cfg, &pl, "", err) != 0 && strstr(err, "resnet101"),
               "unknown arch must be named in the error, got '%s'", err);
    ssl_params_free(&p);
    ssl_params_free(&b);
}

/* One full training step (forward, backward) on a tiny model; returns allocations it made. */
static size_t step_allocs(ssl_ctx *c, ssl_model *m, ssl_params *p, ssl_params *b, float *img,
                          float *dy, int N, int S)
{
    size_t before = ssl_alloc_count();
    ssl_ctx_step_begin(c);
    ssl_params_zero_grad(c, p);
    ssl_weights w = {p->data, p->grad, b->data};
    ssl_tensor y = m->forward(c, m, &w, ssl_tensor_4d(img, N, 3, S, S), 1);
    m->backward(c, m, &w, ssl_tensor_2d(dy, y.shape[0], y.shape[1]));
    return ssl_alloc_count() - before;
}

static void test_no_alloc_after_first_step(const char *arch)
{
    ssl_ctx c;
    ssl_params p, b;
    ssl_plan pl = ssl_test_bench_init(&c, &p, &b);
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, arch);
    cfg.small_stem = 1;
    cfg.width = 4;
    cfg.img_size = 16;
    cfg.patch_size = 4;
    cfg.vit_dim = 16, cfg.vit_depth = 2, cfg.vit_heads = 2;
    cfg.num_classes = 5;
    ssl_model m;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&m, &cfg, &pl, "", err) == 0, "%s", err);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    ssl_params_init_values(&p, 1);
    ssl_params_init_values(&b, 1);
    const int N = 4, S = 16;
    float img[4 * 3 * 16 * 16], dy[4 * 5];
    ssl_test_uniform(img, sizeof img / sizeof img[0], 3, -1, 1);
    ssl_test_uniform(dy, sizeof dy / sizeof dy[0], 4, -1, 1);
    size_t first = step_allocs(&c, &m, &p, &b, img, dy, N, S);
    size_t second = step_allocs(&c, &m, &p, &b, img, dy, N, S);
    size_t third = step_allocs(&c, &m, &p, &b, img, dy, N, S);
    SSL_EXPECT(first > 0, "%s: the first step should size the arena", arch);
    /* the second step folds the sizing blocks into one (one allocation), then none */
    SSL_EXPECT(second <= 1, "%s: second step made %zu allocations", arch, second);
    SSL_EXPECT(third == 0, "%s: a steady-state step made %zu allocations", arch, third);
    ssl_model_free(&m);
    ssl_test_bench_free(&c, &p, &b);
}

int main(void)
{
    test_counts();
    test_names_and_errors();
    test_no_alloc_after_first_step("resnet18");
    test_no_alloc_after_first_step("resnet50");
    test_no_alloc_after_first_step("vit_tiny");
    return ssl_test_exit();
}
