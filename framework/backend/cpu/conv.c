/* CPU 2-D convolution: the op-table entry points, which dispatch per direction to oneDNN
 * (conv_dnnl.c) or to the im2col + GEMM reference here. The reference stays compiled and reachable
 * (SSL_CONV=im2col) so tests can check one implementation against the other. */
#include "framework/backend/cpu/cpu.h"
#include "framework/core/check.h"

#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * im2col + ssl_cpu_gemm reference.
 * A chunk of B images is unfolded into col (C*R*R, B*P*Q): column b*PQ + p*Q + q of row (c, r, s)
 * holds x[n0+b, c, p*stride - pad + r, q*stride - pad + s] (0 outside). One GEMM then covers the
 * whole chunk, so layers with a small P*Q (4x4 in ResNet's last stage) still get a wide GEMM N.
 * The GEMM sees the output as (K, B*PQ) while NCHW is (B, K, PQ): pack/unpack copies between them
 * when B > 1 (cheap next to the GEMM: K*B*PQ floats against K*C*R*R*B*PQ FMAs).
 * --------------------------------------------------------------------------------------------- */

/* Aim for at least this many GEMM columns per chunk, and cap col at this many floats. Copies of
 * fewer than PAR_MIN_FLOATS stay on one thread: a parallel region costs microseconds, and far more
 * when the machine is oversubscribed and a spinning thread waits for a descheduled partner. */
enum { IM2COL_MIN_COLS = 2048, IM2COL_MAX_COL_FLOATS = 16 << 20, PAR_MIN_FLOATS = 1 << 15 };

static int im2col_chunk(const ssl_conv_shape *s)
{
    int64_t pq = (int64_t)s->P * s->Q, crr = (int64_t)s->C * s->R * s->R;
    int64_t b = (IM2COL_MIN_COLS + pq - 1) / pq;
    while (b > 1 && b * pq * crr > IM2COL_MAX_COL_FLOATS) b--;
    return (int)(b < s->N ? b : s->N);
}

/* col rows (c, r, s), columns [b*PQ, (b+1)*PQ) for images n0 .. n0+B-1. */
static void im2col(const ssl_conv_shape *s, const float *x, int n0, int B, float *col)
{
    const int C = s->C, H = s->H, W = s->W, R = s->R, P = s->P, Q = s->Q;
    const int st = s->stride, pad = s->pad;
    const int64_t ld = (int64_t)B * P * Q, rows = (int64_t)C * R * R;
#pragma omp parallel for collapse(2) schedule(static) if (ld * rows >= PAR_MIN_FLOATS)
    for (int b = 0; b < B; b++)
        for (int64_t row = 0; row < rows; row++) {
            const int c = (int)(row / (R * R)), r = (int)(row / R % R), t = (int)(row % R);
            const float *xp = x + ((int64_t)(n0 + b) * C + c) * H * W;
            float *dst = col + row * ld + (int64_t)b * P * Q;
            for (int p = 0; p < P; p++) {
                const int h = p * st - pad + r;
                float *d = dst + (int64_t)p * Q;
                if (h < 0 || h >= H) {
                    memset(d, 0, (size_t)Q * sizeof(float));
                    continue;
                }
                const float *xr = xp + (int64_t)h * W;
                for (int q = 0; q < Q; q++) {
                    const int w = q * st - pad + t;
                    d[q] = (w >= 0 && w < W) ? xr[w] : 0.0f;
                }
            }
        }
}

/* dx[n0+b] = col2im(col): every (b, c) plane gathers only from its own rows, so planes run in
 * parallel without races. Assigns (the plane is zeroed first). */
static void col2im(const ssl_conv_shape *s, const float *col, int n0, int B, float *dx)
{
    const int C = s->C, H = s->H, W = s->W, R = s->R, P = s->P, Q = s->Q;
    const int st = s->stride, pad = s->pad;
    const int64_t ld = (int64_t)B * P * Q;
#pragma omp parallel for collapse(2) schedule(static) if (ld * C * R * R >= PAR_MIN_FLOATS)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float *xp = dx + ((int64_t)(n0 + b) * C + c) * H * W;
            memset(xp, 0, (size_t)H * W * sizeof(float));
            for (int r = 0; r < R; r++)
                for (int t = 0; t < R; t++) {
                    const float *src =
                        col + ((int64_t)(c * R + r) * R + t) * ld + (int64_t)b * P * Q;
                    for (int p = 0; p < P; p++) {
                        const int h = p * st - pad + r;
                        if (h < 0 || h >= H) continue;
                        float *xr = xp + (int64_t)h * W;
                        const float *sr = src + (int64_t)p * Q;
                        for (int q = 0; q < Q; q++) {
                            const int w = q * st - pad + t;
                            if (w >= 0 && w < W) xr[w] += sr[q];
                        }
                    }
                }
        }
}

