/* CUDA fused losses and the sharded softmax (backend.h: ntxent_rows, row_max, row_sumexp,
 * softmax_apply, dino_xent_rows, mae_loss_rows), as backend/cpu/{ntxent,sharded_rows,mae}.c.
 * One block per row, row sums in double through the fixed block tree. Host loss sums: each row's
 * loss goes to the workspace, comes back, and is added on the host in row order, so the result is
 * deterministic (the same order as the CPU's dino / mae sums). */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <math.h>
#include <stdlib.h>

#define MAX_TEACHER_VIEWS 8

__device__ inline float zval(const float *xr, const float *ce, int64_t j, float scale)
{
    return scale * (ce ? xr[j] - ce[j] : xr[j]);
}

/* rows is the grid size (at most 2^31 - 1). */
#define ROW_GRID(c, rows) (unsigned)(rows), SSL_CUDA_THREADS, 0, ssl_cuda_stream(c)
#define ROWS_OK(rows, what)                                                                    \
    do {                                                                                       \
        if ((rows) <= 0) return;                                                               \
        SSL_ASSERTF((rows) < 2147483647, "%s: %lld rows", what, (long long)(rows));            \
    } while (0)

/* Sum of the per-row doubles dev[0..rows) on the host, in row order (synchronises the stream). */
static double host_row_sum(ssl_ctx *c, int64_t rows, const double *dev)
{
    double *h = (double *)malloc((size_t)rows * sizeof(double));
    SSL_ASSERT(h);
    SSL_CUDA_CHECK(cudaMemcpyAsync(h, dev, (size_t)rows * sizeof(double), cudaMemcpyDeviceToHost,
                                   ssl_cuda_stream(c)));
    SSL_CUDA_CHECK(cudaStreamSynchronize(ssl_cuda_stream(c)));
    double total = 0.0;
    for (int64_t r = 0; r < rows; r++) total += h[r];
    free(h);
    return total;
}

/* ---- sharded softmax ---------------------------------------------------------------------- */

__global__ void k_row_max(int64_t D, float scale, const float *x, const float *centre, float *mx)
{
    const float *xr = x + blockIdx.x * D;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
        const float v = zval(xr, centre, j, scale);
        m = v > m ? v : m;
    }
    m = ssl_block_max_all(m);
    if (threadIdx.x == 0) mx[blockIdx.x] = m;
}

__global__ void k_row_sumexp(int64_t D, float scale, const float *x, const float *centre,
                             const float *mx, double *se)
{
    const float *xr = x + blockIdx.x * D;
    const float m = mx[blockIdx.x];
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) s += expf(zval(xr, centre, j, scale) - m);
    s = ssl_block_sum(s);
    if (threadIdx.x == 0) se[blockIdx.x] = s;
}

__global__ void k_softmax_apply(int64_t rows, int64_t D, float scale, const float *x,
                                const float *centre, const float *mx, const double *se, float *logp,
                                float *p)
{
    SSL_GRID_STRIDE(e, (size_t)(rows * D))
    {
        const int64_t r = (int64_t)(e / D), j = (int64_t)(e % D);
        const float lse = mx[r] + (float)log(se[r]);
        const float z = zval(x + r * D, centre, j, scale) - lse;
        if (logp) logp[e] = z;
        if (p) p[e] = expf(z);
    }
}

void ssl_cuda_row_max(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x,
                      const float *centre, float *mx)
{
    ROWS_OK(rows, "row_max");
    k_row_max<<<ROW_GRID(c, rows)>>>(D, scale, x, centre, mx);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_row_sumexp(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x,
                         const float *centre, const float *mx, double *se)
{
    ROWS_OK(rows, "row_sumexp");
    k_row_sumexp<<<ROW_GRID(c, rows)>>>(D, scale, x, centre, mx, se);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_softmax_apply(ssl_ctx *c, int64_t rows, int64_t D, float scale, const float *x,
                            const float *centre, const float *mx, const double *se, float *logp,
                            float *p)
{
    if (rows * D <= 0 || (!logp && !p)) return;
    k_softmax_apply<<<SSL_CUDA_GRID(c, (size_t)(rows * D))>>>(rows, D, scale, x, centre, mx, se, logp, p);
    SSL_CUDA_LAUNCHED();
}

/* ---- NT-Xent ------------------------------------------------------------------------------- */

__global__ void k_ntxent(int64_t M, int64_t row0, int64_t half, float *S, double *loss)
{
    float *s = S + blockIdx.x * M;
    const int64_t self = row0 + blockIdx.x, chunk = 2 * half;
    const int64_t pos = self / chunk * chunk + (self % chunk + half) % chunk;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x)
        if (j != self && s[j] > mx) mx = s[j];
    mx = ssl_block_max_all(mx);
    const double spos = (double)s[pos] - mx; /* every thread reads it before anyone writes */
    __syncthreads();
    double sum = 0.0;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
        const float e = j == self ? 0.0f : expf(s[j] - mx);
        sum += e;
        s[j] = e;
    }
    sum = ssl_block_sum_all(sum);
    if (threadIdx.x == 0) loss[blockIdx.x] = log(sum) - spos;
    const float inv = (float)(1.0 / sum);
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
        const float g = s[j] * inv; /* this thread wrote s[j]: no barrier needed */
        s[j] = j == pos ? g - 1.0f : g;
    }
}

