/* Philox-4x32-10 (Salmon et al., SC'11) and derived distributions. */
#include "framework/core/rng.h"

#include <math.h>

static inline void philox_round(uint32_t c[4], const uint32_t k[2])
{
    const uint64_t p0 = (uint64_t)0xD2511F53u * c[0];
    const uint64_t p1 = (uint64_t)0xCD9E8D57u * c[2];
    const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

ssl_philox_ctr ssl_philox(uint64_t key, ssl_philox_ctr ctr)
{
    uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    for (int i = 0; i < 10; i++) {
        philox_round(ctr.v, k);
        k[0] += 0x9E3779B9u;
        k[1] += 0xBB67AE85u;
    }
    return ctr;
}

uint64_t ssl_rng_hash(uint64_t a, uint64_t b)
{
    uint64_t z = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ssl_rng_init(ssl_rng *r, uint64_t key, uint64_t stream)
{
    r->key = key;
    r->hi = stream;
    r->lo = 0;
    r->nbuf = 0;
}

uint32_t ssl_rng_u32(ssl_rng *r)
{
    if (r->nbuf == 0) {
        ssl_philox_ctr c = {{(uint32_t)r->lo, (uint32_t)(r->lo >> 32), (uint32_t)r->hi,
                             (uint32_t)(r->hi >> 32)}};
        c = ssl_philox(r->key, c);
        for (int i = 0; i < 4; i++) r->buf[i] = c.v[i];
        r->nbuf = 4;
        r->lo++;
    }
    return r->buf[--r->nbuf];
}

float ssl_rng_uniform(ssl_rng *r) { return (float)(ssl_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float ssl_rng_normal(ssl_rng *r)
{
    /* Box-Muller on (0,1]; one of the pair is discarded to keep the stream stateless per draw. */
    double u1 = ((double)(ssl_rng_u32(r) >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(ssl_rng_u32(r) >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void ssl_rng_fill_uniform(ssl_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * ssl_rng_uniform(r);
}

void ssl_rng_fill_normal(ssl_rng *r, float *x, size_t n, float mean, float std)
{
    for (size_t i = 0; i < n; i++) x[i] = mean + std * ssl_rng_normal(r);
}

void ssl_rng_fill_trunc_normal(ssl_rng *r, float *x, size_t n, float std)
{
    for (size_t i = 0; i < n; i++) {
        float z;
        do z = ssl_rng_normal(r);
        while (z < -2.0f || z > 2.0f);
        x[i] = std * z;
    }
}
