/* Single-file HDF5 checkpoints (see checkpoint.h). Every HDF5 status is checked; the library's own
 * error-stack printing is silenced and replaced by messages naming the file and dataset. */
#include "io/checkpoint.h"

#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/version.h"
#include "io/config.h"
#include "io/h5check.h"
#include "io/h5lock.h"

#include <dirent.h>
#include <mpi.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define FAIL(...)                                                                              \
    do {                                                                                       \
        snprintf(err, errlen, __VA_ARGS__);                                                    \
        goto fail;                                                                             \
    } while (0)

/* Registration errors are the caller's bugs: stop with the array's name rather than drop it (a
 * dropped array would resume training with that state silently missing). */
static void add(ssl_ckpt *ck, const char *name, ssl_ckpt_dtype dtype, void *data, size_t n, int sharded,
                size_t offset, size_t total)
{
    SSL_ASSERTF(name && name[0], "ssl_ckpt_add: an array without a name");
    SSL_ASSERTF(strlen(name) < sizeof ck->arrays[0].name,
                "ssl_ckpt_add: array name '%s' is longer than %zu characters", name, sizeof ck->arrays[0].name - 1);
    SSL_ASSERTF(ck->narrays >= 0 && ck->narrays < SSL_CKPT_MAX_ARRAYS,
                "ssl_ckpt_add: cannot register array '%s': already %d arrays (SSL_CKPT_MAX_ARRAYS %d)", name,
                ck->narrays, SSL_CKPT_MAX_ARRAYS);
    for (int i = 0; i < ck->narrays; i++)
        SSL_ASSERTF(strcmp(ck->arrays[i].name, name) != 0, "ssl_ckpt_add: array '%s' registered twice", name);
    SSL_ASSERTF(data || n == 0, "ssl_ckpt_add: array '%s' has %zu elements but no data", name, n);
    SSL_ASSERTF(n <= total && offset <= total - n,
                "ssl_ckpt_add_sharded: array '%s': this rank's %zu elements at offset %zu exceed the global size %zu",
                name, n, offset, total);
    ssl_ckpt_array *a = &ck->arrays[ck->narrays++];
    snprintf(a->name, sizeof a->name, "%s", name);
    a->dtype = dtype;
    a->data = data;
    a->n = n;
    a->sharded = sharded;
    a->offset = offset;
    a->total = total;
}

void ssl_ckpt_add(ssl_ckpt *ck, const char *name, float *data, size_t n)
{
    add(ck, name, SSL_CKPT_F32, data, n, 0, 0, n);
}

void ssl_ckpt_add_i64(ssl_ckpt *ck, const char *name, int64_t *data, size_t n)
{
    add(ck, name, SSL_CKPT_I64, data, n, 0, 0, n);
}

void ssl_ckpt_add_sharded(ssl_ckpt *ck, const char *name, float *data, size_t n, size_t offset, size_t total)
{
    add(ck, name, SSL_CKPT_F32, data, n, 1, offset, total);
}

static size_t elem_size(ssl_ckpt_dtype t) { return t == SSL_CKPT_I64 ? sizeof(int64_t) : sizeof(float); }
static hid_t file_type(ssl_ckpt_dtype t) { return t == SSL_CKPT_I64 ? H5T_STD_I64LE : H5T_IEEE_F32LE; }
static hid_t mem_type(ssl_ckpt_dtype t) { return t == SSL_CKPT_I64 ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT; }

static int write_i64_attr(hid_t obj, const char *name, int64_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = at < 0 ? -1 : H5Awrite(at, H5T_NATIVE_INT64, &v);
    if (at >= 0) H5Aclose(at);
    H5Sclose(sp);
    return st < 0 ? -1 : 0;
}

/* One integer attribute; anything else under that name (an array, a string) is an error, not a
 * read past v (found by fuzzing). */
static int read_i64_attr(hid_t obj, const char *name, int64_t *v)
{
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t at = H5Aopen(obj, name, H5P_DEFAULT);
    if (at < 0) return -1;
    hid_t t = H5Aget_type(at), sp = H5Aget_space(at);
    int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Sget_simple_extent_npoints(sp) == 1;
    herr_t st = ok ? H5Aread(at, H5T_NATIVE_INT64, v) : -1;
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    H5Aclose(at);
    return st < 0 ? -1 : 0;
}

