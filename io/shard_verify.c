/* Shard verification (see shard_verify.h). Opens the files with its own HDF5 code rather than the
 * dataset reader, which stops at the first bad shard and reads only what training asks for. The
 * layout checks before reading (checksummed chunk index, sane chunk and storage sizes) keep a
 * damaged file from crashing HDF5 1.10, as the reader's do (io/h5check.h). */
#include "io/shard_verify.h"

#include "framework/core/check.h"
#include "io/h5check.h"
#include "io/h5lock.h"
#include "io/shard_writer.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#define MSG_LEN 1024
#define MAX_ROWS ((hsize_t)1 << 31)         /* per-sample arrays are read whole */
#define MAX_BYTES ((hsize_t)1 << 40)
#define MAX_CHUNK_BYTES ((double)(64 << 20)) /* as io/dataset.c: HDF5 allocates a chunk per read */
#define READ_BYTES ((size_t)16 << 20)       /* read in slabs of about this much */
#define MAX_PIXELS ((int64_t)1 << 27)       /* as prep images */

static void say(char *msg, const char *fmt, ...) SSL_PRINTF(2, 3);
static void say(char *msg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, MSG_LEN, fmt, ap);
    va_end(ap);
}

/* ---- listing (the rules of io/dataset.c, which keeps its own copy private) ------------------ */

typedef struct {
    char **v;
    size_t n;
} strlist;

static void push(strlist *l, const char *s)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    SSL_ASSERTF(v != NULL, "out of memory listing shards");
    l->v = v;
    l->v[l->n] = strdup(s);
    SSL_ASSERTF(l->v[l->n] != NULL, "out of memory listing shards");
    l->n++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

static int list_shards(const char *spec, strlist *out, char *msg)
{
    struct stat st;
    if (strpbrk(spec, "*?[")) {
        glob_t g;
        int rc = glob(spec, 0, NULL, &g);
        if (rc != 0) {
            say(msg, "%s: %s", spec, rc == GLOB_NOMATCH ? "no shards match this pattern" : "cannot expand pattern");
            return -1;
        }
        for (size_t i = 0; i < g.gl_pathc; i++)
            if (!ends_with(g.gl_pathv[i], ".tmp")) push(out, g.gl_pathv[i]); /* unfinished shards */
        globfree(&g);
    } else if (stat(spec, &st) != 0) {
        say(msg, "%s: %s", spec, strerror(errno));
        return -1;
    } else if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(spec);
        if (!dir) {
            say(msg, "%s: %s", spec, strerror(errno));
            return -1;
        }
        char path[4096];
        for (struct dirent *e; (e = readdir(dir));)
            if (e->d_name[0] != '.' && strlen(e->d_name) > 3 && ends_with(e->d_name, ".h5") &&
                snprintf(path, sizeof path, "%s/%s", spec, e->d_name) < (int)sizeof path)
                push(out, path);
        closedir(dir);
    } else {
        push(out, spec);
    }
    if (out->n == 0) {
        say(msg, "%s: no *.h5 shards here", spec);
        return -1;
    }
    qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return 0;
}

/* ---- attributes and datasets ---------------------------------------------------------------- */

/* Integer scalar attribute: 1 read, 0 absent, -1 present but not an integer scalar. */
static int int_attr(hid_t file, const char *name, long long *v)
{
    if (H5Aexists(file, name) <= 0) return 0;
    hid_t at = H5Aopen(file, name, H5P_DEFAULT);
    hid_t t = at >= 0 ? H5Aget_type(at) : -1, sp = at >= 0 ? H5Aget_space(at) : -1;
    int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_INTEGER &&
             H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(at, H5T_NATIVE_LLONG, v) >= 0;
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (at >= 0) H5Aclose(at);
    return ok ? 1 : -1;
}

