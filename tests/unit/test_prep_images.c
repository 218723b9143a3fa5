/* `prep images`: an ImageFolder tree written here with libpng (gray 2/8/16-bit, RGB, RGBA, palette
 * with tRNS) and libjpeg (RGB, gray, Adobe CMYK) becomes shards with sorted class labels,
 * classes.txt, exact pixels where no resampling happens or its result is known exactly (area
 * average vs bilinear, crop offsets), and error messages that name the offending file or folder. */
#include <stdio.h>

#include "common/shard_testutil.h"
#include "common/testutil.h"
#include "framework/core/check.h"
#include "io/dataset.h"
#include "io/prep.h"

#include <dirent.h>
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S 16

static void png_abort(png_structp png, png_const_charp msg)
{
    (void)png;
    SSL_ABORT("libpng: %s", msg);
}

/* rows: h rows of rowbytes bytes in libpng's packing (big-endian 16-bit, packed low bit depths). */
static void write_png(const char *path, int w, int h, int ctype, int depth, const uint8_t *rows,
                      size_t rowbytes, const png_color *pal, int npal, const uint8_t *trns, int ntrns)
{
    FILE *f = fopen(path, "wb");
    SSL_ASSERTF(f, "cannot create %s", path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_abort, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, rows + (size_t)y * rowbytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* 8-bit RGB PNG from a pixel function of (x, y, channel). */
typedef int (*pixel_fn)(int x, int y, int c);
static void write_rgb_png(const char *path, int w, int h, pixel_fn px)
{
    uint8_t *buf = ssl_malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) buf[((size_t)y * w + x) * 3 + c] = (uint8_t)px(x, y, c);
    write_png(path, w, h, PNG_COLOR_TYPE_RGB, 8, buf, (size_t)w * 3, NULL, 0, NULL, 0);
    ssl_free(buf);
}

/* comps 1 (gray), 3 (RGB) or 4 (CMYK: libjpeg adds the Adobe marker and stores values as given). */
static void write_jpeg(const char *path, int w, int h, int comps, const uint8_t *data, int quality)
{
    FILE *f = fopen(path, "wb");
    SSL_ASSERTF(f, "cannot create %s", path);
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = comps;
    ci.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(data + (size_t)ci.next_scanline * w * comps);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
}

static void write_solid_jpeg(const char *path, int w, int h, int comps, const uint8_t *v)
{
    uint8_t *buf = ssl_malloc((size_t)w * h * comps);
    for (size_t i = 0; i < (size_t)w * h; i++) memcpy(buf + i * comps, v, (size_t)comps);
    write_jpeg(path, w, h, comps, buf, 95);
    ssl_free(buf);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    SSL_ASSERTF(f, "cannot create %s", path);
    fputs(text, f);
    fclose(f);
}

static void mkdir_at(const char *root, const char *sub)
{
    char p[512];
    SSL_ASSERT(snprintf(p, sizeof p, "%s/%s", root, sub) < (int)sizeof p);
    SSL_ASSERTF(mkdir(p, 0777) == 0, "mkdir %s failed", p);
}

static const char *at(char *buf, const char *root, const char *rel)
{
    SSL_ASSERT(snprintf(buf, 512, "%s/%s", root, rel) < 512);
    return buf;
}

/* Pixel patterns whose resized result is known exactly. */
static int px_exact(int x, int y, int c) { return c == 0 ? x * 16 + y : c == 1 ? 255 - 7 * x : 13 * y; }
/* 4x4 blocks with one bright pixel at each block's top-left: the area average is base + 2, while
 * bilinear (which samples the block's middle) would give base. */
static int area_base(int bx, int by, int c) { return c == 0 ? 10 * bx + by : c == 1 ? 60 + 5 * by : 200 - 8 * bx; }
static int px_area(int x, int y, int c)
{
    return area_base(x / 4, y / 4, c) + (x % 4 == 0 && y % 4 == 0 ? 32 : 0);
}
/* 2x2 blocks, 48 wide and 32 high: halved to 24x16, then columns 4..19 are kept. */
static int px_crop(int x, int y, int c) { return c == 0 ? 5 * (x / 2) : c == 1 ? 7 * (y / 2) : 100; }

static void build_tree(const char *src)
{
    char p[512];
    mkdir_at(src, "b_dogs"); /* created out of order: labels must follow sorted names */
    mkdir_at(src, "a_cats");
    mkdir_at(src, "c_birds");
    mkdir_at(src, ".hidden_class");
    mkdir_at(src, "a_cats/nested");
    write_text(at(p, src, "README.txt"), "files next to the class folders are ignored\n");

    write_rgb_png(at(p, src, "a_cats/00_exact.png"), 16, 16, px_exact);
    uint8_t gray[24 * 20];
    memset(gray, 100, sizeof gray);
    write_png(at(p, src, "a_cats/01_gray.png"), 20, 24, PNG_COLOR_TYPE_GRAY, 8, gray, 20, NULL, 0, NULL, 0);
    uint8_t rgba[32 * 32 * 4];
    for (int i = 0; i < 32 * 32; i++) memcpy(rgba + 4 * i, (uint8_t[]){10, 200, 30, 7}, 4);
    write_png(at(p, src, "a_cats/02_rgba.png"), 32, 32, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba, 128, NULL, 0, NULL, 0);
    write_rgb_png(at(p, src, "a_cats/03_area.png"), 64, 64, px_area);
    write_text(at(p, src, "a_cats/notes.txt"), "not an image\n");
    write_rgb_png(at(p, src, "a_cats/.hidden.png"), 16, 16, px_exact);
    write_rgb_png(at(p, src, "a_cats/nested/deep.png"), 16, 16, px_exact);
    write_rgb_png(at(p, src, ".hidden_class/x.png"), 16, 16, px_exact);

    /* 4-bit palette, every pixel index 2, which tRNS makes fully transparent: alpha is dropped. */
    const png_color pal[3] = {{0, 0, 0}, {1, 2, 3}, {250, 5, 128}};
    const uint8_t trns[3] = {255, 255, 0};
    uint8_t idx[12 * 4];
    memset(idx, 0x22, sizeof idx);
    write_png(at(p, src, "b_dogs/00_pal.png"), 8, 12, PNG_COLOR_TYPE_PALETTE, 4, idx, 4, pal, 3, trns, 3);
    write_solid_jpeg(at(p, src, "b_dogs/01_solid.jpg"), 40, 30, 3, (const uint8_t[]){30, 140, 220});
    write_rgb_png(at(p, src, "b_dogs/02_png_named.jpg"), 48, 32, px_crop); /* magic, not name */
    uint8_t ramp[8 * 8];
    for (int i = 0; i < 64; i++) ramp[i] = (uint8_t)(16 * (i % 8));
    write_png(at(p, src, "b_dogs/03_ramp.png"), 8, 8, PNG_COLOR_TYPE_GRAY, 8, ramp, 8, NULL, 0, NULL, 0);

    write_solid_jpeg(at(p, src, "c_birds/00_gray.jpg"), 64, 48, 1, (const uint8_t[]){77});
    uint8_t g16[16 * 32];
    memset(g16, 0xc8, sizeof g16); /* 0xc8c8 = 200 * 257: 200 in 8 bits */
    write_png(at(p, src, "c_birds/01_g16.png"), 16, 16, PNG_COLOR_TYPE_GRAY, 16, g16, 32, NULL, 0, NULL, 0);
    uint8_t g2[16 * 4];
    memset(g2, 0xaa, sizeof g2); /* 2-bit value 2 of 3: 170 */
    write_png(at(p, src, "c_birds/02_gray2.png"), 16, 16, PNG_COLOR_TYPE_GRAY, 2, g2, 4, NULL, 0, NULL, 0);
    /* Adobe CMYK stores inverted inks: K' = 255 is no black, so RGB = C'M'Y'. */
    write_solid_jpeg(at(p, src, "c_birds/03_cmyk.jpg"), 16, 16, 4, (const uint8_t[]){200, 100, 50, 255});
}

enum { N_IMAGES = 12 };
static const int32_t want_labels[N_IMAGES] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2};

