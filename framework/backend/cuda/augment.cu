/* CUDA augmentation op (backend/augment.h), one block per view through the CPU kernel's phases
 * (backend/cpu/augment.c) in its order and with its formulas: bilinear taps from the same index and
 * weight rules, colour adjustments per pixel, the contrast mean as a double block sum, the blur as
 * two 1-D passes over reflect-padded rows and columns staged per warp in shared memory (no global
 * scratch). Results differ from the CPU's only by rounding (summation order, FMA contraction, expf). */
#include "framework/backend/cuda/cuda_impl.cuh"

#define GRAY_R 0.2989f
#define GRAY_G 0.587f
#define GRAY_B 0.114f
#define SOLARIZE_T (128.0f / 255.0f)
#define WARPS (SSL_CUDA_THREADS / 32)
#define MAX_S 1024 /* bounds the per-warp blur lines in shared memory: WARPS * 1.1 S floats */

__device__ inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }
__device__ inline float gray(float r, float g, float b) { return GRAY_R * r + GRAY_G * g + GRAY_B * b; }
__device__ inline float one_minus(float f) { return (float)(1.0 - (double)f); }

/* PyTorch's upsample_bilinear2d taps (align_corners=False), as linear_table on the CPU. */
__device__ inline void taps(int in_size, int out_size, int o, int *x0, int *x1, float *l1)
{
    const float scale = (float)in_size / (float)out_size;
    float src = (float)((double)scale * ((double)o + 0.5) - 0.5);
    if (src < 0.0f) src = 0.0f;
    *x0 = (int)src;
    *x1 = *x0 + (*x0 < in_size - 1 ? 1 : 0);
    *l1 = fminf(fmaxf(src - (float)*x0, 0.0f), 1.0f);
}

__device__ void crop_resize(const ssl_aug_job &j, const uint8_t *img, float *out)
{
    const int S = j.S, C = j.C;
    const size_t plane = (size_t)S * S, row = (size_t)j.W * C;
    for (size_t e = threadIdx.x; e < plane; e += blockDim.x) {
        const int oy = (int)(e / S), ox = (int)(e % S);
        int y0, y1, x0, x1;
        float ly, lx;
        taps(j.crop_h, S, oy, &y0, &y1, &ly);
        taps(j.crop_w, S, j.flip ? S - 1 - ox : ox, &x0, &x1, &lx);
        const uint8_t *r0 = img + (size_t)(j.crop_y + y0) * row, *r1 = img + (size_t)(j.crop_y + y1) * row;
        const int c0 = (j.crop_x + x0) * C, c1 = (j.crop_x + x1) * C;
        for (int c = 0; c < C; c++) {
            const float t0 = (float)r0[c0 + c] * (1.0f - lx) + (float)r0[c1 + c] * lx;
            const float t1 = (float)r1[c0 + c] * (1.0f - lx) + (float)r1[c1 + c] * lx;
            out[(size_t)c * plane + e] = (t0 * (1.0f - ly) + t1 * ly) / 255.0f;
        }
    }
}

/* torchvision's _rgb2hsv, hue shift modulo 1, _hsv2rgb (the CPU kernel's select form, as branches). */
__device__ inline void hue_px(float *R, float *G, float *B, float f)
{
    const float r = *R, g = *G, b = *B;
    const float maxc = fmaxf(fmaxf(r, g), b), minc = fminf(fminf(r, g), b);
    const bool grey = maxc == minc;
    const float cr = maxc - minc;
    const float s = grey ? 0.0f : cr / maxc;
    float hh = 0.0f;
    if (!grey) {
        const float rc = (maxc - r) / cr, gc = (maxc - g) / cr, bc = (maxc - b) / cr;
        hh = maxc == r ? bc - gc : (maxc == g ? 2.0f + rc - bc : 4.0f + gc - rc);
    }
    float h = hh / 6.0f + 1.0f;
    if (h >= 1.0f) h -= 1.0f;
    h += f;
    h -= floorf(h);
    const float v = maxc, h6 = h * 6.0f, fi = floorf(h6), fr = h6 - fi;
    const float p = clamp01(v * (1.0f - s)), q = clamp01(v * (1.0f - s * fr)),
                t = clamp01(v * (1.0f - s * (1.0f - fr)));
    const int sec = (int)(fi >= 6.0f ? fi - 6.0f : fi);
    switch (sec) {
    case 0: *R = v, *G = t, *B = p; break;
    case 1: *R = q, *G = v, *B = p; break;
    case 2: *R = p, *G = v, *B = t; break;
    case 3: *R = p, *G = q, *B = v; break;
    case 4: *R = t, *G = p, *B = v; break;
    default: *R = v, *G = p, *B = q; break;
    }
}

