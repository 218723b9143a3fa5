/* Sharded HDF5 dataset reader (see dataset.h). Validation happens once at open, so a bad shard
 * stops the run before training starts, with a message naming the file and dataset; reads then map
 * global indices to (shard, row) and read runs of consecutive rows as one hyperslab. */
#include "io/dataset.h"
#include "io/dataset_internal.h"

#include "framework/core/check.h"
#include "io/h5check.h"
#include "io/h5lock.h"
#include "io/shard_writer.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Raw-data chunk cache: HDF5's default is 1 MiB per dataset, less than one chunk of larger images,
 * in which case every access re-reads and re-inflates the chunk (REFERENCE §8.9). Each shard gets an
 * equal part of a per-process budget, but never less than a few chunks. */
#define CACHE_BUDGET ((size_t)256 << 20)
#define CACHE_PER_SHARD_MAX ((size_t)64 << 20)
#define CACHE_MIN_CHUNKS 4
#define CACHE_MAX_SLOTS ((size_t)1 << 20)
#define CACHE_W0 0.75
/* Limits that only a corrupt file exceeds (found by fuzzing, tests/fuzz). Rows: a count from a
 * damaged dataspace (up to 2^64-1) would turn negative as int64_t and overflow the label buffer's
 * size. Chunk: HDF5 allocates a whole chunk for every filtered read, and the format allows 4 GiB;
 * the writer's chunks are ~256 KiB (or one sample, if larger), its label chunks 64 KiB. */
#define MAX_ROWS ((hsize_t)1 << 40)
#define MAX_CHUNK_BYTES ((size_t)64 << 20)

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = ssl_malloc(n);
    memcpy(p, s, n);
    return p;
}

/* ---- shard list ----------------------------------------------------------------------------- */

typedef struct {
    char **v;
    int n, cap;
} strlist;

static void strlist_push(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = ssl_malloc((size_t)cap * sizeof *v);
        if (l->n) memcpy(v, l->v, (size_t)l->n * sizeof *v);
        ssl_free(l->v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = dupstr(s);
}

static void strlist_free(strlist *l)
{
    for (int i = 0; i < l->n; i++) ssl_free(l->v[i]);
    ssl_free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Shard paths for a directory, a glob or one file, sorted with strcmp (locale-independent, so every
 * rank sees the same order and hence the same global indices). */
static int list_shards(const char *spec, strlist *out, char *err, size_t errlen)
{
    struct stat st;
    if (strpbrk(spec, "*?[")) {
        glob_t g;
        int rc = glob(spec, 0, NULL, &g);
        if (rc == GLOB_NOMATCH) {
            ssl_seterr(err, errlen, "%s: no shards match this pattern", spec);
            return -1;
        }
        if (rc != 0) {
            ssl_seterr(err, errlen, "%s: cannot expand pattern (%s)", spec,
                   rc == GLOB_NOSPACE ? "out of memory" : "read error");
            return -1;
        }
        for (size_t i = 0; i < g.gl_pathc; i++) {
            /* a prep in progress (or killed) leaves NAME.tmp, which must never be read */
            size_t len = strlen(g.gl_pathv[i]);
            if (len < 4 || strcmp(g.gl_pathv[i] + len - 4, ".tmp") != 0)
                strlist_push(out, g.gl_pathv[i]);
        }
        globfree(&g);
        if (out->n == 0) {
            ssl_seterr(err, errlen, "%s: only unfinished *.tmp shards match this pattern", spec);
            return -1;
        }
    } else if (stat(spec, &st) != 0) {
        ssl_seterr(err, errlen, "%s: %s", spec, strerror(errno));
        return -1;
    } else if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(spec);
        if (!dir) {
            ssl_seterr(err, errlen, "%s: %s", spec, strerror(errno));
            return -1;
        }
        struct dirent *e;
        while ((e = readdir(dir))) {
            size_t len = strlen(e->d_name);
            /* *.h5 only: a prep in progress leaves NAME.h5.tmp, which must not be read */
            if (len > 3 && strcmp(e->d_name + len - 3, ".h5") == 0 && e->d_name[0] != '.') {
                size_t need = strlen(spec) + len + 2;
                char *p = ssl_malloc(need);
                snprintf(p, need, "%s/%s", spec, e->d_name);
                strlist_push(out, p);
                ssl_free(p);
            }
        }
        closedir(dir);
        if (out->n == 0) {
            ssl_seterr(err, errlen, "%s: directory holds no *.h5 shards", spec);
            return -1;
        }
    } else {
        strlist_push(out, spec);
    }
    qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return 0;
}

/* ---- HDF5 helpers --------------------------------------------------------------------------- */

static void type_name(hid_t t, char *buf, size_t len)
{
    H5T_class_t c = H5Tget_class(t);
    size_t bits = H5Tget_size(t) * 8;
    const char *be = H5Tget_order(t) == H5T_ORDER_BE ? " big-endian" : "";
    switch (c) {
    case H5T_INTEGER:
        snprintf(buf, len, "%sint%zu%s", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits, be);
        break;
    case H5T_FLOAT: snprintf(buf, len, "float%zu%s", bits, be); break;
    case H5T_STRING: snprintf(buf, len, "string"); break;
    case H5T_COMPOUND: snprintf(buf, len, "compound"); break;
    case H5T_ENUM: snprintf(buf, len, "enum"); break;
    case H5T_ARRAY: snprintf(buf, len, "array"); break;
    case H5T_VLEN: snprintf(buf, len, "variable-length"); break;
    default: snprintf(buf, len, "an unsupported type (class %d)", (int)c); break;
    }
}

/* 1: equal to the native type; 0: another type (name in tname); -1: HDF5 error. */
int ssl_ds_check_type(hid_t ds, hid_t native, char *tname, size_t len)
{
    hid_t t = H5Dget_type(ds);
    if (t < 0) return -1;
    htri_t eq = H5Tequal(t, native);
    if (eq == 0) type_name(t, tname, len);
    if (H5Tclose(t) < 0) return -1;
    return eq < 0 ? -1 : eq > 0;
}

/* Dataset rank and dims (up to 4); -1 on error. */
int ssl_ds_get_dims(hid_t space, hsize_t *dims)
{
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0 || rank > 4) return rank < 0 ? -1 : rank;
    if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) return -1;
    return rank;
}