/* (B, K, PQ) at nchw <-> (K, B*PQ) at km. */
static void pack_kb(const float *nchw, int K, int B, int64_t pq, float *km)
{
#pragma omp parallel for collapse(2) schedule(static) if (K * B * pq >= PAR_MIN_FLOATS)
    for (int k = 0; k < K; k++)
        for (int b = 0; b < B; b++)
            memcpy(km + ((int64_t)k * B + b) * pq, nchw + ((int64_t)b * K + k) * pq,
                   (size_t)pq * sizeof(float));
}

static void unpack_kb(const float *km, int K, int B, int64_t pq, float *nchw)
{
#pragma omp parallel for collapse(2) schedule(static) if (K * B * pq >= PAR_MIN_FLOATS)
    for (int b = 0; b < B; b++)
        for (int k = 0; k < K; k++)
            memcpy(nchw + ((int64_t)b * K + k) * pq, km + ((int64_t)k * B + b) * pq,
                   (size_t)pq * sizeof(float));
}

/* 1x1, stride 1, no padding: col of one image is the image itself. */
static int is_pointwise(const ssl_conv_shape *s)
{
    return s->R == 1 && s->stride == 1 && s->pad == 0;
}

/* Workspace: col (C*R*R, B*PQ) then a (K, B*PQ) staging matrix. */
static float *im2col_ws(ssl_ctx *c, const ssl_conv_shape *s, int B, float **stage)
{
    int64_t cols = (int64_t)B * s->P * s->Q;
    int64_t ncol = (int64_t)s->C * s->R * s->R * cols, nstage = (int64_t)s->K * cols;
    ncol = (ncol + 15) & ~(int64_t)15; /* keep the staging matrix 64-byte aligned */
    float *ws = ssl_ctx_workspace(c, (size_t)(ncol + nstage) * sizeof(float));
    *stage = ws + ncol;
    return ws;
}

void ssl_cpu_conv2d_fwd_im2col(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w,
                               float *y)
{
    const int B = im2col_chunk(s), crr = s->C * s->R * s->R;
    const int64_t pq = (int64_t)s->P * s->Q;
    float *stage, *col = im2col_ws(c, s, B, &stage);
    for (int n0 = 0; n0 < s->N; n0 += B) {
        const int nb = s->N - n0 < B ? s->N - n0 : B;
        const float *cm = col;
        if (nb == 1 && is_pointwise(s)) cm = x + (int64_t)n0 * s->C * pq;
        else im2col(s, x, n0, nb, col);
        float *out = nb == 1 ? y + (int64_t)n0 * s->K * pq : stage;
        ssl_cpu_gemm(c, 0, 0, s->K, (int)(nb * pq), crr, 1.0f, w, crr, cm, (int)(nb * pq), 0.0f,
                     out, (int)(nb * pq));
        if (nb > 1) unpack_kb(stage, s->K, nb, pq, y + (int64_t)n0 * s->K * pq);
    }
}

