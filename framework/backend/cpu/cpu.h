/* CPU backend: private declarations shared by the backend/cpu/ files. Each op family lives in its
 * own file (blas.c, conv.c, elementwise.c, norm.c, pool.c, rows.c, tokens.c, resize.c, reduce.c,
 * optim.c, mae.c); table.c assembles them into the ssl_backend vtable. Kernels parallelise with OpenMP. */
#ifndef SSL_BACKEND_CPU_CPU_H
#define SSL_BACKEND_CPU_CPU_H

#include "framework/backend/backend.h"

void *ssl_cpu_alloc(size_t bytes);
void ssl_cpu_free(void *p);
void ssl_cpu_upload(void *dst, const void *src, size_t bytes);
void ssl_cpu_upload_async(ssl_ctx *c, void *dst, const void *src, size_t bytes);
void ssl_cpu_download(void *dst, const void *src, size_t bytes);
void ssl_cpu_sync(ssl_ctx *c);
void ssl_cpu_ctx_init(ssl_ctx *c);
void ssl_cpu_ctx_free(ssl_ctx *c);
void ssl_cpu_gemm(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void ssl_cpu_gemm_batched(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, int64_t sa, const float *B, int ldb, int64_t sb, float beta, float *C, int ldc, int64_t sc, int batch);
void ssl_cpu_gemm_batched2(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                           int lda, const int64_t sa[2], const float *B, int ldb, const int64_t sb[2], float beta,
                           float *C, int ldc, const int64_t sc[2], int outer, int inner);
void ssl_cpu_conv2d_fwd(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, float *y);
void ssl_cpu_conv2d_bwd_data(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *w, float *dx);
void ssl_cpu_conv2d_bwd_filter(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *x, float *dw);
/* The table's GEMM and convolution entries (mixed.c): the ops above, or their bf16 rule while c->bf16. */
void ssl_cpu_mp_gemm(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void ssl_cpu_mp_gemm_batched(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, int64_t sa, const float *B, int ldb, int64_t sb, float beta, float *C, int ldc, int64_t sc, int batch);
void ssl_cpu_mp_gemm_batched2(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                              int lda, const int64_t sa[2], const float *B, int ldb, const int64_t sb[2], float beta,
                              float *C, int ldc, const int64_t sc[2], int outer, int inner);
void ssl_cpu_mp_conv2d_fwd(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, float *y);
void ssl_cpu_mp_conv2d_bwd_data(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *w, float *dx);
void ssl_cpu_mp_conv2d_bwd_filter(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *x, float *dw);
void ssl_cpu_mp_gemm_batched2_bf16(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const void *A, int a_bf16, int lda, const int64_t sa[2], const void *B, int b_bf16, int ldb, const int64_t sb[2], float beta, float *C, int ldc, const int64_t sc[2], int outer, int inner);
void ssl_cpu_mp_conv2d_fwd_bf16(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, uint16_t *y);
void ssl_cpu_mp_conv2d_bwd_filter_bf16(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const uint16_t *x, float *dw);
void ssl_cpu_fill(ssl_ctx *c, float *x, size_t n, float v);
void ssl_cpu_copy(ssl_ctx *c, float *dst, const float *src, size_t n);
void ssl_cpu_cast_f32_bf16(ssl_ctx *c, uint16_t *dst, const float *src, size_t n);
void ssl_cpu_cast_bf16_f32(ssl_ctx *c, float *dst, const uint16_t *src, size_t n);
void ssl_cpu_scale(ssl_ctx *c, float *x, size_t n, float a);
void ssl_cpu_axpby(ssl_ctx *c, size_t n, float a, const float *x, float b, float *y);
void ssl_cpu_add(ssl_ctx *c, size_t n, const float *a, const float *b, float *y);
void ssl_cpu_mul(ssl_ctx *c, size_t n, const float *a, const float *b, float *y);
void ssl_cpu_relu_fwd(ssl_ctx *c, size_t n, const float *x, float *y);
void ssl_cpu_relu_bwd(ssl_ctx *c, size_t n, const float *y, const float *dy, float *dx);
void ssl_cpu_relu_bwd_bf16(ssl_ctx *c, size_t n, const uint16_t *y, const float *dy, float *dx);
void ssl_cpu_axpby_rows(ssl_ctx *c, int64_t rows, int64_t D, const float *a, const float *x, float b, float *y);
void ssl_cpu_gelu_fwd(ssl_ctx *c, size_t n, const float *x, float *y);
void ssl_cpu_gelu_bwd(ssl_ctx *c, size_t n, const float *x, const float *dy, float *dx);
void ssl_cpu_bias_add(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *b, float *y);
void ssl_cpu_bias_grad(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *dy, float *db);
void ssl_cpu_bn_stats(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x, double *sum, double *sumsq);
void ssl_cpu_bn_apply(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x, const float *mean, const float *invstd, const float *gamma, const float *beta, int relu, float *y);
void ssl_cpu_bn_bwd_stats(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const float *x, const float *mean, const float *invstd, double *sum_dy, double *sum_dy_xhat);
void ssl_cpu_bn_bwd_data(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const float *x, const float *mean, const float *invstd, const float *gamma, const double *sum_dy, const double *sum_dy_xhat, double count, float *dx);
void ssl_cpu_bn_stats_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x, double *sum, double *sumsq);
void ssl_cpu_bn_apply_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x, const float *mean, const float *invstd, const float *gamma, const float *beta, int relu, float *y);
void ssl_cpu_bn_bwd_stats_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const uint16_t *x, const float *mean, const float *invstd, double *sum_dy, double *sum_dy_xhat);
void ssl_cpu_bn_bwd_data_bf16(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy, const uint16_t *x, const float *mean, const float *invstd, const float *gamma, const double *sum_dy, const double *sum_dy_xhat, double count, float *dx);
void ssl_cpu_maxpool_fwd(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad, int P, int Q, const float *x, float *y, int32_t *idx);
void ssl_cpu_maxpool_bwd(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad, int P, int Q, const float *dy, const int32_t *idx, float *dx);
void ssl_cpu_avgpool_fwd(ssl_ctx *c, int64_t NC, int64_t S, const float *x, float *y);
void ssl_cpu_avgpool_bwd(ssl_ctx *c, int64_t NC, int64_t S, const float *dy, float *dx);
void ssl_cpu_layernorm_fwd(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x, const float *gamma, const float *beta, float *y, float *mean, float *rstd);
void ssl_cpu_layernorm_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *dy, const float *x, const float *gamma, const float *mean, const float *rstd, float *dx, float *dgamma, float *dbeta);
void ssl_cpu_softmax_fwd(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, float *y);
void ssl_cpu_softmax_bwd(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *y, const float *dy, float *dx);
void ssl_cpu_log_softmax_fwd(ssl_ctx *c, int64_t rows, int64_t D, const float *x, float *y);
void ssl_cpu_log_softmax_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *dy, float *dx);
void ssl_cpu_l2norm_fwd(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x, float *y, float *norm);
void ssl_cpu_l2norm_bwd(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *norm, const float *dy, float *dx);
void ssl_cpu_copy2d(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst, int64_t ldd);
void ssl_cpu_add2d(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst, int64_t ldd);
void ssl_cpu_gather_rows(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx, const float *src, float *dst);
void ssl_cpu_scatter_add_rows(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx, const float *src, float *dst);
double ssl_cpu_sumsq(ssl_ctx *c, size_t n, const float *x);
void ssl_cpu_sumsq_segments(ssl_ctx *c, int count, const float *x, const size_t *off, const size_t *n, double *out);
double ssl_cpu_dot(ssl_ctx *c, size_t n, const float *x, const float *y);
double ssl_cpu_sum(ssl_ctx *c, size_t n, const float *x);
void ssl_cpu_sgd_update(ssl_ctx *c, size_t n, float lr, float momentum, int nesterov, float wd, float gscale, float *w, const float *g, float *m);
void ssl_cpu_adam_direction(ssl_ctx *c, size_t n, float b1, float b2, float eps, float bc1, float bc2, float wd, const float *w, const float *g, float *m, float *v, float *u);
void ssl_cpu_sgd_update_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, float momentum, int nesterov, float *w, const float *g, float *m);
void ssl_cpu_adam_direction_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, float b1, float b2, float eps, const float *w, float *g, float *m, float *v);
void ssl_cpu_axpby_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, const float *x, float *y);
void ssl_cpu_bn_finalize(ssl_ctx *c, int64_t C, int train, const double *sum, const double *sumsq, double count, float eps, float momentum, float *running_mean, float *running_var, float *mean, float *invstd);
void ssl_cpu_patchify(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out);
void ssl_cpu_unpatchify(ssl_ctx *c, int N, int C, int H, int W, int p, const float *in, float *x);
void ssl_cpu_patchify_hwc(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out);
void ssl_cpu_mae_loss_rows(ssl_ctx *c, int64_t rows, int64_t F, float norm_eps, const float *pred, const float *target, const float *mask, float g, float *dpred, double *loss_sum);
void ssl_cpu_resize_bicubic_fwd(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D, const float *x, float *y);
void ssl_cpu_resize_bicubic_bwd(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D, const float *dy, float *dx);
void ssl_cpu_augment(ssl_ctx *c, int njobs, int max_S, const uint8_t *src, const ssl_aug_job *jobs, float *out);
void ssl_cpu_bn_param_grads(ssl_ctx *c, int64_t C, const double *sum_dy, const double *sum_dy_xhat, float *dgamma, float *dbeta);

