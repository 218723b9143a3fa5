/* The devsim backend: the CPU ops behind device pointers that the host cannot dereference, so the
 * training loop can be proven device-clean on a machine without a GPU. alloc returns the CPU
 * allocation with address bit 55 set: a non-canonical address on x86-64 and outside the 48-bit user
 * range (below the ignored top byte) on AArch64, so any host read or write of "device" memory faults
 * at the offending line, as a host access to cudaMalloc memory would. Every op untags its device
 * pointers and runs the CPU op on a shadow context (the CPU backend's state and workspace); upload
 * and download are the only host copies. Host-side arguments (the conv shape, the loss sums the
 * table documents as host) pass through unchanged. Results equal the CPU backend's bit for bit.
 * Not for training: tests select it with device.backend=devsim. */
#include "framework/backend/backend.h"
#include "framework/comm/device.h"
#include "framework/core/check.h"
#include "framework/core/timer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEVSIM_TAG ((uintptr_t)1 << 55)

static const ssl_backend *cpu(void) { return ssl_backend_cpu(); }

static void *tag(void *p) { return p ? (void *)((uintptr_t)p | DEVSIM_TAG) : NULL; }

/* Untags a device pointer; a pointer without the tag is host memory handed to an op by mistake. */
static void *U(const void *p)
{
    if (!p) return NULL;
    SSL_ASSERTF((uintptr_t)p & DEVSIM_TAG, "devsim: host pointer %p passed to a device op", p);
    return (void *)((uintptr_t)p & ~DEVSIM_TAG);
}

/* The shadow context the CPU op runs on: the CPU backend's state and its own (host) workspace. */
static ssl_ctx *SH(ssl_ctx *c)
{
    ssl_ctx *s = c->be_state;
    s->nthreads = c->nthreads;
    s->comm = c->comm, s->bn_comm = c->bn_comm;
    s->bf16 = c->bf16;
    return s;
}

/* ---- the device communicator: NCCL's stand-in -------------------------------------------------
 * MPI's collectives straight on the untagged buffers, no host staging: what NCCL does on a GPU
 * (device pointers in, results in place, comm.h's in-place rules), so the trainer's path through
 * comm->dev is exercised and checked against the CPU backend bit for bit where no GPU is. */
static void dc_allreduce(ssl_dev_comm *d, ssl_ctx *c, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    (void)c;
    ssl_allreduce(d->host, U(buf), n, t, op);
}
static void dc_allgather(ssl_dev_comm *d, ssl_ctx *c, const void *send, void *recv, size_t n, ssl_dtype t)
{
    (void)c;
    ssl_allgather(d->host, U(send), U(recv), n, t);
}
static void dc_reduce_scatter(ssl_dev_comm *d, ssl_ctx *c, const void *send, void *recv, size_t n, ssl_dtype t,
                              ssl_redop op)
{
    (void)c;
    ssl_reduce_scatter(d->host, U(send), U(recv), n, t, op);
}
static void dc_broadcast(ssl_dev_comm *d, ssl_ctx *c, void *buf, size_t n, ssl_dtype t, int root)
{
    (void)c;
    ssl_broadcast(d->host, U(buf), n, t, root);
}
/* NCCL's second stream at its earliest: the all-reduce done on the spot (every rank starts the same
 * buckets in the same order), so a bucket started before backward finished writing it sums a partial
 * gradient and the bit-for-bit tests see it; MPI's nonblocking allreduce would read the buffer only
 * at the wait, after backward. */
static void dc_allreduce_start(ssl_dev_comm *d, ssl_ctx *c, void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    (void)c;
    ssl_allreduce(d->host, U(buf), n, t, op);
}
static void dc_wait_all(ssl_dev_comm *d, ssl_ctx *c)
{
    (void)c;
    ssl_comm_wait_all(d->host);
}
static void dc_free(ssl_dev_comm *d) { ssl_free(d); }

static ssl_dev_comm *d_dev_comm_create(ssl_comm *host, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    ssl_dev_comm *d = ssl_calloc(1, sizeof *d);
    *d = (ssl_dev_comm){.name = "devsim-direct", .host = host, .allreduce = dc_allreduce, .allgather = dc_allgather,
                        .reduce_scatter = dc_reduce_scatter, .broadcast = dc_broadcast,
                        .allreduce_start = dc_allreduce_start, .wait_all = dc_wait_all, .free = dc_free};
    return d;
}