/* One jitter adjustment (0 brightness, 1 contrast, 2 saturation, 3 hue) over the view. */
__device__ void jitter(const ssl_aug_job &j, int which, float *x)
{
    const int C = j.C;
    const size_t n = (size_t)j.S * j.S, all = (size_t)C * n;
    if (which == 0) {
        if (j.brightness == 1.0f) return;
        for (size_t i = threadIdx.x; i < all; i += blockDim.x) x[i] = clamp01(j.brightness * x[i]);
    } else if (which == 1) {
        if (j.contrast == 1.0f) return;
        double sum = 0.0;
        for (size_t i = threadIdx.x; i < n; i += blockDim.x)
            sum += C == 3 ? (double)gray(x[i], x[n + i], x[2 * n + i]) : (double)x[i];
        sum = ssl_block_sum_all(sum);
        const float mean = (float)(sum / (double)n), g = one_minus(j.contrast) * mean;
        for (size_t i = threadIdx.x; i < all; i += blockDim.x) x[i] = clamp01(j.contrast * x[i] + g);
    } else if (which == 2) {
        if (C != 3 || j.saturation == 1.0f) return;
        const float h = one_minus(j.saturation), f = j.saturation;
        for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
            const float l = h * gray(x[i], x[n + i], x[2 * n + i]);
            x[i] = clamp01(f * x[i] + l), x[n + i] = clamp01(f * x[n + i] + l);
            x[2 * n + i] = clamp01(f * x[2 * n + i] + l);
        }
    } else {
        if (C != 3 || j.hue == 0.0f) return;
        for (size_t i = threadIdx.x; i < n; i += blockDim.x) hue_px(&x[i], &x[n + i], &x[2 * n + i], j.hue);
    }
}

__device__ inline int reflect(int i, int S) { return i < 0 ? -i : (i >= S ? 2 * (S - 1) - i : i); }

/* One reflect-padded line (stride apart in memory) filtered in place by this warp. */
__device__ inline void blur_line(float *x, size_t stride, int S, int r, int k, const float *kern, float *line)
{
    const int lane = threadIdx.x & 31;
    for (int i = lane; i < S + 2 * r; i += 32) line[i] = x[(size_t)reflect(i - r, S) * stride];
    __syncwarp();
    for (int i = lane; i < S; i += 32) {
        float o = kern[0] * line[i];
        for (int t = 1; t < k; t++) o += kern[t] * line[i + t];
        x[(size_t)i * stride] = o;
    }
    __syncwarp();
}

__device__ void blur(const ssl_aug_job &j, float *x, float *sm, int line_floats, int max_taps)
{
    const int S = j.S, k = ssl_aug_blur_taps(S), r = k / 2;
    if (r == 0 || r >= S) return;
    float *kern = sm, *line = sm + max_taps + (threadIdx.x >> 5) * line_floats;
    if (threadIdx.x == 0) { /* sequential, as the CPU's normalising sum */
        float sum = 0.0f;
        for (int t = 0; t < k; t++) {
            const float z = (float)(t - r) / j.sigma;
            kern[t] = expf(-0.5f * (z * z));
            sum += kern[t];
        }
        for (int t = 0; t < k; t++) kern[t] /= sum;
    }
    __syncthreads();
    const int warp = threadIdx.x >> 5;
    for (int c = 0; c < j.C; c++) {
        float *plane = x + (size_t)c * S * S;
        for (int y = warp; y < S; y += WARPS) blur_line(plane + (size_t)y * S, 1, S, r, k, kern, line);
        __syncthreads();
        for (int col = warp; col < S; col += WARPS) blur_line(plane + col, (size_t)S, S, r, k, kern, line);
        __syncthreads();
    }
}

__global__ void __launch_bounds__(SSL_CUDA_THREADS)
    k_augment(const uint8_t *src, const ssl_aug_job *jobs, float *out_all, int line_floats, int max_taps)
{
    extern __shared__ float sm[];
    const ssl_aug_job j = jobs[blockIdx.x];
    float *x = out_all + j.dst;
    const size_t n = (size_t)j.S * j.S, all = (size_t)j.C * n;
    crop_resize(j, src + j.src, x);
    __syncthreads();
    if (j.jitter)
        for (int k = 0; k < 4; k++) {
            jitter(j, j.order[k], x);
            __syncthreads();
        }
    if (j.C == 3 && j.grayscale) {
        for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
            const float l = gray(x[i], x[n + i], x[2 * n + i]);
            x[i] = l, x[n + i] = l, x[2 * n + i] = l;
        }
        __syncthreads();
    }
    if (j.blur) blur(j, x, sm, line_floats, max_taps);
    for (size_t i = threadIdx.x; i < all; i += blockDim.x) {
        float v = x[i];
        if (j.solarize && v >= SOLARIZE_T) v = 1.0f - v;
        const int c = (int)(i / n);
        x[i] = (v - j.mean[c]) / j.std[c];
    }
}

void ssl_cuda_augment(ssl_ctx *c, int njobs, int max_S, const uint8_t *src, const ssl_aug_job *jobs, float *out)
{
    if (njobs <= 0) return;
    SSL_ASSERTF(max_S >= 1 && max_S <= MAX_S, "augment: view size %d outside 1..%d", max_S, MAX_S);
    /* a padded line is S + 2 r <= 1.1 S floats, the taps <= S / 10 + 1 */
    const int line_floats = max_S + 2 * (max_S / 20), max_taps = max_S / 10 + 1;
    const size_t smem = sizeof(float) * ((size_t)max_taps + (size_t)WARPS * (size_t)line_floats);
    k_augment<<<(unsigned)njobs, SSL_CUDA_THREADS, smem, ssl_cuda_stream(c)>>>(src, jobs, out, line_floats, max_taps);
    SSL_CUDA_LAUNCHED();
}