/* String scalar attribute, fixed or variable length (h5py's default): 1, 0 absent, -1 otherwise. */
static int str_attr(hid_t file, const char *name, char *buf, size_t len)
{
    if (H5Aexists(file, name) <= 0) return 0;
    hid_t at = H5Aopen(file, name, H5P_DEFAULT);
    hid_t t = at >= 0 ? H5Aget_type(at) : -1, sp = at >= 0 ? H5Aget_space(at) : -1;
    hid_t mt = H5Tcopy(H5T_C_S1);
    int ok = t >= 0 && sp >= 0 && mt >= 0 && H5Tget_class(t) == H5T_STRING &&
             H5Sget_simple_extent_npoints(sp) == 1 &&
             H5Tset_cset(mt, H5Tget_cset(t)) >= 0; /* HDF5 converts no ASCII <-> UTF-8 (h5py) */
    const htri_t var = ok ? H5Tis_variable_str(t) : -1;
    const size_t sz = t >= 0 ? H5Tget_size(t) : 0;
    if (var > 0) {
        char *p = NULL;
        ok = H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(at, mt, &p) >= 0 && p;
        if (ok) snprintf(buf, len, "%s", p);
        if (p) H5free_memory(p);
    } else {
        ok = var == 0 && sz > 0 && sz < len && H5Tset_size(mt, sz) >= 0 && H5Aread(at, mt, buf) >= 0;
        if (ok) buf[sz] = '\0';
    }
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (at >= 0) H5Aclose(at);
    return ok ? 1 : -1;
}

/* Opens dataset `name` and checks type, rank, the checksummed chunk index and sizes a damaged file
 * could fake. dims gets the shape; *unsummed is set when its chunks carry no Fletcher-32.
 * Returns the id, or -1 with msg naming the dataset. */
static hid_t open_ds(hid_t file, const char *path, const char *name, hid_t native, int rank,
                     hsize_t *dims, int *unsummed, char *msg)
{
    char why[256];
    htri_t ex = H5Lexists(file, name, H5P_DEFAULT);
    hid_t ds = ex > 0 ? H5Dopen2(file, name, H5P_DEFAULT) : -1;
    if (ds < 0) {
        say(msg, "%s: dataset '%s' is %s", path, name, ex > 0 ? "unreadable" : "missing");
        return -1;
    }
    hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds), dcpl = H5Dget_create_plist(ds);
    const htri_t same = t >= 0 ? H5Tequal(t, native) : -1;
    const int r = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    int ok = same > 0 && r == rank && H5Sget_simple_extent_dims(sp, dims, NULL) == rank;
    if (!ok) {
        say(msg, "%s: dataset '%s': %s (expected %d-D of %zu-byte integers)", path, name,
            same < 0 || r < 0 ? "cannot read its type or shape" : "wrong type or rank", rank,
            H5Tget_size(native));
    } else if (ssl_h5_chunk_index_ok(ds, why, sizeof why) != 0) {
        say(msg, "%s: dataset '%s': %s", path, name, why);
        ok = 0;
    } else if (dcpl < 0) {
        say(msg, "%s: dataset '%s': cannot read its layout", path, name);
        ok = 0;
    } else {
        /* H5Pget_chunk writes up to `rank` dims (4 for 'images'): c[2] was overrun on the stack */
        hsize_t c[H5S_MAX_RANK] = {0}, fsize = 0;
        double cbytes = (double)H5Tget_size(native), rows = 1;
        const int chunked = H5Pget_layout(dcpl) == H5D_CHUNKED;
        if (chunked && H5Pget_chunk(dcpl, rank, c) == rank)
            for (int k = 0; k < rank; k++) cbytes *= (double)c[k];
        for (int k = 1; k < rank; k++) rows *= (double)dims[k];
        unsigned flags = 0, conf = 0;
        size_t nel = 0;
        *unsummed = !chunked || H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nel,
                                                     NULL, 0, NULL, &conf) < 0;
        H5Eclear2(H5E_DEFAULT); /* "filter not found" is an answer, not an error */
        if (dims[0] > (native == H5T_NATIVE_UINT8 && rank == 1 ? MAX_BYTES : MAX_ROWS)) {
            say(msg, "%s: dataset '%s' claims %llu rows (corrupt file?)", path, name,
                (unsigned long long)dims[0]);
            ok = 0;
        } else if (chunked && cbytes > MAX_CHUNK_BYTES && cbytes > rows * (double)H5Tget_size(native)) {
            say(msg, "%s: dataset '%s': chunks of %.0f bytes (corrupt file?)", path, name, cbytes);
            ok = 0;
        } else if (H5Fget_filesize(file, &fsize) < 0 || H5Dget_storage_size(ds) > fsize) {
            say(msg, "%s: dataset '%s' claims more storage than the file holds (truncated?)", path,
                name);
            ok = 0;
        }
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (!ok) {
        H5Dclose(ds);
        return -1;
    }
    return ds;
}

