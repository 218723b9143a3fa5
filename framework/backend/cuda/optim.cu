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

/* ---- the multi-segment forms: one launch for up to OPT_BATCH segments. The segment table travels
 * as the kernel's parameter (__grid_constant__: read in place, up to 32 KB on sm_70+ with CUDA 12.1+),
 * so nothing is staged in host or device memory and no copy has to finish before the next call.
 * Each segment is cut into chunks of OPT_CHUNK elements, one block per chunk; first[] holds each
 * segment's first chunk, and a block finds its segment by binary search. */
#define OPT_BATCH 256
#define OPT_CHUNK ((size_t)SSL_CUDA_THREADS * 16)

struct opt_batch {
    int count;
    unsigned first[OPT_BATCH + 1];
    ssl_opt_seg seg[OPT_BATCH];
};
static_assert(sizeof(opt_batch) < 32000, "opt_batch must fit CUDA's kernel parameter limit");

/* This block's segment and the range of it it covers, [*i0, *i1) relative to seg.off. */
__device__ static const ssl_opt_seg *opt_chunk(const opt_batch &b, size_t *i0, size_t *i1)
{
    int lo = 0, hi = b.count - 1;
    while (lo < hi) { /* the last segment whose first chunk is <= blockIdx.x */
        const int mid = (lo + hi + 1) / 2;
        if (b.first[mid] <= blockIdx.x) lo = mid;
        else hi = mid - 1;
    }
    const ssl_opt_seg *s = &b.seg[lo];
    *i0 = (size_t)(blockIdx.x - b.first[lo]) * OPT_CHUNK;
    *i1 = *i0 + OPT_CHUNK < s->n ? *i0 + OPT_CHUNK : s->n;
    return s;
}

__global__ void k_sgd_multi(const __grid_constant__ opt_batch b, float momentum, int nesterov, float *w,
                            const float *g, float *m)
{
    size_t i0, i1;
    const ssl_opt_seg *s = opt_chunk(b, &i0, &i1);
    const float lr = s->lr, wd = s->wd, gscale = s->gscale;
    for (size_t i = s->off + i0 + threadIdx.x; i < s->off + i1; i += blockDim.x) {
        float d = gscale * (g[i] + wd * w[i]);
        if (momentum == 0.0f) {
            w[i] -= lr * d;
            continue;
        }
        float mi = momentum * m[i] + d;
        m[i] = mi;
        w[i] -= lr * (nesterov ? d + momentum * mi : mi);
    }
}

__global__ void k_adam_multi(const __grid_constant__ opt_batch b, float b1, float b2, float eps, const float *w,
                             float *g, float *m, float *v)
{
    size_t i0, i1;
    const ssl_opt_seg *s = opt_chunk(b, &i0, &i1);
    const float a1 = 1.0f - b1, a2 = 1.0f - b2, bc1 = s->bc1, bc2 = s->bc2, wd = s->wd, gscale = s->gscale;
    for (size_t i = s->off + i0 + threadIdx.x; i < s->off + i1; i += blockDim.x) {
        float gi = gscale == 1.0f ? g[i] : gscale * g[i];
        float mi = b1 * m[i] + a1 * gi;
        float vi = b2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        g[i] = (mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * w[i];
    }
}

__global__ void k_axpby_multi(const __grid_constant__ opt_batch b, const float *x, float *y)
{
    size_t i0, i1;
    const ssl_opt_seg *s = opt_chunk(b, &i0, &i1);
    const float a = s->a, bb = s->b;
    for (size_t i = s->off + i0 + threadIdx.x; i < s->off + i1; i += blockDim.x)
        y[i] = bb == 0.0f ? a * x[i] : a * x[i] + bb * y[i];
}

/* Fill b with up to OPT_BATCH segments from seg (empty ones skipped); returns how many were read
 * and sets *blocks to the launch's block count. */
static int opt_fill(opt_batch *b, int count, const ssl_opt_seg *seg, unsigned *blocks)
{
    int used = 0;
    unsigned k = 0;
    b->count = 0;
    for (; used < count && b->count < OPT_BATCH; used++) {
        if (seg[used].n == 0) continue;
        b->first[b->count] = k;
        b->seg[b->count++] = seg[used];
        k += (unsigned)((seg[used].n + OPT_CHUNK - 1) / OPT_CHUNK);
    }
    b->first[b->count] = k;
    *blocks = k;
    return used;
}

#define OPT_LAUNCH(kernel, ...)                                                                 \
    do {                                                                                       \
        static thread_local opt_batch b; /* the parameter's host copy: 13 KB, off the stack */  \
        for (int done = 0; done < count;) {                                                    \
            unsigned blocks;                                                                   \
            done += opt_fill(&b, count - done, seg + done, &blocks);                           \
            if (!blocks) continue;                                                             \
            kernel<<<blocks, SSL_CUDA_THREADS, 0, ssl_cuda_stream(c)>>>(b, __VA_ARGS__);      \
            SSL_CUDA_LAUNCHED();                                                               \
        }                                                                                      \
    } while (0)

void ssl_cuda_sgd_update_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, float momentum, int nesterov, float *w,
                               const float *g, float *m)
{
    OPT_LAUNCH(k_sgd_multi, momentum, nesterov, w, g, m);
}

void ssl_cuda_adam_direction_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, float b1, float b2, float eps,
                                   const float *w, float *g, float *m, float *v)
{
    OPT_LAUNCH(k_adam_multi, b1, b2, eps, w, g, m, v);
}

void ssl_cuda_axpby_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, const float *x, float *y)
{
    OPT_LAUNCH(k_axpby_multi, x, y);
}
