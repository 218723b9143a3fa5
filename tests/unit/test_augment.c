/* Augmentation pipeline (io/augment.h) and PNG grid (io/png_grid.h): determinism across threads,
 * batch positions and calls; exact identity / flip; bilinear values worked out by hand; colour ops
 * on known pixels; draw statistics; blur against a direct 2-D convolution; the PNG read back with
 * libpng. torchvision parity for explicit parameters is tests/ref/test_ref_augment.c. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/core/rng.h"
#include "io/augment.h"
#include "io/png_grid.h"

#include <math.h>
#include <omp.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void random_image(uint8_t *img, size_t n, uint64_t seed)
{
    ssl_rng r;
    ssl_rng_init(&r, seed, 7);
    for (size_t i = 0; i < n; i++) img[i] = (uint8_t)(ssl_rng_u32(&r) >> 24);
}

/* Every random transform off and a crop that is the whole (square) image. */
static void identity_config(ssl_augment_config *cfg, int C, int S)
{
    ssl_augment_config_default(cfg, C, S);
    cfg->crop_scale[0] = cfg->crop_scale[1] = 1.0f;
    cfg->crop_ratio[0] = cfg->crop_ratio[1] = 1.0f;
    cfg->flip_p = cfg->jitter_p = cfg->grayscale_p = cfg->blur_p = cfg->solarize_p = 0.0f;
}

/* Parameters that only crop (whole image unless changed by the caller). */
static ssl_augment_params plain_params(int H, int W)
{
    ssl_augment_params p;
    memset(&p, 0, sizeof p);
    p.crop_h = H, p.crop_w = W;
    p.brightness = p.contrast = p.saturation = 1.0f;
    for (int k = 0; k < 4; k++) p.order[k] = k;
    return p;
}

/* Raw [0, 1] output: normalisation with mean 0, std 1. */
static void unnormalised(ssl_augment_config *cfg, int C, int S)
{
    identity_config(cfg, C, S);
    for (int c = 0; c < 3; c++) cfg->mean[c] = 0.0f, cfg->std[c] = 1.0f;
}

static void apply(const ssl_augment_config *cfg, const ssl_augment_params *p, const uint8_t *img,
                  int H, int W, int C, float *out)
{
    void *ws = ssl_malloc(ssl_aug_workspace_bytes(cfg->out_size));
    ssl_augment_apply(cfg, p, img, H, W, C, out, ws);
    ssl_free(ws);
}

static void test_config(void)
{
    ssl_augment_config cfg;
    char err[256];
    for (int C = 1; C <= 3; C += 2) {
        ssl_augment_config_default(&cfg, C, 28);
        SSL_EXPECT(ssl_augment_config_check(&cfg, C, err, sizeof err) == 0, "defaults C=%d: %s", C, err);
        SSL_EXPECT(cfg.views == 2 && cfg.blur_p == 0.0f && fabsf(cfg.brightness - 0.4f) < 1e-6f,
                   "small-image defaults are SimCLR's CIFAR recipe");
    }
    ssl_augment_config_default(&cfg, 1, 28);
    SSL_EXPECT(cfg.mean[0] == 0.2860f && cfg.std[0] == 0.3530f, "Fashion-MNIST normalisation");
    ssl_augment_config_default(&cfg, 3, 224);
    SSL_EXPECT(cfg.blur_p == 0.5f && cfg.brightness == 0.8f && cfg.hue == 0.2f && cfg.mean[2] == 0.406f,
               "ImageNet defaults");
    SSL_EXPECT(ssl_aug_blur_taps(224) == 23 && ssl_aug_blur_taps(32) == 3 &&
                   ssl_aug_blur_taps(28) == 3 && ssl_aug_blur_taps(96) == 9 &&
                   ssl_aug_blur_taps(8) == 1,
               "SimCLR kernel size");

    static const char *bad[] = {"hue", "crop_scale", "flip_p", "std", "blur_sigma", "views"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ssl_augment_config_default(&cfg, 3, 224);
        switch (k) {
        case 0: cfg.hue = 0.6f; break;
        case 1: cfg.crop_scale[0] = 0.9f, cfg.crop_scale[1] = 0.5f; break;
        case 2: cfg.flip_p = NAN; break;
        case 3: cfg.std[2] = 0.0f; break;
        case 4: cfg.blur_sigma[0] = 0.0f; break;
        default: cfg.views = 0; break;
        }
        err[0] = 0;
        SSL_EXPECT(ssl_augment_config_check(&cfg, 3, err, sizeof err) != 0 && strstr(err, bad[k]),
                   "bad %s accepted or not named: '%s'", bad[k], err);
    }
    ssl_augment_config_default(&cfg, 3, 28);
    SSL_EXPECT(ssl_augment_config_check(&cfg, 2, err, sizeof err) != 0, "2 channels accepted");
}

