/* Helpers for the dataset/sampler/loader tests: deterministic synthetic samples, writing them as
 * shards with the real writer, and temporary directories that are removed afterwards. */
#ifndef SSL_TESTS_SHARD_TESTUTIL_H
#define SSL_TESTS_SHARD_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Byte p of synthetic sample idx, and its label in [0, ncls). */
uint8_t ssl_test_pixel(int64_t idx, size_t p);
int32_t ssl_test_label(int64_t idx, int ncls);

/* Writes samples [0, n) of (H, W, C) as dir/<prefix>-NNNNN.h5 through ssl_shard_writer, adding them
 * in uneven groups so buffering across chunk and shard boundaries is exercised. ncls 0: unlabelled.
 * Returns the number of shards, or -1 (message printed). */
int ssl_test_write_shards(const char *dir, const char *prefix, int64_t n, int H, int W, int C,
                          int shard_size, int chunk, int deflate, int ncls);

/* 1 if images (n, sample_bytes) / labels (n, may be NULL) equal the synthetic samples idx[]. */
int ssl_test_samples_match(const int64_t *idx, int n, size_t sample_bytes, const uint8_t *images,
                           const int32_t *labels, int ncls);

/* mkdtemp under /tmp into buf (>= 64 bytes); aborts on failure. */
char *ssl_test_tmpdir(char *buf, const char *tag);
/* Removes a directory tree (files and subdirectories). */
void ssl_test_rmtree(const char *dir);

#endif
