/* Distributed sampler: each epoch covers every index exactly once across ranks (W = 1, 2, 4, 3),
 * the global batch is the same for any world size, epochs and seeds differ, drop_last on and off,
 * and invalid world/batch combinations are rejected with a message. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "io/sampler.h"

#include <string.h>

/* Over one epoch on all ranks: counts[i] = times index i was drawn; returns total draws. */
static int64_t epoch_counts(int64_t n, int B, int W, uint64_t seed, int drop_last, int64_t epoch,
                            int *counts)
{
    memset(counts, 0, (size_t)n * sizeof *counts);
    int64_t draws = 0;
    for (int r = 0; r < W; r++) {
        ssl_sampler s;
        char err[256];
        SSL_ASSERTF(ssl_sampler_init(&s, n, B, r, W, seed, drop_last, err, sizeof err) == 0, "%s", err);
        int64_t idx[256];
        for (int64_t st = 0; st < s.steps_per_epoch; st++) {
            SSL_ASSERT(ssl_sampler_batch(&s, epoch, st, idx) == 0);
            for (int i = 0; i < s.local_batch; i++) {
                SSL_ASSERT(idx[i] >= 0 && idx[i] < n);
                counts[idx[i]]++;
                draws++;
            }
        }
        ssl_sampler_free(&s);
    }
    return draws;
}

static void test_coverage(void)
{
    static int counts[1003];
    const struct { int64_t n; int B, W; } cases[] = {{1000, 40, 1}, {1000, 40, 2}, {1000, 40, 4},
                                                     {960, 48, 3}, {7, 7, 1}, {12, 12, 4}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        for (int64_t epoch = 0; epoch < 3; epoch++) {
            int64_t draws = epoch_counts(cases[c].n, cases[c].B, cases[c].W, 42, 1, epoch, counts);
            int once = 1;
            for (int64_t i = 0; i < cases[c].n; i++) once &= counts[i] == 1;
            SSL_EXPECT(draws == cases[c].n && once,
                       "n %lld B %d W %d epoch %lld: every index exactly once (draws %lld)",
                       (long long)cases[c].n, cases[c].B, cases[c].W, (long long)epoch,
                       (long long)draws);
        }
    }
}

static void test_world_invariance(void)
{
    const int64_t n = 1000;
    const int B = 40;
    ssl_sampler one, four[4];
    char err[256];
    SSL_EXPECT(ssl_sampler_init(&one, n, B, 0, 1, 7, 1, err, sizeof err) == 0, "%s", err);
    for (int r = 0; r < 4; r++)
        SSL_EXPECT(ssl_sampler_init(&four[r], n, B, r, 4, 7, 1, err, sizeof err) == 0, "%s", err);
    SSL_EXPECT(four[2].local_batch == 10 && four[2].steps_per_epoch == 25, "local batch, steps");
    int same = 1;
    for (int64_t epoch = 0; epoch < 2; epoch++)
        for (int64_t st = 0; st < one.steps_per_epoch; st++) {
            int64_t g[40], cat[40];
            ssl_sampler_batch(&one, epoch, st, g);
            for (int r = 0; r < 4; r++) ssl_sampler_batch(&four[r], epoch, st, cat + r * 10);
            same &= memcmp(g, cat, sizeof g) == 0;
        }
    SSL_EXPECT(same, "W=4 slices concatenated equal the W=1 global batch, every step");
    /* random access: asking for steps out of order gives the same answer */
    int64_t a[40], b[40];
    ssl_sampler_batch(&one, 1, 17, a);
    ssl_sampler_batch(&one, 0, 3, b);
    ssl_sampler_batch(&one, 1, 17, b);
    SSL_EXPECT(memcmp(a, b, sizeof a) == 0, "batch depends only on (epoch, step)");
    SSL_EXPECT(ssl_sampler_batch(&one, 0, 25, a) == -1 && ssl_sampler_batch(&one, -1, 0, a) == -1,
               "out-of-range step/epoch rejected");
    ssl_sampler_free(&one);
    for (int r = 0; r < 4; r++) ssl_sampler_free(&four[r]);
}