static void test_identity_and_flip(void)
{
    for (int C = 1; C <= 3; C += 2) {
        const int S = C == 1 ? 28 : 32, n = 3;
        const size_t plane = (size_t)S * S, per = (size_t)C * plane;
        uint8_t *img = ssl_malloc((size_t)n * per);
        random_image(img, (size_t)n * per, 11 + (uint64_t)C);
        int64_t idx[3] = {5, 900, 77};
        ssl_augment_config cfg;
        identity_config(&cfg, C, S);
        float *out = ssl_malloc(2 * n * per * sizeof(float));
        float *want = ssl_malloc(n * per * sizeof(float));
        for (int s = 0; s < n; s++)
            for (int c = 0; c < C; c++)
                for (size_t i = 0; i < plane; i++)
                    want[(size_t)s * per + c * plane + i] =
                        ((float)img[(size_t)s * per + i * C + c] / 255.0f - cfg.mean[c]) / cfg.std[c];

        ssl_augment_batch(&cfg, 1, 0, img, n, S, S, C, idx, out);
        SSL_EXPECT(memcmp(out, want, n * per * sizeof(float)) == 0, "C=%d identity view 0 not exact", C);
        SSL_EXPECT(memcmp(out + n * per, want, n * per * sizeof(float)) == 0,
                   "C=%d identity view 1 not exact", C);

        cfg.flip_p = 1.0f;
        ssl_augment_batch(&cfg, 1, 0, img, n, S, S, C, idx, out);
        size_t bad = 0;
        for (int v = 0; v < 2; v++)
            for (int s = 0; s < n; s++)
                for (int c = 0; c < C; c++)
                    for (int y = 0; y < S; y++)
                        for (int x = 0; x < S; x++) {
                            const size_t o = (size_t)s * per + c * plane + (size_t)y * S;
                            bad += out[(size_t)v * n * per + o + x] != want[o + (S - 1 - x)];
                        }
        SSL_EXPECT(bad == 0, "C=%d flip_p=1: %zu pixels are not the mirror image", C, bad);
        ssl_free(want);
        ssl_free(out);
        ssl_free(img);
    }
}

/* Bilinear, align_corners=False: output o samples source (o + 0.5) * in / out - 0.5, clamped. */
static void test_resize(void)
{
    ssl_augment_config cfg;
    float out[3 * 40 * 40];

    /* Constant image: any crop and size stays constant. */
    {
        uint8_t img[30 * 26];
        memset(img, 77, sizeof img);
        unnormalised(&cfg, 1, 37);
        ssl_augment_params p = plain_params(30, 26);
        p.crop_y = 3, p.crop_x = 5, p.crop_h = 19, p.crop_w = 11;
        apply(&cfg, &p, img, 30, 26, 1, out);
        float maxdev = 0;
        for (int i = 0; i < 37 * 37; i++) maxdev = fmaxf(maxdev, fabsf(out[i] - 77.0f / 255.0f));
        SSL_EXPECT(maxdev < 1e-6f, "constant image not constant after resize: %g", (double)maxdev);
    }
    /* Horizontal ramp I[y][x][c] = 8 x + 50 c (RGB, checks the interleaving too). */
    {
        uint8_t img[20 * 20 * 3];
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 20; x++)
                for (int c = 0; c < 3; c++) img[(y * 20 + x) * 3 + c] = (uint8_t)(8 * x + 50 * c);
        /* Upsample 20 -> 40: source x = o / 2 - 0.25, so o = 5 reads 2.25 -> 18 (+50 c). */
        unnormalised(&cfg, 3, 40);
        ssl_augment_params p = plain_params(20, 20);
        apply(&cfg, &p, img, 20, 20, 3, out);
        const size_t pl = 40 * 40;
        SSL_EXPECT(fabsf(out[0 * pl + 7 * 40 + 5] - 18.0f / 255.0f) < 1e-6f, "ramp o=5: %g (want 18)",
                   (double)out[7 * 40 + 5] * 255);
        SSL_EXPECT(fabsf(out[2 * pl + 3 * 40 + 5] - 118.0f / 255.0f) < 1e-6f, "ramp c=2 o=5");
        SSL_EXPECT(out[0] == 0.0f && fabsf(out[39] - 152.0f / 255.0f) < 1e-6f, "ramp ends clamp");
        float worst = 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 40; y++)
                for (int o = 0; o < 40; o++) {
                    float src = fminf(fmaxf(o / 2.0f - 0.25f, 0.0f), 19.0f);
                    worst = fmaxf(worst, fabsf(out[c * pl + y * 40 + o] - (8 * src + 50 * c) / 255.0f));
                }
        SSL_EXPECT(worst < 1e-6f, "upsampled ramp is not a ramp: %g", (double)worst);

        /* Crop x in [4, 12) and downsample 8 -> 4: source 2 o + 0.5, value 8 (4 + 2 o + 0.5). */
        unnormalised(&cfg, 3, 4);
        p.crop_x = 4, p.crop_w = 8;
        apply(&cfg, &p, img, 20, 20, 3, out);
        for (int o = 0; o < 4; o++)
            SSL_EXPECT(fabsf(out[o] - 8.0f * (4.5f + 2 * o) / 255.0f) < 1e-6f, "crop+downsample o=%d: %g",
                       o, (double)out[o] * 255);
        SSL_EXPECT(fabsf(out[1] - 52.0f / 255.0f) < 1e-6f, "hand value 52 at o=1");
    }
    /* Vertical ramp I[y][x] = 9 y, crop rows [2, 12) to 5 rows: source 2 o + 0.5 within the crop. */
    {
        uint8_t img[16 * 6];
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 6; x++) img[y * 6 + x] = (uint8_t)(9 * y);
        unnormalised(&cfg, 1, 5);
        ssl_augment_params p = plain_params(16, 6);
        p.crop_y = 2, p.crop_h = 10;
        apply(&cfg, &p, img, 16, 6, 1, out);
        SSL_EXPECT(fabsf(out[1 * 5 + 3] - 40.5f / 255.0f) < 1e-6f, "vertical ramp row 1: %g (want 40.5)",
                   (double)out[5 + 3] * 255);
        for (int o = 0; o < 5; o++)
            SSL_EXPECT(fabsf(out[o * 5] - 9.0f * (2.5f + 2 * o) / 255.0f) < 1e-6f, "vertical o=%d", o);
    }
}

