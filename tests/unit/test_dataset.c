/* HDF5 shard dataset: writer -> reader round trips (exact images and labels, any index list across
 * shard boundaries), the on-disk format, Fashion-MNIST / CIFAR converters on synthetic inputs (and
 * the real Fashion-MNIST test split when installed), and every corrupt-input message. */
#include <stdio.h>

#include "common/shard_testutil.h"
#include "common/testutil.h"
#include "framework/core/check.h"
#include "io/dataset.h"
#include "io/prep.h"
#include "io/shard_writer.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Reads idx[] from d and compares with the synthetic samples. */
static void check_read(ssl_dataset *d, const int64_t *idx, int n, int ncls, const char *what)
{
    size_t sb = (size_t)ssl_dataset_height(d) * ssl_dataset_width(d) * ssl_dataset_channels(d);
    uint8_t *img = ssl_malloc((size_t)n * sb);
    int32_t *lab = ssl_malloc((size_t)n * sizeof *lab);
    char err[512];
    int rc = ssl_dataset_read(d, idx, n, img, lab, err, sizeof err);
    SSL_EXPECT(rc == 0, "%s: read failed: %s", what, err);
    if (rc == 0)
        SSL_EXPECT(ssl_test_samples_match(idx, n, sb, img, ncls > 0 ? lab : NULL, ncls),
                   "%s: samples differ", what);
    if (rc == 0 && ncls == 0)
        for (int i = 0; i < n; i++) SSL_EXPECT(lab[i] == -1, "%s: unlabelled label %d", what, lab[i]);
    ssl_free(img);
    ssl_free(lab);
}

