/* Decoding, resizing and encoding of `prep images`, one shard at a time (prep_internal.h; the
 * listing is prep_list.c, the parallel driver prep_parallel.c). libpng and libjpeg errors come back
 * through setjmp as messages naming the file instead of ending the process. */
#include "io/prep_internal.h"

#include "framework/core/check.h"
#include "io/jpeg_shard_writer.h"
#include "io/shard_writer.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h> /* needs stdio.h first */
#include <jerror.h>
#include <png.h>
#include <turbojpeg.h>

#define PATH_LEN 4096
/* Decoded-image limits: a header claiming more is corrupt or not a training photo, and would
 * otherwise make us allocate gigabytes before the first pixel is checked. */
#define MAX_SIDE 32768
#define MAX_PIXELS ((int64_t)1 << 27)
#define BLOCK_BYTES ((size_t)16 << 20) /* decoded samples handed to the writer per call */
#define MAX_FILE_BYTES (256 << 20) /* a JPEG file read whole into memory */

enum { KIND_OTHER, KIND_PNG, KIND_JPEG };

/* Opens path and tells PNG from JPEG by the signature (8 bytes) or SOI + marker (FF D8 FF).
 * Returns the kind with *f open at offset 0 (NULL for KIND_OTHER), or -1 with a message. */
