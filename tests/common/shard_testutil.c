/* Helpers for the shard tests (see shard_testutil.h). */
#include "common/shard_testutil.h"

#include "framework/core/check.h"
#include "io/shard_writer.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint8_t ssl_test_pixel(int64_t idx, size_t p)
{
    uint64_t z = (uint64_t)idx * 0x9E3779B97F4A7C15ull + (uint64_t)p * 0xBF58476D1CE4E5B9ull;
    z ^= z >> 29;
    return (uint8_t)(z * 0x94D049BB133111EBull >> 56);
}

int32_t ssl_test_label(int64_t idx, int ncls) { return ncls > 0 ? (int32_t)((idx * 7 + 3) % ncls) : -1; }

int ssl_test_write_shards(const char *dir, const char *prefix, int64_t n, int H, int W, int C,
                          int shard_size, int chunk, int deflate, int ncls)
{
    char err[512];
    ssl_shard_spec spec = {.out_dir = dir, .prefix = prefix, .height = H, .width = W,
                           .channels = C, .num_classes = ncls, .with_labels = ncls > 0,
                           .shard_size = shard_size, .chunk = chunk, .deflate = deflate};
    ssl_shard_writer *w = ssl_shard_writer_open(&spec, err, sizeof err);
    if (!w) {
        fprintf(stderr, "writer open: %s\n", err);
        return -1;
    }
    const size_t sb = (size_t)H * W * C;
    static const int groups[] = {1, 3, 17, 64, 5, 100, 2};
    uint8_t *img = ssl_malloc(100 * sb);
    int32_t lab[100];
    int64_t i = 0;
    for (int g = 0; i < n; g++) {
        int m = groups[g % 7];
        if (m > n - i) m = (int)(n - i);
        for (int k = 0; k < m; k++) {
            for (size_t p = 0; p < sb; p++) img[(size_t)k * sb + p] = ssl_test_pixel(i + k, p);
            lab[k] = ssl_test_label(i + k, ncls);
        }
        if (ssl_shard_writer_add(w, img, ncls > 0 ? lab : NULL, m, err, sizeof err) < 0) {
            fprintf(stderr, "writer add: %s\n", err);
            ssl_free(img);
            ssl_shard_writer_abort(w);
            return -1;
        }
        i += m;
    }
    ssl_free(img);
    int ns = ssl_shard_writer_nshards(w) + ((n % shard_size) != 0);
    if (ssl_shard_writer_close(w, err, sizeof err) < 0) {
        fprintf(stderr, "writer close: %s\n", err);
        return -1;
    }
    return ns;
}

int ssl_test_samples_match(const int64_t *idx, int n, size_t sample_bytes, const uint8_t *images,
                           const int32_t *labels, int ncls)
{
    for (int i = 0; i < n; i++) {
        for (size_t p = 0; p < sample_bytes; p++)
            if (images[(size_t)i * sample_bytes + p] != ssl_test_pixel(idx[i], p)) {
                fprintf(stderr, "sample %d (index %lld) byte %zu: %u != %u\n", i,
                        (long long)idx[i], p, images[(size_t)i * sample_bytes + p],
                        ssl_test_pixel(idx[i], p));
                return 0;
            }
        if (labels && labels[i] != ssl_test_label(idx[i], ncls)) {
            fprintf(stderr, "sample %d (index %lld): label %d != %d\n", i, (long long)idx[i],
                    labels[i], ssl_test_label(idx[i], ncls));
            return 0;
        }
    }
    return 1;
}

char *ssl_test_tmpdir(char *buf, const char *tag)
{
    snprintf(buf, 64, "/tmp/ssl_%.16s_XXXXXX", tag);
    SSL_ASSERTF(mkdtemp(buf) != NULL, "mkdtemp %s failed", buf);
    return buf;
}

void ssl_test_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = ssl_malloc(len);
        snprintf(p, len, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) ssl_test_rmtree(p);
        else unlink(p);
        ssl_free(p);
    }
    closedir(d);
    rmdir(dir);
}
