/* DINO's weight-normalised last layer (framework/layers/wnorm_linear.c), g fixed to 1: the output
 * against x (V_k / ||V_k||)^T in double, dV and dx against central finite differences of
 * L = sum(y * r); dV accumulates; freeze leaves dV untouched but still gives dx; a forward-only
 * teacher (w->g NULL); and row shards [off, off + k) of V give y's column slices, dV's row slices,
 * and dx's that sum to the whole layer's dx. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/layers/wnorm_linear.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ssl_ctx C;

typedef struct {
    ssl_params p;
    ssl_wnorm_linear l;
} layer;

static void layer_init(layer *L, int in, int64_t K, int64_t off, int64_t k, const float *V)
{
    ssl_params b;
    ssl_params_init(&L->p);
    ssl_params_init(&b);
    ssl_plan pl = {&L->p, &b};
    ssl_wnorm_linear_init(&L->l, &pl, "head.last_layer", in, K, off, k);
    ssl_params_alloc(&L->p, C.be, 1);
    memcpy(L->p.data + L->l.v, V + off * in, sizeof(float) * (size_t)(k * in));
    ssl_params_free(&b);
}

typedef struct {
    layer *L;
    float *x, *r;
    int64_t rows;
} harness;

static double loss_fn(void *ud)
{
    harness *h = ud;
    ssl_ctx_step_begin(&C);
    ssl_weights w = {h->L->p.data, NULL, NULL};
    ssl_tensor y = ssl_wnorm_linear_forward(&C, &h->L->l, &w, ssl_tensor_2d(h->x, h->rows, h->L->l.in));
    return ssl_test_dot(y.data, h->r, (size_t)(h->rows * h->L->l.k));
}

/* y, dV, dx of the whole layer: returns dx (malloc'd), dV left in L->p.grad. */
static float *run(layer *L, float *x, const float *r, int64_t rows, float **y_out)
{
    ssl_weights w = {L->p.data, L->p.grad, NULL};
    ssl_ctx_step_begin(&C);
    ssl_tensor y = ssl_wnorm_linear_forward(&C, &L->l, &w, ssl_tensor_2d(x, rows, L->l.in));
    ssl_tensor dx = ssl_wnorm_linear_backward(&C, &L->l, &w, ssl_tensor_2d((float *)r, rows, L->l.k));
    float *out = malloc(sizeof(float) * (size_t)(rows * L->l.in));
    memcpy(out, dx.data, sizeof(float) * (size_t)(rows * L->l.in));
    if (y_out) {
        *y_out = malloc(sizeof(float) * (size_t)(rows * L->l.k));
        memcpy(*y_out, y.data, sizeof(float) * (size_t)(rows * L->l.k));
    }
    return out;
}