static int open_image(const char *path, FILE **f, char *err, size_t errlen)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *f = fopen(path, "rb");
    if (!*f) {
        ssl_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    unsigned char b[8];
    size_t n = fread(b, 1, sizeof b, *f);
    if (ferror(*f)) {
        ssl_seterr(err, errlen, "%s: read error: %s", path, strerror(errno));
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

int ssl_prep_image_kind(const char *path, char *err, size_t errlen)
{
    FILE *f = NULL;
    int kind = open_image(path, &f, err, errlen);
    if (f) fclose(f);
    return kind < 0 ? -1 : kind == KIND_PNG ? SSL_PREP_KIND_PNG : kind == KIND_JPEG ? SSL_PREP_KIND_JPEG
                                                                                   : SSL_PREP_KIND_OTHER;
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
        ssl_seterr(err, errlen, "%s: no longer a PNG or JPEG file (changed during the prep?)", path);
        return -1;
    }
    d->msg[0] = '\0';
    d->kind = kind;
    d->warned = 0;
    int rc = kind == KIND_PNG ? decode_png(d, f) : decode_jpeg(d, f);
    fclose(f);
    if (rc < 0)
        ssl_seterr(err, errlen, "%s: corrupt or unsupported %s: %s", path, kind == KIND_PNG ? "PNG" : "JPEG",
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
        ssl_seterr(err, errlen, "%s: %dx%d is too large to encode as JPEG", path, sw, sh);
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
        ssl_seterr(err, errlen, "%s: JPEG encoding of %dx%d failed: %s", path, sw, sh,
               tjGetErrorStr2(s->tj));
        return -1;
    }
    s->encoded++;
    return ssl_jpeg_shard_writer_add(s->w, s->out, len, sh, sw, label, err, errlen);
}

/* ---- one shard at a time ------------------------------------------------------------------- */

struct ssl_prep_job {
    ssl_prep_job_spec spec;
    char src[PATH_LEN], first[PATH_LEN];
    decoder dec;
    ssl_shard_writer *w; /* raw */
    jpeg_sink js;        /* jpeg */
    uint8_t *block;      /* raw: decoded samples handed to the writer together */
    int32_t *labels;
    int nblock;
    size_t sample;
};

ssl_prep_job *ssl_prep_job_open(const ssl_prep_job_spec *spec, char *err, size_t errlen)
{
    ssl_prep_job *j = ssl_calloc(1, sizeof *j);
    j->spec = *spec;
    snprintf(j->src, sizeof j->src, "%s", spec->src_dir);
    snprintf(j->first, sizeof j->first, "%s", spec->first ? spec->first : "");
    j->spec.src_dir = j->src;
    j->spec.first = j->first;
    if (spec->format == SSL_PREP_JPEG) {
        ssl_jpeg_shard_spec js = {.out_dir = spec->out_dir, .prefix = spec->prefix,
                                  .num_classes = spec->num_classes, .with_labels = 1,
                                  .shard_size = spec->shard_size};
        j->js.size = spec->size;
        j->js.quality = spec->quality;
        j->js.w = ssl_jpeg_shard_writer_open(&js, err, errlen);
        if (!j->js.w) goto fail;
        j->js.tj = tjInitCompress();
        if (!j->js.tj) {
            ssl_seterr(err, errlen, "prep images: TurboJPEG: %s", tjGetErrorStr2(NULL));
            goto fail;
        }
    } else {
        ssl_shard_spec rs = {.out_dir = spec->out_dir, .prefix = spec->prefix, .height = spec->height,
                             .width = spec->width, .channels = 3, .num_classes = spec->num_classes,
                             .with_labels = 1, .shard_size = spec->shard_size, .deflate = 0};
        j->w = ssl_shard_writer_open(&rs, err, errlen);
        if (!j->w) goto fail;
        j->sample = (size_t)spec->height * spec->width * 3;
        const size_t fits = BLOCK_BYTES / j->sample;
        j->nblock = fits < 1 ? 1 : fits > 1000 ? 1000 : (int)fits;
        j->block = ssl_malloc((size_t)j->nblock * j->sample);
        j->labels = ssl_malloc((size_t)j->nblock * sizeof *j->labels);
    }
    return j;
fail:
    ssl_prep_job_close(j);
    return NULL;
}

/* Raw: the decoded image as one sample of the fixed size (resized and cropped, or checked). */
static int raw_sample(ssl_prep_job *j, const char *path, uint8_t *slot, char *err, size_t errlen)
{
    const decoder *d = &j->dec;
    if (j->spec.size > 0) {
        fit(d, j->spec.size, slot);
        return 0;
    }
    if (d->w != j->spec.width || d->h != j->spec.height) {
        ssl_seterr(err, errlen, "%s: image is %dx%d (width x height) but %s is %dx%d; pass --size S to "
               "resize every image to S x S", path, d->w, d->h, j->first, j->spec.width, j->spec.height);
        return -1;
    }
    memcpy(slot, d->px, j->sample);
    return 0;
}

int ssl_prep_job_shard(ssl_prep_job *j, int k, const ssl_prep_list *l, size_t begin, size_t end,
                       void (*tick)(void *), void *ctx, char *err, size_t errlen)
{
    const int jpeg = j->spec.format == SSL_PREP_JPEG;
    if (jpeg ? ssl_jpeg_shard_writer_start_shard(j->js.w, k, err, errlen)
             : ssl_shard_writer_start_shard(j->w, k, err, errlen))
        return -1;
    char path[PATH_LEN];
    int fill = 0;
    for (size_t i = begin; i < end; i++) {
        if (snprintf(path, sizeof path, "%s/%s", j->src, l->rel[i]) >= (int)sizeof path) {
            ssl_seterr(err, errlen, "%s/%s: path too long", j->src, l->rel[i]);
            return -1;
        }
        if (decode_file(&j->dec, path, err, errlen) < 0) return -1;
        if (jpeg) {
            if (jpeg_sink_add(&j->js, &j->dec, path, l->label[i], err, errlen) < 0) return -1;
        } else {
            if (raw_sample(j, path, j->block + (size_t)fill * j->sample, err, errlen) < 0) return -1;
            j->labels[fill++] = l->label[i];
            if ((fill == j->nblock || i + 1 == end) &&
                ssl_shard_writer_add(j->w, j->block, j->labels, fill, err, errlen) < 0)
                return -1;
            if (fill == j->nblock) fill = 0;
        }
        if (tick) tick(ctx);
    }
    return jpeg ? ssl_jpeg_shard_writer_end_shard(j->js.w, err, errlen)
                : ssl_shard_writer_end_shard(j->w, err, errlen);
}

void ssl_prep_job_stats(const ssl_prep_job *j, int64_t *verbatim, int64_t *encoded, int64_t *bytes)
{
    *verbatim = j->js.verbatim;
    *encoded = j->js.encoded;
    *bytes = j->js.w ? ssl_jpeg_shard_writer_bytes(j->js.w) : 0;
}

void ssl_prep_job_close(ssl_prep_job *j)
{
    if (!j) return;
    /* abort: close would delete the other ranks' higher-numbered shards as stale */
    if (j->w) ssl_shard_writer_abort(j->w);
    if (j->js.w) ssl_jpeg_shard_writer_abort(j->js.w);
    if (j->js.tj) tjDestroy(j->js.tj);
    tjFree(j->js.out);
    ssl_free(j->js.px);
    ssl_free(j->block);
    ssl_free(j->labels);
    ssl_free(j->dec.px);
    ssl_free(j->dec.row);
    ssl_free(j->dec.rows);
    ssl_free(j->dec.src);
    ssl_free(j);
}

int ssl_prep_probe_size(const char *path, int *height, int *width, char *err, size_t errlen)
{
    decoder d;
    memset(&d, 0, sizeof d);
    int rc = decode_file(&d, path, err, errlen);
    *height = d.h;
    *width = d.w;
    ssl_free(d.px);
    ssl_free(d.row);
    ssl_free(d.rows);
    ssl_free(d.src);
    return rc;
}
