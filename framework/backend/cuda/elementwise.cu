/* CUDA elementwise ops (fill, copy, BLAS-1 style arithmetic, ReLU, exact GELU) and the per-channel
 * bias broadcast and its gradient over (outer, C, inner). Grid-stride loops; every expression is
 * the CPU backend's (elementwise.c), so NaN/inf propagate the same way (e.g. relu(NaN) = 0 through
 * `x > 0 ? x : 0`, not fmaxf). */
#include "framework/backend/cuda/cuda_impl.cuh"

#define INV_SQRT_2PI 0.39894228040143267794f

#define LAUNCH(kernel, c, n, ...)                                                              \
    do {                                                                                       \
        if ((n) == 0) return;                                                                  \
        kernel<<<SSL_CUDA_GRID(c, n)>>>(__VA_ARGS__);                                          \
        SSL_CUDA_LAUNCHED();                                                                   \
    } while (0)

__global__ void k_fill(float *x, size_t n, float v) { SSL_GRID_STRIDE(i, n) x[i] = v; }
__global__ void k_scale(float *x, size_t n, float a) { SSL_GRID_STRIDE(i, n) x[i] *= a; }
__global__ void k_axpy0(size_t n, float a, const float *x, float *y)
{
    SSL_GRID_STRIDE(i, n) y[i] = a * x[i];
}
__global__ void k_axpby(size_t n, float a, const float *x, float b, float *y)
{
    SSL_GRID_STRIDE(i, n) y[i] = a * x[i] + b * y[i];
}
__global__ void k_add(size_t n, const float *a, const float *b, float *y)
{
    SSL_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}
__global__ void k_mul(size_t n, const float *a, const float *b, float *y)
{
    SSL_GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}
