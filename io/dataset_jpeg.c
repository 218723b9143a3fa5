/* JPEG shards (format in shard_writer.h): the open-time checks of `jpeg`, `offsets` and `sizes`, and
 * reads of encoded bytes. Offsets and sizes live in memory (16 bytes a sample: 20 MB for ImageNet),
 * so a batch's reads need no index lookups in the file. */
#include "io/dataset_internal.h"
#include "io/h5check.h"
#include "io/h5lock.h"
#include "io/shard_writer.h"

#include <stdio.h>
#include <string.h>

#define MAX_ROWS ((hsize_t)1 << 40)
#define MAX_IMAGE_BYTES ((int64_t)64 << 20) /* far above any photograph; a larger one is damage */
#define MAX_SIDE 65535                      /* the JPEG format's own limit */
#define CACHE_CHUNKS 8                      /* a batch's consecutive samples share chunks */
#define CACHE_MAX ((size_t)32 << 20)

/* Opens dataset `name` of type native and rank `rank` (1 or 2, second dim `dim1`), after the storage
 * checks, into *ds with its dims. */
static int open_checked(shard *s, const char *name, hid_t native, int rank, hsize_t dim1, size_t elem, hid_t dapl,
                        hid_t *ds, hsize_t *dims, size_t *chunk_bytes, char *err, size_t errlen)
{
    htri_t ex = H5Lexists(s->file, name, H5P_DEFAULT);
    if (ex <= 0) {
        ssl_seterr(err, errlen, "%s: %s dataset '%s'", s->path, ex < 0 ? "cannot look up" : "missing", name);
        return -1;
    }
    *ds = H5Dopen2(s->file, name, dapl);
    if (*ds < 0) {
        ssl_seterr(err, errlen, "%s: '%s' cannot be opened as a dataset", s->path, name);
        return -1;
    }
    char tname[64] = "";
    int rc = ssl_ds_check_type(*ds, native, tname, sizeof tname);
    if (rc <= 0) {
        if (rc < 0) ssl_seterr(err, errlen, "%s: dataset '%s': cannot read its type", s->path, name);
        else ssl_seterr(err, errlen, "%s: dataset '%s' has type %s", s->path, name, tname);
        return -1;
    }
    hid_t sp = H5Dget_space(*ds);
    int r = sp < 0 ? -1 : ssl_ds_get_dims(sp, dims);
    if (sp >= 0 && H5Sclose(sp) < 0) r = -1;
    if (r != rank || dims[0] > MAX_ROWS ||
        (rank == 2 && dims[1] != dim1)) {
        ssl_seterr(err, errlen, "%s: dataset '%s' has an unexpected shape (rank %d, expected %d%s)", s->path, name,
                      r, rank, rank == 2 ? ", (N, 2)" : "");
        return -1;
    }
    const size_t row = elem * (rank == 2 ? (size_t)dim1 : 1);
    return ssl_ds_check_storage(s->file, *ds, s->path, name, rank, dims, elem, row, 1, chunk_bytes, err, errlen);
}