static void *d_alloc(size_t bytes) { return tag(cpu()->alloc(bytes)); }
static void d_free(void *p)
{
    if (p) cpu()->free(U(p));
}
static void d_upload(void *dst, const void *src, size_t bytes) { memcpy(U(dst), src, bytes); }

/* Page-locked memory, simulated: ordinary memory whose ranges are remembered, so that upload_async
 * can refuse a source that on a GPU would be pageable (a synchronous, slower copy). */
static pthread_mutex_t pinned_mu = PTHREAD_MUTEX_INITIALIZER;
enum { PINNED_MAX = 256 }; /* a loader's slots each; tests make few */
static struct {
    const char *p;
    size_t n;
} pinned[PINNED_MAX];
static size_t npinned;

static void *d_host_alloc(size_t bytes)
{
    void *p = cpu()->alloc(bytes);
    pthread_mutex_lock(&pinned_mu);
    SSL_ASSERTF(npinned < PINNED_MAX, "devsim: more than %d page-locked buffers", PINNED_MAX);
    pinned[npinned].p = p, pinned[npinned].n = bytes, npinned++;
    pthread_mutex_unlock(&pinned_mu);
    return p;
}

static void d_host_free(void *p)
{
    if (!p) return;
    pthread_mutex_lock(&pinned_mu);
    size_t i = 0;
    while (i < npinned && pinned[i].p != p) i++;
    SSL_ASSERTF(i < npinned, "devsim: host_free of %p, which host_alloc did not make", p);
    pinned[i] = pinned[--npinned];
    pthread_mutex_unlock(&pinned_mu);
    cpu()->free(p);
}

static void check_pinned(const void *src, size_t bytes, const char *op)
{
    pthread_mutex_lock(&pinned_mu);
    size_t i = 0;
    while (i < npinned && !((const char *)src >= pinned[i].p && (const char *)src + bytes <= pinned[i].p + pinned[i].n))
        i++;
    pthread_mutex_unlock(&pinned_mu);
    SSL_ASSERTF(i < npinned, "devsim: %s of %zu bytes from %p, not page-locked memory (host_alloc)", op, bytes, src);
}

static void d_upload_async(ssl_ctx *c, void *dst, const void *src, size_t bytes)
{
    (void)c;
    check_pinned(src, bytes, "upload_async");
    memcpy(U(dst), src, bytes);
}

/* The copy stream, simulated at its latest: a copy happens only at the join, so a source reused
 * before its join (the loader's slot refilled too early) or a batch read without one shows as wrong
 * data, where a GPU would show it only sometimes. */
enum { AHEAD_MAX = 8 };
static struct {
    void *dst;
    const void *src;
    size_t bytes;
} ahead[AHEAD_MAX];
static int nahead;
static pthread_mutex_t ahead_mu = PTHREAD_MUTEX_INITIALIZER;

static void d_upload_ahead(ssl_ctx *c, void *dst, const void *src, size_t bytes)
{
    (void)c;
    check_pinned(src, bytes, "upload_ahead");
    pthread_mutex_lock(&ahead_mu);
    SSL_ASSERTF(nahead < AHEAD_MAX, "devsim: more than %d copies ahead without a join", AHEAD_MAX);
    ahead[nahead].dst = U(dst), ahead[nahead].src = src, ahead[nahead].bytes = bytes, nahead++;
    pthread_mutex_unlock(&ahead_mu);
}

static long long n_syncs;
static void d_upload_join(ssl_ctx *c)
{
    (void)c;
    pthread_mutex_lock(&ahead_mu);
    for (int i = 0; i < nahead; i++) memcpy(ahead[i].dst, ahead[i].src, ahead[i].bytes);
    nahead = 0;
    pthread_mutex_unlock(&ahead_mu);
    n_syncs++; /* the host waits for the copies */
}
static void d_download(void *dst, const void *src, size_t bytes) { memcpy(dst, U(src), bytes); }
/* Host waits for the device: counted, so a test can see that the hot path does not wait per layer
 * (SSL_DEVSIM_STATS=1 prints the count when a context that synchronised is freed). */
static void d_sync(ssl_ctx *c)
{
    (void)c;
    n_syncs++;
}