static int write_str_attr(hid_t obj, const char *name, const char *text)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(text) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = at < 0 ? -1 : H5Awrite(at, t, text);
    if (at >= 0) H5Aclose(at);
    H5Sclose(sp);
    H5Tclose(t);
    return st < 0 ? -1 : 0;
}

static const char *h5_reason(char *buf) { return ssl_h5_reason(buf, 200); }

/* Create intermediate groups for "a/b" names. */
static hid_t link_props(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    return lcpl;
}

/* How this process takes part in a file operation: alone (serial driver), or rank `rank` of `world`
 * through the MPI-IO driver. */
typedef struct io_group_s {
    int rank, world, mpi;
    MPI_Comm comm;
} io_group;

static io_group group_of(struct ssl_comm *c)
{
    io_group g = {0, 1, 0, MPI_COMM_NULL};
    if (c && ssl_comm_mpi_handle(c, &g.comm) == 0) {
        g.mpi = 1;
        g.rank = c->rank;
        g.world = c->world;
    }
    return g;
}

static hid_t file_access(const io_group *g)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* the 1.10 format checksums the superblock, every object header and the chunk index, so a
     * flipped byte in metadata is detected as the Fletcher-32 filter detects one in data (h5py
     * with HDF5 >= 1.10 reads it) */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    if (g->mpi) {
        H5Pset_fapl_mpio(fapl, g->comm, MPI_INFO_NULL);
        H5Pset_all_coll_metadata_ops(fapl, 1);
        H5Pset_coll_metadata_write(fapl, 1);
    }
    return fapl;
}

/* Collective transfer (a no-op property without MPI). */
static hid_t transfer(const io_group *g)
{
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (g->mpi) H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    return dxpl;
}

/* A one-dimensional dataset of `total` elements of ftype, this rank writing [lo, hi) from data
 * (collectively: filtered datasets take only collective writes in parallel HDF5). chunk > 0: stored
 * in chunks of that many elements, each with a Fletcher-32 checksum that every reader (sslrun,
 * h5py, h5dump) verifies. */
static int write_1d(hid_t file, const io_group *g, const char *name, hid_t ftype, hid_t mtype, hsize_t total,
                    hsize_t lo, hsize_t hi, hsize_t chunk, const void *data)
{
    hsize_t dims[1] = {total}, cnt[1] = {hi - lo}, start[1] = {lo}, ch[1] = {chunk};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t lcpl = link_props();
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER); /* every byte is written: no fill pass first */
    if (chunk > 0) {
        H5Pset_chunk(dcpl, 1, ch);
        H5Pset_fletcher32(dcpl);
    }
    hid_t ds = H5Dcreate2(file, name, ftype, sp, lcpl, dcpl, H5P_DEFAULT);
    hid_t mem = H5Screate_simple(1, cnt[0] ? cnt : dims, NULL);
    if (cnt[0]) {
        H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, cnt, NULL);
    } else {
        H5Sselect_none(sp);
        H5Sselect_none(mem);
    }
    hid_t dxpl = transfer(g);
    /* an empty array (a ViT's BN buffers) is the dataset alone: a collective MPI-IO write of nothing
     * fails, and every rank skips it alike (total is the same on all) */
    herr_t st = ds < 0 ? -1 : total == 0 ? 0 : H5Dwrite(ds, mtype, mem, sp, dxpl, data);
    H5Pclose(dxpl);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(mem);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(sp);
    return st < 0 ? -1 : 0;
}

/* A text as a one-element fixed-length string dataset in one checksummed chunk
 * (h5py: f["config"][0].decode()), written by rank 0. */
static int write_string(hid_t file, const io_group *g, const char *name, const char *text)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(text) + 1);
    int rc = write_1d(file, g, name, t, t, 1, 0, g->rank ? 0 : 1, 1, text);
    H5Tclose(t);
    return rc;
}

/* This rank's part of an array in the file: [lo, hi) of `total` elements, and where it starts in
 * a->data (elements). Replicated arrays are split into W contiguous slices (bandwidth scales with
 * ranks); sharded ones are each rank's own range. */
