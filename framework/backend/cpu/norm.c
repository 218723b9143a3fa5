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

/* x, fp32 (h == 0) or bfloat16 bits (h == 1), at element i; h is a constant in each inlined copy */
SSL_VINLINE float ldx(const void *x, int h, int64_t i)
{
    return h ? ssl_vbf16_widen(((const uint16_t *)x)[i]) : ((const float *)x)[i];
}

SSL_VINLINE void bn_stats(int64_t N, int64_t C, int64_t S, const void *x, int h, double *sum, double *sumsq)
{
    if (S == 1) {
        int64_t nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN)
        for (int64_t blk = 0; blk < nblk; blk++) {
            int64_t c0 = blk * COL_BLOCK, w = min64(COL_BLOCK, C - c0);
            double s[COL_BLOCK] = {0}, ss[COL_BLOCK] = {0};
            for (int64_t n = 0; n < N; n++) {
                const int64_t xo = n * C + c0;
#pragma omp simd
                for (int64_t j = 0; j < w; j++) {
                    double v = ldx(x, h, xo + j);
                    s[j] += v;
                    ss[j] += v * v;
                }
            }
            memcpy(sum + c0, s, (size_t)w * sizeof(double));
            memcpy(sumsq + c0, ss, (size_t)w * sizeof(double));
        }
        return;
    }
#pragma omp parallel for schedule(static) if (N * C * S >= PAR_MIN)
    for (int64_t ch = 0; ch < C; ch++) {
        double s = 0.0, ss = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const int64_t xo = (n * C + ch) * S;
#pragma omp simd reduction(+ : s, ss)
            for (int64_t i = 0; i < S; i++) {
                double v = ldx(x, h, xo + i);
                s += v;
                ss += v * v;
            }
        }
        sum[ch] = s;
        sumsq[ch] = ss;
    }
}

void ssl_cpu_bn_stats(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x, double *sum, double *sumsq)
{
    (void)c;
    bn_stats(N, C, S, x, 0, sum, sumsq);
}

void ssl_cpu_bn_stats_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x, double *sum,
                           double *sumsq)
{
    (void)c;
    bn_stats(N, C, S, x, 1, sum, sumsq);
}

SSL_VINLINE void bn_apply(int64_t N, int64_t C, int64_t S, const void *x, int h, const float *mean,
                          const float *invstd, const float *gamma, const float *beta, int relu, float *y)
{
    /* y = (x - mean) * k + b with k = invstd * gamma, b = beta; not x * k + (beta - mean * k),
     * which cancels when |mean| >> std. The fused ReLU is a clamp at lo (-inf: none), written
     * `v < lo ? lo : v` so one loop serves both and a NaN still reaches the loss check. */
    const float lo = relu ? 0.0f : -INFINITY;
    if (S == 1) {
        /* Tiles of ROW_BLOCK rows x COL_BLOCK channels; coefficients once per tile. */
        int64_t nrb = (N + ROW_BLOCK - 1) / ROW_BLOCK, ncb = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for collapse(2) schedule(static) if (N * C >= PAR_MIN)
        for (int64_t rb = 0; rb < nrb; rb++)
            for (int64_t cb = 0; cb < ncb; cb++) {
                int64_t n0 = rb * ROW_BLOCK, n1 = min64(N, n0 + ROW_BLOCK);
                int64_t c0 = cb * COL_BLOCK, w = min64(COL_BLOCK, C - c0);
                float k[COL_BLOCK], b[COL_BLOCK], m[COL_BLOCK];
                for (int64_t j = 0; j < w; j++) {
                    k[j] = invstd[c0 + j] * (gamma ? gamma[c0 + j] : 1.0f);
                    b[j] = beta ? beta[c0 + j] : 0.0f;
                    m[j] = mean[c0 + j];
                }
                for (int64_t n = n0; n < n1; n++) {
                    const int64_t xo = n * C + c0;
                    float *yr = y + n * C + c0;
#pragma omp simd
                    for (int64_t j = 0; j < w; j++) {
                        float v = (ldx(x, h, xo + j) - m[j]) * k[j] + b[j];
                        yr[j] = v < lo ? lo : v;
                    }
                }
            }
        return;
    }
#pragma omp parallel for collapse(2) schedule(static) if (N * C * S >= PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            float k = invstd[ch] * (gamma ? gamma[ch] : 1.0f);
            float m = mean[ch], b = beta ? beta[ch] : 0.0f;
            const int64_t xo = (n * C + ch) * S;
            float *yp = y + (n * C + ch) * S;
#pragma omp simd
            for (int64_t i = 0; i < S; i++) {
                float v = (ldx(x, h, xo + i) - m) * k + b;
                yp[i] = v < lo ? lo : v;
            }
        }
}

void ssl_cpu_bn_apply(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x, const float *mean,
                      const float *invstd, const float *gamma, const float *beta, int relu, float *y)
{
    (void)c;
    bn_apply(N, C, S, x, 0, mean, invstd, gamma, beta, relu, y);
}

void ssl_cpu_bn_apply_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x, const float *mean,
                           const float *invstd, const float *gamma, const float *beta, int relu, float *y)
{
    (void)c;
    bn_apply(N, C, S, x, 1, mean, invstd, gamma, beta, relu, y);
}