static void test_grayscale(void)
{
    enum { S = 16 };
    uint8_t img[S * S * 3];
    random_image(img, sizeof img, 3);
    ssl_augment_config cfg;
    unnormalised(&cfg, 3, S);
    cfg.views = 1;
    cfg.grayscale_p = 1.0f;
    float out[3 * S * S];
    int64_t idx = 12;
    ssl_augment_batch(&cfg, 9, 1, img, 1, S, S, 3, &idx, out);
    size_t unequal = 0;
    float worst = 0;
    for (int i = 0; i < S * S; i++) {
        unequal += out[i] != out[S * S + i] || out[i] != out[2 * S * S + i];
        const float want = (0.2989f * img[3 * i] + 0.587f * img[3 * i + 1] + 0.114f * img[3 * i + 2]) / 255.0f;
        worst = fmaxf(worst, fabsf(out[i] - want));
    }
    SSL_EXPECT(unequal == 0, "grayscale: %zu pixels with unequal channels", unequal);
    SSL_EXPECT(worst < 1e-6f, "grayscale is not the 601-2 luma: %g", (double)worst);

    /* One channel: grayscale is a no-op. */
    uint8_t g[S * S];
    random_image(g, sizeof g, 4);
    float a[S * S], b[S * S];
    identity_config(&cfg, 1, S);
    cfg.views = 1;
    ssl_augment_batch(&cfg, 9, 1, g, 1, S, S, 1, &idx, a);
    cfg.grayscale_p = 1.0f;
    ssl_augment_batch(&cfg, 9, 1, g, 1, S, S, 1, &idx, b);
    SSL_EXPECT(memcmp(a, b, sizeof a) == 0, "grayscale changed a 1-channel image");
}

