/* safetensors export: the raw bytes follow the format (u64 LE header length, space-padded JSON with
 * dtype/shape/data_offsets, metadata, little-endian data in header order), values round trip
 * bit-exactly, prefix filtering and stripping rename as documented, and bad requests or corrupt
 * files come back as messages. The header is checked both as text and through the reader. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/backend/backend.h"
#include "framework/core/check.h"
#include "io/export.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, fp);
    fclose(fp);
    b[*n] = 0;
    return b;
}

static void spit(const char *path, const void *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    SSL_ASSERT(fp);
    SSL_ASSERT(fwrite(b, 1, n, fp) == n);
    fclose(fp);
}

/* a tensor of ndim dims; trailing sizes beyond ndim are ignored */
static void add(ssl_params *p, const char *name, int ndim, int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t s[4] = {a, b, c, d};
    ssl_params_add(p, name, ndim, s, 0, SSL_INIT_NORMAL, 1.0f);
}

/* Every entry of the reader's header matches a segment, in order, with its bytes in the file. */
static void check_entries(const char *path, const ssl_params *const *srcs, const char *const *names,
                          const int *segs, const int *src_of, int n)
{
    char err[512];
    ssl_safetensors_header h;
    SSL_EXPECT(ssl_safetensors_read_header(path, &h, err, sizeof err) == 0, "read: %s", err);
    SSL_EXPECT(h.n == n, "%d entries, want %d", h.n, n);
    SSL_EXPECT(strcmp(h.format, "pt") == 0, "metadata format '%s'", h.format);
    SSL_EXPECT(h.header_len % 8 == 0 && h.data_start == 8 + h.header_len, "header length %llu",
               (unsigned long long)h.header_len);
    size_t fsize;
    unsigned char *file = slurp(path, &fsize);
    uint64_t at = 0;
    for (int i = 0; i < n && i < h.n; i++) {
        const ssl_safetensors_entry *e = &h.entries[i];
        const ssl_segment *s = &srcs[src_of[i]]->seg[segs[i]];
        SSL_EXPECT(strcmp(e->name, names[i]) == 0, "entry %d is '%s', want '%s'", i, e->name, names[i]);
        SSL_EXPECT(strcmp(e->dtype, "F32") == 0, "%s: dtype %s", e->name, e->dtype);
        SSL_EXPECT(e->ndim == s->ndim, "%s: ndim %d want %d", e->name, e->ndim, s->ndim);
        for (int d = 0; d < s->ndim && d < e->ndim; d++)
            SSL_EXPECT(e->shape[d] == s->shape[d], "%s: dim %d is %lld", e->name, d, (long long)e->shape[d]);
        /* header order is data order: contiguous, ascending */
        SSL_EXPECT(e->begin == at && e->end == at + s->n * 4, "%s: offsets [%llu, %llu), expected start %llu",
                   e->name, (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)at);
        at = e->end;
        /* little-endian fp32 bytes, independent of the host's order */
        const unsigned char *b = file + h.data_start + e->begin;
        size_t bad = 0;
        for (size_t k = 0; k < s->n; k++) {
            uint32_t u = (uint32_t)b[4 * k] | (uint32_t)b[4 * k + 1] << 8 | (uint32_t)b[4 * k + 2] << 16 |
                         (uint32_t)b[4 * k + 3] << 24;
            float v;
            memcpy(&v, &u, 4);
            float want = srcs[src_of[i]]->data[s->off + k];
            bad += memcmp(&v, &want, 4) != 0;
        }
        SSL_EXPECT(bad == 0, "%s: %zu values differ", e->name, bad);
    }
    SSL_EXPECT(h.data_start + at == fsize, "data ends at %llu, file has %zu bytes",
               (unsigned long long)(h.data_start + at), fsize);
    free(file);
    ssl_safetensors_header_free(&h);
}

