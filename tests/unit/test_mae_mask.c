/* MAE's random masking (ssl_mae_mask / ssl_mae_keep / ssl_mae_noise) by its defining properties:
 * ids_keep is the keep smallest noise values of each row in ascending order (ties in index order),
 * ids_restore is the inverse permutation of that order (ids_restore[ids_keep[j]] == j, and a patch is
 * kept exactly when its rank is below keep), the mask marks the L - keep others with 1; len_keep
 * truncates as Python's int(L * (1 - ratio)) in double; the noise is uniform in [0, 1), a pure
 * function of (key, global sample index), independent of how the batch is split. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/layers/mae_mask.h"

#include <stdlib.h>
#include <string.h>

/* Every property of one (N, L) masking; returns the number of violations. */
static int check_row_properties(int64_t N, int64_t L, int64_t keep, const float *noise, const int32_t *ids_keep,
                                const int32_t *ids_restore, const float *mask)
{
    int bad = 0;
    char *seen = malloc((size_t)L);
    for (int64_t i = 0; i < N; i++) {
        const float *z = noise + i * L;
        const int32_t *k = ids_keep + i * keep, *r = ids_restore + i * L;
        const float *m = mask + i * L;
        memset(seen, 0, (size_t)L);
        double msum = 0;
        for (int64_t l = 0; l < L; l++) { /* ids_restore: a permutation of 0..L-1 */
            bad += r[l] < 0 || r[l] >= L || seen[r[l]]++;
            bad += m[l] != (r[l] >= keep ? 1.0f : 0.0f); /* masked exactly when ranked after keep */
            msum += m[l];
        }
        bad += msum != (double)(L - keep);
        float kept_max = -1.0f;
        for (int64_t j = 0; j < keep; j++) {
            bad += k[j] < 0 || k[j] >= L || r[k[j]] != j || m[k[j]] != 0.0f;
            if (j > 0) /* ascending noise, ties by index */
                bad += z[k[j]] < z[k[j - 1]] || (z[k[j]] == z[k[j - 1]] && k[j] < k[j - 1]);
            if (z[k[j]] > kept_max) kept_max = z[k[j]];
        }
        for (int64_t l = 0; l < L; l++) /* every masked patch has noise >= every kept one */
            if (m[l] == 1.0f) bad += z[l] < kept_max;
    }
    free(seen);
    return bad;
}

static void test_random(int64_t N, int64_t L, double ratio)
{
    const int64_t keep = ssl_mae_keep(L, ratio);
    float *noise = malloc(sizeof(float) * (size_t)(N * L)), *mask = malloc(sizeof(float) * (size_t)(N * L));
    int32_t *ids_keep = malloc(sizeof(int32_t) * (size_t)(N * keep + 1)), *ids_restore = malloc(sizeof(int32_t) * (size_t)(N * L));
    ssl_mae_noise(77, 0, N, L, noise);
    size_t out = 0;
    for (int64_t i = 0; i < N * L; i++) out += !(noise[i] >= 0.0f && noise[i] < 1.0f);
    SSL_EXPECT(out == 0, "noise: %zu values outside [0, 1)", out);
    ssl_mae_mask(N, L, keep, noise, ids_keep, ids_restore, mask);
    const int bad = check_row_properties(N, L, keep, noise, ids_keep, ids_restore, mask);
    printf("N %lld L %lld ratio %.2f keep %lld: %d violations\n", (long long)N, (long long)L, ratio,
           (long long)keep, bad);
    SSL_EXPECT(bad == 0, "N %lld L %lld keep %lld: %d property violations", (long long)N, (long long)L,
               (long long)keep, bad);
    free(noise), free(mask), free(ids_keep), free(ids_restore);
}

/* Equal noise everywhere but one value: ties go in index order, and the one smaller value first. */
static void test_ties(void)
{
    enum { L = 8, KEEP = 3 };
    float noise[L], mask[L];
    int32_t ids_keep[KEEP], ids_restore[L];
    for (int l = 0; l < L; l++) noise[l] = 0.5f;
    noise[5] = 0.25f;
    ssl_mae_mask(1, L, KEEP, noise, ids_keep, ids_restore, mask);
    SSL_EXPECT(ids_keep[0] == 5 && ids_keep[1] == 0 && ids_keep[2] == 1, "ties: kept %d %d %d, expected 5 0 1",
               ids_keep[0], ids_keep[1], ids_keep[2]);
    const int32_t want[L] = {1, 2, 3, 4, 5, 0, 6, 7};
    for (int l = 0; l < L; l++)
        SSL_EXPECT(ids_restore[l] == want[l], "ties: ids_restore[%d] = %d, expected %d", l, ids_restore[l], want[l]);
    SSL_EXPECT(check_row_properties(1, L, KEEP, noise, ids_keep, ids_restore, mask) == 0, "ties: properties");
}

/* (int)(L * (1 - r)) in double, as Python's len_keep. */
static void test_keep(void)
{
    static const struct {
        int64_t L;
        double r;
        int64_t want;
    } c[] = {{196, 0.75, 49}, {16, 0.75, 4}, {10, 0.6, 4} /* float 0.6f would give 3 */,
             {196, 0.9, 19}, {256, 0.0, 256}, {3, 0.75, 0}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        const int64_t k = ssl_mae_keep(c[i].L, c[i].r);
        SSL_EXPECT(k == c[i].want, "keep(L %lld, ratio %g) = %lld, Python gives %lld", (long long)c[i].L, c[i].r,
                   (long long)k, (long long)c[i].want);
    }
}

/* A sample's noise depends on its global index only: rows 2..4 of one draw equal a draw of 3 rows from 2. */
static void test_noise_split(void)
{
    enum { L = 12 };
    float all[6 * L], part[3 * L], other[6 * L];
    ssl_mae_noise(5, 0, 6, L, all);
    ssl_mae_noise(5, 2, 3, L, part);
    ssl_mae_noise(6, 0, 6, L, other);
    SSL_EXPECT(memcmp(all + 2 * L, part, sizeof part) == 0, "noise of samples 2..4 depends on the batch split");
    SSL_EXPECT(memcmp(all, other, sizeof all) != 0, "noise ignores its key");
    SSL_EXPECT(memcmp(all, all + L, L * sizeof(float)) != 0, "two samples drew the same noise");
}

int main(void)
{
    test_keep();
    test_ties();
    test_noise_split();
    test_random(5, 196, 0.75);
    test_random(7, 16, 0.75);
    test_random(3, 50, 0.6);
    test_random(2, 9, 0.0);
    return ssl_test_exit();
}