/* Every pixel of sample i is within tol of (r, g, b). */
static void expect_solid(const uint8_t *img, int i, int r, int g, int b, int tol)
{
    const uint8_t *p = img + (size_t)i * S * S * 3;
    int worst = 0;
    for (int k = 0; k < S * S; k++) {
        const int want[3] = {r, g, b};
        for (int c = 0; c < 3; c++) {
            int d = abs(p[3 * k + c] - want[c]);
            if (d > worst) worst = d;
        }
    }
    SSL_EXPECT(worst <= tol, "sample %d: off (%d, %d, %d) by %d > %d (first pixel %d %d %d)", i, r, g,
               b, worst, tol, p[0], p[1], p[2]);
}

static void expect_fn(const uint8_t *img, int i, const char *what, int (*want)(int x, int y, int c))
{
    const uint8_t *p = img + (size_t)i * S * S * 3;
    int bad = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            for (int c = 0; c < 3; c++) {
                int v = p[(y * S + x) * 3 + c], w = want(x, y, c);
                if (v != w && bad++ == 0)
                    SSL_EXPECT(0, "sample %d (%s): pixel (%d, %d) channel %d is %d, expected %d", i,
                               what, x, y, c, v, w);
            }
}

static int want_area(int x, int y, int c) { return area_base(x, y, c) + 2; }
static int want_crop(int x, int y, int c) { return c == 0 ? 5 * (x + 4) : c == 1 ? 7 * y : 100; }
static int want_ramp(int x, int y, int c)
{
    (void)y, (void)c;
    return x == 0 ? 0 : x == S - 1 ? 112 : 8 * x - 4; /* centres at x/2 - 1/4, clamped at the edges */
}

