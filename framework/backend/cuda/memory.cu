/* CUDA memory and per-context state: device allocations, blocking copies, the context's stream,
 * cuBLAS and cuDNN handles and reduction scratch (no globals: everything hangs off ssl_ctx.be_state). */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <stdlib.h>
#include <string.h>

/* cudaMalloc returns 256-byte aligned memory, which covers the table's 64-byte promise. */
void *ssl_cuda_alloc(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0) bytes = 1; /* a valid, freeable pointer, as ssl_malloc(0) */
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) SSL_ABORT("cudaMalloc(%zu bytes): %s", bytes, cudaGetErrorString(e));
    return p;
}

void ssl_cuda_free(void *p)
{
    if (p) SSL_CUDA_CHECK(cudaFree(p));
}

/* upload/download take no context, so they go through the legacy default stream with cudaMemcpy:
 * that waits for all work on blocking streams, and each context's stream is created blocking
 * (ssl_cuda_ctx_init), so a download after an op sees its result without an explicit sync.
 * (Building with --default-stream per-thread would break this.) */
void ssl_cuda_upload(void *dst, const void *src, size_t bytes)
{
    if (bytes) SSL_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void *ssl_cuda_host_alloc(size_t bytes)
{
    void *p = NULL;
    cudaError_t e = cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault);
    if (e != cudaSuccess) SSL_ABORT("cudaHostAlloc(%zu bytes): %s", bytes, cudaGetErrorString(e));
    return p;
}

void ssl_cuda_host_free(void *p)
{
    if (p) SSL_CUDA_CHECK(cudaFreeHost(p));
}

/* In the context's stream, so the step's kernels after it see the batch; page-locked source, so the
 * host goes on queueing them while the copy runs. */
void ssl_cuda_upload_async(ssl_ctx *c, void *dst, const void *src, size_t bytes)
{
    if (bytes) SSL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ssl_cuda_stream(c)));
}

/* On the copy stream after an event of the compute stream: the copy overlaps the compute queued
 * after it, and never overwrites dst while earlier work may read it. */
void ssl_cuda_upload_ahead(ssl_ctx *c, void *dst, const void *src, size_t bytes)
{
    ssl_cuda_state *st = ssl_cuda_st(c);
    SSL_CUDA_CHECK(cudaEventRecord(st->queued, st->stream));
    SSL_CUDA_CHECK(cudaStreamWaitEvent(st->copy, st->queued, 0));
    if (bytes) SSL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st->copy));
    SSL_CUDA_CHECK(cudaEventRecord(st->copied, st->copy));
}

/* The compute stream waits on the device; the host wait is for the sources' reuse, and by the time
 * the trainer joins, the copy was queued a whole micro-step earlier. */
void ssl_cuda_upload_join(ssl_ctx *c)
{
    ssl_cuda_state *st = ssl_cuda_st(c);
    SSL_CUDA_CHECK(cudaStreamWaitEvent(st->stream, st->copied, 0));
    SSL_CUDA_CHECK(cudaEventSynchronize(st->copied));
}