static void part(const io_group *g, const ssl_ckpt_array *a, hsize_t *total, hsize_t *lo, hsize_t *hi, size_t *src)
{
    if (a->sharded) {
        *total = a->total;
        *lo = a->offset;
        *hi = *lo + a->n;
        *src = 0;
    } else {
        *total = a->n;
        *lo = a->n * (hsize_t)g->rank / (hsize_t)g->world;
        *hi = a->n * (hsize_t)(g->rank + 1) / (hsize_t)g->world;
        *src = (size_t)*lo;
    }
}

/* Every rank writes its part of the array (possibly nothing), collectively. */
static int write_array(hid_t file, const io_group *g, const ssl_ckpt_array *a, int checksum)
{
    hsize_t total, lo, hi;
    size_t src;
    part(g, a, &total, &lo, &hi, &src);
    hsize_t chunk = total > 0 && checksum ? (total < SSL_CKPT_CHUNK ? total : SSL_CKPT_CHUNK) : 0;
    /* an empty part may come without data: no arithmetic on NULL, and HDF5 wants a buffer anyway */
    static const int64_t none = 0;
    const void *from = hi > lo ? (const char *)a->data + src * elem_size(a->dtype) : (const void *)&none;
    return write_1d(file, g, a->name, file_type(a->dtype), mem_type(a->dtype), total, lo, hi, chunk, from);
}

/* One rank's range of a sharded array, as every rank sees it after the all-gather. */
typedef struct {
    unsigned long long offset, n, total;
    int rank;
} shard_range;

static int by_offset(const void *x, const void *y)
{
    const shard_range *a = x, *b = y;
    return a->offset < b->offset ? -1 : a->offset > b->offset ? 1 : a->rank - b->rank;
}

/* Sharded arrays must tile [0, total) across ranks, or the file would hold stale or doubly written
 * elements that a re-sharding load cannot tell from real ones. Collective; every rank gathers the
 * same ranges, so all reach the same verdict without another round. 0, or -1 with a message. */
static int shards_tile(const ssl_ckpt *ck, const io_group *g, const char *path, char *err, size_t errlen)
{
    shard_range *all = malloc((size_t)g->world * sizeof *all);
    SSL_ASSERTF(all, "out of memory checking the shards of %s", path);
    int rc = 0;
    for (int i = 0; i < ck->narrays && !rc; i++) {
        const ssl_ckpt_array *a = &ck->arrays[i];
        if (!a->sharded) continue;
        unsigned long long v[3] = {a->offset, a->n, a->total};
        unsigned long long *gv = malloc((size_t)g->world * sizeof v);
        SSL_ASSERTF(gv, "out of memory checking the shards of %s", path);
        if (g->mpi) MPI_Allgather(v, 3, MPI_UNSIGNED_LONG_LONG, gv, 3, MPI_UNSIGNED_LONG_LONG, g->comm);
        else memcpy(gv, v, sizeof v);
        for (int r = 0; r < g->world; r++) all[r] = (shard_range){gv[3 * r], gv[3 * r + 1], gv[3 * r + 2], r};
        free(gv);
        for (int r = 1; r < g->world && !rc; r++)
            if (all[r].total != all[0].total) {
                snprintf(err, errlen, "%s: sharded dataset '%s': rank 0 gives a global size of %llu, rank %d %llu",
                         path, a->name, all[0].total, r, all[r].total);
                rc = -1;
            }
        qsort(all, (size_t)g->world, sizeof *all, by_offset);
        unsigned long long next = 0; /* first element not yet covered */
        for (int r = 0; r < g->world && !rc; r++) {
            if (all[r].n == 0) continue;
            if (all[r].offset < next)
                snprintf(err, errlen, "%s: sharded dataset '%s' of %llu: rank %d holds [%llu, %llu), which overlaps "
                         "another rank's range up to %llu", path, a->name, all[0].total, all[r].rank, all[r].offset,
                         all[r].offset + all[r].n, next);
            else if (all[r].offset > next)
                snprintf(err, errlen, "%s: sharded dataset '%s' of %llu: no rank holds [%llu, %llu)", path, a->name,
                         all[0].total, next, all[r].offset);
            rc = all[r].offset != next ? -1 : 0;
            next = all[r].offset + all[r].n;
        }
        if (!rc && next != all[0].total) {
            snprintf(err, errlen, "%s: sharded dataset '%s' of %llu: no rank holds [%llu, %llu)", path, a->name,
                     all[0].total, next, all[0].total);
            rc = -1;
        }
    }
    free(all);
    return rc;
}