static void test_roundtrip(const char *root)
{
    char dir[512], pat[600], err[512];
    snprintf(dir, sizeof dir, "%s/rt", root);
    SSL_EXPECT(mkdir(dir, 0777) == 0, "mkdir");
    /* 250 samples of 5x4x3, 64 per shard (4 shards: 64,64,64,58), 16 per chunk, uncompressed */
    SSL_EXPECT(ssl_test_write_shards(dir, "a", 250, 5, 4, 3, 64, 16, 0, 7) == 4, "write a");
    for (int i = 0; i < 4; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/a-%05d.h5", dir, i);
        SSL_EXPECT(file_exists(p), "%s exists", p);
        snprintf(p, sizeof p, "%s/a-%05d.h5.tmp", dir, i);
        SSL_EXPECT(!file_exists(p), "%s removed", p);
    }
    ssl_dataset *d = ssl_dataset_open(dir, err, sizeof err);
    SSL_EXPECT(d, "open dir: %s", err);
    if (!d) return;
    SSL_EXPECT(ssl_dataset_size(d) == 250, "size %lld", (long long)ssl_dataset_size(d));
    SSL_EXPECT(ssl_dataset_height(d) == 5 && ssl_dataset_width(d) == 4 && ssl_dataset_channels(d) == 3,
               "dims");
    SSL_EXPECT(ssl_dataset_num_classes(d) == 7 && ssl_dataset_has_labels(d), "labels meta");
    SSL_EXPECT(ssl_dataset_num_shards(d) == 4, "shards %d", ssl_dataset_num_shards(d));
    SSL_EXPECT(strstr(ssl_dataset_shard_path(d, 3), "a-00003.h5") != NULL, "sorted shard order");
    int64_t all[250];
    for (int i = 0; i < 250; i++) all[i] = i;
    check_read(d, all, 250, 7, "all in order");
    int64_t mixed[] = {63, 64, 65, 0, 249, 128, 127, 5, 5, 191, 192, 193, 194, 1, 2, 3, 248, 247};
    check_read(d, mixed, (int)(sizeof mixed / sizeof *mixed), 7, "across boundaries");
    int64_t rnd[100];
    for (int i = 0; i < 100; i++) rnd[i] = (int64_t)((i * 7919 + 13) % 250);
    check_read(d, rnd, 100, 7, "scattered");
    int64_t bad[2] = {3, 250};
    uint8_t buf[2 * 60];
    SSL_EXPECT(ssl_dataset_read(d, bad, 2, buf, NULL, err, sizeof err) == -1 &&
                   strstr(err, "index 250 out of range [0, 250)"),
               "out-of-range index: %s", err);
    printf("out-of-range index: %s\n", err);
    SSL_EXPECT(ssl_dataset_close(d) == 0, "close");

    /* format on disk: attributes, dtypes, chunking along N */
    char p0[600];
    snprintf(p0, sizeof p0, "%s/a-00000.h5", dir);
    hid_t f = H5Fopen(p0, H5F_ACC_RDONLY, H5P_DEFAULT);
    SSL_EXPECT(f >= 0, "H5Fopen %s", p0);
    if (f >= 0) {
        hid_t a = H5Aopen(f, "format", H5P_DEFAULT);
        hid_t t = H5Aget_type(a);
        char fmt[32] = "";
        SSL_EXPECT(H5Tget_size(t) < sizeof fmt && H5Aread(a, t, fmt) >= 0 &&
                       strcmp(fmt, "sslrun-shard") == 0, "format attr '%s'", fmt);
        H5Tclose(t);
        H5Aclose(a);
        int v = 0;
        a = H5Aopen(f, "version", H5P_DEFAULT);
        SSL_EXPECT(H5Aread(a, H5T_NATIVE_INT, &v) >= 0 && v == SSL_SHARD_VERSION, "version %d", v);
        H5Aclose(a);
        hid_t ds = H5Dopen2(f, "images", H5P_DEFAULT);
        hid_t dcpl = H5Dget_create_plist(ds);
        hsize_t c[4] = {0, 0, 0, 0};
        SSL_EXPECT(H5Pget_chunk(dcpl, 4, c) == 4 && c[0] == 16 && c[1] == 5 && c[2] == 4 && c[3] == 3,
                   "chunk (%llu,%llu,%llu,%llu)", (unsigned long long)c[0],
                   (unsigned long long)c[1], (unsigned long long)c[2], (unsigned long long)c[3]);
        hid_t t8 = H5Dget_type(ds);
        SSL_EXPECT(H5Tequal(t8, H5T_STD_U8LE) > 0, "images stored as u8");
        H5Tclose(t8);
        H5Pclose(dcpl);
        H5Dclose(ds);
        ds = H5Dopen2(f, "labels", H5P_DEFAULT);
        hid_t t32 = H5Dget_type(ds);
        SSL_EXPECT(H5Tequal(t32, H5T_STD_I32LE) > 0, "labels stored as i32le");
        H5Tclose(t32);
        H5Dclose(ds);
        H5Fclose(f);
    }

    /* deflate + automatic chunk + a glob; a stray .tmp (interrupted prep) is never read */
    SSL_EXPECT(ssl_test_write_shards(dir, "c", 230, 6, 6, 1, 100, 0, 4, 10) == 3, "write c");
    char tmp[600], src[600];
    snprintf(src, sizeof src, "%s/c-00000.h5", dir);
    snprintf(tmp, sizeof tmp, "%s/c-00003.h5.tmp", dir);
    FILE *in = fopen(src, "rb"), *out = fopen(tmp, "wb");
    char cbuf[4096];
    size_t r;
    while (in && out && (r = fread(cbuf, 1, sizeof cbuf, in)) > 0) fwrite(cbuf, 1, r, out);
    if (in) fclose(in);
    if (out) fclose(out);
    snprintf(pat, sizeof pat, "%s/c-*", dir);
    d = ssl_dataset_open(pat, err, sizeof err);
    SSL_EXPECT(d, "open glob: %s", err);
    if (d) {
        SSL_EXPECT(ssl_dataset_size(d) == 230 && ssl_dataset_num_shards(d) == 3, "glob size %lld",
                   (long long)ssl_dataset_size(d));
        int64_t idx[230];
        for (int i = 0; i < 230; i++) idx[i] = 229 - i;
        check_read(d, idx, 230, 10, "deflate reversed");
        int64_t rnd230[100];
        for (int i = 0; i < 100; i++) rnd230[i] = rnd[i] % 230;
        check_read(d, rnd230, 100, 10, "deflate scattered");
        ssl_dataset_close(d);
    }
    unlink(tmp);

    /* unlabelled, single file */
    SSL_EXPECT(ssl_test_write_shards(dir, "u", 30, 2, 2, 2, 1000, 4, 0, 0) == 1, "write u");
    snprintf(pat, sizeof pat, "%s/u-00000.h5", dir);
    d = ssl_dataset_open(pat, err, sizeof err);
    SSL_EXPECT(d && !ssl_dataset_has_labels(d) && ssl_dataset_size(d) == 30, "unlabelled: %s", err);
    if (d) {
        int64_t rnd30[20];
        for (int i = 0; i < 20; i++) rnd30[i] = rnd[i] % 30;
        check_read(d, rnd30, 20, 0, "unlabelled");
        ssl_dataset_close(d);
    }

    /* re-prep with a larger shard size removes the stale higher-numbered shards */
    SSL_EXPECT(ssl_test_write_shards(dir, "s", 100, 2, 2, 1, 20, 0, 0, 3) == 5, "write s/20");
    SSL_EXPECT(ssl_test_write_shards(dir, "s", 100, 2, 2, 1, 60, 0, 0, 3) == 2, "write s/60");
    snprintf(pat, sizeof pat, "%s/s-*.h5", dir);
    d = ssl_dataset_open(pat, err, sizeof err);
    SSL_EXPECT(d && ssl_dataset_num_shards(d) == 2 && ssl_dataset_size(d) == 100,
               "stale shards removed: %s", d ? "" : err);
    ssl_dataset_close(d);

    /* an aborted writer leaves neither a final shard nor its .tmp */
    ssl_shard_spec spec = {.out_dir = dir, .prefix = "z", .height = 2, .width = 2, .channels = 1,
                           .shard_size = 10, .chunk = 2};
    ssl_shard_writer *w = ssl_shard_writer_open(&spec, err, sizeof err);
    uint8_t px[4 * 5] = {0};
    SSL_EXPECT(w && ssl_shard_writer_add(w, px, NULL, 5, err, sizeof err) == 0, "z add: %s", err);
    ssl_shard_writer_abort(w);
    snprintf(pat, sizeof pat, "%s/z-00000.h5", dir);
    SSL_EXPECT(!file_exists(pat), "aborted shard absent");
    snprintf(pat, sizeof pat, "%s/z-00000.h5.tmp", dir);
    SSL_EXPECT(!file_exists(pat), "aborted .tmp removed");
    /* label outside [0, num_classes) is refused by the writer */
    spec.with_labels = 1;
    spec.num_classes = 3;
    w = ssl_shard_writer_open(&spec, err, sizeof err);
    int32_t badlab[1] = {3};
    SSL_EXPECT(w && ssl_shard_writer_add(w, px, badlab, 1, err, sizeof err) == -1 &&
                   strstr(err, "label 3, outside [0, 3)"), "writer label check: %s", err);
    SSL_EXPECT(w && ssl_shard_writer_close(w, err, sizeof err) == -1, "close after failure");
}

