/* Version-3 JPEG shard writer (see jpeg_shard_writer.h, format in shard_writer.h). Encoded bytes are
 * buffered and written to the extendible `jpeg` dataset in whole chunks, so HDF5 never reads back a
 * partial chunk to append to it and memory stays at about one chunk plus one image; the small
 * per-sample arrays (offsets, sizes, labels) are held for the shard and written when it completes.
 * All HDF5 calls run under the process HDF5 lock; errors name the file and dataset. */
#include "io/jpeg_shard_writer.h"

#include "framework/core/check.h"
#include "io/h5lock.h"
#include "io/shard_file.h"
#include "io/shard_writer.h"

#include <hdf5.h>
#include <string.h>

#define META_CHUNK_ROWS 16384
#define MAX_CHUNK_BYTES (64 << 20) /* the reader refuses larger chunks (io/dataset.c) */

struct ssl_jpeg_shard_writer {
    ssl_jpeg_shard_spec spec;
    ssl_shard_file sf;     /* names, the open .tmp (sf.file) and the shard number */
    size_t chunk;          /* bytes per chunk of `jpeg` */
    uint8_t *buf;          /* encoded bytes not yet written, always < chunk after a write */
    size_t nbuf, bufcap;
    int64_t *offs;         /* (rows + 1) of the current shard */
    int32_t *sizes, *labs; /* (rows, 2), (rows) */
    size_t metacap;        /* rows the arrays hold */
    hid_t djpeg;           /* `jpeg` of the current shard, H5I_INVALID_HID when none is open */
    int64_t rows;          /* samples in the current shard */
    int64_t written;       /* bytes of `jpeg` already in the file */
    int64_t total, total_bytes;
    int failed;
};

/* Chunked dataset with Fletcher-32 on every chunk (no deflate: JPEG bytes do not compress, and the
 * per-sample arrays are tiny). maxdims NULL: fixed at dims. */