/* Reads rows [r0, r1) of a rank-1 or rank-2 dataset (row = cols elements) into buf. */
static int read_rows(hid_t ds, const char *path, const char *name, hid_t native, int rank,
                     hsize_t cols, hsize_t r0, hsize_t r1, void *buf, char *msg)
{
    hsize_t start[4] = {r0, 0, 0, 0}, count[4] = {r1 - r0, cols, 1, 1}, n = (r1 - r0) * cols;
    if (n == 0) return 0;
    hid_t fsp = H5Dget_space(ds), msp = H5Screate_simple(1, &n, NULL);
    if (rank > 2) { /* raw images: (N, H, W, C), cols = H*W*C; take the whole trailing dims */
        hsize_t dims[4];
        H5Sget_simple_extent_dims(fsp, dims, NULL);
        for (int k = 1; k < 4; k++) count[k] = dims[k];
    }
    int ok = fsp >= 0 && msp >= 0 &&
             H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
             H5Dread(ds, native, msp, fsp, H5P_DEFAULT, buf) >= 0;
    char why[256];
    if (!ok)
        say(msg, "%s: dataset '%s': reading %s [%llu, %llu) failed: %s", path, name,
            rank == 1 && native == H5T_NATIVE_UINT8 ? "bytes" : "rows", (unsigned long long)r0,
            (unsigned long long)r1, ssl_h5_reason(why, sizeof why));
    if (msp >= 0) H5Sclose(msp);
    if (fsp >= 0) H5Sclose(fsp);
    return ok ? 0 : -1;
}

static int check_labels(hid_t file, const char *path, hsize_t n, long long classes, int *unsummed,
                        char *msg)
{
    htri_t ex = H5Lexists(file, "labels", H5P_DEFAULT);
    if (ex == 0) return 0;
    hsize_t dims[1];
    hid_t ds = open_ds(file, path, "labels", H5T_NATIVE_INT32, 1, dims, unsummed, msg);
    if (ds < 0) return -1;
    int rc = 0;
    int32_t *lab = ssl_malloc((size_t)(n ? n : 1) * sizeof *lab);
    if (dims[0] != n) {
        say(msg, "%s: dataset 'labels' has %llu rows for %llu samples", path,
            (unsigned long long)dims[0], (unsigned long long)n);
        rc = -1;
    } else if (read_rows(ds, path, "labels", H5T_NATIVE_INT32, 1, 1, 0, n, lab, msg) < 0) {
        rc = -1;
    } else {
        for (hsize_t i = 0; i < n && rc == 0; i++)
            if (lab[i] < 0 || (classes > 0 && lab[i] >= classes)) {
                say(msg, "%s: dataset 'labels' row %llu has value %d, outside [0, %lld)", path,
                    (unsigned long long)i, (int)lab[i], classes);
                rc = -1;
            }
    }
    ssl_free(lab);
    H5Dclose(ds);
    return rc;
}

/* ---- the two encodings ---------------------------------------------------------------------- */

typedef struct {
    char msg[MSG_LEN];   /* the problem, naming the shard and dataset */
    int64_t samples;
    char kind[64];       /* "raw HxWxC", "JPEG, B bytes" */
    int unsummed[4];     /* per dataset of names[]: chunks without Fletcher-32 */
    const char *names[4];
} result;