/* ---- synthetic Fashion-MNIST idx / CIFAR inputs -------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* idx files: n_declared in the headers, n_data images written; label of image i is lab_of(i). */
static void write_idx(const char *dir, const char *split, uint32_t img_magic, int n_declared,
                      int n_data, int n_labels, int bad_label_at)
{
    char p[600];
    unsigned char h[16];
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte.gz", dir, split);
    gzFile f = gzopen(p, "wb");
    SSL_ASSERT(f != NULL);
    put_be32(h, img_magic);
    put_be32(h + 4, (uint32_t)n_declared);
    put_be32(h + 8, 28);
    put_be32(h + 12, 28);
    gzwrite(f, h, 16);
    unsigned char img[784];
    for (int i = 0; i < n_data; i++) {
        for (int k = 0; k < 784; k++) img[k] = ssl_test_pixel(i, (size_t)k);
        gzwrite(f, img, 784);
    }
    gzclose(f);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    f = gzopen(p, "wb");
    SSL_ASSERT(f != NULL);
    put_be32(h, 0x801);
    put_be32(h + 4, (uint32_t)n_labels);
    gzwrite(f, h, 8);
    for (int i = 0; i < n_labels; i++) {
        unsigned char l = i == bad_label_at ? 10 : (unsigned char)ssl_test_label(i, 10);
        gzwrite(f, &l, 1);
    }
    gzclose(f);
}

static void expect_prep_fail(const char *src, const char *out, const char *want)
{
    char err[512] = "";
    int rc = ssl_prep_fashion_mnist(src, out, 64, err, sizeof err);
    SSL_EXPECT(rc == -1 && strstr(err, want), "prep should fail with '%s', got rc %d: %s", want, rc,
               err);
    printf("prep error: %s\n", err);
}