/* Integer scalar attribute: 1 read, 0 absent, -1 present but unreadable or not an integer. */
int ssl_ds_read_int_attr(hid_t file, const char *name, long long *v)
{
    htri_t ex = H5Aexists(file, name);
    if (ex <= 0) return ex < 0 ? -1 : 0;
    hid_t at = H5Aopen(file, name, H5P_DEFAULT);
    if (at < 0) return -1;
    hid_t t = H5Aget_type(at), sp = H5Aget_space(at);
    int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_INTEGER &&
             H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(at, H5T_NATIVE_LLONG, v) >= 0;
    if (sp >= 0 && H5Sclose(sp) < 0) ok = 0;
    if (t >= 0 && H5Tclose(t) < 0) ok = 0;
    if (H5Aclose(at) < 0) ok = 0;
    return ok ? 1 : -1;
}

/* String scalar attribute (fixed or variable length, as h5py writes it): 1, 0 absent, -1 bad. */
int ssl_ds_read_str_attr(hid_t file, const char *name, char *buf, size_t len)
{
    htri_t ex = H5Aexists(file, name);
    if (ex <= 0) return ex < 0 ? -1 : 0;
    hid_t at = H5Aopen(file, name, H5P_DEFAULT);
    if (at < 0) return -1;
    hid_t t = H5Aget_type(at), sp = H5Aget_space(at), mt = H5Tcopy(H5T_C_S1);
    int ok = t >= 0 && sp >= 0 && mt >= 0 && H5Tget_class(t) == H5T_STRING &&
             H5Sget_simple_extent_npoints(sp) == 1;
    /* the stored character set (h5py writes a str as UTF-8): HDF5 does not convert ASCII <-> UTF-8 */
    if (ok) ok = H5Tset_cset(mt, H5Tget_cset(t)) >= 0;
    htri_t var = ok ? H5Tis_variable_str(t) : -1;
    if (var > 0) {
        char *p = NULL;
        ok = H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(at, mt, &p) >= 0 && p;
        if (ok) snprintf(buf, len, "%s", p);
        if (p && H5free_memory(p) < 0) ok = 0;
    } else if (var == 0) {
        /* one byte more than stored: a null-padded string that fills its size (h5py writes those)
         * would lose its last character to the terminator in a same-size null-terminated type */
        size_t sz = H5Tget_size(t);
        char *tmp = ssl_malloc(sz + 2);
        ok = sz > 0 && H5Tset_size(mt, sz + 1) >= 0 && H5Aread(at, mt, tmp) >= 0;
        tmp[sz + 1] = '\0';
        if (ok) snprintf(buf, len, "%s", tmp);
        ssl_free(tmp);
    } else {
        ok = 0;
    }
    if (mt >= 0 && H5Tclose(mt) < 0) ok = 0;
    if (sp >= 0 && H5Sclose(sp) < 0) ok = 0;
    if (t >= 0 && H5Tclose(t) < 0) ok = 0;
    if (H5Aclose(at) < 0) ok = 0;
    return ok ? 1 : -1;
}

