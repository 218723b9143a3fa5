/* The augmentation op's CPU kernel (see backend/augment.h): crop/resize, flip, colour jitter,
 * grayscale, blur, solarize and normalisation on planar float buffers. Arithmetic follows
 * torchvision 0.14's tensor kernels step by step (same formulas, float32), so results agree with it
 * to a few ulp; the loops are flat and branch-free so they vectorise. */
#include "framework/backend/augment.h"
#include "framework/backend/cpu/cpu.h"
#include "framework/core/check.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* torchvision's tensor rgb_to_grayscale weights (0.2989, not PIL's 0.299: we mirror the tensor
 * path because our images are float tensors after ToTensor). */
#define GRAY_R 0.2989f
#define GRAY_G 0.587f
#define GRAY_B 0.114f
/* RandomSolarize(threshold=128) on uint8 images, expressed on the ToTensor scale: every pixel that
 * was >= 128 before resampling is inverted, as with torchvision on uint8. */
#define SOLARIZE_T (128.0f / 255.0f)

/* ---- workspace -------------------------------------------------------------------------------- */

typedef struct {
    float *tmp;              /* (S, S) blur intermediate */
    float *line;             /* S + 2 * radius, one reflect-padded row */
    float *kern;             /* blur taps */
    int *xi0, *xi1;          /* (S) element offsets of the two source columns, flip applied */
    float *wx0, *wx1;        /* (S) their weights */
    int *yi0, *yi1;          /* (S) source rows */
    float *wy0, *wy1;        /* (S) their weights */
    float *rows;             /* (2, C <= 3, S) horizontally interpolated source rows */
} workspace;

/* Every part is a multiple of 16 floats so each starts on a 64-byte boundary of an aligned block. */
static size_t part(size_t floats) { return (floats + 15) & ~(size_t)15; }

size_t ssl_aug_workspace_bytes(int S)
{
    const size_t s = (size_t)S;
    /* radius = ((S / 10) / 2) <= S / 20, so a padded row fits in 2 S + 2; taps <= S + 1. */
    return sizeof(float) * (part(s * s) + part(2 * s + 2) + part(s + 1) + 8 * part(s) + part(6 * s));
}

static workspace carve(void *mem, int S)
{
    const size_t s = (size_t)S;
    float *f = mem;
    workspace w;
    w.tmp = f, f += part(s * s);
    w.line = f, f += part(2 * s + 2);
    w.kern = f, f += part(s + 1);
    w.xi0 = (int *)f, f += part(s);
    w.xi1 = (int *)f, f += part(s);
    w.wx0 = f, f += part(s);
    w.wx1 = f, f += part(s);
    w.yi0 = (int *)f, f += part(s);
    w.yi1 = (int *)f, f += part(s);
    w.wy0 = f, f += part(s);
    w.wy1 = f, f += part(s);
    w.rows = f;
    return w;
}

/* ---- crop + bilinear resize ------------------------------------------------------------------ */

/* PyTorch's upsample_bilinear2d index/weight computation (align_corners=False): source coordinate
 * (o + 0.5) * in / out - 0.5 clamped at 0, second tap clamped to the last pixel of the crop.
 * `reverse` folds a horizontal flip into the table (flip is a pure permutation of columns). */
static void linear_table(int in_size, int out_size, int offset, int stride, int reverse, int *i0,
                         int *i1, float *w0, float *w1)
{
    const float scale = (float)in_size / (float)out_size;
    for (int o = 0; o < out_size; o++) {
        float src = (float)((double)scale * ((double)o + 0.5) - 0.5);
        if (src < 0.0f) src = 0.0f;
        const int x0 = (int)src;
        const int x1 = x0 + (x0 < in_size - 1 ? 1 : 0);
        const float l1 = fminf(fmaxf(src - (float)x0, 0.0f), 1.0f);
        const int d = reverse ? out_size - 1 - o : o;
        i0[d] = (offset + x0) * stride;
        i1[d] = (offset + x1) * stride;
        w0[d] = 1.0f - l1;
        w1[d] = l1;
    }
}

/* One source row (absolute row y) interpolated horizontally: dst (C, S), raw 0..255 values. */
static void horizontal(const uint8_t *img, size_t row_bytes, int y, int C, int S, const workspace *w,
                       float *dst)
{
    for (int c = 0; c < C; c++) {
        const uint8_t *r = img + (size_t)y * row_bytes + c;
        float *restrict d = dst + (size_t)c * S;
        for (int ox = 0; ox < S; ox++)
            d[ox] = (float)r[w->xi0[ox]] * w->wx0[ox] + (float)r[w->xi1[ox]] * w->wx1[ox];
    }
}

