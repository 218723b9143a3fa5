/* CPU batch norm and layer norm against naive double-precision references, and their backwards
 * against central finite differences of loss = sum(y * r). BN is checked as the whole
 * training-mode composite (stats -> mean/invstd -> apply -> bwd_stats -> bwd_data, dgamma =
 * sum_dy_xhat, dbeta = sum_dy) for BatchNorm1d (S = 1) and 2d (S > 1), affine or not. */
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

/* Finite differences of float forwards, losses summed in double. Small cases: eps = 1e-2, with
 * rounding noise and O(eps^2) truncation both below 1e-4 (measured), so atol = 1e-3 and
 * rtol = 1e-2 leave >10x margin while a dropped backward term (O(0.1) or more) still fails.
 * When one perturbed element feeds statistics shared by >= 100 others (BN count, LN D), the float
 * rounding of mean/invstd moves the whole group coherently: fd noise reaches ~5e-3 at eps = 1e-2,
 * so those cases use eps = 5e-2 (truncation stays ~1e-4 as each element's weight is 1/group) and
 * atol = 3e-3, still far below the O(1) gradients. Groups of <= 4 samples (BN with N = 3) are
 * strongly curved, so they step eps = 2e-3 instead. */
static void fd_params(double group, float *eps, double *atol)
{
    *eps = group >= 100 ? 5e-2f : group <= 4 ? 2e-3f : 1e-2f;
    *atol = group >= 100 ? 3e-3 : 1e-3;
}
#define FD_RTOL 1e-2

/* ---- batch norm ------------------------------------------------------------------------------ */
#define BN_EPS 1e-5f

typedef struct {
    int64_t N, ch, S;
    int affine;
    float *x, *gamma, *beta, *y, *r, *mean, *invstd;
    double *sum, *sumsq;
} bn_ud;

static double bn_loss(void *p)
{
    bn_ud *u = p;
    double count = (double)(u->N * u->S);
    C.be->bn_stats(&C, u->N, u->ch, u->S, u->x, u->sum, u->sumsq);
    for (int64_t c = 0; c < u->ch; c++) {
        double m = u->sum[c] / count, var = u->sumsq[c] / count - m * m;
        u->mean[c] = (float)m;
        u->invstd[c] = (float)(1.0 / sqrt(var + BN_EPS));
    }
    C.be->bn_apply(&C, u->N, u->ch, u->S, u->x, u->mean, u->invstd, u->affine ? u->gamma : NULL,
                   u->affine ? u->beta : NULL, 0, u->y);
    return ssl_test_dot(u->y, u->r, (size_t)(u->N * u->ch * u->S));
}