void ssl_cuda_ntxent_rows(ssl_ctx *c, int64_t nq, int64_t M, int64_t row0, int64_t half, float *S,
                          double *loss_sum)
{
    *loss_sum = 0.0;
    ROWS_OK(nq, "ntxent_rows");
    double *loss = (double *)ssl_ctx_workspace(c, (size_t)nq * sizeof(double));
    k_ntxent<<<ROW_GRID(c, nq)>>>(M, row0, half, S, loss);
    SSL_CUDA_LAUNCHED();
    *loss_sum = host_row_sum(c, nq, loss);
}

/* ---- DINO cross-entropy --------------------------------------------------------------------- */

__global__ void k_dino_xent(int64_t R, int64_t D, int vt, const float *P, const float *LS, float g,
                            float *dS, double *ce)
{
    const int64_t r = blockIdx.x, v = r / R, i = r % R;
    const float *t[MAX_TEACHER_VIEWS];
    int nt = 0;
    for (int iq = 0; iq < vt; iq++)
        if (iq != v) t[nt++] = P + (iq * R + i) * D;
    const float w = (float)nt;
    const float *ls = LS + r * D;
    float *o = dS ? dS + r * D : NULL;
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
        float tj = 0.0f;
        for (int k = 0; k < nt; k++) tj += t[k][j];
        const float l = ls[j]; /* read before o[j] (dS may alias LS) */
        s += (double)tj * l;
        if (o) o[j] = g * (w * expf(l) - tj);
    }
    s = ssl_block_sum(s);
    if (threadIdx.x == 0) ce[r] = -s;
}

void ssl_cuda_dino_xent_rows(ssl_ctx *c, int64_t R, int64_t D, int vt, int vs, const float *P,
                             const float *LS, float g, float *dS, double *ce_sum)
{
    SSL_ASSERT(vt > 0 && vt <= MAX_TEACHER_VIEWS && vs > 0);
    const int64_t rows = (int64_t)vs * R;
    *ce_sum = 0.0;
    ROWS_OK(rows, "dino_xent_rows");
    double *ce = (double *)ssl_ctx_workspace(c, (size_t)rows * sizeof(double));
    k_dino_xent<<<ROW_GRID(c, rows)>>>(R, D, vt, P, LS, g, dS, ce);
    SSL_CUDA_LAUNCHED();
    *ce_sum = host_row_sum(c, rows, ce);
}

/* ---- MAE reconstruction loss ---------------------------------------------------------------- */

__global__ void k_mae_loss(int64_t F, float norm_eps, const float *pred, const float *target,
                           const float *mask, float g, float *dpred, double *err)
{
    const int64_t r = blockIdx.x;
    const float *p = pred + r * F, *t = target + r * F;
    float *d = dpred ? dpred + r * F : NULL;
    const float wgt = g * mask[r];
    double mean = 0.0, inv = 1.0;
    if (norm_eps > 0.0f) {
        double s = 0.0, ss = 0.0;
        for (int64_t f = threadIdx.x; f < F; f += blockDim.x) s += t[f];
        mean = ssl_block_sum_all(s) / (double)F;
        for (int64_t f = threadIdx.x; f < F; f += blockDim.x) ss += (t[f] - mean) * (t[f] - mean);
        inv = 1.0 / sqrt(ssl_block_sum_all(ss) / (double)(F - 1) + norm_eps); /* unbiased, as torch .var */
    }
    double e = 0.0;
    for (int64_t f = threadIdx.x; f < F; f += blockDim.x) {
        const double res = p[f] - (t[f] - mean) * inv;
        e += res * res;
        if (d) d[f] = (float)(wgt * 2.0 * res / (double)F);
    }
    e = ssl_block_sum(e);
    if (threadIdx.x == 0) err[r] = mask[r] * (e / (double)F);
}

void ssl_cuda_mae_loss_rows(ssl_ctx *c, int64_t rows, int64_t F, float norm_eps, const float *pred,
                            const float *target, const float *mask, float g, float *dpred,
                            double *loss_sum)
{
    SSL_ASSERTF(F > 1 || norm_eps <= 0.0f, "mae loss: norm_pix needs more than one value per patch");
    *loss_sum = 0.0;
    ROWS_OK(rows, "mae_loss_rows");
    double *err = (double *)ssl_ctx_workspace(c, (size_t)rows * sizeof(double));
    k_mae_loss<<<ROW_GRID(c, rows)>>>(F, norm_eps, pred, target, mask, g, dpred, err);
    SSL_CUDA_LAUNCHED();
    *loss_sum = host_row_sum(c, rows, err);
}