/* Raw (version 2): images (N, H, W, C) matching the attributes, read whole in slabs. */
static int verify_raw(hid_t file, const char *path, long long classes, result *res)
{
    char *msg = res->msg;
    res->names[0] = "images";
    res->names[1] = "labels";
    long long a[3] = {0, 0, 0};
    const char *an[3] = {"height", "width", "channels"};
    for (int k = 0; k < 3; k++)
        if (int_attr(file, an[k], &a[k]) != 1 || a[k] <= 0) {
            say(msg, "%s: attribute '%s' is missing or not a positive integer", path, an[k]);
            return -1;
        }
    hsize_t dims[4];
    hid_t ds = open_ds(file, path, "images", H5T_NATIVE_UINT8, 4, dims, &res->unsummed[0], msg);
    if (ds < 0) return -1;
    int rc = 0;
    if ((long long)dims[1] != a[0] || (long long)dims[2] != a[1] || (long long)dims[3] != a[2]) {
        say(msg, "%s: dataset 'images' shape (%llu,%llu,%llu,%llu) does not match the attributes "
            "%lldx%lldx%lld", path, (unsigned long long)dims[0], (unsigned long long)dims[1],
            (unsigned long long)dims[2], (unsigned long long)dims[3], a[0], a[1], a[2]);
        rc = -1;
    }
    const hsize_t row = dims[1] * dims[2] * dims[3];
    const hsize_t step = row >= READ_BYTES ? 1 : READ_BYTES / row;
    uint8_t *buf = rc == 0 ? ssl_malloc((size_t)(step * row)) : NULL;
    for (hsize_t r = 0; rc == 0 && r < dims[0]; r += step) {
        const hsize_t e = r + step < dims[0] ? r + step : dims[0];
        rc = read_rows(ds, path, "images", H5T_NATIVE_UINT8, 4, row, r, e, buf, msg);
    }
    ssl_free(buf);
    H5Dclose(ds);
    if (rc == 0) rc = check_labels(file, path, dims[0], classes, &res->unsummed[1], msg);
    res->samples = (int64_t)dims[0];
    snprintf(res->kind, sizeof res->kind, "raw %lldx%lldx%lld", a[0], a[1], a[2]);
    return rc;
}

/* Decodes images [i0, i1), whose bytes start at buf (offset offs[i0]), and checks their sizes.
 * TJFLAG_STOPONWARNING: a damaged image that libjpeg would pad with grey is an error. */
static int decode_slab(tjhandle tj, const char *path, const uint8_t *buf, const int64_t *offs,
                       const int32_t *sizes, hsize_t i0, hsize_t i1, uint8_t **px, size_t *pxcap,
                       char *msg)
{
    for (hsize_t i = i0; i < i1; i++) {
        const unsigned char *p = buf + (offs[i] - offs[i0]);
        const unsigned long len = (unsigned long)(offs[i + 1] - offs[i]);
        int w = 0, h = 0, sub = 0, cs = 0;
        if (len == 0 || tjDecompressHeader3(tj, p, len, &w, &h, &sub, &cs) != 0) {
            say(msg, "%s: dataset 'jpeg' sample %llu (bytes [%lld, %lld)) does not decode: %s", path,
                (unsigned long long)i, (long long)offs[i], (long long)offs[i + 1],
                len ? tjGetErrorStr2(tj) : "no bytes");
            return -1;
        }
        if (h != sizes[2 * i] || w != sizes[2 * i + 1]) {
            say(msg, "%s: dataset 'jpeg' sample %llu is %dx%d (height x width) but dataset 'sizes' "
                "says %dx%d", path, (unsigned long long)i, h, w, (int)sizes[2 * i],
                (int)sizes[2 * i + 1]);
            return -1;
        }
        const size_t need = (size_t)w * (size_t)h * 3; /* sizes are checked against MAX_PIXELS */
        if (need > *pxcap) {
            ssl_free(*px);
            *px = ssl_malloc(*pxcap = need);
        }
        if (tjDecompress2(tj, p, len, *px, w, 0, h, TJPF_RGB, TJFLAG_STOPONWARNING) != 0) {
            say(msg, "%s: dataset 'jpeg' sample %llu (bytes [%lld, %lld)) does not decode: %s", path,
                (unsigned long long)i, (long long)offs[i], (long long)offs[i + 1],
                tjGetErrorStr2(tj));
            return -1;
        }
    }
    return 0;
}