static void test_jitter(void)
{
    ssl_augment_config cfg;
    /* 1 channel, 4 x 4: left half 0, right half 200 (mean 100 / 255), one pixel 100. */
    uint8_t img[16];
    for (int i = 0; i < 16; i++) img[i] = (i % 4) < 2 ? 0 : 200;
    img[0] = 100; /* mean now 106.25 / 255 */
    const float mean = 106.25f / 255.0f;
    float out[3 * 16];
    unnormalised(&cfg, 1, 4);
    ssl_augment_params p = plain_params(4, 4);
    p.jitter = 1;
    p.brightness = 1.5f;
    apply(&cfg, &p, img, 4, 4, 1, out);
    SSL_EXPECT(fabsf(out[0] - 150.0f / 255.0f) < 1e-6f, "brightness 1.5 on 100: %g", (double)out[0] * 255);
    SSL_EXPECT(out[2] == 1.0f && out[1] == 0.0f, "brightness clamps 300 to 1 and keeps 0");

    p.brightness = 1.0f, p.contrast = 0.5f;
    apply(&cfg, &p, img, 4, 4, 1, out);
    SSL_EXPECT(fabsf(out[2] - (0.5f * 200.0f / 255.0f + 0.5f * mean)) < 1e-6f, "contrast uses the image mean");
    SSL_EXPECT(fabsf(out[1] - 0.5f * mean) < 1e-6f, "contrast on 0");

    /* Order: contrast 0 then brightness 2 gives 2 mean; brightness first clamps, then the mean
     * of the clamped image. */
    p.brightness = 2.0f, p.contrast = 0.0f;
    const int cb[4] = {1, 0, 2, 3}, bc[4] = {0, 1, 2, 3};
    memcpy(p.order, cb, sizeof cb);
    apply(&cfg, &p, img, 4, 4, 1, out);
    SSL_EXPECT(fabsf(out[5] - 2 * mean) < 1e-6f, "contrast-then-brightness: %g", (double)out[5]);
    memcpy(p.order, bc, sizeof bc);
    apply(&cfg, &p, img, 4, 4, 1, out);
    const float clamped_mean = (200.0f / 255.0f + 7 * 0.0f + 8 * 1.0f) / 16.0f;
    SSL_EXPECT(fabsf(out[5] - clamped_mean) < 1e-6f, "brightness-then-contrast: %g (want %g)",
               (double)out[5], (double)clamped_mean);

    /* RGB: saturation 0 is grayscale; hue rotations of pure red. */
    uint8_t rgb[4 * 3];
    random_image(rgb, sizeof rgb, 5);
    unnormalised(&cfg, 3, 2);
    p = plain_params(2, 2);
    p.jitter = 1, p.saturation = 0.0f;
    apply(&cfg, &p, rgb, 2, 2, 3, out);
    for (int i = 0; i < 4; i++) {
        const float l = (0.2989f * rgb[3 * i] + 0.587f * rgb[3 * i + 1] + 0.114f * rgb[3 * i + 2]) / 255.0f;
        SSL_EXPECT(fabsf(out[i] - l) < 1e-6f && fabsf(out[4 + i] - l) < 1e-6f && fabsf(out[8 + i] - l) < 1e-6f,
                   "saturation 0 pixel %d is not gray", i);
    }
    const uint8_t red[4 * 3] = {255, 0, 0, 255, 0, 0, 255, 0, 0, 128, 0, 0};
    const struct {
        float hue, r, g, b;
    } rot[] = {{1.0f / 3, 0, 1, 0}, {-1.0f / 3, 0, 0, 1}, {0.5f, 0, 1, 1}, {1.0f / 6, 1, 1, 0}};
    for (size_t k = 0; k < sizeof rot / sizeof rot[0]; k++) {
        p.saturation = 1.0f, p.hue = rot[k].hue;
        apply(&cfg, &p, red, 2, 2, 3, out);
        SSL_EXPECT(fabsf(out[0] - rot[k].r) < 1e-5f && fabsf(out[4] - rot[k].g) < 1e-5f &&
                       fabsf(out[8] - rot[k].b) < 1e-5f,
                   "hue %+.3f of red gives (%g, %g, %g)", (double)rot[k].hue, (double)out[0],
                   (double)out[4], (double)out[8]);
        SSL_EXPECT(fabsf(out[3] - rot[k].r * 128 / 255.0f) < 1e-5f, "hue keeps value of dark red");
    }
}

static void test_solarize(void)
{
    enum { S = 16 };
    uint8_t img[S * S];
    for (int i = 0; i < S * S; i++) img[i] = (uint8_t)i; /* every value once */
    ssl_augment_config cfg;
    unnormalised(&cfg, 1, S);
    cfg.views = 1;
    cfg.solarize_p = 1.0f;
    float out[S * S];
    int64_t idx = 3;
    ssl_augment_batch(&cfg, 2, 0, img, 1, S, S, 1, &idx, out);
    size_t bad = 0;
    for (int v = 0; v < 256; v++) {
        const float want = v >= 128 ? (255 - v) / 255.0f : v / 255.0f;
        bad += v < 128 ? out[v] != want : fabsf(out[v] - want) > 1e-6f;
    }
    SSL_EXPECT(bad == 0, "solarize: %zu values wrong (128 -> %g, 127 -> %g)", bad, (double)out[128] * 255,
               (double)out[127] * 255);
}

/* torchvision RandomResizedCrop draws: crops inside the image, area fraction and aspect ratio in
 * range up to the +-0.5 px rounding of w and h, both ends of the range reached, coin flips at
 * their probabilities, every jitter order. */
