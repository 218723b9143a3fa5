/* safetensors export and header reader (see export.h). The format is simple enough to write by
 * hand: a JSON header and raw little-endian tensors, so PyTorch loads it with no sslrun code and
 * without pickle (whose loader can execute code from the file). */
#include "io/export.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The reference loader refuses larger headers; keep the same bound so we never write one. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)

static int st_fail(char *err, size_t errlen, const char *fmt, ...) SSL_PRINTF(3, 4);
static int st_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* --- writer ---------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} st_buf;

static void buf_put(st_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = ssl_malloc(cap);
        if (b->len) memcpy(q, b->p, b->len);
        ssl_free(b->p);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(st_buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_fmt(st_buf *b, const char *fmt, ...) SSL_PRINTF(2, 3);
static void buf_fmt(st_buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    SSL_ASSERT(n >= 0 && (size_t)n < sizeof tmp);
    buf_put(b, tmp, (size_t)n);
}

/* JSON string literal: state_dict keys are plain ASCII, but a stray quote must not break the
 * file. */
static void buf_json_string(st_buf *b, const char *s)
{
    buf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            buf_put(b, e, 2);
        } else if (ch < 0x20) {
            buf_fmt(b, "\\u%04x", ch);
        } else {
            buf_put(b, s, 1);
        }
    }
    buf_put(b, "\"", 1);
}

typedef struct {
    const ssl_params *src;
    const ssl_segment *seg;
    char name[128];   /* after stripping and renaming */
} st_item;

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void put_u64_le(unsigned char *out, uint64_t v)
{
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(v >> (8 * i));
}

/* Select and rename the segments of one ssl_params; appends to items. */
static int collect(const ssl_params *p, const char *what, const char *filter, const char *strip,
                   ssl_export_names names, st_item *items, int *n, char *err, size_t errlen)
{
    if (!p) return 0;
    size_t lf = filter ? strlen(filter) : 0, ls = strip ? strlen(strip) : 0;
    for (int i = 0; i < p->nseg; i++) {
        const ssl_segment *s = &p->seg[i];
        if (lf && strncmp(s->name, filter, lf) != 0) continue;
        if (!p->data || !p->be)
            return st_fail(err, errlen, "export: %s are not allocated (segment '%s')", what,
                           s->name);
        const char *name = ls && strncmp(s->name, strip, ls) == 0 ? s->name + ls : s->name;
        if (!*name)
            return st_fail(err, errlen, "export: stripping '%s' leaves '%s' without a name", strip,
                           s->name);
        st_item *it = &items[*n];
        *it = (st_item){.src = p, .seg = s};
        if (names == SSL_NAMES_TIMM) ssl_timm_name(name, it->name, sizeof it->name);
        if (!it->name[0]) snprintf(it->name, sizeof it->name, "%s", name);
        for (int j = 0; j < *n; j++)
            if (strcmp(items[j].name, it->name) == 0)
                return st_fail(err, errlen, "export: two tensors named '%s' (from '%s' and '%s')",
                               it->name, items[j].seg->name, s->name);
        (*n)++;
    }
    return 0;
}

