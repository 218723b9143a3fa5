/* CUDA backend: private declarations shared by the .cu files of backend/cuda/ (one op family per file,
 * as backend/cpu/). The framework headers are C, so they are included with C linkage here. */
#ifndef SSL_BACKEND_CUDA_IMPL_CUH
#define SSL_BACKEND_CUDA_IMPL_CUH

extern "C" {
#include "framework/backend/cuda/cuda.h"
#include "framework/core/check.h"
}

#include <cublas_v2.h>
#include <cudnn.h>
#include <cuda_runtime.h>

#define SSL_CUDA_CHECK(call)                                                                   \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess) SSL_ABORT("%s: %s", #call, cudaGetErrorString(e_));             \
    } while (0)
#define SSL_CUBLAS_CHECK(call)                                                                 \
    do {                                                                                       \
        cublasStatus_t s_ = (call);                                                            \
        if (s_ != CUBLAS_STATUS_SUCCESS) SSL_ABORT("%s: %s", #call, cublasGetStatusString(s_)); \
    } while (0)
/* After a kernel launch: catches bad launch configurations at the call site (not asynchronous
 * faults, which surface at the next synchronising call). */
#define SSL_CUDA_LAUNCHED() SSL_CUDA_CHECK(cudaGetLastError())

/* Deterministic reductions: at most this many blocks, whose double partials are added in order. */
#define SSL_CUDA_RED_BLOCKS 1024
#define SSL_CUDA_THREADS 256

/* Backend-private state behind ssl_ctx.be_state (ssl_cuda_ctx_init). */
typedef struct ssl_cuda_state {
    cudaStream_t stream;  /* every op of the context runs here, in order */
    cudaStream_t copy;    /* upload_ahead's copies (memory.cu), ordered against `stream` by the events */
    cudaEvent_t queued, copied; /* the last upload_ahead: `stream`'s work before it; its copy */
    cublasHandle_t blas;  /* bound to `stream` */
    int tf32;             /* SSL_CUDA_TF32=1: TF32 tensor-core GEMMs (off: exact fp32 for parity) */
    double *red;          /* device: SSL_CUDA_RED_BLOCKS partials + 1 result (reduce.cu) */
    double *red_host;     /* pinned host copy of the result */
    /* sumsq_segments (reduce.cu), grown on demand: the chunk table (pinned host + device), the
     * chunks' partials, and the per-segment results (device + pinned host) */
    int64_t *seg_tab_host, *seg_tab;
    size_t seg_tab_cap;
    double *seg_part;
    size_t seg_part_cap;
    double *seg_out, *seg_out_host;
    size_t seg_out_cap;
    void **ptrs;          /* gemm_batched2's pointer arrays (3 x ptr_cap, device; blas.cu) */
    size_t ptr_cap;
    cudnnHandle_t dnn;    /* bound to `stream` (conv.cu) */
    struct ssl_cuda_conv_plan *conv; /* one per convolution geometry seen (conv.cu) */
    int nconv, capconv;
    cudaEvent_t *ev;      /* the profiler's timing marks (memory.cu): events reused after each reset */
    int nev, used_ev;
    uint16_t *mix;        /* bf16 operands and results of model.precision bf16 (mixed.cu), grown on demand */
    size_t mix_cap;       /* elements */
} ssl_cuda_state;

static inline ssl_cuda_state *ssl_cuda_st(ssl_ctx *c) { return (ssl_cuda_state *)c->be_state; }
static inline cudaStream_t ssl_cuda_stream(ssl_ctx *c) { return ssl_cuda_st(c)->stream; }

/* A grid-stride loop over n elements in index type I. Kernels that divide the index (row and column
 * of a flat element) are launched with uint32_t where ssl_cuda_index32(n) allows, since a GPU emulates
 * 64-bit division in software (tens of instructions, which made a bias add compute-bound). */
#define SSL_GRID_STRIDE_T(I, i, n)                                                              \
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < (I)(n); i += (I)(gridDim.x * blockDim.x))
#define SSL_GRID_STRIDE(i, n) SSL_GRID_STRIDE_T(size_t, i, n)
#define SSL_CUDA_GRID(c, n) ssl_cuda_blocks(n), SSL_CUDA_THREADS, 0, ssl_cuda_stream(c)

