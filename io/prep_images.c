/* ImageFolder trees of PNG/JPEG files into HDF5 shards (see prep.h). The tree is listed and every
 * file's first bytes checked before anything is written, so a wrong layout fails in seconds, not
 * after hours of decoding; libpng and libjpeg errors come back through setjmp as messages naming
 * the file instead of ending the process. */
#include "io/prep.h"

#include "framework/core/check.h"
#include "io/jpeg_shard_writer.h"
#include "io/shard_writer.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jpeglib.h> /* needs stdio.h first */
#include <jerror.h>
#include <png.h>
#include <turbojpeg.h>

#define PATH_LEN 4096
#define DEFAULT_SHARD_SIZE 10000
#define PROGRESS_EVERY 1000
#define MAX_OUT_SIZE 8192
/* Decoded-image limits: a header claiming more is corrupt or not a training photo, and would
 * otherwise make us allocate gigabytes before the first pixel is checked. */
#define MAX_SIDE 32768
#define MAX_PIXELS ((int64_t)1 << 27)
#define BLOCK_BYTES ((size_t)16 << 20) /* decoded samples handed to the writer per call */
#define MAX_FILE_BYTES (256 << 20) /* a JPEG file read whole into memory */

static void seterr(char *err, size_t errlen, const char *fmt, ...) SSL_PRINTF(3, 4);
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int join(char *out, size_t len, const char *dir, const char *name)
{
    return snprintf(out, len, "%s/%s", dir, name) < (int)len ? 0 : -1;
}

/* mkdir -p (prep.c has the same for the other converters; both are a few lines). */
/* ---- listing -------------------------------------------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
} strlist;

static void strlist_push(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        SSL_ASSERTF(v != NULL, "out of memory listing %zu names", cap);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strdup(s);
    SSL_ASSERTF(l->v[l->n] != NULL, "out of memory listing %s", s);
    l->n++;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Byte order of UTF-8 is code-point order, which is what Python's sorted() gives ImageFolder. */
static void strlist_sort(strlist *l)
{
    if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, cmp_name);
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

enum { KIND_OTHER, KIND_PNG, KIND_JPEG };

/* Opens path and tells PNG from JPEG by the signature (8 bytes) or SOI + marker (FF D8 FF).
 * Returns the kind with *f open at offset 0 (NULL for KIND_OTHER), or -1 with a message. */
static int open_image(const char *path, FILE **f, char *err, size_t errlen)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *f = fopen(path, "rb");
    if (!*f) {
        seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    unsigned char b[8];
    size_t n = fread(b, 1, sizeof b, *f);
    if (ferror(*f)) {
        seterr(err, errlen, "%s: read error: %s", path, strerror(errno));
        fclose(*f);
        *f = NULL;
        return -1;
    }
    int kind = KIND_OTHER;
    if (n == 8 && !memcmp(b, png_sig, 8)) kind = KIND_PNG;
    else if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) kind = KIND_JPEG;
    if (kind == KIND_OTHER) {
        fclose(*f);
        *f = NULL;
    } else {
        rewind(*f);
    }
    return kind;
}

typedef struct {
    strlist classes;
    strlist *files;  /* per class: image file names, sorted */
    int64_t total;   /* images in all classes */
    int64_t skipped; /* files in class folders that are neither PNG nor JPEG */
    int64_t nested;  /* folders inside class folders (not searched) */
    char first_skipped[PATH_LEN];
} tree;

static void tree_free(tree *t)
{
    for (size_t c = 0; t->files && c < t->classes.n; c++) strlist_free(&t->files[c]);
    free(t->files);
    strlist_free(&t->classes);
}

static int list_class(const char *cdir, tree *t, strlist *files, char *err, size_t errlen)
{
    DIR *d = opendir(cdir);
    if (!d) {
        seterr(err, errlen, "%s: cannot open class folder: %s", cdir, strerror(errno));
        return -1;
    }
    int64_t skipped = 0;
    int rc = 0;
    char path[PATH_LEN];
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue; /* ., .., .DS_Store, editor and sync droppings */
        struct stat st;
        if (join(path, sizeof path, cdir, e->d_name) < 0) {
            seterr(err, errlen, "%s/%s: path too long", cdir, e->d_name);
            rc = -1;
        } else if (stat(path, &st) != 0) {
            seterr(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            t->nested++;
        } else {
            FILE *f = NULL;
            int kind = S_ISREG(st.st_mode) ? open_image(path, &f, err, errlen) : KIND_OTHER;
            if (f) fclose(f);
            if (kind < 0) {
                rc = -1;
            } else if (kind == KIND_OTHER) {
                if (t->skipped++ == 0) snprintf(t->first_skipped, sizeof t->first_skipped, "%s", path);
                skipped++;
            } else {
                strlist_push(files, e->d_name);
            }
        }
    }
    closedir(d);
    if (rc == 0 && files->n == 0) {
        seterr(err, errlen, "%s: class folder has no PNG or JPEG images (%lld other files)", cdir,
               (long long)skipped);
        rc = -1;
    }
    strlist_sort(files);
    t->total += (int64_t)files->n;
    return rc;
}

