/* CUDA bicubic resize of channels-last grids (backend.h: resize_bicubic_*), as backend/cpu/resize.c:
 * taps and weights in double rounded once to float, the same summation order. The backward is a
 * gather (one thread per dx element, visiting the outputs that read it in the CPU's order): no
 * atomics, so it is deterministic and accumulates into dx exactly as the CPU does. */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <math.h>

struct cubic_taps {
    int idx[4];
    float w[4];
};

__device__ inline double cubic_near(double s, double A) { return ((A + 2) * s - (A + 3)) * s * s + 1; }
__device__ inline double cubic_far(double s, double A) { return ((A * s - 5 * A) * s + 8 * A) * s - 4 * A; }

__device__ inline cubic_taps taps_of(int n_in, int n_out, int o)
{
    const double A = -0.75;
    const double src = (o + 0.5) * n_in / n_out - 0.5, f = floor(src), t = src - f;
    cubic_taps k;
    k.w[0] = (float)cubic_far(t + 1, A), k.w[1] = (float)cubic_near(t, A);
    k.w[2] = (float)cubic_near(1 - t, A), k.w[3] = (float)cubic_far(2 - t, A);
    for (int j = 0; j < 4; j++) {
        const int i = (int)f - 1 + j;
        k.idx[j] = i < 0 ? 0 : i >= n_in ? n_in - 1 : i;
    }
    return k;
}

__global__ void k_resize_fwd(int hi, int wi, int ho, int wo, int64_t D, const float *x, float *y)
{
    SSL_GRID_STRIDE(e, (size_t)ho * wo * D)
    {
        const int64_t d = (int64_t)(e % D), pix = (int64_t)(e / D);
        const int oy = (int)(pix / wo), ox = (int)(pix % wo);
        const cubic_taps ky = taps_of(hi, ho, oy), kx = taps_of(wi, wo, ox);
        float o = 0.0f;
        for (int j = 0; j < 4; j++) {
            const float *r = x + (int64_t)ky.idx[j] * wi * D + d;
            o += ky.w[j] * (r[kx.idx[0] * D] * kx.w[0] + r[kx.idx[1] * D] * kx.w[1] +
                            r[kx.idx[2] * D] * kx.w[2] + r[kx.idx[3] * D] * kx.w[3]);
        }
        y[e] = o;
    }
}

/* Outputs o whose taps can reach input i: floor(src) in [i-2, i+1] (clamped border taps included,
 * since floor(src) >= -1 and <= n_in-1); one index of margin each side, taps then checked exactly. */
__device__ inline void out_range(int n_in, int n_out, int i, int *lo, int *hi)
{
    const double r = (double)n_in / n_out;
    int a = (int)floor((i - 1.5) / r - 0.5) - 1, b = (int)ceil((i + 2.5) / r - 0.5) + 1;
    *lo = a < 0 ? 0 : a;
    *hi = b > n_out - 1 ? n_out - 1 : b;
}

__global__ void k_resize_bwd(int hi, int wi, int ho, int wo, int64_t D, const float *dy, float *dx)
{
    SSL_GRID_STRIDE(e, (size_t)hi * wi * D)
    {
        const int64_t d = (int64_t)(e % D), pix = (int64_t)(e / D);
        const int iy = (int)(pix / wi), ix = (int)(pix % wi);
        int oy0, oy1, ox0, ox1;
        out_range(hi, ho, iy, &oy0, &oy1);
        out_range(wi, wo, ix, &ox0, &ox1);
        float acc = dx[e];
        for (int oy = oy0; oy <= oy1; oy++) {
            const cubic_taps ky = taps_of(hi, ho, oy);
            float wy = 0.0f;
            int hit = 0;
            for (int j = 0; j < 4; j++)
                if (ky.idx[j] == iy) wy += ky.w[j], hit = 1;
            if (!hit) continue;
            for (int ox = ox0; ox <= ox1; ox++) {
                const cubic_taps kx = taps_of(wi, wo, ox);
                const float g = dy[((int64_t)oy * wo + ox) * D + d];
                for (int i = 0; i < 4; i++)
                    if (kx.idx[i] == ix) acc += (wy * kx.w[i]) * g;
            }
        }
        dx[e] = acc;
    }
}

void ssl_cuda_resize_bicubic_fwd(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D,
                                 const float *x, float *y)
{
    const size_t n = (size_t)ho * wo * D;
    if (n == 0) return;
    k_resize_fwd<<<SSL_CUDA_GRID(c, n)>>>(hi, wi, ho, wo, D, x, y);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_resize_bicubic_bwd(ssl_ctx *c, int hi, int wi, int ho, int wo, int64_t D,
                                 const float *dy, float *dx)
{
    const size_t n = (size_t)hi * wi * D;
    if (n == 0) return;
    k_resize_bwd<<<SSL_CUDA_GRID(c, n)>>>(hi, wi, ho, wo, D, dy, dx);
    SSL_CUDA_LAUNCHED();
}
