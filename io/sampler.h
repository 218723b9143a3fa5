/* Distributed sampler (DESIGN §3): one seeded permutation per epoch over all samples, keyed by
 * (seed, epoch) through the Philox counter RNG, so it does not depend on the number of ranks; each
 * step's global batch is cut into contiguous per-rank slices whose union is the 1-rank batch. */
#ifndef SSL_IO_SAMPLER_H
#define SSL_IO_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t n_samples;
    int global_batch;       /* samples per step over all ranks */
    int local_batch;        /* global_batch / world: this rank's share */
    int rank, world;
    uint64_t seed;
    int drop_last;          /* 1: steps = floor(n / B), no sample repeats in an epoch;
                               0: steps = ceil(n / B), the last batch wraps to the epoch's start */
    int shuffle;            /* 1 after init; set 0 for identity order (evaluation passes) */
    int local;              /* 0 after init; 1 (ssl_sampler_set_local): rank-local blocks */
    /* NULL after init; else (n_samples) dataset indices: the sampler permutes positions 0..n-1 and
     * hands out map[position], so a subset of a dataset (fine-tuning's label fraction) is sampled
     * exactly as a dataset of that size. Not owned; must outlive the sampler and its loader. */
    const int64_t *map;
    int64_t steps_per_epoch;
    /* private: permutation cache of one epoch */
    int64_t *perm;          /* (n_samples) */
    int64_t perm_epoch;     /* epoch perm holds, -1 none */
    int perm_shuffled;      /* shuffle flag perm was built with */
} ssl_sampler;

/* Returns 0, or -1 with a message when global_batch is not a positive multiple of world, rank is
 * outside [0, world), n_samples < 1, or drop_last leaves no full batch. */
int ssl_sampler_init(ssl_sampler *s, int64_t n_samples, int global_batch, int rank, int world,
                     uint64_t seed, int drop_last, char *err, size_t errlen);
void ssl_sampler_free(ssl_sampler *s);

/* Shard locality (data.sampling: local): rank r reads only the block of positions
 * [r*n/W, (r+1)*n/W): whole shards when the shards are equal and W divides their number, so a node's
 * page cache (or local copy) holds only its own shards. Each epoch permutes the block by (seed,
 * epoch, rank); step k takes positions [k*b, (k+1)*b) of it (b = local_batch). The global batch then
 * depends on the rank count (np=1 and np=P see other batches, unlike the global permutation);
 * steps per epoch = the smallest block / b (drop_last) or the largest block / b rounded up (wrapping
 * within the block). */
void ssl_sampler_set_local(ssl_sampler *s);

/* This rank's local_batch global sample indices (through map when set) for (epoch >= 0, 0 <= step < steps_per_epoch):
 * positions [step*B + rank*B/W, step*B + (rank+1)*B/W) of the epoch's permutation. Not thread-safe
 * (it caches the epoch's permutation); returns -1 for an out-of-range epoch or step. */
int ssl_sampler_batch(ssl_sampler *s, int64_t epoch, int64_t step, int64_t *out_indices);

/* The epoch's full permutation of [0, n) (Fisher-Yates over Philox keyed by (seed, epoch)). */
void ssl_sampler_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *out);

#endif