/* --- convolution internals (conv.c: im2col reference and dispatch; conv_dnnl.c: oneDNN) ------ */
/* Which convolution implementation a context runs; SSL_CONV=im2col|dnnl|dnnl_plain|dnnl_blocked
 * (read once by ssl_cpu_ctx_init) overrides the measured default. */
typedef enum {
    SSL_CPU_CONV_AUTO = 0,     /* the measured per-direction default (conv.c) */
    SSL_CPU_CONV_IM2COL,       /* im2col + ssl_cpu_gemm: the simple reference */
    SSL_CPU_CONV_DNNL_PLAIN,   /* oneDNN primitives on the NCHW/OIHW tensors as they are */
    SSL_CPU_CONV_DNNL_BLOCKED, /* oneDNN primitives in their preferred layout, with reorders */
} ssl_cpu_conv_algo;

/* Backend-private state behind ssl_ctx.be_state (created by ssl_cpu_ctx_init). */
struct ssl_cpu_conv_cache;
typedef struct ssl_cpu_state {
    ssl_cpu_conv_algo conv_algo;
    int avx512; /* oneDNN runs AVX-512 kernels here: its blocked kernels move the measured rule */
    struct ssl_cpu_conv_cache *conv; /* oneDNN engine, stream and primitive cache; lazily made */
    float *mix;                      /* mixed.c's rounded copies (model.precision bf16) */
    size_t mix_cap;
} ssl_cpu_state;

