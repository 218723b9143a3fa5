/* CUDA batch norm: own kernels, not cuDNN's. backend.h splits BN into statistics, finalize, apply
 * and their backward so sync-BN can all-reduce the sums between calls; cuDNN's batch-norm calls fuse
 * those steps, so they cannot host the collective (PyTorch's SyncBatchNorm has its own kernels for
 * the same reason). Per-channel sums are in double, as the CPU's, and deterministic: each block sums
 * a fixed slice with a fixed tree, and the slices' partials are added in slice order (no atomics).
 * The elementwise passes spell out the CPU's expressions with round-to-nearest intrinsics so nvcc
 * does not contract them into FMAs: the same float result, element by element. */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <math.h>

/* Slices per channel: enough blocks to fill the device, each slice at least this many elements. */
#define SLICE_MIN 4096
#define SLICES_MAX 64

/* The two per-element terms of a reduction: statistics (x, x^2) and backward (dy, dy (x - mean)). */
/* x as stored: fp32, or bfloat16 bits widened exactly (a saved activation under bf16 storage) */
__device__ inline float ld(const float *x, int64_t i) { return x[i]; }
__device__ inline float ld(const uint16_t *x, int64_t i) { return __uint_as_float((uint32_t)x[i] << 16); }

template <typename TX>
struct stats_terms {
    const TX *x;
    __device__ void operator()(int64_t i, int64_t, double &a, double &b) const
    {
        double v = ld(x, i);
        a += v;
        b += v * v;
    }
};
template <typename TX>
struct bwd_terms {
    const float *dy;
    const TX *x;
    const float *mean;
    __device__ void operator()(int64_t i, int64_t ch, double &a, double &b) const
    {
        double d = dy[i];
        a += d;
        b += d * (double)__fsub_rn(ld(x, i), mean[ch]);
    }
};

/* (N, C, S > 1): block (g, ch) sums slice g of channel ch's N*S elements. part[(ch*G + g)*2 + k]. */
template <typename Terms>
__global__ void k_chan_sums(int64_t N, int64_t C, int64_t S, int64_t slice, Terms f, double *part)
{
    const int64_t ch = blockIdx.y, g = blockIdx.x, E = N * S;
    const int64_t t0 = g * slice, t1 = t0 + slice < E ? t0 + slice : E;
    double a = 0.0, b = 0.0;
    for (int64_t t = t0 + threadIdx.x; t < t1; t += blockDim.x) {
        const int64_t n = t / S, i = t - n * S;
        f((n * C + ch) * S + i, ch, a, b);
    }
    a = ssl_block_sum(a);
    b = ssl_block_sum(b);
    if (threadIdx.x == 0) {
        part[(ch * gridDim.x + g) * 2] = a;
        part[(ch * gridDim.x + g) * 2 + 1] = b;
    }
}

/* (N, C) rows (S == 1): one thread per channel walks row chunk blockIdx.y (coalesced over channels). */
template <typename Terms>
__global__ void k_chan_sums_rows(int64_t N, int64_t C, int64_t chunk, Terms f, double *part)
{
    const int64_t ch = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (ch >= C) return;
    const int64_t r0 = blockIdx.y * chunk, r1 = r0 + chunk < N ? r0 + chunk : N;
    double a = 0.0, b = 0.0;
    for (int64_t r = r0; r < r1; r++) f(r * C + ch, ch, a, b);
    part[(ch * gridDim.y + blockIdx.y) * 2] = a;
    part[(ch * gridDim.y + blockIdx.y) * 2 + 1] = b;
}

/* out_a[ch] = sum of the G partials, in order; out_b likewise, times scale_b[ch] when given. */
__global__ void k_chan_sums_finish(int64_t C, int G, const double *part, const float *scale_b,
                                   double *out_a, double *out_b)
{
    const int64_t ch = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (ch >= C) return;
    double a = 0.0, b = 0.0;
    for (int g = 0; g < G; g++) {
        a += part[(ch * G + g) * 2];
        b += part[(ch * G + g) * 2 + 1];
    }
    out_a[ch] = a;
    out_b[ch] = scale_b ? b * scale_b[ch] : b;
}

static unsigned chan_blocks(int64_t C) { return (unsigned)((C + SSL_CUDA_THREADS - 1) / SSL_CUDA_THREADS); }

