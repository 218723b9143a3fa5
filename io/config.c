/* Loading, validating and writing the typed configuration (see config.h). libyaml's document API
 * keeps every node's start mark, so each message names file:line:col of the offending key or value.
 * File values, overrides and the schema's own default strings all go through one converter, so a
 * default means exactly what the same text would mean in a file. */
#include "io/config.h"

#include "framework/core/check.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define MAX_KEYS 256 /* schema entries (asserted): sizes the per-load bookkeeping */
#define GOT_MAX 60   /* bytes of an offending value quoted back in a message */
/* A config is a few KiB; refuse to slurp a data file passed by mistake. */
#define MAX_FILE_BYTES (1u << 20)
#define MSG_MAX 1024

/* Names used elsewhere (PyTorch recipes, timm, solo-learn) for our settings. They are never
 * accepted, but an unknown key close to one is answered with the key it stands for; without them
 * 'lerning_rate' is nowhere near 'lr' by edit distance. A NULL key makes the alias a section. */
static const struct {
    const char *section, *alias, *key;
} aliases[] = {
    {"optim", "optimizer", NULL},
    {"optim", "optimiser", NULL},
    {"optim", "opt", NULL},
    {"augment", "augmentation", NULL},
    {"augment", "augmentations", NULL},
    {"augment", "aug", NULL},
    {"augment", "transforms", NULL},
    {"data", "dataset", NULL},
    {"checkpoint", "ckpt", NULL},
    {"checkpoint", "checkpoints", NULL},
    {"eval", "evaluation", NULL},
    {"schedule", "scheduler", NULL},
    {"schedule", "sched", NULL},
    {"schedule", "lr_schedule", NULL},
    {"model", "backbone", NULL},
    {"model", "encoder", NULL},
    {"method", "ssl", NULL},
    {"device", "hardware", NULL},
    {"run", "output_dir", "out_dir"},
    {"run", "log_interval", "log_every"},
    {"run", "print_freq", "log_every"},
    {"run", "experiment", "name"},
    {"model", "name", "arch"},
    {"model", "backbone", "arch"},
    {"model", "encoder", "arch"},
    {"model", "image_size", "img_size"},
    {"model", "resolution", "img_size"},
    {"model", "patch", "patch_size"},
    {"method", "temp", "temperature"},
    {"method", "tau", "temperature"},
    {"method", "out_dim", "proj_dim"},
    {"method", "hidden_dim", "proj_hidden"},
    {"data", "bs", "batch_size"},
    {"data", "batch", "batch_size"},
    {"data", "num_workers", "workers"},
    {"data", "path", "train"},
    {"data", "train_path", "train"},
    {"data", "val", "test"},
    {"data", "test_path", "test"},
    {"augment", "num_views", "views"},
    {"augment", "n_views", "views"},
    {"augment", "hflip", "flip_p"},
    {"augment", "color_jitter", "jitter_p"},
    {"augment", "gray", "grayscale_p"},
    {"optim", "learning_rate", "lr"},
    {"optim", "base_lr", "lr"},
    {"optim", "wd", "weight_decay"},
    {"optim", "optimizer", "name"},
    {"optim", "type", "name"},
    {"optim", "epsilon", "eps"},
    {"optim", "trust_coefficient", "eta"},
    {"optim", "grad_clip", "clip_grad"},
    {"optim", "max_grad_norm", "clip_grad"},
    {"optim", "accumulate", "accum_steps"},
    {"schedule", "warmup", "warmup_epochs"},
    {"schedule", "min_lr", "final_lr"},
    {"schedule", "max_epochs", "epochs"},
    {"checkpoint", "save_every", "every_steps"},
    {"checkpoint", "keep_last", "keep"},
    {"eval", "k", "knn_k"},
    {"device", "device", "backend"},
    {"device", "num_threads", "threads"},
};
#define NALIASES ((int)(sizeof aliases / sizeof aliases[0]))

/* Where values come from: a file (messages "file:line:col: ..."), an override ("override 'a.b=c':
 * ...") or neither (ssl_config_set, defaults: the bare message). */
typedef struct {
    const char *file;
    const char *override;
} source;

/* Where a key was last set during one load, so that cross-key rules point at the right line. */
typedef struct {
    int seq; /* 0: still the default; larger: set later */
    source src;
    yaml_mark_t mark;
} origin;

typedef struct {
    ssl_config *c;
    origin *org; /* per schema index; NULL when not tracked */
    int seq;
    char *err;
    size_t errlen;
    char renamed[MSG_MAX]; /* the first key read by its pre-version-2 name: an error unless run.version is 1 */
} loader;

/* Scratch for one converted value before it is stored: the largest field is a path. */
typedef union {
    int i;
    double f;
    bool b;
    char s[SSL_CONFIG_PATH_MAX];
    ssl_config_floats fl;
    ssl_config_ints il;
} value;

/* ---- messages -------------------------------------------------------------------------------- */

static int vfail(char *err, size_t errlen, const source *src, const yaml_mark_t *mark,
                 const char *fmt, va_list ap)
{
    if (!err || errlen == 0) return -1;
    int w = 0;
    if (src && src->file && mark)
        w = snprintf(err, errlen, "%s:%zu:%zu: ", src->file, mark->line + 1, mark->column + 1);
    else if (src && src->file)
        w = snprintf(err, errlen, "%s: ", src->file);
    else if (src && src->override)
        w = snprintf(err, errlen, "override '%s': ", src->override);
    size_t n = w < 0 ? 0 : (size_t)w;
    if (n < errlen) vsnprintf(err + n, errlen - n, fmt, ap);
    return -1;
}

SSL_PRINTF(5, 6)
static int fail(char *err, size_t errlen, const source *src, const yaml_mark_t *mark,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, errlen, src, mark, fmt, ap);
    va_end(ap);
    return -1;
}

/* A message about key index i, located where the current load last set it (if it did). */
SSL_PRINTF(5, 6)
static int fail_key(char *err, size_t errlen, const origin *org, int i, const char *fmt, ...)
{
    const source *src = NULL;
    const yaml_mark_t *mark = NULL;
    if (org && org[i].seq) {
        src = &org[i].src;
        mark = &org[i].mark;
    }
    va_list ap;
    va_start(ap, fmt);
    vfail(err, errlen, src, mark, fmt, ap);
    va_end(ap);
    return -1;
}

