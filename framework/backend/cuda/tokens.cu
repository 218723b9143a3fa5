/* CUDA token / row movement: strided 2-D copy and add (a source leading dimension of 0 repeats one
 * row), row gather and scatter-add through an index list. Indices of scatter_add_rows are distinct
 * (backend.h), so no two threads add to one element and no atomics are needed. */
#include "framework/backend/cuda/cuda_impl.cuh"

/* dst[r, 0:cols] = (or +=) src[r, 0:cols]. A kernel, not cudaMemcpy2DAsync: the contract allows any
 * leading dimensions, and the models pass lds = 0 to broadcast one row (a ViT's class token, MAE's mask
 * token), which cudaMemcpy2D refuses (its pitches must be at least the width). */
template <typename I, bool ADD>
__global__ void k_rows2d(I n, I cols, const float *src, int64_t lds, float *dst, int64_t ldd)
{
    SSL_GRID_STRIDE_T(I, i, n)
    {
        const int64_t r = (int64_t)(i / cols), j = (int64_t)(i % cols);
        if (ADD) dst[r * ldd + j] += src[r * lds + j];
        else dst[r * ldd + j] = src[r * lds + j];
    }
}

template <bool ADD>
static void rows2d(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst, int64_t ldd)
{
    if (rows <= 0 || cols <= 0) return;
    const size_t n = (size_t)(rows * cols);
    if (ssl_cuda_index32(n))
        k_rows2d<uint32_t, ADD><<<SSL_CUDA_GRID(c, n)>>>((uint32_t)n, (uint32_t)cols, src, lds, dst, ldd);
    else k_rows2d<uint64_t, ADD><<<SSL_CUDA_GRID(c, n)>>>((uint64_t)n, (uint64_t)cols, src, lds, dst, ldd);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_copy2d(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds,
                     float *dst, int64_t ldd)
{
    rows2d<false>(c, rows, cols, src, lds, dst, ldd);
}

void ssl_cuda_add2d(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds,
                    float *dst, int64_t ldd)
{
    rows2d<true>(c, rows, cols, src, lds, dst, ldd);
}

__global__ void k_gather_rows(size_t n, int64_t cols, const int32_t *idx, const float *src, float *dst)
{
    SSL_GRID_STRIDE(i, n)
    {
        const int64_t r = (int64_t)i / cols, j = (int64_t)i % cols;
        dst[i] = src[(int64_t)idx[r] * cols + j];
    }
}

__global__ void k_scatter_add_rows(size_t n, int64_t cols, const int32_t *idx, const float *src,
                                   float *dst)
{
    SSL_GRID_STRIDE(i, n)
    {
        const int64_t r = (int64_t)i / cols, j = (int64_t)i % cols;
        dst[(int64_t)idx[r] * cols + j] += src[i];
    }
}

void ssl_cuda_gather_rows(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx, const float *src,
                          float *dst)
{
    if (n <= 0 || cols <= 0) return;
    const size_t tot = (size_t)(n * cols);
    k_gather_rows<<<SSL_CUDA_GRID(c, tot)>>>(tot, cols, idx, src, dst);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_scatter_add_rows(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx,
                               const float *src, float *dst)
{
    if (n <= 0 || cols <= 0) return;
    const size_t tot = (size_t)(n * cols);
    k_scatter_add_rows<<<SSL_CUDA_GRID(c, tot)>>>(tot, cols, idx, src, dst);
    SSL_CUDA_LAUNCHED();
}
