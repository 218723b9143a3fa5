/* libFuzzer harness for the loader's JPEG decode (io/jpeg_decode.c): the bytes of one sample of a JPEG
 * shard, decoded with ssl_jpeg_decode_crops for one or two crop windows, as io/loader.c and
 * io/eval_views.c do, with one decoder reused across inputs (as a loader thread's: its pixel buffer
 * grows and is reused, whatever the previous image did), and again with a fresh decoder freed after
 * the call: its buffer is no larger than the decoder asks for (the reused one's is the largest so
 * far, which would hide a short one from ASan), and the two must agree. So that a result depending
 * on the previous sample is reproducible from one input, the input may carry that previous sample.
 *
 * Input: a FZ_JPEG_HDR-byte parameter header, then the JPEG bytes (what the shard's `jpeg` dataset
 * holds for the sample). Header, u16 values big-endian (as in a JPEG's SOF):
 *   [0]      flags: bit 0 C = 3 (else 1); bit 1 two crops (else one); bit 2 the stored size h x w is
 *            bytes 1-4 as given, possibly wrong (else the JPEG's own size, read with
 *            tjDecompressHeader3, as a consistent shard's `sizes` says; bytes 1-4 if that fails);
 *            bit 3 the JPEG bytes start with a previous sample, see [25..26]
 *   [1..4]   h, w: the stored size when bit 2 is set
 *   [5..14]  crop 0: out_size, crop_h, crop_w, crop_y, crop_x, mapped into range for h x w
 *            (out_size 1 + v % 512, crop_h 1 + v % h, crop_y v % (h - crop_h + 1), same for x)
 *   [15..24] crop 1, read when bit 1 is set
 *   [25..26] with bit 3: the length P of the previous sample, the first min(P, n) of the n JPEG
 *            bytes; the reused decoder decodes it first (any result: its own size and the whole image
 *            if it has a readable one, else the sample's size and crops), the sample is the rest
 * A stored size of 0 or of more than FZ_JPEG_MAX_PIXELS pixels is skipped (the shard reader allows
 * 65535 x 65535; the decoder allocates h x w x 3 bytes once the JPEG agrees, which the fuzzer's RSS
 * limit is not meant to test).
 *
 * Invariants checked (abort() on violation):
 *  - ssl_jpeg_scale_num is the smallest num in 1..8 with num * min(crop_h, crop_w) >= 8 * out_size
 *    for every crop, 8 when none is;
 *  - ssl_jpeg_decode_crops returns 0 or -1; -1 comes with a message (NUL-terminated, naming the JPEG);
 *  - the reused and the fresh decoder give the same result: return, message, H, W, crops, pixels
 *    (what one input leaves in a decoder does not change the next one's result);
 *  - on success px is non-NULL, H x W is the stored size at that scale (TJSCALED: 1 <= H <= h,
 *    1 <= W <= w), all H x W x C bytes are readable (ASan sees a short buffer), and every crop
 *    window lies inside H x W, covers the area of the window it was drawn as (scaled by H / h,
 *    W / w), rounded outwards by less than a pixel on each side, and is unchanged at full scale. */
#include "fuzz_common.h"

#include "io/jpeg_decode.h"

#include <turbojpeg.h>

#define FZ_JPEG_HDR 27
#define FZ_JPEG_MAX_PIXELS (1 << 18) /* 512 x 512, or any thinner shape of the same area */

static ssl_jpeg_decoder dec; /* reused across inputs, as a loader thread reuses its own */
static tjhandle hdr_tj;      /* the harness's own, to read a JPEG's size */