static void ckpt_name(char *out, size_t len, const char *dir, int64_t step, const char *suffix)
{
    int n = snprintf(out, len, "%s/ckpt-%010lld.h5%s", dir, (long long)step, suffix);
    SSL_ASSERTF(n >= 0 && (size_t)n < len, "checkpoint path too long: %s...", out); /* never a cut name */
}

/* Step numbers of complete checkpoints in dir, ascending; returns count (list malloc'd). */
static int list_steps(const char *dir, int64_t **out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long s;
        char tail[8];
        if (sscanf(e->d_name, "ckpt-%lld.h%7s", &s, tail) == 2 && strcmp(tail, "5") == 0) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                *out = realloc(*out, (size_t)cap * sizeof **out);
            }
            (*out)[n++] = s;
        }
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort: a handful of files */
        for (int j = i; j > 0 && (*out)[j - 1] > (*out)[j]; j--) {
            int64_t t = (*out)[j];
            (*out)[j] = (*out)[j - 1];
            (*out)[j - 1] = t;
        }
    return n;
}

/* Remove checkpoints beyond the newest `keep` and any .tmp other than `current` (left by a crash). */
static void prune(const char *dir, int keep, int64_t current)
{
    int64_t *steps;
    int n = list_steps(dir, &steps);
    for (int i = 0; keep > 0 && i < n - keep; i++) {
        char old[1024];
        ckpt_name(old, sizeof old, dir, steps[i], "");
        unlink(old);
    }
    free(steps);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long st;
        char tail[8];
        if (sscanf(e->d_name, "ckpt-%lld.h5.%7s", &st, tail) == 2 && !strcmp(tail, "tmp") && st != current) {
            char old[1024];
            snprintf(old, sizeof old, "%s/%s", dir, e->d_name);
            unlink(old);
        }
    }
    closedir(d);
}

static void fault_point(const io_group *g)
{
    const char *k = getenv("SSL_FAULT_CKPT_KILL_RANK");
    if (k && *k && atoi(k) == g->rank) {
        fprintf(stderr, "sslrun: rank %d: SSL_FAULT_CKPT_KILL_RANK: killing this rank mid-checkpoint\n", g->rank);
        fflush(stderr);
        raise(SIGKILL);
    }
}

/* Agree on success across ranks: a failure on any rank fails the save on all of them. */
static int all_ok(const io_group *g, int ok)
{
    if (g->mpi) MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, g->comm);
    return ok;
}

/* After a failed save: HDF5 does not pass on the write's errno, so when the file system has less room
 * than the checkpoint takes, say so (the usual cause). */
static void space_note(const ssl_ckpt *ck, const char *dir, char *err, size_t errlen)
{
    struct statvfs fs;
    if (statvfs(dir, &fs) != 0) return;
    double need = 0, avail = (double)fs.f_bavail * (double)fs.f_frsize;
    for (int i = 0; i < ck->narrays; i++)
        need += (double)(ck->arrays[i].sharded ? ck->arrays[i].total : ck->arrays[i].n) *
                (ck->arrays[i].dtype == SSL_CKPT_F32 ? 4 : 8);
    size_t len = strlen(err);
    if (avail < need && len < errlen)
        snprintf(err + len, errlen - len, " (no space left: %s has %.1f MB free, the checkpoint needs %.1f MB)", dir,
                 avail / 1e6, need / 1e6);
}