static void test_epochs_and_seeds(void)
{
    enum { N = 500 };
    int64_t p0[N], p1[N], p0b[N], q0[N];
    ssl_sampler_permutation(3, 0, N, p0);
    ssl_sampler_permutation(3, 1, N, p1);
    ssl_sampler_permutation(3, 0, N, p0b);
    ssl_sampler_permutation(4, 0, N, q0);
    int seen[N] = {0}, ok = 1, diff01 = 0, diffseed = 0;
    for (int i = 0; i < N; i++) {
        ok &= p0[i] >= 0 && p0[i] < N && !seen[p0[i]];
        if (p0[i] >= 0 && p0[i] < N) seen[p0[i]] = 1;
        diff01 += p0[i] != p1[i];
        diffseed += p0[i] != q0[i];
    }
    SSL_EXPECT(ok, "permutation of [0, n)");
    SSL_EXPECT(memcmp(p0, p0b, sizeof p0) == 0, "same (seed, epoch) -> same permutation");
    SSL_EXPECT(diff01 > N / 2, "epochs 0 and 1 differ (%d positions)", diff01);
    SSL_EXPECT(diffseed > N / 2, "seeds 3 and 4 differ (%d positions)", diffseed);

    /* rough uniformity: where element 0 lands over many epochs, n = 8 */
    int pos[8] = {0};
    int64_t p[8];
    for (int e = 0; e < 4000; e++) {
        ssl_sampler_permutation(11, e, 8, p);
        for (int i = 0; i < 8; i++)
            if (p[i] == 0) pos[i]++;
    }
    for (int i = 0; i < 8; i++) SSL_EXPECT(pos[i] > 400 && pos[i] < 600, "position %d: %d/4000", i, pos[i]);

    /* shuffle off: identity order, for evaluation passes */
    ssl_sampler s;
    char err[256];
    SSL_EXPECT(ssl_sampler_init(&s, 10, 4, 1, 2, 0, 0, err, sizeof err) == 0, "%s", err);
    s.shuffle = 0;
    int64_t idx[2];
    ssl_sampler_batch(&s, 5, 2, idx); /* positions 8+2, 8+3 wrap to 0, 1 */
    SSL_EXPECT(idx[0] == 0 && idx[1] == 1, "no-shuffle wrap: %lld %lld", (long long)idx[0],
               (long long)idx[1]);
    ssl_sampler_batch(&s, 5, 1, idx);
    SSL_EXPECT(idx[0] == 6 && idx[1] == 7, "no-shuffle: %lld %lld", (long long)idx[0], (long long)idx[1]);
    ssl_sampler_free(&s);
}

static void test_drop_last(void)
{
    static int counts[1003];
    /* drop_last: floor(1003/40) = 25 steps, 1000 distinct samples, 3 left out, none repeated */
    int64_t draws = epoch_counts(1003, 40, 4, 5, 1, 0, counts);
    int zeros = 0, over = 0;
    for (int i = 0; i < 1003; i++) {
        zeros += counts[i] == 0;
        over += counts[i] > 1;
    }
    SSL_EXPECT(draws == 1000 && zeros == 3 && over == 0, "drop_last: draws %lld, missing %d, repeated %d",
               (long long)draws, zeros, over);
    /* no drop_last: 26 steps, every sample at least once, the 37 wrapped ones twice */
    draws = epoch_counts(1003, 40, 4, 5, 0, 0, counts);
    zeros = over = 0;
    for (int i = 0; i < 1003; i++) {
        zeros += counts[i] == 0;
        over += counts[i] == 2;
    }
    SSL_EXPECT(draws == 1040 && zeros == 0 && over == 37, "no drop_last: draws %lld, missing %d, twice %d",
               (long long)draws, zeros, over);
    ssl_sampler s;
    char err[256];
    SSL_EXPECT(ssl_sampler_init(&s, 1003, 40, 0, 4, 5, 0, err, sizeof err) == 0 &&
                   s.steps_per_epoch == 26, "ceil steps");
    /* the wrapped tail is the start of the same epoch's permutation */
    int64_t perm[1003], last[10];
    ssl_sampler_permutation(5, 0, 1003, perm);
    ssl_sampler_batch(&s, 0, 25, last);
    SSL_EXPECT(last[0] == perm[1000] && last[2] == perm[1002] && last[3] == perm[0] &&
                   last[9] == perm[6], "wrap order");
    ssl_sampler_free(&s);
}