static void fz_jpeg_free(void)
{
    ssl_jpeg_decoder_free(&dec);
    if (hdr_tj) tjDestroy(hdr_tj);
    hdr_tj = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hdr_tj = tjInitDecompress();
    FZ_CHECK(hdr_tj != NULL, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    atexit(fz_jpeg_free);
    return 0;
}

static unsigned u16(const uint8_t *d) { return (unsigned)d[0] << 8 | d[1]; }

/* The JPEG's own size, 0 if TurboJPEG cannot read one. TurboJPEG 2.1 returns 0 without setting the
 * size for a tables-only datastream, and on the call after a failed one (see jpeg_decode.c): a fresh
 * handle after every failure, and a size it did not write counts as none. */
static int jpeg_size(const uint8_t *jpeg, size_t len, int *h, int *w)
{
    int jw = 0, jh = 0, sub, cs;
    if (len > 0 && tjDecompressHeader3(hdr_tj, jpeg, (unsigned long)len, &jw, &jh, &sub, &cs) == 0 && jw > 0 &&
        jh > 0) {
        *h = jh, *w = jw;
        return 1;
    }
    tjDestroy(hdr_tj);
    hdr_tj = tjInitDecompress();
    FZ_CHECK(hdr_tj != NULL, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    return 0;
}

/* The previous sample of a loader thread: decoded by the reused decoder, the result is not checked
 * beyond its return value (the sample after it is). */
static void decode_previous(const uint8_t *jpeg, size_t len, int h, int w, int C, const ssl_augment_params *p,
                            const int *out, int np)
{
    ssl_augment_params q[2];
    memcpy(q, p, sizeof q);
    int oq[2] = {out[0], np > 1 ? out[1] : 1};
    int ph, pw;
    if (jpeg_size(jpeg, len, &ph, &pw) && (int64_t)ph * pw <= FZ_JPEG_MAX_PIXELS) {
        h = ph, w = pw, np = 1;
        q[0].crop_y = q[0].crop_x = 0, q[0].crop_h = h, q[0].crop_w = w;
    }
    const uint8_t *px;
    int H, W;
    char err[256];
    const int rc = ssl_jpeg_decode_crops(&dec, jpeg, len, h, w, C, q, oq, np, &px, &H, &W, err, sizeof err);
    FZ_CHECK(rc == 0 || rc == -1, "ssl_jpeg_decode_crops returned %d (previous sample)", rc);
}

/* The promise of jpeg_decode.h: the smallest num with num * side >= out * 8 for every crop, else 8. */
static void check_scale(int num, const ssl_augment_params *p, const int *out, int np)
{
    FZ_CHECK(num >= 1 && num <= 8, "ssl_jpeg_scale_num returned %d", num);
    int ok_at_num = 1, ok_below = num > 1;
    for (int k = 0; k < np; k++) {
        const int64_t side = p[k].crop_h < p[k].crop_w ? p[k].crop_h : p[k].crop_w;
        ok_at_num &= (int64_t)num * side >= (int64_t)out[k] * 8;
        ok_below &= (int64_t)(num - 1) * side >= (int64_t)out[k] * 8;
    }
    FZ_CHECK(ok_at_num || num == 8, "scale %d/8 leaves a crop below its output size", num);
    FZ_CHECK(!ok_below, "scale %d/8 is not the smallest: %d/8 keeps every crop", num, num - 1);
}

/* Window q (drawn as p for h x w) on the decoded n-pixel axis of stored length len: inside [0, n),
 * covering [a * n / len, (a + s) * n / len) and by less than one pixel more on each side. */
static void check_axis(const char *axis, int k, int a, int s, int qa, int qs, int len, int n)
{
    FZ_CHECK(qa >= 0 && qs >= 1 && (int64_t)qa + qs <= n, "crop %d: %s window [%d, +%d) outside 0..%d", k,
             axis, qa, qs, n);
    const int64_t lo = (int64_t)a * n, hi = ((int64_t)a + s) * n; /* the drawn window x len */
    FZ_CHECK((int64_t)qa * len <= lo && ((int64_t)qa + qs) * len >= hi,
             "crop %d: %s window [%d, +%d) of %d does not cover [%d, +%d) of %d", k, axis, qa, qs, n, a, s, len);
    FZ_CHECK(((int64_t)qa + 1) * len > lo && ((int64_t)qa + qs - 1) * len < hi,
             "crop %d: %s window [%d, +%d) of %d is more than a pixel wider than [%d, +%d) of %d", k, axis, qa,
             qs, n, a, s, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < FZ_JPEG_HDR) return 0;
    const uint8_t *jpeg = data + FZ_JPEG_HDR, *prev = NULL;
    size_t len = size - FZ_JPEG_HDR, plen = 0;
    if (data[0] & 8) {
        plen = u16(data + 25) < len ? u16(data + 25) : len;
        prev = jpeg, jpeg += plen, len -= plen;
    }
    const int C = data[0] & 1 ? 3 : 1, np = data[0] & 2 ? 2 : 1;
    int h = (int)u16(data + 1), w = (int)u16(data + 3);
    if (!(data[0] & 4)) jpeg_size(jpeg, len, &h, &w);
    if (h < 1 || w < 1 || (int64_t)h * w > FZ_JPEG_MAX_PIXELS) return 0;

    ssl_augment_params p[2], drawn[2];
    int out[2];
    memset(p, 0, sizeof p);
    for (int k = 0; k < np; k++) {
        const uint8_t *c = data + 5 + 10 * k;
        out[k] = 1 + (int)(u16(c) % 512);
        p[k].crop_h = 1 + (int)(u16(c + 2) % (unsigned)h);
        p[k].crop_w = 1 + (int)(u16(c + 4) % (unsigned)w);
        p[k].crop_y = (int)(u16(c + 6) % (unsigned)(h - p[k].crop_h + 1));
        p[k].crop_x = (int)(u16(c + 8) % (unsigned)(w - p[k].crop_w + 1));
        p[k].brightness = p[k].contrast = p[k].saturation = 1.0f;
    }
    memcpy(drawn, p, sizeof p);
    const int num = ssl_jpeg_scale_num(h, w, p, out, np);
    check_scale(num, p, out, np);

    const uint8_t *px = NULL, *px2 = NULL;
    int H = -1, W = -1, H2 = -1, W2 = -1;
    char err[256], err2[256];
    memset(err, 'x', sizeof err);
    memset(err2, 'x', sizeof err2);
    ssl_augment_params p2[2];
    memcpy(p2, p, sizeof p);
    ssl_jpeg_decoder fresh = {0};
    if (prev) decode_previous(prev, plen, h, w, C, p, out, np);
    const int rc = ssl_jpeg_decode_crops(&dec, jpeg, len, h, w, C, p, out, np, &px, &H, &W, err, sizeof err);
    const int rc2 = ssl_jpeg_decode_crops(&fresh, jpeg, len, h, w, C, p2, out, np, &px2, &H2, &W2, err2, sizeof err2);
    FZ_CHECK(rc == 0 || rc == -1, "ssl_jpeg_decode_crops returned %d", rc);
    FZ_CHECK(rc2 == rc, "the reused decoder returned %d (%s), a fresh one %d (%s)", rc, rc ? err : "",
             rc2, rc2 ? err2 : "");
    if (rc != 0) {
        FZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "error message not NUL-terminated");
        FZ_CHECK(err[0] != '\0' && strstr(err, "JPEG") != NULL, "refused with the message '%s'", err);
        FZ_CHECK(strcmp(err, err2) == 0, "the reused and a fresh decoder refuse differently:\n  %s\n  %s", err,
                 err2);
        ssl_jpeg_decoder_free(&fresh);
        return 0;
    }
    FZ_CHECK(px != NULL && px2 != NULL, "decoded %d x %d without pixels", H, W);
    FZ_CHECK(H2 == H && W2 == W && memcmp(p2, p, sizeof p) == 0,
             "the reused decoder gives %d x %d, a fresh one %d x %d, or other crops", H, W, H2, W2);
    FZ_CHECK(H == (h * num + 7) / 8 && W == (w * num + 7) / 8,
             "stored %d x %d at scale %d/8 decoded as %d x %d, want %d x %d", h, w, num, H, W, (h * num + 7) / 8,
             (w * num + 7) / 8);
    FZ_CHECK(H >= 1 && H <= h && W >= 1 && W <= w, "decoded %d x %d, stored %d x %d", H, W, h, w);
    /* memcmp reads every byte of both (ASan checks the ranges); the fresh buffer is what the decoder
     * allocated for this image (plus its 25 % headroom), not the largest so far */
    FZ_CHECK(memcmp(px, px2, (size_t)H * (size_t)W * (size_t)C) == 0,
             "the reused and a fresh decoder give different pixels (%d x %d x %d)", H, W, C);
    ssl_jpeg_decoder_free(&fresh);
    for (int k = 0; k < np; k++) {
        check_axis("row", k, drawn[k].crop_y, drawn[k].crop_h, p[k].crop_y, p[k].crop_h, h, H);
        check_axis("column", k, drawn[k].crop_x, drawn[k].crop_w, p[k].crop_x, p[k].crop_w, w, W);
        if (H == h && W == w)
            FZ_CHECK(memcmp(&p[k], &drawn[k], sizeof p[k]) == 0, "crop %d changed at full scale", k);
        else
            FZ_CHECK(memcmp(&p[k].flip, &drawn[k].flip, sizeof p[k] - offsetof(ssl_augment_params, flip)) == 0,
                     "crop %d: more than the window changed", k);
    }
    return 0;
}