/* Timing marks (the profiler's stream timestamps): the wall clock, as a stream that has already run. */
static double *marks;
static int nmarks, capmarks;
static int d_timing_mark(ssl_ctx *c)
{
    (void)c;
    if (nmarks == capmarks) {
        capmarks = capmarks ? 2 * capmarks : 1024; /* grows on the first steps only */
        double *grown = ssl_malloc((size_t)capmarks * sizeof *grown);
        if (nmarks) memcpy(grown, marks, (size_t)nmarks * sizeof *grown);
        ssl_free(marks);
        marks = grown;
    }
    marks[nmarks] = ssl_now();
    return nmarks++;
}
static double d_timing_seconds(ssl_ctx *c, int a, int b)
{
    (void)c;
    SSL_ASSERTF(a >= 0 && b >= a && b < nmarks, "devsim: timing marks %d, %d of %d", a, b, nmarks);
    return marks[b] - marks[a];
}
static void d_timing_reset(ssl_ctx *c)
{
    (void)c;
    nmarks = 0;
}

static int selected_device = -1; /* as a CUDA process's current device */
static int d_device_count(void);

static void d_ctx_init(ssl_ctx *c)
{
    /* with simulated devices, a context before the rank's device is chosen would be on device 0 on a
     * GPU, whatever the rank: the binding must come first */
    SSL_ASSERTF(d_device_count() == 0 || selected_device >= 0,
                "devsim: a context made before this rank's device was selected (%d devices)", d_device_count());
    ssl_ctx *s = ssl_calloc(1, sizeof *s);
    s->be = cpu();
    s->nthreads = c->nthreads;
    ssl_arena_init(&s->act, cpu()->alloc, cpu()->free);
    if (cpu()->ctx_init) cpu()->ctx_init(s);
    c->be_state = s;
}

static void d_ctx_free(ssl_ctx *c)
{
    ssl_ctx *s = c->be_state;
    if (!s) return;
    const char *e = getenv("SSL_DEVSIM_STATS");
    if (e && !strcmp(e, "1")) fprintf(stderr, "devsim: %lld host waits for the device\n", n_syncs);
    n_syncs = 0;
    if (cpu()->ctx_free) cpu()->ctx_free(s);
    ssl_arena_free(&s->act);
    if (s->ws) cpu()->free(s->ws);
    ssl_free(s);
    c->be_state = NULL;
}

static void d_gemm(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    cpu()->gemm(SH(c), trans_a, trans_b, M, N, K, alpha, (const float *)U(A), lda, (const float *)U(B), ldb,
        beta, (float *)U(C), ldc);
}

static void d_gemm_batched(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha,
                           const float *A, int lda, int64_t sa, const float *B, int ldb, int64_t sb,
                           float beta, float *C, int ldc, int64_t sc, int batch)
{
    cpu()->gemm_batched(SH(c), trans_a, trans_b, M, N, K, alpha, (const float *)U(A), lda, sa,
        (const float *)U(B), ldb, sb, beta, (float *)U(C), ldc, sc, batch);
}

static void d_gemm_batched2(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                            int lda, const int64_t sa[2], const float *B, int ldb, const int64_t sb[2], float beta,
                            float *C, int ldc, const int64_t sc[2], int outer, int inner)
{
    cpu()->gemm_batched2(SH(c), trans_a, trans_b, M, N, K, alpha, (const float *)U(A), lda, sa, (const float *)U(B),
                         ldb, sb, beta, (float *)U(C), ldc, sc, outer, inner); /* strides: host */
}

static void d_gemm_batched2_bf16(ssl_ctx *c, int ta, int tb, int M, int N, int K, float alpha, const void *A,
                                 int ah, int lda, const int64_t sa[2], const void *B, int bh, int ldb,
                                 const int64_t sb[2], float beta, float *C, int ldc, const int64_t sc[2], int outer,
                                 int inner)
{
    cpu()->gemm_batched2_bf16(SH(c), ta, tb, M, N, K, alpha, U(A), ah, lda, sa, U(B), bh, ldb, sb, beta,
                              (float *)U(C), ldc, sc, outer, inner);
}

static void d_conv2d_fwd(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, float *y)
{
    cpu()->conv2d_fwd(SH(c), s, (const float *)U(x), (const float *)U(w), (float *)U(y));
}

static void d_conv2d_fwd_bf16(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, uint16_t *y)
{
    cpu()->conv2d_fwd_bf16(SH(c), s, (const float *)U(x), (const float *)U(w), (uint16_t *)U(y));
}

static void d_conv2d_bwd_data(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *w, float *dx)
{
    cpu()->conv2d_bwd_data(SH(c), s, (const float *)U(dy), (const float *)U(w), (float *)U(dx));
}

static void d_conv2d_bwd_filter(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *x,
                                float *dw)
{
    cpu()->conv2d_bwd_filter(SH(c), s, (const float *)U(dy), (const float *)U(x), (float *)U(dw));
}

