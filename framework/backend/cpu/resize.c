/* CPU bicubic resize of channels-last grids (ViT position embeddings at another patch grid), as
 * torch's upsample_bicubic2d with align_corners=False: along each axis an output index reads 4
 * input indices (clamped at the borders) with cubic-convolution weights, A = -0.75; the sums run
 * in torch's order (4 taps along x per tap along y). Coordinates and weights are computed in double
 * and rounded once: in float the kernel's polynomials cancel to ~1e-6 (torch's own weights are that
 * far off), and they are only 8 per output position. Channels are innermost: every tap is a
 * contiguous vector of D floats. */
#include "framework/backend/cpu/cpu.h"

#include <math.h>

#define PAR_MIN 32768

/* The 4 input indices and weights of output index o on an axis resized from n_in to n_out. */
typedef struct {
    int idx[4];
    float w[4];
} ssl_cubic_taps;

/* Keys' cubic convolution kernel for |s| <= 1 and for 1 < |s| < 2. */
static double cubic_near(double s, double A) { return ((A + 2) * s - (A + 3)) * s * s + 1; }
static double cubic_far(double s, double A) { return ((A * s - 5 * A) * s + 8 * A) * s - 4 * A; }

static ssl_cubic_taps cubic_taps(int n_in, int n_out, int o)
{
    const double A = -0.75;
    /* may be negative near the first border: the distance t still sets the weights */
    const double src = (o + 0.5) * n_in / n_out - 0.5, f = floor(src), t = src - f;
    ssl_cubic_taps k = {.w = {(float)cubic_far(t + 1, A), (float)cubic_near(t, A),
                              (float)cubic_near(1 - t, A), (float)cubic_far(2 - t, A)}};
    for (int j = 0; j < 4; j++) {
        int i = (int)f - 1 + j;
        k.idx[j] = i < 0 ? 0 : i >= n_in ? n_in - 1 : i;
    }
    return k;
}

void ssl_cpu_resize_bicubic_fwd(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D,
                                const float *x, float *y)
{
    (void)c;
#pragma omp parallel for schedule(static) if ((int64_t)ho * wo * D >= PAR_MIN)
    for (int oy = 0; oy < ho; oy++) {
        const ssl_cubic_taps ky = cubic_taps(hi, ho, oy);
        for (int ox = 0; ox < wo; ox++) {
            const ssl_cubic_taps kx = cubic_taps(wi, wo, ox);
            float *o = y + ((int64_t)oy * wo + ox) * D;
            for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
            for (int j = 0; j < 4; j++) {
                const float *r = x + (int64_t)ky.idx[j] * wi * D;
                const float *p0 = r + kx.idx[0] * D, *p1 = r + kx.idx[1] * D;
                const float *p2 = r + kx.idx[2] * D, *p3 = r + kx.idx[3] * D;
                const float wy = ky.w[j];
#pragma omp simd
                for (int64_t d = 0; d < D; d++)
                    o[d] += wy * (p0[d] * kx.w[0] + p1[d] * kx.w[1] + p2[d] * kx.w[2] + p3[d] * kx.w[3]);
            }
        }
    }
}

/* Adjoint as a gather over input rows, so threads own disjoint rows of dx (no atomics, and the
 * sum order does not depend on the thread count). A clamped border row can be several taps of
 * one output row: their weights add. */
void ssl_cpu_resize_bicubic_bwd(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D,
                                const float *dy, float *dx)
{
    (void)c;
#pragma omp parallel for schedule(static) if ((int64_t)ho * wo * D >= PAR_MIN)
    for (int iy = 0; iy < hi; iy++) {
        float *row = dx + (int64_t)iy * wi * D;
        for (int oy = 0; oy < ho; oy++) {
            const ssl_cubic_taps ky = cubic_taps(hi, ho, oy);
            float wy = 0.0f;
            int hit = 0;
            for (int j = 0; j < 4; j++)
                if (ky.idx[j] == iy) wy += ky.w[j], hit = 1;
            if (!hit) continue;
            for (int ox = 0; ox < wo; ox++) {
                const ssl_cubic_taps kx = cubic_taps(wi, wo, ox);
                const float *g = dy + ((int64_t)oy * wo + ox) * D;
                for (int i = 0; i < 4; i++) {
                    float *r = row + (int64_t)kx.idx[i] * D;
                    const float a = wy * kx.w[i];
#pragma omp simd
                    for (int64_t d = 0; d < D; d++) r[d] += a * g[d];
                }
            }
        }
    }
}