static void test_draw_statistics(void)
{
    ssl_augment_config cfg;
    ssl_augment_config_default(&cfg, 3, 224);
    cfg.solarize_p = 0.3f;
    const int N = 20000;
    const int shapes[2][2] = {{28, 28}, {28, 44}};
    for (int sh = 0; sh < 2; sh++) {
        const int H = shapes[sh][0], W = shapes[sh][1];
        int outside = 0, off_scale = 0, off_ratio = 0, small = 0, large = 0, left = 0, right = 0;
        int wide = 0, tall = 0, flips = 0, jit = 0, gray = 0, blur = 0, sol = 0, bad_factor = 0, orders[24] = {0};
        double frac_sum = 0;
        for (int i = 0; i < N; i++) {
            ssl_augment_params p;
            ssl_augment_draw(&cfg, 42, 3, i, i & 1, H, W, 3, &p);
            outside += p.crop_y < 0 || p.crop_x < 0 || p.crop_h < 1 || p.crop_w < 1 ||
                       p.crop_y + p.crop_h > H || p.crop_x + p.crop_w > W;
            const double A = (double)H * W, h = p.crop_h, w = p.crop_w;
            const double lo = (h - 0.5) * (w - 0.5) / A, hi = (h + 0.5) * (w + 0.5) / A;
            off_scale += hi < cfg.crop_scale[0] || lo > cfg.crop_scale[1];
            off_ratio += (w + 0.5) / (h - 0.5) < cfg.crop_ratio[0] || (w - 0.5) / (h + 0.5) > cfg.crop_ratio[1];
            const double frac = h * w / A;
            frac_sum += frac;
            small += frac < 0.15, large += frac > (H == W ? 0.9 : 0.7); /* 28x44: w <= 4/3 h caps it at 0.85 */
            left += p.crop_x == 0, right += p.crop_x + p.crop_w == W;
            wide += p.crop_w > p.crop_h, tall += p.crop_w < p.crop_h;
            flips += p.flip, jit += p.jitter, gray += p.grayscale, blur += p.blur, sol += p.solarize;
            if (p.jitter) {
                bad_factor += p.brightness < 0.2f || p.brightness > 1.8f || p.contrast < 0.2f ||
                              p.contrast > 1.8f || p.saturation < 0.2f || p.saturation > 1.8f ||
                              p.hue < -0.2f || p.hue > 0.2f;
                int code = 0, used = 0;
                for (int k = 0; k < 4; k++) {
                    int rank = 0;
                    for (int m = 0; m < 4; m++) rank += !(used >> m & 1) && m < p.order[k];
                    used |= 1 << p.order[k];
                    code = code * (4 - k) + rank;
                }
                orders[code]++;
            }
            if (p.blur) bad_factor += p.sigma < 0.1f || p.sigma > 2.0f;
        }
        SSL_EXPECT(outside == 0, "%dx%d: %d crops outside the image", H, W, outside);
        SSL_EXPECT(off_scale == 0, "%dx%d: %d crop areas outside the scale range", H, W, off_scale);
        SSL_EXPECT(off_ratio == 0, "%dx%d: %d crop ratios outside the range", H, W, off_ratio);
        SSL_EXPECT(small > N / 50 && large > N / 50, "%dx%d: scale range not covered (%d small, %d large)",
                   H, W, small, large);
        /* log-uniform ratio on [3/4, 4/3] is symmetric under w <-> h on a square image (a uniform
         * ratio would give 57% wide crops). */
        if (H == W)
            SSL_EXPECT(fabs((double)(wide - tall) / (wide + tall)) < 0.03, "ratio not log-uniform: %d wide, %d tall",
                       wide, tall);
        SSL_EXPECT(left > 0 && right > 0, "%dx%d: crop positions do not reach both edges", H, W);
        /* Uniform scale in [0.08, 1] (mean 0.54) minus rejected large crops. */
        SSL_EXPECT(frac_sum / N > (H == W ? 0.4 : 0.3) && frac_sum / N < 0.6, "%dx%d: mean crop area %g", H, W, frac_sum / N);
        const struct {
            const char *what;
            int count;
            double p;
        } coins[] = {{"flip", flips, cfg.flip_p}, {"jitter", jit, cfg.jitter_p},
                     {"grayscale", gray, cfg.grayscale_p}, {"blur", blur, cfg.blur_p},
                     {"solarize", sol, cfg.solarize_p}};
        for (size_t k = 0; k < sizeof coins / sizeof coins[0]; k++) {
            const double sd = sqrt(coins[k].p * (1 - coins[k].p) / N);
            SSL_EXPECT(fabs((double)coins[k].count / N - coins[k].p) < 5 * sd + 1e-9, "%s frequency %g (p %g)",
                       coins[k].what, (double)coins[k].count / N, coins[k].p);
        }
        SSL_EXPECT(bad_factor == 0, "%d jitter factors or sigmas outside their ranges", bad_factor);
        int omin = N, omax = 0;
        for (int k = 0; k < 24; k++) omin = orders[k] < omin ? orders[k] : omin, omax = orders[k] > omax ? orders[k] : omax;
        SSL_EXPECT(omin > jit / 24 * 0.8 && omax < jit / 24 * 1.2, "jitter orders not uniform (%d..%d)", omin, omax);
    }

    /* Fallback: no crop with ratio in [2, 3] of scale 1 fits a square, so torchvision's centre crop
     * of width W and height round(W / 2). */
    ssl_augment_config_default(&cfg, 1, 28);
    cfg.crop_scale[0] = cfg.crop_scale[1] = 1.0f;
    cfg.crop_ratio[0] = 2.0f, cfg.crop_ratio[1] = 3.0f;
    ssl_augment_params p;
    ssl_augment_draw(&cfg, 1, 0, 0, 0, 28, 28, 1, &p);
    SSL_EXPECT(p.crop_h == 14 && p.crop_w == 28 && p.crop_y == 7 && p.crop_x == 0,
               "fallback crop (%d, %d, %d, %d)", p.crop_y, p.crop_x, p.crop_h, p.crop_w);
}

