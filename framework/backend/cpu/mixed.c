/* model.precision bf16 on CPU ranks, by backend.h's mixed-precision rule: the fp32 kernels run on
 * copies of the inputs rounded to bfloat16, and each result element is rounded before it is stored
 * or added. A product of two bf16 values is exact in fp32, so this is what a bf16 GEMM with fp32
 * accumulation computes, to summation order: CPU ranks reproduce a GPU rank's mixed-precision numbers
 * (the reference for parity tests and a way to try a recipe in bf16); they are not faster. The table
 * (table.c) points at these; with c->bf16 clear they are the fp32 ops. */
#include "framework/backend/cpu/cpu.h"
#include "framework/backend/cpu/vmath.h"
#include "framework/core/check.h"

#define PAR_MIN 32768

/* The context's scratch for the rounded copies (grows, never shrinks; apart from the workspace,
 * which the convolutions use themselves). */
static float *scratch(ssl_ctx *c, size_t n)
{
    ssl_cpu_state *st = c->be_state;
    SSL_ASSERTF(st, "CPU backend state missing (ssl_cpu_ctx_init not run)");
    if (n > st->mix_cap) {
        ssl_free(st->mix);
        st->mix = ssl_malloc(n * sizeof(float));
        st->mix_cap = n;
    }
    return st->mix;
}

/* dst (rows x cols, packed) = src (rows x cols, row stride lds) rounded to bf16 */
static void round_copy(int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst)
{
#pragma omp parallel for schedule(static) if (rows * cols >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) dst[r * cols + j] = ssl_vbf16_round(src[r * lds + j]);
}

/* C (M x N, ldc) = round(T) + beta * C, T packed; beta 0 ignores C's old contents (NaN included) */
static void round_store(int M, int N, const float *T, float beta, float *C, int ldc)
{
#pragma omp parallel for schedule(static) if ((int64_t)M * N >= PAR_MIN)
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            const float r = ssl_vbf16_round(T[(size_t)i * N + j]);
            float *o = &C[(size_t)i * ldc + j];
            *o = beta == 0.0f ? r : r + beta * *o;
        }
}

/* dst (rows x cols, packed) = src (rows x cols of bf16 bits, row stride lds) widened */
static void widen_copy(int64_t rows, int64_t cols, const uint16_t *src, int64_t lds, float *dst)
{
#pragma omp parallel for schedule(static) if (rows * cols >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) dst[r * cols + j] = ssl_vbf16_widen(src[r * lds + j]);
}

/* An operand into the scratch: rounded when fp32, widened when bf16 (the same values the fp32 path
 * would see, since rounding a bf16 value changes nothing). */
static void operand(int64_t rows, int64_t cols, const void *src, int h, int64_t off, int64_t ld, float *dst)
{
    if (h) widen_copy(rows, cols, (const uint16_t *)src + off, ld, dst);
    else round_copy(rows, cols, (const float *)src + off, ld, dst);
}

/* Every bf16 product: one (outer x inner) batch at a time through the scratch. The fp32-operand
 * entries below come here too, with both flags clear. */
void ssl_cpu_mp_gemm_batched2_bf16(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha,
                                   const void *A, int a_bf16, int lda, const int64_t sa[2], const void *B, int b_bf16,
                                   int ldb, const int64_t sb[2], float beta, float *C, int ldc, const int64_t sc[2],
                                   int outer, int inner)
{
    SSL_ASSERTF(c->bf16, "gemm_batched2_bf16 outside a bf16 region (ssl_ctx_autocast)");
    if (M == 0 || N == 0) return;
    const int ar = trans_a ? K : M, ac = trans_a ? M : K, br = trans_b ? N : K, bc = trans_b ? K : N;
    float *a = scratch(c, (size_t)M * K + (size_t)K * N + (size_t)M * N), *b = a + (size_t)ar * ac,
          *t = b + (size_t)br * bc;
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            operand(ar, ac, A, a_bf16, o * sa[0] + i * sa[1], lda, a);
            operand(br, bc, B, b_bf16, o * sb[0] + i * sb[1], ldb, b);
            ssl_cpu_gemm(c, trans_a, trans_b, M, N, K, alpha, a, ac > 0 ? ac : 1, b, bc > 0 ? bc : 1, 0.0f, t, N);
            round_store(M, N, t, beta, C + o * sc[0] + i * sc[1], ldc);
        }
}