int ssl_export_safetensors(const char *path, const ssl_params *params, const ssl_params *buffers,
                           const char *prefix_filter, const char *strip_prefix, ssl_export_names names,
                           char *err, size_t errlen)
{
    if (!path || !*path || !params) return st_fail(err, errlen, "export: no path or no params");
    int cap = params->nseg + (buffers ? buffers->nseg : 0), n = 0;
    st_item *items = ssl_malloc((size_t)(cap ? cap : 1) * sizeof *items);
    if (collect(params, "parameters", prefix_filter, strip_prefix, names, items, &n, err, errlen) ||
        collect(buffers, "buffers", prefix_filter, strip_prefix, names, items, &n, err, errlen)) {
        ssl_free(items);
        return -1;
    }
    if (n == 0) {
        ssl_free(items);
        return st_fail(err, errlen, "export: no tensor name starts with '%s'",
                       prefix_filter ? prefix_filter : "");
    }

    st_buf h = {0};
    uint64_t off = 0;
    size_t maxn = 1;
    buf_str(&h, "{");
    for (int i = 0; i < n; i++) {
        const ssl_segment *s = items[i].seg;
        uint64_t bytes = (uint64_t)s->n * sizeof(float);
        buf_json_string(&h, items[i].name);
        buf_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < s->ndim; d++) buf_fmt(&h, d ? ",%lld" : "%lld", (long long)s->shape[d]);
        buf_fmt(&h, "],\"data_offsets\":[%llu,%llu]},", (unsigned long long)off,
                (unsigned long long)(off + bytes));
        off += bytes;
        if (s->n > maxn) maxn = s->n;
    }
    buf_str(&h, "\"__metadata__\":{\"format\":\"pt\"}}");
    /* pad so the data section starts 8-byte aligned (the reference writer does the same) */
    while (h.len % 8) buf_put(&h, " ", 1);
    if (h.len > ST_MAX_HEADER) {
        ssl_free(h.p);
        ssl_free(items);
        return st_fail(err, errlen, "export: header of %zu bytes exceeds safetensors' limit",
                       h.len);
    }

    size_t plen = strlen(path);
    char *tmp = ssl_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    float *host = ssl_malloc(maxn * sizeof(float));
    int rc = 0;
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        rc = st_fail(err, errlen, "export: cannot create %s: %s", tmp, strerror(errno));
    } else {
        unsigned char len8[8];
        put_u64_le(len8, (uint64_t)h.len);
        int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(h.p, 1, h.len, fp) == h.len;
        int swap = !host_is_little_endian();
        for (int i = 0; i < n && ok; i++) {
            const ssl_segment *s = items[i].seg;
            items[i].src->be->download(host, items[i].src->data + s->off, s->n * sizeof(float));
            if (swap) {
                /* safetensors is little-endian on every host */
                unsigned char *b = (unsigned char *)host;
                for (size_t k = 0; k < s->n; k++, b += 4) {
                    unsigned char t0 = b[0], t1 = b[1];
                    b[0] = b[3];
                    b[1] = b[2];
                    b[2] = t1;
                    b[3] = t0;
                }
            }
            ok = fwrite(host, sizeof(float), s->n, fp) == s->n;
        }
        /* durable before the rename makes it visible */
        ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
        int saved = errno;
        if (fclose(fp) != 0 && ok) {
            ok = 0;
            saved = errno;
        }
        if (!ok) {
            rc = st_fail(err, errlen, "export: writing %s failed: %s", tmp, strerror(saved));
            remove(tmp);
        } else if (rename(tmp, path) != 0) {
            rc = st_fail(err, errlen, "export: cannot rename %s to %s: %s", tmp, path,
                         strerror(errno));
            remove(tmp);
        }
    }
    ssl_free(host);
    ssl_free(tmp);
    ssl_free(h.p);
    ssl_free(items);
    return rc;
}

/* --- reader ---------------------------------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t n, i;
    char *err;
    size_t errlen;
} st_json;

static void js_ws(st_json *j)
{
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
                           j->s[j->i] == '\r'))
        j->i++;
}

static int js_bad(st_json *j, const char *what)
{
    return st_fail(j->err, j->errlen, "safetensors header: %s at byte %zu", what, j->i);
}

static int js_expect(st_json *j, char ch)
{
    js_ws(j);
    if (j->i >= j->n || j->s[j->i] != ch) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", ch);
        return js_bad(j, msg);
    }
    j->i++;
    return 0;
}

/* Peek the next non-blank character; 0 at the end. */
static char js_peek(st_json *j)
{
    js_ws(j);
    return j->i < j->n ? j->s[j->i] : 0;
}

static int js_hex4(st_json *j, unsigned *v)
{
    if (j->i + 4 > j->n) return js_bad(j, "truncated \\u escape");
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char ch = j->s[j->i++];
        unsigned d = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0')
                   : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                   : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10) : 16u;
        if (d == 16) return js_bad(j, "bad \\u escape");
        *v = *v * 16 + d;
    }
    return 0;
}