void ssl_cuda_download(void *dst, const void *src, size_t bytes)
{
    if (bytes) SSL_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void ssl_cuda_sync(ssl_ctx *c) { SSL_CUDA_CHECK(cudaStreamSynchronize(ssl_cuda_stream(c))); }
void *ssl_cuda_ctx_stream(ssl_ctx *c) { return (void *)ssl_cuda_stream(c); }

/* Profiling marks: events recorded in the stream, read after the step (ssl_prof_flush). The pool
 * grows on the first step to the number of marks a step takes, then is reused. */
int ssl_cuda_timing_mark(ssl_ctx *c)
{
    ssl_cuda_state *st = ssl_cuda_st(c);
    if (st->used_ev == st->nev) {
        const int cap = st->nev ? 2 * st->nev : 512;
        cudaEvent_t *grown = (cudaEvent_t *)ssl_malloc((size_t)cap * sizeof *grown);
        if (st->nev) memcpy(grown, st->ev, (size_t)st->nev * sizeof *grown);
        for (int i = st->nev; i < cap; i++) SSL_CUDA_CHECK(cudaEventCreate(&grown[i]));
        ssl_free(st->ev);
        st->ev = grown, st->nev = cap;
    }
    SSL_CUDA_CHECK(cudaEventRecord(st->ev[st->used_ev], st->stream));
    return st->used_ev++;
}

double ssl_cuda_timing_seconds(ssl_ctx *c, int a, int b)
{
    ssl_cuda_state *st = ssl_cuda_st(c);
    SSL_ASSERTF(a >= 0 && b >= a && b < st->used_ev, "timing marks %d, %d of %d", a, b, st->used_ev);
    SSL_CUDA_CHECK(cudaEventSynchronize(st->ev[b]));
    float ms = 0.0f;
    SSL_CUDA_CHECK(cudaEventElapsedTime(&ms, st->ev[a], st->ev[b]));
    return 1e-3 * ms;
}

void ssl_cuda_timing_reset(ssl_ctx *c) { ssl_cuda_st(c)->used_ev = 0; }

/* SSL_CUDA_TF32 is read once here (as SSL_CONV on the CPU) so no op calls getenv. */
void ssl_cuda_ctx_init(ssl_ctx *c)
{
    ssl_cuda_state *st = (ssl_cuda_state *)ssl_calloc(1, sizeof *st);
    SSL_CUDA_CHECK(cudaStreamCreate(&st->stream)); /* blocking: see ssl_cuda_upload */
    /* non-blocking: the legacy stream's cudaMemcpy (a loss read back mid-step) need not wait for the
     * next batch's upload, nor work queued after it; the events order what must be ordered */
    SSL_CUDA_CHECK(cudaStreamCreateWithFlags(&st->copy, cudaStreamNonBlocking));
    SSL_CUDA_CHECK(cudaEventCreateWithFlags(&st->queued, cudaEventDisableTiming));
    SSL_CUDA_CHECK(cudaEventCreateWithFlags(&st->copied, cudaEventDisableTiming));
    SSL_CUBLAS_CHECK(cublasCreate(&st->blas));
    SSL_CUBLAS_CHECK(cublasSetStream(st->blas, st->stream));
    const char *e = getenv("SSL_CUDA_TF32");
    st->tf32 = e && strcmp(e, "1") == 0;
    /* Default math is exact fp32 so results match the CPU backend; TF32 trades ~10 mantissa bits of
     * the GEMM inputs for tensor-core speed and must be asked for. */
    SSL_CUBLAS_CHECK(cublasSetMathMode(st->blas, st->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                          : CUBLAS_DEFAULT_MATH));
    SSL_CUDA_CHECK(cudaMalloc(&st->red, (SSL_CUDA_RED_BLOCKS + 1) * sizeof(double)));
    SSL_CUDA_CHECK(cudaMallocHost(&st->red_host, sizeof(double)));
    ssl_cuda_conv_init(st);
    c->be_state = st;
}

void ssl_cuda_ctx_free(ssl_ctx *c)
{
    ssl_cuda_state *st = ssl_cuda_st(c);
    if (!st) return;
    SSL_CUDA_CHECK(cudaStreamSynchronize(st->stream));
    SSL_CUDA_CHECK(cudaStreamSynchronize(st->copy));
    SSL_CUDA_CHECK(cudaEventDestroy(st->queued));
    SSL_CUDA_CHECK(cudaEventDestroy(st->copied));
    SSL_CUDA_CHECK(cudaStreamDestroy(st->copy));
    ssl_cuda_conv_free(st);
    ssl_cuda_reduce_free(st);
    SSL_CUDA_CHECK(cudaFree(st->ptrs));
    SSL_CUDA_CHECK(cudaFree(st->mix));
    for (int i = 0; i < st->nev; i++) SSL_CUDA_CHECK(cudaEventDestroy(st->ev[i]));
    ssl_free(st->ev);
    SSL_CUDA_CHECK(cudaFree(st->red));
    SSL_CUDA_CHECK(cudaFreeHost(st->red_host));
    SSL_CUBLAS_CHECK(cublasDestroy(st->blas));
    SSL_CUDA_CHECK(cudaStreamDestroy(st->stream));
    ssl_free(st);
    c->be_state = NULL;
}

void ssl_cuda_select_device(int index)
{
    cudaError_t e = cudaSetDevice(index);
    if (e != cudaSuccess) SSL_ABORT("cudaSetDevice(%d): %s", index, cudaGetErrorString(e));
}

int ssl_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky error of a missing driver */
        return 0;
    }
    return n;
}