void ssl_cpu_conv2d_bwd_data_im2col(ssl_ctx *c, const ssl_conv_shape *s, const float *dy,
                                    const float *w, float *dx)
{
    const int B = im2col_chunk(s), crr = s->C * s->R * s->R;
    const int64_t pq = (int64_t)s->P * s->Q;
    float *stage, *col = im2col_ws(c, s, B, &stage);
    for (int n0 = 0; n0 < s->N; n0 += B) {
        const int nb = s->N - n0 < B ? s->N - n0 : B;
        const float *g = dy + (int64_t)n0 * s->K * pq;
        if (nb > 1) {
            pack_kb(g, s->K, nb, pq, stage);
            g = stage;
        }
        if (nb == 1 && is_pointwise(s)) { /* dx of one image is the GEMM output itself */
            ssl_cpu_gemm(c, 1, 0, crr, (int)pq, s->K, 1.0f, w, crr, g, (int)pq, 0.0f,
                         dx + (int64_t)n0 * s->C * pq, (int)pq);
            continue;
        }
        ssl_cpu_gemm(c, 1, 0, crr, (int)(nb * pq), s->K, 1.0f, w, crr, g, (int)(nb * pq), 0.0f,
                     col, (int)(nb * pq));
        col2im(s, col, n0, nb, dx);
    }
}

