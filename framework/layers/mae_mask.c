/* MAE's random masking (see mae_mask.h). */
#include "framework/layers/mae_mask.h"

#include "framework/core/check.h"
#include "framework/core/rng.h"

#include <stdlib.h>

int64_t ssl_mae_keep(int64_t L, double mask_ratio)
{
    SSL_ASSERTF(mask_ratio >= 0.0 && mask_ratio < 1.0, "mae: mask ratio %g outside [0, 1)", mask_ratio);
    return (int64_t)((double)L * (1.0 - mask_ratio));
}

void ssl_mae_noise(uint64_t key, int64_t sample0, int64_t N, int64_t L, float *noise)
{
    for (int64_t i = 0; i < N; i++) {
        ssl_rng r;
        ssl_rng_init(&r, key, (uint64_t)(sample0 + i));
        ssl_rng_fill_uniform(&r, noise + i * L, (size_t)L, 0.0f, 1.0f);
    }
}

typedef struct {
    float key;
    int32_t idx;
} keyed;

/* Ascending noise, ties by index: a total order, so qsort's instability cannot show. */
static int by_noise(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

void ssl_mae_mask(int64_t N, int64_t L, int64_t keep, const float *noise, int32_t *ids_keep,
                  int32_t *ids_restore, float *mask)
{
    SSL_ASSERTF(L > 0 && keep >= 0 && keep <= L && L <= INT32_MAX, "mae mask: keep %lld of %lld", (long long)keep,
                (long long)L);
    keyed *k = ssl_malloc((size_t)L * sizeof *k);
    for (int64_t i = 0; i < N; i++) {
        for (int64_t l = 0; l < L; l++) k[l] = (keyed){noise[i * L + l], (int32_t)l};
        qsort(k, (size_t)L, sizeof *k, by_noise);
        for (int64_t s = 0; s < L; s++) { /* k[s].idx is ids_shuffle[i, s] */
            const int32_t l = k[s].idx;
            ids_restore[i * L + l] = (int32_t)s;
            mask[i * L + l] = s < keep ? 0.0f : 1.0f;
            if (s < keep) ids_keep[i * keep + s] = l;
        }
    }
    ssl_free(k);
}
