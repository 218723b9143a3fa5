/* JPEG decoding for the loader (TurboJPEG): decode once per sample at the coarsest DCT scale that
 * still gives every random crop of that sample at least its output resolution. A 224 px crop of a
 * 500 x 375 photograph rarely needs the full image: scaled decoding skips most of the IDCT work, and
 * its block averaging is the antialiasing a plain bilinear downscale lacks. */
#ifndef SSL_IO_JPEG_DECODE_H
#define SSL_IO_JPEG_DECODE_H

#include "io/augment.h"

#include <stddef.h>
#include <stdint.h>

/* Stored images above this many pixels are refused (PIL's DecompressionBombError threshold). */
#define SSL_JPEG_MAX_PIXELS 178956970LL

/* Per-thread decoder state; all zero is a valid empty one. */
typedef struct {
    void *tj;      /* tjhandle, made anew for every image (jpeg_decode.c says why) */
    uint8_t *px;   /* decoded pixels, grown as needed */
    size_t cap;
} ssl_jpeg_decoder;

void ssl_jpeg_decoder_free(ssl_jpeg_decoder *dec);

/* The scale num/denom (denom 8, num 1..8) chosen for crops p[0..np) of an h x w image with outputs
 * out_size[k]: the smallest with num * min(crop_h, crop_w) >= out_size * denom for every crop, 8/8
 * when even the full size is not enough. */
int ssl_jpeg_scale_num(int h, int w, const ssl_augment_params *p, const int *out_size, int np);

/* Decodes src (len bytes; stored size h x w, as the shard's `sizes` says) into C channels (1: gray,
 * 3: RGB; as PIL's convert) at scale ssl_jpeg_scale_num / 8, and maps every crop window p[k] (drawn for
 * h x w) onto the decoded image, covering the same area. *px, *H, *W: the pixels (HWC, owned by dec,
 * valid until its next call). Corrupt or truncated data (a libjpeg warning too) and a size other
 * than h x w are errors. 0, or -1 with the reason in err. */
int ssl_jpeg_decode_crops(ssl_jpeg_decoder *dec, const uint8_t *src, size_t len, int h, int w, int C,
                          ssl_augment_params *p, const int *out_size, int np, const uint8_t **px, int *H, int *W,
                          char *err, size_t errlen);

/* The evaluation view of an h x w image: the centre square of side round(frac * min(h, w)), as
 * torchvision's Resize(S / frac) + CenterCrop(S); no flip, jitter or blur. */
void ssl_augment_center_params(int h, int w, float frac, ssl_augment_params *p);

#endif
