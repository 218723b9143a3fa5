/* CPU pooling: k x k max pool with saved argmax (the ResNet stem) and global average pool (the
 * ResNet head). Planes (n, c) are independent, so threads split planes and the max-pool backward
 * scatter never races. Padding acts as -inf and NaN propagates, as in PyTorch. */
#include "framework/backend/cpu/cpu.h"

#include <math.h>

#define PAR_MIN 32768

void ssl_cpu_maxpool_fwd(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad, int P,
                         int Q, const float *x, float *y, int32_t *idx)
{
    (void)c;
    int64_t planes = (int64_t)N * C, in_plane = (int64_t)H * W, out_plane = (int64_t)P * Q;
#pragma omp parallel for schedule(static) if (planes * out_plane * k * k >= PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * in_plane;
        float *yp = y + pl * out_plane;
        int32_t *ip = idx + pl * out_plane;
        for (int p = 0; p < P; p++) {
            int h0 = p * stride - pad, hs = h0 < 0 ? 0 : h0, he = h0 + k < H ? h0 + k : H;
            for (int q = 0; q < Q; q++) {
                int w0 = q * stride - pad, ws = w0 < 0 ? 0 : w0, we = w0 + k < W ? w0 + k : W;
                /* -1: a window entirely in the padding (impossible when pad <= k/2) */
                float best = -INFINITY;
                int32_t bi = -1;
                for (int h = hs; h < he; h++)
                    for (int w = ws; w < we; w++) {
                        float v = xp[h * W + w];
                        /* strict '>' keeps the first maximum; NaN wins as in PyTorch */
                        if (v > best || isnan(v)) {
                            best = v;
                            bi = h * W + w;
                        }
                    }
                yp[p * Q + q] = best;
                ip[p * Q + q] = bi;
            }
        }
    }
}

/* a scatter in output order, per plane (the window geometry is not needed on the CPU) */
void ssl_cpu_maxpool_bwd(ssl_ctx *c, int N, int C, int H, int W, int k, int stride, int pad, int P, int Q,
                         const float *dy, const int32_t *idx, float *dx)
{
    (void)c, (void)k, (void)stride, (void)pad;
    int64_t planes = (int64_t)N * C, in_plane = (int64_t)H * W, out_plane = (int64_t)P * Q;
#pragma omp parallel for schedule(static) if (planes * in_plane >= PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *dp = dx + pl * in_plane;
        const float *gp = dy + pl * out_plane;
        const int32_t *ip = idx + pl * out_plane;
#pragma omp simd
        for (int64_t i = 0; i < in_plane; i++) dp[i] = 0.0f;
        /* overlapping windows (k > stride) may share an argmax: accumulate */
        for (int64_t o = 0; o < out_plane; o++)
            if (ip[o] >= 0) dp[ip[o]] += gp[o];
    }
}

void ssl_cpu_avgpool_fwd(ssl_ctx *c, int64_t NC, int64_t S, const float *x, float *y)
{
    (void)c;
#pragma omp parallel for schedule(static) if (NC * S >= PAR_MIN)
    for (int64_t i = 0; i < NC; i++) {
        const float *xp = x + i * S;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < S; j++) s += xp[j];
        y[i] = (float)(s / (double)S);
    }
}

void ssl_cpu_avgpool_bwd(ssl_ctx *c, int64_t NC, int64_t S, const float *dy, float *dx)
{
    (void)c;
#pragma omp parallel for schedule(static) if (NC * S >= PAR_MIN)
    for (int64_t i = 0; i < NC; i++) {
        float g = (float)((double)dy[i] / (double)S);
        float *dp = dx + i * S;
#pragma omp simd
        for (int64_t j = 0; j < S; j++) dp[j] = g;
    }
}