/* out (C, S, S) in [0, 1]. Separable, in PyTorch's order (width taps, then height taps). Source
 * rows are interpolated once into a two-row cache as the output rows walk down, so upsampling
 * gathers each crop row once and the vertical blend is a plain vector loop. Interpolates the raw
 * 0..255 values and divides by 255 once: ToTensor-then-interpolate up to one rounding, and exact
 * whenever the crop is not resampled. */
static void crop_resize(const uint8_t *img, int W, int C, const ssl_aug_job *p, int S, const workspace *w,
                        float *out)
{
    linear_table(p->crop_w, S, p->crop_x, C, p->flip, w->xi0, w->xi1, w->wx0, w->wx1);
    linear_table(p->crop_h, S, p->crop_y, 1, 0, w->yi0, w->yi1, w->wy0, w->wy1);
    const size_t row_bytes = (size_t)W * (size_t)C, plane = (size_t)S * S;
    float *slot[2] = {w->rows, w->rows + (size_t)C * S};
    int cached[2] = {-1, -1};
    for (int oy = 0; oy < S; oy++) {
        const int y[2] = {w->yi0[oy], w->yi1[oy]};
        const float *src[2];
        for (int k = 0; k < 2; k++) {
            const int hit = cached[0] == y[k] ? 0 : (cached[1] == y[k] ? 1 : -1);
            if (hit >= 0) {
                src[k] = slot[hit];
                continue;
            }
            /* Evict the slot that does not hold the other row this output row needs. */
            const int e = cached[0] == y[1 - k] ? 1 : 0;
            horizontal(img, row_bytes, y[k], C, S, w, slot[e]);
            cached[e] = y[k];
            src[k] = slot[e];
        }
        const float a = w->wy0[oy], b = w->wy1[oy];
        for (int c = 0; c < C; c++) {
            const float *restrict t0 = src[0] + (size_t)c * S, *restrict t1 = src[1] + (size_t)c * S;
            float *restrict d = out + (size_t)c * plane + (size_t)oy * S;
#pragma omp simd
            for (int ox = 0; ox < S; ox++) d[ox] = (t0[ox] * a + t1[ox] * b) / 255.0f;
        }
    }
}

/* ---- colour ------------------------------------------------------------------------------------ */

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }
static inline float gray(float r, float g, float b) { return GRAY_R * r + GRAY_G * g + GRAY_B * b; }
/* torchvision's _blend computes (1.0 - ratio) in double and multiplies in float. */
static inline float one_minus(float f) { return (float)(1.0 - (double)f); }

static void brightness(float *restrict x, size_t n, float f)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] = clamp01(f * x[i]);
}

static void contrast(float *restrict x, int C, size_t n, float f)
{
    double sum = 0.0;
    if (C == 3) {
        const float *r = x, *g = x + n, *b = x + 2 * n;
#pragma omp simd reduction(+ : sum)
        for (size_t i = 0; i < n; i++) sum += gray(r[i], g[i], b[i]);
    } else {
#pragma omp simd reduction(+ : sum)
        for (size_t i = 0; i < n; i++) sum += x[i];
    }
    const float mean = (float)(sum / (double)n), g = one_minus(f) * mean;
    const size_t all = (size_t)C * n;
#pragma omp simd
    for (size_t i = 0; i < all; i++) x[i] = clamp01(f * x[i] + g);
}

static void saturation(float *restrict x, size_t n, float f)
{
    float *restrict r = x, *restrict g = x + n, *restrict b = x + 2 * n;
    const float h = one_minus(f);
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const float l = h * gray(r[i], g[i], b[i]);
        r[i] = clamp01(f * r[i] + l);
        g[i] = clamp01(f * g[i] + l);
        b[i] = clamp01(f * b[i] + l);
    }
}

/* c ? a : b on the bit patterns. GCC (default -ftrapping-math) sinks a float operation that only
 * one arm of a ?: uses into a branch and then refuses to vectorise the loop; an integer select
 * keeps every float operation unconditional. Bit-identical to ?: on the values. */
static inline float sel(int c, float a, float b)
{
    uint32_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    const uint32_t m = (uint32_t)0 - (uint32_t)(c != 0), r = (ua & m) | (ub & ~m);
    float o;
    memcpy(&o, &r, sizeof o);
    return o;
}