void ssl_cpu_mp_gemm(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (!c->bf16) {
        ssl_cpu_gemm(c, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const int64_t z[2] = {0, 0};
    ssl_cpu_mp_gemm_batched2_bf16(c, trans_a, trans_b, M, N, K, alpha, A, 0, lda, z, B, 0, ldb, z, beta, C, ldc, z, 1,
                                  1);
}

void ssl_cpu_mp_gemm_batched(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha,
                             const float *A, int lda, int64_t sa, const float *B, int ldb, int64_t sb, float beta,
                             float *C, int ldc, int64_t sc, int batch)
{
    if (!c->bf16) {
        ssl_cpu_gemm_batched(c, trans_a, trans_b, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
        return;
    }
    const int64_t a2[2] = {sa, 0}, b2[2] = {sb, 0}, c2[2] = {sc, 0};
    ssl_cpu_mp_gemm_batched2_bf16(c, trans_a, trans_b, M, N, K, alpha, A, 0, lda, a2, B, 0, ldb, b2, beta, C, ldc, c2,
                                  batch, 1);
}

void ssl_cpu_mp_gemm_batched2(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, const int64_t sa[2], const float *B, int ldb,
                              const int64_t sb[2], float beta, float *C, int ldc, const int64_t sc[2], int outer,
                              int inner)
{
    if (!c->bf16) {
        ssl_cpu_gemm_batched2(c, trans_a, trans_b, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, outer,
                              inner);
        return;
    }
    ssl_cpu_mp_gemm_batched2_bf16(c, trans_a, trans_b, M, N, K, alpha, A, 0, lda, sa, B, 0, ldb, sb, beta, C, ldc, sc,
                                  outer, inner);
}

static void round_inplace(float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] = ssl_vbf16_round(x[i]);
}

/* Scratch holding a and b rounded (na, nb floats) and `extra` floats after them. */
static float *rounded_pair(ssl_ctx *c, const float *a, size_t na, const float *b, size_t nb, size_t extra)
{
    float *s = scratch(c, na + nb + extra);
    round_copy(1, (int64_t)na, a, 0, s);
    round_copy(1, (int64_t)nb, b, 0, s + na);
    return s;
}

void ssl_cpu_mp_conv2d_fwd(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, float *y)
{
    if (!c->bf16) {
        ssl_cpu_conv2d_fwd(c, s, x, w, y);
        return;
    }
    const size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)s->K * s->C * s->R * s->R;
    float *xr = rounded_pair(c, x, nx, w, nw, 0);
    ssl_cpu_conv2d_fwd(c, s, xr, xr + nx, y);
    round_inplace(y, (size_t)s->N * s->K * s->P * s->Q);
}

/* y as bf16 bits: the fp32 op's result, which it rounds anyway, computed in the scratch */
void ssl_cpu_mp_conv2d_fwd_bf16(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, uint16_t *y)
{
    SSL_ASSERTF(c->bf16, "conv2d_fwd_bf16 outside a bf16 region (ssl_ctx_autocast)");
    const size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)s->K * s->C * s->R * s->R,
                 ny = (size_t)s->N * s->K * s->P * s->Q;
    float *xr = rounded_pair(c, x, nx, w, nw, ny), *t = xr + nx + nw;
    ssl_cpu_conv2d_fwd(c, s, xr, xr + nx, t);
    ssl_cpu_cast_f32_bf16(c, y, t, ny);
}

void ssl_cpu_mp_conv2d_bwd_data(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *w, float *dx)
{
    if (!c->bf16) {
        ssl_cpu_conv2d_bwd_data(c, s, dy, w, dx);
        return;
    }
    const size_t ny = (size_t)s->N * s->K * s->P * s->Q, nw = (size_t)s->K * s->C * s->R * s->R;
    float *dyr = rounded_pair(c, dy, ny, w, nw, 0);
    ssl_cpu_conv2d_bwd_data(c, s, dyr, dyr + ny, dx);
    round_inplace(dx, (size_t)s->N * s->C * s->H * s->W);
}

/* dw += round(filter gradient of dyr and xr), both already bf16 values; t is nw floats of scratch */
static void bwd_filter_rounded(ssl_ctx *c, const ssl_conv_shape *s, const float *dyr, const float *xr, float *t,
                               float *dw)
{
    const size_t nw = (size_t)s->K * s->C * s->R * s->R;
    for (size_t i = 0; i < nw; i++) t[i] = 0.0f;
    ssl_cpu_conv2d_bwd_filter(c, s, dyr, xr, t); /* accumulates: into zeros, then rounded and added */
    for (size_t i = 0; i < nw; i++) dw[i] += ssl_vbf16_round(t[i]);
}

void ssl_cpu_mp_conv2d_bwd_filter(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *x, float *dw)
{
    if (!c->bf16) {
        ssl_cpu_conv2d_bwd_filter(c, s, dy, x, dw);
        return;
    }
    const size_t ny = (size_t)s->N * s->K * s->P * s->Q, nx = (size_t)s->N * s->C * s->H * s->W,
                 nw = (size_t)s->K * s->C * s->R * s->R;
    float *dyr = rounded_pair(c, dy, ny, x, nx, nw);
    bwd_filter_rounded(c, s, dyr, dyr + ny, dyr + ny + nx, dw);
}

/* x arrives as bf16 bits: widened into the scratch where the fp32 op's rounded copy would go */
void ssl_cpu_mp_conv2d_bwd_filter_bf16(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const uint16_t *x,
                                       float *dw)
{
    SSL_ASSERTF(c->bf16, "conv2d_bwd_filter_bf16 outside a bf16 region (ssl_ctx_autocast)");
    const size_t ny = (size_t)s->N * s->K * s->P * s->Q, nx = (size_t)s->N * s->C * s->H * s->W,
                 nw = (size_t)s->K * s->C * s->R * s->R;
    float *dyr = scratch(c, ny + nx + nw), *xr = dyr + ny;
    round_copy(1, (int64_t)ny, dy, 0, dyr);
    ssl_cpu_cast_bf16_f32(c, xr, x, nx);
    bwd_filter_rounded(c, s, dyr, xr, xr + nx, dw);
}