static int save_unlocked(const ssl_ckpt *ck, const char *dir, int keep, char *err, size_t errlen)
{
    char tmp[1024], final[1024];
    ckpt_name(tmp, sizeof tmp, dir, ck->step, ".tmp");
    ckpt_name(final, sizeof final, dir, ck->step, "");
    io_group g = group_of(ck->comm);
    /* before the file exists: a refused save leaves nothing behind */
    if (shards_tile(ck, &g, final, err, errlen)) return -1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = file_access(&g);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) FAIL("%s: cannot create checkpoint (%s)", tmp, strerror(errno));
    if (write_i64_attr(f, "version", SSL_CKPT_VERSION) || write_i64_attr(f, "step", ck->step) ||
        write_i64_attr(f, "epoch", ck->epoch) || write_i64_attr(f, "epoch_step", ck->epoch_step) ||
        write_i64_attr(f, "world_size", ck->world_size) || write_i64_attr(f, "in_chans", ck->in_chans) ||
        write_i64_attr(f, "seed", (int64_t)ck->seed) || write_str_attr(f, "sslrun_version", ssl_version) ||
        write_str_attr(f, "git_commit", ssl_git_commit))
        FAIL("%s: cannot write attributes", tmp);
    for (int i = 0; i < ck->narrays; i++)
        if (write_array(f, &g, &ck->arrays[i], !ck->no_checksum)) FAIL("%s: cannot write dataset '%s'", tmp, ck->arrays[i].name);
    fault_point(&g);
    if (ck->config_yaml && write_string(f, &g, "config", ck->config_yaml))
        FAIL("%s: cannot write dataset 'config'", tmp);
    if (ck->segments && write_string(f, &g, "segments", ck->segments))
        FAIL("%s: cannot write dataset 'segments'", tmp);
    if (ck->buffer_segments && write_string(f, &g, "buffer_segments", ck->buffer_segments))
        FAIL("%s: cannot write dataset 'buffer_segments'", tmp);
    herr_t fl = H5Fflush(f, H5F_SCOPE_GLOBAL), cl = H5Fclose(f);
    f = -1;
    if (!all_ok(&g, fl >= 0 && cl >= 0)) FAIL("%s: flush/close failed (disk full?)", tmp);
    int ok = 1;
    if (g.rank == 0) {
        /* data on disk before the name appears: a power loss cannot expose a partial file */
        int fd = open(tmp, O_RDONLY);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
        ok = rename(tmp, final) == 0;
        if (!ok) snprintf(err, errlen, "%s: rename to %s failed: %s", tmp, final, strerror(errno));
        else prune(dir, keep, ck->step);
    }
    /* nobody continues (or resumes) before the final name exists */
    if (!all_ok(&g, ok)) {
        if (g.rank) snprintf(err, errlen, "%s: rank 0 could not rename the checkpoint", tmp);
        return -1;
    }
    return 0;
fail:
    if (f >= 0) H5Fclose(f);
    if (g.rank == 0) unlink(tmp);
    space_note(ck, dir, err, errlen);
    return -1;
}

int ssl_ckpt_list(const char *dir, int64_t **steps) { return list_steps(dir, steps); }

void ssl_ckpt_path(char *out, size_t len, const char *dir, int64_t step) { ckpt_name(out, len, dir, step, ""); }

int ssl_ckpt_find_latest(const char *dir, char *out, size_t outlen)
{
    int64_t *steps;
    int n = list_steps(dir, &steps);
    if (n > 0) ckpt_name(out, outlen, dir, steps[n - 1], "");
    free(steps);
    return n > 0 ? 0 : 1;
}

/* The storage of a dataset as sslrun writes it, checked before HDF5 reads it: n elements of
 * elem_bytes in one dimension, chunked, every chunk stored whole with its 4-byte Fletcher-32
 * checksum and inside the file. HDF5 trusts a damaged chunk index's sizes (it allocates a claimed
 * 4 GiB chunk, checksums a 2-byte one past its end: found by fuzzing). 0, or -1 with why (200). */