static int yaml_fail(const yaml_parser_t *p, const source *src, char *err, size_t errlen)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    switch (p->error) {
    case YAML_MEMORY_ERROR: return fail(err, errlen, src, NULL, "out of memory while parsing YAML");
    case YAML_READER_ERROR:
        if (src && src->file)
            return fail(err, errlen, src, NULL, "invalid input at byte %zu: %s", p->problem_offset,
                        problem);
        return fail(err, errlen, src, NULL, "invalid value: %s", problem);
    default: break;
    }
    if (src && src->file) {
        if (p->context)
            return fail(err, errlen, src, &p->problem_mark,
                        "YAML syntax error: %s (%s at line %zu, column %zu)", problem, p->context,
                        p->context_mark.line + 1, p->context_mark.column + 1);
        return fail(err, errlen, src, &p->problem_mark, "YAML syntax error: %s", problem);
    }
    /* An override's value is one line: the column within it is all the position there is, and a
     * problem found at the end of the input is reported on a line of its own. */
    char where[64];
    if (p->problem_mark.line == 0)
        snprintf(where, sizeof where, "column %zu of the value", p->problem_mark.column + 1);
    else
        snprintf(where, sizeof where, "at the end of the value");
    return fail(err, errlen, src, NULL, "invalid YAML value: %s (%s%s%s)", problem,
                p->context ? p->context : "", p->context ? ", " : "", where);
}

/* ---- small helpers --------------------------------------------------------------------------- */

static void *field_of(ssl_config *c, const ssl_config_key *k)
{
    return (char *)c + k->offset;
}
static const void *cfield_of(const ssl_config *c, const ssl_config_key *k)
{
    return (const char *)c + k->offset;
}

static void key_name(const ssl_config_key *k, char *buf, size_t len)
{
    snprintf(buf, len, "%s.%s", k->section, k->key);
}

static int key_index(const ssl_config_key *k)
{
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    return (int)(k - s);
}

static int section_known(const char *sec)
{
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(s[i].section, sec) == 0) return 1;
    return 0;
}

/* First schema index of a section, its identity in per-load bookkeeping; -1 when unknown. */
static int section_index(const char *sec, size_t len)
{
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    for (int i = 0; i < n; i++)
        if (strlen(s[i].section) == len && memcmp(s[i].section, sec, len) == 0) return i;
    return -1;
}

static const ssl_config_key *find_key(const char *sec, const char *key)
{
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(s[i].section, sec) == 0 && strcmp(s[i].key, key) == 0) return &s[i];
    return NULL;
}

const ssl_config_key *ssl_config_find(const char *dotted_key)
{
    const char *dot = strchr(dotted_key, '.');
    char sec[64];
    if (!dot || (size_t)(dot - dotted_key) >= sizeof sec) return NULL;
    memcpy(sec, dotted_key, (size_t)(dot - dotted_key));
    sec[dot - dotted_key] = '\0';
    return find_key(sec, dot + 1);
}

/* Shortest "%g" text that reads back as the same double, so written configs round-trip exactly
 * and still show 0.3 rather than 0.29999999999999999. */
static void fmt_double(double v, char *buf, size_t len)
{
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    snprintf(buf, len, "%.*g", prec, v);
    /* %.1g writes 10 as "1e+01": integral-looking values below 1e16 read better in full. */
    for (int p = prec + 1; p <= 17 && strchr(buf, 'e') && fabs(v) >= 1 && fabs(v) < 1e16; p++)
        snprintf(buf, len, "%.*g", p, v);
}

/* Appends to a fixed buffer, truncating (always NUL-terminated). */
typedef struct {
    char *p;
    size_t len, pos;
} sbuf;

SSL_PRINTF(2, 3)
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->len == 0 || b->pos >= b->len - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->p + b->pos, b->len - b->pos, fmt, ap);
    va_end(ap);
    if (w > 0) b->pos = b->pos + (size_t)w < b->len ? b->pos + (size_t)w : b->len - 1;
}

/* Choice i of an enum ("a|b|c"); 0 when i is past the end. */
static int choice_at(const ssl_config_key *k, int i, const char **p, size_t *len)
{
    const char *s = k->choices;
    for (int j = 0; j < i; j++) {
        s = strchr(s, '|');
        if (!s) return 0;
        s++;
    }
    const char *e = strchr(s, '|');
    *p = s;
    *len = e ? (size_t)(e - s) : strlen(s);
    return 1;
}

static void choices_text(const ssl_config_key *k, char *buf, size_t len)
{
    sbuf b = {buf, len, 0};
    buf[0] = '\0';
    const char *p;
    size_t n;
    for (int i = 0; choice_at(k, i, &p, &n); i++)
        sb_printf(&b, "%s%.*s", i ? ", " : "", (int)n, p);
}

