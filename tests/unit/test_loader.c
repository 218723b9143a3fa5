/* Prefetching loader: batches equal direct sampler + dataset reads, in order, for 1 and 3 threads
 * and several depths (the direct reads run concurrently with the readers, exercising the HDF5
 * lock); starting mid-epoch equals skipping; the transform's output belongs to its batch, with its
 * own thread's scratch, whatever the thread count; a corrupt chunk surfaces as an error message. */
#include <stdio.h>

#include "common/shard_testutil.h"
#include "common/testutil.h"
#include "framework/core/check.h"
#include "io/dataset.h"
#include "io/loader.h"
#include "io/sampler.h"

#include <hdf5.h>
#include <string.h>

enum { N = 300, H = 6, W = 5, C = 3, NCLS = 9, SHARD = 70, GB = 24, WORLD = 2, RANK = 1 };
#define SB ((size_t)H * W * C)

/* The batch the loader must deliver at (epoch, step), read directly. */
static int direct_matches(ssl_dataset *d, ssl_sampler *s, const ssl_batch *b, int64_t epoch,
                          int64_t step)
{
    int64_t idx[GB];
    uint8_t img[GB * SB];
    int32_t lab[GB];
    char err[512];
    if (b->epoch != epoch || b->step != step || b->n != s->local_batch) {
        fprintf(stderr, "position: got (%lld, %lld) n %d, want (%lld, %lld)\n", (long long)b->epoch,
                (long long)b->step, b->n, (long long)epoch, (long long)step);
        return 0;
    }
    SSL_ASSERT(ssl_sampler_batch(s, epoch, step, idx) == 0);
    if (ssl_dataset_read(d, idx, b->n, img, lab, err, sizeof err) != 0) {
        fprintf(stderr, "direct read: %s\n", err);
        return 0;
    }
    return memcmp(idx, b->indices, (size_t)b->n * sizeof *idx) == 0 &&
           memcmp(img, b->images, (size_t)b->n * SB) == 0 &&
           (b->labels ? memcmp(lab, b->labels, (size_t)b->n * sizeof *lab) == 0 : 1) &&
           ssl_test_samples_match(b->indices, b->n, SB, b->images, b->labels, NCLS);
}

static void test_order(ssl_dataset *d)
{
    ssl_sampler s;
    char err[512];
    SSL_ASSERT(ssl_sampler_init(&s, N, GB, RANK, WORLD, 99, 1, err, sizeof err) == 0);
    const int64_t spe = s.steps_per_epoch; /* 12 */
    const int threads[] = {1, 3, 3}, depths[] = {1, 4, 2};
    for (int c = 0; c < 3; c++) {
        ssl_loader l;
        SSL_EXPECT(ssl_loader_start(&l, d, &s, 0, 0, threads[c], depths[c], NULL, err, sizeof err) == 0,
                   "start: %s", err);
        int ok = 1;
        for (int k = 0; k < 30; k++) { /* two and a half epochs, across the boundaries */
            ssl_batch b;
            if (ssl_loader_next(&l, &b, err, sizeof err) != 0) {
                SSL_EXPECT(0, "next %d: %s", k, err);
                break;
            }
            ok &= direct_matches(d, &s, &b, k / spe, k % spe);
        }
        SSL_EXPECT(ok, "threads %d depth %d: batches equal direct reads in order", threads[c],
                   depths[c]);
        ssl_loader_stop(&l);
        ssl_loader_stop(&l); /* idempotent */
    }

    /* resume mid-epoch: starting at (1, 5) equals the uninterrupted run from its 17th batch */
    ssl_loader l;
    SSL_EXPECT(ssl_loader_start(&l, d, &s, 1, 5, 3, 3, NULL, err, sizeof err) == 0, "start: %s", err);
    int ok = 1;
    for (int64_t k = 12 + 5; k < 12 + 5 + 15; k++) {
        ssl_batch b;
        if (ssl_loader_next(&l, &b, err, sizeof err) != 0) {
            SSL_EXPECT(0, "next: %s", err);
            break;
        }
        ok &= direct_matches(d, &s, &b, k / spe, k % spe);
    }
    SSL_EXPECT(ok, "mid-epoch start equals skipping");
    ssl_loader_stop(&l);

    /* stop while readers wait on a full ring, and right after start */
    SSL_EXPECT(ssl_loader_start(&l, d, &s, 0, 0, 3, 2, NULL, err, sizeof err) == 0, "start: %s", err);
    ssl_batch b;
    SSL_EXPECT(ssl_loader_next(&l, &b, err, sizeof err) == 0, "next: %s", err);
    ssl_loader_stop(&l);
    SSL_EXPECT(ssl_loader_start(&l, d, &s, 0, 0, 4, 1, NULL, err, sizeof err) == 0, "start: %s", err);
    ssl_loader_stop(&l);

    /* bad arguments */
    SSL_EXPECT(ssl_loader_start(&l, d, &s, 0, spe, 1, 1, NULL, err, sizeof err) == -1 &&
                   strstr(err, "start position outside the epoch"), "bad start: %s", err);
    printf("rejected: %s\n", err);
    SSL_EXPECT(ssl_loader_start(&l, d, &s, 0, 0, 0, 1, NULL, err, sizeof err) == -1 &&
                   strstr(err, "threads and depth must be >= 1"), "bad threads: %s", err);
    ssl_loader_stop(&l); /* safe after a failed start */
    ssl_sampler_free(&s);
}