static void d_conv2d_bwd_filter_bf16(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const uint16_t *x,
                                     float *dw)
{
    cpu()->conv2d_bwd_filter_bf16(SH(c), s, (const float *)U(dy), (const uint16_t *)U(x), (float *)U(dw));
}

static void d_fill(ssl_ctx *c, float *x, size_t n, float v)
{
    cpu()->fill(SH(c), (float *)U(x), n, v);
}

static void d_copy(ssl_ctx *c, float *dst, const float *src, size_t n)
{
    cpu()->copy(SH(c), (float *)U(dst), (const float *)U(src), n);
}

static void d_cast_f32_bf16(ssl_ctx *c, uint16_t *dst, const float *src, size_t n)
{
    cpu()->cast_f32_bf16(SH(c), (uint16_t *)U(dst), (const float *)U(src), n);
}

static void d_cast_bf16_f32(ssl_ctx *c, float *dst, const uint16_t *src, size_t n)
{
    cpu()->cast_bf16_f32(SH(c), (float *)U(dst), (const uint16_t *)U(src), n);
}

static void d_scale(ssl_ctx *c, float *x, size_t n, float a)
{
    cpu()->scale(SH(c), (float *)U(x), n, a);
}

static void d_axpby(ssl_ctx *c, size_t n, float a, const float *x, float b, float *y)
{
    cpu()->axpby(SH(c), n, a, (const float *)U(x), b, (float *)U(y));
}
static void d_axpby_rows(ssl_ctx *c, int64_t rows, int64_t D, const float *a, const float *x, float b, float *y)
{
    cpu()->axpby_rows(SH(c), rows, D, (const float *)U(a), (const float *)U(x), b, (float *)U(y));
}

static void d_add(ssl_ctx *c, size_t n, const float *a, const float *b, float *y)
{
    cpu()->add(SH(c), n, (const float *)U(a), (const float *)U(b), (float *)U(y));
}

static void d_mul(ssl_ctx *c, size_t n, const float *a, const float *b, float *y)
{
    cpu()->mul(SH(c), n, (const float *)U(a), (const float *)U(b), (float *)U(y));
}

static void d_relu_fwd(ssl_ctx *c, size_t n, const float *x, float *y)
{
    cpu()->relu_fwd(SH(c), n, (const float *)U(x), (float *)U(y));
}

static void d_relu_bwd(ssl_ctx *c, size_t n, const float *y, const float *dy, float *dx)
{
    cpu()->relu_bwd(SH(c), n, (const float *)U(y), (const float *)U(dy), (float *)U(dx));
}

static void d_relu_bwd_bf16(ssl_ctx *c, size_t n, const uint16_t *y, const float *dy, float *dx)
{
    cpu()->relu_bwd_bf16(SH(c), n, (const uint16_t *)U(y), (const float *)U(dy), (float *)U(dx));
}

static void d_gelu_fwd(ssl_ctx *c, size_t n, const float *x, float *y)
{
    cpu()->gelu_fwd(SH(c), n, (const float *)U(x), (float *)U(y));
}

static void d_gelu_bwd(ssl_ctx *c, size_t n, const float *x, const float *dy, float *dx)
{
    cpu()->gelu_bwd(SH(c), n, (const float *)U(x), (const float *)U(dy), (float *)U(dx));
}

static void d_bias_add(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *b, float *y)
{
    cpu()->bias_add(SH(c), outer, C, inner, (const float *)U(b), (float *)U(y));
}

static void d_bias_grad(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *dy, float *db)
{
    cpu()->bias_grad(SH(c), outer, C, inner, (const float *)U(dy), (float *)U(db));
}

static void d_bn_stats(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x, double *sum,
                       double *sumsq)
{
    cpu()->bn_stats(SH(c), N, C, S, (const float *)U(x), (double *)U(sum), (double *)U(sumsq));
}

static void d_bn_apply(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x, const float *mean,
                       const float *invstd, const float *gamma, const float *beta, int relu, float *y)
{
    cpu()->bn_apply(SH(c), N, C, S, (const float *)U(x), (const float *)U(mean), (const float *)U(invstd),
        (const float *)U(gamma), (const float *)U(beta), relu, (float *)U(y));
}

static void d_bn_stats_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x, double *sum,
                            double *sumsq)
{
    cpu()->bn_stats_bf16(SH(c), N, C, S, (const uint16_t *)U(x), (double *)U(sum), (double *)U(sumsq));
}