/* n elements leave room in 32 bits for the last grid stride (at most 65536 x 1024 threads). */
static inline int ssl_cuda_index32(size_t n) { return n <= 0xFFFFFFFFu - (1u << 26); }

/* Blocks for a grid-stride loop over n elements (n > 0). */
static inline unsigned ssl_cuda_blocks(size_t n)
{
    size_t b = (n + SSL_CUDA_THREADS - 1) / SSL_CUDA_THREADS;
    return (unsigned)(b < 65536 ? b : 65536);
}

/* Sum over the block of one value per thread, result valid in thread 0. Fixed tree: deterministic.
 * blockDim.x must be SSL_CUDA_THREADS. All threads must call it (it synchronises). */
template <typename T> __device__ inline T ssl_block_sum(T v)
{
    __shared__ T sh[SSL_CUDA_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < SSL_CUDA_THREADS / 32 ? sh[lane] : T(0);
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    }
    return v;
}

/* As ssl_block_sum, broadcast to every thread. */
template <typename T> __device__ inline T ssl_block_sum_all(T v)
{
    __shared__ T res;
    v = ssl_block_sum(v);
    if (threadIdx.x == 0) res = v;
    __syncthreads();
    return res;
}

/* Block max broadcast to every thread (NaN-blind '>', as the CPU's reductions). */
__device__ inline float ssl_block_max_all(float v)
{
    __shared__ float sh[SSL_CUDA_THREADS / 32];
    __shared__ float res;
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_down_sync(0xffffffffu, v, o);
        v = w > v ? w : v;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float m = sh[0];
        for (int k = 1; k < SSL_CUDA_THREADS / 32; k++) m = sh[k] > m ? sh[k] : m;
        res = m;
    }
    __syncthreads();
    return res;
}

/* cuDNN handle and convolution plans of a state (conv.cu). */
void ssl_cuda_conv_init(ssl_cuda_state *st);
void ssl_cuda_conv_free(ssl_cuda_state *st);