void ssl_cpu_conv2d_bwd_filter_im2col(ssl_ctx *c, const ssl_conv_shape *s, const float *dy,
                                      const float *x, float *dw)
{
    const int B = im2col_chunk(s), crr = s->C * s->R * s->R;
    const int64_t pq = (int64_t)s->P * s->Q;
    float *stage, *col = im2col_ws(c, s, B, &stage);
    for (int n0 = 0; n0 < s->N; n0 += B) {
        const int nb = s->N - n0 < B ? s->N - n0 : B;
        const float *g = dy + (int64_t)n0 * s->K * pq;
        if (nb > 1) {
            pack_kb(g, s->K, nb, pq, stage);
            g = stage;
        }
        const float *cm = col;
        if (nb == 1 && is_pointwise(s)) cm = x + (int64_t)n0 * s->C * pq;
        else im2col(s, x, n0, nb, col);
        /* dw (K, CRR) += g (K, nb*PQ) @ col^T: beta 1 is the accumulation the op table asks for. */
        ssl_cpu_gemm(c, 0, 1, s->K, crr, (int)(nb * pq), 1.0f, g, (int)(nb * pq), cm,
                     (int)(nb * pq), 1.0f, dw, crr);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch.
 * --------------------------------------------------------------------------------------------- */

/* The implementation for direction dir (0 fwd, 1 bwd data, 2 bwd filter), measured with
 * bench_conv on both ISAs (oneDNN 2.6, 2 threads; ms as im2col / oneDNN plain / oneDNN blocked):
 * - oneDNN on plain NCHW runs its own im2col + GEMM ("gemm:jit"); in the blocked layout it runs the
 *   direct JIT kernels ("jit:avx2", "jit:avx512_core") and pays a reorder of every activation.
 * - Blocked wins wherever channels are narrow: GEMMs with 16-64 rows are slow. The quickstart's
 *   layers (widths 16-128, 28 px, batch 256) on a Xeon capped at AVX2 (ONEDNN_MAX_CPU_ISA): bwd
 *   filter 3x3 16->16 at 28x28 34.2 / 36.2 / 10.6, fwd 3x3 s2 16->32 9.6 / 8.8 / 4.6; at AVX-512
 *   fwd 3x3 s2 64->128 5.6 / 4.8 / 2.0. The rule before this one spent 556 ms of that step's 375
 *   (best per layer) at AVX2, 224 of 186 at AVX-512; this one 376 and 187.
 * - GEMM-based wins on wide layers with small output planes, which the JIT kernels block poorly.
 *   A 2-core AMD EPYC Zen 3 (AVX2, ResNet-18 on CIFAR, batch 128): fwd 3x3 s2 256->512 to 4x4
 *   and bwd filter 3x3 512->512 at 4x4 favour im2col (in GFLOP/s 150 / 147 / 125 and
 *   150 / 125 / 126), bwd filter at 8x8-16x16 with 128+ channels plain. AVX-512's blocked kernels
 *   win those but the 4x4 bwd filter (3x3 s2 256->512: 23.8 / 31.0 / 27.2).
 * - 1x1 is a plain GEMM but on small planes of wide inputs (1x1 64->256 at 32x32 fwd 27.2 / 15.7 /
 *   27.9 at AVX-512, 41.6 / 33.9 / 40.3 capped; 1x1 2048->512 at 4x4 bwd filter 21.1 / 25.4 /
 *   20.4 and 34.7 / 70.3 / 30.5).
 * - bwd data with C < 8 (stems, never run in training: the image's gradient) has no good blocked
 *   kernel (7x7 s2 ImageNet stem 56.8 / 61.0 / 145.9).
 * Over ResNet-18's CIFAR step: 1633 ms at AVX-512 (best per layer 1629), 3004 capped (2874: the
 * EPYC's plain bwd filter on this Xeon). */
static ssl_cpu_conv_algo pick(ssl_ctx *c, const ssl_conv_shape *s, int dir)
{
    const ssl_cpu_state *st = c->be_state;
    SSL_ASSERTF(st, "CPU backend state missing (ssl_cpu_ctx_init not run)");
    if (st->conv_algo != SSL_CPU_CONV_AUTO) return st->conv_algo;
    const int64_t pq = (int64_t)s->P * s->Q;
    const int narrow = s->C < 128, wide_small = pq <= 16 && s->C >= 256;
    int blocked;
    if (s->R == 1) {
        blocked = wide_small;
    } else if (dir == 2) {
        if (pq <= 16) return wide_small ? SSL_CPU_CONV_IM2COL : SSL_CPU_CONV_DNNL_BLOCKED;
        blocked = st->avx512 || narrow || pq >= 1024;
    } else {
        blocked = (dir == 0 || s->C >= 8) &&
                  (st->avx512 || narrow || s->stride == 1 || pq >= 256);
    }
    return blocked ? SSL_CPU_CONV_DNNL_BLOCKED : SSL_CPU_CONV_DNNL_PLAIN;
}

static void check_shape(const ssl_conv_shape *s)
{
    SSL_ASSERTF(s->N > 0 && s->C > 0 && s->H > 0 && s->W > 0 && s->K > 0 && s->R > 0 &&
                    s->stride > 0 && s->pad >= 0 && s->P > 0 && s->Q > 0 &&
                    s->P == (s->H + 2 * s->pad - s->R) / s->stride + 1 &&
                    s->Q == (s->W + 2 * s->pad - s->R) / s->stride + 1,
                "bad conv shape N=%d C=%d H=%d W=%d K=%d R=%d stride=%d pad=%d P=%d Q=%d", s->N,
                s->C, s->H, s->W, s->K, s->R, s->stride, s->pad, s->P, s->Q);
}

void ssl_cpu_conv2d_fwd(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w,
                        float *y)
{
    check_shape(s);
    ssl_cpu_conv_algo a = pick(c, s, 0);
    if (a == SSL_CPU_CONV_IM2COL) ssl_cpu_conv2d_fwd_im2col(c, s, x, w, y);
    else ssl_cpu_conv2d_fwd_dnnl(c, s, x, w, y, a == SSL_CPU_CONV_DNNL_BLOCKED);
}

void ssl_cpu_conv2d_bwd_data(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *w,
                             float *dx)
{
    check_shape(s);
    ssl_cpu_conv_algo a = pick(c, s, 1);
    if (a == SSL_CPU_CONV_IM2COL) ssl_cpu_conv2d_bwd_data_im2col(c, s, dy, w, dx);
    else ssl_cpu_conv2d_bwd_data_dnnl(c, s, dy, w, dx, a == SSL_CPU_CONV_DNNL_BLOCKED);
}

void ssl_cpu_conv2d_bwd_filter(ssl_ctx *c, const ssl_conv_shape *s, const float *dy,
                               const float *x, float *dw)
{
    check_shape(s);
    ssl_cpu_conv_algo a = pick(c, s, 2);
    if (a == SSL_CPU_CONV_IM2COL) ssl_cpu_conv2d_bwd_filter_im2col(c, s, dy, x, dw);
    else ssl_cpu_conv2d_bwd_filter_dnnl(c, s, dy, x, dw, a == SSL_CPU_CONV_DNNL_BLOCKED);
}
