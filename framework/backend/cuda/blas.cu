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

/* One pointer triple per (outer, inner) matrix, built on the device (no host round trip). */
__global__ void k_batch2_ptrs(int inner, int n, const float *A, int64_t sa0, int64_t sa1, const float *B, int64_t sb0,
                              int64_t sb1, float *C, int64_t sc0, int64_t sc1, const float **pa, const float **pb,
                              float **pc)
{
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        const int64_t o = k / inner, i = k % inner;
        pa[k] = A + o * sa0 + i * sa1;
        pb[k] = B + o * sb0 + i * sb1;
        pc[k] = C + o * sc0 + i * sc1;
    }
}

void ssl_cuda_gemm_batched2(ssl_ctx *c, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                            int lda, const int64_t sa[2], const float *B, int ldb, const int64_t sb[2], float beta,
                            float *C, int ldc, const int64_t sc[2], int outer, int inner)
{
    const int n = outer * inner;
    if (M == 0 || N == 0 || n == 0) return;
    ssl_cuda_state *st = ssl_cuda_st(c);
    if ((size_t)n > st->ptr_cap) { /* grow once; stream order keeps a reused array safe */
        SSL_CUDA_CHECK(cudaFree(st->ptrs));
        SSL_CUDA_CHECK(cudaMalloc(&st->ptrs, 3 * (size_t)n * sizeof(void *)));
        st->ptr_cap = (size_t)n;
    }
    const float **pa = (const float **)st->ptrs, **pb = pa + n;
    float **pc = (float **)(pb + n);
    k_batch2_ptrs<<<(unsigned)((n + SSL_CUDA_THREADS - 1) / SSL_CUDA_THREADS), SSL_CUDA_THREADS, 0, st->stream>>>(
        inner, n, A, sa[0], sa[1], B, sb[0], sb[1], C, sc[0], sc[1], pa, pb, pc);
    SSL_CUDA_LAUNCHED();
    SSL_CUBLAS_CHECK(cublasSgemmBatched(st->blas, op_of(trans_b), op_of(trans_a), N, M, K, &alpha, pb, ldb, pa, lda,
                                        &beta, pc, ldc, n));
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
