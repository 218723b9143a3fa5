/* Strict unpickler for CIFAR's Python release (pickle_cifar.h): a tiny stack machine over the
 * protocol-2 opcodes those files use, with values in a pool freed at the end. It runs no code: the
 * only globals it accepts are numpy's array and dtype reconstructors and _codecs.encode, each
 * evaluated here for exactly the arguments CIFAR's files give them. */
#include "io/pickle_cifar.h"

#include "framework/core/check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE_BYTES ((long)1 << 31)
#define MAX_MEMO (1 << 20)

typedef enum { V_MARK, V_NONE, V_INT, V_BYTES, V_TEXT, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_ARRAY, V_DTYPE } vkind;
enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_ENCODE };

typedef struct val {
    vkind k;
    int64_t i;            /* INT; GLOBAL: G_*; ARRAY/DTYPE: 1 once BUILD gave it its state */
    const uint8_t *s;     /* BYTES/TEXT (TEXT: UTF-8); ARRAY: its data */
    size_t len;
    struct val **items;   /* TUPLE/LIST; DICT: key, value, key, value... */
    size_t n, cap;
    int64_t rows, cols;   /* ARRAY */
} val;

typedef struct {
    const uint8_t *b;
    size_t len, at, op_at; /* op_at: offset of the opcode being run */
    int op;
    const char *name;
    char *err;
    size_t errlen;
    int failed;
    val **pool;
    size_t npool, poolcap;
    uint8_t **owned;       /* buffers made by _codecs.encode */
    size_t nowned, ownedcap;
    val **stack;
    size_t sp, stackcap;
    val **memo;
    size_t memocap;
} vm;

static void fail(vm *m, const char *fmt, ...) SSL_PRINTF(2, 3);
static void fail(vm *m, const char *fmt, ...)
{
    if (m->failed) return;
    m->failed = 1;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (m->op >= 0)
        snprintf(m->err, m->errlen, "%s: pickle opcode 0x%02x ('%c') at offset %zu: %s", m->name, m->op,
                 m->op >= 0x20 && m->op < 0x7f ? m->op : '?', m->op_at, why);
    else
        snprintf(m->err, m->errlen, "%s: %s", m->name, why);
}

static void *push_ptr(void *v, size_t *n, size_t *cap, size_t elem, const void *item)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        v = realloc(v, *cap * elem);
        SSL_ASSERTF(v != NULL, "out of memory unpickling");
    }
    memcpy((char *)v + *n * elem, item, elem);
    (*n)++;
    return v;
}

static val *mk(vm *m, vkind k)
{
    val *v = calloc(1, sizeof *v);
    SSL_ASSERTF(v != NULL, "out of memory unpickling");
    v->k = k;
    m->pool = push_ptr(m->pool, &m->npool, &m->poolcap, sizeof v, &v);
    return v;
}

static void add(val *c, val *item)
{
    c->items = push_ptr(c->items, &c->n, &c->cap, sizeof item, &item);
}

static void push(vm *m, val *v)
{
    m->stack = push_ptr(m->stack, &m->sp, &m->stackcap, sizeof v, &v);
}

static val *pop(vm *m)
{
    if (m->sp == 0 || m->stack[m->sp - 1]->k == V_MARK) {
        fail(m, "stack underflow");
        return NULL;
    }
    return m->stack[--m->sp];
}