/* Overwrites the stored (deflated) chunk holding `row` of path's images with bytes that do not
 * inflate, as a bad disk block would. Done before open: validation reads metadata and labels only. */
/* A transform whose output depends on the batch only: per sample, its index, the epoch and the sum
 * of its pixels; the scratch is written and read back, so a shared or missing one shows. */
static int tf_sum(void *ctx, const ssl_batch *b, float *out, void *scratch, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    int *calls = ctx;
    __atomic_add_fetch(calls, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < b->n; i++) {
        float *sc = scratch;
        sc[0] = (float)b->indices[i];
        double sum = 0;
        for (size_t k = 0; k < SB; k++) sum += b->images[(size_t)i * SB + k];
        for (volatile int spin = 0; spin < 200; spin++) { } /* let another thread interleave */
        out[3 * i] = sc[0], out[3 * i + 1] = (float)b->epoch, out[3 * i + 2] = (float)sum;
    }
    SSL_ASSERT(b->out == NULL);
    return 0;
}

static void test_transform(ssl_dataset *d)
{
    ssl_sampler s;
    char err[512];
    SSL_ASSERT(ssl_sampler_init(&s, N, GB, RANK, WORLD, 99, 1, err, sizeof err) == 0);
    const int threads[] = {1, 3};
    for (int c = 0; c < 2; c++) {
        int calls = 0;
        const ssl_loader_transform tf = {.fn = tf_sum, .ctx = &calls, .out_floats = (size_t)s.local_batch * 3,
                                         .scratch_bytes = sizeof(float)};
        ssl_loader l;
        SSL_ASSERT(ssl_loader_start(&l, d, &s, 0, 0, threads[c], 2, &tf, err, sizeof err) == 0);
        int ok = 1, k;
        for (k = 0; k < 20 && ok; k++) {
            ssl_batch b;
            SSL_ASSERT(ssl_loader_next(&l, &b, err, sizeof err) == 0);
            ok &= b.out != NULL;
            for (int i = 0; ok && i < b.n; i++) {
                double sum = 0;
                for (size_t q = 0; q < SB; q++) sum += b.images[(size_t)i * SB + q];
                ok &= b.out[3 * i] == (float)b.indices[i] && b.out[3 * i + 1] == (float)b.epoch &&
                      b.out[3 * i + 2] == (float)sum;
            }
        }
        ssl_loader_stop(&l);
        SSL_EXPECT(ok, "threads %d: batch %d carries another batch's transform output", threads[c], k - 1);
        SSL_EXPECT(calls >= 20, "threads %d: the transform ran %d times for 20 batches", threads[c], calls);
    }
    ssl_sampler_free(&s);
}

static void corrupt_chunk(const char *path, hsize_t row)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "images", H5P_DEFAULT);
    hsize_t off[4] = {row, 0, 0, 0}, size = 0;
    haddr_t addr = 0;
    unsigned mask = 0;
    SSL_ASSERT(f >= 0 && ds >= 0 && H5Dget_chunk_info_by_coord(ds, off, &mask, &addr, &size) >= 0);
    H5Dclose(ds);
    H5Fclose(f);
    FILE *fp = fopen(path, "r+b");
    SSL_ASSERT(fp && fseek(fp, (long)addr, SEEK_SET) == 0);
    for (hsize_t i = 0; i < size; i++) fputc(0x5A, fp);
    fclose(fp);
}