static void d_bn_apply_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x, const float *mean,
                            const float *invstd, const float *gamma, const float *beta, int relu, float *y)
{
    cpu()->bn_apply_bf16(SH(c), N, C, S, (const uint16_t *)U(x), (const float *)U(mean), (const float *)U(invstd),
        (const float *)U(gamma), (const float *)U(beta), relu, (float *)U(y));
}

static void d_bn_bwd_stats(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const float *x,
                           const float *mean, const float *invstd, double *sum_dy, double *sum_dy_xhat)
{
    cpu()->bn_bwd_stats(SH(c), N, C, S, (const float *)U(dy), (const float *)U(x), (const float *)U(mean),
        (const float *)U(invstd), (double *)U(sum_dy), (double *)U(sum_dy_xhat));
}

static void d_bn_bwd_data(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const float *x,
                          const float *mean, const float *invstd, const float *gamma, const double *sum_dy,
                          const double *sum_dy_xhat, double count, float *dx)
{
    cpu()->bn_bwd_data(SH(c), N, C, S, (const float *)U(dy), (const float *)U(x), (const float *)U(mean),
        (const float *)U(invstd), (const float *)U(gamma), (const double *)U(sum_dy),
        (const double *)U(sum_dy_xhat), count, (float *)U(dx));
}

static void d_bn_bwd_stats_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const uint16_t *x,
                                const float *mean, const float *invstd, double *sum_dy, double *sum_dy_xhat)
{
    cpu()->bn_bwd_stats_bf16(SH(c), N, C, S, (const float *)U(dy), (const uint16_t *)U(x), (const float *)U(mean),
        (const float *)U(invstd), (double *)U(sum_dy), (double *)U(sum_dy_xhat));
}

static void d_bn_bwd_data_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const uint16_t *x,
                               const float *mean, const float *invstd, const float *gamma, const double *sum_dy,
                               const double *sum_dy_xhat, double count, float *dx)
{
    cpu()->bn_bwd_data_bf16(SH(c), N, C, S, (const float *)U(dy), (const uint16_t *)U(x), (const float *)U(mean),
        (const float *)U(invstd), (const float *)U(gamma), (const double *)U(sum_dy),
        (const double *)U(sum_dy_xhat), count, (float *)U(dx));
}

static void d_bn_finalize(ssl_ctx *c, int64_t C, int train, const double *sum, const double *sumsq,
                          double count, float eps, float momentum, float *running_mean, float *running_var,
                          float *mean, float *invstd)
{
    cpu()->bn_finalize(SH(c), C, train, (const double *)U(sum), (const double *)U(sumsq), count, eps,
        momentum, (float *)U(running_mean), (float *)U(running_var), (float *)U(mean), (float *)U(invstd));
}

static void d_bn_param_grads(ssl_ctx *c, int64_t C, const double *sum_dy, const double *sum_dy_xhat,
                             float *dgamma, float *dbeta)
{
    cpu()->bn_param_grads(SH(c), C, (const double *)U(sum_dy), (const double *)U(sum_dy_xhat),
        (float *)U(dgamma), (float *)U(dbeta));
}

static void d_maxpool_fwd(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad, int P, int Q,
                          const float *x, float *y, int32_t *idx)
{
    cpu()->maxpool_fwd(SH(c), N, C, H, W, k, stride, pad, P, Q, (const float *)U(x), (float *)U(y),
        (int32_t *)U(idx));
}

static void d_maxpool_bwd(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad, int P, int Q,
                          const float *dy, const int32_t *idx, float *dx)
{
    cpu()->maxpool_bwd(SH(c), N, C, H, W, k, stride, pad, P, Q, (const float *)U(dy), (const int32_t *)U(idx),
        (float *)U(dx));
}

static void d_avgpool_fwd(ssl_ctx *c, int64_t NC, int64_t S, const float *x, float *y)
{
    cpu()->avgpool_fwd(SH(c), NC, S, (const float *)U(x), (float *)U(y));
}

static void d_avgpool_bwd(ssl_ctx *c, int64_t NC, int64_t S, const float *dy, float *dx)
{
    cpu()->avgpool_bwd(SH(c), NC, S, (const float *)U(dy), (float *)U(dx));
}

static void d_layernorm_fwd(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x,
                            const float *gamma, const float *beta, float *y, float *mean, float *rstd)
{
    cpu()->layernorm_fwd(SH(c), rows, D, eps, (const float *)U(x), (const float *)U(gamma),
        (const float *)U(beta), (float *)U(y), (float *)U(mean), (float *)U(rstd));
}