/* floorf for |x| < 2^31, in a form GCC vectorises (it does not vectorise floorf itself unless
 * -fno-trapping-math). Exact: truncation, then one step down for negative non-integers. */
static inline float floor_small(float x)
{
    const float t = (float)(int32_t)x;
    return sel(t > x, t - 1.0f, t);
}

/* torchvision's _rgb2hsv, hue shift modulo 1, _hsv2rgb, with its masks written as selects. Every
 * arithmetic result is computed unconditionally and then selected (a grey pixel's 0/0 is discarded). */
static void hue(float *restrict x, size_t n, float f)
{
    float *restrict R = x, *restrict G = x + n, *restrict B = x + 2 * n;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const float r = R[i], g = G[i], b = B[i];
        const float mx = sel(r > g, r, g), mn = sel(r < g, r, g);
        const float maxc = sel(mx > b, mx, b), minc = sel(mn < b, mn, b);
        const int grey = maxc == minc; /* torchvision: s = 0, h = 0 */
        const float cr = maxc - minc;
        const float s = sel(grey, 0.0f, cr / maxc);
        const float rc = (maxc - r) / cr, gc = (maxc - g) / cr, bc = (maxc - b) / cr;
        const float hr = bc - gc, hg = 2.0f + rc - bc, hb = 4.0f + gc - rc;
        const float hh = sel(grey, 0.0f, sel(maxc == r, hr, sel(maxc == g, hg, hb)));
        const float h6th = hh / 6.0f + 1.0f;          /* in [5/6, 11/6] */
        const float h0 = sel(h6th >= 1.0f, h6th - 1.0f, h6th); /* fmod(., 1) */
        const float hs = h0 + f;
        const float h = hs - floor_small(hs); /* Python-style % 1.0 */
        const float v = maxc;
        const float h6 = h * 6.0f, fi = floor_small(h6), fr = h6 - fi;
        const float pv = v * (1.0f - s), qv = v * (1.0f - s * fr), tv = v * (1.0f - s * (1.0f - fr));
        const float p = sel(pv < 0.0f, 0.0f, sel(pv > 1.0f, 1.0f, pv));
        const float q = sel(qv < 0.0f, 0.0f, sel(qv > 1.0f, 1.0f, qv));
        const float t = sel(tv < 0.0f, 0.0f, sel(tv > 1.0f, 1.0f, tv));
        const float sec = sel(fi >= 6.0f, fi - 6.0f, fi); /* i % 6, for h * 6 rounding up to 6 */
        /* Sector table (r, g, b): 0 (v,t,p) 1 (q,v,p) 2 (p,v,t) 3 (p,q,v) 4 (t,p,v) 5 (v,p,q). */
        const int s0 = sec == 0.0f, s1 = sec == 1.0f, s2 = sec == 2.0f, s3 = sec == 3.0f,
                  s4 = sec == 4.0f, s5 = sec == 5.0f;
        R[i] = sel(s0 | s5, v, sel(s1, q, sel(s4, t, p)));
        G[i] = sel(s1 | s2, v, sel(s0, t, sel(s3, q, p)));
        B[i] = sel(s3 | s4, v, sel(s2, t, sel(s5, q, p)));
    }
}

static void grayscale(float *restrict x, size_t n)
{
    float *restrict r = x, *restrict g = x + n, *restrict b = x + 2 * n;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const float l = gray(r[i], g[i], b[i]);
        r[i] = l;
        g[i] = l;
        b[i] = l;
    }
}

/* ---- blur, solarize, normalise ------------------------------------------------------------- */

static inline int reflect(int i, int S) { return i < 0 ? -i : (i >= S ? 2 * (S - 1) - i : i); }

/* torchvision gaussian_blur: 1-D kernel exp(-0.5 (x / sigma)^2) normalised, reflect padding. The
 * 2-D kernel is an outer product, so two 1-D passes give the same result up to rounding. */
