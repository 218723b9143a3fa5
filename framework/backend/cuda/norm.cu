/* CUDA layer norm over the last dim (batch norm: bn.cu). The forward is one block per row
 * with the CPU's two-pass statistics (mean, then centred squares, in double); the backward's
 * dgamma/dbeta are column sums over rows, done as coalesced per-chunk partials that are added in
 * chunk order (no atomics: the same bits every run). */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <math.h>

#define ROW_CHUNKS 64

__global__ void k_ln_fwd(int64_t D, float eps, const float *x, const float *gamma,
                         const float *beta, float *y, float *mean, float *rstd)
{
    const float *xr = x + blockIdx.x * D;
    float *yr = y + blockIdx.x * D;
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) s += xr[j];
    const float m = (float)(ssl_block_sum_all(s) / (double)D);
    double v = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
        double d = xr[j] - m;
        v += d * d;
    }
    const float rs = (float)(1.0 / sqrt(ssl_block_sum_all(v) / (double)D + (double)eps));
    if (threadIdx.x == 0) {
        if (mean) mean[blockIdx.x] = m;
        if (rstd) rstd[blockIdx.x] = rs;
    }
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
        yr[j] = (xr[j] - m) * rs * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
}

/* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma. */
__global__ void k_ln_bwd_dx(int64_t D, const float *dy, const float *x, const float *gamma,
                            const float *mean, const float *rstd, float *dx)
{
    const int64_t off = blockIdx.x * D;
    const float m = mean[blockIdx.x], rs = rstd[blockIdx.x];
    double sg = 0.0, sgx = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
        float xh = (x[off + j] - m) * rs;
        float g = dy[off + j] * (gamma ? gamma[j] : 1.0f);
        sg += g;
        sgx += (double)g * xh;
    }
    const float a = (float)(ssl_block_sum_all(sg) / (double)D);
    const float b = (float)(ssl_block_sum_all(sgx) / (double)D);
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
        float xh = (x[off + j] - m) * rs;
        float g = dy[off + j] * (gamma ? gamma[j] : 1.0f);
        dx[off + j] = rs * (g - a - xh * b);
    }
}

/* part[k][0][j] = sum over chunk k of dy * xhat, part[k][1][j] = sum of dy. */
__global__ void k_ln_bwd_params(int64_t rows, int64_t D, int64_t chunk, const float *dy,
                                const float *x, const float *mean, const float *rstd, double *part)
{
    const int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (j >= D) return;
    const int64_t r0 = blockIdx.y * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
    double sg = 0.0, sb = 0.0;
    for (int64_t r = r0; r < r1; r++) {
        float d = dy[r * D + j], xh = (x[r * D + j] - mean[r]) * rstd[r];
        sg += (double)d * xh;
        sb += d;
    }
    part[(blockIdx.y * 2) * D + j] = sg;
    part[(blockIdx.y * 2 + 1) * D + j] = sb;
}

__global__ void k_ln_bwd_params_finish(int64_t D, int nchunk, const double *part, float *dgamma,
                                       float *dbeta)
{
    const int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (j >= D) return;
    double sg = 0.0, sb = 0.0;
    for (int k = 0; k < nchunk; k++) {
        sg += part[(2 * k) * D + j];
        sb += part[(2 * k + 1) * D + j];
    }
    if (dgamma) dgamma[j] += (float)sg;
    if (dbeta) dbeta[j] += (float)sb;
}

void ssl_cuda_layernorm_fwd(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x,
                            const float *gamma, const float *beta, float *y, float *mean, float *rstd)
{
    if (rows <= 0 || D <= 0) return;
    SSL_ASSERTF(rows < 2147483647, "layernorm_fwd: %lld rows", (long long)rows);
    k_ln_fwd<<<(unsigned)rows, SSL_CUDA_THREADS, 0, ssl_cuda_stream(c)>>>(D, eps, x, gamma, beta, y,
                                                                        mean, rstd);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_layernorm_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *dy, const float *x,
                            const float *gamma, const float *mean, const float *rstd, float *dx,
                            float *dgamma, float *dbeta)
{
    if (rows <= 0 || D <= 0) return;
    SSL_ASSERTF(rows < 2147483647, "layernorm_bwd: %lld rows", (long long)rows);
    cudaStream_t s = ssl_cuda_stream(c);
    /* The parameter sums run first: dx may alias dy (or x), and the dx kernel overwrites it. */
    if (dgamma || dbeta) {
        int64_t chunk = (rows + ROW_CHUNKS - 1) / ROW_CHUNKS;
        const int nchunk = (int)((rows + chunk - 1) / chunk);
        const unsigned bx = (unsigned)((D + SSL_CUDA_THREADS - 1) / SSL_CUDA_THREADS);
        double *part = (double *)ssl_ctx_workspace(c, (size_t)nchunk * 2 * (size_t)D * sizeof(double));
        k_ln_bwd_params<<<dim3(bx, (unsigned)nchunk), SSL_CUDA_THREADS, 0, s>>>(rows, D, chunk, dy, x,
                                                                                mean, rstd, part);
        SSL_CUDA_LAUNCHED();
        k_ln_bwd_params_finish<<<bx, SSL_CUDA_THREADS, 0, s>>>(D, nchunk, part, dgamma, dbeta);
        SSL_CUDA_LAUNCHED();
    }
    k_ln_bwd_dx<<<(unsigned)rows, SSL_CUDA_THREADS, 0, s>>>(D, dy, x, gamma, mean, rstd, dx);
    SSL_CUDA_LAUNCHED();
}
