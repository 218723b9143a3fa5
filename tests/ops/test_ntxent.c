/* NT-Xent: loss against a direct double-precision evaluation of the formula, gradient against
 * finite differences, and the distributed form: W ranks each owning their queries, summing the
 * per-rank dZ (the reduce-scatter) and averaging over W, equal one rank with the whole batch.
 * Dropping the reduce-scatter (keeping only a rank's own rows, the common bug) must differ. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/layers/ntxent.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double reference_loss(const float *Z, int M, int d, int half, double tau)
{
    double total = 0;
    for (int i = 0; i < M; i++) {
        int chunk = 2 * half, pos = i / chunk * chunk + (i % chunk + half) % chunk;
        double sum = 0, spos = 0;
        for (int j = 0; j < M; j++) {
            if (j == i) continue;
            double s = 0;
            for (int k = 0; k < d; k++) s += (double)Z[i * d + k] * Z[j * d + k];
            s /= tau;
            sum += exp(s);
            if (j == pos) spos = s;
        }
        total += log(sum) - spos;
    }
    return total / M;
}

typedef struct {
    ssl_ctx *c;
    float *Z, *dZ;
    int M, d, half;
    float tau;
} harness;

static double loss_fn(void *ud)
{
    harness *h = ud;
    ssl_ctx_step_begin(h->c);
    return ssl_ntxent(h->c, h->Z, h->M, h->d, 0, h->M, h->half, h->tau, h->dZ);
}

static void normalise_rows(float *Z, int M, int d)
{
    for (int i = 0; i < M; i++) {
        double n = 0;
        for (int k = 0; k < d; k++) n += (double)Z[i * d + k] * Z[i * d + k];
        for (int k = 0; k < d; k++) Z[i * d + k] /= (float)sqrt(n);
    }
}

int main(void)
{
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    const int B = 4, W = 4, M = 2 * B * W, d = 8; /* 4 "ranks" x 4 images x 2 views */
    const float tau = 0.2f;
    float *Z = malloc(sizeof(float) * M * d), *dZ = malloc(sizeof(float) * M * d);
    float *g1 = malloc(sizeof(float) * M * d), *acc = malloc(sizeof(float) * M * d);
    ssl_test_uniform(Z, (size_t)M * d, 1, -1, 1);
    normalise_rows(Z, M, d);

    /* loss value: single rank, one chunk (half = M/2) and rank-chunked layout (half = B) */
    int halves[2] = {M / 2, B};
    for (int t = 0; t < 2; t++) {
        ssl_ctx_step_begin(&c);
        double L = ssl_ntxent(&c, Z, M, d, 0, M, halves[t], tau, dZ);
        double want = reference_loss(Z, M, d, halves[t], tau);
        SSL_EXPECT(fabs(L - want) <= 1e-5 * fabs(want), "loss %.8f, reference %.8f (half %d)", L, want,
                   halves[t]);
        harness h = {&c, Z, dZ, M, d, halves[t], tau};
        memcpy(g1, dZ, sizeof(float) * M * d);
        ssl_test_gradcheck("ntxent dZ", loss_fn, &h, Z, (size_t)M * d, g1, 64, 1e-3f, 1e-4, 1e-2);
    }

    /* distributed form: sum over ranks of dZ_r, / W, equals the single-rank gradient */
    ssl_ctx_step_begin(&c);
    double L1 = ssl_ntxent(&c, Z, M, d, 0, M, B, tau, g1);
    memset(acc, 0, sizeof(float) * M * d);
    double Lsum = 0;
    float *own_only = calloc((size_t)M * d, sizeof(float));
    for (int r = 0; r < W; r++) {
        ssl_ctx_step_begin(&c);
        Lsum += ssl_ntxent(&c, Z, M, d, (int64_t)r * 2 * B, 2 * B, B, tau, dZ);
        for (int i = 0; i < M * d; i++) acc[i] += dZ[i] / W;
        /* the bug: no reduce-scatter, each rank keeps only its own rows of its own dZ */
        for (int i = r * 2 * B * d; i < (r + 1) * 2 * B * d; i++) own_only[i] = dZ[i] / W;
    }
    SSL_EXPECT(fabs(Lsum / W - L1) <= 1e-6 * fabs(L1), "mean of rank losses %.8f vs %.8f", Lsum / W, L1);
    ssl_test_close("reduce-scattered dZ vs single rank", acc, g1, (size_t)M * d, 1e-6, 1e-4);
    double diff = 0, ref = 0;
    for (int i = 0; i < M * d; i++) {
        diff += fabs(own_only[i] - g1[i]);
        ref += fabs(g1[i]);
    }
    SSL_EXPECT(diff > 0.1 * ref, "dropping the reduce-scatter should change dZ (diff %.3g of %.3g)", diff, ref);
    free(own_only);
    free(Z);
    free(dZ);
    free(g1);
    free(acc);
    ssl_ctx_free(&c);
    return ssl_test_exit();
}
