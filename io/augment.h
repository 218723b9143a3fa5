/* SimCLR data augmentation: uint8 HWC images (C = 1 or 3) to normalised float NCHW views.
 * Every random choice comes from Philox keyed by (seed, epoch, global sample index, view id), so a
 * sample's views are the same bytes whatever the thread count, batch composition or world size.
 * Transforms follow torchvision 0.14 applied to ToTensor() output (float in [0, 1]). */
#ifndef SSL_IO_AUGMENT_H
#define SSL_IO_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "framework/backend/augment.h"

/* One pipeline, applied in this order:
 *   RandomResizedCrop(out_size, crop_scale, crop_ratio, bilinear, antialias=False)
 *   RandomHorizontalFlip(flip_p)
 *   RandomApply([ColorJitter(brightness, contrast, saturation, hue)], jitter_p)
 *   RandomGrayscale(grayscale_p)
 *   RandomApply([GaussianBlur(k, blur_sigma)], blur_p), k = 2 * ((out_size / 10) / 2) + 1 (SimCLR)
 *   RandomSolarize(threshold 128 of 255, solarize_p)
 *   Normalize(mean, std)
 * For 1-channel images saturation, hue and grayscale are no-ops (as torchvision), contrast uses the
 * mean of the image itself. Output channels equal input channels. */
typedef struct {
    int views;              /* views per sample (SimCLR: 2) */
    int out_size;           /* S: every view is S x S */
    float crop_scale[2];    /* crop area as a fraction of the image area, 0 < lo <= hi */
    float crop_ratio[2];    /* crop aspect ratio w / h, drawn log-uniformly, 0 < lo <= hi */
    float flip_p;           /* horizontal flip probability */
    float jitter_p;         /* probability of applying ColorJitter (all four adjustments) */
    float brightness;       /* factor from [max(0, 1 - x), 1 + x]; 0 disables (torchvision None) */
    float contrast;         /* same rule as brightness */
    float saturation;       /* same rule as brightness */
    float hue;              /* factor from [-x, x], x <= 0.5; 0 disables */
    float grayscale_p;      /* random grayscale probability */
    float blur_p;           /* Gaussian blur probability */
    float blur_sigma[2];    /* sigma drawn uniformly from [lo, hi], 0 < lo <= hi */
    float solarize_p;       /* solarize probability */
    float mean[3], std[3];  /* per-channel normalisation; only the first C entries are used */
} ssl_augment_config;

/* SimCLR's recipe for `channels` (1 or 3) and output size S. For S <= 64 it is the CIFAR-10 recipe
 * of the official README (colour strength 0.5, no blur); above, the ImageNet one (strength 1.0,
 * blur p 0.5). Strength s gives ColorJitter(0.8s, 0.8s, 0.8s, 0.2s) with p 0.8, grayscale p 0.2,
 * crop scale (0.08, 1), ratio (3/4, 4/3), flip 0.5, blur sigma (0.1, 2.0), no solarize.
 * Normalisation: Fashion-MNIST's (0.2860, 0.3530) for 1 channel, ImageNet's for 3. */
void ssl_augment_config_default(ssl_augment_config *cfg, int channels, int out_size);

/* Validate cfg for images with C channels. Returns 0, or -1 with a message in err. */
int ssl_augment_config_check(const ssl_augment_config *cfg, int C, char *err, size_t errlen);


/* The random choices for one (sample, view): torchvision's get_params outputs, made explicit so
 * tests and reference comparisons can apply chosen parameters. */
typedef struct {
    int crop_y, crop_x, crop_h, crop_w; /* source window, torchvision's (i, j, h, w) */
    int flip;
    int jitter;      /* ColorJitter applied */
    int order[4];    /* torchvision's fn_idx: 0 brightness, 1 contrast, 2 saturation, 3 hue */
    float brightness, contrast, saturation, hue; /* factors; 1, 1, 1, 0 leave the image as is */
    int grayscale;
    int blur;
    float sigma;
    int solarize;
} ssl_augment_params;

/* Draw the parameters of view `view` of global sample `sample_index` for an H x W x C image.
 * Each transform reads its own fixed Philox counters, so changing one probability in the config
 * never changes another transform's draws. */
void ssl_augment_draw(const ssl_augment_config *cfg, uint64_t seed, int64_t epoch,
                      int64_t sample_index, int view, int H, int W, int C, ssl_augment_params *p);

/* The backend op's job for parameters p on an H x W x C image at cfg->out_size (src, dst left 0). */
void ssl_augment_job(const ssl_augment_config *cfg, const ssl_augment_params *p, int H, int W, int C,
                     ssl_aug_job *job);

/* Apply parameters p to image (H, W, C) uint8, writing out (C, S, S) float, S = cfg->out_size
 * (only out_size, mean and std of cfg are read). workspace: ssl_aug_workspace_bytes(S) bytes,
 * any alignment of at least 4, not shared between concurrent calls. */
void ssl_augment_apply(const ssl_augment_config *cfg, const ssl_augment_params *p,
                       const uint8_t *image, int H, int W, int C, float *out, void *workspace);

/* Draw and apply: one view of one sample, out (C, S, S). */
void ssl_augment_one(const ssl_augment_config *cfg, uint64_t seed, int64_t epoch,
                     const uint8_t *image, int H, int W, int C, int64_t sample_index, int view,
                     float *out, void *workspace);

/* View `view` of a batch (cfg->views is not read): images (n, H, W, C) uint8, sample_index (n)
 * global indices, out (n, C, S, S). Lets a method use a different config per view (BYOL/DINO asymmetric blur and
 * solarize) while keeping the view id in the key. OpenMP over samples. */
void ssl_augment_view(const ssl_augment_config *cfg, uint64_t seed, int64_t epoch,
                      const uint8_t *images, int n, int H, int W, int C,
                      const int64_t *sample_index, int view, float *out);

/* All cfg->views views of a batch: out (views, n, C, S, S), i.e. view v of the batch is one
 * contiguous (n, C, S, S) tensor at out + v * n * C * S * S. OpenMP over samples x views.
 * One ssl_malloc per call (a workspace for each thread), nothing per image. The OpenMP team is
 * omp_get_max_threads() of the calling thread: a loader thread can size it with
 * omp_set_num_threads without touching the training threads' setting. */
void ssl_augment_batch(const ssl_augment_config *cfg, uint64_t seed, int64_t epoch,
                       const uint8_t *images, int n, int H, int W, int C,
                       const int64_t *sample_index, float *out);

#endif