static void d_layernorm_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *dy, const float *x,
                            const float *gamma, const float *mean, const float *rstd, float *dx,
                            float *dgamma, float *dbeta)
{
    cpu()->layernorm_bwd(SH(c), rows, D, (const float *)U(dy), (const float *)U(x), (const float *)U(gamma),
        (const float *)U(mean), (const float *)U(rstd), (float *)U(dx), (float *)U(dgamma),
        (float *)U(dbeta));
}

static void d_softmax_fwd(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, float *y)
{
    cpu()->softmax_fwd(SH(c), rows, D, scale, (const float *)U(x), (float *)U(y));
}

static void d_softmax_bwd(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *y, const float *dy,
                          float *dx)
{
    cpu()->softmax_bwd(SH(c), rows, D, scale, (const float *)U(y), (const float *)U(dy), (float *)U(dx));
}

static void d_log_softmax_fwd(ssl_ctx *c, int64_t rows, int64_t D, const float *x, float *y)
{
    cpu()->log_softmax_fwd(SH(c), rows, D, (const float *)U(x), (float *)U(y));
}

static void d_log_softmax_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *dy, float *dx)
{
    cpu()->log_softmax_bwd(SH(c), rows, D, (const float *)U(y), (const float *)U(dy), (float *)U(dx));
}

static void d_l2norm_fwd(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x, float *y,
                         float *norm)
{
    cpu()->l2norm_fwd(SH(c), rows, D, eps, (const float *)U(x), (float *)U(y), (float *)U(norm));
}

static void d_l2norm_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *norm,
                         const float *dy, float *dx)
{
    cpu()->l2norm_bwd(SH(c), rows, D, (const float *)U(y), (const float *)U(norm), (const float *)U(dy),
        (float *)U(dx));
}

static void d_ntxent_rows(ssl_ctx *c, int64_t nq, int64_t M, int64_t row0, int64_t half, float *S,
                          double *loss_sum)
{
    cpu()->ntxent_rows(SH(c), nq, M, row0, half, (float *)U(S), loss_sum);
}

static void d_row_max(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, const float *centre,
                      float *mx)
{
    cpu()->row_max(SH(c), rows, D, scale, (const float *)U(x), (const float *)U(centre), (float *)U(mx));
}

static void d_row_sumexp(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x,
                         const float *centre, const float *mx, double *se)
{
    cpu()->row_sumexp(SH(c), rows, D, scale, (const float *)U(x), (const float *)U(centre),
        (const float *)U(mx), (double *)U(se));
}

static void d_softmax_apply(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x,
                            const float *centre, const float *mx, const double *se, float *logp, float *p)
{
    cpu()->softmax_apply(SH(c), rows, D, scale, (const float *)U(x), (const float *)U(centre),
        (const float *)U(mx), (const double *)U(se), (float *)U(logp), (float *)U(p));
}

static void d_dino_xent_rows(ssl_ctx *c, int64_t R, int64_t D, int vt, int vs, const float *P,
                             const float *LS, float g, float *dS, double *ce_sum)
{
    cpu()->dino_xent_rows(SH(c), R, D, vt, vs, (const float *)U(P), (const float *)U(LS), g, (float *)U(dS),
        ce_sum);
}

static void d_mae_loss_rows(ssl_ctx *c, int64_t rows, int64_t F, float norm_eps, const float *pred,
                            const float *target, const float *mask, float g, float *dpred, double *loss_sum)
{
    cpu()->mae_loss_rows(SH(c), rows, F, norm_eps, (const float *)U(pred), (const float *)U(target),
        (const float *)U(mask), g, (float *)U(dpred), loss_sum);
}

static void d_copy2d(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst,
                     int64_t ldd)
{
    cpu()->copy2d(SH(c), rows, cols, (const float *)U(src), lds, (float *)U(dst), ldd);
}

static void d_add2d(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst,
                    int64_t ldd)
{
    cpu()->add2d(SH(c), rows, cols, (const float *)U(src), lds, (float *)U(dst), ldd);
}

static void d_gather_rows(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx, const float *src,
                          float *dst)
{
    cpu()->gather_rows(SH(c), n, cols, (const int32_t *)U(idx), (const float *)U(src), (float *)U(dst));
}

static void d_scatter_add_rows(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx, const float *src,
                               float *dst)
{
    cpu()->scatter_add_rows(SH(c), n, cols, (const int32_t *)U(idx), (const float *)U(src), (float *)U(dst));
}

