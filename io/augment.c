/* SimCLR augmentation pipeline (see augment.h): parameter draws from Philox, then crop/resize,
 * flip, colour jitter, grayscale, blur, solarize and normalisation on planar float buffers.
 * The pixel work is the augmentation op's CPU kernel (framework/backend/cpu/augment.c). */
#include "io/augment.h"

#include "framework/core/check.h"
#include "framework/core/rng.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

/* Second counter word of every augmentation draw: keeps these streams apart from any other user
 * of Philox that happens to derive the same key. */
#define AUG_TAG 0x41554731u
#define CROP_ATTEMPTS 10

/* Counter slots (first counter word). Each transform owns its slots, so its draws do not depend on
 * which other transforms are enabled or how many crop attempts were rejected. */
enum {
    SLOT_CROP = 0,                    /* CROP_ATTEMPTS slots: scale, log-ratio, i, j */
    SLOT_FLAGS = SLOT_CROP + CROP_ATTEMPTS, /* flip, jitter, grayscale, blur coin flips */
    SLOT_JITTER,                      /* brightness, contrast, saturation, hue factors */
    SLOT_MISC,                        /* 3 permutation draws, solarize coin flip */
    SLOT_BLUR                         /* sigma */
};

void ssl_augment_config_default(ssl_augment_config *cfg, int channels, int out_size)
{
    memset(cfg, 0, sizeof *cfg);
    /* The official SimCLR README trains CIFAR-10 (32 px) with colour strength 0.5 and no blur and
     * ImageNet (224 px) with strength 1.0 and blur; 64 px separates small-image datasets. */
    const int small = out_size <= 64;
    const float s = small ? 0.5f : 1.0f;
    cfg->views = 2;
    cfg->out_size = out_size;
    cfg->crop_scale[0] = 0.08f;
    cfg->crop_scale[1] = 1.0f;
    cfg->crop_ratio[0] = 3.0f / 4.0f;
    cfg->crop_ratio[1] = 4.0f / 3.0f;
    cfg->flip_p = 0.5f;
    cfg->jitter_p = 0.8f;
    cfg->brightness = 0.8f * s;
    cfg->contrast = 0.8f * s;
    cfg->saturation = 0.8f * s;
    cfg->hue = 0.2f * s;
    cfg->grayscale_p = 0.2f;
    cfg->blur_p = small ? 0.0f : 0.5f;
    cfg->blur_sigma[0] = 0.1f;
    cfg->blur_sigma[1] = 2.0f;
    cfg->solarize_p = 0.0f;
    if (channels == 1) {
        cfg->mean[0] = 0.2860f; /* Fashion-MNIST training set */
        cfg->std[0] = 0.3530f;
        cfg->mean[1] = cfg->mean[2] = cfg->mean[0];
        cfg->std[1] = cfg->std[2] = cfg->std[0];
    } else {
        const float m[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
        memcpy(cfg->mean, m, sizeof m);
        memcpy(cfg->std, sd, sizeof sd);
    }
}

int ssl_augment_config_check(const ssl_augment_config *c, int C, char *err, size_t errlen)
{
#define BAD(...)                                                                               \
    do {                                                                                       \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__);                                 \
        return -1;                                                                             \
    } while (0)
#define RANGE_OK(a) (isfinite((a)[0]) && isfinite((a)[1]) && (a)[0] > 0 && (a)[0] <= (a)[1])
#define PROB(name)                                                                             \
    if (!(c->name >= 0.0f && c->name <= 1.0f)) BAD(#name " must be in [0, 1] (got %g)", (double)c->name)
#define FACTOR(name)                                                                           \
    if (!(c->name >= 0.0f && isfinite(c->name))) BAD(#name " must be >= 0 (got %g)", (double)c->name)

    if (C != 1 && C != 3) BAD("images must have 1 or 3 channels (got %d)", C);
    if (c->views < 1) BAD("views must be >= 1 (got %d)", c->views);
    if (c->out_size < 1) BAD("out_size must be >= 1 (got %d)", c->out_size);
    if (!RANGE_OK(c->crop_scale))
        BAD("crop_scale must satisfy 0 < lo <= hi (got [%g, %g])", (double)c->crop_scale[0],
            (double)c->crop_scale[1]);
    if (!RANGE_OK(c->crop_ratio))
        BAD("crop_ratio must satisfy 0 < lo <= hi (got [%g, %g])", (double)c->crop_ratio[0],
            (double)c->crop_ratio[1]);
    PROB(flip_p);
    PROB(jitter_p);
    PROB(grayscale_p);
    PROB(blur_p);
    PROB(solarize_p);
    FACTOR(brightness);
    FACTOR(contrast);
    FACTOR(saturation);
    if (!(c->hue >= 0.0f && c->hue <= 0.5f)) BAD("hue must be in [0, 0.5] (got %g)", (double)c->hue);
    if (c->blur_p > 0 && !RANGE_OK(c->blur_sigma))
        BAD("blur_sigma must satisfy 0 < lo <= hi (got [%g, %g])", (double)c->blur_sigma[0],
            (double)c->blur_sigma[1]);
    for (int ch = 0; ch < C; ch++) {
        if (!isfinite(c->mean[ch])) BAD("mean[%d] is not finite", ch);
        if (!(c->std[ch] > 0 && isfinite(c->std[ch])))
            BAD("std[%d] must be > 0 (got %g)", ch, (double)c->std[ch]);
    }
    return 0;
#undef BAD
#undef RANGE_OK
#undef PROB
#undef FACTOR
}


/* ---- parameter draws ------------------------------------------------------------------------ */

static void draw4(uint64_t key, int view, uint32_t slot, uint32_t u[4])
{
    ssl_philox_ctr c = {{slot, AUG_TAG, (uint32_t)view, 0}};
    c = ssl_philox(key, c);
    memcpy(u, c.v, sizeof c.v);
}

/* [0, 1) with 24 bits, the resolution of a float in that range. */
static float unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }
static float uniform(uint32_t x, float lo, float hi) { return lo + (hi - lo) * unit(x); }
/* Integer in [0, n) by multiply-shift: bias below n / 2^32, irrelevant for image sizes. */
static int below(uint32_t x, int n) { return (int)(((uint64_t)x * (uint64_t)n) >> 32); }

/* torchvision RandomResizedCrop.get_params: 10 attempts, then a centre crop of the whole image
 * clipped to the ratio range. Python's round() is half-to-even, as nearbyint in the default mode. */
static void draw_crop(const ssl_augment_config *cfg, uint64_t key, int view, int H, int W,
                      ssl_augment_params *p)
{
    const double area = (double)H * (double)W;
    const float lr0 = logf(cfg->crop_ratio[0]), lr1 = logf(cfg->crop_ratio[1]);
    for (int a = 0; a < CROP_ATTEMPTS; a++) {
        uint32_t u[4];
        draw4(key, view, SLOT_CROP + (uint32_t)a, u);
        const double target = area * (double)uniform(u[0], cfg->crop_scale[0], cfg->crop_scale[1]);
        const double ar = (double)expf(uniform(u[1], lr0, lr1));
        const double w = nearbyint(sqrt(target * ar)), h = nearbyint(sqrt(target / ar));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            p->crop_w = (int)w;
            p->crop_h = (int)h;
            p->crop_y = below(u[2], H - p->crop_h + 1);
            p->crop_x = below(u[3], W - p->crop_w + 1);
            return;
        }
    }
    const double in_ratio = (double)W / (double)H;
    const double rmin = cfg->crop_ratio[0], rmax = cfg->crop_ratio[1];
    int w = W, h = H;
    if (in_ratio < rmin) {
        h = (int)nearbyint(w / rmin);
    } else if (in_ratio > rmax) {
        w = (int)nearbyint(h * rmax);
    }
    /* Rounding can overshoot by one pixel only in degenerate ratios; keep the window inside. */
    if (h < 1) h = 1;
    if (h > H) h = H;
    if (w < 1) w = 1;
    if (w > W) w = W;
    p->crop_h = h;
    p->crop_w = w;
    p->crop_y = (H - h) / 2;
    p->crop_x = (W - w) / 2;
}

