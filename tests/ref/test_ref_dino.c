/* DINO's building blocks against PyTorch (fixture from tests/ref/make_fixtures_dino.py, written from the
 * paper and the official DINOLoss / DINOHead, computed in float64): the weight-normalised last layer's
 * student and teacher logits, its dV and dx for the loss's upstream gradient; the loss, d(student
 * logits) for all 4 views, the monitors at teacher temperatures 0.04 and 0.07; and the centre after
 * update_center. One rank, replicated prototypes (comm NULL). */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/layers/dino_loss.h"
#include "framework/layers/wnorm_linear.h"

#include <math.h>
#include <string.h>

static ssl_ctx C;
/* A one-segment parameter set holding V (k, in) from the fixture, with a zeroed gradient. */
static void plan_layer(ssl_wnorm_linear *l, ssl_params *p, const float *v, int in, int64_t K)
{
    ssl_params b;
    ssl_params_init(p);
    ssl_params_init(&b);
    ssl_plan pl = {p, &b};
    ssl_wnorm_linear_init(l, &pl, "last_layer", in, K, 0, K);
    ssl_params_alloc(p, C.be, 1);
    memcpy(p->data + l->v, v, sizeof(float) * (size_t)(K * in));
    SSL_EXPECT(!strcmp(p->seg[0].name, "last_layer.weight_v"), "segment named %s", p->seg[0].name);
    ssl_params_free(&b);
}

/* Student and teacher logits from the layer; dV and dx from the fixture's d(student logits). */
static void check_layer(const ssl_fixture *f, int64_t rows_s, int64_t rows_t, int in, int64_t K)
{
    ssl_params ps, pt;
    ssl_wnorm_linear ls, lt;
    plan_layer(&ls, &ps, ssl_fixture_get(f, "v_s", NULL), in, K);
    plan_layer(&lt, &pt, ssl_fixture_get(f, "v_t", NULL), in, K);
    ssl_weights ws = {ps.data, ps.grad, NULL}, wt = {pt.data, NULL, NULL};
    ssl_ctx_step_begin(&C);
    ssl_tensor xs = ssl_tensor_2d((float *)ssl_fixture_get(f, "x_s", NULL), rows_s, in);
    ssl_tensor xt = ssl_tensor_2d((float *)ssl_fixture_get(f, "x_t", NULL), rows_t, in);
    ssl_tensor ys = ssl_wnorm_linear_forward(&C, &ls, &ws, xs);
    ssl_test_close_rel("student logits", ys.data, ssl_fixture_get(f, "s", NULL), (size_t)(rows_s * K), 1e-6);
    ssl_tensor yt = ssl_wnorm_linear_forward(&C, &lt, &wt, xt);
    ssl_test_close_rel("teacher logits", yt.data, ssl_fixture_get(f, "t", NULL), (size_t)(rows_t * K), 1e-6);
    const char *temps[2] = {"t004", "t007"};
    for (int i = 0; i < 2; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s/ds", temps[i]);
        ssl_tensor dy = ssl_tensor_2d((float *)ssl_fixture_get(f, key, NULL), rows_s, K);
        memset(ps.grad, 0, sizeof(float) * ps.numel);
        ssl_tensor dx = ssl_wnorm_linear_backward(&C, &ls, &ws, dy);
        snprintf(key, sizeof key, "%s/dv", temps[i]);
        ssl_test_close_rel(key, ps.grad + ls.v, ssl_fixture_get(f, key, NULL), (size_t)(K * in), 1e-5);
        snprintf(key, sizeof key, "%s/dx", temps[i]);
        ssl_test_close_rel(key, dx.data, ssl_fixture_get(f, key, NULL), (size_t)(rows_s * in), 1e-5);
    }
    ssl_params_free(&ps);
    ssl_params_free(&pt);
}

/* Loss, d(student logits) and monitors at the fixture's two teacher temperatures, then the centre. */
static void check_loss(const ssl_fixture *f, int64_t n, int vs, int64_t K)
{
    ssl_dino_loss L;
    ssl_dino_loss_init(&L, C.be, K, 0, K, vs, ssl_fixture_get(f, "temp_s", NULL)[0],
                       ssl_fixture_get(f, "momentum", NULL)[0]);
    const float *s = ssl_fixture_get(f, "s", NULL), *t = ssl_fixture_get(f, "t", NULL);
    const float *center = ssl_fixture_get(f, "center", NULL);
    float *ds = ssl_malloc(sizeof(float) * (size_t)(vs * n * K));
    const char *temps[2] = {"t004", "t007"};
    for (int i = 0; i < 2; i++) {
        char key[64];
        memcpy(L.center, center, sizeof(float) * (size_t)K);
        snprintf(key, sizeof key, "%s/temp_t", temps[i]);
        const float temp_t = ssl_fixture_get(f, key, NULL)[0];
        ssl_ctx_step_begin(&C);
        ssl_dino_monitors mon;
        const double loss = ssl_dino_loss_compute(&C, NULL, &L, s, t, n, temp_t, ds, &mon);
        printf(" temp_t %.2f\n", temp_t);
        snprintf(key, sizeof key, "%s/loss", temps[i]);
        ssl_test_close_scalar(key, loss, ssl_fixture_get(f, key, NULL)[0], 2e-6);
        snprintf(key, sizeof key, "%s/ds", temps[i]);
        ssl_test_close_rel(key, ds, ssl_fixture_get(f, key, NULL), (size_t)(vs * n * K), 1e-5);
        snprintf(key, sizeof key, "%s/entropy", temps[i]);
        ssl_test_close_scalar(key, mon.teacher_entropy, ssl_fixture_get(f, key, NULL)[0], 1e-5);
        snprintf(key, sizeof key, "%s/kl_uniform", temps[i]);
        ssl_test_close_scalar(key, mon.kl_uniform, ssl_fixture_get(f, key, NULL)[0], 1e-5);
        ssl_test_close_scalar("center_norm", mon.center_norm, ssl_fixture_get(f, "center_norm", NULL)[0], 1e-6);
    }
    memcpy(L.center, center, sizeof(float) * (size_t)K);
    ssl_ctx_step_begin(&C);
    ssl_dino_center_update(&C, NULL, &L, t, n);
    ssl_test_close_rel("center_after", L.center, ssl_fixture_get(f, "center_after", NULL), (size_t)K, 1e-6);
    ssl_free(ds);
    ssl_dino_loss_free(&L);
}

int main(void)
{
    ssl_fixture *f = ssl_fixture_load("dino_step.bin");
    if (!f) return 1;
    ssl_ctx_init(&C, "cpu");
    size_t nv, ns;
    ssl_fixture_get(f, "v_s", &nv);
    ssl_fixture_get(f, "s", &ns);
    const int64_t n = (int64_t)ssl_fixture_get(f, "n", NULL)[0];
    const int vs = (int)ssl_fixture_get(f, "ncrops", NULL)[0];
    const int64_t K = (int64_t)ns / (vs * n);
    const int in = (int)((int64_t)nv / K);
    printf("dino vs torch: %d views x %lld images, K %lld, bottleneck %d\n", vs, (long long)n, (long long)K, in);
    check_layer(f, vs * n, 2 * n, in, K);
    check_loss(f, n, vs, K);
    printf("largest relative error: %.3g\n", ssl_test_worst_rel);
    ssl_ctx_free(&C);
    ssl_fixture_free(f);
    return ssl_test_exit();
}
