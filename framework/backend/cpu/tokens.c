/* CPU token / row movement: strided 2-D copies and adds (concatenating and slicing token
 * sequences, e.g. the class token) and row gather / scatter-add through an index list (MAE's
 * kept-token subset and its backward). Threads split rows; rows never overlap, so no races. */
#include "framework/backend/cpu/cpu.h"

#include <string.h>

#define PAR_MIN 32768

void ssl_cpu_copy2d(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds,
                    float *dst, int64_t ldd)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * cols >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        memcpy(dst + r * ldd, src + r * lds, (size_t)cols * sizeof(float));
}

void ssl_cpu_add2d(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds,
                   float *dst, int64_t ldd)
{
    (void)c;
#pragma omp parallel for schedule(static) if (rows * cols >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *s = src + r * lds;
        float *d = dst + r * ldd;
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) d[j] += s[j];
    }
}

void ssl_cpu_gather_rows(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx, const float *src,
                         float *dst)
{
    (void)c;
#pragma omp parallel for schedule(static) if (n * cols >= PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + i * cols, src + (int64_t)idx[i] * cols, (size_t)cols * sizeof(float));
}

/* Indices are distinct (a subset of a permutation), so threads write disjoint rows. */
void ssl_cpu_scatter_add_rows(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx,
                              const float *src, float *dst)
{
    (void)c;
#pragma omp parallel for schedule(static) if (n * cols >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *s = src + i * cols;
        float *d = dst + (int64_t)idx[i] * cols;
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) d[j] += s[j];
    }
}