template <typename Terms>
static void chan_sums(ssl_ctx *c, int64_t N, int64_t C, int64_t S, Terms f, const float *scale_b,
                      double *out_a, double *out_b)
{
    if (C <= 0) return;
    cudaStream_t st = ssl_cuda_stream(c);
    const int64_t E = N * S;
    int64_t G = E / SLICE_MIN;
    G = G < 1 ? 1 : G > SLICES_MAX ? SLICES_MAX : G;
    const int64_t slice = E > 0 ? (E + G - 1) / G : 1;
    G = E > 0 ? (E + slice - 1) / slice : 1;
    double *part = (double *)ssl_ctx_workspace(c, (size_t)(C * G * 2) * sizeof(double));
    if (S == 1) {
        k_chan_sums_rows<<<dim3(chan_blocks(C), (unsigned)G), SSL_CUDA_THREADS, 0, st>>>(N, C, slice, f, part);
    } else {
        SSL_ASSERTF(C < 65536, "bn: %lld channels (grid y limit)", (long long)C);
        k_chan_sums<<<dim3((unsigned)G, (unsigned)C), SSL_CUDA_THREADS, 0, st>>>(N, C, S, slice, f, part);
    }
    SSL_CUDA_LAUNCHED();
    k_chan_sums_finish<<<chan_blocks(C), SSL_CUDA_THREADS, 0, st>>>(C, (int)G, part, scale_b, out_a, out_b);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_bn_stats(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x, double *sum, double *sumsq)
{
    chan_sums(c, N, C, S, stats_terms<float>{x}, NULL, sum, sumsq);
}

void ssl_cuda_bn_stats_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x, double *sum,
                            double *sumsq)
{
    chan_sums(c, N, C, S, stats_terms<uint16_t>{x}, NULL, sum, sumsq);
}

/* sum(dy * xhat) = invstd * sum(dy * (x - mean)), the multiply once per channel (as the CPU). */
void ssl_cuda_bn_bwd_stats(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const float *x,
                           const float *mean, const float *invstd, double *sum_dy, double *sum_dy_xhat)
{
    chan_sums(c, N, C, S, bwd_terms<float>{dy, x, mean}, invstd, sum_dy, sum_dy_xhat);
}

void ssl_cuda_bn_bwd_stats_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const uint16_t *x,
                                const float *mean, const float *invstd, double *sum_dy, double *sum_dy_xhat)
{
    chan_sums(c, N, C, S, bwd_terms<uint16_t>{dy, x, mean}, invstd, sum_dy, sum_dy_xhat);
}

/* y = (x - mean) * (invstd * gamma) + beta, clamped at lo (-inf: no ReLU; NaN passes the clamp). */
template <typename TX>
__global__ void k_bn_apply(size_t n, int64_t C, int64_t S, const TX *x, const float *mean,
                           const float *invstd, const float *gamma, const float *beta, float lo, float *y)
{
    SSL_GRID_STRIDE(i, n) {
        const int64_t ch = (int64_t)(i / (size_t)S) % C;
        const float k = __fmul_rn(invstd[ch], gamma ? gamma[ch] : 1.0f);
        const float v = __fadd_rn(__fmul_rn(__fsub_rn(ld(x, (int64_t)i), mean[ch]), k), beta ? beta[ch] : 0.0f);
        y[i] = v < lo ? lo : v;
    }
}

template <typename TX>
static void bn_apply(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const TX *x, const float *mean,
                     const float *invstd, const float *gamma, const float *beta, int relu, float *y)
{
    const size_t n = (size_t)(N * C * S);
    if (n == 0) return;
    k_bn_apply<<<SSL_CUDA_GRID(c, n)>>>(n, C, S, x, mean, invstd, gamma, beta, relu ? 0.0f : -INFINITY, y);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_bn_apply(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x, const float *mean,
                       const float *invstd, const float *gamma, const float *beta, int relu, float *y)
{
    bn_apply(c, N, C, S, x, mean, invstd, gamma, beta, relu, y);
}

void ssl_cuda_bn_apply_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x, const float *mean,
                            const float *invstd, const float *gamma, const float *beta, int relu, float *y)
{
    bn_apply(c, N, C, S, x, mean, invstd, gamma, beta, relu, y);
}

/* Per channel: k = gamma * invstd, a = sum_dy / count, b = invstd * sum_dy_xhat / count. */
__global__ void k_bn_bwd_coef(int64_t C, const float *invstd, const float *gamma, const double *sum_dy,
                              const double *sum_dy_xhat, double count, float *coef)
{
    const int64_t ch = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (ch >= C) return;
    coef[3 * ch] = __fmul_rn(invstd[ch], gamma ? gamma[ch] : 1.0f);
    coef[3 * ch + 1] = (float)(sum_dy[ch] / count);
    coef[3 * ch + 2] = (float)(sum_dy_xhat[ch] / count * invstd[ch]);
}