/* A string into out (UTF-8, NUL-terminated); out == NULL just skips it. */
static int js_string(st_json *j, char *out, size_t cap)
{
    if (js_expect(j, '"')) return -1;
    size_t len = 0;
    for (;;) {
        if (j->i >= j->n) return js_bad(j, "unterminated string");
        unsigned char ch = (unsigned char)j->s[j->i++];
        char enc[4];
        size_t ne = 1;
        if (ch == '"') break;
        if (ch < 0x20) return js_bad(j, "control character in string");
        if (ch == '\\') {
            if (j->i >= j->n) return js_bad(j, "unterminated escape");
            char e = j->s[j->i++];
            switch (e) {
            case '"': case '\\': case '/': enc[0] = e; break;
            case 'b': enc[0] = '\b'; break;
            case 'f': enc[0] = '\f'; break;
            case 'n': enc[0] = '\n'; break;
            case 'r': enc[0] = '\r'; break;
            case 't': enc[0] = '\t'; break;
            case 'u': {
                unsigned v = 0;
                if (js_hex4(j, &v)) return -1;
                if (v >= 0xD800 && v < 0xE000)
                    return js_bad(j, "surrogate escapes are not supported");
                if (v < 0x80) enc[0] = (char)v;
                else if (v < 0x800) {
                    enc[0] = (char)(0xC0 | (v >> 6));
                    enc[1] = (char)(0x80 | (v & 0x3F));
                    ne = 2;
                } else {
                    enc[0] = (char)(0xE0 | (v >> 12));
                    enc[1] = (char)(0x80 | ((v >> 6) & 0x3F));
                    enc[2] = (char)(0x80 | (v & 0x3F));
                    ne = 3;
                }
                break;
            }
            default: return js_bad(j, "bad escape");
            }
        } else {
            enc[0] = (char)ch;
        }
        if (out) {
            if (len + ne >= cap) return js_bad(j, "string too long");
            memcpy(out + len, enc, ne);
        }
        len += ne;
    }
    if (out) out[len] = '\0';
    return 0;
}

static int js_uint(st_json *j, uint64_t *v)
{
    js_ws(j);
    if (j->i >= j->n || j->s[j->i] < '0' || j->s[j->i] > '9')
        return js_bad(j, "expected a non-negative integer");
    *v = 0;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') {
        uint64_t d = (uint64_t)(j->s[j->i++] - '0');
        if (*v > (UINT64_MAX - d) / 10) return js_bad(j, "integer overflow");
        *v = *v * 10 + d;
    }
    return 0;
}

/* Skip any JSON value (unknown fields are tolerated, as the reference loader does). */
static int js_skip(st_json *j, int depth)
{
    if (depth > 32) return js_bad(j, "nesting too deep");
    char ch = js_peek(j);
    if (ch == '"') return js_string(j, NULL, 0);
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        j->i++;
        if (js_peek(j) == close) {
            j->i++;
            return 0;
        }
        for (;;) {
            if (ch == '{') {
                if (js_string(j, NULL, 0) || js_expect(j, ':')) return -1;
            }
            if (js_skip(j, depth + 1)) return -1;
            char nx = js_peek(j);
            j->i++;
            if (nx == close) return 0;
            if (nx != ',') return js_bad(j, "expected ',' or a closing bracket");
        }
    }
    /* number, true, false, null */
    size_t start = j->i;
    while (j->i < j->n && j->s[j->i] && strchr("+-.0123456789eEtruefalsn", j->s[j->i])) j->i++;
    return j->i > start ? 0 : js_bad(j, "unexpected character");
}

/* A JSON array of non-negative integers; returns its length in *cnt (at most max). */
static int js_uint_array(st_json *j, uint64_t *v, int max, int *cnt)
{
    *cnt = 0;
    if (js_expect(j, '[')) return -1;
    if (js_peek(j) == ']') {
        j->i++;
        return 0;
    }
    for (;;) {
        if (*cnt >= max) return js_bad(j, "array too long");
        if (js_uint(j, &v[(*cnt)++])) return -1;
        char nx = js_peek(j);
        j->i++;
        if (nx == ']') return 0;
        if (nx != ',') return js_bad(j, "expected ',' or ']'");
    }
}

