/* The device-neutral op table. Layers hold no device code: every loop over tensor data is an op here.
 * The CPU backend (backend/cpu/, oneDNN + OpenMP) fills it now; a CUDA backend fills the same table
 * with cuBLAS/cuDNN/own kernels. Only backend/registry.c knows which backends are built.
 *
 * Conventions (as llm.c and THNN): all pointers are device memory of the context's backend, fp32,
 * row-major. Outputs first is NOT used; arguments read (inputs, shapes) then written. Ops that
 * produce a parameter gradient ACCUMULATE (+=) so gradient accumulation and shared parameters are
 * free; ops that produce an activation gradient ASSIGN (=) unless documented as accumulating.
 * Workspace: ops may use ssl_ctx_workspace (conv, layernorm_bwd), so never pass a pointer into the
 * workspace to an op. bn_apply, bn_bwd_data and the layernorm ops are safe with output == input.
 * Layouts: images NCHW, with "S" the spatial size H*W; BN/bias act on dim C of (outer, C, inner). */
#ifndef SSL_BACKEND_BACKEND_H
#define SSL_BACKEND_BACKEND_H

#include "framework/backend/augment.h"
#include "framework/core/ctx.h"

#include <stddef.h>
#include <stdint.h>

/* Convolution geometry: input (N, C, H, W), weight (K, C, R, R), output (N, K, P, Q).
 * Square kernel R, symmetric zero padding, equal stride in both axes, no dilation, groups = 1. */
typedef struct {
    int N, C, H, W;
    int K, R, stride, pad;
    int P, Q;
} ssl_conv_shape;

static inline ssl_conv_shape ssl_conv_shape_make(int N, int C, int H, int W, int K, int R,
                                                 int stride, int pad)
{
    ssl_conv_shape s = {N, C, H, W, K, R, stride, pad, (H + 2 * pad - R) / stride + 1,
                        (W + 2 * pad - R) / stride + 1};
    return s;
}

struct ssl_comm;
struct ssl_dev_comm;

/* One segment of a fused optimizer op: elements [off, off + n) of the flat buffers, and its own
 * scalars (each op reads the ones it documents). */
typedef struct {
    size_t off, n;
    float lr, wd, gscale; /* sgd_update_multi; adam_direction_multi: wd, gscale */
    float bc1, bc2;       /* adam_direction_multi */
    float a, b;           /* axpby_multi */
} ssl_opt_seg;