static val *top(vm *m)
{
    if (m->sp == 0 || m->stack[m->sp - 1]->k == V_MARK) {
        fail(m, "stack underflow");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* The items above the topmost mark: *first indexes them in the stack; the mark is removed later. */
static int to_mark(vm *m, size_t *first)
{
    for (size_t i = m->sp; i-- > 0;)
        if (m->stack[i]->k == V_MARK) {
            *first = i + 1;
            return 0;
        }
    fail(m, "no MARK on the stack");
    return -1;
}

static const uint8_t *take(vm *m, size_t n)
{
    if (n > m->len - m->at) {
        fail(m, "needs %zu bytes, the file has %zu left (truncated?)", n, m->len - m->at);
        return NULL;
    }
    const uint8_t *p = m->b + m->at;
    m->at += n;
    return p;
}

static int64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return (int64_t)v;
}

static int str_is(const val *v, const char *s)
{
    return v && (v->k == V_BYTES || v->k == V_TEXT) && v->len == strlen(s) && !memcmp(v->s, s, v->len);
}

static int is_int(const val *v, int64_t want) { return v && v->k == V_INT && v->i == want; }

/* GLOBAL "module\nname\n": one of the four this reader evaluates. */
static void op_global(vm *m)
{
    const uint8_t *mod = m->b + m->at, *nl = memchr(mod, '\n', m->len - m->at);
    const uint8_t *name = nl ? nl + 1 : NULL, *nl2 = name ? memchr(name, '\n', m->len - (size_t)(name - m->b)) : NULL;
    if (!nl2) {
        fail(m, "truncated global name");
        return;
    }
    char g[256];
    snprintf(g, sizeof g, "%.*s.%.*s", (int)(nl - mod < 100 ? nl - mod : 100), (const char *)mod,
             (int)(nl2 - name < 100 ? nl2 - name : 100), (const char *)name);
    m->at = (size_t)(nl2 + 1 - m->b);
    static const struct {
        const char *name;
        int id;
    } ok[] = {{"numpy.core.multiarray._reconstruct", G_RECONSTRUCT}, {"numpy._core.multiarray._reconstruct", G_RECONSTRUCT},
              {"numpy.ndarray", G_NDARRAY}, {"numpy.dtype", G_DTYPE}, {"_codecs.encode", G_ENCODE}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(g, ok[i].name)) {
            val *v = mk(m, V_GLOBAL);
            v->i = ok[i].id;
            push(m, v);
            return;
        }
    fail(m, "global %s is not one a CIFAR batch uses", g);
}

/* _codecs.encode(text, 'latin1'): Python 3's protocol-2 form of bytes; code points must be < 256. */
static val *encode_latin1(vm *m, const val *text)
{
    uint8_t *out = malloc(text->len ? text->len : 1);
    SSL_ASSERTF(out != NULL, "out of memory unpickling");
    m->owned = push_ptr(m->owned, &m->nowned, &m->ownedcap, sizeof out, &out);
    size_t n = 0;
    for (size_t i = 0; i < text->len; n++) {
        const uint8_t c = text->s[i];
        if (c < 0x80) {
            out[n] = c, i++;
        } else if ((c & 0xe0) == 0xc0 && c <= 0xc3 && i + 1 < text->len && (text->s[i + 1] & 0xc0) == 0x80) {
            out[n] = (uint8_t)((c & 0x03) << 6 | (text->s[i + 1] & 0x3f)), i += 2;
        } else {
            fail(m, "_codecs.encode: text byte %zu is not a latin-1 code point in UTF-8", i);
            return NULL;
        }
    }
    val *v = mk(m, V_BYTES);
    v->s = out;
    v->len = n;
    return v;
}

static void op_reduce(vm *m)
{
    val *args = pop(m), *fn = pop(m);
    if (!fn) return;
    if (fn->k != V_GLOBAL || args->k != V_TUPLE) {
        fail(m, "REDUCE of something other than an accepted global with a tuple");
        return;
    }
    val *r = NULL;
    if (fn->i == G_ENCODE && args->n == 2 && args->items[0]->k == V_TEXT && str_is(args->items[1], "latin1")) {
        r = encode_latin1(m, args->items[0]);
    } else if (fn->i == G_RECONSTRUCT && args->n == 3 && args->items[0]->k == V_GLOBAL &&
               args->items[0]->i == G_NDARRAY && args->items[1]->k == V_TUPLE && args->items[1]->n == 1 &&
               is_int(args->items[1]->items[0], 0) && str_is(args->items[2], "b")) {
        r = mk(m, V_ARRAY);
    } else if (fn->i == G_DTYPE && args->n == 3 && args->items[1]->k == V_INT && args->items[2]->k == V_INT) {
        if (!str_is(args->items[0], "u1")) {
            fail(m, "numpy dtype is not u1 (uint8)");
            return;
        }
        r = mk(m, V_DTYPE);
    } else {
        fail(m, "unexpected arguments to %s", fn->i == G_ENCODE ? "_codecs.encode" : fn->i == G_DTYPE ? "numpy.dtype"
                                                                              : "numpy's _reconstruct");
        return;
    }
    if (r) push(m, r);
}

/* BUILD: the state of a dtype (version 3, byte order '|') or an array (version 1, 2-D shape,
 * uint8 dtype, C order, the raw bytes). */
static void op_build(vm *m)
{
    val *st = pop(m), *obj = top(m);
    if (!obj) return;
    if (obj->k == V_DTYPE && !obj->i && st->k == V_TUPLE && st->n == 8 && is_int(st->items[0], 3) &&
        str_is(st->items[1], "|")) {
        obj->i = 1;
        return;
    }
    if (obj->k != V_ARRAY || obj->i || st->k != V_TUPLE || st->n != 5 || !is_int(st->items[0], 1)) {
        fail(m, "BUILD of something other than a numpy array or uint8 dtype");
        return;
    }
    const val *shape = st->items[1], *dt = st->items[2], *fortran = st->items[3], *data = st->items[4];
    if (shape->k != V_TUPLE || shape->n != 2 || shape->items[0]->k != V_INT || shape->items[1]->k != V_INT ||
        shape->items[0]->i < 0 || shape->items[1]->i < 0 || shape->items[0]->i > ((int64_t)1 << 40) ||
        shape->items[1]->i > ((int64_t)1 << 20)) {
        fail(m, "numpy array shape is not 2-D");
        return;
    }
    if (dt->k != V_DTYPE || !dt->i || !is_int(fortran, 0) || data->k != V_BYTES) {
        fail(m, "numpy array state is not (uint8 dtype, C order, raw bytes)");
        return;
    }
    if ((uint64_t)shape->items[0]->i * (uint64_t)shape->items[1]->i != data->len) {
        fail(m, "numpy array of %lld x %lld has %zu bytes of data", (long long)shape->items[0]->i,
             (long long)shape->items[1]->i, data->len);
        return;
    }
    obj->i = 1;
    obj->rows = shape->items[0]->i;
    obj->cols = shape->items[1]->i;
    obj->s = data->s;
    obj->len = data->len;
}

static void op_memo(vm *m, size_t idx, int put)
{
    if (idx >= MAX_MEMO) {
        fail(m, "memo index %zu is beyond %d", idx, MAX_MEMO);
        return;
    }
    if (put) {
        val *v = top(m);
        if (!v) return;
        if (idx >= m->memocap) {
            size_t cap = m->memocap ? m->memocap : 64;
            while (cap <= idx) cap *= 2;
            m->memo = realloc(m->memo, cap * sizeof *m->memo);
            SSL_ASSERTF(m->memo != NULL, "out of memory unpickling");
            memset(m->memo + m->memocap, 0, (cap - m->memocap) * sizeof *m->memo);
            m->memocap = cap;
        }
        m->memo[idx] = v;
    } else if (idx >= m->memocap || !m->memo[idx]) {
        fail(m, "memo index %zu was never stored", idx);
    } else {
        push(m, m->memo[idx]);
    }
}

static void op_string(vm *m, vkind k, size_t lenbytes)
{
    const uint8_t *p = take(m, lenbytes);
    if (!p) return;
    int64_t n = le(p, (int)lenbytes);
    if (lenbytes == 4 && k == V_BYTES && n > INT32_MAX) n = -1; /* BINSTRING's length is signed */
    if (n < 0) {
        fail(m, "negative length");
        return;
    }
    const uint8_t *s = take(m, (size_t)n);
    if (!s) return;
    val *v = mk(m, k);
    v->s = s;
    v->len = (size_t)n;
    push(m, v);
}

/* Tuple of the items above the mark (mark_at: the mark's index), or of the top n. */
static void make_tuple(vm *m, size_t first, int drop_mark)
{
    val *t = mk(m, V_TUPLE);
    for (size_t i = first; i < m->sp; i++) add(t, m->stack[i]);
    m->sp = first - (drop_mark ? 1 : 0);
    push(m, t);
}

static int step(vm *m, val *mark)
{
    m->op_at = m->at;
    m->op = m->b[m->at++];
    const uint8_t *p;
    size_t first;
    val *v, *c;
    switch (m->op) {
    case 0x80: /* PROTO */
        if ((p = take(m, 1)) && (m->op_at != 0 || *p != 2)) fail(m, "protocol %d; CIFAR's files are protocol 2", *p);
        break;
    case '}': push(m, mk(m, V_DICT)); break;
    case ']': push(m, mk(m, V_LIST)); break;
    case ')': push(m, mk(m, V_TUPLE)); break;
    case '(': push(m, mark); break;
    case 'N': push(m, mk(m, V_NONE)); break;
    case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
        v = mk(m, V_INT);
        v->i = m->op == 0x88;
        push(m, v);
        break;
    case 'K': case 'M': case 'J': { /* BININT1, BININT2, BININT (signed) */
        const int n = m->op == 'K' ? 1 : m->op == 'M' ? 2 : 4;
        if (!(p = take(m, (size_t)n))) break;
        v = mk(m, V_INT);
        v->i = n == 4 ? (int64_t)(int32_t)(uint32_t)le(p, 4) : le(p, n);
        push(m, v);
        break;
    }
    case 'U': op_string(m, V_BYTES, 1); break; /* SHORT_BINSTRING */
    case 'T': op_string(m, V_BYTES, 4); break; /* BINSTRING */
    case 'X': op_string(m, V_TEXT, 4); break;  /* BINUNICODE */
    case 'q': if ((p = take(m, 1))) op_memo(m, p[0], 1); break;
    case 'r': if ((p = take(m, 4))) op_memo(m, (size_t)le(p, 4), 1); break;
    case 'h': if ((p = take(m, 1))) op_memo(m, p[0], 0); break;
    case 'j': if ((p = take(m, 4))) op_memo(m, (size_t)le(p, 4), 0); break;
    case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
        const size_t n = (size_t)(m->op - 0x84);
        if (m->sp < n) {
            fail(m, "stack underflow");
            break;
        }
        for (size_t i = m->sp - n; i < m->sp; i++)
            if (m->stack[i]->k == V_MARK) fail(m, "MARK inside a tuple");
        if (!m->failed) make_tuple(m, m->sp - n, 0);
        break;
    }
    case 't': if (to_mark(m, &first) == 0) make_tuple(m, first, 1); break;
    case 'c': op_global(m); break;
    case 'R': op_reduce(m); break;
    case 'b': op_build(m); break;
    case 'a': /* APPEND */
        v = pop(m);
        c = top(m);
        if (c && c->k != V_LIST) fail(m, "APPEND to a non-list");
        else if (c) add(c, v);
        break;
    case 'e': /* APPENDS */
        if (to_mark(m, &first) < 0) break;
        c = first >= 2 ? m->stack[first - 2] : NULL;
        if (!c || c->k != V_LIST) {
            fail(m, "APPENDS to a non-list");
            break;
        }
        for (size_t i = first; i < m->sp; i++) add(c, m->stack[i]);
        m->sp = first - 1;
        break;
    case 's': case 'u': { /* SETITEM, SETITEMS */
        if (m->op == 's') first = m->sp >= 2 ? m->sp - 2 : 0;
        else if (to_mark(m, &first) < 0) break;
        const size_t dict_at = first - (m->op == 'u' ? 2 : 1);
        c = first >= (m->op == 'u' ? 2u : 1u) ? m->stack[dict_at] : NULL;
        if (m->sp < 2 && m->op == 's') c = NULL;
        if (!c || c->k != V_DICT || (m->sp - first) % 2) {
            fail(m, "SETITEM%s on a non-dict or with an odd number of items", m->op == 'u' ? "S" : "");
            break;
        }
        for (size_t i = first; i < m->sp; i++) {
            if (i % 2 == first % 2 && m->stack[i]->k != V_BYTES) fail(m, "dict key is not a byte string");
            if (m->stack[i]->k == V_MARK) fail(m, "MARK inside SETITEMS");
            add(c, m->stack[i]);
        }
        m->sp = dict_at + 1;
        break;
    }
    case '.': return 1; /* STOP */
    default: fail(m, "not an opcode a CIFAR batch uses"); break;
    }
    return 0;
}