static void test_prep_fmnist(const char *root)
{
    char src[512], out[512], pat[600], err[512];
    snprintf(src, sizeof src, "%s/fm-src", root);
    snprintf(out, sizeof out, "%s/fm-out/nested", root);
    SSL_EXPECT(mkdir(src, 0777) == 0, "mkdir");
    write_idx(src, "train", 0x803, 150, 150, 150, -1);
    write_idx(src, "t10k", 0x803, 40, 40, 40, -1);
    SSL_EXPECT(ssl_prep_fashion_mnist(src, out, 64, err, sizeof err) == 0, "prep: %s", err);
    const char *splits[2] = {"train", "test"};
    const int counts[2] = {150, 40};
    for (int s = 0; s < 2; s++) {
        snprintf(pat, sizeof pat, "%s/%s-*.h5", out, splits[s]);
        ssl_dataset *d = ssl_dataset_open(pat, err, sizeof err);
        SSL_EXPECT(d, "open %s: %s", pat, err);
        if (!d) continue;
        SSL_EXPECT(ssl_dataset_size(d) == counts[s] && ssl_dataset_height(d) == 28 &&
                       ssl_dataset_width(d) == 28 && ssl_dataset_channels(d) == 1 &&
                       ssl_dataset_num_classes(d) == 10 && ssl_dataset_has_labels(d),
                   "%s meta: n %lld", splits[s], (long long)ssl_dataset_size(d));
        SSL_EXPECT(ssl_dataset_num_shards(d) == (counts[s] + 63) / 64, "%s shards", splits[s]);
        int64_t idx[150];
        for (int i = 0; i < counts[s]; i++) idx[i] = i;
        check_read(d, idx, counts[s], 10, splits[s]);
        ssl_dataset_close(d);
    }
    /* each bad input names the file and the problem */
    write_idx(src, "train", 0x804, 150, 150, 150, -1);
    expect_prep_fail(src, out, "train-images-idx3-ubyte.gz: idx magic 0x00000804, expected 0x00000803");
    write_idx(src, "train", 0x803, 150, 150, 149, -1);
    expect_prep_fail(src, out, "train-images-idx3-ubyte.gz: 150 images but");
    write_idx(src, "train", 0x803, 150, 120, 150, -1);
    expect_prep_fail(src, out, "train-images-idx3-ubyte.gz: unexpected end of file after 120 of 150 images");
    write_idx(src, "train", 0x803, 150, 151, 150, -1);
    expect_prep_fail(src, out, "train-images-idx3-ubyte.gz: data continues past the count");
    write_idx(src, "train", 0x803, 150, 150, 150, 77);
    expect_prep_fail(src, out, "train-labels-idx1-ubyte.gz: label 77 is 10, outside [0, 10)");
    snprintf(pat, sizeof pat, "%s/nope", root);
    expect_prep_fail(pat, out, "nope/train-labels-idx1-ubyte.gz: cannot open");
    /* failed preps left the earlier good shards (no .tmp, no partial shard) */
    snprintf(pat, sizeof pat, "%s/train-00002.h5.tmp", out);
    SSL_EXPECT(!file_exists(pat), "no .tmp after a failed prep");
}

/* The real test split, when Debian's dataset-fashion-mnist is installed. */
static void test_prep_real_fmnist(const char *root)
{
    const char *src = "/usr/share/datasets/fashion-mnist";
    char img[256], lab[256], out[512], err[512];
    snprintf(img, sizeof img, "%s/t10k-images-idx3-ubyte.gz", src);
    snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte.gz", src);
    if (!file_exists(img) || !file_exists(lab)) {
        printf("real Fashion-MNIST not installed: skipped that part\n");
        return;
    }
    snprintf(out, sizeof out, "%s/fm-real", root);
    SSL_EXPECT(ssl_prep_idx(img, lab, out, "test", 10, 4000, err, sizeof err) == 0, "prep real: %s", err);
    ssl_dataset *d = ssl_dataset_open(out, err, sizeof err);
    SSL_EXPECT(d, "open real: %s", err);
    if (!d) return;
    SSL_EXPECT(ssl_dataset_size(d) == 10000 && ssl_dataset_num_shards(d) == 3, "real n %lld",
               (long long)ssl_dataset_size(d));
    int64_t *idx = ssl_malloc(10000 * sizeof *idx);
    uint8_t *im = ssl_malloc((size_t)10000 * 784);
    int32_t *lb = ssl_malloc(10000 * sizeof *lb);
    for (int i = 0; i < 10000; i++) idx[i] = i;
    SSL_EXPECT(ssl_dataset_read(d, idx, 10000, im, lb, err, sizeof err) == 0, "read real: %s", err);
    int hist[10] = {0};
    for (int i = 0; i < 10000; i++)
        if (lb[i] >= 0 && lb[i] < 10) hist[lb[i]]++;
    for (int c = 0; c < 10; c++) SSL_EXPECT(hist[c] == 1000, "class %d: %d samples", c, hist[c]);
    /* images byte-identical to the idx payload */
    gzFile f = gzopen(img, "rb");
    unsigned char *raw = ssl_malloc((size_t)10000 * 784 + 16);
    SSL_EXPECT(f && gzread(f, raw, 10000 * 784 + 16) == 10000 * 784 + 16, "gzread real");
    if (f) gzclose(f);
    SSL_EXPECT(memcmp(raw + 16, im, (size_t)10000 * 784) == 0, "real images differ from idx data");
    ssl_free(raw);
    ssl_free(idx);
    ssl_free(im);
    ssl_free(lb);
    ssl_dataset_close(d);
}

