/* Class-balanced seeded label subset (see label_subset.h). One permutation of all samples, then a
 * scan that keeps each class's first k_c: per-class quotas from one global order, no per-class
 * streams, and the result is a pure function of (labels, fraction, seed). */
#include "io/label_subset.h"

#include "framework/core/check.h"
#include "io/sampler.h"

#include <math.h>
#include <stdio.h>

/* Keys the subset's permutation apart from the sampler's epoch permutations (which are keyed by
 * hash(seed, epoch) for small epochs). */
#define SUBSET_EPOCH_KEY 0x4c4142454c53ull /* "LABELS" */

int64_t *ssl_label_subset(const int32_t *labels, int64_t n, int num_classes, double fraction, uint64_t seed,
                          int64_t *count, char *err, size_t errlen)
{
    if (!(fraction > 0.0 && fraction <= 1.0) || n < 1 || num_classes < 1) {
        snprintf(err, errlen, "label subset: fraction %g must be in (0, 1], with samples (%lld) and classes (%d)",
                 fraction, (long long)n, num_classes);
        return NULL;
    }
    int64_t *per_class = ssl_calloc((size_t)num_classes, sizeof *per_class);
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= num_classes) {
            snprintf(err, errlen, "label subset: sample %lld has label %d, outside [0, %d)", (long long)i,
                     (int)labels[i], num_classes);
            ssl_free(per_class);
            return NULL;
        }
        per_class[labels[i]]++;
    }
    int64_t total = 0;
    for (int c = 0; c < num_classes; c++) {
        int64_t k = per_class[c] ? (int64_t)llround(fraction * (double)per_class[c]) : 0;
        if (per_class[c] && k < 1) k = 1;
        per_class[c] = k; /* now the quota */
        total += k;
    }
    int64_t *perm = ssl_malloc((size_t)n * sizeof *perm);
    ssl_sampler_permutation(seed, (int64_t)SUBSET_EPOCH_KEY, n, perm);
    /* mark the chosen in a flag array, then list them ascending */
    unsigned char *take = ssl_calloc((size_t)n, 1);
    for (int64_t i = 0; i < n; i++) {
        int32_t c = labels[perm[i]];
        if (per_class[c] > 0) per_class[c]--, take[perm[i]] = 1;
    }
    int64_t *out = ssl_malloc((size_t)total * sizeof *out), m = 0;
    for (int64_t i = 0; i < n; i++)
        if (take[i]) out[m++] = i;
    SSL_ASSERT(m == total);
    ssl_free(take);
    ssl_free(perm);
    ssl_free(per_class);
    *count = total;
    return out;
}