static void d_patchify(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out)
{
    cpu()->patchify(SH(c), N, C, H, W, p, (const float *)U(x), (float *)U(out));
}

static void d_unpatchify(ssl_ctx *c, int N, int C, int H, int W, int p, const float *in, float *x)
{
    cpu()->unpatchify(SH(c), N, C, H, W, p, (const float *)U(in), (float *)U(x));
}

static void d_patchify_hwc(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out)
{
    cpu()->patchify_hwc(SH(c), N, C, H, W, p, (const float *)U(x), (float *)U(out));
}

static void d_resize_bicubic_fwd(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D, const float *x,
                                 float *y)
{
    cpu()->resize_bicubic_fwd(SH(c), hi, wi, ho, wo, D, (const float *)U(x), (float *)U(y));
}

static void d_augment(ssl_ctx *c, int njobs, int max_S, const uint8_t *src, const ssl_aug_job *jobs, float *out)
{
    cpu()->augment(SH(c), njobs, max_S, (const uint8_t *)U(src), (const ssl_aug_job *)U(jobs), (float *)U(out));
}

static void d_resize_bicubic_bwd(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D, const float *dy,
                                 float *dx)
{
    cpu()->resize_bicubic_bwd(SH(c), hi, wi, ho, wo, D, (const float *)U(dy), (float *)U(dx));
}

static void d_sumsq_segments(ssl_ctx *c, int count, const float *x, const size_t *off, const size_t *n, double *out)
{
    cpu()->sumsq_segments(SH(c), count, (const float *)U(x), off, n, out); /* off, n, out: host */
}
static double d_sumsq(ssl_ctx *c, size_t n, const float *x)
{
    return cpu()->sumsq(SH(c), n, (const float *)U(x));
}

static double d_dot(ssl_ctx *c, size_t n, const float *x, const float *y)
{
    return cpu()->dot(SH(c), n, (const float *)U(x), (const float *)U(y));
}

static double d_sum(ssl_ctx *c, size_t n, const float *x)
{
    return cpu()->sum(SH(c), n, (const float *)U(x));
}

static double d_xlogx_sum(ssl_ctx *c, size_t n, float a, const float *x)
{
    return cpu()->xlogx_sum(SH(c), n, a, (const float *)U(x));
}

static void d_sgd_update(ssl_ctx *c, size_t n, float lr, float momentum, int nesterov, float wd,
                         float gscale, float *w, const float *g, float *m)
{
    cpu()->sgd_update(SH(c), n, lr, momentum, nesterov, wd, gscale, (float *)U(w), (const float *)U(g),
        (float *)U(m));
}

static void d_adam_direction(ssl_ctx *c, size_t n, float b1, float b2, float eps, float bc1, float bc2,
                             float wd, const float *w, const float *g, float *m, float *v, float *u)
{
    cpu()->adam_direction(SH(c), n, b1, b2, eps, bc1, bc2, wd, (const float *)U(w), (const float *)U(g),
        (float *)U(m), (float *)U(v), (float *)U(u));
}

static void d_sgd_update_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, float momentum, int nesterov, float *w,
                               const float *g, float *m)
{
    cpu()->sgd_update_multi(SH(c), count, seg, momentum, nesterov, (float *)U(w), (const float *)U(g), (float *)U(m));
}

static void d_adam_direction_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, float b1, float b2, float eps,
                                   const float *w, float *g, float *m, float *v)
{
    cpu()->adam_direction_multi(SH(c), count, seg, b1, b2, eps, (const float *)U(w), (float *)U(g), (float *)U(m),
                                (float *)U(v));
}

static void d_axpby_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, const float *x, float *y)
{
    cpu()->axpby_multi(SH(c), count, seg, (const float *)U(x), (float *)U(y));
}

/* Simulated devices, so the rank -> device choice is testable without a GPU: SSL_DEVSIM_DEVICES
 * of them (default 0: reported like a host backend); selecting one only checks its index. */
static int d_device_count(void)
{
    const char *e = getenv("SSL_DEVSIM_DEVICES");
    int n = e ? atoi(e) : 0;
    return n > 0 ? n : 0;
}
static void d_select_device(int index)
{
    SSL_ASSERTF(index >= 0 && index < d_device_count(), "devsim: device %d of %d", index, d_device_count());
    selected_device = index;
}