static void test_bn(int64_t N, int64_t ch, int64_t S, int affine)
{
    char what[128], tag[64];
    snprintf(tag, sizeof tag, "(N=%lld C=%lld S=%lld%s)", (long long)N, (long long)ch,
             (long long)S, affine ? " affine" : "");
    size_t n = (size_t)(N * ch * S), nc = (size_t)ch;
    double count = (double)(N * S);
    bn_ud u = {N, ch, S, affine, randv(n, 100, -1, 1), randv(nc, 101, 0.5f, 1.5f),
               randv(nc, 102, -0.5f, 0.5f), malloc(n * sizeof(float)), randv(n, 103, -1, 1),
               malloc(nc * sizeof(float)), malloc(nc * sizeof(float)), malloc(nc * sizeof(double)),
               malloc(nc * sizeof(double))};
    /* channels with different offsets and spreads; r correlated with x (and offset) so that every
     * term of the backward carries weight even for large batches */
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < ch; c++)
            for (int64_t s = 0; s < S; s++) {
                size_t k = (size_t)((i * ch + c) * S + s);
                u.x[k] = u.x[k] * (0.5f + 0.1f * (float)(c % 7)) + 0.3f * (float)(c % 5) - 0.6f;
                u.r[k] += 0.25f + 0.5f * u.x[k];
            }

    /* forward against a two-pass double reference */
    bn_loss(&u);
    double *rs = malloc(nc * sizeof(double)), *rss = malloc(nc * sizeof(double));
    float *want = malloc(n * sizeof(float));
    for (int64_t c = 0; c < ch; c++) {
        double s = 0, ss = 0, v = 0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                double xv = u.x[(i * ch + c) * S + k];
                s += xv, ss += xv * xv;
            }
        rs[c] = s, rss[c] = ss;
        double m = s / count;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                double d = u.x[(i * ch + c) * S + k] - m;
                v += d * d;
            }
        double is = 1.0 / sqrt(v / count + BN_EPS);
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                size_t j = (size_t)((i * ch + c) * S + k);
                double y = (u.x[j] - m) * is;
                want[j] = (float)(affine ? y * u.gamma[c] + u.beta[c] : y);
            }
    }
    int ok = 1;
    for (int64_t c = 0; c < ch; c++)
        ok &= fabs(u.sum[c] - rs[c]) <= 1e-10 * (1 + fabs(rs[c])) &&
              fabs(u.sumsq[c] - rss[c]) <= 1e-10 * (1 + rss[c]);
    SSL_EXPECT(ok, "bn_stats %s: sums differ from the double reference", tag);
    snprintf(what, sizeof what, "bn fwd %s", tag);
    ssl_test_close(what, u.y, want, n, 2e-5, 2e-5);
    /* fused ReLU: the same values clamped at 0 (about half of them here) */
    float *yr = malloc(n * sizeof(float));
    C.be->bn_apply(&C, N, ch, S, u.x, u.mean, u.invstd, affine ? u.gamma : NULL,
                   affine ? u.beta : NULL, 1, yr);
    for (size_t j = 0; j < n; j++) want[j] = want[j] > 0 ? want[j] : 0;
    snprintf(what, sizeof what, "bn fwd + relu %s", tag);
    ssl_test_close(what, yr, want, n, 2e-5, 2e-5);

    /* backward composite */
    double *sdy = malloc(nc * sizeof(double)), *sdx = malloc(nc * sizeof(double));
    float *dx = malloc(n * sizeof(float)), *dg = malloc(nc * sizeof(float)),
          *db = malloc(nc * sizeof(float));
    C.be->bn_bwd_stats(&C, N, ch, S, u.r, u.x, u.mean, u.invstd, sdy, sdx);
    C.be->bn_bwd_data(&C, N, ch, S, u.r, u.x, u.mean, u.invstd, affine ? u.gamma : NULL, sdy, sdx,
                      count, dx);
    free(yr);
    ok = 1;
    for (int64_t c = 0; c < ch; c++) {
        double s = 0, sx = 0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                size_t j = (size_t)((i * ch + c) * S + k);
                s += u.r[j];
                sx += (double)u.r[j] * ((u.x[j] - (double)u.mean[c]) * u.invstd[c]);
            }
        ok &= fabs(sdy[c] - s) <= 1e-9 * (1 + fabs(s));
        ok &= fabs(sdx[c] - sx) <= 1e-6 * (1 + fabs(sx));
        dg[c] = (float)sdx[c];
        db[c] = (float)sdy[c];
    }
    SSL_EXPECT(ok, "bn_bwd_stats %s: sums differ from the double reference", tag);

    /* every element of dx against the textbook formula in double */
    for (int64_t c = 0; c < ch; c++) {
        double m = rs[c] / count, is = 1.0 / sqrt(rss[c] / count - m * m + BN_EPS);
        double s = 0, sx = 0, g = affine ? u.gamma[c] : 1.0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                size_t j = (size_t)((i * ch + c) * S + k);
                s += u.r[j], sx += u.r[j] * (u.x[j] - m) * is;
            }
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                size_t j = (size_t)((i * ch + c) * S + k);
                want[j] = (float)(g * is * (u.r[j] - s / count - (u.x[j] - m) * is * sx / count));
            }
    }
    snprintf(what, sizeof what, "bn dx reference %s", tag);
    ssl_test_close(what, dx, want, n, 1e-4, 1e-4);

    float eps;
    double atol;
    fd_params(count, &eps, &atol);
    int checks = n > 2000 ? 150 : 400;
    snprintf(what, sizeof what, "bn dx %s", tag);
    ssl_test_gradcheck(what, bn_loss, &u, u.x, n, dx, checks, eps, atol, FD_RTOL);
    if (affine) {
        snprintf(what, sizeof what, "bn dgamma %s", tag);
        ssl_test_gradcheck(what, bn_loss, &u, u.gamma, nc, dg, 200, eps, atol, FD_RTOL);
        snprintf(what, sizeof what, "bn dbeta %s", tag);
        ssl_test_gradcheck(what, bn_loss, &u, u.beta, nc, db, 200, eps, atol, FD_RTOL);
    }
    free(u.x), free(u.gamma), free(u.beta), free(u.y), free(u.r), free(u.mean), free(u.invstd);
    free(u.sum), free(u.sumsq), free(rs), free(rss), free(want), free(sdy), free(sdx), free(dx);
    free(dg), free(db);
}

