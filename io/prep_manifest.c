/* Resuming `prep images` (prep_internal.h): DIR/<prefix>.manifest records what the shards are made
 * of (options, file count, a hash of the sorted file list with labels, shard count). A rerun that
 * matches keeps every shard that opens as a complete one; a rerun that does not would mix two
 * preps in one dataset, so it is refused. */
#include "framework/core/check.h"
#include "io/h5lock.h"
#include "io/prep_internal.h"
#include "io/shard_writer.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MAGIC "sslrun prep manifest 1"

static int format_manifest(const ssl_prep_manifest *m, char *out, size_t len)
{
    return snprintf(out, len,
                    MAGIC "\nformat %s\nsize %d\nquality %d\nshard_size %d\nfiles %" PRId64
                          "\nlist_hash %016" PRIx64 "\nshards %" PRId64 "\n",
                    m->format, m->size, m->quality, m->shard_size, m->files, m->hash, m->shards);
}

static int parse_manifest(const char *text, ssl_prep_manifest *m)
{
    memset(m, 0, sizeof *m);
    return sscanf(text,
                  MAGIC " format %7s size %d quality %d shard_size %d files %" SCNd64
                        " list_hash %" SCNx64 " shards %" SCNd64,
                  m->format, &m->size, &m->quality, &m->shard_size, &m->files, &m->hash,
                  &m->shards) == 7
               ? 0
               : -1;
}

int ssl_prep_manifest_begin(const char *path, const ssl_prep_manifest *want, int force, int *resume,
                            char *err, size_t errlen)
{
    char text[1024], old[1024];
    format_manifest(want, text, sizeof text);
    *resume = 0;
    FILE *f = force ? NULL : fopen(path, "rb");
    if (!f && !force && errno != ENOENT) {
        ssl_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (f) {
        size_t n = fread(old, 1, sizeof old - 1, f);
        fclose(f);
        old[n] = '\0';
        ssl_prep_manifest m;
        char what[256] = "";
        if (parse_manifest(old, &m) < 0) snprintf(what, sizeof what, "is not a manifest this sslrun reads");
        else if (strcmp(m.format, want->format))
            snprintf(what, sizeof what, "says --format %s (now %s)", m.format, want->format);
        else if (m.size != want->size) snprintf(what, sizeof what, "says --size %d (now %d)", m.size, want->size);
        else if (m.quality != want->quality)
            snprintf(what, sizeof what, "says --quality %d (now %d)", m.quality, want->quality);
        else if (m.shard_size != want->shard_size)
            snprintf(what, sizeof what, "says --shard-size %d (now %d)", m.shard_size, want->shard_size);
        else if (m.files != want->files || m.hash != want->hash || m.shards != want->shards)
            snprintf(what, sizeof what, "lists another set of images (%" PRId64 " then, %" PRId64
                     " now, or other names or labels)", m.files, want->files);
        if (what[0]) {
            ssl_seterr(err, errlen, "%s %s: its shards come from another prep. Use a new --out, or "
                   "--force to start over", path, what);
            return -1;
        }
        *resume = 1;
        return 0;
    }
    return ssl_prep_write_text_file(path, text, strlen(text), err, errlen);
}

/* A fixed-length string attribute equal to want. */
static int str_attr_is(hid_t file, const char *name, const char *want)
{
    char buf[64] = "";
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    int ok = t >= 0 && H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) && H5Tget_size(t) < sizeof buf &&
             H5Aread(a, t, buf) >= 0 && !strcmp(buf, want);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return ok;
}

static int int_attr_is(hid_t file, const char *name, int want)
{
    int v = want + 1;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    int ok = a >= 0 && H5Aread(a, H5T_NATIVE_INT, &v) >= 0 && v == want;
    if (a >= 0) H5Aclose(a);
    return ok;
}

static int rows_are(hid_t file, const char *name, int64_t want)
{
    hsize_t dims[4] = {0};
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t s = d >= 0 ? H5Dget_space(d) : -1;
    int r = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    int ok = r >= 1 && r <= 4 && H5Sget_simple_extent_dims(s, dims, NULL) >= 0 && dims[0] == (hsize_t)want;
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return ok;
}

int ssl_prep_shard_usable(const char *path, int jpeg, int num_classes, int64_t n)
{
    ssl_h5_lock();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* a damaged shard is rewritten, not reported */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int ok = f >= 0 && str_attr_is(f, "format", SSL_SHARD_FORMAT) &&
             int_attr_is(f, "num_classes", num_classes) && rows_are(f, "labels", n) &&
             (jpeg ? int_attr_is(f, "version", SSL_SHARD_VERSION_JPEG) &&
                         str_attr_is(f, "encoding", SSL_SHARD_ENCODING_JPEG) &&
                         rows_are(f, "offsets", n + 1) && rows_are(f, "sizes", n)
                   : int_attr_is(f, "version", SSL_SHARD_VERSION) && rows_are(f, "images", n));
    if (f >= 0) H5Fclose(f);
    ssl_h5_unlock();
    return ok;
}