void ssl_augment_draw(const ssl_augment_config *cfg, uint64_t seed, int64_t epoch,
                      int64_t sample_index, int view, int H, int W, int C, ssl_augment_params *p)
{
    SSL_ASSERT(H > 0 && W > 0);
    const uint64_t key = ssl_rng_hash(ssl_rng_hash(seed, (uint64_t)epoch), (uint64_t)sample_index);
    memset(p, 0, sizeof *p);
    draw_crop(cfg, key, view, H, W, p);

    uint32_t f[4], j[4], m[4], b[4];
    draw4(key, view, SLOT_FLAGS, f);
    draw4(key, view, SLOT_JITTER, j);
    draw4(key, view, SLOT_MISC, m);
    draw4(key, view, SLOT_BLUR, b);

    p->flip = unit(f[0]) < cfg->flip_p;
    p->brightness = p->contrast = p->saturation = 1.0f;
    p->hue = 0.0f;
    for (int k = 0; k < 4; k++) p->order[k] = k;
    p->jitter = unit(f[1]) < cfg->jitter_p;
    if (p->jitter) {
        /* torchvision randperm(4) order; Fisher-Yates with one draw per position. */
        for (int k = 3; k > 0; k--) {
            const int r = below(m[3 - k], k + 1), t = p->order[k];
            p->order[k] = p->order[r];
            p->order[r] = t;
        }
        if (cfg->brightness > 0)
            p->brightness = uniform(j[0], fmaxf(0.0f, 1.0f - cfg->brightness), 1.0f + cfg->brightness);
        if (cfg->contrast > 0)
            p->contrast = uniform(j[1], fmaxf(0.0f, 1.0f - cfg->contrast), 1.0f + cfg->contrast);
        /* torchvision leaves a 1-channel image unchanged under saturation and hue; recording the
         * identity factor says so in the parameters too. */
        if (cfg->saturation > 0 && C == 3)
            p->saturation = uniform(j[2], fmaxf(0.0f, 1.0f - cfg->saturation), 1.0f + cfg->saturation);
        if (cfg->hue > 0 && C == 3) p->hue = uniform(j[3], -cfg->hue, cfg->hue);
    }
    p->grayscale = C == 3 && unit(f[2]) < cfg->grayscale_p;
    p->blur = unit(f[3]) < cfg->blur_p;
    p->sigma = p->blur ? uniform(b[0], cfg->blur_sigma[0], cfg->blur_sigma[1]) : 0.0f;
    p->solarize = unit(m[3]) < cfg->solarize_p;
}