static void test_format_and_roundtrip(const char *dir)
{
    const ssl_backend *be = ssl_backend_cpu();
    ssl_params p, b;
    ssl_params_init(&p);
    ssl_params_init(&b);
    add(&p, "backbone.conv.weight", 4, 4, 3, 2, 5);   /* 120: 1-4 dims */
    add(&p, "backbone.cls", 3, 1, 1, 7, 1);
    add(&p, "backbone.fc.weight", 2, 3, 5, 1, 1);
    add(&p, "backbone.bn.weight", 1, 4, 1, 1, 1);
    add(&p, "head.0.weight", 2, 2, 3, 1, 1);
    add(&p, "odd\"na\\me", 1, 1, 1, 1, 1);                 /* JSON escaping */
    add(&b, "backbone.bn.running_mean", 1, 4, 1, 1, 1);
    add(&b, "backbone.bn.running_var", 1, 4, 1, 1, 1);
    ssl_params_alloc(&p, be, 1);
    ssl_params_alloc(&b, be, 0);
    ssl_params_init_values(&p, 5);
    ssl_params_init_values(&b, 6);

    char path[512], tmp[600], err[512];
    snprintf(path, sizeof path, "%s/all.safetensors", dir);
    SSL_EXPECT(ssl_export_safetensors(path, &p, &b, NULL, NULL, SSL_NAMES_TORCHVISION, err, sizeof err) == 0, "export: %s", err);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    SSL_EXPECT(access(tmp, F_OK) != 0, "the .tmp file must be renamed away");

    /* raw bytes: the header as text */
    size_t fsize;
    unsigned char *file = slurp(path, &fsize);
    SSL_ASSERT(file && fsize > 8);
    uint64_t N = 0;
    for (int i = 7; i >= 0; i--) N = N << 8 | file[i];
    SSL_EXPECT(N % 8 == 0 && 8 + N <= fsize, "header length %llu", (unsigned long long)N);
    char *json = malloc(N + 1);
    memcpy(json, file + 8, N);
    json[N] = 0;
    size_t end = N;
    while (end > 0 && json[end - 1] == ' ') end--;
    SSL_EXPECT(json[0] == '{' && end > 0 && json[end - 1] == '}' && N - end < 8,
               "header must be one object padded with < 8 spaces: '%s'", json);
    SSL_EXPECT(strstr(json, "\"backbone.conv.weight\":{\"dtype\":\"F32\",\"shape\":[4,3,2,5],"
                            "\"data_offsets\":[0,480]}"), "conv entry text: %s", json);
    SSL_EXPECT(strstr(json, "\"backbone.cls\":{\"dtype\":\"F32\",\"shape\":[1,1,7],"
                            "\"data_offsets\":[480,508]}"), "cls entry text: %s", json);
    SSL_EXPECT(strstr(json, "\"odd\\\"na\\\\me\":"), "escaped name: %s", json);
    SSL_EXPECT(strstr(json, "\"__metadata__\":{\"format\":\"pt\"}"), "metadata: %s", json);
    uint64_t total = 0;
    for (int i = 0; i < p.nseg; i++) total += p.seg[i].n * 4;
    for (int i = 0; i < b.nseg; i++) total += b.seg[i].n * 4;
    SSL_EXPECT(fsize == 8 + N + total, "file size %zu, want %llu", fsize, (unsigned long long)(8 + N + total));
    free(json);
    free(file);

    /* through the reader: all segments, params then buffers */
    const ssl_params *srcs[2] = {&p, &b};
    const char *names[8] = {"backbone.conv.weight", "backbone.cls", "backbone.fc.weight",
                            "backbone.bn.weight", "head.0.weight", "odd\"na\\me",
                            "backbone.bn.running_mean", "backbone.bn.running_var"};
    const int segs[8] = {0, 1, 2, 3, 4, 5, 0, 1}, src_of[8] = {0, 0, 0, 0, 0, 0, 1, 1};
    check_entries(path, srcs, names, segs, src_of, 8);

    /* filter + strip: the encoder alone under torchvision names, buffers included */
    snprintf(path, sizeof path, "%s/backbone.safetensors", dir);
    SSL_EXPECT(ssl_export_safetensors(path, &p, &b, "backbone.", "backbone.", SSL_NAMES_TORCHVISION, err, sizeof err) == 0,
               "export: %s", err);
    const char *names2[6] = {"conv.weight", "cls", "fc.weight", "bn.weight", "bn.running_mean",
                             "bn.running_var"};
    const int segs2[6] = {0, 1, 2, 3, 0, 1}, src2[6] = {0, 0, 0, 0, 1, 1};
    check_entries(path, srcs, names2, segs2, src2, 6);

    /* strip without filter: names lacking the prefix stay as they are; no buffers */
    snprintf(path, sizeof path, "%s/strip.safetensors", dir);
    SSL_EXPECT(ssl_export_safetensors(path, &p, NULL, "", "backbone.", SSL_NAMES_TORCHVISION, err, sizeof err) == 0,
               "export: %s", err);
    const char *names3[6] = {"conv.weight", "cls", "fc.weight", "bn.weight", "head.0.weight", "odd\"na\\me"};
    const int segs3[6] = {0, 1, 2, 3, 4, 5}, src3[6] = {0};
    check_entries(path, srcs, names3, segs3, src3, 6);

    /* filter alone keeps full names */
    snprintf(path, sizeof path, "%s/head.safetensors", dir);
    SSL_EXPECT(ssl_export_safetensors(path, &p, &b, "head.", NULL, SSL_NAMES_TORCHVISION, err, sizeof err) == 0, "export: %s", err);
    const char *names4[1] = {"head.0.weight"};
    const int segs4[1] = {4}, src4[1] = {0};
    check_entries(path, srcs, names4, segs4, src4, 1);

    /* errors */
    SSL_EXPECT(ssl_export_safetensors(path, &p, &b, "student.", NULL, SSL_NAMES_TORCHVISION, err, sizeof err) != 0 &&
               strstr(err, "student."), "nothing selected: %s", err);
    SSL_EXPECT(ssl_export_safetensors("/nonexistent-dir/x.safetensors", &p, &b, NULL, NULL, SSL_NAMES_TORCHVISION, err, sizeof err) != 0 &&
               strstr(err, "/nonexistent-dir/x.safetensors.tmp"), "bad directory: %s", err);
    ssl_params q;
    ssl_params_init(&q);
    add(&q, "m.x", 1, 2, 1, 1, 1);
    add(&q, "x", 1, 2, 1, 1, 1);
    SSL_EXPECT(ssl_export_safetensors(path, &q, NULL, NULL, NULL, SSL_NAMES_TORCHVISION, err, sizeof err) != 0 &&
               strstr(err, "not allocated"), "unallocated: %s", err);
    ssl_params_alloc(&q, be, 0);
    SSL_EXPECT(ssl_export_safetensors(path, &q, NULL, NULL, "m.", SSL_NAMES_TORCHVISION, err, sizeof err) != 0 &&
               strstr(err, "two tensors named 'x'"), "duplicate after strip: %s", err);
    SSL_EXPECT(ssl_export_safetensors(path, &q, NULL, "m.x", "m.x", SSL_NAMES_TORCHVISION, err, sizeof err) != 0 &&
               strstr(err, "without a name"), "empty name: %s", err);
    ssl_params_free(&q);
    ssl_params_free(&p);
    ssl_params_free(&b);
}