static const val *dict_get(const val *d, const char *key)
{
    for (size_t i = 0; i + 1 < d->n; i += 2)
        if (str_is(d->items[i], key)) return d->items[i + 1];
    return NULL;
}

void ssl_cifar_batch_free(ssl_cifar_batch *b)
{
    ssl_free(b->data);
    ssl_free(b->labels);
    memset(b, 0, sizeof *b);
}

int ssl_pickle_cifar_parse(const uint8_t *buf, size_t len, const char *name, const char *labels_key,
                           int num_classes, ssl_cifar_batch *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    vm m = {.b = buf, .len = len, .name = name, .err = err, .errlen = errlen, .op = -1};
    val mark = {.k = V_MARK};
    int stopped = 0;
    if (len < 2 || buf[0] != 0x80 || buf[1] != 2) fail(&m, "not a protocol-2 pickle (starts %02x %02x)", len ? buf[0] : 0,
                                                        len > 1 ? buf[1] : 0);
    while (!m.failed && !stopped) {
        if (m.at >= m.len) {
            m.op = -1;
            fail(&m, "ends at offset %zu without a STOP opcode (truncated?)", m.at);
            break;
        }
        stopped = step(&m, &mark);
    }
    if (!m.failed && m.at != m.len) fail(&m, "%zu bytes after the STOP opcode", m.len - m.at);
    m.op = -1;
    const val *d = !m.failed && m.sp == 1 ? m.stack[0] : NULL;
    if (!m.failed && (!d || d->k != V_DICT)) fail(&m, "the pickle is not one dict");
    const val *data = d ? dict_get(d, "data") : NULL, *labels = d ? dict_get(d, labels_key) : NULL;
    if (!m.failed && (!data || data->k != V_ARRAY || !data->i))
        fail(&m, "no numpy array under the key b'data'");
    if (!m.failed && data->cols != SSL_CIFAR_IMAGE_BYTES)
        fail(&m, "b'data' is %lld x %lld, expected N x %d", (long long)data->rows, (long long)data->cols,
             SSL_CIFAR_IMAGE_BYTES);
    if (!m.failed && (!labels || labels->k != V_LIST)) fail(&m, "no list under the key b'%s'", labels_key);
    if (!m.failed && labels->n != (size_t)data->rows)
        fail(&m, "%zu labels in b'%s' for %lld images", labels->n, labels_key, (long long)data->rows);
    for (size_t i = 0; !m.failed && i < labels->n; i++)
        if (labels->items[i]->k != V_INT || labels->items[i]->i < 0 || labels->items[i]->i >= num_classes)
            fail(&m, "label %zu in b'%s' is not an int in [0, %d)", i, labels_key, num_classes);
    if (!m.failed) {
        out->n = data->rows;
        out->data = ssl_malloc(data->len ? data->len : 1);
        memcpy(out->data, data->s, data->len);
        out->labels = ssl_malloc((labels->n ? labels->n : 1) * sizeof *out->labels);
        for (size_t i = 0; i < labels->n; i++) out->labels[i] = (int32_t)labels->items[i]->i;
    }
    for (size_t i = 0; i < m.npool; i++) {
        free(m.pool[i]->items);
        free(m.pool[i]);
    }
    for (size_t i = 0; i < m.nowned; i++) free(m.owned[i]);
    free(m.pool);
    free(m.owned);
    free(m.stack);
    free(m.memo);
    return m.failed ? -1 : 0;
}

int ssl_pickle_cifar_read(const char *path, const char *labels_key, int num_classes, ssl_cifar_batch *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    uint8_t *buf = NULL;
    int rc = -1;
    if (n < 0 || n > MAX_FILE_BYTES) {
        snprintf(err, errlen, "%s: cannot read (size %ld)", path, n);
    } else {
        rewind(f);
        buf = ssl_malloc((size_t)n + 1);
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) snprintf(err, errlen, "%s: read error", path);
        else rc = ssl_pickle_cifar_parse(buf, (size_t)n, path, labels_key, num_classes, out, err, errlen);
    }
    ssl_free(buf);
    fclose(f);
    return rc;
}