__global__ void k_relu_fwd(size_t n, const float *x, float *y)
{
    SSL_GRID_STRIDE(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
__global__ void k_relu_bwd(size_t n, const float *y, const float *dy, float *dx)
{
    SSL_GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
__global__ void k_relu_bwd_bf16(size_t n, const uint16_t *y, const float *dy, float *dx)
{
    SSL_GRID_STRIDE(i, n) dx[i] = __uint_as_float((uint32_t)y[i] << 16) > 0.0f ? dy[i] : 0.0f;
}
/* gelu(x) = x Phi(x); normcdff is accurate in relative terms in the lower tail (as the CPU's
 * erfc branch), where 0.5 (1 + erf) would cancel. */
__global__ void k_gelu_fwd(size_t n, const float *x, float *y)
{
    SSL_GRID_STRIDE(i, n) y[i] = x[i] * normcdff(x[i]);
}
/* gelu'(x) = Phi(x) + x phi(x) */
__global__ void k_gelu_bwd(size_t n, const float *x, const float *dy, float *dx)
{
    SSL_GRID_STRIDE(i, n)
    {
        float v = x[i];
        dx[i] = dy[i] * (normcdff(v) + v * INV_SQRT_2PI * expf(-0.5f * v * v));
    }
}

void ssl_cuda_fill(ssl_ctx *c, float *x, size_t n, float v) { LAUNCH(k_fill, c, n, x, n, v); }

void ssl_cuda_copy(ssl_ctx *c, float *dst, const float *src, size_t n)
{
    if (dst == src || n == 0) return;
    SSL_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice,
                                   ssl_cuda_stream(c)));
}

/* The CPU's bit arithmetic, not __float2bfloat16_rn (whose NaN is 0x7FFF): the same bits on both. */
__global__ void k_cast_f32_bf16(size_t n, const float *src, uint16_t *dst)
{
    SSL_GRID_STRIDE(i, n)
    {
        const uint32_t u = __float_as_uint(src[i]);
        dst[i] = (u & 0x7FFFFFFFu) > 0x7F800000u ? (uint16_t)0x7FC0
                                                   : (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }
}

__global__ void k_cast_bf16_f32(size_t n, const uint16_t *src, float *dst)
{
    SSL_GRID_STRIDE(i, n) dst[i] = __uint_as_float((uint32_t)src[i] << 16);
}

void ssl_cuda_cast_f32_bf16(ssl_ctx *c, uint16_t *dst, const float *src, size_t n)
{
    if (n == 0) return;
    k_cast_f32_bf16<<<SSL_CUDA_GRID(c, n)>>>(n, src, dst);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_cast_bf16_f32(ssl_ctx *c, float *dst, const uint16_t *src, size_t n)
{
    if (n == 0) return;
    k_cast_bf16_f32<<<SSL_CUDA_GRID(c, n)>>>(n, src, dst);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_scale(ssl_ctx *c, float *x, size_t n, float a) { LAUNCH(k_scale, c, n, x, n, a); }

void ssl_cuda_axpby(ssl_ctx *c, size_t n, float a, const float *x, float b, float *y)
{
    /* As BLAS: b == 0 does not read y (0 * NaN garbage would stay NaN). */
    if (b == 0.0f) LAUNCH(k_axpy0, c, n, n, a, x, y);
    else LAUNCH(k_axpby, c, n, n, a, x, b, y);
}

template <typename I> __global__ void k_axpby_rows(I n, I D, const float *a, const float *x, float b, float *y)
{
    SSL_GRID_STRIDE_T(I, i, n) y[i] = b == 0.0f ? a[i / D] * x[i] : a[i / D] * x[i] + b * y[i];
}

void ssl_cuda_axpby_rows(ssl_ctx *c, int64_t rows, int64_t D, const float *a, const float *x, float b, float *y)
{
    size_t n = (size_t)(rows * D);
    if (ssl_cuda_index32(n)) LAUNCH(k_axpby_rows<uint32_t>, c, n, (uint32_t)n, (uint32_t)D, a, x, b, y);
    else LAUNCH(k_axpby_rows<uint64_t>, c, n, (uint64_t)n, (uint64_t)D, a, x, b, y);
}

void ssl_cuda_add(ssl_ctx *c, size_t n, const float *a, const float *b, float *y)
{
    LAUNCH(k_add, c, n, n, a, b, y);
}
void ssl_cuda_mul(ssl_ctx *c, size_t n, const float *a, const float *b, float *y)
{
    LAUNCH(k_mul, c, n, n, a, b, y);
}
void ssl_cuda_relu_fwd(ssl_ctx *c, size_t n, const float *x, float *y)
{
    LAUNCH(k_relu_fwd, c, n, n, x, y);
}
void ssl_cuda_relu_bwd(ssl_ctx *c, size_t n, const float *y, const float *dy, float *dx)
{
    LAUNCH(k_relu_bwd, c, n, n, y, dy, dx);
}
void ssl_cuda_relu_bwd_bf16(ssl_ctx *c, size_t n, const uint16_t *y, const float *dy, float *dx)
{
    LAUNCH(k_relu_bwd_bf16, c, n, n, y, dy, dx);
}
void ssl_cuda_gelu_fwd(ssl_ctx *c, size_t n, const float *x, float *y)
{
    LAUNCH(k_gelu_fwd, c, n, n, x, y);
}
void ssl_cuda_gelu_bwd(ssl_ctx *c, size_t n, const float *x, const float *dy, float *dx)
{
    LAUNCH(k_gelu_bwd, c, n, n, x, dy, dx);
}

/* ---- bias over (outer, C, inner) -------------------------------------------------------------- */

template <typename I> __global__ void k_bias_add(I n, I C, I inner, const float *b, float *y)
{
    SSL_GRID_STRIDE_T(I, i, n) y[i] += b[i / inner % C];
}

void ssl_cuda_bias_add(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *b, float *y)
{
    size_t n = (size_t)(outer * C * inner);
    if (ssl_cuda_index32(n)) LAUNCH(k_bias_add<uint32_t>, c, n, (uint32_t)n, (uint32_t)C, (uint32_t)inner, b, y);
    else LAUNCH(k_bias_add<uint64_t>, c, n, (uint64_t)n, (uint64_t)C, (uint64_t)inner, b, y);
}

/* inner > 1: one block per channel sums its outer planes in double (fixed tree: deterministic). */
__global__ void k_bias_grad_planes(int64_t outer, int64_t C, int64_t inner, const float *dy, float *db)
{
    const int64_t ch = blockIdx.x;
    double s = 0.0;
    for (int64_t o = 0; o < outer; o++) {
        const float *d = dy + (o * C + ch) * inner;
        for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) s += d[i];
    }
    s = ssl_block_sum(s);
    if (threadIdx.x == 0) db[ch] += (float)s;
}

/* inner == 1, (outer, C) row-major: column sums. Blocks of threads own consecutive columns (so
 * reads are coalesced) over one chunk of rows each; the chunk partials are then added in order. */
#define ROW_CHUNKS 64
__global__ void k_colsum_partial(int64_t rows, int64_t cols, int64_t chunk, const float *a, double *part)
{
    const int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (j >= cols) return;
    const int64_t r0 = blockIdx.y * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
    double s = 0.0;
    for (int64_t r = r0; r < r1; r++) s += a[r * cols + j];
    part[blockIdx.y * cols + j] = s;
}
__global__ void k_colsum_finish(int64_t cols, int nchunk, const double *part, float *out)
{
    const int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (j >= cols) return;
    double s = 0.0;
    for (int k = 0; k < nchunk; k++) s += part[k * cols + j];
    out[j] += (float)s;
}

void ssl_cuda_bias_grad(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *dy, float *db)
{
    if (C == 0) return;
    cudaStream_t s = ssl_cuda_stream(c);
    if (inner != 1) {
        k_bias_grad_planes<<<(unsigned)C, SSL_CUDA_THREADS, 0, s>>>(outer, C, inner, dy, db);
        SSL_CUDA_LAUNCHED();
        return;
    }
    int64_t chunk = (outer + ROW_CHUNKS - 1) / ROW_CHUNKS;
    if (chunk < 1) chunk = 1;
    const int nchunk = (int)((outer + chunk - 1) / chunk);
    const unsigned bx = (unsigned)((C + SSL_CUDA_THREADS - 1) / SSL_CUDA_THREADS);
    if (nchunk > 0) {
        double *part = (double *)ssl_ctx_workspace(c, (size_t)nchunk * (size_t)C * sizeof(double));
        k_colsum_partial<<<dim3(bx, (unsigned)nchunk), SSL_CUDA_THREADS, 0, s>>>(outer, C, chunk, dy,
                                                                                 part);
        SSL_CUDA_LAUNCHED();
        k_colsum_finish<<<bx, SSL_CUDA_THREADS, 0, s>>>(C, nchunk, part, db);
        SSL_CUDA_LAUNCHED();
    }
}