static int reflect(int i, int S) { return i < 0 ? -i : (i >= S ? 2 * (S - 1) - i : i); }

static void test_blur(void)
{
    enum { S = 64 }; /* 7 taps */
    ssl_augment_config cfg;
    unnormalised(&cfg, 1, S);
    const float sigma = 1.7f;
    ssl_augment_params p = plain_params(S, S);
    p.blur = 1, p.sigma = sigma;
    uint8_t img[S * S];
    float out[S * S], ref[S * S];

    memset(img, 201, sizeof img);
    apply(&cfg, &p, img, S, S, 1, out);
    float dev = 0;
    for (int i = 0; i < S * S; i++) dev = fmaxf(dev, fabsf(out[i] - 201.0f / 255.0f));
    SSL_EXPECT(dev < 1e-6f, "blur changed a constant image by %g", (double)dev);

    random_image(img, sizeof img, 8);
    apply(&cfg, &p, img, S, S, 1, out);
    /* Direct 2-D convolution in double with torchvision's kernel and reflect padding. */
    const int k = ssl_aug_blur_taps(S), r = k / 2;
    double kern[16], ksum = 0;
    for (int t = 0; t < k; t++) ksum += kern[t] = exp(-0.5 * ((t - r) / (double)sigma) * ((t - r) / (double)sigma));
    double m_in = 0, m_out = 0, v_in = 0, v_out = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double acc = 0;
            for (int a = 0; a < k; a++)
                for (int b = 0; b < k; b++)
                    acc += kern[a] * kern[b] * img[reflect(y + a - r, S) * S + reflect(x + b - r, S)];
            ref[y * S + x] = (float)(acc / (ksum * ksum) / 255.0);
            m_in += img[y * S + x] / 255.0, m_out += out[y * S + x];
        }
    m_in /= S * S, m_out /= S * S;
    for (int i = 0; i < S * S; i++) {
        v_in += (img[i] / 255.0 - m_in) * (img[i] / 255.0 - m_in);
        v_out += (out[i] - m_out) * (out[i] - m_out);
    }
    ssl_test_close("blur vs direct 2-D reflect-padded convolution", out, ref, S * S, 1e-6, 1e-5);
    SSL_EXPECT(fabs(m_out - m_in) < 2e-3, "blur moved the mean of noise: %g -> %g", m_in, m_out);
    SSL_EXPECT(v_out < 0.1 * v_in, "blur did not reduce noise variance enough: %g -> %g", v_in, v_out);
}

/* Same (seed, epoch, index, view) -> same bytes, whatever the thread count, batch position or
 * entry point; any key component changed -> different views. */