static void write_cifar(const char *path, int nrec, int label_bytes, int first)
{
    FILE *f = fopen(path, "wb");
    SSL_ASSERT(f != NULL);
    unsigned char rec[3074];
    for (int i = 0; i < nrec; i++) {
        int g = first + i;
        if (label_bytes == 2) rec[0] = (unsigned char)(g % 20); /* coarse */
        rec[label_bytes - 1] = (unsigned char)ssl_test_label(g, label_bytes == 2 ? 100 : 10);
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 1024; p++) /* CHW in the file: value of HWC byte p*3+c */
                rec[label_bytes + c * 1024 + p] = ssl_test_pixel(g, (size_t)p * 3 + (size_t)c);
        fwrite(rec, 1, (size_t)label_bytes + 3072, f);
    }
    fclose(f);
}

static void test_prep_cifar(const char *root)
{
    char src[512], out[512], p[700], err[512];
    /* CIFAR-10 in the archive's subdirectory, passed its parent */
    snprintf(src, sizeof src, "%s/c10/cifar-10-batches-bin", root);
    snprintf(p, sizeof p, "%s/c10", root);
    SSL_EXPECT(mkdir(p, 0777) == 0 && mkdir(src, 0777) == 0, "mkdir");
    for (int b = 0; b < 5; b++) {
        snprintf(p, sizeof p, "%s/data_batch_%d.bin", src, b + 1);
        write_cifar(p, 7, 1, 7 * b);
    }
    snprintf(p, sizeof p, "%s/test_batch.bin", src);
    write_cifar(p, 5, 1, 0);
    snprintf(out, sizeof out, "%s/c10-out", root);
    snprintf(p, sizeof p, "%s/c10", root);
    SSL_EXPECT(ssl_prep_cifar(p, out, 0, 16, err, sizeof err) == 0, "prep cifar10: %s", err);
    snprintf(p, sizeof p, "%s/train-*.h5", out);
    ssl_dataset *d = ssl_dataset_open(p, err, sizeof err);
    SSL_EXPECT(d && ssl_dataset_size(d) == 35 && ssl_dataset_height(d) == 32 &&
                   ssl_dataset_channels(d) == 3 && ssl_dataset_num_classes(d) == 10 &&
                   ssl_dataset_num_shards(d) == 3, "cifar10 train: %s", d ? "meta" : err);
    int64_t idx[35];
    for (int i = 0; i < 35; i++) idx[i] = i;
    if (d) check_read(d, idx, 35, 10, "cifar10 train (CHW->HWC)");
    ssl_dataset_close(d);
    snprintf(p, sizeof p, "%s/test-*.h5", out);
    d = ssl_dataset_open(p, err, sizeof err);
    SSL_EXPECT(d && ssl_dataset_size(d) == 5, "cifar10 test: %s", d ? "size" : err);
    if (d) check_read(d, idx, 5, 10, "cifar10 test");
    ssl_dataset_close(d);

    /* CIFAR-100: fine label (second byte) */
    snprintf(src, sizeof src, "%s/c100", root);
    SSL_EXPECT(mkdir(src, 0777) == 0, "mkdir");
    snprintf(p, sizeof p, "%s/train.bin", src);
    write_cifar(p, 9, 2, 0);
    snprintf(p, sizeof p, "%s/test.bin", src);
    write_cifar(p, 4, 2, 0);
    snprintf(out, sizeof out, "%s/c100-out", root);
    SSL_EXPECT(ssl_prep_cifar(src, out, 1, 0, err, sizeof err) == 0, "prep cifar100: %s", err);
    snprintf(p, sizeof p, "%s/train-*.h5", out);
    d = ssl_dataset_open(p, err, sizeof err);
    SSL_EXPECT(d && ssl_dataset_size(d) == 9 && ssl_dataset_num_classes(d) == 100,
               "cifar100: %s", d ? "meta" : err);
    if (d) check_read(d, idx, 9, 100, "cifar100 fine labels");
    ssl_dataset_close(d);
    /* a file that is not whole records */
    snprintf(p, sizeof p, "%s/train.bin", src);
    FILE *f = fopen(p, "ab");
    fputc(1, f);
    fclose(f);
    SSL_EXPECT(ssl_prep_cifar(src, out, 1, 0, err, sizeof err) == -1 &&
                   strstr(err, "train.bin: size 27667 is not a positive multiple of the 3074-byte"),
               "cifar bad size: %s", err);
    printf("prep error: %s\n", err);
}

/* ---- corrupt shards -------------------------------------------------------------------------- */

typedef struct {
    hid_t img_type;      /* 0: no images dataset */
    int img_rank;
    hsize_t img_dims[4];
    hid_t lab_type;      /* 0: no labels dataset */
    hsize_t lab_len;
    int lab_value;
    int height, width, channels, num_classes;
} bad_spec;

static void put_int_attr(hid_t f, const char *name, int v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    SSL_ASSERT(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &v) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
}

/* A file in the HDF5 1.10 format the reader requires (what h5py writes with libver="v110"). */
static hid_t create_v110(const char *path)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

