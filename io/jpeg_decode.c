/* JPEG decoding for the loader (see jpeg_decode.h). */
#include "io/jpeg_decode.h"

#include "framework/core/check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <turbojpeg.h>

void ssl_jpeg_decoder_free(ssl_jpeg_decoder *dec)
{
    if (dec->tj) tjDestroy(dec->tj);
    ssl_free(dec->px);
    memset(dec, 0, sizeof *dec);
}

int ssl_jpeg_scale_num(int h, int w, const ssl_augment_params *p, const int *out_size, int np)
{
    (void)h, (void)w;
    int num = 1;
    for (int k = 0; k < np; k++) {
        const int64_t side = p[k].crop_h < p[k].crop_w ? p[k].crop_h : p[k].crop_w;
        while (num < 8 && (int64_t)num * side < (int64_t)out_size[k] * 8) num++;
    }
    return num;
}

int ssl_jpeg_decode_crops(ssl_jpeg_decoder *dec, const uint8_t *src, size_t len, int h, int w, int C,
                          ssl_augment_params *p, const int *out_size, int np, const uint8_t **px, int *H, int *W,
                          char *err, size_t errlen)
{
    /* A new TurboJPEG handle for every image (well under a microsecond), as fuzz_jpeg found a handle's
     * result depending on the images before: libjpeg keeps the quantisation and Huffman tables of
     * earlier datastreams, so a damaged JPEG without its own DQT decoded with the tables of whatever
     * image this thread decoded last (pixels following the loader's scheduling, not an error); and
     * after a failed tjDecompressHeader3 (TurboJPEG 2.1: no abort, e.g. "missing SOS marker") the
     * next header read returned 0 without a size, refusing the next, valid image as "0 x 0". */
    if (dec->tj) tjDestroy(dec->tj);
    if (!(dec->tj = tjInitDecompress())) {
        snprintf(err, errlen, "cannot start a JPEG decoder: %s", tjGetErrorStr2(NULL));
        return -1;
    }
    int jw = 0, jh = 0, sub = 0, cs = 0;
    if (len < 4 || len > (size_t)0x7fffffff ||
        tjDecompressHeader3(dec->tj, src, (unsigned long)len, &jw, &jh, &sub, &cs) != 0) {
        snprintf(err, errlen, "not a readable JPEG (%zu bytes): %s", len,
                 len < 4 ? "too short" : tjGetErrorStr2(dec->tj));
        return -1;
    }
    if (jw != w || jh != h) {
        snprintf(err, errlen, "the JPEG is %d x %d but the shard's sizes say %d x %d", jh, jw, h, w);
        return -1;
    }
    /* a few hundred bytes can claim 65,535 x 65,535 (12.9 GB decoded): refused above PIL's
     * decompression-bomb limit, as a PyTorch loader would */
    if ((int64_t)h * w > SSL_JPEG_MAX_PIXELS) {
        snprintf(err, errlen, "the JPEG is %d x %d, over %lld pixels (a decompression bomb, or damaged)", h, w,
                 (long long)SSL_JPEG_MAX_PIXELS);
        return -1;
    }
    const tjscalingfactor sf = {ssl_jpeg_scale_num(h, w, p, out_size, np), 8};
    const int ws = TJSCALED(w, sf), hs = TJSCALED(h, sf);
    /* gray from a colour JPEG as PIL's convert("L") of its RGB decode, not libjpeg's luma (up to 2
     * levels apart): the RGB decode needs 3 bytes a pixel, converted in place */
    const int rgb = C == 3 || cs != TJCS_GRAY;
    const size_t need = (size_t)ws * (size_t)hs * (size_t)(rgb ? 3 : 1);
    if (need > dec->cap) {
        ssl_free(dec->px);
        dec->cap = need + need / 4;
        dec->px = ssl_malloc(dec->cap);
    }
    if (tjDecompress2(dec->tj, src, (unsigned long)len, dec->px, ws, 0, hs, rgb ? TJPF_RGB : TJPF_GRAY,
                      TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0) { /* > 500 progressive scans: a CPU bomb */
        snprintf(err, errlen, "corrupt JPEG data: %s", tjGetErrorStr2(dec->tj));
        return -1;
    }
    if (C == 1 && rgb)
        for (size_t i = 0, n = (size_t)ws * (size_t)hs; i < n; i++) {
            const uint8_t *q = dec->px + 3 * i;
            dec->px[i] = (uint8_t)((q[0] * 19595u + q[1] * 38470u + q[2] * 7471u + 0x8000u) >> 16);
        }
    /* crops onto the decoded grid: the covered area, rounded outwards */
    for (int k = 0; k < np && (hs != h || ws != w); k++) {
        const int64_t y0 = (int64_t)p[k].crop_y * hs / h, x0 = (int64_t)p[k].crop_x * ws / w;
        int64_t y1 = ((int64_t)(p[k].crop_y + p[k].crop_h) * hs + h - 1) / h;
        int64_t x1 = ((int64_t)(p[k].crop_x + p[k].crop_w) * ws + w - 1) / w;
        if (y1 > hs) y1 = hs;
        if (x1 > ws) x1 = ws;
        p[k].crop_y = (int)y0, p[k].crop_x = (int)x0;
        p[k].crop_h = (int)(y1 - y0 > 0 ? y1 - y0 : 1), p[k].crop_w = (int)(x1 - x0 > 0 ? x1 - x0 : 1);
    }
    *px = dec->px;
    *H = hs;
    *W = ws;
    return 0;
}

void ssl_augment_center_params(int h, int w, float frac, ssl_augment_params *p)
{
    memset(p, 0, sizeof *p);
    int side = (int)lrintf(frac * (float)(h < w ? h : w));
    if (side < 1) side = 1;
    p->crop_h = p->crop_w = side;
    p->crop_y = (h - side) / 2;
    p->crop_x = (w - side) / 2;
    p->brightness = p->contrast = p->saturation = 1.0f;
    for (int k = 0; k < 4; k++) p->order[k] = k;
}
