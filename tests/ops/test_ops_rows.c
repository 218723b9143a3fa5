/* CPU row-wise softmax (with scale), log-softmax and L2 normalisation against naive double loops,
 * their backwards against central finite differences of loss = sum(y * r), the documented in-place
 * uses, overflow safety for large logits, and F.normalize's eps clamp on a zero row. */
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

/* These losses are smooth with O(1) curvature, so for short rows eps = 1e-2 gives fd errors of
 * ~1e-3 of the gradient's rms (measured <= 0.2 of the limit): atol = 1e-2 rms and rtol = 1e-2
 * leave a wide margin, and a dropped term (O(0.1) of the gradient) still fails. In rows of
 * >= 100 elements the float rounding of the row's max/sum/norm moves all of them coherently,
 * so the step widens to 5e-2 (the per-element curvature is small there). */
#define FD_EPS 1e-2f
#define FD_EPS_WIDE 5e-2f
#define FD_ATOL 1e-2 /* times the rms of the gradient */
#define FD_RTOL 1e-2

enum { SOFTMAX, LOG_SOFTMAX, L2NORM };
static const char *const op_name[] = {"softmax", "log_softmax", "l2norm"};

typedef struct {
    int op;
    int64_t rows, D;
    float scale; /* softmax scale; l2norm eps */
    float *x, *y, *r, *norm;
} row_ud;

static void fwd(row_ud *u, const float *x, float *y)
{
    if (u->op == SOFTMAX) C.be->softmax_fwd(&C, u->rows, u->D, u->scale, x, y);
    else if (u->op == LOG_SOFTMAX) C.be->log_softmax_fwd(&C, u->rows, u->D, x, y);
    else C.be->l2norm_fwd(&C, u->rows, u->D, u->scale, x, y, u->norm);
}

static void bwd(row_ud *u, const float *dy, float *dx)
{
    if (u->op == SOFTMAX) C.be->softmax_bwd(&C, u->rows, u->D, u->scale, u->y, dy, dx);
    else if (u->op == LOG_SOFTMAX) C.be->log_softmax_bwd(&C, u->rows, u->D, u->y, dy, dx);
    else C.be->l2norm_bwd(&C, u->rows, u->D, u->y, u->norm, dy, dx);
}

static double row_loss(void *p)
{
    row_ud *u = p;
    fwd(u, u->x, u->y);
    return ssl_test_dot(u->y, u->r, (size_t)(u->rows * u->D));
}

/* Double-precision reference forward of one row. */
static void ref_row(const row_ud *u, const float *x, float *y, float *norm)
{
    int64_t D = u->D;
    if (u->op == L2NORM) {
        double ss = 0;
        for (int64_t j = 0; j < D; j++) ss += (double)x[j] * x[j];
        double nrm = fmax(sqrt(ss), (double)u->scale);
        for (int64_t j = 0; j < D; j++) y[j] = (float)(x[j] / nrm);
        *norm = (float)nrm;
        return;
    }
    double s = u->op == SOFTMAX ? u->scale : 1.0, m = -INFINITY, z = 0;
    for (int64_t j = 0; j < D; j++) m = fmax(m, s * x[j]);
    for (int64_t j = 0; j < D; j++) z += exp(s * x[j] - m);
    for (int64_t j = 0; j < D; j++)
        y[j] = (float)(u->op == SOFTMAX ? exp(s * x[j] - m) / z : s * x[j] - m - log(z));
}

static void test_rows(int op, int64_t rows, int64_t D, float scale, float amp)
{
    char what[128], tag[80];
    snprintf(tag, sizeof tag, "%s (rows=%lld D=%lld scale/eps=%g amp=%g)", op_name[op],
             (long long)rows, (long long)D, (double)scale, (double)amp);
    size_t n = (size_t)(rows * D), nr = (size_t)rows;
    row_ud u = {op, rows, D, scale, randv(n, 400 + (uint64_t)op, -amp, amp),
                malloc(n * sizeof(float)), randv(n, 410, -1, 1), malloc(nr * sizeof(float))};
    row_loss(&u);

    float *want = malloc(n * sizeof(float)), *wnorm = malloc(nr * sizeof(float));
    for (int64_t r = 0; r < rows; r++) ref_row(&u, u.x + r * D, want + r * D, wnorm + r);
    snprintf(what, sizeof what, "%s fwd", tag);
    /* log-softmax values are O(log D + amp): absolute error scales with them */
    ssl_test_close(what, u.y, want, n, op == LOG_SOFTMAX ? 1e-5 : 1e-7, 1e-5);
    if (op == L2NORM) {
        snprintf(what, sizeof what, "%s norm", tag);
        ssl_test_close(what, u.norm, wnorm, nr, 0, 1e-6);
    }

    /* in place: y aliases x (softmax and log-softmax are documented in-place safe) */
    float *tmp = malloc(n * sizeof(float));
    if (op != L2NORM) {
        memcpy(tmp, u.x, n * sizeof(float));
        fwd(&u, tmp, tmp);
        SSL_EXPECT(memcmp(tmp, u.y, n * sizeof(float)) == 0, "%s: in-place forward differs", tag);
    }

    float *dx = malloc(n * sizeof(float));
    bwd(&u, u.r, dx);
    /* in place: dx aliases dy */
    memcpy(tmp, u.r, n * sizeof(float));
    bwd(&u, tmp, tmp);
    SSL_EXPECT(memcmp(tmp, dx, n * sizeof(float)) == 0, "%s: in-place backward differs", tag);

    /* every element against the closed-form backward in double */
    double rms = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *y = want + r * D, *dy = u.r + r * D;
        double s = 0;
        for (int64_t j = 0; j < D; j++) s += u.op == LOG_SOFTMAX ? dy[j] : (double)dy[j] * y[j];
        for (int64_t j = 0; j < D; j++) {
            double g = u.op == SOFTMAX       ? scale * y[j] * (dy[j] - s)
                       : u.op == LOG_SOFTMAX ? dy[j] - exp((double)y[j]) * s
                                             : (dy[j] - y[j] * s) / wnorm[r];
            tmp[r * D + j] = (float)g;
            rms += g * g;
        }
    }
    rms = sqrt(rms / (double)n);
    snprintf(what, sizeof what, "%s bwd reference", tag);
    ssl_test_close(what, dx, tmp, n, 1e-5 * rms + 1e-8, 1e-4);

    if (amp <= 4) {
        /* the step scales with the input (l2norm curvature ~ 1/||x||^2), the tolerance with the
         * gradient's rms (softmax gradients shrink as 1/D) */
        float eps = (D >= 100 ? FD_EPS_WIDE : FD_EPS) * (amp < 1 ? amp : 1);
        snprintf(what, sizeof what, "%s bwd", tag);
        int checks = n > 2000 ? 150 : 400;
        ssl_test_gradcheck(what, row_loss, &u, u.x, n, dx, checks, eps, FD_ATOL * rms, FD_RTOL);
    }

    free(u.x), free(u.y), free(u.r), free(u.norm), free(want), free(wnorm), free(tmp), free(dx);
}