static int dtype_size(const char *d)
{
    static const struct { const char *name; int size; } t[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
        {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(d, t[i].name) == 0) return t[i].size;
    return 0;
}

static int js_tensor(st_json *j, ssl_safetensors_entry *e)
{
    int have = 0;
    if (js_expect(j, '{')) return -1;
    if (js_peek(j) != '}')
        for (;;) {
            char key[32];
            if (js_string(j, key, sizeof key) || js_expect(j, ':')) return -1;
            if (strcmp(key, "dtype") == 0) {
                if (js_string(j, e->dtype, sizeof e->dtype)) return -1;
                have |= 1;
            } else if (strcmp(key, "shape") == 0) {
                uint64_t v[8];
                if (js_uint_array(j, v, 8, &e->ndim)) return -1;
                for (int d = 0; d < e->ndim; d++) {
                    if (v[d] > (uint64_t)INT64_MAX) return js_bad(j, "dimension too large");
                    e->shape[d] = (int64_t)v[d];
                }
                have |= 2;
            } else if (strcmp(key, "data_offsets") == 0) {
                uint64_t v[2];
                int cnt;
                if (js_uint_array(j, v, 2, &cnt)) return -1;
                if (cnt != 2) return js_bad(j, "data_offsets needs two numbers");
                e->begin = v[0];
                e->end = v[1];
                have |= 4;
            } else if (js_skip(j, 1)) {
                return -1;
            }
            char nx = js_peek(j);
            if (nx == '}') break;
            if (nx != ',') return js_bad(j, "expected ',' or '}'");
            j->i++;
        }
    j->i++;
    if (have != 7)
        return st_fail(j->err, j->errlen, "safetensors header: tensor '%s' lacks %s", e->name,
                       !(have & 1) ? "dtype" : !(have & 2) ? "shape" : "data_offsets");
    return 0;
}

static int js_metadata(st_json *j, ssl_safetensors_header *h)
{
    if (js_expect(j, '{')) return -1;
    if (js_peek(j) == '}') {
        j->i++;
        return 0;
    }
    for (;;) {
        char key[64];
        if (js_string(j, key, sizeof key) || js_expect(j, ':')) return -1;
        /* values are strings; only "format" is kept */
        int is_format = strcmp(key, "format") == 0;
        char val[sizeof h->format];
        if (is_format ? js_string(j, val, sizeof val) : js_string(j, NULL, 0)) return -1;
        if (is_format) memcpy(h->format, val, sizeof val);
        char nx = js_peek(j);
        j->i++;
        if (nx == '}') return 0;
        if (nx != ',') return js_bad(j, "expected ',' or '}'");
    }
}

static int cmp_begin(const void *pa, const void *pb)
{
    const ssl_safetensors_entry *a = *(const ssl_safetensors_entry *const *)pa;
    const ssl_safetensors_entry *b = *(const ssl_safetensors_entry *const *)pb;
    return a->begin < b->begin ? -1 : a->begin > b->begin;
}

static int validate(ssl_safetensors_header *h, uint64_t data_bytes, const char *path, char *err,
                    size_t errlen)
{
    for (int i = 0; i < h->n; i++) {
        ssl_safetensors_entry *e = &h->entries[i];
        int sz = dtype_size(e->dtype);
        if (!sz)
            return st_fail(err, errlen, "%s: tensor '%s' has unknown dtype '%s'", path, e->name,
                           e->dtype);
        uint64_t bytes = (uint64_t)sz;
        for (int d = 0; d < e->ndim; d++) {
            if (e->shape[d] && bytes > UINT64_MAX / (uint64_t)e->shape[d])
                return st_fail(err, errlen, "%s: tensor '%s' is too large", path, e->name);
            bytes *= (uint64_t)e->shape[d];
        }
        if (e->end < e->begin || e->end - e->begin != bytes)
            return st_fail(err, errlen,
                           "%s: tensor '%s' spans [%llu, %llu) but its shape needs %llu bytes",
                           path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                           (unsigned long long)bytes);
        for (int k = 0; k < i; k++)
            if (strcmp(h->entries[k].name, e->name) == 0)
                return st_fail(err, errlen, "%s: tensor '%s' appears twice", path, e->name);
    }
    /* offsets must tile the data section: no gaps, no overlap, nothing after the last tensor */
    ssl_safetensors_entry **ord = ssl_malloc((size_t)(h->n ? h->n : 1) * sizeof *ord);
    for (int i = 0; i < h->n; i++) ord[i] = &h->entries[i];
    qsort(ord, (size_t)h->n, sizeof *ord, cmp_begin);
    uint64_t at = 0;
    int rc = 0;
    for (int i = 0; i < h->n && !rc; i++) {
        if (ord[i]->begin != at)
            rc = st_fail(err, errlen, "%s: tensor '%s' starts at %llu, expected %llu", path,
                         ord[i]->name, (unsigned long long)ord[i]->begin, (unsigned long long)at);
        at = ord[i]->end;
    }
    ssl_free(ord);
    if (!rc && at != data_bytes)
        rc = st_fail(err, errlen, "%s: tensors cover %llu data bytes, the file has %llu", path,
                     (unsigned long long)at, (unsigned long long)data_bytes);
    return rc;
}

int ssl_safetensors_read_header(const char *path, ssl_safetensors_header *h, char *err,
                                size_t errlen)
{
    memset(h, 0, sizeof *h);
    FILE *fp = fopen(path, "rb");
    if (!fp) return st_fail(err, errlen, "%s: %s", path, strerror(errno));
    unsigned char len8[8];
    long fsize = -1;
    if (fseek(fp, 0, SEEK_END) == 0) fsize = ftell(fp);
    if (fsize < 8 || fseek(fp, 0, SEEK_SET) != 0 || fread(len8, 1, 8, fp) != 8) {
        fclose(fp);
        return st_fail(err, errlen, "%s: not a safetensors file (shorter than 8 bytes)", path);
    }
    uint64_t N = 0;
    for (int i = 7; i >= 0; i--) N = N << 8 | len8[i];
    if (N > ST_MAX_HEADER || N > (uint64_t)fsize - 8) {
        fclose(fp);
        return st_fail(err, errlen, "%s: header length %llu does not fit the %ld-byte file", path,
                       (unsigned long long)N, fsize);
    }
    char *json = ssl_malloc((size_t)N + 1);
    size_t got = fread(json, 1, (size_t)N, fp);
    fclose(fp);
    if (got != N) {
        ssl_free(json);
        return st_fail(err, errlen, "%s: truncated header", path);
    }
    json[N] = '\0';
    h->header_len = N;
    h->data_start = 8 + N;

    char msg[256];
    st_json j = {json, (size_t)N, 0, msg, sizeof msg};
    int cap = 64, rc = 0;
    h->entries = ssl_calloc((size_t)cap, sizeof *h->entries);
    if (js_expect(&j, '{')) rc = -1;
    if (!rc && js_peek(&j) == '}') j.i++;
    else
        while (!rc) {
            char name[sizeof h->entries[0].name];
            if (js_string(&j, name, sizeof name) || js_expect(&j, ':')) {
                rc = -1;
                break;
            }
            if (strcmp(name, "__metadata__") == 0) {
                rc = js_metadata(&j, h);
            } else {
                if (h->n == cap) {
                    ssl_safetensors_entry *ne = ssl_calloc((size_t)cap * 2, sizeof *ne);
                    memcpy(ne, h->entries, (size_t)cap * sizeof *ne);
                    ssl_free(h->entries);
                    h->entries = ne;
                    cap *= 2;
                }
                ssl_safetensors_entry *e = &h->entries[h->n++];
                memcpy(e->name, name, sizeof e->name);
                rc = js_tensor(&j, e);
            }
            if (rc) break;
            char nx = js_peek(&j);
            j.i++;
            if (nx == '}') break;
            if (nx != ',') rc = js_bad(&j, "expected ',' or '}'");
        }
    /* only the space padding may follow the object */
    if (!rc && js_peek(&j) != 0) rc = js_bad(&j, "trailing characters after the header object");
    ssl_free(json);
    if (rc) {
        ssl_safetensors_header_free(h);
        return st_fail(err, errlen, "%s: %s", path, msg);
    }
    if (validate(h, (uint64_t)fsize - 8 - N, path, err, errlen)) {
        ssl_safetensors_header_free(h);
        return -1;
    }
    return 0;
}

void ssl_safetensors_header_free(ssl_safetensors_header *h)
{
    ssl_free(h->entries);
    memset(h, 0, sizeof *h);
}

int ssl_safetensors_find(const ssl_safetensors_header *h, const char *name)
{
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->entries[i].name, name) == 0) return i;
    return -1;
}
