/* CUDA row-wise ops over (rows, D): softmax, log-softmax, L2 normalisation and their backwards.
 * One block per row; row sums in double through a fixed reduction tree (deterministic). Every
 * thread reads x[j] / dy[j] in the reduction passes, which end in a barrier, before any y[j] / dx[j]
 * is written, so the ops are safe in place as backend.h promises. */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <math.h>

__global__ void k_softmax_fwd(int64_t D, float scale, const float *x, float *y)
{
    const float *xr = x + blockIdx.x * D;
    float *yr = y + blockIdx.x * D;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
        float v = scale * xr[j];
        m = v > m ? v : m;
    }
    m = ssl_block_max_all(m);
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) s += expf(scale * xr[j] - m);
    const float inv = (float)(1.0 / ssl_block_sum_all(s));
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) yr[j] = expf(scale * xr[j] - m) * inv;
}

__global__ void k_softmax_bwd(int64_t D, float scale, const float *y, const float *dy, float *dx)
{
    const int64_t off = blockIdx.x * D;
    double dot = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) dot += (double)dy[off + j] * y[off + j];
    const float d = (float)ssl_block_sum_all(dot);
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
        dx[off + j] = scale * y[off + j] * (dy[off + j] - d);
}

__global__ void k_log_softmax_fwd(int64_t D, const float *x, float *y)
{
    const float *xr = x + blockIdx.x * D;
    float *yr = y + blockIdx.x * D;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) m = xr[j] > m ? xr[j] : m;
    m = ssl_block_max_all(m);
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) s += expf(xr[j] - m);
    const float lse = m + (float)log(ssl_block_sum_all(s));
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) yr[j] = xr[j] - lse;
}

__global__ void k_log_softmax_bwd(int64_t D, const float *y, const float *dy, float *dx)
{
    const int64_t off = blockIdx.x * D;
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) s += dy[off + j];
    const float sd = (float)ssl_block_sum_all(s);
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
        dx[off + j] = dy[off + j] - expf(y[off + j]) * sd;
}

__global__ void k_l2norm_fwd(int64_t D, float eps, const float *x, float *y, float *norm)
{
    const float *xr = x + blockIdx.x * D;
    float *yr = y + blockIdx.x * D;
    double ss = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) ss += (double)xr[j] * xr[j];
    const float nrm = fmaxf((float)sqrt(ssl_block_sum_all(ss)), eps);
    if (norm && threadIdx.x == 0) norm[blockIdx.x] = nrm;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) yr[j] = xr[j] / nrm;
}

__global__ void k_l2norm_bwd(int64_t D, const float *y, const float *norm, const float *dy, float *dx)
{
    const int64_t off = blockIdx.x * D;
    double dot = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) dot += (double)dy[off + j] * y[off + j];
    const float d = (float)ssl_block_sum_all(dot), inv = 1.0f / norm[blockIdx.x];
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
        dx[off + j] = (dy[off + j] - y[off + j] * d) * inv;
}

/* rows is the grid size: at most 2^31 - 1 rows per call, far above any batch of tokens. */
#define ROW_LAUNCH(kernel, c, rows, ...)                                                       \
    do {                                                                                       \
        if ((rows) <= 0) return;                                                               \
        SSL_ASSERTF((rows) < 2147483647, "%s: %lld rows", #kernel, (long long)(rows));         \
        kernel<<<(unsigned)(rows), SSL_CUDA_THREADS, 0, ssl_cuda_stream(c)>>>(__VA_ARGS__);    \
        SSL_CUDA_LAUNCHED();                                                                   \
    } while (0)

void ssl_cuda_softmax_fwd(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, float *y)
{
    ROW_LAUNCH(k_softmax_fwd, c, rows, D, scale, x, y);
}
void ssl_cuda_softmax_bwd(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *y,
                          const float *dy, float *dx)
{
    ROW_LAUNCH(k_softmax_bwd, c, rows, D, scale, y, dy, dx);
}
void ssl_cuda_log_softmax_fwd(ssl_ctx *c, int64_t rows, int64_t D, const float *x, float *y)
{
    ROW_LAUNCH(k_log_softmax_fwd, c, rows, D, x, y);
}
void ssl_cuda_log_softmax_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *dy,
                              float *dx)
{
    ROW_LAUNCH(k_log_softmax_bwd, c, rows, D, y, dy, dx);
}
void ssl_cuda_l2norm_fwd(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x, float *y,
                         float *norm)
{
    ROW_LAUNCH(k_l2norm_fwd, c, rows, D, eps, x, y, norm);
}
void ssl_cuda_l2norm_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *norm,
                         const float *dy, float *dx)
{
    ROW_LAUNCH(k_l2norm_bwd, c, rows, D, y, norm, dy, dx);
}