static void blur(float *x, int C, int S, float sigma, const workspace *w)
{
    const int k = ssl_aug_blur_taps(S), r = k / 2;
    if (r == 0 || r >= S) return; /* 1 tap is the identity; reflect needs r < S */
    float sum = 0.0f;
    for (int t = 0; t < k; t++) {
        const float z = (float)(t - r) / sigma;
        w->kern[t] = expf(-0.5f * (z * z));
        sum += w->kern[t];
    }
    for (int t = 0; t < k; t++) w->kern[t] /= sum;
    const float *kern = w->kern;
    for (int c = 0; c < C; c++) {
        float *plane = x + (size_t)c * S * S;
        for (int y = 0; y < S; y++) {
            const float *src = plane + (size_t)y * S;
            float *restrict line = w->line;
            memcpy(line + r, src, (size_t)S * sizeof(float));
            for (int m = 1; m <= r; m++) {
                line[r - m] = src[m];
                line[r + S - 1 + m] = src[S - 1 - m];
            }
            float *restrict o = w->tmp + (size_t)y * S;
#pragma omp simd
            for (int i = 0; i < S; i++) o[i] = kern[0] * line[i];
            for (int t = 1; t < k; t++) {
                const float kt = kern[t];
#pragma omp simd
                for (int i = 0; i < S; i++) o[i] += kt * line[i + t];
            }
        }
        for (int y = 0; y < S; y++) {
            float *restrict o = plane + (size_t)y * S;
            const float *restrict s0 = w->tmp + (size_t)reflect(y - r, S) * S;
#pragma omp simd
            for (int i = 0; i < S; i++) o[i] = kern[0] * s0[i];
            for (int t = 1; t < k; t++) {
                const float *restrict st = w->tmp + (size_t)reflect(y - r + t, S) * S;
                const float kt = kern[t];
#pragma omp simd
                for (int i = 0; i < S; i++) o[i] += kt * st[i];
            }
        }
    }
}

static void solarize(float *restrict x, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] = sel(x[i] >= SOLARIZE_T, 1.0f - x[i], x[i]);
}

/* Normalize divides (as torchvision's sub_().div_()), so the identity pipeline is bit-exact. */
static void normalise(float *restrict x, size_t n, float mean, float std)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] = (x[i] - mean) / std;
}

/* ---- one view, and the op ---------------------------------------------------------------- */

void ssl_aug_view_cpu(const ssl_aug_job *p, const uint8_t *src, float *out, void *workspace_mem)
{
    const int S = p->S, C = p->C;
    SSL_ASSERT(C == 1 || C == 3);
    SSL_ASSERT(p->crop_y >= 0 && p->crop_x >= 0 && p->crop_h >= 1 && p->crop_w >= 1 &&
               p->crop_y + p->crop_h <= p->H && p->crop_x + p->crop_w <= p->W);
    const workspace w = carve(workspace_mem, S);
    const size_t n = (size_t)S * S;
    const uint8_t *image = src + p->src;
    out += p->dst;

    crop_resize(image, p->W, C, p, S, &w, out);
    if (p->jitter) {
        for (int k = 0; k < 4; k++) {
            switch (p->order[k]) {
            case 0:
                if (p->brightness != 1.0f) brightness(out, (size_t)C * n, p->brightness);
                break;
            case 1:
                if (p->contrast != 1.0f) contrast(out, C, n, p->contrast);
                break;
            case 2:
                if (C == 3 && p->saturation != 1.0f) saturation(out, n, p->saturation);
                break;
            default:
                /* hue 0 is skipped: the HSV round trip is not exact, and 0 means "disabled". */
                if (C == 3 && p->hue != 0.0f) hue(out, n, p->hue);
                break;
            }
        }
    }
    if (C == 3 && p->grayscale) grayscale(out, n);
    if (p->blur) blur(out, C, S, p->sigma, &w);
    if (p->solarize) solarize(out, (size_t)C * n);
    for (int c = 0; c < C; c++) normalise(out + (size_t)c * n, n, p->mean[c], p->std[c]);
}

/* Every job writes its own view from its own parameters, so the thread count changes no byte. */
void ssl_cpu_augment(ssl_ctx *c, int njobs, int max_S, const uint8_t *src, const ssl_aug_job *jobs, float *out)
{
    if (njobs <= 0) return;
    const size_t wsb = (ssl_aug_workspace_bytes(max_S) + 63) & ~(size_t)63;
    int nt = c->nthreads > 0 ? c->nthreads : 1;
    if (nt > njobs) nt = njobs;
    char *ws = ssl_ctx_workspace(c, wsb * (size_t)nt);
#pragma omp parallel num_threads(nt)
    {
        void *mine = ws + wsb * (size_t)omp_get_thread_num();
        /* dynamic: blur and hue are drawn per view, so jobs differ in cost */
#pragma omp for schedule(dynamic, 4)
        for (int j = 0; j < njobs; j++) {
            SSL_ASSERTF(jobs[j].S <= max_S, "augment job %d: size %d above the op's %d", j, jobs[j].S, max_S);
            ssl_aug_view_cpu(&jobs[j], src, out, mine);
        }
    }
}
