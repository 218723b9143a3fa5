/* Dataset converters (see prep.h). Inputs are streamed a block of samples at a time through the
 * shard writer, so memory stays small whatever the dataset size; every header field and count is
 * checked against the data actually present before a shard is trusted. */
#include "io/prep.h"

#include "framework/core/check.h"
#include "io/pickle_cifar.h"
#include "io/shard_writer.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define PATH_LEN 4096
#define BLOCK 1000                  /* samples per writer call */
#define DEFAULT_SHARD_SIZE 10000
#define PROGRESS_EVERY 10000
/* Fashion-MNIST and CIFAR are small (47 MB and 150 MB raw): uncompressed chunks keep random reads
 * to a memcpy from the chunk cache instead of an inflate of a whole chunk per sample. */
#define PREP_DEFLATE 0

/* mkdir -p */
int ssl_make_dirs(const char *dir, char *err, size_t errlen)
{
    char p[PATH_LEN];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        ssl_seterr(err, errlen, "%s: path too long", dir);
        return -1;
    }
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == '\0') {
            char saved = *c;
            *c = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                ssl_seterr(err, errlen, "%s: cannot create directory: %s", p, strerror(errno));
                return -1;
            }
            *c = saved;
            if (saved == '\0') break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ssl_seterr(err, errlen, "%s: not a directory", dir);
        return -1;
    }
    return 0;
}

/* dir/name into out; -1 when it does not fit. */
static int join(char *out, size_t len, const char *dir, const char *name)
{
    return snprintf(out, len, "%s/%s", dir, name) < (int)len ? 0 : -1;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* total < 0: not known in advance (CIFAR counts come from file sizes, batch by batch). */
static void progress(const char *what, int64_t done, int64_t total)
{
    if (total < 0) fprintf(stderr, "prep: %s: %lld samples written\n", what, (long long)done);
    else fprintf(stderr, "prep: %s: %lld/%lld samples written\n", what, (long long)done, (long long)total);
}

/* ---- idx (MNIST-style) ---------------------------------------------------------------------- */

/* Reads exactly n bytes; returns bytes read (< n at end of data) or -1 on a zlib/IO error. */
static long long gz_read_full(gzFile f, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(f, (char *)buf + got, (unsigned)want);
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long long)got;
}

static const char *gz_why(gzFile f)
{
    int code;
    const char *m = gzerror(f, &code);
    return code == Z_ERRNO ? strerror(errno) : m;
}