/* "> 0", ">= 1", "in [0, 1)" ...; "" when unbounded. */
static void range_text(const ssl_config_key *k, char *buf, size_t len)
{
    char lo[32], hi[32];
    fmt_double(k->lo, lo, sizeof lo);
    fmt_double(k->hi, hi, sizeof hi);
    int lo_open = (k->flags & SSL_CONFIG_LO_OPEN) != 0,
        hi_open = (k->flags & SSL_CONFIG_HI_OPEN) != 0;
    int has_lo = isfinite(k->lo), has_hi = isfinite(k->hi);
    if (has_lo && has_hi)
        snprintf(buf, len, "in %c%s, %s%c", lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
    else if (has_lo)
        snprintf(buf, len, "%s %s", lo_open ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(buf, len, "%s %s", hi_open ? "<" : "<=", hi);
    else
        buf[0] = '\0';
}

static int in_range(const ssl_config_key *k, double v)
{
    if (k->flags & SSL_CONFIG_LO_OPEN ? !(v > k->lo) : !(v >= k->lo)) return 0;
    if (k->flags & SSL_CONFIG_HI_OPEN ? !(v < k->hi) : !(v <= k->hi)) return 0;
    return 1;
}

static int utf8_valid(const unsigned char *s)
{
    while (*s) {
        int n = *s < 0x80             ? 0
                : (*s & 0xE0) == 0xC0 ? 1
                : (*s & 0xF0) == 0xE0 ? 2
                : (*s & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (n < 0 || (n == 1 && *s < 0xC2)) return 0;
        /* RFC 3629 also excludes overlong 3- and 4-byte forms, surrogates and code points above
         * U+10FFFF; YAML readers refuse them, so a value holding one could not be written back
         * (found by fuzzing the to_yaml round trip, tests/fuzz). */
        if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
            (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90) || s[0] > 0xF4)
            return 0;
        s++;
        for (int i = 0; i < n; i++, s++)
            if ((*s & 0xC0) != 0x80) return 0;
    }
    return 1;
}

/* ---- suggestions ----------------------------------------------------------------------------- */

static int tolower_ascii(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), ignoring case:
 * 'lerning' -> 'learning' is 1, 'temprature' -> 'temperature' is 1. */
static int edit_distance(const char *a, const char *b)
{
    enum { L = 64 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= L || m >= L) return INT_MAX / 2;
    int d[L + 1][L + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int ca = tolower_ascii(a[i - 1]), cb = tolower_ascii(b[j - 1]);
            int best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower_ascii(b[j - 2]) && tolower_ascii(a[i - 2]) == cb &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

/* How many edits a name may be off and still get a suggestion: none for very short names,
 * whose every neighbour would be a wild guess. */
static int edit_budget(const char *s)
{
    size_t n = strlen(s);
    return n < 3 ? 0 : n < 6 ? 1 : n < 10 ? 2 : 3;
}

typedef struct {
    int cost;
    char text[96];
} best_match;

static void consider(best_match *b, const char *name, const char *cand, int penalty,
                     const char *sec, const char *key)
{
    int d = edit_distance(name, cand);
    if (d > edit_budget(name)) return;
    int cost = 2 * d + penalty;
    if (cost >= b->cost) return;
    b->cost = cost;
    if (key)
        snprintf(b->text, sizeof b->text, "%s.%s", sec, key);
    else
        snprintf(b->text, sizeof b->text, "%s", sec);
}

/* " (did you mean 'x'?)" for an unknown key in a known section, else " (keys of 'sec': ...)". */
static void key_hint(const char *sec, const char *key, char *buf, size_t len)
{
    best_match b = {INT_MAX, ""};
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    /* The same key in another section costs one extra so that a near miss in the right section
     * wins over an exact name elsewhere only when it is strictly closer. */
    for (int i = 0; i < n; i++)
        consider(&b, key, s[i].key, strcmp(s[i].section, sec) != 0, s[i].section, s[i].key);
    for (int i = 0; i < NALIASES; i++)
        if (aliases[i].key)
            consider(&b, key, aliases[i].alias, strcmp(aliases[i].section, sec) != 0,
                     aliases[i].section, aliases[i].key);
    if (b.cost != INT_MAX) {
        snprintf(buf, len, " (did you mean '%s'?)", b.text);
        return;
    }
    sbuf sb = {buf, len, 0};
    buf[0] = '\0';
    sb_printf(&sb, " (keys of '%s':", sec);
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (strcmp(s[i].section, sec) != 0) continue;
        sb_printf(&sb, "%s %s", first ? "" : ",", s[i].key);
        first = 0;
    }
    sb_printf(&sb, ")");
}

/* " (did you mean 'optim'?)", or 'optim.lr' for a key written at the top level. */
static void section_hint(const char *sec, char *buf, size_t len)
{
    best_match b = {INT_MAX, ""};
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    for (int i = 0; i < n; i++) {
        if (i == 0 || strcmp(s[i].section, s[i - 1].section) != 0)
            consider(&b, sec, s[i].section, 0, s[i].section, NULL);
        consider(&b, sec, s[i].key, 1, s[i].section, s[i].key);
    }
    for (int i = 0; i < NALIASES; i++)
        consider(&b, sec, aliases[i].alias, aliases[i].key != NULL, aliases[i].section,
                 aliases[i].key);
    if (b.cost != INT_MAX) {
        snprintf(buf, len, " (did you mean '%s'?)", b.text);
        return;
    }
    sbuf sb = {buf, len, 0};
    buf[0] = '\0';
    sb_printf(&sb, " (sections:");
    for (int i = 0; i < n; i++)
        if (i == 0 || strcmp(s[i].section, s[i - 1].section) != 0)
            sb_printf(&sb, "%s %s", i ? "," : "", s[i].section);
    sb_printf(&sb, ")");
}

static int fail_unknown(char *err, size_t errlen, const source *src, const yaml_mark_t *mark,
                        const char *sec, const char *key)
{
    char hint[512];
    if (!section_known(sec)) {
        section_hint(sec, hint, sizeof hint);
        if (key)
            return fail(err, errlen, src, mark, "unknown section '%s' in '%s.%s'%s", sec, sec, key,
                        hint);
        return fail(err, errlen, src, mark, "unknown section '%s'%s", sec, hint);
    }
    key_hint(sec, key, hint, sizeof hint);
    return fail(err, errlen, src, mark, "unknown key '%s.%s'%s", sec, key, hint);
}

/* ---- converting one value -------------------------------------------------------------------- */

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = (const char *)n->data.scalar.value;
    return n->data.scalar.length == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* What the user wrote, for "got ...": 'abc', the quoted string '0.1', a list, ... */
static void describe(const yaml_node_t *n, const char *raw, char *buf, size_t len)
{
    if (raw) {
        snprintf(buf, len, "'%.*s%s'", GOT_MAX, raw, strlen(raw) > GOT_MAX ? "..." : "");
        return;
    }
    if (n->type == YAML_MAPPING_NODE) {
        snprintf(buf, len, "a mapping");
    } else if (n->type == YAML_SEQUENCE_NODE) {
        snprintf(buf, len, "a list");
    } else if (is_null(n)) {
        snprintf(buf, len, "an empty value");
    } else {
        const char *s = (const char *)n->data.scalar.value;
        size_t l = n->data.scalar.length;
        snprintf(buf, len, "%s'%.*s%s'",
                 n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? "" : "the quoted string ",
                 GOT_MAX, s, l > GOT_MAX ? "..." : "");
    }
}

static const char *type_phrase(ssl_config_type t)
{
    switch (t) {
    case SSL_CONFIG_INT: return "an integer";
    case SSL_CONFIG_FLOAT: return "a number";
    case SSL_CONFIG_BOOL: return "a boolean (true/false, yes/no, on/off)";
    case SSL_CONFIG_STRING: return "a string";
    case SSL_CONFIG_ENUM: return "a name";
    case SSL_CONFIG_FLOATS: return "a list of numbers";
    case SSL_CONFIG_INTS: return "a list of integers";
    }
    return "a value";
}

/* 0 ok, -1 not an integer, -2 an integer outside int. */
static int parse_int(const char *s, int *out)
{
    const char *p = s + (*s == '+' || *s == '-');
    if (*p < '0' || *p > '9') return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end) return -1;
    if (errno == ERANGE || v < INT_MIN || v > INT_MAX) return -2;
    *out = (int)v;
    return 0;
}

/* 0 ok, -1 not a number, -2 not finite. Leading space and YAML's .inf/.nan are not numbers here. */
static int parse_float(const char *s, double *out)
{
    if (!*s || *s == ' ' || *s == '\t') return -1;
    char *end;
    double v = strtod(s, &end);
    if (*end) return -1;
    if (!isfinite(v)) return -2;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = true, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = false, 0;
    }
    return -1;
}

/* One number of type t (INT or FLOAT, also list elements) from a scalar node; name is the key or
 * element ("augment.crop_scale[1]") for the message. */
static int convert_number(ssl_config_type t, const ssl_config_key *k, const char *name,
                          const yaml_node_t *n, void *out, char *msg, size_t mlen)
{
    char got[GOT_MAX + 32];
    describe(n, NULL, got, sizeof got);
    const char *what = t == SSL_CONFIG_INT ? "an integer" : "a number";
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
        is_null(n)) {
        snprintf(msg, mlen, "'%s' expects %s, got %s", name, what, got);
        return -1;
    }
    const char *s = (const char *)n->data.scalar.value;
    int rc = t == SSL_CONFIG_INT ? parse_int(s, out) : parse_float(s, out);
    if (rc == -2 && t == SSL_CONFIG_INT) {
        char range[96];
        range_text(k, range, sizeof range);
        snprintf(msg, mlen, "'%s' must be %s, got %s", name, range, s);
    } else if (rc == -2) {
        snprintf(msg, mlen, "'%s' expects a finite number, got %s", name, got);
    } else if (rc != 0) {
        snprintf(msg, mlen, "'%s' expects %s, got %s", name, what, got);
    }
    return rc ? -1 : 0;
}

