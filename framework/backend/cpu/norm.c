/* CPU batch norm (split into local statistics / apply / backward statistics / backward data so the
 * per-channel sums can be all-reduced across ranks in between) and layer norm over the last dim.
 * Per-channel sums accumulate in double. Layout (N, C, S): S > 1 walks contiguous planes per
 * channel; S == 1 (BatchNorm1d on (N, C)) walks blocks of columns so every read is contiguous. */
#include "framework/backend/cpu/cpu.h"
#include "framework/backend/cpu/vmath.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define PAR_MIN 32768
/* Channels per block in the S == 1 paths: stack accumulators, 256-byte contiguous row runs. */
#define COL_BLOCK 64
/* Rows per tile in the S == 1 elementwise paths (coefficients are computed once per tile). */
#define ROW_BLOCK 128

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---------------------------------------------------------------------------------------------- */
/* batch norm                                                                                     */

/* dx = k * (dy - a - (x - mean) * b) with k = gamma*invstd, a = sum_dy/count,
 * b = invstd * sum_dy_xhat/count (xhat = (x - mean) * invstd folded into b). */
static inline void bn_bwd_coef(int64_t ch, const float *invstd, const float *gamma,
                               const double *sum_dy, const double *sum_dy_xhat, double count,
                               float *k, float *a, float *b)
{
    *k = invstd[ch] * (gamma ? gamma[ch] : 1.0f);
    *a = (float)(sum_dy[ch] / count);
    *b = (float)(sum_dy_xhat[ch] / count * invstd[ch]);
}

/* Partial sums per plane in bn_kernels.inc, and their sum in lane order. */
#define LANES 8
static inline double lanes_sum(const double *p)
{
    double t = 0.0;
    for (int k = 0; k < LANES; k++) t += p[k];
    return t;
}

#define BN_X float
#define BN_LD(v) (v)
#define BN_FN(name) ssl_cpu_##name
#include "framework/backend/cpu/bn_kernels.inc"
#undef BN_X
#undef BN_LD
#undef BN_FN

/* x a bf16 activation (backend.h's _bf16 ops): the same arithmetic on its exact widening */
#define BN_X uint16_t
#define BN_LD(v) ssl_vbf16_widen(v)
#define BN_FN(name) ssl_cpu_##name##_bf16
#include "framework/backend/cpu/bn_kernels.inc"
#undef BN_X
#undef BN_LD
#undef BN_FN

/* ---------------------------------------------------------------------------------------------- */
/* layer norm                                                                                     */

/* One row of layer norm. Always inlined into call sites where gamma/beta are known NULL or known
 * non-NULL, so the per-element `gamma ? gamma[j] : 1` folds away and the loops vectorise. */
SSL_VINLINE void ln_fwd_row(int64_t D, float eps, const float *xr, const float *gamma,
                            const float *beta, float *yr, float *mean, float *rstd)
{
    /* Two passes (mean, then centred squares): no cancellation for large-mean rows. */
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < D; j++) s += xr[j];
    float m = (float)(s / (double)D);
    double v = 0.0;
#pragma omp simd reduction(+ : v)
    for (int64_t j = 0; j < D; j++) {
        double d = xr[j] - m;
        v += d * d;
    }
    float rs = (float)(1.0 / sqrt(v / (double)D + (double)eps));
    if (mean) *mean = m;
    if (rstd) *rstd = rs;
#pragma omp simd
    for (int64_t j = 0; j < D; j++)
        yr[j] = (xr[j] - m) * rs * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
}

void ssl_cpu_layernorm_fwd(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x,
                           const float *gamma, const float *beta, float *y, float *mean,
                           float *rstd)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D, *mo = mean ? mean + r : NULL, *ro = rstd ? rstd + r : NULL;
        if (gamma && beta) ln_fwd_row(D, eps, xr, gamma, beta, yr, mo, ro);
        else if (gamma) ln_fwd_row(D, eps, xr, gamma, NULL, yr, mo, ro);
        else if (beta) ln_fwd_row(D, eps, xr, NULL, beta, yr, mo, ro);
        else ln_fwd_row(D, eps, xr, NULL, NULL, yr, mo, ro);
    }
}

/* One row of the layer-norm backward (see ln_fwd_row on the inlining); pg/pb (NULL: skipped)
 * accumulate dgamma/dbeta partials. Reads dy[j] before writing dx[j]: dx may alias dy. */
SSL_VINLINE void ln_bwd_row(int64_t D, const float *dr, const float *xr, const float *gamma,
                            float m, float rs, float *o, double *pg, double *pb)
{
    double sg = 0.0, sgx = 0.0;
#pragma omp simd reduction(+ : sg, sgx)
    for (int64_t j = 0; j < D; j++) {
        float xh = (xr[j] - m) * rs;
        float g = dr[j] * (gamma ? gamma[j] : 1.0f);
        sg += g;
        sgx += (double)g * xh;
    }
    if (pg) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) {
            float xh = (xr[j] - m) * rs;
            pg[j] += (double)dr[j] * xh;
            pb[j] += dr[j];
        }
    }
    float a = (float)(sg / (double)D), b = (float)(sgx / (double)D);
#pragma omp simd
    for (int64_t j = 0; j < D; j++) {
        float xh = (xr[j] - m) * rs;
        float g = dr[j] * (gamma ? gamma[j] : 1.0f);
        o[j] = rs * (g - a - xh * b);
    }
}

/* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma;
 * dgamma += sum_rows dy * xhat; dbeta += sum_rows dy.
 * The parameter sums go through per-thread double partials (from the context workspace) that are
 * added in thread order afterwards: no atomics, and bit-identical for a fixed thread count. */
void ssl_cpu_layernorm_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *dy, const float *x,
                           const float *gamma, const float *mean, const float *rstd, float *dx,
                           float *dgamma, float *dbeta)
{
    if (rows <= 0 || D <= 0) return;
    int want_params = dgamma || dbeta;
    int T = rows * D >= PAR_MIN ? omp_get_max_threads() : 1;
    double *part = NULL;
    if (want_params) {
        part = ssl_ctx_workspace(c, (size_t)T * 2 * (size_t)D * sizeof(double));
        memset(part, 0, (size_t)T * 2 * (size_t)D * sizeof(double));
    }
#pragma omp parallel num_threads(T)
    {
        double *pg = want_params ? part + (size_t)omp_get_thread_num() * 2 * (size_t)D : NULL;
        double *pb = want_params ? pg + D : NULL;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * D, *dr = dy + r * D;
            if (gamma) ln_bwd_row(D, dr, xr, gamma, mean[r], rstd[r], dx + r * D, pg, pb);
            else ln_bwd_row(D, dr, xr, NULL, mean[r], rstd[r], dx + r * D, pg, pb);
        }
    }
    if (!want_params) return;
#pragma omp parallel for schedule(static) if ((int64_t)T * D >= PAR_MIN)
    for (int64_t j = 0; j < D; j++) {
        double sg = 0.0, sb = 0.0;
        for (int t = 0; t < T; t++) {
            sg += part[(size_t)t * 2 * (size_t)D + (size_t)j];
            sb += part[(size_t)t * 2 * (size_t)D + (size_t)D + (size_t)j];
        }
        if (dgamma) dgamma[j] += (float)sg;
        if (dbeta) dbeta[j] += (float)sb;
    }
}
