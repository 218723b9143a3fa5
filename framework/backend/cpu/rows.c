/* CPU row-wise ops over (rows, D): softmax (attention, with the 1/sqrt(d) or temperature folded
 * in as `scale`), log-softmax (cross-entropy losses) and L2 normalisation (projector outputs,
 * cosine similarities). Threads split rows; row sums accumulate in double. */
#include "framework/backend/cpu/cpu.h"
#include "framework/backend/cpu/vmath.h"

#include <math.h>

#define PAR_MIN 16384

/* Softmax subtracts the row maximum so exp never overflows; every kernel reads x[j] / dy[j] before
 * writing the same j, which makes them safe in place. */
void ssl_cpu_softmax_fwd(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, float *y)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        float m = -INFINITY;
#pragma omp simd reduction(max : m)
        for (int64_t j = 0; j < D; j++) {
            float v = scale * xr[j];
            m = v > m ? v : m; /* not fmaxf: it does not vectorise */
        }
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < D; j++) {
            float e = ssl_vexpf(scale * xr[j] - m);
            yr[j] = e;
            s += e;
        }
        float inv = (float)(1.0 / s);
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] *= inv;
    }
}

void ssl_cpu_softmax_bwd(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *y,
                         const float *dy, float *dx)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * D, *dr = dy + r * D;
        float *o = dx + r * D;
        double dot = 0.0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < D; j++) dot += (double)dr[j] * yr[j];
        float d = (float)dot;
#pragma omp simd
        for (int64_t j = 0; j < D; j++) o[j] = scale * yr[j] * (dr[j] - d);
    }
}

void ssl_cpu_log_softmax_fwd(ssl_ctx *c, int64_t rows, int64_t D, const float *x, float *y)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        float m = -INFINITY;
#pragma omp simd reduction(max : m)
        for (int64_t j = 0; j < D; j++) m = xr[j] > m ? xr[j] : m;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < D; j++) s += ssl_vexpf(xr[j] - m);
        float lse = m + (float)log(s);
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] = xr[j] - lse;
    }
}

void ssl_cpu_log_softmax_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *dy,
                             float *dx)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * D, *dr = dy + r * D;
        float *o = dx + r * D;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < D; j++) s += dr[j];
        float sd = (float)s;
#pragma omp simd
        for (int64_t j = 0; j < D; j++) o[j] = dr[j] - ssl_vexpf(yr[j]) * sd;
    }
}

/* F.normalize: y = x / max(||x||, eps); the clamp keeps zero rows finite (y = 0). */
void ssl_cpu_l2norm_fwd(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x, float *y,
                        float *norm)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int64_t j = 0; j < D; j++) ss += (double)xr[j] * xr[j];
        float nrm = fmaxf((float)sqrt(ss), eps);
        if (norm) norm[r] = nrm;
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] = xr[j] / nrm;
    }
}

/* Jacobian of x/||x|| applied to dy: (dy - y (y . dy)) / ||x||. */
void ssl_cpu_l2norm_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *norm,
                        const float *dy, float *dx)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * D, *dr = dy + r * D;
        float *o = dx + r * D;
        double dot = 0.0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < D; j++) dot += (double)dr[j] * yr[j];
        float d = (float)dot, inv = 1.0f / norm[r];
#pragma omp simd
        for (int64_t j = 0; j < D; j++) o[j] = (dr[j] - yr[j] * d) * inv;
    }
}