static void check_whole(int in, int64_t K, int64_t rows)
{
    float *V = malloc(sizeof(float) * (size_t)(K * in)), *x = malloc(sizeof(float) * (size_t)(rows * in));
    float *r = malloc(sizeof(float) * (size_t)(rows * K)), *want = malloc(sizeof(float) * (size_t)(rows * K));
    ssl_test_uniform(V, (size_t)(K * in), 1, -0.5f, 0.5f);
    ssl_test_uniform(x, (size_t)(rows * in), 2, -1, 1);
    ssl_test_uniform(r, (size_t)(rows * K), 3, -1, 1);
    layer L;
    layer_init(&L, in, K, 0, K, V);
    SSL_EXPECT(!strcmp(L.p.seg[0].name, "head.last_layer.weight_v") && L.p.seg[0].shape[0] == K &&
                   L.p.seg[0].shape[1] == in && L.p.nseg == 1,
               "one segment head.last_layer.weight_v (%lld, %d): %s", (long long)K, in, L.p.seg[0].name);
    float *y, *dx = run(&L, x, r, rows, &y);
    for (int64_t k = 0; k < K; k++) {
        double nv = 0;
        for (int j = 0; j < in; j++) nv += (double)V[k * in + j] * V[k * in + j];
        for (int64_t i = 0; i < rows; i++) {
            double s = 0;
            for (int j = 0; j < in; j++) s += (double)x[i * in + j] * V[k * in + j];
            want[i * K + k] = (float)(s / sqrt(nv));
        }
    }
    ssl_test_close("wnorm forward", y, want, (size_t)(rows * K), 1e-6, 1e-5);
    float *dv = malloc(sizeof(float) * (size_t)(K * in));
    memcpy(dv, L.p.grad + L.l.v, sizeof(float) * (size_t)(K * in));
    harness h = {&L, x, r, rows};
    ssl_test_gradcheck("wnorm dV", loss_fn, &h, L.p.data + L.l.v, (size_t)(K * in), dv, 64, 1e-3f, 1e-3, 1e-2);
    ssl_test_gradcheck_dir("wnorm dV (dir)", loss_fn, &h, L.p.data + L.l.v, (size_t)(K * in), dv, 7, 1e-3f, 1e-3);
    ssl_test_gradcheck("wnorm dx", loss_fn, &h, x, (size_t)(rows * in), dx, 64, 1e-3f, 1e-3, 1e-2);

    /* accumulation: a second backward doubles dV */
    free(run(&L, x, r, rows, NULL));
    for (int64_t i = 0; i < K * in; i++) dv[i] *= 2;
    ssl_test_close("wnorm dV accumulates", L.p.grad + L.l.v, dv, (size_t)(K * in), 1e-6, 1e-6);
    /* frozen: dV as it was, dx as before */
    L.l.freeze = 1;
    float *dx2 = run(&L, x, r, rows, NULL);
    ssl_test_close("wnorm frozen dV", L.p.grad + L.l.v, dv, (size_t)(K * in), 0, 0);
    ssl_test_close("wnorm frozen dx", dx2, dx, (size_t)(rows * in), 0, 0);
    /* teacher: forward only */
    ssl_weights wt = {L.p.data, NULL, NULL};
    ssl_ctx_step_begin(&C);
    ssl_tensor yt = ssl_wnorm_linear_forward(&C, &L.l, &wt, ssl_tensor_2d(x, rows, in));
    ssl_test_close("wnorm teacher forward", yt.data, y, (size_t)(rows * K), 0, 0);
    free(V), free(x), free(r), free(want), free(y), free(dx), free(dv), free(dx2);
    ssl_params_free(&L.p);
}

/* Shards of rows of V over `world` layers: y's columns, dV's rows, dx summed over shards. */
static void check_shards(int in, int64_t K, int64_t rows, int world)
{
    float *V = malloc(sizeof(float) * (size_t)(K * in)), *x = malloc(sizeof(float) * (size_t)(rows * in));
    float *r = malloc(sizeof(float) * (size_t)(rows * K)), *dxs = calloc((size_t)(rows * in), sizeof(float));
    ssl_test_uniform(V, (size_t)(K * in), 4, -0.5f, 0.5f);
    ssl_test_uniform(x, (size_t)(rows * in), 5, -1, 1);
    ssl_test_uniform(r, (size_t)(rows * K), 6, -1, 1);
    layer full;
    layer_init(&full, in, K, 0, K, V);
    float *y, *dx = run(&full, x, r, rows, &y);
    for (int sh = 0; sh < world; sh++) {
        /* the split of ssl_dino_shard: 10 over 3 is 4, 3, 3 */
        const int64_t k = K / world + (sh < K % world), off = sh * (K / world) + (sh < K % world ? sh : K % world);
        layer L;
        layer_init(&L, in, K, off, k, V);
        float *rs = malloc(sizeof(float) * (size_t)(rows * k)), *ys, *want = malloc(sizeof(float) * (size_t)(rows * k));
        C.be->copy2d(&C, rows, k, r + off, K, rs, k);
        float *d = run(&L, x, rs, rows, &ys);
        C.be->copy2d(&C, rows, k, y + off, K, want, k);
        char what[64];
        snprintf(what, sizeof what, "shard %d/%d y", sh, world);
        ssl_test_close(what, ys, want, (size_t)(rows * k), 1e-6, 1e-5);
        snprintf(what, sizeof what, "shard %d/%d dV", sh, world);
        ssl_test_close(what, L.p.grad + L.l.v, full.p.grad + full.l.v + off * in, (size_t)(k * in), 1e-6, 1e-5);
        for (int64_t i = 0; i < rows * in; i++) dxs[i] += d[i];
        free(rs), free(ys), free(want), free(d);
        ssl_params_free(&L.p);
    }
    ssl_test_close("shards' dx sum", dxs, dx, (size_t)(rows * in), 1e-6, 1e-5);
    free(V), free(x), free(r), free(dxs), free(y), free(dx);
    ssl_params_free(&full.p);
}

int main(void)
{
    ssl_ctx_init(&C, "cpu");
    check_whole(16, 64, 12);
    check_whole(7, 10, 5);
    check_shards(16, 10, 6, 3);
    check_shards(8, 37, 4, 4);
    ssl_ctx_free(&C);
    return ssl_test_exit();
}
