/* CPU row ops for a softmax whose last dim is split across ranks (DINO's prototypes sharded over a
 * model-parallel group): the max / sum-of-exp / apply split of a log-sum-exp, DINO's view-pair
 * cross-entropy on the resulting log-probabilities, and an x log x reduction for entropy monitors.
 * Threads split rows; row sums accumulate in double. */
#include "framework/backend/cpu/cpu.h"
#include "framework/backend/cpu/vmath.h"
#include "framework/core/check.h"

#include <math.h>

#define PAR_MIN 16384
#define MAX_TEACHER_VIEWS 8

/* z_j = scale * (x_j - c_j); the centre is optional so one kernel serves teacher and student. */
#define ZVAL(xr, ce, j, scale) ((scale) * ((ce) ? (xr)[j] - (ce)[j] : (xr)[j]))

void ssl_cpu_row_max(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x,
                     const float *centre, float *mx)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        float m = -INFINITY;
#pragma omp simd reduction(max : m)
        for (int64_t j = 0; j < D; j++) {
            float v = ZVAL(xr, centre, j, scale);
            m = v > m ? v : m;
        }
        mx[r] = m;
    }
}

void ssl_cpu_row_sumexp(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x,
                        const float *centre, const float *mx, double *se)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        const float m = mx[r];
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < D; j++) s += ssl_vexpf(ZVAL(xr, centre, j, scale) - m);
        se[r] = s;
    }
}

void ssl_cpu_softmax_apply(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x,
                           const float *centre, const float *mx, const double *se, float *logp,
                           float *p)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        const float lse = mx[r] + (float)log(se[r]);
        float *lr = logp ? logp + r * D : NULL, *pr = p ? p + r * D : NULL;
        if (lr) {
#pragma omp simd
            for (int64_t j = 0; j < D; j++) lr[j] = ZVAL(xr, centre, j, scale) - lse;
        }
        if (pr) {
#pragma omp simd
            for (int64_t j = 0; j < D; j++) pr[j] = ssl_vexpf(ZVAL(xr, centre, j, scale) - lse);
        }
    }
}

/* One student row against its target, the sum of the nt teacher rows t[]: returns -sum T LS and
 * writes o = g (nt exp(LS) - T) when o is non-NULL. DINO's nt is 1 (global views) or 2 (local views):
 * those get loops the compiler vectorises. */
static double xent_row(int64_t D, const float *const *t, int nt, const float *ls, float g, float *o)
{
    const float w = (float)nt;
    double s = 0.0;
    if (o && (nt == 1 || nt == 2)) {
        const float *t0 = t[0], *t1 = nt == 2 ? t[1] : t[0];
        const float b = nt == 2 ? 1.0f : 0.0f; /* the second row counts only when there is one */
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < D; j++) {
            const float tj = t0[j] + b * t1[j], l = ls[j]; /* l read before o[j] is written */
            s += (double)tj * l;
            o[j] = g * (w * ssl_vexpf(l) - tj);
        }
        return -s;
    }
    for (int64_t j = 0; j < D; j++) {
        float tj = 0.0f;
        for (int k = 0; k < nt; k++) tj += t[k][j];
        const float l = ls[j];
        s += (double)tj * l;
        if (o) o[j] = g * (w * ssl_vexpf(l) - tj);
    }
    return -s;
}

/* Student row r = (v, i): its target is the sum of the other teacher views' rows of image i. The
 * per-row sums go to the workspace and are added in row order, so the total does not depend on the
 * thread count. */
void ssl_cpu_dino_xent_rows(ssl_ctx *c, int64_t R, int64_t D, int vt, int vs, const float *P,
                            const float *LS, float g, float *dS, double *ce_sum)
{
    SSL_ASSERT(vt > 0 && vt <= MAX_TEACHER_VIEWS && vs > 0);
    const int64_t rows = (int64_t)vs * R;
    double *ce = ssl_ctx_workspace(c, (size_t)rows * sizeof(double));
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t v = r / R, i = r % R;
        const float *t[MAX_TEACHER_VIEWS];
        int nt = 0;
        for (int iq = 0; iq < vt; iq++)
            if (iq != v) t[nt++] = P + (iq * R + i) * D;
        ce[r] = xent_row(D, t, nt, LS + r * D, g, dS ? dS + r * D : NULL);
    }
    double total = 0.0;
    for (int64_t r = 0; r < rows; r++) total += ce[r];
    *ce_sum = total;
}

double ssl_cpu_xlogx_sum(ssl_ctx *c, size_t n, float a, const float *x)
{
    (void)c;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double v = (double)a * x[i];
        if (v > 0) s += v * log(v);
    }
    return s;
}