/* Convert node (or, when node is NULL, the verbatim text raw) to k's type in *v. On error: the
 * message in msg and the offending node (the list element, if one) in *bad. */
static int convert(const ssl_config_key *k, const char *name, yaml_document_t *doc,
                   yaml_node_t *node, const char *raw, value *v, char *msg, size_t mlen,
                   yaml_node_t **bad)
{
    char got[GOT_MAX + 32];
    describe(node, raw, got, sizeof got);
    *bad = node;
    switch (k->type) {
    case SSL_CONFIG_INT:
    case SSL_CONFIG_FLOAT:
        return convert_number(k->type, k, name, node,
                              k->type == SSL_CONFIG_INT ? (void *)&v->i : (void *)&v->f, msg, mlen);
    case SSL_CONFIG_BOOL:
        if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
            parse_bool((const char *)node->data.scalar.value, &v->b) != 0) {
            snprintf(msg, mlen, "'%s' expects %s, got %s", name, type_phrase(k->type), got);
            return -1;
        }
        return 0;
    case SSL_CONFIG_STRING:
    case SSL_CONFIG_ENUM: {
        const char *s = raw;
        size_t len = raw ? strlen(raw) : 0;
        if (!raw) {
            if (node->type != YAML_SCALAR_NODE) {
                if (k->type == SSL_CONFIG_ENUM) {
                    char ch[256];
                    choices_text(k, ch, sizeof ch);
                    snprintf(msg, mlen, "'%s' must be one of %s, got %s", name, ch, got);
                } else {
                    snprintf(msg, mlen, "'%s' expects a string, got %s", name, got);
                }
                return -1;
            }
            s = is_null(node) ? "" : (const char *)node->data.scalar.value;
            len = is_null(node) ? 0 : node->data.scalar.length;
            if (strlen(s) != len) {
                snprintf(msg, mlen, "'%s' contains a NUL character", name);
                return -1;
            }
        }
        if (len >= k->size) {
            snprintf(msg, mlen, "'%s' is too long (%zu bytes, at most %zu)", name, len,
                     k->size - 1);
            return -1;
        }
        memcpy(v->s, s, len + 1);
        return 0;
    }
    case SSL_CONFIG_FLOATS:
    case SSL_CONFIG_INTS: {
        ssl_config_type et = k->type == SSL_CONFIG_INTS ? SSL_CONFIG_INT : SSL_CONFIG_FLOAT;
        const char *things = et == SSL_CONFIG_INT ? "integers" : "numbers";
        int count;
        if (node->type == YAML_SEQUENCE_NODE) {
            count = (int)(node->data.sequence.items.top - node->data.sequence.items.start);
        } else if (node->type == YAML_SCALAR_NODE) {
            count = is_null(node) ? 0 : 1; /* a bare scalar is a one-element list */
        } else {
            snprintf(msg, mlen, "'%s' expects %s, got %s", name, type_phrase(k->type), got);
            return -1;
        }
        if (count < k->nmin || count > k->nmax) {
            if (k->nmin == k->nmax)
                snprintf(msg, mlen, "'%s' expects %d %s, got %d", name, k->nmin, things, count);
            else if (k->nmin == 0)
                snprintf(msg, mlen, "'%s' expects at most %d %s, got %d", name, k->nmax, things,
                         count);
            else
                snprintf(msg, mlen, "'%s' expects %d to %d %s, got %d", name, k->nmin, k->nmax,
                         things, count);
            return -1;
        }
        for (int i = 0; i < count; i++) {
            yaml_node_t *item = node;
            if (node->type == YAML_SEQUENCE_NODE)
                item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
            char ename[112];
            snprintf(ename, sizeof ename, "%s[%d]", name, i);
            void *out = et == SSL_CONFIG_INT ? (void *)&v->il.v[i] : (void *)&v->fl.v[i];
            if (convert_number(et, k, ename, item, out, msg, mlen) != 0) {
                *bad = item;
                return -1;
            }
        }
        if (et == SSL_CONFIG_INT)
            v->il.n = count;
        else
            v->fl.n = count;
        return 0;
    }
    }
    return -1;
}

static void list_text(const ssl_config_key *k, const void *field, char *buf, size_t len)
{
    sbuf b = {buf, len, 0};
    buf[0] = '\0';
    sb_printf(&b, "[");
    if (k->type == SSL_CONFIG_INTS) {
        const ssl_config_ints *l = field;
        for (int i = 0; i < l->n && i < SSL_CONFIG_LIST_MAX; i++)
            sb_printf(&b, "%s%d", i ? ", " : "", l->v[i]);
    } else {
        const ssl_config_floats *l = field;
        for (int i = 0; i < l->n && i < SSL_CONFIG_LIST_MAX; i++) {
            char x[32];
            fmt_double(l->v[i], x, sizeof x);
            sb_printf(&b, "%s%s", i ? ", " : "", x);
        }
    }
    sb_printf(&b, "]");
}

static int enum_index(const ssl_config_key *k, const char *s)
{
    const char *p;
    size_t n;
    for (int i = 0; choice_at(k, i, &p, &n); i++)
        if (strlen(s) == n && memcmp(s, p, n) == 0) return i;
    return -1;
}

/* Bounds, enum membership, list shape and ordering of one stored value. On error: the message,
 * and in *elem the offending list element (-1: the value as a whole). */