void ssl_cpu_conv2d_fwd_im2col(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, float *y);
void ssl_cpu_conv2d_bwd_data_im2col(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *w, float *dx);
void ssl_cpu_conv2d_bwd_filter_im2col(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *x, float *dw);
/* blocked = 0: plain NCHW/OIHW memory; 1: the primitive's preferred layout plus cached reorders. */
void ssl_cpu_conv2d_fwd_dnnl(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, float *y, int blocked);
void ssl_cpu_conv2d_bwd_data_dnnl(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *w, float *dx, int blocked);
void ssl_cpu_conv2d_bwd_filter_dnnl(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *x, float *dw, int blocked);
/* oneDNN implementation name chosen for a direction (0 fwd, 1 bwd data, 2 bwd filter); creates the
 * cached primitive if needed. For benchmarks and logs. */
const char *ssl_cpu_conv_dnnl_impl(ssl_ctx *c, const ssl_conv_shape *s, int dir, int blocked);
void ssl_cpu_conv_cache_free(struct ssl_cpu_conv_cache *cc);
void ssl_cpu_ntxent_rows(ssl_ctx *c, int64_t nq, int64_t M, int64_t row0, int64_t half, float *S, double *loss_sum);
void ssl_cpu_row_max(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, const float *centre, float *mx);
void ssl_cpu_row_sumexp(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, const float *centre, const float *mx, double *se);
void ssl_cpu_softmax_apply(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, const float *centre, const float *mx, const double *se, float *logp, float *p);
void ssl_cpu_dino_xent_rows(ssl_ctx *c, int64_t R, int64_t D, int vt, int vs, const float *P, const float *LS, float g, float *dS, double *ce_sum);
double ssl_cpu_xlogx_sum(ssl_ctx *c, size_t n, float a, const float *x);

#endif
