/* CPU full reductions to a host double (gradient norms, losses, monitoring). The input is cut into
 * at most MAX_BLOCKS fixed blocks whose double partials are added in block order, so the result is
 * bit-identical for any thread count (an OpenMP reduction clause combines in arbitrary order). */
#include "framework/backend/cpu/cpu.h"

#define MAX_BLOCKS 1024
#define MIN_BLOCK 32768

/* Block size for n elements: at least MIN_BLOCK (parallel overhead), at most MAX_BLOCKS blocks. */
static size_t block_size(size_t n)
{
    size_t bs = (n + MAX_BLOCKS - 1) / MAX_BLOCKS;
    return bs < MIN_BLOCK ? MIN_BLOCK : bs;
}

/* The three reductions share one skeleton; `what` picks the term (0: x^2, 1: x*y, 2: x). */
static double reduce(size_t n, const float *x, const float *y, int what)
{
    if (n == 0) return 0.0;
    size_t bs = block_size(n), nb = (n + bs - 1) / bs;
    double part[MAX_BLOCKS];
#pragma omp parallel for schedule(static) if (nb > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t i0 = b * bs, i1 = i0 + bs < n ? i0 + bs : n;
        double s = 0.0;
        if (what == 0) {
#pragma omp simd reduction(+ : s)
            for (size_t i = i0; i < i1; i++) s += (double)x[i] * x[i];
        } else if (what == 1) {
#pragma omp simd reduction(+ : s)
            for (size_t i = i0; i < i1; i++) s += (double)x[i] * y[i];
        } else {
#pragma omp simd reduction(+ : s)
            for (size_t i = i0; i < i1; i++) s += x[i];
        }
        part[b] = s;
    }
    double total = 0.0;
    for (size_t b = 0; b < nb; b++) total += part[b];
    return total;
}

double ssl_cpu_sumsq(ssl_ctx *c, size_t n, const float *x)
{
    (void)c;
    return reduce(n, x, NULL, 0);
}

void ssl_cpu_sumsq_segments(ssl_ctx *c, int count, const float *x, const size_t *off, const size_t *n, double *out)
{
    (void)c;
    for (int i = 0; i < count; i++) out[i] = reduce(n[i], x + off[i], NULL, 0);
}

double ssl_cpu_dot(ssl_ctx *c, size_t n, const float *x, const float *y)
{
    (void)c;
    return reduce(n, x, y, 1);
}

double ssl_cpu_sum(ssl_ctx *c, size_t n, const float *x)
{
    (void)c;
    return reduce(n, x, NULL, 2);
}
