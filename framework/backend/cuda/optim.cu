/* CUDA optimizer kernels over one parameter segment; the formulas are backend.h's contract and
 * the CPU's (optim.c) expression by expression. */
#include "framework/backend/cuda/cuda_impl.cuh"

__global__ void k_sgd_plain(size_t n, float lr, float wd, float gscale, float *w, const float *g)
{
    SSL_GRID_STRIDE(i, n) w[i] -= lr * (gscale * (g[i] + wd * w[i]));
}

__global__ void k_sgd_momentum(size_t n, float lr, float momentum, int nesterov, float wd, float gscale,
                               float *w, const float *g, float *m)
{
    SSL_GRID_STRIDE(i, n)
    {
        float d = gscale * (g[i] + wd * w[i]);
        float mi = momentum * m[i] + d;
        m[i] = mi;
        w[i] -= lr * (nesterov ? d + momentum * mi : mi);
    }
}

void ssl_cuda_sgd_update(ssl_ctx *c, size_t n, float lr, float momentum, int nesterov, float wd,
                         float gscale, float *w, const float *g, float *m)
{
    if (n == 0) return;
    /* momentum 0: m is neither read nor written (it may be NULL). */
    if (momentum == 0.0f)
        k_sgd_plain<<<SSL_CUDA_GRID(c, n)>>>(n, lr, wd, gscale, w, g);
    else
        k_sgd_momentum<<<SSL_CUDA_GRID(c, n)>>>(n, lr, momentum, nesterov, wd, gscale, w, g, m);
    SSL_CUDA_LAUNCHED();
}

/* g[i] is read before u[i] is written by the same thread, so u may alias g. */
__global__ void k_adam_direction(size_t n, float b1, float b2, float eps, float bc1, float bc2, float wd,
                                 const float *w, const float *g, float *m, float *v, float *u)
{
    const float a1 = 1.0f - b1, a2 = 1.0f - b2;
    SSL_GRID_STRIDE(i, n)
    {
        float gi = g[i];
        float mi = b1 * m[i] + a1 * gi;
        float vi = b2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        u[i] = (mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * w[i];
    }
}

void ssl_cuda_adam_direction(ssl_ctx *c, size_t n, float b1, float b2, float eps, float bc1,
                             float bc2, float wd, const float *w, const float *g, float *m, float *v,
                             float *u)
{
    if (n == 0) return;
    k_adam_direction<<<SSL_CUDA_GRID(c, n)>>>(n, b1, b2, eps, bc1, bc2, wd, w, g, m, v, u);
    SSL_CUDA_LAUNCHED();
}
