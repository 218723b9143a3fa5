/* Shard file mechanics shared by both shard writers (see shard_file.h). */
#include "io/shard_file.h"

#include "framework/core/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* <dir>/<prefix>-NNNNN.h5; -1 if it does not fit. */
static int shard_path(char *out, size_t len, const char *dir, const char *prefix, int shard)
{
    return snprintf(out, len, "%s/%s-%05d.h5", dir, prefix, shard) >= (int)len ? -1 : 0;
}

int ssl_shard_file_check_name(const char *dir, const char *prefix, char *err, size_t errlen)
{
    /* 16: "/", "-NNNNN.h5", ".tmp" and the terminator, with room to spare */
    if (strlen(dir) + strlen(prefix) + 16 >= SSL_SHARD_PATH_LEN ||
        strlen(prefix) >= SSL_SHARD_PREFIX_LEN) {
        ssl_seterr(err, errlen, "%s/%s: path too long", dir, prefix);
        return -1;
    }
    return 0;
}

void ssl_shard_file_init(ssl_shard_file *f, const char *dir, const char *prefix)
{
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    snprintf(f->prefix, sizeof f->prefix, "%s", prefix);
    f->shard = 0;
    f->file = H5I_INVALID_HID;
    f->tmp_path[0] = f->final_path[0] = '\0';
}

int ssl_shard_file_create(ssl_shard_file *f, char *err, size_t errlen)
{
    if (f->shard >= SSL_SHARD_MAX) {
        ssl_seterr(err, errlen, "%s/%s: more than %d shards; raise shard_size", f->dir, f->prefix,
                   SSL_SHARD_MAX);
        return -1;
    }
    if (shard_path(f->final_path, sizeof f->final_path, f->dir, f->prefix, f->shard) < 0 ||
        snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp", f->final_path) >=
            (int)sizeof f->tmp_path) {
        ssl_seterr(err, errlen, "%s/%s: path too long", f->dir, f->prefix);
        return -1;
    }
    /* the 1.10 format checksums the superblock, every object header and the chunk index: a damaged
     * shard is refused by HDF5's own checks before it decodes anything (io/h5check.h); h5py >= 2.10
     * reads it */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    f->file = H5Fcreate(f->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f->file < 0) {
        ssl_seterr(err, errlen, "%s: cannot create file", f->tmp_path);
        return -1;
    }
    return 0;
}

int ssl_shard_attr_int(hid_t file, const char *name, int v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    if (sp < 0) return -1;
    hid_t at = H5Acreate2(file, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = at >= 0 && H5Awrite(at, H5T_NATIVE_INT, &v) >= 0;
    if (at >= 0 && H5Aclose(at) < 0) ok = 0;
    if (H5Sclose(sp) < 0) ok = 0;
    return ok ? 0 : -1;
}

/* Fixed-length, NUL-terminated: the form h5py and our reader both take (io/dataset.c). */
int ssl_shard_attr_str(hid_t file, const char *name, const char *text)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    int ok = H5Tset_size(t, strlen(text) + 1) >= 0 && H5Tset_strpad(t, H5T_STR_NULLTERM) >= 0;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t at = ok && sp >= 0 ? H5Acreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    ok = ok && at >= 0 && H5Awrite(at, t, text) >= 0;
    if (at >= 0 && H5Aclose(at) < 0) ok = 0;
    if (sp >= 0 && H5Sclose(sp) < 0) ok = 0;
    if (H5Tclose(t) < 0) ok = 0;
    return ok ? 0 : -1;
}

int ssl_shard_file_commit(ssl_shard_file *f, int closed_ok, char *err, size_t errlen)
{
    if (f->file >= 0 && H5Fclose(f->file) < 0) closed_ok = 0;
    f->file = H5I_INVALID_HID;
    if (!closed_ok) {
        ssl_seterr(err, errlen, "%s: closing the file failed (disk full?)", f->tmp_path);
        return -1;
    }
    /* durable before it gets the final name: a crash never leaves a valid-looking partial shard */
    int fd = open(f->tmp_path, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        ssl_seterr(err, errlen, "%s: fsync: %s", f->tmp_path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    if (rename(f->tmp_path, f->final_path) != 0) {
        ssl_seterr(err, errlen, "%s: rename to %s: %s", f->tmp_path, f->final_path,
                   strerror(errno));
        return -1;
    }
    f->shard++;
    return 0;
}

void ssl_shard_file_discard(ssl_shard_file *f)
{
    if (f->file < 0) return;
    H5Fclose(f->file); /* discarding anyway: a failed close changes nothing */
    f->file = H5I_INVALID_HID;
    unlink(f->tmp_path);
}

void ssl_shard_remove_stale(const char *dir, const char *prefix, int from)
{
    /* An earlier prep with a smaller shard_size may have left more shards under this prefix; the
     * dataset glob would silently pick them up (callers run this only once their prep succeeded). */
    for (int i = from; i < SSL_SHARD_MAX; i++) {
        char stale[SSL_SHARD_PATH_LEN];
        if (shard_path(stale, sizeof stale, dir, prefix, i) < 0 || unlink(stale) != 0) break;
    }
}

void ssl_shard_file_remove_stale(const ssl_shard_file *f) { ssl_shard_remove_stale(f->dir, f->prefix, f->shard); }

int ssl_shard_file_start(ssl_shard_file *f, int shard, int failed, int pending, char *err,
                         size_t errlen)
{
    int in_range = shard >= 0 && shard < SSL_SHARD_MAX;
    if (failed || f->file >= 0 || pending || !in_range) {
        ssl_seterr(err, errlen, "%s/%s: cannot start shard %d (%s)", f->dir, f->prefix, shard,
                   failed ? "writer failed" : !in_range ? "out of range" : "one is in progress");
        return -1;
    }
    f->shard = shard;
    return 0;
}
