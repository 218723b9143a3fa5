/* CPU elementwise ops (fill, copy, BLAS-1 style arithmetic, ReLU, exact GELU) and the per-channel
 * bias broadcast and its gradient over (outer, C, inner). Plain loops the compiler vectorises,
 * split across OpenMP threads only when the tensor is large enough to repay the fork. */
#include "framework/backend/cpu/cpu.h"

#include <math.h>
#include <string.h>

/* Below this many elements a parallel region costs more than it saves. */
#define PAR_MIN 32768

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

/* Columns summed together by one thread in bias_grad's inner == 1 path: 64 doubles on the stack,
 * and each row contributes one 256-byte contiguous run. */
#define COL_BLOCK 64

void ssl_cpu_fill(ssl_ctx *c, float *x, size_t n, float v)
{
    (void)c;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] = v;
}

void ssl_cpu_copy(ssl_ctx *c, float *dst, const float *src, size_t n)
{
    (void)c;
    if (dst == src || n == 0) return;
    if (n < PAR_MIN) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    /* Disjoint 16 KiB chunks per thread; callers never pass partially overlapping buffers. */
    size_t nchunk = (n + 4095) / 4096;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nchunk; b++) {
        size_t i0 = b * 4096, len = n - i0 < 4096 ? n - i0 : 4096;
        memcpy(dst + i0, src + i0, len * sizeof(float));
    }
}

void ssl_cpu_scale(ssl_ctx *c, float *x, size_t n, float a)
{
    (void)c;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

void ssl_cpu_axpby(ssl_ctx *c, size_t n, float a, const float *x, float b, float *y)
{
    (void)c;
    /* As BLAS: b == 0 does not read y, so uninitialised (even NaN) memory can be overwritten. */
    if (b == 0.0f) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) y[i] = a * x[i];
        return;
    }
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a * x[i] + b * y[i];
}

void ssl_cpu_add(ssl_ctx *c, size_t n, const float *a, const float *b, float *y)
{
    (void)c;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void ssl_cpu_mul(ssl_ctx *c, size_t n, const float *a, const float *b, float *y)
{
    (void)c;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

void ssl_cpu_relu_fwd(ssl_ctx *c, size_t n, const float *x, float *y)
{
    (void)c;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void ssl_cpu_relu_bwd(ssl_ctx *c, size_t n, const float *y, const float *dy, float *dx)
{
    (void)c;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/* gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), PyTorch's default (approximate='none'). */
void ssl_cpu_gelu_fwd(ssl_ctx *c, size_t n, const float *x, float *y)
{
    (void)c;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN / 8)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * INV_SQRT2));
    }
}

/* gelu'(x) = Phi(x) + x * phi(x), phi the standard normal density. */
void ssl_cpu_gelu_bwd(ssl_ctx *c, size_t n, const float *x, const float *dy, float *dx)
{
    (void)c;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN / 8)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * INV_SQRT2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

void ssl_cpu_bias_add(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *b, float *y)
{
    (void)c;
    int64_t rows = outer * C;
    if (inner == 1) {
        /* (outer, C): a bias row added to every row. */
#pragma omp parallel for schedule(static) if (rows >= PAR_MIN)
        for (int64_t o = 0; o < outer; o++) {
            float *yo = y + o * C;
            for (int64_t j = 0; j < C; j++) yo[j] += b[j];
        }
        return;
    }
#pragma omp parallel for schedule(static) if (rows * inner >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        float v = b[r % C];
        float *yr = y + r * inner;
        for (int64_t i = 0; i < inner; i++) yr[i] += v;
    }
}

void ssl_cpu_bias_grad(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *dy,
                       float *db)
{
    (void)c;
    if (inner == 1) {
        /* (outer, C) row-major: a column sum. Each thread owns a block of columns and walks all
         * rows, so the order of additions (and the result) does not depend on the thread count. */
        int64_t nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if (outer * C >= PAR_MIN)
        for (int64_t blk = 0; blk < nblk; blk++) {
            int64_t c0 = blk * COL_BLOCK, w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
            double acc[COL_BLOCK] = {0};
            for (int64_t o = 0; o < outer; o++) {
                const float *d = dy + o * C + c0;
                for (int64_t j = 0; j < w; j++) acc[j] += d[j];
            }
            for (int64_t j = 0; j < w; j++) db[c0 + j] += (float)acc[j];
        }
        return;
    }
#pragma omp parallel for schedule(static) if (outer * C * inner >= PAR_MIN)
    for (int64_t ch = 0; ch < C; ch++) {
        double s = 0.0;
        for (int64_t o = 0; o < outer; o++) {
            const float *d = dy + (o * C + ch) * inner;
#pragma omp simd reduction(+ : s)
            for (int64_t i = 0; i < inner; i++) s += d[i];
        }
        db[ch] += (float)s;
    }
}