static void test_determinism(void)
{
    enum { N = 24, H = 32, C = 3 };
    const size_t per_img = (size_t)H * H * C;
    ssl_augment_config cfg;
    ssl_augment_config_default(&cfg, C, 32);
    cfg.blur_p = 0.5f, cfg.solarize_p = 0.2f; /* exercise every transform */
    const size_t per_view = (size_t)C * 32 * 32, total = 2 * N * per_view;
    uint8_t *img = ssl_malloc(N * per_img), *rev = ssl_malloc(N * per_img);
    random_image(img, N * per_img, 21);
    int64_t idx[N], ridx[N];
    for (int i = 0; i < N; i++) idx[i] = 1000 + 37 * i;
    for (int i = 0; i < N; i++) {
        memcpy(rev + i * per_img, img + (N - 1 - i) * per_img, per_img);
        ridx[i] = idx[N - 1 - i];
    }
    float *a = ssl_malloc(total * sizeof(float)), *b = ssl_malloc(total * sizeof(float));

    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    ssl_augment_batch(&cfg, 7, 2, img, N, H, H, C, idx, a);
    omp_set_num_threads(2);
    ssl_augment_batch(&cfg, 7, 2, img, N, H, H, C, idx, b);
    omp_set_num_threads(threads);
    SSL_EXPECT(memcmp(a, b, total * sizeof(float)) == 0, "1 thread and 2 threads differ");
    ssl_augment_batch(&cfg, 7, 2, img, N, H, H, C, idx, b);
    SSL_EXPECT(memcmp(a, b, total * sizeof(float)) == 0, "two identical calls differ");

    ssl_augment_batch(&cfg, 7, 2, rev, N, H, H, C, ridx, b);
    int moved = 0;
    for (int v = 0; v < 2; v++)
        for (int i = 0; i < N; i++)
            moved += memcmp(a + (v * N + i) * per_view, b + (v * N + N - 1 - i) * per_view,
                            per_view * sizeof(float)) != 0;
    SSL_EXPECT(moved == 0, "%d views depend on the position in the batch", moved);

    void *ws = ssl_malloc(ssl_aug_workspace_bytes(32));
    const size_t allocs = ssl_alloc_count();
    ssl_augment_one(&cfg, 7, 2, img + 5 * per_img, H, H, C, idx[5], 1, b, ws);
    SSL_EXPECT(ssl_alloc_count() == allocs, "ssl_augment_one allocated");
    SSL_EXPECT(memcmp(b, a + (N + 5) * per_view, per_view * sizeof(float)) == 0,
               "ssl_augment_one differs from the batch slot");
    ssl_free(ws);
    ssl_augment_view(&cfg, 7, 2, img, N, H, H, C, idx, 1, b);
    SSL_EXPECT(memcmp(b, a + N * per_view, N * per_view * sizeof(float)) == 0,
               "ssl_augment_view(view 1) differs from the batch's view 1");
    const size_t before = ssl_alloc_count();
    ssl_augment_batch(&cfg, 7, 2, img, N, H, H, C, idx, b);
    SSL_EXPECT(ssl_alloc_count() - before == 1, "batch made %zu allocations (want 1 workspace)",
               ssl_alloc_count() - before);

    int same_views = 0;
    for (int i = 0; i < N; i++)
        same_views += memcmp(a + i * per_view, a + (N + i) * per_view, per_view * sizeof(float)) == 0;
    SSL_EXPECT(same_views == 0, "%d samples have identical views 0 and 1", same_views);
    ssl_augment_batch(&cfg, 7, 3, img, N, H, H, C, idx, b);
    int same_epoch = 0;
    for (int i = 0; i < 2 * N; i++)
        same_epoch += memcmp(a + i * per_view, b + i * per_view, per_view * sizeof(float)) == 0;
    SSL_EXPECT(same_epoch == 0, "%d views unchanged by the epoch", same_epoch);
    ssl_augment_batch(&cfg, 8, 2, img, N, H, H, C, idx, b);
    int same_seed = 0;
    for (int i = 0; i < 2 * N; i++)
        same_seed += memcmp(a + i * per_view, b + i * per_view, per_view * sizeof(float)) == 0;
    SSL_EXPECT(same_seed == 0, "%d views unchanged by the seed", same_seed);

    /* Changing one probability must not move another transform's draws. */
    ssl_augment_params p0, p1;
    ssl_augment_draw(&cfg, 7, 2, 1234, 0, H, H, C, &p0);
    ssl_augment_config cfg2 = cfg;
    cfg2.flip_p = p0.flip ? 0.0f : 1.0f;
    cfg2.jitter_p = 1.0f;
    ssl_augment_draw(&cfg2, 7, 2, 1234, 0, H, H, C, &p1);
    SSL_EXPECT(p1.flip != p0.flip && p1.crop_x == p0.crop_x && p1.crop_h == p0.crop_h &&
                   p1.grayscale == p0.grayscale && p1.blur == p0.blur && p1.sigma == p0.sigma,
               "draws of one transform depend on another's probability");
    ssl_free(a);
    ssl_free(b);
    ssl_free(rev);
    ssl_free(img);
}