/* JPEG (version 3): offsets cover `jpeg` exactly and every image decodes cleanly to its `sizes`. */
static int verify_jpeg(hid_t file, const char *path, long long classes, result *res)
{
    char *msg = res->msg;
    res->names[0] = "jpeg";
    res->names[1] = "offsets";
    res->names[2] = "sizes";
    res->names[3] = "labels";
    long long ch = 3;
    if (int_attr(file, "channels", &ch) < 0 || ch != 3) {
        say(msg, "%s: attribute 'channels' is %lld, expected 3 for JPEG shards", path, ch);
        return -1;
    }
    hsize_t bd[1], od[1], sd[2];
    hid_t dj = open_ds(file, path, "jpeg", H5T_NATIVE_UINT8, 1, bd, &res->unsummed[0], msg);
    hid_t dof = dj < 0 ? -1 : open_ds(file, path, "offsets", H5T_NATIVE_INT64, 1, od, &res->unsummed[1], msg);
    hid_t dsz = dof < 0 ? -1 : open_ds(file, path, "sizes", H5T_NATIVE_INT32, 2, sd, &res->unsummed[2], msg);
    int rc = dsz < 0 ? -1 : 0;
    const hsize_t n = rc == 0 && od[0] > 0 ? od[0] - 1 : 0, B = rc == 0 ? bd[0] : 0;
    if (rc == 0 && (od[0] == 0 || sd[0] != n || sd[1] != 2)) {
        say(msg, "%s: dataset 'offsets' has %llu rows and 'sizes' is (%llu, %llu): expected N + 1 "
            "and (N, 2)", path, (unsigned long long)od[0], (unsigned long long)sd[0],
            (unsigned long long)sd[1]);
        rc = -1;
    }
    int64_t *offs = rc == 0 ? ssl_malloc((size_t)(n + 1) * sizeof *offs) : NULL;
    int32_t *sizes = rc == 0 ? ssl_malloc((size_t)(2 * n + 1) * sizeof *sizes) : NULL;
    if (rc == 0) rc = read_rows(dof, path, "offsets", H5T_NATIVE_INT64, 1, 1, 0, n + 1, offs, msg);
    if (rc == 0) rc = read_rows(dsz, path, "sizes", H5T_NATIVE_INT32, 2, 2, 0, n, sizes, msg);
    if (rc == 0 && (offs[0] != 0 || offs[n] != (int64_t)B)) {
        say(msg, "%s: dataset 'offsets' runs from %lld to %lld, expected 0 to the %llu bytes of "
            "dataset 'jpeg'", path, (long long)offs[0], (long long)offs[n], (unsigned long long)B);
        rc = -1;
    }
    for (hsize_t i = 0; rc == 0 && i < n; i++) {
        if (offs[i + 1] < offs[i]) {
            say(msg, "%s: dataset 'offsets' decreases at row %llu (%lld after %lld)", path,
                (unsigned long long)i + 1, (long long)offs[i + 1], (long long)offs[i]);
            rc = -1;
        } else if (sizes[2 * i] <= 0 || sizes[2 * i + 1] <= 0 ||
                   (int64_t)sizes[2 * i] * sizes[2 * i + 1] > MAX_PIXELS) {
            say(msg, "%s: dataset 'sizes' row %llu is (%d, %d), not a supported image size", path,
                (unsigned long long)i, (int)sizes[2 * i], (int)sizes[2 * i + 1]);
            rc = -1;
        }
    }
    if (rc == 0) rc = check_labels(file, path, n, classes, &res->unsummed[3], msg);
    tjhandle tj = rc == 0 ? tjInitDecompress() : NULL;
    if (rc == 0 && !tj) {
        say(msg, "%s: TurboJPEG: %s", path, tjGetErrorStr2(NULL));
        rc = -1;
    }
    /* the bytes in slabs of whole images (an image larger than a slab alone) */
    uint8_t *buf = NULL, *px = NULL;
    size_t bufcap = 0, pxcap = 0;
    for (hsize_t i = 0; rc == 0 && i < n;) {
        hsize_t j = i + 1;
        while (j < n && (size_t)(offs[j + 1] - offs[i]) <= READ_BYTES) j++;
        const size_t len = (size_t)(offs[j] - offs[i]);
        if (len > bufcap) {
            ssl_free(buf);
            buf = ssl_malloc(bufcap = len);
        }
        rc = read_rows(dj, path, "jpeg", H5T_NATIVE_UINT8, 1, 1, (hsize_t)offs[i], (hsize_t)offs[j],
                       buf, msg);
        if (rc == 0) rc = decode_slab(tj, path, buf, offs, sizes, i, j, &px, &pxcap, msg);
        i = j;
    }
    ssl_free(px);
    ssl_free(buf);
    if (tj) tjDestroy(tj);
    ssl_free(offs);
    ssl_free(sizes);
    if (dsz >= 0) H5Dclose(dsz);
    if (dof >= 0) H5Dclose(dof);
    if (dj >= 0) H5Dclose(dj);
    res->samples = (int64_t)n;
    snprintf(res->kind, sizeof res->kind, "JPEG, %llu bytes", (unsigned long long)B);
    return rc;
}

/* ---- one shard, all shards ------------------------------------------------------------------ */