static size_t next_prime(size_t n)
{
    if (n < 3) return 3;
    for (n |= 1;; n += 2) {
        int prime = 1;
        for (size_t k = 3; k * k <= n; k += 2)
            if (n % k == 0) {
                prime = 0;
                break;
            }
        if (prime) return n;
    }
}

/* ---- open ----------------------------------------------------------------------------------- */

static void close_shard(shard *s, int *ok)
{
    if (s->jpeg >= 0 && H5Dclose(s->jpeg) < 0) *ok = 0;
    s->jpeg = H5I_INVALID_HID;
    ssl_free(s->jpeg_off);
    ssl_free(s->jpeg_hw);
    s->jpeg_off = NULL;
    s->jpeg_hw = NULL;
    if (s->labels >= 0 && H5Dclose(s->labels) < 0) *ok = 0;
    if (s->fspace >= 0 && H5Sclose(s->fspace) < 0) *ok = 0;
    if (s->images >= 0 && H5Dclose(s->images) < 0) *ok = 0;
    if (s->file >= 0 && H5Fclose(s->file) < 0) *ok = 0;
    s->labels = s->fspace = s->images = s->file = H5I_INVALID_HID;
}

/* Caller holds the HDF5 lock. */
static int destroy(ssl_dataset *d)
{
    int ok = 1;
    for (int i = 0; i < d->nshards; i++) {
        close_shard(&d->shards[i], &ok);
        ssl_free(d->shards[i].path);
    }
    ssl_free(d->shards);
    ssl_free(d->spec);
    ssl_free(d->offsets);
    ssl_free(d->labels);
    ssl_free(d->sizes);
    ssl_free(d);
    return ok ? 0 : -1;
}

/* The dataset's layout as the reader depends on it (found by fuzzing damaged shards; HDF5 1.10
 * trusts these fields and over-reads or over-allocates):
 *  - a checksummed chunk index (io/h5check.h): HDF5 walks a damaged v1 B-tree out of bounds;
 *  - chunks no larger than MAX_CHUNK_BYTES or one row: HDF5 allocates a chunk per filtered read;
 *  - no more storage than the file holds: a damaged chunk index can claim 4 GiB chunks, which HDF5
 *    allocates before it finds the read past the end;
 *  - stored sizes equal raw sizes where nothing is compressed (every allocated chunk of an
 *    unfiltered dataset a whole chunk, compact data the whole dataset, contiguous data all or
 *    nothing): HDF5 copies the raw size out of a buffer of the stored size;
 *  - with `written`, every row stored: labels are read whole into memory, and an unwritten
 *    dataspace can claim 2^40 of them in a 2 KiB file. (H5Dget_space_status cannot tell: in HDF5
 *    1.10 it compares compressed bytes with raw bytes.)
 * chunk_bytes (may be NULL): the chunk size in bytes, 0 when not chunked. Caller holds the HDF5
 * lock. */
