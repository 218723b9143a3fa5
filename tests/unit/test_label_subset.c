/* The label-efficiency subset (io/label_subset.h) and its sampling: every class gives round(f * n_c)
 * samples (at least 1), chosen by the seed alone (same seed, same subset; another seed, another);
 * indices ascending, unique and of the right class; fraction 1 is everything; and a sampler over the
 * subset hands out, at 2 and 4 ranks, per-rank slices whose union is the 1-rank batch of subset
 * members, so a run on any rank count trains on the same images in the same order. */
#include "common/testutil.h"
#include "framework/core/check.h"
#include "io/label_subset.h"
#include "io/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 2000, K = 7 };

/* Unequal classes (class c has about (c + 1) / 28 of the samples, class 6 only 3), shuffled order. */
static void make_labels(int32_t *y)
{
    int64_t n = 0;
    for (int c = 0; c < K - 1; c++)
        for (int i = 0; i < (N - 3) * (c + 1) / 21; i++) y[n++] = c;
    while (n < N) y[n++] = K - 1;
    for (int64_t i = N - 1; i > 0; i--) { /* a fixed scramble, so classes are interleaved */
        int64_t j = (i * 7919) % (i + 1);
        int32_t t = y[i];
        y[i] = y[j];
        y[j] = t;
    }
}

static void check_subset(const int32_t *y, double frac, uint64_t seed)
{
    char err[256];
    int64_t cnt = 0, have[K] = {0}, want[K] = {0};
    int64_t *s = ssl_label_subset(y, N, K, frac, seed, &cnt, err, sizeof err);
    SSL_ASSERTF(s, "%s", err);
    for (int64_t i = 0; i < N; i++) want[y[i]]++;
    for (int c = 0; c < K; c++) want[c] = llround(frac * (double)want[c]) < 1 ? 1 : llround(frac * (double)want[c]);
    for (int64_t i = 0; i < cnt; i++) {
        SSL_EXPECT(s[i] >= 0 && s[i] < N && (i == 0 || s[i] > s[i - 1]), "fraction %g: index %lld not ascending",
                   frac, (long long)i);
        have[y[s[i]]]++;
    }
    for (int c = 0; c < K; c++)
        SSL_EXPECT(have[c] == want[c], "fraction %g: class %d has %lld, want round(f n_c) = %lld", frac, c,
                   (long long)have[c], (long long)want[c]);
    ssl_free(s);
}

/* The batches of one epoch at `world` ranks, concatenated in rank order per step. */
static void epoch_batches(const int64_t *subset, int64_t n, int B, int world, int64_t *out)
{
    int64_t *buf = malloc((size_t)B * sizeof *buf);
    for (int r = 0; r < world; r++) {
        ssl_sampler s;
        char err[256];
        SSL_ASSERTF(ssl_sampler_init(&s, n, B, r, world, 42, 1, err, sizeof err) == 0, "%s", err);
        s.map = subset;
        for (int64_t st = 0; st < s.steps_per_epoch; st++) {
            SSL_ASSERT(ssl_sampler_batch(&s, 1, st, buf) == 0);
            memcpy(out + st * B + (int64_t)r * (B / world), buf, (size_t)(B / world) * sizeof *buf);
        }
        ssl_sampler_free(&s);
    }
    free(buf);
}

int main(void)
{
    int32_t *y = malloc(N * sizeof *y);
    make_labels(y);
    check_subset(y, 0.01, 5); /* class 6's 3 samples round to 0: it still gets 1 */
    check_subset(y, 0.1, 5);
    check_subset(y, 0.37, 9);
    char err[256];
    int64_t n1, n2, n3, nall;
    int64_t *a = ssl_label_subset(y, N, K, 0.1, 5, &n1, err, sizeof err);
    int64_t *b = ssl_label_subset(y, N, K, 0.1, 5, &n2, err, sizeof err);
    int64_t *c = ssl_label_subset(y, N, K, 0.1, 6, &n3, err, sizeof err);
    SSL_EXPECT(n1 == n2 && !memcmp(a, b, (size_t)n1 * sizeof *a), "same seed, same subset");
    SSL_EXPECT(n1 == n3 && memcmp(a, c, (size_t)n1 * sizeof *a), "another seed, another subset");
    int64_t *all = ssl_label_subset(y, N, K, 1.0, 5, &nall, err, sizeof err);
    SSL_EXPECT(nall == N && all[0] == 0 && all[N - 1] == N - 1, "fraction 1: every sample");
    SSL_EXPECT(!ssl_label_subset(y, N, K, 0.0, 5, &nall, err, sizeof err) && strstr(err, "fraction"),
               "fraction 0 refused");
    y[3] = K;
    SSL_EXPECT(!ssl_label_subset(y, N, K, 0.5, 5, &nall, err, sizeof err) && strstr(err, "label"),
               "a label outside [0, K) refused: %s", err);

    /* the subset's batches at 1, 2 and 4 ranks: the same dataset indices, all from the subset */
    const int B = 32;
    const int64_t steps = n1 / B;
    int64_t *e1 = malloc((size_t)(steps * B) * sizeof *e1), *e2 = malloc((size_t)(steps * B) * sizeof *e2);
    epoch_batches(a, n1, B, 1, e1);
    for (int64_t i = 0; i < steps * B; i++) {
        int in = 0;
        for (int64_t j = 0; j < n1 && !in; j++) in = a[j] == e1[i];
        SSL_EXPECT(in, "batch entry %lld (dataset index %lld) is not in the subset", (long long)i, (long long)e1[i]);
    }
    for (int w = 2; w <= 4; w += 2) {
        epoch_batches(a, n1, B, w, e2);
        SSL_EXPECT(!memcmp(e1, e2, (size_t)(steps * B) * sizeof *e1), "%d ranks: the union of the per-rank batches "
                   "differs from the 1-rank batches", w);
    }
    printf("subset of 10%%: %lld of %d samples, %lld steps of %d per epoch\n", (long long)n1, N, (long long)steps, B);
    free(e1);
    free(e2);
    ssl_free(a);
    ssl_free(b);
    ssl_free(c);
    ssl_free(all);
    free(y);
    return ssl_test_exit();
}
