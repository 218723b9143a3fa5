/* ViT patch extraction: turns the patch-embedding convolution (kernel = stride = p) into a plain
 * GEMM on (N*T, C*p*p) rows, and its inverse for the backward pass. */
#include "framework/backend/cpu/cpu.h"

void ssl_cpu_patchify(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out)
{
    (void)c;
    const int gh = H / p, gw = W / p, F = C * p * p;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int ty = 0; ty < gh; ty++)
            for (int tx = 0; tx < gw; tx++) {
                float *o = out + ((int64_t)n * gh * gw + (int64_t)ty * gw + tx) * F;
                for (int ch = 0; ch < C; ch++)
                    for (int i = 0; i < p; i++) {
                        const float *src =
                            x + (((int64_t)n * C + ch) * H + (int64_t)ty * p + i) * W + (int64_t)tx * p;
                        for (int j = 0; j < p; j++) *o++ = src[j];
                    }
            }
}

void ssl_cpu_unpatchify(ssl_ctx *c, int N, int C, int H, int W, int p, const float *in, float *x)
{
    (void)c;
    const int gh = H / p, gw = W / p, F = C * p * p;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int ty = 0; ty < gh; ty++)
            for (int tx = 0; tx < gw; tx++) {
                const float *o = in + ((int64_t)n * gh * gw + (int64_t)ty * gw + tx) * F;
                for (int ch = 0; ch < C; ch++)
                    for (int i = 0; i < p; i++) {
                        float *dst =
                            x + (((int64_t)n * C + ch) * H + (int64_t)ty * p + i) * W + (int64_t)tx * p;
                        for (int j = 0; j < p; j++) dst[j] = *o++;
                    }
            }
}