int ssl_ds_check_storage(hid_t file, hid_t ds, const char *path, const char *name, int rank,
                         const hsize_t *dims, size_t elem, size_t row_bytes, int written,
                         size_t *chunk_bytes, char *err, size_t errlen)
{
    char why[200];
    if (ssl_h5_chunk_index_ok(ds, why, sizeof why)) {
        ssl_seterr(err, errlen, "%s: dataset '%s': %s", path, name, why);
        return -1;
    }
    hid_t dcpl = H5Dget_create_plist(ds);
    H5D_layout_t lay = dcpl < 0 ? H5D_LAYOUT_ERROR : H5Pget_layout(dcpl);
    hsize_t c[4];
    int crank = lay == H5D_CHUNKED ? H5Pget_chunk(dcpl, 4, c) : 0;
    int nfilters = dcpl < 0 ? -1 : H5Pget_nfilters(dcpl);
    if (dcpl >= 0 && H5Pclose(dcpl) < 0) lay = H5D_LAYOUT_ERROR;
    if (lay < 0 || nfilters < 0 || crank != (lay == H5D_CHUNKED ? rank : 0)) {
        ssl_seterr(err, errlen, "%s: dataset '%s': cannot read its layout", path, name);
        return -1;
    }
    double cb = (double)elem, want = 1; /* chunk bytes, chunks needed: in double, as the chunk
                                           dims of a damaged file can overflow 64 bits */
    for (int k = 0; k < crank; k++) {
        cb *= (double)c[k];
        want *= c[k] ? (double)((dims[k] + c[k] - 1) / c[k]) : 0;
    }
    if (cb > (double)MAX_CHUNK_BYTES && cb > (double)row_bytes) {
        ssl_seterr(err, errlen, "%s: dataset '%s': chunks of %.0f bytes exceed %zu MiB and one row "
               "(corrupt file? rewrite it with smaller chunks)", path, name, cb,
               MAX_CHUNK_BYTES >> 20);
        return -1;
    }
    hsize_t fsize = 0, nchunks = 0;
    hsize_t used = H5Dget_storage_size(ds);
    hid_t sp = lay == H5D_CHUNKED ? H5Dget_space(ds) : H5I_INVALID_HID; /* 1.10 takes no H5S_ALL */
    int ok = H5Fget_filesize(file, &fsize) >= 0 &&
             (lay != H5D_CHUNKED || (sp >= 0 && H5Dget_num_chunks(ds, sp, &nchunks) >= 0));
    if (sp >= 0 && H5Sclose(sp) < 0) ok = 0;
    if (!ok) {
        ssl_seterr(err, errlen, "%s: dataset '%s': cannot read its storage", path, name);
        return -1;
    }
    double raw = (double)dims[0] * (double)row_bytes;
    /* filters apply to chunks only: a damaged compact or contiguous layout can list some too */
    int sized = lay == H5D_CHUNKED      ? nfilters > 0 || (double)used == (double)nchunks * cb
                : lay == H5D_COMPACT    ? (double)used == raw
                : lay == H5D_CONTIGUOUS ? used == 0 || (double)used == raw
                                        : 1;
    if (!sized || used > fsize) {
        ssl_seterr(err, errlen, "%s: dataset '%s' claims %llu bytes of storage for %.0f raw bytes in a "
               "file of %llu (truncated or corrupt)", path, name, (unsigned long long)used, raw,
               (unsigned long long)fsize);
        return -1;
    }
    int complete = lay == H5D_CHUNKED      ? (double)nchunks == want
                   : lay == H5D_CONTIGUOUS ? (double)used == raw
                                           : 1;
    if (written && dims[0] > 0 && !complete) {
        ssl_seterr(err, errlen, "%s: dataset '%s' is not completely written (%llu rows declared)", path,
               name, (unsigned long long)dims[0]);
        return -1;
    }
    if (chunk_bytes) *chunk_bytes = lay == H5D_CHUNKED ? (size_t)cb : 0;
    return 0;
}

