/* sslrun shard writer (see shard_writer.h). Samples are buffered one chunk at a time and appended to
 * an extendible dataset, so memory stays at one chunk whatever the shard size; every HDF5 status is
 * checked and errors name the file and dataset. All HDF5 calls run under the process HDF5 lock. */
#include "io/shard_writer.h"

#include "framework/core/check.h"
#include "io/h5lock.h"
#include "io/shard_file.h"

#include <hdf5.h>
#include <string.h>

struct ssl_shard_writer {
    ssl_shard_spec spec;
    ssl_shard_file sf;     /* names, the open .tmp (sf.file) and the shard number */
    size_t sample_bytes;   /* H*W*C */
    int chunk;             /* effective samples per chunk (<= shard_size) */
    uint8_t *buf_img;      /* (chunk, H, W, C) */
    int32_t *buf_lab;      /* (chunk) or NULL */
    int nbuf;
    hid_t dimg, dlab;      /* datasets of the current shard, H5I_INVALID_HID when none is open */
    int64_t shard_rows;    /* rows already written to it */
    int64_t total;
    int failed;
};

/* Extendible chunked dataset of `rank` dims whose first is 0 now and unlimited later. */
static hid_t create_extendible(hid_t file, const char *name, hid_t ftype, int rank,
                               const hsize_t *inner, const hsize_t *chunk, int deflate)
{
    hsize_t dims[4], maxdims[4];
    dims[0] = 0;
    maxdims[0] = H5S_UNLIMITED;
    for (int i = 1; i < rank; i++) dims[i] = maxdims[i] = inner[i - 1];
    hid_t sp = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int ok = sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
             /* every row is written before close, so the fill pass would be wasted I/O */
             H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0 &&
             (deflate <= 0 || H5Pset_deflate(dcpl, (unsigned)deflate) >= 0) &&
             /* after deflate, so the checksum covers the stored bytes and is checked before
              * inflating: bit rot is a read error naming the dataset, never wrong pixels */
             H5Pset_fletcher32(dcpl) >= 0;
    hid_t ds = ok ? H5Dcreate2(file, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    if (dcpl >= 0 && H5Pclose(dcpl) < 0) ok = 0;
    if (sp >= 0 && H5Sclose(sp) < 0) ok = 0;
    if (!ok && ds >= 0) {
        H5Dclose(ds); /* already failing: the first error is the one reported */
        ds = -1;
    }
    return ds;
}

/* Closes the current shard's datasets (before its file: HDF5 keeps a file open while they are);
 * returns -1 if any close failed. */
static int close_datasets(ssl_shard_writer *w)
{
    int ok = 1;
    if (w->dlab >= 0 && H5Dclose(w->dlab) < 0) ok = 0;
    if (w->dimg >= 0 && H5Dclose(w->dimg) < 0) ok = 0;
    w->dlab = w->dimg = H5I_INVALID_HID;
    return ok ? 0 : -1;
}

static int begin_shard(ssl_shard_writer *w, char *err, size_t errlen)
{
    if (ssl_shard_file_create(&w->sf, err, errlen) < 0) return -1;
    w->shard_rows = 0;
    const ssl_shard_spec *s = &w->spec;
    hid_t f = w->sf.file;
    if (ssl_shard_attr_int(f, "height", s->height) < 0 ||
        ssl_shard_attr_int(f, "width", s->width) < 0 ||
        ssl_shard_attr_int(f, "channels", s->channels) < 0 ||
        ssl_shard_attr_int(f, "num_classes", s->num_classes) < 0 ||
        ssl_shard_attr_int(f, "version", SSL_SHARD_VERSION) < 0 ||
        ssl_shard_attr_str(f, "format", SSL_SHARD_FORMAT) < 0) {
        ssl_seterr(err, errlen, "%s: cannot write file attributes", w->sf.tmp_path);
        return -1;
    }
    hsize_t inner[3] = {(hsize_t)s->height, (hsize_t)s->width, (hsize_t)s->channels};
    hsize_t chunk[4] = {(hsize_t)w->chunk, inner[0], inner[1], inner[2]};
    w->dimg = create_extendible(f, "images", H5T_STD_U8LE, 4, inner, chunk, s->deflate);
    if (w->dimg < 0) {
        ssl_seterr(err, errlen, "%s: cannot create dataset 'images'", w->sf.tmp_path);
        return -1;
    }
    if (s->with_labels) {
        /* labels are tiny: big chunks, so reading them all at open is a few I/Os */
        hsize_t lchunk[1] = {(hsize_t)(s->shard_size < 16384 ? s->shard_size : 16384)};
        w->dlab = create_extendible(f, "labels", H5T_STD_I32LE, 1, NULL, lchunk, s->deflate);
        if (w->dlab < 0) {
            ssl_seterr(err, errlen, "%s: cannot create dataset 'labels'", w->sf.tmp_path);
            return -1;
        }
    }
    return 0;
}

/* Append rows [shard_rows, shard_rows + n) of one dataset from a host buffer. */
static int append_rows(hid_t ds, int rank, const hsize_t *inner, int64_t at, int n, hid_t mtype,
                       const void *buf)
{
    hsize_t dims[4], start[4] = {0, 0, 0, 0}, count[4];
    dims[0] = (hsize_t)(at + n);
    start[0] = (hsize_t)at;
    count[0] = (hsize_t)n;
    hsize_t melems = (hsize_t)n;
    for (int i = 1; i < rank; i++) {
        dims[i] = count[i] = inner[i - 1];
        melems *= inner[i - 1];
    }
    if (H5Dset_extent(ds, dims) < 0) return -1;
    hid_t fsp = H5Dget_space(ds);
    hid_t msp = H5Screate_simple(1, &melems, NULL);
    int ok = fsp >= 0 && msp >= 0 &&
             H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
             H5Dwrite(ds, mtype, msp, fsp, H5P_DEFAULT, buf) >= 0;
    if (msp >= 0 && H5Sclose(msp) < 0) ok = 0;
    if (fsp >= 0 && H5Sclose(fsp) < 0) ok = 0;
    return ok ? 0 : -1;
}

/* Make a completed shard durable under its final name. */
static int finish_shard(ssl_shard_writer *w, char *err, size_t errlen)
{
    if (ssl_shard_file_commit(&w->sf, close_datasets(w) == 0, err, errlen) < 0) return -1;
    w->shard_rows = 0;
    return 0;
}

static int flush(ssl_shard_writer *w, char *err, size_t errlen)
{
    if (w->nbuf == 0) return 0;
    if (w->sf.file < 0 && begin_shard(w, err, errlen) < 0) return -1;
    const ssl_shard_spec *s = &w->spec;
    hsize_t inner[3] = {(hsize_t)s->height, (hsize_t)s->width, (hsize_t)s->channels};
    if (append_rows(w->dimg, 4, inner, w->shard_rows, w->nbuf, H5T_NATIVE_UINT8, w->buf_img) < 0) {
        ssl_seterr(err, errlen, "%s: dataset 'images': writing rows [%lld, %lld) failed",
                   w->sf.tmp_path, (long long)w->shard_rows, (long long)(w->shard_rows + w->nbuf));
        return -1;
    }
    if (s->with_labels &&
        append_rows(w->dlab, 1, NULL, w->shard_rows, w->nbuf, H5T_NATIVE_INT32, w->buf_lab) < 0) {
        ssl_seterr(err, errlen, "%s: dataset 'labels': writing rows [%lld, %lld) failed",
                   w->sf.tmp_path, (long long)w->shard_rows, (long long)(w->shard_rows + w->nbuf));
        return -1;
    }
    w->shard_rows += w->nbuf;
    w->nbuf = 0;
    if (w->shard_rows == s->shard_size) return finish_shard(w, err, errlen);
    return 0;
}

ssl_shard_writer *ssl_shard_writer_open(const ssl_shard_spec *spec, char *err, size_t errlen)
{
    const ssl_shard_spec *s = spec;
    if (!s->out_dir || !s->prefix || !s->prefix[0]) {
        ssl_seterr(err, errlen, "shard writer: out_dir and prefix are required");
        return NULL;
    }
    if (s->height <= 0 || s->width <= 0 || s->channels <= 0 || s->shard_size <= 0 ||
        s->num_classes < 0 || s->chunk < 0 || s->deflate < 0 || s->deflate > 9) {
        ssl_seterr(err, errlen,
               "%s/%s: bad shard spec (height %d, width %d, channels %d, shard_size %d, "
               "num_classes %d, chunk %d, deflate %d)",
               s->out_dir, s->prefix, s->height, s->width, s->channels, s->shard_size,
               s->num_classes, s->chunk, s->deflate);
        return NULL;
    }
    if ((double)s->height * (double)s->width * (double)s->channels > (double)(1u << 31)) {
        ssl_seterr(err, errlen, "%s/%s: %dx%dx%d images are too large for one chunk", s->out_dir,
               s->prefix, s->height, s->width, s->channels);
        return NULL;
    }
    if (ssl_shard_file_check_name(s->out_dir, s->prefix, err, errlen) < 0) return NULL;
    size_t sample = (size_t)s->height * (size_t)s->width * (size_t)s->channels;
    ssl_h5_lock();
    /* Our messages name the file and dataset; HDF5's own stack dump would only add noise. */
    herr_t eauto = H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    htri_t have_deflate = s->deflate > 0 ? H5Zfilter_avail(H5Z_FILTER_DEFLATE) : 1;
    ssl_h5_unlock();
    if (eauto < 0 || have_deflate <= 0) {
        ssl_seterr(err, errlen, "%s/%s: HDF5 %s", s->out_dir, s->prefix,
               eauto < 0 ? "error reporting could not be configured" : "has no deflate filter");
        return NULL;
    }
    ssl_shard_writer *w = ssl_calloc(1, sizeof *w);
    w->spec = *s;
    ssl_shard_file_init(&w->sf, s->out_dir, s->prefix);
    w->spec.out_dir = w->sf.dir;
    w->spec.prefix = w->sf.prefix;
    w->sample_bytes = sample;
    /* A few samples per chunk: compression forces whole-chunk reads, so a random sample costs one
     * chunk's decompression (REFERENCE §8.9); ~256 KiB keeps that small and the chunk count sane. */
    int chunk = s->chunk;
    if (chunk == 0) {
        size_t c = ((size_t)256 << 10) / sample;
        chunk = c < 1 ? 1 : c > 64 ? 64 : (int)c;
    }
    w->chunk = chunk < s->shard_size ? chunk : s->shard_size;
    w->buf_img = ssl_malloc((size_t)w->chunk * sample);
    w->buf_lab = s->with_labels ? ssl_malloc((size_t)w->chunk * sizeof(int32_t)) : NULL;
    w->dimg = w->dlab = H5I_INVALID_HID;
    return w;
}

int ssl_shard_writer_add(ssl_shard_writer *w, const uint8_t *images, const int32_t *labels, int n,
                         char *err, size_t errlen)
{
    if (w->failed) {
        ssl_seterr(err, errlen, "%s/%s: writer already failed", w->sf.dir, w->sf.prefix);
        return -1;
    }
    if (n < 0 || (n > 0 && !images) || (w->spec.with_labels && n > 0 && !labels)) {
        ssl_seterr(err, errlen, "%s/%s: bad add (n %d, images %s, labels %s)", w->sf.dir,
                   w->sf.prefix, n, images ? "set" : "NULL", labels ? "set" : "NULL");
        return -1;
    }
    const ssl_shard_spec *s = &w->spec;
    for (int i = 0; i < n; i++) {
        if (s->with_labels && (labels[i] < 0 || (s->num_classes > 0 && labels[i] >= s->num_classes))) {
            ssl_seterr(err, errlen, "%s/%s: sample %lld has label %d, outside [0, %d)", w->sf.dir,
                   w->sf.prefix, (long long)w->total, (int)labels[i], s->num_classes);
            w->failed = 1;
            return -1;
        }
        memcpy(w->buf_img + (size_t)w->nbuf * w->sample_bytes, images + (size_t)i * w->sample_bytes,
               w->sample_bytes);
        if (s->with_labels) w->buf_lab[w->nbuf] = labels[i];
        w->nbuf++;
        w->total++;
        /* A flush never crosses a shard boundary, so shard_size need not divide by the chunk. */
        if (w->nbuf == w->chunk || w->shard_rows + w->nbuf == s->shard_size) {
            ssl_h5_lock();
            int rc = flush(w, err, errlen);
            ssl_h5_unlock();
            if (rc < 0) {
                w->failed = 1;
                return -1;
            }
        }
    }
    return 0;
}

static void free_writer(ssl_shard_writer *w)
{
    ssl_free(w->buf_img);
    ssl_free(w->buf_lab);
    ssl_free(w);
}

void ssl_shard_writer_abort(ssl_shard_writer *w)
{
    if (!w) return;
    ssl_h5_lock();
    close_datasets(w); /* discarding anyway: a failed close changes nothing */
    ssl_shard_file_discard(&w->sf);
    ssl_h5_unlock();
    free_writer(w);
}

int ssl_shard_writer_close(ssl_shard_writer *w, char *err, size_t errlen)
{
    if (w->failed) {
        ssl_seterr(err, errlen, "%s/%s: writer failed earlier; partial shard discarded", w->sf.dir,
               w->sf.prefix);
        ssl_shard_writer_abort(w);
        return -1;
    }
    ssl_h5_lock();
    int rc = flush(w, err, errlen);
    if (rc == 0 && w->sf.file >= 0) rc = finish_shard(w, err, errlen);
    ssl_h5_unlock();
    if (rc < 0) {
        ssl_shard_writer_abort(w);
        return -1;
    }
    ssl_shard_file_remove_stale(&w->sf); /* only now that this prep succeeded */
    free_writer(w);
    return 0;
}

int ssl_shard_writer_start_shard(ssl_shard_writer *w, int shard, char *err, size_t errlen)
{
    /* buffered samples belong to the shard in progress even before its file exists */
    return ssl_shard_file_start(&w->sf, shard, w->failed, w->nbuf > 0, err, errlen);
}

int ssl_shard_writer_end_shard(ssl_shard_writer *w, char *err, size_t errlen)
{
    if (w->failed) {
        ssl_seterr(err, errlen, "%s/%s: writer already failed", w->sf.dir, w->sf.prefix);
        return -1;
    }
    ssl_h5_lock();
    int rc = flush(w, err, errlen);
    if (rc == 0 && w->sf.file >= 0) rc = finish_shard(w, err, errlen);
    ssl_h5_unlock();
    if (rc < 0) w->failed = 1;
    return rc;
}

int64_t ssl_shard_writer_count(const ssl_shard_writer *w) { return w->total; }

int ssl_shard_writer_nshards(const ssl_shard_writer *w) { return w->sf.shard; }