static int check_value(const ssl_config_key *k, const char *name, const void *field, char *msg,
                       size_t mlen, int *elem)
{
    char range[96], x[32];
    *elem = -1;
    range_text(k, range, sizeof range);
    switch (k->type) {
    case SSL_CONFIG_INT: {
        int v = *(const int *)field;
        if (in_range(k, v)) return 0;
        snprintf(msg, mlen, "'%s' must be %s, got %d", name, range, v);
        return -1;
    }
    case SSL_CONFIG_FLOAT: {
        double v = *(const double *)field;
        if (isfinite(v) && in_range(k, v)) return 0;
        fmt_double(v, x, sizeof x);
        snprintf(msg, mlen, "'%s' must be %s, got %s", name, range, x);
        return -1;
    }
    case SSL_CONFIG_BOOL: return 0;
    case SSL_CONFIG_STRING:
    case SSL_CONFIG_ENUM: {
        const char *s = field;
        if (!memchr(s, '\0', k->size)) {
            snprintf(msg, mlen, "'%s' is not terminated within %zu bytes", name, k->size);
            return -1;
        }
        if (!utf8_valid((const unsigned char *)s)) {
            snprintf(msg, mlen, "'%s' is not valid UTF-8", name);
            return -1;
        }
        if (k->type == SSL_CONFIG_STRING) {
            if ((k->flags & SSL_CONFIG_NONEMPTY) && !*s) {
                snprintf(msg, mlen, "'%s' must not be empty", name);
                return -1;
            }
            return 0;
        }
        if (enum_index(k, s) >= 0) return 0;
        char ch[256], hint[128] = "";
        choices_text(k, ch, sizeof ch);
        best_match b = {INT_MAX, ""};
        const char *p;
        size_t n;
        for (int i = 0; choice_at(k, i, &p, &n); i++) {
            char c[SSL_CONFIG_ENUM_MAX];
            snprintf(c, sizeof c, "%.*s", (int)n, p);
            consider(&b, s, c, 0, c, NULL);
        }
        if (b.cost != INT_MAX) snprintf(hint, sizeof hint, " (did you mean '%s'?)", b.text);
        snprintf(msg, mlen, "'%s' must be one of %s, got '%.*s'%s", name, ch, GOT_MAX, s, hint);
        return -1;
    }
    case SSL_CONFIG_FLOATS:
    case SSL_CONFIG_INTS: {
        int isint = k->type == SSL_CONFIG_INTS;
        int n = isint ? ((const ssl_config_ints *)field)->n : ((const ssl_config_floats *)field)->n;
        if (n < k->nmin || n > k->nmax) {
            snprintf(msg, mlen, "'%s' expects %d to %d elements, got %d", name, k->nmin, k->nmax,
                     n);
            return -1;
        }
        for (int i = 0; i < n; i++) {
            double v = isint ? ((const ssl_config_ints *)field)->v[i]
                             : ((const ssl_config_floats *)field)->v[i];
            if (isfinite(v) && in_range(k, v)) continue;
            fmt_double(v, x, sizeof x);
            snprintf(msg, mlen, "'%s[%d]' must be %s, got %s", name, i, range, x);
            *elem = i;
            return -1;
        }
        for (int i = 1; (k->flags & SSL_CONFIG_ORDERED) && i < n; i++) {
            double a = isint ? ((const ssl_config_ints *)field)->v[i - 1]
                             : ((const ssl_config_floats *)field)->v[i - 1];
            double b = isint ? ((const ssl_config_ints *)field)->v[i]
                             : ((const ssl_config_floats *)field)->v[i];
            if (a <= b) continue;
            char l[256];
            list_text(k, field, l, sizeof l);
            if (k->nmax == 2)
                snprintf(msg, mlen, "'%s' must be [min, max] with min <= max, got %s", name, l);
            else
                snprintf(msg, mlen, "'%s' must be in non-decreasing order, got %s", name, l);
            return -1;
        }
        return 0;
    }
    }
    return 0;
}

/* ---- applying values ------------------------------------------------------------------------- */

static int set_node(loader *L, const source *src, const ssl_config_key *k, yaml_document_t *doc,
                    yaml_node_t *node, const char *raw)
{
    char name[96], msg[MSG_MAX];
    key_name(k, name, sizeof name);
    SSL_ASSERT(k->size <= sizeof(value));
    value v;
    memset(&v, 0, sizeof v); /* unused list slots stay 0, so stored structs are reproducible */
    yaml_node_t *bad = NULL;
    if (convert(k, name, doc, node, raw, &v, msg, sizeof msg, &bad) != 0)
        return fail(L->err, L->errlen, src, bad ? &bad->start_mark : NULL, "%s", msg);
    int elem;
    if (check_value(k, name, &v, msg, sizeof msg, &elem) != 0) {
        if (node && elem >= 0 && node->type == YAML_SEQUENCE_NODE)
            bad = yaml_document_get_node(doc, node->data.sequence.items.start[elem]);
        else
            bad = node;
        return fail(L->err, L->errlen, src, bad ? &bad->start_mark : NULL, "%s", msg);
    }
    memcpy(field_of(L->c, k), &v, k->size);
    if (L->org) {
        origin *o = &L->org[key_index(k)];
        o->seq = ++L->seq;
        o->src = *src;
        o->mark = node ? node->start_mark : (yaml_mark_t){0, 0, 0};
    }
    return 0;
}

/* Text as an override gives it: a string or enum not starting with a quote is taken verbatim
 * (a glob like *.h5 would otherwise be a YAML alias, and "a #b" lose its comment part); anything
 * else is parsed as a one-line YAML document. */
static int set_text(loader *L, const source *src, const ssl_config_key *k, const char *text)
{
    if ((k->type == SSL_CONFIG_STRING || k->type == SSL_CONFIG_ENUM) && text[0] != '"' &&
        text[0] != '\'')
        return set_node(L, src, k, NULL, NULL, text);
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p)) return fail(L->err, L->errlen, src, NULL, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    int rc;
    if (!yaml_parser_load(&p, &doc)) {
        rc = yaml_fail(&p, src, L->err, L->errlen);
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        /* "key=" is an empty value, which YAML reads as no document at all. */
        yaml_char_t nothing[1] = {0};
        yaml_node_t empty;
        memset(&empty, 0, sizeof empty);
        empty.type = YAML_SCALAR_NODE;
        empty.data.scalar.value = nothing;
        empty.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
        rc = set_node(L, src, k, &doc, root ? root : &empty, NULL);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    return rc;
}

/* Keys renamed by a config version bump, read by their old names in files of the older version (the
 * config stored in an older checkpoint, a recipe that says run.version: 1); at the current version
 * an old name is an error that gives the new one. */
static const struct {
    int before; /* the version that introduced the new name */
    const char *old_sec, *key, *new_sec;
} renamed_keys[] = {
    {2, "method", "temperature", "simclr"}, {2, "method", "proj_hidden", "simclr"},
    {2, "method", "proj_dim", "simclr"},    {2, "method", "proj_layers", "simclr"},
    {2, "method", "gather_negatives", "simclr"},
};

/* find_key, falling back to a renamed key's new name (remembering the first such use in L). */
static const ssl_config_key *find_key_or_renamed(loader *L, const source *src, const yaml_mark_t *mark,
                                                 const char *sec, const char *key)
{
    const ssl_config_key *k = find_key(sec, key);
    for (size_t i = 0; !k && i < sizeof renamed_keys / sizeof *renamed_keys; i++) {
        if (strcmp(sec, renamed_keys[i].old_sec) || strcmp(key, renamed_keys[i].key)) continue;
        k = find_key(renamed_keys[i].new_sec, key);
        if (k && !L->renamed[0])
            fail(L->renamed, sizeof L->renamed, src, mark,
                 "'%s.%s' is '%s.%s' since config version %d (or say run.version: %d to read this file "
                 "with its old names)", sec, key, renamed_keys[i].new_sec, key, renamed_keys[i].before,
                 renamed_keys[i].before - 1);
    }
    return k;
}

/* After a load: old key names are only valid in a file of an older version. */
static int check_renamed(const loader *L)
{
    if (!L->renamed[0] || L->c->run.version < 2) return 0;
    snprintf(L->err, L->errlen, "%s", L->renamed);
    return -1;
}

static int set_dotted(loader *L, const source *src, const char *dotted, const char *text)
{
    const char *dot = strchr(dotted, '.');
    char sec[128];
    if (!dot || dot == dotted || !dot[1] || strchr(dot + 1, '.') ||
        (size_t)(dot - dotted) >= sizeof sec) {
        if (src->override) return fail(L->err, L->errlen, src, NULL, "expected section.key=value");
        return fail(L->err, L->errlen, src, NULL, "'%s' is not a section.key name", dotted);
    }
    memcpy(sec, dotted, (size_t)(dot - dotted));
    sec[dot - dotted] = '\0';
    const ssl_config_key *k = find_key_or_renamed(L, src, NULL, sec, dot + 1);
    if (!k) return fail_unknown(L->err, L->errlen, src, NULL, sec, dot + 1);
    return set_text(L, src, k, text);
}

static int apply_override(loader *L, const char *text)
{
    source src = {NULL, text};
    const char *eq = strchr(text, '=');
    char key[256];
    if (!eq || (size_t)(eq - text) >= sizeof key)
        return fail(L->err, L->errlen, &src, NULL, "expected section.key=value");
    memcpy(key, text, (size_t)(eq - text));
    key[eq - text] = '\0';
    return set_dotted(L, &src, key, eq + 1);
}

static const char *scalar_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* One section's mapping of keys. seen[i] holds, per schema index, 1 + the line a key was set at
 * in this document, for duplicate-key messages. */
static int apply_section(loader *L, const source *src, yaml_document_t *doc, const char *sec,
                         yaml_node_t *map, size_t *seen)
{
    char got[GOT_MAX + 32];
    if (is_null(map)) return 0; /* "eval:" with nothing under it */
    if (map->type != YAML_MAPPING_NODE) {
        describe(map, NULL, got, sizeof got);
        return fail(L->err, L->errlen, src, &map->start_mark,
                    "section '%s' must be a mapping of keys (key: value lines indented under it), "
                    "got %s",
                    sec, got);
    }
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = yaml_document_get_node(doc, pr->key);
        yaml_node_t *vn = yaml_document_get_node(doc, pr->value);
        if (kn->type != YAML_SCALAR_NODE || strlen(scalar_text(kn)) != kn->data.scalar.length) {
            describe(kn, NULL, got, sizeof got);
            return fail(L->err, L->errlen, src, &kn->start_mark,
                        "keys in section '%s' must be names, got %s", sec, got);
        }
        const ssl_config_key *k = find_key_or_renamed(L, src, &kn->start_mark, sec, scalar_text(kn));
        if (!k) return fail_unknown(L->err, L->errlen, src, &kn->start_mark, sec, scalar_text(kn));
        int i = key_index(k);
        if (seen[i])
            return fail(L->err, L->errlen, src, &kn->start_mark,
                        "duplicate key '%s.%s' (first set at line %zu)", sec, k->key, seen[i]);
        seen[i] = kn->start_mark.line + 1;
        if (set_node(L, src, k, doc, vn, NULL) != 0) return -1;
    }
    return 0;
}