/* Open and validate shard i against the attributes and shard 0. Caller holds the HDF5 lock. */
static int open_shard(ssl_dataset *d, int i, char *err, size_t errlen)
{
    shard *s = &d->shards[i];
    const char *path = s->path;
    const char *ref = d->shards[0].path;
    char why[200];
    if (ssl_h5_superblock_ok(path, why, sizeof why)) {
        ssl_seterr(err, errlen, "%s: cannot open shard: %s", path, why);
        return -1;
    }
    s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (s->file < 0) {
        if (access(path, R_OK) != 0) ssl_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        else ssl_seterr(err, errlen, "%s: cannot open (truncated or not HDF5)", path);
        return -1;
    }
    char fmt[64];
    int rc = ssl_ds_read_str_attr(s->file, "format", fmt, sizeof fmt);
    if (rc < 0 || (rc > 0 && strcmp(fmt, SSL_SHARD_FORMAT) != 0)) {
        ssl_seterr(err, errlen, "%s: attribute 'format' is %s%s%s, expected '%s'", path,
               rc < 0 ? "unreadable" : "'", rc < 0 ? "" : fmt, rc < 0 ? "" : "'", SSL_SHARD_FORMAT);
        return -1;
    }
    long long version = SSL_SHARD_VERSION;
    rc = ssl_ds_read_int_attr(s->file, "version", &version);
    if (rc < 0) {
        ssl_seterr(err, errlen, "%s: attribute 'version' is not an integer scalar", path);
        return -1;
    }
    char enc[64] = "raw";
    rc = ssl_ds_read_str_attr(s->file, "encoding", enc, sizeof enc);
    const int jpeg = rc > 0 && !strcmp(enc, SSL_SHARD_ENCODING_JPEG);
    if (rc < 0 || (rc > 0 && !jpeg && strcmp(enc, "raw"))) {
        ssl_seterr(err, errlen, "%s: attribute 'encoding' is %s%s%s, expected '%s' or 'raw'", path,
                      rc < 0 ? "unreadable" : "'", rc < 0 ? "" : enc, rc < 0 ? "" : "'", SSL_SHARD_ENCODING_JPEG);
        return -1;
    }
    if (i > 0 && jpeg != d->jpeg) {
        ssl_seterr(err, errlen, "%s: holds %s images but %s holds %s ones: one dataset is one format", path,
                      jpeg ? "JPEG" : "raw", ref, d->jpeg ? "JPEG" : "raw");
        return -1;
    }
    d->jpeg = jpeg;
    if (jpeg && version != SSL_SHARD_VERSION_JPEG) {
        ssl_seterr(err, errlen, "%s: JPEG shard of version %lld, this reader knows version %d", path, version,
                      SSL_SHARD_VERSION_JPEG);
        return -1;
    }
    if (!jpeg && version != SSL_SHARD_VERSION) {
        ssl_seterr(err, errlen, "%s: attribute 'version' is %lld, this reader knows version %d%s", path,
               version, SSL_SHARD_VERSION, version < SSL_SHARD_VERSION ? " (re-run `sslrun prep`)" : "");
        return -1;
    }
    long long attr[4] = {0, 0, 0, 0};
    const char *attr_name[4] = {"height", "width", "channels", "num_classes"};
    for (int k = 0; k < 4; k++) {
        rc = ssl_ds_read_int_attr(s->file, attr_name[k], &attr[k]);
        if (rc < 0 || (rc == 0 && k < 3)) { /* num_classes may be absent: unknown */
            ssl_seterr(err, errlen, "%s: attribute '%s' is %s", path, attr_name[k],
                   rc < 0 ? "not an integer scalar" : "missing");
            return -1;
        }
        if (attr[k] < 0 || attr[k] > (1 << 24) || (k < 3 && attr[k] == 0 && !(jpeg && k < 2))) {
            ssl_seterr(err, errlen, "%s: attribute '%s' = %lld is out of range", path, attr_name[k],
                   attr[k]);
            return -1;
        }
    }

    htri_t ex;
    char tname[64] = "";
    hsize_t dims[4];
    hid_t sp;
    int rank;
    if (jpeg) {
        if (attr[2] != 1 && attr[2] != 3) {
            ssl_seterr(err, errlen, "%s: attribute 'channels' = %lld, JPEG shards hold 1 or 3", path, attr[2]);
            return -1;
        }
        if (i == 0) d->channels = (int)attr[2], d->num_classes = (int)attr[3];
        else if ((int)attr[2] != d->channels || (int)attr[3] != d->num_classes) {
            ssl_seterr(err, errlen, "%s: attributes channels = %lld, num_classes = %lld do not match %s (%d, %d)",
                          path, attr[2], attr[3], ref, d->channels, d->num_classes);
            return -1;
        }
        if (ssl_ds_jpeg_open(d, i, err, errlen)) return -1;
        goto labels;
    }

    /* images: uint8, rank 4, (N, height, width, channels) */
    ex = H5Lexists(s->file, "images", H5P_DEFAULT);
    if (ex <= 0) {
        ssl_seterr(err, errlen, "%s: %s dataset 'images'", path, ex < 0 ? "cannot look up" : "missing");
        return -1;
    }
    s->images = H5Dopen2(s->file, "images", H5P_DEFAULT);
    if (s->images < 0) {
        ssl_seterr(err, errlen, "%s: 'images' cannot be opened as a dataset", path);
        return -1;
    }
    rc = ssl_ds_check_type(s->images, H5T_NATIVE_UINT8, tname, sizeof tname);
    if (rc <= 0) {
        if (rc < 0) ssl_seterr(err, errlen, "%s: dataset 'images': cannot read its type", path);
        else ssl_seterr(err, errlen, "%s: dataset 'images' has type %s, expected uint8", path, tname);
        return -1;
    }
    sp = H5Dget_space(s->images);
    rank = sp < 0 ? -1 : ssl_ds_get_dims(sp, dims);
    if (sp >= 0 && H5Sclose(sp) < 0) rank = -1;
    if (rank != 4) {
        if (rank < 0) ssl_seterr(err, errlen, "%s: dataset 'images': cannot read its shape", path);
        else ssl_seterr(err, errlen, "%s: dataset 'images' has rank %d, expected 4 (N,H,W,C)", path, rank);
        return -1;
    }
    if (dims[0] > MAX_ROWS) {
        ssl_seterr(err, errlen, "%s: dataset 'images' has %llu rows (corrupt file?)", path,
               (unsigned long long)dims[0]);
        return -1;
    }
    s->n = (int64_t)dims[0];
    if ((long long)dims[1] != attr[0] || (long long)dims[2] != attr[1] ||
        (long long)dims[3] != attr[2]) {
        ssl_seterr(err, errlen,
               "%s: dataset 'images' shape (%llu,%llu,%llu,%llu) does not match attributes "
               "height=%lld width=%lld channels=%lld",
               path, (unsigned long long)dims[0], (unsigned long long)dims[1],
               (unsigned long long)dims[2], (unsigned long long)dims[3], attr[0], attr[1], attr[2]);
        return -1;
    }
    if (i == 0) {
        d->height = (int)dims[1];
        d->width = (int)dims[2];
        d->channels = (int)dims[3];
        d->num_classes = (int)attr[3];
        /* dims are <= 2^24 each (they equal the checked attributes); the product is not bounded */
        if ((double)dims[1] * (double)dims[2] * (double)dims[3] > (double)(1u << 31)) {
            ssl_seterr(err, errlen, "%s: dataset 'images': %llux%llux%llu samples are too large", path,
                   (unsigned long long)dims[1], (unsigned long long)dims[2],
                   (unsigned long long)dims[3]);
            return -1;
        }
        d->sample_bytes = (size_t)dims[1] * (size_t)dims[2] * (size_t)dims[3];
    } else if ((int)dims[1] != d->height || (int)dims[2] != d->width || (int)dims[3] != d->channels) {
        ssl_seterr(err, errlen, "%s: dataset 'images' shape (%llu,%llu,%llu,%llu) does not match %s (%d,%d,%d)",
               path, (unsigned long long)dims[0], (unsigned long long)dims[1],
               (unsigned long long)dims[2], (unsigned long long)dims[3], ref, d->height, d->width,
               d->channels);
        return -1;
    } else if ((int)attr[3] != d->num_classes) {
        ssl_seterr(err, errlen, "%s: attribute 'num_classes' = %lld does not match %s (%d)", path,
               attr[3], ref, d->num_classes);
        return -1;
    }

    size_t cb = 0;
    if (ssl_ds_check_storage(s->file, s->images, path, "images", 4, dims, 1, d->sample_bytes, 0, &cb, err,
                      errlen) != 0)
        return -1;
    /* Reopen images with a chunk cache sized for its chunks (the access list is fixed at open). */
    herr_t closed = H5Dclose(s->images);
    s->images = H5I_INVALID_HID; /* a failed close leaves nothing we could retry */
    if (closed < 0) {
        ssl_seterr(err, errlen, "%s: dataset 'images': cannot read its layout", path);
        return -1;
    }
    s->chunk_bytes = cb;
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    int ok = dapl >= 0;
    if (ok && cb > 0) {
        size_t per = CACHE_BUDGET / (size_t)d->nshards;
        if (per > CACHE_PER_SHARD_MAX) per = CACHE_PER_SHARD_MAX;
        if (per < CACHE_MIN_CHUNKS * (size_t)cb) per = CACHE_MIN_CHUNKS * (size_t)cb;
        /* Never more than the shard's own chunks: HDF5 allocates and zeroes the slot table at open,
         * so small chunks with a large budget would cost tens of MB per shard for nothing. */
        size_t nchunks = ((size_t)s->n * d->sample_bytes + (size_t)cb - 1) / (size_t)cb;
        if (nchunks < 1) nchunks = 1;
        if (per / (size_t)cb > nchunks) per = nchunks * (size_t)cb;
        /* a prime about 100x the number of cached chunks keeps hash collisions rare (§8.9) */
        size_t cached = per / (size_t)cb;
        size_t slots = next_prime(cached > CACHE_MAX_SLOTS / 100 ? CACHE_MAX_SLOTS : 100 * cached);
        ok = H5Pset_chunk_cache(dapl, slots, per, CACHE_W0) >= 0;
    }
    if (ok) s->images = H5Dopen2(s->file, "images", dapl);
    if (dapl >= 0 && H5Pclose(dapl) < 0) ok = 0;
    if (ok && s->images >= 0) s->fspace = H5Dget_space(s->images);
    if (!ok || s->images < 0 || s->fspace < 0) {
        ssl_seterr(err, errlen, "%s: dataset 'images': cannot reopen with a chunk cache", path);
        return -1;
    }

labels: /* int32 (N), present in all shards or in none */
    ex = H5Lexists(s->file, "labels", H5P_DEFAULT);
    if (ex < 0) {
        ssl_seterr(err, errlen, "%s: cannot look up dataset 'labels'", path);
        return -1;
    }
    if (i == 0) {
        d->has_labels = ex > 0;
    } else if ((ex > 0) != d->has_labels) {
        ssl_seterr(err, errlen, "%s: %s dataset 'labels' but %s %s", path, ex > 0 ? "has" : "missing",
               ref, ex > 0 ? "has none" : "has one");
        return -1;
    }
    if (ex == 0) return 0;
    s->labels = H5Dopen2(s->file, "labels", H5P_DEFAULT);
    if (s->labels < 0) {
        ssl_seterr(err, errlen, "%s: 'labels' cannot be opened as a dataset", path);
        return -1;
    }
    rc = ssl_ds_check_type(s->labels, H5T_NATIVE_INT32, tname, sizeof tname);
    if (rc <= 0) {
        if (rc < 0) ssl_seterr(err, errlen, "%s: dataset 'labels': cannot read its type", path);
        else ssl_seterr(err, errlen, "%s: dataset 'labels' has type %s, expected int32", path, tname);
        return -1;
    }
    sp = H5Dget_space(s->labels);
    rank = sp < 0 ? -1 : ssl_ds_get_dims(sp, dims);
    if (sp >= 0 && H5Sclose(sp) < 0) rank = -1;
    if (rank != 1) {
        if (rank < 0) ssl_seterr(err, errlen, "%s: dataset 'labels': cannot read its shape", path);
        else ssl_seterr(err, errlen, "%s: dataset 'labels' has rank %d, expected 1 (N)", path, rank);
        return -1;
    }
    if ((int64_t)dims[0] != s->n) {
        ssl_seterr(err, errlen, "%s: dataset 'labels' has %llu entries but dataset '%s' has %lld",
               path, (unsigned long long)dims[0], jpeg ? "offsets" : "images", (long long)s->n);
        return -1;
    }
    return ssl_ds_check_storage(s->file, s->labels, path, "labels", 1, dims, sizeof(int32_t),
                         sizeof(int32_t), 1, NULL, err, errlen);
}

