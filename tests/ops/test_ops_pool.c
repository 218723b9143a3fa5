/* CPU max pool (values and argmax) and global average pool against naive double-precision loops,
 * and their backwards against central finite differences of loss = sum(y * r). Max-pool inputs
 * are a shuffled grid of distinct values 1e-2 apart, so a 2e-3 step never moves an argmax. */
#include <stdio.h>

#include "common/testutil.h"

#include "framework/backend/backend.h"
#include "framework/core/ctx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ssl_ctx C;

static float *randv(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    ssl_test_uniform(x, n, seed, lo, hi);
    return x;
}

/* A random permutation of {0, step, 2 step, ...} shifted to straddle zero. */
static float *distinct(size_t n, uint64_t seed, float step)
{
    float *x = malloc(n * sizeof(float)), *u = randv(n, seed, 0, 1);
    for (size_t i = 0; i < n; i++) x[i] = ((float)i - (float)(n / 2)) * step;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)(u[i] * (float)(i + 1));
        if (j > i) j = i;
        float t = x[i];
        x[i] = x[j], x[j] = t;
    }
    free(u);
    return x;
}

/* ---- max pool -------------------------------------------------------------------------------- */
typedef struct {
    int N, ch, H, W, k, s, p, P, Q;
    float *x, *y, *r;
    int32_t *idx;
} mp_ud;

static double mp_loss(void *p)
{
    mp_ud *u = p;
    C.be->maxpool_fwd(&C, u->N, u->ch, u->H, u->W, u->k, u->s, u->p, u->P, u->Q, u->x, u->y,
                      u->idx);
    return ssl_test_dot(u->y, u->r, (size_t)u->N * u->ch * u->P * u->Q);
}

static void test_maxpool(int N, int ch, int H, int W, int k, int s, int p)
{
    char what[128], tag[80];
    int P = (H + 2 * p - k) / s + 1, Q = (W + 2 * p - k) / s + 1;
    snprintf(tag, sizeof tag, "(N=%d C=%d %dx%d k=%d s=%d p=%d)", N, ch, H, W, k, s, p);
    size_t nin = (size_t)N * ch * H * W, nout = (size_t)N * ch * P * Q;
    mp_ud u = {N, ch, H, W, k, s, p, P, Q, distinct(nin, 300, 1e-2f), malloc(nout * sizeof(float)),
               randv(nout, 301, -1, 1), malloc(nout * sizeof(int32_t))};
    mp_loss(&u);

    /* reference: padding is -inf, the first maximum in row-major window order wins */
    float *want = malloc(nout * sizeof(float)), *dref = calloc(nin, sizeof(float));
    int bad_idx = 0;
    for (int pl = 0; pl < N * ch; pl++)
        for (int i = 0; i < P; i++)
            for (int j = 0; j < Q; j++) {
                double best = -INFINITY;
                int bi = -1;
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++) {
                        int h = i * s - p + a, w = j * s - p + b;
                        if (h < 0 || h >= H || w < 0 || w >= W) continue;
                        double v = u.x[(size_t)pl * H * W + (size_t)h * W + w];
                        if (v > best) best = v, bi = h * W + w;
                    }
                size_t o = ((size_t)pl * P + i) * Q + j;
                want[o] = (float)best;
                bad_idx += u.idx[o] != bi;
                if (bi >= 0) dref[(size_t)pl * H * W + bi] += u.r[o];
            }
    snprintf(what, sizeof what, "maxpool y %s", tag);
    ssl_test_close(what, u.y, want, nout, 0, 0);
    SSL_EXPECT(bad_idx == 0, "maxpool idx %s: %d argmax(es) differ", tag, bad_idx);

    /* dx is assigned: start from NaN garbage */
    float *dx = malloc(nin * sizeof(float));
    for (size_t i = 0; i < nin; i++) dx[i] = NAN;
    C.be->maxpool_bwd(&C, N, ch, H, W, k, s, p, P, Q, u.r, u.idx, dx);
    snprintf(what, sizeof what, "maxpool dx reference %s", tag);
    ssl_test_close(what, dx, dref, nin, 1e-6, 1e-6);
    snprintf(what, sizeof what, "maxpool dx %s", tag);
    /* the loss is piecewise linear: fd is exact up to rounding away from kinks */
    ssl_test_gradcheck(what, mp_loss, &u, u.x, nin, dx, 400, 2e-3f, 1e-3, 1e-3);
    free(u.x), free(u.y), free(u.r), free(u.idx), free(want), free(dref), free(dx);
}

/* ---- global average pool ------------------------------------------------------------------- */
typedef struct {
    int64_t NC, S;
    float *x, *y, *r;
} ap_ud;

static double ap_loss(void *p)
{
    ap_ud *u = p;
    C.be->avgpool_fwd(&C, u->NC, u->S, u->x, u->y);
    return ssl_test_dot(u->y, u->r, (size_t)u->NC);
}

static void test_avgpool(int64_t NC, int64_t S)
{
    char what[96];
    size_t n = (size_t)(NC * S);
    ap_ud u = {NC, S, randv(n, 310, -2, 2), malloc((size_t)NC * sizeof(float)),
               randv((size_t)NC, 311, -1, 1)};
    ap_loss(&u);
    float *want = malloc((size_t)NC * sizeof(float)), *dref = malloc(n * sizeof(float));
    for (int64_t i = 0; i < NC; i++) {
        double s = 0;
        for (int64_t j = 0; j < S; j++) s += u.x[i * S + j], dref[i * S + j] = u.r[i] / (float)S;
        want[i] = (float)(s / (double)S);
    }
    snprintf(what, sizeof what, "avgpool y (NC=%lld S=%lld)", (long long)NC, (long long)S);
    ssl_test_close(what, u.y, want, (size_t)NC, 1e-6, 1e-6);

    float *dx = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) dx[i] = NAN;
    C.be->avgpool_bwd(&C, NC, S, u.r, dx);
    snprintf(what, sizeof what, "avgpool dx reference (NC=%lld S=%lld)", (long long)NC,
             (long long)S);
    ssl_test_close(what, dx, dref, n, 1e-7, 1e-6);
    snprintf(what, sizeof what, "avgpool dx (NC=%lld S=%lld)", (long long)NC, (long long)S);
    /* linear loss: fd differs from the gradient only by rounding (~1e-6 here) */
    ssl_test_gradcheck(what, ap_loss, &u, u.x, n, dx, 400, 1e-2f, 1e-4, 1e-3);
    free(u.x), free(u.y), free(u.r), free(want), free(dref), free(dx);
}

int main(void)
{
    ssl_ctx_init(&C, "cpu");
    test_maxpool(2, 3, 7, 6, 3, 2, 1);   /* ResNet stem shape, ragged edge */
    test_maxpool(1, 2, 8, 8, 2, 2, 0);   /* non-overlapping */
    test_maxpool(2, 2, 5, 5, 3, 1, 1);   /* overlapping: one input is the max of several windows */
    test_maxpool(1, 1, 4, 5, 2, 1, 1);   /* padding on every side */
    test_maxpool(2, 16, 32, 32, 3, 2, 1); /* parallel planes */
    test_avgpool(6, 49);
    test_avgpool(4, 1);
    test_avgpool(512, 100);
    ssl_ctx_free(&C);
    return ssl_test_exit();
}