static int apply_doc(loader *L, const source *src, yaml_document_t *doc)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root || is_null(root)) return 0;
    char got[GOT_MAX + 32];
    if (root->type != YAML_MAPPING_NODE) {
        describe(root, NULL, got, sizeof got);
        return fail(L->err, L->errlen, src, &root->start_mark,
                    "expected a mapping of sections (run:, model:, optim:, ...), got %s", got);
    }
    int n;
    ssl_config_schema(&n);
    SSL_ASSERT(n <= MAX_KEYS);
    size_t seen[MAX_KEYS] = {0}, sec_seen[MAX_KEYS] = {0};
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = yaml_document_get_node(doc, pr->key);
        yaml_node_t *vn = yaml_document_get_node(doc, pr->value);
        if (kn->type != YAML_SCALAR_NODE || strlen(scalar_text(kn)) != kn->data.scalar.length) {
            describe(kn, NULL, got, sizeof got);
            return fail(L->err, L->errlen, src, &kn->start_mark,
                        "section names must be plain names, got %s", got);
        }
        const char *sec = scalar_text(kn);
        int si = section_index(sec, strlen(sec));
        if (si < 0) return fail_unknown(L->err, L->errlen, src, &kn->start_mark, sec, NULL);
        if (sec_seen[si])
            return fail(L->err, L->errlen, src, &kn->start_mark,
                        "duplicate section '%s' (first at line %zu)", sec, sec_seen[si]);
        sec_seen[si] = kn->start_mark.line + 1;
        if (apply_section(L, src, doc, sec, vn, seen) != 0) return -1;
    }
    return 0;
}

static int apply_text(loader *L, const char *name, const char *text, size_t len)
{
    source src = {name, NULL};
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p)) return fail(L->err, L->errlen, &src, NULL, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = 0;
    if (!yaml_parser_load(&p, &doc)) {
        rc = yaml_fail(&p, &src, L->err, L->errlen);
    } else {
        int has_root = yaml_document_get_root_node(&doc) != NULL;
        rc = apply_doc(L, &src, &doc);
        yaml_document_delete(&doc);
        /* A second document would silently be ignored by a reader that stops at the first. */
        if (rc == 0 && has_root) {
            if (!yaml_parser_load(&p, &doc)) {
                rc = yaml_fail(&p, &src, L->err, L->errlen);
            } else {
                yaml_node_t *r2 = yaml_document_get_root_node(&doc);
                if (r2)
                    rc = fail(L->err, L->errlen, &src, &r2->start_mark,
                              "a config is one YAML document; found a second one");
                yaml_document_delete(&doc);
            }
        }
    }
    yaml_parser_delete(&p);
    return rc;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= MAX_FILE_BYTES) {
                snprintf(err, errlen, "'%s' is larger than %u bytes; is it a config file?", path,
                         MAX_FILE_BYTES);
                free(buf);
                fclose(fp);
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    if (!buf) {
        snprintf(err, errlen, "cannot read '%s': out of memory", path);
        fclose(fp);
        return NULL;
    }
    if (ferror(fp)) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        free(buf);
        fclose(fp);
        return NULL;
    }
    fclose(fp);
    *len = n;
    return buf;
}

/* The key (of a, b) set last in this load: the one a cross-key message should point at. */
static int later(const origin *org, int a, int b)
{
    if (!org) return a;
    return org[b].seq > org[a].seq ? b : a;
}

