/* Augmentation pixel work as a backend op: one job per output view, the random choices already drawn
 * on the host (io/augment.c: Philox keyed by seed, epoch, sample and view), so every backend applies
 * the same parameters and a GPU rank's views equal a CPU rank's to interpolation rounding.
 * The CPU kernel is also what the loader's reader threads call (ssl_augment_apply). */
#ifndef SSL_BACKEND_AUGMENT_H
#define SSL_BACKEND_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

/* One view: source image (H, W, C) uint8 at byte src of the op's source buffer, result (C, S, S)
 * float at float offset dst of its output, through
 *   crop (crop_y, crop_x, crop_h, crop_w) + bilinear resize to S (align_corners=False, no antialias),
 *   horizontal flip, ColorJitter in `order` (0 brightness, 1 contrast, 2 saturation, 3 hue) when
 *   jitter, grayscale, Gaussian blur (ssl_aug_blur_taps(S) taps, sigma), solarize, (x - mean) / std.
 * 128 bytes (two 8-byte offsets, 28 4-byte fields), laid out alike by C and CUDA. */
typedef struct {
    int64_t src, dst;
    int32_t H, W, C, S;
    int32_t crop_y, crop_x, crop_h, crop_w;
    int32_t flip, jitter, grayscale, blur, solarize;
    int32_t order[4];
    float brightness, contrast, saturation, hue, sigma;
    float mean[3], std[3];
} ssl_aug_job;
#ifdef __cplusplus
static_assert(sizeof(ssl_aug_job) == 128, "ssl_aug_job: the host and the device read one layout");
#else
_Static_assert(sizeof(ssl_aug_job) == 128, "ssl_aug_job: the host and the device read one layout");
#endif

#ifdef __CUDACC__
#define SSL_AUG_HD __host__ __device__
#else
#define SSL_AUG_HD
#endif

/* Gaussian blur taps for output size S: SimCLR's kernel_size = S / 10 made odd (host and device). */
SSL_AUG_HD static inline int ssl_aug_blur_taps(int S) { return 2 * ((S / 10) / 2) + 1; }

/* CPU kernel for one job, single-threaded: workspace of ssl_aug_workspace_bytes(job->S) bytes, at
 * least 4-byte aligned, not shared between concurrent calls. */
size_t ssl_aug_workspace_bytes(int S);
void ssl_aug_view_cpu(const ssl_aug_job *job, const uint8_t *src, float *out, void *workspace);

#endif