/* out_st: the output folder when it exists already; as a subfolder of src it would be read as a
 * class (on the second run at the latest), so it is refused. */
static int list_tree(const char *src, const struct stat *out_st, tree *t, char *err, size_t errlen)
{
    DIR *d = opendir(src);
    if (!d) {
        seterr(err, errlen, "%s: cannot open the source folder: %s", src, strerror(errno));
        return -1;
    }
    char path[PATH_LEN];
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        struct stat st;
        if (join(path, sizeof path, src, e->d_name) < 0) {
            seterr(err, errlen, "%s/%s: path too long", src, e->d_name);
            rc = -1;
        } else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            /* Files next to the class folders are ignored, as ImageFolder does. */
            if (out_st && st.st_dev == out_st->st_dev && st.st_ino == out_st->st_ino) {
                seterr(err, errlen, "%s: the output folder is inside the source folder and would "
                       "be read as a class; choose another --out", path);
                rc = -1;
            } else if (strpbrk(e->d_name, "\n\r")) {
                seterr(err, errlen, "%s: class folder name has a line break (classes.txt is one "
                       "name per line)", path);
                rc = -1;
            } else {
                strlist_push(&t->classes, e->d_name);
            }
        }
    }
    closedir(d);
    if (rc) return -1;
    if (t->classes.n == 0) {
        seterr(err, errlen, "%s: no class folders (expected one subfolder of images per class)", src);
        return -1;
    }
    strlist_sort(&t->classes);
    t->files = calloc(t->classes.n, sizeof *t->files);
    SSL_ASSERTF(t->files != NULL, "out of memory");
    for (size_t c = 0; c < t->classes.n; c++) {
        if (join(path, sizeof path, src, t->classes.v[c]) < 0) {
            seterr(err, errlen, "%s/%s: path too long", src, t->classes.v[c]);
            return -1;
        }
        if (list_class(path, t, &t->files[c], err, errlen) < 0) return -1;
    }
    return 0;
}

/* ---- decoding ------------------------------------------------------------------------------- */

/* One decoded image, h x w x 3, in buffers reused from image to image. The decoders write only
 * through this pointer after their setjmp, so nothing they need after a longjmp is a clobberable
 * local of the function that called setjmp. */
typedef struct {
    uint8_t *px;
    size_t cap;
    uint8_t *row; /* one CMYK scanline */
    size_t rowcap;
    png_bytep *rows;
    size_t rowscap;
    int w, h;
    uint8_t *src; /* a JPEG file's bytes (JPEG shards store them as they are) */
    size_t srccap, srclen;
    int kind;     /* KIND_PNG or KIND_JPEG */
    int jcs;      /* a JPEG's colour space (J_COLOR_SPACE) */
    int warned;   /* the JPEG decoder warned (damage it tolerates): not stored as it is */
    char msg[JMSG_LENGTH_MAX + 64];
} decoder;

static void *grow(void *p, size_t *cap, size_t need)
{
    if (need <= *cap) return p;
    ssl_free(p);
    *cap = need + need / 4;
    return ssl_malloc(*cap);
}

static int set_dims(decoder *d, uint64_t w, uint64_t h)
{
    if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE || w * h > (uint64_t)MAX_PIXELS) {
        snprintf(d->msg, sizeof d->msg, "%llux%llu pixels is outside the supported size "
                 "(sides up to %d, %lld pixels)", (unsigned long long)w, (unsigned long long)h,
                 MAX_SIDE, (long long)MAX_PIXELS);
        return -1;
    }
    d->w = (int)w;
    d->h = (int)h;
    d->px = grow(d->px, &d->cap, (size_t)w * h * 3);
    return 0;
}

typedef struct {
    png_structp png;
    png_infop info;
} png_job;