static void read_file(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void test_tree(const char *root)
{
    char src[512], out[512], p[512], err[1024];
    at(src, root, "src");
    at(out, root, "out");
    SSL_ASSERT(mkdir(src, 0777) == 0);
    build_tree(src);
    int rc = ssl_prep_images(src, out, &(ssl_prep_images_opts){.size = S, .shard_size = 5}, err, sizeof err);
    SSL_EXPECT(rc == 0, "prep failed: %s", err);
    if (rc) return;
    char text[256];
    read_file(at(p, out, "classes.txt"), text, sizeof text);
    SSL_EXPECT(!strcmp(text, "a_cats\nb_dogs\nc_birds\n"), "classes.txt is '%s'", text);

    ssl_dataset *d = ssl_dataset_open(at(p, out, "train-*.h5"), err, sizeof err);
    SSL_EXPECT(d != NULL, "open: %s", err);
    if (!d) return;
    SSL_EXPECT(ssl_dataset_size(d) == N_IMAGES, "%lld images, expected %d", (long long)ssl_dataset_size(d), N_IMAGES);
    SSL_EXPECT(ssl_dataset_num_shards(d) == 3, "%d shards, expected 3 of 5, 5, 2", ssl_dataset_num_shards(d));
    SSL_EXPECT(ssl_dataset_height(d) == S && ssl_dataset_width(d) == S && ssl_dataset_channels(d) == 3,
               "shape %dx%dx%d", ssl_dataset_height(d), ssl_dataset_width(d), ssl_dataset_channels(d));
    SSL_EXPECT(ssl_dataset_num_classes(d) == 3, "num_classes %d", ssl_dataset_num_classes(d));
    if (ssl_dataset_size(d) == N_IMAGES) {
        int64_t idx[N_IMAGES];
        int32_t lab[N_IMAGES];
        for (int i = 0; i < N_IMAGES; i++) idx[i] = i;
        uint8_t *img = ssl_malloc((size_t)N_IMAGES * S * S * 3);
        rc = ssl_dataset_read(d, idx, N_IMAGES, img, lab, err, sizeof err);
        SSL_EXPECT(rc == 0, "read: %s", err);
        for (int i = 0; rc == 0 && i < N_IMAGES; i++)
            SSL_EXPECT(lab[i] == want_labels[i], "sample %d: label %d, expected %d", i, lab[i], want_labels[i]);
        if (rc == 0) {
            expect_fn(img, 0, "16x16 RGB copied", px_exact);
            expect_solid(img, 1, 100, 100, 100, 0);  /* gray 20x24: area downscale */
            expect_solid(img, 2, 10, 200, 30, 0);    /* RGBA: alpha dropped */
            expect_fn(img, 3, "64x64 area average", want_area);
            expect_solid(img, 4, 250, 5, 128, 0);    /* palette 8x12: bilinear upscale */
            expect_solid(img, 5, 30, 140, 220, 4);   /* JPEG 40x30 */
            expect_fn(img, 6, "48x32 PNG named .jpg, centre crop", want_crop);
            expect_fn(img, 7, "8x8 ramp, bilinear", want_ramp);
            expect_solid(img, 8, 77, 77, 77, 2);     /* gray JPEG 64x48 */
            expect_solid(img, 9, 200, 200, 200, 0);  /* 16-bit gray */
            expect_solid(img, 10, 170, 170, 170, 0); /* 2-bit gray */
            expect_solid(img, 11, 200, 100, 50, 4);  /* Adobe CMYK JPEG */
        }
        ssl_free(img);
    }
    ssl_dataset_close(d);

    /* A validation split next to it: same classes (classes.txt agrees), another prefix. */
    rc = ssl_prep_images(src, out, &(ssl_prep_images_opts){.prefix = "val", .size = S}, err, sizeof err);
    SSL_EXPECT(rc == 0, "val prep failed: %s", err);
    d = ssl_dataset_open(at(p, out, "val-*.h5"), err, sizeof err);
    SSL_EXPECT(d && ssl_dataset_size(d) == N_IMAGES && ssl_dataset_num_shards(d) == 1,
               "val split: %s", d ? "wrong size" : err);
    ssl_dataset_close(d);

    /* Other classes into the same folder would relabel: refused, naming classes.txt. */
    char src2[512];
    at(src2, root, "src2");
    SSL_ASSERT(mkdir(src2, 0777) == 0);
    mkdir_at(src2, "x");
    write_rgb_png(at(p, src2, "x/a.png"), 16, 16, px_exact);
    rc = ssl_prep_images(src2, out, &(ssl_prep_images_opts){.prefix = "test", .size = S}, err, sizeof err);
    SSL_EXPECT(rc != 0 && strstr(err, "classes.txt") && strstr(err, "line 1"),
               "other classes: rc %d, '%s'", rc, err);
    SSL_EXPECT(access(at(p, out, "test-00000.h5"), F_OK) != 0, "test shard written despite the error");

    /* The output folder inside the source folder would become a class. */
    rc = ssl_prep_images(root, out, &(ssl_prep_images_opts){.size = S}, err, sizeof err);
    SSL_EXPECT(rc != 0 && strstr(err, "output folder is inside"), "out inside src: rc %d, '%s'", rc, err);
}

/* Runs a prep that must fail; the message must contain want (and want2 if set), and the output
 * folder must hold nothing (no shard, no .tmp, no classes.txt). */
static void expect_fail(const char *src, const char *out, int size, const char *want, const char *want2)
{
    char err[1024] = "";
    int rc = ssl_prep_images(src, out, &(ssl_prep_images_opts){.size = size}, err, sizeof err);
    SSL_EXPECT(rc != 0, "prep of %s succeeded, expected an error with '%s'", src, want);
    SSL_EXPECT(strstr(err, want) != NULL, "message '%s' lacks '%s'", err, want);
    if (want2) SSL_EXPECT(strstr(err, want2) != NULL, "message '%s' lacks '%s'", err, want2);
    int n = dir_entries(out);
    SSL_EXPECT(n <= 0, "%s: %d entries left after a failed prep", out, n);
}

static void test_errors(const char *root)
{
    char src[512], out[512], p[512];
    /* No class folders (files only). */
    at(src, root, "e_empty");
    SSL_ASSERT(mkdir(src, 0777) == 0);
    write_text(at(p, src, "a.txt"), "x");
    expect_fail(src, at(out, root, "o_empty"), S, "no class folders", src);
    expect_fail(at(p, root, "missing"), at(out, root, "o_missing"), S, "missing", "cannot open");

    /* A class folder without images. */
    at(src, root, "e_cls");
    SSL_ASSERT(mkdir(src, 0777) == 0);
    mkdir_at(src, "a");
    mkdir_at(src, "b");
    write_rgb_png(at(p, src, "a/x.png"), 16, 16, px_exact);
    write_text(at(p, src, "b/readme.txt"), "x");
    expect_fail(src, at(out, root, "o_cls"), S, "/e_cls/b: class folder has no PNG or JPEG", NULL);

    /* A JPEG cut in the middle of its entropy-coded data (libjpeg would only warn and fill grey). */
    at(src, root, "e_jpeg");
    SSL_ASSERT(mkdir(src, 0777) == 0);
    mkdir_at(src, "k");
    write_rgb_png(at(p, src, "k/a_good.png"), 16, 16, px_exact);
    uint8_t *noise = ssl_malloc(64 * 64 * 3);
    uint32_t s = 12345;
    for (int i = 0; i < 64 * 64 * 3; i++) noise[i] = (uint8_t)((s = s * 1664525u + 1013904223u) >> 24);
    write_jpeg(at(p, src, "k/b_bad.jpg"), 64, 64, 3, noise, 90);
    ssl_free(noise);
    struct stat st;
    SSL_ASSERT(stat(p, &st) == 0 && truncate(p, st.st_size / 2) == 0);
    expect_fail(src, at(out, root, "o_jpeg"), S, "k/b_bad.jpg: corrupt or unsupported JPEG",
                "Premature end");

    /* A truncated PNG. */
    at(src, root, "e_png");
    SSL_ASSERT(mkdir(src, 0777) == 0);
    mkdir_at(src, "k");
    write_rgb_png(at(p, src, "k/a.png"), 64, 64, px_area);
    SSL_ASSERT(stat(p, &st) == 0 && truncate(p, st.st_size / 2) == 0);
    expect_fail(src, at(out, root, "o_png"), S, "k/a.png: corrupt or unsupported PNG", NULL);

    /* size 0 keeps the first image's size and insists on it. */
    at(src, root, "e_size");
    SSL_ASSERT(mkdir(src, 0777) == 0);
    mkdir_at(src, "k");
    write_rgb_png(at(p, src, "k/a.png"), 20, 12, px_exact);
    write_rgb_png(at(p, src, "k/b.png"), 12, 20, px_exact);
    expect_fail(src, at(out, root, "o_size"), 0, "k/b.png: image is 12x20", "k/a.png is 20x12");
    SSL_ASSERT(unlink(p) == 0);
    write_solid_jpeg(p, 20, 12, 3, (const uint8_t[]){1, 2, 3});
    char err[1024];
    int rc = ssl_prep_images(src, at(out, root, "o_size"), NULL, err, sizeof err);
    SSL_EXPECT(rc == 0, "size 0: %s", err);
    ssl_dataset *d = rc ? NULL : ssl_dataset_open(out, err, sizeof err);
    SSL_EXPECT(!d || (ssl_dataset_size(d) == 2 && ssl_dataset_height(d) == 12 && ssl_dataset_width(d) == 20),
               "size 0 keeps 20x12");
    if (d) { /* a copy, byte for byte */
        int64_t i0 = 0;
        uint8_t *img = ssl_malloc(12 * 20 * 3);
        SSL_EXPECT(ssl_dataset_read(d, &i0, 1, img, NULL, err, sizeof err) == 0, "read: %s", err);
        int bad = 0;
        for (int y = 0; y < 12; y++)
            for (int x = 0; x < 20; x++)
                for (int c = 0; c < 3; c++) bad += img[(y * 20 + x) * 3 + c] != (uint8_t)px_exact(x, y, c);
        SSL_EXPECT(bad == 0, "size 0: %d bytes differ from the source", bad);
        ssl_free(img);
    }
    ssl_dataset_close(d);
}

int main(void)
{
    char root[64];
    ssl_test_tmpdir(root, "prepimg");
    test_tree(root);
    test_errors(root);
    ssl_test_rmtree(root);
    return ssl_test_exit();
}
