/* model.precision bf16 on CUDA ranks (backend.h's rule): both operands packed into bfloat16 in the
 * context's mixed scratch (the CPU's rounding bits, as the cast op), the products on the tensor cores
 * with fp32 accumulation and an fp32 result (cublasGemmStridedBatchedEx with CUBLAS_COMPUTE_32F; the
 * convolutions in conv.cu with cuDNN's bf16 configuration), rounded to bf16 once by our own kernel
 * (the CPU's bits, NaN included) and stored or added in fp32. A bf16 result from cuBLAS itself could
 * be summed in bf16 across a split K (its reduced-precision reduction) and rounds NaN differently.
 * One strided-batched call covers gemm, gemm_batched and gemm_batched2 alike, since the packed
 * operands are dense. With c->bf16 clear the table's entries are the fp32 ops. */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <cuda_bf16.h>

static inline cublasOperation_t op_of(int t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

__device__ inline uint16_t bf16_bits(float f)
{
    const uint32_t u = __float_as_uint(f);
    return (u & 0x7FFFFFFFu) > 0x7F800000u ? (uint16_t)0x7FC0 : (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* The strided offset of packed element k of outer x inner matrices of rows x cols (matrix (o, i) at
 * o s0 + i s1, row stride ld). */
__device__ inline int64_t strided(int64_t k, int64_t inner, int64_t rows, int64_t cols, int64_t s0, int64_t s1,
                                  int64_t ld)
{
    const int64_t j = k % cols;
    k /= cols;
    const int64_t r = k % rows;
    k /= rows;
    return (k / inner) * s0 + (k % inner) * s1 + r * ld + j;
}

/* packed dst[k] = bf16(src at its strided offset) for n = outer inner rows cols elements */
__global__ void k_pack(size_t n, int64_t inner, int64_t rows, int64_t cols, const float *src, int64_t s0, int64_t s1,
                       int64_t ld, uint16_t *dst)
{
    SSL_GRID_STRIDE(k, n) dst[k] = bf16_bits(src[strided((int64_t)k, inner, rows, cols, s0, s1, ld)]);
}

/* packed dst[k] = the bf16 bits at src's strided offset (an operand that is bf16 already) */
__global__ void k_pack16(size_t n, int64_t inner, int64_t rows, int64_t cols, const uint16_t *src, int64_t s0,
                         int64_t s1, int64_t ld, uint16_t *dst)
{
    SSL_GRID_STRIDE(k, n) dst[k] = src[strided((int64_t)k, inner, rows, cols, s0, s1, ld)];
}

/* A result element as the fp32 value of its bf16 rounding: bf16 bits widened, an fp32 result rounded first */
__device__ inline float bf16_value(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
__device__ inline float bf16_value(float f) { return bf16_value(bf16_bits(f)); }

/* C at the strided offset of k = bf16_value(T[k]) + beta C; beta 0 assigns (C's NaN ignored) */
template <typename R>
__global__ void k_unpack(size_t n, int64_t inner, int64_t rows, int64_t cols, const R *T, float beta, float *C,
                         int64_t s0, int64_t s1, int64_t ld)
{
    SSL_GRID_STRIDE(k, n)
    {
        const float v = bf16_value(T[k]);
        float *out = C + strided((int64_t)k, inner, rows, cols, s0, s1, ld);
        *out = beta == 0.0f ? v : v + beta * *out;
    }
}

uint16_t *ssl_cuda_mixed_scratch(ssl_ctx *c, size_t elems)
{
    ssl_cuda_state *st = ssl_cuda_st(c);
    if (elems > st->mix_cap) { /* cudaFree waits for the device: the old buffer is no longer read */
        SSL_CUDA_CHECK(cudaFree(st->mix));
        SSL_CUDA_CHECK(cudaMalloc(&st->mix, elems * sizeof(uint16_t)));
        st->mix_cap = elems;
    }
    return st->mix;
}

void ssl_cuda_pack_bf16(ssl_ctx *c, int64_t outer, int64_t inner, int64_t rows, int64_t cols, const float *src,
                        int64_t s0, int64_t s1, int64_t ld, uint16_t *dst)
{
    const size_t n = (size_t)(outer * inner * rows * cols);
    if (n == 0) return;
    k_pack<<<SSL_CUDA_GRID(c, n)>>>(n, inner, rows, cols, src, s0, s1, ld, dst);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_unpack_bf16(ssl_ctx *c, int64_t outer, int64_t inner, int64_t rows, int64_t cols, const uint16_t *T,
                          float beta, float *C, int64_t s0, int64_t s1, int64_t ld)
{
    const size_t n = (size_t)(outer * inner * rows * cols);
    if (n == 0) return;
    k_unpack<<<SSL_CUDA_GRID(c, n)>>>(n, inner, rows, cols, T, beta, C, s0, s1, ld);
    SSL_CUDA_LAUNCHED();
}

/* elements rounded up to 8 (16 bytes): each packed operand starts aligned for the tensor cores */
static inline size_t al8(size_t n) { return (n + 7) & ~(size_t)7; }

/* An operand packed dense into dst: cast when fp32, copied when bf16; a single dense bf16 matrix is used
 * where it lies (returned instead of dst). */
static const uint16_t *operand(ssl_ctx *c, int64_t outer, int64_t inner, int64_t rows, int64_t cols, const void *src,
                               int h, const int64_t s[2], int64_t ld, uint16_t *dst)
{
    if (!h) {
        ssl_cuda_pack_bf16(c, outer, inner, rows, cols, (const float *)src, s[0], s[1], ld, dst);
        return dst;
    }
    if (outer * inner == 1 && ld == cols) return (const uint16_t *)src;
    const size_t n = (size_t)(outer * inner * rows * cols);
    if (n == 0) return dst;
    k_pack16<<<SSL_CUDA_GRID(c, n)>>>(n, inner, rows, cols, (const uint16_t *)src, s[0], s[1], ld, dst);
    SSL_CUDA_LAUNCHED();
    return dst;
}

static void gemm_bf16(ssl_ctx *c, int ta, int tb, int M, int N, int K, float alpha, const void *A, int ah, int lda,
                      const int64_t sa[2], const void *B, int bh, int ldb, const int64_t sb[2], float beta, float *C,
                      int ldc, const int64_t sc[2], int outer, int inner)
{
    const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    const int64_t n = (int64_t)outer * inner, na = (int64_t)ar * ac, nb = (int64_t)br * bc, nc = (int64_t)M * N;
    const size_t ea = al8((size_t)(n * na)), eb = al8((size_t)(n * nb));
    uint16_t *scr = ssl_cuda_mixed_scratch(c, ea + eb + 2 * (size_t)(n * nc));
    float *t = (float *)(scr + ea + eb); /* 16-byte aligned: ea and eb are multiples of 8 */
    const uint16_t *a = operand(c, outer, inner, ar, ac, A, ah, sa, lda, scr);
    const uint16_t *b = operand(c, outer, inner, br, bc, B, bh, sb, ldb, scr + ea);
    const float zero = 0.0f;
    /* row-major as blas.cu: C^T = op(B)^T op(A)^T in cuBLAS's column-major terms */
    SSL_CUBLAS_CHECK(cublasGemmStridedBatchedEx(ssl_cuda_st(c)->blas, op_of(tb), op_of(ta), N, M, K, &alpha, b,
                                                CUDA_R_16BF, bc > 0 ? bc : 1, nb, a, CUDA_R_16BF, ac > 0 ? ac : 1, na,
                                                &zero, t, CUDA_R_32F, N, nc, (int)n, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT));
    const size_t ne = (size_t)(n * nc);
    k_unpack<<<SSL_CUDA_GRID(c, ne)>>>(ne, inner, M, N, t, beta, C, sc[0], sc[1], ldc);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_mp_gemm(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc)
{
    if (!c->bf16) {
        ssl_cuda_gemm(c, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (M == 0 || N == 0) return;
    const int64_t z[2] = {0, 0};
    gemm_bf16(c, trans_a, trans_b, M, N, K, alpha, A, 0, lda, z, B, 0, ldb, z, beta, C, ldc, z, 1, 1);
}

void ssl_cuda_mp_gemm_batched(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                              int lda, int64_t sa, const float *B, int ldb, int64_t sb, float beta, float *C, int ldc,
                              int64_t sc, int batch)
{
    if (!c->bf16) {
        ssl_cuda_gemm_batched(c, trans_a, trans_b, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
        return;
    }
    if (M == 0 || N == 0 || batch == 0) return;
    const int64_t a2[2] = {sa, 0}, b2[2] = {sb, 0}, c2[2] = {sc, 0};
    gemm_bf16(c, trans_a, trans_b, M, N, K, alpha, A, 0, lda, a2, B, 0, ldb, b2, beta, C, ldc, c2, batch, 1);
}

void ssl_cuda_mp_gemm_batched2(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                               int lda, const int64_t sa[2], const float *B, int ldb, const int64_t sb[2], float beta,
                               float *C, int ldc, const int64_t sc[2], int outer, int inner)
{
    if (!c->bf16) {
        ssl_cuda_gemm_batched2(c, trans_a, trans_b, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, outer,
                               inner);
        return;
    }
    if (M == 0 || N == 0 || outer * inner == 0) return;
    gemm_bf16(c, trans_a, trans_b, M, N, K, alpha, A, 0, lda, sa, B, 0, ldb, sb, beta, C, ldc, sc, outer, inner);
}

void ssl_cuda_mp_gemm_batched2_bf16(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha,
                                    const void *A, int a_bf16, int lda, const int64_t sa[2], const void *B, int b_bf16,
                                    int ldb, const int64_t sb[2], float beta, float *C, int ldc, const int64_t sc[2],
                                    int outer, int inner)
{
    SSL_ASSERTF(c->bf16, "gemm_batched2_bf16 outside a bf16 region (ssl_ctx_autocast)");
    if (M == 0 || N == 0 || outer * inner == 0) return;
    gemm_bf16(c, trans_a, trans_b, M, N, K, alpha, A, a_bf16, lda, sa, B, b_bf16, ldb, sb, beta, C, ldc, sc, outer,
              inner);
}