typedef struct ssl_backend {
    const char *name;
    /* Device pointers are host pointers (the CPU backend): host staging can be used in place and
     * upload/download copies skipped. 0: the host must not dereference device memory. */
    int host_memory;
    /* Devices of this kind the process sees, and the one every context made afterwards uses (a rank
     * picks its own by node-local rank: framework/comm/binding.h). NULL on the CPU backend. */
    int (*device_count)(void);
    void (*select_device)(int index);
    /* A device communicator over host's ranks (NCCL; framework/comm/device.h), made collectively after
     * select_device: NULL on every rank, with the reason in err, when any rank fails. NULL here: the
     * device collectives stage through the host. */
    struct ssl_dev_comm *(*dev_comm_create)(struct ssl_comm *host, char *err, size_t errlen);

    /* --- memory ---------------------------------------------------------------------------- */
    void *(*alloc)(size_t bytes);                          /* 64-byte aligned, aborts on failure */
    void (*free)(void *p);
    void (*upload)(void *dst, const void *src, size_t bytes);   /* host -> device */
    void (*download)(void *dst, const void *src, size_t bytes); /* device -> host */
    /* Page-locked host memory, for what is uploaded every step (the loader's batches): the device
     * copies it at full bandwidth without the host waiting (CPU: ordinary memory). */
    void *(*host_alloc)(size_t bytes);
    void (*host_free)(void *p);
    /* Host -> device copy of host_alloc memory, queued in c's stream after the work before it; the
     * source must stay unchanged until c's next synchronisation (the step's loss download). */
    void (*upload_async)(ssl_ctx *c, void *dst, const void *src, size_t bytes);
    /* The next batch's copy while this one computes: upload_ahead queues a host -> device copy of
     * host_alloc memory on c's copy stream, behind all work queued so far in c's stream (which may
     * still read dst), and returns at once; upload_join makes c's stream wait for every copy queued so
     * far and returns once they are done, so their sources may be reused. NULL on host-memory
     * backends (they read the host buffers in place). */
    void (*upload_ahead)(ssl_ctx *c, void *dst, const void *src, size_t bytes);
    void (*upload_join)(ssl_ctx *c);
    void (*sync)(ssl_ctx *c);                              /* wait for queued work */
    /* Profiling without host waits (ssl_prof_begin / _end on a device backend): a timestamp queued in
     * c's stream, returned as a handle (0, 1, ... since the last reset); the seconds between two
     * handles, waiting until the stream has passed the later one; reset makes the handles reusable.
     * NULL on host-memory backends, which time the wall clock. */
    int (*timing_mark)(ssl_ctx *c);
    double (*timing_seconds)(ssl_ctx *c, int a, int b);
    void (*timing_reset)(ssl_ctx *c);
    void (*ctx_init)(ssl_ctx *c);                          /* create handles in c->be_state */
    void (*ctx_free)(ssl_ctx *c);

    /* --- BLAS ------------------------------------------------------------------------------ */
    /* Mixed precision: while c->bf16 is set (ssl_ctx_autocast), gemm*, and conv2d_* below read both
     * inputs rounded to bfloat16, accumulate in fp32, and round every result element to bfloat16
     * (alpha applied first) before storing it, or before adding it where the op accumulates (beta * C,
     * dw +=): torch.autocast's matmul and convolution, whose outputs and weight gradients are bf16. */
    /* C = alpha * op(A) @ op(B) + beta * C; op(A) is (M, K), op(B) is (K, N); row-major. */
    void (*gemm)(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
    /* `batch` independent gemms; matrix i starts at A + i*sa, B + i*sb, C + i*sc. */
    void (*gemm_batched)(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float *A, int lda, int64_t sa, const float *B, int ldb, int64_t sb,
                         float beta, float *C, int ldc, int64_t sc, int batch);
    /* outer x inner independent gemms; matrix (o, i) starts at A + o*sa[0] + i*sa[1] (B, C likewise):
     * attention's products for every image and head in one call (a head is a column block of its
     * image's rows, so no single stride reaches all of them). Strides and counts are host values. */
    void (*gemm_batched2)(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha,
                          const float *A, int lda, const int64_t sa[2], const float *B, int ldb,
                          const int64_t sb[2], float beta, float *C, int ldc, const int64_t sc[2], int outer,
                          int inner);
    /* gemm_batched2 with either operand as bfloat16 bits (a_bf16 / b_bf16 set: A / B point to
     * uint16_t), as saved activations are kept under bf16 storage (core/stash.h): a mixed-precision
     * op (c->bf16 set) giving the fp32 op's result on the operands widened, bit for bit. */
    void (*gemm_batched2_bf16)(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha,
                               const void *A, int a_bf16, int lda, const int64_t sa[2], const void *B, int b_bf16,
                               int ldb, const int64_t sb[2], float beta, float *C, int ldc, const int64_t sc[2],
                               int outer, int inner);

    /* --- convolution (no bias; bias is bias_add) ------------------------------------------- */
    void (*conv2d_fwd)(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w,
                       float *y);                                 /* y = conv(x, w) */
    void (*conv2d_bwd_data)(ssl_ctx *c, const ssl_conv_shape *s, const float *dy,
                            const float *w, float *dx);           /* dx = ... */
    void (*conv2d_bwd_filter)(ssl_ctx *c, const ssl_conv_shape *s, const float *dy,
                              const float *x, float *dw);         /* dw += ... */
    /* Ops ending in _bf16 are the op of the same name with one activation as bfloat16 bits, as
     * activations are kept under bf16 storage (core/stash.h): the input x (ReLU's output y in
     * relu_bwd) for the readers, the output y for conv2d_fwd_bf16. A reader gives the fp32 op's
     * result on the operand widened, bit for bit, without widening it into memory first; conv2d_fwd_bf16
     * gives the bits of the fp32 op's result, which that op rounds to bf16 anyway. The conv2d ones
     * are mixed-precision ops (c->bf16 set). */
    void (*conv2d_fwd_bf16)(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, uint16_t *y);
    void (*conv2d_bwd_filter_bf16)(ssl_ctx *c, const ssl_conv_shape *s, const float *dy,
                                   const uint16_t *x, float *dw);

    /* --- elementwise ----------------------------------------------------------------------- */
    void (*fill)(ssl_ctx *c, float *x, size_t n, float v);
    void (*copy)(ssl_ctx *c, float *dst, const float *src, size_t n);
    /* bfloat16 storage for mixed precision: dst = src rounded to the nearest bfloat16 (ties to even,
     * overflow to inf, subnormals kept), as torch's .to(torch.bfloat16); NaN becomes the quiet NaN
     * 0x7FC0. And back, exactly (bf16 is fp32's upper half). */
    void (*cast_f32_bf16)(ssl_ctx *c, uint16_t *dst, const float *src, size_t n);
    void (*cast_bf16_f32)(ssl_ctx *c, float *dst, const uint16_t *src, size_t n);
    void (*scale)(ssl_ctx *c, float *x, size_t n, float a);                 /* x *= a */
    /* y = a x + b y; with b == 0, y is not read (as BLAS), so garbage or NaN there is overwritten. */
    void (*axpby)(ssl_ctx *c, size_t n, float a, const float *x, float b, float *y);
    /* Row by row, y_r = a[r] x_r + b y_r over `rows` rows of D, a[] in device memory (b == 0: y not
     * read): one launch where a scale or axpby per row would be `rows` (MoCo's queue rows). */
    void (*axpby_rows)(ssl_ctx *c, int64_t rows, int64_t D, const float *a, const float *x, float b, float *y);
    void (*add)(ssl_ctx *c, size_t n, const float *a, const float *b, float *y);     /* y = a + b */
    void (*mul)(ssl_ctx *c, size_t n, const float *a, const float *b, float *y);     /* y = a * b */
    void (*relu_fwd)(ssl_ctx *c, size_t n, const float *x, float *y);
    /* dx = dy * (y > 0); y is the ReLU output (in-place safe: dx may alias dy). */
    void (*relu_bwd)(ssl_ctx *c, size_t n, const float *y, const float *dy, float *dx);
    void (*relu_bwd_bf16)(ssl_ctx *c, size_t n, const uint16_t *y, const float *dy, float *dx);
    void (*gelu_fwd)(ssl_ctx *c, size_t n, const float *x, float *y);   /* exact (erf) GELU */
    void (*gelu_bwd)(ssl_ctx *c, size_t n, const float *x, const float *dy, float *dx);

    /* --- bias / broadcast over (outer, C, inner) -------------------------------------------- */
    void (*bias_add)(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *b, float *y);
    /* db[c] += sum over outer, inner of dy */
    void (*bias_grad)(ssl_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *dy, float *db);

    /* --- batch norm over (N, C, S): split so statistics can be all-reduced across ranks ----- */
    /* Local per-channel sum and sum of squares, accumulated in double, written as double. */
    void (*bn_stats)(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x, double *sum,
                     double *sumsq);
    /* y = (x - mean) * invstd * gamma + beta; gamma/beta NULL means non-affine; relu != 0 clamps
     * y at 0 in the same pass (BN+ReLU is most of a ResNet's elementwise traffic). */
    void (*bn_apply)(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *x,
                     const float *mean, const float *invstd, const float *gamma,
                     const float *beta, int relu, float *y);
    void (*bn_stats_bf16)(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x, double *sum,
                          double *sumsq);
    void (*bn_apply_bf16)(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const uint16_t *x,
                          const float *mean, const float *invstd, const float *gamma,
                          const float *beta, int relu, float *y);
    /* Local per-channel sum(dy) and sum(dy * xhat), in double. */
    void (*bn_bwd_stats)(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy,
                         const float *x, const float *mean, const float *invstd, double *sum_dy,
                         double *sum_dy_xhat);
    /* Training-mode input gradient with batch statistics over `count` samples (all ranks):
     * dx = gamma*invstd*(dy - sum_dy/count - xhat*sum_dy_xhat/count); gamma NULL means 1. */
    void (*bn_bwd_data)(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy,
                        const float *x, const float *mean, const float *invstd,
                        const float *gamma, const double *sum_dy, const double *sum_dy_xhat,
                        double count, float *dx);
    void (*bn_bwd_stats_bf16)(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy,
                              const uint16_t *x, const float *mean, const float *invstd, double *sum_dy,
                              double *sum_dy_xhat);
    void (*bn_bwd_data_bf16)(ssl_ctx *c, int64_t N, int64_t C, int64_t S, const float *dy,
                             const uint16_t *x, const float *mean, const float *invstd,
                             const float *gamma, const double *sum_dy, const double *sum_dy_xhat,
                             double count, float *dx);

    /* Turn (possibly all-reduced) sums over `count` samples into mean and invstd = 1/sqrt(var+eps)
     * (biased var) and, when running_mean is non-NULL, update running stats with `momentum`
     * (PyTorch convention: running = (1-momentum)*running + momentum*batch, unbiased var).
     * train == 0: mean/invstd come from the running stats instead (sum/sumsq unused). */
    void (*bn_finalize)(ssl_ctx *c, int64_t C, int train, const double *sum, const double *sumsq,
                        double count, float eps, float momentum, float *running_mean,
                        float *running_var, float *mean, float *invstd);

    /* dgamma += sum_dy_xhat; dbeta += sum_dy (per channel). */
    void (*bn_param_grads)(ssl_ctx *c, int64_t C, const double *sum_dy, const double *sum_dy_xhat,
                           float *dgamma, float *dbeta);

    /* --- pooling ----------------------------------------------------------------------------- */
    /* Max pool k x k with stride and padding that acts as -inf (pad <= k/2); the argmax (flat
     * index h*W+w into the input plane, -1 for an all-padding window) is saved in idx (N, C, P, Q). */
    void (*maxpool_fwd)(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad,
                        int P, int Q, const float *x, float *y, int32_t *idx);
    /* dx = the sum, over the outputs in order, of dy at each output's argmax; each idx[o] is -1 or
     * lies in output o's window (the geometry lets a device gather instead of scatter). */
    void (*maxpool_bwd)(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad, int P,
                        int Q, const float *dy, const int32_t *idx, float *dx);
    /* Mean over S for each (N, C): y (N, C). */
    void (*avgpool_fwd)(ssl_ctx *c, int64_t NC, int64_t S, const float *x, float *y);
    void (*avgpool_bwd)(ssl_ctx *c, int64_t NC, int64_t S, const float *dy, float *dx);

    /* --- row-wise ops over (rows, D) -------------------------------------------------------- */
    /* Layer norm over the last dim; saves mean and rstd (rows). gamma/beta may be NULL. */
    void (*layernorm_fwd)(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x,
                          const float *gamma, const float *beta, float *y, float *mean,
                          float *rstd);
    /* dx = ...; dgamma += ...; dbeta += ... (dgamma/dbeta NULL: skipped). */
    void (*layernorm_bwd)(ssl_ctx *c, int64_t rows, int64_t D, const float *dy, const float *x,
                          const float *gamma, const float *mean, const float *rstd, float *dx,
                          float *dgamma, float *dbeta);
    /* y = softmax(scale * x) per row. In-place safe. */
    void (*softmax_fwd)(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x, float *y);
    /* dx = scale * y * (dy - sum(dy * y)) per row. In-place safe (dx may alias dy). */
    void (*softmax_bwd)(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *y,
                        const float *dy, float *dx);
    /* y = log_softmax(x) per row. */
    void (*log_softmax_fwd)(ssl_ctx *c, int64_t rows, int64_t D, const float *x, float *y);
    /* dx = dy - exp(y) * sum(dy) per row, y the log-softmax output. */
    void (*log_softmax_bwd)(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *dy,
                            float *dx);
    /* y = x / max(||x||, eps) per row; saves norm (rows) = max(||x||, eps). */
    void (*l2norm_fwd)(ssl_ctx *c, int64_t rows, int64_t D, float eps, const float *x, float *y,
                       float *norm);
    /* dx = (dy - y * sum(dy * y)) / norm per row (exact unless the norm was clamped at eps, where it
     * is exact only for all-zero rows: the case that occurs in practice). */
    void (*l2norm_bwd)(ssl_ctx *c, int64_t rows, int64_t D, const float *y, const float *norm,
                       const float *dy, float *dx);

    /* --- contrastive loss ----------------------------------------------------------------- */
    /* NT-Xent rows (SimCLR): S (nq, M) holds query-key logits already divided by the temperature,
     * for queries with global row indices row0 .. row0+nq-1 against all M keys. Keys come in
     * chunks of 2*half rows (one rank's [view 1 | view 2]); the positive of row i is the row `half`
     * away inside its chunk; the self-similarity S[i, row0+i] is excluded. Per row:
     * l_i = log sum_{j != self} exp(S_ij) - S_i,pos. S is overwritten IN PLACE with
     * G = softmax_{j != self}(S) - onehot(pos) (zero at self); *loss_sum = sum_i l_i (host). */
    void (*ntxent_rows)(ssl_ctx *c, int64_t nq, int64_t M, int64_t row0, int64_t half, float *S,
                        double *loss_sum);

    /* --- softmax over a last dim split across ranks (DINO's sharded prototypes) ------------- */
    /* Split like bn_stats / bn_apply so the row statistics can be all-reduced between calls. With
     * z = scale * (x - centre) (centre (D) broadcast over rows; NULL means 0) on this shard's D
     * columns: row_max: mx[r] = max_j z_rj (then all-reduce MAX over the shards); row_sumexp:
     * se[r] = sum_j exp(z_rj - mx[r]) in double (then all-reduce SUM); softmax_apply: logp = z - mx
     * - log(se) and p = exp(logp), either output may be NULL. One shard (no all-reduce): softmax. */
    void (*row_max)(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x,
                    const float *centre, float *mx);
    void (*row_sumexp)(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x,
                       const float *centre, const float *mx, double *se);
    void (*softmax_apply)(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x,
                          const float *centre, const float *mx, const double *se, float *logp,
                          float *p);
    /* DINO's cross-entropy over view pairs (REFERENCE §4.2) on D prototype columns. P (vt*R, D): the
     * teacher's probabilities, LS (vs*R, D): the student's log-probabilities, both view-major (row
     * v*R + i is view v of image i); student views v < vt are the crops teacher view v saw. Student
     * row (v, i) is scored against T = sum over teacher views iq != v of P[iq*R + i]: ce = -sum_j T_j
     * LS_j, summed over all vs*R rows into *ce_sum (host; in row order, so thread-count invariant).
     * dS (may be NULL; may alias LS) = g * (w_v exp(LS) - T), w_v = the teacher views in T: g times
     * the gradient of ce wrt the student's scaled logits. vt <= 8. */
    void (*dino_xent_rows)(ssl_ctx *c, int64_t R, int64_t D, int vt, int vs, const float *P,
                           const float *LS, float g, float *dS, double *ce_sum);
    /* MAE's reconstruction loss over rows (patches) of pred and target (rows, F) (REFERENCE §5.3):
     * t = target, or with norm_eps > 0 (norm_pix_loss) (target - mean) / sqrt(var + norm_eps), mean
     * and UNBIASED variance over the row's F values (torch .var); e_r = mean over F of (pred - t)^2.
     * *loss_sum = sum_r mask[r] e_r (host, in row order, so thread-count invariant); dpred (may be
     * NULL) = g * mask[r] * 2 (pred - t) / F, g times the gradient of that sum. mask (rows) device. */
    void (*mae_loss_rows)(ssl_ctx *c, int64_t rows, int64_t F, float norm_eps, const float *pred,
                          const float *target, const float *mask, float g, float *dpred, double *loss_sum);

    /* --- token / row movement ---------------------------------------------------------------- */
    /* dst[r, 0:cols] = src[r, 0:cols] with leading dimensions lds / ldd (concat, slice). */
    void (*copy2d)(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds,
                   float *dst, int64_t ldd);
    /* dst[r, 0:cols] += src[r, 0:cols] (backward of a copy into a shared gradient). */
    void (*add2d)(ssl_ctx *c, int64_t rows, int64_t cols, const float *src, int64_t lds,
                  float *dst, int64_t ldd);
    /* dst[i] = src[idx[i]] for rows of `cols` floats (MAE's kept tokens). idx is device int32. */
    void (*gather_rows)(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx, const float *src,
                        float *dst);
    /* dst[idx[i]] += src[i]; indices must be distinct (they are for a permutation subset). */
    void (*scatter_add_rows)(ssl_ctx *c, int64_t n, int64_t cols, const int32_t *idx,
                             const float *src, float *dst);

    /* Patch extraction for ViT patch embedding (as a linear layer on patches): x (N, C, H, W) ->
     * out (N, T, C*p*p), T = (H/p)*(W/p) in row-major patch order, features ordered (c, i, j) like a
     * flattened (D, C, p, p) conv weight. unpatchify is its exact inverse (dx = ..., assigns). */
    void (*patchify)(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out);
    void (*unpatchify)(ssl_ctx *c, int N, int C, int H, int W, int p, const float *in, float *x);
    /* MAE's patchify (models_mae.py), the pixel targets its decoder predicts: out (N, T, p*p*C) with
     * features ordered (i, j, c), channels last (torch: reshape (N, C, h, p, w, p), einsum
     * nchpwq->nhwpqc), patches in row-major order. */
    void (*patchify_hwc)(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out);
    /* Bicubic resize of a channels-last grid x (hi, wi, D) -> y (ho, wo, D) (ViT position
     * embeddings at another patch grid), as torch's F.interpolate(mode="bicubic",
     * align_corners=False) on the (1, D, hi, wi) view: cubic convolution with A = -0.75, source
     * coordinate (o + 0.5) * in / out - 0.5, taps clamped at the borders. Assigns y; an equal size
     * copies. resize_bicubic_bwd is its adjoint and ACCUMULATES (dx += A^T dy): dx is the
     * gradient of the planned position embedding. */
    void (*resize_bicubic_fwd)(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D,
                               const float *x, float *y);
    void (*resize_bicubic_bwd)(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D,
                               const float *dy, float *dx);

    /* --- reductions (result on the host; a device backend synchronises) ---------------------- */
    double (*sumsq)(ssl_ctx *c, size_t n, const float *x);
    /* out[i] = sum of squares of x[off[i] .. off[i] + n[i]) for i < count, all in one call (host
     * arrays off, n, out): the per-tensor norms of LARS, LAMB and per-tensor clipping with one device
     * synchronisation instead of one per tensor. Each entry is deterministic; on the CPU it is
     * exactly what sumsq returns for that range. */
    void (*sumsq_segments)(ssl_ctx *c, int count, const float *x, const size_t *off, const size_t *n, double *out);
    double (*dot)(ssl_ctx *c, size_t n, const float *x, const float *y);
    double (*sum)(ssl_ctx *c, size_t n, const float *x);
    /* sum of (a x) log(a x), 0 log 0 = 0 (entropies and KL monitors of distributions). */
    double (*xlogx_sum)(ssl_ctx *c, size_t n, float a, const float *x);

    /* --- optimizer kernels over one segment --------------------------------------------------- */
    /* d = gscale * (g + wd * w); m = momentum * m + d; w -= lr * (nesterov ? d + momentum*m : m).
     * momentum 0: plain SGD (m untouched, may be NULL). */
    void (*sgd_update)(ssl_ctx *c, size_t n, float lr, float momentum, int nesterov, float wd,
                       float gscale, float *w, const float *g, float *m);
    /* Adam direction into u: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
     * u = (m / bc1) / (sqrt(v / bc2) + eps) + wd * w. u may alias g. */
    void (*adam_direction)(ssl_ctx *c, size_t n, float b1, float b2, float eps, float bc1,
                           float bc2, float wd, const float *w, const float *g, float *m, float *v,
                           float *u);
    /* The same over `count` segments of the flat buffers (host table seg) in one call, so a device
     * runs a step's update as one launch instead of one per tensor; segment i is exactly the single
     * op on w + off, g + off, ... with its scalars (bit for bit on the CPU). sgd_update_multi: lr,
     * wd, gscale per segment. adam_direction_multi: the direction over g (u = g), with wd and bc1,
     * bc2 per segment, and g read as gscale * g (scale, then adam_direction). axpby_multi: y = a x +
     * b y per segment (b == 0: y not read). Segments must not overlap. */
    void (*sgd_update_multi)(ssl_ctx *c, int count, const ssl_opt_seg *seg, float momentum, int nesterov, float *w,
                             const float *g, float *m);
    void (*adam_direction_multi)(ssl_ctx *c, int count, const ssl_opt_seg *seg, float b1, float b2, float eps,
                                 const float *w, float *g, float *m, float *v);
    void (*axpby_multi)(ssl_ctx *c, int count, const ssl_opt_seg *seg, const float *x, float *y);

    /* --- data ----------------------------------------------------------------------------------- */
    /* Augmented views (backend/augment.h) of uploaded uint8 sources: job j (in device memory, as src
     * and out) reads src + jobs[j].src and writes out + jobs[j].dst; max_S bounds every job's S (host).
     * Jobs' outputs must not overlap. */
    void (*augment)(ssl_ctx *c, int njobs, int max_S, const uint8_t *src, const ssl_aug_job *jobs, float *out);
} ssl_backend;

/* The backend registered under `name` ("cpu", "cuda", "devsim"), or NULL with the reason in why
 * (not built into this sslrun, not verified, no device). */
const ssl_backend *ssl_backend_lookup(const char *name, char *why, size_t len);
/* ssl_backend_lookup that prints the reason to stderr. */
const ssl_backend *ssl_backend_get(const char *name);
const ssl_backend *ssl_backend_cpu(void);
/* The CPU ops behind host-unreadable device pointers (backend/devsim/): tests prove with it that the
 * training loop touches device memory only through ops, upload and download. */
const ssl_backend *ssl_backend_devsim(void);

#endif
