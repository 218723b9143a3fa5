/* CUDA full reductions to a host double (gradient norms, losses, monitors). A fixed grid of at most
 * SSL_CUDA_RED_BLOCKS blocks accumulates in double, one block then adds the partials in block order:
 * the same bits on every run. The result comes back through pinned memory on the context's stream,
 * so the call synchronises that stream (backend.h: "a device backend synchronises"). */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <math.h>

enum { RED_SUMSQ, RED_DOT, RED_SUM, RED_XLOGX };

__global__ void k_reduce_partial(int what, size_t n, float a, const float *x, const float *y,
                                 double *part)
{
    double s = 0.0;
    SSL_GRID_STRIDE(i, n)
    {
        if (what == RED_SUMSQ) s += (double)x[i] * x[i];
        else if (what == RED_DOT) s += (double)x[i] * y[i];
        else if (what == RED_SUM) s += x[i];
        else {
            const double v = (double)a * x[i];
            if (v > 0) s += v * log(v); /* 0 log 0 = 0, and negative inputs are skipped as on the CPU */
        }
    }
    s = ssl_block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void k_reduce_finish(int nb, double *part)
{
    double s = 0.0;
    for (int b = threadIdx.x; b < nb; b += blockDim.x) s += part[b];
    s = ssl_block_sum(s);
    if (threadIdx.x == 0) part[SSL_CUDA_RED_BLOCKS] = s;
}

static double reduce(ssl_ctx *c, int what, size_t n, float a, const float *x, const float *y)
{
    if (n == 0) return 0.0;
    ssl_cuda_state *st = ssl_cuda_st(c);
    size_t nb = (n + SSL_CUDA_THREADS - 1) / SSL_CUDA_THREADS;
    if (nb > SSL_CUDA_RED_BLOCKS) nb = SSL_CUDA_RED_BLOCKS;
    k_reduce_partial<<<(unsigned)nb, SSL_CUDA_THREADS, 0, st->stream>>>(what, n, a, x, y, st->red);
    SSL_CUDA_LAUNCHED();
    k_reduce_finish<<<1, SSL_CUDA_THREADS, 0, st->stream>>>((int)nb, st->red);
    SSL_CUDA_LAUNCHED();
    SSL_CUDA_CHECK(cudaMemcpyAsync(st->red_host, st->red + SSL_CUDA_RED_BLOCKS, sizeof(double),
                                   cudaMemcpyDeviceToHost, st->stream));
    SSL_CUDA_CHECK(cudaStreamSynchronize(st->stream));
    return *st->red_host;
}

double ssl_cuda_sumsq(ssl_ctx *c, size_t n, const float *x)
{
    return reduce(c, RED_SUMSQ, n, 0.0f, x, NULL);
}

double ssl_cuda_dot(ssl_ctx *c, size_t n, const float *x, const float *y)
{
    return reduce(c, RED_DOT, n, 0.0f, x, y);
}

double ssl_cuda_sum(ssl_ctx *c, size_t n, const float *x)
{
    return reduce(c, RED_SUM, n, 0.0f, x, NULL);
}

double ssl_cuda_xlogx_sum(ssl_ctx *c, size_t n, float a, const float *x)
{
    return reduce(c, RED_XLOGX, n, a, x, NULL);
}