/* dx = k * (dy - a - (x - mean) * b); dx may alias dy (each element read before it is written). */
template <typename TX>
__global__ void k_bn_bwd_data(size_t n, int64_t C, int64_t S, const float *dy, const TX *x,
                              const float *mean, const float *coef, float *dx)
{
    SSL_GRID_STRIDE(i, n) {
        const int64_t ch = (int64_t)(i / (size_t)S) % C;
        const float k = coef[3 * ch], a = coef[3 * ch + 1], b = coef[3 * ch + 2];
        dx[i] = __fmul_rn(k, __fsub_rn(__fsub_rn(dy[i], a), __fmul_rn(__fsub_rn(ld(x, (int64_t)i), mean[ch]), b)));
    }
}

template <typename TX>
static void bn_bwd_data(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const TX *x,
                        const float *mean, const float *invstd, const float *gamma,
                        const double *sum_dy, const double *sum_dy_xhat, double count, float *dx)
{
    const size_t n = (size_t)(N * C * S);
    if (n == 0) return;
    cudaStream_t st = ssl_cuda_stream(c);
    float *coef = (float *)ssl_ctx_workspace(c, (size_t)(3 * C) * sizeof(float));
    k_bn_bwd_coef<<<chan_blocks(C), SSL_CUDA_THREADS, 0, st>>>(C, invstd, gamma, sum_dy, sum_dy_xhat,
                                                               count, coef);
    SSL_CUDA_LAUNCHED();
    k_bn_bwd_data<<<SSL_CUDA_GRID(c, n)>>>(n, C, S, dy, x, mean, coef, dx);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_bn_bwd_data(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const float *x,
                          const float *mean, const float *invstd, const float *gamma,
                          const double *sum_dy, const double *sum_dy_xhat, double count, float *dx)
{
    bn_bwd_data(c, N, C, S, dy, x, mean, invstd, gamma, sum_dy, sum_dy_xhat, count, dx);
}

void ssl_cuda_bn_bwd_data_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const uint16_t *x,
                               const float *mean, const float *invstd, const float *gamma,
                               const double *sum_dy, const double *sum_dy_xhat, double count, float *dx)
{
    bn_bwd_data(c, N, C, S, dy, x, mean, invstd, gamma, sum_dy, sum_dy_xhat, count, dx);
}

/* The CPU's bn_finalize, one thread per channel, in the same double arithmetic. */
__global__ void k_bn_finalize(int64_t C, int train, const double *sum, const double *sumsq, double count,
                              float eps, float momentum, float *running_mean, float *running_var,
                              float *mean, float *invstd)
{
    const int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (k >= C) return;
    if (!train) {
        mean[k] = running_mean[k];
        invstd[k] = (float)(1.0 / sqrt((double)running_var[k] + eps));
        return;
    }
    const double m = sum[k] / count;
    double var = sumsq[k] / count - m * m;
    if (var < 0) var = 0;
    mean[k] = (float)m;
    invstd[k] = (float)(1.0 / sqrt(var + eps));
    if (running_mean) {
        const double unbiased = count > 1 ? var * count / (count - 1) : var;
        running_mean[k] = (float)((1.0 - momentum) * running_mean[k] + momentum * m);
        running_var[k] = (float)((1.0 - momentum) * running_var[k] + momentum * unbiased);
    }
}

void ssl_cuda_bn_finalize(ssl_ctx *c, int64_t C, int train, const double *sum, const double *sumsq,
                          double count, float eps, float momentum, float *running_mean,
                          float *running_var, float *mean, float *invstd)
{
    if (C <= 0) return;
    k_bn_finalize<<<chan_blocks(C), SSL_CUDA_THREADS, 0, ssl_cuda_stream(c)>>>(
        C, train, sum, sumsq, count, eps, momentum, running_mean, running_var, mean, invstd);
    SSL_CUDA_LAUNCHED();
}

__global__ void k_bn_param_grads(int64_t C, const double *sum_dy, const double *sum_dy_xhat,
                                 float *dgamma, float *dbeta)
{
    const int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (k >= C) return;
    if (dgamma) dgamma[k] += (float)sum_dy_xhat[k];
    if (dbeta) dbeta[k] += (float)sum_dy[k];
}

void ssl_cuda_bn_param_grads(ssl_ctx *c, int64_t C, const double *sum_dy, const double *sum_dy_xhat,
                             float *dgamma, float *dbeta)
{
    if (C <= 0) return;
    k_bn_param_grads<<<chan_blocks(C), SSL_CUDA_THREADS, 0, ssl_cuda_stream(c)>>>(C, sum_dy, sum_dy_xhat,
                                                                                 dgamma, dbeta);
    SSL_CUDA_LAUNCHED();
}