SSL_VINLINE void bn_bwd_stats(int64_t N, int64_t C, int64_t S, const float *dy, const void *x, int h,
                              const float *mean, const float *invstd, double *sum_dy, double *sum_dy_xhat)
{
    /* sum(dy * xhat) = invstd * sum(dy * (x - mean)): one multiply per channel, not per element. */
    if (S == 1) {
        int64_t nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN)
        for (int64_t blk = 0; blk < nblk; blk++) {
            int64_t c0 = blk * COL_BLOCK, w = min64(COL_BLOCK, C - c0);
            double s[COL_BLOCK] = {0}, sx[COL_BLOCK] = {0};
            for (int64_t n = 0; n < N; n++) {
                const float *dr = dy + n * C + c0;
                const int64_t xo = n * C + c0;
#pragma omp simd
                for (int64_t j = 0; j < w; j++) {
                    double d = dr[j];
                    s[j] += d;
                    sx[j] += d * (double)(ldx(x, h, xo + j) - mean[c0 + j]);
                }
            }
            for (int64_t j = 0; j < w; j++) {
                sum_dy[c0 + j] = s[j];
                sum_dy_xhat[c0 + j] = sx[j] * invstd[c0 + j];
            }
        }
        return;
    }
#pragma omp parallel for schedule(static) if (N * C * S >= PAR_MIN)
    for (int64_t ch = 0; ch < C; ch++) {
        double s = 0.0, sx = 0.0;
        float m = mean[ch];
        for (int64_t n = 0; n < N; n++) {
            const float *dp = dy + (n * C + ch) * S;
            const int64_t xo = (n * C + ch) * S;
#pragma omp simd reduction(+ : s, sx)
            for (int64_t i = 0; i < S; i++) {
                double d = dp[i];
                s += d;
                sx += d * (double)(ldx(x, h, xo + i) - m);
            }
        }
        sum_dy[ch] = s;
        sum_dy_xhat[ch] = sx * invstd[ch];
    }
}

void ssl_cpu_bn_bwd_stats(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const float *x,
                          const float *mean, const float *invstd, double *sum_dy, double *sum_dy_xhat)
{
    (void)c;
    bn_bwd_stats(N, C, S, dy, x, 0, mean, invstd, sum_dy, sum_dy_xhat);
}

void ssl_cpu_bn_bwd_stats_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const uint16_t *x,
                               const float *mean, const float *invstd, double *sum_dy, double *sum_dy_xhat)
{
    (void)c;
    bn_bwd_stats(N, C, S, dy, x, 1, mean, invstd, sum_dy, sum_dy_xhat);
}

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

SSL_VINLINE void bn_bwd_data(int64_t N, int64_t C, int64_t S, const float *dy, const void *x, int h,
                             const float *mean, const float *invstd, const float *gamma, const double *sum_dy,
                             const double *sum_dy_xhat, double count, float *dx)
{
    if (S == 1) {
        /* Tiles of ROW_BLOCK rows x COL_BLOCK channels; coefficients once per tile. */
        int64_t nrb = (N + ROW_BLOCK - 1) / ROW_BLOCK, ncb = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for collapse(2) schedule(static) if (N * C >= PAR_MIN)
        for (int64_t rb = 0; rb < nrb; rb++)
            for (int64_t cb = 0; cb < ncb; cb++) {
                int64_t n0 = rb * ROW_BLOCK, n1 = min64(N, n0 + ROW_BLOCK);
                int64_t c0 = cb * COL_BLOCK, w = min64(COL_BLOCK, C - c0);
                float k[COL_BLOCK], a[COL_BLOCK], b[COL_BLOCK], m[COL_BLOCK];
                for (int64_t j = 0; j < w; j++) {
                    bn_bwd_coef(c0 + j, invstd, gamma, sum_dy, sum_dy_xhat, count, &k[j], &a[j],
                                &b[j]);
                    m[j] = mean[c0 + j];
                }
                for (int64_t n = n0; n < n1; n++) {
                    const float *dr = dy + n * C + c0;
                    const int64_t xo = n * C + c0;
                    float *o = dx + n * C + c0;
#pragma omp simd
                    for (int64_t j = 0; j < w; j++)
                        o[j] = k[j] * (dr[j] - a[j] - (ldx(x, h, xo + j) - m[j]) * b[j]);
                }
            }
        return;
    }
#pragma omp parallel for collapse(2) schedule(static) if (N * C * S >= PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            float k, a, b, m = mean[ch];
            bn_bwd_coef(ch, invstd, gamma, sum_dy, sum_dy_xhat, count, &k, &a, &b);
            const float *dp = dy + (n * C + ch) * S;
            const int64_t xo = (n * C + ch) * S;
            float *o = dx + (n * C + ch) * S;
#pragma omp simd
            for (int64_t i = 0; i < S; i++) o[i] = k * (dp[i] - a - (ldx(x, h, xo + i) - m) * b);
        }
}

void ssl_cpu_bn_bwd_data(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const float *x,
                         const float *mean, const float *invstd, const float *gamma, const double *sum_dy,
                         const double *sum_dy_xhat, double count, float *dx)
{
    (void)c;
    bn_bwd_data(N, C, S, dy, x, 0, mean, invstd, gamma, sum_dy, sum_dy_xhat, count, dx);
}

void ssl_cpu_bn_bwd_data_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const uint16_t *x,
                              const float *mean, const float *invstd, const float *gamma, const double *sum_dy,
                              const double *sum_dy_xhat, double count, float *dx)
{
    (void)c;
    bn_bwd_data(N, C, S, dy, x, 1, mean, invstd, gamma, sum_dy, sum_dy_xhat, count, dx);
}

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
