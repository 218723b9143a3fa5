/* PNG grid writer (see png_grid.h). Uses libpng's simplified write API, which reports errors
 * through png_image.message instead of longjmp, so no setjmp state crosses this function. */
#include "io/png_grid.h"

#include "framework/core/check.h"

#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BORDER 2
#define BORDER_VALUE 255

int ssl_png_write_grid(const char *path, const float *views, int nimg, int C, int S, int cols,
                       const float *mean, const float *std, char *err, size_t errlen)
{
#define FAIL(...)                                                                              \
    do {                                                                                       \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__);                                 \
        return -1;                                                                             \
    } while (0)
    if (!path || !views) FAIL("png grid: path and views are required");
    if (nimg < 1 || S < 1 || (C != 1 && C != 3))
        FAIL("%s: cannot tile %d images of %d channels, size %d", path, nimg, C, S);
    if (cols <= 0) {
        cols = (int)ceil(sqrt((double)nimg));
        if (cols < 1) cols = 1;
    }
    if (cols > nimg) cols = nimg;
    const int rows = (nimg + cols - 1) / cols;
    const uint64_t width = (uint64_t)cols * (uint64_t)(S + BORDER) + BORDER;
    const uint64_t height = (uint64_t)rows * (uint64_t)(S + BORDER) + BORDER;
    /* PNG allows 2^31 - 1; the bound on the byte count keeps the buffer sane as well. */
    if (width > 0x7fffffff || height > 0x7fffffff || width * height * (uint64_t)C > ((uint64_t)1 << 32))
        FAIL("%s: grid of %llu x %llu pixels is too large", path, (unsigned long long)width,
             (unsigned long long)height);

    const size_t stride = (size_t)width * (size_t)C;
    uint8_t *buf = ssl_malloc(stride * (size_t)height);
    memset(buf, BORDER_VALUE, stride * (size_t)height);
    const size_t plane = (size_t)S * S;
    for (int k = 0; k < nimg; k++) {
        const size_t x0 = (size_t)(k % cols) * (size_t)(S + BORDER) + BORDER;
        const size_t y0 = (size_t)(k / cols) * (size_t)(S + BORDER) + BORDER;
        for (int c = 0; c < C; c++) {
            const float m = mean ? mean[c] : 0.0f, sd = std ? std[c] : 1.0f;
            const float *src = views + ((size_t)k * C + c) * plane;
            for (int y = 0; y < S; y++) {
                uint8_t *dst = buf + (y0 + (size_t)y) * stride + x0 * (size_t)C + (size_t)c;
                for (int x = 0; x < S; x++) {
                    float v = src[(size_t)y * S + x] * sd + m;
                    v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* NaN lands on 0 */
                    dst[(size_t)x * C] = (uint8_t)(v * 255.0f + 0.5f);
                }
            }
        }
    }

    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)width;
    img.height = (png_uint_32)height;
    img.format = C == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    const int ok = png_image_write_to_file(&img, path, 0, buf, (png_int_32)stride, NULL);
    ssl_free(buf);
    if (!ok) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot write PNG: %s", path, img.message);
        png_image_free(&img);
        return -1;
    }
    return 0;
#undef FAIL
}
