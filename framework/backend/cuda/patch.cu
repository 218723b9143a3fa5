/* CUDA ViT patch extraction (patchify, features (c, i, j)), its inverse, and MAE's channels-last
 * patchify_hwc (features (i, j, c)). One thread per patch-matrix element; the output index is
 * decoded into the image coordinate, so writes are coalesced and reads nearly so. As on the CPU,
 * pixels beyond the last whole patch (H or W not a multiple of p) are neither read nor written. */
#include "framework/backend/cuda/cuda_impl.cuh"

/* Image offset of element f of patch t of image n; hwc selects the (i, j, c) feature order. */
__device__ inline int64_t patch_src(int64_t n, int64_t t, int64_t f, int C, int H, int W, int p,
                                    int gw, int hwc)
{
    int64_t ch, i, j;
    if (hwc) {
        ch = f % C;
        j = (f / C) % p;
        i = f / ((int64_t)C * p);
    } else {
        j = f % p;
        i = (f / p) % p;
        ch = f / ((int64_t)p * p);
    }
    const int64_t ty = t / gw, tx = t % gw;
    return ((n * C + ch) * H + ty * p + i) * W + tx * p + j;
}

__global__ void k_patchify(size_t tot, int C, int H, int W, int p, int T, int gw, int hwc,
                           const float *x, float *out)
{
    const int64_t F = (int64_t)C * p * p;
    SSL_GRID_STRIDE(o, tot)
    {
        const int64_t f = (int64_t)o % F, nt = (int64_t)o / F;
        out[o] = x[patch_src(nt / T, nt % T, f, C, H, W, p, gw, hwc)];
    }
}

__global__ void k_unpatchify(size_t tot, int C, int H, int W, int p, int T, int gw, const float *in,
                             float *x)
{
    const int64_t F = (int64_t)C * p * p;
    SSL_GRID_STRIDE(o, tot)
    {
        const int64_t f = (int64_t)o % F, nt = (int64_t)o / F;
        x[patch_src(nt / T, nt % T, f, C, H, W, p, gw, 0)] = in[o];
    }
}

static void launch_patchify(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out,
                            int hwc)
{
    const int gh = H / p, gw = W / p, T = gh * gw;
    const size_t tot = (size_t)N * (size_t)T * (size_t)C * (size_t)p * (size_t)p;
    if (tot == 0) return;
    k_patchify<<<SSL_CUDA_GRID(c, tot)>>>(tot, C, H, W, p, T, gw, hwc, x, out);
    SSL_CUDA_LAUNCHED();
}

void ssl_cuda_patchify(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out)
{
    launch_patchify(c, N, C, H, W, p, x, out, 0);
}

void ssl_cuda_patchify_hwc(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out)
{
    launch_patchify(c, N, C, H, W, p, x, out, 1);
}

void ssl_cuda_unpatchify(ssl_ctx *c, int N, int C, int H, int W, int p, const float *in, float *x)
{
    const int gh = H / p, gw = W / p, T = gh * gw;
    const size_t tot = (size_t)N * (size_t)T * (size_t)C * (size_t)p * (size_t)p;
    if (tot == 0) return;
    k_unpatchify<<<SSL_CUDA_GRID(c, tot)>>>(tot, C, H, W, p, T, gw, in, x);
    SSL_CUDA_LAUNCHED();
}
