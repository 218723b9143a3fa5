/* Counter-based RNG (Philox-4x32-10). A value depends only on (key, counter), never on call order
 * or thread count, so per-sample randomness can be keyed by (seed, epoch, sample, view) and the
 * same sample gets the same draw on any number of ranks or threads. */
#ifndef SSL_CORE_RNG_H
#define SSL_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct { uint32_t v[4]; } ssl_philox_ctr;

/* One Philox-4x32-10 block: four independent 32-bit outputs for (key, counter). */
ssl_philox_ctr ssl_philox(uint64_t key, ssl_philox_ctr ctr);

/* A stream over consecutive counters of a key: cheap sequential draws for parameter init. */
typedef struct {
    uint64_t key;
    uint64_t hi;      /* upper 64 bits of the counter (stream id) */
    uint64_t lo;      /* lower 64 bits (position) */
    uint32_t buf[4];
    int nbuf;
} ssl_rng;

void ssl_rng_init(ssl_rng *r, uint64_t key, uint64_t stream);
uint32_t ssl_rng_u32(ssl_rng *r);
float ssl_rng_uniform(ssl_rng *r);       /* [0, 1) with 24 random bits */
float ssl_rng_normal(ssl_rng *r);        /* standard normal (Box-Muller) */

/* Fill host buffers. */
void ssl_rng_fill_uniform(ssl_rng *r, float *x, size_t n, float lo, float hi);
void ssl_rng_fill_normal(ssl_rng *r, float *x, size_t n, float mean, float std);
/* Normal truncated to [mean - 2 std, mean + 2 std] by rejection, as timm's trunc_normal_. */
void ssl_rng_fill_trunc_normal(ssl_rng *r, float *x, size_t n, float std);

/* Mix several 64-bit words into one key (splitmix64 chain). */
uint64_t ssl_rng_hash(uint64_t a, uint64_t b);

#endif