static const ssl_backend devsim_backend = {
    .name = "devsim",
    .host_memory = 0,
    .device_count = d_device_count,
    .select_device = d_select_device,
    .dev_comm_create = d_dev_comm_create,
    .alloc = d_alloc,
    .free = d_free,
    .upload = d_upload,
    .download = d_download,
    .host_alloc = d_host_alloc,
    .host_free = d_host_free,
    .upload_async = d_upload_async,
    .upload_ahead = d_upload_ahead,
    .upload_join = d_upload_join,
    .sync = d_sync,
    .timing_mark = d_timing_mark,
    .timing_seconds = d_timing_seconds,
    .timing_reset = d_timing_reset,
    .ctx_init = d_ctx_init,
    .ctx_free = d_ctx_free,
    .gemm = d_gemm,
    .gemm_batched = d_gemm_batched,
    .gemm_batched2 = d_gemm_batched2,
    .gemm_batched2_bf16 = d_gemm_batched2_bf16,
    .conv2d_fwd = d_conv2d_fwd,
    .conv2d_fwd_bf16 = d_conv2d_fwd_bf16,
    .conv2d_bwd_data = d_conv2d_bwd_data,
    .conv2d_bwd_filter = d_conv2d_bwd_filter,
    .conv2d_bwd_filter_bf16 = d_conv2d_bwd_filter_bf16,
    .fill = d_fill,
    .copy = d_copy,
    .cast_f32_bf16 = d_cast_f32_bf16,
    .cast_bf16_f32 = d_cast_bf16_f32,
    .scale = d_scale,
    .axpby = d_axpby,
    .axpby_rows = d_axpby_rows,
    .add = d_add,
    .mul = d_mul,
    .relu_fwd = d_relu_fwd,
    .relu_bwd = d_relu_bwd,
    .relu_bwd_bf16 = d_relu_bwd_bf16,
    .gelu_fwd = d_gelu_fwd,
    .gelu_bwd = d_gelu_bwd,
    .bias_add = d_bias_add,
    .bias_grad = d_bias_grad,
    .bn_stats = d_bn_stats,
    .bn_apply = d_bn_apply,
    .bn_stats_bf16 = d_bn_stats_bf16,
    .bn_apply_bf16 = d_bn_apply_bf16,
    .bn_bwd_stats = d_bn_bwd_stats,
    .bn_bwd_data = d_bn_bwd_data,
    .bn_bwd_stats_bf16 = d_bn_bwd_stats_bf16,
    .bn_bwd_data_bf16 = d_bn_bwd_data_bf16,
    .bn_finalize = d_bn_finalize,
    .bn_param_grads = d_bn_param_grads,
    .maxpool_fwd = d_maxpool_fwd,
    .maxpool_bwd = d_maxpool_bwd,
    .avgpool_fwd = d_avgpool_fwd,
    .avgpool_bwd = d_avgpool_bwd,
    .layernorm_fwd = d_layernorm_fwd,
    .layernorm_bwd = d_layernorm_bwd,
    .softmax_fwd = d_softmax_fwd,
    .softmax_bwd = d_softmax_bwd,
    .log_softmax_fwd = d_log_softmax_fwd,
    .log_softmax_bwd = d_log_softmax_bwd,
    .l2norm_fwd = d_l2norm_fwd,
    .l2norm_bwd = d_l2norm_bwd,
    .ntxent_rows = d_ntxent_rows,
    .row_max = d_row_max,
    .row_sumexp = d_row_sumexp,
    .softmax_apply = d_softmax_apply,
    .dino_xent_rows = d_dino_xent_rows,
    .mae_loss_rows = d_mae_loss_rows,
    .copy2d = d_copy2d,
    .add2d = d_add2d,
    .gather_rows = d_gather_rows,
    .scatter_add_rows = d_scatter_add_rows,
    .patchify = d_patchify,
    .unpatchify = d_unpatchify,
    .patchify_hwc = d_patchify_hwc,
    .resize_bicubic_fwd = d_resize_bicubic_fwd,
    .resize_bicubic_bwd = d_resize_bicubic_bwd,
    .augment = d_augment,
    .sumsq = d_sumsq,
    .sumsq_segments = d_sumsq_segments,
    .dot = d_dot,
    .sum = d_sum,
    .xlogx_sum = d_xlogx_sum,
    .sgd_update = d_sgd_update,
    .adam_direction = d_adam_direction,
    .sgd_update_multi = d_sgd_update_multi,
    .adam_direction_multi = d_adam_direction_multi,
    .axpby_multi = d_axpby_multi,
};

const ssl_backend *ssl_backend_devsim(void) { return &devsim_backend; }
