/* CUDA GEMM through cuBLAS. backend.h is row-major, cuBLAS column-major: a row-major (M, N) matrix
 * with leading dimension ld is the column-major (N, M) transpose in the same memory, so
 * C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T, i.e. cuBLAS with the operands swapped
 * and M, N exchanged; the transpose flags and leading dimensions pass through unchanged. */
#include "framework/backend/cuda/cuda_impl.cuh"

static inline cublasOperation_t op_of(int t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

void ssl_cuda_gemm(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 0 || N == 0) return;
    SSL_CUBLAS_CHECK(cublasSgemm(ssl_cuda_st(c)->blas, op_of(trans_b), op_of(trans_a), N, M, K,
                                 &alpha, B, ldb, A, lda, &beta, C, ldc));
}

void ssl_cuda_gemm_batched(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha,
                           const float *A, int lda, int64_t sa, const float *B, int ldb, int64_t sb,
                           float beta, float *C, int ldc, int64_t sc, int batch)
{
    if (M == 0 || N == 0 || batch == 0) return;
    SSL_CUBLAS_CHECK(cublasSgemmStridedBatched(ssl_cuda_st(c)->blas, op_of(trans_b), op_of(trans_a),
                                               N, M, K, &alpha, B, ldb, (long long)sb, A, lda,
                                               (long long)sa, &beta, C, ldc, (long long)sc, batch));
}
