/* CPU elementwise ops (fill, copy, BLAS-1 style arithmetic, ReLU, exact GELU) and the per-channel
 * bias broadcast and its gradient over (outer, C, inner). Plain loops the compiler vectorises,
 * split across OpenMP threads only when the tensor is large enough to repay the fork. */
#include "framework/backend/cpu/cpu.h"
#include "framework/backend/cpu/vmath.h"

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
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
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

void ssl_cpu_cast_f32_bf16(ssl_ctx *c, uint16_t *dst, const float *src, size_t n)
{
    (void)c;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) dst[i] = ssl_vbf16_bits(src[i]);
}

void ssl_cpu_cast_bf16_f32(ssl_ctx *c, float *dst, const uint16_t *src, size_t n)
{
    (void)c;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) dst[i] = ssl_vbf16_widen(src[i]);
}

void ssl_cpu_scale(ssl_ctx *c, float *x, size_t n, float a)
{
    (void)c;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

void ssl_cpu_axpby(ssl_ctx *c, size_t n, float a, const float *x, float b, float *y)
{
    (void)c;
    /* As BLAS: b == 0 does not read y, so uninitialised (even NaN) memory can be overwritten. */
    if (b == 0.0f) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) y[i] = a * x[i];
        return;
    }
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a * x[i] + b * y[i];
}

/* The expressions of ssl_cpu_axpby, so a row gives the bits an axpby of that row would. */
void ssl_cpu_axpby_rows(ssl_ctx *c, int64_t rows, int64_t D, const float *a, const float *x, float b, float *y)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * D >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float s = a[r], *xr = x + r * D;
        float *yr = y + r * D;
        if (b == 0.0f) {
#pragma omp simd
            for (int64_t j = 0; j < D; j++) yr[j] = s * xr[j];
        } else {
#pragma omp simd
            for (int64_t j = 0; j < D; j++) yr[j] = s * xr[j] + b * yr[j];
        }
    }
}

void ssl_cpu_add(ssl_ctx *c, size_t n, const float *a, const float *b, float *y)
{
    (void)c;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void ssl_cpu_mul(ssl_ctx *c, size_t n, const float *a, const float *b, float *y)
{
    (void)c;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

void ssl_cpu_relu_fwd(ssl_ctx *c, size_t n, const float *x, float *y)
{
    (void)c;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void ssl_cpu_relu_bwd(ssl_ctx *c, size_t n, const float *y, const float *dy, float *dx)
{
    (void)c;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void ssl_cpu_relu_bwd_bf16(ssl_ctx *c, size_t n, const uint16_t *y, const float *dy, float *dx)
{
    (void)c;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = ssl_vbf16_widen(y[i]) > 0.0f ? dy[i] : 0.0f;
}

/* Phi(x), the standard normal CDF, and e = exp(-x^2/2) (which the GELU backward reuses for the
 * density). Branch-free so the loops vectorise: |x|/sqrt2 < 1 takes Cephes' odd polynomial for
 * erf; beyond, Phi(-|x|) = erfc(|x|/sqrt2)/2 from Cephes' erfc = e/z * P(1/z^2), accurate in
 * relative terms deep into the tail where 0.5 * (1 + erf) would cancel. */
SSL_VINLINE float normal_cdf(float x, float *e)
{
    float z = fabsf(x) * INV_SQRT2;
    *e = ssl_vexpf(-0.5f * x * x);
    float zs = x * INV_SQRT2;
    zs = ssl_vsel(zs > 1.0f, 1.0f, zs);
    zs = ssl_vsel(zs < -1.0f, -1.0f, zs);
    float w = zs * zs;
    float p = 7.853861353153693e-5f;
    p = p * w - 8.010193625184903e-4f;
    p = p * w + 5.188327685732524e-3f;
    p = p * w - 2.685381193529856e-2f;
    p = p * w + 1.128358514861418e-1f;
    p = p * w - 3.761262582423300e-1f;
    p = p * w + 1.128379165726710e+0f;
    float mid = 0.5f + 0.5f * zs * p;
    float q = 1.0f / ssl_vsel(z > 1.0f, z, 1.0f);
    w = q * q;
    float a = 2.326819970068386e-2f; /* 1 <= z < 2 */
    a = a * w - 1.387039388740657e-1f;
    a = a * w + 3.687424674597105e-1f;
    a = a * w - 5.824733027278666e-1f;
    a = a * w + 6.210004621745983e-1f;
    a = a * w - 4.944515323274145e-1f;
    a = a * w + 3.404879937665872e-1f;
    a = a * w - 2.741127028184656e-1f;
    a = a * w + 5.638259427386472e-1f;
    float b = -1.047766399936249e+1f; /* z >= 2 */
    b = b * w + 1.297719955372516e+1f;
    b = b * w - 7.495518717768503e+0f;
    b = b * w + 2.921019019210786e+0f;
    b = b * w - 1.015265279202700e+0f;
    b = b * w + 4.218463358204948e-1f;
    b = b * w - 2.820767439740514e-1f;
    b = b * w + 5.641895067754075e-1f;
    float tail = 0.5f * *e * q * ssl_vsel(z < 2.0f, a, b);
    return ssl_vsel(z < 1.0f, mid, ssl_vsel(x < 0.0f, tail, 1.0f - tail));
}

/* gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), PyTorch's default (approximate='none'). */
void ssl_cpu_gelu_fwd(ssl_ctx *c, size_t n, const float *x, float *y)
{
    (void)c;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float e;
        y[i] = x[i] * normal_cdf(x[i], &e);
    }
}

/* gelu'(x) = Phi(x) + x * phi(x), phi the standard normal density. */
void ssl_cpu_gelu_bwd(ssl_ctx *c, size_t n, const float *x, const float *dy, float *dx)
{
    (void)c;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float e, cdf = normal_cdf(x[i], &e);
        dx[i] = dy[i] * (cdf + x[i] * INV_SQRT_2PI * e);
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
#pragma omp simd
            for (int64_t j = 0; j < C; j++) yo[j] += b[j];
        }
        return;
    }
#pragma omp parallel for schedule(static) if (rows * inner >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        float v = b[r % C];
        float *yr = y + r * inner;
#pragma omp simd
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
#pragma omp simd
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