extern "C" {
void *ssl_cuda_alloc(size_t bytes);
void ssl_cuda_free(void *p);
void ssl_cuda_upload(void *dst, const void *src, size_t bytes);
void *ssl_cuda_host_alloc(size_t bytes);
void ssl_cuda_host_free(void *p);
void ssl_cuda_upload_async(ssl_ctx *c, void *dst, const void *src, size_t bytes);
void ssl_cuda_upload_ahead(ssl_ctx *c, void *dst, const void *src, size_t bytes);
void ssl_cuda_upload_join(ssl_ctx *c);
void ssl_cuda_download(void *dst, const void *src, size_t bytes);
void ssl_cuda_sync(ssl_ctx *c);
void ssl_cuda_ctx_init(ssl_ctx *c);
void ssl_cuda_ctx_free(ssl_ctx *c);
void ssl_cuda_gemm(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void ssl_cuda_gemm_batched(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, int64_t sa, const float *B, int ldb, int64_t sb, float beta, float *C, int ldc, int64_t sc, int batch);
void ssl_cuda_gemm_batched2(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                            int lda, const int64_t sa[2], const float *B, int ldb, const int64_t sb[2], float beta,
                            float *C, int ldc, const int64_t sc[2], int outer, int inner);
int ssl_cuda_timing_mark(ssl_ctx *c);
double ssl_cuda_timing_seconds(ssl_ctx *c, int a, int b);
void ssl_cuda_timing_reset(ssl_ctx *c);
void ssl_cuda_mp_gemm(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void ssl_cuda_mp_gemm_batched(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, int64_t sa, const float *B, int ldb, int64_t sb, float beta, float *C, int ldc, int64_t sc, int batch);
void ssl_cuda_mp_gemm_batched2(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const int64_t sa[2], const float *B, int ldb, const int64_t sb[2], float beta, float *C, int ldc, const int64_t sc[2], int outer, int inner);
void ssl_cuda_conv2d_fwd(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, float *y);
void ssl_cuda_conv2d_bwd_data(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *w, float *dx);
void ssl_cuda_conv2d_bwd_filter(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *x, float *dw);
void ssl_cuda_mp_gemm_batched2_bf16(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const void *A, int a_bf16, int lda, const int64_t sa[2], const void *B, int b_bf16, int ldb, const int64_t sb[2], float beta, float *C, int ldc, const int64_t sc[2], int outer, int inner);
void ssl_cuda_conv2d_fwd_bf16(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, uint16_t *y);
void ssl_cuda_conv2d_bwd_filter_bf16(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const uint16_t *x, float *dw);
void ssl_cuda_bn_stats(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x, double *sum, double *sumsq);
void ssl_cuda_bn_apply(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x, const float *mean, const float *invstd, const float *gamma, const float *beta, int relu, float *y);
void ssl_cuda_bn_bwd_stats(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const float *x, const float *mean, const float *invstd, double *sum_dy, double *sum_dy_xhat);
void ssl_cuda_bn_bwd_data(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const float *x, const float *mean, const float *invstd, const float *gamma, const double *sum_dy, const double *sum_dy_xhat, double count, float *dx);
void ssl_cuda_bn_stats_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x, double *sum, double *sumsq);
void ssl_cuda_bn_apply_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x, const float *mean, const float *invstd, const float *gamma, const float *beta, int relu, float *y);
void ssl_cuda_bn_bwd_stats_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const uint16_t *x, const float *mean, const float *invstd, double *sum_dy, double *sum_dy_xhat);
void ssl_cuda_bn_bwd_data_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const uint16_t *x, const float *mean, const float *invstd, const float *gamma, const double *sum_dy, const double *sum_dy_xhat, double count, float *dx);
void ssl_cuda_bn_finalize(ssl_ctx *c, int64_t C, int train, const double *sum, const double *sumsq, double count, float eps, float momentum, float *running_mean, float *running_var, float *mean, float *invstd);
void ssl_cuda_bn_param_grads(ssl_ctx *c, int64_t C, const double *sum_dy, const double *sum_dy_xhat, float *dgamma, float *dbeta);
void ssl_cuda_fill(ssl_ctx *c, float *x, size_t n, float v);
void ssl_cuda_copy(ssl_ctx *c, float *dst, const float *src, size_t n);
void ssl_cuda_cast_f32_bf16(ssl_ctx *c, uint16_t *dst, const float *src, size_t n);
void ssl_cuda_cast_bf16_f32(ssl_ctx *c, float *dst, const uint16_t *src, size_t n);
void ssl_cuda_scale(ssl_ctx *c, float *x, size_t n, float a);
void ssl_cuda_axpby(ssl_ctx *c, size_t n, float a, const float *x, float b, float *y);
void ssl_cuda_axpby_rows(ssl_ctx *c, int64_t rows, int64_t D, const float *a, const float *x, float b, float *y);
void ssl_cuda_add(ssl_ctx *c, size_t n, const float *a, const float *b, float *y);
void ssl_cuda_mul(ssl_ctx *c, size_t n, const float *a, const float *b, float *y);
void ssl_cuda_relu_fwd(ssl_ctx *c, size_t n, const float *x, float *y);
void ssl_cuda_relu_bwd(ssl_ctx *c, size_t n, const float *y, const float *dy, float *dx);
void ssl_cuda_relu_bwd_bf16(ssl_ctx *c, size_t n, const uint16_t *y, const float *dy, float *dx);
void ssl_cuda_gelu_fwd(ssl_ctx *c, size_t n, const float *x, float *y);
void ssl_cuda_gelu_bwd(ssl_ctx *c, size_t n, const float *x, const float *dy, float *dx);
void ssl_cuda_bias_add(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *b, float *y);
void ssl_cuda_bias_grad(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *dy, float *db);
void ssl_cuda_maxpool_fwd(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad, int P, int Q, const float *x, float *y, int32_t *idx);
void ssl_cuda_maxpool_bwd(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad, int P, int Q, const float *dy, const int32_t *idx, float *dx);
void ssl_cuda_avgpool_fwd(ssl_ctx *c, int64_t NC, int64_t S, const float *x, float *y);
void ssl_cuda_avgpool_bwd(ssl_ctx *c, int64_t NC, int64_t S, const float *dy, float *dx);
void ssl_cuda_ntxent_rows(ssl_ctx *c, int64_t nq, int64_t M, int64_t row0, int64_t half, float *S, double *loss_sum);
void ssl_cuda_row_max(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, const float *centre, float *mx);
void ssl_cuda_row_sumexp(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, const float *centre, const float *mx, double *se);
void ssl_cuda_softmax_apply(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, const float *centre, const float *mx, const double *se, float *logp, float *p);
void ssl_cuda_dino_xent_rows(ssl_ctx *c, int64_t R, int64_t D, int vt, int vs, const float *P, const float *LS, float g, float *dS, double *ce_sum);
void ssl_cuda_mae_loss_rows(ssl_ctx *c, int64_t rows, int64_t F, float norm_eps, const float *pred, const float *target, const float *mask, float g, float *dpred, double *loss_sum);
void ssl_cuda_resize_bicubic_fwd(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D, const float *x, float *y);
void ssl_cuda_resize_bicubic_bwd(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D, const float *dy, float *dx);
void ssl_cuda_augment(ssl_ctx *c, int njobs, int max_S, const uint8_t *src, const ssl_aug_job *jobs, float *out);
void ssl_cuda_layernorm_fwd(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x, const float *gamma, const float *beta, float *y, float *mean, float *rstd);
void ssl_cuda_layernorm_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *dy, const float *x, const float *gamma, const float *mean, const float *rstd, float *dx, float *dgamma, float *dbeta);
void ssl_cuda_softmax_fwd(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, float *y);
void ssl_cuda_softmax_bwd(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *y, const float *dy, float *dx);
void ssl_cuda_log_softmax_fwd(ssl_ctx *c, int64_t rows, int64_t D, const float *x, float *y);
void ssl_cuda_log_softmax_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *dy, float *dx);
void ssl_cuda_l2norm_fwd(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x, float *y, float *norm);
void ssl_cuda_l2norm_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *norm, const float *dy, float *dx);
void ssl_cuda_copy2d(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst, int64_t ldd);
void ssl_cuda_add2d(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst, int64_t ldd);
void ssl_cuda_gather_rows(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx, const float *src, float *dst);
void ssl_cuda_scatter_add_rows(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx, const float *src, float *dst);
void ssl_cuda_patchify(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out);
void ssl_cuda_unpatchify(ssl_ctx *c, int N, int C, int H, int W, int p, const float *in, float *x);
void ssl_cuda_patchify_hwc(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out);
double ssl_cuda_sumsq(ssl_ctx *c, size_t n, const float *x);
void ssl_cuda_sumsq_segments(ssl_ctx *c, int count, const float *x, const size_t *off, const size_t *n, double *out);
void ssl_cuda_reduce_free(ssl_cuda_state *st);
double ssl_cuda_dot(ssl_ctx *c, size_t n, const float *x, const float *y);
double ssl_cuda_sum(ssl_ctx *c, size_t n, const float *x);
double ssl_cuda_xlogx_sum(ssl_ctx *c, size_t n, float a, const float *x);
void ssl_cuda_sgd_update(ssl_ctx *c, size_t n, float lr, float momentum, int nesterov, float wd, float gscale, float *w, const float *g, float *m);
void ssl_cuda_adam_direction(ssl_ctx *c, size_t n, float b1, float b2, float eps, float bc1, float bc2, float wd, const float *w, const float *g, float *m, float *v, float *u);
void ssl_cuda_sgd_update_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, float momentum, int nesterov, float *w, const float *g, float *m);
void ssl_cuda_adam_direction_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, float b1, float b2, float eps, const float *w, float *g, float *m, float *v);
void ssl_cuda_axpby_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, const float *x, float *y);
}

/* model.precision bf16 (mixed.cu): the scratch for packed operands (valid until the next call), and
 * the strided pack / unpack of up to outer x inner matrices (rows x cols, row stride ld, matrix (o, i)
 * at o s0 + i s1): pack rounds to bf16 into dense storage; unpack stores f32(T) + beta C (beta 0:
 * assigns). A contiguous vector is outer = inner = rows = 1. */
uint16_t *ssl_cuda_mixed_scratch(ssl_ctx *c, size_t elems);
void ssl_cuda_pack_bf16(ssl_ctx *c, int64_t outer, int64_t inner, int64_t rows, int64_t cols, const float *src,
                        int64_t s0, int64_t s1, int64_t ld, uint16_t *dst);
void ssl_cuda_unpack_bf16(ssl_ctx *c, int64_t outer, int64_t inner, int64_t rows, int64_t cols, const uint16_t *T,
                          float beta, float *C, int64_t s0, int64_t s1, int64_t ld);

#endif