static hid_t create_chunked(hid_t file, const char *name, hid_t ftype, int rank, const hsize_t *dims,
                            const hsize_t *maxdims, const hsize_t *chunk)
{
    hid_t sp = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int ok = sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
             /* every byte is written before close, so the fill pass would be wasted I/O */
             H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0 && H5Pset_fletcher32(dcpl) >= 0;
    hid_t ds = ok ? H5Dcreate2(file, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    if (dcpl >= 0 && H5Pclose(dcpl) < 0) ok = 0;
    if (sp >= 0 && H5Sclose(sp) < 0) ok = 0;
    if (!ok && ds >= 0) {
        H5Dclose(ds); /* already failing: the first error is the one reported */
        ds = -1;
    }
    return ds;
}

/* Closes `jpeg` (before the file: HDF5 keeps a file open while it is); -1 if the close failed. */
static int close_dataset(ssl_jpeg_shard_writer *w)
{
    int ok = w->djpeg < 0 || H5Dclose(w->djpeg) >= 0;
    w->djpeg = H5I_INVALID_HID;
    return ok ? 0 : -1;
}

static int begin_shard(ssl_jpeg_shard_writer *w, char *err, size_t errlen)
{
    if (ssl_shard_file_create(&w->sf, err, errlen) < 0) return -1;
    w->rows = w->written = 0;
    w->nbuf = 0;
    hid_t f = w->sf.file;
    if (ssl_shard_attr_str(f, "format", SSL_SHARD_FORMAT) < 0 ||
        ssl_shard_attr_int(f, "version", SSL_SHARD_VERSION_JPEG) < 0 ||
        ssl_shard_attr_str(f, "encoding", SSL_SHARD_ENCODING_JPEG) < 0 ||
        ssl_shard_attr_int(f, "channels", 3) < 0 ||
        ssl_shard_attr_int(f, "num_classes", w->spec.num_classes) < 0 ||
        ssl_shard_attr_int(f, "height", 0) < 0 || ssl_shard_attr_int(f, "width", 0) < 0) {
        ssl_seterr(err, errlen, "%s: cannot write file attributes", w->sf.tmp_path);
        return -1;
    }
    hsize_t zero = 0, unlim = H5S_UNLIMITED, chunk = w->chunk;
    w->djpeg = create_chunked(f, "jpeg", H5T_STD_U8LE, 1, &zero, &unlim, &chunk);
    if (w->djpeg < 0) {
        ssl_seterr(err, errlen, "%s: cannot create dataset 'jpeg'", w->sf.tmp_path);
        return -1;
    }
    return 0;
}

/* Appends n bytes of buf to `jpeg` at w->written. */
static int write_bytes(ssl_jpeg_shard_writer *w, size_t n, char *err, size_t errlen)
{
    hsize_t start = (hsize_t)w->written, count = n, end = start + count;
    int ok = H5Dset_extent(w->djpeg, &end) >= 0;
    hid_t fsp = ok ? H5Dget_space(w->djpeg) : -1;
    hid_t msp = H5Screate_simple(1, &count, NULL);
    ok = ok && fsp >= 0 && msp >= 0 &&
         H5Sselect_hyperslab(fsp, H5S_SELECT_SET, &start, NULL, &count, NULL) >= 0 &&
         H5Dwrite(w->djpeg, H5T_NATIVE_UINT8, msp, fsp, H5P_DEFAULT, w->buf) >= 0;
    if (msp >= 0 && H5Sclose(msp) < 0) ok = 0;
    if (fsp >= 0 && H5Sclose(fsp) < 0) ok = 0;
    if (!ok) {
        ssl_seterr(err, errlen, "%s: dataset 'jpeg': writing bytes [%lld, %lld) failed",
                   w->sf.tmp_path, (long long)start, (long long)end);
        return -1;
    }
    w->written += (int64_t)n;
    memmove(w->buf, w->buf + n, w->nbuf - n);
    w->nbuf -= n;
    return 0;
}

/* A fixed-size per-sample dataset, written whole: rows x cols of mtype from buf. */
static int write_meta(ssl_jpeg_shard_writer *w, const char *name, hid_t ftype, hid_t mtype,
                      hsize_t rows, hsize_t cols, const void *buf, char *err, size_t errlen)
{
    const int rank = cols > 1 ? 2 : 1;
    hsize_t dims[2] = {rows, cols}, chunk[2] = {rows < META_CHUNK_ROWS ? rows : META_CHUNK_ROWS, cols};
    hid_t ds = create_chunked(w->sf.file, name, ftype, rank, dims, NULL, chunk);
    int ok = ds >= 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
    if (ds >= 0 && H5Dclose(ds) < 0) ok = 0;
    if (!ok) ssl_seterr(err, errlen, "%s: dataset '%s': writing %llu rows failed", w->sf.tmp_path,
                        name, (unsigned long long)rows);
    return ok ? 0 : -1;
}

/* Writes the rest of the shard and makes it durable under its final name. */
static int finish_shard(ssl_jpeg_shard_writer *w, char *err, size_t errlen)
{
    if (w->nbuf > 0 && write_bytes(w, w->nbuf, err, errlen) < 0) return -1;
    const hsize_t n = (hsize_t)w->rows;
    w->offs[n] = w->written;
    if (write_meta(w, "offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, n + 1, 1, w->offs, err, errlen) < 0 ||
        write_meta(w, "sizes", H5T_STD_I32LE, H5T_NATIVE_INT32, n, 2, w->sizes, err, errlen) < 0 ||
        (w->spec.with_labels &&
         write_meta(w, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, n, 1, w->labs, err, errlen) < 0))
        return -1;
    if (ssl_shard_file_commit(&w->sf, close_dataset(w) == 0, err, errlen) < 0) return -1;
    w->rows = w->written = 0;
    return 0;
}

ssl_jpeg_shard_writer *ssl_jpeg_shard_writer_open(const ssl_jpeg_shard_spec *spec, char *err,
                                                  size_t errlen)
{
    const ssl_jpeg_shard_spec *s = spec;
    if (!s->out_dir || !s->prefix || !s->prefix[0]) {
        ssl_seterr(err, errlen, "jpeg shard writer: out_dir and prefix are required");
        return NULL;
    }
    if (s->shard_size <= 0 || s->num_classes < 0 || s->chunk_bytes < 0 ||
        s->chunk_bytes > MAX_CHUNK_BYTES) {
        ssl_seterr(err, errlen, "%s/%s: bad shard spec (shard_size %d, num_classes %d, chunk_bytes %d)",
               s->out_dir, s->prefix, s->shard_size, s->num_classes, s->chunk_bytes);
        return NULL;
    }
    if (ssl_shard_file_check_name(s->out_dir, s->prefix, err, errlen) < 0) return NULL;
    ssl_h5_lock();
    /* Our messages name the file and dataset; HDF5's own stack dump would only add noise. */
    herr_t eauto = H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    ssl_h5_unlock();
    if (eauto < 0) {
        ssl_seterr(err, errlen, "%s/%s: HDF5 error reporting could not be configured", s->out_dir,
               s->prefix);
        return NULL;
    }
    ssl_jpeg_shard_writer *w = ssl_calloc(1, sizeof *w);
    w->spec = *s;
    ssl_shard_file_init(&w->sf, s->out_dir, s->prefix);
    w->spec.out_dir = w->sf.dir;
    w->spec.prefix = w->sf.prefix;
    w->chunk = s->chunk_bytes > 0 ? (size_t)s->chunk_bytes : SSL_JPEG_SHARD_CHUNK;
    w->djpeg = H5I_INVALID_HID;
    return w;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return p;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) cap2 *= 2;
    void *q = ssl_malloc(cap2 * elem);
    if (p) memcpy(q, p, *cap * elem);
    ssl_free(p);
    *cap = cap2;
    return q;
}

int ssl_jpeg_shard_writer_add(ssl_jpeg_shard_writer *w, const uint8_t *bytes, size_t len, int height,
                              int width, int32_t label, char *err, size_t errlen)
{
    if (w->failed) {
        ssl_seterr(err, errlen, "%s/%s: writer already failed", w->sf.dir, w->sf.prefix);
        return -1;
    }
    const ssl_jpeg_shard_spec *s = &w->spec;
    if (!bytes || len == 0 || height <= 0 || width <= 0 ||
        (s->with_labels && (label < 0 || (s->num_classes > 0 && label >= s->num_classes)))) {
        ssl_seterr(err, errlen, "%s/%s: sample %lld: bad add (%zu bytes, %dx%d, label %d, classes %d)",
               w->sf.dir, w->sf.prefix, (long long)w->total, len, height, width, (int)label,
               s->num_classes);
        w->failed = 1;
        return -1;
    }
    int rc = 0;
    ssl_h5_lock();
    if (w->sf.file < 0) rc = begin_shard(w, err, errlen);
    if (rc == 0) {
        /* three arrays of the same row capacity: grow them together */
        size_t cap = w->metacap, need = (size_t)w->rows + 2;
        w->offs = grow(w->offs, &cap, need, sizeof *w->offs);
        cap = w->metacap;
        w->sizes = grow(w->sizes, &cap, need, 2 * sizeof *w->sizes);
        cap = w->metacap;
        w->labs = grow(w->labs, &cap, need, sizeof *w->labs);
        w->metacap = cap;
        w->offs[w->rows] = w->written + (int64_t)w->nbuf;
        w->sizes[2 * w->rows] = height;
        w->sizes[2 * w->rows + 1] = width;
        w->labs[w->rows] = s->with_labels ? label : 0;
        w->buf = grow(w->buf, &w->bufcap, w->nbuf + len, 1);
        memcpy(w->buf + w->nbuf, bytes, len);
        w->nbuf += len;
        w->rows++;
        w->total++;
        w->total_bytes += (int64_t)len;
        /* whole chunks only: a chunk is written once, never read back to be completed */
        if (w->nbuf >= w->chunk) rc = write_bytes(w, w->nbuf / w->chunk * w->chunk, err, errlen);
        if (rc == 0 && w->rows == s->shard_size) rc = finish_shard(w, err, errlen);
    }
    ssl_h5_unlock();
    if (rc < 0) w->failed = 1;
    return rc;
}

static void free_writer(ssl_jpeg_shard_writer *w)
{
    ssl_free(w->buf);
    ssl_free(w->offs);
    ssl_free(w->sizes);
    ssl_free(w->labs);
    ssl_free(w);
}

void ssl_jpeg_shard_writer_abort(ssl_jpeg_shard_writer *w)
{
    if (!w) return;
    ssl_h5_lock();
    close_dataset(w); /* discarding anyway: a failed close changes nothing */
    ssl_shard_file_discard(&w->sf);
    ssl_h5_unlock();
    free_writer(w);
}

int ssl_jpeg_shard_writer_close(ssl_jpeg_shard_writer *w, char *err, size_t errlen)
{
    if (w->failed) {
        ssl_seterr(err, errlen, "%s/%s: writer failed earlier; partial shard discarded", w->sf.dir,
               w->sf.prefix);
        ssl_jpeg_shard_writer_abort(w);
        return -1;
    }
    ssl_h5_lock();
    int rc = w->sf.file >= 0 ? finish_shard(w, err, errlen) : 0;
    ssl_h5_unlock();
    if (rc < 0) {
        ssl_jpeg_shard_writer_abort(w);
        return -1;
    }
    ssl_shard_file_remove_stale(&w->sf); /* only now that this prep succeeded */
    free_writer(w);
    return 0;
}

int ssl_jpeg_shard_writer_start_shard(ssl_jpeg_shard_writer *w, int shard, char *err, size_t errlen)
{
    /* samples are only ever buffered inside an open shard file: nothing else can be pending */
    return ssl_shard_file_start(&w->sf, shard, w->failed, 0, err, errlen);
}

int ssl_jpeg_shard_writer_end_shard(ssl_jpeg_shard_writer *w, char *err, size_t errlen)
{
    if (w->failed) {
        ssl_seterr(err, errlen, "%s/%s: writer already failed", w->sf.dir, w->sf.prefix);
        return -1;
    }
    ssl_h5_lock();
    int rc = w->sf.file >= 0 ? finish_shard(w, err, errlen) : 0;
    ssl_h5_unlock();
    if (rc < 0) w->failed = 1;
    return rc;
}

int64_t ssl_jpeg_shard_writer_count(const ssl_jpeg_shard_writer *w) { return w->total; }

int64_t ssl_jpeg_shard_writer_bytes(const ssl_jpeg_shard_writer *w) { return w->total_bytes; }

int ssl_jpeg_shard_writer_nshards(const ssl_jpeg_shard_writer *w) { return w->sf.shard; }