/* F.normalize on a zero row: norm clamps to eps, y = 0, and dx = dy / eps stays finite. */
static void test_l2norm_zero(void)
{
    float x[8] = {0}, y[8], dy[8] = {1, -1, 2, 0, 0, 0, 0, 0.5f}, dx[8], nrm;
    C.be->l2norm_fwd(&C, 1, 8, 1e-6f, x, y, &nrm);
    int ok = nrm == 1e-6f;
    for (int j = 0; j < 8; j++) ok &= y[j] == 0.0f;
    C.be->l2norm_bwd(&C, 1, 8, y, &nrm, dy, dx);
    for (int j = 0; j < 8; j++) ok &= fabsf(dx[j] - dy[j] / 1e-6f) <= 1e-6f * fabsf(dy[j] / 1e-6f);
    SSL_EXPECT(ok, "l2norm zero row: norm %g (want 1e-6), y must be 0 and dx = dy / eps", nrm);
}

/* A -inf logit (an attention mask) gets probability 0; a NaN anywhere in a row poisons the whole
 * row instead of vanishing, so divergence stays visible. */
static void test_softmax_special(void)
{
    float x[2][6] = {{0.5f, -INFINITY, 1.0f, -2.0f, 0.0f, 3.0f},
                     {0.5f, NAN, 1.0f, -2.0f, 0.0f, 3.0f}};
    float y[2][6], l[2][6];
    C.be->softmax_fwd(&C, 2, 6, 1.0f, &x[0][0], &y[0][0]);
    C.be->log_softmax_fwd(&C, 2, 6, &x[0][0], &l[0][0]);
    double s = 0;
    int ok = y[0][1] == 0.0f && l[0][1] == -INFINITY, nan_row = 1;
    for (int j = 0; j < 6; j++) {
        s += y[0][j];
        nan_row &= isnan(y[1][j]) && isnan(l[1][j]);
    }
    SSL_EXPECT(ok && fabs(s - 1.0) < 1e-6, "softmax with a -inf logit: p = %g, sum %g", y[0][1], s);
    SSL_EXPECT(nan_row, "softmax / log_softmax of a row with NaN must be NaN throughout");
}

int main(void)
{
    ssl_ctx_init(&C, "cpu");
    test_rows(SOFTMAX, 5, 17, 1.0f, 2);
    test_rows(SOFTMAX, 4, 33, 0.125f, 4);       /* attention scale */
    test_rows(SOFTMAX, 3, 9, -2.0f, 1);         /* negative scale: max of scale*x, not of x */
    test_rows(SOFTMAX, 2, 1, 1.0f, 1);          /* D = 1: y = 1, dx = 0 */
    test_rows(SOFTMAX, 64, 1000, 1.0f / 8, 2);  /* parallel rows */
    test_rows(SOFTMAX, 4, 50, 1.0f, 1000);      /* logits that overflow a naive exp */
    test_rows(LOG_SOFTMAX, 5, 17, 1.0f, 2);
    test_rows(LOG_SOFTMAX, 3, 100, 1.0f, 4);
    test_rows(LOG_SOFTMAX, 64, 1000, 1.0f, 2);
    test_rows(LOG_SOFTMAX, 4, 50, 1.0f, 1000);
    test_rows(L2NORM, 5, 17, 1e-12f, 2);
    test_rows(L2NORM, 3, 128, 1e-12f, 1);
    test_rows(L2NORM, 64, 1000, 1e-12f, 1);
    test_rows(L2NORM, 4, 16, 1e-12f, 1e-3f);    /* small norms, far above eps */
    test_l2norm_zero();
    test_softmax_special();
    ssl_ctx_free(&C);
    return ssl_test_exit();
}
