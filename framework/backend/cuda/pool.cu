/* CUDA pooling (backend.h: maxpool_*, avgpool_*), same results as backend/cpu/pool.c. */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <math.h>

/* One thread per output; the window scan and tie/NaN rule are the CPU's (first max, NaN wins). */
__global__ void k_maxpool_fwd(int64_t planes, int H, int W, int k, int stride, int pad, int P, int Q,
                              const float *x, float *y, int32_t *idx)
{
    const size_t n = (size_t)planes * P * Q;
    SSL_GRID_STRIDE(o, n)
    {
        const int64_t pl = (int64_t)(o / ((size_t)P * Q));
        const int p = (int)(o / Q % P), q = (int)(o % Q);
        const float *xp = x + pl * H * W;
        const int h0 = p * stride - pad, hs = h0 < 0 ? 0 : h0, he = h0 + k < H ? h0 + k : H;
        const int w0 = q * stride - pad, ws = w0 < 0 ? 0 : w0, we = w0 + k < W ? w0 + k : W;
        float best = -INFINITY;
        int32_t bi = -1;
        for (int h = hs; h < he; h++)
            for (int w = ws; w < we; w++) {
                const float v = xp[h * W + w];
                if (v > best || isnan(v)) best = v, bi = h * W + w;
            }
        y[o] = best;
        idx[o] = bi;
    }
}

/* One thread per input element gathers the outputs whose windows hold it, in the CPU's output order
 * (rows, then columns): the CPU's scatter adds dy to each element in that order, from zero, so the
 * sums are bit-identical, with no atomics and every thread busy (one thread per plane scattering
 * serially left ~4k threads doing 3k dependent steps each for a ResNet-50 stem at batch 64). */
__global__ void k_maxpool_bwd(int64_t planes, int H, int W, int k, int stride, int pad, int P, int Q,
                              const float *dy, const int32_t *idx, float *dx)
{
    const size_t n = (size_t)planes * H * W;
    SSL_GRID_STRIDE(i, n)
    {
        const int64_t pl = (int64_t)(i / ((size_t)H * W));
        const int h = (int)(i / W % H), w = (int)(i % W), self = h * W + w;
        /* outputs p with p*stride - pad <= h < p*stride - pad + k */
        const int hp = h + pad, wp = w + pad;
        const int p0 = hp - k + 1 <= 0 ? 0 : (hp - k + stride) / stride, p1 = min(hp / stride, P - 1);
        const int q0 = wp - k + 1 <= 0 ? 0 : (wp - k + stride) / stride, q1 = min(wp / stride, Q - 1);
        const float *gp = dy + pl * P * Q;
        const int32_t *ip = idx + pl * P * Q;
        float s = 0.0f;
        for (int p = p0; p <= p1; p++)
            for (int q = q0; q <= q1; q++)
                if (ip[p * Q + q] == self) s += gp[p * Q + q];
        dx[i] = s;
    }
}

/* One block per (n, c) plane; double sum through the fixed block tree. */
__global__ void k_avgpool_fwd(int64_t S, const float *x, float *y)
{
    const float *xp = x + blockIdx.x * S;
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < S; j += blockDim.x) s += xp[j];
    s = ssl_block_sum(s);
    if (threadIdx.x == 0) y[blockIdx.x] = (float)(s / (double)S);
}

__global__ void k_avgpool_bwd(int64_t NC, int64_t S, const float *dy, float *dx)
{
    SSL_GRID_STRIDE(i, (size_t)(NC * S)) dx[i] = (float)((double)dy[i / S] / (double)S);
}

void ssl_cuda_maxpool_fwd(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad, int P,
                          int Q, const float *x, float *y, int32_t *idx)
{
    const int64_t planes = (int64_t)N * C;
    const size_t n = (size_t)planes * P * Q;
    if (n == 0) return;
    k_maxpool_fwd<<<SSL_CUDA_GRID(c, n)>>>(planes, H, W, k, stride, pad, P, Q, x, y, idx);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_maxpool_bwd(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad, int P,
                          int Q, const float *dy, const int32_t *idx, float *dx)
{
    const int64_t planes = (int64_t)N * C;
    const size_t n = (size_t)planes * H * W;
    if (n == 0) return;
    k_maxpool_bwd<<<SSL_CUDA_GRID(c, n)>>>(planes, H, W, k, stride, pad, P, Q, dy, idx, dx);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_avgpool_fwd(ssl_ctx *c, int64_t NC, int64_t S, const float *x, float *y)
{
    if (NC <= 0) return;
    SSL_ASSERTF(NC < 2147483647, "avgpool_fwd: %lld planes", (long long)NC);
    k_avgpool_fwd<<<(unsigned)NC, SSL_CUDA_THREADS, 0, ssl_cuda_stream(c)>>>(S, x, y);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_avgpool_bwd(ssl_ctx *c, int64_t NC, int64_t S, const float *dy, float *dx)
{
    if (NC * S <= 0) return;
    k_avgpool_bwd<<<SSL_CUDA_GRID(c, (size_t)(NC * S))>>>(NC, S, dy, dx);
    SSL_CUDA_LAUNCHED();
}