/* Opens an idx file and checks its header: magic, then ndims big-endian u32 sizes. */
static gzFile idx_open(const char *path, uint32_t magic, int ndims, uint32_t *dims, char *err,
                       size_t errlen)
{
    gzFile f = gzopen(path, "rb");
    if (!f) {
        ssl_seterr(err, errlen, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    unsigned char h[16];
    size_t hlen = 4 * (size_t)(1 + ndims);
    long long got = gz_read_full(f, h, hlen);
    if (got != (long long)hlen) {
        ssl_seterr(err, errlen, "%s: %s reading the idx header", path,
               got < 0 ? gz_why(f) : "unexpected end of file");
        gzclose(f);
        return NULL;
    }
    uint32_t v[4];
    for (int i = 0; i < 1 + ndims; i++)
        v[i] = (uint32_t)h[4 * i] << 24 | (uint32_t)h[4 * i + 1] << 16 | (uint32_t)h[4 * i + 2] << 8 |
               (uint32_t)h[4 * i + 3];
    if (v[0] != magic) {
        ssl_seterr(err, errlen, "%s: idx magic 0x%08x, expected 0x%08x (unsigned bytes, %d dims)", path,
               v[0], magic, ndims);
        gzclose(f);
        return NULL;
    }
    for (int i = 0; i < ndims; i++) dims[i] = v[1 + i];
    return f;
}

/* After the declared data, an idx file must end: extra bytes mean the header lies about N. */
static int expect_eof(gzFile f, const char *path, char *err, size_t errlen)
{
    unsigned char extra;
    long long r = gz_read_full(f, &extra, 1);
    if (r != 0) {
        ssl_seterr(err, errlen, "%s: %s", path, r < 0 ? gz_why(f) : "data continues past the count in "
                                                                  "the idx header");
        return -1;
    }
    return 0;
}

int ssl_prep_idx(const char *images_path, const char *labels_path, const char *out_dir,
                 const char *prefix, int num_classes, int shard_size, char *err, size_t errlen)
{
    if (shard_size <= 0) shard_size = DEFAULT_SHARD_SIZE;
    if (num_classes < 1 || num_classes > 256) {
        ssl_seterr(err, errlen, "%s: num_classes %d must be in [1, 256]", labels_path, num_classes);
        return -1;
    }
    if (ssl_make_dirs(out_dir, err, errlen) < 0) return -1;
    uint32_t ldims[1], idims[3];
    gzFile lf = idx_open(labels_path, 0x00000801u, 1, ldims, err, errlen);
    if (!lf) return -1;
    gzFile imf = idx_open(images_path, 0x00000803u, 3, idims, err, errlen);
    if (!imf) {
        gzclose(lf);
        return -1;
    }
    uint8_t *labels8 = NULL, *block = NULL;
    int32_t *labels = NULL;
    ssl_shard_writer *w = NULL;
    int rc = -1;
    const int64_t n = ldims[0];
    if (idims[0] != ldims[0]) {
        ssl_seterr(err, errlen, "%s: %u images but %s has %u labels", images_path, idims[0],
               labels_path, ldims[0]);
        goto done;
    }
    if (idims[1] < 1 || idims[1] > 4096 || idims[2] < 1 || idims[2] > 4096) {
        ssl_seterr(err, errlen, "%s: image size %ux%u is out of range", images_path, idims[1], idims[2]);
        goto done;
    }
    labels8 = ssl_malloc(n > 0 ? (size_t)n : 1);
    long long got = gz_read_full(lf, labels8, (size_t)n);
    if (got != n) {
        ssl_seterr(err, errlen, "%s: %s after %lld of %lld labels", labels_path,
               got < 0 ? gz_why(lf) : "unexpected end of file", got < 0 ? 0 : got, (long long)n);
        goto done;
    }
    if (expect_eof(lf, labels_path, err, errlen) < 0) goto done;
    labels = ssl_malloc((n > 0 ? (size_t)n : 1) * sizeof *labels);
    for (int64_t i = 0; i < n; i++) {
        if (labels8[i] >= num_classes) {
            ssl_seterr(err, errlen, "%s: label %lld is %u, outside [0, %d)", labels_path, (long long)i,
                   labels8[i], num_classes);
            goto done;
        }
        labels[i] = labels8[i];
    }
    ssl_shard_spec spec = {.out_dir = out_dir, .prefix = prefix, .height = (int)idims[1],
                           .width = (int)idims[2], .channels = 1, .num_classes = num_classes,
                           .with_labels = 1, .shard_size = shard_size, .deflate = PREP_DEFLATE};
    w = ssl_shard_writer_open(&spec, err, errlen);
    if (!w) goto done;
    const size_t sample = (size_t)idims[1] * idims[2];
    block = ssl_malloc(BLOCK * sample);
    char what[PATH_LEN];
    snprintf(what, sizeof what, "%s/%s", out_dir, prefix);
    for (int64_t i = 0; i < n; i += BLOCK) {
        int m = n - i < BLOCK ? (int)(n - i) : BLOCK;
        got = gz_read_full(imf, block, (size_t)m * sample);
        if (got != (long long)((size_t)m * sample)) {
            ssl_seterr(err, errlen, "%s: %s after %lld of %lld images", images_path,
                   got < 0 ? gz_why(imf) : "unexpected end of file",
                   got < 0 ? (long long)i : (long long)(i + got / (long long)sample), (long long)n);
            goto done;
        }
        if (ssl_shard_writer_add(w, block, labels + i, m, err, errlen) < 0) goto done;
        if ((i + m) % PROGRESS_EVERY == 0 && i + m < n) progress(what, i + m, n);
    }
    if (expect_eof(imf, images_path, err, errlen) < 0) goto done;
    rc = ssl_shard_writer_close(w, err, errlen);
    w = NULL;
    if (rc == 0) progress(what, n, n);
done:
    if (w) ssl_shard_writer_abort(w);
    gzclose(lf);
    gzclose(imf);
    ssl_free(labels8);
    ssl_free(labels);
    ssl_free(block);
    return rc;
}

/* A source file: the name as given, or without its .gz suffix (an unpacked copy). */
static int pick_source(char *out, size_t len, const char *dir, const char *name)
{
    if (join(out, len, dir, name) < 0) return -1;
    size_t l = strlen(out);
    if (file_exists(out) || l <= 3 || strcmp(out + l - 3, ".gz") != 0) return 0;
    out[l - 3] = '\0';
    if (!file_exists(out)) out[l - 3] = '.'; /* neither: report the .gz name */
    return 0;
}

int ssl_prep_fashion_mnist(const char *src_dir, const char *out_dir, int shard_size, char *err,
                           size_t errlen)
{
    static const char *const split[2][3] = {
        {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "train"},
        {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "test"},
    };
    for (int s = 0; s < 2; s++) {
        char img[PATH_LEN], lab[PATH_LEN];
        if (pick_source(img, sizeof img, src_dir, split[s][0]) < 0 ||
            pick_source(lab, sizeof lab, src_dir, split[s][1]) < 0) {
            ssl_seterr(err, errlen, "%s: path too long", src_dir);
            return -1;
        }
        if (ssl_prep_idx(img, lab, out_dir, split[s][2], 10, shard_size, err, errlen) < 0) return -1;
    }
    return 0;
}

/* ---- CIFAR ---------------------------------------------------------------------------------- */

enum { CIFAR_HW = 32, CIFAR_PIX = 32 * 32, CIFAR_IMG = 3 * 32 * 32 };

/* Appends every record of one binary batch file to the writer, CHW -> HWC. */
static int cifar_file(ssl_shard_writer *w, const char *path, int label_bytes, int num_classes,
                      const char *what, int64_t *done, char *err, size_t errlen)
{
    const size_t rec = (size_t)label_bytes + CIFAR_IMG;
    FILE *f = fopen(path, "rb");
    if (!f) {
        ssl_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size == 0 || (size_t)st.st_size % rec != 0) {
        ssl_seterr(err, errlen, "%s: size %lld is not a positive multiple of the %zu-byte CIFAR record",
               path, (long long)st.st_size, rec);
        fclose(f);
        return -1;
    }
    const int64_t n = (int64_t)((size_t)st.st_size / rec);
    uint8_t *raw = ssl_malloc(BLOCK * rec), *hwc = ssl_malloc(BLOCK * (size_t)CIFAR_IMG);
    int32_t labels[BLOCK];
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i += BLOCK) {
        int m = n - i < BLOCK ? (int)(n - i) : BLOCK;
        if (fread(raw, rec, (size_t)m, f) != (size_t)m) {
            ssl_seterr(err, errlen, "%s: read error after %lld records: %s", path, (long long)i,
                   ferror(f) ? strerror(errno) : "unexpected end of file");
            rc = -1;
            break;
        }
        for (int k = 0; k < m; k++) {
            const uint8_t *r = raw + (size_t)k * rec;
            int label = r[label_bytes - 1]; /* CIFAR-100: [coarse, fine]; we train on fine */
            if (label >= num_classes) {
                ssl_seterr(err, errlen, "%s: record %lld has label %d, outside [0, %d)", path,
                       (long long)(i + k), label, num_classes);
                rc = -1;
                break;
            }
            labels[k] = label;
            const uint8_t *chw = r + label_bytes;
            uint8_t *out = hwc + (size_t)k * CIFAR_IMG;
            for (int p = 0; p < CIFAR_PIX; p++)
                for (int c = 0; c < 3; c++) out[p * 3 + c] = chw[c * CIFAR_PIX + p];
        }
        if (rc == 0) rc = ssl_shard_writer_add(w, hwc, labels, m, err, errlen);
        *done += m;
        if (rc == 0 && *done % PROGRESS_EVERY == 0) progress(what, *done, -1);
    }
    ssl_free(raw);
    ssl_free(hwc);
    fclose(f);
    return rc;
}

/* Appends every image of one Python-release batch (a pickle, io/pickle_cifar.h), CHW -> HWC. */
static int cifar_pickle_file(ssl_shard_writer *w, const char *path, int num_classes, const char *what,
                             int64_t *done, char *err, size_t errlen)
{
    ssl_cifar_batch b;
    if (ssl_pickle_cifar_read(path, num_classes == 100 ? "fine_labels" : "labels", num_classes, &b, err,
                              errlen) < 0)
        return -1;
    uint8_t *hwc = ssl_malloc(BLOCK * (size_t)CIFAR_IMG);
    int rc = 0;
    for (int64_t i = 0; i < b.n && rc == 0; i += BLOCK) {
        int m = b.n - i < BLOCK ? (int)(b.n - i) : BLOCK;
        for (int k = 0; k < m; k++) {
            const uint8_t *chw = b.data + (size_t)(i + k) * CIFAR_IMG;
            uint8_t *out = hwc + (size_t)k * CIFAR_IMG;
            for (int p = 0; p < CIFAR_PIX; p++)
                for (int c = 0; c < 3; c++) out[p * 3 + c] = chw[c * CIFAR_PIX + p];
        }
        rc = ssl_shard_writer_add(w, hwc, b.labels + i, m, err, errlen);
        *done += m;
        if (rc == 0 && *done % PROGRESS_EVERY == 0) progress(what, *done, -1);
    }
    ssl_free(hwc);
    ssl_cifar_batch_free(&b);
    return rc;
}

/* files[i] names a binary batch; pickle: the Python release's file of the same name without .bin. */
static int cifar_split(const char *dir, const char *const *files, int nfiles, int label_bytes,
                       int num_classes, int pickle, const char *out_dir, const char *prefix,
                       int shard_size, char *err, size_t errlen)
{
    ssl_shard_spec spec = {.out_dir = out_dir, .prefix = prefix, .height = CIFAR_HW,
                           .width = CIFAR_HW, .channels = 3, .num_classes = num_classes,
                           .with_labels = 1, .shard_size = shard_size, .deflate = PREP_DEFLATE};
    ssl_shard_writer *w = ssl_shard_writer_open(&spec, err, errlen);
    if (!w) return -1;
    char what[PATH_LEN];
    snprintf(what, sizeof what, "%s/%s", out_dir, prefix);
    int64_t done = 0;
    for (int i = 0; i < nfiles; i++) {
        char path[PATH_LEN];
        if (join(path, sizeof path, dir, files[i]) < 0) {
            ssl_seterr(err, errlen, "%s: path too long", dir);
            ssl_shard_writer_abort(w);
            return -1;
        }
        if (pickle) path[strlen(path) - 4] = '\0'; /* data_batch_1.bin -> data_batch_1 */
        if ((pickle ? cifar_pickle_file(w, path, num_classes, what, &done, err, errlen)
                    : cifar_file(w, path, label_bytes, num_classes, what, &done, err, errlen)) < 0) {
            ssl_shard_writer_abort(w);
            return -1;
        }
    }
    if (ssl_shard_writer_close(w, err, errlen) < 0) return -1;
    progress(what, done, done);
    return 0;
}

int ssl_prep_cifar(const char *src_dir, const char *out_dir, int cifar100, int shard_size,
                   char *err, size_t errlen)
{
    static const char *const c10_train[] = {"data_batch_1.bin", "data_batch_2.bin",
                                            "data_batch_3.bin", "data_batch_4.bin",
                                            "data_batch_5.bin"};
    static const char *const c10_test[] = {"test_batch.bin"};
    static const char *const c100_train[] = {"train.bin"};
    static const char *const c100_test[] = {"test.bin"};
    if (shard_size <= 0) shard_size = DEFAULT_SHARD_SIZE;
    /* The binary or the Python release: the directory an archive unpacks to, or its parent. */
    const char *first = cifar100 ? "train" : "data_batch_1";
    const char *const sub[2] = {"", cifar100 ? "cifar-100-binary" : "cifar-10-batches-bin"};
    const char *const subpy[2] = {"", cifar100 ? "cifar-100-python" : "cifar-10-batches-py"};
    char dir[PATH_LEN] = "", probe[PATH_LEN];
    int pickle = -1;
    for (int py = 0; py < 2 && pickle < 0; py++)
        for (int s = 0; s < 2 && pickle < 0; s++) {
            const char *d = (py ? subpy : sub)[s];
            if (snprintf(dir, sizeof dir, "%s%s%s", src_dir, d[0] ? "/" : "", d) >= (int)sizeof dir ||
                snprintf(probe, sizeof probe, "%s/%s%s", dir, first, py ? "" : ".bin") >= (int)sizeof probe) {
                ssl_seterr(err, errlen, "%s: path too long", src_dir);
                return -1;
            }
            if (file_exists(probe)) pickle = py;
        }
    if (pickle < 0) {
        ssl_seterr(err, errlen, "%s: no CIFAR-%d batches (%s.bin of the binary release, or %s of the Python "
               "release, here or in %s / %s)", src_dir, cifar100 ? 100 : 10, first, first, sub[1], subpy[1]);
        return -1;
    }
    if (ssl_make_dirs(out_dir, err, errlen) < 0) return -1;
    const int lb = cifar100 ? 2 : 1, nc = cifar100 ? 100 : 10;
    if (cifar_split(dir, cifar100 ? c100_train : c10_train, cifar100 ? 1 : 5, lb, nc, pickle, out_dir,
                    "train", shard_size, err, errlen) < 0)
        return -1;
    return cifar_split(dir, cifar100 ? c100_test : c10_test, 1, lb, nc, pickle, out_dir, "test",
                       shard_size, err, errlen);
}