/* ---- layer norm ------------------------------------------------------------------------------ */
#define LN_EPS 1e-5f

typedef struct {
    int64_t rows, D;
    float *x, *gamma, *beta, *y, *r, *mean, *rstd;
} ln_ud;

static double ln_loss(void *p)
{
    ln_ud *u = p;
    C.be->layernorm_fwd(&C, u->rows, u->D, LN_EPS, u->x, u->gamma, u->beta, u->y, u->mean, u->rstd);
    return ssl_test_dot(u->y, u->r, (size_t)(u->rows * u->D));
}

static void test_ln(int64_t rows, int64_t D, int affine)
{
    char what[128], tag[64];
    snprintf(tag, sizeof tag, "(rows=%lld D=%lld%s)", (long long)rows, (long long)D,
             affine ? " affine" : "");
    size_t n = (size_t)(rows * D), nd = (size_t)D, nr = (size_t)rows;
    ln_ud u = {rows, D, randv(n, 200, -1, 1), NULL, NULL, malloc(n * sizeof(float)),
               randv(n, 203, -1, 1), malloc(nr * sizeof(float)), malloc(nr * sizeof(float))};
    if (affine) u.gamma = randv(nd, 201, 0.5f, 1.5f), u.beta = randv(nd, 202, -0.5f, 0.5f);
    for (size_t i = 0; i < n; i++) {
        u.x[i] += 0.5f * (float)((i / nd) % 3); /* rows with nonzero means */
        u.r[i] += 0.5f * u.x[i];
    }

    /* forward against a double reference (biased variance, rstd = 1/sqrt(var + eps)) */
    ln_loss(&u);
    float *want = malloc(n * sizeof(float)), *wm = malloc(nr * sizeof(float)),
          *wr = malloc(nr * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = u.x + r * D;
        double m = 0, v = 0;
        for (int64_t j = 0; j < D; j++) m += xr[j];
        m /= (double)D;
        for (int64_t j = 0; j < D; j++) v += (xr[j] - m) * (xr[j] - m);
        double is = 1.0 / sqrt(v / (double)D + LN_EPS);
        wm[r] = (float)m, wr[r] = (float)is;
        for (int64_t j = 0; j < D; j++) {
            double y = (xr[j] - m) * is;
            want[r * D + j] = (float)(affine ? y * u.gamma[j] + u.beta[j] : y);
        }
    }
    snprintf(what, sizeof what, "layernorm y %s", tag);
    ssl_test_close(what, u.y, want, n, 2e-5, 2e-5);
    snprintf(what, sizeof what, "layernorm mean %s", tag);
    ssl_test_close(what, u.mean, wm, nr, 1e-6, 1e-6);
    snprintf(what, sizeof what, "layernorm rstd %s", tag);
    ssl_test_close(what, u.rstd, wr, nr, 1e-6, 1e-5);

    float *dx = malloc(n * sizeof(float)), *dg = calloc(nd, sizeof(float)),
          *db = calloc(nd, sizeof(float));
    C.be->layernorm_bwd(&C, rows, D, u.r, u.x, u.gamma, u.mean, u.rstd, dx, affine ? dg : NULL,
                        affine ? db : NULL);
    /* every element of dx against the textbook formula in double */
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = u.x + r * D, *dr = u.r + r * D;
        double m = 0, v = 0, sg = 0, sgx = 0;
        for (int64_t j = 0; j < D; j++) m += xr[j];
        m /= (double)D;
        for (int64_t j = 0; j < D; j++) v += (xr[j] - m) * (xr[j] - m);
        double is = 1.0 / sqrt(v / (double)D + LN_EPS);
        for (int64_t j = 0; j < D; j++) {
            double g = dr[j] * (affine ? u.gamma[j] : 1.0);
            sg += g, sgx += g * (xr[j] - m) * is;
        }
        for (int64_t j = 0; j < D; j++) {
            double g = dr[j] * (affine ? u.gamma[j] : 1.0);
            double xh = (xr[j] - m) * is;
            want[r * D + j] = (float)(is * (g - sg / (double)D - xh * sgx / (double)D));
        }
    }
    snprintf(what, sizeof what, "layernorm dx reference %s", tag);
    ssl_test_close(what, dx, want, n, 1e-4, 1e-4);

    float eps;
    double atol;
    fd_params((double)D, &eps, &atol);
    int checks = n > 2000 ? 150 : 400;
    snprintf(what, sizeof what, "layernorm dx %s", tag);
    ssl_test_gradcheck(what, ln_loss, &u, u.x, n, dx, checks, eps, atol, FD_RTOL);
    if (affine) {
        snprintf(what, sizeof what, "layernorm dgamma %s", tag);
        ssl_test_gradcheck(what, ln_loss, &u, u.gamma, nd, dg, 200, eps, atol, FD_RTOL);
        snprintf(what, sizeof what, "layernorm dbeta %s", tag);
        ssl_test_gradcheck(what, ln_loss, &u, u.beta, nd, db, 200, eps, atol, FD_RTOL);

        ln_loss(&u); /* gradcheck leaves mean/rstd from a perturbed forward: refresh them */

        /* every element of dgamma/dbeta against double sums (gradcheck samples) */
        float *wg = malloc(nd * sizeof(float)), *wb = malloc(nd * sizeof(float));
        for (int64_t j = 0; j < D; j++) {
            double sg = 0, sb = 0;
            for (int64_t r = 0; r < rows; r++) {
                double xh = ((double)u.x[r * D + j] - u.mean[r]) * u.rstd[r];
                sg += u.r[r * D + j] * xh;
                sb += u.r[r * D + j];
            }
            wg[j] = (float)sg, wb[j] = (float)sb;
        }
        snprintf(what, sizeof what, "layernorm dgamma all %s", tag);
        ssl_test_close(what, dg, wg, nd, 1e-4, 1e-5);
        snprintf(what, sizeof what, "layernorm dbeta all %s", tag);
        ssl_test_close(what, db, wb, nd, 1e-4, 1e-5);

        /* accumulate (+=) and bit-identical on a rerun; NULL dgamma/dbeta leaves dx unchanged */
        float *dg2 = malloc(nd * sizeof(float)), *db2 = malloc(nd * sizeof(float));
        float *dx2 = malloc(n * sizeof(float));
        for (size_t j = 0; j < nd; j++) {
            dg2[j] = 1.0f, wg[j] = dg[j] + 1.0f;
            db2[j] = -2.0f, wb[j] = db[j] - 2.0f;
        }
        C.be->layernorm_bwd(&C, rows, D, u.r, u.x, u.gamma, u.mean, u.rstd, dx2, dg2, db2);
        snprintf(what, sizeof what, "layernorm dgamma += %s", tag);
        ssl_test_close(what, dg2, wg, nd, 1e-6, 1e-6);
        snprintf(what, sizeof what, "layernorm dbeta += %s", tag);
        ssl_test_close(what, db2, wb, nd, 1e-6, 1e-6);
        memset(dg2, 0, nd * sizeof(float)), memset(db2, 0, nd * sizeof(float));
        C.be->layernorm_bwd(&C, rows, D, u.r, u.x, u.gamma, u.mean, u.rstd, dx2, dg2, db2);
        SSL_EXPECT(memcmp(dg2, dg, nd * sizeof(float)) == 0 &&
                       memcmp(db2, db, nd * sizeof(float)) == 0 &&
                       memcmp(dx2, dx, n * sizeof(float)) == 0,
                   "layernorm bwd %s not bit-identical on a rerun", tag);
        C.be->layernorm_bwd(&C, rows, D, u.r, u.x, u.gamma, u.mean, u.rstd, dx2, NULL, NULL);
        SSL_EXPECT(memcmp(dx2, dx, n * sizeof(float)) == 0,
                   "layernorm bwd %s: dx changes when dgamma/dbeta are NULL", tag);
        free(wg), free(wb), free(dg2), free(db2), free(dx2);
    }
    free(u.x), free(u.gamma), free(u.beta), free(u.y), free(u.r), free(u.mean), free(u.rstd);
    free(want), free(wm), free(wr), free(dx), free(dg), free(db);
}

int main(void)
{
    ssl_ctx_init(&C, "cpu");
    for (int affine = 0; affine <= 1; affine++) {
        test_bn(8, 5, 1, affine);     /* BatchNorm1d */
        test_bn(4, 3, 7, affine);     /* BatchNorm2d */
        test_bn(3, 4, 1, affine);     /* tiny batch: strongly nonlinear statistics */
        test_ln(6, 10, affine);
        test_ln(3, 1, affine);        /* D = 1: xhat = 0 */
    }
    test_bn(300, 130, 1, 1);          /* column blocks and row tiles with ragged edges, parallel */
    test_bn(6, 70, 81, 1);            /* S > 1 parallel path */
    test_ln(50, 768, 1);              /* parallel rows with per-thread dgamma/dbeta partials */
    test_ln(37, 1000, 0);
    ssl_ctx_free(&C);
    return ssl_test_exit();
}
