/* Branch-free float exp that GCC vectorises inside `omp simd` loops. glibc's expf is a scalar
 * call there (its vector variants need -ffast-math), which made softmax and GELU compute-bound.
 * Cephes-style: n = round(x / ln2), exp(r) by a degree-6 polynomial, 2^n through the exponent. */
#ifndef SSL_BACKEND_CPU_VMATH_H
#define SSL_BACKEND_CPU_VMATH_H

#include <stdint.h>
#include <string.h>

/* Vectorisation needs the body inlined into the loop; -O2 would not inline larger helpers. */
#if defined(__GNUC__)
#define SSL_VINLINE static inline __attribute__((always_inline))
#else
#define SSL_VINLINE static inline
#endif

/* cond ? a : b through the bits, for the vectoriser (see ssl_vexpf); both arms are evaluated. */
SSL_VINLINE float ssl_vsel(int cond, float a, float b)
{
    uint32_t ab, bb, m = 0u - (uint32_t)(cond != 0);
    memcpy(&ab, &a, sizeof ab);
    memcpy(&bb, &b, sizeof bb);
    ab = (ab & m) | (bb & ~m);
    memcpy(&a, &ab, sizeof a);
    return a;
}

/* exp(x) within 1.4 ulp for x in [-87.3, 88.3] (measured); 0 below -87.34 (no denormals), inf
 * above 88.3 (where 2^n would need n = 128); NaN stays NaN. Callers pass x <= 0.
 * Written for GCC's vectoriser under the default -ftrapping-math: no ?: on floats (jump
 * threading turns it into branches), no bool -> float conversions (same), no floorf or fmaxf
 * (not vectorised there). Rounding and the special cases therefore work on the bits. */
SSL_VINLINE float ssl_vexpf(float x)
{
    /* n = round(x / ln2): adding 1.5 * 2^23 leaves n in the low mantissa bits of t */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    /* r = x - n ln2 with ln2 split in two so that n * ln2_hi is exact; |r| <= ln2 / 2 */
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n built in the exponent field; n clamped so garbage from out-of-range x stays defined */
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    /* minus the bits of 12582912.0f, wrapping in unsigned (any t, even NaN, stays defined) */
    int32_t ni = (int32_t)(tb - 0x4B400000u);
    ni = ni < -126 ? -126 : ni;
    ni = ni > 128 ? 128 : ni;
    uint32_t sb = (uint32_t)(ni + 127) << 23, xb, vb;
    float s, v;
    memcpy(&s, &sb, sizeof s);
    v = p * s;
    memcpy(&xb, &x, sizeof xb);
    memcpy(&vb, &v, sizeof vb);
    uint32_t lo = 0u - (uint32_t)(x < -87.33654f), hi = 0u - (uint32_t)(x > 88.72283f);
    uint32_t nan = 0u - (uint32_t)((xb & 0x7fffffffu) > 0x7f800000u);
    vb = (vb & ~lo & ~hi) | (hi & 0x7f800000u) | (nan & 0x7fc00000u);
    memcpy(&v, &vb, sizeof v);
    return v;
}

/* fp32 -> bfloat16 bits, round to nearest even on the bit pattern (torch's c10
 * round_to_nearest_even): adding 0x7FFF plus the lowest kept bit carries into the kept half exactly
 * when the dropped half is above the tie, or at it with the kept half odd; an exponent carried to all
 * ones is inf. NaN becomes the quiet NaN 0x7FC0. */
SSL_VINLINE uint16_t ssl_vbf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0; /* NaN */
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* bfloat16 bits -> fp32, exactly. */
SSL_VINLINE float ssl_vbf16_widen(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

/* f rounded to the nearest bfloat16, as an fp32 value. */
SSL_VINLINE float ssl_vbf16_round(float f)
{
    const uint32_t u = (uint32_t)ssl_vbf16_bits(f) << 16;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

#endif