/* ---- pipeline ---------------------------------------------------------------------------- */

void ssl_augment_job(const ssl_augment_config *cfg, const ssl_augment_params *p, int H, int W, int C,
                     ssl_aug_job *job)
{
    *job = (ssl_aug_job){.H = H, .W = W, .C = C, .S = cfg->out_size, .crop_y = p->crop_y, .crop_x = p->crop_x,
                         .crop_h = p->crop_h, .crop_w = p->crop_w, .flip = p->flip, .jitter = p->jitter,
                         .grayscale = p->grayscale, .blur = p->blur, .solarize = p->solarize,
                         .brightness = p->brightness, .contrast = p->contrast, .saturation = p->saturation,
                         .hue = p->hue, .sigma = p->sigma};
    for (int k = 0; k < 4; k++) job->order[k] = p->order[k];
    for (int c = 0; c < C && c < 3; c++) job->mean[c] = cfg->mean[c], job->std[c] = cfg->std[c];
}

void ssl_augment_apply(const ssl_augment_config *cfg, const ssl_augment_params *p,
                       const uint8_t *image, int H, int W, int C, float *out, void *workspace_mem)
{
    ssl_aug_job job;
    ssl_augment_job(cfg, p, H, W, C, &job);
    ssl_aug_view_cpu(&job, image, out, workspace_mem);
}

void ssl_augment_one(const ssl_augment_config *cfg, uint64_t seed, int64_t epoch,
                     const uint8_t *image, int H, int W, int C, int64_t sample_index, int view,
                     float *out, void *workspace_mem)
{
    ssl_augment_params p;
    ssl_augment_draw(cfg, seed, epoch, sample_index, view, H, W, C, &p);
    ssl_augment_apply(cfg, &p, image, H, W, C, out, workspace_mem);
}

/* Views [view0, view0 + nviews) of a batch into out (nviews, n, C, S, S). Every item is computed
 * from its own key and written to its own slot, so the thread count cannot change any byte. */
static void run(const ssl_augment_config *cfg, uint64_t seed, int64_t epoch, const uint8_t *images,
                int n, int H, int W, int C, const int64_t *sample_index, int view0, int nviews,
                float *out)
{
    char err[256];
    SSL_ASSERTF(ssl_augment_config_check(cfg, C, err, sizeof err) == 0, "augment config: %s", err);
    SSL_ASSERT(n >= 0 && H > 0 && W > 0);
    if (n == 0) return;
    SSL_ASSERT(images && sample_index && out);
    const int S = cfg->out_size;
    const size_t img_bytes = (size_t)H * W * C, view_floats = (size_t)C * S * S;
    const size_t wsb = (ssl_aug_workspace_bytes(S) + 63) & ~(size_t)63;
    const long total = (long)n * nviews;
    int nt = omp_get_max_threads();
    if (nt > total) nt = (int)total;
    char *ws = ssl_malloc(wsb * (size_t)nt);
#pragma omp parallel num_threads(nt)
    {
        void *mine = ws + wsb * (size_t)omp_get_thread_num();
        /* dynamic: blur and hue are drawn per view, so items differ in cost. */
#pragma omp for schedule(dynamic, 4)
        for (long t = 0; t < total; t++) {
            const int v = (int)(t / n), s = (int)(t % n);
            ssl_augment_one(cfg, seed, epoch, images + (size_t)s * img_bytes, H, W, C,
                            sample_index[s], view0 + v, out + ((size_t)v * n + s) * view_floats,
                            mine);
        }
    }
    ssl_free(ws);
}

void ssl_augment_view(const ssl_augment_config *cfg, uint64_t seed, int64_t epoch,
                      const uint8_t *images, int n, int H, int W, int C,
                      const int64_t *sample_index, int view, float *out)
{
    run(cfg, seed, epoch, images, n, H, W, C, sample_index, view, 1, out);
}

void ssl_augment_batch(const ssl_augment_config *cfg, uint64_t seed, int64_t epoch,
                       const uint8_t *images, int n, int H, int W, int C,
                       const int64_t *sample_index, float *out)
{
    run(cfg, seed, epoch, images, n, H, W, C, sample_index, 0, cfg->views, out);
}