static int chunks_ok(hid_t f, hid_t ds, size_t elem_bytes, hsize_t n, char *why)
{
    hid_t sp = H5Dget_space(ds), dcpl = H5Dget_create_plist(ds);
    hsize_t chunk[1] = {0}, nchunks = 0, fsize = 0;
    H5D_chunk_index_t idx = H5D_CHUNK_IDX_BTREE;
    int rc = -1;
    if (sp < 0 || dcpl < 0 || H5Sget_simple_extent_ndims(sp) != 1) {
        snprintf(why, 200, "not a one-dimensional array");
    } else if (H5Pget_layout(dcpl) != H5D_CHUNKED || H5Pget_chunk(dcpl, 1, chunk) != 1 || chunk[0] == 0 ||
               chunk[0] > n) {
        snprintf(why, 200, "not stored in checksummed chunks");
    } else if (H5Dget_chunk_index_type(ds, &idx) < 0 || (idx != H5D_CHUNK_IDX_FARRAY && idx != H5D_CHUNK_IDX_SINGLE)) {
        /* a v1 B-tree index has no checksums, and HDF5 walks a damaged one out of bounds (found by
         * fuzzing); the 1.10 format sslrun writes uses the checksummed fixed array (or one chunk) */
        snprintf(why, 200, "chunk index type %d has no checksums (not written by this sslrun)", (int)idx);
    } else if (H5Dget_num_chunks(ds, sp, &nchunks) < 0 || nchunks != (n + chunk[0] - 1) / chunk[0] ||
               H5Fget_filesize(f, &fsize) < 0) {
        snprintf(why, 200, "%llu of its %llu chunks are stored (truncated?)", (unsigned long long)nchunks,
                 (unsigned long long)((n + chunk[0] - 1) / chunk[0]));
    } else {
        rc = 0;
        for (hsize_t i = 0; i < nchunks && !rc; i++) {
            hsize_t off[1], size = 0;
            haddr_t addr = HADDR_UNDEF;
            unsigned mask = 0;
            if (H5Dget_chunk_info(ds, sp, i, off, &mask, &addr, &size) < 0 || mask != 0 ||
                size != chunk[0] * elem_bytes + 4 || addr == HADDR_UNDEF || addr > fsize || size > fsize - addr) {
                snprintf(why, 200, "chunk %llu is stored as %llu bytes at %llu, expected %llu bytes within the "
                         "file's %llu", (unsigned long long)i, (unsigned long long)size, (unsigned long long)addr,
                         (unsigned long long)(chunk[0] * elem_bytes + 4), (unsigned long long)fsize);
                rc = -1;
            }
        }
    }
    if (sp >= 0) H5Sclose(sp);
    if (dcpl >= 0) H5Pclose(dcpl);
    return rc;
}

/* Whether dataset ds stores the registered element type: 32-bit floats (any byte order) for F32,
 * signed 64-bit integers for I64. HDF5 would convert silently (int64 -> float loses the low bits of
 * a large count); metadata is checksummed, so a mismatch is another writer, not damage. Describes
 * the stored type in stored (64). */
static int type_fits(hid_t ds, ssl_ckpt_dtype want, char *stored)
{
    hid_t t = H5Dget_type(ds);
    H5T_class_t cls = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
    size_t bits = t < 0 ? 0 : 8 * H5Tget_size(t);
    int sign = cls == H5T_INTEGER ? H5Tget_sign(t) == H5T_SGN_2 : 0;
    if (t >= 0) H5Tclose(t);
    if (cls == H5T_FLOAT) snprintf(stored, 64, "%zu-bit floats", bits);
    else if (cls == H5T_INTEGER) snprintf(stored, 64, "%zu-bit %s integers", bits, sign ? "signed" : "unsigned");
    else snprintf(stored, 64, "values of HDF5 type class %d", (int)cls);
    return want == SSL_CKPT_I64 ? cls == H5T_INTEGER && bits == 64 && sign : cls == H5T_FLOAT && bits == 32;
}

/* The load's outcome for one array across ranks (collective): the worst verdict of any rank
 * (INCOMPATIBLE < DAMAGED < 0), so all ranks stop at the same array and give the same class. Every
 * rank then reports the message of the lowest failing rank, which may be the only one that saw the
 * reason (its own range, its own registration). */
static int agree(const io_group *g, int mine, char *err, size_t errlen)
{
    if (!g->mpi) return mine;
    int worst = mine;
    MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MIN, g->comm);
    if (worst == 0) return 0;
    int first = mine ? g->rank : g->world;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, g->comm);
    char msg[512]; /* a fixed size: callers' errlen may differ between ranks */
    snprintf(msg, sizeof msg, "%s", g->rank == first ? err : "");
    MPI_Bcast(msg, sizeof msg, MPI_CHAR, first, g->comm);
    if (g->rank == first) return worst;
    snprintf(err, errlen, "rank %d: %s", first, msg);
    return worst;
}

/* Damage (the file cannot be trusted: fall back to an older one) vs incompatibility (the file is
 * sound but was written for another model, config or format: a user error, no fallback). */