static void png_fail(png_structp png, png_const_charp msg)
{
    decoder *d = png_get_error_ptr(png);
    snprintf(d->msg, sizeof d->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings leave the pixels intact (typically "iCCP: known incorrect sRGB profile"): silent. */
static void png_quiet(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static int png_run(png_job *j, decoder *d, FILE *f)
{
    if (setjmp(png_jmpbuf(j->png))) return -1;
    png_init_io(j->png, f);
    png_set_user_limits(j->png, MAX_SIDE, MAX_SIDE);
    png_read_info(j->png, j->info);
    png_uint_32 w, h;
    int depth, ctype;
    png_get_IHDR(j->png, j->info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
    /* To 8-bit RGB the way PIL's convert("RGB") does: palette and low-bit gray expanded, gray
     * replicated, alpha (also a palette's tRNS) stripped rather than composited, no gamma. */
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(j->png);
    if (!(ctype & PNG_COLOR_MASK_COLOR) && depth < 8) png_set_expand_gray_1_2_4_to_8(j->png);
    if (depth == 16) png_set_scale_16(j->png);
    png_set_strip_alpha(j->png);
    if (!(ctype & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(j->png);
    png_set_interlace_handling(j->png);
    png_read_update_info(j->png, j->info);
    if (png_get_channels(j->png, j->info) != 3 || png_get_bit_depth(j->png, j->info) != 8 ||
        png_get_rowbytes(j->png, j->info) != (size_t)w * 3) {
        snprintf(d->msg, sizeof d->msg, "color type %d, bit depth %d did not convert to 8-bit RGB",
                 ctype, depth);
        return -1;
    }
    if (set_dims(d, w, h) < 0) return -1;
    d->rows = grow(d->rows, &d->rowscap, (size_t)h * sizeof *d->rows);
    for (png_uint_32 y = 0; y < h; y++) d->rows[y] = d->px + (size_t)y * w * 3;
    png_read_image(j->png, d->rows);
    /* Chunks after the image data are not read: the pixels are complete, and PIL does not insist
     * on them either. */
    return 0;
}

static int decode_png(decoder *d, FILE *f)
{
    png_job j = {0};
    j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d, png_fail, png_quiet);
    j.info = j.png ? png_create_info_struct(j.png) : NULL;
    int rc = -1;
    if (!j.info) snprintf(d->msg, sizeof d->msg, "libpng could not allocate its state");
    else rc = png_run(&j, d, f);
    png_destroy_read_struct(j.png ? &j.png : NULL, j.info ? &j.info : NULL, NULL);
    return rc;
}

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg hands callbacks a pointer to it */
    jmp_buf jb;
    decoder *d;
} jpeg_err;

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_err jerr;
    int created;
} jpeg_job;

static void jpeg_fail(j_common_ptr c)
{
    jpeg_err *e = (jpeg_err *)c->err;
    c->err->format_message(c, e->d->msg);
    longjmp(e->jb, 1);
}

/* libjpeg only warns when data is missing or damaged and fills in grey; that would train on
 * invented pixels, so those warnings are errors (PIL refuses truncated files too). Harmless ones
 * (extraneous bytes before a marker, an unknown JFIF revision) and trace messages are ignored. */
static void jpeg_message(j_common_ptr c, int level)
{
    int code = c->err->msg_code;
    if (level < 0) ((jpeg_err *)c->err)->d->warned = 1;
    if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC ||
                      code == JWRN_HUFF_BAD_CODE || code == JWRN_ARITH_BAD_CODE))
        jpeg_fail(c);
}

static void jpeg_quiet(j_common_ptr c)
{
    (void)c;
}

/* CMYK to RGB as PIL: R = (255 - C)(255 - K) / 255. Adobe files (nearly all CMYK JPEGs) store
 * the inks inverted, so there R = C'K' / 255 of the stored values. */
static void cmyk_to_rgb(const uint8_t *in, uint8_t *out, int w, int adobe)
{
    for (int x = 0; x < w; x++, in += 4, out += 3) {
        unsigned k = adobe ? in[3] : 255u - in[3];
        for (int c = 0; c < 3; c++) {
            unsigned v = adobe ? in[c] : 255u - in[c];
            out[c] = (uint8_t)((v * k + 127) / 255);
        }
    }
}

static int jpeg_run(jpeg_job *j, decoder *d)
{
    struct jpeg_decompress_struct *ci = &j->cinfo;
    ci->err = jpeg_std_error(&j->jerr.pub);
    j->jerr.pub.error_exit = jpeg_fail;
    j->jerr.pub.emit_message = jpeg_message;
    j->jerr.pub.output_message = jpeg_quiet;
    j->jerr.d = d;
    if (setjmp(j->jerr.jb)) return -1;
    jpeg_create_decompress(ci);
    j->created = 1;
    jpeg_mem_src(ci, d->src, d->srclen);
    jpeg_read_header(ci, TRUE);
    d->jcs = ci->jpeg_color_space;
    const int cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
    ci->out_color_space = cmyk ? JCS_CMYK : JCS_RGB; /* libjpeg-turbo replicates gray to RGB */
    jpeg_start_decompress(ci);
    if (ci->output_components != (cmyk ? 4 : 3)) {
        snprintf(d->msg, sizeof d->msg, "%d output components, expected %d", ci->output_components,
                 cmyk ? 4 : 3);
        return -1;
    }
    if (set_dims(d, ci->output_width, ci->output_height) < 0) return -1;
    if (cmyk) d->row = grow(d->row, &d->rowcap, (size_t)d->w * 4);
    while (ci->output_scanline < ci->output_height) {
        uint8_t *dst = d->px + (size_t)ci->output_scanline * d->w * 3;
        JSAMPROW r = cmyk ? d->row : dst;
        if (jpeg_read_scanlines(ci, &r, 1) != 1) {
            snprintf(d->msg, sizeof d->msg, "decoder returned no scanline at row %u",
                     ci->output_scanline);
            return -1;
        }
        if (cmyk) cmyk_to_rgb(d->row, dst, d->w, ci->saw_Adobe_marker);
    }
    jpeg_finish_decompress(ci);
    return 0;
}

/* The whole file is read first: JPEG shards may store these very bytes. */
static int decode_jpeg(decoder *d, FILE *f)
{
    d->srclen = 0;
    if (fseek(f, 0, SEEK_END) != 0) {
        snprintf(d->msg, sizeof d->msg, "cannot seek: %s", strerror(errno));
        return -1;
    }
    long len = ftell(f);
    if (len < 0 || len > MAX_FILE_BYTES) {
        snprintf(d->msg, sizeof d->msg, "file size %ld is outside the supported range (up to %d MiB)",
                 len, MAX_FILE_BYTES >> 20);
        return -1;
    }
    rewind(f);
    d->src = grow(d->src, &d->srccap, (size_t)len + 1);
    if (fread(d->src, 1, (size_t)len, f) != (size_t)len) {
        snprintf(d->msg, sizeof d->msg, "read error: %s", ferror(f) ? strerror(errno) : "file shrank");
        return -1;
    }
    d->srclen = (size_t)len;
    jpeg_job j;
    memset(&j, 0, sizeof j);
    int rc = jpeg_run(&j, d);
    if (j.created) jpeg_destroy_decompress(&j.cinfo);
    return rc;
}

static int decode_file(decoder *d, const char *path, char *err, size_t errlen)
{
    FILE *f;
    int kind = open_image(path, &f, err, errlen);
    if (kind < 0) return -1;
    if (kind == KIND_OTHER) {
        seterr(err, errlen, "%s: no longer a PNG or JPEG file (changed during the prep?)", path);
        return -1;
    }
    d->msg[0] = '\0';
    d->kind = kind;
    d->warned = 0;
    int rc = kind == KIND_PNG ? decode_png(d, f) : decode_jpeg(d, f);
    fclose(f);
    if (rc < 0)
        seterr(err, errlen, "%s: corrupt or unsupported %s: %s", path, kind == KIND_PNG ? "PNG" : "JPEG",
               d->msg[0] ? d->msg : "decoder error");
    return rc;
}

/* ---- resize and centre crop ----------------------------------------------------------------- */

/* One axis: output k is sum over t < count[k] of w[k * maxt + t] * src[first[k] + t]. */
typedef struct {
    int *first, *count;
    float *w;
    int maxt;
} axis_map;

/* in source pixels, scaled = the resized length, of which S starting at off are kept. */
static void axis_build(axis_map *m, int in, int scaled, int off, int S)
{
    const double scale = (double)in / scaled;
    m->maxt = scaled < in ? (int)ceil(scale) + 2 : 2;
    m->first = ssl_malloc((size_t)S * sizeof *m->first);
    m->count = ssl_malloc((size_t)S * sizeof *m->count);
    m->w = ssl_malloc((size_t)S * m->maxt * sizeof *m->w);
    for (int k = 0; k < S; k++) {
        const int j = off + k;
        float *w = m->w + (size_t)k * m->maxt;
        if (scaled == in) {
            m->first[k] = j, m->count[k] = 1, w[0] = 1.0f;
        } else if (scaled < in) {
            /* Area average: output pixel j covers source [j * scale, (j + 1) * scale). */
            const double lo = j * scale, hi = (j + 1) * scale;
            const int i0 = (int)floor(lo), i1 = (int)ceil(hi) < in ? (int)ceil(hi) : in;
            SSL_ASSERT(i1 - i0 >= 1 && i1 - i0 <= m->maxt); /* hi - lo = scale, +1 per ragged end */
            double sum = 0;
            for (int i = i0; i < i1; i++) sum += fmin(hi, i + 1.0) - fmax(lo, (double)i);
            for (int i = i0; i < i1; i++)
                w[i - i0] = (float)((fmin(hi, i + 1.0) - fmax(lo, (double)i)) / sum);
            m->first[k] = i0, m->count[k] = i1 - i0;
        } else {
            /* Bilinear with pixel centres at i + 0.5 on both grids; edges clamp. */
            const double c = (j + 0.5) * scale - 0.5;
            int i0 = (int)floor(c);
            double t = c - i0;
            if (i0 < 0) i0 = 0, t = 0;
            if (i0 >= in - 1) i0 = in - 1, t = 0;
            m->first[k] = i0;
            m->count[k] = t > 0 ? 2 : 1;
            w[0] = (float)(1 - t), w[1] = (float)t;
        }
    }
}

static void axis_free(axis_map *m)
{
    ssl_free(m->first);
    ssl_free(m->count);
    ssl_free(m->w);
}

/* Shorter side to S, the longer to floor(long * S / short), as torchvision's Resize(S). */
static void scaled_size(const decoder *d, int S, int *sw, int *sh)
{
    const int w = d->w, h = d->h;
    *sw = w <= h ? S : (int)((int64_t)w * S / h);
    *sh = w <= h ? (int)((int64_t)h * S / w) : S;
}

/* The decoded image resized to sw x sh, of which the cw x ch window at (ox, oy) goes to out. */
static void resize_crop(const decoder *d, int sw, int sh, int ox, int oy, int cw, int ch, uint8_t *out)
{
    const int w = d->w, h = d->h;
    if (sw == w && sh == h) { /* crop only: exact bytes */
        for (int y = 0; y < ch; y++)
            memcpy(out + (size_t)y * cw * 3, d->px + ((size_t)(y + oy) * w + ox) * 3, (size_t)cw * 3);
        return;
    }
    axis_map mx, my;
    axis_build(&mx, w, sw, ox, cw);
    axis_build(&my, h, sh, oy, ch);
    const int y0 = my.first[0], y1 = my.first[ch - 1] + my.count[ch - 1];
    float *tmp = ssl_malloc((size_t)(y1 - y0) * cw * 3 * sizeof *tmp);
    for (int y = y0; y < y1; y++) { /* horizontal pass over the rows the vertical pass needs */
        const uint8_t *src = d->px + (size_t)y * w * 3;
        float *dst = tmp + (size_t)(y - y0) * cw * 3;
        for (int k = 0; k < cw; k++) {
            const float *wt = mx.w + (size_t)k * mx.maxt;
            const uint8_t *p = src + (size_t)mx.first[k] * 3;
            float a0 = 0, a1 = 0, a2 = 0;
            for (int t = 0; t < mx.count[k]; t++, p += 3) {
                a0 += wt[t] * p[0];
                a1 += wt[t] * p[1];
                a2 += wt[t] * p[2];
            }
            dst[3 * k] = a0, dst[3 * k + 1] = a1, dst[3 * k + 2] = a2;
        }
    }
    for (int k = 0; k < ch; k++) {
        const float *wt = my.w + (size_t)k * my.maxt;
        uint8_t *o = out + (size_t)k * cw * 3;
        for (int x = 0; x < cw * 3; x++) {
            float a = 0;
            for (int t = 0; t < my.count[k]; t++)
                a += wt[t] * tmp[(size_t)(my.first[k] + t - y0) * cw * 3 + x];
            a += 0.5f;
            o[x] = (uint8_t)(a < 0 ? 0 : a > 255 ? 255 : a);
        }
    }
    ssl_free(tmp);
    axis_free(&mx);
    axis_free(&my);
}

/* Raw shards: shorter side to S and the centre S x S (offset floor((long' - S) / 2)). */
static void fit(const decoder *d, int S, uint8_t *out)
{
    int sw, sh;
    scaled_size(d, S, &sw, &sh);
    resize_crop(d, sw, sh, (sw - S) / 2, (sh - S) / 2, S, S, out);
}

/* ---- classes.txt ---------------------------------------------------------------------------- */

static char *classes_text(const strlist *cls, size_t *len)
{
    size_t n = 0;
    for (size_t c = 0; c < cls->n; c++) n += strlen(cls->v[c]) + 1;
    char *s = ssl_malloc(n + 1), *p = s;
    for (size_t c = 0; c < cls->n; c++) p += sprintf(p, "%s\n", cls->v[c]);
    *len = n;
    return s;
}

/* An existing classes.txt must list the same classes: shards of another prefix in the folder (the
 * training split, for a validation prep) were labelled by it. */
static int check_classes_file(const char *path, const char *want, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f && errno == ENOENT) return 0;
    if (!f) {
        seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *have = ssl_malloc(len + 2);
    size_t got = fread(have, 1, len + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = 0;
    if (bad) {
        seterr(err, errlen, "%s: read error", path);
        rc = -1;
    } else if (got != len || memcmp(have, want, len) != 0) {
        int line = 1;
        for (size_t i = 0; i < got && i < len && have[i] == want[i]; i++) line += have[i] == '\n';
        seterr(err, errlen, "%s lists other classes than the source folder (from line %d on); "
               "shards of another --prefix next to it would disagree on labels. Use another --out, "
               "or delete it if those shards are gone", path, line);
        rc = -1;
    }
    ssl_free(have);
    return rc;
}

static int write_classes_file(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
    char tmp[PATH_LEN];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        seterr(err, errlen, "%s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        seterr(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = fwrite(text, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        seterr(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ---- JPEG shards --------------------------------------------------------------------------- */

typedef struct {
    ssl_jpeg_shard_writer *w;
    tjhandle tj;
    unsigned char *out; /* tjAlloc'ed, tjBufSize of the largest image so far */
    unsigned long outcap;
    uint8_t *px;        /* resized pixels */
    size_t pxcap;
    int size, quality;
    int64_t verbatim, encoded;
} jpeg_sink;

/* The file's own bytes when they are what a re-encode would only degrade: no resize, YCbCr or gray
 * (what every JPEG decoder turns into the same RGB; CMYK/YCCK and Adobe RGB are decoded by the
 * rules above instead) and no decoder warning (the loader decodes with TJFLAG_STOPONWARNING). */
static int jpeg_sink_add(jpeg_sink *s, const decoder *d, const char *path, int32_t label, char *err,
                         size_t errlen)
{
    int sw = d->w, sh = d->h;
    if (s->size > 0 && (d->w < d->h ? d->w : d->h) != s->size) scaled_size(d, s->size, &sw, &sh);
    const int resized = sw != d->w || sh != d->h;
    if (!resized && d->kind == KIND_JPEG && !d->warned &&
        (d->jcs == JCS_YCbCr || d->jcs == JCS_GRAYSCALE)) {
        s->verbatim++;
        return ssl_jpeg_shard_writer_add(s->w, d->src, d->srclen, d->h, d->w, label, err, errlen);
    }
    const uint8_t *px = d->px;
    if (resized) {
        s->px = grow(s->px, &s->pxcap, (size_t)sw * sh * 3);
        resize_crop(d, sw, sh, 0, 0, sw, sh, s->px);
        px = s->px;
    }
    const unsigned long need = tjBufSize(sw, sh, TJSAMP_420);
    if (need == (unsigned long)-1) {
        seterr(err, errlen, "%s: %dx%d is too large to encode as JPEG", path, sw, sh);
        return -1;
    }
    if (need > s->outcap) {
        tjFree(s->out);
        s->out = tjAlloc((int)need);
        SSL_ASSERTF(s->out != NULL, "out of memory for a %lu-byte JPEG buffer", need);
        s->outcap = need;
    }
    unsigned long len = s->outcap;
    if (tjCompress2(s->tj, px, sw, 0, sh, TJPF_RGB, &s->out, &len, TJSAMP_420, s->quality,
                    TJFLAG_NOREALLOC) != 0) {
        seterr(err, errlen, "%s: JPEG encoding of %dx%d failed: %s", path, sw, sh,
               tjGetErrorStr2(s->tj));
        return -1;
    }
    s->encoded++;
    return ssl_jpeg_shard_writer_add(s->w, s->out, len, sh, sw, label, err, errlen);
}

/* ---- the converter -------------------------------------------------------------------------- */

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int ssl_prep_images(const char *src_dir, const char *out_dir, const ssl_prep_images_opts *opts,
                    char *err, size_t errlen)
{
    const ssl_prep_images_opts defaults = {0};
    if (!opts) opts = &defaults;
    const char *prefix = opts->prefix && opts->prefix[0] ? opts->prefix : "train";
    const int size = opts->size, shard_size = opts->shard_size > 0 ? opts->shard_size : DEFAULT_SHARD_SIZE;
    const int as_jpeg = opts->format == SSL_PREP_JPEG, quality = opts->quality ? opts->quality : 90;
    if (!src_dir || !out_dir) {
        seterr(err, errlen, "prep images: source and output folders are required");
        return -1;
    }
    if (strchr(prefix, '/')) {
        seterr(err, errlen, "prep images: prefix '%s' must be a file name prefix, without '/'", prefix);
        return -1;
    }
    if (size < 0 || size > MAX_OUT_SIZE) {
        seterr(err, errlen, "prep images: size %d must be in [0, %d] (0 keeps the images' size)",
               size, MAX_OUT_SIZE);
        return -1;
    }
    if ((opts->format != SSL_PREP_RAW && !as_jpeg) || quality < 1 || quality > 100) {
        seterr(err, errlen, "prep images: bad format %d or JPEG quality %d (1..100)", (int)opts->format,
               quality);
        return -1;
    }
    tree t;
    memset(&t, 0, sizeof t);
    decoder dec;
    memset(&dec, 0, sizeof dec);
    ssl_shard_writer *w = NULL;
    jpeg_sink js;
    memset(&js, 0, sizeof js);
    uint8_t *block = NULL;
    int32_t *labels = NULL;
    char *ctext = NULL, cpath[PATH_LEN], path[PATH_LEN], first[PATH_LEN] = "", what[PATH_LEN];
    int rc = -1, H = size, W = size, nblock = 0, fill = 0;
    size_t clen = 0, sample = 0;
    int64_t done = 0;
    const double t0 = seconds();

    struct stat out_st;
    int out_exists = stat(out_dir, &out_st) == 0;
    if (list_tree(src_dir, out_exists ? &out_st : NULL, &t, err, errlen) < 0) goto done;
    if (t.classes.n > INT32_MAX) {
        seterr(err, errlen, "%s: %zu class folders is too many", src_dir, t.classes.n);
        goto done;
    }
    ctext = classes_text(&t.classes, &clen);
    if (join(cpath, sizeof cpath, out_dir, "classes.txt") < 0) {
        seterr(err, errlen, "%s: path too long", out_dir);
        goto done;
    }
    if (check_classes_file(cpath, ctext, clen, err, errlen) < 0 || ssl_make_dirs(out_dir, err, errlen) < 0)
        goto done;
    snprintf(what, sizeof what, "%s/%s", out_dir, prefix);
    if (as_jpeg) {
        ssl_jpeg_shard_spec spec = {.out_dir = out_dir, .prefix = prefix,
                                    .num_classes = (int)t.classes.n, .with_labels = 1,
                                    .shard_size = shard_size};
        js.size = size;
        js.quality = quality;
        js.w = ssl_jpeg_shard_writer_open(&spec, err, errlen);
        if (!js.w) goto done;
        js.tj = tjInitCompress();
        if (!js.tj) {
            seterr(err, errlen, "prep images: TurboJPEG: %s", tjGetErrorStr2(NULL));
            goto done;
        }
    }

    for (size_t c = 0; c < t.classes.n; c++) {
        for (size_t i = 0; i < t.files[c].n; i++) {
            if (snprintf(path, sizeof path, "%s/%s/%s", src_dir, t.classes.v[c], t.files[c].v[i]) >=
                (int)sizeof path) {
                seterr(err, errlen, "%s/%s/%s: path too long", src_dir, t.classes.v[c], t.files[c].v[i]);
                goto done;
            }
            if (decode_file(&dec, path, err, errlen) < 0) goto done;
            if (as_jpeg) {
                if (jpeg_sink_add(&js, &dec, path, (int32_t)c, err, errlen) < 0) goto done;
            } else {
                if (!w) { /* the first image fixes the sample size when size is 0 */
                    if (size == 0) H = dec.h, W = dec.w;
                    snprintf(first, sizeof first, "%s", path);
                    ssl_shard_spec spec = {.out_dir = out_dir, .prefix = prefix, .height = H,
                                           .width = W, .channels = 3,
                                           .num_classes = (int)t.classes.n, .with_labels = 1,
                                           .shard_size = shard_size, .deflate = 0};
                    w = ssl_shard_writer_open(&spec, err, errlen);
                    if (!w) goto done;
                    sample = (size_t)H * W * 3;
                    const size_t fits = BLOCK_BYTES / sample;
                    nblock = fits < 1 ? 1 : fits > 1000 ? 1000 : (int)fits;
                    block = ssl_malloc((size_t)nblock * sample);
                    labels = ssl_malloc((size_t)nblock * sizeof *labels);
                }
                uint8_t *slot = block + (size_t)fill * sample;
                if (size == 0) {
                    if (dec.w != W || dec.h != H) {
                        seterr(err, errlen, "%s: image is %dx%d (width x height) but %s is %dx%d; "
                               "pass --size S to resize every image to S x S", path, dec.w, dec.h,
                               first, W, H);
                        goto done;
                    }
                    memcpy(slot, dec.px, sample);
                } else {
                    fit(&dec, size, slot);
                }
                labels[fill++] = (int32_t)c;
                if (fill == nblock) {
                    if (ssl_shard_writer_add(w, block, labels, fill, err, errlen) < 0) goto done;
                    fill = 0;
                }
            }
            if (++done % PROGRESS_EVERY == 0 && done < t.total)
                fprintf(stderr, "prep: %s: %lld/%lld images\n", what, (long long)done, (long long)t.total);
        }
    }
    int nshards;
    int64_t bytes = 0;
    if (as_jpeg) {
        bytes = ssl_jpeg_shard_writer_bytes(js.w);
        nshards = ssl_jpeg_shard_writer_nshards(js.w) + (ssl_jpeg_shard_writer_count(js.w) % shard_size != 0);
        rc = ssl_jpeg_shard_writer_close(js.w, err, errlen);
        js.w = NULL;
    } else {
        if (fill > 0 && ssl_shard_writer_add(w, block, labels, fill, err, errlen) < 0) goto done;
        nshards = ssl_shard_writer_nshards(w) + (ssl_shard_writer_count(w) % shard_size != 0);
        rc = ssl_shard_writer_close(w, err, errlen);
        w = NULL;
    }
    if (rc == 0) rc = write_classes_file(cpath, ctext, clen, err, errlen);
    if (rc == 0) {
        if (as_jpeg) {
            const double secs = seconds() - t0;
            fprintf(stderr, "prep: %s: %lld images of %zu class%s, JPEG (%lld stored as they are, %lld "
                    "encoded at quality %d), %d shard%s\n", what, (long long)done, t.classes.n,
                    t.classes.n == 1 ? "" : "es", (long long)js.verbatim, (long long)js.encoded,
                    quality, nshards, nshards == 1 ? "" : "s");
            fprintf(stderr, "prep: %s: %lld bytes of JPEG, %.0f bytes/image, %.1f images/s\n", what,
                    (long long)bytes, (double)bytes / (double)done,
                    secs > 0 ? (double)done / secs : 0.0);
        } else {
            fprintf(stderr, "prep: %s: %lld images of %zu class%s, %dx%dx3, %d shard%s\n", what,
                    (long long)done, t.classes.n, t.classes.n == 1 ? "" : "es", H, W, nshards,
                    nshards == 1 ? "" : "s");
        }
        if (t.skipped)
            fprintf(stderr, "prep: skipped %lld file%s that %s neither PNG nor JPEG (first: %s)\n",
                    (long long)t.skipped, t.skipped == 1 ? "" : "s", t.skipped == 1 ? "is" : "are",
                    t.first_skipped);
        if (t.nested)
            fprintf(stderr, "prep: ignored %lld folder%s inside class folders (not searched)\n",
                    (long long)t.nested, t.nested == 1 ? "" : "s");
    }
done:
    if (w) ssl_shard_writer_abort(w);
    if (js.w) ssl_jpeg_shard_writer_abort(js.w);
    if (js.tj) tjDestroy(js.tj);
    tjFree(js.out);
    ssl_free(js.px);
    ssl_free(block);
    ssl_free(labels);
    ssl_free(ctext);
    ssl_free(dec.px);
    ssl_free(dec.row);
    ssl_free(dec.rows);
    ssl_free(dec.src);
    tree_free(&t);
    return rc;
}
