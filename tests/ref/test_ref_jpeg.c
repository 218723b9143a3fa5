/* JPEG decoding against PIL (fixtures from make_fixtures_jpeg.py): full-size and DCT-scaled decodes
 * (1/2, 1/4, 1/8, which PIL's draft() requests from the same libjpeg-turbo) of 4:2:0, 4:4:4,
 * progressive and grayscale JPEGs of odd sizes, to RGB and to gray, are the same bytes as PIL's; the
 * scale follows the crops (the coarsest that keeps each crop at its output size), crops mapped onto
 * the scaled image cover the same area; truncated data and a size other than the shard's are
 * errors, never pixels. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "io/jpeg_decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const CASES[] = {"c420", "c444", "prog", "gray"};

/* A crop of the whole image whose output size makes num / 8 the coarsest scale that keeps it. */
static void whole_crop(int h, int w, int num, ssl_augment_params *p, int *S)
{
    memset(p, 0, sizeof *p);
    p->crop_h = h, p->crop_w = w;
    const int m = h < w ? h : w;
    *S = num * m / 8; /* > (num - 1) * m / 8 for m >= 16 */
}

static void check_case(const ssl_fixture *f, const char *name)
{
    char key[64];
    size_t nb;
    snprintf(key, sizeof key, "%s/jpeg", name);
    const float *jf = ssl_fixture_get(f, key, &nb);
    snprintf(key, sizeof key, "%s/hw", name);
    const float *hw = ssl_fixture_get(f, key, NULL);
    const int h = (int)hw[0], w = (int)hw[1];
    uint8_t *jpeg = malloc(nb);
    for (size_t i = 0; i < nb; i++) jpeg[i] = (uint8_t)jf[i];
    ssl_jpeg_decoder dec = {0};
    char err[256];
    const int nums[] = {8, 4, 2, 1};
    for (int k = 0; k < 4; k++)
        for (int C = 1; C <= 3; C += 2) {
            const int gray_src = !strcmp(name, "gray");
            if (nums[k] != 8 && (C == 1) != gray_src) continue; /* the fixture's other mode is full size only */
            snprintf(key, sizeof key, "%s/%s_%d", name, C == 1 ? "L" : "RGB", nums[k]);
            size_t n;
            const float *want = ssl_fixture_get(f, key, &n);
            ssl_augment_params p;
            int S, H, W;
            whole_crop(h, w, nums[k], &p, &S);
            SSL_EXPECT(ssl_jpeg_scale_num(h, w, &p, &S, 1) == nums[k], "%s: scale for output %d is %d/8, want %d/8",
                       name, S, ssl_jpeg_scale_num(h, w, &p, &S, 1), nums[k]);
            const uint8_t *px;
            if (ssl_jpeg_decode_crops(&dec, jpeg, nb, h, w, C, &p, &S, 1, &px, &H, &W, err, sizeof err)) {
                SSL_EXPECT(0, "%s: decode: %s", key, err);
                continue;
            }
            SSL_EXPECT(H == (h * nums[k] + 7) / 8 && W == (w * nums[k] + 7) / 8 && n == (size_t)H * W * C,
                       "%s: decoded %d x %d, PIL %zu values", key, H, W, n);
            if (n != (size_t)H * W * C) continue;
            int worst = 0;
            for (size_t i = 0; i < n; i++) {
                int d = abs((int)px[i] - (int)want[i]);
                if (d > worst) worst = d;
            }
            SSL_EXPECT(worst == 0, "%s: differs from PIL by up to %d levels", key, worst);
            SSL_EXPECT(p.crop_y == 0 && p.crop_x == 0 && p.crop_h == H && p.crop_w == W,
                       "%s: the whole-image crop maps to (%d, %d, %d, %d), want the whole %d x %d", key, p.crop_y,
                       p.crop_x, p.crop_h, p.crop_w, H, W);
        }
    /* a crop inside maps onto the same area, rounded outwards */
    ssl_augment_params p[2] = {{0}, {0}};
    p[0].crop_y = 5, p[0].crop_x = 9, p[0].crop_h = 20, p[0].crop_w = 17;
    p[1].crop_y = 0, p[1].crop_x = 0, p[1].crop_h = h, p[1].crop_w = w;
    const int S2[2] = {4, 8}; /* 20 x 17 at 2/8 is 5 x 4.25 >= 4; the whole at 2/8 >= 8 */
    const uint8_t *px;
    int H, W;
    SSL_EXPECT(ssl_jpeg_scale_num(h, w, p, S2, 2) == 2, "%s: two crops: scale %d/8, want 2/8", name,
               ssl_jpeg_scale_num(h, w, p, S2, 2));
    if (ssl_jpeg_decode_crops(&dec, jpeg, nb, h, w, 3, p, S2, 2, &px, &H, &W, err, sizeof err) == 0) {
        const double s = (double)H / h, sx = (double)W / w;
        SSL_EXPECT(p[0].crop_y <= 5 * s && p[0].crop_y + p[0].crop_h >= 25 * s - 1e-9 && p[0].crop_x <= 9 * sx &&
                       p[0].crop_x + p[0].crop_w >= 26 * sx - 1e-9 && p[0].crop_h <= 20 * s + 2 &&
                       p[0].crop_w <= 17 * sx + 2 && p[0].crop_y + p[0].crop_h <= H && p[0].crop_x + p[0].crop_w <= W,
                   "%s: crop (5, 9, 20, 17) at scale %.3f maps to (%d, %d, %d, %d)", name, s, p[0].crop_y,
                   p[0].crop_x, p[0].crop_h, p[0].crop_w);
    } else {
        SSL_EXPECT(0, "%s: two crops: %s", name, err);
    }
    /* damage: truncated data, another size, not a JPEG */
    ssl_augment_params q;
    int S;
    whole_crop(h, w, 8, &q, &S);
    SSL_EXPECT(ssl_jpeg_decode_crops(&dec, jpeg, nb * 2 / 3, h, w, 3, &q, &S, 1, &px, &H, &W, err, sizeof err) == -1 &&
                   strstr(err, "JPEG"),
               "%s: a truncated JPEG decodes (or says '%s')", name, err);
    whole_crop(h, w, 8, &q, &S);
    SSL_EXPECT(ssl_jpeg_decode_crops(&dec, jpeg, nb, h + 1, w, 3, &q, &S, 1, &px, &H, &W, err, sizeof err) == -1 &&
                   strstr(err, "sizes say"),
               "%s: a size other than the shard's is accepted (or says '%s')", name, err);
    /* a header claiming 60,000 x 60,000 (SOF height and width patched; libjpeg's own limit is 65,500): refused before any allocation */
    int sof = 0;
    for (size_t i = 2; i + 8 < nb && !sof; i++)
        if (jpeg[i] == 0xFF && (jpeg[i + 1] == 0xC0 || jpeg[i + 1] == 0xC1 || jpeg[i + 1] == 0xC2)) {
            sof = 1;
            const uint8_t big[4] = {0xEA, 0x60, 0xEA, 0x60};
            memcpy(jpeg + i + 5, big, 4);
            whole_crop(60000, 60000, 8, &q, &S);
            SSL_EXPECT(ssl_jpeg_decode_crops(&dec, jpeg, nb, 60000, 60000, 3, &q, &S, 1, &px, &H, &W, err,
                                             sizeof err) == -1 && strstr(err, "decompression bomb"),
                       "%s: a 60,000 x 60,000 header decodes (or says '%s')", name, err);
        }
    SSL_EXPECT(sof, "%s: no SOF marker found", name);
    memset(jpeg, 0x55, 16);
    SSL_EXPECT(ssl_jpeg_decode_crops(&dec, jpeg, nb, h, w, 3, &q, &S, 1, &px, &H, &W, err, sizeof err) == -1,
               "%s: bytes that are no JPEG decode", name);
    ssl_jpeg_decoder_free(&dec);
    free(jpeg);
}

int main(void)
{
    ssl_fixture *f = ssl_fixture_load("jpeg_decode.bin");
    if (!f) return ssl_test_exit();
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) check_case(f, CASES[i]);
    ssl_fixture_free(f);
    return ssl_test_exit();
}