#define DAMAGED(...)                                                                           \
    do {                                                                                       \
        rc = SSL_CKPT_DAMAGED;                                                                 \
        FAIL(__VA_ARGS__);                                                                     \
    } while (0)
#define INCOMPATIBLE(...)                                                                      \
    do {                                                                                       \
        rc = SSL_CKPT_INCOMPATIBLE;                                                            \
        FAIL(__VA_ARGS__);                                                                     \
    } while (0)

static int load_unlocked(ssl_ckpt *ck, const char *path, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    io_group g = group_of(ck->comm);
    int rc = SSL_CKPT_DAMAGED;
    char why[200];
    hid_t f = -1;
    if (ssl_h5_superblock_ok(path, why, sizeof why)) DAMAGED("%s: cannot open checkpoint: %s", path, why);
    hid_t fapl = file_access(&g);
    f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) DAMAGED("%s: cannot open checkpoint: %s (missing, truncated, corrupt or not HDF5)", path, h5_reason(why));
    int64_t version = 0, seed = 0;
    if (read_i64_attr(f, "version", &version)) DAMAGED("%s: no 'version' attribute", path);
    if (version != SSL_CKPT_VERSION)
        INCOMPATIBLE("%s: checkpoint format version %lld, this sslrun reads %d", path, (long long)version,
                     SSL_CKPT_VERSION);
    if (read_i64_attr(f, "step", &ck->step) || read_i64_attr(f, "epoch", &ck->epoch) ||
        read_i64_attr(f, "epoch_step", &ck->epoch_step) ||
        read_i64_attr(f, "world_size", &ck->world_size) || read_i64_attr(f, "seed", &seed))
        DAMAGED("%s: missing training-position attributes", path);
    ck->seed = (uint64_t)seed;
    if (read_i64_attr(f, "in_chans", &ck->in_chans)) ck->in_chans = 0; /* optional: export needs it */
    for (int i = 0; i < ck->narrays; i++) {
        ssl_ckpt_array *a = &ck->arrays[i];
        if (H5Lexists(f, a->name, H5P_DEFAULT) <= 0) DAMAGED("%s: missing dataset '%s'", path, a->name);
        hid_t ds = H5Dopen2(f, a->name, H5P_DEFAULT);
        if (ds < 0) DAMAGED("%s: cannot open dataset '%s': %s", path, a->name, h5_reason(why));
        hid_t sp = H5Dget_space(ds);
        hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
        char stored[64];
        int mine = 0; /* this rank's verdict on the array, agreed on before the collective read */
        /* the type first: a float where int64 is registered is another layout, not damage */
        if (n < 0) {
            mine = SSL_CKPT_DAMAGED;
            snprintf(err, errlen, "%s: dataset '%s': cannot read its size: %s", path, a->name, h5_reason(why));
        } else if (!type_fits(ds, a->dtype, stored)) {
            mine = SSL_CKPT_INCOMPATIBLE;
            snprintf(err, errlen, "%s: dataset '%s' holds %s, registered as %s (different sslrun or method?)", path,
                     a->name, stored, a->dtype == SSL_CKPT_I64 ? "64-bit integers" : "32-bit floats");
        } else if (n != (hssize_t)a->total) {
            mine = SSL_CKPT_INCOMPATIBLE;
            snprintf(err, errlen, "%s: dataset '%s' has %lld values, %s %llu (different model or config?)", path,
                     a->name, (long long)n, a->sharded ? "the registered global array has" : "the model needs",
                     (unsigned long long)a->total);
        } else if (n > 0 && chunks_ok(f, ds, elem_size(a->dtype), (hsize_t)n, why)) {
            mine = SSL_CKPT_DAMAGED;
            snprintf(err, errlen, "%s: dataset '%s': %s", path, a->name, why);
        }
        /* ranks may register an array differently (another global size): one refusing it must not
         * leave the others waiting in the read */
        if ((rc = agree(&g, mine, err, errlen)) != 0) {
            if (sp >= 0) H5Sclose(sp);
            H5Dclose(ds);
            goto fail;
        }
        /* replicated: every rank reads all of it (offset 0, n = total); sharded: its own range */
        hsize_t start[1] = {a->offset}, cnt[1] = {a->n}, one[1] = {1};
        hid_t mem = H5Screate_simple(1, a->n ? cnt : one, NULL);
        herr_t st = a->n ? H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, cnt, NULL) : H5Sselect_none(sp);
        if (st >= 0 && !a->n) st = H5Sselect_none(mem);
        hid_t dxpl = transfer(&g);
        /* every rank joins the collective read, one holding no elements of a sharded array too */
        int64_t none;
        /* an empty array has no storage to read (write_1d writes none); all ranks agreed on n above */
        if (st >= 0 && n > 0) st = H5Dread(ds, mem_type(a->dtype), mem, sp, dxpl, a->n ? a->data : &none);
        if (st < 0)
            snprintf(err, errlen, "%s: cannot read dataset '%s': %s", path, a->name, h5_reason(why));
        H5Pclose(dxpl);
        H5Sclose(mem);
        H5Sclose(sp);
        H5Dclose(ds);
        /* a damaged chunk fails only the ranks whose range lies in it: all stop at this array */
        if ((rc = agree(&g, st < 0 ? SSL_CKPT_DAMAGED : 0, err, errlen)) != 0) goto fail;
    }
    H5Fclose(f);
    return 0;