static int validate(const ssl_config *c, const origin *org, char *err, size_t errlen)
{
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    char name[96], msg[MSG_MAX];
    for (int i = 0; i < n; i++) {
        int elem;
        key_name(&s[i], name, sizeof name);
        if (check_value(&s[i], name, cfield_of(c, &s[i]), msg, sizeof msg, &elem) != 0)
            return fail_key(err, errlen, org, i, "%s", msg);
    }
    int iv = key_index(ssl_config_find("run.version"));
    if (c->run.version > SSL_CONFIG_VERSION)
        return fail_key(err, errlen, org, iv,
                        "'run.version' is %d, but this sslrun reads config versions up to %d",
                        c->run.version, SSL_CONFIG_VERSION);

    const ssl_config_augment *a = &c->augment;
    if (a->mean.n != a->std.n) {
        int im = key_index(ssl_config_find("augment.mean"));
        int is = key_index(ssl_config_find("augment.std"));
        return fail_key(err, errlen, org, later(org, im, is),
                        "'augment.mean' has %d values but 'augment.std' has %d (give both, one "
                        "value per channel, or neither)",
                        a->mean.n, a->std.n);
    }
    const ssl_config_model *m = &c->model;
    if (strncmp(m->arch, "vit_", 4) == 0 && m->img_size % m->patch_size != 0) {
        int ii = key_index(ssl_config_find("model.img_size"));
        int ip = key_index(ssl_config_find("model.patch_size"));
        int ia = key_index(ssl_config_find("model.arch"));
        return fail_key(err, errlen, org, later(org, later(org, ii, ip), ia),
                        "'model.img_size' (%d) must be a multiple of 'model.patch_size' (%d) for "
                        "%s",
                        m->img_size, m->patch_size, m->arch);
    }
    /* the deepest directory sslrun writes into (out_dir/name/finetune.name; then checkpoints/
     * ckpt-<step>.h5.tmp) must fit the trainers' and checkpoints' path buffers (1024 bytes) */
    const size_t deepest = strlen(c->run.out_dir) + 1 + strlen(c->run.name) + 1 + strlen(c->finetune.name);
    if (deepest > SSL_CONFIG_RUN_DIR_MAX) {
        int io = key_index(ssl_config_find("run.out_dir"));
        int in = key_index(ssl_config_find("run.name"));
        int fn = key_index(ssl_config_find("finetune.name"));
        return fail_key(err, errlen, org, later(org, later(org, io, in), fn),
                        "'run.out_dir', 'run.name' and 'finetune.name' make a directory of %zu bytes; at most %d",
                        deepest, SSL_CONFIG_RUN_DIR_MAX);
    }
    return 0;
}

/* ---- public: loading ------------------------------------------------------------------------- */

/* The defaults parse every key's default text (libyaml for lists): done once per process, then
 * copied (a config load was ~60 parses before anything of the user's was read). */
static ssl_config defaults_cache;
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;

static void build_defaults(void)
{
    ssl_config *c = &defaults_cache;
    memset(c, 0, sizeof *c);
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    char err[MSG_MAX];
    loader L = {.c = c, .err = err, .errlen = sizeof err};
    source none = {NULL, NULL};
    for (int i = 0; i < n; i++)
        if (set_text(&L, &none, &s[i], s[i].def) != 0)
            SSL_ABORT("config schema: bad default for %s.%s: %s", s[i].section, s[i].key, err);
}

void ssl_config_defaults(ssl_config *c)
{
    pthread_once(&defaults_once, build_defaults);
    *c = defaults_cache;
}

int ssl_config_set(ssl_config *c, const char *dotted_key, const char *value, char *err,
                   size_t errlen)
{
    loader L = {.c = c, .err = err, .errlen = errlen};
    source none = {NULL, NULL};
    return set_dotted(&L, &none, dotted_key, value);
}

int ssl_config_validate(const ssl_config *c, char *err, size_t errlen)
{
    return validate(c, NULL, err, errlen);
}

int ssl_config_parse(ssl_config *c, const char *text, size_t len, const char *name, char *err,
                     size_t errlen)
{
    origin org[MAX_KEYS];
    memset(org, 0, sizeof org);
    loader L = {.c = c, .org = org, .err = err, .errlen = errlen};
    if (apply_text(&L, name ? name : "config", text, len) != 0 || check_renamed(&L)) return -1;
    return validate(c, org, err, errlen);
}

int ssl_config_load(ssl_config *c, const char *path, int noverrides, char **overrides, char *err,
                    size_t errlen)
{
    origin org[MAX_KEYS];
    memset(org, 0, sizeof org);
    loader L = {.c = c, .org = org, .err = err, .errlen = errlen};
    ssl_config_defaults(c);
    if (path && *path) {
        size_t len = 0;
        char *text = read_file(path, &len, err, errlen);
        if (!text) return -1;
        int rc = apply_text(&L, path, text, len);
        free(text);
        if (rc != 0) return -1;
    }
    for (int i = 0; i < noverrides; i++)
        if (apply_override(&L, overrides[i]) != 0) return -1;
    if (check_renamed(&L)) return -1;
    return validate(c, org, err, errlen);
}

/* ---- public: output -------------------------------------------------------------------------- */

static int key_equal(const ssl_config_key *k, const void *a, const void *b)
{
    switch (k->type) {
    case SSL_CONFIG_INT: return *(const int *)a == *(const int *)b;
    case SSL_CONFIG_FLOAT: return *(const double *)a == *(const double *)b;
    case SSL_CONFIG_BOOL: return *(const bool *)a == *(const bool *)b;
    case SSL_CONFIG_STRING:
    case SSL_CONFIG_ENUM: return strncmp(a, b, k->size) == 0;
    case SSL_CONFIG_FLOATS: {
        const ssl_config_floats *x = a, *y = b;
        if (x->n != y->n) return 0;
        for (int i = 0; i < x->n && i < SSL_CONFIG_LIST_MAX; i++)
            if (x->v[i] != y->v[i]) return 0;
        return 1;
    }
    case SSL_CONFIG_INTS: {
        const ssl_config_ints *x = a, *y = b;
        if (x->n != y->n) return 0;
        for (int i = 0; i < x->n && i < SSL_CONFIG_LIST_MAX; i++)
            if (x->v[i] != y->v[i]) return 0;
        return 1;
    }
    }
    return 0;
}

/* YAML double-quoted form: always safe to read back, whatever the characters. */
static void quote_yaml(const char *s, char *buf, size_t len)
{
    sbuf b = {buf, len, 0};
    buf[0] = '\0';
    sb_printf(&b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_printf(&b, "\\%c", *p);
        else if (*p == '\n')
            sb_printf(&b, "\\n");
        else if (*p == '\t')
            sb_printf(&b, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            sb_printf(&b, "\\x%02x", *p);
        /* Code points YAML reads as line breaks (U+0085, U+2028, U+2029: folded to a space
         * inside quotes) or refuses in a file (the other C1 controls, U+FFFE, U+FFFF) are escaped
         * too, or the text would not read back to the same string (found by fuzzing, tests/fuzz). */
        else if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
            sb_printf(&b, "\\x%02x", *++p);
        else if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
            sb_printf(&b, "\\u20%02x", p[2] - 0x80), p += 2;
        else if (p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF))
            sb_printf(&b, "\\uff%02x", p[2] - 0x80 + 0xC0), p += 2;
        else
            sb_printf(&b, "%c", *p);
    }
    sb_printf(&b, "\"");
}