/* The reader rejects what the reference loader rejects. */
static void test_reader_errors(const char *dir)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    struct { const char *json; size_t data; const char *want; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "needs 8 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "cover 4 data bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "starts at 4"},
        {"{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, "lacks data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "expected"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t jl = strlen(cases[i].json), n = 8 + jl + cases[i].data;
        unsigned char *b = calloc(n, 1);
        for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)jl >> (8 * k));
        memcpy(b + 8, cases[i].json, jl);
        spit(path, b, n);
        free(b);
        ssl_safetensors_header h;
        SSL_EXPECT(ssl_safetensors_read_header(path, &h, err, sizeof err) != 0 && strstr(err, cases[i].want),
                   "case %zu: want '%s', got '%s'", i, cases[i].want, err);
    }
    /* unknown fields and an empty metadata are fine; a scalar has shape [] */
    const char *ok = "{\"__metadata__\":{},\"s\":{\"dtype\":\"I64\",\"shape\":[],\"extra\":[1,{\"x\":null}],"
                     "\"data_offsets\":[0,8]}}   ";
    size_t jl = strlen(ok);
    unsigned char b[128] = {0};
    b[0] = (unsigned char)jl;
    memcpy(b + 8, ok, jl);
    spit(path, b, 8 + jl + 8);
    ssl_safetensors_header h;
    SSL_EXPECT(ssl_safetensors_read_header(path, &h, err, sizeof err) == 0 && h.n == 1 && h.entries[0].ndim == 0 &&
               ssl_safetensors_find(&h, "s") == 0 && ssl_safetensors_find(&h, "t") < 0 && h.format[0] == 0,
               "scalar with extra fields: %s", err);
    ssl_safetensors_header_free(&h);
    /* truncated: header length beyond the file */
    b[0] = 200;
    spit(path, b, 16);
    SSL_EXPECT(ssl_safetensors_read_header(path, &h, err, sizeof err) != 0 && strstr(err, "does not fit"),
               "truncated: %s", err);
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    SSL_EXPECT(ssl_safetensors_read_header(path, &h, err, sizeof err) != 0 && strstr(err, "missing.safetensors"),
               "missing file: %s", err);
}

int main(void)
{
    char dir[] = "/tmp/ssl_export_XXXXXX";
    SSL_ASSERT(mkdtemp(dir) != NULL);
    test_format_and_roundtrip(dir);
    test_reader_errors(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    SSL_EXPECT(system(cmd) == 0, "cleanup");
    return ssl_test_exit();
}