static void test_rejects(void)
{
    ssl_sampler s;
    char err[256];
    struct { int64_t n; int B, rank, W, drop; const char *want; } bad[] = {
        {100, 10, 0, 4, 1, "global batch must be divisible by the world size"},
        {100, 10, 0, 0, 1, "world size must be >= 1"},
        {100, 12, 4, 4, 1, "rank must be in [0, world)"},
        {100, 12, -1, 4, 1, "rank must be in [0, world)"},
        {100, 0, 0, 1, 1, "global batch must be >= 1"},
        {0, 4, 0, 1, 0, "the dataset is empty"},
        {10, 16, 0, 2, 1, "smaller than one global batch"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        int rc = ssl_sampler_init(&s, bad[i].n, bad[i].B, bad[i].rank, bad[i].W, 1, bad[i].drop, err,
                                  sizeof err);
        SSL_EXPECT(rc == -1 && strstr(err, bad[i].want), "case %zu: rc %d, '%s'", i, rc, err);
        printf("rejected: %s\n", err);
    }
    /* n < B is fine without drop_last: one wrapped batch */
    SSL_EXPECT(ssl_sampler_init(&s, 10, 16, 1, 2, 1, 0, err, sizeof err) == 0 && s.steps_per_epoch == 1,
               "small dataset without drop_last: %s", err);
    ssl_sampler_free(&s);
}

/* Local sampling: each rank draws only from its own contiguous block, every sample of the block
 * once per epoch (drop_last off: all of it; on: all but the remainder), blocks permuted
 * independently per rank and epoch, the same indices whatever else the process did before. */
static void test_local(void)
{
    enum { N = 100, B = 12, W = 3 };
    char err[256];
    int64_t idx[B / W];
    for (int drop = 0; drop <= 1; drop++) {
        int seen[N] = {0};
        int64_t first[W][B / W];
        for (int r = 0; r < W; r++) {
            ssl_sampler s;
            SSL_ASSERT(ssl_sampler_init(&s, N, B, r, W, 5, drop, err, sizeof err) == 0);
            ssl_sampler_set_local(&s);
            const int64_t lo = (int64_t)N * r / W, hi = (int64_t)N * (r + 1) / W;
            SSL_EXPECT(s.steps_per_epoch == (drop ? 33 / 4 : 9), "drop_last %d: %lld steps per epoch", drop,
                       (long long)s.steps_per_epoch);
            int ok = 1, local_seen[N] = {0};
            for (int64_t k = 0; k < s.steps_per_epoch; k++) {
                SSL_ASSERT(ssl_sampler_batch(&s, 2, k, idx) == 0);
                if (k == 0) memcpy(first[r], idx, sizeof idx);
                for (int i = 0; i < B / W; i++) {
                    ok &= idx[i] >= lo && idx[i] < hi;
                    if (idx[i] >= 0 && idx[i] < N) local_seen[idx[i]]++, seen[idx[i]]++;
                }
            }
            SSL_EXPECT(ok, "drop_last %d rank %d: an index outside its block [%lld, %lld)", drop, r, (long long)lo,
                       (long long)hi);
            int64_t distinct = 0, repeats = 0;
            for (int i = 0; i < N; i++) distinct += local_seen[i] > 0, repeats += local_seen[i] > 1;
            const int64_t want = drop ? s.steps_per_epoch * (B / W) : hi - lo;
            SSL_EXPECT(distinct == want && (drop ? repeats == 0 : 1), "drop_last %d rank %d: %lld distinct samples "
                       "(want %lld), %lld repeated", drop, r, (long long)distinct, (long long)want, (long long)repeats);
            /* another epoch permutes the block anew; the same epoch again gives the same batch */
            int64_t other[B / W], again[B / W];
            SSL_ASSERT(ssl_sampler_batch(&s, 3, 0, other) == 0 && ssl_sampler_batch(&s, 2, 0, again) == 0);
            SSL_EXPECT(memcmp(other, first[r], sizeof other) != 0 && memcmp(again, first[r], sizeof again) == 0,
                       "rank %d: epochs are not permuted anew, or an epoch is not reproducible", r);
            ssl_sampler_free(&s);
        }
        SSL_EXPECT(first[1][0] - N / W != first[0][0] || first[1][1] - N / W != first[0][1],
                   "ranks 0 and 1 permute their blocks alike");
        if (!drop) {
            int all = 1;
            for (int i = 0; i < N; i++) all &= seen[i] >= 1;
            SSL_EXPECT(all, "local sampling without drop_last misses samples");
        }
    }
}

int main(void)
{
    test_local();
    test_coverage();
    test_world_invariance();
    test_epochs_and_seeds();
    test_drop_last();
    test_rejects();
    return ssl_test_exit();
}
