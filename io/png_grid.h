/* PNG contact sheet of augmented views, for `sslrun augment-preview`: un-normalises float views
 * and tiles them in a grid with a 2-pixel border, written with libpng. */
#ifndef SSL_IO_PNG_GRID_H
#define SSL_IO_PNG_GRID_H

#include <stddef.h>

/* views: (nimg, C, S, S) normalised floats, C = 1 (gray PNG) or 3 (RGB PNG). Each pixel is
 * x * std[c] + mean[c] (mean / std NULL: 0 / 1), clamped to [0, 1] and rounded to 8 bits.
 * Tiles fill rows of `cols` (cols <= 0: ceil(sqrt(nimg))), left to right, with a 2-pixel white
 * border around and between tiles: width cols * (S + 2) + 2. For ssl_augment_batch output
 * (views, n, C, S, S) with cols = n, row v shows view v and column i sample i.
 * Returns 0, or -1 with a message naming the path in err. */
int ssl_png_write_grid(const char *path, const float *views, int nimg, int C, int S, int cols,
                       const float *mean, const float *std, char *err, size_t errlen);

#endif