static int read_all(shard *s, hid_t ds, const char *name, hid_t native, void *out, int *ok, char *err, size_t errlen)
{
    if (H5Dread(ds, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
        ssl_seterr(err, errlen, "%s: dataset '%s': read failed (checksum mismatch or corrupt file)", s->path, name);
        *ok = 0;
    }
    if (H5Dclose(ds) < 0) *ok = 0;
    return *ok ? 0 : -1;
}

int ssl_ds_jpeg_open(ssl_dataset *d, int i, char *err, size_t errlen)
{
    shard *s = &d->shards[i];
    hsize_t bdims[4], odims[4], sdims[4];
    size_t cb = 0;
    hid_t ds = H5I_INVALID_HID;
    int ok = 1;
    /* offsets: int64 (N + 1), from 0, non-decreasing, ending at the byte count */
    if (open_checked(s, "offsets", H5T_NATIVE_INT64, 1, 0, 8, H5P_DEFAULT, &ds, odims, NULL, err, errlen)) goto fail;
    if (odims[0] < 1) {
        ssl_seterr(err, errlen, "%s: dataset 'offsets' is empty (it holds N + 1 entries)", s->path);
        goto fail;
    }
    s->n = (int64_t)odims[0] - 1;
    s->jpeg_off = ssl_malloc((size_t)odims[0] * sizeof *s->jpeg_off);
    if (read_all(s, ds, "offsets", H5T_NATIVE_INT64, s->jpeg_off, &ok, err, errlen)) return -1;
    /* sizes: int32 (N, 2) */
    if (open_checked(s, "sizes", H5T_NATIVE_INT32, 2, 2, 4, H5P_DEFAULT, &ds, sdims, NULL, err, errlen)) goto fail;
    if ((int64_t)sdims[0] != s->n) {
        ssl_seterr(err, errlen, "%s: dataset 'sizes' has %llu rows but 'offsets' describes %lld images", s->path,
                      (unsigned long long)sdims[0], (long long)s->n);
        goto fail;
    }
    s->jpeg_hw = ssl_malloc((size_t)(s->n > 0 ? s->n : 1) * 2 * sizeof *s->jpeg_hw);
    if (s->n > 0 && read_all(s, ds, "sizes", H5T_NATIVE_INT32, s->jpeg_hw, &ok, err, errlen)) return -1;
    if (s->n == 0 && H5Dclose(ds) < 0) return -1;
    ds = H5I_INVALID_HID;
    /* jpeg: uint8 (B), opened with a chunk cache that holds a few chunks */
    if (open_checked(s, "jpeg", H5T_NATIVE_UINT8, 1, 0, 1, H5P_DEFAULT, &s->jpeg, bdims, &cb, err, errlen))
        return -1;
    for (int64_t r = 0; r < s->n; r++) {
        const int64_t a = s->jpeg_off[r], b = s->jpeg_off[r + 1];
        const int32_t h = s->jpeg_hw[2 * r], w = s->jpeg_hw[2 * r + 1];
        if (r == 0 && a != 0) {
            ssl_seterr(err, errlen, "%s: dataset 'offsets' starts at %lld, not 0", s->path, (long long)a);
            return -1;
        }
        if (b < a || b - a > MAX_IMAGE_BYTES) {
            ssl_seterr(err, errlen, "%s: dataset 'offsets' row %lld: [%lld, %lld) is not an image's byte range",
                          s->path, (long long)r, (long long)a, (long long)b);
            return -1;
        }
        if (h < 1 || w < 1 || h > MAX_SIDE || w > MAX_SIDE) {
            ssl_seterr(err, errlen, "%s: dataset 'sizes' row %lld: %d x %d is not an image size", s->path,
                          (long long)r, (int)h, (int)w);
            return -1;
        }
    }
    if ((hsize_t)s->jpeg_off[s->n] != bdims[0]) {
        ssl_seterr(err, errlen, "%s: dataset 'offsets' ends at %lld but dataset 'jpeg' holds %llu bytes", s->path,
                      (long long)s->jpeg_off[s->n], (unsigned long long)bdims[0]);
        return -1;
    }
    if (cb > 0) { /* reopen with a cache of a few chunks (HDF5's default 1 MiB holds no larger chunk) */
        size_t bytes = CACHE_CHUNKS * cb < CACHE_MAX ? CACHE_CHUNKS * cb : CACHE_MAX;
        hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
        ok = dapl >= 0 && H5Pset_chunk_cache(dapl, 521, bytes, 0.75) >= 0 && H5Dclose(s->jpeg) >= 0;
        s->jpeg = ok ? H5Dopen2(s->file, "jpeg", dapl) : H5I_INVALID_HID;
        if (dapl >= 0 && H5Pclose(dapl) < 0) ok = 0;
        if (!ok || s->jpeg < 0) {
            ssl_seterr(err, errlen, "%s: dataset 'jpeg': cannot reopen with a chunk cache", s->path);
            return -1;
        }
    }
    s->fspace = H5Dget_space(s->jpeg);
    if (s->fspace < 0) {
        ssl_seterr(err, errlen, "%s: dataset 'jpeg': cannot read its dataspace", s->path);
        return -1;
    }
    return 0;
fail:
    if (ds >= 0) H5Dclose(ds);
    return -1;
}

int ssl_ds_jpeg_load_sizes(ssl_dataset *d, int i, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    shard *s = &d->shards[i];
    if (s->n > 0) memcpy(d->sizes + 2 * d->offsets[i], s->jpeg_hw, (size_t)s->n * 2 * sizeof *s->jpeg_hw);
    ssl_free(s->jpeg_hw);
    s->jpeg_hw = NULL;
    return 0;
}

int ssl_dataset_is_jpeg(const ssl_dataset *d) { return d->jpeg; }
const int32_t *ssl_dataset_sizes(const ssl_dataset *d) { return d->jpeg ? d->sizes : NULL; }

const char *ssl_dataset_locate(const ssl_dataset *d, int64_t idx, int64_t *row)
{
    if (idx < 0 || idx >= d->total) return NULL;
    int s = ssl_ds_shard_of(d, idx);
    if (row) *row = idx - d->offsets[s];
    return d->shards[s].path;
}

/* Bytes [a, b) of shard s's `jpeg` into out. Caller holds the HDF5 lock. */
static int read_bytes(ssl_dataset *d, int s, int64_t a, int64_t b, uint8_t *out, char *err, size_t errlen)
{
    shard *sh = &d->shards[s];
    hsize_t start = (hsize_t)a, count = (hsize_t)(b - a);
    hid_t msp = H5Screate_simple(1, &count, NULL);
    int ok = msp >= 0 && H5Sselect_hyperslab(sh->fspace, H5S_SELECT_SET, &start, NULL, &count, NULL) >= 0 &&
             H5Dread(sh->jpeg, H5T_NATIVE_UINT8, msp, sh->fspace, H5P_DEFAULT, out) >= 0;
    char why[200];
    if (!ok) ssl_h5_reason(why, sizeof why);
    if (msp >= 0 && H5Sclose(msp) < 0) ok = 0;
    if (!ok)
        ssl_seterr(err, errlen, "%s: dataset 'jpeg': reading bytes [%lld, %lld) failed: %s (checksum mismatch or "
                      "corrupt data)", sh->path, (long long)a, (long long)b, why);
    return ok ? 0 : -1;
}

int ssl_dataset_read_encoded(ssl_dataset *d, const int64_t *indices, int n, uint8_t **buf, size_t *cap,
                             size_t *off, int32_t *out_labels, char *err, size_t errlen)
{
    if (!d->jpeg) {
        ssl_seterr(err, errlen, "%s: raw shards hold no encoded images", d->spec);
        return -1;
    }
    off[0] = 0;
    for (int i = 0; i < n; i++) {
        if (indices[i] < 0 || indices[i] >= d->total) {
            ssl_seterr(err, errlen, "%s: index %lld out of range [0, %lld)", d->spec, (long long)indices[i],
                          (long long)d->total);
            return -1;
        }
        const int s = ssl_ds_shard_of(d, indices[i]);
        const int64_t r = indices[i] - d->offsets[s];
        off[i + 1] = off[i] + (size_t)(d->shards[s].jpeg_off[r + 1] - d->shards[s].jpeg_off[r]);
    }
    if (off[n] > *cap || !*buf) {
        ssl_free(*buf);
        *cap = off[n] + off[n] / 2 + 1;
        *buf = ssl_malloc(*cap);
    }
    if (out_labels)
        for (int i = 0; i < n; i++) out_labels[i] = d->has_labels ? d->labels[indices[i]] : -1;
    int rc = 0;
    ssl_h5_lock();
    for (int i = 0; i < n && rc == 0;) {
        const int s = ssl_ds_shard_of(d, indices[i]);
        const int64_t end = d->offsets[s + 1], r = indices[i] - d->offsets[s];
        int len = 1; /* a run of consecutive indices within one shard is one read */
        while (i + len < n && indices[i + len] == indices[i] + len && indices[i + len] < end) len++;
        const int64_t a = d->shards[s].jpeg_off[r], b = d->shards[s].jpeg_off[r + len];
        if (b > a) rc = read_bytes(d, s, a, b, *buf + off[i], err, errlen);
        i += len;
    }
    ssl_h5_unlock();
    return rc;
}