static void format_value(const ssl_config_key *k, const void *f, int yaml, char *buf, size_t len)
{
    switch (k->type) {
    case SSL_CONFIG_INT: snprintf(buf, len, "%d", *(const int *)f); return;
    case SSL_CONFIG_FLOAT: fmt_double(*(const double *)f, buf, len); return;
    case SSL_CONFIG_BOOL: snprintf(buf, len, "%s", *(const bool *)f ? "true" : "false"); return;
    case SSL_CONFIG_STRING:
        if (yaml)
            quote_yaml(f, buf, len);
        else
            snprintf(buf, len, "%.*s", (int)k->size, (const char *)f);
        return;
    case SSL_CONFIG_ENUM: snprintf(buf, len, "%.*s", (int)k->size, (const char *)f); return;
    case SSL_CONFIG_FLOATS:
    case SSL_CONFIG_INTS: list_text(k, f, buf, len); return;
    }
}

void ssl_config_format(const ssl_config *c, const ssl_config_key *k, char *buf, size_t len)
{
    format_value(k, cfield_of(c, k), 0, buf, len);
}

int ssl_config_compare(const ssl_config *a, const ssl_config *b, char *first_diff, size_t len)
{
    int n, ndiff = 0;
    const ssl_config_key *s = ssl_config_schema(&n);
    for (int i = 0; i < n; i++) {
        if (key_equal(&s[i], cfield_of(a, &s[i]), cfield_of(b, &s[i]))) continue;
        if (ndiff++ == 0 && first_diff && len) key_name(&s[i], first_diff, len);
    }
    return ndiff;
}

/* Room for the longest value: a path whose every byte needs a 4-byte escape. */
#define VALUE_TEXT_MAX (4 * SSL_CONFIG_PATH_MAX + 16)

void ssl_config_print(const ssl_config *c, FILE *fp)
{
    ssl_config d;
    ssl_config_defaults(&d);
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    int w = 0, vw = 0;
    char name[96], *v = malloc(VALUE_TEXT_MAX), dv[VALUE_TEXT_MAX / 4];
    if (!v) return;
    for (int i = 0; i < n; i++) {
        key_name(&s[i], name, sizeof name);
        if ((int)strlen(name) > w) w = (int)strlen(name);
        ssl_config_format(c, &s[i], v, VALUE_TEXT_MAX);
        if ((int)strlen(v) > vw) vw = (int)strlen(v);
    }
    if (vw > 24) vw = 24; /* a long path should not push every marker off screen */
    for (int i = 0; i < n; i++) {
        key_name(&s[i], name, sizeof name);
        ssl_config_format(c, &s[i], v, VALUE_TEXT_MAX);
        if (!*v) snprintf(v, VALUE_TEXT_MAX, "\"\"");
        if (key_equal(&s[i], cfield_of(c, &s[i]), cfield_of(&d, &s[i]))) {
            fprintf(fp, "%-*s  %s\n", w, name, v);
        } else {
            ssl_config_format(&d, &s[i], dv, sizeof dv);
            fprintf(fp, "%-*s  %-*s  *  (default %s)\n", w, name, vw, v, *dv ? dv : "\"\"");
        }
    }
    free(v);
}

static const char *type_name(const ssl_config_key *k, char *buf, size_t len)
{
    const char *base[] = {"int", "float", "bool", "string", "enum", "float", "int"};
    if (k->type == SSL_CONFIG_FLOATS || k->type == SSL_CONFIG_INTS) {
        if (k->nmin == k->nmax)
            snprintf(buf, len, "%s[%d]", base[k->type], k->nmax);
        else
            snprintf(buf, len, "%s[%d..%d]", base[k->type], k->nmin, k->nmax);
        return buf;
    }
    return base[k->type];
}

void ssl_config_print_schema(FILE *fp)
{
    ssl_config d;
    ssl_config_defaults(&d);
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    int w = 0, dw = 0;
    char name[96], def[VALUE_TEXT_MAX / 4], tn[32], range[96], ch[256];
    for (int i = 0; i < n; i++) {
        key_name(&s[i], name, sizeof name);
        if ((int)strlen(name) > w) w = (int)strlen(name);
        format_value(&s[i], cfield_of(&d, &s[i]), 1, def, sizeof def);
        if ((int)strlen(def) > dw) dw = (int)strlen(def);
    }
    fprintf(fp, "%-*s  %-11s  %-*s  %s\n", w, "key", "type", dw, "default", "meaning");
    for (int i = 0; i < n; i++) {
        const ssl_config_key *k = &s[i];
        key_name(k, name, sizeof name);
        format_value(k, cfield_of(&d, k), 1, def, sizeof def);
        fprintf(fp, "%-*s  %-11s  %-*s  %s", w, name, type_name(k, tn, sizeof tn), dw, def, k->doc);
        range_text(k, range, sizeof range);
        switch (k->type) {
        case SSL_CONFIG_INT:
        case SSL_CONFIG_FLOAT:
            if (*range) fprintf(fp, " (%s)", range);
            break;
        case SSL_CONFIG_ENUM:
            choices_text(k, ch, sizeof ch);
            fprintf(fp, " (one of %s)", ch);
            break;
        case SSL_CONFIG_FLOATS:
        case SSL_CONFIG_INTS:
            if (*range)
                fprintf(fp, " (each %s%s)", range,
                        k->flags & SSL_CONFIG_ORDERED ? ", min <= max" : "");
            break;
        case SSL_CONFIG_STRING:
            if (k->flags & SSL_CONFIG_NONEMPTY) fprintf(fp, " (non-empty)");
            break;
        case SSL_CONFIG_BOOL: break;
        }
        fputc('\n', fp);
    }
}

char *ssl_config_to_yaml(const ssl_config *c)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *fp = open_memstream(&buf, &size);
    if (!fp) return NULL;
    char *v = malloc(VALUE_TEXT_MAX);
    if (!v) {
        fclose(fp);
        free(buf);
        return NULL;
    }
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    fprintf(fp, "# sslrun configuration, resolved (defaults < file < overrides).\n"
                "# Every key with its meaning and bounds: sslrun config\n");
    for (int i = 0; i < n; i++) {
        const ssl_config_key *k = &s[i];
        if (i == 0 || strcmp(k->section, s[i - 1].section) != 0) fprintf(fp, "%s:\n", k->section);
        format_value(k, cfield_of(c, k), 1, v, VALUE_TEXT_MAX);
        int col = 2 + (int)strlen(k->key) + 2 + (int)strlen(v);
        fprintf(fp, "  %s: %s%*s# %s\n", k->key, v, col < 38 ? 40 - col : 2, "", k->doc);
    }
    free(v);
    if (fclose(fp) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int ssl_config_write_yaml(const ssl_config *c, const char *path, char *err, size_t errlen)
{
    char *text = ssl_config_to_yaml(c);
    if (!text) {
        snprintf(err, errlen, "cannot write '%s': out of memory", path);
        return -1;
    }
    FILE *fp = fopen(path, "w");
    if (!fp) {
        snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        free(text);
        return -1;
    }
    size_t len = strlen(text);
    int bad = fwrite(text, 1, len, fp) != len;
    int e = errno;
    if (fclose(fp) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    free(text);
    if (bad) {
        snprintf(err, errlen, "cannot write '%s': %s", path, strerror(e));
        return -1;
    }
    return 0;
}