/* Caller holds the HDF5 lock. */
static int verify_shard(const char *path, result *res)
{
    char why[256], fmt[64] = "", enc[64] = "";
    if (ssl_h5_superblock_ok(path, why, sizeof why) != 0) {
        say(res->msg, "%s: %s", path, why);
        return -1;
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        say(res->msg, "%s: cannot open (truncated or not HDF5): %s", path, ssl_h5_reason(why, sizeof why));
        return -1;
    }
    long long version = 0, classes = 0;
    const int rf = str_attr(file, "format", fmt, sizeof fmt), rv = int_attr(file, "version", &version);
    const int re = str_attr(file, "encoding", enc, sizeof enc), rn = int_attr(file, "num_classes", &classes);
    const int jpeg = re == 1 && !strcmp(enc, SSL_SHARD_ENCODING_JPEG);
    const int want = jpeg ? SSL_SHARD_VERSION_JPEG : SSL_SHARD_VERSION;
    int rc = -1;
    if (rf < 0 || (rf == 1 && strcmp(fmt, SSL_SHARD_FORMAT) != 0))
        say(res->msg, "%s: attribute 'format' is %s%s%s, expected '%s'", path, rf < 0 ? "unreadable" : "'",
            rf < 0 ? "" : fmt, rf < 0 ? "" : "'", SSL_SHARD_FORMAT);
    else if (re < 0 || (re == 1 && !jpeg))
        say(res->msg, "%s: attribute 'encoding' is %s, expected '%s' or none", path,
            re < 0 ? "unreadable" : enc, SSL_SHARD_ENCODING_JPEG);
    else if (rv < 0 || (rv == 0 && jpeg) || (rv == 1 && version != want))
        say(res->msg, "%s: attribute 'version' is %s%lld, expected %d for %s shards%s", path,
            rv == 1 ? "" : "missing or unreadable: ", version, want, jpeg ? "JPEG" : "raw",
            rv == 1 && version < SSL_SHARD_VERSION ? " (re-run `sslrun prep`)" : "");
    else if (rn < 0 || classes < 0 || classes > INT32_MAX)
        say(res->msg, "%s: attribute 'num_classes' is not a non-negative integer", path);
    else
        rc = jpeg ? verify_jpeg(file, path, classes, res) : verify_raw(file, path, classes, res);
    if (H5Fclose(file) < 0 && rc == 0) {
        say(res->msg, "%s: closing the file failed: %s", path, ssl_h5_reason(why, sizeof why));
        rc = -1;
    }
    return rc;
}

int ssl_shard_verify(const char *path_or_glob, FILE *out)
{
    strlist l = {0};
    char msg[MSG_LEN];
    if (!path_or_glob || !path_or_glob[0] || list_shards(path_or_glob, &l, msg) < 0) {
        fprintf(out, "BAD  %s\nverify: no shards to verify\n", path_or_glob && path_or_glob[0] ? msg : "empty path");
        for (size_t i = 0; i < l.n; i++) free(l.v[i]);
        free(l.v);
        return -1;
    }
    ssl_h5_lock();
    /* Our messages name the file and dataset; HDF5's own stack dump would only add noise. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    ssl_h5_unlock();
    int bad = 0;
    int64_t samples = 0;
    for (size_t i = 0; i < l.n; i++) {
        result res;
        memset(&res, 0, sizeof res);
        ssl_h5_lock();
        const int rc = verify_shard(l.v[i], &res);
        ssl_h5_unlock();
        if (rc != 0) {
            bad++;
            fprintf(out, "BAD  %s\n", res.msg);
        } else {
            samples += res.samples;
            fprintf(out, "ok   %s: %lld samples (%s)", l.v[i], (long long)res.samples, res.kind);
            for (int k = 0; k < 4; k++)
                if (res.names[k] && res.unsummed[k])
                    fprintf(out, "; dataset '%s' has no Fletcher-32 checksums: damage to it goes "
                            "undetected", res.names[k]);
            fputc('\n', out);
        }
        fflush(out);
        free(l.v[i]);
    }
    fprintf(out, "verify: %zu shard%s, %zu ok, %d bad; %lld samples in the good ones\n", l.n,
            l.n == 1 ? "" : "s", l.n - (size_t)bad, bad, (long long)samples);
    free(l.v);
    return bad;
}
