/* CUDA full reductions to a host double (gradient norms, losses, monitors). A fixed grid of at most
 * SSL_CUDA_RED_BLOCKS blocks accumulates in double, one block then adds the partials in block order:
 * the same bits on every run. The result comes back through pinned memory on the context's stream,
 * so the call synchronises that stream (backend.h: "a device backend synchronises"). */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <math.h>
#include <string.h>

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

/* ---- sumsq_segments: every segment cut into chunks of SEG_CHUNK elements, one block per chunk,
 * then one thread per segment adds its chunks' partials in order (deterministic, one launch pair
 * and one copy back for all of LARS's ~160 tensors of a ResNet-50 instead of one sync each). */
#define SEG_CHUNK ((int64_t)SSL_CUDA_THREADS * 256)

__global__ void k_seg_partial(const int64_t *chunk, const float *x, double *part)
{
    const int64_t start = chunk[2 * blockIdx.x], len = chunk[2 * blockIdx.x + 1];
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) s += (double)x[start + i] * x[start + i];
    s = ssl_block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void k_seg_finish(int count, const int64_t *first, const double *part, double *out)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
        double s = 0.0;
        for (int64_t k = first[i]; k < first[i + 1]; k++) s += part[k];
        out[i] = s;
    }
}

/* Grow a pinned or device buffer to at least `need` elements of `size` bytes (contents dropped). */
static void grow(void **p, size_t *cap, size_t need, size_t size, int pinned)
{
    if (need <= *cap) return;
    if (*p) SSL_CUDA_CHECK(pinned ? cudaFreeHost(*p) : cudaFree(*p));
    SSL_CUDA_CHECK(pinned ? cudaMallocHost(p, need * size) : cudaMalloc(p, need * size));
    *cap = need;
}

void ssl_cuda_sumsq_segments(ssl_ctx *c, int count, const float *x, const size_t *off, const size_t *n, double *out)
{
    if (count <= 0) return;
    ssl_cuda_state *st = ssl_cuda_st(c);
    size_t nchunks = 0;
    for (int i = 0; i < count; i++) nchunks += (size_t)((int64_t)n[i] + SEG_CHUNK - 1) / SEG_CHUNK;
    /* table: 2 per chunk (start, len), then count + 1 first-chunk indices */
    const size_t tab = 2 * nchunks + (size_t)count + 1;
    size_t cap_host = st->seg_tab_cap, cap_dev = st->seg_tab_cap;
    grow((void **)&st->seg_tab_host, &cap_host, tab, sizeof(int64_t), 1);
    grow((void **)&st->seg_tab, &cap_dev, tab, sizeof(int64_t), 0);
    st->seg_tab_cap = cap_host;
    size_t cap_out_host = st->seg_out_cap, cap_out_dev = st->seg_out_cap;
    grow((void **)&st->seg_out_host, &cap_out_host, (size_t)count, sizeof(double), 1);
    grow((void **)&st->seg_out, &cap_out_dev, (size_t)count, sizeof(double), 0);
    st->seg_out_cap = cap_out_host;
    grow((void **)&st->seg_part, &st->seg_part_cap, nchunks ? nchunks : 1, sizeof(double), 0);
    /* the pinned table may still feed the previous call's copy: that call synchronised at its end */
    int64_t *t = st->seg_tab_host, *first = t + 2 * nchunks;
    size_t k = 0;
    for (int i = 0; i < count; i++) {
        first[i] = (int64_t)k;
        for (int64_t s0 = 0; s0 < (int64_t)n[i]; s0 += SEG_CHUNK, k++) {
            t[2 * k] = (int64_t)off[i] + s0;
            t[2 * k + 1] = (int64_t)n[i] - s0 < SEG_CHUNK ? (int64_t)n[i] - s0 : SEG_CHUNK;
        }
    }
    first[count] = (int64_t)k;
    SSL_CUDA_CHECK(cudaMemcpyAsync(st->seg_tab, t, tab * sizeof(int64_t), cudaMemcpyHostToDevice, st->stream));
    if (nchunks) {
        k_seg_partial<<<(unsigned)nchunks, SSL_CUDA_THREADS, 0, st->stream>>>(st->seg_tab, x, st->seg_part);
        SSL_CUDA_LAUNCHED();
    }
    const unsigned blocks = (unsigned)((count + SSL_CUDA_THREADS - 1) / SSL_CUDA_THREADS);
    k_seg_finish<<<blocks, SSL_CUDA_THREADS, 0, st->stream>>>(count, st->seg_tab + 2 * nchunks, st->seg_part, st->seg_out);
    SSL_CUDA_LAUNCHED();
    SSL_CUDA_CHECK(cudaMemcpyAsync(st->seg_out_host, st->seg_out, (size_t)count * sizeof(double),
                                   cudaMemcpyDeviceToHost, st->stream));
    SSL_CUDA_CHECK(cudaStreamSynchronize(st->stream));
    memcpy(out, st->seg_out_host, (size_t)count * sizeof(double));
}

void ssl_cuda_reduce_free(ssl_cuda_state *st)
{
    SSL_CUDA_CHECK(cudaFreeHost(st->seg_tab_host));
    SSL_CUDA_CHECK(cudaFree(st->seg_tab));
    SSL_CUDA_CHECK(cudaFree(st->seg_part));
    SSL_CUDA_CHECK(cudaFree(st->seg_out));
    SSL_CUDA_CHECK(cudaFreeHost(st->seg_out_host));
}
