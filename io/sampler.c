/* Distributed sampler (see sampler.h). The permutation is a function of (seed, epoch, n) only, so
 * every rank computes the same one independently and no communication is needed; a rank's indices
 * are a contiguous slice of it, and mid-epoch resume is just a different (epoch, step). */
#include "io/sampler.h"

#include "framework/core/check.h"
#include "framework/core/rng.h"

#include <stdio.h>
#include <string.h>

/* Distinguishes the sampler's Philox stream from augmentation streams keyed by the same seed. */
#define SAMPLER_STREAM 0x53414d504c455200ull /* "SAMPLER" */

/* Uniform integer in [0, bound) without modulo bias (rejection of the short last bucket). */
static uint64_t uniform_below(ssl_rng *r, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound; /* multiple of bound */
    for (;;) {
        uint64_t x = ((uint64_t)ssl_rng_u32(r) << 32) | ssl_rng_u32(r);
        if (x < limit) return x % bound;
    }
}

void ssl_sampler_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *out)
{
    ssl_rng r;
    ssl_rng_init(&r, ssl_rng_hash(seed, (uint64_t)epoch), SAMPLER_STREAM);
    for (int64_t i = 0; i < n; i++) out[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)uniform_below(&r, (uint64_t)i + 1);
        int64_t t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
}

int ssl_sampler_init(ssl_sampler *s, int64_t n_samples, int global_batch, int rank, int world,
                     uint64_t seed, int drop_last, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    const char *why = NULL;
    if (world < 1) why = "world size must be >= 1";
    else if (rank < 0 || rank >= world) why = "rank must be in [0, world)";
    else if (global_batch < 1) why = "global batch must be >= 1";
    else if (global_batch % world != 0) why = "global batch must be divisible by the world size";
    else if (n_samples < 1) why = "the dataset is empty";
    else if (drop_last && n_samples < global_batch)
        why = "the dataset is smaller than one global batch and drop_last is set";
    if (why) {
        if (err && errlen)
            snprintf(err, errlen, "sampler: %s (samples %lld, global batch %d, rank %d, world %d)",
                     why, (long long)n_samples, global_batch, rank, world);
        return -1;
    }
    s->n_samples = n_samples;
    s->global_batch = global_batch;
    s->local_batch = global_batch / world;
    s->rank = rank;
    s->world = world;
    s->seed = seed;
    s->drop_last = drop_last;
    s->shuffle = 1;
    s->steps_per_epoch =
        drop_last ? n_samples / global_batch : (n_samples + global_batch - 1) / global_batch;
    s->perm = ssl_malloc((size_t)n_samples * sizeof *s->perm);
    s->perm_epoch = -1;
    return 0;
}

void ssl_sampler_free(ssl_sampler *s)
{
    ssl_free(s->perm);
    s->perm = NULL;
    s->perm_epoch = -1;
}

/* This rank's block [lo, lo + len) of positions in local mode. */
static void block(const ssl_sampler *s, int rank, int64_t *lo, int64_t *len)
{
    *lo = s->n_samples * rank / s->world;
    *len = s->n_samples * (rank + 1) / s->world - *lo;
}

void ssl_sampler_set_local(ssl_sampler *s)
{
    /* blocks differ by at most one sample and the last is never smaller; under drop_last n >= W * b,
     * so even the smallest block holds a full local batch */
    int64_t lo, smallest, largest;
    block(s, 0, &lo, &smallest);
    block(s, s->world - 1, &lo, &largest);
    s->local = 1;
    s->steps_per_epoch = s->drop_last ? smallest / s->local_batch : (largest + s->local_batch - 1) / s->local_batch;
    s->perm_epoch = -1;
}

int ssl_sampler_batch(ssl_sampler *s, int64_t epoch, int64_t step, int64_t *out_indices)
{
    if (!s->perm || epoch < 0 || step < 0 || step >= s->steps_per_epoch) return -1;
    if (s->local) {
        int64_t lo, len;
        block(s, s->rank, &lo, &len);
        if (s->perm_epoch != epoch || s->perm_shuffled != s->shuffle) {
            /* the rank in the key: blocks are permuted independently */
            if (s->shuffle) ssl_sampler_permutation(s->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(s->rank + 1)), epoch,
                                                    len, s->perm);
            else
                for (int64_t i = 0; i < len; i++) s->perm[i] = i;
            s->perm_epoch = epoch;
            s->perm_shuffled = s->shuffle;
        }
        const int64_t pos = step * s->local_batch;
        for (int i = 0; i < s->local_batch; i++) {
            int64_t v = lo + s->perm[(pos + i) % len];
            out_indices[i] = s->map ? s->map[v] : v;
        }
        return 0;
    }
    if (s->perm_epoch != epoch || s->perm_shuffled != s->shuffle) {
        if (s->shuffle) {
            ssl_sampler_permutation(s->seed, epoch, s->n_samples, s->perm);
        } else {
            for (int64_t i = 0; i < s->n_samples; i++) s->perm[i] = i;
        }
        s->perm_epoch = epoch;
        s->perm_shuffled = s->shuffle;
    }
    int64_t pos = step * s->global_batch + (int64_t)s->rank * s->local_batch;
    /* Without drop_last the final batch runs past n and wraps to the permutation's start, so every
     * rank still gets a full local batch (fixed shapes, equal work per rank). */
    for (int i = 0; i < s->local_batch; i++) {
        int64_t v = s->perm[(pos + i) % s->n_samples];
        out_indices[i] = s->map ? s->map[v] : v;
    }
    return 0;
}