/* A hand-made shard with exactly the defects asked for. */
static void write_bad(const char *path, const bad_spec *b)
{
    hid_t f = create_v110(path);
    SSL_ASSERT(f >= 0);
    put_int_attr(f, "height", b->height);
    put_int_attr(f, "width", b->width);
    put_int_attr(f, "channels", b->channels);
    put_int_attr(f, "num_classes", b->num_classes);
    put_int_attr(f, "version", SSL_SHARD_VERSION);
    if (b->img_type) {
        hid_t sp = H5Screate_simple(b->img_rank, b->img_dims, NULL);
        hid_t ds = H5Dcreate2(f, "images", b->img_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        SSL_ASSERT(ds >= 0);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    if (b->lab_type) {
        hid_t sp = H5Screate_simple(1, &b->lab_len, NULL);
        hid_t ds = H5Dcreate2(f, "labels", b->lab_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        int *v = ssl_malloc((b->lab_len + 1) * sizeof *v);
        for (hsize_t i = 0; i < b->lab_len; i++) v[i] = i == b->lab_len / 2 ? b->lab_value : 1;
        SSL_ASSERT(ds >= 0 && H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
        ssl_free(v);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    SSL_ASSERT(H5Fclose(f) >= 0);
}

/* ssl_dataset_open(spec) must fail with a message containing both substrings. */
static void expect_open_fail(const char *spec, const char *want1, const char *want2)
{
    char err[1024] = "";
    ssl_dataset *d = ssl_dataset_open(spec, err, sizeof err);
    SSL_EXPECT(!d, "open %s should fail", spec);
    ssl_dataset_close(d);
    SSL_EXPECT(strstr(err, want1) && strstr(err, want2), "message '%s' lacks '%s' / '%s'", err,
               want1, want2);
    printf("error: %s\n", err);
}

static void test_corrupt(const char *root)
{
    char dir[512], p[700], q[700];
    const bad_spec good = {.img_type = H5T_STD_U8LE, .img_rank = 4, .img_dims = {10, 28, 28, 1},
                           .lab_type = H5T_STD_I32LE, .lab_len = 10, .lab_value = 1,
                           .height = 28, .width = 28, .channels = 1, .num_classes = 10};
    struct {
        const char *name;
        bad_spec b;
        const char *want;
    } cases[12];
    int nc = 0;
    cases[nc].name = "noimages";
    cases[nc].b = good;
    cases[nc].b.img_type = 0;
    cases[nc++].want = ": missing dataset 'images'";
    cases[nc].name = "float";
    cases[nc].b = good;
    cases[nc].b.img_type = H5T_IEEE_F32LE;
    cases[nc++].want = ": dataset 'images' has type float32, expected uint8";
    cases[nc].name = "int16";
    cases[nc].b = good;
    cases[nc].b.img_type = H5T_STD_I16BE;
    cases[nc++].want = ": dataset 'images' has type int16 big-endian, expected uint8";
    cases[nc].name = "lablen";
    cases[nc].b = good;
    cases[nc].b.lab_len = 9;
    cases[nc++].want = ": dataset 'labels' has 9 entries but dataset 'images' has 10";
    cases[nc].name = "labtype";
    cases[nc].b = good;
    cases[nc].b.lab_type = H5T_STD_I64LE;
    cases[nc++].want = ": dataset 'labels' has type int64, expected int32";
    cases[nc].name = "labrange";
    cases[nc].b = good;
    cases[nc].b.lab_value = 12;
    cases[nc++].want = ": dataset 'labels' row 5 has value 12, outside [0, 10)";
    cases[nc].name = "rank3";
    cases[nc].b = good;
    cases[nc].b.img_rank = 3;
    cases[nc++].want = ": dataset 'images' has rank 3, expected 4";
    cases[nc].name = "attrs";
    cases[nc].b = good;
    cases[nc].b.height = 32;
    cases[nc++].want = ": dataset 'images' shape (10,28,28,1) does not match attributes height=32";
    for (int i = 0; i < nc; i++) {
        snprintf(p, sizeof p, "%s/%s-00000.h5", root, cases[i].name);
        write_bad(p, &cases[i].b);
        expect_open_fail(p, p, cases[i].want);
    }

    /* wrong format marker / unknown version */
    snprintf(p, sizeof p, "%s/fmt-00000.h5", root);
    write_bad(p, &good);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 6);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    SSL_ASSERT(a >= 0 && H5Awrite(a, t, "other") >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
    expect_open_fail(p, p, ": attribute 'format' is 'other', expected 'sslrun-shard'");
    snprintf(p, sizeof p, "%s/ver-00000.h5", root);
    write_bad(p, &good);
    f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    SSL_ASSERT(f >= 0 && H5Adelete(f, "version") >= 0);
    put_int_attr(f, "version", SSL_SHARD_VERSION + 1);
    H5Fclose(f);
    char want[96];
    snprintf(want, sizeof want, ": attribute 'version' is %d, this reader knows version %d", SSL_SHARD_VERSION + 1,
             SSL_SHARD_VERSION);
    expect_open_fail(p, p, want);

    /* inconsistent shapes across shards: the later shard is named, with the first as reference */
    snprintf(dir, sizeof dir, "%s/shapes", root);
    SSL_EXPECT(mkdir(dir, 0777) == 0, "mkdir");
    SSL_EXPECT(ssl_test_write_shards(dir, "train", 100, 28, 28, 1, 100, 0, 0, 10) == 1, "w");
    snprintf(p, sizeof p, "%s/train-00001.h5", dir);
    bad_spec rgb = good;
    rgb.img_dims[0] = 100;
    rgb.img_dims[3] = 3;
    rgb.channels = 3;
    rgb.lab_len = 100;
    write_bad(p, &rgb);
    snprintf(q, sizeof q, "does not match %s/train-00000.h5 (28,28,1)", dir);
    expect_open_fail(dir, p, ": dataset 'images' shape (100,28,28,3)");
    expect_open_fail(dir, p, q);

    /* labels in one shard but not the next */
    snprintf(dir, sizeof dir, "%s/mixed", root);
    SSL_EXPECT(mkdir(dir, 0777) == 0, "mkdir");
    SSL_EXPECT(ssl_test_write_shards(dir, "x", 20, 28, 28, 1, 10, 0, 0, 10) == 2, "w");
    snprintf(p, sizeof p, "%s/x-00002.h5", dir);
    bad_spec nolab = good;
    nolab.lab_type = 0;
    write_bad(p, &nolab);
    expect_open_fail(dir, p, ": missing dataset 'labels' but");

    /* truncated copy of a valid shard */
    snprintf(dir, sizeof dir, "%s/trunc", root);
    SSL_EXPECT(mkdir(dir, 0777) == 0, "mkdir");
    SSL_EXPECT(ssl_test_write_shards(dir, "t", 300, 28, 28, 1, 300, 0, 0, 10) == 1, "w");
    snprintf(p, sizeof p, "%s/t-00000.h5", dir);
    snprintf(q, sizeof q, "%s/t-00001.h5", dir);
    FILE *in = fopen(p, "rb"), *out = fopen(q, "wb");
    char buf[4096];
    size_t r;
    while (in && out && (r = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, r, out);
    if (in) fclose(in);
    if (out) fclose(out);
    struct stat st;
    SSL_EXPECT(stat(q, &st) == 0 && truncate(q, st.st_size / 2) == 0, "truncate");
    expect_open_fail(dir, q, ": cannot open shard: truncated: ");

    /* not HDF5 at all */
    snprintf(dir, sizeof dir, "%s/junk", root);
    SSL_EXPECT(mkdir(dir, 0777) == 0, "mkdir");
    snprintf(p, sizeof p, "%s/junk.h5", dir);
    out = fopen(p, "w");
    fputs("this is not an HDF5 file\n", out);
    fclose(out);
    expect_open_fail(dir, p, ": cannot open shard: not an HDF5 file");

    /* nothing to open */
    snprintf(p, sizeof p, "%s/none-*.h5", root);
    expect_open_fail(p, p, ": no shards match this pattern");
    snprintf(dir, sizeof dir, "%s/empty", root);
    SSL_EXPECT(mkdir(dir, 0777) == 0, "mkdir");
    expect_open_fail(dir, dir, ": directory holds no *.h5 shards");
    snprintf(p, sizeof p, "%s/missing.h5", root);
    expect_open_fail(p, p, ": No such file or directory");
}

/* A shard as another tool might write it (h5py style): chunks that split rows (1, 3, 28, 1),
 * deflate, variable-length string 'format', no num_classes; must open and read back exactly. */
static void test_foreign(const char *root)
{
    char p[600], err[512];
    snprintf(p, sizeof p, "%s/foreign.h5", root);
    hid_t f = create_v110(p);
    put_int_attr(f, "height", 28);
    put_int_attr(f, "width", 28);
    put_int_attr(f, "channels", 1);
    hid_t vt = H5Tcopy(H5T_C_S1);
    H5Tset_size(vt, H5T_VARIABLE);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format", vt, sp, H5P_DEFAULT, H5P_DEFAULT);
    const char *fmt = "sslrun-shard";
    SSL_ASSERT(a >= 0 && H5Awrite(a, vt, &fmt) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(vt);
    hsize_t dims[4] = {37, 28, 28, 1}, chunk[4] = {1, 3, 28, 1};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk);
    H5Pset_deflate(dcpl, 6);
    sp = H5Screate_simple(4, dims, NULL);
    hid_t ds = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    uint8_t *img = ssl_malloc(37 * 784);
    for (int i = 0; i < 37; i++)
        for (int k = 0; k < 784; k++) img[i * 784 + k] = ssl_test_pixel(i, (size_t)k);
    SSL_ASSERT(ds >= 0 && H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, img) >= 0);
    ssl_free(img);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Fclose(f);
    ssl_dataset *d = ssl_dataset_open(p, err, sizeof err);
    SSL_EXPECT(d && ssl_dataset_size(d) == 37 && ssl_dataset_num_classes(d) == 0 &&
                   !ssl_dataset_has_labels(d), "foreign shard: %s", d ? "meta" : err);
    int64_t idx[] = {36, 0, 1, 2, 17, 18, 5, 35};
    if (d) check_read(d, idx, 8, 0, "foreign chunking");
    ssl_dataset_close(d);
}

/* Unchecksummed metadata is refused before HDF5 decodes it (io/h5check.h), and bit rot in pixel
 * data is a read error naming the shard and dataset, not wrong pixels. */
static void test_integrity(const char *root)
{
    char p[600], err[512];
    hsize_t dims[4] = {4, 2, 2, 1}, chunk[4] = {2, 2, 2, 1};
    uint8_t px[16] = {0};
    for (int old = 0; old < 2; old++) { /* superblock 0 (HDF5's default); 1.8 format, v1 B-tree index */
        snprintf(p, sizeof p, "%s/old%d.h5", root, old);
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        if (old) H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
        hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        H5Pclose(fapl);
        put_int_attr(f, "height", 2);
        put_int_attr(f, "width", 2);
        put_int_attr(f, "channels", 1);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), sp = H5Screate_simple(4, dims, NULL);
        H5Pset_chunk(dcpl, 4, chunk);
        hid_t ds = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        SSL_ASSERT(ds >= 0 && H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, px) >= 0);
        H5Dclose(ds);
        H5Sclose(sp);
        H5Pclose(dcpl);
        H5Fclose(f);
        expect_open_fail(p, p, old ? ": dataset 'images': its chunk index is a v1 B-tree, which has no checksums"
                                   : ": cannot open shard: HDF5 superblock version 0 has no checksums");
    }

    /* one flipped byte in the second chunk of a shard written by the writer */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/rot", root);
    SSL_EXPECT(mkdir(dir, 0777) == 0, "mkdir");
    SSL_EXPECT(ssl_test_write_shards(dir, "r", 32, 5, 4, 3, 32, 16, 0, 7) == 1, "write r");
    snprintf(p, sizeof p, "%s/r-00000.h5", dir);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "images", H5P_DEFAULT), sp = H5Dget_space(ds);
    hsize_t off[4], size = 0;
    haddr_t addr = HADDR_UNDEF;
    unsigned mask = 0;
    SSL_ASSERT(H5Dget_chunk_info(ds, sp, 1, off, &mask, &addr, &size) >= 0 && off[0] == 16 && size > 8);
    H5Sclose(sp);
    H5Dclose(ds);
    H5Fclose(f);
    FILE *fp = fopen(p, "r+b");
    SSL_ASSERT(fp && fseek(fp, (long)(addr + size / 2), SEEK_SET) == 0);
    int c = fgetc(fp);
    SSL_ASSERT(fseek(fp, (long)(addr + size / 2), SEEK_SET) == 0 && fputc(c ^ 0x10, fp) != EOF && fclose(fp) == 0);
    ssl_dataset *d = ssl_dataset_open(p, err, sizeof err);
    SSL_EXPECT(d, "open rotted shard: %s", err); /* the damage is in data, found when read */
    if (!d) return;
    int64_t good[2] = {0, 15}, rot[1] = {20};
    uint8_t buf[2 * 60];
    SSL_EXPECT(ssl_dataset_read(d, good, 2, buf, NULL, err, sizeof err) == 0, "read intact chunk: %s", err);
    err[0] = 0;
    SSL_EXPECT(ssl_dataset_read(d, rot, 1, buf, NULL, err, sizeof err) == -1 && strstr(err, p) &&
                   strstr(err, "'images'") && strstr(err, "Fletcher32"),
               "bit rot not reported: '%s'", err);
    printf("bit rot: %s\n", err);
    ssl_dataset_close(d);
}

int main(void)
{
    char root[64];
    ssl_test_tmpdir(root, "dataset");
    test_roundtrip(root);
    test_prep_fmnist(root);
    test_prep_real_fmnist(root);
    test_prep_cifar(root);
    test_corrupt(root);
    test_foreign(root);
    test_integrity(root);
    ssl_test_rmtree(root);
    return ssl_test_exit();
}