fail:
    if (f >= 0) H5Fclose(f);
    return rc;
}

static int read_config_unlocked(const char *path, char **yaml, char *err, size_t errlen)
{
    *yaml = NULL;
    hid_t ds = -1, t = -1, f = -1;
    char why[200];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (ssl_h5_superblock_ok(path, why, sizeof why)) FAIL("%s: cannot open checkpoint: %s", path, why);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) FAIL("%s: cannot open checkpoint (missing, truncated or not HDF5)", path);
    if (H5Lexists(f, "config", H5P_DEFAULT) <= 0) FAIL("%s: missing dataset 'config'", path);
    ds = H5Dopen2(f, "config", H5P_DEFAULT);
    t = ds < 0 ? -1 : H5Dget_type(ds);
    size_t n = t < 0 ? 0 : H5Tget_size(t);
    hid_t sp = ds < 0 ? -1 : H5Dget_space(ds);
    hssize_t count = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp); /* 1: scalar (v1) or (1,) (v2) */
    if (sp >= 0) H5Sclose(sp);
    if (n == 0 || n > (64u << 20) || count != 1 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) != 0)
        FAIL("%s: dataset 'config' is not one fixed-length string", path);
    if (chunks_ok(f, ds, n, 1, why)) FAIL("%s: dataset 'config': %s", path, why);
    *yaml = calloc(n + 1, 1);
    if (!*yaml || H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, *yaml) < 0) {
        free(*yaml);
        *yaml = NULL;
        FAIL("%s: cannot read dataset 'config': %s", path, h5_reason(why));
    }
    H5Tclose(t);
    H5Dclose(ds);
    H5Fclose(f);
    return 0;
fail:
    if (t >= 0) H5Tclose(t);
    if (ds >= 0) H5Dclose(ds);
    if (f >= 0) H5Fclose(f);
    return -1;
}

/* Debian's HDF5 is not thread-safe and the data loader's threads read shards concurrently:
 * every checkpoint operation holds the process-wide HDF5 lock. */
int ssl_ckpt_save(const ssl_ckpt *ck, const char *dir, int keep, char *err, size_t errlen)
{
    ssl_h5_lock();
    int rc = save_unlocked(ck, dir, keep, err, errlen);
    ssl_h5_unlock();
    return rc;
}

int ssl_ckpt_load(ssl_ckpt *ck, const char *path, char *err, size_t errlen)
{
    ssl_h5_lock();
    int rc = load_unlocked(ck, path, err, errlen);
    ssl_h5_unlock();
    return rc;
}

int ssl_ckpt_read_config(const char *path, char **yaml, char *err, size_t errlen)
{
    ssl_h5_lock();
    int rc = read_config_unlocked(path, yaml, err, errlen);
    ssl_h5_unlock();
    return rc;
}

int ssl_ckpt_config(const char *path, ssl_config *c, char *err, size_t errlen)
{
    char *yaml = NULL;
    ssl_config_defaults(c);
    int bad = ssl_ckpt_read_config(path, &yaml, err, errlen) || ssl_config_parse(c, yaml, strlen(yaml), path, err, errlen);
    free(yaml);
    return bad ? -1 : 0;
}