static void test_output_range(void)
{
    enum { N = 64, S = 28 };
    ssl_augment_config cfg;
    ssl_augment_config_default(&cfg, 1, S);
    cfg.blur_p = 0.5f, cfg.solarize_p = 0.2f;
    uint8_t *img = ssl_malloc(N * S * S);
    /* Fashion-MNIST-like: dark background, a brighter blob. */
    for (int i = 0; i < N; i++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                const int d2 = (y - 14) * (y - 14) + (x - 14) * (x - 14);
                img[(i * S + y) * S + x] = (uint8_t)(d2 < 60 + i ? 120 + (x * 13 + y * 7 + i) % 136 : (x + y) % 9);
            }
    int64_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = i;
    const size_t total = 2 * (size_t)N * S * S;
    float *out = ssl_malloc(total * sizeof(float));
    ssl_augment_batch(&cfg, 3, 0, img, N, S, S, 1, idx, out);
    const float lo = (0.0f - cfg.mean[0]) / cfg.std[0] - 1e-5f, hi = (1.0f - cfg.mean[0]) / cfg.std[0] + 1e-5f;
    size_t bad = 0;
    double mean = 0, var = 0;
    for (size_t i = 0; i < total; i++) {
        bad += !isfinite(out[i]) || out[i] < lo || out[i] > hi;
        mean += out[i];
    }
    mean /= (double)total;
    for (size_t i = 0; i < total; i++) var += (out[i] - mean) * (out[i] - mean);
    const double sd = sqrt(var / (double)total);
    SSL_EXPECT(bad == 0, "%zu outputs non-finite or outside [%g, %g]", bad, (double)lo, (double)hi);
    SSL_EXPECT(isfinite(mean) && mean > lo && mean < hi && sd > 0.1 && sd < 3.0, "output mean %g sd %g", mean, sd);
    ssl_free(out);
    ssl_free(img);
}

static void test_png(void)
{
    char dir[] = "/tmp/ssl_aug_png_XXXXXX";
    SSL_EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    for (int C = 1; C <= 3; C += 2) {
        enum { N = 5, S = 8, COLS = 3 };
        float views[N * 3 * S * S];
        for (int i = 0; i < N * C * S * S; i++) views[i] = (float)(i % 17) / 8.0f - 1.0f;
        views[0] = NAN; /* written as 0 */
        const float mean[3] = {0.5f, 0.4f, 0.3f}, std[3] = {0.25f, 0.2f, 0.3f};
        char path[256], err[256];
        snprintf(path, sizeof path, "%s/grid%d.png", dir, C);
        SSL_EXPECT(ssl_png_write_grid(path, views, N, C, S, COLS, mean, std, err, sizeof err) == 0, "%s", err);

        png_image im;
        memset(&im, 0, sizeof im);
        im.version = PNG_IMAGE_VERSION;
        SSL_EXPECT(png_image_begin_read_from_file(&im, path), "libpng cannot open %s: %s", path, im.message);
        const unsigned want_w = COLS * (S + 2) + 2, want_h = 2 * (S + 2) + 2;
        SSL_EXPECT(im.width == want_w && im.height == want_h, "C=%d: %ux%u (want %ux%u)", C, im.width,
                   im.height, want_w, want_h);
        SSL_EXPECT((C == 1) == !(im.format & PNG_FORMAT_FLAG_COLOR), "C=%d: colour type", C);
        if (im.width == want_w && im.height == want_h) {
            im.format = C == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
            uint8_t px[64 * 64 * 3];
            SSL_EXPECT(png_image_finish_read(&im, NULL, px, 0, NULL), "read pixels: %s", im.message);
            const size_t stride = (size_t)want_w * C;
            SSL_EXPECT(px[0] == 255 && px[stride + 1] == 255, "border is white");
            /* Image 4 sits at row 1, column 1: top-left pixel at (2 + 10, 2 + 10). */
            for (int c = 0; c < C; c++) {
                const float x = views[((4 * C + c) * S + 3) * S + 5];
                float v = x * std[c] + mean[c];
                v = v < 0 ? 0 : (v > 1 ? 1 : v);
                const int want = (int)(v * 255.0f + 0.5f);
                const int got = px[(size_t)(12 + 3) * stride + (size_t)(12 + 5) * C + c];
                SSL_EXPECT(got == want, "C=%d c=%d: pixel %d (want %d)", C, c, got, want);
            }
            SSL_EXPECT(px[2 * stride + 2 * C] == 0, "NaN written as 0");
        }
        png_image_free(&im);
        unlink(path);
    }
    char path[300], err[256] = "";
    snprintf(path, sizeof path, "%s/missing/grid.png", dir);
    float v[4] = {0};
    SSL_EXPECT(ssl_png_write_grid(path, v, 1, 1, 2, 1, NULL, NULL, err, sizeof err) != 0 && strstr(err, path),
               "unwritable path not reported: '%s'", err);
    rmdir(dir);
}

int main(void)
{
    test_config();
    test_identity_and_flip();
    test_resize();
    test_grayscale();
    test_jitter();
    test_solarize();
    test_draw_statistics();
    test_blur();
    test_determinism();
    test_output_range();
    test_png();
    return ssl_test_exit();
}