/* Read shard i's labels into d->labels and check their range; closes the labels dataset. */
static int load_labels(ssl_dataset *d, int i, char *err, size_t errlen)
{
    shard *s = &d->shards[i];
    int32_t *dst = d->labels + d->offsets[i];
    if (s->n > 0 && H5Dread(s->labels, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
        ssl_seterr(err, errlen, "%s: dataset 'labels': read failed (corrupt file?)", s->path);
        return -1;
    }
    herr_t st = H5Dclose(s->labels);
    s->labels = H5I_INVALID_HID;
    if (st < 0) {
        ssl_seterr(err, errlen, "%s: dataset 'labels': close failed", s->path);
        return -1;
    }
    for (int64_t r = 0; r < s->n; r++)
        if (dst[r] < 0 || (d->num_classes > 0 && dst[r] >= d->num_classes)) {
            if (d->num_classes > 0)
                ssl_seterr(err, errlen, "%s: dataset 'labels' row %lld has value %d, outside [0, %d)",
                       s->path, (long long)r, (int)dst[r], d->num_classes);
            else
                ssl_seterr(err, errlen, "%s: dataset 'labels' row %lld has negative value %d", s->path,
                       (long long)r, (int)dst[r]);
            return -1;
        }
    return 0;
}

ssl_dataset *ssl_dataset_open(const char *path_or_glob, char *err, size_t errlen)
{
    if (!path_or_glob || !path_or_glob[0]) {
        ssl_seterr(err, errlen, "dataset: empty path");
        return NULL;
    }
    strlist paths = {0};
    if (list_shards(path_or_glob, &paths, err, errlen) < 0) {
        strlist_free(&paths);
        return NULL;
    }
    ssl_dataset *d = ssl_calloc(1, sizeof *d);
    d->spec = dupstr(path_or_glob);
    d->nshards = paths.n;
    d->shards = ssl_calloc((size_t)paths.n, sizeof *d->shards);
    d->offsets = ssl_calloc((size_t)paths.n + 1, sizeof *d->offsets);
    for (int i = 0; i < paths.n; i++) {
        shard *s = &d->shards[i];
        s->path = paths.v[i]; /* ownership moves to the dataset */
        s->file = s->images = s->labels = s->fspace = s->jpeg = H5I_INVALID_HID;
    }
    ssl_free(paths.v);

    ssl_h5_lock();
    /* Our messages name the file and dataset; HDF5's own stack dump would only add noise. */
    int ok = H5Eset_auto2(H5E_DEFAULT, NULL, NULL) >= 0;
    if (!ok) ssl_seterr(err, errlen, "%s: HDF5 error reporting could not be configured", path_or_glob);
    for (int i = 0; ok && i < d->nshards; i++) {
        ok = open_shard(d, i, err, errlen) == 0;
        if (ok) d->offsets[i + 1] = d->offsets[i] + d->shards[i].n;
    }
    if (ok) {
        d->total = d->offsets[d->nshards];
        if (d->total == 0) {
            ssl_seterr(err, errlen, "%s: the shards hold no samples", path_or_glob);
            ok = 0;
        }
    }
    if (ok && d->jpeg) {
        d->sizes = ssl_malloc((size_t)d->total * 2 * sizeof *d->sizes);
        for (int i = 0; ok && i < d->nshards; i++) ok = ssl_ds_jpeg_load_sizes(d, i, err, errlen) == 0;
    }
    if (ok && d->has_labels) {
        d->labels = ssl_malloc((size_t)d->total * sizeof *d->labels);
        for (int i = 0; ok && i < d->nshards; i++) ok = load_labels(d, i, err, errlen) == 0;
    }
    if (!ok) {
        destroy(d); /* already failing: the first error is the one reported */
        d = NULL;
    }
    ssl_h5_unlock();
    return d;
}

int ssl_dataset_close(ssl_dataset *d)
{
    if (!d) return 0;
    ssl_h5_lock();
    int rc = destroy(d);
    ssl_h5_unlock();
    return rc;
}

int64_t ssl_dataset_size(const ssl_dataset *d) { return d->total; }
int ssl_dataset_height(const ssl_dataset *d) { return d->height; }
int ssl_dataset_width(const ssl_dataset *d) { return d->width; }
int ssl_dataset_channels(const ssl_dataset *d) { return d->channels; }
int ssl_dataset_num_classes(const ssl_dataset *d) { return d->num_classes; }
int ssl_dataset_has_labels(const ssl_dataset *d) { return d->has_labels; }
const int32_t *ssl_dataset_labels(const ssl_dataset *d) { return d->has_labels ? d->labels : NULL; }
int ssl_dataset_num_shards(const ssl_dataset *d) { return d->nshards; }

const char *ssl_dataset_shard_path(const ssl_dataset *d, int shard)
{
    return shard >= 0 && shard < d->nshards ? d->shards[shard].path : NULL;
}

/* ---- read ----------------------------------------------------------------------------------- */

/* Largest s with offsets[s] <= idx: with empty shards that is the non-empty shard holding idx. */
int ssl_ds_shard_of(const ssl_dataset *d, int64_t idx)
{
    int lo = 0, hi = d->nshards;
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (d->offsets[mid] <= idx) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Rows [row, row + len) of shard s into out, as one regular hyperslab. The memory space has the
 * file's rank and row shape: with a 1-D one HDF5 1.10 walks the selection in innermost-dimension
 * pieces (one byte each for C = 1) and a read costs ~40 us per sample instead of ~3 us. (A union of
 * hyperslabs per shard, to read a whole shuffled batch in one call, is slower still in 1.10: OR-ed
 * selections become span trees.) Caller holds the HDF5 lock. */
static int read_rows(ssl_dataset *d, int s, int64_t row, int len, uint8_t *out, char *err,
                     size_t errlen)
{
    shard *sh = &d->shards[s];
    hsize_t start[4] = {(hsize_t)row, 0, 0, 0};
    hsize_t count[4] = {(hsize_t)len, (hsize_t)d->height, (hsize_t)d->width, (hsize_t)d->channels};
    hid_t msp = H5Screate_simple(4, count, NULL);
    int ok = msp >= 0 &&
             H5Sselect_hyperslab(sh->fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
             H5Dread(sh->images, H5T_NATIVE_UINT8, msp, sh->fspace, H5P_DEFAULT, out) >= 0;
    char why[200];
    if (!ok) ssl_h5_reason(why, sizeof why); /* before the next call clears HDF5's error stack */
    if (msp >= 0 && H5Sclose(msp) < 0) ok = 0;
    if (!ok)
        ssl_seterr(err, errlen, "%s: dataset 'images': reading rows [%lld, %lld) failed: %s (corrupt or "
               "unreadable data)", sh->path, (long long)row, (long long)row + len, why);
    return ok ? 0 : -1;
}

int ssl_dataset_read(ssl_dataset *d, const int64_t *indices, int n, uint8_t *out_images,
                     int32_t *out_labels, char *err, size_t errlen)
{
    if (d->jpeg) {
        ssl_seterr(err, errlen, "%s: JPEG shards are read encoded (ssl_dataset_read_encoded), not as fixed-size "
                      "images", d->spec);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= d->total) {
            ssl_seterr(err, errlen, "%s: index %lld out of range [0, %lld)", d->spec,
                   (long long)indices[i], (long long)d->total);
            return -1;
        }
    if (out_labels)
        for (int i = 0; i < n; i++) out_labels[i] = d->has_labels ? d->labels[indices[i]] : -1;
    int rc = 0;
    ssl_h5_lock();
    for (int i = 0; i < n && rc == 0;) {
        int s = ssl_ds_shard_of(d, indices[i]);
        int64_t end = d->offsets[s + 1];
        int len = 1; /* a run of consecutive indices within one shard is one read */
        while (i + len < n && indices[i + len] == indices[i] + len && indices[i + len] < end) len++;
        rc = read_rows(d, s, indices[i] - d->offsets[s], len,
                       out_images + (size_t)i * d->sample_bytes, err, errlen);
        i += len;
    }
    ssl_h5_unlock();
    return rc;
}