static void test_io_error(const char *root)
{
    char dir[256], path[320], err[1024];
    SSL_ASSERT(ssl_test_write_shards(root, "bad", N, H, W, C, SHARD, 8, 1, NCLS) == 5);
    snprintf(path, sizeof path, "%s/bad-00002.h5", root);
    corrupt_chunk(path, 16); /* rows 16..23 of shard 2 = global 156..163 */
    snprintf(dir, sizeof dir, "%s/bad-*.h5", root);
    ssl_dataset *d = ssl_dataset_open(dir, err, sizeof err);
    SSL_EXPECT(d, "open with a corrupt chunk still validates: %s", err);
    if (!d) return;
    ssl_sampler s;
    SSL_ASSERT(ssl_sampler_init(&s, N, GB, RANK, WORLD, 5, 1, err, sizeof err) == 0);
    /* the first (epoch, step) whose indices touch the corrupt chunk */
    int64_t want = -1, idx[GB];
    for (int64_t st = 0; st < 3 * s.steps_per_epoch && want < 0; st++) {
        ssl_sampler_batch(&s, st / s.steps_per_epoch, st % s.steps_per_epoch, idx);
        for (int i = 0; i < s.local_batch; i++)
            if (idx[i] >= 156 && idx[i] < 164) want = st;
    }
    SSL_ASSERT(want >= 0);
    ssl_loader l;
    SSL_ASSERT(ssl_loader_start(&l, d, &s, 0, 0, 3, 3, NULL, err, sizeof err) == 0);
    int64_t k = 0;
    ssl_batch b;
    int rc = 0;
    for (; k <= want; k++) {
        rc = ssl_loader_next(&l, &b, err, sizeof err);
        if (rc != 0) break;
    }
    SSL_EXPECT(rc == -1 && k == want, "error at batch %lld, expected %lld", (long long)k,
               (long long)want);
    char where[64];
    snprintf(where, sizeof where, "epoch %lld step %lld: ", (long long)(want / s.steps_per_epoch),
             (long long)(want % s.steps_per_epoch));
    SSL_EXPECT(strstr(err, where) && strstr(err, path) && strstr(err, "dataset 'images'"),
               "error names position, shard and dataset: %s", err);
    printf("loader error: %s\n", err);
    char again[1024];
    SSL_EXPECT(ssl_loader_next(&l, &b, again, sizeof again) == -1 && strcmp(again, err) == 0,
               "the error is sticky");
    ssl_loader_stop(&l);
    ssl_sampler_free(&s);
    ssl_dataset_close(d);
}

static void test_unlabelled(const char *root)
{
    char pat[256], err[512];
    SSL_ASSERT(ssl_test_write_shards(root, "nolab", 50, H, W, C, 20, 0, 0, 0) == 3);
    snprintf(pat, sizeof pat, "%s/nolab-*.h5", root);
    ssl_dataset *d = ssl_dataset_open(pat, err, sizeof err);
    SSL_EXPECT(d, "open: %s", err);
    if (!d) return;
    ssl_sampler s;
    SSL_ASSERT(ssl_sampler_init(&s, 50, 8, 0, 1, 1, 0, err, sizeof err) == 0);
    ssl_loader l;
    SSL_ASSERT(ssl_loader_start(&l, d, &s, 0, 0, 2, 2, NULL, err, sizeof err) == 0);
    for (int k = 0; k < 10; k++) {
        ssl_batch b;
        SSL_EXPECT(ssl_loader_next(&l, &b, err, sizeof err) == 0, "next: %s", err);
        SSL_EXPECT(b.labels == NULL && ssl_test_samples_match(b.indices, b.n, SB, b.images, NULL, 0),
                   "unlabelled batch %d", k);
    }
    ssl_loader_stop(&l);
    ssl_sampler_free(&s);
    ssl_dataset_close(d);
}

int main(void)
{
    char root[64], pat[128], err[512];
    ssl_test_tmpdir(root, "loader");
    SSL_ASSERT(ssl_test_write_shards(root, "train", N, H, W, C, SHARD, 8, 1, NCLS) == 5);
    snprintf(pat, sizeof pat, "%s/train-*.h5", root);
    ssl_dataset *d = ssl_dataset_open(pat, err, sizeof err);
    SSL_EXPECT(d, "open: %s", err);
    if (d) test_order(d);
    if (d) test_transform(d);
    ssl_dataset_close(d);
    test_io_error(root);
    test_unlabelled(root);
    ssl_test_rmtree(root);
    return ssl_test_exit();
}
